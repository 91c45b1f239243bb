//! Audit reports: terminal text (default), JSON (versioned contract), Markdown, NDJSON per flow.

use std::io::{self, Write};

use serde::Serialize;

use super::{FlowRecord, SCHEMA_VERSION};
use crate::audit::{Audit, Finding, Judged, Verdict};
use crate::pipeline::{FileResult, FileSummary};
use crate::text::escape_terminal;

/// Output format of the `audit` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    Markdown,
    Ndjson,
}

/// One private-endpoint row in words, names and catalog text escaped with `esc`:
/// `name: chain -> addresses (N lookups): the chain passes through ZONE, ...`.
fn private_endpoint_line(
    p: &crate::audit::PrivateEndpointProblem,
    esc: impl Fn(&str) -> String,
) -> String {
    let chain: Vec<String> = p.chain.iter().map(|c| esc(c)).collect();
    let count = if p.lookups > 1 {
        format!(" ({} lookups)", p.lookups)
    } else {
        String::new()
    };
    format!(
        "{}: {} -> {}{count}: the chain passes through {}, the privatelink zone of {}, and ends at a public address",
        esc(&p.name),
        chain.join(" -> "),
        p.addresses.join(", "),
        esc(&p.zone),
        esc(&p.service)
    )
}

/// Escapes a wire string for a Markdown table cell: terminal escaping, then the characters
/// Markdown gives meaning to.
pub fn escape_markdown(s: &str) -> String {
    let t = escape_terminal(s);
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(
            c,
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '!' | '(' | ')'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn line(f: &Finding) -> String {
    let port = f.dst_port.map(|p| format!(":{p}")).unwrap_or_default();
    let entry = f
        .entry
        .as_ref()
        .map(|e| format!(" [{} {}]", e.requirement, e.pattern))
        .unwrap_or_default();
    let count = if f.flows > 0 {
        format!("{} flow{}", f.flows, if f.flows == 1 { "" } else { "s" })
    } else {
        format!(
            "{} lookup{}",
            f.lookups,
            if f.lookups == 1 { "" } else { "s" }
        )
    };
    format!(
        "{} {}{port}{entry}, {count}",
        f.proto,
        escape_terminal(&f.name)
    )
}

/// Writes the JSON document indented: the schema version, the inputs' summaries and the
/// audit's fields, the same bytes as serializing them as one struct (a test compares), except
/// that the websocket connections, most of the document on a long capture, are rendered on
/// the rayon pool.
fn write_json(out: &mut impl Write, audit: &Audit, results: &[FileResult]) -> io::Result<()> {
    let inputs: Vec<&FileSummary> = results.iter().map(|r| &r.summary).collect();
    // Destructured, so that a field added to the audit cannot be left out here.
    let Audit {
        findings,
        coverage,
        dns_failures,
        private_endpoint_dns,
        placeholders_seen,
        counts,
        per_file,
        websockets:
            crate::audit::ws::WsReport {
                instances,
                connections,
            },
    } = audit;
    let mut doc = crate::report::pretty::Document::object(out)?;
    doc.field("schema_version", &SCHEMA_VERSION)?;
    doc.field("inputs", &inputs)?;
    doc.field("findings", findings)?;
    doc.field("coverage", coverage)?;
    doc.field("dns_failures", dns_failures)?;
    doc.field("private_endpoint_dns", private_endpoint_dns)?;
    doc.field("placeholders_seen", placeholders_seen)?;
    doc.field("counts", counts)?;
    doc.field("per_file", per_file)?;
    doc.open("websockets", b"{")?;
    doc.field("instances", instances)?;
    doc.open("connections", b"[")?;
    doc.par_items(connections, |c| c)?;
    doc.close(b"]")?;
    doc.close(b"}")?;
    doc.end()
}

/// Writes the audit in the chosen format.
#[allow(clippy::too_many_arguments)]
pub fn write_audit(
    out: &mut dyn Write,
    audit: &Audit,
    judged: &[Vec<Judged>],
    results: &[FileResult],
    format: AuditFormat,
    color: bool,
    per_file: bool,
) -> io::Result<()> {
    let out = &mut crate::report::buffered(out);
    match format {
        AuditFormat::Json => {
            write_json(&mut *out, audit, results)?;
            out.write_all(b"\n")?;
        }
        AuditFormat::Ndjson => {
            #[derive(Serialize)]
            struct Row<'a> {
                #[serde(flatten)]
                flow: FlowRecord<'a>,
                verdict: Verdict,
                mechanism: Option<crate::audit::Mechanism>,
                confidence: Option<crate::audit::Confidence>,
                evidence: &'a str,
                entry_id: Option<&'a str>,
            }
            for (r, js) in results.iter().zip(judged) {
                for (f, j) in r.flows.iter().zip(js) {
                    serde_json::to_writer(
                        &mut *out,
                        &Row {
                            flow: FlowRecord::new(f, &r.summary.file),
                            verdict: j.verdict,
                            mechanism: j.mechanism,
                            confidence: j.confidence,
                            evidence: &j.evidence,
                            entry_id: j.entry_id.as_deref(),
                        },
                    )?;
                    out.write_all(b"\n")?;
                }
            }
        }
        AuditFormat::Text => {
            // Inputs that lost frames are said first: an empty report must not look clean.
            let notes: Vec<String> = results
                .iter()
                .filter_map(|r| crate::report::undecoded_note(&r.summary))
                .collect();
            if !notes.is_empty() {
                writeln!(out, "Undecoded frames")?;
                for n in &notes {
                    writeln!(out, "  {n}")?;
                }
                writeln!(out)?;
            }
            text(out, audit, color, per_file)?
        }
        AuditFormat::Markdown => markdown(out, audit, per_file)?,
    }
    out.flush()
}

/// The findings block of `allowscope live`'s view: the summary counts, then blocked catalog
/// hosts, then what was allowed although nothing expects it, then websocket problems, at most
/// `max` finding lines (with how many more there are).
pub fn live_view(a: &Audit, max: usize) -> String {
    let sec = Sections::of(a);
    let mut lines: Vec<String> = Vec::new();
    for f in &sec.blocked {
        lines.push(format!(
            "  {} {} ({})",
            f.verdict.name(),
            line(f),
            f.mechanism.map_or("-", |m| m.name())
        ));
    }
    for f in &sec.unexpected_reached {
        lines.push(format!("  unexpected-reached {}", line(f)));
    }
    for i in a
        .websockets
        .instances
        .iter()
        .filter(|i| i.problem != "healthy")
    {
        lines.push(format!("  {} {}", i.problem, escape_terminal(&i.name)));
    }
    let more = lines.len().saturating_sub(max);
    lines.truncate(max);
    let mut out = summary_counts(a);
    out.push('\n');
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    if more > 0 {
        out.push_str(&format!("  ... and {more} more\n"));
    }
    out
}

fn summary_counts(audit: &Audit) -> String {
    let c = |k: &str| audit.counts.get(k).copied().unwrap_or(0);
    let exercised = audit
        .coverage
        .iter()
        .filter(|c| c.exercised && c.entry.requirement == "required")
        .count();
    let required = audit
        .coverage
        .iter()
        .filter(|c| c.entry.requirement == "required")
        .count();
    // Said only when there are any, so a report without them reads as before.
    let other_port = match (c("other-port-blocked"), c("other-port-reached")) {
        (0, 0) => String::new(),
        (b, r) => format!("{b} other-port-blocked, {r} other-port-reached, "),
    };
    format!(
        "{} required-blocked, {} optional-blocked, {} unexpected-reached, {} unexpected-blocked, {} required-reached, {} optional-reached, {other_port}{} inconclusive, {} unattributed flows{}; {} DNS failures{}; {}/{} required entries exercised",
        c("required-blocked"),
        c("optional-blocked"),
        c("unexpected-reached"),
        c("unexpected-blocked"),
        c("required-reached"),
        c("optional-reached"),
        c("inconclusive"),
        c("unattributed"),
        match c("icmp-echo") {
            0 => String::new(),
            n => format!(", {n} ICMP echo"),
        },
        c("dns-failure"),
        match (c("dns-truncated"), c("dns-malformed")) {
            (0, 0) => String::new(),
            (t, m) => format!(" ({t} responses cut by the capture, {m} malformed)"),
        },
        exercised,
        required,
    )
}

fn file_counts(c: &crate::audit::Counts) -> String {
    let parts: Vec<String> = c.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(", ")
    }
}

/// One cell of the coverage matrix: what the file showed of an entry.
fn cell(counts: Option<&crate::audit::Counts>) -> &'static str {
    let Some(c) = counts else { return "-" };
    let has = |k: &str| c.get(k).copied().unwrap_or(0) > 0;
    match (
        has("required-blocked") || has("optional-blocked"),
        has("required-reached") || has("optional-reached"),
    ) {
        (true, true) => "blocked+reached",
        (true, false) => "blocked",
        (false, true) => "reached",
        (false, false) if has("dns-resolved") => "resolved",
        _ => "seen",
    }
}

/// The audit's sections for people, picked once for every human format (text, Markdown, the
/// live view), so that the formats cannot disagree on what each section holds.
struct Sections<'a> {
    /// Required or optional catalog hosts that were blocked: flows, then DNS failures.
    blocked: Vec<&'a Finding>,
    /// Allowed although nothing in the catalog expects it.
    unexpected_reached: Vec<&'a Finding>,
    /// Blocked, and not in the catalog.
    unexpected_blocked: Vec<&'a Finding>,
    /// Catalog hosts on a protocol or port their entry does not list.
    other_port: Vec<&'a Finding>,
    /// Required entries nothing exercised.
    not_exercised: Vec<&'a crate::audit::Coverage>,
    /// Required or optional catalog hosts that were reached.
    reached: Vec<&'a Finding>,
}

impl<'a> Sections<'a> {
    fn of(a: &'a Audit) -> Sections<'a> {
        let with = |v: &[Verdict]| -> Vec<&'a Finding> {
            a.findings
                .iter()
                .filter(|f| v.contains(&f.verdict))
                .collect()
        };
        Sections {
            blocked: a.blocked().collect(),
            unexpected_reached: with(&[Verdict::UnexpectedReached]),
            unexpected_blocked: with(&[Verdict::UnexpectedBlocked]),
            other_port: with(&[Verdict::OtherPortBlocked, Verdict::OtherPortReached]),
            not_exercised: a
                .coverage
                .iter()
                .filter(|c| !c.exercised && c.entry.requirement == "required")
                .collect(),
            reached: with(&[Verdict::RequiredReached, Verdict::OptionalReached]),
        }
    }
}

fn text(out: &mut dyn Write, a: &Audit, color: bool, per_file: bool) -> io::Result<()> {
    let (red, yellow, green, bold, reset) = if color {
        ("\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "", "", "")
    };
    let sec = Sections::of(a);
    let blocked = &sec.blocked;
    writeln!(out, "{bold}Required (or optional) but blocked{reset}")?;
    if blocked.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in blocked {
        let mech = f.mechanism.map_or("-", |m| m.name());
        let conf = f.confidence.map_or(String::new(), |c| {
            format!(", {} confidence", serde_plain(&c))
        });
        writeln!(
            out,
            "  {red}{}{reset} {} ({mech}{conf})",
            f.verdict.name(),
            line(f)
        )?;
        writeln!(out, "      {}", escape_terminal(&f.evidence))?;
    }
    writeln!(out, "\n{bold}Allowed but unexpected{reset}")?;
    let unexpected = &sec.unexpected_reached;
    if unexpected.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in unexpected {
        writeln!(out, "  {yellow}unexpected-reached{reset} {}", line(f))?;
        if f.port_mismatch {
            writeln!(out, "      {}", escape_terminal(&f.evidence))?;
        }
    }
    let ub = &sec.unexpected_blocked;
    if !ub.is_empty() {
        writeln!(out, "\n{bold}Blocked, not in the catalog{reset}")?;
        for f in ub {
            writeln!(
                out,
                "  unexpected-blocked {} ({})",
                line(f),
                f.mechanism.map_or("-", |m| m.name())
            )?;
        }
    }
    let other = &sec.other_port;
    if !other.is_empty() {
        writeln!(
            out,
            "\n{bold}Catalog hosts on a protocol or port their entry does not list{reset}"
        )?;
        for f in other {
            let mech = f
                .mechanism
                .map(|m| format!(" ({})", m.name()))
                .unwrap_or_default();
            writeln!(out, "  {} {}{mech}", f.verdict.name(), line(f))?;
            writeln!(out, "      {}", escape_terminal(&f.evidence))?;
        }
    }
    if !a.private_endpoint_dns.is_empty() {
        writeln!(out, "\n{bold}Private endpoint DNS not applied{reset}")?;
        for p in &a.private_endpoint_dns {
            writeln!(
                out,
                "  {}",
                private_endpoint_line(p, |s| escape_terminal(s).into_owned())
            )?;
        }
    }
    writeln!(out, "\n{bold}Required but not exercised{reset}")?;
    let missing = &sec.not_exercised;
    if missing.is_empty() {
        writeln!(out, "  none")?;
    }
    for c in missing {
        writeln!(
            out,
            "  {} ({}, {})",
            c.entry.pattern, c.entry.id, c.entry.purpose
        )?;
    }
    writeln!(out, "\n{bold}OK{reset}")?;
    let ok = &sec.reached;
    if ok.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in ok {
        writeln!(out, "  {green}{}{reset} {}", f.verdict.name(), line(f))?;
    }
    if !a.placeholders_seen.is_empty() {
        let seen: Vec<String> = a
            .placeholders_seen
            .iter()
            .map(|(k, v)| {
                let vals: Vec<String> = v.iter().map(|x| escape_terminal(x).into_owned()).collect();
                format!("{k}: {}", vals.join(", "))
            })
            .collect();
        writeln!(out, "\nPlaceholder values seen: {}", seen.join("; "))?;
    }
    if !a.websockets.instances.is_empty() {
        writeln!(
            out,
            "\n{bold}Websockets{reset} (per connection, with a timeline: allowscope ws)"
        )?;
        for i in &a.websockets.instances {
            crate::audit::ws::write_instance(out, i, (green, red, reset))?;
        }
    }
    if per_file {
        writeln!(out, "\n{bold}Per file{reset}")?;
        for p in &a.per_file {
            writeln!(
                out,
                "  {}: {}",
                escape_terminal(&p.file),
                file_counts(&p.counts)
            )?;
        }
    }
    writeln!(out, "\n{}", summary_counts(a))
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

fn markdown(out: &mut dyn Write, a: &Audit, per_file: bool) -> io::Result<()> {
    let sec = Sections::of(a);
    writeln!(out, "# allowscope audit\n")?;
    writeln!(out, "## Required but blocked\n")?;
    writeln!(
        out,
        "| verdict | name | proto/port | entry | mechanism | confidence | flows | evidence |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for f in &sec.blocked {
        writeln!(
            out,
            "| {} | {} | {}{} | {} | {} | {} | {} | {} |",
            f.verdict.name(),
            escape_markdown(&f.name),
            f.proto,
            f.dst_port.map(|p| format!("/{p}")).unwrap_or_default(),
            f.entry
                .as_ref()
                .map_or("-".to_string(), |e| format!("`{}`", e.pattern)),
            f.mechanism.map_or("-", |m| m.name()),
            f.confidence.map_or("-".to_string(), |c| serde_plain(&c)),
            f.flows.max(f.lookups),
            escape_markdown(&f.evidence),
        )?;
    }
    writeln!(out, "\n## Allowed but unexpected\n")?;
    writeln!(out, "| name | proto/port | flows | addresses |")?;
    writeln!(out, "|---|---|---|---|")?;
    for f in &sec.unexpected_reached {
        let ips: Vec<&str> = f.dst_ips.iter().map(String::as_str).collect();
        writeln!(
            out,
            "| {} | {}/{} | {} | {} |",
            escape_markdown(&f.name),
            f.proto,
            f.dst_port.unwrap_or(0),
            f.flows,
            ips.join(", ")
        )?;
    }
    // The text report always had this section; Markdown had left it out.
    if !sec.unexpected_blocked.is_empty() {
        writeln!(out, "\n## Blocked, not in the catalog\n")?;
        writeln!(out, "| name | proto/port | mechanism | flows | evidence |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for f in &sec.unexpected_blocked {
            writeln!(
                out,
                "| {} | {}/{} | {} | {} | {} |",
                escape_markdown(&f.name),
                f.proto,
                f.dst_port.unwrap_or(0),
                f.mechanism.map_or("-", |m| m.name()),
                f.flows,
                escape_markdown(&f.evidence),
            )?;
        }
    }
    let other = &sec.other_port;
    if !other.is_empty() {
        writeln!(
            out,
            "\n## Catalog hosts on a protocol or port their entry does not list\n"
        )?;
        writeln!(
            out,
            "| verdict | name | proto/port | mechanism | flows | evidence |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for f in other {
            writeln!(
                out,
                "| {} | {} | {}/{} | {} | {} | {} |",
                f.verdict.name(),
                escape_markdown(&f.name),
                f.proto,
                f.dst_port.unwrap_or(0),
                f.mechanism.map_or("-", |m| m.name()),
                f.flows,
                escape_markdown(&f.evidence),
            )?;
        }
    }
    if !a.private_endpoint_dns.is_empty() {
        writeln!(out, "\n## Private endpoint DNS not applied\n")?;
        for p in &a.private_endpoint_dns {
            writeln!(out, "- {}", private_endpoint_line(p, escape_markdown))?;
        }
    }
    writeln!(out, "\n## Required but not exercised\n")?;
    for c in &sec.not_exercised {
        writeln!(
            out,
            "- `{}` ({}): {}",
            c.entry.pattern, c.entry.id, c.entry.purpose
        )?;
    }
    if !a.websockets.instances.is_empty() {
        writeln!(out, "\n## Websockets\n")?;
        writeln!(
            out,
            "| instance | problem | connections | diagnosis | what to change |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        for i in &a.websockets.instances {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                escape_markdown(&i.name),
                i.problem,
                i.connections,
                escape_markdown(&i.diagnosis),
                escape_markdown(i.advice.as_deref().unwrap_or(""))
            )?;
        }
    }
    if per_file || a.per_file.len() > 1 {
        writeln!(out, "\n## Coverage by file\n")?;
        let files: Vec<&str> = a.per_file.iter().map(|p| p.file.as_str()).collect();
        let head: Vec<String> = files.iter().map(|f| escape_markdown(f)).collect();
        writeln!(out, "| entry | {} |", head.join(" | "))?;
        writeln!(out, "|---|{}", "---|".repeat(files.len()))?;
        for c in &a.coverage {
            let cells: Vec<&str> = files.iter().map(|f| cell(c.by_file.get(*f))).collect();
            writeln!(
                out,
                "| `{}` ({}) | {} |",
                c.entry.pattern,
                c.entry.requirement,
                cells.join(" | ")
            )?;
        }
        writeln!(out)?;
        for p in &a.per_file {
            writeln!(
                out,
                "- {}: {}",
                escape_markdown(&p.file),
                file_counts(&p.counts)
            )?;
        }
    }
    writeln!(out, "\n## Reached\n")?;
    for f in &sec.reached {
        writeln!(
            out,
            "- {} {}/{} ({} flows)",
            escape_markdown(&f.name),
            f.proto,
            f.dst_port.unwrap_or(0),
            f.flows
        )?;
    }
    writeln!(out, "\n{}", summary_counts(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON document as one struct.
    #[derive(Serialize)]
    struct Doc<'a> {
        schema_version: u32,
        inputs: Vec<&'a FileSummary>,
        #[serde(flatten)]
        audit: &'a Audit,
    }

    /// The JSON written in pieces is the document serialized whole, on every capture of the
    /// project at once (websocket connections from several files) and on one without any.
    #[test]
    fn json_in_pieces_is_the_whole_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(std::slice::from_ref(&dir));
        let cfg = crate::flow::FlowConfig::default();
        let catalog = crate::catalog::Catalog::builtin();
        let all: Vec<FileResult> = inputs
            .iter()
            .map(|i| crate::pipeline::analyze_input(i, &cfg))
            .collect();
        let none = vec![crate::pipeline::analyze_input(
            &crate::capture::Input::File(dir.join("tcp-outcomes.pcap")),
            &cfg,
        )];
        for (results, connections) in [(&all, true), (&none, false)] {
            let (audit, _) = crate::audit::audit(results, &catalog);
            assert_eq!(!audit.websockets.connections.is_empty(), connections);
            let mut ours = Vec::new();
            write_json(&mut ours, &audit, results).unwrap();
            let whole = serde_json::to_string_pretty(&Doc {
                schema_version: SCHEMA_VERSION,
                inputs: results.iter().map(|r| &r.summary).collect(),
                audit: &audit,
            })
            .unwrap();
            assert!(String::from_utf8(ours).unwrap() == whole);
        }
    }

    #[test]
    fn markdown_escaping() {
        assert_eq!(escape_markdown("a|b"), "a\\|b");
        assert_eq!(escape_markdown("[x](http://e)"), "\\[x\\]\\(http://e\\)");
        assert_eq!(escape_markdown("<script>"), "\\<script\\>");
        assert_eq!(escape_markdown("e\x1bvil"), "e\\x1bvil");
    }
}

//! Audit reports: terminal text (default), JSON (versioned contract), Markdown, NDJSON per flow.

use std::io::{self, Write};

use serde::Serialize;

use crate::audit::{Audit, Finding, Judged, Verdict};
use crate::pipeline::FileResult;
use crate::text::escape_terminal;

/// Output format of the `audit` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    Markdown,
    Ndjson,
    // One self-contained HTML page (no external resources); no doc comment, which clap
    // would print as the value's help.
    Html,
}

/// One name's private-endpoint problems in words, names and catalog text escaped with `esc`:
/// `name: N lookups in M chains pass through ZONE, ..., and end at public addresses A, B;
/// first: chain -> addresses`.
pub(super) fn private_endpoint_group_line(
    g: &PrivateEndpointGroup<'_>,
    esc: impl Fn(&str) -> String,
) -> String {
    let zones: Vec<String> = g
        .zones
        .iter()
        .map(|(z, s)| format!("{}, the privatelink zone of {}", esc(z), esc(s)))
        .collect();
    let addresses: Vec<&str> = g.addresses.iter().copied().collect();
    let first: Vec<String> = g.first.chain.iter().map(|c| esc(c)).collect();
    format!(
        "{}: {} lookup{} in {} chain{} pass{} through {}, and end{} at public address{} {}; first: {} -> {}",
        esc(g.name),
        g.lookups,
        if g.lookups == 1 { "" } else { "s" },
        g.chains,
        if g.chains == 1 { "" } else { "s" },
        if g.chains == 1 { "es" } else { "" },
        zones.join("; "),
        if g.chains == 1 { "s" } else { "" },
        if addresses.len() == 1 { "" } else { "es" },
        addresses.join(", "),
        first.join(" -> "),
        g.first.addresses.join(", ")
    )
}

pub(super) fn line(f: &Finding) -> String {
    let port = f.dst_port.map(|p| format!(":{p}")).unwrap_or_default();
    let entry = f
        .entry
        .as_ref()
        .map(|e| format!(" [{} {}]", e.requirement, escape_terminal(&e.pattern)))
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

pub use crate::audit::FailedInput;

/// What every format of the audit is written from: the audit, each flow's judgement, the
/// inputs, and the human sections picked once. Built by [`write_audit`].
pub struct AuditView<'a> {
    pub audit: &'a Audit,
    /// The judgement of each flow, per input, in the order of `results`' flows.
    pub judged: &'a [Vec<Judged>],
    pub results: &'a [FileResult],
    /// The inputs that failed (those of `results` and those never opened): when there are
    /// any, the audit is incomplete.
    pub failed: &'a [FailedInput],
    pub sections: Sections<'a>,
    /// `--per-file`: the per-input counts (and, in Markdown, the coverage by file) too.
    pub per_file: bool,
    /// `--show-unexercised`: list the required entries nothing exercised (else a count).
    pub show_unexercised: bool,
}

/// One output format of the audit. A new format is a new file in `report/` with a type that
/// implements this, and a value of [`AuditFormat`] that picks it.
pub trait AuditWriter {
    fn write(&self, out: &mut dyn Write, view: &AuditView<'_>) -> io::Result<()>;
}

impl AuditFormat {
    /// The writer of this format; `color` is for the terminal text only.
    pub fn writer(self, color: bool) -> Box<dyn AuditWriter> {
        match self {
            AuditFormat::Text => Box::new(super::text::Text { color }),
            AuditFormat::Json => Box::new(super::json::Json),
            AuditFormat::Markdown => Box::new(super::markdown::Markdown),
            AuditFormat::Ndjson => Box::new(super::json::Ndjson),
            AuditFormat::Html => Box::new(super::html::Html),
        }
    }
}

/// Writes the audit in the chosen format; `failed` are the inputs that failed (see
/// [`AuditView::failed`]).
#[allow(clippy::too_many_arguments)]
pub fn write_audit(
    out: &mut dyn Write,
    audit: &Audit,
    judged: &[Vec<Judged>],
    results: &[FileResult],
    failed: &[FailedInput],
    format: AuditFormat,
    color: bool,
    per_file: bool,
    show_unexercised: bool,
) -> io::Result<()> {
    let view = AuditView {
        audit,
        judged,
        results,
        failed,
        sections: Sections::of(audit, results),
        per_file,
        show_unexercised,
    };
    let mut out = crate::report::buffered(out);
    format.writer(color).write(&mut out, &view)?;
    out.flush()
}

/// The findings block of `allowscope live`'s view: the summary counts, then blocked catalog
/// hosts, then what was allowed although nothing expects it, then websocket problems, at most
/// `max` finding lines (with how many more there are).
pub fn live_view(a: &Audit, max: usize) -> String {
    let sec = Sections::of(a, &[]);
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
    for i in &sec.websocket_problems {
        lines.push(format!("  {} {}", i.problem, escape_terminal(&i.name)));
    }
    let more = lines.len().saturating_sub(max);
    lines.truncate(max);
    let mut out = sec.summary;
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

/// `file: counts` for each input, the file name escaped with `esc`.
pub(super) fn per_file_lines(a: &Audit, esc: impl Fn(&str) -> String) -> Vec<String> {
    a.per_file
        .iter()
        .map(|p| format!("{}: {}", esc(&p.file), file_counts(&p.counts)))
        .collect()
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
pub(super) fn cell(counts: Option<&crate::audit::Counts>) -> &'static str {
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

/// The audit's sections for people, picked once for every format (text, Markdown, the live
/// view), so that the formats cannot disagree on what each section holds.
pub struct Sections<'a> {
    /// What matters, in one line: required hosts blocked, websocket instances broken,
    /// unexpected hosts reached, inputs read and failed.
    pub headline: String,
    /// Notes on inputs that lost frames: said first, an empty report must not look clean.
    pub undecoded: Vec<String>,
    /// Required or optional catalog hosts that were blocked: flows, then DNS failures.
    pub blocked: Vec<&'a Finding>,
    /// The rules that would let every required-blocked finding through.
    pub rules: &'a crate::audit::rules::Rules,
    /// Allowed although nothing in the catalog expects it.
    pub unexpected_reached: Vec<&'a Finding>,
    /// Blocked, and not in the catalog.
    pub unexpected_blocked: Vec<&'a Finding>,
    /// Catalog hosts on a protocol or port their entry does not list.
    pub other_port: Vec<&'a Finding>,
    /// Names whose private-endpoint DNS was not applied, one group per name.
    pub private_endpoint_groups: Vec<PrivateEndpointGroup<'a>>,
    /// Required entries nothing exercised, of how many in scope.
    pub not_exercised: Vec<&'a crate::audit::Coverage>,
    pub required_entries: usize,
    /// Required or optional catalog hosts that were reached.
    pub reached: Vec<&'a Finding>,
    /// Every instance with websockets, and those whose diagnosis is a problem.
    pub websockets: &'a [crate::audit::ws::WsInstance],
    pub websocket_problems: Vec<&'a crate::audit::ws::WsInstance>,
    pub websocket_healthy: Vec<&'a crate::audit::ws::WsInstance>,
    /// Flows without a name to judge them by, per kind of traffic (DNS, ICMP, ...).
    pub unattributed: std::collections::BTreeMap<&'static str, u64>,
    /// The summary line: counts of every verdict, DNS failures and coverage.
    pub summary: String,
}

/// The private-endpoint problems of one name: how many lookups, in how many distinct chains,
/// through which zones, ending at which public addresses.
pub struct PrivateEndpointGroup<'a> {
    pub name: &'a str,
    pub lookups: u64,
    pub chains: usize,
    /// The zones (and their services) the chains pass through.
    pub zones: std::collections::BTreeSet<(&'a str, &'a str)>,
    pub addresses: std::collections::BTreeSet<&'a str>,
    /// The earliest problem's row.
    pub first: &'a crate::audit::PrivateEndpointProblem,
}

fn private_endpoint_groups(
    rows: &[crate::audit::PrivateEndpointProblem],
) -> Vec<PrivateEndpointGroup<'_>> {
    let mut groups: Vec<PrivateEndpointGroup<'_>> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut seen: std::collections::HashSet<(&str, &[String], &[String])> =
        std::collections::HashSet::new();
    for p in rows {
        let i = *at.entry(p.name.as_str()).or_insert_with(|| {
            groups.push(PrivateEndpointGroup {
                name: &p.name,
                lookups: 0,
                chains: 0,
                zones: Default::default(),
                addresses: Default::default(),
                first: p,
            });
            groups.len() - 1
        });
        let Some(g) = groups.get_mut(i) else { continue };
        g.lookups += p.lookups;
        if seen.insert((&p.name, &p.chain, &p.addresses)) {
            g.chains += 1;
        }
        g.zones.insert((&p.zone, &p.service));
        g.addresses.extend(p.addresses.iter().map(String::as_str));
        if p.first_ns < g.first.first_ns {
            g.first = p;
        }
    }
    groups
}

/// The closing notes of the human reports, escaped with `esc`: the unattributed flows by
/// kind, and the placeholder values seen.
pub(super) fn closing_notes(
    a: &Audit,
    sec: &Sections<'_>,
    esc: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !sec.unattributed.is_empty() {
        notes.push(format!(
            "Unattributed flows (no name to judge them by): {}",
            kinds_text(&sec.unattributed)
        ));
    }
    if !a.placeholders_seen.is_empty() {
        let seen: Vec<String> = a
            .placeholders_seen
            .iter()
            .map(|(k, v)| {
                let vals: Vec<String> = v.iter().map(|x| esc(x)).collect();
                format!("{k}: {}", vals.join(", "))
            })
            .collect();
        notes.push(format!("Placeholder values seen: {}", seen.join("; ")));
    }
    notes
}

/// `100 DNS, 20 ICMP`: counts per kind, most first.
fn kinds_text(kinds: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let mut v: Vec<(&&str, &u64)> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn plural_u64(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The headline: required hosts blocked, websocket instances broken, unexpected hosts
/// reached, inputs read and failed.
fn headline(a: &Audit, results: &[FileResult], broken: usize) -> String {
    let hosts = |v: Verdict| -> (usize, u64, u64) {
        let names: std::collections::BTreeSet<&str> = a
            .findings
            .iter()
            .chain(&a.dns_failures)
            .filter(|f| f.verdict == v)
            .map(|f| f.name.as_str())
            .collect();
        let flows = a
            .findings
            .iter()
            .filter(|f| f.verdict == v)
            .map(|f| f.flows)
            .sum();
        let lookups = a
            .dns_failures
            .iter()
            .filter(|f| f.verdict == v)
            .map(|f| f.lookups)
            .sum();
        (names.len(), flows, lookups)
    };
    let counted = |flows: u64, lookups: u64| match lookups {
        0 => plural_u64(flows, "flow", "flows"),
        _ => format!(
            "{}, {}",
            plural_u64(flows, "flow", "flows"),
            plural_u64(lookups, "failed lookup", "failed lookups")
        ),
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let (blocked, blocked_flows, blocked_lookups) = hosts(Verdict::RequiredBlocked);
    let (unexpected, unexpected_flows, _) = hosts(Verdict::UnexpectedReached);
    let failed = results.iter().filter(|r| r.summary.error.is_some()).count();
    format!(
        "{} blocked ({}), {} broken, {} that nothing expects reached ({}); {} read{}",
        plural(blocked, "required host", "required hosts"),
        counted(blocked_flows, blocked_lookups),
        plural(broken, "websocket instance", "websocket instances"),
        plural(unexpected, "host", "hosts"),
        plural_u64(unexpected_flows, "flow", "flows"),
        plural(results.len() - failed, "input", "inputs"),
        if failed > 0 {
            format!(", {failed} failed (the audit is incomplete)")
        } else {
            String::new()
        }
    )
}

impl<'a> Sections<'a> {
    pub fn of(a: &'a Audit, results: &[FileResult]) -> Sections<'a> {
        let with = |v: &[Verdict]| -> Vec<&'a Finding> {
            a.findings
                .iter()
                .filter(|f| v.contains(&f.verdict))
                .collect()
        };
        let websocket_problems: Vec<&crate::audit::ws::WsInstance> = a
            .websockets
            .instances
            .iter()
            .filter(|i| i.problem != "healthy")
            .collect();
        Sections {
            headline: headline(a, results, websocket_problems.len()),
            undecoded: results
                .iter()
                .filter_map(|r| crate::report::undecoded_note(&r.summary))
                .collect(),
            blocked: a.blocked().collect(),
            rules: &a.rules,
            unexpected_reached: with(&[Verdict::UnexpectedReached]),
            unexpected_blocked: with(&[Verdict::UnexpectedBlocked]),
            other_port: with(&[Verdict::OtherPortBlocked, Verdict::OtherPortReached]),
            private_endpoint_groups: private_endpoint_groups(&a.private_endpoint_dns),
            not_exercised: a
                .coverage
                .iter()
                .filter(|c| !c.exercised && c.entry.requirement == "required")
                .collect(),
            required_entries: a
                .coverage
                .iter()
                .filter(|c| c.entry.requirement == "required")
                .count(),
            reached: with(&[Verdict::RequiredReached, Verdict::OptionalReached]),
            websockets: &a.websockets.instances,
            websocket_problems,
            websocket_healthy: a
                .websockets
                .instances
                .iter()
                .filter(|i| i.problem == "healthy")
                .collect(),
            // ICMP echo is counted on its own (the summary's "ICMP echo"), never judged.
            unattributed: a.folded.unattributed.clone(),
            summary: summary_counts(a),
        }
    }
}

pub(super) fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

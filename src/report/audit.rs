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
}

/// One private-endpoint row in words, names and catalog text escaped with `esc`:
/// `name: chain -> addresses (N lookups): the chain passes through ZONE, ...`.
pub(super) fn private_endpoint_line(
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

pub(super) fn line(f: &Finding) -> String {
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

/// An input that failed: not found, not a capture, or not read to its end. The audit of what
/// was read is then incomplete, and every format opens by saying so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedInput {
    /// The input as named (`-` for stdin).
    pub file: String,
    /// What went wrong, naming the input (as the input's summary says it).
    pub error: String,
}

impl FailedInput {
    /// The inputs of `results` that stopped on an error.
    pub fn of(results: &[FileResult]) -> Vec<FailedInput> {
        results
            .iter()
            .filter_map(|r| {
                r.summary.error.as_ref().map(|e| FailedInput {
                    file: r.summary.file.clone(),
                    error: e.clone(),
                })
            })
            .collect()
    }
}

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
) -> io::Result<()> {
    let view = AuditView {
        audit,
        judged,
        results,
        failed,
        sections: Sections::of(audit, results),
        per_file,
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

fn file_counts(c: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = c.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(", ")
    }
}

/// One cell of the coverage matrix: what the file showed of an entry.
pub(super) fn cell(counts: Option<&std::collections::BTreeMap<&'static str, u64>>) -> &'static str {
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
    /// Notes on inputs that lost frames: said first, an empty report must not look clean.
    pub undecoded: Vec<String>,
    /// Required or optional catalog hosts that were blocked: flows, then DNS failures.
    pub blocked: Vec<&'a Finding>,
    /// The rules that would let every required-blocked finding through.
    pub rules: crate::audit::rules::Rules,
    /// Allowed although nothing in the catalog expects it.
    pub unexpected_reached: Vec<&'a Finding>,
    /// Blocked, and not in the catalog.
    pub unexpected_blocked: Vec<&'a Finding>,
    /// Catalog hosts on a protocol or port their entry does not list.
    pub other_port: Vec<&'a Finding>,
    /// Names whose private-endpoint DNS was not applied.
    pub private_endpoints: &'a [crate::audit::PrivateEndpointProblem],
    /// Required entries nothing exercised.
    pub not_exercised: Vec<&'a crate::audit::Coverage>,
    /// Required or optional catalog hosts that were reached.
    pub reached: Vec<&'a Finding>,
    /// Every instance with websockets, and those whose diagnosis is a problem.
    pub websockets: &'a [crate::audit::ws::WsInstance],
    pub websocket_problems: Vec<&'a crate::audit::ws::WsInstance>,
    /// The summary line: counts of every verdict, DNS failures and coverage.
    pub summary: String,
}

impl<'a> Sections<'a> {
    pub fn of(a: &'a Audit, results: &[FileResult]) -> Sections<'a> {
        let with = |v: &[Verdict]| -> Vec<&'a Finding> {
            a.findings
                .iter()
                .filter(|f| v.contains(&f.verdict))
                .collect()
        };
        Sections {
            undecoded: results
                .iter()
                .filter_map(|r| crate::report::undecoded_note(&r.summary))
                .collect(),
            blocked: a.blocked().collect(),
            rules: crate::audit::rules::rules(&a.findings, &a.dns_failures),
            unexpected_reached: with(&[Verdict::UnexpectedReached]),
            unexpected_blocked: with(&[Verdict::UnexpectedBlocked]),
            other_port: with(&[Verdict::OtherPortBlocked, Verdict::OtherPortReached]),
            private_endpoints: &a.private_endpoint_dns,
            not_exercised: a
                .coverage
                .iter()
                .filter(|c| !c.exercised && c.entry.requirement == "required")
                .collect(),
            reached: with(&[Verdict::RequiredReached, Verdict::OptionalReached]),
            websockets: &a.websockets.instances,
            websocket_problems: a
                .websockets
                .instances
                .iter()
                .filter(|i| i.problem != "healthy")
                .collect(),
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

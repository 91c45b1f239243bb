//! The audit as Markdown.

use std::io::{self, Write};

use super::audit::{
    cell, closing_notes, per_file_lines, private_endpoint_group_line, serde_plain, AuditView,
    AuditWriter,
};
use crate::audit::Finding;
use crate::text::{code_markdown, escape_markdown};

/// The audit as Markdown, for a ticket or a wiki: tables, names from the wire escaped.
pub struct Markdown;

impl AuditWriter for Markdown {
    fn write(&self, out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
        markdown(out, v)
    }
}

/// A Markdown table: the header, its separator, and a line per row (cells already escaped).
fn table(
    out: &mut dyn Write,
    head: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> io::Result<()> {
    writeln!(out, "| {} |", head.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(head.len()))?;
    for r in rows {
        writeln!(out, "| {} |", r.join(" | "))?;
    }
    Ok(())
}

/// `proto/port`, with port 0 when the finding has none.
fn proto_port(f: &Finding) -> String {
    format!("{}/{}", f.proto, f.dst_port.unwrap_or(0))
}

fn mechanism(f: &Finding) -> String {
    f.mechanism.map_or("-", |m| m.name()).to_string()
}

/// Name, proto/port, mechanism, flows and evidence of a finding.
fn mechanism_row(f: &Finding) -> Vec<String> {
    vec![
        escape_markdown(&f.name),
        proto_port(f),
        mechanism(f),
        f.flows.to_string(),
        escape_markdown(&f.evidence),
    ]
}

fn markdown(out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
    let (a, sec) = (v.audit, &v.sections);
    writeln!(out, "# allowscope audit\n")?;
    // Inputs that failed are said first: an empty report must not look clean.
    if !v.failed.is_empty() {
        let heading = super::text::incomplete_heading(v.failed.len());
        writeln!(out, "**{heading}.**\n")?;
        for f in v.failed {
            writeln!(out, "- {}", escape_markdown(&f.error))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "**{}**\n", escape_markdown(&sec.headline))?;
    if !sec.undecoded.is_empty() {
        writeln!(out, "## Undecoded frames\n")?;
        for n in &sec.undecoded {
            writeln!(out, "- {}", escape_markdown(n))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "## Required but blocked\n")?;
    if sec.blocked.is_empty() && !v.failed.is_empty() {
        writeln!(out, "None in what was read (the audit is incomplete).\n")?;
    }
    table(
        out,
        &[
            "verdict",
            "name",
            "proto/port",
            "entry",
            "mechanism",
            "confidence",
            "flows",
            "evidence",
        ],
        sec.blocked.iter().map(|f| {
            vec![
                f.verdict.name().to_string(),
                escape_markdown(&f.name),
                // A lookup has no port.
                format!(
                    "{}{}",
                    f.proto,
                    f.dst_port.map(|p| format!("/{p}")).unwrap_or_default()
                ),
                f.entry
                    .as_ref()
                    .map_or("-".to_string(), |e| code_markdown(&e.pattern)),
                mechanism(f),
                f.confidence.map_or("-".to_string(), |c| serde_plain(&c)),
                f.flows.max(f.lookups).to_string(),
                escape_markdown(&f.evidence),
            ]
        }),
    )?;
    let rules = super::rules::summary_lines(sec.rules, escape_markdown);
    if !rules.is_empty() {
        writeln!(
            out,
            "\n## Rules to add\n\nIn a firewall's language: `allowscope audit --rules azure-firewall` (or `azure-firewall-arm`, `squid`, `nftables`, `fqdn-list`).\n"
        )?;
        for l in rules {
            writeln!(out, "- {l}")?;
        }
    }
    if !sec.websockets.is_empty() {
        writeln!(out, "\n## Websockets\n")?;
        table(
            out,
            &[
                "instance",
                "problem",
                "connections",
                "diagnosis",
                "what to change",
            ],
            sec.websockets.iter().map(|i| {
                vec![
                    escape_markdown(&i.name),
                    i.problem.clone(),
                    i.connections.to_string(),
                    escape_markdown(&i.diagnosis),
                    escape_markdown(i.advice.as_deref().unwrap_or("")),
                ]
            }),
        )?;
    }
    writeln!(out, "\n## Allowed but unexpected\n")?;
    table(
        out,
        &["name", "proto/port", "flows", "addresses"],
        sec.unexpected_reached.iter().map(|f| {
            vec![
                escape_markdown(&f.name),
                proto_port(f),
                f.flows.to_string(),
                f.dst_ips
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        }),
    )?;
    // The text report always had this section; Markdown had left it out.
    if !sec.unexpected_blocked.is_empty() {
        writeln!(out, "\n## Blocked, not in the catalog\n")?;
        table(
            out,
            &["name", "proto/port", "mechanism", "flows", "evidence"],
            sec.unexpected_blocked.iter().map(|f| mechanism_row(f)),
        )?;
    }
    if !sec.other_port.is_empty() {
        writeln!(
            out,
            "\n## Catalog hosts on a protocol or port their entry does not list\n"
        )?;
        table(
            out,
            &[
                "verdict",
                "name",
                "proto/port",
                "mechanism",
                "flows",
                "evidence",
            ],
            sec.other_port.iter().map(|f| {
                let mut row = vec![f.verdict.name().to_string()];
                row.extend(mechanism_row(f));
                row
            }),
        )?;
    }
    if !sec.private_endpoint_groups.is_empty() {
        writeln!(out, "\n## Private endpoint DNS not applied\n")?;
        for g in &sec.private_endpoint_groups {
            writeln!(out, "- {}", private_endpoint_group_line(g, escape_markdown))?;
        }
    }
    writeln!(out, "\n## Required but not exercised\n")?;
    let missing = &sec.not_exercised;
    if missing.is_empty() {
        writeln!(out, "None.")?;
    } else if !v.show_unexercised {
        writeln!(
            out,
            "{} of {} entries (list them with `--show-unexercised`; the JSON always has them).",
            missing.len(),
            sec.required_entries
        )?;
    } else {
        writeln!(
            out,
            "{} of {} entries:\n",
            missing.len(),
            sec.required_entries
        )?;
        for c in missing {
            writeln!(
                out,
                "- {} ({}): {}",
                code_markdown(&c.entry.pattern),
                escape_markdown(&c.entry.id),
                escape_markdown(&c.entry.purpose)
            )?;
        }
    }
    if v.per_file || a.per_file.len() > 1 {
        writeln!(out, "\n## Coverage by file\n")?;
        let files: Vec<&str> = a.per_file.iter().map(|p| p.file.as_str()).collect();
        let head: Vec<String> = files.iter().map(|f| escape_markdown(f)).collect();
        writeln!(out, "| entry | {} |", head.join(" | "))?;
        writeln!(out, "|---|{}", "---|".repeat(files.len()))?;
        for c in &a.coverage {
            let cells: Vec<&str> = files.iter().map(|f| cell(c.by_file.get(*f))).collect();
            writeln!(
                out,
                "| {} ({}) | {} |",
                code_markdown(&c.entry.pattern),
                c.entry.requirement,
                cells.join(" | ")
            )?;
        }
        writeln!(out)?;
        for l in per_file_lines(a, escape_markdown) {
            writeln!(out, "- {l}")?;
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
    for note in closing_notes(a, sec, escape_markdown) {
        writeln!(out, "\n{note}.")?;
    }
    writeln!(out, "\n{}", sec.summary)
}

//! `allowscope check-allowlist`: an allowlist checked against the catalog, in the audit's
//! formats (text, Markdown, JSON, NDJSON). What is checked is decided in [`crate::allowlist`];
//! the rules to add come from [`crate::audit::rules::rules_for_needs`] and are summed up as the
//! audit's report sums them up ([`super::rules::summary_lines`]).
//!
//! Everything taken from the files (rule and collection names, squid lines, file names) is
//! escaped for the terminal or for Markdown; JSON escapes by itself.

use std::io::{self, Write};

use serde::Serialize;

use super::audit::AuditFormat;
use crate::allowlist::{At, Check, EntryCheck, PortCheck, Status, TagsChecked};
use crate::audit::rules::Rules;
use crate::text::{escape_markdown, escape_terminal};

/// Version of the JSON document (the same contract as the audit's: fields are added, never
/// renamed or removed without a new version).
pub const SCHEMA_VERSION: u32 = 1;

/// Writes the check in `format`.
pub fn write_check(
    out: &mut dyn Write,
    check: &Check,
    rules: &Rules,
    format: AuditFormat,
) -> io::Result<()> {
    let mut out = super::buffered(out);
    match format {
        AuditFormat::Text => human(
            &mut out,
            check,
            rules,
            &|s: &str| escape_terminal(s).into_owned(),
            false,
        )?,
        AuditFormat::Markdown => human(&mut out, check, rules, &escape_markdown, true)?,
        AuditFormat::Json => json(&mut out, check, rules)?,
        AuditFormat::Ndjson => ndjson(&mut out, check, rules)?,
        AuditFormat::Html => return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "check-allowlist writes text, json, markdown or ndjson; the HTML page is the audit's",
        )),
    }
    out.flush()
}

/// Counts for the summary line and the JSON document.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Counts {
    entries: usize,
    permitted: usize,
    permitted_for_values: usize,
    missing_required: usize,
    missing_optional: usize,
    broader: usize,
    useless: usize,
    not_followed: usize,
}

fn counts(c: &Check) -> Counts {
    let required = crate::catalog::Requirement::Required.name();
    Counts {
        entries: c.entries.len(),
        permitted: c
            .entries
            .iter()
            .filter(|e| e.status == Status::Permitted)
            .count(),
        permitted_for_values: c
            .entries
            .iter()
            .filter(|e| e.status == Status::PermittedFor)
            .count(),
        missing_required: c.missing().filter(|e| e.requirement == required).count(),
        missing_optional: c.missing().filter(|e| e.requirement != required).count(),
        broader: c.broader.len(),
        useless: c.useless.len(),
        not_followed: c.not_followed.len(),
    }
}

/// The JSON document of `check-allowlist`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CheckDocument<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub check: &'a Check,
    pub counts: Counts,
    pub rules: &'a Rules,
}

/// A line of `check-allowlist`'s NDJSON: an entry, a broader or useless rule, a name not
/// followed, or a rule to add, by `type`.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "CheckLine_{T}")]
pub struct CheckLine<'a, T> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub item: &'a T,
}

fn json(out: &mut dyn Write, c: &Check, rules: &Rules) -> io::Result<()> {
    super::pretty::to_writer_pretty(
        &mut *out,
        &CheckDocument {
            schema_version: SCHEMA_VERSION,
            check: c,
            counts: counts(c),
            rules,
        },
    )
    .map_err(io::Error::from)?;
    writeln!(out)
}

fn ndjson(out: &mut dyn Write, c: &Check, rules: &Rules) -> io::Result<()> {
    fn line<T: Serialize>(out: &mut dyn Write, kind: &'static str, item: &T) -> io::Result<()> {
        crate::report::pretty::to_writer_compact(&mut *out, &CheckLine { kind, item })
            .map_err(io::Error::from)?;
        out.write_all(b"\n")
    }
    for e in &c.entries {
        line(out, "entry", e)?;
    }
    for b in &c.broader {
        line(out, "broader", b)?;
    }
    for u in &c.useless {
        line(out, "useless", u)?;
    }
    for n in &c.not_followed {
        line(out, "not-followed", n)?;
    }
    for r in &rules.allow {
        line(out, "rule", r)?;
    }
    Ok(())
}

/// `tcp 443, tcp 445`.
fn ports_of<'a>(ports: impl Iterator<Item = &'a PortCheck>) -> String {
    ports
        .map(|p| format!("{} {}", p.proto, p.ports))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command-line option that fills a placeholder.
fn option_of(placeholder: &str) -> String {
    format!("--{placeholder}")
}

/// The placeholders a destination still has (`<storage>`), as the options that fill them.
fn unfilled_options(dest: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = dest;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('>') else { break };
        v.push(option_of(&after[..j]));
        rest = &after[j + 1..];
    }
    v
}

type Esc<'a> = &'a dyn Fn(&str) -> String;

/// Text and Markdown: the same sections, in the order that matters to an admin.
fn human(out: &mut dyn Write, c: &Check, rules: &Rules, esc: Esc, md: bool) -> io::Result<()> {
    let n = counts(c);
    let item = if md { "- " } else { "  " };
    let sub = if md { "  - " } else { "      " };
    // What was read, for what.
    let inputs: Vec<String> = c
        .inputs
        .iter()
        .map(|i| {
            format!(
                "{} ({}, {} rule{})",
                esc(&i.file),
                i.format,
                i.rules,
                if i.rules == 1 { "" } else { "s" }
            )
        })
        .collect();
    if md {
        writeln!(out, "# Allowlist check\n")?;
    }
    writeln!(
        out,
        "{}allowlist: {}",
        if md { "- " } else { "" },
        inputs.join(", ")
    )?;
    writeln!(
        out,
        "{}catalog: cloud {}; scenarios {}",
        if md { "- " } else { "" },
        c.cloud.unwrap_or("all"),
        esc(&c.scenarios.join(", "))
    )?;
    if !c.placeholders.is_empty() {
        let ps: Vec<String> = c
            .placeholders
            .iter()
            .map(|(k, v)| match v {
                Some(v) => esc(&format!("<{k}> = {v}")),
                None => esc(&format!(
                    "<{k}> unset (any one label; {} fills it)",
                    option_of(k)
                )),
            })
            .collect();
        writeln!(
            out,
            "{}placeholders: {}",
            if md { "- " } else { "" },
            ps.join(", ")
        )?;
    }
    writeln!(
        out,
        "{}result: {} of {} catalog entries permitted{}; missing {} required, {} optional; {} destination{} broader than needed; {} allowing nothing expected",
        if md { "- " } else { "" },
        n.permitted + n.permitted_for_values,
        n.entries,
        if n.permitted_for_values > 0 {
            format!(
                " ({} only for the placeholder values the allowlist names)",
                n.permitted_for_values
            )
        } else {
            String::new()
        },
        n.missing_required,
        n.missing_optional,
        n.broader,
        if n.broader == 1 { "" } else { "s" },
        n.useless
    )?;

    // Missing, required first.
    let missing: Vec<&EntryCheck> = {
        let mut v: Vec<&EntryCheck> = c.missing().collect();
        v.sort_by_key(|e| e.requirement != crate::catalog::Requirement::Required.name());
        v
    };
    heading(
        out,
        "Not permitted: catalog entries the allowlist does not let through",
        md,
    )?;
    if missing.is_empty() {
        writeln!(out, "{item}none")?;
    }
    for e in &missing {
        let ports = ports_of(e.ports.iter().filter(|p| p.status == Status::Missing));
        let ok = ports_of(e.ports.iter().filter(|p| p.status != Status::Missing));
        writeln!(
            out,
            "{item}{} {} {ports}{}: {} ({}, scenario {})",
            e.requirement,
            esc(&e.destination),
            if ok.is_empty() {
                String::new()
            } else {
                format!(" (permitted: {ok})")
            },
            esc(&e.purpose),
            esc(&e.id),
            esc(&e.scenario)
        )?;
        for note in unique(
            e.ports
                .iter()
                .filter(|p| p.status == Status::Missing)
                .flat_map(|p| p.notes.iter()),
        ) {
            writeln!(out, "{sub}{}", esc(note))?;
        }
    }

    heading(
        out,
        "Rules to add (--rules FORMAT writes them for a firewall)",
        md,
    )?;
    let lines = super::rules::summary_lines(rules, |s| esc(s));
    if lines.is_empty() && rules.refused.is_empty() {
        writeln!(out, "{item}none")?;
    }
    for l in lines {
        writeln!(out, "{item}{l}")?;
    }
    let mut shown = std::collections::BTreeSet::new();
    for f in rules
        .refused
        .iter()
        .filter(|f| shown.insert((&*f.proto, &f.name, f.port)))
    {
        let opts = unfilled_options(&f.name);
        writeln!(
            out,
            "{item}not written: {} {}{}: {}",
            f.proto,
            esc(&f.name),
            f.port.map(|p| format!(":{p}")).unwrap_or_default(),
            if opts.is_empty() {
                "not a plain DNS name".to_string()
            } else {
                format!("give {} to get a rule", opts.join(" and "))
            }
        )?;
    }

    let broader: Vec<(&At, String)> = c.broader.iter().map(|b| (&b.at, b.why.clone())).collect();
    destinations(out, "Broader than the catalog needs", &broader, esc, md)?;
    let useless: Vec<(&At, String)> = c
        .useless
        .iter()
        .map(|u| {
            let other = if u.other_scenarios.is_empty() {
                String::new()
            } else {
                format!(
                    " (scenario {} lists it: --scenario {} puts it in scope)",
                    u.other_scenarios.join(", "),
                    u.other_scenarios.join(",")
                )
            };
            (&u.at, format!("{}{other}", u.why))
        })
        .collect();
    destinations(
        out,
        "Allowing nothing the catalog expects",
        &useless,
        esc,
        md,
    )?;

    if !c.not_followed.is_empty() {
        heading(out, "Not followed (not checked, not guessed)", md)?;
        for nf in &c.not_followed {
            writeln!(
                out,
                "{item}{}: {}: {}: {}",
                esc(&nf.file),
                esc(&nf.at),
                esc(&nf.what),
                esc(&nf.why)
            )?;
        }
    }

    heading(out, "Service tags", md)?;
    match c.service_tags {
        TagsChecked::Checked => writeln!(
            out,
            "{item}checked: the allowlist names service tags ({} outbound service-tag rule{} in scope, listed with the entries)",
            c.service_tag_rules,
            if c.service_tag_rules == 1 { "" } else { "s" }
        )?,
        TagsChecked::NotChecked => writeln!(
            out,
            "{item}not checked: the allowlist names no service tag; the catalog's {} outbound service-tag rule{} are the IP-range alternative to the names above",
            c.service_tag_rules,
            if c.service_tag_rules == 1 { "" } else { "s" }
        )?,
    }

    heading(out, "Permitted", md)?;
    let permitted: Vec<&EntryCheck> = c.permitted().collect();
    if permitted.is_empty() {
        writeln!(out, "{item}none")?;
    }
    for e in permitted {
        let mut by: Vec<String> = e
            .ports
            .iter()
            .flat_map(|p| p.by.iter().map(|r| r.to_string()))
            .collect();
        by.sort();
        by.dedup();
        // `tcp 443, tcp 445 for <storage> = acct`: ports with the same values together.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for p in &e.ports {
            let values: Vec<String> = p
                .values
                .iter()
                .map(crate::allowlist::bindings_text)
                .collect();
            let suffix = if values.is_empty() {
                String::new()
            } else {
                format!(" for {}", values.join(" or "))
            };
            let port = format!("{} {}", p.proto, p.ports);
            match groups.iter_mut().find(|(s, _)| *s == suffix) {
                Some((_, ports)) => ports.push(port),
                None => groups.push((suffix, vec![port])),
            }
        }
        let ports: Vec<String> = groups
            .iter()
            .map(|(suffix, ports)| format!("{}{}", ports.join(", "), esc(suffix)))
            .collect();
        writeln!(
            out,
            "{item}{} {}: by {}",
            esc(&e.destination),
            ports.join("; "),
            esc(&by.join("; "))
        )?;
        for note in unique(e.ports.iter().flat_map(|p| p.notes.iter())) {
            writeln!(out, "{sub}{}", esc(note))?;
        }
    }
    Ok(())
}

/// Each string once, in the order first seen.
fn unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut seen = std::collections::BTreeSet::new();
    items.filter(|s| seen.insert(*s)).collect()
}

/// A section of destinations, each `file: rule: destination (defined in ...)` with why below.
fn destinations(
    out: &mut dyn Write,
    title: &str,
    items: &[(&At, String)],
    esc: Esc,
    md: bool,
) -> io::Result<()> {
    let (item, sub) = if md { ("- ", "  - ") } else { ("  ", "      ") };
    heading(out, title, md)?;
    if items.is_empty() {
        writeln!(out, "{item}none")?;
    }
    for (at, why) in items {
        writeln!(
            out,
            "{item}{}: {}: {}{}",
            esc(&at.file),
            esc(&at.rule),
            esc(&at.destination),
            at.defined
                .as_deref()
                .map(|d| format!(" ({})", esc(d)))
                .unwrap_or_default()
        )?;
        writeln!(out, "{sub}{}", esc(why))?;
    }
    Ok(())
}

/// A section's title.
fn heading(out: &mut dyn Write, title: &str, md: bool) -> io::Result<()> {
    if md {
        writeln!(out, "\n## {title}\n")
    } else {
        writeln!(out, "\n{title}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_left_name_their_options() {
        assert_eq!(
            unfilled_options("*.tundra.<region>.api.<x>.ms"),
            ["--region", "--x"]
        );
        assert!(unfilled_options("a.b").is_empty());
        assert!(unfilled_options("a.<b").is_empty());
    }
}

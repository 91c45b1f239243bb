//! The audit as terminal text, the default format.

use std::io::{self, Write};

use super::audit::{
    closing_notes, line, per_file_lines, private_endpoint_group_line, serde_plain, AuditView,
    AuditWriter,
};
use crate::text::escape_terminal;

/// The terminal report (the default format): sections in order of what matters, names from
/// the wire escaped, colour when stdout is a terminal.
pub struct Text {
    pub color: bool,
}

impl AuditWriter for Text {
    fn write(&self, out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
        let sec = &v.sections;
        // Inputs that failed are said first: an empty report must not look clean.
        if !v.failed.is_empty() {
            let (red, bold, reset) = if self.color {
                ("\x1b[31m", "\x1b[1m", "\x1b[0m")
            } else {
                ("", "", "")
            };
            writeln!(
                out,
                "{bold}{red}{}{reset}",
                incomplete_heading(v.failed.len())
            )?;
            for f in v.failed {
                writeln!(out, "  {}", escape_terminal(&f.error))?;
            }
            writeln!(out)?;
        }
        writeln!(out, "allowscope audit: {}\n", sec.headline)?;
        // Inputs that lost frames are said next.
        if !sec.undecoded.is_empty() {
            writeln!(out, "Undecoded frames")?;
            for n in &sec.undecoded {
                writeln!(out, "  {}", escape_terminal(n))?;
            }
            writeln!(out)?;
        }
        text(out, v, self.color)
    }
}

/// The first line of an incomplete audit: how many inputs failed.
pub(super) fn incomplete_heading(failed: usize) -> String {
    format!(
        "The audit is incomplete: {failed} input{} failed, and what follows covers only what was read",
        if failed == 1 { "" } else { "s" }
    )
}

/// What an empty "blocked" section says when the audit is incomplete.
const NONE_READ: &str = "none in what was read (the audit is incomplete)";

fn text(out: &mut dyn Write, v: &AuditView<'_>, color: bool) -> io::Result<()> {
    let (a, sec) = (v.audit, &v.sections);
    let (red, yellow, green, bold, reset) = if color {
        ("\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "", "", "")
    };
    let blocked = &sec.blocked;
    writeln!(out, "{bold}Required (or optional) but blocked{reset}")?;
    if blocked.is_empty() {
        let none = if v.failed.is_empty() {
            "none"
        } else {
            NONE_READ
        };
        writeln!(out, "  {none}")?;
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
    let rules = super::rules::summary_lines(sec.rules, |s| escape_terminal(s).into_owned());
    if !rules.is_empty() {
        writeln!(
            out,
            "\n{bold}Rules to add{reset} (in a firewall's language: --rules azure-firewall, azure-firewall-arm, squid, nftables or fqdn-list)"
        )?;
        for l in rules {
            writeln!(out, "  {l}")?;
        }
    }
    if !sec.websockets.is_empty() {
        writeln!(
            out,
            "\n{bold}Websocket problems{reset} (per connection, with a timeline: allowscope ws)"
        )?;
        if sec.websocket_problems.is_empty() {
            writeln!(out, "  none")?;
        }
        for i in &sec.websocket_problems {
            super::ws::write_instance(out, i, (green, red, reset))?;
        }
        if !sec.websocket_healthy.is_empty() {
            let names: Vec<String> = sec
                .websocket_healthy
                .iter()
                .map(|i| format!("{green}{}{reset}", escape_terminal(&i.name)))
                .collect();
            writeln!(out, "  healthy: {}", names.join(", "))?;
        }
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
    if !sec.private_endpoint_groups.is_empty() {
        writeln!(out, "\n{bold}Private endpoint DNS not applied{reset}")?;
        for g in &sec.private_endpoint_groups {
            writeln!(
                out,
                "  {}",
                private_endpoint_group_line(g, |s| escape_terminal(s).into_owned())
            )?;
        }
    }
    let missing = &sec.not_exercised;
    if missing.is_empty() {
        writeln!(out, "\n{bold}Required but not exercised{reset}: none")?;
    } else if !v.show_unexercised {
        writeln!(
            out,
            "\n{bold}Required but not exercised{reset}: {} of {} entries (list them with --show-unexercised; the JSON always has them)",
            missing.len(),
            sec.required_entries
        )?;
    } else {
        writeln!(
            out,
            "\n{bold}Required but not exercised{reset}: {} of {} entries",
            missing.len(),
            sec.required_entries
        )?;
        for c in missing {
            writeln!(
                out,
                "  {} ({}, {})",
                escape_terminal(&c.entry.pattern),
                escape_terminal(&c.entry.id),
                escape_terminal(&c.entry.purpose)
            )?;
        }
    }
    writeln!(out, "\n{bold}OK{reset}")?;
    let ok = &sec.reached;
    if ok.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in ok {
        writeln!(out, "  {green}{}{reset} {}", f.verdict.name(), line(f))?;
    }
    for note in closing_notes(a, sec, |s| escape_terminal(s).into_owned()) {
        writeln!(out, "\n{note}")?;
    }
    if v.per_file {
        writeln!(out, "\n{bold}Per file{reset}")?;
        for l in per_file_lines(a, |s| escape_terminal(s).into_owned()) {
            writeln!(out, "  {l}")?;
        }
    }
    writeln!(out, "\n{}", sec.summary)
}

//! Writing a catalog back as TOML in the schema it is read in (for `catalog export` and
//! `catalog list --format toml`).

use std::fmt::Write;

use super::{CatalogData, Direction, PortRange, Proto, Requirement, CORE_SCENARIO};

/// A TOML basic string: `"..."` with `\`, `"` and control characters escaped.
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key, bare when TOML allows it.
fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        s.to_string()
    } else {
        toml_str(s)
    }
}

fn ports(p: &[PortRange]) -> String {
    let v: Vec<String> = p
        .iter()
        .map(|r| {
            if r.lo == r.hi {
                r.lo.to_string()
            } else {
                format!("\"{}-{}\"", r.lo, r.hi)
            }
        })
        .collect();
    format!("[{}]", v.join(", "))
}

fn list(v: &[String]) -> String {
    let v: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", v.join(", "))
}

pub(crate) fn to_toml(d: &CatalogData) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# allowscope catalog. Schema: docs/catalog.md (or `allowscope catalog --help`).\n\
         # Check an edited copy with `allowscope catalog check FILE`; use it with `--catalog FILE`."
    );
    let _ = writeln!(o, "schema = 1");
    if let Some(t) = &d.title {
        let _ = writeln!(o, "title = {}", toml_str(t));
    }
    for (k, s) in &d.sources {
        let _ = writeln!(o, "\n[sources.{}]", toml_key(k));
        let _ = writeln!(o, "title = {}", toml_str(&s.title));
        if let Some(u) = &s.url {
            let _ = writeln!(o, "url = {}", toml_str(u));
        }
        if let Some(u) = &s.date {
            let _ = writeln!(o, "date = {}", toml_str(u));
        }
        if let Some(u) = &s.note {
            let _ = writeln!(o, "note = {}", toml_str(u));
        }
    }
    for (k, s) in &d.scenarios {
        let _ = writeln!(o, "\n[scenarios.{}]", toml_key(k));
        let _ = writeln!(o, "description = {}", toml_str(&s.description));
        let _ = writeln!(o, "default = {}", s.default);
    }
    for e in &d.entries {
        let _ = writeln!(o, "\n[[entry]]");
        let _ = writeln!(o, "id = {}", toml_str(&e.id));
        let _ = writeln!(o, "cloud = \"{}\"", e.cloud.name());
        let _ = writeln!(o, "group = {}", toml_str(&e.group));
        let _ = writeln!(o, "purpose = {}", toml_str(&e.purpose));
        let _ = writeln!(o, "host = {}", toml_str(&e.pattern.text));
        if e.proto != Proto::Tcp {
            let _ = writeln!(o, "proto = \"{}\"", e.proto.name());
        }
        let _ = writeln!(o, "ports = {}", ports(&e.ports));
        if e.requirement != Requirement::Required {
            let _ = writeln!(o, "requirement = \"{}\"", e.requirement.name());
        }
        if e.scenario != CORE_SCENARIO {
            let _ = writeln!(o, "scenario = {}", toml_str(&e.scenario));
        }
        if let Some(c) = &e.condition {
            let _ = writeln!(o, "condition = {}", toml_str(c));
        }
        if e.websocket {
            let _ = writeln!(o, "websocket = true");
        }
        if !e.sources.is_empty() {
            let _ = writeln!(o, "sources = {}", list(&e.sources));
        }
        if let Some(n) = &e.note {
            let _ = writeln!(o, "note = {}", toml_str(n));
        }
    }
    for t in &d.service_tags {
        let _ = writeln!(o, "\n[[service_tag]]");
        let _ = writeln!(o, "id = {}", toml_str(&t.id));
        let _ = writeln!(o, "tag = {}", toml_str(&t.tag));
        let _ = writeln!(o, "cloud = \"{}\"", t.cloud.name());
        if t.direction == Direction::Inbound {
            let _ = writeln!(o, "direction = \"inbound\"");
        }
        if t.proto != Proto::Tcp {
            let _ = writeln!(o, "proto = \"{}\"", t.proto.name());
        }
        let _ = writeln!(o, "ports = {}", ports(&t.ports));
        if t.requirement != Requirement::Required {
            let _ = writeln!(o, "requirement = \"{}\"", t.requirement.name());
        }
        if t.scenario != CORE_SCENARIO {
            let _ = writeln!(o, "scenario = {}", toml_str(&t.scenario));
        }
        if !t.purpose.is_empty() {
            let _ = writeln!(o, "purpose = {}", toml_str(&t.purpose));
        }
        if let Some(c) = &t.condition {
            let _ = writeln!(o, "condition = {}", toml_str(c));
        }
        if !t.sources.is_empty() {
            let _ = writeln!(o, "sources = {}", list(&t.sources));
        }
        if let Some(n) = &t.note {
            let _ = writeln!(o, "note = {}", toml_str(n));
        }
    }
    for z in &d.private_endpoint_zones {
        let _ = writeln!(o, "\n[[private_endpoint_zone]]");
        let _ = writeln!(o, "zone = {}", toml_str(&z.zone));
        let _ = writeln!(o, "cloud = \"{}\"", z.cloud.name());
        let _ = writeln!(o, "service = {}", toml_str(&z.service));
        if !z.sources.is_empty() {
            let _ = writeln!(o, "sources = {}", list(&z.sources));
        }
        if let Some(n) = &z.note {
            let _ = writeln!(o, "note = {}", toml_str(n));
        }
    }
    o
}

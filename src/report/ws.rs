//! The websockets to compute instances (`allowscope ws`, and the audit's websocket section):
//! per connection with its timeline, then the diagnosis per instance.

use std::io::{self, Write};

use super::FlowsFormat;
use crate::audit::ws::{WsFlow, WsInstance};
use crate::text::escape_terminal;

/// The `ws` command's JSON document.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct WsDocument<'a> {
    pub schema_version: u32,
    pub provenance: &'a crate::provenance::Provenance,
    /// Every websocket-capable connection, with its timeline.
    pub connections: &'a [WsFlow],
    /// The diagnosis per compute instance.
    pub instances: &'a [WsInstance],
}

/// Writes the connections and instances in the chosen format: the table for people, the JSON
/// document (`schema_version`, `connections`, `instances`), or one connection per line.
pub fn write_ws(
    out: &mut dyn Write,
    format: FlowsFormat,
    conns: &[WsFlow],
    instances: &[WsInstance],
    provenance: &crate::provenance::Provenance,
) -> io::Result<()> {
    let mut out = super::buffered(out);
    match format {
        FlowsFormat::Json => {
            super::pretty::to_writer_pretty(
                &mut out,
                &WsDocument {
                    schema_version: super::SCHEMA_VERSION,
                    provenance,
                    connections: conns,
                    instances,
                },
            )
            .map_err(io::Error::from)?;
            writeln!(out)?;
        }
        FlowsFormat::Ndjson => {
            for c in conns {
                let row = super::Labelled {
                    row: c,
                    labels: &provenance.labels,
                };
                crate::report::pretty::to_writer_compact(&mut out, &row)
                    .map_err(io::Error::from)?;
                writeln!(out)?;
            }
        }
        FlowsFormat::Table => write_text(&mut out, conns, instances)?,
    }
    out.flush()
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |s| format!("+{s:.3}s"))
}

/// The human report: one block per connection (with its timeline), then the diagnosis per
/// instance. Names and headers from the wire are escaped.
fn write_text(out: &mut dyn Write, conns: &[WsFlow], instances: &[WsInstance]) -> io::Result<()> {
    for c in conns {
        let mut what = c.transport.clone();
        if let Some(s) = c.connect_status {
            what.push_str(&format!(", CONNECT {s}"));
        }
        if let Some(s) = c.upgrade_status {
            what.push_str(&format!(", Upgrade {s}"));
        }
        if !c.alpn.is_empty() {
            what.push_str(&format!(", ALPN {}", c.alpn.join(",")));
        }
        writeln!(
            out,
            "{}  {} -> {} [{}]{}  {}{}",
            escape_terminal(&c.name),
            c.client,
            c.server,
            escape_terminal(&what),
            if c.leg == "upstream" {
                " (a proxy's upstream leg)"
            } else {
                ""
            },
            c.diagnosis.name(),
            c.timer
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
        )?;
        let t = &c.timeline;
        writeln!(
            out,
            "    start {}  handshake {}  last data client {} server {}  end {}  ({} / {} bytes{})",
            t.start,
            opt_s(t.handshake_s),
            opt_s(t.last_client_data_s),
            opt_s(t.last_server_data_s),
            match (t.end_s, &c.ended_by) {
                (Some(e), Some(by)) => format!(
                    "+{e:.3}s, {by} after {:.1} s quiet",
                    c.idle_before_end_s.unwrap_or(0.0)
                ),
                _ => "open at the end of the capture".to_string(),
            },
            c.bytes_from_client,
            c.bytes_from_server,
            if c.outcome != "established" {
                format!(", {}", c.outcome)
            } else {
                String::new()
            }
        )?;
        if let Some(p) = &c.upgrade_path {
            writeln!(out, "    path {}", escape_terminal(p))?;
        }
        if let Some(e) = &c.evidence {
            writeln!(out, "    {}", escape_terminal(e))?;
        }
        if let Some(m) = &c.rst_from_middlebox {
            writeln!(out, "    the RST was {m}")?;
        }
    }
    if !instances.is_empty() {
        writeln!(out, "Diagnosis per instance:")?;
    }
    for i in instances {
        write_instance(out, i, ("", "", ""))?;
    }
    Ok(())
}

/// One instance's diagnosis (tagged with its problem unless healthy) and the advice under it.
/// `paint`: escape sequences put around the name for a healthy / a broken instance and the
/// reset after it, or empty strings.
pub fn write_instance(
    out: &mut dyn Write,
    i: &WsInstance,
    paint: (&str, &str, &str),
) -> io::Result<()> {
    let (healthy, broken, reset) = paint;
    let (c, tag) = if i.problem == "healthy" {
        (healthy, String::new())
    } else {
        (broken, format!(" [{}]", i.problem))
    };
    writeln!(
        out,
        "  {c}{}{reset}: {}{tag}",
        escape_terminal(&i.name),
        escape_terminal(&i.diagnosis)
    )?;
    if let Some(a) = &i.advice {
        writeln!(out, "    -> {}", escape_terminal(a))?;
    }
    Ok(())
}

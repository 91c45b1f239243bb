//! Output of the `flows` command: a human table, JSON (one object with the file summaries and
//! flows) and NDJSON (one flow per line). Field names follow the JSON contract in README.md.

use std::io::{self, Write};

use serde::Serialize;

use crate::analyze::{FileResult, FileSummary};
use crate::flow::{Close, Dir, Flow, Proto};
use crate::time::{human_duration, rfc3339};

/// Version of the JSON documents this build writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct PerDir<T> {
    pub from_client: T,
    pub from_server: T,
}

#[derive(Serialize)]
pub struct TtlRange {
    pub min: u8,
    pub max: u8,
}

#[derive(Serialize)]
pub struct IcmpJson {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
    pub v6: bool,
    /// Who sent the error.
    pub from: String,
    /// True when the error came from the server's own address (e.g. a closed port), false when
    /// from a hop on the way (a router or firewall).
    pub from_server: bool,
    pub first_seen: String,
    /// ICMP errors credited to this flow in all.
    pub count: usize,
}

#[derive(Serialize)]
pub struct FlightJson {
    /// Contiguous bytes reassembled from the start of the direction.
    pub bytes: usize,
    /// Payload bytes the sender announced from the start (may exceed what was captured).
    pub announced: u64,
    /// The capture lacks bytes the sender sent inside the first flight (lost segment or cut).
    pub hole: bool,
    /// Offset at which the snap length first cut a segment.
    pub cut_at: Option<u32>,
    /// The sender went past the reassembly cap.
    pub capped: bool,
}

/// One flow as the JSON contract describes it.
#[derive(Serialize)]
pub struct FlowRecord<'a> {
    pub proto: &'static str,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub first_seen: String,
    pub last_seen: String,
    pub duration_s: f64,
    pub packets: PerDir<u64>,
    pub bytes: PerDir<u64>,
    pub payload_bytes: PerDir<u64>,
    pub history: &'a str,
    pub outcome: &'static str,
    /// SYNs sent by the client (TCP) or datagrams/requests sent by the client (UDP, ICMP).
    pub attempts: u64,
    pub close: Option<Close>,
    pub icmp: Option<IcmpJson>,
    pub ttl: PerDir<Option<TtlRange>>,
    pub truncated_packets: u64,
    pub first_flight: Option<PerDir<FlightJson>>,
    /// Finished early because the live-flow cap was reached.
    pub evicted: bool,
    pub file: &'a str,
}

fn ttl(d: &Dir) -> Option<TtlRange> {
    Some(TtlRange {
        min: d.ttl_min?,
        max: d.ttl_max?,
    })
}

fn flight(d: &Dir) -> FlightJson {
    FlightJson {
        bytes: d.stream.contiguous(),
        announced: d.stream.announced(),
        hole: d.stream.has_hole(),
        cut_at: d.stream.cut_at(),
        capped: d.stream.capped(),
    }
}

impl<'a> FlowRecord<'a> {
    pub fn new(f: &'a Flow, file: &'a str) -> Self {
        let [c, s] = &f.dirs;
        let icmp = f.icmp.first().map(|e| IcmpJson {
            icmp_type: e.icmp_type,
            code: e.code,
            v6: e.v6,
            from: e.from.to_string(),
            from_server: e.from == f.server.ip,
            first_seen: rfc3339(e.ts_ns),
            count: f.icmp.len(),
        });
        FlowRecord {
            proto: f.proto.name(),
            src_ip: f.client.ip.to_string(),
            src_port: f.client.port,
            dst_ip: f.server.ip.to_string(),
            dst_port: f.server.port,
            first_seen: rfc3339(f.first_ns),
            last_seen: rfc3339(f.last_ns),
            duration_s: (f.last_ns - f.first_ns) as f64 / 1e9,
            packets: PerDir {
                from_client: c.packets,
                from_server: s.packets,
            },
            bytes: PerDir {
                from_client: c.bytes,
                from_server: s.bytes,
            },
            payload_bytes: PerDir {
                from_client: c.payload_bytes,
                from_server: s.payload_bytes,
            },
            history: f.history.as_str(),
            outcome: f.outcome().name(),
            attempts: f.attempts(),
            close: f.close(),
            icmp,
            ttl: PerDir {
                from_client: ttl(c),
                from_server: ttl(s),
            },
            truncated_packets: f.cut_packets,
            first_flight: (f.proto == Proto::Tcp).then(|| PerDir {
                from_client: flight(c),
                from_server: flight(s),
            }),
            evicted: f.evicted,
            file,
        }
    }
}

/// Output format of the `flows` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowsFormat {
    Table,
    Json,
    Ndjson,
}

/// Writes the flows of all inputs in the chosen format. File summaries go into the JSON
/// document, or to `summary_out` (stderr) for the table and NDJSON formats.
pub fn write_flows(
    out: &mut dyn Write,
    summary_out: &mut dyn Write,
    results: &[FileResult],
    format: FlowsFormat,
) -> io::Result<()> {
    match format {
        FlowsFormat::Ndjson => {
            for r in results {
                for f in &r.flows {
                    serde_json::to_writer(&mut *out, &FlowRecord::new(f, &r.summary.file))?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            write_summaries(summary_out, results)?;
        }
        FlowsFormat::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                schema_version: u32,
                files: Vec<&'a FileSummary>,
                flows: Vec<FlowRecord<'a>>,
            }
            let doc = Doc {
                schema_version: SCHEMA_VERSION,
                files: results.iter().map(|r| &r.summary).collect(),
                flows: results
                    .iter()
                    .flat_map(|r| r.flows.iter().map(|f| FlowRecord::new(f, &r.summary.file)))
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            out.write_all(b"\n")?;
        }
        FlowsFormat::Table => {
            for r in results {
                if results.len() > 1 {
                    writeln!(out, "== {}", escape_terminal(&r.summary.file))?;
                }
                write_table(out, r)?;
            }
            out.flush()?;
            write_summaries(summary_out, results)?;
        }
    }
    out.flush()
}

fn write_table(out: &mut dyn Write, r: &FileResult) -> io::Result<()> {
    let rows: Vec<[String; 8]> = r
        .flows
        .iter()
        .map(|f| {
            let [c, s] = &f.dirs;
            let mut outcome = f.outcome().name().to_string();
            if matches!(f.outcome(), crate::flow::Outcome::NoAnswer) {
                outcome += &format!(" x{}", f.attempts());
            }
            if let Some(e) = f.icmp.first() {
                outcome += &format!(" icmp {}/{} from {}", e.icmp_type, e.code, e.from);
            }
            if let Some(cl) = f.close() {
                let by = match cl.by {
                    crate::flow::Side::Client => "client",
                    crate::flow::Side::Server => "server",
                };
                outcome += &format!(" ({} by {by})", cl.how);
            }
            [
                f.proto.name().to_string(),
                endpoint(&f.client),
                endpoint(&f.server),
                format!("{}/{}", c.packets, s.packets),
                format!("{}/{}", c.bytes, s.bytes),
                f.history.as_str().to_string(),
                human_duration(f.last_ns - f.first_ns),
                outcome,
            ]
        })
        .collect();
    let head = [
        "proto",
        "client",
        "server",
        "pkts c/s",
        "bytes c/s",
        "history",
        "duration",
        "outcome",
    ];
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &head)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

fn endpoint(e: &crate::flow::Endpoint) -> String {
    match e.ip {
        std::net::IpAddr::V4(a) => format!("{a}:{}", e.port),
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", e.port),
    }
}

/// One short block per file: packets, bytes, link types, truncated and skipped counts,
/// warnings and the error that ended it early.
pub fn write_summaries(out: &mut dyn Write, results: &[FileResult]) -> io::Result<()> {
    for r in results {
        let s = &r.summary;
        let Some(format) = s.format else {
            writeln!(
                out,
                "error: {}",
                escape_terminal(s.error.as_deref().unwrap_or("unreadable"))
            )?;
            continue;
        };
        let lts: Vec<String> = s
            .linktypes
            .iter()
            .map(|(lt, n)| format!("{} ({n})", linktype_name(*lt)))
            .collect();
        let comp = match s.compression {
            Some(crate::capture::Compression::Gzip) => " gzip",
            Some(crate::capture::Compression::Zstd) => " zstd",
            _ => "",
        };
        let skipped = s.skipped.not_ip
            + s.skipped.unsupported_linktype.values().sum::<u64>()
            + s.skipped.malformed.values().sum::<u64>();
        writeln!(
            out,
            "{}: {format}{comp}, {} packets, {} bytes, link types {}; {} flows, {} truncated packets, {} skipped",
            escape_terminal(&s.file),
            s.packets,
            s.wire_bytes,
            if lts.is_empty() { "-".to_string() } else { lts.join(", ") },
            s.flow_table.flows,
            s.truncated_packets,
            skipped,
        )?;
        if skipped > 0 {
            let mut parts = Vec::new();
            if s.skipped.not_ip > 0 {
                parts.push(format!("{} not IP", s.skipped.not_ip));
            }
            for (lt, n) in &s.skipped.unsupported_linktype {
                parts.push(format!(
                    "{n} of unsupported link type {}",
                    linktype_name(*lt)
                ));
            }
            for (why, n) in &s.skipped.malformed {
                parts.push(format!("{n} malformed ({why})"));
            }
            writeln!(out, "  skipped: {}", parts.join(", "))?;
        }
        if s.flow_table.evicted > 0 {
            writeln!(
                out,
                "  note: {} flows finished early because the flow table was full (--max-flows)",
                s.flow_table.evicted
            )?;
        }
        for w in &s.warnings {
            writeln!(out, "  warning: {}", escape_terminal(w))?;
        }
        if let Some(e) = &s.error {
            writeln!(out, "  error: {}", escape_terminal(e))?;
        }
    }
    Ok(())
}

/// Makes a string safe to print on a terminal: control characters (including ESC, so no
/// terminal escape sequence gets through), backslashes and Unicode bidi/format controls are
/// written as `\xNN` / `\u{NNNN}` escapes. Names that come from the wire or from file names
/// found in a directory pass through here before they reach a terminal.
pub fn escape_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || c == '\\'
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A readable name for a LINKTYPE value.
pub fn linktype_name(lt: u32) -> String {
    let name = match lt {
        0 => "null",
        1 => "ethernet",
        12 | 14 | 101 => "raw-ip",
        108 => "loop",
        9 | 50 => "ppp",
        113 => "linux-sll",
        228 => "ipv4",
        229 => "ipv6",
        276 => "linux-sll2",
        _ => return format!("linktype-{lt}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escaping() {
        assert_eq!(escape_terminal("plain.pcap"), "plain.pcap");
        assert_eq!(escape_terminal("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(escape_terminal("new\nline\ttab"), "new\\x0aline\\x09tab");
        assert_eq!(escape_terminal("back\\slash"), "back\\\\slash");
        assert_eq!(escape_terminal("rtl\u{202e}gnp.exe"), "rtl\\u{202e}gnp.exe");
        assert_eq!(escape_terminal("\u{85}"), "\\x85");
        assert_eq!(escape_terminal("ünïcode.pcap"), "ünïcode.pcap");
    }
}

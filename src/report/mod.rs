//! Output of the `flows` command: a human table, JSON (one object with the file summaries and
//! flows) and NDJSON (one flow per line). Field names follow the JSON contract in README.md.

pub mod allowlist;
pub mod audit;
pub mod dns;
pub mod html;
pub mod json;
pub mod markdown;
pub mod parquet;
pub mod pretty;
pub mod rules;
pub mod schema;
pub mod text;
pub mod ws;

pub use crate::decode::linktype_name;
pub use crate::proto::tls::alert_name;
pub use crate::text::{escape_terminal, ip_text, ips_text, push_ip};

use std::io::{self, Write};

use serde::Serialize;

use crate::flow::{Close, Dir, Proto};
use crate::pipeline::{FileResult, FileSummary};
use crate::proto::facts::{ConnectFacts, HttpFacts, NameSource, TlsFacts};
use crate::proto::quic::QuicFacts;
use crate::proto::{Described, HelloStatus};
use crate::time::{human_duration, rfc3339};

pub use crate::audit::SCHEMA_VERSION;

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "PerDir_{T}")]
pub struct PerDir<T> {
    pub from_client: T,
    pub from_server: T,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct TtlRange {
    pub min: u8,
    pub max: u8,
}

#[derive(Serialize, schemars::JsonSchema)]
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

#[derive(Serialize, schemars::JsonSchema)]
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
    /// Encrypted bypass: the offset of the first TLS ApplicationData record of a direction
    /// that is TLS records from its start; bytes after that record's header were counted but
    /// not kept (`bytes` ends there).
    pub encrypted_from: Option<u32>,
}

/// One flow as the JSON contract describes it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct FlowRecord<'a> {
    #[schemars(with = "crate::flow::Proto")]
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
    #[schemars(with = "crate::flow::Outcome")]
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
    /// The one name attributed to the flow and where it came from.
    pub name: Option<&'a str>,
    pub name_source: Option<NameSource>,
    /// For a DNS-derived name: the name asked, then the CNAMEs to the address's owner.
    pub dns_chain: Option<&'a [String]>,
    /// TLS ClientHello server_name (the outer name when `tls.ech`).
    pub sni: Option<&'a str>,
    pub alpn: Option<&'a [String]>,
    pub tls: Option<TlsJson<'a>>,
    pub http_host: Option<&'a str>,
    pub http: Option<&'a HttpFacts>,
    /// `host:port` of an HTTP CONNECT.
    pub connect_target: Option<String>,
    pub connect: Option<&'a ConnectFacts>,
    /// Status of the HTTP answer (the proxy's last answer for a CONNECT).
    pub http_status: Option<u16>,
    pub quic: Option<&'a QuicFacts>,
    /// The encapsulation layers of the flow's first packet, outermost first (empty for plain
    /// traffic). Every row has every key (schema version 2): engines read the rows as one table.
    pub encap: &'a [crate::decode::EncapLayer],
    /// NFLOG captures: the log prefix of the rule that logged the flow (null otherwise).
    pub nflog_prefix: Option<&'a str>,
    pub file: &'a str,
}

/// TLS facts as the JSON contract shows them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TlsJson<'a> {
    /// "complete", "truncated" (the capture cut the ClientHello) or "none" (no ClientHello).
    #[schemars(extend("enum" = ["complete", "truncated", "none"]))]
    pub client_hello: &'static str,
    /// Offered versions, e.g. ["1.3", "1.2"].
    pub versions: Vec<String>,
    pub ech: bool,
    /// Version the server chose, when a ServerHello was seen.
    pub server_version: Option<String>,
    pub server_hello: bool,
    pub server_alpn: Option<&'a str>,
    /// The first alert before the handshake finished: {side, level, description, name}.
    pub alert: Option<AlertJson>,
    pub cert_subject: Option<&'a str>,
    pub cert_issuer: Option<&'a str>,
    pub handshake_complete: bool,
    pub in_tunnel: bool,
    /// TLS began after a plaintext exchange (STARTTLS).
    pub starttls: bool,
    /// Bytes of the ClientHello present and needed, when truncated.
    pub truncated_have: Option<usize>,
    pub truncated_need: Option<usize>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct AlertJson {
    pub side: &'static str,
    pub level: &'static str,
    pub description: u8,
    pub name: &'static str,
}

/// "1.3", "1.2", ... for a TLS version number.
pub fn tls_version_name(v: u16) -> String {
    match v {
        0x0304 => "1.3".into(),
        0x0303 => "1.2".into(),
        0x0302 => "1.1".into(),
        0x0301 => "1.0".into(),
        0x0300 => "ssl3".into(),
        0x0002 => "ssl2".into(),
        v => format!("0x{v:04x}"),
    }
}

fn tls_json(t: &TlsFacts) -> TlsJson<'_> {
    let (status, hello, have, need) = match &t.client_hello {
        HelloStatus::Complete(h) => ("complete", Some(h), None, None),
        HelloStatus::Truncated {
            partial,
            have,
            need,
        } => ("truncated", Some(partial), Some(*have), Some(*need)),
        HelloStatus::NotTls => ("none", None, None, None),
    };
    TlsJson {
        client_hello: status,
        versions: hello.map_or_else(Vec::new, |h| {
            h.versions.iter().map(|v| tls_version_name(*v)).collect()
        }),
        ech: hello.is_some_and(|h| h.ech),
        server_version: t.server.version.map(tls_version_name),
        server_hello: t.server.server_hello,
        server_alpn: t.server.alpn.as_deref(),
        alert: t.early_alert().map(|(side, a)| AlertJson {
            side,
            level: if a.level == 2 { "fatal" } else { "warning" },
            description: a.description,
            name: alert_name(a.description),
        }),
        cert_subject: t.server.cert_subject.as_deref(),
        cert_issuer: t.server.cert_issuer.as_deref(),
        handshake_complete: t.handshake_complete,
        in_tunnel: t.in_tunnel,
        starttls: t.after_plaintext,
        truncated_have: have,
        truncated_need: need,
    }
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
        encrypted_from: d.stream.encrypted_from(),
    }
}

impl<'a> FlowRecord<'a> {
    pub fn new(f: &'a Described, file: &'a str) -> Self {
        let [c, s] = &f.dirs;
        let fx = &f.facts;
        let hello = fx.tls.as_ref().and_then(|t| t.client_hello.hello());
        let icmp = f.icmp().first().map(|e| IcmpJson {
            icmp_type: e.icmp_type,
            code: e.code,
            v6: e.v6,
            from: e.from.to_string(),
            from_server: e.from == f.server.ip,
            first_seen: rfc3339(e.ts_ns),
            count: f.icmp().len(),
        });
        FlowRecord {
            proto: f.proto.name(),
            src_ip: ip_text(f.client.ip),
            src_port: f.client.port,
            dst_ip: ip_text(f.server.ip),
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
            name: fx.name.as_deref(),
            name_source: fx.name_source,
            dns_chain: (!fx.dns_chain.is_empty()).then_some(fx.dns_chain.as_slice()),
            sni: hello.and_then(|h| h.sni.as_deref()),
            alpn: hello
                .map(|h| h.alpn.as_slice())
                .or_else(|| fx.quic.as_ref().map(|q| q.alpn.as_slice()))
                .filter(|a| !a.is_empty()),
            tls: fx.tls.as_deref().map(tls_json),
            http_host: fx.http.as_ref().and_then(|h| h.host.as_deref()),
            http: fx.http.as_deref(),
            connect_target: fx
                .connect
                .as_ref()
                .map(|c| format!("{}:{}", c.host, c.port)),
            connect: fx.connect.as_deref(),
            http_status: fx
                .connect
                .as_ref()
                .and_then(|c| c.statuses.last().copied())
                .or_else(|| fx.http.as_ref().and_then(|h| h.status)),
            quic: fx.quic.as_deref(),
            encap: f.encap(),
            nflog_prefix: f.nflog_prefix(),
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

/// A buffer over `out` for a writer that passes many small pieces (as serde_json does): it
/// takes them without a call through `dyn Write` each. Flush it at the end (into `out`).
pub(crate) fn buffered(out: &mut dyn Write) -> io::BufWriter<&mut dyn Write> {
    io::BufWriter::with_capacity(1 << 16, out)
}

/// Writes the flows of all inputs in the chosen format. File summaries go into the JSON
/// document, or to `summary_out` (stderr) for the table and NDJSON formats.
/// A row of NDJSON with the run's labels after its own fields (every row carries them, so
/// rows of many runs can be put in one table).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Labelled_{T}")]
pub struct Labelled<'a, T: Serialize> {
    #[serde(flatten)]
    pub row: T,
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

/// The `flows` command's JSON document.
#[derive(Serialize, schemars::JsonSchema)]
pub struct FlowsDocument<'a> {
    pub schema_version: u32,
    pub provenance: &'a crate::provenance::Provenance,
    /// Each input's summary.
    pub files: Vec<&'a FileSummary>,
    /// Every flow of every input, input by input in the order they were given.
    pub flows: Vec<FlowRecord<'a>>,
}

pub fn write_flows(
    out: &mut dyn Write,
    summary_out: &mut dyn Write,
    results: &[FileResult],
    format: FlowsFormat,
    provenance: &crate::provenance::Provenance,
) -> io::Result<()> {
    let out = &mut buffered(out);
    match format {
        FlowsFormat::Ndjson => {
            for r in results {
                for f in &r.flows {
                    crate::report::pretty::to_writer_compact(
                        &mut *out,
                        &Labelled {
                            row: FlowRecord::new(f, &r.summary.file),
                            labels: &r.summary.labels,
                        },
                    )?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            write_summaries(summary_out, results)?;
        }
        FlowsFormat::Json => {
            let doc = FlowsDocument {
                schema_version: SCHEMA_VERSION,
                provenance,
                files: results.iter().map(|r| &r.summary).collect(),
                flows: results
                    .iter()
                    .flat_map(|r| r.flows.iter().map(|f| FlowRecord::new(f, &r.summary.file)))
                    .collect(),
            };
            crate::report::pretty::to_writer_pretty(&mut *out, &doc)?;
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
    let rows: Vec<[String; 9]> = r
        .flows
        .iter()
        .map(|f| {
            let [c, s] = &f.dirs;
            let mut outcome = f.outcome().name().to_string();
            if matches!(f.outcome(), crate::flow::Outcome::NoAnswer) {
                outcome += &format!(" x{}", f.attempts());
            }
            if let Some(e) = f.icmp().first() {
                outcome += &format!(" icmp {}/{} from {}", e.icmp_type, e.code, e.from);
            }
            if let Some(cl) = f.close() {
                let by = match cl.by {
                    crate::flow::Side::Client => "client",
                    crate::flow::Side::Server => "server",
                };
                outcome += &format!(" ({} by {by})", cl.how);
            }
            let name = match (&f.facts.name, f.facts.name_source) {
                (Some(n), Some(src)) => {
                    // An ECH extension means the SNI may be the outer (cover) name.
                    let ech = f
                        .facts
                        .tls
                        .as_ref()
                        .and_then(|t| t.client_hello.hello())
                        .is_some_and(|h| h.ech);
                    let src = name_source_str(src);
                    let ech = if ech && src == "sni" {
                        ", ech outer"
                    } else {
                        ""
                    };
                    format!("{} ({src}{ech})", escape_terminal(n))
                }
                _ => "-".to_string(),
            };
            if let Some(t) = &f.facts.tls {
                if let HelloStatus::Truncated { have, need, .. } = t.client_hello {
                    outcome += &format!(" [ClientHello truncated {have}/{need}]");
                }
                if let Some((side, a)) = t.early_alert() {
                    outcome += &format!(" [{side} alert {}]", alert_name(a.description));
                }
            }
            if let Some(c) = &f.facts.connect {
                let st: Vec<String> = c.statuses.iter().map(u16::to_string).collect();
                outcome += &format!(" [CONNECT {}]", st.join(","));
            } else if let Some(st) = f.facts.http.as_ref().and_then(|h| h.status) {
                outcome += &format!(" [HTTP {st}]");
            }
            [
                f.proto.name().to_string(),
                endpoint(&f.client),
                endpoint(&f.server),
                name,
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
        "name",
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

/// An endpoint as text: `a.b.c.d:port`, or `[v6]:port`.
pub fn endpoint(e: &crate::flow::Endpoint) -> String {
    crate::text::socket_text(e.ip, e.port)
}

/// One short block per file: packets, bytes, link types, truncated and skipped counts,
/// warnings and the error that ended it early.
pub fn write_summaries(out: &mut dyn Write, results: &[FileResult]) -> io::Result<()> {
    for r in results {
        let s = &r.summary;
        let Some(format) = &s.format else {
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
        let skipped = s.skipped.total();
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
            writeln!(out, "  skipped: {}", skip_reasons(&s.skipped))?;
        }
        if s.flow_table.evicted > 0 {
            writeln!(
                out,
                "  note: {} flows finished early because the flow table was full (--max-flows)",
                s.flow_table.evicted
            )?;
        }
        let frag = &s.fragments;
        if frag.dropped_over_limit > 0 || frag.expired > 0 {
            writeln!(
                out,
                "  note: IP fragments lost: {} dropped over the reassembly limits, {} expired before their datagram was whole",
                frag.dropped_over_limit, frag.expired
            )?;
        }
        if s.flow_table.reassembly_budget_exhausted {
            writeln!(
                out,
                "  note: the reassembly budget ran out: some flows' first bytes were not kept (their names may be missing)"
            )?;
        }
        if s.names_not_taken > 0 {
            writeln!(
                out,
                "  note: {} flows carried a name that is no host name (over 253 octets or an empty label): not taken",
                s.names_not_taken
            )?;
        }
        if s.hellos_over_cap > 0 {
            writeln!(
                out,
                "  note: {} ClientHellos were longer than the reassembly cap: read in part, their SNI may be missing (raise --reassembly-cap)",
                s.hellos_over_cap
            )?;
        }
        if s.dns_unreadable > 0 {
            writeln!(
                out,
                "  note: {} UDP datagrams on port 53 could not be read as DNS",
                s.dns_unreadable
            )?;
        }
        if let Some(d) = s.interface_drops.filter(|&d| d > 0) {
            writeln!(
                out,
                "  note: {d} packets were dropped by the capture (kernel or interface) and are missing here: a blocked verdict may be a lost answer"
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

/// Why frames were skipped, as text (see [`crate::pipeline::SkipCounts::reasons`]).
pub fn skip_reasons(s: &crate::pipeline::SkipCounts) -> String {
    s.reasons()
}

/// What the audit's text report says of an input that lost frames: nothing when every frame
/// was decoded or the only ones skipped carry no IP (ARP, LLDP: normal on any link, and in the
/// summary on stderr); else how many were not and why, or (none decoded) "no frame of link
/// type N could be decoded".
pub fn undecoded_note(s: &FileSummary) -> Option<String> {
    let skipped = s.skipped.total();
    if skipped == 0 || (skipped == s.skipped.not_ip && skipped < s.packets) {
        return None;
    }
    // Raw, as the summary's warnings and error are: each writer escapes it once for its
    // medium (it was terminal-escaped here, then escaped again for Markdown and HTML).
    let file = &s.file;
    let why = skip_reasons(&s.skipped);
    Some(if skipped >= s.packets {
        format!("{file}: {} ({why})", nothing_decoded(s))
    } else {
        format!(
            "{file}: {skipped} of {} frames not decoded: {why}",
            s.packets
        )
    })
}

/// "no frame of link type 239 could be decoded" (see
/// [`crate::pipeline::FileSummary::nothing_decoded`]).
pub(crate) fn nothing_decoded(s: &FileSummary) -> String {
    s.nothing_decoded()
}

/// The JSON spelling of a name source.
pub fn name_source_str(s: NameSource) -> &'static str {
    match s {
        NameSource::Sni => "sni",
        NameSource::Connect => "connect",
        NameSource::HttpHost => "http-host",
        NameSource::Quic => "quic",
        NameSource::Dns => "dns",
        NameSource::DnsAnyClient => "dns-any-client",
        NameSource::Address => "address",
        NameSource::IpTag => "ip-tag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets the capture dropped (pcapng ISB here, libpcap's counters in `live`) are said in
    /// the summary: an answer among them would change a verdict.
    #[test]
    fn summary_tells_of_capture_drops() {
        use crate::capture::testutil::NgB;
        let summary = |drops: Option<u64>| {
            let mut ng = NgB::new(false).shb(false).idb(1, 65535, &[]);
            ng = ng.epb(0, 1_700_000_000_000_000, &[0u8; 60], 60);
            if drops.is_some() {
                ng = ng.isb(0, drops);
            }
            let reader = crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(
                ng.build(),
            )))
            .unwrap();
            let r = crate::pipeline::analyze_reader("t.pcapng".into(), reader, &Default::default());
            let mut out = Vec::new();
            write_summaries(&mut out, &[r]).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(summary(Some(7)).contains("  note: 7 packets were dropped by the capture"));
        assert!(!summary(Some(0)).contains("dropped by the capture"));
        assert!(!summary(None).contains("dropped by the capture"));
    }

    /// Lost fragments and an exhausted reassembly budget are said in the text summary too,
    /// not only in the JSON counters.
    #[test]
    fn summary_tells_of_lost_fragments_and_bytes() {
        let reader = crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(
            crate::capture::testutil::PcapB::new(false, true, 65535, 1).build(),
        )))
        .unwrap();
        let mut r = crate::pipeline::analyze_reader("t.pcap".into(), reader, &Default::default());
        let text = |r: &FileResult| {
            let mut out = Vec::new();
            write_summaries(&mut out, std::slice::from_ref(r)).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(!text(&r).contains("note:"), "{}", text(&r));
        r.summary.fragments.dropped_over_limit = 3;
        r.summary.fragments.expired = 2;
        r.summary.flow_table.reassembly_budget_exhausted = true;
        let t = text(&r);
        assert!(
            t.contains("IP fragments lost: 3 dropped over the reassembly limits, 2 expired"),
            "{t}"
        );
        assert!(t.contains("the reassembly budget ran out"), "{t}");
    }

    #[test]
    fn endpoints_read_as_display_writes_them() {
        // The address and port text itself is tested in `crate::text`.
        let e = |ip: &str, port| crate::flow::Endpoint {
            ip: ip.parse().unwrap(),
            port,
        };
        assert_eq!(endpoint(&e("0.0.0.0", 0)), "0.0.0.0:0");
        assert_eq!(endpoint(&e("2001:db8::1", 443)), "[2001:db8::1]:443");
        assert_eq!(e("192.0.2.10", 53).text(), "192.0.2.10:53");
    }
}

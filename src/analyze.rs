//! One pass over one input: read frames, decode, reassemble IP fragments, track flows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::{open_input, CaptureReader, Compression, Input, ReadError};
use crate::decode::{decode, decode_transport, DefragStats, Defragmenter, Skip, L4};
use crate::flow::{Flow, FlowConfig, FlowTable, TableStats};
use crate::proto::dns::{parse_message, DnsMessage};
use crate::proto::facts::{extract, DnsMap};

/// What was skipped while decoding, by reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SkipCounts {
    /// Frames of link types we do not decode, per link type.
    pub unsupported_linktype: BTreeMap<u32, u64>,
    /// Frames that carry no IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames too short or inconsistent to read an IP header, per reason.
    pub malformed: BTreeMap<&'static str, u64>,
}

/// IP fragment reassembly counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FragmentCounts {
    pub fragments: u64,
    pub reassembled: u64,
    pub expired: u64,
    pub dropped_over_limit: u64,
    pub overlaps: u64,
}

impl From<&DefragStats> for FragmentCounts {
    fn from(s: &DefragStats) -> Self {
        FragmentCounts {
            fragments: s.fragments,
            reassembled: s.completed,
            expired: s.expired,
            dropped_over_limit: s.dropped_over_limit,
            overlaps: s.overlaps,
        }
    }
}

/// The per-file summary: what was read, what was skipped, what went wrong.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub file: String,
    /// "pcap", "pcap-ns" or "pcapng"; null when the file could not be opened.
    pub format: Option<&'static str>,
    pub compression: Option<Compression>,
    pub packets: u64,
    /// Bytes of the (decompressed) capture stream read.
    pub file_bytes: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    /// Frames per link type.
    pub linktypes: BTreeMap<u32, u64>,
    /// Packets the snap length cut short (their parsed layers were kept).
    pub truncated_packets: u64,
    pub skipped: SkipCounts,
    pub skipped_blocks: u64,
    pub interface_drops: Option<u64>,
    pub fragments: FragmentCounts,
    pub flow_table: TableStats,
    pub warnings: Vec<String>,
    /// Why reading stopped early (file, byte offset, what was wrong), if it did.
    pub error: Option<String>,
}

impl FileSummary {
    fn empty(file: String) -> Self {
        FileSummary {
            file,
            format: None,
            compression: None,
            packets: 0,
            file_bytes: 0,
            captured_bytes: 0,
            wire_bytes: 0,
            linktypes: BTreeMap::new(),
            truncated_packets: 0,
            skipped: SkipCounts::default(),
            skipped_blocks: 0,
            interface_drops: None,
            fragments: FragmentCounts::default(),
            flow_table: TableStats::default(),
            warnings: Vec::new(),
            error: None,
        }
    }
}

/// One DNS message seen in a capture, with where it travelled.
#[derive(Debug, Clone)]
pub struct DnsEvent {
    pub ts_ns: i64,
    /// The side that asked (destination of a response, source of a query).
    pub client: std::net::IpAddr,
    pub client_port: u16,
    pub server: std::net::IpAddr,
    pub server_port: u16,
    /// "udp" or "tcp".
    pub transport: &'static str,
    /// TTL / hop limit and IPv4 identification of the datagram (UDP), to recognise the same
    /// datagram captured before and after a router.
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub message: DnsMessage,
}

/// Everything one input produced.
pub struct FileResult {
    pub summary: FileSummary,
    /// Finished flows in first-seen order, with their application facts.
    pub flows: Vec<Flow>,
    /// DNS messages in capture order (UDP as they came; TCP when their flow finished).
    pub dns: Vec<DnsEvent>,
}

/// Reads one input to the end (or to the first unrecoverable error) and returns its flows.
pub fn analyze_input(input: &Input, cfg: &FlowConfig) -> FileResult {
    let name = input.display();
    match open_input(input) {
        Ok(reader) => analyze_reader(name, reader, cfg),
        Err(e) => {
            let mut summary = FileSummary::empty(name.clone());
            summary.error = Some(format!("{name}: {e}"));
            FileResult {
                summary,
                flows: Vec::new(),
                dns: Vec::new(),
            }
        }
    }
}

/// Bytes of capture streams read so far by every reader in this process (for progress
/// displays; updated every few thousand frames, so it costs nothing per packet).
pub static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reads an opened capture to the end and returns its flows.
pub fn analyze_reader(name: String, mut reader: CaptureReader, cfg: &FlowConfig) -> FileResult {
    let mut summary = FileSummary::empty(name.clone());
    let mut table = FlowTable::new(cfg.clone());
    let mut defrag = Defragmenter::default();
    let mut flows: Vec<Flow> = Vec::new();
    let mut pending: Vec<Flow> = Vec::new();
    let mut dns_map = DnsMap::default();
    let mut dns: Vec<DnsEvent> = Vec::new();
    let mut truncated = 0u64;
    let mut last_defrag_sweep = i64::MIN;
    let mut reported = 0u64;
    let mut frames = 0u32;
    let error: Option<ReadError> = loop {
        frames = frames.wrapping_add(1);
        if frames % 4096 == 0 {
            let now = reader.stats().stream_bytes;
            BYTES_READ.fetch_add(
                now.saturating_sub(reported),
                std::sync::atomic::Ordering::Relaxed,
            );
            reported = now;
        }
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let cut = (frame.data.len() as u64) < frame.orig_len as u64;
        match decode(frame.linktype, frame.data) {
            Ok(pkt) => {
                if pkt.truncated || cut {
                    truncated += 1;
                }
                let cut = cut || pkt.truncated;
                let mut feed = |ip: &crate::decode::IpHeader, l4: &L4<'_>, cut: bool| {
                    if let L4::Udp(u) = l4 {
                        if u.src_port == 53 || u.dst_port == 53 {
                            udp_dns(frame.ts_ns, ip, u, &mut dns_map, &mut dns);
                        }
                    }
                    table.packet(frame.ts_ns, frame.orig_len, cut, ip, l4, &mut |f| {
                        pending.push(f)
                    });
                };
                if let L4::Fragment(fr) = &pkt.l4 {
                    if frame.ts_ns > last_defrag_sweep.saturating_add(1_000_000_000) {
                        defrag.expire(frame.ts_ns);
                        last_defrag_sweep = frame.ts_ns;
                    }
                    if let Some(whole) = defrag.push(frame.ts_ns, &pkt.ip, fr) {
                        let (l4, t) = decode_transport(whole.ip, &whole.data);
                        feed(&whole.ip, &l4, cut || t);
                    }
                } else {
                    feed(&pkt.ip, &pkt.l4, cut);
                }
            }
            Err(Skip::UnsupportedLinkType(lt)) => {
                *summary.skipped.unsupported_linktype.entry(lt).or_default() += 1;
            }
            Err(Skip::NotIp(_)) => summary.skipped.not_ip += 1,
            Err(Skip::Malformed(why)) => *summary.skipped.malformed.entry(why).or_default() += 1,
        }
        if !pending.is_empty() {
            finish_flows(&mut pending, &mut flows, &mut dns_map, &mut dns, cfg);
        }
    };
    BYTES_READ.fetch_add(
        reader.stats().stream_bytes.saturating_sub(reported),
        std::sync::atomic::Ordering::Relaxed,
    );
    table.finish(&mut |f| pending.push(f));
    finish_flows(&mut pending, &mut flows, &mut dns_map, &mut dns, cfg);
    let st = reader.stats();
    summary.format = Some(reader.format().name());
    summary.compression = Some(reader.compression());
    summary.packets = st.frames;
    summary.file_bytes = st.stream_bytes;
    summary.captured_bytes = st.captured_bytes;
    summary.wire_bytes = st.wire_bytes;
    summary.linktypes = st.linktypes.clone();
    summary.truncated_packets = truncated;
    summary.skipped_blocks = st.skipped_blocks;
    summary.interface_drops = st.interface_drops;
    summary.fragments = defrag.stats().into();
    summary.flow_table = table.stats().clone();
    summary.warnings = reader
        .warnings()
        .iter()
        .map(|w| format!("{name}: {w}"))
        .collect();
    summary.error = error.map(|e| format!("{name}: {e}"));
    flows.sort_by(crate::flow::order);
    dns.sort_by_key(|e| e.ts_ns);
    FileResult {
        summary,
        flows,
        dns,
    }
}

/// Runs the extractors on flows the table finished, then frees their buffers.
fn finish_flows(
    pending: &mut Vec<Flow>,
    flows: &mut Vec<Flow>,
    dns_map: &mut DnsMap,
    dns: &mut Vec<DnsEvent>,
    cfg: &FlowConfig,
) {
    for mut f in pending.drain(..) {
        if f.proto == crate::flow::Proto::Tcp && f.server.port == 53 {
            tcp_dns(&f, dns_map, dns);
        }
        extract(&mut f, dns_map);
        if !cfg.keep_first_flight {
            f.release_buffers();
        }
        flows.push(f);
    }
}

fn udp_dns(
    ts: i64,
    ip: &crate::decode::IpHeader,
    u: &crate::decode::Udp<'_>,
    map: &mut DnsMap,
    out: &mut Vec<DnsEvent>,
) {
    let Ok(msg) = parse_message(u.payload) else {
        return;
    };
    let (client, cport, server, sport) = if msg.response {
        (ip.dst, u.dst_port, ip.src, u.src_port)
    } else {
        (ip.src, u.src_port, ip.dst, u.dst_port)
    };
    // The same datagram captured on both legs of a router or firewall is one message: the
    // copy is identical, from the same endpoints, within 100 ms, with the same IPv4 ID and a
    // different TTL (the router decremented it). A duplicate the sender really sent twice
    // keeps its TTL and stays (as Zeek and tshark count it); a client's retry comes later.
    let copy = out.iter().rev().take(8).any(|e| {
        e.transport == "udp"
            && (ts - e.ts_ns).abs() < 100_000_000
            && e.ttl != ip.ttl
            && e.ip_id == ip.ip_id
            && e.client == client
            && e.client_port == cport
            && e.server == server
            && e.server_port == sport
            && e.message == msg
    });
    if copy {
        return;
    }
    map.add_response(ts, client, &msg);
    out.push(DnsEvent {
        ts_ns: ts,
        client,
        client_port: cport,
        server,
        server_port: sport,
        transport: "udp",
        ttl: ip.ttl,
        ip_id: ip.ip_id,
        message: msg,
    });
}

/// DNS over TCP: the messages of each direction's first flight (queries from the client,
/// responses from the server), timed at the flow's first payload in that direction.
fn tcp_dns(f: &Flow, map: &mut DnsMap, out: &mut Vec<DnsEvent>) {
    for (d, dir) in f.dirs.iter().enumerate() {
        let parsed = crate::proto::dns::parse_tcp_stream(dir.stream.bytes(), dir.stream.has_hole());
        let ts = dir.first_payload_ns.unwrap_or(f.first_ns);
        for msg in parsed.messages {
            if d == 1 {
                map.add_response(ts, f.client.ip, &msg);
            }
            out.push(DnsEvent {
                ts_ns: ts,
                client: f.client.ip,
                client_port: f.client.port,
                server: f.server.ip,
                server_port: f.server.port,
                transport: "tcp",
                ttl: 0,
                ip_id: None,
                message: msg,
            });
        }
    }
}

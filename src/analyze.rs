//! One pass over one input: read frames, decode, reassemble IP fragments, track flows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::{open_input, CaptureReader, Compression, Frame, Input, ReadError};
use crate::decode::{decode, decode_transport, tcp_flags, DefragStats, Defragmenter, Skip, L4};
use crate::flow::{Flow, FlowConfig, FlowTable, TableStats};
use crate::proto::dns::{parse_message_lenient, worth_keeping, DnsMessage};
use crate::proto::facts::extract;

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
    /// Finished flows in first-seen order, with their application facts. Boxed as the flow
    /// table made them: a flow is large, and moving every one into a new vector costs more
    /// than the indirection.
    #[allow(clippy::vec_box)]
    pub flows: Vec<Box<Flow>>,
    /// DNS messages in time order (a message over TCP at the first payload of its direction),
    /// copies of one datagram captured on both sides of a router removed.
    pub dns: Vec<DnsEvent>,
}

/// Reads one input to the end (or to the first unrecoverable error) and returns its flows.
pub fn analyze_input(input: &Input, cfg: &FlowConfig) -> FileResult {
    analyze_input_with(input, cfg, 1, false)
}

/// Like [`analyze_input`], with the packets split among `workers` threads (see
/// [`crate::split`]); the result is the same for any number. A plain file is memory-mapped
/// when `map` is true, so that no frame is copied from the kernel (it must not be truncated
/// while it is read).
pub fn analyze_input_with(
    input: &Input,
    cfg: &FlowConfig,
    workers: usize,
    map: bool,
) -> FileResult {
    let name = input.display();
    let opened = match input {
        Input::File(p) if map => CaptureReader::open_mmap(p),
        _ => open_input(input),
    };
    match opened {
        Ok(reader) => crate::split::analyze_reader_split(name, reader, cfg, workers),
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

/// Adds what `reader` read since `reported` to [`BYTES_READ`].
pub(crate) fn report_bytes(reader: &CaptureReader, reported: &mut u64) {
    let now = reader.stats().stream_bytes;
    BYTES_READ.fetch_add(
        now.saturating_sub(*reported),
        std::sync::atomic::Ordering::Relaxed,
    );
    *reported = now;
}

/// Reads an opened capture to the end and returns its flows (on this thread).
pub fn analyze_reader(name: String, reader: CaptureReader, cfg: &FlowConfig) -> FileResult {
    read_all(name, reader, cfg, None)
}

/// A consumer of snapshots of an input still being read (see [`analyze_reader_viewed`]).
pub type View<'a> = &'a mut dyn FnMut(FileResult);

/// Like [`analyze_reader`], and about every `every` of wall time (checked as frames arrive)
/// hands `view` a snapshot of the input so far: the flows finished so far and copies of the
/// live ones with their facts, named from the DNS seen so far, as the final result would show
/// them if the input ended there. A snapshot copies every flow, so the interval stretches to
/// four times what the last snapshot took: the view never costs more than a fifth of the time.
/// `every` zero takes a snapshot before every frame (for tests).
pub fn analyze_reader_viewed(
    name: String,
    reader: CaptureReader,
    cfg: &FlowConfig,
    every: std::time::Duration,
    view: View<'_>,
) -> FileResult {
    read_all(name, reader, cfg, Some((every, view)))
}

fn read_all(
    name: String,
    mut reader: CaptureReader,
    cfg: &FlowConfig,
    mut view: Option<(std::time::Duration, View<'_>)>,
) -> FileResult {
    let mut worker = Worker::new(cfg, 1);
    let mut clock = SweepClock::default();
    let mut reported = 0u64;
    let mut seq = 0u64;
    let mut next_view = std::time::Instant::now();
    let error: Option<ReadError> = loop {
        if let Some((every, v)) = view.as_mut() {
            let now = std::time::Instant::now();
            if now >= next_view {
                let part = worker.snapshot();
                v(finish_result(
                    name.clone(),
                    &reader,
                    None,
                    vec![part],
                    SkipCounts::default(),
                    None,
                ));
                let cost = now.elapsed();
                if !every.is_zero() {
                    next_view = std::time::Instant::now() + (*every).max(cost * 4);
                }
            }
        }
        if seq % 4096 == 4095 {
            report_bytes(&reader, &mut reported);
        }
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        if let Some(now) = clock.tick(frame.ts_ns) {
            worker.sweep(seq, now);
        }
        worker.frame(seq, &frame, i64::MIN);
        seq += 1;
    };
    report_bytes(&reader, &mut reported);
    let part = worker.finish();
    let peak = part.table.peak_live;
    finish_result(
        name,
        &reader,
        error,
        vec![part],
        SkipCounts::default(),
        Some(peak),
    )
}

/// When idle flows are finished: at the first frame, then at the first frame whose time is a
/// second or more past the last sweep (the latest time seen so far counts, so a frame from the
/// past does not move it back). One clock drives every worker of an input, so each worker's
/// table sweeps at the same points of the capture as a single table would.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepClock {
    now: i64,
    next: i64,
}

impl Default for SweepClock {
    fn default() -> Self {
        SweepClock {
            now: i64::MIN,
            next: i64::MIN,
        }
    }
}

impl SweepClock {
    /// Advances to a frame's time; `Some(now)` when a sweep is due before that frame.
    #[inline]
    pub(crate) fn tick(&mut self, ts_ns: i64) -> Option<i64> {
        if ts_ns > self.now {
            self.now = ts_ns;
        }
        if self.now >= self.next {
            self.next = self.now.saturating_add(crate::flow::SWEEP_EVERY_NS);
            return Some(self.now);
        }
        None
    }
}

/// The per-packet half of the pipeline: decode, defragment, flow table, protocol extractors,
/// DNS messages. One per input, or one per worker thread when an input is split (each worker
/// sees every packet of its flows, see `crate::split`).
pub(crate) struct Worker {
    keep_first_flight: bool,
    table: FlowTable,
    defrag: Defragmenter,
    flows: Finished,
    pending: Finished,
    /// DNS messages over UDP with the sequence number of their frame, over TCP as their flows
    /// finished.
    udp_dns: Vec<(u64, DnsEvent)>,
    tcp_dns: Vec<DnsEvent>,
    truncated: u64,
    skipped: SkipCounts,
    /// The latest time of any fragment of the input so far: fragment reassembly expires by it.
    frag_now: i64,
    /// Addresses seen with MAC addresses, to tie a dual-stack host's addresses together.
    seen: crate::names::Sightings,
}

/// Finished flows, boxed as the flow table held them: a flow is large, and moving the box
/// instead of the flow from the table to the sorted result saves copying each several times.
#[allow(clippy::vec_box)]
type Finished = Vec<Box<Flow>>;

/// What one worker produced.
pub(crate) struct Part {
    flows: Finished,
    udp_dns: Vec<(u64, DnsEvent)>,
    tcp_dns: Vec<DnsEvent>,
    truncated: u64,
    skipped: SkipCounts,
    fragments: DefragStats,
    table: TableStats,
    seen: crate::names::Sightings,
}

impl Worker {
    /// A worker that is one of `share`: its table and defragmenter get that share of the
    /// live-flow cap and of the buffer budgets, so the process keeps to the configured bounds.
    pub(crate) fn new(cfg: &FlowConfig, share: usize) -> Worker {
        let share = share.max(1);
        let mine = FlowConfig {
            max_flows: (cfg.max_flows / share).max(1),
            reassembly_budget: cfg.reassembly_budget / share,
            ..cfg.clone()
        };
        Worker {
            keep_first_flight: cfg.keep_first_flight,
            table: FlowTable::with_external_clock(mine),
            defrag: Defragmenter::new(
                crate::decode::defrag_defaults::MAX_BYTES / share,
                (crate::decode::defrag_defaults::MAX_DATAGRAMS / share).max(1),
                crate::decode::defrag_defaults::TIMEOUT_NS,
            ),
            flows: Vec::new(),
            pending: Vec::new(),
            udp_dns: Vec::new(),
            tcp_dns: Vec::new(),
            truncated: 0,
            skipped: SkipCounts::default(),
            frag_now: i64::MIN,
            seen: Default::default(),
        }
    }

    /// Finishes idle flows at capture time `now`, before frame `seq`.
    pub(crate) fn sweep(&mut self, seq: u64, now: i64) {
        self.table.set_frame(seq);
        let pending = &mut self.pending;
        self.table.sweep_at(now, &mut |f| pending.push(f));
        if !self.pending.is_empty() {
            self.finish_pending();
        }
    }

    /// Accounts frame number `seq` of the input. `frag_now` is the latest time of any
    /// fragment of the input so far, this one included, when other workers saw some of them
    /// (`i64::MIN` when this worker sees every frame).
    pub(crate) fn frame(&mut self, seq: u64, frame: &Frame<'_>, frag_now: i64) {
        self.table.set_frame(seq);
        let cut = (frame.data.len() as u64) < frame.orig_len as u64;
        match decode(frame.linktype, frame.data) {
            Ok(pkt) => {
                if pkt.truncated || cut {
                    self.truncated += 1;
                }
                let cut = cut || pkt.truncated;
                let outer = crate::flow::Outer {
                    nflog_prefix: pkt.nflog_prefix(frame.data),
                    encap_frame: (pkt.encap_depth > 0).then_some((frame.linktype, frame.data)),
                };
                let (table, pending, dns) = (&mut self.table, &mut self.pending, &mut self.udp_dns);
                let seen = &mut self.seen;
                // MAC addresses are the host's only on a plain frame (a tunnel's are its
                // endpoints').
                let link = (pkt.encap_depth == 0).then_some(frame);
                let mut feed = |ip: &crate::decode::IpHeader, l4: &L4<'_>, cut: bool| {
                    if let L4::Udp(u) = l4 {
                        if u.src_port == 53 || u.dst_port == 53 {
                            if let Some(e) = udp_dns(frame.ts_ns, ip, u) {
                                sight(seen, link, ip, !e.message.response);
                                dns.push((seq, e));
                            }
                        }
                    }
                    match l4 {
                        // A connection's first SYN, and neighbour discovery (133-136), say
                        // which MAC address the sender's address is on.
                        L4::Tcp(t)
                            if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN =>
                        {
                            sight(seen, link, ip, true)
                        }
                        L4::Icmp(i) if i.v6 && (133..=136).contains(&i.icmp_type) => {
                            sight(seen, link, ip, true)
                        }
                        _ => {}
                    }
                    table.packet_outer(
                        frame.ts_ns,
                        frame.orig_len,
                        cut,
                        ip,
                        l4,
                        &outer,
                        &mut |f| pending.push(f),
                    );
                };
                if let L4::Fragment(fr) = &pkt.l4 {
                    self.frag_now = self.frag_now.max(frag_now).max(frame.ts_ns);
                    self.defrag.expire(self.frag_now);
                    if let Some(whole) = self.defrag.push(frame.ts_ns, &pkt.ip, fr) {
                        let (l4, t) = decode_transport(whole.ip, &whole.data);
                        feed(&whole.ip, &l4, cut || t);
                    }
                } else {
                    feed(&pkt.ip, &pkt.l4, cut);
                }
            }
            Err(skip) => {
                if let Skip::NotIp(crate::decode::ethertype::ARP) = skip {
                    let at = match frame.linktype {
                        1 => 14,
                        113 => 16,
                        276 => 20,
                        _ => usize::MAX,
                    };
                    if let Some(s) = frame.data.get(at..).and_then(crate::names::arp_sender) {
                        self.seen.insert(s);
                    }
                }
                self.skipped.count(skip)
            }
        }
        if !self.pending.is_empty() {
            self.finish_pending();
        }
    }

    /// Runs the extractors on flows the table finished, then frees their buffers.
    fn finish_pending(&mut self) {
        for mut f in self.pending.drain(..) {
            if f.proto == crate::flow::Proto::Tcp && f.server.port == 53 {
                tcp_dns(&f, &mut self.tcp_dns);
            }
            extract(&mut f);
            if !self.keep_first_flight {
                f.release_buffers();
            }
            self.flows.push(f);
        }
    }

    /// What [`Worker::finish`] would return if the input ended now, leaving the worker as it
    /// is: finished flows, and copies of the live ones with their facts extracted.
    pub(crate) fn snapshot(&self) -> Part {
        let mut flows = self.flows.clone();
        let mut tcp_msgs = self.tcp_dns.clone();
        for f in self.table.live_flows() {
            let mut f = f.clone();
            if f.proto == crate::flow::Proto::Tcp && f.server.port == 53 {
                tcp_dns(&f, &mut tcp_msgs);
            }
            extract(&mut f);
            f.release_buffers();
            flows.push(Box::new(f));
        }
        Part {
            flows,
            udp_dns: self.udp_dns.clone(),
            tcp_dns: tcp_msgs,
            truncated: self.truncated,
            skipped: self.skipped.clone(),
            fragments: *self.defrag.stats(),
            table: self.table.stats().clone(),
            seen: self.seen.clone(),
        }
    }

    /// Finishes every live flow (end of input).
    pub(crate) fn finish(mut self) -> Part {
        let pending = &mut self.pending;
        self.table.finish(&mut |f| pending.push(f));
        self.finish_pending();
        Part {
            flows: self.flows,
            udp_dns: self.udp_dns,
            tcp_dns: self.tcp_dns,
            truncated: self.truncated,
            skipped: self.skipped,
            fragments: *self.defrag.stats(),
            table: self.table.stats().clone(),
            seen: self.seen,
        }
    }
}

impl SkipCounts {
    /// Frames skipped for any reason.
    pub fn total(&self) -> u64 {
        self.not_ip
            + self.unsupported_linktype.values().sum::<u64>()
            + self.malformed.values().sum::<u64>()
    }

    pub(crate) fn count(&mut self, skip: Skip) {
        match skip {
            Skip::UnsupportedLinkType(lt) => *self.unsupported_linktype.entry(lt).or_default() += 1,
            Skip::NotIp(_) => self.not_ip += 1,
            Skip::Malformed(why) => *self.malformed.entry(why).or_default() += 1,
        }
    }

    fn add(&mut self, o: SkipCounts) {
        for (k, v) in o.unsupported_linktype {
            *self.unsupported_linktype.entry(k).or_default() += v;
        }
        self.not_ip += o.not_ip;
        for (k, v) in o.malformed {
            *self.malformed.entry(k).or_default() += v;
        }
    }
}

/// Puts the parts of one input together (in any order of parts: the result is the same) and
/// runs the DNS naming pass. `skipped` holds what the reader skipped itself; `peak` is the
/// table's own peak when one table held every flow (else it is counted from the flows' lives).
pub(crate) fn finish_result(
    name: String,
    reader: &CaptureReader,
    error: Option<ReadError>,
    parts: Vec<Part>,
    mut skipped: SkipCounts,
    peak: Option<u64>,
) -> FileResult {
    let mut summary = FileSummary::empty(name.clone());
    let mut flows = Vec::new();
    let (mut udp_dns, mut tcp_dns) = (Vec::new(), Vec::new());
    let mut seen = crate::names::Sightings::default();
    let mut frag = DefragStats::default();
    let mut table = TableStats::default();
    let mut truncated = 0;
    for p in parts {
        if flows.is_empty() {
            flows = p.flows;
        } else {
            flows.extend(p.flows);
        }
        udp_dns.extend(p.udp_dns);
        tcp_dns.extend(p.tcp_dns);
        seen.extend(p.seen);
        truncated += p.truncated;
        skipped.add(p.skipped);
        frag.completed += p.fragments.completed;
        frag.expired += p.fragments.expired;
        frag.dropped_over_limit += p.fragments.dropped_over_limit;
        frag.overlaps += p.fragments.overlaps;
        frag.fragments += p.fragments.fragments;
        table.flows += p.table.flows;
        table.evicted += p.table.evicted;
        table.icmp_errors_unmatched += p.table.icmp_errors_unmatched;
        table.icmp_errors_unreadable += p.table.icmp_errors_unreadable;
        table.icmp_other += p.table.icmp_other;
        table.other_proto += p.table.other_proto;
        table.reassembly_budget_exhausted |= p.table.reassembly_budget_exhausted;
    }
    crate::flow::sort_flows(&mut flows);
    table.peak_live = peak.unwrap_or_else(|| crate::flow::peak_live(&flows));
    let dns = crate::names::name_from_dns(&mut flows, udp_dns, tcp_dns, &seen);
    let st = reader.stats();
    summary.format = Some(reader.format().name());
    summary.compression = Some(reader.compression());
    summary.packets = st.frames;
    summary.file_bytes = st.stream_bytes;
    summary.captured_bytes = st.captured_bytes;
    summary.wire_bytes = st.wire_bytes;
    summary.linktypes = st.linktypes.clone();
    summary.truncated_packets = truncated;
    summary.skipped = skipped;
    summary.skipped_blocks = st.skipped_blocks;
    summary.interface_drops = st.interface_drops;
    summary.fragments = (&frag).into();
    summary.flow_table = table;
    summary.warnings = reader
        .warnings()
        .iter()
        .map(|w| format!("{name}: {w}"))
        .collect();
    summary.error = error.map(|e| format!("{name}: {e}"));
    // Nothing silent: a capture none of whose frames could be decoded is an error (exit 2),
    // not an empty report.
    if summary.error.is_none() && summary.packets > 0 && summary.skipped.total() >= summary.packets
    {
        summary.error = Some(format!(
            "{name}: {} ({})",
            crate::report::nothing_decoded(&summary),
            crate::report::skip_reasons(&summary.skipped)
        ));
    }
    FileResult {
        summary,
        flows,
        dns,
    }
}

/// Notes the MAC address `ip`'s source (`from_source`) or destination was on in `frame`.
fn sight(
    seen: &mut crate::names::Sightings,
    frame: Option<&Frame<'_>>,
    ip: &crate::decode::IpHeader,
    from_source: bool,
) {
    let Some(frame) = frame else { return };
    let (src, dst) = crate::names::frame_macs(frame.linktype, frame.data);
    let pair = if from_source {
        src.map(|m| (ip.src, m))
    } else {
        dst.map(|m| (ip.dst, m))
    };
    if let Some(p) = pair {
        seen.insert(p);
    }
}

fn udp_dns(ts: i64, ip: &crate::decode::IpHeader, u: &crate::decode::Udp<'_>) -> Option<DnsEvent> {
    // A response cut by the snap length or malformed is still an answer (its header says
    // how it was answered); a query counts when its question was read.
    let msg = parse_message_lenient(u.payload).filter(worth_keeping)?;
    let (client, cport, server, sport) = if msg.response {
        (ip.dst, u.dst_port, ip.src, u.src_port)
    } else {
        (ip.src, u.src_port, ip.dst, u.dst_port)
    };
    Some(DnsEvent {
        ts_ns: ts,
        client,
        client_port: cport,
        server,
        server_port: sport,
        transport: "udp",
        ttl: ip.ttl,
        ip_id: ip.ip_id,
        message: msg,
    })
}

/// DNS over TCP: the messages of each direction's first flight (queries from the client,
/// responses from the server), timed at the flow's first payload in that direction.
fn tcp_dns(f: &Flow, out: &mut Vec<DnsEvent>) {
    for dir in &f.dirs {
        let parsed = crate::proto::dns::parse_tcp_stream(dir.stream.bytes(), dir.stream.has_hole());
        let ts = dir.first_payload_ns.unwrap_or(f.first_ns);
        for msg in parsed.messages {
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

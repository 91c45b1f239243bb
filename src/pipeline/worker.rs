//! The per-packet half of the pipeline ([`Worker`]): decode, defragment, flow table, protocol
//! extractors, DNS messages; and the clock that sweeps idle flows ([`SweepClock`]).

use super::summary::{DnsEvent, SkipCounts};
use crate::capture::Frame;
use crate::decode::{decode, decode_transport, tcp_flags, DefragStats, Defragmenter, Skip, L4};
use crate::flow::{FlowConfig, FlowTable, TableStats};
use crate::proto::dns::{parse_message_lenient, worth_keeping};
use crate::proto::facts::{extract, Facts};
use crate::proto::Described;

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
/// sees every packet of its flows, see `super::split`).
pub(crate) struct Worker {
    keep_first_flight: bool,
    table: FlowTable<Facts>,
    defrag: Defragmenter,
    flows: Finished,
    pending: Finished,
    /// DNS messages over UDP with the sequence number of their frame, over TCP as their flows
    /// finished.
    udp_dns: Vec<(u64, DnsEvent)>,
    tcp_dns: Vec<DnsEvent>,
    truncated: u64,
    /// Flows whose name was no host name, and DNS datagrams (port 53) that could not be read.
    names_not_taken: u64,
    dns_unreadable: u64,
    /// Flows whose ClientHello was longer than the reassembly cap.
    hellos_over_cap: u64,
    skipped: SkipCounts,
    /// The latest time of any fragment of the input so far: fragment reassembly expires by it.
    frag_now: i64,
    /// Addresses seen with MAC addresses, to tie a dual-stack host's addresses together.
    seen: crate::names::Sightings,
    /// DNS-over-TCP flows still alive that handed on messages: how many of each direction.
    tcp_dns_done: rustc_hash::FxHashMap<FlowId, [usize; 2]>,
    /// A TCP segment to or from port 53 came since the last sweep (else no live flow can have
    /// a new DNS message, and the sweep does not look).
    tcp_dns_since_sweep: bool,
    /// Frame numbers of the flows created since the last epoch, and how many were created.
    created: Vec<u64>,
    flows_created: u64,
}

/// A flow told apart from any other of the input: its endpoints, tunnel and start.
type FlowId = (crate::flow::Endpoint, crate::flow::Endpoint, u32, i64);

fn flow_id(f: &Described) -> FlowId {
    (f.client, f.server, f.tunnel, f.first_ns)
}

/// Whether a flow carries DNS over TCP.
fn is_tcp_dns(f: &Described) -> bool {
    f.proto == crate::flow::Proto::Tcp && f.server.port == 53
}

/// Finished flows, boxed as the flow table held them: a flow is large, and moving the box
/// instead of the flow from the table to the sorted result saves copying each several times.
#[allow(clippy::vec_box)]
type Finished = Vec<Box<Described>>;

/// What one worker produced in one epoch of the input (between two sweeps): the flows that
/// finished, the DNS messages (over UDP with their frame numbers, over TCP as their flows
/// finished), and the addresses seen with MAC addresses.
#[derive(Default)]
pub(crate) struct Epoch {
    pub(super) flows: Finished,
    pub(super) udp_dns: Vec<(u64, DnsEvent)>,
    pub(super) tcp_dns: Vec<DnsEvent>,
    pub(super) seen: crate::names::Sightings,
    /// The frame numbers at which flows were created (for the most flows alive at once).
    pub(super) created: Vec<u64>,
    /// The flows that finished while they waited as their first packet, as that packet (see
    /// [`crate::flow::Waiting`]): the stream makes them a part at a time.
    pub(super) waiting: Vec<crate::flow::Waiting>,
}

/// What one worker produced: its last epoch (all of the input when no epoch was taken) and
/// its counters.
pub(crate) struct Part {
    pub(super) epoch: Epoch,
    pub(super) truncated: u64,
    pub(super) names_not_taken: u64,
    pub(super) hellos_over_cap: u64,
    pub(super) dns_unreadable: u64,
    pub(super) skipped: SkipCounts,
    pub(super) fragments: DefragStats,
    pub(super) table: TableStats,
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
        let mut table = FlowTable::with_external_clock(mine);
        table.hand_on_waiting();
        Worker {
            keep_first_flight: cfg.keep_first_flight,
            table,
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
            names_not_taken: 0,
            hellos_over_cap: 0,
            dns_unreadable: 0,
            skipped: SkipCounts::default(),
            frag_now: i64::MIN,
            seen: Default::default(),
            tcp_dns_done: Default::default(),
            tcp_dns_since_sweep: false,
            created: Vec::new(),
            flows_created: 0,
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
        // The whole DNS messages of connections still open go on now: an answer names the
        // flows that follow it, whenever its connection ends.
        if !std::mem::take(&mut self.tcp_dns_since_sweep) {
            return;
        }
        for f in self.table.live_flows().filter(|f| is_tcp_dns(f)) {
            let id = flow_id(f);
            let done = self.tcp_dns_done.get(&id).copied().unwrap_or_default();
            let now_done = tcp_dns(f, done, false, &mut self.tcp_dns);
            if now_done != done {
                self.tcp_dns_done.insert(id, now_done);
            }
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
                let (seen, dns_unreadable) = (&mut self.seen, &mut self.dns_unreadable);
                let tcp_dns_since_sweep = &mut self.tcp_dns_since_sweep;
                // MAC addresses are the host's only on a plain frame (a tunnel's are its
                // endpoints').
                let link = (pkt.encap_depth == 0).then_some(frame);
                let mut feed = |ip: &crate::decode::IpHeader, l4: &L4<'_>, cut: bool| {
                    if let L4::Udp(u) = l4 {
                        if u.src_port == 53 || u.dst_port == 53 {
                            match udp_dns(frame.ts_ns, ip, u) {
                                Some(e) => {
                                    sight(seen, link, ip, !e.message.response);
                                    dns.push((seq, e));
                                }
                                None => *dns_unreadable += u64::from(!u.payload.is_empty()),
                            }
                        }
                    }
                    if let L4::Tcp(t) = l4 {
                        *tcp_dns_since_sweep |= t.src_port == 53 || t.dst_port == 53;
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
                self.sight_arp(frame, skip);
                self.skipped.count(skip)
            }
        }
        let created = self.table.stats().flows;
        while self.flows_created < created {
            self.created.push(seq);
            self.flows_created += 1;
        }
        if !self.pending.is_empty() {
            self.finish_pending();
        }
    }

    /// Notes the sender of an ARP frame (one `decode` skipped as not IP) with its MAC address,
    /// to tie a host's addresses (see `crate::names::Hosts`). The reader of a split input
    /// calls it too: it keeps the frames that reach no worker.
    pub(crate) fn sight_arp(&mut self, frame: &Frame<'_>, skip: Skip) {
        if let Skip::NotIp(crate::decode::ethertype::ARP) = skip {
            let at = match frame.linktype {
                crate::decode::linktype::ETHERNET => 14,
                crate::decode::linktype::LINUX_SLL => 16,
                crate::decode::linktype::LINUX_SLL2 => 20,
                _ => return,
            };
            if let Some(s) = frame.data.get(at..).and_then(crate::names::arp_sender) {
                self.seen.insert(s);
            }
        }
    }

    /// What finished since the last epoch was taken (see [`Epoch`]): a worker whose epochs
    /// are taken at every sweep holds only the flows alive and what finished since.
    pub(crate) fn take_epoch(&mut self) -> Epoch {
        Epoch {
            flows: std::mem::take(&mut self.flows),
            udp_dns: std::mem::take(&mut self.udp_dns),
            tcp_dns: std::mem::take(&mut self.tcp_dns),
            seen: std::mem::take(&mut self.seen),
            created: std::mem::take(&mut self.created),
            waiting: self.table.take_waiting(),
        }
    }

    /// The flow a waiting first packet makes (see [`crate::flow::Waiting`]) with its facts, as
    /// [`Worker`] hands on a flow the table finished; it has no payload to read, so nothing
    /// to count and nothing of DNS over TCP.
    pub(crate) fn made(w: &crate::flow::Waiting) -> Box<Described> {
        let mut f = w.flow::<Facts>();
        extract(&mut f);
        debug_assert!(!f.facts.name_not_taken && crate::proto::facts::hello_over_cap(&f).is_none());
        debug_assert!(f.dirs.iter().all(|d| d.stream.held() == 0));
        f.release_buffers();
        f
    }

    /// Runs the extractors on flows the table finished, then frees their buffers.
    fn finish_pending(&mut self) {
        for mut f in self.pending.drain(..) {
            if is_tcp_dns(&f) {
                let done = self.tcp_dns_done.remove(&flow_id(&f)).unwrap_or_default();
                tcp_dns(&f, done, true, &mut self.tcp_dns);
            }
            extract(&mut f);
            self.names_not_taken += u64::from(f.facts.name_not_taken);
            self.hellos_over_cap += u64::from(crate::proto::facts::hello_over_cap(&f).is_some());
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
        flows.extend(self.table.waiting().iter().map(Worker::made));
        let one_packet = self.table.live_one_packet_flows();
        for f in self
            .table
            .live_flows()
            .map(|f| Box::new(f.clone()))
            .chain(one_packet)
        {
            let mut f = *f;
            if is_tcp_dns(&f) {
                let done = self.tcp_dns_done.get(&flow_id(&f)).copied();
                tcp_dns(&f, done.unwrap_or_default(), true, &mut tcp_msgs);
            }
            extract(&mut f);
            f.release_buffers();
            flows.push(Box::new(f));
        }
        Part {
            epoch: Epoch {
                flows,
                udp_dns: self.udp_dns.clone(),
                tcp_dns: tcp_msgs,
                seen: self.seen.clone(),
                created: self.created.clone(),
                waiting: Vec::new(),
            },
            truncated: self.truncated,
            names_not_taken: self.names_not_taken,
            hellos_over_cap: self.hellos_over_cap,
            dns_unreadable: self.dns_unreadable,
            skipped: self.skipped.clone(),
            fragments: *self.defrag.stats(),
            table: self.table.stats().clone(),
        }
    }

    /// Finishes every live flow (end of input).
    pub(crate) fn finish(mut self) -> Part {
        let pending = &mut self.pending;
        self.table.finish(&mut |f| pending.push(f));
        self.finish_pending();
        Part {
            epoch: self.take_epoch(),
            truncated: self.truncated,
            names_not_taken: self.names_not_taken,
            hellos_over_cap: self.hellos_over_cap,
            dns_unreadable: self.dns_unreadable,
            skipped: self.skipped,
            fragments: *self.defrag.stats(),
            table: self.table.stats().clone(),
        }
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
        tunnel: ip.tunnel,
        message: msg,
    })
}

/// DNS over TCP: the messages of each direction's first flight (queries from the client,
/// responses from the server), timed at the flow's first payload in that direction, after
/// the first `done` of each direction (handed on before). While the flow is alive (`ended`
/// false) only whole messages go: the rest of one may still come. Returns how many of each
/// direction have been handed on in all.
fn tcp_dns(f: &Described, done: [usize; 2], ended: bool, out: &mut Vec<DnsEvent>) -> [usize; 2] {
    let mut now_done = done;
    for (d, dir) in f.dirs.iter().enumerate() {
        let bytes = dir.stream.bytes();
        let whole = (!ended).then(|| crate::proto::dns::whole_tcp_messages(bytes));
        if whole.is_some_and(|w| w <= done[d]) {
            continue;
        }
        let parsed = crate::proto::dns::parse_tcp_stream(bytes, dir.stream.has_hole());
        let upto = parsed.messages.len().min(whole.unwrap_or(usize::MAX));
        let ts = dir.first_payload_ns.get().unwrap_or(f.first_ns);
        for msg in parsed.messages.into_iter().take(upto).skip(done[d]) {
            out.push(DnsEvent {
                ts_ns: ts,
                client: f.client.ip,
                client_port: f.client.port,
                server: f.server.ip,
                server_port: f.server.port,
                transport: "tcp",
                ttl: 0,
                ip_id: None,
                tunnel: f.tunnel,
                message: msg,
            });
        }
        now_done[d] = now_done[d].max(upto);
    }
    now_done
}

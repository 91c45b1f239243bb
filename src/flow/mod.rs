//! The flow table: one record per bidirectional 5-tuple, with TCP state, per-direction counters,
//! a Zeek-style history, ICMP errors credited to the flow they quote, the reassembled first
//! flight of each direction, and an outcome (see [`Outcome`]).
//!
//! Memory is bounded: flows expire after an idle time (shorter once closed), the number of live
//! flows is capped (the least recently active ones are finished early and counted as evicted),
//! and buffered payload is bounded per direction and table-wide.

mod map;
pub use map::seeded_hash;
pub mod reasm;
pub(crate) mod tls_record;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use serde::Serialize;

use crate::decode::{ipproto, tcp_flags as tf, IcmpError, IpHeader, L4};
use map::Keyed;
pub use reasm::{Pushed, Stream};

/// Tunables of the flow table.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Bytes of payload kept from the start of each TCP direction (the first flight).
    pub reassembly_cap: usize,
    /// Table-wide bound on buffered payload bytes.
    pub reassembly_budget: usize,
    /// Maximum number of live flows; beyond it the least recently active are finished early.
    pub max_flows: usize,
    /// Idle time after which an open TCP flow is finished.
    pub tcp_idle_ns: i64,
    /// Idle time after which a TCP flow closed by FIN both ways or RST is finished.
    pub tcp_closed_idle_ns: i64,
    /// Idle time after which a TCP flow that is only SYNs from its client, nothing back, is
    /// finished (if shorter than `tcp_idle_ns`): longer than any TCP stack waits between two
    /// SYNs of one connect (Linux doubles its wait up to 120 s, Windows and macOS give up
    /// sooner), so a SYN after it is a new attempt. A dropped connect no longer stays in
    /// memory for the whole open-flow idle time.
    pub tcp_attempt_idle_ns: i64,
    /// Idle time after which a UDP or ICMP flow is finished.
    pub udp_idle_ns: i64,
    /// Keep the reassembled first flights in finished flows after the protocol extractors ran
    /// (for callers that read the bytes themselves); by default they are freed as soon as a
    /// flow finishes, so memory stays bounded by the live flows.
    pub keep_first_flight: bool,
    /// Stop buffering a TCP direction that is TLS records from its start at its first
    /// ApplicationData record (see [`Stream::encrypted_from`]).
    pub encrypted_bypass: bool,
    /// Keep a flow that has had one packet as that packet until a second comes (see
    /// `Pending`: a fifth of the memory, the same flows). Off only to compare.
    pub compact_first_packets: bool,
    /// An epoch of more flows than this, some of them finished while they waited as their
    /// first packet, is made, named and handed on this many at a time (see
    /// `pipeline::Stream`); small values are for tests.
    pub make_at_once: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            reassembly_cap: 16 * 1024,
            reassembly_budget: 256 << 20,
            max_flows: 500_000,
            tcp_idle_ns: 15 * 60 * 1_000_000_000,
            tcp_closed_idle_ns: 5 * 1_000_000_000,
            tcp_attempt_idle_ns: 180 * 1_000_000_000,
            udp_idle_ns: 2 * 60 * 1_000_000_000,
            keep_first_flight: false,
            encrypted_bypass: true,
            compact_first_packets: true,
            make_at_once: 16_384,
        }
    }
}

/// Transport protocol of a flow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP echo (ports hold the echo identifier and 0).
    Icmp,
    Icmpv6,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
        }
    }
}

/// One end of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// The endpoint as text: `a.b.c.d:port`, or `[v6]:port`.
    pub fn text(&self) -> String {
        crate::text::socket_text(self.ip, self.port)
    }
}

/// Canonical key of a bidirectional flow: the smaller endpoint first, in a compact form that
/// hashes and compares as a few integers (the table looks one up for every packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// The addresses as two 64-bit halves each (an IPv4 address in the low half).
    lo: [u64; 2],
    hi: [u64; 2],
    lo_port: u16,
    hi_port: u16,
    /// The protocol, and 0x80 for IPv6 (an IPv4 address and `::a.b.c.d` differ).
    proto: u8,
    /// The tunnel the flow's packets came through (`IpHeader::tunnel`), 0 for none.
    tunnel: u32,
}

/// An address as the two halves of its 128 bits (IPv4 in the low one) and whether it is IPv6.
#[inline]
fn halves(ip: IpAddr) -> ([u64; 2], bool) {
    match ip {
        IpAddr::V4(a) => ([0, u32::from(a) as u64], false),
        IpAddr::V6(a) => {
            let b = u128::from(a);
            ([(b >> 64) as u64, b as u64], true)
        }
    }
}

impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Whole words only (an array's derived hash would write its length first). The tunnel
        // is folded into the first (0 for plain traffic: the same hash as without it).
        state.write_u64(self.lo[0] ^ u64::from(self.tunnel));
        state.write_u64(self.lo[1]);
        state.write_u64(self.hi[0]);
        state.write_u64(self.hi[1]);
        state.write_u64(
            (self.lo_port as u64) << 24 | (self.hi_port as u64) << 8 | self.proto as u64,
        );
    }
}

impl Key {
    #[inline]
    fn new(proto: Proto, a: Endpoint, b: Endpoint, tunnel: u32) -> Key {
        let (ia, v6) = halves(a.ip);
        let (ib, _) = halves(b.ip);
        let proto = proto as u8 | if v6 { 0x80 } else { 0 };
        if (ia, a.port) <= (ib, b.port) {
            Key {
                lo: ia,
                hi: ib,
                lo_port: a.port,
                hi_port: b.port,
                proto,
                tunnel,
            }
        } else {
            Key {
                lo: ib,
                hi: ia,
                lo_port: b.port,
                hi_port: a.port,
                proto,
                tunnel,
            }
        }
    }
}

crate::vocab_macro::vocabulary! {
    /// What the wire shows for one flow, before any catalog (design vocabulary).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        /// TCP: SYN and its retransmits, nothing back. UDP/ICMP: request(s), nothing back.
        NoAnswer = "no-answer",
        /// TCP: SYN answered by RST.
        Refused = "refused",
        /// An ICMP/ICMPv6 error quoting the flow and no answer from the far end.
        IcmpUnreachable = "icmp-unreachable",
        /// TCP: handshake done, then no payload from either side.
        HandshakeOnly = "handshake-only",
        /// TCP: the client sent its first flight, the server sent no payload, then RST or FIN.
        ResetAfterHello = "reset-after-hello",
        /// TCP: the client sent its first flight, the server sent no payload and did not close
        /// before the capture (or the client) gave up. Not in the first design table: without
        /// it such flows would have had to be called handshake-only, which hides that data
        /// went out.
        RequestUnanswered = "request-unanswered",
        /// A TLS alert before the handshake finished (which side sent it is in the facts). This
        /// outcome and the next two are read from a TCP flow's payload (see [`AppFacts`]); the
        /// packets alone call such a flow established.
        TlsAlert = "tls-alert",
        /// An explicit proxy answered CONNECT with a non-2xx status (a 407 never followed by
        /// 200).
        ProxyDenied = "proxy-denied",
        /// HTTP 470 from Azure Firewall (or its deny page).
        HttpDenied = "http-denied",
        /// The far end sent application data (TCP payload) or a reply (UDP, ICMP).
        Established = "established",
        /// The capture began after the flow did (no SYN from the client was seen).
        Midstream = "midstream",
    }
}

impl Outcome {
    /// What the outcome means, in one line of `flows --help`.
    pub fn help(self) -> &'static str {
        match self {
            Outcome::NoAnswer => {
                "SYNs (TCP) or requests (UDP) with nothing back; `attempts` counts them"
            }
            Outcome::Refused => "SYN answered by RST",
            Outcome::IcmpUnreachable => {
                "an ICMP/ICMPv6 error quoting the flow, no answer (type/code kept)"
            }
            Outcome::HandshakeOnly => "handshake completed, no payload either way",
            Outcome::ResetAfterHello => {
                "client sent data, server sent none and closed (FIN or RST)"
            }
            Outcome::RequestUnanswered => "client sent data, server sent none and did not close",
            Outcome::TlsAlert => "a TLS alert before the handshake finished",
            Outcome::ProxyDenied => "an explicit proxy answered CONNECT with a non-2xx status",
            Outcome::HttpDenied => "HTTP 470 from Azure Firewall (or its deny page)",
            Outcome::Established => "the far end sent payload (TCP) or a reply (UDP, ICMP echo)",
            Outcome::Midstream => "the capture began after the flow did",
        }
    }
}

/// Which side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

/// How a TCP flow was first closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Close {
    pub by: Side,
    /// "fin" or "rst".
    #[schemars(extend("enum" = ["fin", "rst"]))]
    pub how: &'static str,
    #[serde(skip)]
    pub ts_ns: i64,
}

/// A silence inside a connection: how long, when it ended, and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub ns: i64,
    pub end_ns: i64,
    pub ended_by: Side,
}

/// An ICMP error credited to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpNote {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// Who sent the error (the far end itself or a hop on the way).
    pub from: IpAddr,
    pub ts_ns: i64,
}

/// IP and TCP facts of a RST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstFacts {
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub window: u16,
}

/// A capture time or none, in 8 bytes where an `Option<i64>` takes 16 (`i64::MIN` stands for
/// none: the readers never give that time, a pcapng offset that far before 1970 is clamped one
/// above it): a direction has five of these, and a table
/// holds many directions. None orders before every time, as `Option` does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OptNs(i64);

impl OptNs {
    pub const NONE: OptNs = OptNs(i64::MIN);

    pub fn some(ns: i64) -> OptNs {
        OptNs(ns)
    }

    #[inline]
    pub fn get(self) -> Option<i64> {
        (self.0 != i64::MIN).then_some(self.0)
    }

    #[inline]
    pub fn is_some(self) -> bool {
        self.0 != i64::MIN
    }

    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == i64::MIN
    }

    pub fn is_some_and(self, f: impl FnOnce(i64) -> bool) -> bool {
        self.get().is_some_and(f)
    }

    pub fn is_none_or(self, f: impl FnOnce(i64) -> bool) -> bool {
        self.get().is_none_or(f)
    }

    /// Sets the time unless one is set already.
    #[inline]
    pub fn get_or_insert(&mut self, ns: i64) {
        if self.0 == i64::MIN {
            self.0 = ns;
        }
    }
}

impl Default for OptNs {
    fn default() -> Self {
        OptNs::NONE
    }
}

impl std::fmt::Debug for OptNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Counters and state of one direction.
#[derive(Debug, Clone, Default)]
// Per-packet counters first (see `Flow`).
#[repr(C)]
pub struct Dir {
    pub packets: u64,
    /// Wire bytes of the frames (as tshark's conversation table counts them).
    pub bytes: u64,
    /// Transport payload bytes the headers declare.
    pub payload_bytes: u64,
    /// Time of the last packet this side sent.
    pub last_ns: OptNs,
    pub first_payload_ns: OptNs,
    pub last_payload_ns: OptNs,
    /// TTL / hop limit of the first packet.
    pub ttl_first: Option<u8>,
    pub ttl_min: Option<u8>,
    pub ttl_max: Option<u8>,
    /// Lowest and highest TTL / hop limit of the packets that carried payload: the sender's
    /// own packets, unlike a RST a middlebox may forge in its name.
    pub data_ttl: Option<(u8, u8)>,
    /// Packets whose TTL/hop limit differs from this direction's first packet.
    pub ttl_changes: u32,
    /// TCP: the sequence number just after the highest payload byte seen (new data moves it,
    /// a retransmission does not).
    pub seq_end: Option<u32>,
    /// The reassembled first flight (TCP only).
    pub stream: Stream,
    pub syns: u32,
    /// TCP: the sequence number of this side's SYN (its initial sequence number).
    pub isn: Option<u32>,
    pub fin_ns: OptNs,
    pub rst_ns: OptNs,
    /// IP facts of the first RST this side sent, to tell a middlebox's RST from the host's.
    pub rst: Option<RstFacts>,
}

impl Dir {
    fn note_ttl(&mut self, ttl: u8) {
        match self.ttl_first {
            None => self.ttl_first = Some(ttl),
            Some(t) if t != ttl => self.ttl_changes += 1,
            _ => {}
        }
        self.ttl_min = Some(self.ttl_min.map_or(ttl, |m| m.min(ttl)));
        self.ttl_max = Some(self.ttl_max.map_or(ttl, |m| m.max(ttl)));
    }
}

/// Zeek-style connection history: one letter per event kind the first time it happens,
/// upper case for the client (originator), lower case for the server (responder).
/// S syn, H syn-ack, A pure ack, D payload, F fin, R rst, T retransmitted payload,
/// W zero window, I inconsistent flags (SYN with RST or FIN); `^` first when the roles were
/// flipped from the first packet's sender.
#[derive(Clone, Copy, Default)]
pub struct History {
    buf: [u8; 24],
    len: u8,
    seen: u32,
}

impl History {
    fn add(&mut self, client: bool, letter: u8) {
        let bit = match letter {
            b'S' => 0,
            b'H' => 1,
            b'A' => 2,
            b'D' => 3,
            b'F' => 4,
            b'R' => 5,
            b'T' => 6,
            b'W' => 7,
            b'I' => 8,
            b'^' => 15,
            _ => 14,
        } + if client { 0 } else { 16 };
        if self.seen & (1 << bit) != 0 || self.len as usize >= self.buf.len() {
            return;
        }
        self.seen |= 1 << bit;
        self.buf[self.len as usize] = if client || letter == b'^' {
            letter
        } else {
            letter.to_ascii_lowercase()
        };
        self.len += 1;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What few flows have, boxed apart so that a flow without any of it (nearly every one) stays
/// small: a table of many live flows is mostly these records.
#[derive(Debug, Clone, Default)]
struct Rare {
    /// ICMP errors credited to the flow.
    icmp: Vec<IcmpNote>,
    /// UDP: the client's first datagrams that look like QUIC long-header packets (at most
    /// [`MAX_DATAGRAMS`]), for the QUIC Initial extractor.
    datagrams: Vec<Vec<u8>>,
    /// UDP: the server's first long-header datagrams (at most [`MAX_SERVER_DATAGRAMS`], and
    /// only once a client datagram was kept): Version Negotiation, Retry, Handshake.
    server_datagrams: Vec<Vec<u8>>,
    /// The encapsulation layers of the flow's first packet, outermost first (tunnels with
    /// their outer endpoints, MPLS labels, PPPoE session); empty for plain traffic.
    encap: Box<[crate::decode::EncapLayer]>,
    /// NFLOG: the log prefix of the rule that logged the flow's first logged packet.
    nflog_prefix: Option<Box<str>>,
}

/// One bidirectional flow, with room for what a later stage reads in its payload (`A`, see
/// [`AppFacts`]).
#[derive(Debug, Clone)]
// Laid out in this order (hot per-packet fields first, in as few cache lines as can be): a
// table of many live flows does not fit in the cache, and each line a packet touches is a miss.
#[repr(C)]
pub struct Flow<A = ()> {
    pub client: Endpoint,
    pub server: Endpoint,
    pub proto: Proto,
    /// The client's SYN was seen (the flow did not start before the capture).
    pub saw_syn: bool,
    /// The server's SYN-ACK was seen.
    pub saw_synack: bool,
    /// Client and server were told apart by ports or a SYN-ACK, not by who sent first.
    pub flipped: bool,
    /// Finished early because the table was full.
    pub evicted: bool,
    /// Finished because its client opened a new connection on the same ports (a SYN with
    /// another initial sequence number after this one was closed).
    pub replaced: bool,
    pub first_ns: i64,
    pub last_ns: i64,
    pub history: History,
    /// When the table next looks whether this flow has been idle too long: the time of its
    /// newest entry in the table's timer queue (see `FlowTable::sweep`).
    timer_ns: i64,
    /// The longest time without payload either way between two payload packets, when that
    /// silence ended, and whether the client ended it: a firewall that forgot an idle
    /// connection answers the first data after the silence with a RST, or not at all.
    pub longest_quiet: Option<Quiet>,
    /// [from client, from server].
    pub dirs: [Dir; 2],
    /// Packets of this flow that the capture cut short (snap length).
    pub cut_packets: u64,
    /// TCP: the last payload (either way, the closing segment's own included) when the first
    /// FIN or RST came; how long a connection was quiet before it was closed tells a clean
    /// close (a websocket Close frame or TLS close_notify just before) from an idle timer.
    pub data_before_close_ns: OptNs,
    /// UDP: datagrams either way that start like a QUIC short header (0x40 set, 0x80 clear),
    /// reported only on flows found to be QUIC.
    pub short_headers: u32,
    /// Frame sequence numbers (see [`FlowTable::set_frame`]) at which the table created the
    /// flow and finished it (`u64::MAX`: still alive at the end of the input), so that the
    /// most flows alive at once can be counted across several tables (see [`peak_live`]).
    pub life: (u64, u64),
    /// When the capture stopped watching the flow: the sweep that found it idle, the packet
    /// that evicted it or took its endpoints for a new connection, or the latest time of the
    /// input for a flow open at its end (`i64::MAX` until known). A flow whose only attempt
    /// was watched for less than [`WATCH_NS`] cannot be called unanswered.
    pub until_ns: i64,
    /// The tunnel of the flow's packets (`IpHeader::tunnel`): 0 for plain traffic.
    pub tunnel: u32,
    /// What few flows have (ICMP errors, QUIC datagrams, encapsulation, an NFLOG prefix).
    rare: Option<Box<Rare>>,
    /// What a later stage read in the flow's payload when it finished (see [`AppFacts`]).
    pub facts: A,
}

/// What a packet's link and tunnel layers say besides its IP header, kept on its flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outer<'a> {
    /// NFLOG: the log prefix of the rule that logged the packet.
    pub nflog_prefix: Option<&'a [u8]>,
    /// The frame (link type, bytes) when it came through encapsulation layers: a new flow
    /// reads them from it (see [`crate::decode::encap_layers`]).
    pub encap_frame: Option<(u32, &'a [u8])>,
}

/// Client datagrams kept per UDP flow for the QUIC extractor.
pub const MAX_DATAGRAMS: usize = 8;
/// Server datagrams kept per UDP flow for the QUIC extractor.
pub const MAX_SERVER_DATAGRAMS: usize = 4;
/// The smallest UDP payload that may open a QUIC connection: a client pads every datagram
/// that carries an Initial to at least 1,200 bytes, and a server drops a smaller one (RFC 9000
/// 14.1). A flow keeps client datagrams only from such a datagram on, so a DNS query whose ID
/// happens to look like a long header (a quarter of them) costs no copy and may wait.
pub const QUIC_MIN_INITIAL: u32 = 1200;

/// Whether a client datagram may open a QUIC connection: a long header (form and fixed bits
/// set) in a datagram of at least [`QUIC_MIN_INITIAL`] bytes on the wire (the UDP length, so
/// a snap-length cut does not hide one).
#[inline]
fn may_open_quic(lead: Option<u8>, payload_len: u32) -> bool {
    lead.is_some_and(|b| b & 0xc0 == 0xc0) && payload_len >= QUIC_MIN_INITIAL
}

/// What a later stage reads in a flow's payload when the flow finishes, kept on the flow (its
/// `facts`): the protocol extractors' facts (`crate::proto::facts::Facts`), or nothing (`()`)
/// where the table is used alone. The table only makes room for them; what they say may tell
/// more of a TCP flow's outcome than its packets do.
pub trait AppFacts: Default {
    /// The outcome of a TCP flow whose server sent payload (what the server sent: `_server`),
    /// which the packets alone call established: the payload may be a refusal (a proxy's, a
    /// firewall's deny page, a TLS alert).
    fn app_outcome(&self, _server: &Dir) -> Outcome {
        Outcome::Established
    }
}

impl AppFacts for () {}

impl<A: AppFacts> Flow<A> {
    /// The table's key of this flow (see `map`).
    #[inline]
    fn key(&self) -> Key {
        Key::new(self.proto, self.client, self.server, self.tunnel)
    }

    fn new(proto: Proto, client: Endpoint, server: Endpoint, ts: i64) -> Flow<A> {
        Flow {
            proto,
            client,
            server,
            first_ns: ts,
            last_ns: ts,
            dirs: Default::default(),
            history: History::default(),
            saw_syn: false,
            saw_synack: false,
            flipped: false,
            evicted: false,
            replaced: false,
            cut_packets: 0,
            data_before_close_ns: OptNs::NONE,
            longest_quiet: None,
            short_headers: 0,
            life: (0, u64::MAX),
            until_ns: i64::MAX,
            timer_ns: i64::MAX,
            tunnel: 0,
            rare: None,
            facts: A::default(),
        }
    }

    /// The server's address with the TTLs of the packets that carried its data in this flow
    /// (the lowest and the highest; none when it sent none): its own TTLs, from which a RST
    /// forged in its name may differ.
    pub fn server_data_ttls(&self) -> impl Iterator<Item = (IpAddr, u8)> {
        let ip = self.server.ip;
        self.dirs[1]
            .data_ttl
            .into_iter()
            .flat_map(move |(lo, hi)| [(ip, lo), (ip, hi)])
    }

    /// Payload bytes buffered by this flow (first flights and kept datagrams).
    pub fn held(&self) -> usize {
        self.dirs[0].stream.held()
            + self.dirs[1].stream.held()
            + self.datagrams().iter().map(Vec::len).sum::<usize>()
            + self.server_datagrams().iter().map(Vec::len).sum::<usize>()
    }

    /// Frees the buffered payload, keeping every counter (see [`Stream::release`]).
    pub fn release_buffers(&mut self) {
        let mut freed = 0;
        for d in &mut self.dirs {
            d.stream.release(&mut freed);
        }
        if let Some(r) = self.rare.as_deref_mut() {
            r.datagrams = Vec::new();
            r.server_datagrams = Vec::new();
        }
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The ICMP errors credited to the flow (see [`IcmpNote`]).
    pub fn icmp(&self) -> &[IcmpNote] {
        self.rare.as_deref().map_or(&[], |r| &r.icmp)
    }

    /// UDP: the client's first datagrams that look like QUIC long-header packets (at most
    /// [`MAX_DATAGRAMS`]), for the QUIC Initial extractor; none once released.
    pub fn datagrams(&self) -> &[Vec<u8>] {
        self.rare.as_deref().map_or(&[], |r| &r.datagrams)
    }

    /// UDP: the server's first long-header datagrams (at most [`MAX_SERVER_DATAGRAMS`], and
    /// only once a client datagram was kept): Version Negotiation, Retry, Handshake.
    pub fn server_datagrams(&self) -> &[Vec<u8>] {
        self.rare.as_deref().map_or(&[], |r| &r.server_datagrams)
    }

    /// The encapsulation layers of the flow's first packet, outermost first (tunnels with
    /// their outer endpoints, MPLS labels, PPPoE session); empty for plain traffic.
    pub fn encap(&self) -> &[crate::decode::EncapLayer] {
        self.rare.as_deref().map_or(&[], |r| &r.encap)
    }

    /// NFLOG: the log prefix of the rule that logged the flow's first logged packet.
    pub fn nflog_prefix(&self) -> Option<&str> {
        self.rare.as_deref().and_then(|r| r.nflog_prefix.as_deref())
    }

    pub fn from_client(&self) -> &Dir {
        &self.dirs[0]
    }

    pub fn from_server(&self) -> &Dir {
        &self.dirs[1]
    }

    /// How the TCP flow was first closed (the earliest FIN or RST), if it was.
    pub fn close(&self) -> Option<Close> {
        let mut best: Option<Close> = None;
        for (i, d) in self.dirs.iter().enumerate() {
            let by = if i == 0 { Side::Client } else { Side::Server };
            for (how, ts) in [("rst", d.rst_ns), ("fin", d.fin_ns)] {
                if let Some(ts) = ts.get() {
                    if best.is_none_or(|b| ts < b.ts_ns) {
                        best = Some(Close { by, how, ts_ns: ts });
                    }
                }
            }
        }
        best
    }

    /// Request attempts without an answer: SYNs for TCP, datagrams for UDP and ICMP.
    pub fn attempts(&self) -> u64 {
        match self.proto {
            Proto::Tcp => self.dirs[0].syns as u64,
            _ => self.dirs[0].packets,
        }
    }

    /// Whether the flow is a connect that nothing answered yet: a TCP flow whose client sent
    /// only SYNs and whose server sent nothing.
    fn attempt_only(&self) -> bool {
        let [c, s] = &self.dirs;
        self.proto == Proto::Tcp && s.packets == 0 && c.packets == u64::from(c.syns)
    }

    fn closed(&self) -> bool {
        let [c, s] = &self.dirs;
        c.rst_ns.is_some() || s.rst_ns.is_some() || (c.fin_ns.is_some() && s.fin_ns.is_some())
    }

    /// The outcome of the flow, from what the capture holds: its packets, and for a TCP flow
    /// whose server sent payload, what its facts say of that payload ([`AppFacts::app_outcome`]).
    pub fn outcome(&self) -> Outcome {
        let [c, s] = &self.dirs;
        match self.proto {
            Proto::Tcp => {
                if !self.saw_syn {
                    // A flow known only from an ICMP error quoting it is that error's.
                    if c.packets == 0 && s.packets == 0 && !self.icmp().is_empty() {
                        return Outcome::IcmpUnreachable;
                    }
                    return Outcome::Midstream;
                }
                if s.payload_bytes > 0 {
                    return self.facts.app_outcome(s);
                }
                if !self.saw_synack {
                    if s.rst_ns.is_some() {
                        return Outcome::Refused;
                    }
                    if !self.icmp().is_empty() {
                        return Outcome::IcmpUnreachable;
                    }
                    return Outcome::NoAnswer;
                }
                if c.payload_bytes > 0 {
                    if s.rst_ns.is_some() || s.fin_ns.is_some() {
                        return Outcome::ResetAfterHello;
                    }
                    return Outcome::RequestUnanswered;
                }
                Outcome::HandshakeOnly
            }
            _ => {
                if s.packets > 0 {
                    Outcome::Established
                } else if !self.icmp().is_empty() {
                    Outcome::IcmpUnreachable
                } else {
                    Outcome::NoAnswer
                }
            }
        }
    }
}

/// Counters of the table's own work, for the file summary.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableStats {
    pub flows: u64,
    /// Flows finished early because the live-flow cap was reached.
    pub evicted: u64,
    /// The most flows alive at once.
    pub peak_live: u64,
    /// ICMP errors whose quoted packet matched no flow seen so far (a flow is made for them).
    pub icmp_errors_unmatched: u64,
    /// ICMP errors whose quote was too short to name a flow.
    pub icmp_errors_unreadable: u64,
    /// ICMP messages that are neither errors nor echo (neighbour discovery, ...).
    pub icmp_other: u64,
    /// Packets of other transport protocols.
    pub other_proto: u64,
    /// Payload bytes not buffered because the table-wide reassembly budget ran out.
    pub reassembly_budget_exhausted: bool,
}

/// The flow table. Feed packets in capture order with [`FlowTable::packet`]; finished flows are
/// handed to the sink given to each call. Call [`FlowTable::finish`] at the end. Its flows
/// carry an `A` (see [`AppFacts`]), `()` when nothing reads their payload after them.
pub struct FlowTable<A = ()> {
    cfg: FlowConfig,
    /// Boxed: a flow is large, and the map moves its entries when it grows.
    map: map::FlowMap<Flow<A>>,
    /// The flows that have had one packet, as that packet (see [`Pending`]); no key is in
    /// both maps. Keys hash as in `map` (one hasher): an idle check finds its flow in either.
    pending: map::FlowMap<Pending>,
    /// Idle checks to come, earliest first: (time, the hash the flow is stored under). Every
    /// live flow has one at its `timer_ns`, no later than the time it would become idle for too
    /// long; an entry whose time is not its flow's `timer_ns` was superseded and is dropped
    /// when it comes up. A check finds its flow by the hash and that time (16 bytes an entry,
    /// where the key took 56): were two flows with the same 64-bit hash due at the same
    /// nanosecond, the other would be looked at, which is harmless (a check finishes only a
    /// flow idle for too long, and the other flow's own check still comes).
    timers: BinaryHeap<Reverse<(i64, u64)>>,
    budget: usize,
    now: i64,
    next_sweep: i64,
    /// Whether [`FlowTable::packet`] sweeps idle flows by itself (the default) or only
    /// [`FlowTable::sweep_at`] does (see [`FlowTable::with_external_clock`]).
    self_clocked: bool,
    /// The caller's sequence number of the frame being accounted (see [`FlowTable::set_frame`]).
    frame: u64,
    stats: TableStats,
    /// Whether a flow that finishes while it waits as its first packet is handed on as that
    /// packet (into `waiting_out`) instead of made and given to the sink.
    hand_on: bool,
    waiting_out: Vec<Waiting>,
}

/// Service ports that decide UDP orientation when the first datagram came from the server side.
fn is_service_port(p: u16) -> bool {
    // Below 1024, or a registered service that commonly speaks first or answers from a fixed
    // port: OpenVPN, MS-SQL, L2TP, RADIUS, SSDP, LDAP GC, STUN/TURN, Teredo, IPsec NAT-T,
    // VXLAN, SIP, TURN-TLS, mDNS, LLMNR, Geneve, HTTP alternates, ZeroTier, WireGuard.
    p < 1024
        || matches!(
            p,
            1194 | 1433
                | 1701
                | 1812
                | 1813
                | 1900
                | 3268
                | 3478
                | 3544
                | 4500
                | 4789
                | 5060
                | 5349
                | 5353
                | 5355
                | 6081
                | 8080
                | 8443
                | 9993
                | 51820
        )
}

/// How often (in capture time) idle flows are looked for.
pub const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// How long the capture must have watched a client's only attempt (one SYN, one datagram, one
/// DNS query) before the lack of an answer says anything: a client sends an unanswered SYN
/// again after a second (RFC 6298's initial retransmission timeout), and stub resolvers
/// retry a query after one to five. A capture stopped, or a flow evicted, sooner than this
/// after the attempt cut the wait short: too soon to call the silence a drop.
pub const WATCH_NS: i64 = 1_000_000_000;

impl<A: AppFacts> FlowTable<A> {
    pub fn new(cfg: FlowConfig) -> FlowTable<A> {
        let hasher = map::seeded_hash();
        FlowTable {
            budget: cfg.reassembly_budget,
            cfg,
            map: map::FlowMap::with_hasher(hasher.clone()),
            pending: map::FlowMap::with_hasher(hasher),
            timers: BinaryHeap::new(),
            now: i64::MIN,
            next_sweep: i64::MIN,
            self_clocked: true,
            frame: 0,
            stats: TableStats::default(),
            hand_on: false,
            waiting_out: Vec::new(),
        }
    }

    /// A table that finishes idle flows only when told to with [`FlowTable::sweep_at`]. Several
    /// tables that each see part of a capture (one per worker thread) then expire flows at
    /// exactly the points of the capture where a single table would have.
    pub fn with_external_clock(cfg: FlowConfig) -> FlowTable<A> {
        FlowTable {
            self_clocked: false,
            ..FlowTable::new(cfg)
        }
    }

    /// Tells the table the caller's sequence number of the frame it is about to account (or
    /// of the sweep about to run); flows remember where they began and ended (`Flow::life`).
    #[inline]
    pub fn set_frame(&mut self, seq: u64) {
        self.frame = seq;
    }

    /// Finishes the flows idle for too long at time `now` (the latest capture time seen).
    pub fn sweep_at(&mut self, now: i64, sink: &mut impl FnMut(Box<Flow<A>>)) {
        if now > self.now {
            self.now = now;
        }
        self.sweep(sink);
    }

    pub fn stats(&self) -> &TableStats {
        &self.stats
    }

    /// From now on, a flow that finishes while it still waits as its first packet is handed
    /// on as that packet ([`Waiting`], taken with [`FlowTable::take_waiting`]) instead of made
    /// and given to the sink.
    pub fn hand_on_waiting(&mut self) {
        self.hand_on = true;
    }

    /// The flows handed on as their first packet since the last call (see
    /// [`FlowTable::hand_on_waiting`]), in the order they finished.
    pub fn take_waiting(&mut self) -> Vec<Waiting> {
        std::mem::take(&mut self.waiting_out)
    }

    /// The flows handed on as their first packet and not taken yet.
    pub fn waiting(&self) -> &[Waiting] {
        &self.waiting_out
    }

    /// The flows still alive in the table that have had more than one packet, or a first one
    /// that does not wait (see [`Pending`]): every flow whose payload says anything.
    pub fn live_flows(&self) -> impl Iterator<Item = &Flow<A>> {
        self.map.values()
    }

    /// The other flows alive in the table, made from their one packet (for a snapshot of an
    /// input being read: with [`FlowTable::live_flows`], every live flow).
    pub fn live_one_packet_flows(&self) -> impl Iterator<Item = Box<Flow<A>>> + '_ {
        self.pending.values().map(|p| p.flow(&self.cfg))
    }

    pub fn live(&self) -> usize {
        self.map.len() + self.pending.len()
    }

    /// Accounts one decoded packet. `wire_len` is the frame's original length, `cut` whether
    /// the capture cut it.
    pub fn packet(
        &mut self,
        ts: i64,
        wire_len: u32,
        cut: bool,
        ip: &IpHeader,
        l4: &L4<'_>,
        sink: &mut impl FnMut(Box<Flow<A>>),
    ) {
        self.packet_outer(ts, wire_len, cut, ip, l4, &Outer::default(), sink);
    }

    /// [`FlowTable::packet`], with what the packet's link and tunnel layers said (`outer`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn packet_outer(
        &mut self,
        ts: i64,
        wire_len: u32,
        cut: bool,
        ip: &IpHeader,
        l4: &L4<'_>,
        outer: &Outer<'_>,
        sink: &mut impl FnMut(Box<Flow<A>>),
    ) {
        if self.self_clocked {
            if ts > self.now {
                self.now = ts;
            }
            if self.now >= self.next_sweep {
                self.sweep(sink);
            }
        }
        let pkt = Packet {
            ts,
            wire_len,
            cut,
            ip,
            outer,
        };
        match l4 {
            L4::Tcp(t) => self.tcp(&pkt, t, sink),
            L4::Udp(u) => self.udp(&pkt, u, sink),
            L4::Icmp(i) => {
                let Some(id) = i.echo_id else {
                    self.stats.icmp_other += 1;
                    return;
                };
                let request = matches!((i.v6, i.icmp_type), (false, 8) | (true, 128));
                let proto = if i.v6 { Proto::Icmpv6 } else { Proto::Icmp };
                let (src, dst) = ends_of(ip, id, id);
                let key = Key::new(proto, src, dst, ip.tunnel);
                let Some(flow) = self.entry(key, proto, src, dst, &pkt, sink, || !request, || None)
                else {
                    return;
                };
                let d = dir_of(flow, &src);
                account(flow, d, &pkt, ip.payload_len as u64);
            }
            L4::IcmpError(e) => self.icmp_error(&pkt, e, sink),
            L4::Fragment(_) | L4::Other { .. } => self.stats.other_proto += 1,
        }
    }

    /// Whether a new flow's first packet may wait as that packet (see [`Pending`]): the table
    /// keeps them so, and the packet brought no encapsulation layers or NFLOG prefix for the
    /// flow to keep.
    #[inline]
    fn may_wait(&self, outer: &Outer<'_>) -> bool {
        self.cfg.compact_first_packets
            && outer.encap_frame.is_none()
            && outer.nflog_prefix.is_none()
    }

    #[inline(always)]
    fn tcp(
        &mut self,
        pkt: &Packet<'_>,
        t: &crate::decode::Tcp<'_>,
        sink: &mut impl FnMut(Box<Flow<A>>),
    ) {
        let ip = pkt.ip;
        let (src, dst) = ends_of(ip, t.src_port, t.dst_port);
        let syn = t.flags & (tf::SYN | tf::ACK) == tf::SYN;
        // A new SYN with a new ISN on a closed connection starts a new flow (port reuse).
        let key = Key::new(Proto::Tcp, src, dst, ip.tunnel);
        if syn {
            if let Some(old) = self.map.get(&key) {
                let isn_differs = old.dirs[dir_of(old, &src)].isn.is_some_and(|i| i != t.seq);
                if old.client == src && isn_differs && old.closed() {
                    let mut old = self.map.remove(&key).expect("present");
                    old.replaced = true;
                    self.emit(old, pkt.ts, sink);
                }
            }
        }
        // The flow borrows the table: buffer against a copy of the budget and settle after
        // (entry() may give budget back when it evicts flows).
        let start_budget = self.budget;
        let mut budget = start_budget;
        // A SYN alone waits as its packet (see [`Pending`]).
        let waits = self.may_wait(pkt.outer)
            && t.flags & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN
            && t.payload_len == 0;
        let first = || {
            waits.then_some(FirstL4::Tcp {
                src_port: t.src_port,
                dst_port: t.dst_port,
                seq: t.seq,
                ack: t.ack,
                flags: t.flags,
                window: t.window,
            })
        };
        let flip = || tcp_flips(t.flags, t.src_port, t.dst_port);
        let tun = TcpTunables::of(&self.cfg);
        let Some(flow) = self.entry(key, Proto::Tcp, src, dst, pkt, sink, flip, first) else {
            return;
        };
        let closed_check = tcp_on(flow, &src, pkt, t, tun, &mut budget);
        if budget == 0 && start_budget > 0 {
            self.stats.reassembly_budget_exhausted = true;
        }
        self.budget = (self.budget as i64 + (budget as i64 - start_budget as i64)).max(0) as usize;

        if let Some(at) = closed_check {
            self.timers.push(Reverse((at, self.map.hash(&key))));
        }
    }

    #[inline(always)]
    fn udp(
        &mut self,
        pkt: &Packet<'_>,
        u: &crate::decode::Udp<'_>,
        sink: &mut impl FnMut(Box<Flow<A>>),
    ) {
        let ip = pkt.ip;
        let (src, dst) = ends_of(ip, u.src_port, u.dst_port);
        let key = Key::new(Proto::Udp, src, dst, ip.tunnel);
        let lead = u.payload.first().copied();
        // A datagram whose flow keeps nothing of it (it cannot open a QUIC connection) waits
        // as its packet (see [`Pending`]).
        let waits = self.may_wait(pkt.outer) && !may_open_quic(lead, u.payload_len);
        let first = || {
            waits.then_some(FirstL4::Udp {
                src_port: u.src_port,
                dst_port: u.dst_port,
                payload_len: u.payload_len,
                lead,
            })
        };
        let flip = || port_flips(u.src_port, u.dst_port);
        let budget = self.budget;
        let Some(flow) = self.entry(key, Proto::Udp, src, dst, pkt, sink, flip, first) else {
            return;
        };
        let kept = udp_on(flow, &src, pkt, u, budget);
        self.budget -= kept.min(self.budget);
    }

    fn icmp_error(&mut self, pkt: &Packet<'_>, e: &IcmpError, sink: &mut impl FnMut(Box<Flow<A>>)) {
        let (ts, ip) = (pkt.ts, pkt.ip);
        let Some(q) = e.quoted else {
            self.stats.icmp_errors_unreadable += 1;
            return;
        };
        let proto = match q.proto {
            ipproto::TCP => Proto::Tcp,
            ipproto::UDP => Proto::Udp,
            _ => {
                self.stats.icmp_errors_unreadable += 1;
                return;
            }
        };
        let src = Endpoint {
            ip: q.src,
            port: q.src_port,
        };
        let dst = Endpoint {
            ip: q.dst,
            port: q.dst_port,
        };
        let key = Key::new(proto, src, dst, ip.tunnel);
        if !self.map.contains_key(&key) && !self.pending.contains_key(&key) {
            self.stats.icmp_errors_unmatched += 1;
        }
        // The quoted packet was sent by the flow's client (usually): it is the first sender.
        // (Not a flow's first packet to replay: the flow is made whole at once, and the error
        // is not one of its packets.)
        let new = Packet {
            wire_len: 0,
            cut: false,
            ..*pkt
        };
        let Some(flow) = self.entry(key, proto, src, dst, &new, sink, || false, || None) else {
            return;
        };
        flow.last_ns = flow.last_ns.max(ts);
        flow.rare_mut().icmp.push(IcmpNote {
            v6: e.v6,
            icmp_type: e.icmp_type,
            code: e.code,
            from: ip.src,
            ts_ns: ts,
        });
    }

    /// Finds or creates the flow of a packet from `src` to `dst`. For a new flow, `flip` says
    /// whether `src` is the server, and `new.outer` gives its encapsulation layers; the first
    /// NFLOG prefix is kept. `key` is `Key::new(proto, src, dst, tunnel)`, which the caller
    /// has computed already: computing it again here measurably cost (about 1% of all
    /// instructions, as did bundling the four into a struct). A flow that waits as its first
    /// packet ([`Pending`]) is made from it here when its second packet comes; a new flow
    /// whose packet `first` says may wait (`Some`) waits, and there is no flow (`None`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn entry(
        &mut self,
        key: Key,
        proto: Proto,
        src: Endpoint,
        dst: Endpoint,
        new: &Packet<'_>,
        sink: &mut impl FnMut(Box<Flow<A>>),
        flip: impl FnOnce() -> bool,
        first: impl FnOnce() -> Option<FirstL4>,
    ) -> Option<&mut Flow<A>> {
        debug_assert!(key == Key::new(proto, src, dst, key.tunnel));
        let ts = new.ts;
        if self.live() >= self.cfg.max_flows
            && !self.map.contains_key(&key)
            && !self.pending.contains_key(&key)
        {
            self.evict(ts, sink);
        }
        let live = self.live();
        let stats = &mut self.stats;
        let frame = self.frame;
        let (timers, cfg, pending) = (&mut self.timers, &self.cfg, &mut self.pending);
        // The flow of this key: the same protocol and the same two endpoints, either way round
        // (what comparing keys says, without computing the flow's key).
        let tunnel = key.tunnel;
        let is = |f: &Flow<A>| {
            f.proto == proto
                && ((f.client == src && f.server == dst) || (f.client == dst && f.server == src))
                && f.tunnel == tunnel
        };
        let flow = self.map.get_or_try_insert_with(&key, is, |hash| {
            // Its first packet waited: the flow is what that packet made of it (its idle check
            // is in the queue already, and it was counted).
            if !pending.is_empty() {
                if let Some(p) = pending.remove_by(hash, |p| p.key() == key) {
                    return Some(p.flow(cfg));
                }
            }
            let flipped = flip();
            if let Some(l4) = first() {
                let p = Pending {
                    ip: *new.ip,
                    l4,
                    ts,
                    wire_len: new.wire_len,
                    cut: new.cut,
                    frame,
                    timer_ns: ts.saturating_add(first_packet_idle_limit(cfg, proto)),
                };
                debug_assert!(p.key() == key);
                timers.push(Reverse((p.timer_ns, hash)));
                stats.flows += 1;
                stats.peak_live = stats.peak_live.max(live as u64 + 1);
                pending.insert(&key, Box::new(p));
                return None;
            }
            let (client, server) = if flipped { (dst, src) } else { (src, dst) };
            let mut f = made_flow(proto, client, server, ts, flipped, tunnel, frame, cfg);
            timers.push(Reverse((f.timer_ns, hash)));
            if let Some((lt, frame)) = new.outer.encap_frame {
                f.rare_mut().encap = encap_of(lt, frame);
            }
            stats.flows += 1;
            stats.peak_live = stats.peak_live.max(live as u64 + 1);
            Some(Box::new(f))
        })?;
        if let Some(p) = new.outer.nflog_prefix {
            if flow.nflog_prefix().is_none() {
                flow.rare_mut().nflog_prefix = Some(prefix_of(p));
            }
        }
        Some(flow)
    }

    /// How long `f` may stay idle before it is finished.
    fn idle_limit(cfg: &FlowConfig, f: &Flow<A>) -> i64 {
        match f.proto {
            Proto::Tcp if f.closed() => cfg.tcp_closed_idle_ns,
            Proto::Tcp if f.attempt_only() => attempt_idle_limit(cfg),
            proto => open_idle_limit(cfg, proto),
        }
    }

    /// Finishes flows that have been idle too long: exactly those a look at every flow would
    /// find, but only the flows whose check has come up are looked at. A flow found still
    /// active is checked again when it could next be idle too long.
    fn sweep(&mut self, sink: &mut impl FnMut(Box<Flow<A>>)) {
        self.next_sweep = self.now.saturating_add(SWEEP_EVERY_NS);
        let now = self.now;
        while let Some(&Reverse((at, hash))) = self.timers.peek() {
            if at >= now {
                break;
            }
            self.timers.pop();
            let due = |f: &Flow<A>| f.timer_ns == at;
            let Some(f) = self.map.get_mut_by(hash, due) else {
                self.sweep_pending(at, hash, sink);
                continue;
            };
            let limit = Self::idle_limit(&self.cfg, f);
            if now.saturating_sub(f.last_ns) > limit {
                let f = self.map.remove_by(hash, due).expect("present");
                self.emit(f, now, sink);
            } else {
                // Not before `now`: the loop ends.
                f.timer_ns = f.last_ns.saturating_add(limit);
                self.timers.push(Reverse((f.timer_ns, hash)));
            }
        }
    }

    /// The idle check `(at, hash)` of a flow that waits as its first packet, if one does:
    /// finishes it when idle too long (always, as nothing came since), else checks it later.
    fn sweep_pending(&mut self, at: i64, hash: u64, sink: &mut impl FnMut(Box<Flow<A>>)) {
        let now = self.now;
        let due = |p: &Pending| p.timer_ns == at;
        let Some(p) = self.pending.get_mut_by(hash, due) else {
            return;
        };
        let limit = first_packet_idle_limit(&self.cfg, p.proto());
        if now.saturating_sub(p.ts) > limit {
            let p = self.pending.remove_by(hash, due).expect("present");
            self.emit_waiting(*p, false, now, sink);
        } else {
            p.timer_ns = p.ts.saturating_add(limit);
            self.timers.push(Reverse((p.timer_ns, hash)));
        }
    }

    /// The table is full at time `now` (the packet that needs a new flow): finish the least
    /// recently active eighth of it.
    fn evict(&mut self, now: i64, sink: &mut impl FnMut(Box<Flow<A>>)) {
        let mut last: Vec<i64> = self
            .map
            .values()
            .map(|f| f.last_ns)
            .chain(self.pending.values().map(|p| p.ts))
            .collect();
        let n = (last.len() / 8).max(1);
        let (_, cutoff, _) = last.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let victims: Vec<Key> = self
            .map
            .values()
            .filter(|f| f.last_ns <= cutoff)
            .map(|f| f.key())
            .collect();
        for k in victims {
            if let Some(mut f) = self.map.remove(&k) {
                f.evicted = true;
                self.stats.evicted += 1;
                self.emit(f, now, sink);
            }
        }
        let victims: Vec<Key> = self
            .pending
            .values()
            .filter(|p| p.ts <= cutoff)
            .map(|p| p.key())
            .collect();
        for k in victims {
            if let Some(p) = self.pending.remove(&k) {
                self.stats.evicted += 1;
                self.emit_waiting(*p, true, now, sink);
            }
        }
        // The checks of the evicted flows would stay in the heap until their time came (a
        // flood evicts a flow per packet, and its checks are minutes ahead): only each live
        // flow's current check is kept, the one a sweep acts on (see `sweep`).
        if self.timers.len() > 2 * self.live() + 1024 {
            self.timers = self
                .map
                .entries()
                .map(|(hash, f)| Reverse((f.timer_ns, hash)))
                .chain(
                    self.pending
                        .entries()
                        .map(|(hash, p)| Reverse((p.timer_ns, hash))),
                )
                .collect();
        }
    }

    /// Hands on a flow that finished while it waited as its first packet: as that packet when
    /// the table hands such flows on so, else made.
    fn emit_waiting(
        &mut self,
        p: Pending,
        evicted: bool,
        until: i64,
        sink: &mut impl FnMut(Box<Flow<A>>),
    ) {
        if self.hand_on {
            self.waiting_out.push(Waiting {
                packet: p,
                evicted,
                end_frame: self.frame,
                until_ns: until,
            });
        } else {
            let mut f = p.flow(&self.cfg);
            f.evicted = evicted;
            self.emit(f, until, sink);
        }
    }

    /// Hands a finished flow on, watched until `until` (see [`Flow::until_ns`]).
    fn emit(&mut self, mut f: Box<Flow<A>>, until: i64, sink: &mut impl FnMut(Box<Flow<A>>)) {
        // The flow leaves the table's accounting; its buffers go with it to the sink, which
        // reads them (protocol extractors) and frees them with [`Flow::release_buffers`].
        self.budget += f.held();
        f.life.1 = self.frame;
        f.until_ns = until;
        sink(f);
    }

    /// Finishes every live flow (end of input), in first-seen order.
    pub fn finish(&mut self, sink: &mut impl FnMut(Box<Flow<A>>)) {
        self.timers.clear();
        self.frame = u64::MAX;
        if self.hand_on {
            let frame = self.frame;
            self.waiting_out.reserve_exact(self.pending.len());
            let waiting = self.pending.drain().map(|p| Waiting {
                packet: *p,
                evicted: false,
                end_frame: frame,
                until_ns: i64::MAX,
            });
            self.waiting_out.extend(waiting);
        }
        let cfg = &self.cfg;
        let mut rest: Vec<Box<Flow<A>>> = self
            .map
            .drain()
            .chain(self.pending.drain().map(|p| p.flow(cfg)))
            .collect();
        rest.sort_by(|a, b| order(a, b));
        for f in rest {
            // Watched until the input's end, which the reader knows (`i64::MAX` until then).
            self.emit(f, i64::MAX, sink);
        }
    }
}

/// The most flows alive at once, from the lifetimes (`Flow::life`) of every flow of one input,
/// whichever table held them: at one frame, flows finished there leave before a flow created
/// there arrives, as in [`FlowTable`]'s own count (`TableStats::peak_live`).
pub fn peak_live<A>(flows: &[Box<Flow<A>>]) -> u64 {
    // (frame, 0 = finished / 1 = created)
    let mut ev: Vec<(u64, u8)> = Vec::with_capacity(flows.len() * 2);
    for f in flows {
        ev.push((f.life.0, 1));
        if f.life.1 != u64::MAX {
            ev.push((f.life.1, 0));
        }
    }
    ev.sort_unstable();
    let (mut live, mut peak) = (0u64, 0u64);
    for (_, created) in ev {
        if created == 1 {
            live += 1;
            peak = peak.max(live);
        } else {
            live = live.saturating_sub(1);
        }
    }
    peak
}

/// Deterministic order of finished flows: first seen, then the tuple.
pub fn order<A>(a: &Flow<A>, b: &Flow<A>) -> std::cmp::Ordering {
    order_key(a).cmp(&order_key(b))
}

/// What [`order`] compares.
pub fn order_key<A>(f: &Flow<A>) -> (i64, Proto, Endpoint, Endpoint, u32) {
    (f.first_ns, f.proto, f.client, f.server, f.tunnel)
}

/// Puts finished flows in [`order`] (stably, on the current rayon pool).
pub fn sort_flows<A: Send>(flows: &mut [Box<Flow<A>>]) {
    use rayon::prelude::*;
    if !flows
        .windows(2)
        .all(|w| order_key(&w[0]) <= order_key(&w[1]))
    {
        flows.par_sort_by_cached_key(|f| order_key(f));
    }
}

/// The encapsulation layers of a flow's first frame (out of line: rare, and it allocates).
#[cold]
#[inline(never)]
fn encap_of(linktype: u32, frame: &[u8]) -> Box<[crate::decode::EncapLayer]> {
    crate::decode::encap_layers(linktype, frame).into_boxed_slice()
}

/// An NFLOG prefix as kept on a flow (out of line: once per flow, and it allocates).
#[cold]
#[inline(never)]
fn prefix_of(p: &[u8]) -> Box<str> {
    String::from_utf8_lossy(p).into()
}

/// A packet being accounted: when, its length on the wire, whether the capture cut it, its IP
/// header and what its outer layers said. [`FlowTable::entry`] makes a new flow from it.
#[derive(Clone, Copy)]
struct Packet<'a> {
    ts: i64,
    wire_len: u32,
    cut: bool,
    ip: &'a IpHeader,
    outer: &'a Outer<'a>,
}

/// The transport header of a flow's first packet that waits (see [`Pending`]).
#[derive(Debug, Clone, Copy)]
enum FirstL4 {
    /// A SYN without payload.
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
    },
    /// A datagram that cannot open a QUIC connection (see `may_open_quic`): its length and
    /// first byte are all the flow reads of its payload.
    Udp {
        src_port: u16,
        dst_port: u16,
        payload_len: u32,
        lead: Option<u8>,
    },
}

/// A flow that has had one packet, kept as that packet (about 100 bytes, where a flow takes
/// 456): a flood of SYNs or queries that nothing answers is nearly all such flows. It becomes
/// its flow ([`Pending::flow`]: a flow made and its packet accounted by the same functions as
/// any other's) when a second packet comes, when it has been idle too long, when it is
/// evicted, and at the end of the input, so a flow is the same whether its first packet waited
/// or not. Only a packet whose flow keeps nothing of its payload waits: a TCP SYN without
/// payload, a UDP datagram that cannot open a QUIC connection, neither with encapsulation
/// layers nor an NFLOG prefix.
#[derive(Debug, Clone)]
struct Pending {
    ip: IpHeader,
    l4: FirstL4,
    ts: i64,
    wire_len: u32,
    cut: bool,
    /// The frame the flow was created at (`Flow::life.0`).
    frame: u64,
    /// The flow's idle check (`Flow::timer_ns`).
    timer_ns: i64,
}

impl Pending {
    fn proto(&self) -> Proto {
        match self.l4 {
            FirstL4::Tcp { .. } => Proto::Tcp,
            FirstL4::Udp { .. } => Proto::Udp,
        }
    }

    fn ports(&self) -> (u16, u16) {
        match self.l4 {
            FirstL4::Tcp {
                src_port, dst_port, ..
            }
            | FirstL4::Udp {
                src_port, dst_port, ..
            } => (src_port, dst_port),
        }
    }

    /// The packet's source and destination, and whether its source is the flow's server.
    fn oriented(&self) -> (Endpoint, Endpoint, bool) {
        let (sp, dp) = self.ports();
        let (src, dst) = ends_of(&self.ip, sp, dp);
        let flipped = match self.l4 {
            FirstL4::Tcp { flags, .. } => tcp_flips(flags, sp, dp),
            FirstL4::Udp { .. } => port_flips(sp, dp),
        };
        (src, dst, flipped)
    }

    /// The flow's client and server.
    fn ends(&self) -> (Endpoint, Endpoint) {
        match self.oriented() {
            (src, dst, true) => (dst, src),
            (src, dst, false) => (src, dst),
        }
    }

    /// The flow its packet makes, as [`FlowTable::entry`] and the packet functions make it.
    fn flow<A: AppFacts>(&self, cfg: &FlowConfig) -> Box<Flow<A>> {
        let (sp, dp) = self.ports();
        let (src, _, flipped) = self.oriented();
        let (client, server) = self.ends();
        let (proto, tunnel) = (self.proto(), self.ip.tunnel);
        let mut f = made_flow(
            proto, client, server, self.ts, flipped, tunnel, self.frame, cfg,
        );
        f.timer_ns = self.timer_ns;
        // No outer layers: a packet that brought some does not wait.
        let outer = Outer::default();
        let pkt = Packet {
            ts: self.ts,
            wire_len: self.wire_len,
            cut: self.cut,
            ip: &self.ip,
            outer: &outer,
        };
        match self.l4 {
            FirstL4::Tcp {
                seq,
                ack,
                flags,
                window,
                ..
            } => {
                let t = crate::decode::Tcp {
                    src_port: sp,
                    dst_port: dp,
                    seq,
                    ack,
                    flags,
                    window,
                    payload: &[],
                    payload_len: 0,
                };
                let mut budget = 0;
                let tun = TcpTunables::of(cfg);
                let closed = tcp_on(&mut f, &src, &pkt, &t, tun, &mut budget);
                debug_assert!(closed.is_none(), "a SYN does not close");
            }
            FirstL4::Udp {
                payload_len, lead, ..
            } => {
                let lead = lead.map(|b| [b]);
                let u = crate::decode::Udp {
                    src_port: sp,
                    dst_port: dp,
                    payload: lead.as_ref().map_or(&[][..], |b| &b[..]),
                    payload_len,
                };
                // No budget: nothing of a datagram that waits is kept.
                let kept = udp_on(&mut f, &src, &pkt, &u, 0);
                debug_assert_eq!(kept, 0);
            }
        }
        Box::new(f)
    }
}

/// A flow that finished while it still waited as its first packet, handed on as that packet
/// (about 130 bytes instead of a flow's 456) by a table told to
/// ([`FlowTable::hand_on_waiting`]): [`Waiting::flow`] makes the very flow the table would
/// have handed to its sink. A reader that takes a flood's flows a part at a time never holds
/// them all made at once.
#[derive(Debug, Clone)]
pub struct Waiting {
    packet: Pending,
    evicted: bool,
    /// `Flow::life.1`.
    end_frame: u64,
    /// `Flow::until_ns` (the reader fills in the input's end for a flow open at it).
    pub until_ns: i64,
}

impl Waiting {
    /// The flow, as the table would have handed it on.
    pub fn flow<A: AppFacts>(&self) -> Box<Flow<A>> {
        // What a waiting packet's flow reads of the table's configuration does not matter:
        // it has no payload to keep and does not close, and its idle check is its own.
        let mut f = self.packet.flow(&FlowConfig::default());
        f.evicted = self.evicted;
        f.life.1 = self.end_frame;
        f.until_ns = self.until_ns;
        f
    }

    /// The flow's [`order_key`].
    pub fn order_key(&self) -> (i64, Proto, Endpoint, Endpoint, u32) {
        let (client, server) = self.packet.ends();
        (
            self.packet.ts,
            self.packet.proto(),
            client,
            server,
            self.packet.ip.tunnel,
        )
    }

    /// The flow's client address.
    pub fn client_ip(&self) -> IpAddr {
        self.packet.ends().0.ip
    }

    /// The server's address and the TTL of its data in the flow (`Flow::dirs[1].data_ttl`):
    /// when its one packet came from the server and carried payload.
    pub fn server_data_ttl(&self) -> Option<(IpAddr, u8)> {
        let p = &self.packet;
        let payload = match p.l4 {
            FirstL4::Tcp { .. } => 0,
            FirstL4::Udp { payload_len, .. } => payload_len,
        };
        let (src, _, flipped) = p.oriented();
        (flipped && payload > 0).then_some((src.ip, p.ip.ttl))
    }

    /// The frame at which the table finished the flow (`Flow::life.1`).
    pub fn end_frame(&self) -> u64 {
        self.end_frame
    }
}

impl map::Keyed for Pending {
    fn key(&self) -> Key {
        let (sp, dp) = self.ports();
        let (src, dst) = ends_of(&self.ip, sp, dp);
        Key::new(self.proto(), src, dst, self.ip.tunnel)
    }
}

impl<A: AppFacts> map::Keyed for Flow<A> {
    fn key(&self) -> Key {
        Flow::key(self)
    }
}

/// How long a flow of `proto` that is not closed may stay idle.
fn open_idle_limit(cfg: &FlowConfig, proto: Proto) -> i64 {
    match proto {
        Proto::Tcp => cfg.tcp_idle_ns,
        _ => cfg.udp_idle_ns,
    }
}

/// How long a TCP flow that is only unanswered SYNs may stay idle.
fn attempt_idle_limit(cfg: &FlowConfig) -> i64 {
    cfg.tcp_attempt_idle_ns.min(cfg.tcp_idle_ns)
}

/// How long a flow that waits as its first packet may stay idle: a SYN is an attempt (and does
/// not close), a datagram opens a flow like any other.
fn first_packet_idle_limit(cfg: &FlowConfig, proto: Proto) -> i64 {
    match proto {
        Proto::Tcp => attempt_idle_limit(cfg),
        _ => open_idle_limit(cfg, proto),
    }
}

/// TCP orientation from a flow's first packet: its sender is the client if it sent a SYN; the
/// receiver of a SYN-ACK is; else the first sender is, unless it speaks from a service port to
/// a port that is not one. Whether the sender is the server.
fn tcp_flips(flags: u8, src_port: u16, dst_port: u16) -> bool {
    match flags & (tf::SYN | tf::ACK) {
        f if f == tf::SYN => false,
        f if f == tf::SYN | tf::ACK => true,
        _ => port_flips(src_port, dst_port),
    }
}

/// Orientation by ports (UDP, and TCP without a handshake packet): the first sender is the
/// client, unless it speaks from a service port to a port that is not one. Whether the sender
/// is the server.
fn port_flips(src_port: u16, dst_port: u16) -> bool {
    is_service_port(src_port) && !is_service_port(dst_port)
}

/// A new flow of `client` and `server` whose first packet (at `ts`, frame `frame`) came from
/// the server when `flipped`, with its idle check due (not yet in the table's queue).
#[allow(clippy::too_many_arguments)]
fn made_flow<A: AppFacts>(
    proto: Proto,
    client: Endpoint,
    server: Endpoint,
    ts: i64,
    flipped: bool,
    tunnel: u32,
    frame: u64,
    cfg: &FlowConfig,
) -> Flow<A> {
    let mut f = Flow::new(proto, client, server, ts);
    f.life.0 = frame;
    f.timer_ns = ts.saturating_add(FlowTable::<A>::idle_limit(cfg, &f));
    f.flipped = flipped;
    if flipped {
        f.history.add(true, b'^');
    }
    f.tunnel = tunnel;
    f
}

/// What of [`FlowConfig`] accounting a TCP segment reads.
#[derive(Clone, Copy)]
struct TcpTunables {
    cap: usize,
    bypass: bool,
    closed_idle: i64,
}

impl TcpTunables {
    fn of(cfg: &FlowConfig) -> TcpTunables {
        TcpTunables {
            cap: cfg.reassembly_cap,
            bypass: cfg.encrypted_bypass,
            closed_idle: cfg.tcp_closed_idle_ns,
        }
    }
}

/// Accounts a TCP segment from `src` on its flow: counters, history, handshake, close, first
/// flight (against `budget`). Returns when the flow, closed by it, is next to be checked for
/// idleness, if that is sooner than its check so far (the caller queues it).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tcp_on<A: AppFacts>(
    flow: &mut Flow<A>,
    src: &Endpoint,
    pkt: &Packet<'_>,
    t: &crate::decode::Tcp<'_>,
    tun: TcpTunables,
    budget: &mut usize,
) -> Option<i64> {
    let (ts, ip) = (pkt.ts, pkt.ip);
    let TcpTunables {
        cap,
        bypass,
        closed_idle,
    } = tun;
    let d = dir_of(flow, src);
    let client = d == 0;
    let prev_payload = flow.dirs[0]
        .last_payload_ns
        .max(flow.dirs[1].last_payload_ns);
    account(flow, d, pkt, t.payload_len as u64);
    if t.payload_len > 0 {
        note_quiet(
            flow,
            d,
            ts,
            prev_payload.get(),
            t.seq.wrapping_add(t.payload_len),
        );
    }
    let h = &mut flow.history;
    let inconsistent = t.flags & tf::SYN != 0 && t.flags & (tf::RST | tf::FIN) != 0;
    if inconsistent {
        h.add(client, b'I');
    }
    if t.flags & tf::SYN != 0 && !inconsistent {
        let dir = &mut flow.dirs[d];
        if dir.isn.is_none() {
            dir.isn = Some(t.seq);
            dir.stream.set_base(t.seq.wrapping_add(1));
        }
        if t.flags & tf::ACK == 0 {
            dir.syns += 1;
            h.add(client, b'S');
            if client {
                flow.saw_syn = true;
            }
        } else {
            h.add(client, b'H');
            if !client {
                flow.saw_synack = true;
            }
        }
    }
    if t.flags & (tf::RST | tf::FIN) != 0
        && flow
            .dirs
            .iter()
            .all(|d| d.fin_ns.is_none() && d.rst_ns.is_none())
    {
        flow.data_before_close_ns = flow.dirs[0]
            .last_payload_ns
            .max(flow.dirs[1].last_payload_ns);
    }
    if t.flags & tf::RST != 0 {
        h.add(client, b'R');
        flow.dirs[d].rst_ns.get_or_insert(ts);
        flow.dirs[d].rst.get_or_insert(RstFacts {
            ttl: ip.ttl,
            ip_id: ip.ip_id,
            window: t.window,
        });
    }
    if t.flags & tf::FIN != 0 {
        h.add(client, b'F');
        flow.dirs[d].fin_ns.get_or_insert(ts);
    }
    if t.window == 0 && t.flags & (tf::SYN | tf::RST) == 0 {
        h.add(client, b'W');
    }
    if t.payload_len > 0 {
        h.add(client, b'D');
        let dir = &mut flow.dirs[d];
        if !bypass {
            dir.stream.keep_all();
        }
        let r = dir
            .stream
            .push(t.seq, t.payload, t.payload_len, cap, budget);
        if r == Pushed::Retransmission {
            flow.history.add(client, b'T');
        }
    } else if t.flags == tf::ACK {
        h.add(client, b'A');
    }
    // Closed now: it may go idle sooner than its pending check.
    if t.flags & (tf::RST | tf::FIN) != 0 && flow.closed() {
        let at = flow.last_ns.saturating_add(closed_idle);
        (at < flow.timer_ns).then(|| {
            flow.timer_ns = at;
            at
        })
    } else {
        None
    }
}

/// Accounts a UDP datagram from `src` on its flow: counters, QUIC short headers, and the
/// client's first QUIC long headers then the server's (kept within `budget`). Returns the
/// bytes kept.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn udp_on<A: AppFacts>(
    flow: &mut Flow<A>,
    src: &Endpoint,
    pkt: &Packet<'_>,
    u: &crate::decode::Udp<'_>,
    budget: usize,
) -> usize {
    let d = dir_of(flow, src);
    account(flow, d, pkt, u.payload_len as u64);
    if u.payload_len > 0 {
        flow.history.add(d == 0, b'D');
    }
    // QUIC long header (form and fixed bits set): keep the client's first few for the Initial
    // decryption, from the first that may open a connection on, and then the server's first
    // few long headers (any form: Version Negotiation's other bits are arbitrary), within the
    // table's budget. Short headers are only counted.
    let first = u.payload.first().copied().unwrap_or(0);
    if first & 0xc0 == 0x40 {
        flow.short_headers = flow.short_headers.saturating_add(1);
    }
    if u.payload.len() > budget {
        return 0;
    }
    let keep = if d == 0 {
        let kept = flow.datagrams().len();
        first & 0xc0 == 0xc0
            && kept < MAX_DATAGRAMS
            && (kept > 0 || may_open_quic(Some(first), u.payload_len))
    } else {
        first & 0x80 != 0
            && !flow.datagrams().is_empty()
            && flow.server_datagrams().len() < MAX_SERVER_DATAGRAMS
    };
    if !keep {
        return 0;
    }
    let r = flow.rare_mut();
    let to = if d == 0 {
        &mut r.datagrams
    } else {
        &mut r.server_datagrams
    };
    to.push(u.payload.to_vec());
    u.payload.len()
}

/// A packet's source and destination endpoints, with the ports (or echo identifiers) given.
#[inline]
fn ends_of(ip: &IpHeader, src_port: u16, dst_port: u16) -> (Endpoint, Endpoint) {
    (
        Endpoint {
            ip: ip.src,
            port: src_port,
        },
        Endpoint {
            ip: ip.dst,
            port: dst_port,
        },
    )
}

/// 0 for a packet from the client, 1 from the server. A flow from an endpoint to itself
/// counts everything as the client's.
fn dir_of<A>(flow: &Flow<A>, src: &Endpoint) -> usize {
    usize::from(flow.client != *src)
}

/// Remembers the longest silence between two payload packets, counting only new data as the
/// end of a silence (a retransmission of unanswered data is still the same attempt).
fn note_quiet<A>(flow: &mut Flow<A>, d: usize, ts: i64, prev_payload: Option<i64>, end: u32) {
    let dir = &mut flow.dirs[d];
    let new_data = dir.seq_end.is_none_or(|e| (end.wrapping_sub(e) as i32) > 0);
    if !new_data {
        return;
    }
    dir.seq_end = Some(end);
    if let Some(prev) = prev_payload {
        let ns = ts.saturating_sub(prev);
        if flow.longest_quiet.is_none_or(|q| ns > q.ns) {
            flow.longest_quiet = Some(Quiet {
                ns,
                end_ns: ts,
                ended_by: if d == 0 { Side::Client } else { Side::Server },
            });
        }
    }
}

fn account<A>(flow: &mut Flow<A>, d: usize, pkt: &Packet<'_>, payload: u64) {
    let (ts, ttl) = (pkt.ts, pkt.ip.ttl);
    flow.last_ns = flow.last_ns.max(ts);
    flow.first_ns = flow.first_ns.min(ts);
    if pkt.cut {
        flow.cut_packets += 1;
    }
    let dir = &mut flow.dirs[d];
    dir.packets += 1;
    dir.bytes += pkt.wire_len as u64;
    dir.payload_bytes += payload;
    dir.note_ttl(ttl);
    dir.last_ns = dir.last_ns.max(OptNs::some(ts));
    if payload > 0 {
        dir.data_ttl = Some(
            dir.data_ttl
                .map_or((ttl, ttl), |(lo, hi)| (lo.min(ttl), hi.max(ttl))),
        );
        dir.first_payload_ns.get_or_insert(ts);
        dir.last_payload_ns = OptNs::some(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IcmpError, Quoted, Tcp, Udp};

    const C: &str = "10.0.0.2";
    const S: &str = "10.0.0.9";
    const SEC: i64 = 1_000_000_000;

    fn ip(src: &str, dst: &str, proto: u8, ttl: u8, len: u32) -> IpHeader {
        IpHeader {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ttl,
            ip_id: Some(1),
            proto,
            payload_len: len,
            tunnel: 0,
        }
    }

    /// Feeds packets and collects finished flows.
    struct T {
        table: FlowTable,
        done: Vec<Flow>,
    }

    impl T {
        fn new() -> T {
            Self::with(FlowConfig::default())
        }
        fn with(cfg: FlowConfig) -> T {
            T {
                table: FlowTable::new(cfg),
                done: Vec::new(),
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn tcp(
            &mut self,
            ts: i64,
            from_client: bool,
            sp: u16,
            dp: u16,
            seq: u32,
            flags: u8,
            payload: &[u8],
        ) {
            let (s, d) = if from_client { (C, S) } else { (S, C) };
            let t = Tcp {
                src_port: sp,
                dst_port: dp,
                seq,
                ack: 0,
                flags,
                window: 1000,
                payload,
                payload_len: payload.len() as u32,
            };
            let h = ip(
                s,
                d,
                ipproto::TCP,
                if from_client { 64 } else { 60 },
                20 + payload.len() as u32,
            );
            let done = &mut self.done;
            self.table
                .packet(ts, 60, false, &h, &L4::Tcp(t), &mut |f| done.push(*f));
        }
        fn udp(&mut self, ts: i64, src: &str, dst: &str, sp: u16, dp: u16) {
            let u = Udp {
                src_port: sp,
                dst_port: dp,
                payload: b"x",
                payload_len: 1,
            };
            let done = &mut self.done;
            self.table.packet(
                ts,
                43,
                false,
                &ip(src, dst, ipproto::UDP, 64, 9),
                &L4::Udp(u),
                &mut |f| done.push(*f),
            );
        }
        fn icmp(&mut self, ts: i64, from: &str, proto: u8, sp: u16, dp: u16) {
            let e = IcmpError {
                v6: false,
                icmp_type: 3,
                code: 13,
                quoted: Some(Quoted {
                    proto,
                    src: C.parse().unwrap(),
                    dst: S.parse().unwrap(),
                    src_port: sp,
                    dst_port: dp,
                }),
            };
            let done = &mut self.done;
            self.table.packet(
                ts,
                70,
                false,
                &ip(from, C, ipproto::ICMP, 64, 36),
                &L4::IcmpError(e),
                &mut |f| done.push(*f),
            );
        }
        fn finish(mut self) -> Vec<Flow> {
            let done = &mut self.done;
            self.table.finish(&mut |f| done.push(*f));
            self.done
        }
    }

    const SYN: u8 = tf::SYN;
    const SA: u8 = tf::SYN | tf::ACK;
    const A: u8 = tf::ACK;
    const PA: u8 = tf::PSH | tf::ACK;
    const FA: u8 = tf::FIN | tf::ACK;
    const RA: u8 = tf::RST | tf::ACK;

    #[test]
    fn established_with_close_and_history() {
        let mut t = T::new();
        t.tcp(0, true, 5000, 443, 100, SYN, b"");
        t.tcp(1, false, 443, 5000, 900, SA, b"");
        t.tcp(2, true, 5000, 443, 101, A, b"");
        t.tcp(3, true, 5000, 443, 101, PA, b"hello");
        t.tcp(4, false, 443, 5000, 901, PA, b"world!");
        t.tcp(5, true, 5000, 443, 106, FA, b"");
        t.tcp(6, false, 443, 5000, 907, FA, b"");
        let f = t.finish();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.outcome(), Outcome::Established);
        assert_eq!(f.history.as_str(), "ShADdFf");
        assert_eq!(f.client.port, 5000);
        assert_eq!((f.dirs[0].packets, f.dirs[1].packets), (4, 3));
        assert_eq!((f.dirs[0].payload_bytes, f.dirs[1].payload_bytes), (5, 6));
        assert_eq!(
            f.close(),
            Some(Close {
                by: Side::Client,
                how: "fin",
                ts_ns: 5
            })
        );
        assert_eq!((f.dirs[1].ttl_min, f.dirs[1].ttl_max), (Some(60), Some(60)));
        assert_eq!(f.dirs[0].stream.contiguous(), 5);
    }

    /// The longest silence counts new data only: retransmissions of the unanswered message
    /// after it (0.2 s, 0.4 s, ... 6.4 s apart) are the same attempt. The quiet before the
    /// first FIN/RST, and the TTLs of the server's own data, are kept too.
    #[test]
    fn silences_closes_and_data_ttls() {
        let mut t = T::new();
        t.tcp(0, true, 5000, 443, 100, SYN, b"");
        t.tcp(SEC / 100, false, 443, 5000, 900, SA, b"");
        t.tcp(2 * SEC / 100, true, 5000, 443, 101, PA, b"hello");
        t.tcp(3 * SEC / 100, false, 443, 5000, 901, PA, b"world!");
        let sent = 6 * SEC;
        t.tcp(sent, true, 5000, 443, 106, PA, b"ping");
        let mut at = sent;
        for backoff in [2, 4, 8, 16, 32, 64] {
            at += backoff * SEC / 10;
            t.tcp(at, true, 5000, 443, 106, PA, b"ping");
        }
        t.tcp(at + SEC, true, 5000, 443, 110, RA, b"");
        let f = &t.finish()[0];
        let q = f.longest_quiet.unwrap();
        assert_eq!(
            (q.ns, q.end_ns, q.ended_by),
            (sent - 3 * SEC / 100, sent, Side::Client)
        );
        assert_eq!(f.dirs[0].last_ns.get(), Some(at + SEC));
        assert_eq!(f.dirs[0].last_payload_ns.get(), Some(at));
        // The RST came a second after the last retransmission.
        assert_eq!(f.data_before_close_ns.get(), Some(at));
        assert_eq!(f.dirs[1].data_ttl, Some((60, 60)));
        assert_eq!(f.dirs[0].data_ttl, Some((64, 64)));
    }

    #[test]
    fn syn_only_refused_icmp_and_handshake_outcomes() {
        let mut t = T::new();
        // three SYNs, nothing back
        for i in 0..3 {
            t.tcp(i * SEC, true, 1001, 8081, 7, SYN, b"");
        }
        // RST answer
        t.tcp(0, true, 1002, 8082, 7, SYN, b"");
        t.tcp(1, false, 8082, 1002, 0, RA, b"");
        // ICMP admin prohibited from a router
        t.tcp(0, true, 1003, 8083, 7, SYN, b"");
        t.icmp(1, "10.0.0.1", ipproto::TCP, 1003, 8083);
        // handshake, no data
        t.tcp(0, true, 1004, 8084, 7, SYN, b"");
        t.tcp(1, false, 8084, 1004, 50, SA, b"");
        t.tcp(2, true, 1004, 8084, 8, A, b"");
        // hello then server FIN
        t.tcp(0, true, 1005, 8085, 7, SYN, b"");
        t.tcp(1, false, 8085, 1005, 50, SA, b"");
        t.tcp(2, true, 1005, 8085, 8, PA, b"\x16\x03\x01");
        t.tcp(3, false, 8085, 1005, 51, FA, b"");
        // hello then silence
        t.tcp(0, true, 1006, 8086, 7, SYN, b"");
        t.tcp(1, false, 8086, 1006, 50, SA, b"");
        t.tcp(2, true, 1006, 8086, 8, PA, b"GET /");
        let got: Vec<(u16, Outcome, u64)> = t
            .finish()
            .iter()
            .map(|f| (f.server.port, f.outcome(), f.attempts()))
            .collect();
        assert_eq!(
            got,
            vec![
                (8081, Outcome::NoAnswer, 3),
                (8082, Outcome::Refused, 1),
                (8083, Outcome::IcmpUnreachable, 1),
                (8084, Outcome::HandshakeOnly, 1),
                (8085, Outcome::ResetAfterHello, 1),
                (8086, Outcome::RequestUnanswered, 1),
            ]
        );
    }

    #[test]
    fn midstream_orientation_by_ports_and_synack() {
        let mut t = T::new();
        // first packet seen is the server's data: service port 443 -> client is the other side
        t.tcp(0, false, 443, 40000, 10, PA, b"data");
        t.tcp(1, true, 40000, 443, 20, A, b"");
        // SYN-ACK first: its receiver is the client
        t.tcp(2, false, 8080, 40001, 10, SA, b"");
        let f = t.finish();
        assert_eq!(f[0].client.port, 40000);
        assert_eq!(f[0].outcome(), Outcome::Midstream);
        assert!(f[0].flipped);
        assert_eq!(f[0].history.as_str(), "^dA");
        assert_eq!(f[1].client.port, 40001);
        assert_eq!(f[1].outcome(), Outcome::Midstream);
    }

    #[test]
    fn udp_orientation_and_icmp_only_flow() {
        let mut t = T::new();
        // a DNS answer seen before its query: the service port decides
        t.udp(0, S, C, 53, 33000);
        t.udp(1, C, S, 33000, 53);
        // both ephemeral: first sender is the client
        t.udp(2, S, C, 40000, 40001);
        // an ICMP error for a UDP flow never seen: the flow is made from the quote
        t.icmp(3, S, ipproto::UDP, 50000, 9999);
        // a Teredo server's answer seen first (zeek tunnels/Teredo.pcap): 3544 is the service
        t.udp(4, S, C, 3544, 3797);
        let f = t.finish();
        assert_eq!(
            (f[3].client.ip.to_string(), f[3].server.port),
            (C.to_string(), 3544)
        );
        assert_eq!((f[0].client.port, f[0].server.port), (33000, 53));
        assert_eq!(f[0].outcome(), Outcome::Established);
        assert_eq!(f[1].client.ip.to_string(), S);
        assert_eq!(f[1].outcome(), Outcome::NoAnswer);
        assert_eq!(f[2].outcome(), Outcome::IcmpUnreachable);
        assert_eq!(f[2].icmp()[0].from.to_string(), S);
        assert_eq!(f[2].dirs[0].packets + f[2].dirs[1].packets, 0);
    }

    #[test]
    fn tcp_flow_known_only_from_icmp_is_icmp_unreachable() {
        let mut t = T::new();
        t.icmp(0, "10.0.0.1", ipproto::TCP, 1234, 443);
        assert_eq!(t.table.stats().icmp_errors_unmatched, 1);
        let f = t.finish();
        assert_eq!(f[0].outcome(), Outcome::IcmpUnreachable);
        assert_eq!(f[0].client.port, 1234);
    }

    #[test]
    fn port_reuse_after_close_starts_a_new_flow() {
        let mut t = T::new();
        t.tcp(0, true, 1000, 110, 5, SYN, b"");
        t.tcp(1, false, 110, 1000, 0, RA, b"");
        t.tcp(2, true, 1000, 110, 5, SYN, b""); // same ISN: a retransmission, same flow
        t.tcp(3, true, 1000, 110, 9999, SYN, b""); // new ISN after RST: new connection
        t.tcp(4, false, 110, 1000, 0, RA, b"");
        let f = t.finish();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].dirs[0].syns, 2);
        assert_eq!(f[1].dirs[0].syns, 1);
        assert!(f.iter().all(|f| f.outcome() == Outcome::Refused));
        // The first was replaced, and watched until the new connection's SYN.
        assert!(f[0].replaced && !f[1].replaced);
        assert_eq!(f[0].until_ns, 3);
    }

    #[test]
    fn retransmission_and_out_of_order_reassembly() {
        let mut t = T::with(FlowConfig {
            keep_first_flight: true,
            ..FlowConfig::default()
        });
        t.tcp(0, true, 5000, 443, 100, SYN, b"");
        t.tcp(1, false, 443, 5000, 900, SA, b"");
        t.tcp(2, true, 5000, 443, 107, PA, b"world");
        t.tcp(3, true, 5000, 443, 101, PA, b"hello ");
        t.tcp(4, true, 5000, 443, 101, PA, b"hello ");
        let f = t.finish();
        assert_eq!(f[0].dirs[0].stream.bytes(), b"hello world");
        assert_eq!(f[0].history.as_str(), "ShDT");
        assert_eq!(f[0].outcome(), Outcome::RequestUnanswered);
    }

    #[test]
    fn idle_expiry_and_eviction_bound_the_table() {
        let mut t = T::with(FlowConfig {
            max_flows: 16,
            udp_idle_ns: 10 * SEC,
            ..FlowConfig::default()
        });
        for i in 0..3000u16 {
            t.udp(i as i64 * 1000, C, S, 10_000 + i, 53);
        }
        assert!(t.table.live() <= 16);
        let evicted = t.table.stats().evicted;
        assert!(evicted >= 2984, "{evicted}");
        // The evicted flows' checks do not pile up in the timer queue.
        assert!(
            t.table.timers.len() <= 2 * 16 + 1024,
            "{}",
            t.table.timers.len()
        );
        // much later: the rest expires by idle time on the next packet
        t.udp(60 * SEC, C, S, 9, 53);
        assert_eq!(t.table.live(), 1);
        let f = t.finish();
        assert_eq!(f.len(), 3001);
        assert_eq!(f.iter().filter(|f| f.evicted).count() as u64, evicted);
        // Each flow says until when it was watched: an evicted one until the packet that
        // needed its place, an idle one until the sweep that found it, the last one until the
        // input's end (`i64::MAX` here: the reader fills it in).
        for (i, f) in f.iter().enumerate().take(3000) {
            if f.evicted {
                assert!(f.until_ns > f.last_ns && f.until_ns <= 3000 * 1000, "{i}");
            } else {
                assert!(f.until_ns >= 60 * SEC, "{i}");
            }
        }
        assert_eq!(f[3000].until_ns, i64::MAX);
    }

    #[test]
    fn sweep_finishes_exactly_the_flows_idle_too_long() {
        // The timer queue must finish what a look at every flow would: after each sweep, no
        // live flow is idle too long and every finished one was. Random TCP (closing by FIN
        // and RST, port reuse), UDP and ICMP errors, time jumps, timestamps going backwards.
        let cfg = FlowConfig {
            tcp_idle_ns: 20 * SEC,
            tcp_closed_idle_ns: 3 * SEC,
            tcp_attempt_idle_ns: 9 * SEC,
            udp_idle_ns: 7 * SEC,
            ..FlowConfig::default()
        };
        let mut t = T {
            table: FlowTable::with_external_clock(cfg.clone()),
            done: Vec::new(),
        };
        let mut rng = crate::rng::XorShift::new(7);
        let (mut now, mut finished) = (0i64, 0usize);
        for _ in 0..20_000 {
            now += match rng.below(100) {
                0 => 25 * SEC,
                1..=4 => -(rng.below(2 * SEC as usize) as i64),
                _ => rng.below(SEC as usize / 2) as i64,
            };
            let port = 1000 + rng.below(40) as u16;
            let flags = [SYN, SA, A, PA, FA, RA][rng.below(6)];
            match rng.below(10) {
                0..=6 => {
                    let from_client = rng.below(2) == 0;
                    let (sp, dp) = if from_client {
                        (port, 443)
                    } else {
                        (443, port)
                    };
                    let seq = rng.below(3) as u32 * 1000;
                    let body: &[u8] = if flags == PA { b"x" } else { b"" };
                    t.tcp(now, from_client, sp, dp, seq, flags, body);
                }
                7 | 8 => t.udp(now, C, S, port, 53),
                _ => t.icmp(now, "10.0.0.1", ipproto::UDP, port, 53),
            }
            let clock = t.table.now.max(now);
            let mut swept = Vec::new();
            t.table.sweep_at(now, &mut |f| swept.push(f));
            for f in &swept {
                let idle = clock.saturating_sub(f.last_ns);
                assert!(idle > FlowTable::idle_limit(&cfg, f), "finished too early");
            }
            for f in t.table.live_flows() {
                let idle = clock.saturating_sub(f.last_ns);
                assert!(
                    idle <= FlowTable::idle_limit(&cfg, f),
                    "left alive too long"
                );
            }
            finished += swept.len();
        }
        assert!(finished > 1000, "{finished}");
        // Superseded checks do not pile up: at most one per live flow plus one per close.
        assert!(t.table.timers.len() <= 4 * t.table.live() + 100);
    }

    /// A connect that nothing answers is finished 180 s after its last SYN (longer than any
    /// stack waits between two SYNs of one connect), not after the open-flow idle time, and a
    /// SYN after that is a new flow; a flow whose server answered waits the open-flow time.
    #[test]
    fn an_unanswered_connect_is_finished_after_the_attempt_idle_time() {
        let mut t = T::new();
        // Linux's SYN retries: the wait doubles, up to 120 s.
        let mut ts = 0;
        for gap in [0, 1, 2, 4, 8, 16, 32, 64, 120] {
            ts += gap * SEC;
            t.tcp(ts, true, 5000, 443, 100, SYN, b"");
        }
        t.tcp(ts, true, 6000, 443, 7, SYN, b"");
        t.tcp(ts, false, 443, 6000, 9, SA, b"");
        assert!(t.done.is_empty());
        t.tcp(ts + 181 * SEC, true, 6000, 443, 8, A, b"");
        assert_eq!(t.done.len(), 1);
        assert_eq!((t.done[0].client.port, t.done[0].attempts()), (5000, 9));
        // A new connect from the same port.
        t.tcp(ts + 182 * SEC, true, 5000, 443, 555, SYN, b"");
        t.tcp(ts + 981 * SEC, true, 7000, 443, 1, SYN, b"");
        let ports: Vec<u16> = t.done.iter().map(|f| f.client.port).collect();
        assert_eq!(
            ports,
            [5000, 5000],
            "the answered flow is idle 800 s of its 900"
        );
        assert_eq!(t.done[1].attempts(), 1);
    }

    #[test]
    fn finished_flows_leave_the_budget_and_free_their_buffers() {
        let mut t = T::new();
        t.tcp(0, true, 5000, 443, 100, SYN, b"");
        t.tcp(1, true, 5000, 443, 101, PA, b"hello");
        assert_eq!(t.table.budget + 5, FlowConfig::default().reassembly_budget);
        let mut f = t.finish();
        assert_eq!(f[0].dirs[0].stream.bytes(), b"hello");
        f[0].release_buffers();
        assert!(f[0].dirs[0].stream.bytes().is_empty());
        assert_eq!(f[0].dirs[0].stream.contiguous(), 5);
        assert_eq!(f[0].held(), 0);
    }

    /// A client keeps its long-header datagrams for the QUIC extractor from the first that may
    /// open a connection (1,200 bytes on the wire, however few were captured) on: a DNS query
    /// whose ID looks like a long header is not copied, and waits as its packet.
    #[test]
    fn quic_datagrams_kept_from_one_that_may_open_a_connection() {
        let send = |t: &mut FlowTable, ts: i64, payload: &[u8], payload_len: u32| {
            let u = Udp {
                src_port: 40000,
                dst_port: 443,
                payload,
                payload_len,
            };
            let h = ip(C, S, ipproto::UDP, 64, 8 + payload_len);
            t.packet(ts, 50, false, &h, &L4::Udp(u), &mut |_| {});
        };
        let dns_like: &[u8] = &[0xc5, 0x17, 1, 0, 0, 1];
        let initial: &[u8] = &[0xc3, 0, 0, 0, 1, 8];
        // A small long header first: waits, and is not kept when the flow is made.
        let mut t = FlowTable::new(FlowConfig::default());
        send(&mut t, 0, dns_like, 40);
        let live = |t: &FlowTable| (t.live_flows().count(), t.live_one_packet_flows().count());
        assert_eq!(live(&t), (0, 1));
        send(&mut t, 1, initial, 1200);
        let kept = |t: &FlowTable| {
            let flows: Vec<_> = t.live_flows().collect();
            assert_eq!(flows.len(), 1);
            flows[0].datagrams().to_vec()
        };
        assert_eq!(kept(&t), vec![initial.to_vec()], "the cut Initial is kept");
        // Once one was kept, the client's next long headers are kept whatever their size.
        send(&mut t, 2, dns_like, 40);
        assert_eq!(kept(&t).len(), 2);
        // A first datagram that may open QUIC makes its flow at once and is kept.
        let mut t = FlowTable::new(FlowConfig::default());
        send(&mut t, 0, initial, 1200);
        assert_eq!(live(&t), (1, 0));
        assert_eq!(kept(&t).len(), 1);
        // Short of 1,200 bytes, it is only counted.
        let mut t = FlowTable::new(FlowConfig::default());
        send(&mut t, 0, initial, 1199);
        send(&mut t, 1, initial, 1199);
        assert!(kept(&t).is_empty());
    }

    /// Flows that waited as their first packet (`Pending`) are the very flows the table makes
    /// without waiting: random packet streams (SYNs, handshakes, payload, closes, resets, UDP
    /// with and without QUIC long headers, ICMP errors quoting flows, few endpoints so flows
    /// meet again, time jumps past the idle limits, a small live-flow cap so flows are evicted)
    /// through two tables, compact first packets on and off, finish the same flows (every
    /// field, in first-seen order), at the same frames, with the same table statistics.
    #[test]
    fn waiting_first_packets_make_the_same_flows() {
        let mut rng = crate::rng::XorShift::new(0x5eed_f10e);
        let mut ttls_seen = 0;
        for round in 0..40 {
            let cfg = |compact| FlowConfig {
                max_flows: 8 + round % 40,
                tcp_idle_ns: 30 * SEC,
                tcp_closed_idle_ns: 2 * SEC,
                udp_idle_ns: 10 * SEC,
                reassembly_budget: if round % 5 == 0 { 64 } else { 1 << 20 },
                compact_first_packets: compact,
                ..FlowConfig::default()
            };
            let mut tables: [(FlowTable, Vec<Box<Flow>>); 3] = [
                (FlowTable::new(cfg(false)), Vec::new()),
                (FlowTable::new(cfg(true)), Vec::new()),
                (FlowTable::new(cfg(true)), Vec::new()),
            ];
            // The third hands waiting flows on as their packet: made by the reader.
            tables[2].0.hand_on_waiting();
            let mut handed = 0;
            let mut seen_ttl = false;
            let mut ts = 0;
            let mut waited = 0;
            for seq in 0..600u64 {
                ts += match rng.below(20) {
                    0 => 40 * SEC,
                    1..=3 => 3 * SEC,
                    _ => rng.below(50_000_000) as i64,
                };
                let hosts = [
                    "10.0.0.1",
                    "10.0.0.2",
                    "10.0.0.3",
                    "2001:db8::1",
                    "2001:db8::2",
                ];
                let a = hosts[rng.below(3) + 2 * usize::from(rng.below(4) == 0)];
                let b = hosts[rng.below(5)];
                let ports = [443u16, 53, 40000, 40001, 8080];
                let (sp, dp) = (ports[rng.below(5)], ports[rng.below(5)]);
                let v6 = a.contains(':');
                let b = if b.contains(':') == v6 { b } else { a };
                let payload: &[u8] = match rng.below(4) {
                    0 => b"",
                    1 => &[0xc3, 0, 0, 0, 1, 8],
                    2 => &[0x41, 1, 2],
                    _ => b"GET / HTTP/1.1\r\n",
                };
                let kind = rng.below(10);
                let proto = if kind < 6 {
                    ipproto::TCP
                } else if kind < 9 {
                    ipproto::UDP
                } else {
                    ipproto::ICMP
                };
                let h = ip(
                    a,
                    b,
                    proto,
                    30 + rng.below(40) as u8,
                    20 + payload.len() as u32,
                );
                let flags = [
                    tf::SYN,
                    tf::SYN,
                    tf::SYN | tf::ACK,
                    tf::ACK,
                    tf::PSH | tf::ACK,
                    tf::FIN | tf::ACK,
                    tf::RST,
                    tf::RST | tf::ACK,
                    tf::SYN | tf::FIN,
                ][rng.below(9)];
                let payload = if flags & tf::SYN != 0 && rng.below(2) == 0 {
                    b""
                } else {
                    payload
                };
                let l4 = match proto {
                    ipproto::TCP => L4::Tcp(Tcp {
                        src_port: sp,
                        dst_port: dp,
                        seq: rng.below(4) as u32 * 1000,
                        ack: 0,
                        flags,
                        window: rng.below(3) as u16 * 100,
                        payload,
                        payload_len: payload.len() as u32 + rng.below(2) as u32,
                    }),
                    // Half the datagrams are 1,200 bytes on the wire (cut by the snap
                    // length), so long headers may open QUIC and be kept.
                    ipproto::UDP => L4::Udp(Udp {
                        src_port: sp,
                        dst_port: dp,
                        payload,
                        payload_len: payload.len() as u32 + 1200 * rng.below(2) as u32,
                    }),
                    _ => L4::IcmpError(IcmpError {
                        v6,
                        icmp_type: 3,
                        code: 13,
                        quoted: Some(Quoted {
                            proto: if rng.below(2) == 0 {
                                ipproto::TCP
                            } else {
                                ipproto::UDP
                            },
                            src: b.parse().unwrap(),
                            dst: a.parse().unwrap(),
                            src_port: dp,
                            dst_port: sp,
                        }),
                    }),
                };
                let cut = rng.below(8) == 0;
                for (t, done) in &mut tables {
                    t.set_frame(seq);
                    t.packet(ts, 60, cut, &h, &l4, &mut |f| done.push(f));
                    let waiting = t.take_waiting();
                    handed += waiting.len();
                    done.extend(waiting.iter().map(Waiting::flow));
                }
                let live = tables.each_ref().map(|(t, _)| t.live());
                assert!(
                    live[0] == live[1] && live[0] == live[2],
                    "round {round} frame {seq}"
                );
                waited = waited.max(tables[1].0.pending.len());
            }
            assert!(
                waited > 0 && tables[0].0.pending.is_empty(),
                "round {round}"
            );
            for (t, done) in &mut tables {
                t.set_frame(600);
                t.finish(&mut |f| done.push(f));
                let waiting = t.take_waiting();
                for w in &waiting {
                    let f = w.flow::<()>();
                    assert_eq!(w.order_key(), order_key(&f));
                    assert_eq!(w.client_ip(), f.client.ip);
                    let ttl = f.dirs[1].data_ttl.map(|(lo, hi)| {
                        assert_eq!(lo, hi);
                        (f.server.ip, lo)
                    });
                    assert_eq!(w.server_data_ttl(), ttl);
                    seen_ttl |= ttl.is_some();
                }
                handed += waiting.len();
                done.extend(waiting.iter().map(Waiting::flow));
            }
            assert!(handed > 0, "round {round}");
            ttls_seen += usize::from(seen_ttl);
            let [(plain, mut a), (compact, mut b), (handing, mut c)] = tables;
            assert!(a.len() > 20, "round {round}: {} flows", a.len());
            for v in [&mut a, &mut b, &mut c] {
                v.sort_by(|x, y| order(x, y).then(x.life.cmp(&y.life)));
            }
            let show = |v: &[Box<Flow>]| v.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>();
            assert_eq!(show(&a), show(&b), "round {round}");
            assert_eq!(show(&a), show(&c), "round {round}");
            let stats = |t: &FlowTable| format!("{:?}", t.stats());
            assert_eq!(stats(&plain), stats(&compact));
            assert_eq!(stats(&plain), stats(&handing));
        }
        assert!(ttls_seen > 0, "a server's answer waited in some round");
    }
}

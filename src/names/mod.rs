//! Names: which host name each flow was going to, from the DNS answers its client received.
//!
//! A flow's own facts name it first (TLS SNI > CONNECT target > HTTP Host > QUIC SNI, see
//! [`crate::proto::facts`]); this stage names the rest from DNS as flows finish ([`Namer`]):
//! the answers in time order, CNAME chains followed back to the name that was asked.

use crate::proto::dns::DnsMessage;
use crate::proto::Described;

mod hosts;
pub mod lookups;
mod map;
mod resolved;
mod tags;

pub use hosts::{arp_sender, frame_macs, HostTies, Hosts, Sightings};
pub use map::{name_by_dns, name_by_tag, DnsMap};
pub use resolved::Usage;
pub use tags::{RangesError, TagRanges};

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
    /// The tunnel it came through (`IpHeader::tunnel`, 0 for none): an answer names only the
    /// flows of its own tunnel (two overlays may reuse one address space).
    pub tunnel: u32,
    pub message: DnsMessage,
}

impl DnsEvent {
    /// For tests: a message between client 10.0.0.2:5000 and its resolver 10.0.0.53:53 over UDP.
    #[cfg(test)]
    pub(crate) fn udp_for_test(ts_ns: i64, message: DnsMessage) -> DnsEvent {
        DnsEvent {
            ts_ns,
            client: "10.0.0.2".parse().unwrap(),
            client_port: 5000,
            server: "10.0.0.53".parse().unwrap(),
            server_port: 53,
            transport: "udp",
            ttl: 64,
            ip_id: None,
            tunnel: 0,
            message,
        }
    }
}

/// The order of DNS messages: by time, then by transport and endpoints (messages between the
/// same endpoints keep the order they were seen in, which the caller keeps with a stable sort).
pub(crate) fn dns_order(a: &DnsEvent, b: &DnsEvent) -> std::cmp::Ordering {
    (
        a.ts_ns,
        a.transport,
        a.client,
        a.client_port,
        a.server,
        a.server_port,
    )
        .cmp(&(
            b.ts_ns,
            b.transport,
            b.client,
            b.client_port,
            b.server,
            b.server_port,
        ))
}

/// Names flows from DNS as an input goes by, a batch of finished flows at a time (an epoch of
/// the input: the flows that finished between two sweeps of the flow table, with the DNS
/// messages of that stretch). For each epoch it drops copies of one datagram captured on both
/// sides of a router, puts the DNS messages in time order, and names the flows that carry no
/// name of their own (SNI, CONNECT, Host, QUIC) from the latest answer their client's host got
/// for the server's address before the flow began (the host: its addresses tied as the input
/// showed so far, see [`HostTies`]). The map keeps the answers' times, so a flow that finishes
/// long after it began is named by what was answered before its start.
///
/// Fed the whole input as one epoch, this is the pass over the whole input: an answer that
/// came over TCP names the flows that followed it even when its own connection stayed open
/// longer. Fed epoch by epoch, an answer a later epoch brings (a DNS connection still open, a
/// capture whose timestamps go back) names only the flows that finish after it.
#[derive(Debug, Default)]
pub struct Namer {
    ties: HostTies,
    map: DnsMap,
    /// Copies of the last few UDP messages kept, in frame order: a copy of one of them in the
    /// next epoch is dropped too.
    recent: Vec<DnsEvent>,
}

/// How many of the latest kept UDP messages a datagram is compared with (see
/// [`Namer::epoch`]).
const COPY_WINDOW: usize = 8;

impl Namer {
    /// Takes in one epoch: the flows that finished (in [`crate::flow::order`]), its DNS
    /// messages over UDP with their frame numbers and over TCP, and the (address, MAC address)
    /// pairs it showed; names the flows and returns the DNS messages kept, in time order.
    pub fn epoch(
        &mut self,
        flows: &mut [Box<Described>],
        udp: Vec<(u64, DnsEvent)>,
        tcp: Vec<DnsEvent>,
        seen: impl IntoIterator<Item = (std::net::IpAddr, [u8; 6])>,
    ) -> Vec<DnsEvent> {
        let kept = self.messages(udp, tcp);
        self.observe(flows.iter().map(|f| f.client.ip), &kept, seen);
        let mut next = 0;
        self.name(flows, &kept, &mut next);
        self.close(&kept, next);
        kept
    }

    /// [`Namer::epoch`] in steps, for an epoch whose flows are named a part at a time: the
    /// epoch's DNS messages kept (copies dropped), in time order.
    pub fn messages(&mut self, mut udp: Vec<(u64, DnsEvent)>, tcp: Vec<DnsEvent>) -> Vec<DnsEvent> {
        // Copies are looked for in capture order, as the frames came (frame numbers are unique).
        udp.sort_unstable_by_key(|(seq, _)| *seq);
        let mut kept: Vec<DnsEvent> = Vec::with_capacity(udp.len() + tcp.len());
        for (_, e) in udp {
            // The same datagram captured on both legs of a router or firewall is one message:
            // the copy is identical, from the same endpoints, within 100 ms, with the same
            // IPv4 ID and a different TTL (the router decremented it). A duplicate the sender
            // really sent twice keeps its TTL and stays (as Zeek and tshark count it); a
            // client's retry comes later. The first copy in the file is kept.
            let copy = kept
                .iter()
                .rev()
                .chain(self.recent.iter().rev())
                .take(COPY_WINDOW)
                .any(|k| {
                    (e.ts_ns - k.ts_ns).abs() < 100_000_000
                        && k.ttl != e.ttl
                        && k.ip_id == e.ip_id
                        && k.client == e.client
                        && k.client_port == e.client_port
                        && k.server == e.server
                        && k.server_port == e.server_port
                        && same_message(&k.message, &e.message)
                });
            if !copy {
                kept.push(e);
            }
        }
        if !kept.is_empty() {
            let from_kept = kept.len().min(COPY_WINDOW);
            let from_recent = COPY_WINDOW - from_kept;
            let old = self.recent.len().saturating_sub(from_recent);
            self.recent.drain(..old);
            self.recent
                .extend(kept[kept.len() - from_kept..].iter().cloned());
        }
        kept.extend(tcp);
        // Stable: messages between the same endpoints at the same time keep their order
        // (capture order over UDP; over TCP, a flow's client messages, then its server's).
        kept.sort_by(dns_order);
        kept
    }

    /// The epoch's clients (every flow's, in any order) and address sightings, with its
    /// messages' clients: host ties learned before any flow of the epoch is named.
    pub fn observe(
        &mut self,
        clients: impl IntoIterator<Item = std::net::IpAddr>,
        kept: &[DnsEvent],
        seen: impl IntoIterator<Item = (std::net::IpAddr, [u8; 6])>,
    ) {
        self.ties.observe(
            clients.into_iter().chain(kept.iter().map(|e| e.client)),
            seen,
        );
    }

    /// Names the next flows of the epoch (in flow order, after those named before), taking
    /// in each message of `kept` from `next` on that came before a flow began.
    pub fn name(&mut self, flows: &mut [Box<Described>], kept: &[DnsEvent], next: &mut usize) {
        let hosts = self.ties.hosts();
        for f in flows.iter_mut() {
            while let Some(e) = kept.get(*next).filter(|e| e.ts_ns <= f.first_ns) {
                self.map
                    .add_response(e.ts_ns, e.tunnel, e.client, &e.message);
                *next += 1;
            }
            name_by_dns(f, &self.map, hosts);
        }
    }

    /// Ends the epoch: takes in the messages after its last flow began.
    pub fn close(&mut self, kept: &[DnsEvent], next: usize) {
        for e in kept.get(next..).unwrap_or_default() {
            self.map
                .add_response(e.ts_ns, e.tunnel, e.client, &e.message);
        }
    }
}

/// The service-tag pass (`--service-tags FILE`), after the [`Namer`]: each flow known only
/// by its server's address is named by the tag whose range holds it, if one does.
pub fn name_from_tags(flows: &mut [Box<Described>], tags: &TagRanges) {
    for f in flows {
        name_by_tag(f, tags);
    }
}

/// Whether two copies of a datagram carry the same DNS message. A copy the snap length cut
/// (each capture point cuts at its own offset: link headers differ in length) is the same when
/// its header matches and what it kept of the questions and answers is a prefix of the other's.
fn same_message(a: &DnsMessage, b: &DnsMessage) -> bool {
    if a.partial.is_none() && b.partial.is_none() {
        return a == b;
    }
    let (short, long) =
        if a.questions.len() + a.answers.len() <= b.questions.len() + b.answers.len() {
            (a, b)
        } else {
            (b, a)
        };
    (a.id, a.response, a.opcode, a.rcode & 0x0f, a.tc)
        == (b.id, b.response, b.opcode, b.rcode & 0x0f, b.tc)
        && long.questions.starts_with(&short.questions)
        && long.answers.starts_with(&short.answers)
}

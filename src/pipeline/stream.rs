//! The epochs of one input put together in order and named ([`Stream`]).
//!
//! Every worker of an input sweeps its flow table at the same points of the capture (one
//! [`super::SweepClock`] drives them all), and hands on what finished since the last sweep as
//! an [`Epoch`]. The stream waits for every worker's epoch of a sweep, joins them (flows in
//! [`crate::flow::order`], as one table would have finished them), names the flows from DNS
//! ([`crate::names::Namer`]) and hands them on; the same epochs in the same order whatever the
//! number of workers, so the result does not depend on it.

use std::collections::VecDeque;

use super::summary::DnsEvent;
use super::worker::{Epoch, Worker};
use crate::flow::Waiting;
use crate::names::Namer;
use crate::proto::Described;

/// A flow of an epoch, made or waiting as its first packet.
enum Either<'a> {
    Made(&'a Described),
    Waiting(&'a Waiting),
}

/// The made and the waiting flows of an epoch, each in flow order, merged (a made flow first
/// on a tie).
struct Merged<'a> {
    made: &'a [Box<Described>],
    waiting: &'a [Waiting],
    at: (usize, usize),
}

impl<'a> Iterator for Merged<'a> {
    type Item = Either<'a>;
    fn next(&mut self) -> Option<Either<'a>> {
        let (m, w) = self.at;
        match (self.made.get(m), self.waiting.get(w)) {
            (Some(f), Some(x)) if x.order_key() < crate::flow::order_key(f) => {
                self.at.1 += 1;
                Some(Either::Waiting(x))
            }
            (Some(f), _) => {
                self.at.0 += 1;
                Some(Either::Made(f))
            }
            (None, Some(x)) => {
                self.at.1 += 1;
                Some(Either::Waiting(x))
            }
            (None, None) => None,
        }
    }
}

/// Finished flows, boxed as the flow table made them.
#[allow(clippy::vec_box)]
pub(crate) type Finished = Vec<Box<Described>>;

/// What takes an input's flows as they finish: every epoch's DNS messages (in time order),
/// then its flows (named, in flow order). The audit judges and folds them there, so that
/// they need not stay.
pub trait FlowSink: Send {
    fn dns(&mut self, messages: Vec<DnsEvent>);
    /// Before an epoch's flows, when they come in several parts (a flood's thousands of flows
    /// that had one packet are made a part at a time): the TTLs of every server's own data in
    /// all of the epoch's flows, which judging any of them may need (see
    /// `crate::audit::judge::server_ttls_into`).
    fn server_ttls(&mut self, _ttls: &[(std::net::IpAddr, u8)]) {}
    /// An epoch's flows, or the next part of them (in flow order).
    fn flows(&mut self, flows: Finished);
    /// The input ended (after its last epoch).
    fn end(&mut self) {}
}

/// An input's epochs, joined in order and named; handed to a [`FlowSink`] if there is one,
/// else collected.
pub(crate) struct Stream<'s> {
    sink: Option<&'s mut dyn FlowSink>,
    namer: Namer,
    /// Per worker, its epochs not yet joined (a worker may be a few sweeps ahead of another).
    queues: Vec<VecDeque<Epoch>>,
    flows: Finished,
    dns: Vec<DnsEvent>,
    /// Flows alive after the last epoch joined, and the most alive at once so far.
    live: u64,
    peak: u64,
    /// The input's latest time, once known: flows open at its end were watched until then.
    end_ns: Option<i64>,
    /// How many flows [`Stream::join_in_parts`] makes at a time (`FlowConfig::make_at_once`).
    part: usize,
}

impl<'s> Stream<'s> {
    /// A stream of the epochs of `workers` workers, its flows handed to `sink` if given.
    pub(crate) fn new(
        workers: usize,
        sink: Option<&'s mut dyn FlowSink>,
        cfg: &crate::flow::FlowConfig,
    ) -> Stream<'s> {
        Stream {
            sink,
            namer: Namer::default(),
            queues: (0..workers.max(1)).map(|_| VecDeque::new()).collect(),
            flows: Vec::new(),
            dns: Vec::new(),
            live: 0,
            peak: 0,
            end_ns: None,
            part: cfg.make_at_once.max(1),
        }
    }

    /// The input ended at `end_ns` (its latest frame time): the flows still open then, in the
    /// epochs pushed from now on, were watched until it (see [`crate::flow::Flow::until_ns`]).
    pub(crate) fn end_at(&mut self, end_ns: Option<i64>) {
        self.end_ns = end_ns;
    }

    /// Takes the next epoch of `worker`; joins and names every epoch all workers handed on.
    pub(crate) fn push(&mut self, worker: usize, epoch: Epoch) {
        self.queues[worker].push_back(epoch);
        self.join_ready(false);
    }

    /// Joins the epochs every worker handed on (`all`: also those only some did).
    fn join_ready(&mut self, all: bool) {
        while self.queues.iter().all(|q| !q.is_empty())
            || (all && self.queues.iter().any(|q| !q.is_empty()))
        {
            let parts: Vec<Epoch> = self
                .queues
                .iter_mut()
                .filter_map(|q| q.pop_front())
                .collect();
            self.join(parts);
        }
    }

    /// One epoch of every worker: joined, named, collected.
    fn join(&mut self, parts: Vec<Epoch>) {
        let mut flows: Finished = Vec::new();
        let (mut udp, mut tcp) = (Vec::new(), Vec::new());
        let mut seen = crate::names::Sightings::default();
        let mut waiting: Vec<Waiting> = Vec::new();
        // (frame, 0 = finished / 1 = created): every flow created or finished in this epoch,
        // as [`crate::flow::peak_live`] orders them over a whole input.
        let mut lives: Vec<(u64, u8)> = Vec::new();
        for p in parts {
            lives.extend(p.created.iter().map(|&c| (c, 1)));
            if flows.is_empty() {
                flows = p.flows;
            } else {
                flows.extend(p.flows);
            }
            udp.extend(p.udp_dns);
            tcp.extend(p.tcp_dns);
            seen.extend(p.seen);
            if waiting.is_empty() {
                waiting = p.waiting;
            } else {
                waiting.extend(p.waiting);
            }
        }
        lives.extend(
            flows
                .iter()
                .filter(|f| f.life.1 != u64::MAX)
                .map(|f| (f.life.1, 0))
                .chain(
                    waiting
                        .iter()
                        .filter(|w| w.end_frame() != u64::MAX)
                        .map(|w| (w.end_frame(), 0)),
                ),
        );
        lives.sort_unstable();
        for (_, created) in lives {
            if created == 1 {
                self.live += 1;
                self.peak = self.peak.max(self.live);
            } else {
                self.live = self.live.saturating_sub(1);
            }
        }
        if let Some(end) = self.end_ns {
            for f in flows.iter_mut().filter(|f| f.until_ns == i64::MAX) {
                f.until_ns = end;
            }
            for w in waiting.iter_mut().filter(|w| w.until_ns == i64::MAX) {
                w.until_ns = end;
            }
        }
        if flows.len() + waiting.len() > self.part {
            crate::flow::sort_flows(&mut flows);
            self.join_in_parts(flows, waiting, udp, tcp, seen);
            return;
        }
        // Few enough to make at once (and to name without copying the epoch's messages).
        flows.extend(waiting.iter().map(Worker::made));
        drop(waiting);
        crate::flow::sort_flows(&mut flows);
        let kept = self.namer.epoch(&mut flows, udp, tcp, seen);
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.dns(kept);
            sink.flows(flows);
            return;
        }
        self.dns.extend(kept);
        if self.flows.is_empty() {
            self.flows = flows;
        } else {
            self.flows.extend(flows);
        }
    }

    /// The rest of [`Stream::join`] for an epoch of more than `part` flows, some of which
    /// waited as their first packet: they are made, named and handed on `part` at a time, in
    /// flow order among the others, so that a flood's flows are never all made at once. The
    /// same flows, names and order as making them all first.
    fn join_in_parts(
        &mut self,
        flows: Finished,
        mut waiting: Vec<Waiting>,
        udp: Vec<(u64, DnsEvent)>,
        tcp: Vec<DnsEvent>,
        seen: crate::names::Sightings,
    ) {
        waiting.sort_by_key(Waiting::order_key);
        // Both in flow order: merged (a made flow first on a tie) without moving either.
        let merged = || Merged {
            made: &flows,
            waiting: &waiting,
            at: (0, 0),
        };
        let kept = self.namer.messages(udp, tcp);
        let clients = merged().map(|i| match i {
            Either::Made(f) => f.client.ip,
            Either::Waiting(w) => w.client_ip(),
        });
        self.namer.observe(clients, &kept, seen);
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.dns(kept.clone());
            let mut ttls = Vec::new();
            for i in merged() {
                match i {
                    Either::Made(f) => ttls.extend(f.server_data_ttls()),
                    Either::Waiting(w) => ttls.extend(w.server_data_ttl()),
                }
            }
            sink.server_ttls(&ttls);
        }
        // Which of the two each flow in order is; then a part at a time, the made flows taken
        // out of `flows` and the waiting ones made from their packet.
        let order: Vec<bool> = merged().map(|i| matches!(i, Either::Made(_))).collect();
        let mut made = flows.into_iter();
        let mut waits = waiting.iter();
        let mut next = 0;
        let mut at = 0;
        while at < order.len() {
            let end = (at + self.part).min(order.len());
            let mut part: Finished = order[at..end]
                .iter()
                .filter_map(|&is_made| {
                    if is_made {
                        made.next()
                    } else {
                        waits.next().map(Worker::made)
                    }
                })
                .collect();
            at = end;
            self.namer.name(&mut part, &kept, &mut next);
            match self.sink.as_deref_mut() {
                Some(sink) => sink.flows(part),
                None => self.flows.extend(part),
            }
        }
        self.namer.close(&kept, next);
        if self.sink.is_none() {
            self.dns.extend(kept);
        }
    }

    /// The named flows in [`crate::flow::order`] and the DNS messages in time order (none when
    /// a sink took them) and the most flows alive at once, once every worker handed on
    /// its last epoch (a worker that handed on fewer epochs than the
    /// others, which cannot happen, has its epochs joined with the others' last).
    pub(crate) fn finish(mut self) -> (Finished, Vec<DnsEvent>, u64) {
        self.join_ready(true);
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.end();
        }
        crate::flow::sort_flows(&mut self.flows);
        self.dns.sort_by(crate::names::dns_order);
        (self.flows, self.dns, self.peak)
    }
}

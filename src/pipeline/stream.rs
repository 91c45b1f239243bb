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
use super::worker::Epoch;
use crate::names::Namer;
use crate::proto::Described;

/// Finished flows, boxed as the flow table made them.
#[allow(clippy::vec_box)]
pub(crate) type Finished = Vec<Box<Described>>;

/// What takes an input's flows as they finish: every epoch's DNS messages (in time order),
/// then its flows (named, in flow order). The audit judges and folds them there, so that
/// they need not stay.
pub trait FlowSink: Send {
    fn dns(&mut self, messages: Vec<DnsEvent>);
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
}

impl<'s> Stream<'s> {
    /// A stream of the epochs of `workers` workers, its flows handed to `sink` if given.
    pub(crate) fn new(workers: usize, sink: Option<&'s mut dyn FlowSink>) -> Stream<'s> {
        Stream {
            sink,
            namer: Namer::default(),
            queues: (0..workers.max(1)).map(|_| VecDeque::new()).collect(),
            flows: Vec::new(),
            dns: Vec::new(),
            live: 0,
            peak: 0,
            end_ns: None,
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
        }
        lives.extend(
            flows
                .iter()
                .filter(|f| f.life.1 != u64::MAX)
                .map(|f| (f.life.1, 0)),
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
        }
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

//! The audit of one input folded as its flows finish ([`InputFold`]): each epoch of named
//! flows the pipeline hands on is judged, grouped and counted at once, and only what the
//! report needs of the flows stays: the tallies, a bounded sample of the blocked flows per
//! finding, each websocket-capable connection in a compact form (the websocket view joins a
//! connection's legs at the end, see [`crate::audit::ws::WsInput`]), and per name and server
//! address what the local-block check asks. Every flow stays
//! only when the output lists them all (`keep`: the audit's NDJSON). DNS messages are joined
//! into lookups as they come ([`Joiner`]) and judged at once, a resolved catalog name that
//! may be a local block waiting for the end of the input.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::dns::DnsTally;
use super::judge::{judge, server_ttls_into, target_port, Judged, ServerTtls};
use super::tally::{FlowTally, FLOW_RUN};
use super::{FirstOrder, Mechanism, Verdict};
use crate::catalog::Catalog;
use crate::flow::{Endpoint, Outcome, Proto};
use crate::names::lookups::Joiner;
use crate::names::{TagRanges, Usage};
use crate::pipeline::{DnsEvent, FlowSink};
use crate::proto::Described;

/// Most flows shown under one finding (the HTML report's list).
pub const SAMPLE_FLOWS: usize = 50;

/// Finished flows, boxed as the flow table made them.
#[allow(clippy::vec_box)]
type Finished = Vec<Box<Described>>;

/// One blocked flow as a finding's list shows it.
#[derive(Debug, Clone)]
pub struct FlowSample {
    /// The input (its index among the audit's inputs) and its name.
    pub input: usize,
    pub file: String,
    pub client: Endpoint,
    pub server: Endpoint,
    pub outcome: Outcome,
    pub duration_ns: i64,
    pub evidence: String,
    order: (i64, FirstOrder),
}

/// What a blocked flow is listed under besides its name: its finding's verdict, mechanism,
/// protocol and port (one name and port always share the entry).
pub type SampleKey = (Verdict, Option<Mechanism>, Proto, u16);

/// What the report takes of the flows besides the tallies.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The first [`SAMPLE_FLOWS`] blocked flows of each finding, in input and flow order, by
    /// name.
    pub samples: BTreeMap<String, BTreeMap<SampleKey, Vec<FlowSample>>>,
    /// Flows without a name (ICMP echo aside), by kind of traffic.
    pub unattributed: BTreeMap<&'static str, u64>,
    /// Flows per input, in the order of the inputs.
    pub flows_per_input: Vec<u64>,
}

impl Folded {
    /// The sample of the blocked flows of a finding (its name, protocol and port).
    pub fn sample(&self, name: &str, key: &SampleKey) -> Option<&[FlowSample]> {
        self.samples.get(name)?.get(key).map(Vec::as_slice)
    }

    /// Takes in the samples of a later input.
    pub(super) fn merge(&mut self, later: Folded) {
        for (name, by) in later.samples {
            let mine = self.samples.entry(name).or_default();
            for (k, v) in by {
                let list = mine.entry(k).or_default();
                list.extend(v);
                list.truncate(SAMPLE_FLOWS);
            }
        }
        for (k, n) in later.unattributed {
            *self.unattributed.entry(k).or_default() += n;
        }
        self.flows_per_input.extend(later.flows_per_input);
    }
}

/// What kind of traffic a flow without a name is: a CONNECT whose target names nothing (it
/// is not `host:port`, or the capture cut it), else by protocol and server port.
fn unattributed_kind(f: &Described) -> &'static str {
    if let Some(h) = f.facts.http.as_deref().filter(|h| h.is_connect()) {
        return if h.truncated {
            "CONNECT cut by the capture"
        } else {
            "CONNECT to a target that is not host:port"
        };
    }
    match (f.proto, f.server.port) {
        (_, 53) => "DNS",
        (_, 5353) => "mDNS",
        (_, 5355) => "LLMNR",
        (_, 137 | 138) => "NetBIOS",
        (_, 67 | 68 | 546 | 547) => "DHCP",
        (_, 123) => "NTP",
        (_, 1900) => "SSDP",
        _ => "other",
    }
}

/// Takes an input's flows with their judgements as they are judged (epoch by epoch, in flow
/// order), then the end of the input: a table of rows written as the input is read.
pub trait JudgedSink: Send {
    fn rows(&mut self, flows: &[Box<Described>], judged: &[Judged]);
    /// A DNS lookup of the input, as it is judged (in the order lookups complete).
    fn lookup(&mut self, _l: &crate::names::lookups::Lookup<'_>) {}
    fn end(self: Box<Self>);
}

/// The audit of one input, folded epoch by epoch (see the module docs).
pub struct InputFold<'c> {
    catalog: &'c Catalog,
    tags: Option<&'c TagRanges>,
    input: usize,
    file: String,
    keep: bool,
    /// The TTLs of each server's own data, over the flows so far.
    ttls: ServerTtls,
    tally: FlowTally<Box<str>>,
    /// Every flow with its judgement, when `keep`.
    flows: Finished,
    judged: Vec<Judged>,
    /// The websocket view's connections so far.
    ws: crate::audit::ws::WsInput,
    usage: Usage,
    folded: Folded,
    count: u64,
    /// DNS: queries waiting for their response, and the findings of the lookups so far.
    joiner: Joiner,
    dns: DnsTally,
    /// Where the judged flows go as well, if anywhere (see [`InputFold::with_rows`]).
    rows: Option<Box<dyn JudgedSink + 'c>>,
}

/// What folding one input gave.
pub struct InputAudit {
    pub(super) file: String,
    pub(super) tally: FlowTally<Box<str>>,
    /// Every flow in flow order and its judgement, when every flow was kept.
    pub(super) flows: Finished,
    pub(super) judged: Vec<Judged>,
    /// Its websocket view, the first [`crate::audit::ws::SAMPLE_CONNECTIONS`] rows of each
    /// instance made.
    pub(super) ws: crate::audit::ws::WsView,
    pub(super) dns: DnsTally,
    /// Queries taken as unanswered early, because too many waited at once.
    pub(super) dns_gave_up: u64,
    pub(super) folded: Folded,
}

impl<'c> InputFold<'c> {
    /// The fold of input number `input` (`file`), naming flows known only by address by
    /// `tags` when given; `keep`: every flow and its judgement stays (for an output that
    /// lists them all).
    pub fn new(
        input: usize,
        file: String,
        catalog: &'c Catalog,
        tags: Option<&'c TagRanges>,
        keep: bool,
    ) -> InputFold<'c> {
        let ws = crate::audit::ws::WsInput::new(file.clone());
        InputFold {
            catalog,
            tags,
            input,
            file,
            keep,
            ttls: ServerTtls::default(),
            tally: FlowTally::default(),
            flows: Vec::new(),
            judged: Vec::new(),
            ws,
            usage: Usage::default(),
            folded: Folded::default(),
            count: 0,
            joiner: Joiner::default(),
            dns: DnsTally::default(),
            rows: None,
        }
    }

    /// Hands every flow with its judgement to `rows` as well, as it is judged.
    pub fn with_rows(mut self, rows: Box<dyn JudgedSink + 'c>) -> InputFold<'c> {
        self.rows = Some(rows);
        self
    }

    /// The input ended at `end_ns` (its latest frame time, when known): what the fold gave,
    /// its flows in flow order.
    pub fn finish(mut self, end_ns: Option<i64>) -> InputAudit {
        let joiner = std::mem::take(&mut self.joiner);
        let dns_gave_up = joiner.gave_up;
        joiner.finish(end_ns, &mut |_, q, r, given_up| self.lookup(q, r, given_up));
        // After the lookups still waiting (unanswered queries) were judged.
        if let Some(rows) = self.rows.take() {
            rows.end();
        }
        self.dns.finish(
            &self.usage,
            end_ns,
            &self.file,
            self.catalog,
            &mut self.tally,
        );
        if !self.flows.is_sorted_by_key(|f| crate::flow::order_key(f)) {
            let mut both: Vec<(Box<Described>, Option<Judged>)> = self
                .flows
                .drain(..)
                .zip(
                    self.judged
                        .drain(..)
                        .map(Some)
                        .chain(std::iter::repeat_with(|| None)),
                )
                .collect();
            both.par_sort_by_cached_key(|(f, _)| crate::flow::order_key(f));
            for (f, j) in both {
                self.flows.push(f);
                self.judged.extend(j);
            }
        }
        self.folded.flows_per_input = vec![self.count];
        InputAudit {
            file: self.file,
            tally: self.tally,
            flows: self.flows,
            judged: self.judged,
            ws: self
                .ws
                .finish(&self.ttls, crate::audit::ws::SAMPLE_CONNECTIONS),
            dns: self.dns,
            dns_gave_up,
            folded: self.folded,
        }
    }

    /// Judges one lookup (a query, its response, or both); a query `given_up` on early, or
    /// that came just before the input ended, is no failure (see [`Joiner::push`],
    /// [`Joiner::finish`]).
    fn lookup(&mut self, query: Option<DnsEvent>, response: Option<DnsEvent>, given_up: bool) {
        let l = crate::names::lookups::lookup(query.as_ref(), response.as_ref(), &self.file);
        if let Some(rows) = self.rows.as_mut() {
            rows.lookup(&l);
        }
        self.dns
            .add(&l, given_up, &self.file, self.catalog, &mut self.tally);
    }

    /// Notes a blocked flow in its finding's sample.
    fn sample(&mut self, f: &Described, j: &Judged) {
        if !matches!(
            j.verdict,
            Verdict::RequiredBlocked | Verdict::OptionalBlocked
        ) {
            return;
        }
        let (first, proto, client, server, tunnel) = crate::flow::order_key(f);
        let order = (first, (proto, client, server, tunnel));
        let name = f.facts.name.as_deref().unwrap_or_default();
        let key = (j.verdict, j.mechanism, f.proto, target_port(f));
        let by = match self.folded.samples.get_mut(name) {
            Some(by) => by,
            None => self.folded.samples.entry(name.to_string()).or_default(),
        };
        let list = by.entry(key).or_default();
        if list.len() >= SAMPLE_FLOWS && list.last().is_some_and(|s| s.order <= order) {
            return;
        }
        let at = list.partition_point(|s| s.order <= order);
        list.insert(
            at,
            FlowSample {
                input: self.input,
                file: self.file.clone(),
                client: f.client,
                server: f.server,
                outcome: f.outcome(),
                duration_ns: f.last_ns.saturating_sub(f.first_ns),
                evidence: j.evidence.clone(),
                order,
            },
        );
        list.truncate(SAMPLE_FLOWS);
    }
}

impl FlowSink for InputFold<'_> {
    fn dns(&mut self, messages: Vec<DnsEvent>) {
        let mut joiner = std::mem::take(&mut self.joiner);
        for m in messages {
            joiner.push(m, &mut |_, q, r, given_up| self.lookup(q, r, given_up));
        }
        self.joiner = joiner;
    }

    fn server_ttls(&mut self, ttls: &[(std::net::IpAddr, u8)]) {
        for &(ip, ttl) in ttls {
            self.ttls.entry(ip).or_default().insert(ttl);
        }
    }

    fn flows(&mut self, mut flows: Finished) {
        if let Some(t) = self.tags {
            crate::names::name_from_tags(&mut flows, t);
        }
        // A server's own TTLs tell a middlebox's RST: learned from every flow so far, this
        // epoch's too, before its flows are judged.
        server_ttls_into(&mut self.ttls, &flows);
        let (catalog, ttls) = (self.catalog, &self.ttls);
        let judged: Vec<Judged> = flows
            .par_iter()
            .with_min_len(256)
            .map(|f| judge(f, catalog, ttls))
            .collect();
        if let Some(rows) = self.rows.as_mut() {
            rows.rows(&flows, &judged);
        }
        let file = self.file.as_str();
        let runs: Vec<FlowTally<&str>> = flows
            .par_chunks(FLOW_RUN)
            .zip(judged.par_chunks(FLOW_RUN))
            .map(|(fs, js)| {
                let mut t = FlowTally::default();
                t.add(fs, js, file, catalog);
                t
            })
            .collect();
        let mut epoch = FlowTally::default();
        for t in runs {
            epoch.merge(t);
        }
        self.tally.merge(epoch.owned());
        self.count += flows.len() as u64;
        for (f, j) in flows.iter().zip(&judged) {
            // Only a catalog name can be a local block: others need not be remembered (by
            // the name, as the lookups are matched: not by the flow's port or protocol).
            let catalog_name = f
                .facts
                .name
                .as_deref()
                .is_some_and(|n| !self.catalog.match_name(n).is_empty());
            self.usage.add(f, catalog_name);
            let icmp = matches!(f.proto, Proto::Icmp | Proto::Icmpv6);
            if f.facts.name.is_none() && !icmp {
                *self
                    .folded
                    .unattributed
                    .entry(unattributed_kind(f))
                    .or_default() += 1;
            }
            self.sample(f, j);
        }
        for f in &flows {
            self.ws.add(f, self.catalog);
        }
        if self.keep {
            self.flows.extend(flows);
            self.judged.extend(judged);
        }
    }
}

//! The audit: every flow and DNS lookup judged against the catalog. A flow gets a verdict
//! (required / optional / unexpected, reached / blocked), and a blocked one a mechanism, a
//! confidence and one sentence of evidence; findings are grouped per catalog entry and name;
//! the entries in scope get a coverage line each.
//!
//! The vocabularies are in [`vocab`], judging one flow in [`judge`] (how a blocked one was
//! blocked in [`mechanism`]), grouping and counting in [`tally`], DNS findings in [`dns`] and
//! the coverage lines in [`coverage`]; this module ties them together.

mod coverage;
mod dns;
mod fold;
mod judge;
mod mechanism;
pub mod merge;
pub mod rules;
mod tally;
mod vocab;
pub mod ws;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Entry, ServiceTag};
use crate::flow::Outcome;
use crate::pipeline::FileResult;
use tally::FlowTally;

pub use coverage::Coverage;
pub use dns::PrivateEndpointProblem;
pub use fold::{FlowSample, Folded, InputAudit, InputFold, JudgedSink, SampleKey, SAMPLE_FLOWS};
pub use judge::{judge, server_ttls, target_port, Judged, ServerTtls};
pub use mechanism::Mechanism;
pub use vocab::{Confidence, FailOn, Verdict};

/// Version of the JSON documents this build writes (the contract in the README: fields are
/// added freely, never renamed or removed without a new version). 2: every document says what
/// produced it (`provenance`), every input its labels, size and SHA-256; `merge` needs them.
/// 3: an audit lists the first connections of each websocket instance, not all of them
/// (`websockets.connections_total` counts them); each instance carries its tallies per leg
/// (`legs`), which `merge` adds up.
pub const SCHEMA_VERSION: u32 = 3;

/// Counts by name (a verdict's, or another count's such as `dns-failure`): the build's own
/// names when audited, the names a document holds when merged.
pub type Counts = BTreeMap<Cow<'static, str>, u64>;

/// [`Counts`] of a tally, whose names are the build's own.
fn counts(tally: BTreeMap<&'static str, u64>) -> Counts {
    tally
        .into_iter()
        .map(|(k, n)| (Cow::Borrowed(k), n))
        .collect()
}

/// One grouped finding: flows (or lookups) with the same verdict, mechanism, entry, name and
/// port. Every part of the audit document is read back as it is written (`allowscope merge`),
/// and a field the build does not know is an error there (see `merge`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub verdict: Verdict,
    pub mechanism: Option<Mechanism>,
    pub confidence: Option<Confidence>,
    pub name: String,
    pub proto: Cow<'static, str>,
    pub dst_port: Option<u16>,
    #[schemars(with = "BTreeSet<String>")]
    pub dst_ips: StringSet,
    /// The flows' server addresses while flows are grouped; `dst_ips` is made of them at the
    /// end (formatting and ordering each address once).
    #[serde(skip)]
    pub(crate) ips: Addrs,
    // Boxed: an unnamed finding (most of them, on a busy link) has none.
    pub entry: Option<Box<EntryRef>>,
    /// Flows behind the finding (0 for a DNS-only finding).
    pub flows: u64,
    /// DNS lookups behind the finding (DNS findings).
    pub lookups: u64,
    pub first_seen: String,
    #[serde(skip)]
    pub first_ns: i64,
    /// One plain sentence, from the first flow or lookup.
    pub evidence: String,
    #[schemars(with = "BTreeSet<String>")]
    pub files: StringSet,
    /// Placeholder values bound by the entry's pattern.
    pub bound: BTreeMap<String, String>,
    pub port_mismatch: bool,
    /// Every flow of the finding was named by a guess: another client's DNS answer
    /// (`dns-any-client`) or a service tag (`ip-tag`). Such a blocked finding is one step less
    /// sure and does not fail a run below `--fail-on any`.
    #[serde(default)]
    pub name_guessed: bool,
    /// Over every flow to this name and entry (whatever its verdict): the worst and the best
    /// outcome seen.
    pub worst_outcome: Option<Outcome>,
    pub best_outcome: Option<Outcome>,
    /// Of the flow that gave the evidence: what orders it among flows of the same start (none
    /// for a finding read from a document or made of lookups).
    #[serde(skip)]
    pub(crate) first_order: Option<FirstOrder>,
}

/// A finding's inputs or server addresses, in order, each once: a sorted list, not a tree (a
/// finding of one input and one address, the usual case, took a tree node of some 300 bytes
/// for each). Written and read as a set of strings is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringSet(Vec<String>);

impl StringSet {
    pub fn contains(&self, file: &str) -> bool {
        self.0.binary_search_by(|x| x.as_str().cmp(file)).is_ok()
    }

    /// Adds `file`: whether it was not there yet.
    pub fn insert(&mut self, file: String) -> bool {
        match self.0.binary_search(&file) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, file);
                true
            }
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

impl Extend<String> for StringSet {
    fn extend<I: IntoIterator<Item = String>>(&mut self, files: I) {
        for f in files {
            self.insert(f);
        }
    }
}

impl IntoIterator for StringSet {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<String> for StringSet {
    fn from_iter<I: IntoIterator<Item = String>>(files: I) -> StringSet {
        let mut v: Vec<String> = files.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        StringSet(v)
    }
}

impl Serialize for StringSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.0)
    }
}

impl<'de> Deserialize<'de> for StringSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StringSet, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into_iter().collect())
    }
}

/// A finding's server addresses while flows are grouped: most groups (every one named by its
/// address) have one, held in place; a set of them took some 100 bytes on the heap.
#[derive(Debug, Clone, Default)]
pub(crate) enum Addrs {
    #[default]
    None,
    One(std::net::IpAddr),
    Many(rustc_hash::FxHashSet<std::net::IpAddr>),
}

impl Addrs {
    pub(crate) fn insert(&mut self, ip: std::net::IpAddr) {
        match self {
            Addrs::None => *self = Addrs::One(ip),
            Addrs::One(one) if *one == ip => {}
            Addrs::One(one) => *self = Addrs::Many([*one, ip].into_iter().collect()),
            Addrs::Many(set) => {
                set.insert(ip);
            }
        }
    }

    pub(crate) fn extend(&mut self, other: Addrs) {
        match other {
            Addrs::None => {}
            Addrs::One(ip) => self.insert(ip),
            Addrs::Many(set) => set.into_iter().for_each(|ip| self.insert(ip)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &std::net::IpAddr> {
        let (one, many) = match self {
            Addrs::None => (None, None),
            Addrs::One(ip) => (Some(ip), None),
            Addrs::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Addrs::None => 0,
            Addrs::One(_) => 1,
            Addrs::Many(set) => set.len(),
        }
    }
}

impl FromIterator<std::net::IpAddr> for Addrs {
    fn from_iter<I: IntoIterator<Item = std::net::IpAddr>>(ips: I) -> Addrs {
        let mut a = Addrs::None;
        ips.into_iter().for_each(|ip| a.insert(ip));
        a
    }
}

/// The rest of a flow's [`crate::flow::order_key`] after its start.
pub(crate) type FirstOrder = (
    crate::flow::Proto,
    crate::flow::Endpoint,
    crate::flow::Endpoint,
    u32,
);

impl Finding {
    /// Takes in `later`, a finding of the same group from flows or documents after this one's:
    /// counts add up, addresses, files and bound values join, the earliest start (the first on
    /// a tie) gives the time and evidence; as sure as the least sure flow, a guess only while
    /// both are; the worst and best outcome of both. The name of the count whose sum does not
    /// fit in a u64 if one does not.
    pub(super) fn absorb(&mut self, later: Finding) -> Result<(), &'static str> {
        self.flows = self.flows.checked_add(later.flows).ok_or("flows")?;
        self.lookups = self.lookups.checked_add(later.lookups).ok_or("lookups")?;
        self.ips.extend(later.ips);
        self.dst_ips.extend(later.dst_ips);
        self.files.extend(later.files);
        if (later.first_ns, later.first_order) < (self.first_ns, self.first_order)
            && (later.first_ns < self.first_ns || later.first_order.is_some())
        {
            self.first_ns = later.first_ns;
            self.first_seen = later.first_seen;
            self.evidence = later.evidence;
            self.first_order = later.first_order;
        }
        self.confidence = self.confidence.max(later.confidence);
        self.name_guessed &= later.name_guessed;
        for (k, v) in later.bound {
            self.bound.entry(k).or_insert(v);
        }
        self.port_mismatch |= later.port_mismatch;
        if let Some(w) = later.worst_outcome {
            if self
                .worst_outcome
                .is_none_or(|x| judge::rank(w) > judge::rank(x))
            {
                self.worst_outcome = Some(w);
            }
        }
        if let Some(b) = later.best_outcome {
            if self
                .best_outcome
                .is_none_or(|x| judge::rank(b) < judge::rank(x))
            {
                self.best_outcome = Some(b);
            }
        }
        Ok(())
    }
}

/// The catalog entry a finding is about.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EntryRef {
    pub id: String,
    pub pattern: String,
    pub purpose: String,
    pub cloud: Cow<'static, str>,
    pub requirement: Cow<'static, str>,
    pub scenario: String,
    pub websocket: bool,
}

/// A service-tag rule shown as the entry of a finding: the pattern is the tag.
pub(super) fn tag_rule_ref(r: &ServiceTag) -> EntryRef {
    EntryRef {
        id: r.id.clone(),
        pattern: r.tag.clone(),
        purpose: r.purpose.clone(),
        cloud: r.cloud.name().into(),
        requirement: r.requirement.name().into(),
        scenario: r.scenario.clone(),
        websocket: false,
    }
}

pub(super) fn entry_ref(e: &Entry) -> EntryRef {
    EntryRef {
        id: e.id.clone(),
        pattern: e.pattern.text.clone(),
        purpose: e.purpose.clone(),
        cloud: e.cloud.name().into(),
        requirement: e.requirement.name().into(),
        scenario: e.scenario.clone(),
        websocket: e.websocket,
    }
}

/// The whole audit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Audit {
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
    pub dns_failures: Vec<Finding>,
    /// The rules that would let every required-blocked finding through (see [`rules`]).
    pub rules: rules::Rules,
    pub private_endpoint_dns: Vec<PrivateEndpointProblem>,
    /// Placeholder values seen in matched names (e.g. region -> {eastus}).
    pub placeholders_seen: BTreeMap<String, BTreeSet<String>>,
    pub counts: Counts,
    /// Per input file: flows per verdict (the per-file breakdown).
    pub per_file: Vec<PerFile>,
    /// Websockets to compute instances and other websocket-capable hosts (see `crate::audit::ws`).
    pub websockets: crate::audit::ws::WsReport,
    /// What the human reports take of the flows besides the findings (not in the document).
    #[serde(skip)]
    pub folded: Folded,
    /// What produced the audit (the command sets it; the JSON document writes it after the
    /// schema version).
    #[serde(skip)]
    pub provenance: Option<crate::provenance::Provenance>,
}

/// An input that failed: not found, not a capture, or not read to its end. The audit of what
/// was read is then incomplete, and every format opens by saying so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedInput {
    /// The input as named (`-` for stdin).
    pub file: String,
    /// What went wrong, naming the input (as the input's summary says it).
    pub error: String,
}

impl FailedInput {
    /// The inputs of `results` that stopped on an error.
    pub fn of(results: &[FileResult]) -> Vec<FailedInput> {
        results
            .iter()
            .filter_map(|r| {
                r.summary.error.as_ref().map(|e| FailedInput {
                    file: r.summary.file.clone(),
                    error: e.clone(),
                })
            })
            .collect()
    }
}

/// Verdict counts of one input.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerFile {
    pub file: String,
    pub counts: Counts,
}

impl Audit {
    /// Catalog hosts (required or optional) that were blocked: flows, then DNS failures.
    pub fn blocked(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| {
                matches!(
                    f.verdict,
                    Verdict::RequiredBlocked | Verdict::OptionalBlocked
                )
            })
            .chain(self.dns_failures.iter())
    }
}

pub(super) type Key = (
    Verdict,
    Option<Mechanism>,
    Option<usize>,
    String,
    &'static str,
    Option<u16>,
);

/// Judges every flow and lookup of every input read whole (its flows and DNS messages in
/// `results`): each input folded as one epoch, its flows back in `results` afterwards.
pub fn audit(results: &mut [FileResult], catalog: &Catalog) -> (Audit, Vec<Vec<Judged>>) {
    audit_in_epochs(results, catalog, usize::MAX)
}

/// [`audit`], each input's flows folded in epochs of `epoch` flows.
fn audit_in_epochs(
    results: &mut [FileResult],
    catalog: &Catalog,
    epoch: usize,
) -> (Audit, Vec<Vec<Judged>>) {
    let folds = results
        .iter_mut()
        .enumerate()
        .map(|(i, r)| {
            let mut fold = InputFold::new(i, r.summary.file.clone(), catalog, None, true);
            // The messages stay in the result (the `live` view counts them).
            crate::pipeline::FlowSink::dns(&mut fold, r.dns.clone());
            let mut flows = std::mem::take(&mut r.flows);
            while !flows.is_empty() {
                let rest = flows.split_off(epoch.min(flows.len()));
                crate::pipeline::FlowSink::flows(&mut fold, flows);
                flows = rest;
            }
            fold.finish(r.summary.latest_ns)
        })
        .collect();
    audit_inputs(folds, results, catalog)
}

/// The audit of inputs whose flows were folded as they finished (`folds`, one per input of
/// `results`, in the same order): their DNS lookups judged, everything put together. The
/// flows a fold kept (every flow, for an output that lists them) go back into `results`,
/// with their judgements returned per input.
pub fn audit_inputs(
    folds: Vec<InputAudit>,
    results: &mut [FileResult],
    catalog: &Catalog,
) -> (Audit, Vec<Vec<Judged>>) {
    let mut flows_tally: FlowTally<Box<str>> = FlowTally::default();
    let mut dns_tally = dns::DnsTally::default();
    let mut all_judged = Vec::new();
    let mut per_file = Vec::new();
    let mut ws = crate::audit::ws::WsView::new(crate::audit::ws::SAMPLE_CONNECTIONS);
    let mut folded = Folded::default();
    for (fold, r) in folds.into_iter().zip(results.iter_mut()) {
        let InputAudit {
            file,
            tally,
            flows,
            judged,
            ws: input_ws,
            dns,
            dns_gave_up,
            folded: input_folded,
        } = fold;
        if dns_gave_up > 0 {
            r.summary
                .warnings
                .push(crate::names::lookups::gave_up_warning(&file, dns_gave_up));
        }
        // The connections of one run cannot count past a u64.
        let _ = ws.merge(input_ws);
        per_file.push(PerFile {
            file,
            counts: counts(tally.counts.clone()),
        });
        flows_tally.merge(tally);
        dns_tally.merge(dns);
        folded.merge(input_folded);
        if !judged.is_empty() {
            r.flows = flows;
        }
        all_judged.push(judged);
    }
    let FlowTally {
        groups,
        counts,
        per_entry,
        placeholders_seen,
        span,
    } = flows_tally;
    let mut groups: BTreeMap<Key, Finding> = groups
        .into_iter()
        .map(|((v, m, e, name, proto, port), g)| ((v, m, e, name.into_string(), proto, port), *g))
        .collect();
    groups
        .values_mut()
        .collect::<Vec<_>>()
        .par_iter_mut()
        .for_each(|g| {
            g.dst_ips = g.ips.iter().map(|&ip| crate::text::ip_text(ip)).collect();
        });
    let coverage = coverage::of_entries(catalog, &per_entry);
    for (key, g) in groups.iter_mut() {
        let entry = key.2;
        if let Some((w, b)) = span.get(&(entry, Box::<str>::from(g.name.as_str()))) {
            g.worst_outcome = Some(*w);
            g.best_outcome = Some(*b);
        }
    }
    // Orders that `merge` can reproduce from the JSON alone (see merge.rs).
    let mut findings: Vec<Finding> = groups.into_values().collect();
    merge::sort_findings(&mut findings);
    let mut dns_failures: Vec<Finding> = dns_tally.groups.into_values().collect();
    merge::sort_findings(&mut dns_failures);
    (
        Audit {
            rules: rules::rules(&findings, &dns_failures),
            findings,
            coverage,
            dns_failures,
            private_endpoint_dns: dns_tally.private,
            placeholders_seen,
            counts: self::counts(counts),
            per_file,
            websockets: ws.report(),
            folded,
            provenance: None,
        },
        all_judged,
    )
}

#[cfg(test)]
mod tests {
    /// A string set is read and written as the set of strings it replaced: sorted, each once,
    /// whatever order and repeats a document holds; adding keeps it so.
    #[test]
    fn a_string_set_reads_and_writes_as_a_set() {
        use super::StringSet;
        let mut s: StringSet = serde_json::from_str(r#"["b", "a", "b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["a","b"]"#);
        assert!(s.insert("0".into()) && !s.insert("a".into()));
        assert!(s.contains("0") && !s.contains("c"));
        s.extend(["c".to_string(), "a".to_string()]);
        let set: std::collections::BTreeSet<&str> = ["0", "a", "b", "c"].into();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            serde_json::to_string(&set).unwrap()
        );
    }

    /// A group's addresses: one held in place, a set from the second on, each once.
    #[test]
    fn addresses_are_one_then_a_set() {
        use super::Addrs;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let mut a: Addrs = [ip("192.0.2.1"), ip("192.0.2.1")].into_iter().collect();
        assert!(matches!(a, Addrs::One(_)) && a.len() == 1);
        a.extend([ip("2001:db8::1"), ip("192.0.2.1")].into_iter().collect());
        assert!(matches!(a, Addrs::Many(_)) && a.len() == 2);
        let mut all: Vec<_> = a.iter().copied().collect();
        all.sort();
        assert_eq!(all, [ip("192.0.2.1"), ip("2001:db8::1")]);
        assert_eq!(Addrs::None.iter().count(), 0);
    }

    /// Tallying flows in runs side by side gives the same audit as one pass: every flow in a
    /// run of its own, runs of 2 and 5, and one run, over every capture of the project
    /// (several files in one audit, as with a directory).
    #[test]
    fn runs_merge_to_the_same_audit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(&[dir]);
        assert!(inputs.len() >= 20);
        let cfg = crate::flow::FlowConfig::default();
        let mut results: Vec<_> = inputs
            .iter()
            .map(|i| crate::pipeline::analyze_input(i, &cfg))
            .collect();
        // And the bench's synthetic traffic: many addresses and starts per group.
        let mut synth = Vec::new();
        crate::synth::write_pcap(&mut synth, 3 << 20, 64, 9).unwrap();
        let reader =
            crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(synth)))
                .unwrap();
        results.push(crate::pipeline::analyze_reader(
            "synth".into(),
            reader,
            &cfg,
        ));
        // Starts out of order and tied, as timestamps from several interfaces can be: the
        // earliest start (the first of the earliest on a tie) gives a group its evidence.
        let synth = results.last_mut().unwrap();
        let t0 = synth.flows[0].first_ns;
        for (i, f) in synth.flows.iter_mut().enumerate() {
            if i % 3 == 0 {
                f.first_ns -= 10_000_000_000;
            }
            if i % 7 == 0 {
                f.first_ns = t0;
            }
        }
        let flows: usize = results.iter().map(|r| r.flows.len()).sum();
        assert!(flows > 200, "{flows}");
        let catalog = crate::catalog::Catalog::builtin();
        let mut json = |run| {
            let (a, _) = super::audit_in_epochs(&mut results, &catalog, run);
            serde_json::to_string(&a).unwrap()
        };
        let whole = json(usize::MAX);
        assert!(whole.contains("required-blocked") && whole.contains("dst_ips"));
        for run in [1, 2, 5] {
            assert!(json(run) == whole, "runs of {run} differ");
        }
    }

    /// The audit JSON of `input` folded as it is read on one worker with `cfg`, as the audit
    /// command folds it (the flows not kept).
    fn folded_json(
        input: &crate::capture::Input,
        cfg: &crate::flow::FlowConfig,
        catalog: &crate::catalog::Catalog,
    ) -> String {
        let mut fold = super::InputFold::new(0, input.display(), catalog, None, false);
        let r = crate::pipeline::analyze_input_into(input, cfg, 1, false, Some(&mut fold));
        let mut results = vec![r];
        let (a, _) = super::audit_inputs(
            vec![fold.finish(results[0].summary.latest_ns)],
            &mut results,
            catalog,
        );
        serde_json::to_string(&a).unwrap()
    }

    /// On every recorded capture, the audit folded with each epoch made and named a few flows
    /// at a time (see `pipeline::Stream`) is the audit folded whole epochs at a time.
    #[test]
    fn epochs_in_parts_audit_as_whole_epochs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(std::slice::from_ref(&dir));
        assert!(inputs.len() > 40);
        let catalog = crate::catalog::Catalog::builtin();
        let run = |cfg: &_, input: &_| folded_json(input, cfg, &catalog);
        let whole = crate::flow::FlowConfig::default();
        let parts = crate::flow::FlowConfig {
            make_at_once: 2,
            ..whole.clone()
        };
        for input in &inputs {
            assert!(
                run(&whole, input) == run(&parts, input),
                "{}",
                input.display()
            );
        }
    }

    /// A RST forged in the server's name is told from the server's own by the TTLs of the
    /// server's data in the other flows of the capture, the later ones of the same epoch too:
    /// when that epoch is judged in parts, the sink learns them all before the first part
    /// (`FlowSink::server_ttls`). Here the RST's flow comes first and is a part of its own, the
    /// server's data (TTL 50, the RST's 60) only in the next part.
    #[test]
    fn a_forged_reset_is_told_when_its_epoch_comes_in_parts() {
        use crate::decode::testutil::{eth, tcp_full, V4};
        use crate::decode::{ipproto, tcp_flags as tf};
        let (c, srv) = (crate::decode::testutil::V4_A, crate::decode::testutil::V4_B);
        let hello = crate::synth::tls_client_hello("ml.azure.com");
        let answer = crate::synth::tls_server_hello();
        // The first flow: a SYN answered by a RST (TTL 60) and nothing else of the server's;
        // the second: a handshake, a ClientHello and the server's answer (TTL 50).
        let (cs, ss) = (100u32, 500u32);
        let after = cs + 1 + hello.len() as u32;
        let segments = [
            (
                true,
                64,
                tcp_full(40000, 443, cs, 0, tf::SYN, 64240, &[], &[]),
            ),
            (
                false,
                60,
                tcp_full(443, 40000, 0, cs + 1, tf::RST | tf::ACK, 0, &[], &[]),
            ),
            (
                true,
                64,
                tcp_full(40001, 443, cs, 0, tf::SYN, 64240, &[], &[]),
            ),
            (
                false,
                50,
                tcp_full(443, 40001, ss, cs + 1, tf::SYN | tf::ACK, 65160, &[], &[]),
            ),
            (
                true,
                64,
                tcp_full(40001, 443, cs + 1, ss + 1, tf::ACK, 502, &[], &[]),
            ),
            (
                true,
                64,
                tcp_full(
                    40001,
                    443,
                    cs + 1,
                    ss + 1,
                    tf::PSH | tf::ACK,
                    502,
                    &[],
                    &hello,
                ),
            ),
            (
                false,
                50,
                tcp_full(
                    443,
                    40001,
                    ss + 1,
                    after,
                    tf::PSH | tf::ACK,
                    509,
                    &[],
                    &answer,
                ),
            ),
        ];
        let mut pcap = crate::capture::testutil::PcapB::new(false, false, 65535, 1);
        for (i, (to_server, ttl, seg)) in segments.into_iter().enumerate() {
            let (src, dst) = if to_server { (c, srv) } else { (srv, c) };
            let ip = V4 {
                src,
                dst,
                ttl,
                ..V4::new(ipproto::TCP)
            };
            let frame = eth(0x0800, &ip.build(&seg));
            pcap = pcap.rec(0, 10_000 * (i as u32 + 1), &frame, frame.len() as u32);
        }
        let path =
            std::env::temp_dir().join(format!("allowscope-forged-{}.pcap", std::process::id()));
        std::fs::write(&path, pcap.build()).unwrap();
        let input = crate::capture::Input::File(path.clone());
        let catalog = crate::catalog::Catalog::builtin();
        let audit = |cfg: &crate::flow::FlowConfig| folded_json(&input, cfg, &catalog);
        let whole = audit(&crate::flow::FlowConfig::default());
        assert!(
            whole.contains(
                "made by a middlebox: its TTL 60 differs from the server's own packets (50)"
            ),
            "the RST is told as forged when the epoch is whole"
        );
        let parts = crate::flow::FlowConfig {
            make_at_once: 1,
            ..crate::flow::FlowConfig::default()
        };
        assert!(audit(&parts) == whole, "and when it comes in parts");
        std::fs::remove_file(&path).unwrap();
    }

    /// The audit folded as the input is read (epochs cut by sweeps and by frame counts, on
    /// one and two workers) is the audit of the input read whole: the same document, the same
    /// flows per input, the same sample of blocked flows.
    #[test]
    fn the_streamed_audit_is_the_whole_inputs() {
        let mut bytes = Vec::new();
        crate::synth::write_pcap(&mut bytes, 24 << 20, 64, 5).unwrap();
        let file =
            std::env::temp_dir().join(format!("allowscope-streamed-{}.pcap", std::process::id()));
        std::fs::write(&file, &bytes).unwrap();
        let input = crate::capture::Input::File(file.clone());
        let cfg = crate::flow::FlowConfig::default();
        let catalog = crate::catalog::Catalog::builtin();
        let mut whole = vec![crate::pipeline::analyze_input(&input, &cfg)];
        let frames = whole[0].summary.packets;
        assert!(frames > 3 * crate::pipeline::EPOCH_FRAMES, "{frames}");
        let (want, _) = super::audit(&mut whole, &catalog);
        let doc = |a: &super::Audit| serde_json::to_string(a).unwrap();
        // Also with every epoch made and named a few flows at a time, and with no flow waiting
        // as its first packet.
        let parts = crate::flow::FlowConfig {
            make_at_once: 5,
            ..cfg.clone()
        };
        let whole_flows = crate::flow::FlowConfig {
            compact_first_packets: false,
            ..cfg.clone()
        };
        for (workers, cfg) in [
            (1, &cfg),
            (2, &cfg),
            (1, &parts),
            (2, &parts),
            (2, &whole_flows),
        ] {
            let mut fold = super::InputFold::new(0, input.display(), &catalog, None, false);
            let r =
                crate::pipeline::analyze_input_into(&input, cfg, workers, false, Some(&mut fold));
            assert!(r.flows.is_empty() && r.dns.is_empty(), "the sink took them");
            let mut results = vec![r];
            let (got, _) = super::audit_inputs(
                vec![fold.finish(results[0].summary.latest_ns)],
                &mut results,
                &catalog,
            );
            assert!(doc(&got) == doc(&want), "{workers} workers, {cfg:?}");
            assert_eq!(got.folded.flows_per_input, want.folded.flows_per_input);
            assert_eq!(got.folded.unattributed, want.folded.unattributed);
            let sample = |a: &super::Audit| -> Vec<(String, usize)> {
                a.folded
                    .samples
                    .iter()
                    .flat_map(|(n, by)| by.values().map(move |v| (n.clone(), v.len())))
                    .collect()
            };
            assert_eq!(sample(&got), sample(&want));
        }
        std::fs::remove_file(&file).unwrap();
    }
}

//! Grouping and counting judged flows: findings per group, counts per verdict, what each
//! catalog entry saw, in runs tallied side by side and merged in order.

use crate::proto::facts::NameSource;
use std::collections::{BTreeMap, BTreeSet};

use super::judge::{rank, target_port, Judged};
use super::vocab::Verdict;
use super::Mechanism;
use super::{entry_ref, tag_rule_ref, Finding};
use crate::catalog::Catalog;
use crate::flow::{Outcome, Proto};
use crate::proto::Described;
use crate::time::rfc3339;

/// What the audit saw of one catalog entry.
#[derive(Debug, Clone, Default)]
pub(super) struct EntryTally {
    pub(super) verdicts: BTreeMap<&'static str, u64>,
    pub(super) names: BTreeSet<String>,
    pub(super) by_file: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

impl EntryTally {
    fn merge(&mut self, other: EntryTally) {
        add_counts(&mut self.verdicts, other.verdicts);
        self.names.extend(other.names);
        for (file, m) in other.by_file {
            add_counts(self.by_file.entry(file).or_default(), m);
        }
    }

    pub(super) fn count(&mut self, what: &'static str, file: &str) {
        *self.verdicts.entry(what).or_default() += 1;
        let per_file = match self.by_file.get_mut(file) {
            Some(m) => m,
            None => self.by_file.entry(file.to_string()).or_default(),
        };
        *per_file.entry(what).or_default() += 1;
    }
}

/// Adds the counts of `more` to `to`.
fn add_counts(to: &mut BTreeMap<&'static str, u64>, more: BTreeMap<&'static str, u64>) {
    for (k, n) in more {
        *to.entry(k).or_default() += n;
    }
}

/// Flows per run grouped side by side (see [`FlowTally`]).
pub(super) const FLOW_RUN: usize = 4096;

/// A group's [`Key`] while flows are grouped: the name borrowed from the flows (`&str`) while
/// a run of them is tallied, owned (`Box<str>`) once the runs are folded into an input's tally.
pub(super) type FlowKey<N> = (
    Verdict,
    Option<Mechanism>,
    Option<usize>,
    N,
    &'static str,
    Option<u16>,
);

/// What grouping and counting flows gives. Tallies of runs (or epochs) of flows merge in any
/// order to what one pass over the flows would give: every field of a group is the same for
/// each of its flows or folded by a rule that does not depend on their order (counts add up,
/// sets join, the surest confidence and the widest outcome span win, and the evidence and
/// time are those of the earliest start, the first in [`crate::flow::order`] on a tie).
pub(super) struct FlowTally<N> {
    /// Boxed: a finding is some 440 bytes, and a table of them is up to half empty.
    pub(super) groups: rustc_hash::FxHashMap<FlowKey<N>, Box<Finding>>,
    pub(super) counts: BTreeMap<&'static str, u64>,
    pub(super) per_entry: BTreeMap<usize, EntryTally>,
    pub(super) placeholders_seen: BTreeMap<String, BTreeSet<String>>,
    /// The worst and best outcome per (entry, name), over every named flow whatever its
    /// verdict (entry ids are unique, so the index stands for the id).
    pub(super) span: rustc_hash::FxHashMap<(Option<usize>, N), (Outcome, Outcome)>,
}

impl<N> Default for FlowTally<N> {
    fn default() -> Self {
        FlowTally {
            groups: Default::default(),
            counts: BTreeMap::new(),
            per_entry: BTreeMap::new(),
            placeholders_seen: BTreeMap::new(),
            span: Default::default(),
        }
    }
}

impl<'a> FlowTally<&'a str> {
    /// The tally with its names owned, to outlive the flows it was made of.
    pub(super) fn owned(self) -> FlowTally<Box<str>> {
        FlowTally {
            groups: self
                .groups
                .into_iter()
                .map(|((v, m, e, n, p, port), g)| ((v, m, e, n.into(), p, port), g))
                .collect(),
            counts: self.counts,
            per_entry: self.per_entry,
            placeholders_seen: self.placeholders_seen,
            span: self
                .span
                .into_iter()
                .map(|((e, n), s)| ((e, n.into()), s))
                .collect(),
        }
    }

    /// Tallies `flows` (of `file`) with their judgements.
    pub(super) fn add(
        &mut self,
        flows: &'a [Box<Described>],
        judged: &[Judged],
        file: &str,
        catalog: &Catalog,
    ) {
        for (f, j) in flows.iter().zip(judged) {
            // ICMP echo (ping) is not an application flow: counted on its own, never a finding.
            let counted = if matches!(f.proto, Proto::Icmp | Proto::Icmpv6) {
                "icmp-echo"
            } else {
                j.verdict.name()
            };
            *self.counts.entry(counted).or_default() += 1;
            if let Some(name) = f.facts.name.as_deref() {
                let o = f.outcome();
                note_span(self.span.entry((j.entry, name)).or_insert((o, o)), o);
            }
            if let Some(e) = j.entry {
                let pe = self.per_entry.entry(e).or_default();
                pe.count(j.verdict.name(), file);
                if let Some(n) = &f.facts.name {
                    if !pe.names.contains(n) {
                        pe.names.insert(n.clone());
                    }
                }
                for (k, v) in &j.bound {
                    let seen = self.placeholders_seen.entry(k.clone()).or_default();
                    if !seen.contains(v) {
                        seen.insert(v.clone());
                    }
                }
            }
            if j.verdict == Verdict::Unattributed {
                continue;
            }
            let name = f.facts.name.as_deref().unwrap_or_default();
            let port = target_port(f);
            let guessed = matches!(
                f.facts.name_source,
                Some(NameSource::DnsAnyClient | NameSource::IpTag)
            );
            let key = (
                j.verdict,
                j.mechanism,
                j.entry,
                name,
                f.proto.name(),
                Some(port),
            );
            let g = self.groups.entry(key).or_insert_with(|| {
                Box::new(Finding {
                    verdict: j.verdict,
                    mechanism: j.mechanism,
                    confidence: j.confidence,
                    name: name.to_string(),
                    proto: f.proto.name().into(),
                    dst_port: Some(port),
                    dst_ips: Default::default(),
                    ips: Default::default(),
                    entry: j
                        .entry
                        .map(|e| entry_ref(&catalog.entries()[e]))
                        .or_else(|| {
                            j.tag_rule
                                .map(|t| tag_rule_ref(&catalog.data().service_tags[t]))
                        })
                        .map(Box::new),
                    flows: 0,
                    lookups: 0,
                    first_seen: rfc3339(f.first_ns),
                    first_ns: f.first_ns,
                    evidence: j.evidence.clone(),
                    files: Default::default(),
                    bound: j.bound.iter().cloned().collect(),
                    port_mismatch: j.port_mismatch,
                    name_guessed: guessed,
                    worst_outcome: None,
                    best_outcome: None,
                    first_order: Some(order(f)),
                })
            });
            // The group is as sure as its least sure flow, and a guess only while every flow
            // of it is one.
            g.confidence = g.confidence.max(j.confidence);
            g.name_guessed &= guessed;
            g.flows += 1;
            g.ips.insert(f.server.ip);
            if !g.files.contains(file) {
                g.files.insert(file.to_string());
            }
            if (f.first_ns, Some(order(f))) < (g.first_ns, g.first_order) {
                g.first_ns = f.first_ns;
                g.first_seen = rfc3339(f.first_ns);
                g.evidence = j.evidence.clone();
                g.first_order = Some(order(f));
            }
        }
    }
}

/// What breaks a tie between flows of the same start (the rest of [`crate::flow::order_key`]).
fn order(f: &Described) -> super::FirstOrder {
    let (_, proto, client, server, tunnel) = crate::flow::order_key(f);
    (proto, client, server, tunnel)
}

impl<N: std::hash::Hash + Eq> FlowTally<N> {
    /// Adds the tally of other flows.
    pub(super) fn merge(&mut self, mut later: FlowTally<N>) {
        // Into an empty tally (an input's first epoch, an audit's first input): taken whole,
        // not group by group into a table that grows twice over meanwhile.
        if self.groups.is_empty() {
            std::mem::swap(&mut self.groups, &mut later.groups);
        }
        if self.span.is_empty() {
            std::mem::swap(&mut self.span, &mut later.span);
        }
        for (k, g) in later.groups {
            match self.groups.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(g);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    // The flows of one input cannot count past a u64.
                    let _ = o.into_mut().absorb(*g);
                }
            }
        }
        add_counts(&mut self.counts, later.counts);
        for (e, t) in later.per_entry {
            self.per_entry.entry(e).or_default().merge(t);
        }
        for (k, vs) in later.placeholders_seen {
            self.placeholders_seen.entry(k).or_default().extend(vs);
        }
        for (k, (worst, best)) in later.span {
            let span = self.span.entry(k).or_insert((worst, best));
            note_span(span, worst);
            note_span(span, best);
        }
    }
}

/// Widens a (worst, best) outcome span to take in `o`.
fn note_span(span: &mut (Outcome, Outcome), o: Outcome) {
    if rank(o) > rank(span.0) {
        span.0 = o;
    }
    if rank(o) < rank(span.1) {
        span.1 = o;
    }
}

#[cfg(test)]
mod tests {
    /// Merging a later run: counts add up, addresses and files join, and the evidence and
    /// time are the earliest start's (the earlier run's on a tie); the rest is the first's.
    #[test]
    fn a_later_run_merges_into_a_group() {
        use super::*;
        use crate::audit::vocab::Confidence;
        let finding = |first_ns: i64, evidence: &str, ip: &str, file: &str, conf| Finding {
            verdict: Verdict::RequiredBlocked,
            mechanism: Some(Mechanism::Drop),
            confidence: Some(conf),
            name: "a.example".into(),
            proto: "tcp".into(),
            dst_port: Some(443),
            dst_ips: Default::default(),
            ips: [ip.parse().unwrap()].into_iter().collect(),
            entry: None,
            flows: 2,
            lookups: 0,
            first_seen: format!("t{first_ns}"),
            first_ns,
            evidence: evidence.into(),
            files: [file.to_string()].into_iter().collect(),
            bound: BTreeMap::new(),
            port_mismatch: false,
            name_guessed: false,
            worst_outcome: None,
            best_outcome: None,
            first_order: None,
        };
        let key = (
            Verdict::RequiredBlocked,
            Some(Mechanism::Drop),
            None,
            "a.example",
            "tcp",
            Some(443),
        );
        let tally = |f: Finding| {
            let mut t = FlowTally::default();
            t.counts.insert("required-blocked", f.flows);
            t.groups.insert(key, Box::new(f));
            t
        };
        let mut a = tally(finding(50, "first", "192.0.2.1", "x", Confidence::Low));
        let later =
            |first_ns, evidence, ip| tally(finding(first_ns, evidence, ip, "y", Confidence::High));
        a.merge(later(50, "tie", "192.0.2.2"));
        let g = &a.groups[&key];
        assert_eq!((g.flows, g.first_ns, g.evidence.as_str()), (4, 50, "first"));
        a.merge(later(10, "earlier", "192.0.2.1"));
        let g = &a.groups[&key];
        assert_eq!((g.flows, g.first_ns, g.first_seen.as_str()), (6, 10, "t10"));
        assert_eq!(g.evidence, "earlier");
        assert_eq!(g.confidence, Some(Confidence::Low));
        assert_eq!(g.ips.len(), 2);
        assert_eq!(g.files.iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(a.counts["required-blocked"], 6);
    }
}

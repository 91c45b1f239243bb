//! DNS findings: failed lookups of catalog names, and private-endpoint chains that end at a
//! public address.

use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use super::mechanism::dns_evidence;
use super::tally::FlowTally;
use super::vocab::{Confidence, Verdict};
use super::Mechanism;
use super::{entry_ref, Finding, Key};
use crate::catalog::{Catalog, Requirement};
use crate::names::lookups::Lookup;

/// Lookups of a catalog name whose CNAME chain passes through the private-endpoint DNS zone of
/// a service (the catalog's `private_endpoint_zone` rows of the cloud in scope) and still ends
/// at a public address: the client does not get the private zone. One per name and input.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivateEndpointProblem {
    pub name: String,
    /// The chain and addresses of the earliest such lookup.
    pub chain: Vec<String>,
    pub addresses: Vec<String>,
    /// The zone the chain passes through, and the service it belongs to.
    pub zone: String,
    pub service: String,
    /// How many lookups of the name in this input did so.
    pub lookups: u64,
    pub first_seen: String,
    #[serde(skip)]
    pub first_ns: i64,
    pub file: String,
    pub evidence: String,
}

/// The private-endpoint zone that the chain of `l` passes through when it ends at a public
/// address, with the name of the chain that is in it.
fn private_endpoint_zone<'c, 'l>(
    catalog: &'c Catalog,
    l: &crate::names::lookups::Lookup<'l>,
) -> Option<(&'l str, &'c crate::catalog::PrivateEndpointZone)> {
    if !l.addresses.iter().any(is_public) {
        return None;
    }
    l.cnames
        .iter()
        .find_map(|&n| catalog.data().private_endpoint_zone(n).map(|z| (n, z)))
}

/// The row of a lookup whose chain passes through `zone` (by way of `via`).
fn private_endpoint_problem(
    qname: &str,
    via: &str,
    zone: &crate::catalog::PrivateEndpointZone,
    l: &crate::names::lookups::Lookup<'_>,
    file: &str,
) -> PrivateEndpointProblem {
    let addresses = crate::text::ips_text(&l.addresses);
    PrivateEndpointProblem {
        name: qname.to_string(),
        chain: l.cnames.iter().map(|s| s.to_string()).collect(),
        addresses: l
            .addresses
            .iter()
            .map(|&a| crate::text::ip_text(a))
            .collect(),
        zone: zone.zone.clone(),
        service: zone.service.clone(),
        lookups: 1,
        first_seen: l.time.clone(),
        first_ns: l.first_ns,
        file: file.to_string(),
        evidence: format!(
            "{qname} resolved through {via}, in {} (the privatelink zone of {}), to the public address {addresses}: the client does not get the private DNS zone",
            zone.zone, zone.service
        ),
    }
}

fn is_public(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The DNS findings of one input, its lookups taken one by one as they complete: failed
/// lookups of catalog names grouped as findings, and private-endpoint chains gone public. A
/// resolved name nothing used may be a local block, which only the whole input can tell: such
/// names wait, with what their finding needs, until [`DnsTally::finish`].
#[derive(Default)]
pub(super) struct DnsTally {
    pub(super) groups: BTreeMap<Key, Finding>,
    pub(super) private: Vec<PrivateEndpointProblem>,
    /// Per group, the lookup that gave its evidence: its start and arrival (the earliest start
    /// wins, the first to arrive on a tie).
    first: BTreeMap<Key, (i64, u64)>,
    /// The private-endpoint row of each name.
    private_at: rustc_hash::FxHashMap<String, usize>,
    /// Resolved lookups of catalog names that nothing else failed, by name.
    resolved: BTreeMap<String, Resolved>,
    /// Catalog names with a response the capture cut or could not read.
    unread: BTreeSet<String>,
    arrivals: u64,
}

/// The resolved lookups of one catalog name: the earliest answer and every address (what the
/// local-block check asks), and what a local-block finding would say.
struct Resolved {
    entry: usize,
    bound: BTreeMap<String, String>,
    first_answer: i64,
    addresses: rustc_hash::FxHashSet<std::net::IpAddr>,
    lookups: u64,
    /// The earliest lookup: its start and arrival, time and evidence.
    first: (i64, u64),
    time: String,
    evidence: String,
}

impl DnsTally {
    /// Takes one lookup of `file`, counting it in `tally` (per entry and in all). A query
    /// `given_up` on before its window passed (too many waited at once) is no `dns-no-answer`:
    /// its response may have come later.
    pub(super) fn add<N>(
        &mut self,
        l: &Lookup<'_>,
        given_up: bool,
        file: &str,
        catalog: &Catalog,
        tally: &mut FlowTally<N>,
    ) {
        self.arrivals += 1;
        let arrival = self.arrivals;
        // Responses read only in part are counted (they are answers all the same).
        for (unread, what) in [
            (l.truncated, "dns-truncated"),
            (l.malformed.is_some(), "dns-malformed"),
        ] {
            if unread {
                *tally.counts.entry(what).or_default() += 1;
            }
        }
        let Some(qname) = l.qname else { return };
        let matches = catalog.match_name(qname);
        let Some(m) = matches.first() else { return };
        if l.unread() && !self.unread.contains(qname) {
            self.unread.insert(qname.to_string());
        }
        if let Some((via, zone)) = private_endpoint_zone(catalog, l) {
            match self.private_at.get(qname) {
                Some(&i) => {
                    let p = &mut self.private[i];
                    p.lookups += 1;
                    if l.first_ns < p.first_ns {
                        let lookups = p.lookups;
                        *p = private_endpoint_problem(qname, via, zone, l, file);
                        p.lookups = lookups;
                    }
                }
                None => {
                    self.private_at
                        .insert(qname.to_string(), self.private.len());
                    self.private
                        .push(private_endpoint_problem(qname, via, zone, l, file));
                }
            }
        }
        let pe = tally.per_entry.entry(m.entry).or_default();
        if !pe.names.contains(qname) {
            pe.names.insert(qname.to_string());
        }
        if l.answered && l.rcode == Some("NOERROR") && !l.addresses.is_empty() && !l.sinkhole {
            pe.count("dns-resolved", file);
        }
        let bound = || -> BTreeMap<String, String> {
            m.bound
                .iter()
                .map(|b| (b.placeholder.to_string(), b.value.to_string()))
                .collect()
        };
        let mech = if given_up {
            None
        } else if !l.answered {
            Some(Mechanism::DnsNoAnswer)
        } else {
            match l.rcode {
                Some("NXDOMAIN") => Some(Mechanism::DnsNxdomain),
                Some("SERVFAIL") => Some(Mechanism::DnsServfail),
                Some("REFUSED") => Some(Mechanism::DnsRefused),
                _ if l.sinkhole => Some(Mechanism::DnsSinkhole),
                // A missing AAAA is normal for IPv4-only hosts: only an A query without an
                // address counts as NODATA.
                _ if l.nodata && l.qtype.as_deref() == Some("A") => Some(Mechanism::DnsNodata),
                _ => None,
            }
        };
        let Some(mech) = mech else {
            // Resolved, yet nothing may use the name (see `crate::names::resolved`): decided
            // when the input ends.
            if l.resolved() {
                let at = (l.first_ns, arrival);
                match self.resolved.get_mut(qname) {
                    Some(r) => {
                        r.lookups += 1;
                        r.first_answer = r.first_answer.min(l.ts_ns);
                        r.addresses.extend(l.addresses.iter().copied());
                        if at < r.first {
                            r.first = at;
                            r.time = l.time.clone();
                            r.evidence = dns_evidence(Mechanism::LocalBlock, qname, l);
                        }
                    }
                    None => {
                        self.resolved.insert(
                            qname.to_string(),
                            Resolved {
                                entry: m.entry,
                                bound: bound(),
                                first_answer: l.ts_ns,
                                addresses: l.addresses.iter().copied().collect(),
                                lookups: 1,
                                first: at,
                                time: l.time.clone(),
                                evidence: dns_evidence(Mechanism::LocalBlock, qname, l),
                            },
                        );
                    }
                }
            }
            return;
        };
        self.failed(
            catalog,
            tally,
            Failed {
                mech,
                entry: m.entry,
                qname,
                file,
                lookups: 1,
                first: (l.first_ns, arrival),
                time: &l.time,
                evidence: &|| dns_evidence(mech, qname, l),
                bound: &bound,
            },
        );
    }

    /// Counts failed lookups of a catalog name in its finding.
    fn failed<N>(&mut self, catalog: &Catalog, tally: &mut FlowTally<N>, f: Failed<'_>) {
        let e = &catalog.entries()[f.entry];
        let verdict = match e.requirement {
            Requirement::Required => Verdict::RequiredBlocked,
            Requirement::Optional => Verdict::OptionalBlocked,
        };
        let pe = tally.per_entry.entry(f.entry).or_default();
        for _ in 0..f.lookups {
            pe.count(verdict.name(), f.file);
        }
        let key: Key = (
            verdict,
            Some(f.mech),
            Some(f.entry),
            f.qname.to_string(),
            "dns",
            None,
        );
        let earlier = self.first.get(&key).is_none_or(|&at| f.first < at);
        if earlier {
            self.first.insert(key.clone(), f.first);
        }
        let mech = f.mech;
        let g = self.groups.entry(key).or_insert_with(|| Finding {
            verdict,
            mechanism: Some(mech),
            confidence: Some(if mech == Mechanism::LocalBlock {
                Confidence::Low
            } else if mech == Mechanism::DnsNoAnswer {
                Confidence::Medium
            } else {
                Confidence::High
            }),
            name: f.qname.to_string(),
            proto: "dns".into(),
            dst_port: None,
            dst_ips: Default::default(),
            ips: Default::default(),
            entry: Some(Box::new(entry_ref(e))),
            flows: 0,
            lookups: 0,
            first_seen: String::new(),
            first_ns: f.first.0,
            evidence: String::new(),
            files: Default::default(),
            bound: (f.bound)(),
            port_mismatch: false,
            name_guessed: false,
            worst_outcome: None,
            best_outcome: None,
            first_order: None,
        });
        if earlier {
            g.first_seen = f.time.to_string();
            g.first_ns = f.first.0;
            g.evidence = (f.evidence)();
        }
        g.lookups += f.lookups;
        if !g.files.contains(f.file) {
            g.files.insert(f.file.to_string());
        }
        *tally.counts.entry("dns-failure").or_default() += f.lookups;
    }

    /// The input ended at `end_ns` (its latest frame time, when known): the resolved names
    /// nothing used are local blocks (see `crate::names::resolved`), given what the input's
    /// flows showed (`usage`); not a name first answered less than [`crate::flow::WATCH_NS`]
    /// before the end (the capture stopped before its client could connect).
    pub(super) fn finish<N>(
        &mut self,
        usage: &crate::names::Usage,
        end_ns: Option<i64>,
        file: &str,
        catalog: &Catalog,
        tally: &mut FlowTally<N>,
    ) {
        let soon = end_ns.map_or(i64::MAX, |e| e.saturating_sub(crate::flow::WATCH_NS));
        for (name, r) in std::mem::take(&mut self.resolved) {
            let local = r.first_answer < soon
                && !self.unread.contains(&name)
                && !usage.used(&name, r.first_answer, &r.addresses);
            if !local {
                continue;
            }
            self.failed(
                catalog,
                tally,
                Failed {
                    mech: Mechanism::LocalBlock,
                    entry: r.entry,
                    qname: &name,
                    file,
                    lookups: r.lookups,
                    first: r.first,
                    time: &r.time,
                    evidence: &|| r.evidence.clone(),
                    bound: &|| r.bound.clone(),
                },
            );
        }
    }

    /// Takes in the findings of a later input: counts and inputs add up, the earlier input's
    /// lookup gives the evidence; private-endpoint rows stay one per name and input.
    pub(super) fn merge(&mut self, later: DnsTally) {
        for (k, g) in later.groups {
            match self.groups.entry(k) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(g);
                }
                std::collections::btree_map::Entry::Occupied(o) => {
                    let mine = o.into_mut();
                    mine.lookups += g.lookups;
                    mine.files.extend(g.files);
                }
            }
        }
        self.private.extend(later.private);
    }
}

/// Failed lookups of one catalog name, as [`DnsTally::failed`] counts them.
struct Failed<'a> {
    mech: Mechanism,
    entry: usize,
    qname: &'a str,
    file: &'a str,
    lookups: u64,
    /// The earliest lookup's start and arrival, time and evidence.
    first: (i64, u64),
    time: &'a str,
    evidence: &'a dyn Fn() -> String,
    bound: &'a dyn Fn() -> BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unanswered query of a catalog name is a `dns-no-answer` finding, unless it was given
    /// up on early (too many queries waited at once): its response may have come after.
    #[test]
    fn a_query_given_up_on_early_is_no_failure() {
        let catalog = Catalog::builtin();
        let query = crate::proto::dns::parse_message(&crate::synth::dns_message(
            "management.azure.com",
            7,
            false,
        ))
        .unwrap();
        let e = crate::names::DnsEvent::udp_for_test(0, query);
        let l = crate::names::lookups::lookup(Some(&e), None, "f");
        for (given_up, failures) in [(false, 1), (true, 0)] {
            let mut t = DnsTally::default();
            let mut tally: FlowTally<Box<str>> = FlowTally::default();
            t.add(&l, given_up, "f", &catalog, &mut tally);
            assert_eq!(t.groups.len(), failures, "given up: {given_up}");
            assert_eq!(
                tally.counts.get("dns-failure").copied().unwrap_or(0),
                failures as u64
            );
        }
    }
}

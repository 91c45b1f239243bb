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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The DNS findings of the inputs so far: failed lookups of catalog names grouped as
/// findings, and private-endpoint chains gone public.
#[derive(Default)]
pub(super) struct DnsTally {
    pub(super) groups: BTreeMap<Key, Finding>,
    pub(super) private: Vec<PrivateEndpointProblem>,
}

impl DnsTally {
    /// Adds the lookups of one input (`file`), counting them in `flows_tally` (per entry and
    /// in all) and in `file_counts`. One private-endpoint row per name in this input: its
    /// index in `private`.
    pub(super) fn add<N>(
        &mut self,
        lookups: Vec<Lookup<'_>>,
        local_block: Vec<bool>,
        file: &String,
        catalog: &Catalog,
        flows_tally: &mut FlowTally<N>,
        file_counts: &mut BTreeMap<&'static str, u64>,
    ) {
        let mut private_at: rustc_hash::FxHashMap<&str, usize> = Default::default();
        for (l, local_block) in lookups.into_iter().zip(local_block) {
            // Responses read only in part are counted (they are answers all the same).
            for (unread, what) in [
                (l.truncated, "dns-truncated"),
                (l.malformed.is_some(), "dns-malformed"),
            ] {
                if unread {
                    *flows_tally.counts.entry(what).or_default() += 1;
                    *file_counts.entry(what).or_default() += 1;
                }
            }
            let Some(qname) = l.qname else { continue };
            let matches = catalog.match_name(qname);
            let Some(m) = matches.first() else { continue };
            if let Some((via, zone)) = private_endpoint_zone(catalog, &l) {
                match private_at.get(qname) {
                    Some(&i) => {
                        let p = &mut self.private[i];
                        p.lookups += 1;
                        if l.first_ns < p.first_ns {
                            let lookups = p.lookups;
                            *p = private_endpoint_problem(qname, via, zone, &l, file);
                            p.lookups = lookups;
                        }
                    }
                    None => {
                        private_at.insert(qname, self.private.len());
                        self.private
                            .push(private_endpoint_problem(qname, via, zone, &l, file));
                    }
                }
            }
            flows_tally
                .per_entry
                .entry(m.entry)
                .or_default()
                .names
                .insert(qname.to_string());
            if l.answered && l.rcode == Some("NOERROR") && !l.addresses.is_empty() && !l.sinkhole {
                flows_tally
                    .per_entry
                    .entry(m.entry)
                    .or_default()
                    .count("dns-resolved", file);
            }
            let mech = if !l.answered {
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
                    // Resolved, yet nothing used the name (see `crate::names::resolved`).
                    _ if local_block => Some(Mechanism::LocalBlock),
                    _ => None,
                }
            };
            let Some(mech) = mech else { continue };
            let e = &catalog.entries()[m.entry];
            let verdict = match e.requirement {
                Requirement::Required => Verdict::RequiredBlocked,
                Requirement::Optional => Verdict::OptionalBlocked,
            };
            flows_tally
                .per_entry
                .entry(m.entry)
                .or_default()
                .count(verdict.name(), file);
            let key: Key = (
                verdict,
                Some(mech),
                Some(m.entry),
                qname.to_string(),
                "dns",
                None,
            );
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
                name: qname.to_string(),
                proto: "dns".into(),
                dst_port: None,
                dst_ips: BTreeSet::new(),
                ips: Default::default(),
                entry: Some(entry_ref(e)),
                flows: 0,
                lookups: 0,
                first_seen: l.time.clone(),
                first_ns: l.first_ns,
                evidence: dns_evidence(mech, qname, &l),
                files: BTreeSet::new(),
                bound: m
                    .bound
                    .iter()
                    .map(|b| (b.placeholder.to_string(), b.value.to_string()))
                    .collect(),
                port_mismatch: false,
                name_guessed: false,
                worst_outcome: None,
                best_outcome: None,
                first_order: None,
            });
            g.lookups += 1;
            if !g.files.contains(file) {
                g.files.insert(file.clone());
            }
            *flows_tally.counts.entry("dns-failure").or_default() += 1;
            *file_counts.entry("dns-failure").or_default() += 1;
        }
    }
}

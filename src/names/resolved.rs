//! Names that resolved but were never used: the local-block check.
//!
//! A host firewall (or an application's own policy) can refuse a connection before any SYN
//! leaves the host, so the only trace on the wire is a DNS answer that nothing followed. That
//! claim is weak and easily wrong, so it is made only when nothing in the input shows the name
//! was used:
//!
//! - every answer counts, A and AAAA (a dual-stack host asks both and uses one);
//! - a name is used when any flow of the input carries it (by SNI, CONNECT, Host, QUIC or
//!   DNS), whichever leg of a proxy and whichever client it is on;
//! - or when any flow to any address any answer gave for the name was alive at or after the
//!   name's first answer;
//! - and a name with a response the capture cut or could not read is never called a local
//!   block: the address it used may be in the part that is missing (a 96-byte snap keeps an A
//!   answer's address but cuts an AAAA answer's), nor one resolved before a flow whose name
//!   the capture cut (a hello or a CONNECT cut by the snap length) ended.

use std::net::IpAddr;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::lookups::Lookup;
use crate::proto::Described;
/// What the resolved names of one input have in common with its flows.
#[derive(Debug, Default)]
struct Resolved<'a> {
    /// Per name: its first answer and every address its answers gave.
    names: FxHashMap<&'a str, (i64, FxHashSet<IpAddr>)>,
    /// Per address: the names that resolved to it.
    by_addr: FxHashMap<IpAddr, Vec<&'a str>>,
}

/// For each lookup: whether it is a local block (see the module docs).
pub fn local_blocks(lookups: &[Lookup<'_>], flows: &[Box<Described>]) -> Vec<bool> {
    let mut r = Resolved::default();
    let unread: FxHashSet<&str> = lookups
        .iter()
        .filter(|l| l.unread())
        .filter_map(|l| l.qname)
        .collect();
    for l in lookups.iter().filter(|l| l.resolved()) {
        let Some(q) = l.qname else { continue };
        let ts = l.ts_ns;
        let (first, addrs) = r.names.entry(q).or_insert((ts, FxHashSet::default()));
        *first = (*first).min(ts);
        addrs.extend(l.addresses.iter().copied());
    }
    if r.names.is_empty() {
        return vec![false; lookups.len()];
    }
    for (name, (_, addrs)) in &r.names {
        for a in addrs {
            r.by_addr.entry(*a).or_default().push(name);
        }
    }
    // A flow whose name the capture cut (its hello or request cut by the snap length, so it
    // is named by address or not at all) may have used any name: none resolved before its
    // end is called a local block.
    let cut_unnamed_until = flows
        .iter()
        .filter(|f| {
            f.cut_packets > 0
                && matches!(
                    f.facts.name_source,
                    None | Some(crate::proto::facts::NameSource::Address)
                )
                && f.server.port != 53
        })
        .map(|f| f.last_ns)
        .max();
    let used: FxHashSet<&str> = flows
        .par_iter()
        .with_min_len(1024)
        .fold(FxHashSet::default, |mut used, f| {
            if let Some(n) = f.facts.name.as_deref() {
                if let Some((k, _)) = r.names.get_key_value(n) {
                    used.insert(*k);
                }
            }
            for n in r.by_addr.get(&f.server.ip).into_iter().flatten() {
                // A connection alive at or after the first answer used it (one that began
                // before the lookup, too: a capture may start in its middle).
                if r.names.get(n).is_some_and(|(first, _)| f.last_ns >= *first) {
                    used.insert(*n);
                }
            }
            used
        })
        .reduce(FxHashSet::default, |mut a, b| {
            a.extend(b);
            a
        });
    lookups
        .iter()
        .map(|l| {
            l.resolved()
                && l.qname.is_some_and(|q| {
                    !used.contains(q)
                        && !unread.contains(q)
                        && cut_unnamed_until
                            .is_none_or(|t| r.names.get(q).is_none_or(|(first, _)| t < *first))
                })
        })
        .collect()
}

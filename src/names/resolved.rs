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

use rustc_hash::{FxHashMap, FxHashSet};

use super::lookups::Lookup;
use crate::proto::Described;

/// What the resolved names of one input have in common with its flows.
#[derive(Debug, Default)]
struct Resolved<'a> {
    /// Per name: its first answer and every address its answers gave.
    names: FxHashMap<&'a str, (i64, FxHashSet<IpAddr>)>,
}

/// What the local-block check asks of an input's flows, taken in as they finish: the
/// names they carried, the latest moment a flow to each server address was alive, and until
/// when a flow whose name the capture cut was.
#[derive(Debug, Default)]
pub struct Usage {
    names: FxHashSet<Box<str>>,
    last_by_addr: FxHashMap<IpAddr, i64>,
    cut_unnamed_until: Option<i64>,
}

impl Usage {
    pub fn add(&mut self, f: &Described) {
        if let Some(n) = f.facts.name.as_deref() {
            if !self.names.contains(n) {
                self.names.insert(n.into());
            }
        }
        let last = self.last_by_addr.entry(f.server.ip).or_insert(f.last_ns);
        *last = (*last).max(f.last_ns);
        let cut_unnamed = f.cut_packets > 0
            && matches!(
                f.facts.name_source,
                None | Some(crate::proto::facts::NameSource::Address)
            )
            && f.server.port != 53;
        if cut_unnamed {
            self.cut_unnamed_until = self.cut_unnamed_until.max(Some(f.last_ns));
        }
    }
}

/// For each lookup: whether it is a local block (see the module docs), given what the
/// input's flows showed (`usage`).
pub fn local_blocks(lookups: &[Lookup<'_>], usage: &Usage) -> Vec<bool> {
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
    // A flow whose name the capture cut (its hello or request cut by the snap length, so it
    // is named by address or not at all) may have used any name: none resolved before its
    // end is called a local block.
    let cut_unnamed_until = usage.cut_unnamed_until;
    // A name is used when a flow carried it, or when a connection to an address it resolved
    // to was alive at or after its first answer (one that began before the lookup, too: a
    // capture may start in its middle).
    let used: FxHashSet<&str> = r
        .names
        .iter()
        .filter(|(name, (first, addrs))| {
            usage.names.contains(**name)
                || addrs
                    .iter()
                    .any(|a| usage.last_by_addr.get(a).is_some_and(|last| last >= first))
        })
        .map(|(name, _)| *name)
        .collect();
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

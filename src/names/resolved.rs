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

use crate::proto::Described;

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
    /// Takes in a finished flow; its name only when `keep_name` (the audit keeps the names
    /// of the catalog, the only ones a local block can be about).
    pub fn add(&mut self, f: &Described, keep_name: bool) {
        if let Some(n) = f.facts.name.as_deref().filter(|_| keep_name) {
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

impl Usage {
    /// Whether the flows show a name used (see the module docs): a flow carried it, a flow to
    /// an address its answers gave (`addresses`) was alive at or after its first answer
    /// (`first_answer`; one that began before the lookup counts too: a capture may start in
    /// its middle), or a flow whose name the capture cut ended at or after that answer (its
    /// hello or request cut by the snap length: it may have used any name resolved before).
    pub fn used(
        &self,
        name: &str,
        first_answer: i64,
        addresses: &rustc_hash::FxHashSet<IpAddr>,
    ) -> bool {
        self.names.contains(name)
            || addresses.iter().any(|a| {
                self.last_by_addr
                    .get(a)
                    .is_some_and(|&last| last >= first_answer)
            })
            || self.cut_unnamed_until.is_some_and(|t| t >= first_answer)
    }
}

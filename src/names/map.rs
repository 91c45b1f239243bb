//! The time-aware map from (client, address) to the DNS answers that client received.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::flow::Flow;
use crate::proto::dns::DnsMessage;
use crate::proto::facts::NameSource;

/// What DNS told each client: (client, address) -> answers in capture order.
#[derive(Debug, Default)]
pub struct DnsMap {
    map: FxHashMap<(IpAddr, IpAddr), Vec<DnsAnswer>>,
}

#[derive(Debug, Clone)]
struct DnsAnswer {
    ts_ns: i64,
    /// The name the client asked, then the CNAMEs in order (one list per response, shared by
    /// its addresses).
    chain: std::sync::Arc<[String]>,
}

impl DnsMap {
    /// Records a response the `client` received at `ts_ns`.
    pub fn add_response(&mut self, ts_ns: i64, client: IpAddr, msg: &DnsMessage) {
        if !msg.response {
            return;
        }
        let c = msg.chain();
        if c.addresses.is_empty() {
            return;
        }
        let chain: std::sync::Arc<[String]> = std::iter::once(&c.asked)
            .chain(c.cnames.iter())
            .cloned()
            .collect();
        for (addr, _ttl) in &c.addresses {
            let v = self.map.entry((client, *addr)).or_default();
            // Bounded: the latest answers are the ones that matter.
            if v.len() >= 64 {
                v.remove(0);
            }
            v.push(DnsAnswer {
                ts_ns,
                chain: chain.clone(),
            });
        }
    }

    /// The chain of the latest answer `client` got for `addr` at or before `ts_ns`.
    pub fn lookup(&self, client: IpAddr, addr: IpAddr, ts_ns: i64) -> Option<&[String]> {
        self.map
            .get(&(client, addr))?
            .iter()
            .rev()
            .find(|a| a.ts_ns <= ts_ns)
            .map(|a| &a.chain[..])
    }
}

/// Names a flow that [`extract`] left unnamed from what DNS told its client about the server's
/// address up to the flow's start (`dns` holds the answers up to then).
pub fn name_by_dns(flow: &mut Flow, dns: &DnsMap) {
    // A flow to a DNS server is named by nothing it resolved for itself.
    if flow.facts.name.is_some() || flow.server.port == 53 {
        return;
    }
    if let Some(chain) = dns.lookup(flow.client.ip, flow.server.ip, flow.first_ns) {
        let facts = &mut flow.facts;
        facts.name = chain.first().cloned();
        facts.name_source = Some(NameSource::Dns);
        facts.dns_chain = chain.to_vec();
    }
}

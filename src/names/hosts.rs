//! Which client addresses belong to one host.
//!
//! A dual-stack host often asks its resolver over one address family and connects over the
//! other (a DNS forwarder on IPv4 only; Happy Eyeballs picking IPv6), so a DNS answer must
//! name the flows of the host that received it, whichever of its addresses asked. Addresses
//! are tied into one host when:
//!
//! - the capture shows one host as the only client: at most one IPv4 client address and a few
//!   IPv6 ones ([`MAX_V6_PER_HOST`], link-local ones not counted), as in a capture taken on
//!   the client itself.
//!
//! Everything else stays apart; `crate::names::map` then falls back to an answer any client
//! received, at a lower confidence.

use std::net::IpAddr;

use rustc_hash::{FxHashMap, FxHashSet};

/// The most IPv6 addresses one host is expected to use at once (a stable address, temporary
/// privacy addresses, a ULA): more means several hosts.
pub const MAX_V6_PER_HOST: usize = 8;

/// Client addresses tied into hosts: each tied address maps to its host's representative.
#[derive(Debug, Default, Clone)]
pub struct Hosts {
    rep: FxHashMap<IpAddr, IpAddr>,
}

/// Whether an address says nothing about which host it is: link-local, loopback, unspecified,
/// multicast.
fn anonymous(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_link_local() || a.is_loopback() || a.is_unspecified() || a.is_multicast()
        }
        IpAddr::V6(a) => {
            (a.segments()[0] & 0xffc0) == 0xfe80
                || a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
        }
    }
}

impl Hosts {
    /// The representative address of the host `ip` belongs to (`ip` itself when untied).
    #[inline]
    pub fn of(&self, ip: IpAddr) -> IpAddr {
        self.rep.get(&ip).copied().unwrap_or(ip)
    }

    /// Ties the client addresses of one input (`clients`: every address that started a flow
    /// or asked a DNS question).
    pub fn tie(clients: impl IntoIterator<Item = IpAddr>) -> Hosts {
        let set: FxHashSet<IpAddr> = clients.into_iter().filter(|ip| !anonymous(ip)).collect();
        let v4 = set.iter().filter(|ip| ip.is_ipv4()).count();
        let v6 = set.len() - v4;
        let mut rep = FxHashMap::default();
        if v4 <= 1 && v6 <= MAX_V6_PER_HOST && v4 + v6 > 1 {
            // One host: every address stands for the smallest (deterministic).
            let first = *set.iter().min().expect("two or more");
            for ip in set {
                rep.insert(ip, first);
            }
        }
        Hosts { rep }
    }

    /// Whether two addresses are of one host.
    pub fn same(&self, a: IpAddr, b: IpAddr) -> bool {
        a == b || self.of(a) == self.of(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_only_client_is_one_host() {
        let h = Hosts::tie(["10.0.0.2", "fd99:1::2", "fd99:1::1234", "fe80::1"].map(ip));
        assert!(h.same(ip("10.0.0.2"), ip("fd99:1::2")));
        assert!(h.same(ip("fd99:1::1234"), ip("10.0.0.2")));
        // Link-local addresses are not tied (every host has one).
        assert!(!h.same(ip("fe80::1"), ip("10.0.0.2")));
    }

    #[test]
    fn two_ipv4_clients_are_not_tied() {
        let h = Hosts::tie(["10.0.0.2", "10.0.0.3", "fd99:1::2"].map(ip));
        assert!(!h.same(ip("10.0.0.2"), ip("fd99:1::2")));
        assert!(!h.same(ip("10.0.0.2"), ip("10.0.0.3")));
        assert_eq!(h.of(ip("10.0.0.3")), ip("10.0.0.3"));
    }

    #[test]
    fn many_ipv6_clients_are_not_one_host() {
        let many = (1..=MAX_V6_PER_HOST + 1).map(|i| ip(&format!("fd99:1::{i}")));
        let h = Hosts::tie(many.chain([ip("10.0.0.2")]));
        assert!(!h.same(ip("fd99:1::1"), ip("10.0.0.2")));
    }
}

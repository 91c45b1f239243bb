//! Which client addresses belong to one host.
//!
//! A dual-stack host often asks its resolver over one address family and connects over the
//! other (a DNS forwarder on IPv4 only; Happy Eyeballs picking IPv6), so a DNS answer must
//! name the flows of the host that received it, whichever of its addresses asked. Addresses
//! are tied into one host when:
//!
//! - they were seen with the same MAC address (Ethernet, Linux SLL and SLL2 captures): the
//!   source of a TCP SYN, of a DNS query or NDP message, the sender of an ARP packet, the
//!   destination of a DNS response ([`Sightings`]). A MAC seen with more than one IPv4 address
//!   or more than [`MAX_V6_PER_HOST`] IPv6 ones is a router's (every host behind it shares
//!   it) and ties nothing;
//! - in a capture without link-layer addresses (raw IP, loopback), the capture shows one host
//!   as the only client: at most one IPv4 client address and a few IPv6 ones
//!   ([`MAX_V6_PER_HOST`], link-local ones not counted), as in a capture taken on the client
//!   itself.
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
    /// Per representative, every address of its host (itself included), smallest first.
    members: FxHashMap<IpAddr, Box<[IpAddr]>>,
}

/// The ties of [`Hosts::tie`] learned as an input goes by, in memory bounded by the hosts
/// rather than the clients: the only-client rule needs at most two IPv4 and
/// `MAX_V6_PER_HOST + 1` IPv6 client addresses to be decided (beyond, it can never hold
/// again), and a MAC address with more addresses than one host uses is a router's for good.
/// [`HostTies::hosts`] is what `Hosts::tie` gives for everything observed so far.
#[derive(Debug, Default)]
pub struct HostTies {
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
    /// Whether any address was seen with a MAC address (whatever the address or MAC).
    sighted: bool,
    /// Per unicast, non-zero MAC address: its addresses, `None` once it proved a router's.
    by_mac: FxHashMap<[u8; 6], Option<Vec<IpAddr>>>,
    /// The hosts as of the last change, and whether they must be made again.
    hosts: Hosts,
    stale: bool,
}

impl HostTies {
    /// Takes in client addresses and (address, MAC address) sightings.
    pub fn observe(
        &mut self,
        clients: impl IntoIterator<Item = IpAddr>,
        seen: impl IntoIterator<Item = (IpAddr, [u8; 6])>,
    ) {
        for ip in clients {
            if anonymous(&ip) {
                continue;
            }
            let (list, cap) = if ip.is_ipv4() {
                (&mut self.v4, 2)
            } else {
                (&mut self.v6, MAX_V6_PER_HOST + 1)
            };
            if list.len() < cap && !list.contains(&ip) {
                list.push(ip);
                self.stale = true;
            }
        }
        for (ip, mac) in seen {
            if !self.sighted {
                self.sighted = true;
                self.stale = true;
            }
            if anonymous(&ip) || mac == [0; 6] || mac[0] & 1 != 0 {
                continue;
            }
            let Some(ips) = self.by_mac.entry(mac).or_insert_with(|| Some(Vec::new())) else {
                continue;
            };
            if ips.contains(&ip) {
                continue;
            }
            ips.push(ip);
            self.stale = true;
            let v4 = ips.iter().filter(|ip| ip.is_ipv4()).count();
            if v4 > 1 || ips.len() - v4 > MAX_V6_PER_HOST {
                self.by_mac.insert(mac, None);
            }
        }
    }

    /// The hosts of everything observed so far.
    pub fn hosts(&mut self) -> &Hosts {
        if self.stale {
            self.stale = false;
            let mut groups: Vec<Vec<IpAddr>> = Vec::new();
            // Only where the capture has no link-layer addresses (raw IP, loopback, tunnels):
            // where it has them, they tell hosts apart, and two hosts that happen to be the
            // only IPv4 and IPv6 clients must not become one.
            let (v4, v6) = (self.v4.len(), self.v6.len());
            if !self.sighted && v4 <= 1 && v6 <= MAX_V6_PER_HOST && v4 + v6 > 1 {
                groups.push(self.v4.iter().chain(&self.v6).copied().collect());
            }
            groups.extend(
                self.by_mac
                    .values()
                    .flatten()
                    .filter(|ips| ips.len() > 1)
                    .cloned(),
            );
            self.hosts = Hosts::union(groups);
        }
        &self.hosts
    }
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

/// (address, MAC address) pairs seen on the link layer, for [`Hosts::tie`].
pub type Sightings = FxHashSet<(IpAddr, [u8; 6])>;

/// The source and destination MAC addresses of a frame of LINKTYPE `linktype`, where the link
/// layer carries them: Ethernet both; Linux SLL and SLL2 the sender's only (when it is a
/// 6-byte Ethernet address).
pub fn frame_macs(linktype: u32, data: &[u8]) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
    let mac = |at: usize| -> Option<[u8; 6]> { data.get(at..at + 6)?.try_into().ok() };
    match linktype {
        1 => (mac(6), mac(0)),
        113 => {
            // packet type (2), ARPHRD (2), address length (2), address (8)
            let ok = data.get(2..6) == Some(&[0, 1, 0, 6][..]);
            (if ok { mac(6) } else { None }, None)
        }
        276 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let ok = data.get(8..10) == Some(&[0, 1][..]) && data.get(11) == Some(&6);
            (if ok { mac(12) } else { None }, None)
        }
        _ => (None, None),
    }
}

/// The sender of an ARP request or reply over Ethernet/IPv4 (`arp`: the ARP packet), with its
/// hardware address.
pub fn arp_sender(arp: &[u8]) -> Option<(IpAddr, [u8; 6])> {
    // htype 1, ptype 0x0800, hlen 6, plen 4
    if arp.get(..6)? != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let mac: [u8; 6] = arp.get(8..14)?.try_into().ok()?;
    let ip: [u8; 4] = arp.get(14..18)?.try_into().ok()?;
    Some((IpAddr::from(ip), mac))
}

impl Hosts {
    /// The representative address of the host `ip` belongs to (`ip` itself when untied).
    #[inline]
    pub fn of(&self, ip: IpAddr) -> IpAddr {
        self.rep.get(&ip).copied().unwrap_or(ip)
    }

    /// Ties the client addresses of one input (`clients`: every address that started a flow
    /// or asked a DNS question) by the MAC addresses they were `seen` with, or as the only
    /// client: what [`HostTies`] gives once it observed them all.
    pub fn tie(clients: impl IntoIterator<Item = IpAddr>, seen: &Sightings) -> Hosts {
        let mut ties = HostTies::default();
        ties.observe(clients, seen.iter().copied());
        ties.hosts().clone()
    }

    /// Every address of the host `ip` belongs to (`ip` alone when untied).
    pub fn group<'a>(&'a self, ip: &'a IpAddr) -> &'a [IpAddr] {
        self.members
            .get(&self.of(*ip))
            .map_or(std::slice::from_ref(ip), |m| &m[..])
    }

    /// Hosts made of groups of addresses: groups that share an address are one host, whose
    /// representative is its smallest address (deterministic whatever the order).
    fn union(groups: Vec<Vec<IpAddr>>) -> Hosts {
        let mut parent: FxHashMap<IpAddr, IpAddr> = FxHashMap::default();
        fn root(parent: &mut FxHashMap<IpAddr, IpAddr>, ip: IpAddr) -> IpAddr {
            let mut r = ip;
            while let Some(&p) = parent.get(&r) {
                if p == r {
                    break;
                }
                r = p;
            }
            // Path compression.
            let mut cur = ip;
            while cur != r {
                let next = parent[&cur];
                parent.insert(cur, r);
                cur = next;
            }
            r
        }
        for g in &groups {
            for &ip in g {
                parent.entry(ip).or_insert(ip);
            }
            for w in g.windows(2) {
                let (a, b) = (root(&mut parent, w[0]), root(&mut parent, w[1]));
                if a != b {
                    // The smaller address becomes the root.
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent.insert(hi, lo);
                }
            }
        }
        let ips: Vec<IpAddr> = parent.keys().copied().collect();
        let mut rep = FxHashMap::default();
        let mut members: FxHashMap<IpAddr, Vec<IpAddr>> = FxHashMap::default();
        for ip in ips {
            let r = root(&mut parent, ip);
            if r != ip {
                rep.insert(ip, r);
            }
            members.entry(r).or_default().push(ip);
        }
        let members = members
            .into_iter()
            .filter(|(_, m)| m.len() > 1)
            .map(|(r, mut m)| {
                m.sort_unstable();
                (r, m.into_boxed_slice())
            })
            .collect();
        Hosts { rep, members }
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
        let h = Hosts::tie(
            ["10.0.0.2", "fd99:1::2", "fd99:1::1234", "fe80::1"].map(ip),
            &Sightings::default(),
        );
        assert!(h.same(ip("10.0.0.2"), ip("fd99:1::2")));
        assert!(h.same(ip("fd99:1::1234"), ip("10.0.0.2")));
        // Link-local addresses are not tied (every host has one).
        assert!(!h.same(ip("fe80::1"), ip("10.0.0.2")));
    }

    #[test]
    fn two_ipv4_clients_are_not_tied() {
        let h = Hosts::tie(
            ["10.0.0.2", "10.0.0.3", "fd99:1::2"].map(ip),
            &Sightings::default(),
        );
        assert!(!h.same(ip("10.0.0.2"), ip("fd99:1::2")));
        assert!(!h.same(ip("10.0.0.2"), ip("10.0.0.3")));
        assert_eq!(h.of(ip("10.0.0.3")), ip("10.0.0.3"));
    }

    #[test]
    fn many_ipv6_clients_are_not_one_host() {
        let many = (1..=MAX_V6_PER_HOST + 1).map(|i| ip(&format!("fd99:1::{i}")));
        let h = Hosts::tie(many.chain([ip("10.0.0.2")]), &Sightings::default());
        assert!(!h.same(ip("fd99:1::1"), ip("10.0.0.2")));
    }

    #[test]
    fn one_mac_ties_its_addresses_and_a_router_ties_none() {
        const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
        const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
        const R: [u8; 6] = [2, 0, 0, 0, 0, 0x1];
        let seen: Sightings = [
            (ip("10.0.0.2"), A),
            (ip("fd99:1::2"), A),
            (ip("10.0.0.3"), B),
            (ip("fd99:1::3"), B),
            (ip("fd99:1::33"), B),
            // A router's MAC carries many hosts' addresses.
            (ip("10.0.0.2"), R),
            (ip("10.0.0.3"), R),
            (ip("10.0.0.4"), R),
        ]
        .into_iter()
        .collect();
        let clients = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "fd99:1::2", "fd99:1::3"].map(ip);
        let h = Hosts::tie(clients, &seen);
        assert!(h.same(ip("10.0.0.2"), ip("fd99:1::2")));
        assert!(h.same(ip("fd99:1::33"), ip("10.0.0.3")));
        assert!(!h.same(ip("10.0.0.2"), ip("10.0.0.3")));
        assert!(!h.same(ip("10.0.0.4"), ip("10.0.0.2")));
        // The representative is the smallest address of the host.
        assert_eq!(h.of(ip("fd99:1::3")), ip("10.0.0.3"));
    }

    #[test]
    fn the_only_client_rule_yields_to_mac_addresses() {
        // The only IPv4 and the only IPv6 client, seen with different MACs: two hosts.
        let seen: Sightings = [
            (ip("10.0.0.2"), [2, 0, 0, 0, 0, 0xa]),
            (ip("2001:db8:1::b"), [2, 0, 0, 0, 0, 0xb]),
        ]
        .into_iter()
        .collect();
        let h = Hosts::tie(["10.0.0.2", "2001:db8:1::b"].map(ip), &seen);
        assert!(!h.same(ip("10.0.0.2"), ip("2001:db8:1::b")));
    }

    #[test]
    fn macs_of_frames_and_arp() {
        let mut eth = vec![0u8; 14];
        eth[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        eth[6..12].copy_from_slice(&[2, 2, 3, 4, 5, 7]);
        assert_eq!(
            frame_macs(1, &eth),
            (Some([2, 2, 3, 4, 5, 7]), Some([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(frame_macs(1, &eth[..5]), (None, None));
        let mut sll = vec![0, 4, 0, 1, 0, 6, 2, 2, 3, 4, 5, 8, 0, 0, 8, 0];
        assert_eq!(frame_macs(113, &sll), (Some([2, 2, 3, 4, 5, 8]), None));
        sll[3] = 0x04; // ARPHRD 772 (loopback): no Ethernet address
        assert_eq!(frame_macs(113, &sll).0, None);
        let mut sll2 = vec![8, 0, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6];
        sll2.extend_from_slice(&[2, 2, 3, 4, 5, 9, 0, 0]);
        assert_eq!(frame_macs(276, &sll2), (Some([2, 2, 3, 4, 5, 9]), None));
        assert_eq!(frame_macs(101, &sll2), (None, None));
        let arp = [
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xa, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
        ];
        assert_eq!(
            arp_sender(&arp),
            Some((ip("10.0.0.2"), [2, 0, 0, 0, 0, 0xa]))
        );
        assert_eq!(arp_sender(&arp[..10]), None);
    }
}

//! The time-aware map from (host, address) to the DNS answers that host received, and from
//! address alone to the answers any client received.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::proto::dns::DnsMessage;
use crate::proto::facts::NameSource;
use crate::proto::Described;

use super::hosts::Hosts;

/// What DNS told each client: (tunnel, client, address) -> answers in time order; and (tunnel,
/// address) -> the answers any client received. Keyed by the client's own address, not its
/// host's, so that addresses tied into one host later in the input ([`Hosts`], learned as
/// the input goes by) still find each other's answers: a lookup asks every address of the
/// host.
#[derive(Debug, Default)]
pub struct DnsMap {
    map: Sharded<(u32, IpAddr, IpAddr)>,
    any: Sharded<(u32, IpAddr)>,
    /// Responses the capture cut or could not read, per client, and of all clients: when and
    /// for which family (`Some(true)` AAAA, `Some(false)` A, `None` the question is unknown).
    /// An older answer for an address no longer names a flow after one of these: the missing
    /// part may have given the same address for another name.
    unread: FxHashMap<(u32, IpAddr), Vec<Unread>>,
    unread_any: Vec<Unread>,
    /// Answers taken so far: orders answers of the same time (the later taken wins).
    taken: u64,
    /// Every chain the runs hold, once: a name answered to many clients (the usual case) is
    /// kept once, not once per client and address.
    chains: rustc_hash::FxHashSet<Chain>,
    /// How many chains `chains` may hold before the ones no run holds any more are dropped.
    chains_sweep_at: usize,
}

/// Runs per key in [`SHARDS`] tables picked by the key's hash: a table that grows copies only
/// its share, where one table of every (client, address) pair held its old and its new
/// buckets at once (some 60 MB at 250,000 pairs) each time it doubled.
#[derive(Debug)]
struct Sharded<K> {
    shards: Vec<FxHashMap<K, Runs>>,
}

/// Tables of a [`Sharded`] map.
const SHARDS: usize = 64;

impl<K> Default for Sharded<K> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Sharded<K> {
    fn shard(key: &K) -> usize {
        use std::hash::BuildHasher;
        // Middle bits: a table picks its buckets by the low ones and tells keys of a bucket
        // apart by the top seven.
        (rustc_hash::FxBuildHasher.hash_one(key) >> 40) as usize % SHARDS
    }

    fn get(&self, key: &K) -> Option<&Runs> {
        self.shards[Self::shard(key)].get(key)
    }

    /// Adds an answer to a key's runs (a new key's first).
    fn add(&mut self, key: K, a: DnsAnswer, unread_ns: i64) {
        match self.shards[Self::shard(&key)].entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Runs::One(a));
            }
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut().push(a, unread_ns),
        }
    }
}

/// The name a client asked, then the CNAMEs in order (one list per distinct chain, shared by
/// every run that holds it).
type Chain = std::sync::Arc<[String]>;

/// An unreadable response: when, and for which family (`Some(true)` AAAA, `Some(false)` A,
/// `None` unknown).
type Unread = (i64, Option<bool>);

/// Whether an unreadable response in `unread` came after an answer of `answer_ns` and at or
/// before `ts_ns`, and could have been about an address of the family of `addr`.
fn clouded(unread: &[Unread], addr: IpAddr, answer_ns: i64, ts_ns: i64) -> bool {
    unread
        .iter()
        .any(|&(t, v6)| t > answer_ns && t <= ts_ns && v6.is_none_or(|v6| v6 == addr.is_ipv6()))
}

/// A run of answers that gave the same chain for one key, with no unreadable response of the
/// key's client(s) among them: a client that asks again and again for the same name (short
/// TTLs, a long connection) keeps one entry, so the answer before a long flow began is still
/// there when the flow ends and is named.
#[derive(Debug, Clone)]
struct DnsAnswer {
    /// The first and the last answer of the run, and the order the last was taken in.
    first_ns: i64,
    last_ns: i64,
    taken: u64,
    /// The name the client asked, then the CNAMEs in order (interned in [`DnsMap::chains`]).
    chain: Chain,
}

impl DnsAnswer {
    /// The latest answer of the run at or before `ts_ns` (at or after its first): its time
    /// and order. Inside the run, any of its answers stands for the latest, since no
    /// unreadable response came between them.
    fn at(&self, ts_ns: i64) -> (i64, u64) {
        if ts_ns >= self.last_ns {
            (self.last_ns, self.taken)
        } else {
            (self.first_ns, self.taken)
        }
    }
}

/// A key's runs in time order. Most keys (a client and an address) only ever have one, held
/// in place: a map of them is a slot each, with no list of its own on the heap.
#[derive(Debug, Clone)]
enum Runs {
    One(DnsAnswer),
    Many(Vec<DnsAnswer>),
}

/// Most runs kept per key: the latest are the ones that matter.
const RUNS_PER_KEY: usize = 64;

impl Runs {
    /// The runs, oldest first.
    fn as_slice(&self) -> &[DnsAnswer] {
        match self {
            Runs::One(a) => std::slice::from_ref(a),
            Runs::Many(v) => v,
        }
    }

    /// Adds an answer: extends the last run when it gave the same chain and no unreadable
    /// response came since; else a new run, placed by time, the oldest dropped beyond
    /// [`RUNS_PER_KEY`]. `unread_ns`: the latest unreadable response of any client.
    fn push(&mut self, a: DnsAnswer, unread_ns: i64) {
        let last = match self {
            Runs::One(last) => last,
            Runs::Many(v) => v.last_mut().expect("a key has a run"),
        };
        if a.first_ns >= last.last_ns && unread_ns <= last.last_ns && last.chain == a.chain {
            last.last_ns = a.last_ns;
            last.taken = a.taken;
            return;
        }
        if let Runs::One(one) = self {
            *self = Runs::Many(vec![one.clone()]);
        }
        let Runs::Many(v) = self else {
            unreachable!("made a list above")
        };
        if v.len() >= RUNS_PER_KEY {
            v.remove(0);
        }
        let at = v.partition_point(|x| x.first_ns <= a.first_ns);
        v.insert(at, a);
    }
}

/// The latest run in `v` that began at or before `ts_ns`.
fn latest(v: &[DnsAnswer], ts_ns: i64) -> Option<&DnsAnswer> {
    v.iter().rev().find(|a| a.first_ns <= ts_ns)
}

/// Appends an unreadable response to a bounded list (the latest are the ones that matter).
fn push_unread(v: &mut Vec<Unread>, u: Unread, cap: usize) {
    if v.len() >= cap {
        v.remove(0);
    }
    v.push(u);
}

impl DnsMap {
    /// An empty map.
    pub fn new() -> DnsMap {
        DnsMap::default()
    }

    /// Records a response the `client` received at `ts_ns`.
    pub fn add_response(&mut self, ts_ns: i64, tunnel: u32, client: IpAddr, msg: &DnsMessage) {
        if !msg.response {
            return;
        }
        if msg.partial.is_some() {
            let family = match msg.questions.first().map(|q| q.qtype) {
                Some(1) => Some(false),
                Some(28) => Some(true),
                _ => None,
            };
            push_unread(
                self.unread.entry((tunnel, client)).or_default(),
                (ts_ns, family),
                64,
            );
            push_unread(&mut self.unread_any, (ts_ns, family), 4096);
        }
        let c = msg.chain();
        if c.addresses.is_empty() {
            return;
        }
        let chain = self.intern(
            std::iter::once(&c.asked)
                .chain(c.cnames.iter())
                .cloned()
                .collect(),
        );
        self.taken += 1;
        let a = DnsAnswer {
            first_ns: ts_ns,
            last_ns: ts_ns,
            taken: self.taken,
            chain,
        };
        // Any client's: a run of one client's answers must not hide another address of its
        // host's unreadable response either.
        let unread = self
            .unread_any
            .iter()
            .map(|u| u.0)
            .max()
            .unwrap_or(i64::MIN);
        for (addr, _ttl) in &c.addresses {
            self.any.add((tunnel, *addr), a.clone(), unread);
            self.map.add((tunnel, client, *addr), a.clone(), unread);
        }
    }

    /// The one copy of `chain` the map holds. The copies no run holds any more are dropped
    /// once the set has doubled since the last sweep.
    fn intern(&mut self, chain: Chain) -> Chain {
        if let Some(c) = self.chains.get(&chain) {
            return c.clone();
        }
        if self.chains.len() >= self.chains_sweep_at {
            self.chains.retain(|c| std::sync::Arc::strong_count(c) > 1);
            self.chains_sweep_at = (2 * self.chains.len()).max(1024);
        }
        self.chains.insert(chain.clone());
        chain
    }

    /// The chain of the latest answer the host of `client` (any of its addresses, as `hosts`
    /// ties them) got for `addr` at or before `ts_ns`. `None` also when a response that
    /// host could not read came after that answer (see `unread`).
    pub fn lookup(
        &self,
        hosts: &Hosts,
        tunnel: u32,
        client: IpAddr,
        addr: IpAddr,
        ts_ns: i64,
    ) -> Option<&[String]> {
        let group = hosts.group(&client);
        let (answer_ns, _, chain) = group
            .iter()
            .filter_map(|c| {
                let a = latest(self.map.get(&(tunnel, *c, addr))?.as_slice(), ts_ns)?;
                let (t, k) = a.at(ts_ns);
                Some((t, k, &a.chain))
            })
            .max_by_key(|&(t, k, _)| (t, k))?;
        let clouds = group.iter().any(|c| {
            self.unread
                .get(&(tunnel, *c))
                .is_some_and(|u| clouded(u, addr, answer_ns, ts_ns))
        });
        (!clouds).then_some(&chain[..])
    }

    /// The chain of the latest answer any client got for `addr` at or before `ts_ns`, unless
    /// any client got a response it could not read after it.
    pub fn lookup_any(&self, tunnel: u32, addr: IpAddr, ts_ns: i64) -> Option<&[String]> {
        let a = latest(self.any.get(&(tunnel, addr))?.as_slice(), ts_ns)?;
        let (t, _) = a.at(ts_ns);
        (!clouded(&self.unread_any, addr, t, ts_ns)).then_some(&a.chain[..])
    }
}

/// Names a flow that `extract` left unnamed from what DNS told its client (or another address
/// of the same host) about the server's address up to the flow's start (`dns` holds the
/// answers up to then); failing that, from what any client was told
/// ([`NameSource::DnsAnyClient`]).
pub fn name_by_dns(flow: &mut Described, dns: &DnsMap, hosts: &Hosts) {
    // A flow to a DNS server is named by nothing it resolved for itself.
    if flow.facts.name.is_some() || flow.server.port == 53 {
        return;
    }
    let found = dns
        .lookup(
            hosts,
            flow.tunnel,
            flow.client.ip,
            flow.server.ip,
            flow.first_ns,
        )
        .map(|c| (c, NameSource::Dns))
        .or_else(|| {
            dns.lookup_any(flow.tunnel, flow.server.ip, flow.first_ns)
                .map(|c| (c, NameSource::DnsAnyClient))
        });
    if let Some((chain, source)) = found {
        let facts = &mut flow.facts;
        facts.name = chain.first().cloned();
        facts.name_source = Some(source);
        facts.dns_chain = chain.to_vec();
    } else if by_address(flow) {
        flow.facts.name = Some(crate::text::ip_text(flow.server.ip));
        flow.facts.name_source = Some(NameSource::Address);
    }
}

/// Names a flow known by its server's address (see [`name_by_dns`]) by the service tag whose
/// range holds that address ([`NameSource::IpTag`]). A flow named by another address (an IP
/// literal in a request through a proxy) keeps it.
pub fn name_by_tag(flow: &mut Described, tags: &super::TagRanges) {
    let facts = &mut flow.facts;
    if facts.name_source != Some(NameSource::Address)
        || facts.name.as_deref().and_then(|n| n.parse().ok()) != Some(flow.server.ip)
    {
        return;
    }
    if let Some(tag) = tags.lookup(flow.server.ip) {
        facts.name = Some(tag.to_string());
        facts.name_source = Some(NameSource::IpTag);
    }
}

/// Whether a flow nothing named is known by its server's address: a TCP or UDP flow to a
/// unicast address that is not link-local (an IP literal, or a name resolved outside the
/// capture). Multicast and broadcast (mDNS, SSDP, DHCP) and link-local services are the
/// network's own chatter, not destinations a firewall audit is about.
fn by_address(flow: &Described) -> bool {
    use crate::flow::Proto;
    if !matches!(flow.proto, Proto::Tcp | Proto::Udp) {
        return false;
    }
    // A request to a proxy (CONNECT, or an absolute-form target) whose target the capture cut
    // is about the target, not the proxy: the proxy's address names nothing.
    if flow.facts.http.as_ref().is_some_and(|h| {
        h.is_connect()
            || h.target
                .get(..7)
                .is_some_and(|t| t.eq_ignore_ascii_case("http://"))
    }) {
        return false;
    }
    match flow.server.ip {
        IpAddr::V4(a) => {
            !(a.is_multicast()
                || a.is_broadcast()
                || a.is_link_local()
                || a.is_unspecified()
                || a.octets()[3] == 255)
        }
        IpAddr::V6(a) => {
            !(a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::{parse_message, parse_message_lenient};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A response for `name` whose A answer is 198.18.(id >> 8).(id & 255).
    fn answer(name: &str, id: u16) -> DnsMessage {
        parse_message(&crate::synth::dns_message(name, id, true)).unwrap()
    }

    #[test]
    fn a_host_is_named_by_the_answers_any_of_its_addresses_received() {
        let hosts = Hosts::tie([ip("10.0.0.2"), ip("fd00::2")], &Default::default());
        let mut m = DnsMap::new();
        m.add_response(100, 0, ip("fd00::2"), &answer("ml.azure.com", 0x0102));
        // Asked over IPv6, looked up for the IPv4 address of the same host.
        assert_eq!(
            m.lookup(&hosts, 0, ip("10.0.0.2"), ip("198.18.1.2"), 200),
            Some(&["ml.azure.com".to_string(), "edge.ml.azure.com".to_string()][..])
        );
        // Not before the answer.
        assert_eq!(
            m.lookup(&hosts, 0, ip("10.0.0.2"), ip("198.18.1.2"), 99),
            None
        );
    }

    /// A key keeps one run in place until a different answer comes, then a list of them in
    /// time order, the oldest dropped beyond [`RUNS_PER_KEY`]; every run of one chain holds
    /// the same copy of it.
    #[test]
    fn runs_are_kept_in_place_until_a_key_has_two() {
        assert!(
            std::mem::size_of::<Runs>() <= 40,
            "{}",
            std::mem::size_of::<Runs>()
        );
        let hosts = Hosts::default();
        let (c, a) = (ip("10.0.0.2"), ip("198.18.1.2"));
        let mut m = DnsMap::new();
        m.add_response(100, 0, c, &answer("ml.azure.com", 0x0102));
        m.add_response(200, 0, c, &answer("ml.azure.com", 0x0102));
        m.add_response(210, 0, ip("10.0.0.3"), &answer("ml.azure.com", 0x0102));
        assert!(matches!(m.map.get(&(0, c, a)).unwrap(), Runs::One(_)));
        assert_eq!(m.chains.len(), 1);
        let shared = |k| match m.map.get(&k).unwrap() {
            Runs::One(r) => r.chain.clone(),
            Runs::Many(_) => unreachable!(),
        };
        assert!(std::sync::Arc::ptr_eq(
            &shared((0, c, a)),
            &shared((0, ip("10.0.0.3"), a))
        ));
        // Another name for the same address: a second run.
        m.add_response(300, 0, c, &answer("other.example", 0x0102));
        let name = |m: &DnsMap, t| m.lookup(&hosts, 0, c, a, t).map(|ch| ch[0].clone());
        assert_eq!(name(&m, 150).as_deref(), Some("ml.azure.com"));
        assert_eq!(name(&m, 300).as_deref(), Some("other.example"));
        for i in 0..RUNS_PER_KEY as i64 {
            let n = if i % 2 == 0 {
                "ml.azure.com"
            } else {
                "other.example"
            };
            m.add_response(400 + i, 0, c, &answer(n, 0x0102));
        }
        assert_eq!(
            m.map.get(&(0, c, a)).unwrap().as_slice().len(),
            RUNS_PER_KEY
        );
        assert_eq!(name(&m, 150), None);
        assert_eq!(m.chains.len(), 2);
    }

    #[test]
    fn untied_clients_fall_back_to_any_client() {
        let hosts = Hosts::tie([ip("10.0.0.2"), ip("10.0.0.3")], &Default::default());
        let mut m = DnsMap::new();
        m.add_response(100, 0, ip("10.0.0.2"), &answer("ml.azure.com", 0x0102));
        assert_eq!(
            m.lookup(&hosts, 0, ip("10.0.0.3"), ip("198.18.1.2"), 200),
            None
        );
        assert_eq!(
            m.lookup_any(0, ip("198.18.1.2"), 200)
                .map(|c| c[0].as_str()),
            Some("ml.azure.com")
        );
    }

    #[test]
    fn an_answer_names_only_the_flows_of_its_tunnel() {
        // Two overlays (VNIs) reuse one address space: a host in one is not the same-address
        // host in the other, nor is "any client" of one a client of the other.
        let mut m = DnsMap::new();
        let hosts = Hosts::default();
        m.add_response(100, 42, ip("10.0.0.2"), &answer("ml.azure.com", 0x0102));
        assert!(m
            .lookup(&hosts, 42, ip("10.0.0.2"), ip("198.18.1.2"), 200)
            .is_some());
        assert_eq!(
            m.lookup(&hosts, 43, ip("10.0.0.2"), ip("198.18.1.2"), 200),
            None
        );
        assert_eq!(m.lookup_any(43, ip("198.18.1.2"), 200), None);
    }

    #[test]
    fn an_unreadable_response_clouds_older_answers_of_its_family() {
        let mut m = DnsMap::new();
        let hosts = Hosts::default();
        let c = ip("10.0.0.2");
        m.add_response(100, 0, c, &answer("ml.azure.com", 0x0102));
        // A later response cut before its answers: it may have given the same address.
        let whole = crate::synth::dns_message("other.example", 0x0102, true);
        let cut = parse_message_lenient(&whole[..40]).unwrap();
        assert!(cut.partial.is_some());
        m.add_response(150, 0, c, &cut);
        assert_eq!(
            m.lookup(&hosts, 0, c, ip("198.18.1.2"), 120)
                .map(|c| c.len()),
            Some(2)
        );
        assert_eq!(m.lookup(&hosts, 0, c, ip("198.18.1.2"), 200), None);
        assert_eq!(m.lookup_any(0, ip("198.18.1.2"), 200), None);
        // Its question asked for A: an IPv6 address is not clouded by it.
        m.add_response(300, 0, c, &answer("v6.example", 0x0103));
        assert!(clouded(&[(150, Some(false))], ip("198.18.1.3"), 100, 200));
        assert!(!clouded(&[(150, Some(false))], ip("fd00::1"), 100, 200));
        assert!(clouded(&[(150, None)], ip("fd00::1"), 100, 200));
    }
}

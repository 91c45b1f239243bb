//! DNS lookups: each query joined with its response (either may be missing), with the rcode,
//! answers, CNAME chain and what they say (NODATA, sinkhole, privatelink, cut or malformed).
//! The `dns` command writes them (`crate::report::dns`); the audit judges them.

use serde::Serialize;

use super::DnsEvent;
use crate::proto::dns::{qtype_name, rcode_name, DnsError, DnsMessage, RData};
use crate::time::rfc3339;

/// One lookup: a query joined with its response (either may be missing).
#[derive(Serialize, schemars::JsonSchema)]
pub struct Lookup<'a> {
    pub time: String,
    /// When the response arrived (the query when there was none).
    #[serde(skip)]
    pub ts_ns: i64,
    /// When the lookup began (`time`).
    #[serde(skip)]
    pub first_ns: i64,
    #[serde(skip)]
    pub client_ip: std::net::IpAddr,
    pub client: String,
    pub server: String,
    pub transport: &'static str,
    pub id: u16,
    pub qname: Option<&'a str>,
    pub qtype: Option<String>,
    /// A response was seen.
    pub answered: bool,
    /// The query itself was seen (false when the capture holds only the response).
    pub query_seen: bool,
    pub rcode: Option<&'static str>,
    #[schemars(with = "Vec<AnswerJson<'static>>")]
    pub answers: Answers<'a>,
    /// The name asked, then each CNAME in order, then the addresses it ended at.
    pub cnames: Vec<&'a str>,
    /// Written as text, as `Display` writes them.
    pub addresses: Vec<std::net::IpAddr>,
    /// NOERROR without an answer of the asked type.
    pub nodata: bool,
    /// An address answer of 0.0.0.0, :: or loopback (a sinkhole).
    pub sinkhole: bool,
    /// The chain passes through a `privatelink.` name.
    pub privatelink: bool,
    /// The response was cut (by the snap length, or a TCP stream the capture lacks bytes of):
    /// its header (id, rcode, counts) was read, its answers as far as they go.
    pub truncated: bool,
    /// The response's structure is wrong (why); its header and the answers before the fault
    /// are kept. Never read as "no answer".
    pub malformed: Option<&'static str>,
    /// Seconds from query to response.
    pub rtt_s: Option<f64>,
    pub file: &'a str,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct AnswerJson<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub value: Option<String>,
}

impl Lookup<'_> {
    /// An A or AAAA query answered NOERROR with addresses that are not a sinkhole.
    pub fn resolved(&self) -> bool {
        self.answered
            && self.rcode == Some("NOERROR")
            && matches!(self.qtype.as_deref(), Some("A" | "AAAA"))
            && !self.addresses.is_empty()
            && !self.sinkhole
    }

    /// The response was cut by the capture or could not be read whole.
    pub fn unread(&self) -> bool {
        self.truncated || self.malformed.is_some()
    }
}

/// The answer records of a lookup's response, written as a list of [`AnswerJson`]. They are
/// put in words only when written: the audit reads lookups without them.
pub struct Answers<'a>(pub Option<&'a DnsMessage>);

impl Serialize for Answers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let records = self.0.map(|m| m.answers.as_slice()).unwrap_or_default();
        s.collect_seq(records.iter().map(|r| AnswerJson {
            name: &r.name,
            rtype: qtype_name(r.rtype).into_owned(),
            ttl: r.ttl,
            value: match &r.data {
                RData::A(a) => Some(crate::text::ip_text((*a).into())),
                RData::Aaaa(a) => Some(a.to_string()),
                RData::Cname(c) => Some(c.clone()),
                RData::Other(_) => None,
            },
        }))
    }
}

fn key(e: &DnsEvent) -> (std::net::IpAddr, u16, std::net::IpAddr, u16, u16) {
    (
        e.client,
        e.client_port,
        e.server,
        e.server_port,
        e.message.id,
    )
}

/// The first question's name of a message, if it has one.
fn qname(e: &DnsEvent) -> Option<&str> {
    e.message.questions.first().map(|q| q.name.as_str())
}

/// Joins queries with their responses, in capture order. The joining is one pass; the rows
/// are then built on the current rayon pool.
pub fn lookups<'a>(events: &'a [DnsEvent], file: &'a str) -> Vec<Lookup<'a>> {
    use rayon::prelude::*;
    // (query, response) per lookup, either missing.
    let mut pairs: Vec<(Option<&'a DnsEvent>, Option<&'a DnsEvent>)> = Vec::new();
    let mut used = vec![false; events.len()];
    // Responses by key, in capture order, so joining is not quadratic in the number of lookups.
    let mut responses: rustc_hash::FxHashMap<_, Vec<usize>> = Default::default();
    for (j, r) in events.iter().enumerate() {
        if r.message.response {
            responses.entry(key(r)).or_default().push(j);
        }
    }
    for (i, e) in events.iter().enumerate() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let (query, response) = if e.message.response {
            (None, Some(e))
        } else {
            // The first unused response with the same key after the query that asks the same
            // name (or whose question the capture cut).
            let resp = responses.get(&key(e)).and_then(|js| {
                js.iter().copied().find(|&j| {
                    j > i && !used[j] && qname(&events[j]).is_none_or(|n| Some(n) == qname(e))
                })
            });
            if let Some(j) = resp {
                used[j] = true;
            }
            (Some(e), resp.map(|j| &events[j]))
        };
        pairs.push((query, response));
    }
    pairs
        .into_par_iter()
        .with_min_len(64)
        .map(|(query, response)| lookup(query, response, file))
        .collect()
}

/// A response joins a query at most this long (capture time) after it; a query no response
/// came for by then is a lookup without an answer. Zeek expires a DNS request with its UDP
/// connection after a minute too; resolvers give up after a few seconds.
pub const ANSWER_WINDOW_NS: i64 = 60_000_000_000;

/// Most queries waiting for a response at once: beyond, the one that waited longest is handed
/// on unanswered before its window passed (a flood of queries nothing answers would otherwise
/// hold every one of them for a minute), and counted ([`Joiner::gave_up`]).
pub const MAX_WAITING: usize = 65_536;

/// A query waiting for its response: the message, and its place in the order queries came.
type Waiting = (u64, DnsEvent);

/// Joins queries with their responses as the messages come (in time order), the way
/// [`lookups`] joins a whole input's (each response goes to the earliest query before it with
/// the same endpoints and id that asked the same name, or any such query when the response's
/// question was cut), in memory bounded by the queries waiting for an answer: one waiting
/// longer than [`ANSWER_WINDOW_NS`] is handed on unanswered.
pub struct Joiner {
    /// Per key, its waiting queries in order (nearly always one: allocated for one).
    waiting: rustc_hash::FxHashMap<Key, Vec<Waiting>>,
    /// Every waiting query by arrival: (time, key, number), for the window.
    arrivals: std::collections::VecDeque<(i64, Key, u64)>,
    next: u64,
    latest: i64,
    count: usize,
    /// Most queries waiting at once ([`MAX_WAITING`] unless a test says otherwise).
    cap: usize,
    /// Queries handed on unanswered because `cap` others were waiting.
    pub gave_up: u64,
}

impl Default for Joiner {
    fn default() -> Self {
        Joiner::with_cap(MAX_WAITING)
    }
}

/// What a query and its response are joined by.
type Key = (std::net::IpAddr, u16, std::net::IpAddr, u16, u16);

impl Joiner {
    /// A joiner that lets at most `cap` queries wait at once.
    pub fn with_cap(cap: usize) -> Joiner {
        Joiner {
            waiting: Default::default(),
            arrivals: Default::default(),
            next: 0,
            latest: i64::MIN,
            count: 0,
            cap: cap.max(1),
            gave_up: 0,
        }
    }

    /// Takes the next message; hands `out` every lookup it completes (a query with its
    /// response, a response without a query, queries whose window passed), with its number
    /// in the order lookups began (their first message's arrival: see [`InOrder`]) and whether
    /// it is a query given up on early because too many waited (its response may still come:
    /// its lack of one says nothing).
    pub fn push(
        &mut self,
        e: DnsEvent,
        out: &mut impl FnMut(u64, Option<DnsEvent>, Option<DnsEvent>, bool),
    ) {
        self.latest = self.latest.max(e.ts_ns);
        self.expire(self.latest.saturating_sub(ANSWER_WINDOW_NS), false, out);
        let k = key(&e);
        if !e.message.response {
            if self.count >= self.cap {
                let before = self.gave_up_before();
                self.gave_up += self.expire(before, true, out);
            }
            // Arrivals of queries answered since stay until they reach the front: dropped
            // from time to time, so they are never many more than the queries waiting.
            if self.arrivals.len() > 2 * self.count + 4096 {
                let waiting = &self.waiting;
                self.arrivals.retain(|(_, k, n)| {
                    waiting
                        .get(k)
                        .is_some_and(|w| w.iter().any(|(m, _)| m == n))
                });
            }
            self.waiting
                .entry(k)
                .or_insert_with(|| Vec::with_capacity(1))
                .push((self.next, e));
            self.arrivals.push_back((self.latest, k, self.next));
            self.next += 1;
            self.count += 1;
            return;
        }
        let asked = qname(&e);
        let q = self.waiting.get_mut(&k).and_then(|w| {
            let at = w
                .iter()
                .position(|(_, q)| asked.is_none() || qname(q) == asked)?;
            Some(w.remove(at))
        });
        self.count -= usize::from(q.is_some());
        if self.waiting.get(&k).is_some_and(|w| w.is_empty()) {
            self.waiting.remove(&k);
        }
        match q {
            Some((n, q)) => out(n, Some(q), Some(e), false),
            None => {
                self.next += 1;
                out(self.next - 1, None, Some(e), false);
            }
        }
    }

    /// Hands on unanswered every query that came before `before` (`given_up`: before their
    /// window passed); returns how many.
    fn expire(
        &mut self,
        before: i64,
        given_up: bool,
        out: &mut impl FnMut(u64, Option<DnsEvent>, Option<DnsEvent>, bool),
    ) -> u64 {
        let mut handed = 0;
        while let Some(&(t, k, n)) = self.arrivals.front() {
            if t >= before {
                break;
            }
            self.arrivals.pop_front();
            let Some(w) = self.waiting.get_mut(&k) else {
                continue;
            };
            // Still waiting unless a response took it.
            if let Some(at) = w.iter().position(|(m, _)| *m == n) {
                let (_, q) = w.remove(at);
                self.count -= 1;
                handed += 1;
                out(n, Some(q), None, given_up);
            }
            if w.is_empty() {
                self.waiting.remove(&k);
            }
        }
        handed
    }

    /// The time before which a query must have come to be handed on now: just after the
    /// oldest still waiting (those a response took are skipped).
    fn gave_up_before(&mut self) -> i64 {
        while let Some(&(t, k, n)) = self.arrivals.front() {
            if self
                .waiting
                .get(&k)
                .is_some_and(|w| w.iter().any(|(m, _)| *m == n))
            {
                return t.saturating_add(1);
            }
            self.arrivals.pop_front();
        }
        i64::MIN
    }

    /// The input ended at `end_ns` (its latest frame time, when known): every query still
    /// waiting is handed on unanswered, in the order they came; those that came less than
    /// [`crate::flow::WATCH_NS`] before the end are flagged as given up on (the capture
    /// stopped before an answer was due: their lack of one says nothing).
    pub fn finish(
        mut self,
        end_ns: Option<i64>,
        out: &mut impl FnMut(u64, Option<DnsEvent>, Option<DnsEvent>, bool),
    ) {
        let soon = end_ns.map_or(i64::MAX, |e| e.saturating_sub(crate::flow::WATCH_NS));
        self.expire(soon, false, out);
        self.expire(i64::MAX, true, out);
    }

    /// Queries waiting for a response now.
    pub fn waiting(&self) -> usize {
        self.count
    }
}

/// The warning of an input whose lookups gave up on `n` queries early (see
/// [`MAX_WAITING`]).
pub fn gave_up_warning(file: &str, n: u64) -> String {
    format!(
        "{file}: {n} DNS queries were given up on before their minute had passed, because more than {} were waiting for an answer at once: listed as unanswered, but not judged (their answers may have come later)",
        MAX_WAITING
    )
}

/// A lookup as the joiner hands it on: a query, its response, or both.
pub type Joined = (Option<DnsEvent>, Option<DnsEvent>);

/// Lookups put back in the order they began (as [`lookups`] lists them), from the numbers
/// [`Joiner::push`] gives them: one that completes before an earlier one waits for it (at
/// most [`MAX_WAITING`] of them, beyond which the earliest query still waiting is given up
/// on).
#[derive(Default)]
pub struct InOrder {
    joiner: Joiner,
    done: std::collections::BTreeMap<u64, Joined>,
    next: u64,
}

impl InOrder {
    /// Takes the next message; hands `out` the lookups that are next in order.
    pub fn push(&mut self, e: DnsEvent, out: &mut impl FnMut(Joined)) {
        let done = &mut self.done;
        self.joiner.push(e, &mut |n, q, r, _| {
            done.insert(n, (q, r));
        });
        while self.done.len() > MAX_WAITING && self.joiner.count > 0 {
            let before = self.joiner.gave_up_before();
            let done = &mut self.done;
            self.joiner.gave_up += self.joiner.expire(before, true, &mut |n, q, r, _| {
                done.insert(n, (q, r));
            });
        }
        self.hand_on(out);
    }

    fn hand_on(&mut self, out: &mut impl FnMut(Joined)) {
        while let Some(l) = self.done.remove(&self.next) {
            out(l);
            self.next += 1;
        }
    }

    /// The input ended: every lookup left, in order. Returns how many queries were given up
    /// on early (see [`Joiner::gave_up`]).
    pub fn finish(mut self, out: &mut impl FnMut(Joined)) -> u64 {
        let done = &mut self.done;
        let gave_up = self.joiner.gave_up;
        std::mem::take(&mut self.joiner).finish(None, &mut |n, q, r, _| {
            done.insert(n, (q, r));
        });
        self.hand_on(out);
        // Numbers are given without gaps, so nothing is left; whatever is goes in order.
        for (_, l) in std::mem::take(&mut self.done) {
            out(l);
        }
        gave_up
    }
}

/// The row of one lookup: `query` and `response`, not both missing.
pub fn lookup<'a>(
    query: Option<&'a DnsEvent>,
    response: Option<&'a DnsEvent>,
    file: &'a str,
) -> Lookup<'a> {
    let first = query.or(response).expect("one of them");
    let q = first.message.questions.first();
    let (cnames, addresses, nodata, sinkhole) = match response {
        Some(r) => {
            // One chain per response, shared by the names, the addresses and NODATA.
            let c = r.message.chain();
            (
                chain_names(&r.message, &c),
                c.addresses.iter().map(|(a, _)| *a).collect(),
                r.message.is_nodata_in(&c),
                r.message.sinkhole(),
            )
        }
        None => (Vec::new(), Vec::new(), false, false),
    };
    let privatelink = cnames.iter().any(|n| n.contains("privatelink."));
    Lookup {
        time: rfc3339(first.ts_ns),
        ts_ns: response.unwrap_or(first).ts_ns,
        first_ns: first.ts_ns,
        client_ip: first.client,
        client: endpoint(first.client, first.client_port),
        server: endpoint(first.server, first.server_port),
        transport: first.transport,
        id: first.message.id,
        qname: q.map(|q| q.name.as_str()),
        qtype: q.map(|q| qtype_name(q.qtype).into_owned()),
        answered: response.is_some(),
        query_seen: query.is_some(),
        rcode: response.map(|r| rcode_name(r.message.rcode)),
        answers: Answers(response.map(|r| &r.message)),
        cnames,
        addresses,
        nodata,
        sinkhole,
        privatelink,
        truncated: response.is_some_and(|r| r.message.partial == Some(DnsError::Truncated)),
        malformed: response.and_then(|r| match r.message.partial {
            Some(DnsError::Malformed(why)) => Some(why),
            _ => None,
        }),
        rtt_s: match (query, response) {
            (Some(q), Some(r)) => Some((r.ts_ns - q.ts_ns) as f64 / 1e9),
            _ => None,
        },
        file,
    }
}

/// The asked name and the CNAME targets in chain order (`c` is `m`'s chain).
fn chain_names<'a>(m: &'a DnsMessage, c: &crate::proto::dns::Chain) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    // Borrow the strings from the message itself so the lookup can outlive the chain value.
    if let Some(q) = m.questions.first() {
        v.push(&q.name);
    }
    for name in &c.cnames {
        if let Some(r) = m.answers.iter().find_map(|r| match &r.data {
            RData::Cname(t) if t == name => Some(t.as_str()),
            _ => None,
        }) {
            v.push(r);
        }
    }
    v
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    crate::text::socket_text(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookups of `events` as rows, sorted (the joiner hands them on as they complete).
    fn rows(lookups: Vec<Lookup<'_>>) -> Vec<String> {
        let mut v: Vec<String> = lookups
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
        v.sort();
        v
    }

    fn unsorted(lookups: Vec<Lookup<'_>>) -> Vec<String> {
        lookups
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect()
    }

    fn in_order(events: &[DnsEvent]) -> Vec<String> {
        let mut all = Vec::new();
        let mut j = InOrder::default();
        for e in events {
            j.push(e.clone(), &mut |l| all.push(l));
        }
        j.finish(&mut |l| all.push(l));
        unsorted(
            all.iter()
                .map(|(q, r)| lookup(q.as_ref(), r.as_ref(), "f"))
                .collect(),
        )
    }

    fn joined(events: &[DnsEvent]) -> Vec<String> {
        let mut pairs = Vec::new();
        let mut j = Joiner::default();
        for e in events {
            j.push(e.clone(), &mut |_, q, r, _| pairs.push((q, r)));
        }
        j.finish(None, &mut |_, q, r, _| pairs.push((q, r)));
        rows(
            pairs
                .iter()
                .map(|(q, r)| lookup(q.as_ref(), r.as_ref(), "f"))
                .collect(),
        )
    }

    /// Joining as the messages come gives the lookups of joining the whole input: on every
    /// capture of the project, and on messages whose ids, names and order are shuffled.
    #[test]
    fn the_joiner_joins_as_the_whole_input_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(&[dir]);
        let cfg = crate::flow::FlowConfig::default();
        let mut with_dns = 0;
        for i in &inputs {
            let r = crate::pipeline::analyze_input(i, &cfg);
            with_dns += usize::from(!r.dns.is_empty());
            assert_eq!(
                joined(&r.dns),
                rows(lookups(&r.dns, "f")),
                "{}",
                i.display()
            );
        }
        assert!(with_dns >= 5, "{with_dns}");
        // Queries and responses of a few ids and names between two endpoints, some responses
        // with their question cut, in random orders.
        let mut rng = crate::rng::XorShift::new(7);
        for _ in 0..200 {
            let mut events = Vec::new();
            for t in 0..12 {
                let id = (rng.next_u64() % 3) as u16;
                let name = ["a.example", "b.example"][(rng.next_u64() % 2) as usize];
                let answer = rng.next_u64() % 2 == 0;
                let mut message =
                    crate::proto::dns::parse_message(&crate::synth::dns_message(name, id, answer))
                        .unwrap();
                if answer && rng.next_u64() % 4 == 0 {
                    message.questions.clear();
                }
                events.push(DnsEvent::udp_for_test(t * 1_000_000, message));
            }
            assert_eq!(joined(&events), rows(lookups(&events, "f")));
            assert_eq!(in_order(&events), unsorted(lookups(&events, "f")));
        }
    }

    /// A query no response came for within the window is a lookup without an answer; a
    /// response after that is one without a query.
    #[test]
    fn a_query_waits_only_so_long() {
        let msg = |answer| {
            crate::proto::dns::parse_message(&crate::synth::dns_message("a.example", 1, answer))
                .unwrap()
        };
        let ev = |ts_ns, answer| DnsEvent::udp_for_test(ts_ns, msg(answer));
        let mut pairs = Vec::new();
        let mut j = Joiner::default();
        j.push(ev(0, false), &mut |_, q, r, _| {
            pairs.push((q.is_some(), r.is_some()))
        });
        j.push(ev(ANSWER_WINDOW_NS + 1, true), &mut |_, q, r, _| {
            pairs.push((q.is_some(), r.is_some()))
        });
        j.finish(None, &mut |_, q, r, _| {
            pairs.push((q.is_some(), r.is_some()))
        });
        assert_eq!(pairs, [(true, false), (false, true)]);
        // At the end of the input, a query that came less than a second before it is given
        // up on (the capture stopped before its answer was due), an older one is unanswered.
        let mut flags = Vec::new();
        let mut j = Joiner::default();
        let end = 10 * crate::flow::WATCH_NS;
        for t in [0, end - crate::flow::WATCH_NS / 2] {
            let mut e = ev(t, false);
            e.client_port = if t == 0 { 1000 } else { 1001 };
            j.push(e, &mut |_, _, _, _| unreachable!("no lookup completes"));
        }
        j.finish(Some(end), &mut |_, q, r, given_up| {
            flags.push((q.unwrap().ts_ns, r.is_some(), given_up))
        });
        assert_eq!(
            flags,
            [
                (0, false, false),
                (end - crate::flow::WATCH_NS / 2, false, true)
            ]
        );
        // At most `cap` wait: the oldest is handed on unanswered, and counted.
        let mut j = Joiner::with_cap(2);
        let mut pairs = Vec::new();
        for t in 0..3 {
            let mut m = msg(false);
            m.id = t as u16;
            j.push(DnsEvent::udp_for_test(t, m), &mut |_, q, r, given_up| {
                assert!(given_up, "only the query given up on is handed on here");
                pairs.push((q.map(|q| q.message.id), r.is_some()))
            });
        }
        assert_eq!(
            (pairs.clone(), j.gave_up, j.waiting()),
            (vec![(Some(0), false)], 1, 2)
        );
        let mut m = msg(true);
        m.id = 2;
        j.push(DnsEvent::udp_for_test(5, m), &mut |_, q, r, _| {
            pairs.push((q.map(|q| q.message.id), r.is_some()))
        });
        assert_eq!(pairs[1], (Some(2), true));
    }
}

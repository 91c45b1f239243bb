//! One websocket connection judged: its legs (a proxy's client and upstream connections of one
//! handshake), who answered its Upgrade, when its state was dropped, and its timeline.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::audit::judge::middlebox_rst_of;
use crate::flow::{Close, Endpoint, OptNs, Outcome, Proto, RstFacts, Side};
use crate::proto::facts::HttpFacts;
use crate::proto::Described;
use crate::time::rfc3339;

use super::*;

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn endpoint(client: &Endpoint, server: &Endpoint) -> String {
    format!("{} -> {}", client.text(), server.text())
}

pub(super) fn ws_upgrade(h: &HttpFacts) -> bool {
    h.upgrade.as_deref().is_some_and(|u| {
        u.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// What ties the legs of one handshake on both sides of a relay or proxy together: the
/// Sec-WebSocket-Key (true) or the TLS client random (false).
fn handshake_key(f: &Described) -> Option<(bool, &[u8])> {
    if let Some(k) = f.facts.http.as_ref().and_then(|h| h.ws_key.as_deref()) {
        return Some((true, k.as_bytes()));
    }
    let t = f.facts.tls.as_ref()?;
    t.client_hello
        .hello()
        .and_then(|h| h.random.as_ref())
        .map(|r| (false, &r[..]))
}

/// Who answered a refused Upgrade, whether the Upgrade header was removed, and why we think so.
fn judge_answer(
    h: &HttpFacts,
    upstream: Option<(String, Option<&HttpFacts>)>,
    sees_upstream: bool,
) -> (Option<&'static str>, bool, Option<String>) {
    let status = h.status.unwrap_or(0);
    if let Some((leg, uh)) = upstream {
        let Some(uh) = uh else {
            return (
                Some("proxy"),
                false,
                Some(format!(
                    "the proxy's upstream connection {leg} carried no HTTP request"
                )),
            );
        };
        let dropped = !ws_upgrade(uh);
        let mut sent = format!("`{} {} {}`", uh.method, uh.target, uh.version);
        if dropped {
            sent.push_str(" without Upgrade");
        }
        if let Some(c) = &uh.connection {
            sent.push_str(&format!(" (Connection: {c})"));
        }
        let server = uh
            .server
            .as_deref()
            .map(|s| format!(" (Server: {s})"))
            .unwrap_or_default();
        return match uh.status {
            Some(us) if us == status => (
                Some("origin"),
                dropped,
                Some(format!(
                    "the proxy forwarded the handshake on {leg} as {sent}; the origin{server} answered {us} and the proxy relayed it"
                )),
            ),
            Some(us) => (
                Some("proxy"),
                dropped,
                Some(format!(
                    "the proxy forwarded the handshake on {leg} as {sent}; the origin{server} answered {us}, the proxy answered {status}"
                )),
            ),
            None => (
                Some("proxy"),
                dropped,
                Some(format!(
                    "the proxy forwarded the handshake on {leg} as {sent} and got no answer; the {status} is the proxy's own"
                )),
            ),
        };
    }
    if sees_upstream {
        return (
            Some("proxy"),
            false,
            Some(format!(
                "no request with this Sec-WebSocket-Key left the proxy, although this capture shows the proxy's upstream side for other connections: the proxy answered {status} itself"
            )),
        );
    }
    if let Some(e) = &h.x_squid_error {
        return (
            Some("proxy"),
            false,
            Some(format!("the answer carries X-Squid-Error: {e}")),
        );
    }
    if let Some(v) = &h.via {
        return (
            Some("proxy"),
            false,
            Some(format!("the answer carries Via: {v}")),
        );
    }
    match status {
        426 => (
            Some("origin"),
            true,
            Some(
                "426 Upgrade Required: the origin did not get the Upgrade header the client sent, so something on the way removed it"
                    .into(),
            ),
        ),
        505 if h.version.eq_ignore_ascii_case("HTTP/1.1") => (
            Some("origin"),
            true,
            Some(
                "505 HTTP Version Not Supported to a client that spoke HTTP/1.1: a proxy on the way forwarded the handshake as another version (nginx without `proxy_http_version 1.1` sends HTTP/1.0 and drops Upgrade)"
                    .into(),
            ),
        ),
        502..=504 => (
            Some("proxy"),
            false,
            Some(format!(
                "{status} is a gateway's answer: the proxy got no usable answer from the origin"
            )),
        ),
        _ => (
            None,
            false,
            Some(
                "a capture on the far side of the proxy (or of the proxy's upstream interface) would tell whether the origin or the proxy answered"
                    .into(),
            ),
        ),
    }
}

/// At most this many connections carry one handshake (a client leg and proxies' legs).
const MAX_LEGS: usize = 4;
/// A proxy opens its upstream leg within this long of the client's connection.
const LEG_WINDOW_NS: i64 = 10_000_000_000;

/// A firewall or load balancer that forgot an idle connection: the client's first data after
/// a silence got nothing from the server's side but a RST, or nothing at all (not even an ACK)
/// for at least a second. Returns the silence and what happened, in words.
fn state_dropped(f: &Described) -> Option<(f64, String)> {
    let q = f.longest_quiet?;
    let gap = secs(q.ns);
    if q.ended_by != Side::Client || gap < IDLE_CLOSE_S {
        return None;
    }
    let [c, s] = &f.dirs;
    if s.last_payload_ns.is_some_and(|t| t >= q.end_ns) {
        return None;
    }
    if s.rst_ns.is_some_and(|r| r >= q.end_ns) {
        return Some((
            gap,
            format!("the client's first data after {gap:.1} s of silence was answered with a RST: the state of the connection was gone"),
        ));
    }
    let nothing_back = s.last_ns.is_none_or(|t| t < q.end_ns);
    let gave_up =
        c.fin_ns.is_some_and(|t| t >= q.end_ns) || c.rst_ns.is_some_and(|t| t >= q.end_ns);
    if nothing_back && (gave_up || f.last_ns.saturating_sub(q.end_ns) >= 1_000_000_000) {
        return Some((
            gap,
            format!("the client's first data after {gap:.1} s of silence got no answer at all, not even an ACK: the state of the connection was dropped silently"),
        ));
    }
    None
}

/// A websocket-capable connection as an input's fold keeps it to the end of the input, when
/// its legs can be told: what its row needs that does not depend on the other connections,
/// judged once as it finished (a finished flow, with its kept bytes and all its facts, takes
/// 1-4 KB; this about 200 bytes, its name and ALPN list shared with the input's others).
pub(crate) struct WsSeen {
    order: (i64, Proto, Endpoint, Endpoint, u32),
    /// Its handshake key, hashed (see [`KeyHash`]); [`NO_KEY`] for none (see [`WsSeen::key`]).
    key: [u64; 2],
    /// A row of the view ([`wanted`]), or only a possible leg of another's handshake.
    row: bool,
    /// Its name and ALPN list, in the input's [`Shared`] tables.
    name: u32,
    alpn: u32,
    last_ns: i64,
    /// Its place in [`TRANSPORTS`].
    transport: u8,
    connect_status: Option<u16>,
    /// Its HTTP request and answer: a refused Upgrade's, or what a proxy sent onward.
    http: Option<Box<HttpFacts>>,
    outcome: Outcome,
    /// The server's first payload, the last payload each way, and payload bytes each way.
    handshake_ns: OptNs,
    last_data_ns: [OptNs; 2],
    bytes: [u64; 2],
    /// The first FIN or RST: when, and which (see [`WsSeen::close`]).
    close_ns: OptNs,
    close_how: u8,
    /// The server's RST, when the server's side closed with one.
    rst: Option<RstFacts>,
    diagnosis: WsDiagnosis,
    /// The idle gap the diagnosis reports (NaN for none: see [`WsSeen::gap`]), and why a
    /// dropped state is one.
    gap: f64,
    dropped_state: Option<Box<str>>,
}

/// How a websocket-capable connection was carried, as its row says.
const TRANSPORTS: [&str; 5] = ["tls-via-proxy", "tls", "proxy", "http", "-"];

/// A connection without a handshake key (a 128-bit hash is this by chance once in 2^128).
const NO_KEY: [u64; 2] = [0, 0];

impl WsSeen {
    fn first_ns(&self) -> i64 {
        self.order.0
    }

    /// Its handshake key, hashed.
    fn key(&self) -> Option<[u64; 2]> {
        (self.key != NO_KEY).then_some(self.key)
    }

    /// The idle gap the diagnosis reports.
    fn gap(&self) -> Option<f64> {
        (!self.gap.is_nan()).then_some(self.gap)
    }

    fn client(&self) -> &Endpoint {
        &self.order.2
    }

    fn server(&self) -> &Endpoint {
        &self.order.3
    }

    fn end_ns(&self) -> Option<i64> {
        self.close_ns.get()
    }

    /// The first FIN or RST.
    fn close(&self) -> Option<Close> {
        let ts_ns = self.close_ns.get()?;
        let how = if self.close_how & 2 == 0 {
            "fin"
        } else {
            "rst"
        };
        let by = if self.close_how & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        Some(Close { by, how, ts_ns })
    }

    fn duration_s(&self) -> f64 {
        secs(
            self.end_ns()
                .unwrap_or(self.last_ns)
                .saturating_sub(self.first_ns()),
        )
    }

    /// The Upgrade request of a plain-HTTP (or decrypted) connection.
    fn upgrade(&self) -> Option<&HttpFacts> {
        self.http.as_deref().filter(|h| ws_upgrade(h))
    }
}

/// Values kept once and referred to by number, in the order they first came.
struct Interned<T: ?Sized> {
    items: Vec<Box<T>>,
    ids: HashMap<Box<T>, u32, rustc_hash::FxSeededState>,
}

impl<T: ?Sized + std::hash::Hash + Eq> Interned<T>
where
    for<'a> Box<T>: From<&'a T>,
{
    fn new() -> Interned<T> {
        Interned {
            items: Vec::new(),
            ids: HashMap::with_hasher(crate::flow::seeded_hash()),
        }
    }

    /// The number of `v`, kept if new.
    fn id(&mut self, v: &T) -> u32 {
        if let Some(&i) = self.ids.get(v) {
            return i;
        }
        let i = self.items.len() as u32;
        self.items.push(v.into());
        self.ids.insert(v.into(), i);
        i
    }

    fn get(&self, i: u32) -> &T {
        &self.items[i as usize]
    }
}

/// The names and ALPN lists of an input's websocket-capable connections, each kept once.
struct Shared {
    names: Interned<str>,
    alpns: Interned<[String]>,
}

/// `f` judged on its own (`row`: whether the view shows it), its handshake key hashed by
/// `keys`, its name and ALPN list kept in `shared`.
fn seen(f: &Described, row: bool, keys: &KeyHash, shared: &mut Shared) -> WsSeen {
    let fx = &f.facts;
    let alpn = shared.alpns.id(fx
        .tls
        .as_ref()
        .and_then(|t| t.client_hello.hello())
        .map(|h| &h.alpn[..])
        .unwrap_or_default());
    let transport = match (&fx.tls, &fx.connect, &fx.http) {
        (Some(_), Some(_), _) => 0,
        (Some(_), None, _) => 1,
        (None, Some(_), _) => 2,
        (None, None, Some(_)) => 3,
        _ => 4,
    };
    let [c, s] = &f.dirs;
    let close = f.close();
    // The silence before the first FIN or RST.
    let quiet_close = match (close, f.data_before_close_ns.get()) {
        (Some(cl), Some(d)) => Some(secs(cl.ts_ns.saturating_sub(d))),
        _ => None,
    };
    let outcome = f.outcome();
    let refused = fx
        .http
        .as_deref()
        .filter(|h| ws_upgrade(h) && h.status.is_some_and(|s| s != 101));
    let (diagnosis, gap, dropped_state) =
        if !matches!(outcome, Outcome::Established | Outcome::Midstream) {
            (WsDiagnosis::NeverEstablished, quiet_close, None)
        } else if refused.is_some() {
            // Who answered is told at the end of the input, from the other legs.
            (WsDiagnosis::WsUpgradeFailed, quiet_close, None)
        } else if let Some((g, how)) = state_dropped(f) {
            (WsDiagnosis::WsIdleKill, Some(g), Some(how.into_boxed_str()))
        } else if quiet_close.is_some_and(|g| g >= IDLE_CLOSE_S) {
            (WsDiagnosis::WsIdleKill, quiet_close, None)
        } else {
            (WsDiagnosis::Healthy, quiet_close, None)
        };
    WsSeen {
        order: crate::flow::order_key(f),
        key: handshake_key(f).map_or(NO_KEY, |(ws, k)| keys.hash(ws, k)),
        row,
        name: match &fx.name {
            Some(n) => shared.names.id(n),
            None => shared.names.id(&crate::text::ip_text(f.server.ip)),
        },
        alpn,
        last_ns: f.last_ns,
        transport,
        connect_status: fx.connect.as_ref().and_then(|c| c.statuses.last().copied()),
        http: fx.http.clone(),
        outcome,
        handshake_ns: s.first_payload_ns,
        last_data_ns: [c.last_payload_ns, s.last_payload_ns],
        bytes: [c.payload_bytes, s.payload_bytes],
        close_ns: close.map_or(OptNs::NONE, |c| OptNs::some(c.ts_ns)),
        close_how: close.map_or(0, |c| {
            u8::from(c.how == "rst") << 1 | u8::from(c.by == Side::Server)
        }),
        rst: close
            .filter(|cl| cl.how == "rst" && cl.by == Side::Server)
            .and(s.rst),
        diagnosis,
        gap: gap.unwrap_or(f64::NAN),
        dropped_state,
    }
}

/// Hashes handshake keys to 128 bits with two randomly keyed SipHashes: the keys come from
/// the wire, and two different keys must not pass for one (a 64-bit hash would make that
/// possible by brute force; this needs breaking SipHash).
struct KeyHash(
    std::collections::hash_map::RandomState,
    std::collections::hash_map::RandomState,
);

impl KeyHash {
    fn new() -> KeyHash {
        KeyHash(Default::default(), Default::default())
    }

    /// The hash of a Sec-WebSocket-Key (`ws`) or a TLS client random.
    fn hash(&self, ws: bool, k: &[u8]) -> [u64; 2] {
        [self.0.hash_one((ws, k)), self.1.hash_one((ws, k))]
    }
}

/// The websocket view of one input as its flows finish: each flow it needs judged on its own
/// at once ([`WsSeen`]), the connections put together with their other legs at the end of the
/// input ([`WsInput::finish`]).
pub(crate) struct WsInput {
    file: String,
    keys: KeyHash,
    shared: Shared,
    seen: Chunked<WsSeen>,
}

/// A list that grows a chunk at a time: no copy of what it holds and no room for twice as
/// much as it grows (the websocket view of a long input holds some 200,000 connections).
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Items per chunk of a [`Chunked`].
const CHUNK: usize = 4096;

impl<T> Chunked<T> {
    fn new() -> Chunked<T> {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, t: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(t),
            _ => {
                let mut c = Vec::with_capacity(if self.chunks.is_empty() { 16 } else { CHUNK });
                c.push(t);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Sorts by `key` (stable), unless already sorted.
    fn sort_by_key<K: Ord>(&mut self, key: impl Fn(&T) -> K + Sync)
    where
        T: Send,
    {
        if self.iter().is_sorted_by_key(&key) {
            return;
        }
        let mut all: Vec<T> = std::mem::take(&mut self.chunks)
            .into_iter()
            .flatten()
            .collect();
        all.par_sort_by_key(key);
        self.len = 0;
        for t in all {
            self.push(t);
        }
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Chunked<T> {
        let mut c = Chunked::new();
        for t in items {
            c.push(t);
        }
        c
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl WsInput {
    pub(crate) fn new(file: String) -> WsInput {
        WsInput {
            file,
            keys: KeyHash::new(),
            shared: Shared {
                names: Interned::new(),
                alpns: Interned::new(),
            },
            seen: Chunked::new(),
        }
    }

    /// Takes in a finished flow if the view needs it: one it shows ([`wanted`]), or one that
    /// may be another leg of a handshake it shows (an HTTP request with a Sec-WebSocket-Key,
    /// Upgrade or not: a proxy may drop the Upgrade). A TLS connection relayed by a proxy
    /// carries the same hello, so the same name, on both legs.
    pub(crate) fn add(&mut self, f: &Described, catalog: &Catalog) {
        if f.proto != Proto::Tcp {
            return;
        }
        let row = wanted(f, catalog);
        if row || f.facts.http.as_ref().is_some_and(|h| h.ws_key.is_some()) {
            self.seen.push(seen(f, row, &self.keys, &mut self.shared));
        }
    }

    /// The input ended: every connection put together with its other legs (`ttls`: the
    /// input's [`crate::audit::server_ttls`], for telling a middlebox's RST), counted per
    /// instance, and the first `limit` rows of each instance made, in flow order.
    pub(crate) fn finish(mut self, ttls: &crate::audit::ServerTtls, limit: usize) -> WsView {
        self.seen.sort_by_key(|s| s.order);
        let legs = Legs::new(&self.seen);
        // Which rows are made: the first `limit` of each instance, and the first of each
        // diagnosis and leg (the example its tally keeps).
        let mut listed: Vec<usize> = vec![0; self.shared.names.items.len()];
        let mut firsts: std::collections::HashSet<(u32, bool, WsDiagnosis)> = Default::default();
        // (connection, client leg, listed, first of its diagnosis and leg)
        let mut made: Vec<(usize, bool, bool, bool)> = Vec::new();
        for (i, s) in self.seen.iter().enumerate().filter(|(_, s)| s.row) {
            let n = &mut listed[s.name as usize];
            let list = *n < limit;
            *n += usize::from(list);
            let client = legs.is_client(i, &self.seen);
            let first = firsts.insert((s.name, client, s.diagnosis));
            made.push((i, client, list, first));
        }
        let (seen, shared, file) = (&self.seen, &self.shared, self.file.as_str());
        // Only the rows an output takes are made (a row is some 700 bytes: one for every
        // connection was most of the memory of a long input).
        let wanted: Vec<usize> = made
            .iter()
            .filter(|&&(_, _, list, first)| list || first)
            .map(|&(i, ..)| i)
            .collect();
        let mut rows = wanted
            .par_iter()
            .with_min_len(64)
            .map(|&i| legs.row(i, seen, shared, file, ttls))
            .collect::<Vec<WsFlow>>()
            .into_iter();
        let mut view = WsView::new(limit);
        let mut rows_listed = Vec::new();
        for &(i, client, list, first) in &made {
            let row = (list || first).then(|| rows.next().expect("made for it"));
            let s = &seen[i];
            let name = shared.names.get(s.name);
            view.total += 1;
            let tally = match view.tallies.get_mut(name) {
                Some(t) => t,
                None => view.tallies.entry(name.to_string()).or_default(),
            };
            tally.add(client, s.diagnosis, s.duration_s(), || {
                row.clone().expect("made: the first of its kind")
            });
            if list {
                rows_listed.push(row.expect("made: listed"));
            }
        }
        view.take_rows(rows_listed);
        view
    }
}

/// The legs of each handshake of one input: connections with the same key starting within
/// [`LEG_WINDOW_NS`] of the first, at most [`MAX_LEGS`] of them.
struct Legs {
    /// Handshake key -> the connections carrying it (indices, in flow order), for keys on two
    /// connections or more.
    by_key: HashMap<[u64; 2], Vec<usize>, rustc_hash::FxBuildHasher>,
    /// Some handshake in this input was seen on two legs.
    sees_upstream: bool,
}

impl Legs {
    fn new(seen: &Chunked<WsSeen>) -> Legs {
        let mut by_key: HashMap<[u64; 2], Vec<usize>, rustc_hash::FxBuildHasher> =
            HashMap::default();
        for (i, s) in seen.iter().enumerate() {
            if let Some(k) = s.key() {
                by_key.entry(k).or_default().push(i);
            }
        }
        // The legs of one handshake are a few connections starting within moments of each
        // other. The same random or key on more connections than that is no relay (a replayed
        // or generated hello, or hostile input) and ties nothing together; it must not make
        // the work grow with the square of the connections either.
        by_key.retain(|_, v| v.len() > 1 && v.len() <= MAX_LEGS);
        for v in by_key.values_mut() {
            let first = seen[v[0]].first_ns();
            v.retain(|&g| seen[g].first_ns() - first <= LEG_WINDOW_NS);
        }
        by_key.retain(|_, v| v.len() > 1);
        let sees_upstream = !by_key.is_empty();
        Legs {
            by_key,
            sees_upstream,
        }
    }

    /// The legs of connection `i`'s handshake, `i` included (empty when it has no other).
    fn of(&self, i: usize, seen: &Chunked<WsSeen>) -> &[usize] {
        match seen[i].key().and_then(|k| self.by_key.get(&k)) {
            Some(all) if all.contains(&i) => all,
            _ => &[],
        }
    }

    /// Whether connection `i` is the first (client) leg of its handshake.
    fn is_client(&self, i: usize, seen: &Chunked<WsSeen>) -> bool {
        self.of(i, seen).first().is_none_or(|&g| g == i)
    }

    /// The row of connection `i`.
    fn row(
        &self,
        i: usize,
        seen: &Chunked<WsSeen>,
        shared: &Shared,
        file: &str,
        ttls: &crate::audit::ServerTtls,
    ) -> WsFlow {
        let s = &seen[i];
        let alpn = shared.alpns.get(s.alpn);
        let is_client = self.is_client(i, seen);
        let others: Vec<&WsSeen> = self
            .of(i, seen)
            .iter()
            .filter(|&&g| g != i)
            .map(|&g| &seen[g])
            .collect();
        let (answered_by, upgrade_dropped, evidence) = match s.http.as_deref() {
            Some(h) if s.diagnosis == WsDiagnosis::WsUpgradeFailed => {
                // The proxy's onward leg: the first other leg that started after this one.
                let upstream = others
                    .iter()
                    .find(|g| g.first_ns() >= s.first_ns())
                    .map(|g| (endpoint(g.client(), g.server()), g.http.as_deref()));
                judge_answer(h, upstream, self.sees_upstream && is_client)
            }
            _ => (None, false, s.dropped_state.as_deref().map(str::to_string)),
        };
        let timer = (s.diagnosis == WsDiagnosis::WsIdleKill)
            .then(|| s.gap().map(timer_for))
            .flatten();
        let first = s.first_ns();
        let at = |t: Option<i64>| t.map(rfc3339);
        let off = |t: Option<i64>| t.map(|t| secs(t.saturating_sub(first)));
        let end = s.end_ns();
        let upgrade = s.upgrade();
        WsFlow {
            name: shared.names.get(s.name).to_string(),
            client: s.client().text(),
            server: s.server().text(),
            leg: if is_client { "client" } else { "upstream" }.into(),
            other_legs: others
                .iter()
                .map(|g| endpoint(g.client(), g.server()))
                .collect(),
            transport: TRANSPORTS[usize::from(s.transport)].into(),
            http1_offered: alpn.is_empty() || alpn.iter().any(|a| a == "http/1.1"),
            alpn: alpn.to_vec(),
            connect_status: s.connect_status,
            upgrade_path: upgrade.map(|h| h.target.clone()),
            upgrade_status: upgrade.and_then(|h| h.status),
            upgrade_reason: upgrade.and_then(|h| h.reason.clone()),
            answer_server: upgrade.and_then(|h| h.server.clone()),
            answered_by: answered_by.map(str::to_string),
            upgrade_dropped,
            evidence,
            outcome: s.outcome.name().into(),
            start: rfc3339(first),
            duration_s: s.duration_s(),
            bytes_from_client: s.bytes[0],
            bytes_from_server: s.bytes[1],
            idle_before_end_s: s.gap(),
            ended_by: s.close().map(|c| {
                let by = if c.by == Side::Client {
                    "client"
                } else {
                    "server"
                };
                format!("{} by {by}", c.how)
            }),
            rst_from_middlebox: s.rst.and_then(|r| middlebox_rst_of(s.server().ip, r, ttls)),
            timeline: Timeline {
                start: rfc3339(first),
                handshake: at(s.handshake_ns.get()),
                last_client_data: at(s.last_data_ns[0].get()),
                last_server_data: at(s.last_data_ns[1].get()),
                end: at(end),
                handshake_s: off(s.handshake_ns.get()),
                last_client_data_s: off(s.last_data_ns[0].get()),
                last_server_data_s: off(s.last_data_ns[1].get()),
                end_s: off(end),
            },
            diagnosis: s.diagnosis,
            timer,
            file: file.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(version: &str, status: u16) -> HttpFacts {
        HttpFacts {
            method: "GET".into(),
            target: "/api/kernels/k/channels".into(),
            host: Some("ci.westeurope.instances.azureml.ms".into()),
            version: version.into(),
            upgrade: Some("websocket".into()),
            connection: Some("Upgrade".into()),
            ws_key: Some("k".into()),
            status: Some(status),
            reason: None,
            server: None,
            via: None,
            x_squid_error: None,
            azure_firewall_deny: false,
            truncated: false,
        }
    }

    /// A connection at `first_s` seconds from client port `port`, with handshake key `key`.
    fn conn(first_s: f64, port: u16, key: u64) -> WsSeen {
        let ip = std::net::IpAddr::from([10, 0, 0, 2]);
        let server = Endpoint {
            ip: std::net::IpAddr::from([10, 0, 0, 9]),
            port: 443,
        };
        let first = (first_s * 1e9) as i64;
        WsSeen {
            order: (first, Proto::Tcp, Endpoint { ip, port }, server, 0),
            key: [key, 1],
            row: true,
            name: 0,
            alpn: 0,
            last_ns: first,
            transport: 1,
            connect_status: None,
            http: None,
            outcome: Outcome::Established,
            handshake_ns: OptNs::NONE,
            last_data_ns: [OptNs::NONE; 2],
            bytes: [0; 2],
            close_ns: OptNs::NONE,
            close_how: 0,
            rst: None,
            diagnosis: WsDiagnosis::Healthy,
            gap: f64::NAN,
            dropped_state: None,
        }
    }

    /// A chunked list holds, finds and sorts what a list would, over several chunks.
    #[test]
    fn a_chunked_list_is_a_list() {
        let n = 2 * CHUNK + 5;
        let mut c: Chunked<usize> = (0..n).map(|i| (i * 7919) % n).collect();
        assert_eq!((c.len, c.chunks.len()), (n, 3));
        assert_eq!(c[CHUNK + 1], ((CHUNK + 1) * 7919) % n);
        c.sort_by_key(|&x| x);
        assert!(c.iter().copied().eq(0..n));
        assert!((0..n).all(|i| c[i] == i));
        assert!(c.chunks.iter().all(|ch| ch.len() <= CHUNK));
    }

    /// The legs of a handshake are the connections with its key starting within 10 s of the
    /// first; a later one with the same key is a connection of its own; a key on more than
    /// four connections ties none.
    #[test]
    fn legs_are_the_connections_of_one_key_within_the_window() {
        let seen: Chunked<WsSeen> = [
            conn(0.0, 1, 7),
            conn(0.5, 2, 7),
            conn(30.0, 3, 7),
            conn(1.0, 4, 8),
        ]
        .into_iter()
        .collect();
        let legs = Legs::new(&seen);
        assert!(legs.sees_upstream);
        assert_eq!(legs.of(0, &seen), [0, 1]);
        assert!(legs.is_client(0, &seen) && !legs.is_client(1, &seen));
        assert_eq!(legs.of(2, &seen), [] as [usize; 0]);
        assert!(legs.is_client(2, &seen));
        assert!(legs.of(3, &seen).is_empty() && legs.is_client(3, &seen));
        let replayed: Chunked<WsSeen> = (0..5)
            .map(|i| conn(f64::from(i) * 0.1, 10 + i as u16, 9))
            .collect();
        let legs = Legs::new(&replayed);
        assert!(!legs.sees_upstream);
        assert!((0..5).all(|i| legs.is_client(i, &replayed) && legs.of(i, &replayed).is_empty()));
    }

    #[test]
    fn a_single_leg_answer_proves_what_it_can() {
        let (by, dropped, _) = judge_answer(&http("HTTP/1.1", 426), None, false);
        assert_eq!((by, dropped), (Some("origin"), true));
        let (by, dropped, _) = judge_answer(&http("HTTP/1.1", 505), None, false);
        assert_eq!((by, dropped), (Some("origin"), true));
        // A 505 to an HTTP/1.0 client is the origin's honest answer, nothing was changed.
        let (by, dropped, _) = judge_answer(&http("HTTP/1.0", 505), None, false);
        assert_eq!((by, dropped), (None, false));
        let (by, _, _) = judge_answer(&http("HTTP/1.1", 502), None, false);
        assert_eq!(by, Some("proxy"));
        let (by, _, _) = judge_answer(&http("HTTP/1.1", 403), None, false);
        assert_eq!(by, None);
        let mut v = http("HTTP/1.1", 403);
        v.via = Some("1.1 proxy".into());
        assert_eq!(judge_answer(&v, None, false).0, Some("proxy"));
        // The capture shows the proxy's other upstream legs but not this one.
        assert_eq!(
            judge_answer(&http("HTTP/1.1", 403), None, true).0,
            Some("proxy")
        );
    }
}

//! The websocket view (`allowscope ws`, and the websocket section of `allowscope audit`): for
//! every flow to a websocket-capable catalog entry (Jupyter kernels on Azure ML compute
//! instances) or carrying an HTTP `Upgrade: websocket`, whether a websocket came up, how long
//! it lived and how it ended, with a diagnosis per connection and per instance.
//!
//! Evidence rules (design.md, rule 10):
//! - an Upgrade answered with anything but 101 is `ws-upgrade-failed`; who answered (the
//!   origin or a proxy) and whether a proxy removed the Upgrade header come from the proxy's
//!   upstream leg when the capture has it (the same Sec-WebSocket-Key, or the same TLS client
//!   random, on a second connection), else from what the answer itself proves (426, or 505 to
//!   an HTTP/1.1 request, means the origin got a request the client did not send);
//! - a connection that carried data and was then closed (FIN or RST, by either side) after at
//!   least [`IDLE_CLOSE_S`] without a byte either way is `ws-idle-kill`: an application closing
//!   a websocket sends a Close frame (and TLS a close_notify) right before its FIN, a timer
//!   does not. The gap is named after the timer it matches;
//! - several short connections in a row to one instance mean the websocket never stays up.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{middlebox_rst, server_ttls};
use crate::catalog::Catalog;
use crate::flow::{Outcome, Proto, Side};
use crate::pipeline::FileResult;
use crate::proto::facts::HttpFacts;
use crate::proto::Described;
use crate::time::rfc3339;

/// A connection quiet this long before its first FIN or RST was closed by a timer, not by the
/// application.
pub const IDLE_CLOSE_S: f64 = 2.0;
/// Connections shorter than this count as short for the "never stays up" pattern.
pub const SHORT_S: f64 = 10.0;
/// Jupyter's websocket ping interval (seconds).
pub const JUPYTER_PING_S: f64 = 30.0;

/// Diagnosis of one websocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WsDiagnosis {
    /// The far end answered, and the connection is still open or was closed by the
    /// application.
    Healthy,
    /// An Upgrade was answered with something other than 101.
    WsUpgradeFailed,
    /// The connection carried data and was closed after a fixed idle gap.
    WsIdleKill,
    /// The connection never got as far as the far end answering (blocked).
    NeverEstablished,
}

impl WsDiagnosis {
    pub fn name(self) -> &'static str {
        match self {
            WsDiagnosis::Healthy => "healthy",
            WsDiagnosis::WsUpgradeFailed => "ws-upgrade-failed",
            WsDiagnosis::WsIdleKill => "ws-idle-kill",
            WsDiagnosis::NeverEstablished => "never-established",
        }
    }
}

/// The moments of one connection: RFC 3339 times, and seconds after `start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    pub start: String,
    /// The far end's first application data (ServerHello, the HTTP answer to the Upgrade, or
    /// a proxy's answer to CONNECT).
    pub handshake: Option<String>,
    pub last_client_data: Option<String>,
    pub last_server_data: Option<String>,
    /// The first FIN or RST; null while the connection was open at the end of the capture.
    pub end: Option<String>,
    pub handshake_s: Option<f64>,
    pub last_client_data_s: Option<f64>,
    pub last_server_data_s: Option<f64>,
    pub end_s: Option<f64>,
}

/// One websocket-capable connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsFlow {
    pub name: String,
    pub client: String,
    pub server: String,
    /// "client" for a connection a client opened; "upstream" for a proxy's own connection
    /// onward, recognised by the same Sec-WebSocket-Key or TLS client random as an earlier
    /// connection in the same capture.
    pub leg: String,
    /// The other legs of the same handshake in this capture ("client -> server").
    pub other_legs: Vec<String>,
    /// "tls", "tls-via-proxy", "proxy" (a CONNECT that got no tunnel), "http", or "-"
    /// (nothing was exchanged).
    pub transport: String,
    /// ALPN offered by the client; websockets over HTTP/2 need RFC 8441 support on every hop,
    /// so `http/1.1` missing from the list matters.
    pub alpn: Vec<String>,
    pub http1_offered: bool,
    /// Through an explicit proxy: its last answer to CONNECT.
    pub connect_status: Option<u16>,
    /// Plain HTTP (or a decrypted path): the Upgrade request's path and the answer.
    pub upgrade_path: Option<String>,
    pub upgrade_status: Option<u16>,
    pub upgrade_reason: Option<String>,
    /// The answer's Server header.
    pub answer_server: Option<String>,
    /// Who answered a refused Upgrade: "origin" or "proxy"; null when the capture cannot tell.
    pub answered_by: Option<String>,
    /// A proxy removed the Upgrade header on the way (seen on its upstream leg, or proven by
    /// the origin's answer).
    pub upgrade_dropped: bool,
    /// Why `answered_by` and `upgrade_dropped` say what they say.
    pub evidence: Option<String>,
    pub outcome: String,
    pub start: String,
    pub duration_s: f64,
    pub bytes_from_client: u64,
    pub bytes_from_server: u64,
    /// Seconds without payload either way before the first FIN or RST (null while open); for
    /// a connection whose state a firewall dropped, the silence before the client's data that
    /// got no answer.
    pub idle_before_end_s: Option<f64>,
    /// "fin" or "rst", and by whom; null while open at the end of the capture.
    pub ended_by: Option<String>,
    /// The closing RST looks made by a middlebox (and why).
    pub rst_from_middlebox: Option<String>,
    pub timeline: Timeline,
    pub diagnosis: WsDiagnosis,
    /// The timer the idle gap matches, in words.
    pub timer: Option<String>,
    pub file: String,
}

/// The diagnosis per instance (name), in plain words.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsInstance {
    pub name: String,
    /// "healthy", "ws-upgrade-failed", "ws-idle-kill", "never-established" or
    /// "never-stays-up".
    pub problem: String,
    /// Connections opened by clients (a proxy's upstream legs are not counted again).
    pub connections: usize,
    /// Of those, connections shorter than [`SHORT_S`].
    pub short_connections: usize,
    pub diagnosis: String,
    pub advice: Option<String>,
}

/// The websocket section of an audit: the diagnosis per instance and every connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsReport {
    pub instances: Vec<WsInstance>,
    pub connections: Vec<WsFlow>,
}

/// Names a measured idle gap after the timer it matches.
pub fn timer_for(gap_s: f64) -> String {
    match gap_s {
        g if (55.0..=70.0).contains(&g) => "about 60 s: nginx's default proxy_read_timeout".into(),
        g if (225.0..=255.0).contains(&g) => {
            "about 4 min: Azure Firewall / Azure Load Balancer idle timeout".into()
        }
        g if (285.0..=315.0).contains(&g) => "about 5 min: envoy's idle timeout".into(),
        g if g < JUPYTER_PING_S => format!(
            "a measured idle gap of {g:.0} s, shorter than Jupyter's {JUPYTER_PING_S:.0} s ping interval"
        ),
        g => format!("a measured idle gap of {g:.0} s"),
    }
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn endpoint(f: &Described) -> String {
    format!("{} -> {}", f.client.text(), f.server.text())
}

fn ws_upgrade(h: &HttpFacts) -> bool {
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
    upstream: Option<&Described>,
    sees_upstream: bool,
) -> (Option<&'static str>, bool, Option<String>) {
    let status = h.status.unwrap_or(0);
    if let Some(up) = upstream {
        let leg = endpoint(up);
        let Some(uh) = up.facts.http.as_ref() else {
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

struct Legs<'a> {
    /// Handshake key -> the flows carrying it, in first-seen order (keys on two flows or more).
    by_key: LegMap<'a, Vec<&'a Described>>,
    /// Some handshake in this capture was seen on two legs.
    sees_upstream: bool,
}

/// Handshake keys come from the wire, so the hash is seeded (see [`crate::flow::seeded_hash`]).
type LegMap<'a, V> = HashMap<(bool, &'a [u8]), V, rustc_hash::FxSeededState>;

impl<'a> Legs<'a> {
    fn new(flows: &'a [Box<Described>]) -> Legs<'a> {
        // Almost every key is on one flow: those only remember it, and a key seen again gets
        // the list of its flows.
        let mut seen: LegMap<'a, &'a Described> =
            HashMap::with_capacity_and_hasher(flows.len(), crate::flow::seeded_hash());
        let mut by_key: LegMap<'a, Vec<&'a Described>> =
            HashMap::with_hasher(crate::flow::seeded_hash());
        for f in flows.iter().filter(|f| f.proto == Proto::Tcp) {
            let Some(k) = handshake_key(f) else { continue };
            match seen.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(f);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    by_key.entry(k).or_insert_with(|| vec![*o.get()]).push(f);
                }
            }
        }
        drop(seen);
        // The legs of one handshake are a few connections starting within moments of each
        // other. The same random or key on more connections than that is no relay (a replayed
        // or generated hello, or hostile input) and ties nothing together; it must not make
        // the work grow with the square of the flows either.
        by_key.retain(|_, v| v.len() <= MAX_LEGS);
        for v in by_key.values_mut() {
            let first = v[0].first_ns;
            v.retain(|g| g.first_ns - first <= LEG_WINDOW_NS);
        }
        by_key.retain(|_, v| v.len() > 1);
        let sees_upstream = !by_key.is_empty();
        Legs {
            by_key,
            sees_upstream,
        }
    }

    /// The legs of `f`'s handshake other than `f`, and whether `f` is the first (client) leg.
    fn of(&self, f: &Described) -> (bool, Vec<&'a Described>) {
        let Some(all) = handshake_key(f).and_then(|k| self.by_key.get(&k)) else {
            return (true, Vec::new());
        };
        let first = all.first().is_none_or(|g| std::ptr::eq(*g, f));
        let others = all
            .iter()
            .copied()
            .filter(|g| !std::ptr::eq(*g, f))
            .collect();
        (first, others)
    }
}

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

fn ws_flow(f: &Described, file: &str, legs: &Legs<'_>, ttls: &crate::audit::ServerTtls) -> WsFlow {
    let fx = &f.facts;
    let alpn: Vec<String> = fx
        .tls
        .as_ref()
        .and_then(|t| t.client_hello.hello())
        .map(|h| h.alpn.clone())
        .unwrap_or_default();
    let transport = match (&fx.tls, &fx.connect, &fx.http) {
        (Some(_), Some(_), _) => "tls-via-proxy",
        (Some(_), None, _) => "tls",
        (None, Some(_), _) => "proxy",
        (None, None, Some(_)) => "http",
        _ => "-",
    };
    let upgrade = fx.http.as_ref().filter(|h| ws_upgrade(h));
    let (is_client, others) = legs.of(f);
    // The proxy's onward leg: the first other leg that started after this one.
    let upstream = others.iter().copied().find(|g| g.first_ns >= f.first_ns);
    let [c, s] = &f.dirs;
    let close = f.close();
    // The silence before the first FIN or RST.
    let quiet_close = match (close, f.data_before_close_ns) {
        (Some(cl), Some(d)) => Some(secs(cl.ts_ns.saturating_sub(d))),
        _ => None,
    };
    let outcome = f.outcome();
    let refused = upgrade.filter(|h| h.status.is_some_and(|s| s != 101));
    // Diagnosis, the idle gap it reports, and its evidence.
    let (diagnosis, gap, (answered_by, upgrade_dropped, evidence)) =
        if !matches!(outcome, Outcome::Established | Outcome::Midstream) {
            (
                WsDiagnosis::NeverEstablished,
                quiet_close,
                (None, false, None),
            )
        } else if let Some(h) = refused {
            let answer = judge_answer(h, upstream, legs.sees_upstream && is_client);
            (WsDiagnosis::WsUpgradeFailed, quiet_close, answer)
        } else if let Some((g, how)) = state_dropped(f) {
            (WsDiagnosis::WsIdleKill, Some(g), (None, false, Some(how)))
        } else if quiet_close.is_some_and(|g| g >= IDLE_CLOSE_S) {
            (WsDiagnosis::WsIdleKill, quiet_close, (None, false, None))
        } else {
            (WsDiagnosis::Healthy, quiet_close, (None, false, None))
        };
    let timer = (diagnosis == WsDiagnosis::WsIdleKill)
        .then(|| gap.map(timer_for))
        .flatten();
    let at = |t: Option<i64>| t.map(rfc3339);
    let off = |t: Option<i64>| t.map(|t| secs(t.saturating_sub(f.first_ns)));
    let end = close.map(|c| c.ts_ns);
    let rst_from_middlebox = match close {
        Some(cl) if cl.how == "rst" && cl.by == Side::Server => middlebox_rst(f, ttls),
        _ => None,
    };
    WsFlow {
        name: fx
            .name
            .clone()
            .unwrap_or_else(|| crate::text::ip_text(f.server.ip)),
        client: f.client.text(),
        server: f.server.text(),
        leg: if is_client { "client" } else { "upstream" }.into(),
        other_legs: others.iter().map(|g| endpoint(g)).collect(),
        transport: transport.into(),
        http1_offered: alpn.is_empty() || alpn.iter().any(|a| a == "http/1.1"),
        alpn,
        connect_status: fx.connect.as_ref().and_then(|c| c.statuses.last().copied()),
        upgrade_path: upgrade.map(|h| h.target.clone()),
        upgrade_status: upgrade.and_then(|h| h.status),
        upgrade_reason: upgrade.and_then(|h| h.reason.clone()),
        answer_server: upgrade.and_then(|h| h.server.clone()),
        answered_by: answered_by.map(str::to_string),
        upgrade_dropped,
        evidence,
        outcome: outcome.name().into(),
        start: rfc3339(f.first_ns),
        duration_s: secs(end.unwrap_or(f.last_ns).saturating_sub(f.first_ns)),
        bytes_from_client: c.payload_bytes,
        bytes_from_server: s.payload_bytes,
        idle_before_end_s: gap,
        ended_by: close.map(|c| {
            let by = if c.by == Side::Client {
                "client"
            } else {
                "server"
            };
            format!("{} by {by}", c.how)
        }),
        rst_from_middlebox,
        timeline: Timeline {
            start: rfc3339(f.first_ns),
            handshake: at(s.first_payload_ns),
            last_client_data: at(c.last_payload_ns),
            last_server_data: at(s.last_payload_ns),
            end: at(end),
            handshake_s: off(s.first_payload_ns),
            last_client_data_s: off(c.last_payload_ns),
            last_server_data_s: off(s.last_payload_ns),
            end_s: off(end),
        },
        diagnosis,
        timer,
        file: file.to_string(),
    }
}

/// Whether a flow belongs in the websocket view: an Upgrade to websocket, or a name of a
/// websocket-capable catalog entry.
fn wanted(f: &Described, catalog: &Catalog) -> bool {
    if f.proto != Proto::Tcp {
        return false;
    }
    if f.facts.http.as_deref().is_some_and(ws_upgrade) {
        return true;
    }
    f.facts.name.as_deref().is_some_and(|n| {
        catalog
            .lookup(n)
            .iter()
            .any(|h| catalog.entries()[h.entry as usize].websocket)
    })
}

/// The websocket-capable connections of one input, in first-seen order. `ttls`: the
/// input's [`server_ttls`], for telling a middlebox's RST (the audit has them already).
pub fn connections(
    r: &FileResult,
    catalog: &Catalog,
    ttls: &crate::audit::ServerTtls,
) -> Vec<WsFlow> {
    // The legs map is one pass over the flows: beside the filter, not before it.
    let (legs, flows) = rayon::join(
        || Legs::new(&r.flows),
        || {
            r.flows
                .par_iter()
                .with_min_len(256)
                .filter(|f| wanted(f, catalog))
                .collect::<Vec<_>>()
        },
    );
    flows
        .par_iter()
        .with_min_len(64)
        .map(|f| ws_flow(f, &r.summary.file, &legs, ttls))
        .collect()
}

/// The websocket-capable flows of all inputs and a diagnosis per instance.
pub fn websockets(results: &[FileResult], catalog: &Catalog) -> (Vec<WsFlow>, Vec<WsInstance>) {
    let flows: Vec<WsFlow> = results
        .iter()
        .flat_map(|r| connections(r, catalog, &server_ttls(&r.flows)))
        .collect();
    let instances = instances(&flows);
    (flows, instances)
}

fn upgrade_advice(name: &str, w: &WsFlow) -> String {
    let status = w.upgrade_status.unwrap_or(0);
    if w.upgrade_dropped {
        format!(
            "let the proxy in front of {name} pass websocket upgrades: it must forward the Upgrade and Connection headers over HTTP/1.1 (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\")"
        )
    } else if w.answered_by.as_deref() == Some("proxy") {
        format!("allow websocket upgrades to {name} on the proxy (it refused the Upgrade with {status})")
    } else if w.answered_by.as_deref() == Some("origin") {
        format!("the compute instance itself refused the websocket ({status}): check the instance and the request path")
    } else {
        format!("allow websocket upgrade (Upgrade and Connection headers) on the proxy for {name}")
    }
}

fn idle_advice(name: &str, w: &WsFlow) -> String {
    let gap = w.idle_before_end_s.unwrap_or(0.0);
    let timer = w.timer.as_deref().unwrap_or("");
    if timer.contains("nginx") {
        format!(
            "raise nginx's proxy_read_timeout and proxy_send_timeout for {name} well above the {JUPYTER_PING_S:.0} s Jupyter ping interval (e.g. 1h)"
        )
    } else if gap < JUPYTER_PING_S {
        format!(
            "something on the path to {name} closes connections after {gap:.0} s without traffic, shorter than Jupyter's {JUPYTER_PING_S:.0} s websocket ping interval: raise that idle timeout (haproxy: timeout tunnel; nginx: proxy_read_timeout) above {JUPYTER_PING_S:.0} s"
        )
    } else {
        format!(
            "raise the idle timeout on the path to {name} above the {JUPYTER_PING_S:.0} s Jupyter ping interval, and make sure the websocket pings get through (a cut after {gap:.0} s of silence means no ping crossed it)"
        )
    }
}

/// The diagnosis per instance from its connections (client legs; a proxy's upstream legs only
/// when the capture has nothing else for the instance).
pub fn instances(flows: &[WsFlow]) -> Vec<WsInstance> {
    let mut by_name: BTreeMap<&str, Vec<&WsFlow>> = BTreeMap::new();
    for w in flows {
        by_name.entry(&w.name).or_default().push(w);
    }
    by_name
        .into_iter()
        .map(|(name, all)| {
            let client: Vec<&WsFlow> = all.iter().copied().filter(|w| w.leg == "client").collect();
            let ws = if client.is_empty() { all } else { client };
            let n = ws.len();
            let short = ws.iter().filter(|w| w.duration_s < SHORT_S).count();
            let has = |d: WsDiagnosis| ws.iter().copied().find(|w| w.diagnosis == d);
            let count = |d: WsDiagnosis| ws.iter().filter(|w| w.diagnosis == d).count();
            let never_up = n >= 3 && short == n;
            let (problem, diagnosis, advice) = if let Some(w) = has(WsDiagnosis::NeverEstablished) {
                (
                    "never-established",
                    format!(
                        "{} of {n} connections to {name} never got an answer from the far end ({})",
                        count(WsDiagnosis::NeverEstablished),
                        w.outcome
                    ),
                    Some(format!(
                        "allow {name} on port {} (the audit's blocked findings name the mechanism)",
                        w.server.rsplit(':').next().unwrap_or("443")
                    )),
                )
            } else if let Some(w) = has(WsDiagnosis::WsUpgradeFailed) {
                let mut d = format!(
                    "the websocket upgrade was answered {}{}",
                    w.upgrade_status.unwrap_or(0),
                    w.upgrade_reason
                        .as_deref()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                );
                if let Some(by) = &w.answered_by {
                    d.push_str(&format!(" by the {by}"));
                }
                if w.upgrade_dropped {
                    d.push_str("; a proxy dropped the Upgrade header");
                }
                if let Some(e) = &w.evidence {
                    d.push_str(&format!(" ({e})"));
                }
                ("ws-upgrade-failed", d, Some(upgrade_advice(name, w)))
            } else if let Some(w) = has(WsDiagnosis::WsIdleKill) {
                // A dropped state leaves the connection without FIN or RST: it went dead.
                let how = match &w.ended_by {
                    Some(e) => format!("were closed ({e})"),
                    None => "went dead".to_string(),
                };
                let mut d = format!(
                    "{} of {n} connections {how} after {:.1} s without a byte either way: {}",
                    count(WsDiagnosis::WsIdleKill),
                    w.idle_before_end_s.unwrap_or(0.0),
                    w.timer.as_deref().unwrap_or("an idle timer")
                );
                if let Some(e) = &w.evidence {
                    d.push_str(&format!("; {e}"));
                }
                if let Some(m) = &w.rst_from_middlebox {
                    d.push_str(&format!("; the RST was {m}"));
                }
                if never_up {
                    d.push_str("; the websocket never stays up");
                }
                ("ws-idle-kill", d, Some(idle_advice(name, w)))
            } else if never_up {
                (
                    "never-stays-up",
                    format!("{n} short connections in a row: the websocket never stays up"),
                    Some(format!(
                        "check for a proxy or firewall closing websockets to {name}"
                    )),
                )
            } else {
                let longest = ws.iter().map(|w| w.duration_s).fold(0.0, f64::max);
                (
                    "healthy",
                    format!(
                        "healthy ({n} connection{}, longest {longest:.1} s)",
                        if n == 1 { "" } else { "s" }
                    ),
                    None,
                )
            };
            WsInstance {
                name: name.to_string(),
                problem: problem.to_string(),
                connections: n,
                short_connections: short,
                diagnosis,
                advice,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_gaps_are_named_by_the_timer_they_match() {
        assert!(timer_for(60.2).contains("nginx"));
        assert!(timer_for(240.0).contains("Azure Firewall"));
        assert!(timer_for(300.5).contains("envoy"));
        assert_eq!(timer_for(42.0), "a measured idle gap of 42 s");
        assert!(timer_for(3.0).contains("shorter than Jupyter's 30 s ping interval"));
    }

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

    fn conn(name: &str, d: WsDiagnosis, dur: f64, leg: &str) -> WsFlow {
        WsFlow {
            name: name.into(),
            client: "10.0.0.2:50000".into(),
            server: "10.0.0.9:443".into(),
            leg: leg.into(),
            other_legs: Vec::new(),
            transport: "tls".into(),
            alpn: Vec::new(),
            http1_offered: true,
            connect_status: None,
            upgrade_path: None,
            upgrade_status: None,
            upgrade_reason: None,
            answer_server: None,
            answered_by: None,
            upgrade_dropped: false,
            evidence: None,
            outcome: "established".into(),
            start: String::new(),
            duration_s: dur,
            bytes_from_client: 1,
            bytes_from_server: 1,
            idle_before_end_s: (d == WsDiagnosis::WsIdleKill).then_some(240.0),
            ended_by: Some("rst by server".into()),
            rst_from_middlebox: None,
            timeline: Timeline {
                start: String::new(),
                handshake: None,
                last_client_data: None,
                last_server_data: None,
                end: None,
                handshake_s: None,
                last_client_data_s: None,
                last_server_data_s: None,
                end_s: None,
            },
            diagnosis: d,
            timer: (d == WsDiagnosis::WsIdleKill).then(|| timer_for(240.0)),
            file: "f".into(),
        }
    }

    #[test]
    fn instance_diagnosis_counts_client_legs_and_names_the_timer() {
        let i = instances(&[
            conn("a", WsDiagnosis::WsIdleKill, 250.0, "client"),
            conn("a", WsDiagnosis::WsIdleKill, 250.0, "upstream"),
            conn("b", WsDiagnosis::Healthy, 3.0, "client"),
            conn("b", WsDiagnosis::Healthy, 3.0, "client"),
            conn("b", WsDiagnosis::Healthy, 3.0, "client"),
            conn("c", WsDiagnosis::Healthy, 600.0, "client"),
        ]);
        assert_eq!(i[0].problem, "ws-idle-kill");
        assert_eq!(i[0].connections, 1);
        assert!(
            i[0].diagnosis.contains("Azure Firewall"),
            "{}",
            i[0].diagnosis
        );
        assert!(i[0]
            .advice
            .as_deref()
            .unwrap()
            .contains("pings get through"));
        assert_eq!(i[1].problem, "never-stays-up");
        assert_eq!(i[2].problem, "healthy");
        assert_eq!(i[2].advice, None);
    }
}

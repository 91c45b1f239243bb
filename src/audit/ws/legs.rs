//! One websocket connection judged: its legs (a proxy's client and upstream connections of one
//! handshake), who answered its Upgrade, when its state was dropped, and its timeline.

use std::collections::HashMap;

use crate::audit::middlebox_rst;
use crate::flow::{Outcome, Proto, Side};
use crate::proto::facts::HttpFacts;
use crate::proto::Described;
use crate::time::rfc3339;

use super::*;

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn endpoint(f: &Described) -> String {
    format!("{} -> {}", f.client.text(), f.server.text())
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

pub(super) struct Legs<'a> {
    /// Handshake key -> the flows carrying it, in first-seen order (keys on two flows or more).
    by_key: LegMap<'a, Vec<&'a Described>>,
    /// Some handshake in this capture was seen on two legs.
    sees_upstream: bool,
}

/// Handshake keys come from the wire, so the hash is seeded (see [`crate::flow::seeded_hash`]).
type LegMap<'a, V> = HashMap<(bool, &'a [u8]), V, rustc_hash::FxSeededState>;

impl<'a> Legs<'a> {
    pub(super) fn new(flows: &'a [Box<Described>]) -> Legs<'a> {
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

pub(super) fn ws_flow(
    f: &Described,
    file: &str,
    legs: &Legs<'_>,
    ttls: &crate::audit::ServerTtls,
) -> WsFlow {
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
    let quiet_close = match (close, f.data_before_close_ns.get()) {
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
            handshake: at(s.first_payload_ns.get()),
            last_client_data: at(c.last_payload_ns.get()),
            last_server_data: at(s.last_payload_ns.get()),
            end: at(end),
            handshake_s: off(s.first_payload_ns.get()),
            last_client_data_s: off(c.last_payload_ns.get()),
            last_server_data_s: off(s.last_payload_ns.get()),
            end_s: off(end),
        },
        diagnosis,
        timer,
        file: file.to_string(),
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

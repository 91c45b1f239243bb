//! The websocket view (`allowscope ws`): for every flow to a websocket-capable catalog entry
//! (Jupyter kernels on Azure ML compute instances) or carrying an HTTP `Upgrade: websocket`,
//! whether a websocket came up, how long it lived and how it ended, with a diagnosis.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analyze::FileResult;
use crate::catalog::Catalog;
use crate::flow::{Flow, Outcome, Proto, Side};
use crate::time::rfc3339;

/// Diagnosis of one websocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WsDiagnosis {
    /// The connection carried data and ended without a sign of an idle kill.
    Healthy,
    /// An Upgrade was answered with something other than 101.
    WsUpgradeFailed,
    /// A long-lived connection ended by RST or FIN after a fixed idle gap.
    WsIdleKill,
    /// The connection never got as far as the far end answering (blocked).
    NeverEstablished,
}

/// One websocket-capable connection.
#[derive(Debug, Clone, Serialize)]
pub struct WsFlow {
    pub name: String,
    pub client: String,
    pub server: String,
    /// "tls", "tls-via-proxy", "proxy" (a CONNECT that got no tunnel), "http", or "-" (nothing
    /// was exchanged).
    pub transport: &'static str,
    /// ALPN offered by the client; websockets over HTTP/2 need RFC 8441 support on every hop,
    /// so `http/1.1` missing from the list matters.
    pub alpn: Vec<String>,
    pub http1_offered: bool,
    /// For plain HTTP: the Upgrade request's path and the answer's status.
    pub upgrade_path: Option<String>,
    pub upgrade_status: Option<u16>,
    pub outcome: &'static str,
    pub start: String,
    pub duration_s: f64,
    pub bytes_from_client: u64,
    pub bytes_from_server: u64,
    /// Seconds without payload either way before the connection ended.
    pub idle_before_end_s: Option<f64>,
    /// "fin" or "rst", and by whom.
    pub ended_by: Option<String>,
    pub diagnosis: WsDiagnosis,
    /// The timer the idle gap matches, in words.
    pub timer: Option<String>,
    pub file: String,
}

/// The diagnosis per instance (name), in plain words.
#[derive(Debug, Clone, Serialize)]
pub struct WsInstance {
    pub name: String,
    pub connections: usize,
    /// Connections shorter than 10 s.
    pub short_connections: usize,
    pub diagnosis: String,
    pub advice: Option<String>,
}

fn timer_for(gap_s: f64) -> String {
    match gap_s {
        g if (55.0..=70.0).contains(&g) => "about 60 s: nginx's default proxy_read_timeout".into(),
        g if (225.0..=255.0).contains(&g) => {
            "about 4 min: Azure Firewall / Azure Load Balancer idle timeout".into()
        }
        g if (285.0..=315.0).contains(&g) => "about 5 min: envoy's idle timeout".into(),
        g => format!("a measured idle gap of {g:.0} s"),
    }
}

fn ws_flow(f: &Flow, file: &str) -> WsFlow {
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
    let upgrade = fx.http.as_ref().filter(|h| {
        h.upgrade
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    });
    let [c, s] = &f.dirs;
    let last_data = c.last_payload_ns.max(s.last_payload_ns);
    let idle = last_data.map(|t| (f.last_ns - t) as f64 / 1e9);
    let close = f.close();
    let duration = (f.last_ns - f.first_ns) as f64 / 1e9;
    let outcome = f.outcome();
    let (diagnosis, timer) = if !matches!(outcome, Outcome::Established | Outcome::Midstream) {
        (WsDiagnosis::NeverEstablished, None)
    } else if upgrade.is_some_and(|h| h.status.is_some_and(|s| s != 101)) {
        (WsDiagnosis::WsUpgradeFailed, None)
    } else if let (Some(gap), Some(_)) = (idle, close) {
        if gap >= 30.0 {
            (WsDiagnosis::WsIdleKill, Some(timer_for(gap)))
        } else {
            (WsDiagnosis::Healthy, None)
        }
    } else {
        (WsDiagnosis::Healthy, None)
    };
    WsFlow {
        name: fx.name.clone().unwrap_or_else(|| f.server.ip.to_string()),
        client: format!("{}:{}", f.client.ip, f.client.port),
        server: format!("{}:{}", f.server.ip, f.server.port),
        transport,
        http1_offered: alpn.is_empty() || alpn.iter().any(|a| a == "http/1.1"),
        alpn,
        upgrade_path: upgrade.map(|h| h.target.clone()),
        upgrade_status: upgrade.and_then(|h| h.status),
        outcome: outcome.name(),
        start: rfc3339(f.first_ns),
        duration_s: duration,
        bytes_from_client: c.payload_bytes,
        bytes_from_server: s.payload_bytes,
        idle_before_end_s: idle,
        ended_by: close.map(|c| {
            let by = if c.by == Side::Client {
                "client"
            } else {
                "server"
            };
            format!("{} by {by}", c.how)
        }),
        diagnosis,
        timer,
        file: file.to_string(),
    }
}

/// The websocket-capable flows of all inputs and a diagnosis per instance.
pub fn websockets(results: &[FileResult], catalog: &Catalog) -> (Vec<WsFlow>, Vec<WsInstance>) {
    let mut flows = Vec::new();
    for r in results {
        for f in r.flows.iter().filter(|f| f.proto == Proto::Tcp) {
            let upgrade = f
                .facts
                .http
                .as_ref()
                .and_then(|h| h.upgrade.as_deref())
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            let ws_entry = f.facts.name.as_deref().is_some_and(|n| {
                catalog
                    .match_name(n)
                    .iter()
                    .any(|m| catalog.entries()[m.entry].websocket)
            });
            if upgrade || ws_entry {
                flows.push(ws_flow(f, &r.summary.file));
            }
        }
    }
    let mut by_name: BTreeMap<&str, Vec<&WsFlow>> = BTreeMap::new();
    for w in &flows {
        by_name.entry(&w.name).or_default().push(w);
    }
    let instances = by_name
        .into_iter()
        .map(|(name, ws)| {
            let short = ws.iter().filter(|w| w.duration_s < 10.0).count();
            let has = |d: WsDiagnosis| ws.iter().find(|w| w.diagnosis == d);
            let (diagnosis, advice) = if let Some(w) = has(WsDiagnosis::NeverEstablished) {
                (
                    format!("connections to {name} never got an answer from the far end ({})", w.outcome),
                    Some(format!("allow {name} on port 443 (see `allowscope audit` for the blocking mechanism)")),
                )
            } else if let Some(w) = has(WsDiagnosis::WsUpgradeFailed) {
                (
                    format!("the websocket upgrade was answered {}", w.upgrade_status.unwrap_or(0)),
                    Some(format!("allow websocket upgrade (Upgrade and Connection headers) on the proxy for {name}")),
                )
            } else if let Some(w) = has(WsDiagnosis::WsIdleKill) {
                (
                    format!(
                        "the connection was cut after {} of silence ({})",
                        w.timer.as_deref().unwrap_or("an idle gap"),
                        w.ended_by.as_deref().unwrap_or("closed")
                    ),
                    Some("raise the idle timeout on the path above the 30 s Jupyter ping interval, or allow the pings through".to_string()),
                )
            } else if ws.len() >= 3 && short == ws.len() {
                (
                    format!("{} short connections in a row: the websocket never stays up", ws.len()),
                    Some(format!("check for a proxy or firewall closing websockets to {name}")),
                )
            } else {
                ("healthy".to_string(), None)
            };
            WsInstance {
                name: name.to_string(),
                connections: ws.len(),
                short_connections: short,
                diagnosis,
                advice,
            }
        })
        .collect();
    (flows, instances)
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
    }
}

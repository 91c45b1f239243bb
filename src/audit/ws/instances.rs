//! The diagnosis per instance from its connections, the timer a measured idle gap matches,
//! and what to change.

use std::collections::BTreeMap;

use super::*;

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

//! The diagnosis per instance from its connections' tallies, the timer a measured idle gap
//! matches, and what to change.

use std::collections::BTreeMap;

use super::*;

/// Connections of one kind of leg to one instance, counted as they are judged: what the
/// instance's diagnosis is made of. Tallies of two runs add up (`merge`), so a diagnosis does
/// not need every connection listed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsTally {
    pub connections: u64,
    /// Of those, connections shorter than [`SHORT_S`].
    pub short_connections: u64,
    /// The longest connection's duration (seconds; 0 without connections).
    pub longest_s: f64,
    /// Connections per diagnosis.
    pub diagnoses: WsDiagnoses,
    /// The first connection of each diagnosis, in input and flow order (at most one per
    /// diagnosis, in the order of [`WsDiagnoses`]): the example the diagnosis names.
    pub examples: Vec<WsFlow>,
}

/// Connections per diagnosis.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WsDiagnoses {
    pub healthy: u64,
    #[serde(rename = "ws-upgrade-failed")]
    pub ws_upgrade_failed: u64,
    #[serde(rename = "ws-idle-kill")]
    pub ws_idle_kill: u64,
    #[serde(rename = "never-established")]
    pub never_established: u64,
}

impl WsDiagnoses {
    fn count(&mut self, d: WsDiagnosis) -> &mut u64 {
        match d {
            WsDiagnosis::Healthy => &mut self.healthy,
            WsDiagnosis::WsUpgradeFailed => &mut self.ws_upgrade_failed,
            WsDiagnosis::WsIdleKill => &mut self.ws_idle_kill,
            WsDiagnosis::NeverEstablished => &mut self.never_established,
        }
    }

    fn get(mut self, d: WsDiagnosis) -> u64 {
        *self.count(d)
    }
}

/// Why tallies read from a document cannot be merged, and where (a path in the tally).
#[derive(Debug, PartialEq, Eq)]
pub enum TallyError {
    /// A count past a u64.
    Overflow(String),
    /// Counts and examples that no run writes (a diagnosis counted without its example, an
    /// example not counted, or diagnoses that do not add up to the connections).
    Inconsistent(String),
}

impl TallyError {
    /// The same error, its path under `at`.
    pub fn under(self, at: &str) -> TallyError {
        match self {
            TallyError::Overflow(p) => TallyError::Overflow(format!("{at}.{p}")),
            TallyError::Inconsistent(p) => TallyError::Inconsistent(format!("{at}.{p}")),
        }
    }
}

/// The connections of one instance, by leg: those clients opened, and a proxy's own
/// connections onward (see [`WsFlow::leg`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsLegs {
    pub client: WsTally,
    pub upstream: WsTally,
}

impl WsTally {
    /// Counts one connection (`example` makes its row, asked only when it is the first of its
    /// diagnosis).
    pub fn add(&mut self, d: WsDiagnosis, duration_s: f64, example: impl FnOnce() -> WsFlow) {
        self.connections += 1;
        if duration_s < SHORT_S {
            self.short_connections += 1;
        }
        self.longest_s = self.longest_s.max(duration_s);
        let n = self.diagnoses.count(d);
        *n += 1;
        if *n == 1 {
            self.examples.push(example());
            self.examples.sort_by_key(|w| w.diagnosis as u8);
        }
    }

    /// Adds the tally of a later run (its examples only for diagnoses this one had none of);
    /// on a count past a u64 (documents' tallies come from outside), which count, and this
    /// tally is left unchanged.
    pub fn merge(&mut self, later: WsTally) -> Result<(), TallyError> {
        let sum = |a: u64, b: u64, what: &str| {
            a.checked_add(b)
                .ok_or_else(|| TallyError::Overflow(what.to_string()))
        };
        let mut diagnoses = self.diagnoses;
        for d in WsDiagnosis::ALL {
            *diagnoses.count(d) = sum(
                self.diagnoses.get(d),
                later.diagnoses.get(d),
                &format!("diagnoses.{}", d.name()),
            )?;
        }
        let connections = sum(self.connections, later.connections, "connections")?;
        let short_connections = sum(
            self.short_connections,
            later.short_connections,
            "short_connections",
        )?;
        self.connections = connections;
        self.short_connections = short_connections;
        self.longest_s = self.longest_s.max(later.longest_s);
        for w in later.examples {
            if self.diagnoses.get(w.diagnosis) == 0 {
                self.examples.push(w);
            }
        }
        self.examples.sort_by_key(|w| w.diagnosis as u8);
        self.diagnoses = diagnoses;
        Ok(())
    }

    /// Whether a tally read from a document is one a run could have written: each diagnosis
    /// counted has its one example and no other has any, the diagnoses add up to the
    /// connections, and the short ones are among them. The diagnosis of an instance reads
    /// the examples by the counts, so a tally that breaks this would be merged into a wrong
    /// one without a word.
    pub fn check(&self) -> Result<(), TallyError> {
        let bad = |what: &str| Err(TallyError::Inconsistent(what.to_string()));
        for d in WsDiagnosis::ALL {
            let examples = self.examples.iter().filter(|w| w.diagnosis == d).count();
            if examples != usize::from(self.diagnoses.get(d) > 0) {
                return bad(&format!("examples ({} of {})", examples, d.name()));
            }
        }
        let counted = WsDiagnosis::ALL
            .iter()
            .try_fold(0u64, |n, &d| n.checked_add(self.diagnoses.get(d)));
        if counted != Some(self.connections) {
            return bad("diagnoses (they do not add up to the connections)");
        }
        if self.short_connections > self.connections {
            return bad("short_connections (more than the connections)");
        }
        Ok(())
    }

    fn example(&self, d: WsDiagnosis) -> Option<&WsFlow> {
        self.examples.iter().find(|w| w.diagnosis == d)
    }
}

impl WsLegs {
    /// Counts one connection of the instance.
    pub fn add(
        &mut self,
        client: bool,
        d: WsDiagnosis,
        duration_s: f64,
        row: impl FnOnce() -> WsFlow,
    ) {
        let t = if client {
            &mut self.client
        } else {
            &mut self.upstream
        };
        t.add(d, duration_s, row);
    }

    /// Adds the tallies of a later run; on a count past a u64, which one.
    pub fn merge(&mut self, later: WsLegs) -> Result<(), TallyError> {
        self.client
            .merge(later.client)
            .map_err(|e| e.under("client"))?;
        self.upstream
            .merge(later.upstream)
            .map_err(|e| e.under("upstream"))
    }

    /// [`WsTally::check`] of both legs.
    pub fn check(&self) -> Result<(), TallyError> {
        self.client.check().map_err(|e| e.under("client"))?;
        self.upstream.check().map_err(|e| e.under("upstream"))
    }
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

/// The tallies per instance (name) of `flows`, every connection counted by its leg.
pub fn tallies(flows: &[WsFlow]) -> BTreeMap<String, WsLegs> {
    let mut by_name: BTreeMap<String, WsLegs> = BTreeMap::new();
    for w in flows {
        by_name.entry(w.name.clone()).or_default().add(
            w.leg == "client",
            w.diagnosis,
            w.duration_s,
            || w.clone(),
        );
    }
    by_name
}

/// The diagnosis per instance from its connections (client legs; a proxy's upstream legs only
/// when the capture has nothing else for the instance).
pub fn instances(flows: &[WsFlow]) -> Vec<WsInstance> {
    instances_of(tallies(flows))
}

/// The diagnosis per instance from its tallies.
pub fn instances_of(tallies: BTreeMap<String, WsLegs>) -> Vec<WsInstance> {
    tallies
        .into_iter()
        .map(|(name, legs)| instance(name, legs))
        .collect()
}

fn instance(name: String, legs: WsLegs) -> WsInstance {
    let (problem, connections, short_connections, diagnosis, advice) = {
        let name = name.as_str();
        let t = if legs.client.connections > 0 {
            &legs.client
        } else {
            &legs.upstream
        };
        let n = t.connections;
        let short = t.short_connections;
        let has = |d: WsDiagnosis| t.example(d);
        let count = |d: WsDiagnosis| t.diagnoses.get(d);
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
            (
                "healthy",
                format!(
                    "healthy ({n} connection{}, longest {:.1} s)",
                    if n == 1 { "" } else { "s" },
                    t.longest_s
                ),
                None,
            )
        };
        (problem, n, short, diagnosis, advice)
    };
    WsInstance {
        name,
        problem: problem.to_string(),
        connections: connections as usize,
        short_connections: short_connections as usize,
        diagnosis,
        advice,
        legs,
    }
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

    #[test]
    fn tallies_add_up_and_refuse_a_count_past_a_u64() {
        let a = tallies(&[conn("a", WsDiagnosis::Healthy, 3.0, "client")]);
        let b = tallies(&[
            conn("a", WsDiagnosis::WsIdleKill, 250.0, "client"),
            conn("a", WsDiagnosis::Healthy, 20.0, "client"),
        ]);
        let mut t = a["a"].clone();
        t.merge(b["a"].clone()).unwrap();
        let c = &t.client;
        assert_eq!((c.connections, c.short_connections), (3, 1));
        assert_eq!((c.diagnoses.healthy, c.diagnoses.ws_idle_kill), (2, 1));
        assert_eq!(c.longest_s, 250.0);
        // The earlier run's example of a diagnosis stays.
        let ex: Vec<(WsDiagnosis, f64)> = c
            .examples
            .iter()
            .map(|w| (w.diagnosis, w.duration_s))
            .collect();
        assert_eq!(
            ex,
            [
                (WsDiagnosis::Healthy, 3.0),
                (WsDiagnosis::WsIdleKill, 250.0)
            ]
        );
        // A document's count past a u64 is refused, naming it, and changes nothing.
        let mut huge = b["a"].clone();
        huge.client.diagnoses.ws_idle_kill = u64::MAX;
        let before = t.client.connections;
        assert_eq!(
            t.merge(huge),
            Err(TallyError::Overflow(
                "client.diagnoses.ws-idle-kill".to_string()
            ))
        );
        assert_eq!(t.client.connections, before);
        // An instance named twice in a document: its tallies are added up.
        let twice = WsReport {
            instances: [instances_of(a.clone()), instances_of(b)].concat(),
            connections: Vec::new(),
            connections_total: 3,
        };
        let one = WsView::of_report(twice, SAMPLE_CONNECTIONS)
            .unwrap()
            .report();
        assert_eq!(one.instances.len(), 1);
        assert_eq!(one.instances[0].connections, 3);
    }
}

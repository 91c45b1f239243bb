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

//!
//! Rooms: the types and the entry points here; one connection judged (its legs, its upgrade
//! answer, its timeline) in [`legs`]; the diagnosis per instance and its advice in
//! [`instances`].

mod instances;
mod legs;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::server_ttls;
use crate::catalog::Catalog;
use crate::flow::Proto;
use crate::pipeline::FileResult;
use crate::proto::Described;

pub use instances::{
    instances, instances_of, tallies, timer_for, TallyError, WsDiagnoses, WsLegs, WsTally,
};
use legs::ws_upgrade;
pub(crate) use legs::WsInput;

/// A connection quiet this long before its first FIN or RST was closed by a timer, not by the
/// application.
pub const IDLE_CLOSE_S: f64 = 2.0;
/// Connections shorter than this count as short for the "never stays up" pattern.
pub const SHORT_S: f64 = 10.0;
/// Jupyter's websocket ping interval (seconds).
pub const JUPYTER_PING_S: f64 = 30.0;

/// Diagnosis of one websocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Every diagnosis, in the order of [`WsDiagnoses`].
    pub const ALL: [WsDiagnosis; 4] = [
        WsDiagnosis::Healthy,
        WsDiagnosis::WsUpgradeFailed,
        WsDiagnosis::WsIdleKill,
        WsDiagnosis::NeverEstablished,
    ];

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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// What the diagnosis is made of, per leg: the counts and the first connection of each
    /// diagnosis (documents merge by adding these up).
    pub legs: WsLegs,
}

/// Where an instance's tallies are in an audit document.
fn legs_path(name: &str) -> String {
    format!("websockets.instances[name={name}].legs")
}

/// Most connections of one instance an audit lists (every connection is counted in its
/// instance's tallies).
pub const SAMPLE_CONNECTIONS: usize = 50;

/// The websocket section of an audit: the diagnosis per instance, and the first
/// [`SAMPLE_CONNECTIONS`] connections of each instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsReport {
    pub instances: Vec<WsInstance>,
    /// The first connections of each instance (every leg), at most [`SAMPLE_CONNECTIONS`]
    /// each, in input and flow order; an instance's tallies (`legs`) say how many it had.
    pub connections: Vec<WsFlow>,
    /// All websocket-capable connections (every leg), listed or not.
    pub connections_total: u64,
}

/// The websocket view of some inputs, put together input by input ([`WsView::merge`]): the
/// tallies per instance, and the first rows of each instance.
#[derive(Debug, Clone, Default)]
pub struct WsView {
    tallies: std::collections::BTreeMap<String, WsLegs>,
    listed: Vec<WsFlow>,
    listed_per_name: std::collections::HashMap<String, usize>,
    total: u64,
    /// Most rows listed per instance.
    limit: usize,
}

impl WsView {
    pub fn new(limit: usize) -> WsView {
        WsView {
            limit,
            ..WsView::default()
        }
    }

    /// The view of an audit document's section (its instances' tallies and the rows it
    /// lists), to be merged with others listing at most `limit` rows per instance. Each
    /// instance's tallies are checked ([`WsLegs::check`]); an instance named twice (no audit
    /// writes that) has its tallies added up. The error's path is in the document.
    pub fn of_report(r: WsReport, limit: usize) -> Result<WsView, TallyError> {
        let mut v = WsView::new(limit);
        v.total = r.connections_total;
        for i in r.instances {
            i.legs.check().map_err(|e| e.under(&legs_path(&i.name)))?;
            v.add_tally(i.name, i.legs)?;
        }
        v.take_rows(r.connections);
        Ok(v)
    }

    /// Adds the tallies of instance `name`.
    fn add_tally(&mut self, name: String, legs: WsLegs) -> Result<(), TallyError> {
        match self.tallies.get_mut(&name) {
            Some(mine) => mine.merge(legs).map_err(|e| e.under(&legs_path(&name))),
            None => {
                self.tallies.insert(name, legs);
                Ok(())
            }
        }
    }

    /// Lists `rows` (in order) as far as each instance has fewer than `limit` listed.
    fn take_rows(&mut self, rows: Vec<WsFlow>) {
        for w in rows {
            let n = self.listed_per_name.entry(w.name.clone()).or_default();
            if *n < self.limit {
                *n += 1;
                self.listed.push(w);
            }
        }
    }

    /// Takes in the view of later inputs; on a count past a u64 (documents come from outside),
    /// where, as a path in the document.
    pub fn merge(&mut self, later: WsView) -> Result<(), TallyError> {
        self.total = self
            .total
            .checked_add(later.total)
            .ok_or_else(|| TallyError::Overflow("websockets.connections_total".to_string()))?;
        for (name, legs) in later.tallies {
            self.add_tally(name, legs)?;
        }
        self.take_rows(later.listed);
        Ok(())
    }

    /// The diagnosis per instance and the rows listed.
    pub fn report(self) -> WsReport {
        WsReport {
            instances: instances_of(self.tallies),
            connections: self.listed,
            connections_total: self.total,
        }
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

/// Every websocket-capable connection of all inputs read whole, and a diagnosis per instance.
pub fn websockets(results: &[FileResult], catalog: &Catalog) -> (Vec<WsFlow>, Vec<WsInstance>) {
    let views: Vec<WsView> = results
        .par_iter()
        .map(|r| {
            let mut input = WsInput::new(r.summary.file.clone());
            for f in &r.flows {
                input.add(f, catalog);
            }
            input.finish(&server_ttls(&r.flows), usize::MAX)
        })
        .collect();
    let mut all = WsView::new(usize::MAX);
    for v in views {
        // The connections of one run cannot count past a u64.
        let _ = all.merge(v);
    }
    let r = all.report();
    (r.connections, r.instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The results of reading synthetic traffic of `bytes` (seed `seed`) whole.
    fn synth(bytes: u64, seed: u64) -> FileResult {
        let mut synth = Vec::new();
        crate::synth::write_pcap(&mut synth, bytes, 64, seed).unwrap();
        let reader =
            crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(synth)))
                .unwrap();
        let cfg = crate::flow::FlowConfig::default();
        crate::pipeline::analyze_reader(format!("synth{seed}"), reader, &cfg)
    }

    /// An audit lists the first [`SAMPLE_CONNECTIONS`] connections of each instance and counts
    /// every one: its instances are those of the `ws` view that lists them all, its rows the
    /// first of that view's rows per instance, and the sections of two inputs' audits merge
    /// into the section of one audit of both.
    #[test]
    fn audits_list_the_first_connections_of_an_instance_and_count_all() {
        let catalog = Catalog::builtin();
        let mut results = vec![synth(10 << 20, 3), synth(4 << 20, 4)];
        let (all, instances) = websockets(&results, &catalog);
        let busiest = instances.iter().map(|i| i.connections).max().unwrap();
        assert!(busiest > 2 * SAMPLE_CONNECTIONS, "{busiest}");
        let one = |r: &FileResult| websockets(std::slice::from_ref(r), &catalog).1;
        assert!(one(&results[0])
            .iter()
            .any(|i| i.connections > SAMPLE_CONNECTIONS));
        let (audit, _) = crate::audit::audit(&mut results, &catalog);
        let ws = &audit.websockets;
        assert_eq!(ws.connections_total, all.len() as u64);
        let json = |v: &dyn erased::Json| v.json();
        assert_eq!(json(&ws.instances), json(&instances));
        let mut per_name: std::collections::HashMap<&str, usize> = Default::default();
        let first: Vec<&WsFlow> = all
            .iter()
            .filter(|w| {
                let n = per_name.entry(&w.name).or_default();
                *n += 1;
                *n <= SAMPLE_CONNECTIONS
            })
            .collect();
        assert_eq!(json(&ws.connections), json(&first));
        for i in &ws.instances {
            let rows = all.iter().filter(|w| w.name == i.name).count() as u64;
            assert_eq!(
                i.legs.client.connections + i.legs.upstream.connections,
                rows
            );
        }
        // Merged from each input's audit: the same section.
        let mut merged = WsView::new(SAMPLE_CONNECTIONS);
        for r in results.chunks_mut(1) {
            let (one, _) = crate::audit::audit(r, &catalog);
            merged
                .merge(WsView::of_report(one.websockets.clone(), SAMPLE_CONNECTIONS).unwrap())
                .unwrap();
        }
        assert_eq!(json(&merged.report()), json(ws));
    }

    mod erased {
        pub trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }
}

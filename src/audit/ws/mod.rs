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

pub use instances::{instances, timer_for};
use legs::{ws_flow, ws_upgrade, Legs};

/// A connection quiet this long before its first FIN or RST was closed by a timer, not by the
/// application.
pub const IDLE_CLOSE_S: f64 = 2.0;
/// Connections shorter than this count as short for the "never stays up" pattern.
pub const SHORT_S: f64 = 10.0;
/// Jupyter's websocket ping interval (seconds).
pub const JUPYTER_PING_S: f64 = 30.0;

/// Diagnosis of one websocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
}

/// The websocket section of an audit: the diagnosis per instance and every connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsReport {
    pub instances: Vec<WsInstance>,
    pub connections: Vec<WsFlow>,
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

/// Whether the websocket view needs a flow: one it shows ([`wanted`]), or one that may be
/// another leg of a handshake it shows (an HTTP request with a Sec-WebSocket-Key, Upgrade or
/// not: a proxy may drop the Upgrade). A TLS connection relayed by a proxy carries the same
/// hello, so the same name, on both legs. The audit keeps only these flows of an input to the
/// end.
pub(crate) fn for_the_view(f: &Described, catalog: &Catalog) -> bool {
    wanted(f, catalog)
        || (f.proto == Proto::Tcp && f.facts.http.as_ref().is_some_and(|h| h.ws_key.is_some()))
}

/// The websocket-capable connections of one input (`flows`, of `file`, in first-seen order:
/// all of them, or those [`for_the_view`] keeps), in first-seen order. `ttls`: the input's
/// [`server_ttls`], for telling a middlebox's RST (the audit has them already).
pub fn connections(
    flows: &[Box<Described>],
    file: &str,
    catalog: &Catalog,
    ttls: &crate::audit::ServerTtls,
) -> Vec<WsFlow> {
    // The legs map is one pass over the flows: beside the filter, not before it.
    let (legs, wanted_flows) = rayon::join(
        || Legs::new(flows),
        || {
            flows
                .par_iter()
                .with_min_len(256)
                .filter(|f| wanted(f, catalog))
                .collect::<Vec<_>>()
        },
    );
    wanted_flows
        .par_iter()
        .with_min_len(64)
        .map(|f| ws_flow(f, file, &legs, ttls))
        .collect()
}

/// The websocket-capable flows of all inputs and a diagnosis per instance.
pub fn websockets(results: &[FileResult], catalog: &Catalog) -> (Vec<WsFlow>, Vec<WsInstance>) {
    let flows: Vec<WsFlow> = results
        .iter()
        .flat_map(|r| connections(&r.flows, &r.summary.file, catalog, &server_ttls(&r.flows)))
        .collect();
    let instances = instances(&flows);
    (flows, instances)
}

//! The audit: every flow and DNS lookup judged against the catalog. A flow gets a verdict
//! (required / optional / unexpected, reached / blocked), and a blocked one a mechanism, a
//! confidence and one sentence of evidence; findings are grouped per catalog entry and name;
//! the entries in scope get a coverage line each.

pub mod merge;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::analyze::FileResult;
use crate::catalog::{Catalog, Direction, Entry, Proto as CatProto, Requirement, ServiceTag};
use crate::flow::{Flow, Outcome, Proto};
use crate::proto::facts::NameSource;
use crate::report::alert_name;
use crate::time::{human_duration, rfc3339};

/// Verdict of one flow against the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    RequiredBlocked,
    OptionalBlocked,
    UnexpectedReached,
    UnexpectedBlocked,
    RequiredReached,
    OptionalReached,
    /// The wire cannot tell: a handshake with no data either way, or a capture that began after
    /// the flow did and shows nothing from the far end. Not in the design's first list: calling
    /// these reached would claim what the far end never proved, calling them blocked would turn
    /// every browser preconnect into a finding.
    Inconclusive,
    /// No name could be given to the flow.
    Unattributed,
    /// A catalog name reached on a protocol or port its entry does not list.
    OtherPortReached,
    /// A catalog name blocked on a protocol or port its entry does not list (QUIC to a host
    /// listed for TCP 443 among them: clients fall back to TCP, so it costs only latency).
    OtherPortBlocked,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::RequiredBlocked => "required-blocked",
            Verdict::OptionalBlocked => "optional-blocked",
            Verdict::UnexpectedReached => "unexpected-reached",
            Verdict::UnexpectedBlocked => "unexpected-blocked",
            Verdict::RequiredReached => "required-reached",
            Verdict::OptionalReached => "optional-reached",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Unattributed => "unattributed",
            Verdict::OtherPortReached => "other-port-reached",
            Verdict::OtherPortBlocked => "other-port-blocked",
        }
    }

    pub fn blocked(self) -> bool {
        matches!(
            self,
            Verdict::RequiredBlocked
                | Verdict::OptionalBlocked
                | Verdict::UnexpectedBlocked
                | Verdict::OtherPortBlocked
        )
    }
}

/// Why a blocked flow or lookup was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    Drop,
    TcpReset,
    IcmpAdminProhibited,
    IcmpPortUnreachable,
    IcmpHostUnreachable,
    IcmpUnreachable,
    UdpDrop,
    SniReset,
    TlsAlert,
    ProxyDenied,
    #[serde(rename = "http-470")]
    Http470,
    DnsNxdomain,
    DnsServfail,
    DnsRefused,
    DnsNodata,
    DnsSinkhole,
    DnsNoAnswer,
    /// The name resolved but the client never connected to the answer: a host firewall may
    /// refuse before any SYN (low confidence: the application may simply not have needed it).
    LocalBlock,
    /// A RST right after the client's first flight whose TTL / hop limit differs from every
    /// packet the far end (or, for a RST in the client's name, the client) sent itself: an
    /// on-path box forged it.
    RstInjected,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Drop => "drop",
            Mechanism::TcpReset => "tcp-reset",
            Mechanism::IcmpAdminProhibited => "icmp-admin-prohibited",
            Mechanism::IcmpPortUnreachable => "icmp-port-unreachable",
            Mechanism::IcmpHostUnreachable => "icmp-host-unreachable",
            Mechanism::IcmpUnreachable => "icmp-unreachable",
            Mechanism::UdpDrop => "udp-drop",
            Mechanism::SniReset => "sni-reset",
            Mechanism::TlsAlert => "tls-alert",
            Mechanism::ProxyDenied => "proxy-denied",
            Mechanism::Http470 => "http-470",
            Mechanism::DnsNxdomain => "dns-nxdomain",
            Mechanism::DnsServfail => "dns-servfail",
            Mechanism::DnsRefused => "dns-refused",
            Mechanism::DnsNodata => "dns-nodata",
            Mechanism::DnsSinkhole => "dns-sinkhole",
            Mechanism::DnsNoAnswer => "dns-no-answer",
            Mechanism::LocalBlock => "local-block",
            Mechanism::RstInjected => "rst-injected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// `--fail-on`: the least severe verdict that makes the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A required host was blocked (the default).
    RequiredBlocked,
    /// Also: something the catalog does not expect got through.
    UnexpectedReached,
    /// Any blocked or unexpected finding.
    Any,
    /// Never: exit 0 unless an input failed.
    Never,
}

impl FailOn {
    /// Whether a finding with this verdict (its JSON name) makes the exit code 1. A
    /// low-confidence local-block (resolved, never connected) counts only for `any`: browsers
    /// resolve names they never use. The one rule for `audit`, `live` and `merge` (which
    /// only has the JSON).
    pub fn hit(self, verdict: &str, local_block: bool) -> bool {
        let firm_required = verdict == "required-blocked" && !local_block;
        match self {
            FailOn::RequiredBlocked => firm_required,
            FailOn::UnexpectedReached => firm_required || verdict == "unexpected-reached",
            FailOn::Any => verdict.ends_with("-blocked") || verdict == "unexpected-reached",
            FailOn::Never => false,
        }
    }
}

/// The verdict of one flow.
#[derive(Debug, Clone)]
pub struct Judged {
    pub verdict: Verdict,
    pub mechanism: Option<Mechanism>,
    pub confidence: Option<Confidence>,
    pub evidence: String,
    /// Index of the catalog entry (most specific match with the port allowed, else the most
    /// specific match), if any.
    pub entry: Option<usize>,
    /// Id of that entry.
    pub entry_id: Option<String>,
    /// The name is in the catalog but not for this port or protocol.
    pub port_mismatch: bool,
    /// Placeholder values the entry bound (e.g. region = eastus).
    pub bound: Vec<(String, String)>,
    /// For a flow named by a service tag (`ip-tag`): the index of the catalog's service-tag
    /// rule (in `data().service_tags`) it was judged by, as `entry` is for host names.
    pub tag_rule: Option<usize>,
}

fn reached(f: &Flow) -> bool {
    match f.outcome() {
        Outcome::Established => true,
        Outcome::Midstream => f.dirs[1].payload_bytes > 0,
        _ => false,
    }
}

fn cat_proto(p: Proto) -> Option<CatProto> {
    match p {
        Proto::Tcp => Some(CatProto::Tcp),
        Proto::Udp => Some(CatProto::Udp),
        _ => None,
    }
}

fn secs(ns: i64) -> String {
    human_duration(ns)
}

/// TTLs / hop limits each server address used in flows where it really answered (sent
/// payload), to tell its own RSTs from a middlebox's.
pub type ServerTtls = rustc_hash::FxHashMap<std::net::IpAddr, BTreeSet<u8>>;

/// Collects [`ServerTtls`] from the flows of one input.
pub fn server_ttls(flows: &[Box<Flow>]) -> ServerTtls {
    let mut m = ServerTtls::default();
    for f in flows {
        // Only packets that carried the server's data: a RST forged in its name in this very
        // flow must not count as one of its own TTLs.
        if let Some((lo, hi)) = f.dirs[1].data_ttl {
            let set = m.entry(f.server.ip).or_default();
            set.insert(lo);
            set.insert(hi);
        }
    }
    m
}

/// Why a RST looks made by a middlebox rather than by the server, if it does: its TTL differs
/// from the TTLs of the server's own answers in other flows. (IP ID 0 with window 0 is not
/// enough on its own: the Linux kernel's RST for a closed port has both, as
/// captures/tcp-outcomes.pcap shows for port 9.)
pub(crate) fn middlebox_rst(f: &Flow, ttls: &ServerTtls) -> Option<String> {
    let r = f.dirs[1].rst?;
    let seen = ttls.get(&f.server.ip)?;
    if seen.contains(&r.ttl) {
        return None;
    }
    let list: Vec<String> = seen.iter().map(u8::to_string).collect();
    let extra = if r.ip_id == Some(0) && r.window == 0 {
        ", IP ID 0, window 0"
    } else {
        ""
    };
    Some(format!(
        "made by a middlebox: its TTL {} differs from the server's own packets ({}){extra}",
        r.ttl,
        list.join(", ")
    ))
}

/// The TTLs / hop limits a side of `f` used in its own packets: the first one (the SYN or
/// SYN-ACK) and those that carried payload, in this flow and, for the server, in its other
/// flows where it answered (`ttls`).
fn own_ttls(f: &Flow, side: usize, ttls: &ServerTtls) -> BTreeSet<u8> {
    let d = &f.dirs[side];
    let mut own: BTreeSet<u8> = d.ttl_first.into_iter().collect();
    if let Some((lo, hi)) = d.data_ttl {
        own.extend([lo, hi]);
    }
    if side == 1 {
        own.extend(ttls.get(&f.server.ip).into_iter().flatten());
    }
    own
}

/// Whether the RST that ended a flow right after the client's first flight was forged on the
/// path, and the evidence: a RST toward the client whose TTL differs from everything the
/// server sent itself (the SYN-ACK of this very flow included, so a firewall that completed
/// the handshake itself and then reset is not an injection), or a RST in the client's name
/// whose TTL differs from the client's own packets (seen where a capture point sits between
/// the injector and the server).
fn injected_rst(f: &Flow, ttls: &ServerTtls) -> Option<String> {
    if !f.saw_synack || f.dirs[0].payload_bytes == 0 || f.dirs[1].payload_bytes > 0 {
        return None;
    }
    let list = |s: &BTreeSet<u8>| s.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
    let mut said = Vec::new();
    for (side, whose, to) in [(1, "server", "client"), (0, "client", "server")] {
        let Some(r) = f.dirs[side].rst else { continue };
        let own = own_ttls(f, side, ttls);
        if own.contains(&r.ttl) {
            continue;
        }
        said.push(format!(
            "a RST to the {to} in the {whose}'s name with TTL {} where the {whose}'s own packets had {}",
            r.ttl,
            list(&own)
        ));
    }
    if said.is_empty() {
        None
    } else {
        Some(said.join("; "))
    }
}

/// Mechanism, confidence and evidence for a flow that did not reach the far end.
fn mechanism(f: &Flow, ttls: &ServerTtls) -> (Option<Mechanism>, Confidence, String) {
    let dst = crate::report::endpoint(&f.server);
    let span = secs(f.last_ns - f.first_ns);
    if matches!(
        f.outcome(),
        Outcome::ResetAfterHello | Outcome::RequestUnanswered
    ) {
        if let Some(e) = injected_rst(f, ttls) {
            let what = if f.facts.tls.is_some() {
                "ClientHello"
            } else {
                "request"
            };
            return (
                Some(Mechanism::RstInjected),
                Confidence::High,
                format!("handshake to {dst} completed, {what} sent, then forged on the path: {e}"),
            );
        }
    }
    match f.outcome() {
        Outcome::NoAnswer if f.proto == Proto::Tcp => (
            Some(Mechanism::Drop),
            Confidence::Medium,
            format!("{} SYNs to {dst} over {span}, no answer", f.attempts()),
        ),
        Outcome::NoAnswer => (
            Some(Mechanism::UdpDrop),
            Confidence::Medium,
            format!("{} datagrams to {dst} over {span}, no reply", f.attempts()),
        ),
        Outcome::Refused => {
            let ttl = f.dirs[1]
                .ttl_min
                .map(|t| format!(" (TTL {t})"))
                .unwrap_or_default();
            let mb = middlebox_rst(f, ttls)
                .map(|m| format!("; {m}"))
                .unwrap_or_default();
            (
                Some(Mechanism::TcpReset),
                Confidence::High,
                format!("SYN to {dst} answered by RST{ttl}{mb}"),
            )
        }
        Outcome::IcmpUnreachable => {
            let e = f.icmp.first().expect("icmp-unreachable has an ICMP note");
            let from_server = e.from == f.server.ip;
            let m = match (e.v6, e.icmp_type, e.code) {
                (false, 3, 9 | 10 | 13) | (true, 1, 1) => Mechanism::IcmpAdminProhibited,
                (false, 3, 3) | (true, 1, 4) => Mechanism::IcmpPortUnreachable,
                (false, 3, 0 | 1) | (true, 1, 3) => Mechanism::IcmpHostUnreachable,
                _ => Mechanism::IcmpUnreachable,
            };
            let who = if from_server {
                "the server itself"
            } else {
                "a hop on the way"
            };
            (
                Some(m),
                if m == Mechanism::IcmpAdminProhibited || !from_server {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                format!(
                    "ICMP{} type {} code {} from {} ({who}) for {dst}",
                    if e.v6 { "v6" } else { "" },
                    e.icmp_type,
                    e.code,
                    e.from
                ),
            )
        }
        Outcome::ResetAfterHello => {
            let how = f
                .close()
                .map_or("closed", |c| if c.how == "rst" { "RST" } else { "FIN" });
            let how = match middlebox_rst(f, ttls) {
                Some(m) if how == "RST" => format!("RST ({m})"),
                _ => how.to_string(),
            };
            if f.facts.tls.is_some() {
                (
                    Some(Mechanism::SniReset),
                    Confidence::High,
                    format!("handshake to {dst} completed, ClientHello sent, then {how} with no ServerHello"),
                )
            } else {
                (
                    Some(Mechanism::TcpReset),
                    Confidence::Medium,
                    format!("request sent to {dst}, then {how} with no answer"),
                )
            }
        }
        Outcome::RequestUnanswered => (
            Some(Mechanism::Drop),
            Confidence::Low,
            format!("handshake to {dst} completed, request sent, nothing came back"),
        ),
        Outcome::TlsAlert => {
            let (side, a) = f
                .facts
                .tls
                .as_ref()
                .and_then(|t| t.early_alert())
                .expect("tls-alert has an alert");
            let issuer = f
                .facts
                .tls
                .as_ref()
                .and_then(|t| t.server.cert_issuer.clone())
                .map(|i| format!("; certificate issued by {i}"))
                .unwrap_or_default();
            (
                Some(Mechanism::TlsAlert),
                Confidence::Medium,
                format!(
                    "{side} sent TLS alert {} before the handshake finished ({dst}){issuer}",
                    alert_name(a.description)
                ),
            )
        }
        Outcome::ProxyDenied => {
            let Some(c) = f.facts.connect.as_ref() else {
                // The CONNECT line was cut by the capture; its answer was not.
                let status = f.facts.http.as_ref().and_then(|h| h.status);
                return (
                    Some(Mechanism::ProxyDenied),
                    Confidence::High,
                    format!(
                        "proxy {dst} answered a CONNECT (its target cut by the capture) with {}",
                        status.map_or("a refusal".to_string(), |s| s.to_string())
                    ),
                );
            };
            let st: Vec<String> = c.statuses.iter().map(u16::to_string).collect();
            let squid = c
                .x_squid_error
                .as_ref()
                .map(|e| format!(", X-Squid-Error: {e}"))
                .unwrap_or_default();
            (
                Some(Mechanism::ProxyDenied),
                Confidence::High,
                format!(
                    "proxy {dst} answered CONNECT {}:{} with {}{squid}",
                    c.host,
                    c.port,
                    st.join(" then ")
                ),
            )
        }
        Outcome::HttpDenied => (
            Some(Mechanism::Http470),
            Confidence::High,
            format!("HTTP 470 with Azure Firewall's deny page from {dst}"),
        ),
        Outcome::Established | Outcome::HandshakeOnly | Outcome::Midstream => {
            (None, Confidence::Low, String::new())
        }
    }
}

/// The port the client meant: the tunnelled port of a CONNECT, the port of an absolute-form
/// request through a proxy (`GET http://host:8080/`), else the server port.
fn target_port(f: &Flow) -> u16 {
    if let Some(c) = &f.facts.connect {
        return c.port;
    }
    if let Some(rest) = f.facts.http.as_ref().and_then(|h| {
        let t = h.target.as_str();
        t.strip_prefix("http://")
            .or_else(|| t.strip_prefix("HTTP://"))
    }) {
        let authority = rest.split('/').next().unwrap_or(rest);
        return match authority.rsplit_once(':') {
            Some((_, p)) if !authority.ends_with(']') => p.parse().unwrap_or(80),
            _ => 80,
        };
    }
    f.server.port
}

/// Order of outcomes from best (the far end answered) to worst (nothing came back).
fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Established => 0,
        Outcome::Midstream => 1,
        Outcome::HandshakeOnly => 2,
        Outcome::TlsAlert => 3,
        Outcome::HttpDenied => 4,
        Outcome::ProxyDenied => 5,
        Outcome::ResetAfterHello => 6,
        Outcome::RequestUnanswered => 7,
        Outcome::Refused => 8,
        Outcome::IcmpUnreachable => 9,
        Outcome::NoAnswer => 10,
    }
}

/// The evidence, and for a flow from an NFLOG capture the rule that logged it: "logged by
/// rule 'AML-DENY'" (the prefix as the wire gave it; reports escape it for their medium).
fn with_log_rule(evidence: String, f: &Flow) -> String {
    match (&f.nflog_prefix, evidence.is_empty()) {
        (None, _) => evidence,
        (Some(p), true) => format!("logged by rule '{p}'"),
        (Some(p), false) => format!("{evidence}; logged by rule '{p}'"),
    }
}

/// Judges one flow against the catalog.
pub fn judge(f: &Flow, catalog: &Catalog, ttls: &ServerTtls) -> Judged {
    let Some(name) = f.facts.name.as_deref() else {
        // No name to judge, but how it failed is still worth saying (NDJSON, per flow).
        let (mechanism, confidence, evidence) = if reached(f) {
            (None, None, String::new())
        } else {
            let (m, c, e) = mechanism(f, ttls);
            (m, m.map(|_| c), e)
        };
        return Judged {
            verdict: Verdict::Unattributed,
            mechanism,
            confidence,
            evidence: with_log_rule(evidence, f),
            entry: None,
            entry_id: None,
            port_mismatch: false,
            bound: Vec::new(),
            tag_rule: None,
        };
    };
    if f.facts.name_source == Some(NameSource::IpTag) {
        return judge_by_tag(f, name, catalog, ttls);
    }
    let port = target_port(f);
    let matches = catalog.match_endpoint(name, cat_proto(f.proto), Some(port));
    let best = matches.iter().find(|m| m.port_ok).or(matches.first());
    let entry: Option<&Entry> = best.map(|m| &catalog.entries()[m.entry]);
    let port_mismatch = best.is_some_and(|m| !m.port_ok);
    let requirement = if port_mismatch {
        None
    } else {
        entry.map(|e| e.requirement)
    };
    let verdict = verdict_of(f, requirement, port_mismatch);
    let (mechanism, confidence, mut evidence) = if verdict.blocked() {
        let (m, c, e) = mechanism(f, ttls);
        (m, Some(c), e)
    } else {
        (None, None, String::new())
    };
    // A name from an answer another client received is a guess: one step less sure.
    let confidence = if f.facts.name_source == Some(NameSource::DnsAnyClient) {
        if verdict.blocked() {
            evidence += &format!(
                "; named {name} from a DNS answer another client received for {}",
                crate::report::ip_text(f.server.ip)
            );
        }
        confidence.map(less_sure)
    } else {
        confidence
    };
    if port_mismatch {
        let e = entry.expect("mismatch has an entry");
        let listed = format!(
            "{}/{}",
            e.proto.name(),
            crate::catalog::ports_text(&e.ports)
        );
        let mut note = format!(
            "{name} is in the catalog ({}, {listed}) but not for {}/{port}",
            e.pattern.text,
            f.proto.name()
        );
        let others = catalog.other_scenarios_listing(name, cat_proto(f.proto), Some(port));
        if !others.is_empty() {
            let list: Vec<&str> = others.iter().map(String::as_str).collect();
            note += &format!(
                "; scenario {} lists it (--scenario {})",
                list.join(", "),
                list.join(",")
            );
        }
        if f.proto == Proto::Udp
            && port == 443
            && e.proto.allows(CatProto::Tcp)
            && e.ports.iter().any(|r| r.contains(443))
        {
            note += "; this is QUIC, and clients fall back to TCP 443, so a block here costs only latency";
        }
        evidence = if evidence.is_empty() {
            note
        } else {
            format!("{evidence}; {note}")
        };
    }
    Judged {
        verdict,
        mechanism,
        confidence,
        evidence: with_log_rule(evidence, f),
        entry: best.map(|m| m.entry),
        entry_id: entry.map(|e| e.id.clone()),
        port_mismatch,
        bound: best
            .map(|m| {
                m.bound
                    .iter()
                    .map(|b| (b.placeholder.to_string(), b.value.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        tag_rule: None,
    }
}

/// The verdict of a flow whose name the catalog lists with `requirement` (`None`: not listed,
/// or `port_mismatch`: listed for other ports or another protocol).
fn verdict_of(f: &Flow, requirement: Option<Requirement>, port_mismatch: bool) -> Verdict {
    let is_reached = reached(f);
    let inconclusive =
        !is_reached && matches!(f.outcome(), Outcome::HandshakeOnly | Outcome::Midstream);
    match (requirement, is_reached, inconclusive) {
        (_, _, true) => Verdict::Inconclusive,
        (None, true, _) if port_mismatch => Verdict::OtherPortReached,
        (None, false, _) if port_mismatch => Verdict::OtherPortBlocked,
        (Some(Requirement::Required), true, _) => Verdict::RequiredReached,
        (Some(Requirement::Required), false, _) => Verdict::RequiredBlocked,
        (Some(Requirement::Optional), true, _) => Verdict::OptionalReached,
        (Some(Requirement::Optional), false, _) => Verdict::OptionalBlocked,
        (None, true, _) => Verdict::UnexpectedReached,
        (None, false, _) => Verdict::UnexpectedBlocked,
    }
}

/// One step less sure: high becomes medium, the rest low.
fn less_sure(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        _ => Confidence::Low,
    }
}

/// Judges a flow named by the service tag `tag` whose range holds its server's address
/// (`ip-tag`) against the catalog's outbound service-tag rules, protocol and port checked as
/// for entries. An address range serves many hosts, so the verdict is less sure than a host
/// name's: a blocked one is one step less sure than its mechanism (at most medium), a reached
/// one medium. The evidence names the address, the tag and the rule.
fn judge_by_tag(f: &Flow, tag: &str, catalog: &Catalog, ttls: &ServerTtls) -> Judged {
    let port = target_port(f);
    let proto = cat_proto(f.proto);
    let rules: Vec<(usize, &ServiceTag)> = catalog
        .service_tag_rules(tag)
        .filter(|(_, r)| r.direction == Direction::Outbound)
        .collect();
    let best = rules
        .iter()
        .find(|(_, r)| r.allows(proto, Some(port)))
        .or(rules.first());
    let port_mismatch = best.is_some_and(|(_, r)| !r.allows(proto, Some(port)));
    let requirement = best.filter(|_| !port_mismatch).map(|(_, r)| r.requirement);
    let verdict = verdict_of(f, requirement, port_mismatch);
    let addr = crate::report::ip_text(f.server.ip);
    let note = match best {
        Some((_, r)) => {
            let listed = format!("{}/{}", r.proto.name(), crate::catalog::ports_text(&r.ports));
            let but = if port_mismatch {
                format!(", but not for {}/{port}", f.proto.name())
            } else {
                String::new()
            };
            format!(
                "{addr} is in the ranges of the service tag {tag}, which the catalog's rule {} ({}, {listed}) lists{but}",
                r.id, r.tag
            )
        }
        None => format!(
            "{addr} is in the ranges of the service tag {tag}, which no service-tag rule of the catalog lists"
        ),
    };
    let (mechanism, confidence, evidence) = if verdict.blocked() {
        let (m, c, e) = mechanism(f, ttls);
        let e = if e.is_empty() {
            note
        } else {
            format!("{e}; {note}")
        };
        (m, Some(less_sure(c)), e)
    } else if verdict == Verdict::Inconclusive {
        (None, None, note)
    } else {
        (None, Some(Confidence::Medium), note)
    };
    Judged {
        verdict,
        mechanism,
        confidence,
        evidence,
        entry: None,
        entry_id: best.map(|(_, r)| r.id.clone()),
        port_mismatch,
        bound: Vec::new(),
        tag_rule: best.map(|(i, _)| *i),
    }
}

/// One grouped finding: flows (or lookups) with the same verdict, mechanism, entry, name and
/// port.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub verdict: Verdict,
    pub mechanism: Option<Mechanism>,
    pub confidence: Option<Confidence>,
    pub name: String,
    pub proto: &'static str,
    pub dst_port: Option<u16>,
    pub dst_ips: BTreeSet<String>,
    /// The flows' server addresses while flows are grouped; `dst_ips` is made of them at the
    /// end (formatting and ordering each address once).
    #[serde(skip)]
    pub(crate) ips: rustc_hash::FxHashSet<std::net::IpAddr>,
    pub entry: Option<EntryRef>,
    /// Flows behind the finding (0 for a DNS-only finding).
    pub flows: u64,
    /// DNS lookups behind the finding (DNS findings).
    pub lookups: u64,
    pub first_seen: String,
    #[serde(skip)]
    pub first_ns: i64,
    /// One plain sentence, from the first flow or lookup.
    pub evidence: String,
    pub files: BTreeSet<String>,
    /// Placeholder values bound by the entry's pattern.
    pub bound: BTreeMap<String, String>,
    pub port_mismatch: bool,
    /// Over every flow to this name and entry (whatever its verdict): the worst and the best
    /// outcome seen.
    pub worst_outcome: Option<&'static str>,
    pub best_outcome: Option<&'static str>,
}

/// The catalog entry a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EntryRef {
    pub id: String,
    pub pattern: String,
    pub purpose: String,
    pub cloud: &'static str,
    pub requirement: &'static str,
    pub scenario: String,
    pub websocket: bool,
}

/// A service-tag rule shown as the entry of a finding: the pattern is the tag.
fn tag_rule_ref(r: &ServiceTag) -> EntryRef {
    EntryRef {
        id: r.id.clone(),
        pattern: r.tag.clone(),
        purpose: r.purpose.clone(),
        cloud: r.cloud.name(),
        requirement: r.requirement.name(),
        scenario: r.scenario.clone(),
        websocket: false,
    }
}

fn entry_ref(e: &Entry) -> EntryRef {
    EntryRef {
        id: e.id.clone(),
        pattern: e.pattern.text.clone(),
        purpose: e.purpose.clone(),
        cloud: e.cloud.name(),
        requirement: e.requirement.name(),
        scenario: e.scenario.clone(),
        websocket: e.websocket,
    }
}

/// Per-entry coverage: was the entry exercised, and how.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub entry: EntryRef,
    pub exercised: bool,
    /// Flows and lookups per verdict (verdict name -> count).
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Names seen that matched the entry.
    pub names: BTreeSet<String>,
    /// The coverage matrix row: per input file, flows and lookups per verdict.
    pub by_file: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Exercised through another entry of the same pattern (placeholders filled), protocol
    /// and ports, whose id this is: the counts above are this entry's own (none).
    pub credited_via: Option<String>,
}

/// What the audit saw of one catalog entry.
#[derive(Debug, Clone, Default)]
struct EntryTally {
    verdicts: BTreeMap<&'static str, u64>,
    names: BTreeSet<String>,
    by_file: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

impl EntryTally {
    fn merge(&mut self, other: EntryTally) {
        add_counts(&mut self.verdicts, other.verdicts);
        self.names.extend(other.names);
        for (file, m) in other.by_file {
            add_counts(self.by_file.entry(file).or_default(), m);
        }
    }

    fn count(&mut self, what: &'static str, file: &str) {
        *self.verdicts.entry(what).or_default() += 1;
        let per_file = match self.by_file.get_mut(file) {
            Some(m) => m,
            None => self.by_file.entry(file.to_string()).or_default(),
        };
        *per_file.entry(what).or_default() += 1;
    }
}

/// Lookups of a catalog name whose CNAME chain passes through the private-endpoint DNS zone of
/// a service (the catalog's `private_endpoint_zone` rows of the cloud in scope) and still ends
/// at a public address: the client does not get the private zone. One per name and input.
#[derive(Debug, Clone, Serialize)]
pub struct PrivateEndpointProblem {
    pub name: String,
    /// The chain and addresses of the earliest such lookup.
    pub chain: Vec<String>,
    pub addresses: Vec<String>,
    /// The zone the chain passes through, and the service it belongs to.
    pub zone: String,
    pub service: String,
    /// How many lookups of the name in this input did so.
    pub lookups: u64,
    pub first_seen: String,
    #[serde(skip)]
    pub first_ns: i64,
    pub file: String,
    pub evidence: String,
}

/// The private-endpoint zone that the chain of `l` passes through when it ends at a public
/// address, with the name of the chain that is in it.
fn private_endpoint_zone<'c, 'l>(
    catalog: &'c Catalog,
    l: &crate::report::dns::Lookup<'l>,
) -> Option<(&'l str, &'c crate::catalog::PrivateEndpointZone)> {
    if !l.addresses.iter().any(is_public) {
        return None;
    }
    l.cnames
        .iter()
        .find_map(|&n| catalog.data().private_endpoint_zone(n).map(|z| (n, z)))
}

/// The row of a lookup whose chain passes through `zone` (by way of `via`).
fn private_endpoint_problem(
    qname: &str,
    via: &str,
    zone: &crate::catalog::PrivateEndpointZone,
    l: &crate::report::dns::Lookup<'_>,
    file: &str,
) -> PrivateEndpointProblem {
    let addresses = crate::report::ips_text(&l.addresses);
    PrivateEndpointProblem {
        name: qname.to_string(),
        chain: l.cnames.iter().map(|s| s.to_string()).collect(),
        addresses: l
            .addresses
            .iter()
            .map(|&a| crate::report::ip_text(a))
            .collect(),
        zone: zone.zone.clone(),
        service: zone.service.clone(),
        lookups: 1,
        first_seen: l.time.clone(),
        first_ns: l.first_ns,
        file: file.to_string(),
        evidence: format!(
            "{qname} resolved through {via}, in {} (the privatelink zone of {}), to the public address {addresses}: the client does not get the private DNS zone",
            zone.zone, zone.service
        ),
    }
}

/// The whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
    pub dns_failures: Vec<Finding>,
    pub private_endpoint_dns: Vec<PrivateEndpointProblem>,
    /// Placeholder values seen in matched names (e.g. region -> {eastus}).
    pub placeholders_seen: BTreeMap<String, BTreeSet<String>>,
    pub counts: BTreeMap<&'static str, u64>,
    /// Per input file: flows per verdict (the per-file breakdown).
    pub per_file: Vec<PerFile>,
    /// Websockets to compute instances and other websocket-capable hosts (see `crate::ws`).
    pub websockets: crate::ws::WsReport,
}

/// Verdict counts of one input.
#[derive(Debug, Clone, Serialize)]
pub struct PerFile {
    pub file: String,
    pub counts: BTreeMap<&'static str, u64>,
}

/// The schema version audit documents are written with.
pub fn report_schema() -> u64 {
    crate::report::SCHEMA_VERSION as u64
}

impl Audit {
    /// Catalog hosts (required or optional) that were blocked: flows, then DNS failures.
    pub fn blocked(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| {
                matches!(
                    f.verdict,
                    Verdict::RequiredBlocked | Verdict::OptionalBlocked
                )
            })
            .chain(self.dns_failures.iter())
    }
}

type Key = (
    Verdict,
    Option<Mechanism>,
    Option<usize>,
    String,
    &'static str,
    Option<u16>,
);

fn is_public(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The evidence line of a DNS finding.
fn dns_evidence(mech: Mechanism, qname: &str, l: &crate::report::dns::Lookup<'_>) -> String {
    match mech {
        Mechanism::LocalBlock => format!(
            "{qname} resolved to {} and the client never connected to it afterwards (a local firewall may refuse before any SYN; or the name was not needed)",
            crate::report::ips_text(&l.addresses)
        ),
        Mechanism::DnsNoAnswer => format!(
            "{} query for {qname} to {} got no answer",
            l.qtype.as_deref().unwrap_or("?"),
            l.server
        ),
        Mechanism::DnsSinkhole => format!(
            "{qname} resolved to {} by {} (a sinkhole)",
            crate::report::ips_text(&l.addresses),
            l.server
        ),
        _ => format!(
            "{} query for {qname} answered {} by {}",
            l.qtype.as_deref().unwrap_or("?"),
            l.rcode.unwrap_or("?"),
            l.server
        ),
    }
}

/// Adds the counts of `more` to `to`.
fn add_counts(to: &mut BTreeMap<&'static str, u64>, more: BTreeMap<&'static str, u64>) {
    for (k, n) in more {
        *to.entry(k).or_default() += n;
    }
}

/// Flows per run grouped side by side (see [`FlowTally`]).
const FLOW_RUN: usize = 4096;

/// A group's [`Key`] while flows are grouped, the name borrowed from the flows.
type FlowKey<'a> = (
    Verdict,
    Option<Mechanism>,
    Option<usize>,
    &'a str,
    &'static str,
    Option<u16>,
);

/// What grouping and counting a run of flows gives. Runs are tallied side by side and merged
/// in order, which gives what one pass over the flows in order would: a group keeps the
/// fields of its first flow, and the evidence and time of its earliest-starting one (the
/// first of them on a tie).
#[derive(Default)]
struct FlowTally<'a> {
    groups: rustc_hash::FxHashMap<FlowKey<'a>, Finding>,
    counts: BTreeMap<&'static str, u64>,
    per_entry: BTreeMap<usize, EntryTally>,
    placeholders_seen: BTreeMap<String, BTreeSet<String>>,
    /// The worst and best outcome per (entry, name), over every named flow whatever its
    /// verdict (entry ids are unique, so the index stands for the id).
    span: rustc_hash::FxHashMap<(Option<usize>, &'a str), (Outcome, Outcome)>,
}

impl<'a> FlowTally<'a> {
    /// Tallies `flows` (of `file`) with their judgements.
    fn add(&mut self, flows: &'a [Box<Flow>], judged: &[Judged], file: &str, catalog: &Catalog) {
        for (f, j) in flows.iter().zip(judged) {
            // ICMP echo (ping) is not an application flow: counted on its own, never a finding.
            let counted = if matches!(f.proto, Proto::Icmp | Proto::Icmpv6) {
                "icmp-echo"
            } else {
                j.verdict.name()
            };
            *self.counts.entry(counted).or_default() += 1;
            if let Some(name) = f.facts.name.as_deref() {
                let o = f.outcome();
                note_span(self.span.entry((j.entry, name)).or_insert((o, o)), o);
            }
            if let Some(e) = j.entry {
                let pe = self.per_entry.entry(e).or_default();
                pe.count(j.verdict.name(), file);
                if let Some(n) = &f.facts.name {
                    if !pe.names.contains(n) {
                        pe.names.insert(n.clone());
                    }
                }
                for (k, v) in &j.bound {
                    let seen = self.placeholders_seen.entry(k.clone()).or_default();
                    if !seen.contains(v) {
                        seen.insert(v.clone());
                    }
                }
            }
            if j.verdict == Verdict::Unattributed {
                continue;
            }
            let name = f.facts.name.as_deref().unwrap_or_default();
            let port = target_port(f);
            let key = (
                j.verdict,
                j.mechanism,
                j.entry,
                name,
                f.proto.name(),
                Some(port),
            );
            let g = self.groups.entry(key).or_insert_with(|| Finding {
                verdict: j.verdict,
                mechanism: j.mechanism,
                confidence: j.confidence,
                name: name.to_string(),
                proto: f.proto.name(),
                dst_port: Some(port),
                dst_ips: BTreeSet::new(),
                ips: Default::default(),
                entry: j
                    .entry
                    .map(|e| entry_ref(&catalog.entries()[e]))
                    .or_else(|| {
                        j.tag_rule
                            .map(|t| tag_rule_ref(&catalog.data().service_tags[t]))
                    }),
                flows: 0,
                lookups: 0,
                first_seen: rfc3339(f.first_ns),
                first_ns: f.first_ns,
                evidence: j.evidence.clone(),
                files: BTreeSet::new(),
                bound: j.bound.iter().cloned().collect(),
                port_mismatch: j.port_mismatch,
                worst_outcome: None,
                best_outcome: None,
            });
            g.flows += 1;
            g.ips.insert(f.server.ip);
            if !g.files.contains(file) {
                g.files.insert(file.to_string());
            }
            if f.first_ns < g.first_ns {
                g.first_ns = f.first_ns;
                g.first_seen = rfc3339(f.first_ns);
                g.evidence = j.evidence.clone();
            }
        }
    }

    /// Adds the tally of the flows that come after this one's.
    fn merge(&mut self, later: FlowTally<'a>) {
        for (k, g) in later.groups {
            match self.groups.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(g);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let a = o.into_mut();
                    a.flows += g.flows;
                    a.ips.extend(g.ips);
                    a.files.extend(g.files);
                    if g.first_ns < a.first_ns {
                        a.first_ns = g.first_ns;
                        a.first_seen = g.first_seen;
                        a.evidence = g.evidence;
                    }
                }
            }
        }
        add_counts(&mut self.counts, later.counts);
        for (e, t) in later.per_entry {
            self.per_entry.entry(e).or_default().merge(t);
        }
        for (k, vs) in later.placeholders_seen {
            self.placeholders_seen.entry(k).or_default().extend(vs);
        }
        for (k, (worst, best)) in later.span {
            let span = self.span.entry(k).or_insert((worst, best));
            note_span(span, worst);
            note_span(span, best);
        }
    }
}

/// Widens a (worst, best) outcome span to take in `o`.
fn note_span(span: &mut (Outcome, Outcome), o: Outcome) {
    if rank(o) > rank(span.0) {
        span.0 = o;
    }
    if rank(o) < rank(span.1) {
        span.1 = o;
    }
}

/// Judges every flow and lookup of every input.
pub fn audit(results: &[FileResult], catalog: &Catalog) -> (Audit, Vec<Vec<Judged>>) {
    audit_in_runs(results, catalog, FLOW_RUN)
}

/// [`audit`], grouping flows in runs of `run` tallied side by side.
fn audit_in_runs(
    results: &[FileResult],
    catalog: &Catalog,
    run: usize,
) -> (Audit, Vec<Vec<Judged>>) {
    // Flows (grouped, counted) and DNS lookups (in `flows_tally`'s maps once flows are done).
    let mut flows_tally = FlowTally::default();
    let mut dns_groups: BTreeMap<Key, Finding> = BTreeMap::new();
    let mut private: Vec<PrivateEndpointProblem> = Vec::new();
    let mut all_judged = Vec::new();
    let mut per_file = Vec::new();
    let mut ws_connections = Vec::new();
    for r in results {
        let file = &r.summary.file;
        let ttls = server_ttls(&r.flows);
        // Judging each flow, the websocket view and the DNS join read the same flows and
        // events and write nothing shared: side by side, and each flow on its own. The
        // results keep the flows' order, so the audit is the same on any number of threads.
        let ((ws, judged), lookups) = rayon::join(
            || {
                rayon::join(
                    || crate::ws::connections(r, catalog, &ttls),
                    || {
                        r.flows
                            .par_iter()
                            .with_min_len(256)
                            .map(|f| judge(f, catalog, &ttls))
                            .collect::<Vec<Judged>>()
                    },
                )
            },
            || crate::report::dns::lookups(&r.dns, file),
        );
        let local_block = crate::names::local_blocks(&lookups, &r.flows);
        ws_connections.extend(ws);
        // Runs of flows are grouped side by side, then merged in order.
        let mut tally = FlowTally::default();
        let runs: Vec<FlowTally<'_>> = r
            .flows
            .par_chunks(run)
            .zip(judged.par_chunks(run))
            .map(|(fs, js)| {
                let mut t = FlowTally::default();
                t.add(fs, js, file, catalog);
                t
            })
            .collect();
        for t in runs {
            tally.merge(t);
        }
        let mut file_counts = tally.counts.clone();
        flows_tally.merge(tally);
        all_judged.push(judged);
        // DNS: failed lookups of catalog names, and private-endpoint chains gone public (one
        // row per name in this input: its index in `private`).
        let mut private_at: rustc_hash::FxHashMap<&str, usize> = Default::default();
        for (l, local_block) in lookups.into_iter().zip(local_block) {
            // Responses read only in part are counted (they are answers all the same).
            for (unread, what) in [
                (l.truncated, "dns-truncated"),
                (l.malformed.is_some(), "dns-malformed"),
            ] {
                if unread {
                    *flows_tally.counts.entry(what).or_default() += 1;
                    *file_counts.entry(what).or_default() += 1;
                }
            }
            let Some(qname) = l.qname else { continue };
            let matches = catalog.match_name(qname);
            let Some(m) = matches.first() else { continue };
            if let Some((via, zone)) = private_endpoint_zone(catalog, &l) {
                match private_at.get(qname) {
                    Some(&i) => {
                        let p = &mut private[i];
                        p.lookups += 1;
                        if l.first_ns < p.first_ns {
                            let lookups = p.lookups;
                            *p = private_endpoint_problem(qname, via, zone, &l, file);
                            p.lookups = lookups;
                        }
                    }
                    None => {
                        private_at.insert(qname, private.len());
                        private.push(private_endpoint_problem(qname, via, zone, &l, file));
                    }
                }
            }
            flows_tally
                .per_entry
                .entry(m.entry)
                .or_default()
                .names
                .insert(qname.to_string());
            if l.answered && l.rcode == Some("NOERROR") && !l.addresses.is_empty() && !l.sinkhole {
                flows_tally
                    .per_entry
                    .entry(m.entry)
                    .or_default()
                    .count("dns-resolved", file);
            }
            let mech = if !l.answered {
                Some(Mechanism::DnsNoAnswer)
            } else {
                match l.rcode {
                    Some("NXDOMAIN") => Some(Mechanism::DnsNxdomain),
                    Some("SERVFAIL") => Some(Mechanism::DnsServfail),
                    Some("REFUSED") => Some(Mechanism::DnsRefused),
                    _ if l.sinkhole => Some(Mechanism::DnsSinkhole),
                    // A missing AAAA is normal for IPv4-only hosts: only an A query without an
                    // address counts as NODATA.
                    _ if l.nodata && l.qtype.as_deref() == Some("A") => Some(Mechanism::DnsNodata),
                    // Resolved, yet nothing used the name (see `crate::names::resolved`).
                    _ if local_block => Some(Mechanism::LocalBlock),
                    _ => None,
                }
            };
            let Some(mech) = mech else { continue };
            let e = &catalog.entries()[m.entry];
            let verdict = match e.requirement {
                Requirement::Required => Verdict::RequiredBlocked,
                Requirement::Optional => Verdict::OptionalBlocked,
            };
            flows_tally
                .per_entry
                .entry(m.entry)
                .or_default()
                .count(verdict.name(), file);
            let key: Key = (
                verdict,
                Some(mech),
                Some(m.entry),
                qname.to_string(),
                "dns",
                None,
            );
            let g = dns_groups.entry(key).or_insert_with(|| Finding {
                verdict,
                mechanism: Some(mech),
                confidence: Some(if mech == Mechanism::LocalBlock {
                    Confidence::Low
                } else if mech == Mechanism::DnsNoAnswer {
                    Confidence::Medium
                } else {
                    Confidence::High
                }),
                name: qname.to_string(),
                proto: "dns",
                dst_port: None,
                dst_ips: BTreeSet::new(),
                ips: Default::default(),
                entry: Some(entry_ref(e)),
                flows: 0,
                lookups: 0,
                first_seen: l.time.clone(),
                first_ns: l.first_ns,
                evidence: dns_evidence(mech, qname, &l),
                files: BTreeSet::new(),
                bound: m
                    .bound
                    .iter()
                    .map(|b| (b.placeholder.to_string(), b.value.to_string()))
                    .collect(),
                port_mismatch: false,
                worst_outcome: None,
                best_outcome: None,
            });
            g.lookups += 1;
            if !g.files.contains(file) {
                g.files.insert(file.clone());
            }
            *flows_tally.counts.entry("dns-failure").or_default() += 1;
            *file_counts.entry("dns-failure").or_default() += 1;
        }
        per_file.push(PerFile {
            file: file.clone(),
            counts: file_counts,
        });
    }
    let FlowTally {
        groups,
        counts,
        per_entry,
        placeholders_seen,
        span,
    } = flows_tally;
    let mut groups: BTreeMap<Key, Finding> = groups
        .into_iter()
        .map(|((v, m, e, name, proto, port), g)| ((v, m, e, name.to_string(), proto, port), g))
        .collect();
    groups
        .values_mut()
        .collect::<Vec<_>>()
        .par_iter_mut()
        .for_each(|g| {
            g.dst_ips = g.ips.iter().map(|&ip| crate::report::ip_text(ip)).collect();
        });
    // Entries of the same pattern (placeholders filled), protocol and ports share their
    // credit: one exercised through any of them is exercised for all, credited to the first
    // exercised one in catalog order.
    let shared_key = |e: &Entry| {
        (
            catalog.placeholders().fill(&e.pattern),
            e.proto,
            e.ports.clone(),
        )
    };
    let mut exercised_by = rustc_hash::FxHashMap::default();
    for (&i, t) in &per_entry {
        if !t.verdicts.is_empty() {
            let j = exercised_by
                .entry(shared_key(&catalog.entries()[i]))
                .or_insert(i);
            *j = (*j).min(i);
        }
    }
    let coverage = catalog
        .entries()
        .iter()
        .enumerate()
        .filter(|(i, e)| e.requirement == Requirement::Required || per_entry.contains_key(i))
        .map(|(i, e)| {
            let t = per_entry.get(&i).cloned().unwrap_or_default();
            let credited_via = match t.verdicts.is_empty() {
                true => exercised_by
                    .get(&shared_key(e))
                    .map(|&j| catalog.entries()[j].id.clone()),
                false => None,
            };
            Coverage {
                entry: entry_ref(e),
                exercised: !t.verdicts.is_empty() || credited_via.is_some(),
                verdicts: t.verdicts,
                names: t.names,
                by_file: t.by_file,
                credited_via,
            }
        })
        .collect();
    for (key, g) in groups.iter_mut() {
        let entry = key.2;
        if let Some((w, b)) = span.get(&(entry, g.name.as_str())) {
            g.worst_outcome = Some(w.name());
            g.best_outcome = Some(b.name());
        }
    }
    // Orders that `merge` can reproduce from the JSON alone (see merge.rs).
    let mut findings: Vec<Finding> = groups.into_values().collect();
    merge::sort_findings(&mut findings);
    let mut dns_failures: Vec<Finding> = dns_groups.into_values().collect();
    merge::sort_findings(&mut dns_failures);
    (
        Audit {
            findings,
            coverage,
            dns_failures,
            private_endpoint_dns: private,
            placeholders_seen,
            counts,
            per_file,
            websockets: crate::ws::WsReport {
                instances: crate::ws::instances(&ws_connections),
                connections: ws_connections,
            },
        },
        all_judged,
    )
}

#[cfg(test)]
mod tests {
    use super::FailOn;

    /// Merging a later run: counts add up, addresses and files join, and the evidence and
    /// time are the earliest start's (the earlier run's on a tie); the rest is the first's.
    #[test]
    fn a_later_run_merges_into_a_group() {
        use super::*;
        let finding = |first_ns: i64, evidence: &str, ip: &str, file: &str, conf| Finding {
            verdict: Verdict::RequiredBlocked,
            mechanism: Some(Mechanism::Drop),
            confidence: Some(conf),
            name: "a.example".into(),
            proto: "tcp",
            dst_port: Some(443),
            dst_ips: BTreeSet::new(),
            ips: [ip.parse().unwrap()].into_iter().collect(),
            entry: None,
            flows: 2,
            lookups: 0,
            first_seen: format!("t{first_ns}"),
            first_ns,
            evidence: evidence.into(),
            files: [file.to_string()].into_iter().collect(),
            bound: BTreeMap::new(),
            port_mismatch: false,
            worst_outcome: None,
            best_outcome: None,
        };
        let key = (
            Verdict::RequiredBlocked,
            Some(Mechanism::Drop),
            None,
            "a.example",
            "tcp",
            Some(443),
        );
        let tally = |f: Finding| {
            let mut t = FlowTally::default();
            t.counts.insert("required-blocked", f.flows);
            t.groups.insert(key, f);
            t
        };
        let mut a = tally(finding(50, "first", "192.0.2.1", "x", Confidence::Low));
        let later =
            |first_ns, evidence, ip| tally(finding(first_ns, evidence, ip, "y", Confidence::High));
        a.merge(later(50, "tie", "192.0.2.2"));
        let g = &a.groups[&key];
        assert_eq!((g.flows, g.first_ns, g.evidence.as_str()), (4, 50, "first"));
        a.merge(later(10, "earlier", "192.0.2.1"));
        let g = &a.groups[&key];
        assert_eq!((g.flows, g.first_ns, g.first_seen.as_str()), (6, 10, "t10"));
        assert_eq!(g.evidence, "earlier");
        assert_eq!(g.confidence, Some(Confidence::Low));
        assert_eq!(g.ips.len(), 2);
        assert_eq!(g.files.iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(a.counts["required-blocked"], 6);
    }

    /// Tallying flows in runs side by side gives the same audit as one pass: every flow in a
    /// run of its own, runs of 2 and 5, and one run, over every capture of the project
    /// (several files in one audit, as with a directory).
    #[test]
    fn runs_merge_to_the_same_audit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(&[dir]);
        assert!(inputs.len() >= 20);
        let cfg = crate::flow::FlowConfig::default();
        let mut results: Vec<_> = inputs
            .iter()
            .map(|i| crate::analyze::analyze_input(i, &cfg))
            .collect();
        // And the bench's synthetic traffic: many addresses and starts per group.
        let mut synth = Vec::new();
        crate::synth::write_pcap(&mut synth, 3 << 20, 64, 9).unwrap();
        let reader =
            crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(synth)))
                .unwrap();
        results.push(crate::analyze::analyze_reader("synth".into(), reader, &cfg));
        // Starts out of order and tied, as timestamps from several interfaces can be: the
        // earliest start (the first of the earliest on a tie) gives a group its evidence.
        let synth = results.last_mut().unwrap();
        let t0 = synth.flows[0].first_ns;
        for (i, f) in synth.flows.iter_mut().enumerate() {
            if i % 3 == 0 {
                f.first_ns -= 10_000_000_000;
            }
            if i % 7 == 0 {
                f.first_ns = t0;
            }
        }
        let flows: usize = results.iter().map(|r| r.flows.len()).sum();
        assert!(flows > 200, "{flows}");
        let catalog = crate::catalog::Catalog::builtin();
        let json = |run| {
            let (a, _) = super::audit_in_runs(&results, &catalog, run);
            serde_json::to_string(&a).unwrap()
        };
        let whole = json(usize::MAX);
        assert!(whole.contains("required-blocked") && whole.contains("dst_ips"));
        for run in [1, 2, 5] {
            assert!(json(run) == whole, "runs of {run} differ");
        }
    }

    #[test]
    fn fail_on_levels() {
        let rows = [
            ("required-blocked", false, [true, true, true, false]),
            ("required-blocked", true, [false, false, true, false]),
            ("optional-blocked", false, [false, false, true, false]),
            ("unexpected-blocked", false, [false, false, true, false]),
            ("unexpected-reached", false, [false, true, true, false]),
            ("required-reached", false, [false, false, false, false]),
            ("inconclusive", false, [false, false, false, false]),
        ];
        let levels = [
            FailOn::RequiredBlocked,
            FailOn::UnexpectedReached,
            FailOn::Any,
            FailOn::Never,
        ];
        for (verdict, local, want) in rows {
            for (level, w) in levels.iter().zip(want) {
                assert_eq!(
                    level.hit(verdict, local),
                    w,
                    "{verdict} local={local} {level:?}"
                );
            }
        }
    }
}

//! Judging one flow against the catalog: reached or not, which entry, which verdict; and the
//! TTLs that tell a server's own RST from a forged one.

use std::collections::BTreeSet;

use super::mechanism::mechanism;
use super::vocab::{Confidence, Verdict};
use super::Mechanism;
use crate::catalog::{Catalog, Direction, Entry, Proto as CatProto, Requirement, ServiceTag};
use crate::flow::{Outcome, Proto};
use crate::proto::facts::NameSource;
use crate::proto::Described;

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

/// A flow without an answer whose only attempt the capture watched for less than
/// [`crate::flow::WATCH_NS`] (it ended, or evicted the flow, that soon after): why it is
/// inconclusive rather than blocked, as evidence.
fn cut_short(f: &Described) -> Option<String> {
    if f.outcome() != Outcome::NoAnswer || f.attempts() > 1 {
        return None;
    }
    let watched = f.until_ns.saturating_sub(f.first_ns);
    if watched >= crate::flow::WATCH_NS {
        return None;
    }
    let what = match f.proto {
        Proto::Tcp => "SYN",
        Proto::Udp => "datagram",
        Proto::Icmp | Proto::Icmpv6 => "echo request",
    };
    let how = if f.evicted {
        "the flow table evicted the flow"
    } else if f.replaced {
        "a new connection on the same ports replaced it"
    } else {
        "the capture ended"
    };
    Some(format!(
        "{how} {} after the only {what} to {}, before a retry was due: too soon to tell a drop from a slow answer",
        crate::time::human_duration(watched.max(0)),
        f.server.text()
    ))
}

fn reached(f: &Described) -> bool {
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

/// TTLs / hop limits each server address used in flows where it really answered (sent
/// payload), to tell its own RSTs from a middlebox's.
pub type ServerTtls = rustc_hash::FxHashMap<std::net::IpAddr, BTreeSet<u8>>;

/// Collects [`ServerTtls`] from the flows of one input.
pub fn server_ttls(flows: &[Box<Described>]) -> ServerTtls {
    let mut m = ServerTtls::default();
    server_ttls_into(&mut m, flows);
    m
}

/// Adds the TTLs of `flows` to `m` (see [`server_ttls`]).
pub(crate) fn server_ttls_into(m: &mut ServerTtls, flows: &[Box<Described>]) {
    // Only packets that carried the server's data: a RST forged in its name in this very flow
    // must not count as one of its own TTLs.
    for (ip, ttl) in flows.iter().flat_map(|f| f.server_data_ttls()) {
        m.entry(ip).or_default().insert(ttl);
    }
}

/// Why a RST looks made by a middlebox rather than by the server, if it does: its TTL differs
/// from the TTLs of the server's own answers in other flows. (IP ID 0 with window 0 is not
/// enough on its own: the Linux kernel's RST for a closed port has both, as
/// captures/tcp-outcomes.pcap shows for port 9.)
pub(crate) fn middlebox_rst(f: &Described, ttls: &ServerTtls) -> Option<String> {
    middlebox_rst_of(f.server.ip, f.dirs[1].rst?, ttls)
}

/// [`middlebox_rst`] of a RST `r` sent in the name of server address `server`.
pub(crate) fn middlebox_rst_of(
    server: std::net::IpAddr,
    r: crate::flow::RstFacts,
    ttls: &ServerTtls,
) -> Option<String> {
    let seen = ttls.get(&server)?;
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
fn own_ttls(f: &Described, side: usize, ttls: &ServerTtls) -> BTreeSet<u8> {
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
pub(super) fn injected_rst(f: &Described, ttls: &ServerTtls) -> Option<String> {
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

/// The port the client meant: the tunnelled port of a CONNECT, the port of an absolute-form
/// request through a proxy (`GET http://host:8080/`), else the server port.
pub fn target_port(f: &Described) -> u16 {
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
pub(super) fn rank(o: Outcome) -> u8 {
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
fn with_log_rule(evidence: String, f: &Described) -> String {
    let evidence = match crate::proto::facts::hello_over_cap(f) {
        Some((have, need)) => {
            let note = format!(
                "the ClientHello ({need} bytes) is longer than the reassembly cap: read up to {have} (raise --reassembly-cap)"
            );
            if evidence.is_empty() {
                note
            } else {
                format!("{evidence}; {note}")
            }
        }
        None => evidence,
    };
    match (f.nflog_prefix(), evidence.is_empty()) {
        (None, _) => evidence,
        (Some(p), true) => format!("logged by rule '{p}'"),
        (Some(p), false) => format!("{evidence}; logged by rule '{p}'"),
    }
}

/// Judges one flow against the catalog.
pub fn judge(f: &Described, catalog: &Catalog, ttls: &ServerTtls) -> Judged {
    let cut = cut_short(f);
    let Some(name) = f.facts.name.as_deref() else {
        // No name to judge, but how it failed is still worth saying (NDJSON, per flow).
        let (mechanism, confidence, evidence) = if reached(f) {
            (None, None, String::new())
        } else if let Some(e) = cut {
            (None, None, e)
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
        return judge_by_tag(f, name, catalog, ttls, cut);
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
    let verdict = verdict_of(f, requirement, port_mismatch, cut.is_some());
    let (mechanism, confidence, mut evidence) = if verdict.blocked() {
        let (m, c, e) = mechanism(f, ttls);
        (m, Some(c), e)
    } else {
        (None, None, cut.unwrap_or_default())
    };
    // A name from an answer another client received is a guess: one step less sure.
    let confidence = if f.facts.name_source == Some(NameSource::DnsAnyClient) {
        if verdict.blocked() {
            evidence += &format!(
                "; named {name} from a DNS answer another client received for {}",
                crate::text::ip_text(f.server.ip)
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
fn verdict_of(
    f: &Described,
    requirement: Option<Requirement>,
    port_mismatch: bool,
    cut_short: bool,
) -> Verdict {
    let is_reached = reached(f);
    let inconclusive = !is_reached
        && (cut_short || matches!(f.outcome(), Outcome::HandshakeOnly | Outcome::Midstream));
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
fn judge_by_tag(
    f: &Described,
    tag: &str,
    catalog: &Catalog,
    ttls: &ServerTtls,
    cut: Option<String>,
) -> Judged {
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
    let verdict = verdict_of(f, requirement, port_mismatch, cut.is_some());
    let addr = crate::text::ip_text(f.server.ip);
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
        let note = match cut {
            Some(e) => format!("{e}; {note}"),
            None => note,
        };
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

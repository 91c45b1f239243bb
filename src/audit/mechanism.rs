//! How a flow or lookup that did not get through was blocked: the mechanism, the confidence
//! and one sentence of evidence.

use super::judge::{injected_rst, middlebox_rst, ServerTtls};
use super::vocab::Confidence;
use crate::flow::{Outcome, Proto};
use crate::proto::tls::alert_name;
use crate::proto::Described;
use crate::time::human_duration;
use crate::vocab_macro::vocabulary;

vocabulary! {
    /// Why a blocked flow or lookup was blocked.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Mechanism {
        Drop = "drop",
        TcpReset = "tcp-reset",
        IcmpAdminProhibited = "icmp-admin-prohibited",
        IcmpPortUnreachable = "icmp-port-unreachable",
        IcmpHostUnreachable = "icmp-host-unreachable",
        IcmpUnreachable = "icmp-unreachable",
        UdpDrop = "udp-drop",
        SniReset = "sni-reset",
        TlsAlert = "tls-alert",
        ProxyDenied = "proxy-denied",
        Http470 = "http-470",
        DnsNxdomain = "dns-nxdomain",
        DnsServfail = "dns-servfail",
        DnsRefused = "dns-refused",
        DnsNodata = "dns-nodata",
        DnsSinkhole = "dns-sinkhole",
        DnsNoAnswer = "dns-no-answer",
        /// The name resolved but the client never connected to the answer: a host firewall may
        /// refuse before any SYN (low confidence: the application may simply not have needed
        /// it).
        LocalBlock = "local-block",
        /// A RST right after the client's first flight whose TTL / hop limit differs from every
        /// packet the far end (or, for a RST in the client's name, the client) sent itself: an
        /// on-path box forged it.
        RstInjected = "rst-injected",
    }
}

fn secs(ns: i64) -> String {
    human_duration(ns)
}

/// Mechanism, confidence and evidence for a flow that did not reach the far end.
pub(super) fn mechanism(
    f: &Described,
    ttls: &ServerTtls,
) -> (Option<Mechanism>, Confidence, String) {
    let dst = f.server.text();
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
            let e = f.icmp().first().expect("icmp-unreachable has an ICMP note");
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
                // The CONNECT line was cut by the capture, or its target is not `host:port`;
                // its answer decides.
                let http = f.facts.http.as_ref();
                let status = http.and_then(|h| h.status);
                let what = match http {
                    Some(h) if !h.truncated => format!(
                        "a CONNECT to a target that is not host:port ({})",
                        crate::text::escape_terminal(&h.target)
                    ),
                    _ => "a CONNECT (its target cut by the capture)".to_string(),
                };
                return (
                    Some(Mechanism::ProxyDenied),
                    Confidence::High,
                    format!(
                        "proxy {dst} answered {what} with {}",
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

/// The evidence line of a DNS finding.
pub(super) fn dns_evidence(
    mech: Mechanism,
    qname: &str,
    l: &crate::names::lookups::Lookup<'_>,
) -> String {
    match mech {
        Mechanism::LocalBlock => format!(
            "{qname} resolved to {} and the client never connected to it afterwards (a local firewall may refuse before any SYN; or the name was not needed)",
            crate::text::ips_text(&l.addresses)
        ),
        Mechanism::DnsNoAnswer => format!(
            "{} query for {qname} to {} got no answer",
            l.qtype.as_deref().unwrap_or("?"),
            l.server
        ),
        Mechanism::DnsSinkhole => format!(
            "{qname} resolved to {} by {} (a sinkhole)",
            crate::text::ips_text(&l.addresses),
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

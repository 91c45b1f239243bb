//! The audit's vocabularies: verdicts, mechanisms, confidences and `--fail-on` levels, with
//! their names.

use serde::Serialize;

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
    /// Every verdict, in their order (the order of findings in a report).
    pub const ALL: [Verdict; 10] = [
        Verdict::RequiredBlocked,
        Verdict::OptionalBlocked,
        Verdict::UnexpectedReached,
        Verdict::UnexpectedBlocked,
        Verdict::RequiredReached,
        Verdict::OptionalReached,
        Verdict::Inconclusive,
        Verdict::Unattributed,
        Verdict::OtherPortReached,
        Verdict::OtherPortBlocked,
    ];

    /// The verdict named `name` (as [`Verdict::name`] and the JSON write it).
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }

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
    /// Every mechanism, in their order.
    pub const ALL: [Mechanism; 19] = [
        Mechanism::Drop,
        Mechanism::TcpReset,
        Mechanism::IcmpAdminProhibited,
        Mechanism::IcmpPortUnreachable,
        Mechanism::IcmpHostUnreachable,
        Mechanism::IcmpUnreachable,
        Mechanism::UdpDrop,
        Mechanism::SniReset,
        Mechanism::TlsAlert,
        Mechanism::ProxyDenied,
        Mechanism::Http470,
        Mechanism::DnsNxdomain,
        Mechanism::DnsServfail,
        Mechanism::DnsRefused,
        Mechanism::DnsNodata,
        Mechanism::DnsSinkhole,
        Mechanism::DnsNoAnswer,
        Mechanism::LocalBlock,
        Mechanism::RstInjected,
    ];

    /// The mechanism named `name` (as [`Mechanism::name`] and the JSON write it).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

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

impl Confidence {
    /// Every confidence, from the surest.
    pub const ALL: [Confidence; 3] = [Confidence::High, Confidence::Medium, Confidence::Low];

    /// The name the JSON writes.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }

    /// The confidence named `name`.
    pub fn from_name(name: &str) -> Option<Confidence> {
        Confidence::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// `--fail-on`: the least severe finding that makes the exit code 1; each level includes the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A required host was blocked (the default).
    RequiredBlocked,
    /// Also: a websocket instance whose diagnosis is not healthy.
    WebsocketProblem,
    /// Also: something the catalog does not expect got through.
    UnexpectedReached,
    /// Any blocked or unexpected finding.
    Any,
    /// Never: exit 0 unless an input failed.
    Never,
}

impl FailOn {
    /// Whether a finding with this verdict (its JSON name) makes the exit code 1. A weak
    /// finding counts only for `any`: a low-confidence local-block (resolved, never connected:
    /// browsers resolve names they never use), or one whose every flow was named by a guess
    /// (another client's DNS answer, a service tag). The one rule for `audit`, `live` and
    /// `merge` (which only has the JSON).
    pub fn hit(self, verdict: &str, weak: bool) -> bool {
        let firm_required = verdict == Verdict::RequiredBlocked.name() && !weak;
        match self {
            FailOn::RequiredBlocked | FailOn::WebsocketProblem => firm_required,
            FailOn::UnexpectedReached => {
                firm_required || verdict == Verdict::UnexpectedReached.name()
            }
            FailOn::Any => {
                verdict.ends_with("-blocked") || verdict == Verdict::UnexpectedReached.name()
            }
            FailOn::Never => false,
        }
    }

    /// Whether a websocket instance whose diagnosis is not healthy makes the exit code 1.
    pub fn websockets(self) -> bool {
        matches!(
            self,
            FailOn::WebsocketProblem | FailOn::UnexpectedReached | FailOn::Any
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Confidence, FailOn, Mechanism, Verdict};

    /// Every name reads back as its value, the JSON writes the same names, and `ALL` holds
    /// each value once in the enum's order (the order `merge` sorts findings by).
    #[test]
    fn names_round_trip_in_order() {
        fn check<T: Copy + Ord + std::fmt::Debug + serde::Serialize>(
            all: &[T],
            name: fn(T) -> &'static str,
            from_name: fn(&str) -> Option<T>,
        ) {
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
            for &v in all {
                assert_eq!(from_name(name(v)), Some(v));
                assert_eq!(serde_json::to_value(v).unwrap(), name(v));
            }
            assert_eq!(from_name("no-such-name"), None);
        }
        check(&Verdict::ALL, Verdict::name, Verdict::from_name);
        check(&Mechanism::ALL, Mechanism::name, Mechanism::from_name);
        check(&Confidence::ALL, Confidence::name, Confidence::from_name);
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(v as usize, i);
        }
    }

    #[test]
    fn fail_on_levels() {
        let (t, f) = (true, false);
        let rows = [
            ("required-blocked", f, [t, t, t, t, f]),
            ("required-blocked", t, [f, f, f, t, f]),
            ("optional-blocked", f, [f, f, f, t, f]),
            ("unexpected-blocked", f, [f, f, f, t, f]),
            ("unexpected-reached", f, [f, f, t, t, f]),
            ("required-reached", f, [f, f, f, f, f]),
            ("inconclusive", f, [f, f, f, f, f]),
        ];
        let levels = [
            FailOn::RequiredBlocked,
            FailOn::WebsocketProblem,
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
        let ws: Vec<bool> = levels.iter().map(|l| l.websockets()).collect();
        assert_eq!(ws, [f, t, t, t, f]);
    }
}

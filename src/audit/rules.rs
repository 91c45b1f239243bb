//! The rules to add: from the blocked findings, the smallest set of allow rules that would let
//! every required host the capture saw blocked through, grouped by destination kind, protocol
//! and port, each naming the findings it fixes. The rule *text* of each firewall (Azure
//! Firewall, squid, nftables, a plain list) is written by `report::rules`; this module decides
//! what the rules are, once, for every format and for the JSON document.
//!
//! - A destination is the catalog pattern of the finding's entry with its placeholders filled
//!   from the name it matched (`<storage>.blob.core.windows.net` -> `acct.blob.core.windows.net`),
//!   or a service tag when the entry is one. A pattern a broader one of the same rule covers
//!   (`*.instances.azureml.ms` under `*.azureml.ms`) is folded into it.
//! - TCP to 80 and 443 of a host name is an *application* rule (HTTP and HTTPS, matched by
//!   name); anything else (other TCP ports, UDP, service tags) a *network* rule.
//! - Not every block is fixed by an allow rule: a failed lookup is listed apart (`dns`), a name
//!   that resolved but was never tried (`local-block`: the machine itself) too (`client`), and
//!   a handshake a TLS alert ended (`tls-alert`: TLS inspection the client does not trust) too
//!   (`inspection`), each with its mechanism.
//! - Names come from the wire: a destination that is not a plain DNS name (letters, digits,
//!   `-`, `_`, `.`, a leading `*.`) is never written into a rule; it is listed in `refused`
//!   instead, so no capture can inject text into a firewall configuration or a shell command.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Finding, Mechanism, Verdict};

/// What the rules match on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// HTTP/HTTPS by host name (Azure Firewall application rule, a proxy's domain ACL).
    Application,
    /// By protocol, port and host name (needs the firewall to resolve names: Azure Firewall's
    /// DNS proxy) or service tag.
    Network,
}

/// One finding a rule lets through.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    pub verdict: Verdict,
    pub name: String,
    pub proto: Cow<'static, str>,
    pub port: Option<u16>,
    pub mechanism: Option<super::Mechanism>,
    pub entry_id: Option<String>,
    pub flows: u64,
}

/// One allow rule: every destination in it, on every port of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kind: RuleKind,
    /// `tcp` or `udp`.
    pub proto: Cow<'static, str>,
    pub ports: Vec<u16>,
    /// Host-name patterns (a leading `*.` is a wildcard of one or more labels).
    pub fqdns: Vec<String>,
    /// Service tags (network rules only).
    pub service_tags: Vec<String>,
    /// The server addresses the capture saw for these destinations (for address-based
    /// firewalls; they change, name-based rules are preferable).
    pub addresses: Vec<String>,
    /// The catalog entries behind the rule.
    pub entries: Vec<String>,
    /// Some entry behind the rule carries websockets (Jupyter on compute instances).
    pub websocket: bool,
    /// The findings the rule lets through.
    pub fixes: Vec<Fix>,
}

/// A required name whose lookup failed: the fix is in DNS, not in a firewall rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsFix {
    pub name: String,
    pub mechanism: Option<super::Mechanism>,
    pub entry_id: Option<String>,
    pub pattern: Option<String>,
    pub lookups: u64,
}

/// The rules to add, the DNS fixes, and advice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Allow rules for every required-blocked flow, application rules first.
    pub allow: Vec<Rule>,
    /// Required names whose lookups failed.
    pub dns: Vec<DnsFix>,
    /// Required names that resolved but were never connected to: the block is on the machine
    /// itself (a host firewall, proxy settings), not on the path (`local-block`).
    pub client: Vec<DnsFix>,
    /// Required hosts whose TLS handshake a TLS alert ended (`tls-alert`): a TLS-inspecting
    /// firewall or proxy the client does not trust, which an allow rule does not fix.
    pub inspection: Vec<Fix>,
    /// Findings whose destination is not a plain DNS name: not written as a rule.
    pub refused: Vec<Fix>,
    /// Advice, not a fix: what got through although nothing in the catalog expects it, grouped
    /// like the allow rules, for an admin who wants to deny it.
    pub deny_advice: Vec<Rule>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.dns.is_empty()
            && self.client.is_empty()
            && self.inspection.is_empty()
            && self.refused.is_empty()
    }
}

/// Ports an application rule carries (HTTP and HTTPS).
const APP_PORTS: [u16; 2] = [80, 443];

/// `true` for a plain DNS name or a `*.`-wildcard of one: what a rule may carry.
pub fn plain_dns_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The entry's pattern with its placeholders filled from the values the name bound.
fn filled(pattern: &str, bound: &BTreeMap<String, String>) -> String {
    let mut out = pattern.to_string();
    for (k, v) in bound {
        out = out.replace(&format!("<{k}>"), v);
    }
    out
}

/// `true` when wildcard pattern `w` matches every name `p` matches (and they differ).
fn covers(w: &str, p: &str) -> bool {
    match w.strip_prefix('*') {
        Some(suffix) => p != w && p.ends_with(suffix) && p.len() > suffix.len(),
        None => false,
    }
}

fn fix_of(f: &Finding) -> Fix {
    Fix {
        verdict: f.verdict,
        name: f.name.clone(),
        proto: f.proto.clone(),
        port: f.dst_port,
        mechanism: f.mechanism,
        entry_id: f.entry.as_ref().map(|e| e.id.clone()),
        flows: f.flows,
    }
}

/// A destination: the text and whether it is a service tag.
type Dest = (bool, String);

#[derive(Default)]
struct Acc {
    ports: BTreeMap<Cow<'static, str>, BTreeSet<u16>>,
    addresses: BTreeSet<String>,
    entries: BTreeSet<String>,
    websocket: bool,
    fixes: Vec<(Cow<'static, str>, u16, Fix)>,
}

/// Groups flow findings into rules: one per kind, protocol and set of ports, destinations
/// covered by a broader one of the same rule folded into it.
fn group(findings: &[&Finding], refused: &mut Vec<Fix>) -> Vec<Rule> {
    let mut by_dest: BTreeMap<Dest, Acc> = BTreeMap::new();
    for f in findings {
        let (Some(port), Some(entry)) = (f.dst_port, f.entry.as_ref()) else {
            continue;
        };
        let tag = entry.id.starts_with("tag.");
        let dest = if tag {
            entry.pattern.clone()
        } else {
            filled(&entry.pattern, &f.bound)
        };
        if !plain_dns_name(&dest) {
            refused.push(fix_of(f));
            continue;
        }
        let acc = by_dest.entry((tag, dest)).or_default();
        acc.ports.entry(f.proto.clone()).or_default().insert(port);
        acc.addresses.extend(f.dst_ips.iter().cloned());
        acc.entries.insert(entry.id.clone());
        acc.websocket |= entry.websocket;
        acc.fixes.push((f.proto.clone(), port, fix_of(f)));
    }
    // (kind, proto, ports, is-tag) -> destinations.
    type Key = (RuleKind, Cow<'static, str>, Vec<u16>, bool);
    let mut rules: BTreeMap<Key, Vec<(&Dest, &Acc)>> = BTreeMap::new();
    for (dest, acc) in &by_dest {
        for (proto, ports) in &acc.ports {
            let (app, net): (Vec<u16>, Vec<u16>) = ports
                .iter()
                .partition(|p| proto == "tcp" && !dest.0 && APP_PORTS.contains(p));
            if !app.is_empty() {
                rules
                    .entry((RuleKind::Application, proto.clone(), app, false))
                    .or_default()
                    .push((dest, acc));
            }
            if !net.is_empty() {
                rules
                    .entry((RuleKind::Network, proto.clone(), net, dest.0))
                    .or_default()
                    .push((dest, acc));
            }
        }
    }
    rules
        .into_iter()
        .map(|((kind, proto, ports, _), dests)| {
            let rule_proto = proto.clone();
            let names: Vec<&str> = dests.iter().map(|(d, _)| d.1.as_str()).collect();
            let mut rule = Rule {
                kind,
                proto: rule_proto,
                ports: ports.clone(),
                fqdns: Vec::new(),
                service_tags: Vec::new(),
                addresses: Vec::new(),
                entries: Vec::new(),
                websocket: false,
                fixes: Vec::new(),
            };
            let mut addresses = BTreeSet::new();
            let mut entries = BTreeSet::new();
            for ((tag, d), acc) in dests {
                if *tag {
                    rule.service_tags.push(d.clone());
                } else if !names.iter().any(|w| covers(w, d)) {
                    rule.fqdns.push(d.clone());
                }
                addresses.extend(acc.addresses.iter().cloned());
                entries.extend(acc.entries.iter().cloned());
                rule.websocket |= acc.websocket;
                rule.fixes.extend(
                    acc.fixes
                        .iter()
                        .filter(|(p, port, _)| *p == proto && ports.contains(port))
                        .map(|(_, _, f)| f.clone()),
                );
            }
            rule.addresses = addresses.into_iter().collect();
            rule.entries = entries.into_iter().collect();
            rule.fixes.sort();
            rule
        })
        .collect()
}

/// The rules that would let every required-blocked finding through, the DNS fixes, and the
/// advice on what was reached although nothing expects it.
pub fn rules(findings: &[Finding], dns_failures: &[Finding]) -> Rules {
    let mut refused = Vec::new();
    let tls = |f: &&Finding| f.mechanism == Some(Mechanism::TlsAlert);
    let blocked: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::RequiredBlocked && !tls(f))
        .collect();
    let allow = group(&blocked, &mut refused);
    let inspection: Vec<Fix> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::RequiredBlocked && tls(f))
        .map(fix_of)
        .collect();
    let dns_fix = |f: &Finding| DnsFix {
        name: f.name.clone(),
        mechanism: f.mechanism,
        entry_id: f.entry.as_ref().map(|e| e.id.clone()),
        pattern: f.entry.as_ref().map(|e| e.pattern.clone()),
        lookups: f.lookups,
    };
    let (client, dns): (Vec<&Finding>, Vec<&Finding>) = dns_failures
        .iter()
        .filter(|f| f.verdict == Verdict::RequiredBlocked)
        .partition(|f| f.mechanism == Some(Mechanism::LocalBlock));
    let dns = dns.into_iter().map(dns_fix).collect();
    let client = client.into_iter().map(dns_fix).collect();
    // Advice: unexpected hosts reached, by their own names (no catalog pattern to go by).
    let mut deny: BTreeMap<(Cow<'static, str>, u16), BTreeSet<String>> = BTreeMap::new();
    let mut deny_fixes: BTreeMap<(Cow<'static, str>, u16), Vec<Fix>> = BTreeMap::new();
    let mut deny_addresses: BTreeMap<(Cow<'static, str>, u16), BTreeSet<String>> = BTreeMap::new();
    for f in findings
        .iter()
        .filter(|f| f.verdict == Verdict::UnexpectedReached)
    {
        let Some(port) = f.dst_port else { continue };
        // A flow known by its address has no name to deny; its address is kept below.
        let by_address = f.name.parse::<std::net::IpAddr>().is_ok();
        if !by_address && !plain_dns_name(&f.name) {
            continue;
        }
        let names = deny.entry((f.proto.clone(), port)).or_default();
        if !by_address {
            names.insert(f.name.clone());
        }
        deny_fixes
            .entry((f.proto.clone(), port))
            .or_default()
            .push(fix_of(f));
        deny_addresses
            .entry((f.proto.clone(), port))
            .or_default()
            .extend(f.dst_ips.iter().cloned());
    }
    let deny_advice = deny
        .into_iter()
        .map(|((proto, port), names)| {
            let key = (proto.clone(), port);
            Rule {
                kind: if proto == "tcp" && APP_PORTS.contains(&port) {
                    RuleKind::Application
                } else {
                    RuleKind::Network
                },
                proto,
                ports: vec![port],
                fqdns: names.into_iter().collect(),
                service_tags: Vec::new(),
                addresses: deny_addresses
                    .remove(&key)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                entries: Vec::new(),
                websocket: false,
                fixes: deny_fixes.remove(&key).unwrap_or_default(),
            }
        })
        .collect();
    refused.sort();
    Rules {
        allow,
        dns,
        client,
        inspection,
        refused,
        deny_advice,
    }
}

/// A catalog entry (or service-tag rule) an allowlist does not let through, on one protocol
/// and port (`allowscope check-allowlist`): what [`rules_for_needs`] turns into rules. The
/// entry's `pattern` is the destination to allow, placeholders filled where they have a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub entry: super::EntryRef,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    pub port: u16,
}

/// The rules that would let every required [`Needed`] entry through, grouped as
/// [`rules`] groups blocked findings (one rule per kind, protocol and ports; a destination a
/// wildcard of the same rule covers folded into it; each rule naming what it fixes, by the
/// entry's destination). A destination that is not a plain DNS name (a placeholder left
/// unfilled: `<storage>.blob.core.windows.net`) is listed in `refused`, never written.
pub fn rules_for_needs(needs: &[Needed]) -> Rules {
    let findings: Vec<Finding> = needs
        .iter()
        .filter(|n| n.entry.requirement == crate::catalog::Requirement::Required.name())
        .map(|n| Finding {
            verdict: Verdict::RequiredBlocked,
            mechanism: None,
            confidence: None,
            name: n.entry.pattern.clone(),
            proto: n.proto.into(),
            dst_port: Some(n.port),
            dst_ips: Default::default(),
            ips: Default::default(),
            entry: Some(Box::new(n.entry.clone())),
            flows: 0,
            lookups: 0,
            first_seen: String::new(),
            first_ns: 0,
            evidence: String::new(),
            files: Default::default(),
            bound: BTreeMap::new(),
            port_mismatch: false,
            name_guessed: false,
            worst_outcome: None,
            best_outcome: None,
            first_order: None,
        })
        .collect();
    let refs: Vec<&Finding> = findings.iter().collect();
    let mut refused = Vec::new();
    let allow = group(&refs, &mut refused);
    refused.sort();
    Rules {
        allow,
        refused,
        ..Rules::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only() {
        assert!(plain_dns_name("acct.blob.core.windows.net"));
        assert!(plain_dns_name("*.azureml.ms"));
        assert!(plain_dns_name("_dmarc.example.com"));
        for bad in [
            "",
            "*.",
            "a..b",
            "a b.com",
            "a;rm -rf /.com",
            "$(x).com",
            "a\nb.com",
            "x.*.com",
            "\"q\".com",
            "é.com",
        ] {
            assert!(!plain_dns_name(bad), "{bad:?}");
        }
        assert!(!plain_dns_name(&"a".repeat(64)));
    }

    #[test]
    fn wildcards_cover_what_they_match() {
        assert!(covers("*.azureml.ms", "*.instances.azureml.ms"));
        assert!(covers("*.azureml.ms", "ws.azureml.ms"));
        assert!(!covers("*.azureml.ms", "azureml.ms"));
        assert!(!covers("*.azureml.ms", "*.azureml.ms"));
        assert!(!covers("*.azureml.ms", "xazureml.ms"));
        assert!(!covers("ws.azureml.ms", "ws.azureml.ms"));
    }

    fn finding(name: &str, pattern: &str, bound: &[(&str, &str)], port: u16) -> Finding {
        Finding {
            verdict: Verdict::RequiredBlocked,
            mechanism: Some(Mechanism::Drop),
            confidence: None,
            name: name.to_string(),
            proto: "tcp".into(),
            dst_port: Some(port),
            dst_ips: ["192.0.2.1".to_string()].into_iter().collect(),
            ips: Default::default(),
            entry: Some(Box::new(super::super::EntryRef {
                id: format!("e.{pattern}"),
                pattern: pattern.to_string(),
                purpose: String::new(),
                cloud: "public".into(),
                requirement: "required".into(),
                scenario: "core".to_string(),
                websocket: false,
            })),
            flows: 1,
            lookups: 0,
            first_seen: String::new(),
            first_ns: 0,
            evidence: String::new(),
            files: Default::default(),
            bound: bound
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port_mismatch: false,
            name_guessed: false,
            worst_outcome: None,
            best_outcome: None,
            first_order: None,
        }
    }

    /// A placeholder bound from the wire to something that is not a DNS label never reaches a
    /// rule: the finding is listed as refused instead.
    #[test]
    fn names_from_the_wire_cannot_inject_rule_text() {
        let evil = "x$(reboot)\ndstdomain .";
        let r = rules(
            &[
                finding(
                    &format!("{evil}.blob.core.windows.net"),
                    "<storage>.blob.core.windows.net",
                    &[("storage", evil)],
                    443,
                ),
                finding(
                    "ok.blob.core.windows.net",
                    "<storage>.blob.core.windows.net",
                    &[("storage", "ok")],
                    443,
                ),
            ],
            &[],
        );
        assert_eq!(r.allow.len(), 1);
        assert_eq!(r.allow[0].fqdns, ["ok.blob.core.windows.net"]);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].name.starts_with("x$(reboot)"));
    }

    /// One rule per kind, protocol and ports; a pattern a wildcard of the same rule covers is
    /// folded into it, its finding still named.
    #[test]
    fn rules_group_by_ports_and_fold_covered_patterns() {
        let r = rules(
            &[
                finding("a.ws.azureml.ms", "*.azureml.ms", &[], 443),
                finding(
                    "ci.eastus.instances.azureml.ms",
                    "*.instances.azureml.ms",
                    &[],
                    443,
                ),
                finding("login.example", "login.example", &[], 80),
                finding("login.example", "login.example", &[], 443),
                finding(
                    "acct.file.core.windows.net",
                    "<storage>.file.core.windows.net",
                    &[("storage", "acct")],
                    445,
                ),
            ],
            &[],
        );
        let got: Vec<(RuleKind, Vec<u16>, Vec<String>, usize)> = r
            .allow
            .iter()
            .map(|r| (r.kind, r.ports.clone(), r.fqdns.clone(), r.fixes.len()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    RuleKind::Application,
                    vec![80, 443],
                    vec!["login.example".to_string()],
                    2
                ),
                (
                    RuleKind::Application,
                    vec![443],
                    vec!["*.azureml.ms".to_string()],
                    2
                ),
                (
                    RuleKind::Network,
                    vec![445],
                    vec!["acct.file.core.windows.net".to_string()],
                    1
                ),
            ]
        );
    }

    /// Entries an allowlist lacks become rules as blocked findings do; an unfilled placeholder
    /// is refused, an optional entry asks for no rule.
    #[test]
    fn needs_become_rules() {
        let need = |pattern: &str, requirement: &'static str, proto, port| Needed {
            entry: super::super::EntryRef {
                id: format!("e.{pattern}"),
                pattern: pattern.to_string(),
                purpose: String::new(),
                cloud: "public".into(),
                requirement: requirement.into(),
                scenario: "core".to_string(),
                websocket: false,
            },
            proto,
            port,
        };
        let r = rules_for_needs(&[
            need("*.azureml.ms", "required", "tcp", 443),
            need("*.instances.azureml.ms", "required", "tcp", 443),
            need("eastus.tundra.azureml.ms", "required", "udp", 5831),
            need("<storage>.blob.core.windows.net", "required", "tcp", 443),
            need("*.aether.ms", "optional", "tcp", 443),
        ]);
        let got: Vec<String> = r
            .allow
            .iter()
            .map(|r| {
                format!(
                    "{:?} {}/{:?} {} ({})",
                    r.kind,
                    r.proto,
                    r.ports,
                    r.fqdns.join(" "),
                    r.fixes.len()
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "Application tcp/[443] *.azureml.ms (2)",
                "Network udp/[5831] eastus.tundra.azureml.ms (1)"
            ]
        );
        assert_eq!(r.refused.len(), 1);
        assert_eq!(r.refused[0].name, "<storage>.blob.core.windows.net");
        assert!(r.dns.is_empty() && r.deny_advice.is_empty());
    }

    #[test]
    fn placeholders_are_filled_from_the_name() {
        let bound = BTreeMap::from([("storage".to_string(), "acct".to_string())]);
        assert_eq!(
            filled("<storage>.blob.core.windows.net", &bound),
            "acct.blob.core.windows.net"
        );
    }
}

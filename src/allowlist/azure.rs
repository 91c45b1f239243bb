//! Azure Firewall policy rules as JSON: the rule collection groups of a firewall policy.
//!
//! Accepted shapes (the resource is documented as `Microsoft.Network/firewallPolicies/
//! ruleCollectionGroups` in the ARM template reference and the REST API):
//! - an ARM template: `resources[]` of that type (or child resources `ruleCollectionGroups` of a
//!   `Microsoft.Network/firewallPolicies` resource), the group in `properties`;
//! - `az network firewall policy rule-collection-group show` (one group, its properties
//!   flattened to the top: `priority`, `ruleCollections`) and `... list` (an array of them);
//! - the REST API's group (`properties.ruleCollections`) and list (`{"value": [...]}`).
//!
//! A group has a `priority` and `ruleCollections`; a filter collection
//! (`FirewallPolicyFilterRuleCollection`) a `priority`, an `action.type` (Allow, Deny) and
//! `rules`; an application rule `targetFqdns`, `fqdnTags` and `protocols`
//! (`{protocolType: Http|Https, port}`), a network rule `destinationAddresses` (addresses,
//! ranges, service tags, `*`), `destinationFqdns`, `destinationIpGroups`, `destinationPorts`
//! and `ipProtocols` (TCP, UDP, Any, ICMP). Network rules are tried before application rules,
//! each by group priority, then collection priority (lower first).
//!
//! Not followed, and said so: FQDN tags, web categories, target URLs, IP groups, addresses
//! other than "every address", DNAT collections, source addresses (every rule is taken to apply
//! to the Azure ML compute), and ARM expressions other than `[parameters('name')]` with a
//! default value.

use serde_json::Value;

use super::{
    name_destination, port_range, Action, Allowlist, App, Dest, DestKind, InputFormat, NotFollowed,
    Rule, RuleKind, Service, Services,
};
use crate::catalog::{PortRange, Proto};

/// How deep nested `resources` and lists are searched for groups.
const MAX_DEPTH: usize = 8;

/// The value of `key`, compared without regard to ASCII case (ARM property names are not
/// case-sensitive).
fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A group's, collection's or rule's property: under `properties` (templates, REST) or at the
/// top (az CLI output, which flattens them).
fn prop<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    get(v, "properties")
        .and_then(|p| get(p, key))
        .or_else(|| get(v, key))
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The strings of an array (a lone string counts as one; anything else is skipped).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `true` for an ARM template expression (`[parameters('x')]`).
fn expression(s: &str) -> bool {
    s.starts_with('[') && s.ends_with(']') && !s.starts_with("[[")
}

struct Reader<'a> {
    file: &'a str,
    /// The template's `parameters` (to resolve `[parameters('x')]` priorities).
    params: Option<&'a Value>,
    notes: Vec<NotFollowed>,
    /// (network first, group priority, collection priority, order in the file, rule).
    rules: Vec<((u8, u32, u32, usize), Rule)>,
    sources_restricted: bool,
    uses_tags: bool,
}

impl Reader<'_> {
    fn note(&mut self, at: &str, what: impl Into<String>, why: &str) {
        self.notes.push(NotFollowed {
            file: self.file.to_string(),
            at: at.to_string(),
            what: what.into(),
            why: why.to_string(),
        });
    }

    /// A priority: a number, or `[parameters('name')]` with a default value. `None` otherwise.
    fn priority(&self, v: Option<&Value>) -> Option<u32> {
        match v? {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => {
                if let Ok(n) = s.trim().parse::<u32>() {
                    return Some(n);
                }
                let name = s
                    .strip_prefix("[parameters('")
                    .and_then(|r| r.strip_suffix("')]"))?;
                let p = get(self.params?, name)?;
                get(p, "defaultValue")?
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
            }
            _ => None,
        }
    }

    /// A group's name for the report: a template's `policy/group` or an expression that
    /// builds it (`[concat(parameters('p'), '/Group')]`, `[format('{0}/{1}', ...,
    /// parameters('g'))]`) shortened to the group's part, as far as it can be told.
    fn group_name(&self, g: &Value) -> String {
        let name = text_of(get(g, "name"));
        if !expression(&name) {
            return name.rsplit('/').next().unwrap_or(&name).to_string();
        }
        let quoted: Vec<&str> = name.split('\'').skip(1).step_by(2).collect();
        if let Some(lit) = quoted
            .iter()
            .rev()
            .map(|q| q.trim_start_matches('/'))
            .find(|q| !q.is_empty() && !q.contains(['{', '/']))
            .filter(|q| !name.contains(&format!("parameters('{q}')")))
        {
            return lit.to_string();
        }
        // The last parameter with a default value.
        for q in quoted.iter().rev() {
            if let Some(Value::String(d)) = self
                .params
                .and_then(|p| get(p, q))
                .and_then(|p| get(p, "defaultValue"))
            {
                return d.clone();
            }
        }
        name
    }

    fn group(&mut self, g: &Value) {
        let gname = self.group_name(g);
        let gprio = self.priority(prop(g, "priority"));
        if gprio.is_none() {
            self.note(
                &gname,
                "the rule collection group's priority",
                "not a number: its collections are taken after those of groups with one",
            );
        }
        let Some(Value::Array(cols)) = prop(g, "ruleCollections") else {
            self.note(&gname, "ruleCollections", "missing or not a list");
            return;
        };
        for c in cols {
            self.collection(&gname, gprio.unwrap_or(u32::MAX), c);
        }
    }

    fn collection(&mut self, gname: &str, gprio: u32, c: &Value) {
        let cname = text_of(get(c, "name"));
        let at = format!("{gname}/{cname}");
        let ctype = text_of(get(c, "ruleCollectionType"));
        if ctype.eq_ignore_ascii_case("FirewallPolicyNatRuleCollection") {
            self.note(
                &at,
                "a DNAT rule collection",
                "inbound address translation, not an outbound allow",
            );
            return;
        }
        if !ctype.is_empty() && !ctype.eq_ignore_ascii_case("FirewallPolicyFilterRuleCollection") {
            self.note(&at, format!("rule collection type {ctype}"), "unknown type");
            return;
        }
        let action_text = text_of(get(c, "action").and_then(|a| get(a, "type")));
        let action = if action_text.eq_ignore_ascii_case("allow") {
            Action::Allow
        } else if action_text.eq_ignore_ascii_case("deny") {
            Action::Deny
        } else {
            self.note(
                &at,
                format!("action `{action_text}`"),
                "neither Allow nor Deny: the collection is skipped",
            );
            return;
        };
        let cprio = match self.priority(get(c, "priority")) {
            Some(p) => p,
            None => {
                self.note(
                    &at,
                    "the rule collection's priority",
                    "not a number: taken after the collections with one",
                );
                u32::MAX
            }
        };
        let Some(Value::Array(rules)) = get(c, "rules") else {
            return;
        };
        for r in rules {
            let rname = text_of(get(r, "name"));
            let label = format!("{at}/{rname}");
            let rtype = text_of(get(r, "ruleType"));
            let rule = if rtype.eq_ignore_ascii_case("ApplicationRule") {
                self.application(&label, action, r)
            } else if rtype.eq_ignore_ascii_case("NetworkRule") {
                self.network(&label, action, r)
            } else {
                self.note(
                    &label,
                    format!("rule type `{rtype}`"),
                    "not an application or network rule",
                );
                continue;
            };
            let sources = strings(get(r, "sourceAddresses"));
            if !strings(get(r, "sourceIpGroups")).is_empty() || !sources.iter().all(|s| s == "*") {
                self.sources_restricted = true;
            }
            let phase = u8::from(rule.kind == RuleKind::Application);
            let seq = self.rules.len();
            self.rules.push(((phase, gprio, cprio, seq), rule));
        }
    }

    fn names(&mut self, label: &str, field: &str, values: Vec<String>) -> Vec<Dest> {
        let mut out = Vec::new();
        for v in values {
            if expression(&v) {
                self.note(
                    label,
                    format!("{field} {v}"),
                    "an ARM expression, not a name",
                );
                continue;
            }
            match name_destination(&v) {
                Some(d) => out.push(d),
                None => self.note(label, format!("{field} `{v}`"), "not a host name"),
            }
        }
        out
    }

    fn application(&mut self, label: &str, action: Action, r: &Value) -> Rule {
        let dests = self.names(label, "targetFqdns", strings(get(r, "targetFqdns")));
        for (field, why) in [
            (
                "fqdnTags",
                "an FQDN tag's names are Microsoft's and not listed anywhere to check",
            ),
            ("webCategories", "a web category is not a list of names"),
            (
                "targetUrls",
                "URLs (TLS inspection) allow paths, not whole names",
            ),
            (
                "destinationAddresses",
                "addresses are not checked against names",
            ),
        ] {
            let v = strings(get(r, field));
            if !v.is_empty() {
                self.note(label, format!("{field} {}", v.join(", ")), why);
            }
        }
        let mut services = Vec::new();
        if let Some(Value::Array(ps)) = get(r, "protocols") {
            for p in ps {
                let t = text_of(get(p, "protocolType"));
                let port = match get(p, "port") {
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
                    _ => None,
                };
                let app = if t.eq_ignore_ascii_case("https") {
                    Some(App::Https)
                } else if t.eq_ignore_ascii_case("http") {
                    Some(App::Http)
                } else {
                    None
                };
                match (app, port) {
                    (Some(app), Some(port)) => services.push(Service {
                        proto: Proto::Tcp,
                        ports: PortRange::one(port),
                        app,
                    }),
                    _ => self.note(
                        label,
                        format!("protocol `{t}:{}`", text_of(get(p, "port"))),
                        "not Http or Https with a port",
                    ),
                }
            }
        }
        Rule {
            file: self.file.to_string(),
            label: label.to_string(),
            action,
            kind: RuleKind::Application,
            dests,
            except: Vec::new(),
            services: Services::Set(services),
            uncertain: None,
        }
    }

    fn network(&mut self, label: &str, action: Action, r: &Value) -> Rule {
        let mut dests = self.names(
            label,
            "destinationFqdns",
            strings(get(r, "destinationFqdns")),
        );
        for a in strings(get(r, "destinationAddresses")) {
            let t = a.trim();
            if t == "*" || t == "0.0.0.0/0" || t == "::/0" {
                dests.push(Dest {
                    text: t.to_string(),
                    kind: DestKind::AnyAddress,
                    defined: None,
                });
            } else if expression(t) {
                self.note(
                    label,
                    format!("destinationAddresses {t}"),
                    "an ARM expression",
                );
            } else if looks_like_address(t) {
                self.note(
                    label,
                    format!("destination address {t}"),
                    "addresses are not checked against the catalog's names (they change)",
                );
            } else if !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            {
                self.uses_tags = true;
                dests.push(Dest {
                    text: t.to_string(),
                    kind: DestKind::Tag(t.to_string()),
                    defined: None,
                });
            } else {
                self.note(
                    label,
                    format!("destination address `{t}`"),
                    "not an address or service tag",
                );
            }
        }
        let groups = strings(get(r, "destinationIpGroups"));
        if !groups.is_empty() {
            self.note(
                label,
                format!("destinationIpGroups {}", groups.join(", ")),
                "IP groups are references to addresses kept elsewhere",
            );
        }
        let mut protos = Vec::new();
        for p in strings(get(r, "ipProtocols")) {
            match p.to_ascii_lowercase().as_str() {
                "tcp" => protos.push(Proto::Tcp),
                "udp" => protos.push(Proto::Udp),
                "any" => protos.push(Proto::Any),
                "icmp" => {}
                _ => self.note(
                    label,
                    format!("ipProtocols `{p}`"),
                    "not TCP, UDP, Any or ICMP",
                ),
            }
        }
        let mut ranges = Vec::new();
        for p in strings(get(r, "destinationPorts")) {
            match port_range(&p) {
                Some(r) => ranges.push(r),
                None => self.note(
                    label,
                    format!("destinationPorts `{p}`"),
                    "not a port or range",
                ),
            }
        }
        let services = protos
            .iter()
            .flat_map(|&proto| {
                ranges.iter().map(move |&ports| Service {
                    proto,
                    ports,
                    app: App::Any,
                })
            })
            .collect();
        Rule {
            file: self.file.to_string(),
            label: label.to_string(),
            action,
            kind: RuleKind::Network,
            dests,
            except: Vec::new(),
            services: Services::Set(services),
            uncertain: None,
        }
    }

    /// Finds the groups in `v`: a template's resources, a list, one group.
    fn find(&mut self, v: &Value, depth: usize) -> usize {
        if depth > MAX_DEPTH {
            return 0;
        }
        match v {
            Value::Array(items) => items.iter().map(|i| self.find(i, depth + 1)).sum(),
            Value::Object(_) => {
                let ty = text_of(get(v, "type")).to_ascii_lowercase();
                if prop(v, "ruleCollections").is_some()
                    || ty.ends_with("firewallpolicies/rulecollectiongroups")
                    || ty == "rulecollectiongroups"
                {
                    self.group(v);
                    return 1;
                }
                if ty.ends_with("/azurefirewalls") {
                    self.note(
                        &text_of(get(v, "name")),
                        "an Azure Firewall with classic rules",
                        "only firewall policies (rule collection groups) are read",
                    );
                }
                let mut n = 0;
                for key in ["resources", "value"] {
                    if let Some(inner) = get(v, key) {
                        n += self.find(inner, depth + 1);
                    }
                }
                n
            }
            _ => 0,
        }
    }
}

/// An IP address, a CIDR block or a range of addresses.
fn looks_like_address(s: &str) -> bool {
    let one = |a: &str| a.trim().parse::<std::net::IpAddr>().is_ok();
    if let Some((a, len)) = s.split_once('/') {
        return one(a) && len.parse::<u8>().is_ok();
    }
    if let Some((a, b)) = s.split_once('-') {
        return one(a) && one(b);
    }
    one(s)
}

/// Reads an Azure Firewall policy export (see the module documentation).
pub fn read(text: &str, file: &str) -> Result<Allowlist, String> {
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("not JSON: {e}"))?;
    let mut r = Reader {
        file,
        params: get(&v, "parameters"),
        notes: Vec::new(),
        rules: Vec::new(),
        sources_restricted: false,
        uses_tags: false,
    };
    if r.find(&v, 0) == 0 {
        return Err(
            "JSON, but no rule collection group in it: expected an ARM template with \
                    resources of type Microsoft.Network/firewallPolicies/ruleCollectionGroups, \
                    or the output of `az network firewall policy rule-collection-group show` or \
                    `list`"
                .into(),
        );
    }
    if r.sources_restricted {
        r.note(
            "every rule",
            "source addresses and IP groups",
            "not checked: every rule is taken to apply to the Azure ML compute",
        );
    }
    r.rules.sort_by_key(|(k, _)| *k);
    Ok(Allowlist {
        file: file.to_string(),
        format: InputFormat::AzureFirewall,
        rules: r.rules.into_iter().map(|(_, rule)| rule).collect(),
        http_only: false,
        not_followed: r.notes,
        uses_tags: r.uses_tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(body: &str) -> String {
        format!(
            r#"{{"name": "g", "properties": {{"priority": 200, "ruleCollections": [{body}]}}}}"#
        )
    }

    #[test]
    fn network_rules_come_before_application_rules_then_priorities() {
        let text = r#"{"resources": [
          {"type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups", "name": "b",
           "properties": {"priority": 300, "ruleCollections": [
             {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "app", "priority": 100,
              "action": {"type": "Allow"},
              "rules": [{"ruleType": "ApplicationRule", "name": "r1", "targetFqdns": ["*.azureml.ms"],
                         "protocols": [{"protocolType": "Https", "port": 443}]}]}]}},
          {"type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups", "name": "a",
           "properties": {"priority": 200, "ruleCollections": [
             {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "net", "priority": 500,
              "action": {"type": "Deny"},
              "rules": [{"ruleType": "NetworkRule", "name": "r2", "destinationAddresses": ["AzureCloud", "10.0.0.0/8"],
                         "ipProtocols": ["TCP", "ICMP"], "destinationPorts": ["1-1024"]}]}]}}]}"#;
        let a = read(text, "t.json").unwrap();
        let labels: Vec<&str> = a.rules.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["a/net/r2", "b/app/r1"]);
        assert_eq!(a.rules[0].action, Action::Deny);
        assert!(a.uses_tags);
        assert_eq!(
            a.rules[0].dests.len(),
            1,
            "the address is noted, not a destination"
        );
        assert_eq!(a.not_followed.len(), 1);
        assert!(a.not_followed[0].why.contains("addresses"));
    }

    #[test]
    fn az_cli_output_is_flattened_and_lists_are_arrays() {
        let one = r#"{"name": "g", "priority": 100, "ruleCollections": [
            {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "c", "priority": 100,
             "action": {"type": "Allow"}, "rules": [{"ruleType": "ApplicationRule", "name": "r",
             "targetFqdns": ["login.microsoftonline.com"], "fqdnTags": ["WindowsUpdate"],
             "protocols": [{"protocolType": "Https", "port": 443}], "sourceAddresses": ["10.0.0.0/24"]}]}]}"#;
        let a = read(one, "show.json").unwrap();
        assert_eq!(a.rules.len(), 1);
        let whats: Vec<&str> = a.not_followed.iter().map(|n| n.what.as_str()).collect();
        assert_eq!(
            whats,
            ["fqdnTags WindowsUpdate", "source addresses and IP groups"]
        );
        let list = format!("[{one}, {one}]");
        assert_eq!(read(&list, "list.json").unwrap().rules.len(), 2);
        let rest = format!(r#"{{"value": [{}]}}"#, group(""));
        assert_eq!(read(&rest, "rest.json").unwrap().rules.len(), 0);
    }

    #[test]
    fn wrong_shapes_are_errors_or_notes_never_panics() {
        for bad in [
            "[]",
            "{}",
            "1",
            "\"x\"",
            "[1, 2]",
            r#"{"resources": [{"type": "x"}]}"#,
        ] {
            assert!(read(bad, "f").is_err(), "{bad}");
        }
        for odd in [
            group("1"),
            group(r#"{"action": 3, "rules": 4}"#),
            group(
                r#"{"action": {"type": "Allow"}, "rules": [1, {"ruleType": 2}, {"ruleType": "NetworkRule", "destinationPorts": ["x", "99999"], "ipProtocols": [7, "GRE"]}]}"#,
            ),
            r#"{"name": "g", "ruleCollections": {}}"#.to_string(),
        ] {
            let a = read(&odd, "f").unwrap();
            assert!(a.rules.iter().all(|r| r.dests.is_empty()), "{odd}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(read(&deep, "f").is_err());
    }
}

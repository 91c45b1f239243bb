//! The rules to add, as each firewall reads them (`allowscope audit --rules FORMAT`): Azure
//! Firewall (`az` commands, or the ARM template of a rule collection group), squid ACLs,
//! nftables sets, or a plain list of host names. What the rules are is decided once, in
//! [`crate::audit::rules`]; this file only writes them.
//!
//! Destinations reach this file only as plain DNS names (the audit refuses anything else), so
//! no name from the wire can break out of a configuration line or a shell word; the findings'
//! names in comments are escaped for the terminal (no line breaks).

use std::io::{self, Write};

use crate::audit::rules::{plain_dns_name, Fix, Rule, RuleKind, Rules};
use crate::text::escape_terminal;

/// A firewall's rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// `az network firewall policy rule-collection-group collection` commands.
    AzureFirewall,
    /// The ARM template of a rule collection group (Microsoft.Network/firewallPolicies/ruleCollectionGroups).
    AzureFirewallArm,
    /// squid.conf `acl ... dstdomain` and `http_access allow` lines.
    Squid,
    /// nftables sets of the addresses seen, and the rules that accept them.
    Nftables,
    /// One host-name pattern per line with protocol and port, for any other firewall.
    FqdnList,
}

/// What the rules are for, as their comments say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `allowscope audit --rules`: the required hosts a capture saw blocked.
    Capture,
    /// `allowscope check-allowlist --rules`: the required catalog entries an allowlist does not
    /// permit (no addresses: nftables has nothing to write).
    Allowlist,
}

impl Subject {
    /// `the required hosts the capture saw blocked`.
    fn hosts(self) -> &'static str {
        match self {
            Subject::Capture => "the required hosts the capture saw blocked",
            Subject::Allowlist => "the required catalog entries the allowlist lacks",
        }
    }
    /// `required host the capture saw blocked`.
    fn every(self) -> &'static str {
        match self {
            Subject::Capture => "required host the capture saw blocked",
            Subject::Allowlist => "required catalog entry the allowlist lacks",
        }
    }
}

/// Writes the rules in `format` for what a capture saw blocked.
pub fn write_rules(out: &mut dyn Write, rules: &Rules, format: RulesFormat) -> io::Result<()> {
    write_rules_for(out, rules, format, Subject::Capture)
}

/// Writes the rules of an audit in `format`; when `failed` inputs failed, the rules say that
/// they cover only what was read (a comment at the top, after a shell script's `#!` line; in
/// the ARM template, `metadata.incomplete`).
pub fn write_rules_of_audit(
    out: &mut dyn Write,
    rules: &Rules,
    format: RulesFormat,
    failed: usize,
) -> io::Result<()> {
    if failed == 0 {
        return write_rules(out, rules, format);
    }
    let note = format!(
        "The audit is incomplete: {failed} input{} failed; these rules cover only what was read",
        if failed == 1 { "" } else { "s" }
    );
    let mut buf = Vec::new();
    write_rules(&mut buf, rules, format)?;
    if format == RulesFormat::AzureFirewallArm {
        let mut doc: serde_json::Value = serde_json::from_slice(&buf).map_err(io::Error::from)?;
        if let Some(m) = doc.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.insert("incomplete".into(), note.into());
        }
        super::pretty::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
        return writeln!(out);
    }
    let text = String::from_utf8_lossy(&buf);
    let (first, rest) = match text.strip_prefix("#!") {
        Some(_) => text.split_at(text.find('\n').map_or(text.len(), |i| i + 1)),
        None => ("", &*text),
    };
    write!(out, "{first}# {note}.\n{rest}")
}

/// Writes the rules in `format`, their comments saying what they are for.
pub fn write_rules_for(
    out: &mut dyn Write,
    rules: &Rules,
    format: RulesFormat,
    subject: Subject,
) -> io::Result<()> {
    let mut out = super::buffered(out);
    match format {
        RulesFormat::AzureFirewall => azure_cli(&mut out, rules, subject)?,
        RulesFormat::AzureFirewallArm => azure_arm(&mut out, rules, subject)?,
        RulesFormat::Squid => squid(&mut out, rules, subject)?,
        RulesFormat::Nftables => nftables(&mut out, rules, subject)?,
        RulesFormat::FqdnList => fqdn_list(&mut out, rules, subject)?,
    }
    out.flush()
}

/// The rules in a few lines for the report's "Rules to add" section, destinations escaped
/// with `esc`: one line per allow rule, then one for the names DNS must fix.
pub fn summary_lines(rules: &Rules, esc: impl Fn(&str) -> String) -> Vec<String> {
    let mut lines: Vec<String> = rules
        .allow
        .iter()
        .map(|r| {
            let dests: Vec<String> = r
                .fqdns
                .iter()
                .chain(&r.service_tags)
                .map(|d| esc(d))
                .collect();
            let n = r.fixes.len();
            format!(
                "allow {}/{} {} ({} rule, fixes {n} finding{})",
                r.proto,
                ports_text(r, ","),
                dests.join(" "),
                match r.kind {
                    RuleKind::Application => "application",
                    RuleKind::Network => "network",
                },
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    let named = |v: &mut dyn Iterator<Item = (&str, Option<crate::audit::Mechanism>)>| {
        v.map(|(n, m)| format!("{} ({})", esc(n), m.map_or("-", |m| m.name())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !rules.dns.is_empty() {
        lines.push(format!(
            "fix DNS, not the firewall: {}",
            named(&mut rules.dns.iter().map(|d| (d.name.as_str(), d.mechanism)))
        ));
    }
    if !rules.client.is_empty() {
        lines.push(format!(
            "resolved but never tried, look at the machine itself (host firewall, proxy settings): {}",
            named(&mut rules.client.iter().map(|d| (d.name.as_str(), d.mechanism)))
        ));
    }
    if !rules.refused.is_empty() {
        lines.push(format!(
            "not written as rules, not plain DNS names (check them by hand): {}",
            named(&mut rules.refused.iter().map(|f| (f.name.as_str(), f.mechanism)))
        ));
    }
    if !rules.inspection.is_empty() {
        lines.push(format!(
            "TLS inspection the client does not trust: exempt these from inspection, or make the client trust the inspecting CA: {}",
            named(&mut rules.inspection.iter().map(|f| (f.name.as_str(), f.mechanism)))
        ));
    }
    lines
}

/// `tcp name:port (mechanism)`, escaped.
fn fix_text(f: &Fix) -> String {
    let port = f.port.map(|p| format!(":{p}")).unwrap_or_default();
    let mech = f
        .mechanism
        .map(|m| format!(" ({})", m.name()))
        .unwrap_or_default();
    format!("{} {}{port}{mech}", f.proto, escape_terminal(&f.name))
}

fn fixes_text(r: &Rule) -> String {
    r.fixes.iter().map(fix_text).collect::<Vec<_>>().join(", ")
}

fn ports_text(r: &Rule, sep: &str) -> String {
    r.ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A rule's name in a firewall: kind, protocol and ports (unique among the rules).
fn rule_name(r: &Rule) -> String {
    let kind = match (r.kind, r.service_tags.is_empty()) {
        (RuleKind::Application, _) => "app",
        (RuleKind::Network, true) => "net",
        (RuleKind::Network, false) => "tag",
    };
    format!("allowscope-{kind}-{}-{}", r.proto, ports_text(r, "-"))
}

/// Comment lines (with `prefix`) on what a set of rules does not cover: failed lookups,
/// refused names, and the advice on unexpected hosts.
fn trailer(out: &mut dyn Write, rules: &Rules, prefix: &str) -> io::Result<()> {
    if !rules.dns.is_empty() {
        writeln!(
            out,
            "{prefix}\n{prefix} Not a firewall rule: these required names did not resolve. Fix DNS (the"
        )?;
        writeln!(
            out,
            "{prefix} resolver, a DNS filter, a private DNS zone), then allow them like the rest:"
        )?;
        for d in &rules.dns {
            writeln!(
                out,
                "{prefix}   {} ({})",
                escape_terminal(&d.name),
                d.mechanism.map_or("-", |m| m.name())
            )?;
        }
    }
    if !rules.client.is_empty() {
        writeln!(
            out,
            "{prefix}\n{prefix} Not a firewall rule: these resolved but were never tried: look at the machine"
        )?;
        writeln!(out, "{prefix} itself (a host firewall, proxy settings):")?;
        for d in &rules.client {
            writeln!(out, "{prefix}   {}", escape_terminal(&d.name))?;
        }
    }
    if !rules.inspection.is_empty() {
        writeln!(
            out,
            "{prefix}\n{prefix} Not an allow rule: a TLS alert ended these handshakes (TLS inspection the client"
        )?;
        writeln!(
            out,
            "{prefix} does not trust): exempt them from inspection, or make the client trust the CA:"
        )?;
        for f in &rules.inspection {
            writeln!(out, "{prefix}   {}", fix_text(f))?;
        }
    }
    if !rules.refused.is_empty() {
        writeln!(
            out,
            "{prefix}\n{prefix} Not written as rules: not plain DNS names (check them by hand):"
        )?;
        for f in &rules.refused {
            writeln!(out, "{prefix}   {}", fix_text(f))?;
        }
    }
    if !rules.deny_advice.is_empty() {
        writeln!(
            out,
            "{prefix}\n{prefix} Advice, not a fix: reached although nothing in the catalog expects them;"
        )?;
        writeln!(out, "{prefix} deny them if they are not wanted:")?;
        for r in &rules.deny_advice {
            let by_address: Vec<&String> = if r.fqdns.is_empty() {
                r.addresses.iter().collect()
            } else {
                Vec::new()
            };
            writeln!(
                out,
                "{prefix}   {}/{} {}",
                r.proto,
                ports_text(r, ","),
                r.fqdns
                    .iter()
                    .chain(by_address)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
    }
    Ok(())
}

fn nothing(out: &mut dyn Write, rules: &Rules, prefix: &str, subject: Subject) -> io::Result<()> {
    if rules.allow.is_empty() {
        match subject {
            Subject::Capture => writeln!(
                out,
                "{prefix} Nothing to add: the capture shows no required host blocked by a rule."
            )?,
            Subject::Allowlist => writeln!(
                out,
                "{prefix} Nothing to add: the allowlist permits every required catalog entry a rule can name."
            )?,
        }
    }
    Ok(())
}

fn fqdn_list(out: &mut dyn Write, rules: &Rules, subject: Subject) -> io::Result<()> {
    writeln!(
        out,
        "# allowscope: destinations to allow so that every {}",
        subject.every()
    )?;
    writeln!(
        out,
        "# gets through. One per line: host-name pattern (a leading *. is any subdomain, not the"
    )?;
    writeln!(
        out,
        "# name itself) or Azure service tag, then protocol/port."
    )?;
    nothing(out, rules, "#", subject)?;
    for r in &rules.allow {
        writeln!(out, "# fixes: {}", fixes_text(r))?;
        for d in r.fqdns.iter().chain(&r.service_tags) {
            for p in &r.ports {
                writeln!(out, "{d} {}/{p}", r.proto)?;
            }
        }
    }
    trailer(out, rules, "#")
}

/// squid's name for a pattern: `*.a.b` is `.a.b` (which also matches `a.b` itself).
fn squid_domain(d: &str) -> String {
    d.strip_prefix('*').map_or(d.to_string(), str::to_string)
}

fn squid(out: &mut dyn Write, rules: &Rules, subject: Subject) -> io::Result<()> {
    writeln!(
        out,
        "# allowscope: squid.conf lines for {}. Put them",
        subject.hosts()
    )?;
    writeln!(
        out,
        "# before the first `http_access deny`. A leading dot matches the domain and every"
    )?;
    writeln!(out, "# subdomain.")?;
    nothing(out, rules, "#", subject)?;
    let app: Vec<&Rule> = rules
        .allow
        .iter()
        .filter(|r| r.kind == RuleKind::Application)
        .collect();
    if !app.is_empty() {
        writeln!(out, "acl allowscope_connect method CONNECT")?;
    }
    for r in &app {
        let name = rule_name(r).replace('-', "_");
        let mut domains: Vec<String> = r.fqdns.iter().map(|d| squid_domain(d)).collect();
        // squid warns about a name its own wildcard already matches.
        let wild: Vec<String> = domains
            .iter()
            .filter(|d| d.starts_with('.'))
            .cloned()
            .collect();
        domains.retain(|d| !wild.iter().any(|w| w != d && (format!(".{d}") == *w)));
        writeln!(out, "# fixes: {}", fixes_text(r))?;
        writeln!(out, "acl {name}_dst dstdomain {}", domains.join(" "))?;
        writeln!(out, "acl {name}_ports port {}", ports_text(r, " "))?;
        if r.ports.contains(&443) {
            // HTTPS through a proxy is a CONNECT tunnel to port 443.
            writeln!(
                out,
                "http_access allow allowscope_connect {name}_dst {name}_ports"
            )?;
        }
        if r.ports.iter().any(|&p| p != 443) {
            writeln!(
                out,
                "http_access allow !allowscope_connect {name}_dst {name}_ports"
            )?;
        }
        if r.websocket {
            writeln!(
                out,
                "# Websockets (Jupyter): over HTTPS they pass the CONNECT tunnel untouched. Plain-HTTP"
            )?;
            writeln!(
                out,
                "# websockets need squid 5 or later to forward `Upgrade: websocket`:"
            )?;
            writeln!(
                out,
                "# http_upgrade_request_protocols websocket allow {name}_dst"
            )?;
        }
    }
    let net: Vec<&Rule> = rules
        .allow
        .iter()
        .filter(|r| r.kind == RuleKind::Network)
        .collect();
    if !net.is_empty() {
        writeln!(
            out,
            "#\n# Not through a proxy (not HTTP): these need a firewall rule (see --rules azure-firewall,"
        )?;
        writeln!(out, "# nftables or fqdn-list):")?;
        for r in net {
            writeln!(
                out,
                "#   {}/{} {}",
                r.proto,
                ports_text(r, ","),
                r.fqdns
                    .iter()
                    .chain(&r.service_tags)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
    }
    trailer(out, rules, "#")
}

fn nftables(out: &mut dyn Write, rules: &Rules, subject: Subject) -> io::Result<()> {
    writeln!(
        out,
        "# allowscope: nftables sets of the addresses the capture saw for the required hosts it saw"
    )?;
    writeln!(
        out,
        "# blocked, and the rules that accept them. WARNING: these addresses change (front doors,"
    )?;
    writeln!(
        out,
        "# CDNs, regional scale units): filter by name where you can (a proxy, Azure Firewall"
    )?;
    writeln!(
        out,
        "# application rules), or refresh the sets from DNS. Assumes table `inet filter` with a"
    )?;
    writeln!(
        out,
        "# chain `forward`: change both to yours. Load with nft -f."
    )?;
    nothing(out, rules, "#", subject)?;
    for r in &rules.allow {
        let name = rule_name(r).replace('-', "_");
        let (v6, v4): (Vec<&String>, Vec<&String>) =
            r.addresses.iter().partition(|a| a.contains(':'));
        writeln!(
            out,
            "# {}; fixes: {}",
            r.fqdns
                .iter()
                .chain(&r.service_tags)
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
            fixes_text(r)
        )?;
        for (family, kind, addrs) in [("ip", "ipv4_addr", &v4), ("ip6", "ipv6_addr", &v6)] {
            if addrs.is_empty() {
                continue;
            }
            let set = format!("{name}_{}", if family == "ip" { "v4" } else { "v6" });
            writeln!(out, "add set inet filter {set} {{ type {kind}; }}")?;
            let list: Vec<&str> = addrs.iter().map(|a| a.as_str()).collect();
            writeln!(
                out,
                "add element inet filter {set} {{ {} }}",
                list.join(", ")
            )?;
            writeln!(
                out,
                "add rule inet filter forward {family} daddr @{set} {} dport {{ {} }} accept",
                r.proto,
                ports_text(r, ", ")
            )?;
        }
    }
    trailer(out, rules, "#")
}

/// The names a network rule carries: Azure Firewall's network rules take no wildcards, so a
/// wildcard pattern is replaced by the names of the findings it covers (none when what it
/// fixes is a wildcard itself: a catalog entry an allowlist lacks).
fn network_fqdns(r: &Rule) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in &r.fqdns {
        match d.strip_prefix('*') {
            Some(suffix) => out.extend(
                r.fixes
                    .iter()
                    .filter(|f| {
                        f.name.ends_with(suffix)
                            && !f.name.starts_with('*')
                            && plain_dns_name(&f.name)
                    })
                    .map(|f| f.name.clone()),
            ),
            None => out.push(d.clone()),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The wildcard patterns of a network rule that no name stands in for (see [`network_fqdns`]):
/// not written as Azure Firewall network rules.
fn unwritable_wildcards(r: &Rule) -> Vec<String> {
    if r.kind != RuleKind::Network || !r.service_tags.is_empty() {
        return Vec::new();
    }
    r.fqdns
        .iter()
        .filter(|d| {
            d.strip_prefix('*').is_some_and(|suffix| {
                !r.fixes.iter().any(|f| {
                    f.name.ends_with(suffix) && !f.name.starts_with('*') && plain_dns_name(&f.name)
                })
            })
        })
        .map(|d| format!("{}/{} {d}", r.proto, ports_text(r, ",")))
        .collect()
}

/// A rule Azure Firewall can take: not a network rule left without names.
fn azure_writable(r: &Rule) -> bool {
    r.kind == RuleKind::Application || !r.service_tags.is_empty() || !network_fqdns(r).is_empty()
}

/// The `az` lines that choose where the rules go.
const AZ_TARGET: &str =
    "--resource-group \"$RG\" --policy-name \"$POLICY\" --rule-collection-group-name \"$RCG\"";

fn az_rule_args(r: &Rule) -> String {
    let quoted = |v: &[String]| {
        v.iter()
            .map(|d| format!("'{d}'"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match r.kind {
        RuleKind::Application => {
            let protocols: Vec<String> = r
                .ports
                .iter()
                .map(|&p| format!("{}={p}", if p == 443 { "Https" } else { "Http" }))
                .collect();
            format!(
                "--rule-type ApplicationRule --source-addresses $SRC --protocols {} --target-fqdns {}",
                protocols.join(" "),
                quoted(&r.fqdns)
            )
        }
        RuleKind::Network => {
            let dest = if r.service_tags.is_empty() {
                format!("--destination-fqdns {}", quoted(&network_fqdns(r)))
            } else {
                format!("--destination-addresses {}", quoted(&r.service_tags))
            };
            format!(
                "--rule-type NetworkRule --source-addresses $SRC --ip-protocols {} {dest} --destination-ports {}",
                r.proto.to_uppercase(),
                ports_text(r, " ")
            )
        }
    }
}

fn azure_cli(out: &mut dyn Write, rules: &Rules, subject: Subject) -> io::Result<()> {
    writeln!(out, "#!/bin/sh")?;
    writeln!(
        out,
        "# allowscope: Azure Firewall policy rules for {}.",
        subject.hosts()
    )?;
    writeln!(
        out,
        "# Set these to yours first (SRC: the address space of the Azure ML compute, e.g. its"
    )?;
    writeln!(
        out,
        "# subnet). Network rules by name need the policy's DNS proxy (DNS settings > Proxy)."
    )?;
    writeln!(
        out,
        "RG='<resource-group>' POLICY='<firewall-policy>' RCG='<rule-collection-group>' SRC='<source-addresses>'"
    )?;
    writeln!(out, "set -e")?;
    nothing(out, rules, "#", subject)?;
    for (kind, collection, priority) in [
        (RuleKind::Network, "allowscope-network", 1000),
        (RuleKind::Application, "allowscope-application", 1100),
    ] {
        for (i, r) in rules
            .allow
            .iter()
            .filter(|r| r.kind == kind && azure_writable(r))
            .enumerate()
        {
            writeln!(out, "# fixes: {}", fixes_text(r))?;
            if i == 0 {
                writeln!(
                    out,
                    "az network firewall policy rule-collection-group collection add-filter-collection \\\n  {AZ_TARGET} \\\n  --name {collection} --collection-priority {priority} --action Allow \\\n  --rule-name {} {}",
                    rule_name(r),
                    az_rule_args(r)
                )?;
            } else {
                writeln!(
                    out,
                    "az network firewall policy rule-collection-group collection rule add \\\n  {AZ_TARGET} \\\n  --collection-name {collection} --name {} {}",
                    rule_name(r),
                    az_rule_args(r)
                )?;
            }
        }
    }
    let wild: Vec<String> = rules.allow.iter().flat_map(unwritable_wildcards).collect();
    if !wild.is_empty() {
        writeln!(
            out,
            "#\n# Not written: Azure Firewall network rules take no wildcard names; allow the names"
        )?;
        writeln!(out, "# these stand for one by one:")?;
        for w in &wild {
            writeln!(out, "#   {w}")?;
        }
    }
    trailer(out, rules, "#")
}

fn azure_arm(out: &mut dyn Write, rules: &Rules, subject: Subject) -> io::Result<()> {
    use serde_json::json;
    let rule_json = |r: &Rule| match r.kind {
        RuleKind::Application => json!({
            "ruleType": "ApplicationRule",
            "name": rule_name(r),
            "description": format!("allowscope: fixes {}", fixes_text(r)),
            "sourceAddresses": "[parameters('sourceAddresses')]",
            "protocols": r.ports.iter().map(|&p| json!({
                "protocolType": if p == 443 { "Https" } else { "Http" },
                "port": p,
            })).collect::<Vec<_>>(),
            "targetFqdns": r.fqdns,
        }),
        RuleKind::Network => {
            let mut v = json!({
                "ruleType": "NetworkRule",
                "name": rule_name(r),
                "description": format!("allowscope: fixes {}", fixes_text(r)),
                "sourceAddresses": "[parameters('sourceAddresses')]",
                "ipProtocols": [r.proto.to_uppercase()],
                "destinationPorts": r.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            });
            if r.service_tags.is_empty() {
                v["destinationFqdns"] = json!(network_fqdns(r));
            } else {
                v["destinationAddresses"] = json!(r.service_tags);
            }
            v
        }
    };
    let mut collections = Vec::new();
    for (kind, name, priority) in [
        (RuleKind::Network, "allowscope-network", 1000),
        (RuleKind::Application, "allowscope-application", 1100),
    ] {
        let rs: Vec<serde_json::Value> = rules
            .allow
            .iter()
            .filter(|r| r.kind == kind && azure_writable(r))
            .map(rule_json)
            .collect();
        if !rs.is_empty() {
            collections.push(json!({
                "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                "name": name,
                "priority": priority,
                "action": { "type": "Allow" },
                "rules": rs,
            }));
        }
    }
    // Not written, said in the metadata when there is any: wildcard network rules, and (for an
    // allowlist) destinations that are not plain names (a placeholder without a value).
    let mut not_written: Vec<String> = rules.allow.iter().flat_map(unwritable_wildcards).collect();
    not_written.extend(rules.refused.iter().map(fix_text));
    let mut doc = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": format!("allowscope: rules for {}. Network rules by name need the policy's DNS proxy.", subject.hosts()),
            "dnsNotFixedByRules": rules.dns.iter().map(|d| json!({
                "name": d.name,
                "mechanism": d.mechanism.map(|m| m.name()),
            })).collect::<Vec<_>>(),
        },
        "parameters": {
            "firewallPolicyName": { "type": "string" },
            "ruleCollectionGroupName": { "type": "string", "defaultValue": "allowscope" },
            "priority": { "type": "int", "defaultValue": 1000 },
            "sourceAddresses": { "type": "array", "metadata": { "description": "The address space of the Azure ML compute (e.g. its subnet)" } },
        },
        "resources": [{
            "type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
            "apiVersion": "2023-09-01",
            "name": "[format('{0}/{1}', parameters('firewallPolicyName'), parameters('ruleCollectionGroupName'))]",
            "properties": {
                "priority": "[parameters('priority')]",
                "ruleCollections": collections,
            },
        }],
    });
    if !not_written.is_empty() {
        doc["metadata"]["notWritten"] = json!({
            "why": "Azure Firewall network rules take no wildcard names, and a placeholder without a value or a name that is not a plain DNS name is not written into a rule: check these by hand",
            "destinations": not_written,
        });
    }
    // What an allow rule does not fix, said when there is any.
    if !rules.client.is_empty() {
        doc["metadata"]["resolvedNeverTried"] = json!({
            "why": "resolved but never tried: look at the machine itself (a host firewall, proxy settings)",
            "names": rules.client.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
        });
    }
    if !rules.inspection.is_empty() {
        doc["metadata"]["tlsInspection"] = json!({
            "why": "a TLS alert ended these handshakes (TLS inspection the client does not trust): exempt them from inspection, or make the client trust the inspecting CA",
            "findings": rules.inspection.iter().map(fix_text).collect::<Vec<_>>(),
        });
    }
    super::pretty::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod summary_tests {
    use super::*;
    use crate::audit::{Mechanism, Verdict};

    /// A blocked name that is not a plain DNS name gets no rule, and the summary says so,
    /// escaped.
    #[test]
    fn refused_names_are_said_escaped() {
        let rules = Rules {
            refused: vec![Fix {
                verdict: Verdict::RequiredBlocked,
                name: "a\u{1b}[31m<b>.blob.core.windows.net".into(),
                proto: "tcp".into(),
                port: Some(443),
                mechanism: Some(Mechanism::Drop),
                entry_id: None,
                flows: 1,
            }],
            ..Rules::default()
        };
        let lines = summary_lines(&rules, |s| escape_terminal(s).into_owned());
        assert_eq!(
            lines,
            ["not written as rules, not plain DNS names (check them by hand): a\\x1b[31m<b>.blob.core.windows.net (drop)"]
        );
    }
}

//! `allowscope audit --rules FORMAT`: the exact rules for the recorded audit captures in every
//! firewall language (golden files in tests/golden/rules/, regenerate with
//! `ALLOWSCOPE_BLESS=1 cargo test --test rules`), the client and firewall views giving the same
//! rules, the Azure Firewall ARM template's documented shape, and the real tools accepting what
//! is written: `squid -k parse` on a configuration that includes the ACL lines, `nft -c` on the
//! nftables lines (in a network namespace of its own).

mod common;

use std::process::Command;

use common::{cap, have, run};

const FORMATS: [(&str, &str); 5] = [
    ("azure-firewall", "az.sh"),
    ("azure-firewall-arm", "arm.json"),
    ("squid", "squid.conf"),
    ("nftables", "nft"),
    ("fqdn-list", "txt"),
];

fn rules(format: &str, capture: &str) -> (i32, String) {
    let path = cap(capture);
    let (code, out, _) = run(&["audit", "-q", "--rules", format, path.to_str().unwrap()]);
    (code, out)
}

#[test]
fn every_format_matches_its_golden_file_and_both_views_agree() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rules");
    for (format, ext) in FORMATS {
        let (code, client) = rules(format, "audit-client.pcap");
        assert_eq!(code, 1, "{format}: required hosts were blocked");
        let (_, firewall) = rules(format, "audit-firewall.pcapng");
        assert!(
            client == firewall,
            "{format}: the firewall's view gives other rules than the client's"
        );
        let golden = dir.join(format!("audit-client.{ext}"));
        if std::env::var_os("ALLOWSCOPE_BLESS").is_some() {
            std::fs::write(&golden, &client).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{golden:?}: {e}"));
        assert!(
            client == want,
            "{format} differs from {golden:?}; diff it against `allowscope audit --rules {format} captures/audit-client.pcap`"
        );
    }
}

#[test]
fn nothing_blocked_nothing_to_add() {
    for (format, _) in FORMATS {
        let (code, out) = rules(format, "ws-client.pcap");
        assert_eq!(code, 0, "{format}");
        if format == "azure-firewall-arm" {
            let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
            let rcs = &doc["resources"][0]["properties"]["ruleCollections"];
            assert_eq!(rcs.as_array().map(Vec::len), Some(0), "{out}");
        } else {
            assert!(out.contains("Nothing to add"), "{format}: {out}");
        }
    }
}

#[test]
fn the_arm_template_has_the_documented_shape() {
    let (_, out) = rules("azure-firewall-arm", "audit-client.pcap");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("ARM JSON parses");
    assert!(doc["$schema"]
        .as_str()
        .unwrap()
        .contains("deploymentTemplate.json"));
    let res = &doc["resources"][0];
    assert_eq!(
        res["type"],
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups"
    );
    assert!(res["apiVersion"].as_str().is_some());
    let mut app = 0;
    let mut net = 0;
    for rc in res["properties"]["ruleCollections"].as_array().unwrap() {
        assert_eq!(
            rc["ruleCollectionType"],
            "FirewallPolicyFilterRuleCollection"
        );
        assert_eq!(rc["action"]["type"], "Allow");
        assert!(rc["priority"]
            .as_u64()
            .is_some_and(|p| (100..=65000).contains(&p)));
        let rules = rc["rules"].as_array().unwrap();
        // A collection holds rules of one type.
        let kind = rules[0]["ruleType"].as_str().unwrap().to_string();
        for r in rules {
            assert_eq!(r["ruleType"], kind.as_str());
            assert!(r["name"].as_str().is_some_and(|n| !n.is_empty()));
            match kind.as_str() {
                "ApplicationRule" => {
                    app += 1;
                    for p in r["protocols"].as_array().unwrap() {
                        assert!(matches!(p["protocolType"].as_str(), Some("Http" | "Https")));
                        assert!(p["port"].as_u64().is_some());
                    }
                    assert!(!r["targetFqdns"].as_array().unwrap().is_empty());
                }
                "NetworkRule" => {
                    net += 1;
                    for p in r["ipProtocols"].as_array().unwrap() {
                        assert!(matches!(p.as_str(), Some("TCP" | "UDP")));
                    }
                    for p in r["destinationPorts"].as_array().unwrap() {
                        assert!(p.as_str().unwrap().parse::<u16>().is_ok());
                    }
                    let fqdns = r["destinationFqdns"].as_array();
                    let addrs = r["destinationAddresses"].as_array();
                    assert!(fqdns.or(addrs).is_some_and(|v| !v.is_empty()));
                    // Network rules take no wildcard names.
                    for f in fqdns.into_iter().flatten() {
                        assert!(!f.as_str().unwrap().contains('*'), "{f}");
                    }
                }
                other => panic!("rule type {other}"),
            }
        }
    }
    assert_eq!((app, net), (2, 2));
}

#[test]
fn squid_parses_the_acl_lines() {
    if !have("squid") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("allowscope-squid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, lines) = rules("squid", "audit-client.pcap");
    // The commented-out websocket line must parse too (squid 5 and later).
    let lines = lines.replace(
        "# http_upgrade_request_protocols",
        "http_upgrade_request_protocols",
    );
    assert!(lines.contains("\nhttp_upgrade_request_protocols websocket allow "));
    std::fs::write(dir.join("rules.conf"), lines).unwrap();
    std::fs::write(
        dir.join("squid.conf"),
        format!(
            "http_port 127.0.0.1:39128\ninclude {}\nhttp_access deny all\n",
            dir.join("rules.conf").display()
        ),
    )
    .unwrap();
    let out = Command::new("squid")
        .args(["-k", "parse", "-f"])
        .arg(dir.join("squid.conf"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("ERROR") && !log.contains("WARNING"), "{log}");
    assert!(log.contains("acl allowscope_app_tcp_443_dst dstdomain .azureml.ms"));
}

#[test]
fn nft_checks_the_nftables_lines() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "the nft check needs root, and CI must not skip it"
        );
        eprintln!("skipped: the nft check needs root");
        return;
    }
    if !have("nft") || !have("unshare") {
        return;
    }
    let (_, lines) = rules("nftables", "audit-client.pcap");
    let file = std::env::temp_dir().join(format!("allowscope-{}.nft", std::process::id()));
    std::fs::write(&file, lines).unwrap();
    // In a network namespace of its own: a table and chain like the ones the header assumes.
    let script = format!(
        "nft add table inet filter && nft add chain inet filter forward '{{ type filter hook forward priority 0; }}' && nft -c -f {}",
        file.display()
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JSON document carries the rules (`rules`), and `merge --rules` of shards writes what
/// `audit --rules` of all their inputs writes.
#[test]
fn json_rules_and_merged_shards() {
    let dir = std::env::temp_dir().join(format!("allowscope-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut shards = Vec::new();
    for c in ["audit-client.pcap", "tcp-outcomes.pcap"] {
        let (_, out, _) = run(&["audit", "-q", "--format", "json", cap(c).to_str().unwrap()]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        if c == "audit-client.pcap" {
            let allow = doc["rules"]["allow"].as_array().unwrap();
            let kinds: Vec<(&str, &str, u64)> = allow
                .iter()
                .map(|r| {
                    (
                        r["kind"].as_str().unwrap(),
                        r["proto"].as_str().unwrap(),
                        r["ports"][0].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                kinds,
                [
                    ("application", "tcp", 80),
                    ("application", "tcp", 443),
                    ("network", "tcp", 445),
                    ("network", "udp", 5831)
                ]
            );
            assert_eq!(doc["rules"]["dns"].as_array().unwrap().len(), 2);
        }
        let path = dir.join(format!("{c}.json"));
        std::fs::write(&path, out).unwrap();
        shards.push(path.to_str().unwrap().to_string());
    }
    for (format, _) in FORMATS {
        let mut args = vec!["merge", "--rules", format];
        args.extend(shards.iter().map(String::as_str));
        let (code, merged, err) = run(&args);
        assert_eq!(code, 1, "{format}: {err}");
        let both = [cap("audit-client.pcap"), cap("tcp-outcomes.pcap")];
        let (_, whole, _) = run(&[
            "audit",
            "-q",
            "--rules",
            format,
            both[0].to_str().unwrap(),
            both[1].to_str().unwrap(),
        ]);
        assert!(
            merged == whole,
            "{format}: merged shards differ from one run"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// When an input failed, the rules say they cover only what was read (exit 2).
#[test]
fn rules_of_an_incomplete_audit_say_so() {
    let good = cap("audit-client.pcap");
    let bad = cap("broken-caplen.pcap");
    for (format, _) in FORMATS {
        let (code, out, _) = run(&[
            "audit",
            "-q",
            "--rules",
            format,
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{format}");
        let note = "The audit is incomplete: 1 input failed; these rules cover only what was read";
        if format == "azure-firewall-arm" {
            let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(doc["metadata"]["incomplete"], note);
        } else if format == "azure-firewall" {
            assert!(out.starts_with(&format!("#!/bin/sh\n# {note}.\n")), "{out}");
        } else {
            assert!(out.starts_with(&format!("# {note}.\n")), "{format}: {out}");
        }
    }
}

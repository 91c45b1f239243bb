//! Integration tests of `--service-tags FILE`: flows known only by their server's address are
//! named by the service tag whose range holds it (`tests/data/service-tags.json`) and judged
//! by the catalog's service-tag rules.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{cap, run};

fn tags_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/service-tags.json")
}

/// Runs `cmd --service-tags tests/data/service-tags.json extra.. capture`.
fn run_tagged(cmd: &str, extra: &[&str], capture: &str) -> (i32, String, String) {
    let tags = tags_file().to_string_lossy().into_owned();
    let capture = cap(capture).to_string_lossy().into_owned();
    let mut args = vec![cmd, "--service-tags", tags.as_str()];
    args.extend_from_slice(extra);
    args.push(&capture);
    run(&args)
}

/// The verdict lines of the text report (`  verdict proto name:port [...], N flows (...)`).
fn verdict_lines(text: &str) -> Vec<&str> {
    let verdicts = [
        "required-",
        "optional-",
        "unexpected-",
        "other-port-",
        "inconclusive",
    ];
    text.lines()
        .filter(|l| {
            l.strip_prefix("  ")
                .is_some_and(|l| verdicts.iter().any(|v| l.starts_with(v)))
        })
        .collect()
}

/// "verdict confidence name proto/port [entry] ips: evidence" for every finding.
fn findings(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}/{} [{}] {}: {}",
                f["verdict"].as_str().unwrap(),
                f["confidence"].as_str().unwrap_or("-"),
                f["name"].as_str().unwrap(),
                f["proto"].as_str().unwrap(),
                f["dst_port"].as_u64().unwrap(),
                f["entry"]["id"].as_str().unwrap_or("-"),
                f["dst_ips"][0].as_str().unwrap(),
                f["evidence"].as_str().unwrap(),
            )
        })
        .collect()
}

#[test]
fn ip_literal_flows_are_named_by_their_tag_and_judged_by_its_rule() {
    // A required tag was blocked, but the flow is named by a guess (its address's tag): it
    // fails a run only with --fail-on any.
    let (code, out, err) = run_tagged("audit", &[], "ip-literal.pcap");
    assert_eq!(code, 0, "a block named by a tag is weak: {err}");
    assert_eq!(
        run_tagged("audit", &["--fail-on", "any"], "ip-literal.pcap").0,
        1
    );
    assert_eq!(
        verdict_lines(&out),
        [
            "  required-blocked tcp AzureMachineLearning.EastUS:443 [required AzureMachineLearning], 1 flow (drop, low confidence)",
            "  other-port-reached tcp AzureMachineLearning.EastUS:80 [required AzureMachineLearning], 1 flow",
            "  required-reached tcp AzureMachineLearning.EastUS:443 [required AzureMachineLearning], 1 flow",
        ]
    );
    assert!(out.contains(
        "1 required-blocked, 0 optional-blocked, 0 unexpected-reached, 0 unexpected-blocked, 1 required-reached"
    ));

    let (code, out, _) = run_tagged("audit", &["--format", "json"], "ip-literal.pcap");
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let rule = "which the catalog's rule tag.azure-machine-learning (AzureMachineLearning, tcp/443, 8787, 18881) lists";
    assert_eq!(
        findings(&doc),
        [
            format!("required-blocked low AzureMachineLearning.EastUS tcp/443 [tag.azure-machine-learning] 198.18.40.12: 3 SYNs to 198.18.40.12:443 over 3.041s, no answer; 198.18.40.12 is in the ranges of the service tag AzureMachineLearning.EastUS, {rule}"),
            format!("required-reached medium AzureMachineLearning.EastUS tcp/443 [tag.azure-machine-learning] 198.18.40.10: 198.18.40.10 is in the ranges of the service tag AzureMachineLearning.EastUS, {rule}"),
            format!("other-port-reached medium AzureMachineLearning.EastUS tcp/80 [tag.azure-machine-learning] 198.18.40.11: 198.18.40.11 is in the ranges of the service tag AzureMachineLearning.EastUS, {rule}, but not for tcp/80"),
        ]
    );
    let entry = &doc["findings"][0]["entry"];
    assert_eq!(entry["pattern"], "AzureMachineLearning");
    assert_eq!(entry["requirement"], "required");
    assert_eq!(entry["scenario"], "core");
    assert_eq!(
        entry["purpose"],
        "Azure Machine Learning (8787, 18881: compute instance)"
    );

    // The flows list: the tag names the flow, the address stays in dst_ip; ICMP is not named.
    let (code, out, _) = run_tagged("flows", &["--format", "json"], "ip-literal.pcap");
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let named: Vec<String> = doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}:{}",
                f["name"].as_str().unwrap_or("-"),
                f["name_source"].as_str().unwrap_or("-"),
                f["dst_ip"].as_str().unwrap(),
                f["dst_port"]
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            "AzureMachineLearning.EastUS ip-tag 198.18.40.10:443",
            "AzureMachineLearning.EastUS ip-tag 198.18.40.11:80",
            "AzureMachineLearning.EastUS ip-tag 198.18.40.12:443",
            "- - 198.18.40.10:26582",
        ]
    );
}

#[test]
fn tcp_outcomes_by_a_regional_tag_on_other_ports() {
    let (code, out, err) = run_tagged("audit", &[], "tcp-outcomes.pcap");
    assert_eq!(code, 0, "{err}");
    // 10.99.2.2 is in Storage, Storage.EastUS (the same /28: the regional tag names it) and
    // AzureCloud.eastus (a /24); flows named by SNI keep their names.
    assert_eq!(
        verdict_lines(&out),
        [
            "  unexpected-reached tcp ok.allowscope.test:443, 1 flow",
            "  unexpected-blocked tcp blocked.allowscope.test:8085, 1 flow (sni-reset)",
            "  unexpected-blocked tcp blocked.allowscope.test:8086, 1 flow (sni-reset)",
            "  other-port-reached tcp Storage.EastUS:8087 [required Storage.<region>], 1 flow",
            "  other-port-blocked tcp Storage.EastUS:8081 [required Storage.<region>], 1 flow (drop)",
            "  other-port-blocked tcp Storage.EastUS:8082 [required Storage.<region>], 1 flow (tcp-reset)",
            "  other-port-blocked tcp Storage.EastUS:8083 [required Storage.<region>], 1 flow (icmp-admin-prohibited)",
            "  other-port-blocked tcp Storage.EastUS:9 [required Storage.<region>], 1 flow (tcp-reset)",
        ]
    );
    assert!(out.contains("      SYN to 10.99.2.2:9 answered by RST (TTL 63); 10.99.2.2 is in the ranges of the service tag Storage.EastUS, which the catalog's rule tag.storage (Storage.<region>, tcp/443) lists, but not for tcp/9\n"));
    // With the region given, Storage.<region> is Storage.westus only: no rule lists the tag.
    let (_, out, _) = run_tagged("audit", &["--region", "westus"], "tcp-outcomes.pcap");
    let lines = verdict_lines(&out);
    assert_eq!(
        lines[..6],
        [
            "  unexpected-reached tcp Storage.EastUS:8087, 1 flow",
            "  unexpected-reached tcp ok.allowscope.test:443, 1 flow",
            "  unexpected-blocked tcp Storage.EastUS:8081, 1 flow (drop)",
            "  unexpected-blocked tcp Storage.EastUS:8082, 1 flow (tcp-reset)",
            "  unexpected-blocked tcp Storage.EastUS:8083, 1 flow (icmp-admin-prohibited)",
            "  unexpected-blocked tcp Storage.EastUS:9, 1 flow (tcp-reset)",
        ]
    );
    let (_, out, _) = run_tagged(
        "audit",
        &["--region", "westus", "--format", "json"],
        "tcp-outcomes.pcap",
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        findings(&doc)[0],
        "unexpected-reached medium Storage.EastUS tcp/8087 [-] 10.99.2.2: 10.99.2.2 is in the ranges of the service tag Storage.EastUS, which no service-tag rule of the catalog lists"
    );
}

#[test]
fn without_the_flag_nothing_changes_and_a_bad_file_is_exit_2() {
    let plain = run(&[
        "flows",
        "--format",
        "json",
        cap("ip-literal.pcap").to_str().unwrap(),
    ]);
    assert!(plain.1.contains("\"name_source\": \"address\""));
    assert!(!plain.1.contains("ip-tag"));

    let dir = std::env::temp_dir().join(format!("allowscope-tags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("tags.json");
    for (text, why) in [
        ("{\"values\": [{\"name\": \"Storage\", \"properties\": {\"addressPrefixes\": [\"10.0.0.1/8\"]}}]}", "Storage: bad address prefix \"10.0.0.1/8\": host bits are set"),
        ("{\"cloud\": \"Public\"}", "not a service-tags file"),
    ] {
        std::fs::write(&bad, text).unwrap();
        for cmd in ["audit", "flows"] {
            let (code, out, err) = run(&[
                cmd,
                "--service-tags",
                bad.to_str().unwrap(),
                cap("ip-literal.pcap").to_str().unwrap(),
            ]);
            assert_eq!(code, 2, "{cmd}: {err}");
            assert!(out.is_empty());
            assert!(err.starts_with("error: --service-tags "), "{err}");
            assert!(err.contains("tags.json: ") && err.contains(why), "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

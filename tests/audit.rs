//! Integration tests of `allowscope audit` on the recorded captures: verdicts, mechanisms,
//! evidence, coverage, report formats and exit codes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{cap, run};

fn audit_json(files: &[&str], extra: &[&str]) -> (i32, Value) {
    let paths: Vec<String> = files
        .iter()
        .map(|f| cap(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["audit", "--format", "json"];
    args.extend_from_slice(extra);
    args.extend(paths.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}")),
    )
}

/// "verdict mechanism name proto/port flows" for every finding, in report order.
fn findings(doc: &Value, key: &str) -> Vec<String> {
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}/{} x{}{}",
                f["verdict"].as_str().unwrap(),
                f["mechanism"].as_str().unwrap_or("-"),
                f["name"].as_str().unwrap(),
                f["proto"].as_str().unwrap(),
                f["dst_port"]
                    .as_u64()
                    .map_or("-".to_string(), |p| p.to_string()),
                f["flows"]
                    .as_u64()
                    .unwrap()
                    .max(f["lookups"].as_u64().unwrap()),
                f["entry"]["id"]
                    .as_str()
                    .map(|i| format!(" [{i}]"))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn tls_failures_of_required_hosts_are_findings() {
    let (code, doc) = audit_json(&["tls-facts.pcap"], &[]);
    assert_eq!(code, 1, "required hosts were blocked");
    assert_eq!(doc["schema_version"], 3);
    assert_eq!(
        findings(&doc, "findings"),
        vec![
            "required-blocked tls-alert ml.azure.com tcp/443 x1 [public.workspace.ml-azure-com]",
            "required-blocked tls-alert login.microsoftonline.com tcp/443 x1 [public.general.login-microsoftonline-com]",
            "unexpected-reached - ok.allowscope.test tcp/443 x1",
            "unexpected-reached - big-hello.instances.allowscope.test tcp/443 x1",
            "unexpected-blocked tls-alert tls13only.allowscope.test tcp/443 x1",
            "unexpected-blocked sni-reset blocked.allowscope.test tcp/443 x1",
            "required-reached - login.microsoftonline.com tcp/443 x1 [public.general.login-microsoftonline-com]",
            "required-reached - ml.azure.com tcp/443 x1 [public.workspace.ml-azure-com]",
        ]
    );
    let f = &doc["findings"][0];
    assert_eq!(f["confidence"], "medium");
    assert_eq!(
        f["evidence"],
        "client sent TLS alert unknown_ca before the handshake finished (10.99.2.12:443); certificate issued by CN=allowscope Test Root CA,O=allowscope test"
    );
    assert_eq!(doc["dst_ips"], Value::Null);
    assert_eq!(f["dst_ips"], serde_json::json!(["10.99.2.12"]));
    // coverage: the two exercised entries and the rest not exercised
    let cov = doc["coverage"].as_array().unwrap();
    let ml = cov
        .iter()
        .find(|c| c["entry"]["id"] == "public.workspace.ml-azure-com")
        .unwrap();
    assert_eq!(ml["exercised"], true);
    assert_eq!(
        ml["verdicts"],
        serde_json::json!({"dns-resolved": 1, "required-blocked": 1, "required-reached": 1})
    );
    let mgmt = cov
        .iter()
        .find(|c| c["entry"]["id"] == "public.general.management-azure-com")
        .unwrap();
    assert_eq!(mgmt["exercised"], false);
}

#[test]
fn proxy_denials_and_470_and_tunnelled_names() {
    let (code, doc) = audit_json(&["proxy.pcap"], &[]);
    assert_eq!(code, 0, "no required host blocked");
    assert_eq!(
        findings(&doc, "findings"),
        vec![
            "unexpected-reached - ok.allowscope.test tcp/443 x1",
            "unexpected-reached - ok.allowscope.test tcp/8080 x1",
            "unexpected-reached - ws.allowscope.test tcp/80 x1",
            "unexpected-blocked proxy-denied ok.allowscope.test tcp/8787 x1",
            "unexpected-blocked http-470 denied.allowscope.test tcp/80 x1",
            // through the authenticating proxy: judged by the tunnelled name and port
            "required-reached - ml.azure.com tcp/443 x1 [public.workspace.ml-azure-com]",
        ]
    );
    let denied = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["mechanism"] == "proxy-denied")
        .unwrap();
    assert_eq!(
        denied["evidence"],
        "proxy 10.99.1.1:3128 answered CONNECT ok.allowscope.test:8787 with 403, X-Squid-Error: ERR_ACCESS_DENIED 0"
    );
    // --fail-on unexpected-reached turns allowed-but-unexpected into exit code 1
    let (code, _) = audit_json(&["proxy.pcap"], &["--fail-on", "unexpected-reached"]);
    assert_eq!(code, 1);
}

#[test]
fn dns_failures_and_private_endpoint_chains() {
    let (code, doc) = audit_json(&["dns-facts.pcap"], &[]);
    assert_eq!(
        code, 0,
        "a low-confidence local-block alone does not fail the run"
    );
    // ws1.workspace.eastus.api.azureml.ms resolved, and nothing connected to it afterwards.
    assert_eq!(
        findings(&doc, "dns_failures"),
        vec!["required-blocked local-block ws1.workspace.eastus.api.azureml.ms dns/- x1 [public.workspace.azureml-ms]"]
    );
    assert_eq!(doc["dns_failures"][0]["confidence"], "low");
    let (code, _) = audit_json(&["dns-facts.pcap"], &["--fail-on", "any"]);
    assert_eq!(code, 1);
    // Only `any` counts it: `unexpected-reached` is about what got through.
    let (code, _) = audit_json(&["dns-facts.pcap"], &["--fail-on", "unexpected-reached"]);
    assert_eq!(code, 0, "local-block with --fail-on unexpected-reached");
    let pe = &doc["private_endpoint_dns"];
    // The A lookup ends at a public address; the AAAA lookup of the same chain has none.
    assert_eq!(pe.as_array().unwrap().len(), 1);
    assert_eq!(pe[0]["name"], "ws1.workspace.eastus.api.azureml.ms");
    assert_eq!(
        pe[0]["chain"],
        serde_json::json!([
            "ws1.workspace.eastus.api.azureml.ms",
            "ws1.workspace.eastus.privatelink.api.azureml.ms",
            "eastus.api.azureml.ms"
        ])
    );
    assert_eq!(pe[0]["addresses"], serde_json::json!(["198.18.10.4"]));
    let cov = doc["coverage"].as_array().unwrap();
    let api = cov
        .iter()
        .find(|c| c["entry"]["id"] == "public.workspace.azureml-ms")
        .unwrap();
    assert_eq!(
        api["exercised"], true,
        "a lookup of a catalog name exercises its entry"
    );
}

#[test]
fn tcp_outcomes_without_names_are_known_by_address() {
    // No SNI, Host or DNS for most flows: they are reported by address and port (an IP
    // literal is a destination too), never as a bare count of unattributed flows.
    let (code, doc) = audit_json(&["tcp-outcomes.pcap"], &[]);
    assert_eq!(code, 0);
    assert_eq!(doc["counts"].get("unattributed"), None);
    assert_eq!(
        findings(&doc, "findings"),
        vec![
            "unexpected-reached - 10.99.2.2 tcp/8087 x1",
            "unexpected-reached - ok.allowscope.test tcp/443 x1",
            "unexpected-blocked drop 10.99.2.2 tcp/8081 x1",
            "unexpected-blocked tcp-reset 10.99.2.2 tcp/8082 x1",
            "unexpected-blocked icmp-admin-prohibited 10.99.2.2 tcp/8083 x1",
            "unexpected-blocked tcp-reset 10.99.2.2 tcp/9 x1",
            "unexpected-blocked sni-reset blocked.allowscope.test tcp/8085 x1",
            "unexpected-blocked sni-reset blocked.allowscope.test tcp/8086 x1",
            "inconclusive - 10.99.2.2 tcp/8084 x1",
        ]
    );
}

#[test]
fn text_markdown_ndjson_and_exit_codes() {
    let p = cap("tls-facts.pcap");
    let p = p.to_str().unwrap();
    let (code, out, _) = run(&["audit", p]);
    assert_eq!(code, 1);
    for section in [
        "Required (or optional) but blocked",
        "Allowed but unexpected",
        "Required but not exercised",
        "OK",
    ] {
        assert!(out.contains(section), "text report lacks {section}");
    }
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("2 required-blocked,"), "{last}");
    let (_, md, _) = run(&["audit", "--format", "markdown", p]);
    assert!(md.starts_with("# allowscope audit"));
    assert!(md.contains("| required-blocked | ml.azure.com | tcp/443 | `ml.azure.com` | tls-alert | medium | 1 |"), "{md}");
    let (_, nd, _) = run(&["audit", "--format", "ndjson", p]);
    let nd = common::flow_lines(&nd);
    let rows: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(rows
        .iter()
        .all(|r| r["verdict"].is_string() && r["outcome"].is_string()));
    let (code, _, _) = run(&["audit", "--fail-on", "never", p]);
    assert_eq!(code, 0);
    let (code, _, err) = run(&["audit", "--scenario", "no-such-scenario", p]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["audit", cap("broken-magic.pcap").to_str().unwrap()]);
    assert_eq!(code, 2);
}

/// Evidence for every failed flow, named or not: the firewall's RST (TTL 64) is told from the
/// server kernel's own RST (TTL 63, like the server's other answers).
#[test]
fn evidence_sentences_and_middlebox_rst() {
    let p = cap("tcp-outcomes.pcap");
    let (_, nd, _) = run(&["audit", "-q", "--format", "ndjson", p.to_str().unwrap()]);
    let nd = common::flow_lines(&nd);
    let rows: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ev = |port: u64| {
        let r = rows.iter().find(|r| r["dst_port"] == port).unwrap();
        format!(
            "{} | {}",
            r["mechanism"].as_str().unwrap_or("-"),
            r["evidence"].as_str().unwrap()
        )
    };
    assert_eq!(
        ev(8081),
        "drop | 3 SYNs to 10.99.2.2:8081 over 3.028s, no answer"
    );
    assert_eq!(
        ev(8082),
        "tcp-reset | SYN to 10.99.2.2:8082 answered by RST (TTL 64); made by a middlebox: its TTL 64 differs from the server's own packets (63), IP ID 0, window 0"
    );
    assert_eq!(
        ev(9),
        "tcp-reset | SYN to 10.99.2.2:9 answered by RST (TTL 63)"
    );
    assert_eq!(ev(8083), "icmp-admin-prohibited | ICMP type 3 code 13 from 10.99.1.1 (a hop on the way) for 10.99.2.2:8083");
    assert_eq!(ev(8085), "sni-reset | handshake to 10.99.2.2:8085 completed, ClientHello sent, then FIN with no ServerHello");
    assert_eq!(
        ev(8084),
        "- | ",
        "a handshake without data is inconclusive, not blocked"
    );
}

/// Every flow of the audited-firewall scenario (captures/README.md, "audit-client.pcap"): the
/// exact verdict, mechanism, name and catalog entry, the same from the client side (pcap) and
/// from both firewall interfaces (pcapng).
const AUDIT_FLOWS: &[&str] = &[
    "udp :56101 > 53 unattributed - - -",
    "tcp :56001 > 443 required-reached - login.microsoftonline.com public.general.login-microsoftonline-com",
    "udp :56102 > 53 unattributed - - -",
    "tcp :56002 > 443 required-reached - management.azure.com public.general.management-azure-com",
    "udp :56103 > 53 unattributed - - -",
    "tcp :56003 > 443 required-reached - ml.azure.com public.workspace.ml-azure-com",
    "udp :56104 > 53 unattributed - - -",
    "tcp :56004 > 443 required-reached - eastus.api.azureml.ms public.workspace.azureml-ms",
    "udp :56105 > 53 unattributed - - -",
    "tcp :56005 > 443 required-reached - mystorage.blob.core.windows.net public.notebook.storage-blob-core-windows-net",
    "udp :56106 > 53 unattributed - - -",
    "tcp :56006 > 443 required-blocked drop ws1.workspace.eastus.api.azureml.ms public.workspace.azureml-ms",
    "udp :56107 > 53 unattributed - - -",
    "tcp :56007 > 443 required-blocked tcp-reset mcr.microsoft.com any.images.mcr-microsoft-com",
    "udp :56108 > 53 unattributed - - -",
    "tcp :56008 > 443 unexpected-blocked tcp-reset myacr.azurecr.io -",
    "udp :56109 > 53 unattributed - - -",
    "tcp :56009 > 445 required-blocked icmp-admin-prohibited mystorage.file.core.windows.net public.notebook.storage-file-core-windows-net",
    "udp :56110 > 53 unattributed - - -",
    "tcp :56010 > 443 required-blocked sni-reset ci1.eastus.instances.azureml.ms public.compute.instances-azureml-ms",
    "udp :56111 > 53 unattributed - - -",
    "udp :56112 > 53 unattributed - - -",
    "tcp :56013 > 3130 other-port-blocked proxy-denied ci1.eastus.instances.azureml.ms public.compute.instances-azureml-ms",
    "tcp :56014 > 3130 required-blocked proxy-denied mystorage.dfs.core.windows.net public.notebook.storage-dfs-core-windows-net",
    "udp :56115 > 53 unattributed - - -",
    "tcp :56015 > 80 required-blocked http-470 login.microsoftonline.com public.general.login-microsoftonline-com",
    "udp :56116 > 53 unattributed - - -",
    "udp :56016 > 5831 required-blocked udp-drop eastus.tundra.azureml.ms public.compute.region-tundra-azureml-ms",
    "udp :56117 > 53 unattributed - - -",
    "tcp :56017 > 443 unexpected-reached - example.allowscope.test -",
    "udp :56118 > 53 unattributed - - -",
    "tcp :56018 > 443 unexpected-reached - updates.allowscope.test -",
    "udp :56119 > 53 unattributed - - -",
    "tcp :56019 > 80 unexpected-reached - www.allowscope.test -",
    "udp :56120 > 53 unattributed - - -",
    "tcp :56020 > 443 unexpected-blocked drop telemetry.allowscope.test -",
];

fn verdict_lines(file: &str) -> Vec<String> {
    let p = cap(file);
    let (code, nd, err) = run(&["audit", "-q", "--format", "ndjson", p.to_str().unwrap()]);
    let nd = common::flow_lines(&nd);
    assert_eq!(code, 1, "{err}");
    nd.lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            format!(
                "{} :{} > {} {} {} {} {}",
                r["proto"].as_str().unwrap(),
                r["src_port"],
                r["dst_port"],
                r["verdict"].as_str().unwrap(),
                r["mechanism"].as_str().unwrap_or("-"),
                r["name"].as_str().unwrap_or("-"),
                r["entry_id"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

#[test]
fn audited_firewall_every_flow_client_and_firewall_side() {
    for file in ["audit-client.pcap", "audit-firewall.pcapng"] {
        let got = verdict_lines(file);
        let want: Vec<String> = AUDIT_FLOWS.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{file}");
        // Nothing the far end answered is ever called blocked.
        assert!(!got
            .iter()
            .any(|l| l.contains("reached") && l.contains("blocked")));
    }
    let (_, doc) = audit_json(&["audit-client.pcap"], &[]);
    assert_eq!(
        findings(&doc, "dns_failures"),
        vec![
            "required-blocked dns-nxdomain graph.windows.net dns/- x1 [public.compute.graph-windows-net]",
            "required-blocked dns-sinkhole graph.microsoft.com dns/- x1 [public.notebook.graph-microsoft-com]",
        ]
    );
    assert_eq!(
        doc["placeholders_seen"],
        serde_json::json!({"region": ["eastus"], "storage": ["mystorage"]})
    );
    assert_eq!(
        doc["private_endpoint_dns"][0]["name"],
        "ws1.workspace.eastus.api.azureml.ms"
    );
    // With the custom-images scenario the registry becomes required: its reset is a finding.
    let (_, doc) = audit_json(&["audit-client.pcap"], &["--scenario", "custom-images"]);
    assert!(findings(&doc, "findings")
        .iter()
        .any(|f| f.starts_with("required-blocked tcp-reset myacr.azurecr.io tcp/443")));
}

/// Private-endpoint DNS: only a chain through a catalog zone counts. Azure AD's public chain
/// through `ak.privatelink.msidentity.com` is not a finding; the workspace name asked three
/// times through `privatelink.api.azureml.ms` to a public address is one row of 3 lookups.
#[test]
fn private_endpoint_rows_need_a_catalog_zone_and_count_lookups() {
    let (code, doc) = audit_json(&["privatelink-public.pcap"], &[]);
    assert_eq!(code, 0, "nothing blocked");
    let pe = doc["private_endpoint_dns"].as_array().unwrap();
    assert_eq!(pe.len(), 1, "{pe:?}");
    let p = &pe[0];
    assert_eq!(p["name"], "ws1.workspace.eastus.api.azureml.ms");
    assert_eq!(p["lookups"], 3);
    assert_eq!(p["zone"], "privatelink.api.azureml.ms");
    assert_eq!(p["service"], "Azure Machine Learning workspace API");
    assert_eq!(
        p["chain"],
        serde_json::json!([
            "ws1.workspace.eastus.api.azureml.ms",
            "ws1.workspace.eastus.privatelink.api.azureml.ms"
        ])
    );
    assert_eq!(p["addresses"], serde_json::json!(["198.18.60.20"]));
    assert_eq!(p["file"], cap("privatelink-public.pcap").to_str().unwrap());
    let evidence = p["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("privatelink.api.azureml.ms (the privatelink zone of Azure Machine Learning workspace API)"),
        "{evidence}"
    );
    // The first of the three lookups gives the time.
    let (_, dns, _) = run(&[
        "dns",
        "--format",
        "json",
        cap("privatelink-public.pcap").to_str().unwrap(),
    ]);
    let dns: Value = serde_json::from_str(&dns).unwrap();
    let first = dns["lookups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["qname"] == "ws1.workspace.eastus.api.azureml.ms")
        .map(|l| l["time"].as_str().unwrap())
        .min()
        .unwrap();
    assert_eq!(p["first_seen"], first);
    // Text and Markdown say how many lookups (one line per name); the Azure AD name is in
    // neither.
    for format in ["text", "markdown"] {
        let (_, out, _) = run(&[
            "audit",
            "--format",
            format,
            cap("privatelink-public.pcap").to_str().unwrap(),
        ]);
        let rows: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("privatelink zone of"))
            .collect();
        assert_eq!(rows.len(), 1, "{format}: {out}");
        assert!(
            rows[0].contains(
                "3 lookups in 1 chain passes through privatelink.api.azureml.ms, the privatelink zone of Azure Machine Learning workspace API, and ends at public address 198.18.60.20"
            ),
            "{format}: {}",
            rows[0]
        );
        assert!(!out.contains("msidentity"), "{format}: {out}");
    }
    // A zone is checked only for the cloud in scope: the public zone is not the gov cloud's.
    let (_, doc) = audit_json(&["privatelink-public.pcap"], &["--cloud", "gov"]);
    assert_eq!(doc["private_endpoint_dns"], serde_json::json!([]));
    // The client-side capture keeps its one row, of one lookup.
    let (_, doc) = audit_json(&["audit-client.pcap"], &[]);
    let pe = doc["private_endpoint_dns"].as_array().unwrap();
    assert_eq!(pe.len(), 1);
    assert_eq!(pe[0]["name"], "ws1.workspace.eastus.api.azureml.ms");
    assert_eq!(pe[0]["lookups"], 1);
    assert_eq!(pe[0]["zone"], "privatelink.api.azureml.ms");
}

/// Entries of the same pattern, protocol and ports share their credit: the workspace's storage
/// account reached once exercises both of its entries (compute and integrated notebook).
#[test]
fn entries_of_one_pattern_share_coverage_credit() {
    let (_, doc) = audit_json(&["audit-client.pcap"], &[]);
    let rows: Vec<&Value> = doc["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entry"]["pattern"] == "<storage>.blob.core.windows.net")
        .collect();
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(rows.iter().all(|c| c["exercised"] == true), "{rows:?}");
    let own: Vec<&&Value> = rows
        .iter()
        .filter(|c| c["credited_via"].is_null())
        .collect();
    assert_eq!(own.len(), 1, "{rows:?}");
    let own_id = own[0]["entry"]["id"].clone();
    for c in rows.iter().filter(|c| !c["credited_via"].is_null()) {
        assert_eq!(c["credited_via"], own_id);
        assert_eq!(c["verdicts"], serde_json::json!({}));
    }
    for format in ["text", "markdown"] {
        let (_, out, _) = run(&[
            "audit",
            "--format",
            format,
            cap("audit-client.pcap").to_str().unwrap(),
        ]);
        let missing = out
            .split_once("ot exercised")
            .map(|(_, rest)| rest.trim_start_matches('\n'))
            .unwrap_or_default();
        let missing = missing.split("\n\n").next().unwrap_or_default();
        assert!(
            !missing.contains("<storage>.blob.core.windows.net"),
            "{format}: {missing}"
        );
    }
}

/// Golden files pin the whole JSON and Markdown reports of the client-side capture. After an
/// intended change, regenerate with `ALLOWSCOPE_BLESS=1 cargo test --test audit golden`.
#[test]
fn golden_json_and_markdown() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (format, golden) in [
        ("json", "tests/golden/audit-client.json"),
        ("markdown", "tests/golden/audit-client.md"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .current_dir(dir)
            .args([
                "audit",
                "-q",
                "--format",
                format,
                "captures/audit-client.pcap",
            ])
            .output()
            .unwrap();
        let got = common::stable(&String::from_utf8(out.stdout).unwrap());
        let path = dir.join(golden);
        if std::env::var_os("ALLOWSCOPE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{golden}: {e}"));
        assert!(got == want, "{golden} differs; diff it against the output of `allowscope audit --format {format} captures/audit-client.pcap`");
    }
}

/// A firewall-side capture holds each DNS datagram twice (one copy per interface): the lookups
/// and DNS findings count each once, like the client side.
#[test]
fn firewall_side_dns_copies_count_once() {
    let (_, client) = audit_json(&["audit-client.pcap"], &[]);
    let (_, fw) = audit_json(&["audit-firewall.pcapng"], &[]);
    assert_eq!(
        findings(&fw, "dns_failures"),
        findings(&client, "dns_failures")
    );
    let (_, nd, _) = run(&[
        "dns",
        "--format",
        "ndjson",
        cap("audit-firewall.pcapng").to_str().unwrap(),
    ]);
    assert_eq!(nd.lines().count(), 18);
}

/// Several inputs give one merged report; each finding keeps the files it came from.
#[test]
fn several_inputs_merge_with_files_kept() {
    let (code, doc) = audit_json(&["audit-client.pcap", "tls-facts.pcap"], &[]);
    assert_eq!(code, 1);
    assert_eq!(doc["inputs"].as_array().unwrap().len(), 2);
    let login = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "required-reached" && f["name"] == "login.microsoftonline.com")
        .unwrap();
    assert_eq!(login["flows"], 2, "one reached flow in each file");
    let files: Vec<&str> = login["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files[0].ends_with("audit-client.pcap") && files[1].ends_with("tls-facts.pcap"),
        "{files:?}"
    );
}

/// One thread or several: the same audit, byte for byte, over every capture in the project.
#[test]
fn same_output_for_one_and_many_threads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = |threads: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .current_dir(dir)
            .args([
                "audit",
                "-q",
                "--format",
                "json",
                "--threads",
                threads,
                "captures",
            ])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "the broken captures make it exit 2"
        );
        o.stdout
    };
    let one = out("1");
    assert!(one.len() > 10_000);
    assert!(one == out("4"), "--threads 1 and --threads 4 differ");
}

/// `merge` of the audits of two halves equals the audit of the whole.
#[test]
fn merge_of_halves_equals_the_whole() {
    let dir = std::env::temp_dir().join(format!("allowscope-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, files: &[&str]| {
        let (_, doc) = audit_json(files, &[]);
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(&doc).unwrap()).unwrap();
        (p, doc)
    };
    let (_, whole) = write(
        "whole.json",
        &[
            "audit-client.pcap",
            "tls-facts.pcap",
            "ws-client.pcap",
            "proxy.pcap",
            "dns-facts.pcap",
            "ws-firewall.pcapng",
        ],
    );
    // The websocket instances of ws-*.pcap* have connections in both halves: their diagnosis
    // is recomputed from all of them.
    let (a, _) = write(
        "a.json",
        &["audit-client.pcap", "tls-facts.pcap", "ws-client.pcap"],
    );
    let (b, _) = write(
        "b.json",
        &["proxy.pcap", "dns-facts.pcap", "ws-firewall.pcapng"],
    );
    let (code, out, err) = run(&["merge", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 1, "required hosts were blocked: {err}");
    let mut merged: Value = serde_json::from_str(&out).unwrap();
    // What produced them differs: the merge names its two sources, each an audit as the
    // whole's (but for its inputs).
    assert_eq!(merged["provenance"]["command"], "merge");
    let sources = merged["provenance"]["sources"].as_array().unwrap().clone();
    assert_eq!(sources.len(), 2);
    assert!(sources.iter().all(|p| p == &whole["provenance"]));
    merged["provenance"] = whole["provenance"].clone();
    assert_eq!(merged, whole);
    // Not an audit document, or another schema version: exit 2 with the file named.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let (code, _, err) = run(&["merge", a.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.json") && err.contains("not an allowscope audit"),
        "{err}"
    );
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    other["schema_version"] = Value::from(99);
    let v99 = dir.join("v99.json");
    std::fs::write(&v99, other.to_string()).unwrap();
    let (code, _, err) = run(&["merge", a.to_str().unwrap(), v99.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The coverage matrix (catalog entry x file) in JSON and Markdown, and the per-file counts.
#[test]
fn coverage_matrix_and_per_file() {
    let (_, doc) = audit_json(&["audit-client.pcap", "tls-facts.pcap"], &["--per-file"]);
    let cov = doc["coverage"].as_array().unwrap();
    let ml = cov
        .iter()
        .find(|c| c["entry"]["id"] == "public.workspace.ml-azure-com")
        .unwrap();
    let by_file = ml["by_file"].as_object().unwrap();
    let row = |suffix: &str| {
        by_file
            .iter()
            .find(|(f, _)| f.ends_with(suffix))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        row("audit-client.pcap"),
        serde_json::json!({"dns-resolved": 1, "required-reached": 1})
    );
    assert_eq!(
        row("tls-facts.pcap"),
        serde_json::json!({"dns-resolved": 1, "required-blocked": 1, "required-reached": 1})
    );
    let pf = doc["per_file"].as_array().unwrap();
    assert_eq!(pf.len(), 2);
    assert_eq!(pf[1]["counts"]["required-blocked"], 2);
    let a = cap("audit-client.pcap");
    let t = cap("tls-facts.pcap");
    let (_, md, _) = run(&[
        "audit",
        "-q",
        "--format",
        "markdown",
        a.to_str().unwrap(),
        t.to_str().unwrap(),
    ]);
    let line = md
        .lines()
        .find(|l| l.starts_with("| `ml.azure.com` (required) |"))
        .unwrap();
    assert!(line.ends_with("| reached | blocked+reached |"), "{line}");
}

/// `allowscope ws`: websocket-capable flows and a diagnosis per instance. A healthy websocket
/// (101, data, clean close) is never reported as broken.
#[test]
fn websocket_view() {
    let p = cap("proxy.pcap");
    let a = cap("audit-client.pcap");
    let (code, out, err) = run(&[
        "ws",
        "-q",
        "--format",
        "json",
        p.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let conns: Vec<String> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["name"].as_str().unwrap(),
                c["transport"].as_str().unwrap(),
                c["outcome"].as_str().unwrap(),
                c["diagnosis"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        conns,
        vec![
            "ws.allowscope.test http established healthy",
            "eastus.api.azureml.ms tls established healthy",
            "ws1.workspace.eastus.api.azureml.ms - no-answer never-established",
            "ci1.eastus.instances.azureml.ms tls reset-after-hello never-established",
            "ci1.eastus.instances.azureml.ms proxy proxy-denied never-established",
        ]
    );
    let ws = &doc["connections"][0];
    assert_eq!(ws["upgrade_status"], 101);
    let inst: Vec<(String, String)> = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(inst.contains(&("ws.allowscope.test".into(), "healthy".into())));
    assert!(inst.contains(&(
        "ci1.eastus.instances.azureml.ms".into(),
        "never-established".into()
    )));
}

/// The report leads with what matters (issue 18): a headline first, websocket problems right
/// after the blocked findings and the rules to add, private-endpoint rows one per name, "not
/// exercised" folded to a count unless --show-unexercised (the JSON always lists them),
/// unattributed flows by kind; Markdown has every section the text has.
#[test]
fn the_report_leads_with_what_matters() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let dir = dir.to_str().unwrap();
    let (_, text, _) = run(&["audit", "-q", "--fail-on", "never", dir]);
    // The directory holds damaged captures: the incomplete audit is said first (its failed
    // inputs listed), the headline right after.
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("The audit is incomplete: 2 inputs failed"));
    let first = lines.find(|l| l.starts_with("allowscope audit:")).unwrap();
    assert!(
        first.starts_with("allowscope audit: 12 required hosts blocked (38 flows, 5 failed lookups), 9 websocket instances broken, 13 hosts that nothing expects reached (48 flows); "),
        "{first}"
    );
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in the report"))
    };
    assert!(at("Required (or optional) but blocked") < at("Rules to add"));
    assert!(at("Rules to add") < at("Websocket problems"));
    assert!(at("Websocket problems") < at("Allowed but unexpected"));
    assert!(text.contains("  healthy: ci-ok.westeurope.instances.azureml.ms, "));
    let pe: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("privatelink zone of"))
        .collect();
    assert_eq!(pe.len(), 1, "{pe:?}");
    assert!(
        pe[0].contains(": 6 lookups in 3 chains pass through"),
        "{}",
        pe[0]
    );
    assert!(text.contains(
        "\nRequired but not exercised: 13 of 27 entries (list them with --show-unexercised; the JSON always has them)\n"
    ));
    assert!(!text.contains("*.batch.azure.com"));
    assert!(text.contains(
        "\nUnattributed flows (no name to judge them by): 128 DNS, 3 CONNECT to a target that is not host:port\n"
    ));
    let (_, shown, _) = run(&[
        "audit",
        "-q",
        "--fail-on",
        "never",
        "--show-unexercised",
        dir,
    ]);
    assert!(shown.contains("Required but not exercised: 13 of 27 entries\n  *.azureml.net ("));
    assert!(shown.contains("\n  *.batch.azure.com (public.compute.batch-azure-com"));
    let (_, doc) = audit_json(&[], &["-q", "--fail-on", "never", dir]);
    let unexercised = doc["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["exercised"] == false && c["entry"]["requirement"] == "required")
        .count();
    assert_eq!(unexercised, 13);
    // Markdown: every section of the text report.
    let (_, md, _) = run(&[
        "audit",
        "-q",
        "--fail-on",
        "never",
        "--format",
        "markdown",
        dir,
    ]);
    for section in [
        "Undecoded frames",
        "Required but blocked",
        "Rules to add",
        "Websockets",
        "Allowed but unexpected",
        "Blocked, not in the catalog",
        "Catalog hosts on a protocol or port their entry does not list",
        "Private endpoint DNS not applied",
        "Required but not exercised",
        "Reached",
    ] {
        assert!(md.contains(&format!("\n## {section}\n")), "{section}");
    }
    assert!(md.contains("\n**12 required hosts blocked \\(38 flows, 5 failed lookups\\)"));
    assert!(md.contains(
        "\nUnattributed flows (no name to judge them by): 128 DNS, 3 CONNECT to a target that is not host:port.\n"
    ));
    assert!(md.contains("\nPlaceholder values seen: region: eastus; storage: mystorage.\n"));
}

/// No finding the catalog does not expect carries a catalog entry: a report never says
/// "Blocked, not in the catalog ... [required ...]".
#[test]
fn unexpected_findings_carry_no_entry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let (_, doc) = audit_json(
        &[],
        &[
            "--fail-on",
            "never",
            "--cloud",
            "all",
            "--scenario",
            "all",
            dir.to_str().unwrap(),
        ],
    );
    for f in doc["findings"].as_array().unwrap() {
        if f["verdict"].as_str().unwrap().starts_with("unexpected") {
            assert!(f["entry"].is_null(), "{f}");
        }
    }
}

/// A CONNECT whose target is not `host:port` (userinfo in it) is judged by the proxy's last
/// answer: refused (403) it is proxy-denied; a 407 answered with credentials and then a 200
/// is a tunnel the far end answered through, never a block. Neither is named by its Host
/// header, which repeats the target: no catalog host is called blocked on a request the client
/// got wrong, and the refusal is an unattributed flow whose evidence names the target.
#[test]
fn a_connect_with_a_rejected_target_is_judged_by_the_last_answer() {
    const C: [u8; 4] = [10, 0, 0, 2];
    const P: [u8; 4] = [10, 0, 0, 9];
    let (syn, ack, fin, psh) = (0x02, 0x10, 0x01, 0x08);
    let mut p = common::Pcap::new();
    let connect = b"CONNECT user@ml.azure.com:443 HTTP/1.1\r\nHost: ml.azure.com:443\r\n\r\n";
    let auth = b"CONNECT user@ml.azure.com:443 HTTP/1.1\r\nHost: ml.azure.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n";
    // (client port, requests and the proxy's answers, a tunnel to a TLS server after them)
    type Exchange<'a> = (&'a [u8], &'a [u8]);
    let flows: [(u16, Vec<Exchange>, bool); 2] = [
        (
            50001,
            vec![(
                connect,
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            )],
            false,
        ),
        (
            50002,
            vec![
                (
                    connect,
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                ),
                (auth, b"HTTP/1.1 200 Connection established\r\n\r\n"),
            ],
            true,
        ),
    ];
    for (port, exchanges, tunnel) in flows {
        p.tcp(C, P, port, 3128, 100, 0, syn, &[]);
        p.tcp(P, C, 3128, port, 500, 101, syn | ack, &[]);
        let (mut cs, mut ss) = (101u32, 501u32);
        for (req, resp) in exchanges {
            p.tcp(C, P, port, 3128, cs, ss, psh | ack, req);
            cs += req.len() as u32;
            p.tcp(P, C, 3128, port, ss, cs, psh | ack, resp);
            ss += resp.len() as u32;
        }
        if tunnel {
            // The far end's TLS answer through the tunnel.
            let hello = [0x16, 3, 1, 0, 4, 1, 0, 0, 0];
            p.tcp(C, P, port, 3128, cs, ss, psh | ack, &hello);
            cs += hello.len() as u32;
            let server_hello = [0x16, 3, 3, 0, 6, 2, 0, 0, 2, 3, 3];
            p.tcp(P, C, 3128, port, ss, cs, psh | ack, &server_hello);
            ss += server_hello.len() as u32;
        }
        p.tcp(C, P, port, 3128, cs, ss, fin | ack, &[]);
        p.tcp(P, C, 3128, port, ss, cs + 1, fin | ack, &[]);
    }
    let file = std::env::temp_dir().join(format!("allowscope-connect-{}.pcap", std::process::id()));
    std::fs::write(&file, &p.bytes).unwrap();
    let (_, out, err) = run(&["flows", "--format", "json", file.to_str().unwrap()]);
    let (_, audit, _) = run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        file.to_str().unwrap(),
    ]);
    let (_, rows, _) = run(&[
        "audit",
        "--format",
        "ndjson",
        "--fail-on",
        "never",
        file.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&file);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let outcome = |port: u64| {
        doc["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["src_port"] == port)
            .map(|f| f["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome(50001).as_deref(), Some("proxy-denied"));
    assert_ne!(outcome(50002).as_deref(), Some("proxy-denied"));
    assert!(outcome(50002).is_some());
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let blocked: Vec<&Value> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"].as_str().unwrap().ends_with("-blocked"))
        .collect();
    assert!(blocked.is_empty(), "{blocked:?}");
    let refused = rows
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["src_port"] == 50001)
        .unwrap();
    assert_eq!(
        (&refused["verdict"], &refused["mechanism"], &refused["evidence"]),
        (
            &Value::from("unattributed"),
            &Value::from("proxy-denied"),
            &Value::from("proxy 10.0.0.9:3128 answered a CONNECT to a target that is not host:port (user@ml.azure.com:443) with 403")
        )
    );
}

/// An input's undecoded-frames note is escaped once for its medium: a backslash in the file
/// name reads `\\` in the text, Markdown and HTML reports (it was escaped for the terminal, then
/// again for Markdown and HTML: `\\\\`).
#[test]
fn undecoded_notes_are_escaped_once() {
    let dir = std::env::temp_dir().join(format!("allowscope-note-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wi\\fi.pcap");
    std::fs::copy(cap("radiotap.pcap"), &file).unwrap();
    let f = file.to_str().unwrap();
    for format in ["text", "markdown", "html"] {
        let (_, out, _) = run(&["audit", "-q", "--fail-on", "never", "--format", format, f]);
        assert!(
            out.contains("wi\\\\fi.pcap: 4 of 34 frames not decoded"),
            "{format}: {out}"
        );
        assert!(!out.contains("wi\\\\\\\\fi"), "{format}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nothing dropped silently (issue 21): an SNI of 300 octets is no host name (the flow is
/// named by its address and the input counts it), a datagram on port 53 that is no DNS is
/// counted; the text summary says both, the JSON has both counts.
#[test]
fn names_that_are_no_host_names_and_unreadable_dns_are_counted() {
    let mut p = common::Pcap::new();
    let long = format!("{}.example.net", vec!["abcdefghi"; 30].join("."));
    assert!(long.len() > 253);
    p.tls(50000, [203, 0, 113, 7], &long, true);
    p.tls(50001, [203, 0, 113, 8], "a..b.example.net", true);
    // A datagram to port 53 that is not DNS: a header that says 9 questions and nothing more.
    let mut u = 40000u16.to_be_bytes().to_vec();
    u.extend_from_slice(&53u16.to_be_bytes());
    let junk = [0, 1, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xff];
    u.extend_from_slice(&((8 + junk.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&junk);
    p.frame([10, 0, 0, 2], [10, 0, 0, 53], 17, &u);
    let file = std::env::temp_dir().join(format!("allowscope-drops-{}.pcap", std::process::id()));
    std::fs::write(&file, &p.bytes).unwrap();
    let path = file.to_str().unwrap();
    let (_, doc, _) = run(&["audit", "--format", "json", "--fail-on", "never", path]);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let input = &doc["inputs"][0];
    assert_eq!(input["names_not_taken"], 2, "{input}");
    assert_eq!(input["dns_unreadable"], 1, "{input}");
    let (_, flows, _) = run(&["flows", "--format", "json", path]);
    let flows: Value = serde_json::from_str(&flows).unwrap();
    let names: Vec<&str> = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"203.0.113.7") && names.contains(&"203.0.113.8"),
        "{names:?}"
    );
    assert!(!names
        .iter()
        .any(|n| n.contains("abcdefghi") || n.contains("..")));
    let (_, _, err) = run(&["audit", "--fail-on", "never", path]);
    std::fs::remove_file(&file).unwrap();
    assert!(
        err.contains("2 flows carried a name that is no host name"),
        "{err}"
    );
    assert!(
        err.contains("1 UDP datagrams on port 53 could not be read as DNS"),
        "{err}"
    );
}

/// The client, its resolver and a server of the tests of waits cut short.
const C: [u8; 4] = [10, 0, 0, 2];
const R: [u8; 4] = [10, 0, 0, 53];
const S: [u8; 4] = [203, 0, 113, 7];

/// The row of the flow to port 443 in an audit's NDJSON.
fn https_row(rows: &str) -> Value {
    rows.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["dst_port"] == 443)
        .expect("the SYN's row")
}

/// A capture that stops right after a client's only SYN or DNS query cut the wait for the
/// answer short: the flow is inconclusive (its evidence says why), the query no
/// `dns-no-answer` and a name resolved just before the end no `local-block`, never blocked.
/// Watched for longer than a second, the same silence is a drop, a failed lookup and a local
/// block.
#[test]
fn a_wait_the_capture_cut_short_is_no_block() {
    let login = "login.microsoftonline.com";
    for watched in [false, true] {
        let mut p = common::Pcap::new();
        p.lookup(C, R, 40000, "ml.azure.com", Some(S));
        p.tcp(C, S, 50000, 443, 100, 0, 0x02, &[]);
        p.lookup(C, R, 40001, "management.azure.com", None);
        // Resolved, and nothing connected to it (yet).
        p.lookup(C, R, 40003, login, Some([203, 0, 113, 9]));
        if watched {
            // Other traffic two seconds later: the capture went on watching.
            p.wait(2_000_000);
            p.lookup(C, R, 40002, "example.net", Some([192, 0, 2, 1]));
        }
        let file = std::env::temp_dir().join(format!(
            "allowscope-cut-short-{watched}-{}.pcap",
            std::process::id()
        ));
        std::fs::write(&file, &p.bytes).unwrap();
        let path = file.to_str().unwrap();
        let (code, doc, _) = run(&["audit", "--format", "json", "--fail-on", "any", path]);
        let (_, rows, _) = run(&["audit", "--format", "ndjson", "--fail-on", "never", path]);
        let rows = common::flow_lines(&rows);
        let _ = std::fs::remove_file(&file);
        let doc: Value = serde_json::from_str(&doc).unwrap();
        let mut blocked: Vec<(String, String)> = ["dns_failures", "findings"]
            .iter()
            .flat_map(|k| doc[k].as_array().unwrap())
            .filter(|f| f["verdict"] == "required-blocked")
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["mechanism"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        blocked.sort();
        let flow = https_row(&rows);
        if watched {
            assert_eq!(code, 1);
            let want = [
                (login, "local-block"),
                ("management.azure.com", "dns-no-answer"),
                ("ml.azure.com", "drop"),
            ]
            .map(|(n, m)| (n.to_string(), m.to_string()));
            assert_eq!(blocked, want);
            assert_eq!(flow["verdict"], "required-blocked");
        } else {
            assert_eq!(code, 0, "{blocked:?}");
            assert!(blocked.is_empty(), "{blocked:?}");
            assert_eq!(flow["verdict"], "inconclusive");
            assert_eq!(
                flow["evidence"],
                "the capture ended 0.003s after the only SYN to 203.0.113.7:443, before a retry was due: too soon to tell a drop from a slow answer"
            );
        }
    }
}

/// A flow the full flow table evicted soon after its only SYN had its wait cut short too:
/// inconclusive, and its evidence says the table evicted it.
#[test]
fn a_wait_an_eviction_cut_short_is_no_block() {
    let mut p = common::Pcap::new();
    p.lookup(C, R, 40000, "ml.azure.com", Some(S));
    p.tcp(C, S, 50000, 443, 100, 0, 0x02, &[]);
    // A burst of new flows fills the table (16 flows) right after the SYN.
    for port in 0..40u16 {
        p.udp(C, [192, 0, 2, 1], 30000 + port, 9999, b"x");
    }
    p.wait(5_000_000);
    p.udp(C, [192, 0, 2, 1], 29999, 9999, b"x");
    let file = std::env::temp_dir().join(format!("allowscope-evicted-{}.pcap", std::process::id()));
    std::fs::write(&file, &p.bytes).unwrap();
    let path = file.to_str().unwrap();
    let args = ["--threads", "1", "--max-flows", "16", path];
    let (code, _, _) = run(&[&["audit", "-q"][..], &args].concat());
    let (_, rows, _) = run(&[&["audit", "--format", "ndjson"][..], &args].concat());
    let rows = common::flow_lines(&rows);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0);
    let flow = https_row(&rows);
    assert_eq!(flow["verdict"], "inconclusive");
    let evidence = flow["evidence"].as_str().unwrap();
    assert!(
        evidence.starts_with("the flow table evicted the flow 0.0"),
        "{evidence}"
    );
}

/// A client that gives up on its only SYN (RST) and opens a new connection on the same ports
/// a fifth of a second later: the first attempt was watched only that long, and its evidence
/// says a new connection replaced it (not that the capture ended).
#[test]
fn a_wait_a_new_connection_cut_short_is_no_block() {
    let mut p = common::Pcap::new();
    p.lookup(C, R, 40000, "ml.azure.com", Some(S));
    let (syn, rst) = (0x02, 0x04);
    p.tcp(C, S, 50000, 443, 100, 0, syn, &[]);
    p.wait(200_000);
    p.tcp(C, S, 50000, 443, 101, 0, rst, &[]);
    p.tcp(C, S, 50000, 443, 7000, 0, syn, &[]);
    p.wait(3_000_000);
    p.tcp(C, S, 50000, 443, 7000, 0, syn, &[]);
    let file =
        std::env::temp_dir().join(format!("allowscope-replaced-{}.pcap", std::process::id()));
    std::fs::write(&file, &p.bytes).unwrap();
    let (_, rows, _) = run(&["audit", "--format", "ndjson", file.to_str().unwrap()]);
    let rows = common::flow_lines(&rows);
    let _ = std::fs::remove_file(&file);
    let rows: Vec<Value> = rows
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["dst_port"] == 443)
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["verdict"], "inconclusive");
    let evidence = rows[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.starts_with("a new connection on the same ports replaced it 0.20"),
        "{evidence}"
    );
    // The new connection's two SYNs over three seconds, unanswered, are a drop.
    assert_eq!(rows[1]["verdict"], "required-blocked");
    assert_eq!(rows[1]["mechanism"], "drop");
}

/// A ClientHello longer than the reassembly cap is read in part: its SNI (after 1,500 bytes
/// of padding) is missing, the flow is named from DNS, and both the flow's evidence and the
/// input's summary (text and JSON) say the cap cut it. With the default cap the SNI names it.
#[test]
fn a_client_hello_over_the_reassembly_cap_is_said() {
    let mut p = common::Pcap::new();
    p.lookup(C, R, 40000, "ml.azure.com", Some(S));
    let (syn, ack, psh, rst) = (0x02, 0x10, 0x08, 0x04);
    p.tcp(C, S, 50000, 443, 100, 0, syn, &[]);
    p.tcp(S, C, 443, 50000, 500, 101, syn | ack, &[]);
    p.tcp(C, S, 50000, 443, 101, 501, ack, &[]);
    let hello = common::client_hello_padded(b"ml.azure.com", 1500);
    let mut seq = 101;
    for part in hello.chunks(1000) {
        p.tcp(C, S, 50000, 443, seq, 501, psh | ack, part);
        seq += part.len() as u32;
    }
    p.tcp(S, C, 443, 50000, 501, seq, rst | ack, &[]);
    p.wait(2_000_000);
    p.lookup(C, R, 40001, "example.net", None);
    let file =
        std::env::temp_dir().join(format!("allowscope-big-hello-{}.pcap", std::process::id()));
    std::fs::write(&file, &p.bytes).unwrap();
    let path = file.to_str().unwrap();
    let need = hello.len();
    for cap in [None, Some("1024")] {
        let mut args = vec!["--fail-on", "never", path];
        if let Some(c) = cap {
            args.extend(["--reassembly-cap", c]);
        }
        let (_, _, err) = run(&[&["audit"][..], &args].concat());
        let (_, doc, _) = run(&[&["audit", "--format", "json"][..], &args].concat());
        let (_, rows, _) = run(&[&["audit", "--format", "ndjson"][..], &args].concat());
        let rows = common::flow_lines(&rows);
        let doc: Value = serde_json::from_str(&doc).unwrap();
        let flow = https_row(&rows);
        let note = "1 ClientHellos were longer than the reassembly cap: read in part, their SNI may be missing (raise --reassembly-cap)";
        if cap.is_some() {
            assert_eq!(flow["name_source"], "dns");
            assert_eq!(flow["verdict"], "required-blocked");
            let evidence = flow["evidence"].as_str().unwrap();
            let said = format!("the ClientHello ({need} bytes) is longer than the reassembly cap: read up to 1024 (raise --reassembly-cap)");
            assert!(evidence.ends_with(&said), "{evidence}");
            assert_eq!(doc["inputs"][0]["hellos_over_cap"], 1);
            assert!(err.contains(note), "{err}");
        } else {
            assert_eq!(flow["name_source"], "sni");
            assert!(!flow["evidence"]
                .as_str()
                .unwrap()
                .contains("reassembly cap"));
            assert_eq!(doc["inputs"][0]["hellos_over_cap"], 0);
            assert!(!err.contains("reassembly cap"), "{err}");
        }
    }
    let _ = std::fs::remove_file(&file);
}

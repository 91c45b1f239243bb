//! `allowscope check-allowlist`: the exact missing, broader-than-needed and useless results for
//! an allowlist of each format (tests/data/allowlists/, README there says where each shape comes
//! from), placeholders given or not, several files as one allowlist, every output format, the
//! exit codes, bad input (exit 2 with a clear error, never a panic), and the round trip: the
//! rules `allowscope audit --rules` writes, read back, permit what they were made for.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{cap, have, run};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/allowlists")
        .join(name)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A scratch file under the target directory, unique to the test.
fn scratch(name: &str, text: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("allowlist");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f
}

/// `check-allowlist --format json ARGS...`: exit code and the document.
fn check_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check-allowlist", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert!(!err.contains("panicked"), "{err}");
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, doc)
}

/// The entry with this id.
fn entry<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} is in scope"))
}

fn strings(v: &Value, key: &str, f: impl Fn(&Value) -> String) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(f).collect()
}

/// `id proto/ports` of every port with this status.
fn ports_with(doc: &Value, status: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in doc["entries"].as_array().unwrap() {
        for port in e["ports"].as_array().unwrap() {
            if port["status"] == status {
                let mut s = format!(
                    "{} {}/{}",
                    e["id"].as_str().unwrap(),
                    port["proto"].as_str().unwrap(),
                    port["ports"].as_str().unwrap()
                );
                for b in port["values"].as_array().unwrap() {
                    for (k, v) in b.as_object().unwrap() {
                        s.push_str(&format!(" {k}={}", v.as_str().unwrap()));
                    }
                }
                out.push(s);
            }
        }
    }
    out
}

/// `A => B` (with `sep`) of each item of the list under `key`.
fn pairs(doc: &Value, key: &str, a: &str, sep: &str, b: &str) -> Vec<String> {
    strings(doc, key, |v| {
        format!("{}{sep}{}", v[a].as_str().unwrap(), v[b].as_str().unwrap())
    })
}

fn broader(doc: &Value) -> Vec<String> {
    pairs(doc, "broader", "rule", " => ", "destination")
}

fn useless(doc: &Value) -> Vec<String> {
    pairs(doc, "useless", "rule", " => ", "destination")
}

fn not_followed(doc: &Value) -> Vec<String> {
    pairs(doc, "not_followed", "where", ": ", "what")
}

/// The optional entries of the default scope that none of the test allowlists names on port 80
/// (they are listed for `Http:80` and `Https:443`).
const OPTIONAL_80: [&str; 8] = [
    "public.compute.batchai-core-windows-net tcp/80",
    "public.workspace.default-exp-tas-com tcp/80",
    "public.workspace.experiments-azureml-net tcp/80",
    "public.workspace.mlworkspace-azure-ai tcp/80",
    "public.workspace.aether-ms tcp/80",
    "public.storage.windows-net tcp/80",
    "public.keyvault.vault-azure-net-bare tcp/80",
    "public.images.azurecr-io tcp/80",
];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn with_optional_80(v: &[&str]) -> Vec<String> {
    sorted(
        v.iter()
            .chain(OPTIONAL_80.iter())
            .map(|s| s.to_string())
            .collect(),
    )
}

#[test]
fn azure_firewall_template() {
    let (code, doc) = check_json(&[p(&data("policy-template.json"))]);
    assert_eq!(code, 1, "required entries are missing");
    assert_eq!(doc["inputs"][0]["format"], "azure-firewall");
    assert_eq!(
        doc["service_tags"], "checked",
        "the policy names service tags"
    );
    assert_eq!(
        sorted(ports_with(&doc, "missing")),
        with_optional_80(&[
            "public.compute.tundra-region-api-azureml-ms udp/5831",
            "public.compute.service-batch-com tcp/443",
            "public.workspace.default-exp-tas-com tcp/443",
            "public.workspace.mlworkspace-azure-ai tcp/443",
            "public.workspace.aether-ms tcp/443",
            "public.storage.windows-net tcp/443",
            "public.keyvault.vault-azure-net-bare tcp/443",
            "public.images.azurecr-io tcp/443",
            "tag.azure-active-directory tcp/80",
            "tag.azure-machine-learning tcp/8787",
            "tag.azure-machine-learning tcp/18881",
            "tag.azure-machine-learning-udp udp/5831",
            "tag.batch-node-management tcp/443",
            "tag.frontdoor-first-party tcp/443",
        ])
    );
    assert_eq!(
        ports_with(&doc, "permitted-for"),
        [
            "public.notebook.storage-file-core-windows-net tcp/445 storage=mystorage",
            "public.compute.region-tundra-azureml-ms udp/5831 region=eastus",
            "public.storage.storage-file-core-windows-net tcp/445 storage=mystorage",
            "tag.storage tcp/443 region=eastus",
        ]
    );
    assert_eq!(
        broader(&doc),
        ["DefaultApplicationRuleCollectionGroup/azureml-outbound/storage => *.core.windows.net"]
    );
    assert_eq!(
        useless(&doc),
        [
            "DefaultApplicationRuleCollectionGroup/azureml-outbound/python-packages => pypi.org",
            "DefaultApplicationRuleCollectionGroup/azureml-outbound/python-packages => files.pythonhosted.org",
            "DefaultApplicationRuleCollectionGroup/azureml-outbound/vendor => www.example.com",
            "DefaultApplicationRuleCollectionGroup/azureml-outbound/studio-http => ml.azure.com",
        ]
    );
    // The python packages are another scenario's; the studio rule has the wrong port.
    assert!(doc["useless"][0]["other_scenarios"]
        .as_array()
        .unwrap()
        .contains(&Value::from("python-packages")));
    assert_eq!(
        doc["useless"][3]["why"],
        "the catalog needs it on tcp 443; the rule allows tcp 80 (http)"
    );
    assert_eq!(
        not_followed(&doc),
        [
            "DefaultNetworkRuleCollectionGroup/allow-network/on-premises: destination address 192.168.0.0/16",
            "DefaultApplicationRuleCollectionGroup/azureml-outbound/windows-update: fqdnTags WindowsUpdate",
            "every rule: source addresses and IP groups",
        ]
    );
    // Network rules are tried first: the deny of one workspace name is a note on the
    // application rule's `*.azureml.ms`, which still permits the pattern.
    let api = entry(&doc, "public.workspace.azureml-ms");
    assert_eq!(api["status"], "permitted");
    let notes = api["ports"][0]["notes"].to_string();
    assert!(
        notes.contains("deny-first/no-test-workspace denies only part of it"),
        "{notes}"
    );
    // The rules to add: the service tags, and no rule for what needs --region.
    let allow: Vec<String> = strings(&doc["rules"], "allow", |r| {
        let list = |k: &str| {
            r[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string().trim_matches('"').to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{}/{} {}",
            r["proto"].as_str().unwrap(),
            list("ports"),
            list("service_tags")
        )
    });
    assert_eq!(
        allow,
        [
            "tcp/80 AzureActiveDirectory",
            "tcp/443 Frontdoor.FirstParty",
            "tcp/8787,18881 AzureMachineLearning",
            "udp/5831 AzureMachineLearning",
        ]
    );
    let refused = strings(&doc["rules"], "refused", |f| {
        f["name"].as_str().unwrap().to_string()
    });
    assert_eq!(
        refused,
        [
            "*.tundra.<region>.api.azureml.ms",
            "BatchNodeManagement.<region>"
        ]
    );
}

/// The same group as `az ... rule-collection-group show` (flattened), `list` (an array of
/// them) and the REST API (`properties`, `{"value": [...]}`) gives the same check.
#[test]
fn az_cli_show_list_and_rest_agree() {
    let path = data("rcg-show.json");
    let (code, doc) = check_json(&[p(&path)]);
    assert_eq!(code, 1);
    assert_eq!(doc["service_tags"], "not-checked");
    assert_eq!(
        sorted(ports_with(&doc, "missing")),
        with_optional_80(&[
            "public.notebook.storage-file-core-windows-net tcp/445",
            "public.notebook.storage-blob-core-windows-net tcp/443",
            "public.storage.blob-core-windows-net tcp/443",
            "public.storage.storage-file-core-windows-net tcp/445",
            "public.storage.storage-blob-core-windows-net tcp/443",
        ])
    );
    assert!(ports_with(&doc, "permitted-for").is_empty());
    assert_eq!(
        broader(&doc),
        [
            "ml-egress/network/tundra => *",
            "ml-egress/everything-https/https-anywhere => *"
        ]
    );
    assert!(useless(&doc).is_empty());
    assert_eq!(
        not_followed(&doc),
        ["ml-egress/network/smb: destinationIpGroups /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ml/providers/Microsoft.Network/ipGroups/storage-accounts"]
    );
    // The deny collection (priority 200) comes before the allow-everything one (300).
    let blob = entry(&doc, "public.storage.blob-core-windows-net");
    assert!(blob["ports"][0]["notes"][0]
        .as_str()
        .unwrap()
        .starts_with("denied by "));

    let group: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let list = scratch(
        "rcg-list.json",
        serde_json::to_string(&Value::Array(vec![group.clone()]))
            .unwrap()
            .as_bytes(),
    );
    let mut rest = serde_json::Map::new();
    let mut props = serde_json::Map::new();
    for (k, v) in group.as_object().unwrap() {
        match k.as_str() {
            "priority" | "ruleCollections" | "provisioningState" => {
                props.insert(k.clone(), v.clone());
            }
            _ => {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    rest.insert("properties".into(), Value::Object(props));
    let rest = scratch(
        "rcg-rest.json",
        serde_json::json!({ "value": [Value::Object(rest)] })
            .to_string()
            .as_bytes(),
    );
    for other in [list, rest] {
        let (c, d) = check_json(&[p(&other)]);
        assert_eq!(c, code);
        assert_eq!(
            ports_with(&d, "missing"),
            ports_with(&doc, "missing"),
            "{other:?}"
        );
        assert_eq!(broader(&d), broader(&doc));
        assert_eq!(d["counts"], doc["counts"]);
    }
}

#[test]
fn squid_configuration() {
    let (code, doc) = check_json(&[p(&data("squid.conf"))]);
    assert_eq!(code, 1);
    assert_eq!(doc["inputs"][0]["format"], "squid");
    assert_eq!(
        sorted(ports_with(&doc, "missing")),
        with_optional_80(&[
            "public.notebook.storage-file-core-windows-net tcp/445",
            "public.compute.region-tundra-azureml-ms udp/5831",
            "public.compute.tundra-region-api-azureml-ms udp/5831",
            "public.compute.service-batch-com tcp/443",
            "public.storage.storage-file-core-windows-net tcp/445",
            "public.workspace.default-exp-tas-com tcp/443",
            "public.workspace.mlworkspace-azure-ai tcp/443",
            "public.workspace.aether-ms tcp/443",
            "public.keyvault.vault-azure-net-bare tcp/443",
            "public.images.azurecr-io tcp/443",
        ])
    );
    assert_eq!(
        broader(&doc),
        ["line 32: http_access allow localnet CONNECT storage => .windows.net"]
    );
    assert_eq!(
        useless(&doc),
        ["line 34: http_access allow localnet vendor => www.example.com"]
    );
    assert_eq!(
        not_followed(&doc),
        [
            "line 4: acl localnet src",
            "line 35: http_access allow localnet extra",
            "line 36: http_access allow localnet pypi",
        ]
    );
    // What a proxy cannot carry says so; the domain's apex comes with squid's leading dot.
    let text = doc.to_string();
    assert!(text.contains("a proxy carries HTTP (tcp 80) and HTTPS (tcp 443), not udp 5831"));
    assert!(
        ports_with(&doc, "permitted").contains(&"public.storage.windows-net tcp/443".to_string())
    );
    // login.microsoftonline.com over HTTP only through the `!CONNECT` line.
    let login = entry(&doc, "public.general.login-microsoftonline-com");
    assert_eq!(
        login["ports"][0]["by"][0]["rule"],
        "line 33: http_access allow localnet !CONNECT sign_in"
    );
}

#[test]
fn fqdn_list() {
    let (code, doc) = check_json(&[p(&data("hosts.txt"))]);
    assert_eq!(
        code, 1,
        "*.blob.core.windows.net is required and only one account is listed"
    );
    assert_eq!(doc["inputs"][0]["format"], "fqdn-list");
    assert_eq!(
        sorted(ports_with(&doc, "missing")),
        sorted(
            [
                "public.compute.service-batch-com tcp/443",
                "public.storage.blob-core-windows-net tcp/443",
                "public.compute.batchai-core-windows-net tcp/443",
                "public.workspace.default-exp-tas-com tcp/80",
                "public.workspace.default-exp-tas-com tcp/443",
                "public.workspace.experiments-azureml-net tcp/80",
                "public.workspace.mlworkspace-azure-ai tcp/80",
                "public.workspace.mlworkspace-azure-ai tcp/443",
                "public.workspace.aether-ms tcp/80",
                "public.workspace.aether-ms tcp/443",
                "public.storage.windows-net tcp/80",
                "public.storage.windows-net tcp/443",
                "public.keyvault.vault-azure-net-bare tcp/80",
                "public.keyvault.vault-azure-net-bare tcp/443",
                "public.images.azurecr-io tcp/80",
                "public.images.azurecr-io tcp/443",
            ]
            .map(String::from)
            .to_vec()
        )
    );
    assert_eq!(
        ports_with(&doc, "permitted-for"),
        [
            "public.notebook.storage-file-core-windows-net tcp/443 storage=acct",
            "public.notebook.storage-file-core-windows-net tcp/445 storage=acct",
            "public.notebook.storage-dfs-core-windows-net tcp/443 storage=acct",
            "public.notebook.storage-blob-core-windows-net tcp/443 storage=acct",
            "public.compute.region-tundra-azureml-ms udp/5831 region=eastus",
            "public.compute.tundra-region-api-azureml-ms udp/5831 region=eastus",
            "public.storage.storage-file-core-windows-net tcp/443 storage=acct",
            "public.storage.storage-file-core-windows-net tcp/445 storage=acct",
            "public.storage.storage-blob-core-windows-net tcp/443 storage=acct",
        ]
    );
    assert_eq!(
        broader(&doc),
        ["line 24: *.windows.net:80 => *.windows.net"]
    );
    assert_eq!(
        useless(&doc),
        ["line 25: downloads.example.org => downloads.example.org"]
    );
    assert_eq!(not_followed(&doc), ["line 26: 10.0.0.0/8"]);
    // A name under a wildcard pattern permits only part of it.
    let blob = entry(&doc, "public.storage.blob-core-windows-net");
    let note = blob["ports"][0]["notes"][0].as_str().unwrap();
    assert!(
        note.ends_with("hosts.txt: line 16: acct.blob.core.windows.net:443 allows only part of it: acct.blob.core.windows.net"),
        "{note}"
    );
}

/// `acct.blob.core.windows.net` permits `<storage>.blob.core.windows.net` for `<storage>` =
/// acct when --storage is unset (and says so), fully when it is acct, not when it is another.
#[test]
fn placeholders_given_or_not() {
    let hosts = data("hosts.txt");
    let status = |doc: &Value| -> Vec<String> {
        let e = entry(doc, "public.storage.storage-blob-core-windows-net");
        vec![
            e["destination"].as_str().unwrap().to_string(),
            e["status"].as_str().unwrap().to_string(),
        ]
    };
    let (_, unset) = check_json(&[p(&hosts)]);
    assert_eq!(
        status(&unset),
        ["<storage>.blob.core.windows.net", "permitted-for"]
    );
    let (_, same) = check_json(&["--storage", "acct", p(&hosts)]);
    assert_eq!(status(&same), ["acct.blob.core.windows.net", "permitted"]);
    let (_, other) = check_json(&["--storage", "other", p(&hosts)]);
    assert_eq!(status(&other), ["other.blob.core.windows.net", "missing"]);
    let text = other.to_string();
    assert!(
        text.contains("allows it for <storage> = acct, not the value given"),
        "{text}"
    );
    assert!(useless(&other).contains(
        &"line 19: acct.dfs.core.windows.net:443 => acct.dfs.core.windows.net".to_string()
    ));
    // With the values given, the rules to add name the account and the region.
    let (_, out, _) = run(&[
        "check-allowlist",
        "--rules",
        "fqdn-list",
        "--storage",
        "other",
        p(&hosts),
    ]);
    // (other.blob... is folded into the `*.blob.core.windows.net` the catalog also needs.)
    assert!(
        out.contains("\n*.blob.core.windows.net tcp/443\nother.dfs.core.windows.net tcp/443\n"),
        "{out}"
    );
    assert!(
        out.contains("\nother.file.core.windows.net tcp/445\n"),
        "{out}"
    );
}

/// Several files are one allowlist: what the proxy cannot carry, a firewall list can.
#[test]
fn files_add_up() {
    let rest = scratch(
        "firewall-rest.txt",
        b"*.file.core.windows.net tcp/445\n*.tundra.azureml.ms udp/5831\n*.api.azureml.ms udp/5831\n",
    );
    let (_, alone) = check_json(&[p(&data("squid.conf"))]);
    let (code, both) = check_json(&[p(&data("squid.conf")), p(&rest)]);
    assert_eq!(code, 0, "only optional entries are left");
    let gone: Vec<String> = ports_with(&alone, "missing")
        .into_iter()
        .filter(|m| !ports_with(&both, "missing").contains(m))
        .collect();
    assert_eq!(
        gone,
        [
            "public.notebook.storage-file-core-windows-net tcp/445",
            "public.compute.region-tundra-azureml-ms udp/5831",
            "public.compute.tundra-region-api-azureml-ms udp/5831",
            "public.storage.storage-file-core-windows-net tcp/445",
        ]
    );
    assert_eq!(both["inputs"].as_array().unwrap().len(), 2);
}

#[test]
fn every_format_and_the_exit_codes() {
    let policy = data("policy-template.json");
    let (code, text, _) = run(&["check-allowlist", p(&policy)]);
    assert_eq!(code, 1);
    for section in [
        "Not permitted: catalog entries the allowlist does not let through",
        "Rules to add",
        "Broader than the catalog needs",
        "Allowing nothing the catalog expects",
        "Not followed",
        "Service tags",
        "Permitted",
    ] {
        assert!(text.contains(&format!("\n{section}")), "{section}: {text}");
    }
    let (code, md, _) = run(&["check-allowlist", "--format", "markdown", p(&policy)]);
    assert_eq!(code, 1);
    assert!(md.starts_with("# Allowlist check\n"));
    assert!(md.contains("\n## Broader than the catalog needs\n"));
    assert!(md.contains("\\*.core.windows.net"), "Markdown escapes `*`");
    let (code, nd, _) = run(&["check-allowlist", "--format", "ndjson", p(&policy)]);
    assert_eq!(code, 1);
    let mut kinds = std::collections::BTreeMap::new();
    for line in nd.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        *kinds
            .entry(v["type"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            ("broader".to_string(), 1),
            ("entry".to_string(), 45),
            ("not-followed".to_string(), 3),
            ("rule".to_string(), 4),
            ("useless".to_string(), 4),
        ]
    );
    // --fail-on: `*` permits everything (exit 0) but is broader than needed.
    let every = scratch("every.txt", b"*\n");
    for (fail_on, want) in [
        ("required-blocked", 0),
        ("unexpected-reached", 1),
        ("any", 1),
        ("never", 0),
    ] {
        let (code, out, err) = run(&["check-allowlist", "--fail-on", fail_on, p(&every)]);
        assert_eq!(code, want, "{fail_on}: {out}{err}");
    }
    let (code, _, _) = run(&["check-allowlist", "--fail-on", "never", p(&policy)]);
    assert_eq!(code, 0);
}

/// The file can come on stdin (`az ... list | allowscope check-allowlist -`).
#[test]
fn stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(["check-allowlist", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = std::fs::read(data("rcg-show.json")).unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&body).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["inputs"][0]["file"], "stdin");
    assert_eq!(doc["inputs"][0]["format"], "azure-firewall");
}

#[test]
fn bad_input_is_a_clear_error_and_exit_2() {
    let hostile = scratch(
        "hostile.json",
        br#"{"name": "g\u001b[31m", "ruleCollections": [{"name": "\u001b]0;x\u0007", "priority": 1, "action": {"type": "Allow"}, "rules": [{"ruleType": "ApplicationRule", "name": "r\u001b[2J", "targetFqdns": ["ok.example", "bad\u001b[1mname"], "protocols": [{"protocolType": "Https", "port": 443}]}]}]}"#,
    );
    let (code, out, err) = run(&["check-allowlist", p(&hostile)]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    for (args, want) in [
        (
            vec![p(&data("bad/truncated.json"))],
            "not JSON: EOF while parsing",
        ),
        (vec![p(&data("bad/empty.txt"))], "the file is empty"),
        (
            vec![p(&data("bad/not-a-list.txt"))],
            "line 1: `Allowed hosts for the ML subnet`",
        ),
        (
            vec![Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/service-tags.json")
                .to_str()
                .unwrap()],
            "JSON, but no rule collection group in it",
        ),
        (
            vec![cap("tcp-outcomes.pcap").to_str().unwrap()],
            "binary data, not an allowlist",
        ),
        (vec![p(&data("bad"))], "a directory, not an allowlist file"),
        (vec!["/nonexistent/allowlist.txt"], "No such file"),
        (
            vec!["--input-format", "squid", p(&data("policy-template.json"))],
            "no squid directive",
        ),
        (
            vec![p(&data("hosts.txt")), p(&data("bad/empty.txt"))],
            "the file is empty",
        ),
    ] {
        let mut all = vec!["check-allowlist"];
        all.extend(args.iter().copied());
        let (code, out, err) = run(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout: {out}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // Random bytes, text and JSON of every kind: never a panic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..40 {
        let mut bytes = Vec::new();
        for _ in 0..(i * 37 % 600) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let alphabet = b"{}[]\":,. *acl http_access allow deny dstdomain port 443 udp/5831 ruleCollections\n\x00\xff-#";
            bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let f = scratch(&format!("fuzz-{i}"), &bytes);
        let (code, _, err) = run(&["check-allowlist", p(&f)]);
        assert!(matches!(code, 0..=2), "{bytes:?}: {code} {err}");
        assert!(!err.contains("panicked"), "{bytes:?}: {err}");
    }
}

/// What `allowscope audit --rules` writes for the recorded audit capture, read back, permits
/// every required finding the rules were made for (entry, protocol, port).
#[test]
fn the_audit_rules_read_back_permit_what_they_fix() {
    let capture = cap("audit-client.pcap");
    let (_, audit, _) = run(&["audit", "-q", "--format", "json", p(&capture)]);
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let fixed: Vec<(String, String, String)> = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "required-blocked")
        .map(|f| {
            (
                f["entry"]["id"].as_str().unwrap().to_string(),
                f["proto"].as_str().unwrap().to_string(),
                f["dst_port"].to_string(),
            )
        })
        .collect();
    assert_eq!(fixed.len(), 7, "{fixed:?}");
    for (format, file) in [
        ("azure-firewall-arm", "rules.json"),
        ("fqdn-list", "rules.txt"),
        ("squid", "rules.squid.conf"),
    ] {
        let (_, rules, _) = run(&["audit", "-q", "--rules", format, p(&capture)]);
        let f = scratch(file, rules.as_bytes());
        for placeholders in [
            &[][..],
            &["--storage", "mystorage", "--region", "eastus"][..],
        ] {
            let mut args = placeholders.to_vec();
            args.push(p(&f));
            let (_, doc) = check_json(&args);
            for (id, proto, port) in &fixed {
                // A proxy carries HTTP and HTTPS only: squid's rules list the rest as comments.
                if format == "squid" && !(proto == "tcp" && (port == "80" || port == "443")) {
                    continue;
                }
                let e = entry(&doc, id);
                let pc = e["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|pc| pc["proto"] == proto.as_str() && pc["ports"] == port.as_str())
                    .unwrap_or_else(|| panic!("{id} {proto}/{port}"));
                assert_ne!(
                    pc["status"], "missing",
                    "{format} {placeholders:?}: {id} {proto}/{port}: {pc}"
                );
            }
        }
    }
}

/// The test's squid.conf is one squid accepts (`squid -k parse`, when squid is installed; CI
/// installs it), with its ACL file pointed at a scratch file.
#[test]
fn squid_accepts_the_test_configuration() {
    if !have("squid") {
        return;
    }
    let extra = scratch("extra-domains.txt", b".example.net\n");
    let conf = std::fs::read_to_string(data("squid.conf"))
        .unwrap()
        .replace("/etc/squid/extra-domains.txt", p(&extra));
    let conf = scratch("squid.conf", conf.as_bytes());
    let out = Command::new("squid")
        .args(["-k", "parse", "-f", p(&conf)])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("ERROR") && !log.contains("FATAL") && !log.contains("WARNING"),
        "{log}"
    );
}

//! Catalog tests: the built-in data against the facts sheet, the matcher's semantics (table-driven
//! over every built-in entry, near misses, placeholders, ports, case, trailing dot, punycode),
//! property tests against a naive reference matcher, and the `catalog` subcommands run through
//! the built binary.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use allowscope::catalog::{
    Catalog, CatalogData, CatalogOptions, CloudArg, Entry, Label, Pattern, Placeholders, PortRange,
    Proto, Requirement, BUILTIN_TOML,
};
use proptest::prelude::*;

/// Every host row of shared/catalog-facts.md, written out independently of azureml.toml:
/// `cloud | host pattern | proto | ports`. A row is satisfied by built-in entries of that cloud
/// (or of cloud `any`) with that pattern and protocol whose ports together include the row's.
const FACTS: &str = r#"
# Tables of catalog-facts.md (cloud | host | proto | ports)
public | login.microsoftonline.com | tcp | 80,443
public | management.azure.com | tcp | 443
gov | login.microsoftonline.us | tcp | 80,443
gov | management.azure.us | tcp | 443
gov | management.usgovcloudapi.net | tcp | 443
china | login.chinacloudapi.cn | tcp | 80,443
china | management.azure.cn | tcp | 443
china | management.chinacloudapi.cn | tcp | 443
public | ml.azure.com | tcp | 443
public | *.azureml.ms | tcp | 443
public | *.azureml.net | tcp | 443
public | *.modelmanagement.azureml.net | tcp | 443
public | *.notebooks.azure.net | tcp | 443
public | <storage>.file.core.windows.net | tcp | 443,445
public | <storage>.dfs.core.windows.net | tcp | 443
public | <storage>.blob.core.windows.net | tcp | 443
public | graph.microsoft.com | tcp | 443
public | *.aznbcontent.net | tcp | 443
public | automlresources-prod.azureedge.net | tcp | 443
public | aka.ms | tcp | 443
gov | ml.azure.us | tcp | 443
gov | *.ml.azure.us | tcp | 443
gov | *.modelmanagement.azureml.us | tcp | 443
gov | *.notebooks.usgovcloudapi.net | tcp | 443
gov | <storage>.file.core.usgovcloudapi.net | tcp | 443,445
gov | <storage>.dfs.core.usgovcloudapi.net | tcp | 443
gov | <storage>.blob.core.usgovcloudapi.net | tcp | 443
gov | graph.microsoft.us | tcp | 443
gov | *.aznbcontent.net | tcp | 443
china | studio.ml.azure.cn | tcp | 443
china | *.ml.azure.cn | tcp | 443
china | *.azureml.cn | tcp | 443
china | *.modelmanagement.ml.azure.cn | tcp | 443
china | *.notebooks.chinacloudapi.cn | tcp | 443
china | <storage>.file.core.chinacloudapi.cn | tcp | 443,445
china | <storage>.dfs.core.chinacloudapi.cn | tcp | 443
china | <storage>.blob.core.chinacloudapi.cn | tcp | 443
china | graph.chinacloudapi.cn | tcp | 443
china | *.aznbcontent.net | tcp | 443
public | graph.windows.net | tcp | 443
public | *.instances.azureml.net | tcp | 443
public | *.instances.azureml.ms | tcp | 443,8787,18881
public | <region>.tundra.azureml.ms | udp | 5831
public | *.tundra.<region>.api.azureml.ms | udp | 5831
public | *.batch.azure.com | any | 443
public | *.service.batch.com | any | 443
public | *.<region>.batch.azure.com | any | 443
public | *.<region>.service.batch.azure.com | any | 443
public | *.blob.core.windows.net | tcp | 443
public | *.table.core.windows.net | tcp | 443
public | *.queue.core.windows.net | tcp | 443
public | <storage>.file.core.windows.net | tcp | 443,445
public | <storage>.blob.core.windows.net | tcp | 443
public | *.vault.azure.net | tcp | 443
gov | graph.windows.net | tcp | 443
gov | *.instances.azureml.us | tcp | 443
gov | *.instances.azureml.ms | tcp | 443,8787,18881
gov | <region>.tundra.azureml.us | udp | 5831
gov | *.blob.core.usgovcloudapi.net | tcp | 443
gov | *.table.core.usgovcloudapi.net | tcp | 443
gov | *.queue.core.usgovcloudapi.net | tcp | 443
gov | <storage>.file.core.usgovcloudapi.net | tcp | 443,445
gov | <storage>.blob.core.usgovcloudapi.net | tcp | 443
gov | *.vault.usgovcloudapi.net | tcp | 443
china | graph.chinacloudapi.cn | tcp | 443
china | *.instances.azureml.cn | tcp | 443
china | *.instances.azureml.ms | tcp | 443,8787,18881
china | <region>.tundra.azureml.cn | udp | 5831
china | *.blob.core.chinacloudapi.cn | tcp | 443
china | *.table.core.chinacloudapi.cn | tcp | 443
china | *.queue.core.chinacloudapi.cn | tcp | 443
china | <storage>.file.core.chinacloudapi.cn | tcp | 443,445
china | <storage>.blob.core.chinacloudapi.cn | tcp | 443
china | *.vault.azure.cn | tcp | 443
# Older public-cloud list (seed-004), ports as given there (443 and 80; 443 checked)
public | login.microsoftonline.com | tcp | 443
public | management.azure.com | tcp | 443
public | *.batchai.core.windows.net | tcp | 80,443
public | ml.azure.com | tcp | 443
public | default.exp-tas.com | tcp | 80,443
public | *.azureml.ms | tcp | 443
public | *.experiments.azureml.net | tcp | 80,443
public | *.modelmanagement.azureml.net | tcp | 443
public | mlworkspace.azure.ai | tcp | 80,443
public | *.aether.ms | tcp | 80,443
public | *.instances.azureml.net | tcp | 443
public | *.instances.azureml.ms | tcp | 443
public | windows.net | tcp | 80,443
public | vault.azure.net | tcp | 80,443
public | azurecr.io | tcp | 80,443
public | mcr.microsoft.com | tcp | 443
public | <acr>.azurecr.io | tcp | 443
public | *.notebooks.azure.net | tcp | 443
public | graph.windows.net | tcp | 443
# Optional scenarios (doc-2023 / doc-2026)
public | mcr.microsoft.com | tcp | 443
public | *.data.mcr.microsoft.com | tcp | 443
public | <acr>.azurecr.io | tcp | 443
public | <acr>.<region>.data.azurecr.io | tcp | 443
public | dc.applicationinsights.azure.com | tcp | 443
public | dc.applicationinsights.microsoft.com | tcp | 443
public | dc.services.visualstudio.com | tcp | 443
public | *.in.applicationinsights.azure.com | tcp | 443
public | anaconda.com | tcp | 443
public | *.anaconda.com | tcp | 443
public | *.anaconda.org | tcp | 443
public | pypi.org | tcp | 443
public | *.pythonhosted.org | tcp | 443
public | pytorch.org | tcp | 443
public | *.pytorch.org | tcp | 443
public | *.tensorflow.org | tcp | 443
public | ghcr.io | tcp | 443
public | pkg-containers.githubusercontent.com | tcp | 443
public | cloud.r-project.org | tcp | 443
public | *.vscode.dev | tcp | 443
public | *.vscode-unpkg.net | tcp | 443
public | *.vscode-cdn.net | tcp | 443
public | *.vscodeexperiments.azureedge.net | tcp | 443
public | default.exp-tas.com | tcp | 443
public | code.visualstudio.com | tcp | 443
public | update.code.visualstudio.com | tcp | 443
public | *.vo.msecnd.net | tcp | 443
public | marketplace.visualstudio.com | tcp | 443
public | vscode.blob.core.windows.net | tcp | 443
public | *.gallerycdn.vsassets.io | tcp | 443
public | vscode.download.prss.microsoft.com | tcp | 443
public | raw.githubusercontent.com | tcp | 443
public | *.instances.azureml.ms | tcp | 8704-8710
public | *.kusto.windows.net | tcp | 443
public | *.table.core.windows.net | tcp | 443
public | *.queue.core.windows.net | tcp | 443
public | <storage>.blob.core.windows.net | tcp | 443
public | <workspace-id>.workspace.<region>.api.azureml.ms | tcp | 443
public | <region>.experiments.azureml.net | tcp | 443
public | <region>.api.azureml.ms | tcp | 443
public | archive.ubuntu.com | tcp | 80
public | security.ubuntu.com | tcp | 80
public | ppa.launchpad.net | tcp | 80
# Firewall between AML and storage: storage endpoints, TCP 445
public | <storage>.file.core.windows.net | tcp | 445
gov | <storage>.file.core.usgovcloudapi.net | tcp | 445
china | <storage>.file.core.chinacloudapi.cn | tcp | 445
"#;

struct Row {
    cloud: &'static str,
    host: &'static str,
    proto: &'static str,
    ports: Vec<PortRange>,
}

fn rows() -> Vec<Row> {
    FACTS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(f.len(), 4, "bad row {l}");
            let ports = f[3]
                .split(',')
                .map(|p| match p.split_once('-') {
                    Some((a, b)) => PortRange {
                        lo: a.parse().unwrap(),
                        hi: b.parse().unwrap(),
                    },
                    None => PortRange::one(p.parse().unwrap()),
                })
                .collect();
            Row {
                cloud: f[0],
                host: f[1],
                proto: f[2],
                ports,
            }
        })
        .collect()
}

fn builtin() -> Catalog {
    Catalog::builtin()
}

/// Sample values for placeholders.
fn sample_value(p: &str) -> &'static str {
    match p {
        "region" => "eastus",
        "storage" => "acct1",
        "acr" => "myacr",
        "workspace-id" => "0a1b2c3d-0000-4000-8000-000000000001",
        _ => "val",
    }
}

/// A name the pattern must match: `*` becomes `star` (one or more labels), placeholders their
/// sample value.
fn sample(p: &Pattern, star: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if p.wildcard {
        parts.push(star.to_string());
    }
    for l in &p.labels {
        parts.push(match l {
            Label::Literal(s) => s.clone(),
            Label::Placeholder(n) => sample_value(n).to_string(),
        });
    }
    parts.join(".")
}

fn ids(c: &Catalog, name: &str) -> Vec<String> {
    c.match_name(name)
        .iter()
        .map(|m| c.entries()[m.entry].id.clone())
        .collect()
}

fn has(c: &Catalog, name: &str, e: &Entry) -> bool {
    ids(c, name).contains(&e.id)
}

#[test]
fn builtin_parses_and_is_big_enough() {
    let d = CatalogData::builtin();
    assert!(d.entries.len() >= 120, "{}", d.entries.len());
    for e in &d.entries {
        assert!(!e.sources.is_empty(), "{} has no source", e.id);
        for s in &e.sources {
            assert!(
                d.sources.contains_key(s),
                "{}: source {s} not described",
                e.id
            );
        }
        assert!(
            d.scenarios.contains_key(&e.scenario),
            "{}: scenario {} not described",
            e.id,
            e.scenario
        );
    }
    // Every cloud is there.
    for cloud in ["public", "gov", "china"] {
        assert!(d.entries.iter().any(|e| e.cloud.name() == cloud));
    }
}

#[test]
fn every_fact_row_is_in_the_builtin_catalog() {
    let d = CatalogData::builtin();
    let rows = rows();
    assert!(rows.len() >= 130, "{}", rows.len());
    for r in &rows {
        let want = Pattern::parse(r.host).unwrap();
        let found: Vec<&Entry> = d
            .entries
            .iter()
            .filter(|e| {
                (e.cloud.name() == r.cloud || e.cloud.name() == "any")
                    && e.pattern == want
                    && e.proto.name() == r.proto
            })
            .collect();
        assert!(
            !found.is_empty(),
            "row {} {} {} missing",
            r.cloud,
            r.host,
            r.proto
        );
        for want in &r.ports {
            for p in [want.lo, want.hi] {
                assert!(
                    found.iter().any(|e| e.ports.iter().any(|x| x.contains(p))),
                    "row {} {}: port {p} missing",
                    r.cloud,
                    r.host
                );
            }
        }
    }
}

#[test]
fn every_builtin_entry_is_covered_by_a_fact_row() {
    let rows = rows();
    for e in &CatalogData::builtin().entries {
        let covered = rows.iter().any(|r| {
            Pattern::parse(r.host).unwrap() == e.pattern
                && (e.cloud.name() == r.cloud || e.cloud.name() == "any")
                && e.proto.name() == r.proto
                && e.ports
                    .iter()
                    .any(|p| r.ports.iter().any(|q| q.contains(p.lo)))
        });
        assert!(covered, "{} ({}) has no row in FACTS", e.id, e.pattern.text);
    }
}

/// For each fact row: a sample name matches an entry with that pattern, on the row's ports.
#[test]
fn every_fact_row_matches_its_sample_name_on_its_ports() {
    let c = builtin();
    for r in rows() {
        let pat = Pattern::parse(r.host).unwrap();
        let name = sample(&pat, "x1");
        let proto = match r.proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => Proto::Any,
        };
        for want in &r.ports {
            let ms = c.match_endpoint(&name, Some(proto), Some(want.lo));
            assert!(
                ms.iter().any(|m| {
                    let e = &c.entries()[m.entry];
                    e.pattern == pat && m.port_ok
                }),
                "{name} ({}/{}) does not match {} with port_ok",
                r.proto,
                want.lo,
                r.host
            );
        }
    }
}

/// Table-driven over every built-in entry: names that must match it, near misses that must not.
#[test]
fn every_builtin_entry_matches_and_near_misses_do_not() {
    let c = builtin();
    let mut checked = 0;
    for e in c.entries() {
        let p = &e.pattern;
        // Must match (several forms).
        let base = sample(p, "x1");
        let mut good = vec![
            base.clone(),
            base.to_ascii_uppercase(),
            format!("{base}."),
            format!("{}.", base.to_ascii_uppercase()),
        ];
        if p.wildcard {
            good.push(sample(p, "a.b.c"));
            good.push(sample(p, "xn--bcher-kva"));
            good.push(sample(p, "bücher"));
        }
        for n in &good {
            assert!(has(&c, n, e), "{} should match {n}", p.text);
        }
        // Must not match.
        let literal_tail: Vec<&str> = p
            .labels
            .iter()
            .map(|l| match l {
                Label::Literal(s) => s.as_str(),
                Label::Placeholder(n) => sample_value(n),
            })
            .collect();
        let tail = literal_tail.join(".");
        let mut bad = vec![
            format!("{base}.evil.com"),
            format!("{base}evil"),
            format!("{tail}x"),
            format!("{base}.."),
            format!(".{base}"),
            String::new(),
        ];
        if matches!(p.labels[0], Label::Literal(_)) {
            bad.push(format!("evil-{tail}"));
            bad.push(format!("evil{tail}"));
        }
        // Any literal label glued to something else: `evilblob.core.windows.net`.
        for (i, l) in p.labels.iter().enumerate() {
            if let Label::Literal(s) = l {
                let mut parts: Vec<String> = literal_tail.iter().map(|s| s.to_string()).collect();
                parts[i] = format!("evil{s}");
                let glued = parts.join(".");
                bad.push(if p.wildcard {
                    format!("x1.{glued}")
                } else {
                    glued
                });
            }
        }
        if p.wildcard {
            // The bare parent of a `*.` pattern.
            bad.push(tail.clone());
        } else {
            // A subdomain of an exact (or placeholder) pattern.
            bad.push(format!("x.{base}"));
        }
        if !p.wildcard {
            // A placeholder is exactly one label.
            for (i, l) in p.labels.iter().enumerate() {
                if let Label::Placeholder(_) = l {
                    let mut parts: Vec<String> =
                        literal_tail.iter().map(|s| s.to_string()).collect();
                    parts[i] = "a.b".into();
                    bad.push(parts.join("."));
                }
            }
        }
        for n in &bad {
            assert!(!has(&c, n, e), "{} must not match {n:?}", p.text);
        }
        checked += 1;
    }
    assert_eq!(checked, c.entries().len());
}

#[test]
fn named_near_misses_match_nothing() {
    let c = builtin();
    for n in [
        "evil-azureml.ms",
        "evilazureml.ms",
        "azureml.ms.evil.com",
        "azureml.ms",
        "azureml.net",
        "instances.azureml.ms",
        "blob.core.windows.net",
        "evilblob.core.windows.net",
        "login.microsoftonline.com.evil.com",
        "xlogin.microsoftonline.com",
        "notebooks.azure.net",
        "vault.azure.net.evil",
        "",
        ".",
        "..",
    ] {
        let got = ids(&c, n);
        // `instances.azureml.ms` is under `*.azureml.ms`, and `blob.core.windows.net` under
        // the 2020 bare `windows.net`? No: that one is exact. Only the first is expected.
        if n == "instances.azureml.ms" {
            assert_eq!(got, ["public.workspace.azureml-ms"], "{n}");
        } else {
            assert!(got.is_empty(), "{n:?} matched {got:?}");
        }
    }
}

#[test]
fn most_specific_first() {
    let c = builtin();
    assert_eq!(
        ids(&c, "acct1.blob.core.windows.net"),
        [
            "public.notebook.storage-blob-core-windows-net",
            "public.storage.storage-blob-core-windows-net",
            "public.kubernetes.storage-blob-core-windows-net",
            "public.storage.blob-core-windows-net",
        ]
    );
    let got = ids(&c, "vscode.blob.core.windows.net");
    assert_eq!(got[0], "any.vscode.vscode-blob-core-windows-net");
    let got = ids(&c, "x.eastus.batch.azure.com");
    assert_eq!(
        got,
        [
            "public.compute.region-batch-azure-com",
            "public.compute.batch-azure-com"
        ]
    );
    let got = ids(&c, "x.tundra.eastus.api.azureml.ms");
    assert_eq!(
        got,
        [
            "public.compute.tundra-region-api-azureml-ms",
            "public.workspace.azureml-ms"
        ]
    );
}

fn with_placeholders(pairs: &[(&str, &str)]) -> Catalog {
    let mut p = Placeholders::default();
    for (k, v) in pairs {
        p.set(k, v).unwrap();
    }
    Catalog::new(CatalogData::builtin(), p)
}

fn bound(c: &Catalog, name: &str, id: &str) -> Option<Vec<(String, String)>> {
    c.match_name(name)
        .into_iter()
        .find(|m| c.entries()[m.entry].id == id)
        .map(|m| {
            m.bound
                .iter()
                .map(|b| (b.placeholder.to_string(), b.value.to_string()))
                .collect()
        })
}

#[test]
fn placeholders_unbound_bind_one_label() {
    let c = builtin();
    let id = "public.kubernetes.workspace-id-workspace-region-api-azureml-ms";
    let got = bound(&c, "0a1b.workspace.westeurope.api.azureml.ms", id).unwrap();
    assert_eq!(
        got,
        [
            ("workspace-id".into(), "0a1b".into()),
            ("region".into(), "westeurope".into())
        ]
    );
    assert!(bound(&c, "a.b.workspace.westeurope.api.azureml.ms", id).is_none());
    assert!(bound(&c, "workspace.westeurope.api.azureml.ms", id).is_none());
    let got = bound(
        &c,
        "MyACR.EastUS.data.azurecr.io",
        "public.images.acr-region-data-azurecr-io",
    );
    assert_eq!(
        got.unwrap(),
        [
            ("acr".into(), "myacr".into()),
            ("region".into(), "eastus".into())
        ]
    );
    let got = bound(
        &c,
        "eastus.tundra.azureml.ms",
        "public.compute.region-tundra-azureml-ms",
    );
    assert_eq!(got.unwrap(), [("region".into(), "eastus".into())]);
    // Exact and plain wildcard entries bind nothing.
    assert_eq!(
        bound(&c, "x.azureml.ms", "public.workspace.azureml-ms").unwrap(),
        Vec::<(String, String)>::new()
    );
}

#[test]
fn placeholders_filled_match_only_their_value() {
    let c = with_placeholders(&[("storage", "Acct1"), ("region", "eastus")]);
    let id = "public.storage.storage-blob-core-windows-net";
    assert_eq!(
        bound(&c, "acct1.blob.core.windows.net", id).unwrap(),
        [("storage".into(), "acct1".into())]
    );
    assert!(bound(&c, "other.blob.core.windows.net", id).is_none());
    // The broad seed-000 pattern still covers other accounts.
    assert!(bound(
        &c,
        "other.blob.core.windows.net",
        "public.storage.blob-core-windows-net"
    )
    .is_some());
    let id = "public.compute.tundra-region-api-azureml-ms";
    assert!(bound(&c, "x.tundra.eastus.api.azureml.ms", id).is_some());
    assert!(bound(&c, "x.tundra.westus.api.azureml.ms", id).is_none());
    // A filled placeholder and a free one in the same pattern.
    let id = "public.kubernetes.workspace-id-workspace-region-api-azureml-ms";
    assert_eq!(
        bound(&c, "abc.workspace.eastus.api.azureml.ms", id).unwrap(),
        [
            ("workspace-id".into(), "abc".into()),
            ("region".into(), "eastus".into())
        ]
    );
    assert!(bound(&c, "abc.workspace.westus.api.azureml.ms", id).is_none());
    // Values must be one label.
    let mut p = Placeholders::default();
    assert!(p.set("region", "east.us").is_err());
    assert!(p.set("region", "").is_err());
    assert!(p.set("region", "east us").is_err());
}

#[test]
fn ports_and_protocols() {
    let c = builtin();
    let first = |name: &str, proto, port| {
        let ms = c.match_endpoint(name, proto, port);
        let m = ms
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{name} no match"));
        (c.entries()[m.entry].id.clone(), m.proto_ok, m.port_ok)
    };
    let login = "public.general.login-microsoftonline-com";
    assert_eq!(
        first("login.microsoftonline.com", Some(Proto::Tcp), Some(443)),
        (login.into(), true, true)
    );
    assert_eq!(
        first("login.microsoftonline.com", Some(Proto::Tcp), Some(80)),
        (login.into(), true, true)
    );
    assert_eq!(
        first("login.microsoftonline.com", Some(Proto::Tcp), Some(8443)),
        (login.into(), true, false)
    );
    assert_eq!(
        first("login.microsoftonline.com", Some(Proto::Udp), Some(443)),
        (login.into(), false, false)
    );
    assert_eq!(
        first("login.microsoftonline.com", None, None),
        (login.into(), true, true)
    );
    let tundra = "public.compute.region-tundra-azureml-ms";
    assert_eq!(
        first("eastus.tundra.azureml.ms", Some(Proto::Udp), Some(5831)),
        (tundra.into(), true, true)
    );
    assert_eq!(
        first("eastus.tundra.azureml.ms", Some(Proto::Tcp), Some(5831)),
        (tundra.into(), false, false)
    );
    // proto = any entries accept both.
    let batch = "public.compute.batch-azure-com";
    assert_eq!(
        first("x.batch.azure.com", Some(Proto::Udp), Some(443)),
        (batch.into(), true, true)
    );
    // Ranges.
    let c2 = {
        let mut d = CatalogData::builtin();
        d.retain_scope(None, &allowscope::catalog::ScenarioSel::All);
        Catalog::new(d, Placeholders::default())
    };
    let ms = c2.match_endpoint("ci1.instances.azureml.ms", Some(Proto::Tcp), Some(8705));
    let ok: Vec<&str> = ms
        .iter()
        .filter(|m| m.port_ok)
        .map(|m| c2.entries()[m.entry].id.as_str())
        .collect();
    assert_eq!(ok, ["any.vscode.instances-azureml-ms-vscode"]);
    let ms = c2.match_endpoint("ci1.instances.azureml.ms", Some(Proto::Tcp), Some(8711));
    assert!(ms.iter().all(|m| !m.port_ok) && !ms.is_empty());
    // 8787 only by the private-endpoint entries.
    let ms = c2.match_endpoint("ci1.instances.azureml.ms", Some(Proto::Tcp), Some(8787));
    for m in ms.iter().filter(|m| m.port_ok) {
        assert_eq!(c2.entries()[m.entry].scenario, "private-endpoint");
    }
}

#[test]
fn case_trailing_dot_and_punycode() {
    let c = builtin();
    let want = ids(&c, "login.microsoftonline.com");
    assert_eq!(want.len(), 1);
    for n in [
        "LOGIN.MicrosoftOnline.COM",
        "login.microsoftonline.com.",
        "Login.Microsoftonline.Com.",
    ] {
        assert_eq!(ids(&c, n), want, "{n}");
    }
    assert!(ids(&c, "login.microsoftonline.com..").is_empty());
    // A Unicode pattern in a user catalog and its punycode forms.
    let toml = r#"
[[entry]]
id = "u"
cloud = "any"
group = "test"
purpose = "IDNA"
host = "*.BÜCHER.example"
ports = [443]

[[entry]]
id = "v"
cloud = "any"
group = "test"
purpose = "IDNA exact"
host = "xn--mnchen-3ya.example."
ports = [443]
"#;
    let d = CatalogData::parse(toml, "test").unwrap();
    assert_eq!(d.entries[0].pattern.text, "*.xn--bcher-kva.example");
    let c = Catalog::new(d, Placeholders::default());
    for n in [
        "a.bücher.example",
        "A.XN--BCHER-KVA.EXAMPLE.",
        "ä.Bücher.example",
    ] {
        assert_eq!(ids(&c, n), ["u"], "{n}");
    }
    assert!(ids(&c, "bücher.example").is_empty());
    assert!(ids(&c, "a.bucher.example").is_empty());
    for n in [
        "münchen.example",
        "MÜNCHEN.example.",
        "xn--mnchen-3ya.example",
        "münchen。example",
    ] {
        assert_eq!(ids(&c, n), ["v"], "{n}");
    }
}

#[test]
fn match_many_agrees_with_match_name_and_cache() {
    let c = builtin();
    let mut names: Vec<String> = Vec::new();
    for e in c.entries() {
        names.push(sample(&e.pattern, "x1"));
        names.push(format!("evil-{}", sample(&e.pattern, "x1")));
    }
    names.push("no.such.host".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let many = c.match_many(&refs);
    let again = c.match_many(&refs); // served from the cache
    assert_eq!(many, again);
    for (n, m) in refs.iter().zip(&many) {
        let plain: Vec<u32> = c.lookup_uncached(n).iter().map(|h| h.entry).collect();
        let got: Vec<u32> = m.iter().map(|x| x.entry as u32).collect();
        assert_eq!(plain, got, "{n}");
    }
    c.clear_cache();
    assert_eq!(c.match_many(&refs), many);
}

#[test]
fn options_scope_and_scenarios() {
    let load = |f: &dyn Fn(&mut CatalogOptions)| {
        let mut o = CatalogOptions::default();
        f(&mut o);
        o.load()
    };
    let c = load(&|_| {}).unwrap();
    assert!(c
        .entries()
        .iter()
        .all(|e| matches!(e.cloud.name(), "public" | "any")));
    let sc: BTreeSet<&str> = c.entries().iter().map(|e| e.scenario.as_str()).collect();
    assert_eq!(
        sc,
        [
            "compute",
            "compute-instance",
            "core",
            "mcr-images",
            "notebooks"
        ]
        .into_iter()
        .collect()
    );
    let c = load(&|o| {
        o.cloud = Some(CloudArg::Gov);
        o.scenarios = vec!["hbi-workspace".into()];
    })
    .unwrap();
    assert!(c
        .entries()
        .iter()
        .any(|e| e.pattern.text == "*.vault.usgovcloudapi.net"));
    assert!(c
        .entries()
        .iter()
        .all(|e| matches!(e.cloud.name(), "gov" | "any")));
    let c = load(&|o| {
        o.no_default_scenarios = true;
    })
    .unwrap();
    assert!(c.entries().iter().all(|e| e.scenario == "core"));
    let all = load(&|o| {
        o.cloud = Some(CloudArg::All);
        o.scenarios = vec!["all".into()];
    })
    .unwrap();
    assert_eq!(all.entries().len(), CatalogData::builtin().entries.len());
    assert!(load(&|o| o.scenarios = vec!["vsocde".into()]).is_err());
    assert!(load(&|o| o.region = Some("a.b".into())).is_err());
    assert!(load(&|o| o.catalog_mode = allowscope::catalog::CatalogMode::Replace).is_err());
}

#[test]
fn merge_replaces_by_id_and_export_round_trips() {
    let mut d = CatalogData::builtin();
    let n = d.entries.len();
    let user = CatalogData::parse(
        r#"
[[entry]]
id = "public.general.login-microsoftonline-com"
cloud = "public"
group = "general"
purpose = "overridden"
host = "login.microsoftonline.com"
ports = [443]

[[entry]]
id = "mine.proxy"
cloud = "any"
group = "proxy"
purpose = "our proxy"
host = "proxy.corp.example"
proto = "tcp"
ports = ["3128", "8080-8081"]
requirement = "optional"
"#,
        "user.toml",
    )
    .unwrap();
    d.merge(user);
    assert_eq!(d.entries.len(), n + 1);
    let login = d
        .entries
        .iter()
        .find(|e| e.id.starts_with("public.general.login"))
        .unwrap();
    assert_eq!(login.purpose, "overridden");
    assert_eq!(login.origin, "user.toml");
    let mine = d.entries.last().unwrap();
    assert_eq!(mine.requirement, Requirement::Optional);
    assert_eq!(
        mine.ports,
        [PortRange::one(3128), PortRange { lo: 8080, hi: 8081 }]
    );
    // Export and read back: the same data.
    let text = d.to_toml();
    let back = CatalogData::parse(&text, "user.toml").unwrap();
    assert_eq!(entries_without_origin(&back), entries_without_origin(&d));
    assert_eq!(back.service_tags.len(), d.service_tags.len());
    assert_eq!(back.scenarios, d.scenarios);
    assert_eq!(back.sources, d.sources);
    // The shipped file itself reads back the same as its export.
    let b = CatalogData::builtin();
    let again = CatalogData::parse(&b.to_toml(), "built-in").unwrap();
    assert_eq!(again, b);
    assert!(BUILTIN_TOML.contains("[[entry]]"));
}

/// Private-endpoint zones: parsed, checked, kept per cloud in scope, exported and read back.
#[test]
fn private_endpoint_zones_parse_scope_and_round_trip() {
    let b = CatalogData::builtin();
    let zones = |d: &CatalogData, cloud: &str| -> Vec<String> {
        d.private_endpoint_zones
            .iter()
            .filter(|z| z.cloud.name() == cloud)
            .map(|z| z.zone.clone())
            .collect()
    };
    for (cloud, want) in [
        ("public", "privatelink.api.azureml.ms privatelink.notebooks.azure.net privatelink.blob.core.windows.net privatelink.file.core.windows.net privatelink.dfs.core.windows.net privatelink.queue.core.windows.net privatelink.table.core.windows.net privatelink.vaultcore.azure.net privatelink.azurecr.io"),
        ("gov", "privatelink.api.ml.azure.us privatelink.notebooks.usgovcloudapi.net privatelink.blob.core.usgovcloudapi.net privatelink.file.core.usgovcloudapi.net privatelink.dfs.core.usgovcloudapi.net privatelink.queue.core.usgovcloudapi.net privatelink.table.core.usgovcloudapi.net privatelink.vaultcore.usgovcloudapi.net privatelink.azurecr.us"),
        ("china", "privatelink.api.ml.azure.cn privatelink.notebooks.chinacloudapi.cn privatelink.blob.core.chinacloudapi.cn privatelink.file.core.chinacloudapi.cn privatelink.dfs.core.chinacloudapi.cn privatelink.queue.core.chinacloudapi.cn privatelink.table.core.chinacloudapi.cn privatelink.vaultcore.azure.cn"),
    ] {
        assert_eq!(zones(&b, cloud).join(" "), want, "{cloud}");
    }
    for z in &b.private_endpoint_zones {
        assert!(!z.sources.is_empty(), "{}", z.zone);
        for s in &z.sources {
            assert!(b.sources.contains_key(s), "{}: {s}", z.zone);
        }
    }
    // Label-wise suffix, case ignored.
    let blob = b
        .private_endpoint_zone("MyStorage.PrivateLink.Blob.Core.Windows.Net.")
        .unwrap();
    assert_eq!(blob.service, "Azure Blob Storage");
    assert!(b
        .private_endpoint_zone("privatelink.blob.core.windows.net")
        .is_some());
    assert!(b
        .private_endpoint_zone("xprivatelink.blob.core.windows.net")
        .is_none());
    assert!(b
        .private_endpoint_zone("ak.privatelink.msidentity.com")
        .is_none());
    assert!(b.private_endpoint_zone("blob.core.windows.net").is_none());
    // The cloud in scope keeps its own.
    let mut gov = b.clone();
    gov.retain_scope(
        Some(allowscope::catalog::Cloud::Gov),
        &allowscope::catalog::ScenarioSel::All,
    );
    assert!(gov
        .private_endpoint_zones
        .iter()
        .all(|z| z.cloud.name() == "gov"));
    assert_eq!(gov.private_endpoint_zones.len(), 9);
    // A file's zone replaces the loaded one of the same zone and cloud; export reads back.
    let user = CatalogData::parse(
        "[[private_endpoint_zone]]\nzone = \"PrivateLink.Blob.Core.Windows.Net.\"\ncloud = \"public\"\nservice = \"Blobs\"\n",
        "user.toml",
    )
    .unwrap();
    let mut d = b.clone();
    d.merge(user);
    assert_eq!(
        d.private_endpoint_zones.len(),
        b.private_endpoint_zones.len()
    );
    assert_eq!(
        d.private_endpoint_zone("a.privatelink.blob.core.windows.net")
            .unwrap()
            .service,
        "Blobs"
    );
    let back = CatalogData::parse(&d.to_toml(), "user.toml").unwrap();
    let strip = |d: &CatalogData| {
        let mut v = d.private_endpoint_zones.clone();
        v.iter_mut().for_each(|z| z.origin.clear());
        v
    };
    assert_eq!(strip(&back), strip(&d));
    // Errors, with their lines.
    for (text, line, needle) in [
        ("[[private_endpoint_zone]]\nzone = \"*.privatelink.a.b\"\ncloud = \"public\"\nservice = \"s\"\n", 2, "without `*`"),
        ("[[private_endpoint_zone]]\nzone = \"<r>.a.b\"\ncloud = \"public\"\nservice = \"s\"\n", 2, "placeholders"),
        ("[[private_endpoint_zone]]\nzone = \"local\"\ncloud = \"public\"\nservice = \"s\"\n", 2, "two or more labels"),
        ("[[private_endpoint_zone]]\nzone = \"a.b\"\ncloud = \"public\"\nservice = \" \"\n", 4, "empty service"),
        ("[[private_endpoint_zone]]\nzone = \"a.b\"\ncloud = \"public\"\nservice = \"s\"\n\n[[private_endpoint_zone]]\nzone = \"A.B\"\ncloud = \"public\"\nservice = \"t\"\n", 7, "duplicate private endpoint zone `a.b` for cloud public (first on line 2)"),
        ("[[private_endpoint_zone]]\nzone = \"a.b\"\ncloud = \"public\"\nservice = \"s\"\nport = 1\n", 5, "port"),
    ] {
        let e = CatalogData::parse(text, "f.toml").unwrap_err();
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
    // The same zone in two clouds is fine.
    CatalogData::parse(
        "[[private_endpoint_zone]]\nzone = \"a.b\"\ncloud = \"public\"\nservice = \"s\"\n\n[[private_endpoint_zone]]\nzone = \"a.b\"\ncloud = \"gov\"\nservice = \"s\"\n",
        "f.toml",
    )
    .unwrap();
}

#[test]
fn schema_errors_carry_line_numbers() {
    let cases: &[(&str, usize, &str)] = &[
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443\n", 7, "array"),
        ("\n[[entry]]\nid = \"a\"\ncloud = \"publik\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\n", 4, "publik"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.*.b\"\nports = [443]\n", 6, "`*`"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443, 70000]\n", 7, "70000"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\nprots = 1\n", 8, "prots"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\n\n[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"c.d\"\nports = [443]\n", 10, "duplicate"),
        ("schema = 2\n", 1, "schema"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.<Region\"\nports = [443]\n", 6, "placeholder"),
        // One check serves every id, word and service tag field.
        ("[[entry]]\nid = \"a b\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\n", 2, "id `a b`"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"G\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\n", 4, "group `G`"),
        ("[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.b\"\nports = [443]\nscenario = \"X\"\n", 8, "scenario `X`"),
        ("[scenarios.Core]\ndescription = \"d\"\n", 1, "scenario name `Core`"),
        ("[[service_tag]]\nid = \"t\"\ntag = \"T\"\ncloud = \"any\"\nports = [443]\npurpose = \"p\"\n\n[[service_tag]]\nid = \"t\"\ntag = \"U\"\ncloud = \"any\"\nports = [443]\npurpose = \"p\"\n", 9, "duplicate service tag id `t` (first used on line 2)"),
    ];
    for (text, line, needle) in cases {
        let e = CatalogData::parse(text, "f.toml").unwrap_err();
        assert_eq!(e.line(), Some(*line), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().starts_with(&format!("f.toml:{line}:")), "{e}");
    }
}

#[test]
fn workspace_json_is_a_catalog() {
    let json = r#"{"value":[{"properties":{"category":"Azure Active Directory","endpoints":[
        {"domainName":"login.microsoftonline.com","endpointDetails":[{"port":80},{"port":443}]}]}},
        {"properties":{"category":"Azure Storage","endpoints":[
        {"domainName":"*.blob.core.windows.net","endpointDetails":[{"port":443}]},
        {"domainName":"myws.example","endpointDetails":[]}]}}]}"#;
    let d = CatalogData::parse(json, "ws.json").unwrap();
    assert_eq!(d.entries.len(), 3);
    assert_eq!(
        d.entries[0].ports,
        [PortRange::one(80), PortRange::one(443)]
    );
    assert_eq!(d.entries[0].purpose, "Azure Active Directory");
    assert_eq!(d.entries[2].ports, [PortRange { lo: 1, hi: 65535 }]);
    let c = Catalog::new(d, Placeholders::default());
    assert_eq!(
        ids(&c, "x.blob.core.windows.net"),
        ["ws.azure-storage.blob-core-windows-net"]
    );
    assert!(ids(&c, "blob.core.windows.net").is_empty());
    // A bare array works too; a bad name is located.
    let bad =
        "[\n{\"properties\":{\"category\":\"c\",\"endpoints\":[\n{\"domainName\":\"a..b\"}]}}]";
    let e = CatalogData::parse(bad, "ws.json").unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
    let e = CatalogData::parse("{\"value\": [", "ws.json").unwrap_err();
    assert!(e.line().is_some(), "{e}");
    assert!(CatalogData::parse("{\"foo\": 1}", "ws.json").is_err());
}

/// Workspace hosts whose ids would collide get distinct ones: a second `a.example` is
/// `...-2`, and a host whose own id is that (`a.example-2`) does not take it twice.
#[test]
fn workspace_json_ids_stay_unique() {
    let json = r#"[{"properties":{"category":"c","endpoints":[
        {"domainName":"a.example"},{"domainName":"a.example"},{"domainName":"a.example-2"},
        {"domainName":"a.example-2"}]}}]"#;
    let d = CatalogData::parse(json, "ws.json").unwrap();
    let ids: Vec<&str> = d.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ws.c.a-example",
            "ws.c.a-example-2",
            "ws.c.a-example-2-2",
            "ws.c.a-example-2-3"
        ]
    );
    // And the catalog it makes loads back from its own TOML.
    let c = Catalog::new(d, Placeholders::default());
    assert_eq!(c.entries().len(), 4);
}

/// A user catalog's own text (here a purpose with a table bar, backticks and an escape
/// sequence) cannot break the Markdown report's tables and lists, nor drive a terminal.
#[test]
fn catalog_text_is_escaped_in_reports() {
    let dir = std::env::temp_dir().join(format!("allowscope-cat-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("c.toml");
    std::fs::write(
        &cat,
        "[[entry]]\nid = \"x\"\ncloud = \"any\"\ngroup = \"test\"\npurpose = \"a | b `c` \\u001b[31m\"\nhost = \"never.example\"\nports = [443]\n",
    )
    .unwrap();
    let capture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tcp-outcomes.pcap");
    let args = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .args([
                "audit",
                "--catalog",
                cat.to_str().unwrap(),
                "--fail-on",
                "never",
            ])
            .args([
                "--show-unexercised",
                "--format",
                format,
                capture.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let md = args("markdown");
    assert!(
        md.contains("- `never.example` (x): a \\| b \\`c\\` \\x1b\\[31m\n"),
        "{md}"
    );
    let text = args("text");
    assert!(
        text.contains("  never.example (x, a | b `c` \\x1b[31m)\n"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn service_tags_match_regional_names() {
    let c = builtin();
    let ids = |n: &str| -> Vec<String> {
        c.match_service_tag(n)
            .iter()
            .map(|t| t.id.clone())
            .collect()
    };
    assert!(ids("AzureMachineLearning").contains(&"tag.azure-machine-learning".to_string()));
    assert!(ids("AzureMachineLearning.EastUS").contains(&"tag.azure-machine-learning".to_string()));
    assert_eq!(
        ids("Storage.WestEurope"),
        ["tag.storage", "tag.storage-smb"]
    );
    assert!(ids("Storage").is_empty());
    assert!(ids("AzureMachineLearningX").is_empty());
}

// ---- property tests: the matcher agrees with a naive reference -------------------------

const LABELS: &[&str] = &["a", "b", "ab", "xn--d-0fa", "c-1", "_t"];

/// The naive reference: compare label by label after filling placeholders.
fn naive(p: &Pattern, fill: &Placeholders, name: &str) -> Option<Vec<(String, String)>> {
    let name = allowscope::catalog::normalize(name)?;
    let n: Vec<&str> = name.split('.').collect();
    let k = p.labels.len();
    if p.wildcard {
        if n.len() <= k {
            return None;
        }
    } else if n.len() != k {
        return None;
    }
    let tail = &n[n.len() - k..];
    let mut b = Vec::new();
    for (l, got) in p.labels.iter().zip(tail) {
        match l {
            Label::Literal(s) => {
                if s != got {
                    return None;
                }
            }
            Label::Placeholder(ph) => match fill.get(ph) {
                Some(v) if v != *got => return None,
                _ => b.push((ph.clone(), got.to_string())),
            },
        }
    }
    Some(b)
}

fn arb_pattern() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(LABELS).prop_map(str::to_string),
                1 => prop::sample::select(&["<p>", "<q>"][..]).prop_map(str::to_string),
            ],
            1..4,
        ),
    )
        .prop_filter_map("needs a literal", |(w, ls)| {
            if !ls.iter().any(|l| !l.starts_with('<')) {
                return None;
            }
            Some(format!("{}{}", if w { "*." } else { "" }, ls.join(".")))
        })
}

fn arb_name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(LABELS), 1..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(ls, upper, dot)| {
            let mut s = ls.join(".");
            if upper {
                s = s.to_ascii_uppercase();
            }
            if dot {
                s.push('.');
            }
            s
        })
}

fn entry(i: usize, pattern: &str) -> Entry {
    Entry {
        id: format!("e{i}"),
        cloud: allowscope::catalog::Cloud::Any,
        group: "g".into(),
        purpose: "p".into(),
        pattern: Pattern::parse(pattern).unwrap(),
        proto: Proto::Tcp,
        ports: vec![PortRange::one(443)],
        requirement: Requirement::Required,
        scenario: "core".into(),
        condition: None,
        websocket: false,
        sources: vec![],
        note: None,
        origin: "prop".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matcher_agrees_with_naive_reference(
        patterns in prop::collection::vec(arb_pattern(), 1..12),
        names in prop::collection::vec(arb_name(), 1..24),
        fill_p in prop::option::of(prop::sample::select(LABELS)),
    ) {
        let mut fill = Placeholders::default();
        if let Some(v) = fill_p {
            fill.set("p", v).unwrap();
        }
        let entries: Vec<Entry> = patterns.iter().enumerate().map(|(i, p)| entry(i, p)).collect();
        let c = Catalog::new(CatalogData { entries: entries.clone(), ..Default::default() }, fill.clone());
        for name in &names {
            let got: Vec<(usize, Vec<(String, String)>)> = c
                .match_name(name)
                .into_iter()
                .map(|m| (m.entry, m.bound.iter().map(|b| (b.placeholder.to_string(), b.value.to_string())).collect()))
                .collect();
            let mut want: Vec<(usize, Vec<(String, String)>)> = entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| naive(&e.pattern, &fill, name).map(|b| (i, b)))
                .collect();
            let got_set: BTreeSet<_> = got.iter().cloned().collect();
            let want_set: BTreeSet<_> = want.iter().cloned().collect();
            prop_assert_eq!(&got_set, &want_set, "name {}", name);
            // Order: more labels fixed first, then more literals, then no wildcard.
            let key = |i: usize| {
                let p = &entries[i].pattern;
                let lits = p.labels.iter().filter(|l| match l {
                    Label::Literal(_) => true,
                    Label::Placeholder(n) => fill.get(n).is_some(),
                }).count();
                (std::cmp::Reverse(p.labels.len()), std::cmp::Reverse(lits), p.wildcard, i)
            };
            want.sort_by_key(|(i, _)| key(*i));
            prop_assert_eq!(got, want, "order for {}", name);
            // The cached path and the uncached path agree.
            let unc: Vec<usize> = c.lookup_uncached(name).iter().map(|h| h.entry as usize).collect();
            let cached: Vec<usize> = c.lookup(name).iter().map(|h| h.entry as usize).collect();
            prop_assert_eq!(unc, cached);
        }
    }

    #[test]
    fn case_and_trailing_dot_do_not_change_matches(name in arb_name()) {
        let c = builtin();
        let plain = name.trim_end_matches('.').to_ascii_lowercase();
        prop_assert_eq!(c.match_name(&name), c.match_name(&plain));
    }

    #[test]
    fn random_names_never_panic(name in "\\PC{0,80}") {
        let c = builtin();
        let _ = c.match_name(&name);
        let _ = allowscope::catalog::normalize(&name);
    }
}

// ---- the `catalog` subcommands, through the built binary --------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_stdin(args, None)
}

fn run_stdin(args: &[&str], input: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run allowscope");
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tmp_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("catalog-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn cli_check_reports_syntax_and_schema_errors_with_line_numbers() {
    let syntax = tmp_file(
        "syntax.toml",
        "schema = 1\n\n[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.example\"\nports = [443,,]\n",
    );
    let r = run(&["catalog", "check", syntax.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("syntax.toml:9:"), "{}", r.stderr);
    let schema = tmp_file(
        "schema.toml",
        "[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"a.example\"\nproto = \"sctp\"\nports = [443]\n",
    );
    let r = run(&["catalog", "check", schema.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("schema.toml:7:"), "{}", r.stderr);
    assert!(r.stderr.contains("sctp"), "{}", r.stderr);
    // Several semantic errors at once, each with its line.
    let sem = tmp_file(
        "semantic.toml",
        "[[entry]]\nid = \"a\"\ncloud = \"public\"\ngroup = \"g\"\npurpose = \"p\"\nhost = \"evil.*.example\"\nports = [\"9-1\"]\n",
    );
    let r = run(&["catalog", "check", sem.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("semantic.toml:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("semantic.toml:7:"), "{}", r.stderr);
    // The same file given to --catalog fails the command with exit 2.
    let r = run(&["catalog", "list", "--catalog", schema.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("schema.toml:7:"), "{}", r.stderr);
    let r = run(&[
        "catalog",
        "match",
        "x.azureml.ms",
        "--catalog",
        "/nonexistent/cat.toml",
    ]);
    assert_eq!(r.code, 2);
    let r = run(&["catalog", "check", "/nonexistent/cat.toml"]);
    assert_eq!(r.code, 2);
}

#[test]
fn cli_export_is_accepted_by_check_and_catalog() {
    let r = run(&["catalog", "export"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, BUILTIN_TOML);
    let p = tmp_file("export.toml", &r.stdout);
    let r = run(&["catalog", "check", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[
        "catalog",
        "list",
        "--format",
        "json",
        "--cloud",
        "all",
        "--scenario",
        "all",
        "--catalog-mode",
        "replace",
        "--catalog",
        p.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        CatalogData::builtin().entries.len()
    );
    // A filtered, filled export reads back through stdin.
    let r = run(&[
        "catalog",
        "export",
        "--cloud",
        "gov",
        "--region",
        "usgovvirginia",
    ]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("usgovvirginia.tundra.azureml.us"));
    let r2 = run_stdin(&["catalog", "check", "-"], Some(&r.stdout));
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    // list --format toml as well.
    let r = run(&["catalog", "list", "--format", "toml"]);
    let r2 = run_stdin(&["catalog", "check", "-"], Some(&r.stdout));
    assert_eq!(r2.code, 0, "{}", r2.stderr);
}

#[test]
fn cli_list_json_fields() {
    let r = run(&["catalog", "list", "--format", "json", "--cloud", "china"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert!(!arr.is_empty());
    for e in arr {
        for k in [
            "id",
            "cloud",
            "pattern",
            "proto",
            "ports",
            "purpose",
            "requirement",
            "scenario",
            "sources",
            "websocket",
        ] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
        assert!(matches!(e["cloud"].as_str(), Some("china" | "any")));
    }
    let r = run(&["catalog", "list"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("login.microsoftonline.com"));
    let r = run(&["catalog", "list", "--scenario", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown scenario"), "{}", r.stderr);
}

#[test]
fn cli_match_json_and_text() {
    let r = run(&[
        "catalog",
        "match",
        "Acct1.blob.core.windows.net.",
        "--port",
        "445",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr[0]["pattern"], "<storage>.blob.core.windows.net");
    assert_eq!(arr[0]["bound"]["storage"], "acct1");
    assert_eq!(arr[0]["port_ok"], false);
    assert_eq!(arr.last().unwrap()["pattern"], "*.blob.core.windows.net");
    let r = run(&[
        "catalog",
        "match",
        "x.file.core.windows.net",
        "--storage",
        "x",
        "--port",
        "445",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["port_ok"], true);
    assert_eq!(v[0]["bound"]["storage"], "x");
    // Nothing matches: [] and exit 0.
    for n in [
        "evil-azureml.ms",
        "azureml.ms.evil.com",
        "azureml.ms",
        "a..b",
    ] {
        let r = run(&["catalog", "match", n, "--format", "json"]);
        assert_eq!(r.code, 0);
        assert_eq!(r.stdout.trim(), "[]", "{n}");
    }
    // Protocol mismatch.
    let r = run(&[
        "catalog",
        "match",
        "eastus.tundra.azureml.ms",
        "--proto",
        "tcp",
        "--port",
        "5831",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["proto_ok"], false);
    assert_eq!(v[0]["port_ok"], false);
    assert_eq!(v[0]["bound"]["region"], "eastus");
    // Text: why it matched.
    let r = run(&[
        "catalog",
        "match",
        "x.tundra.eastus.api.azureml.ms",
        "--proto",
        "udp",
        "--port",
        "5831",
    ]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("<region> = eastus"), "{}", r.stdout);
    assert!(r.stdout.contains("-> allowed"), "{}", r.stdout);
    // Out of scope hint.
    let r = run(&["catalog", "match", "x.vscode.dev"]);
    assert!(r.stdout.contains("--scenario vscode"), "{}", r.stdout);
}

#[test]
fn cli_text_output_escapes_control_characters() {
    let evil = "\u{1b}[31mred\u{7}.blob.core.windows.net";
    let r = run(&["catalog", "match", evil]);
    assert_eq!(r.code, 0);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(!r.stdout.contains('\u{7}'), "{:?}", r.stdout);
    assert!(r.stdout.contains("\\x1b[31mred\\x07"), "{:?}", r.stdout);
    // A user catalog with control characters in its text fields.
    let p = tmp_file(
        "evil.toml",
        "[[entry]]\nid = \"e\"\ncloud = \"any\"\ngroup = \"g\"\npurpose = \"bad\\u001b[2J\"\nhost = \"evil.example\"\nports = [443]\n",
    );
    let r = run(&["catalog", "list", "--catalog", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'));
    let r = run(&[
        "catalog",
        "match",
        "evil.example",
        "--catalog",
        p.to_str().unwrap(),
    ]);
    assert!(!r.stdout.contains('\u{1b}'));
    assert!(r.stdout.contains("bad\\x1b[2J"), "{}", r.stdout);
}

#[test]
fn cli_workspace_json() {
    let p = tmp_file(
        "ws.json",
        r#"{"value":[{"properties":{"category":"Azure Storage","endpoints":[{"domainName":"*.blob.core.windows.net","endpointDetails":[{"port":443}]}]}}]}"#,
    );
    let r = run(&[
        "catalog",
        "match",
        "a.blob.core.windows.net",
        "--catalog",
        p.to_str().unwrap(),
        "--catalog-mode",
        "replace",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["sources"][0], "workspace-json");
    let r = run(&["catalog", "check", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn catalog_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
    let c = std::sync::Arc::new(builtin());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                for j in 0..2000 {
                    let n = format!("h{}.azureml.ms", (i * 7 + j) % 300);
                    assert_eq!(c.lookup(&n).len(), 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Every input that made a fuzz target fail (tests/data/fuzz/, README "Fuzzing") reads, or not,
/// without a panic, and a catalog that reads exports to TOML that reads back to the same entries
/// (what the catalog_toml and workspace_json targets check). The first: a workspace JSON
/// category longer than 64 bytes gave a group name the TOML schema rejects.
#[test]
fn fuzz_regressions_catalog_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut n = 0;
    for target in ["catalog_toml", "workspace_json"] {
        let Ok(files) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for f in files {
            let path = f.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            n += 1;
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let Ok(d) = CatalogData::parse(text, "fuzz.toml") else {
                continue;
            };
            let back = CatalogData::parse(&d.to_toml(), "fuzz.toml").unwrap_or_else(|e| {
                panic!("{}: the export does not read back: {e}", path.display())
            });
            assert_eq!(
                entries_without_origin(&back),
                entries_without_origin(&d),
                "{}",
                path.display()
            );
        }
    }
    assert!(n >= 1, "the kept inputs are read");
}

/// A catalog's entries without their origin (the file they were read from), to compare a
/// catalog with its export read back.
fn entries_without_origin(d: &CatalogData) -> Vec<Entry> {
    d.entries
        .iter()
        .cloned()
        .map(|mut e| {
            e.origin.clear();
            e
        })
        .collect()
}

//! What every output says of the run that wrote it (issue 22): the provenance of each JSON
//! document, the labels on every NDJSON row, the audit NDJSON's row kinds, and engines reading
//! the NDJSON of every recorded capture.

use serde_json::{json, Value};

mod common;
use common::{cap, run};

fn parse_rows(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Every JSON document names the command, this build and the labels; every NDJSON row of
/// `flows`, `dns`, `ws` and `audit` carries the labels.
#[test]
fn every_document_and_row_says_what_produced_it() {
    let dir = cap("");
    let dir = dir.to_str().unwrap();
    let labels = ["--label", "host=web-3", "--label", "site=west eu"];
    let want = json!({"host": "web-3", "site": "west eu"});
    for (command, catalog) in [
        ("flows", false),
        ("dns", false),
        ("ws", true),
        ("audit", true),
    ] {
        let mut args = vec![command, "--format", "json", "-q", "--fail-on", "never"];
        if command != "audit" {
            args.retain(|a| *a != "--fail-on" && *a != "never");
        }
        args.extend(labels);
        args.push(dir);
        let (code, out, err) = run(&args);
        assert!(code == 0 || code == 2, "{command}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["schema_version"], 3, "{command}");
        let p = &doc["provenance"];
        assert_eq!(p["command"], command);
        assert_eq!(p["tool"]["name"], "allowscope");
        assert_eq!(p["tool"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(p["labels"], want, "{command}");
        assert_eq!(p["options"]["max_flows"], 500_000, "{command}");
        assert_eq!(p["catalog"].is_object(), catalog, "{command}: {p}");
        if catalog {
            assert_eq!(p["cloud"], "public");
            assert!(p["catalog"]["digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"));
        }
        // The NDJSON rows.
        let mut args: Vec<&str> = vec![command, "--format", "ndjson", "-q"];
        if command == "audit" {
            args.extend(["--fail-on", "never"]);
        }
        args.extend(labels);
        args.push(dir);
        let (_, out, err) = run(&args);
        let rows = parse_rows(&out);
        assert!(!rows.is_empty(), "{command}: {err}");
        for r in &rows {
            assert_eq!(r["labels"], want, "{command}: {r}");
        }
    }
    // The inputs' summaries carry the labels, size and digest.
    let (_, out, _) = run(&[
        "flows",
        "--format",
        "json",
        "--label",
        "k=v",
        cap("tcp-outcomes.pcap.gz").to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let file = &doc["files"][0];
    assert_eq!(file["labels"], json!({"k": "v"}));
    assert_eq!(
        file["size"],
        std::fs::metadata(cap("tcp-outcomes.pcap.gz"))
            .unwrap()
            .len()
    );
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);
    // A bad label is a usage error.
    let (code, _, err) = run(&["flows", "--label", "no-equals", dir]);
    assert_eq!(code, 2);
    assert!(err.contains("expected KEY=VALUE"), "{err}");
}

/// The audit's NDJSON: a `kind` first on every row; flows (with the port they were meant for:
/// a CONNECT target's through a proxy), then the DNS findings and the coverage lines of the
/// JSON document, the same ones.
#[test]
fn audit_ndjson_has_flows_dns_findings_and_coverage() {
    let p = cap("audit-client.pcap");
    let p = p.to_str().unwrap();
    let (_, out, _) = run(&["audit", "--format", "ndjson", "--fail-on", "never", p]);
    let rows = parse_rows(&out);
    let (_, doc, _) = run(&["audit", "--format", "json", "--fail-on", "never", p]);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let of = |kind: &str| -> Vec<Value> {
        rows.iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| {
                let mut r = r.clone();
                let o = r.as_object_mut().unwrap();
                o.remove("kind");
                o.remove("labels");
                r
            })
            .collect()
    };
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    let first_other = kinds.iter().position(|k| *k != "flow").unwrap();
    assert!(
        kinds[first_other..].iter().all(|k| *k != "flow"),
        "flows first"
    );
    assert_eq!(of("flow").len(), doc["inputs"][0]["flow_table"]["flows"]);
    assert_eq!(Value::from(of("dns-finding")), doc["dns_failures"]);
    assert_eq!(Value::from(of("coverage")), doc["coverage"]);
    assert!(!of("dns-finding").is_empty());
    assert!(
        out.lines().all(|l| l.starts_with("{\"kind\":\"")),
        "kind first"
    );
    // Not through a proxy: the server's port.
    for r in rows
        .iter()
        .filter(|r| r["kind"] == "flow" && r["connect"].is_null() && r["http"].is_null())
    {
        assert_eq!(r["target_port"], r["dst_port"], "{r}");
    }
    // Through a proxy: the proxy's port, and the target's.
    let (_, out, _) = run(&[
        "audit",
        "--format",
        "ndjson",
        "--fail-on",
        "never",
        cap("proxy.pcap").to_str().unwrap(),
    ]);
    let proxied: Vec<(u64, u64)> = parse_rows(&out)
        .iter()
        .filter(|r| r["kind"] == "flow" && r["connect_target"].is_string())
        .map(|r| {
            (
                r["dst_port"].as_u64().unwrap(),
                r["target_port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(proxied.contains(&(3128, 443)), "{proxied:?}");
    assert!(proxied.contains(&(3128, 8787)), "{proxied:?}");
}

/// An input's digest is the SHA-256 of the file as stored (plain, gzip, zstd; read or mapped),
/// and none for an input an error stopped.
#[test]
fn inputs_carry_the_digest_of_the_file_as_stored() {
    for name in [
        "tcp-outcomes.pcap",
        "tcp-outcomes.pcap.gz",
        "tcp-outcomes.pcap.zst",
    ] {
        let p = cap(name);
        let bytes = std::fs::read(&p).unwrap();
        let want = allowscope::provenance::sha256_hex(&bytes);
        for mmap in [false, true] {
            let mut args = vec!["flows", "--format", "json", p.to_str().unwrap()];
            if mmap {
                args.push("--mmap");
            }
            let (code, out, err) = run(&args);
            assert_eq!(code, 0, "{name}: {err}");
            let doc: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                doc["files"][0]["sha256"],
                want.as_str(),
                "{name} mmap={mmap}"
            );
            assert_eq!(doc["files"][0]["size"], bytes.len(), "{name} mmap={mmap}");
        }
    }
    for mmap in [false, true] {
        let p = cap("broken-caplen.pcap");
        let mut args = vec!["flows", "--format", "json", p.to_str().unwrap()];
        if mmap {
            args.push("--mmap");
        }
        let (code, out, _) = run(&args);
        assert_eq!(code, 2);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["files"][0]["sha256"], Value::Null, "mmap={mmap}");
        assert_eq!(doc["files"][0]["size"], Value::Null, "mmap={mmap}");
    }
}

/// Every NDJSON row of a kind has the same keys, on every recorded capture (engines read the
/// rows as one table; tests/engines.rs reads them with DuckDB and Polars under CI).
#[test]
fn ndjson_rows_of_a_kind_share_their_keys() {
    let dir = cap("");
    for command in ["flows", "dns", "ws", "audit"] {
        let mut args = vec![command, "--format", "ndjson", "-q"];
        if command == "audit" {
            args.extend(["--fail-on", "never"]);
        }
        args.push(dir.to_str().unwrap());
        let (_, out, err) = run(&args);
        let mut shapes: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in parse_rows(&out) {
            let kind = r["kind"].as_str().unwrap_or("-").to_string();
            let keys: Vec<String> = r.as_object().unwrap().keys().cloned().collect();
            let first = shapes.entry(kind.clone()).or_insert_with(|| keys.clone());
            assert_eq!(*first, keys, "{command}: a {kind} row with other keys");
        }
        assert!(!shapes.is_empty(), "{command}: {err}");
    }
}

/// `--parquet DIR`: the tables hold every flow, lookup and finding (read back with the parquet
/// crate, no engine needed); a DIR that cannot be made is exit 2, said.
#[test]
fn parquet_tables_hold_every_row() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let rows = |p: &std::path::Path| {
        let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
        r.metadata().file_metadata().num_rows()
    };
    let dir = std::env::temp_dir().join(format!("allowscope-parquet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let input = cap("audit-client.pcap");
    let input = input.to_str().unwrap();
    let audit = |to: &std::path::Path| {
        run(&[
            "audit",
            "--format",
            "json",
            "--fail-on",
            "never",
            "--parquet",
            to.to_str().unwrap(),
            input,
        ])
    };
    let (code, doc, err) = audit(&dir);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let (_, dns, _) = run(&["dns", "--format", "ndjson", "-q", input]);
    assert_eq!(
        rows(&dir.join("flows/part-00000.parquet")),
        doc["inputs"][0]["flow_table"]["flows"]
    );
    assert_eq!(
        rows(&dir.join("dns/part-00000.parquet")),
        dns.lines().count() as i64
    );
    let findings =
        doc["findings"].as_array().unwrap().len() + doc["dns_failures"].as_array().unwrap().len();
    assert_eq!(rows(&dir.join("findings.parquet")), findings as i64);
    assert_eq!(
        rows(&dir.join("websockets.parquet")),
        doc["websockets"]["connections"].as_array().unwrap().len() as i64
    );
    assert!(
        rows(&dir.join("coverage.parquet")) >= doc["coverage"].as_array().unwrap().len() as i64
    );
    // A file where the directory should be.
    let file = dir.join("findings.parquet");
    let (code, out, err) = audit(&file);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("--parquet: ") && err.contains("findings.parquet"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

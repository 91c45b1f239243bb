//! The published JSON Schemas (docs/schema/, `allowscope schema NAME`) validate what the tool
//! writes: every JSON document and NDJSON row of audit, merge, flows, dns, ws and
//! check-allowlist over every recorded capture and allowlist (the validator is the
//! `jsonschema` crate, another implementation than the one that generates the schemas).

mod common;

use common::{cap, run};
use serde_json::Value;

/// The schema `name` as the binary prints it, which is the file in docs/schema/ too.
fn schema(name: &str) -> jsonschema::Validator {
    let (code, out, err) = run(&["schema", name]);
    assert_eq!(code, 0, "{err}");
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/schema")
            .join(format!("{name}.schema.json")),
    )
    .unwrap();
    assert!(
        out == on_disk,
        "docs/schema/{name}.schema.json is not what the build prints"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    jsonschema::draft202012::new(&v).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every error of `doc` against `v`, with where it is.
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(10)
        .collect()
}

fn valid_document(name: &str, what: &str, text: &str) {
    let v = schema(name);
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let errs = errors(&v, &doc);
    assert!(errs.is_empty(), "{what} against {name}: {errs:#?}");
}

/// Validates every line; returns how many there were of each kind (`kind_key`).
fn valid_rows(name: &str, what: &str, text: &str, kind_key: Option<&str>) -> Vec<(String, usize)> {
    let v = schema(name);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, line) in text.lines().enumerate() {
        let row: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}:{i}: {e}"));
        let errs = errors(&v, &row);
        assert!(
            errs.is_empty(),
            "{what} line {} against {name}: {errs:#?}\n{line}",
            i + 1
        );
        let kind = kind_key.map_or("row".to_string(), |k| row[k].as_str().unwrap().to_string());
        *kinds.entry(kind).or_default() += 1;
    }
    kinds.into_iter().collect()
}

/// The documents and rows of every capture command, over every capture of captures/ at once
/// (broken inputs too: the audit document then says it is incomplete), with labels and the
/// service tags, validate; so do a merge of two labelled audits.
#[test]
fn every_capture_output_validates() {
    let captures = cap("");
    let captures = captures.to_str().unwrap();
    let tags = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/service-tags.json");
    for (command, doc, row, kind) in [
        ("audit", "audit", "audit-row", Some("kind")),
        ("flows", "flows", "flow-row", None),
        ("dns", "dns", "dns-row", None),
        ("ws", "ws", "ws-row", None),
    ] {
        for (format, name) in [("json", doc), ("ndjson", row)] {
            let mut args = vec![command, "--format", format, "-q", "--label", "host=a"];
            if command == "audit" {
                args.extend(["--fail-on", "never", "--service-tags", tags]);
            }
            args.push(captures);
            let (_, out, err) = run(&args);
            assert!(out.len() > 1000, "{command} {format}: {err}");
            let what = format!("{command} --format {format}");
            if format == "json" {
                valid_document(name, &what, &out);
                if command == "audit" {
                    assert!(out.contains("\"complete\": false"), "broken inputs are in");
                }
            } else {
                let kinds = valid_rows(name, &what, &out, kind);
                if command == "audit" {
                    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
                    assert_eq!(names, ["coverage", "dns-finding", "flow"]);
                }
            }
        }
    }

    // A merge of two hosts' audits (their inputs renamed by label).
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("schema-merge");
    std::fs::create_dir_all(&dir).unwrap();
    let mut docs = Vec::new();
    for (host, capture) in [("a", "audit-client.pcap"), ("b", "ws-client.pcap")] {
        let label = format!("host={host}");
        let c = cap(capture);
        let (_, out, err) = run(&[
            "audit",
            "--format",
            "json",
            "--fail-on",
            "never",
            "--label",
            &label,
            c.to_str().unwrap(),
        ]);
        let path = dir.join(format!("{host}.json"));
        std::fs::write(&path, &out).unwrap_or_else(|e| panic!("{e}: {err}"));
        docs.push(path);
    }
    let (code, out, err) = run(&[
        "merge",
        "--format",
        "json",
        "--fail-on",
        "never",
        docs[0].to_str().unwrap(),
        docs[1].to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("host=b:"), "inputs are renamed by label");
    valid_document("audit", "merge", &out);
}

/// check-allowlist's document and lines, for every allowlist format.
#[test]
fn every_allowlist_output_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/allowlists");
    let mut kinds = std::collections::BTreeSet::new();
    for list in [
        "hosts.txt",
        "policy-template.json",
        "rcg-show.json",
        "squid.conf",
    ] {
        let path = dir.join(list);
        for format in ["json", "ndjson"] {
            let (_, out, err) = run(&[
                "check-allowlist",
                "--format",
                format,
                path.to_str().unwrap(),
            ]);
            let what = format!("check-allowlist --format {format} {list}");
            assert!(out.len() > 100, "{what}: {err}");
            if format == "json" {
                valid_document("check-allowlist", &what, &out);
            } else {
                for (k, _) in valid_rows("check-allowlist-row", &what, &out, Some("type")) {
                    kinds.insert(k);
                }
            }
        }
    }
    // Every kind of line was seen somewhere.
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["broader", "entry", "not-followed", "rule", "useless"]
    );
}

/// A schema fails what the tool does not write: a key it does not know, a kind it does not
/// have, a missing key (so the validation above means something).
#[test]
fn schemas_refuse_what_is_not_written() {
    let c = cap("tcp-outcomes.pcap");
    let (_, out, _) = run(&["flows", "--format", "ndjson", c.to_str().unwrap()]);
    let row: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let v = schema("flow-row");
    assert!(errors(&v, &row).is_empty());
    let mut extra = row.clone();
    extra["surprise"] = 1.into();
    assert!(!errors(&v, &extra).is_empty(), "an unknown key");
    let mut missing = row.clone();
    missing.as_object_mut().unwrap().remove("dst_port");
    assert!(!errors(&v, &missing).is_empty(), "a missing key");
    let mut wrong = row;
    wrong["outcome"] = "sort-of".into();
    assert!(
        !errors(&v, &wrong).is_empty(),
        "a name outside the vocabulary"
    );

    let (_, out, _) = run(&[
        "audit",
        "--format",
        "ndjson",
        "--fail-on",
        "never",
        c.to_str().unwrap(),
    ]);
    let mut row: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let v = schema("audit-row");
    assert!(errors(&v, &row).is_empty());
    row["kind"] = "coverage".into();
    assert!(
        !errors(&v, &row).is_empty(),
        "a flow row is not a coverage row"
    );
}

/// `allowscope schema` lists the published schemas, one per line, the files of docs/schema/;
/// a name it does not have is a usage error (exit 2) that names the ones it has.
#[test]
fn schema_lists_its_names_and_refuses_others() {
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort_unstable();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".schema.json").map(str::to_string)
        })
        .collect();
    files.sort_unstable();
    assert_eq!(listed, files);
    let (code, out, err) = run(&["schema", "nope"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("nope") && err.contains("audit-row"), "{err}");
}

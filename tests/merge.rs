//! `allowscope merge` on broken and hostile documents: every one is exit 2 with the file and
//! what is wrong, never a panic.

use serde_json::{json, Value};

mod common;
use common::{cap, run};

/// The audit JSON of one capture.
fn audit_doc(capture: &str) -> Value {
    let path = cap(capture).to_string_lossy().into_owned();
    let (code, out, err) = run(&["audit", "--format", "json", "--fail-on", "never", &path]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `merge --fail-on never a b`.
fn merge(a: &std::path::Path, b: &std::path::Path) -> (i32, String, String) {
    run(&[
        "merge",
        "--fail-on",
        "never",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ])
}

#[test]
fn broken_documents_are_errors_not_panics() {
    let dir = std::env::temp_dir().join(format!("allowscope-merge-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = audit_doc("audit-client.pcap");
    assert!(!good["findings"].as_array().unwrap().is_empty());
    assert!(!good["coverage"].as_array().unwrap().is_empty());
    let good_path = dir.join("good.json");
    std::fs::write(&good_path, good.to_string()).unwrap();
    let count_key = good["counts"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let count_key2 = count_key.clone();
    // (file, change to the good document, what the error says)
    type Change = Box<dyn Fn(&mut Value)>;
    let not_audit = "not an allowscope audit JSON document (schema_version 3): ";
    let cases: Vec<(&str, Change, String)> = vec![
        (
            "numbers.json",
            Box::new(|d| d["findings"] = json!([1, 2, 3])),
            format!("{not_audit}invalid type: integer `1`, expected struct Finding"),
        ),
        (
            "findings-object.json",
            Box::new(|d| d["findings"] = json!({"a": 1})),
            format!("{not_audit}invalid type: map, expected a sequence"),
        ),
        (
            "empty-finding.json",
            Box::new(|d| d["findings"][0] = json!({})),
            format!("{not_audit}missing field `verdict`"),
        ),
        (
            "flows-text.json",
            Box::new(|d| d["findings"][0]["flows"] = json!("many")),
            format!("{not_audit}invalid type: string \"many\", expected u64"),
        ),
        (
            "flows-negative.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(-1)),
            format!("{not_audit}invalid value: integer `-1`, expected u64"),
        ),
        (
            "flows-float.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(1e300)),
            format!("{not_audit}invalid type: floating point `1e+300`, expected u64"),
        ),
        (
            "flows-missing.json",
            Box::new(|d| {
                d["findings"][0].as_object_mut().unwrap().remove("flows");
            }),
            format!("{not_audit}missing field `flows`"),
        ),
        (
            "files-numbers.json",
            Box::new(|d| d["findings"][0]["files"] = json!([1])),
            format!("{not_audit}invalid type: integer `1`, expected a string"),
        ),
        (
            "verdict-unknown.json",
            Box::new(|d| d["findings"][0]["verdict"] = json!("mostly-blocked")),
            format!(
                "{not_audit}unknown variant `mostly-blocked`, expected one of `required-blocked`"
            ),
        ),
        (
            "outcome-unknown.json",
            Box::new(|d| d["findings"][0]["worst_outcome"] = json!(7)),
            format!("{not_audit}invalid type: integer `7`, expected a name of Outcome"),
        ),
        (
            "field-unknown.json",
            Box::new(|d| d["findings"][0]["flows_per_second"] = json!(3)),
            format!("{not_audit}unknown field `flows_per_second`"),
        ),
        (
            "top-field-unknown.json",
            Box::new(|d| d["signature"] = json!("x")),
            format!("{not_audit}unknown field `signature`"),
        ),
        (
            "input-field-unknown.json",
            Box::new(|d| d["inputs"][0]["flow_table"]["peak_dead"] = json!(1)),
            format!("{not_audit}unknown field `peak_dead`"),
        ),
        (
            "flows-huge.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(u64::MAX)),
            "findings[0].flows: the counts add up to more than 18446744073709551615".into(),
        ),
        (
            "flows-too-huge.json",
            // One more than a u64 holds, written as an integer (see `<huge>` below).
            Box::new(|d| d["findings"][0]["flows"] = json!("<huge>")),
            format!(
                "{not_audit}invalid type: floating point `1.8446744073709552e+19`, expected u64"
            ),
        ),
        (
            "counts-huge.json",
            Box::new(move |d| d["counts"][&count_key] = json!(u64::MAX)),
            format!("counts.{count_key2}: the counts add up to more than"),
        ),
        (
            "counts-list.json",
            Box::new(|d| d["counts"] = json!([1])),
            format!("{not_audit}invalid type: sequence, expected a map"),
        ),
        (
            "coverage-strings.json",
            Box::new(|d| d["coverage"] = json!(["x"])),
            format!("{not_audit}invalid type: string \"x\", expected struct Coverage"),
        ),
        (
            "coverage-verdicts.json",
            Box::new(|d| d["coverage"][0]["verdicts"] = json!([1])),
            format!("{not_audit}invalid type: sequence, expected a map"),
        ),
        (
            "coverage-by-file.json",
            Box::new(|d| d["coverage"][0]["by_file"] = json!({"f": 3})),
            format!("{not_audit}invalid type: integer `3`, expected a map"),
        ),
        (
            "coverage-huge.json",
            Box::new(|d| {
                let v = d["coverage"][0]["verdicts"].as_object_mut().unwrap();
                let k = v.keys().next().unwrap().clone();
                v[&k] = json!(u64::MAX);
            }),
            "coverage[0].verdicts.".into(),
        ),
        (
            "dns-failures.json",
            Box::new(|d| d["dns_failures"] = json!(7)),
            format!("{not_audit}invalid type: integer `7`, expected a sequence"),
        ),
        (
            "dns-failures-missing.json",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("dns_failures");
            }),
            format!("{not_audit}missing field `dns_failures`"),
        ),
        (
            "websockets.json",
            Box::new(|d| d["websockets"] = json!({"connections": 5})),
            format!("{not_audit}invalid type: integer `5`, expected a sequence"),
        ),
        (
            "array.json",
            Box::new(|d| *d = json!([d.clone()])),
            "not an allowscope audit JSON document (not an object)".into(),
        ),
        (
            "no-version.json",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("schema_version");
            }),
            format!("{not_audit}missing field `schema_version`"),
        ),
        (
            "newer.json",
            Box::new(|d| d["schema_version"] = json!(1)),
            "schema_version 1: this build reads audit documents of version 3 only".into(),
        ),
        (
            "newer-and-other.json",
            Box::new(|d| {
                d["schema_version"] = json!(1);
                d["findings"] = json!({"in version 2": "a map"});
            }),
            "schema_version 1: this build reads audit documents of version 3 only".into(),
        ),
        (
            "escape.json",
            Box::new(|d| d["findings"][0]["\u{1b}[31mred"] = json!(1)),
            format!("{not_audit}unknown field `\\x1b[31mred`"),
        ),
    ];
    for (file, change, says) in &cases {
        let mut bad = serde_json::from_str::<Value>(&good.to_string()).unwrap();
        // Another capture's document (the same input twice is refused before any count).
        bad["inputs"][0]["file"] = json!("other.pcap");
        bad["inputs"][0]["sha256"] = json!("0".repeat(64));
        change(&mut bad);
        let path = dir.join(file);
        let text = bad
            .to_string()
            .replace("\"<huge>\"", "18446744073709551616");
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = merge(&good_path, &path);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(out.is_empty(), "{file}: {out}");
        assert!(!err.contains("panicked"), "{file}: {err}");
        assert!(
            err.contains(&format!("{}: {says}", path.display())),
            "{file}: {err}"
        );
    }
    // Files that are no JSON document at all.
    let n = 100_000;
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deep_inside = format!("{{\"schema_version\": 3, \"findings\": {deep}}}");
    let raw: [(&str, &[u8], &str); 6] = [
        ("empty.json", b"", "not JSON: EOF while parsing a value at line 1 column 0"),
        ("text.json", b"hello", "not JSON: expected value at line 1 column 1"),
        ("cut.json", b"{\"schema_version\": 3, \"inputs\": [", "not JSON: EOF while parsing a list"),
        ("latin1.json", b"{\"schema_version\": 3, \"f\xe9\": 1}", "stream did not contain valid UTF-8"),
        ("deep.json", deep.as_bytes(), "not an allowscope audit JSON document (not an object)"),
        (
            "deep-inside.json",
            deep_inside.as_bytes(),
            "not an allowscope audit JSON document (schema_version 3): invalid type: sequence, expected a name of Verdict",
        ),
    ];
    for (file, bytes, says) in raw {
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        let (code, out, err) = merge(&good_path, &path);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(out.is_empty(), "{file}: {out}");
        assert!(
            err.contains(&format!("{}: {says}", path.display())),
            "{file}: {err}"
        );
    }
    // Times out of range are no time (sorted last), not an overflow.
    let mut far = good.clone();
    far["inputs"][0]["file"] = json!("other.pcap");
    far["inputs"][0]["sha256"] = json!("0".repeat(64));
    far["findings"][0]["first_seen"] = json!("9223372036854775807-03-01T00:00:00Z");
    far["findings"][1]["first_seen"] = json!("2026-01-01T9223372036854775807:00:00Z");
    let path = dir.join("far.json");
    std::fs::write(&path, far.to_string()).unwrap();
    let (code, _, err) = merge(&path, &good_path);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A name from another machine's document with DEL, a C1 control (the one-byte CSI) or a bidi
/// override leaves the merge as a `\uXXXX` escape, never raw (legal JSON, but `cat` would hand
/// it to a terminal).
#[test]
fn merged_names_cannot_smuggle_terminal_controls() {
    let doc = common::audit_json_of("audit-client.pcap");
    let hostile = doc.replace(
        "\"name\": \"mcr.microsoft.com\"",
        "\"name\": \"mcr\\u009b31m.micro\\u007fsoft\\u202e.com\"",
    );
    assert_ne!(hostile, doc);
    let path = std::env::temp_dir().join(format!("allowscope-hostile-{}.json", std::process::id()));
    std::fs::write(&path, hostile).unwrap();
    let (_, out, err) = run(&["merge", "--fail-on", "never", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.contains("mcr\\u009b31m.micro\\u007fsoft\\u202e.com"),
        "{err}"
    );
    assert!(!out.contains(['\u{9b}', '\u{7f}', '\u{202e}']));
}

/// `merge --format text|markdown|html` writes the report one run over all the documents'
/// inputs would have written, but for what needs the flows themselves (the unattributed
/// kinds; the flows behind a finding in HTML).
#[test]
fn merged_documents_give_the_report_of_one_run() {
    let dir = std::env::temp_dir().join(format!("allowscope-merge-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shards = ["audit-client.pcap", "ws-client.pcap"];
    let mut paths = Vec::new();
    for c in shards {
        let p = dir.join(format!("{c}.json"));
        std::fs::write(&p, common::audit_json_of(c)).unwrap();
        paths.push(p.to_str().unwrap().to_string());
    }
    let inputs: Vec<String> = shards
        .iter()
        .map(|c| cap(c).to_str().unwrap().to_string())
        .collect();
    // The report less its unattributed line (and blank lines run together).
    let no_flow_lines = |s: &str| -> String {
        let mut out: Vec<&str> = Vec::new();
        for l in s.lines().filter(|l| !l.starts_with("Unattributed flows")) {
            if !(l.is_empty() && out.last() == Some(&"")) {
                out.push(l);
            }
        }
        out.join("\n")
    };
    for format in ["text", "markdown"] {
        let mut m = vec!["merge", "--fail-on", "never", "--format", format];
        m.extend(paths.iter().map(String::as_str));
        let (code, merged, err) = run(&m);
        assert_eq!(code, 0, "{err}");
        let mut a = vec!["audit", "-q", "--fail-on", "never", "--format", format];
        a.extend(inputs.iter().map(String::as_str));
        let (_, whole, _) = run(&a);
        assert!(whole.contains("Unattributed flows"));
        assert_eq!(no_flow_lines(&merged), no_flow_lines(&whole), "{format}");
    }
    let mut m = vec!["merge", "--format", "html"];
    m.extend(paths.iter().map(String::as_str));
    let (code, html, _) = run(&m);
    assert_eq!(code, 1, "required hosts were blocked");
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..40.min(html.len())]
    );
    assert!(html.contains("required hosts blocked"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fleet shards: two hosts' captures under one name merge when each run is labelled (each input
/// named after its labels), are refused when neither is, and the same capture in two
/// documents, or documents of another cloud, are refused with exit 2 naming both.
#[test]
fn fleet_merges_key_inputs_by_label_and_refuse_nonsense() {
    let dir = std::env::temp_dir().join(format!("allowscope-merge-fleet-{}", std::process::id()));
    for host in ["a", "b"] {
        std::fs::create_dir_all(dir.join(host)).unwrap();
    }
    std::fs::copy(cap("audit-client.pcap"), dir.join("a/trace.pcap")).unwrap();
    std::fs::copy(cap("ws-client.pcap"), dir.join("b/trace.pcap")).unwrap();
    let audit = |host: &str, extra: &[&str], out: &str| {
        let mut args = vec!["audit", "--format", "json", "--fail-on", "never"];
        args.extend_from_slice(extra);
        let input = dir.join(host).join("trace.pcap");
        let input = input.to_str().unwrap();
        args.push(input);
        let (code, json, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        // The same name on both hosts.
        let json = json.replace(input, "trace.pcap");
        let path = dir.join(out);
        std::fs::write(&path, json).unwrap();
        path
    };
    let a = audit("a", &["--label", "host=a", "--label", "site=eu"], "a.json");
    let b = audit("b", &["--label", "host=b", "--label", "site=eu"], "b.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 3);
    assert_eq!(
        doc["provenance"]["labels"],
        json!({"host": "a", "site": "eu"})
    );
    assert_eq!(doc["provenance"]["command"], "audit");
    assert_eq!(
        doc["inputs"][0]["labels"],
        json!({"host": "a", "site": "eu"})
    );
    let sha = doc["inputs"][0]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert_eq!(
        doc["inputs"][0]["size"],
        std::fs::metadata(cap("audit-client.pcap")).unwrap().len()
    );
    let (code, out, err) = merge(&a, &b);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    let files: Vec<&str> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["host=a,site=eu:trace.pcap", "host=b,site=eu:trace.pcap"]
    );
    assert_eq!(m["provenance"]["command"], "merge");
    assert_eq!(m["provenance"]["labels"], json!({"site": "eu"}));
    assert_eq!(m["provenance"]["sources"].as_array().unwrap().len(), 2);
    // Without labels the two trace.pcap cannot be told apart.
    let a0 = audit("a", &[], "a0.json");
    let b0 = audit("b", &[], "b0.json");
    let (code, out, err) = merge(&a0, &b0);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("each have an input named trace.pcap with other contents")
            && err.contains("--label"),
        "{err}"
    );
    // The same capture twice, whatever the labels.
    let (code, _, err) = merge(&a, &a0);
    assert_eq!(code, 2);
    assert!(
        err.contains("both audited the same input") && err.contains(sha),
        "{err}"
    );
    // Another cloud.
    let china = audit("b", &["--cloud", "china"], "china.json");
    let (code, _, err) = merge(&a0, &china);
    assert_eq!(code, 2);
    assert!(
        err.contains("were audited against different clouds (public and china)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

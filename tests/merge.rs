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
    // (file, change to the good document, what the error says)
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "numbers.json",
            Box::new(|d| d["findings"] = json!([1, 2, 3])),
            "findings[0]: not an object",
        ),
        (
            "findings-object.json",
            Box::new(|d| d["findings"] = json!({"a": 1})),
            "no findings or coverage",
        ),
        (
            "empty-finding.json",
            Box::new(|d| d["findings"][0] = json!({})),
            "findings[0]: verdict is not a string",
        ),
        (
            "flows-text.json",
            Box::new(|d| d["findings"][0]["flows"] = json!("many")),
            "findings[0]: flows is not a count",
        ),
        (
            "flows-negative.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(-1)),
            "findings[0]: flows is not a count",
        ),
        (
            "flows-float.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(1e300)),
            "findings[0]: flows is not a count",
        ),
        (
            "flows-missing.json",
            Box::new(|d| {
                d["findings"][0].as_object_mut().unwrap().remove("flows");
            }),
            "findings[0]: flows is not a count",
        ),
        (
            "files-numbers.json",
            Box::new(|d| d["findings"][0]["files"] = json!([1])),
            "findings[0]: files is not a list of strings",
        ),
        (
            "flows-huge.json",
            Box::new(|d| d["findings"][0]["flows"] = json!(u64::MAX)),
            "findings[0].flows: the counts add up to more than",
        ),
        (
            "counts-huge.json",
            Box::new(move |d| d["counts"][&count_key] = json!(u64::MAX)),
            "counts.",
        ),
        (
            "counts-list.json",
            Box::new(|d| d["counts"] = json!([1])),
            "counts: not an object of counts",
        ),
        (
            "coverage-strings.json",
            Box::new(|d| d["coverage"] = json!(["x"])),
            "coverage[0]: not an object",
        ),
        (
            "coverage-verdicts.json",
            Box::new(|d| d["coverage"][0]["verdicts"] = json!([1])),
            "coverage[0]: verdicts is not an object of counts",
        ),
        (
            "coverage-by-file.json",
            Box::new(|d| d["coverage"][0]["by_file"] = json!({"f": 3})),
            "coverage[0]: by_file is not an object of objects of counts",
        ),
        (
            "dns-failures.json",
            Box::new(|d| d["dns_failures"] = json!(7)),
            "dns_failures: not a list",
        ),
        (
            "websockets.json",
            Box::new(|d| d["websockets"] = json!({"connections": 5})),
            "websockets.connections",
        ),
        (
            "array.json",
            Box::new(|d| *d = json!([d.clone()])),
            "no schema_version",
        ),
    ];
    for (file, change, says) in &cases {
        let mut bad = serde_json::from_str::<Value>(&good.to_string()).unwrap();
        change(&mut bad);
        let path = dir.join(file);
        std::fs::write(&path, bad.to_string()).unwrap();
        let (code, out, err) = merge(&good_path, &path);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(out.is_empty(), "{file}: {out}");
        assert!(!err.contains("panicked"), "{file}: {err}");
        assert!(err.contains(file) && err.contains(says), "{file}: {err}");
    }
    // Times out of range are no time (sorted last), not an overflow.
    let mut far = good.clone();
    far["findings"][0]["first_seen"] = json!("9223372036854775807-03-01T00:00:00Z");
    far["findings"][1]["first_seen"] = json!("2026-01-01T9223372036854775807:00:00Z");
    let path = dir.join("far.json");
    std::fs::write(&path, far.to_string()).unwrap();
    let (code, _, err) = merge(&path, &good_path);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

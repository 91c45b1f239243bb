//! Exit codes a pipeline can trust (issue 18): no capture read at all is exit 2 with a message
//! and nothing on stdout; an input that failed makes the audit say, first, that it is
//! incomplete (text, Markdown, JSON, merge); `--fail-on websocket-problem`; the top-level help
//! lists every exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::{cap, run};

/// A fresh directory under the temp dir for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allowscope-exits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The commands that read captures (live excepted), with the format each is run in.
const READERS: [(&str, &str); 8] = [
    ("flows", "table"),
    ("flows", "json"),
    ("dns", "ndjson"),
    ("audit", "text"),
    ("audit", "json"),
    ("audit", "markdown"),
    ("ws", "table"),
    ("ws", "json"),
];

/// Every reading command on `inputs`: exit 2, nothing on stdout, and stderr ending in
/// `error: no capture was read: ` followed by `why`.
fn nothing_read(inputs: &[&str], why: &str) -> Vec<String> {
    let mut errs = Vec::new();
    for (cmd, format) in READERS {
        let mut args = vec![cmd, "--format", format];
        args.extend_from_slice(inputs);
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{cmd} {format} {inputs:?}: {err}");
        assert_eq!(out, "", "{cmd} {format} {inputs:?}: nothing on stdout");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: no capture was read: ") && last.contains(why),
            "{cmd} {format} {inputs:?}: {err}"
        );
        errs.push(err);
    }
    errs
}

#[test]
fn an_empty_directory_is_exit_2() {
    let d = scratch("empty");
    nothing_read(
        &[s(&d)],
        &format!(
            "no capture file (pcap or pcapng, plain, gzip or zstd) in {}",
            d.display()
        ),
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_directory_without_captures_is_exit_2() {
    let d = scratch("nocap");
    std::fs::write(d.join("notes.txt"), "not a capture\n").unwrap();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/empty.pcap"), "").unwrap();
    for err in nothing_read(&[s(&d)], "2 files skipped (see the notes above)") {
        assert!(
            err.contains("notes.txt: not a capture file") && err.contains("empty.pcap: empty file"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn every_input_unreadable_is_exit_2() {
    let d = scratch("unreadable");
    let garbage = d.join("garbage.pcap");
    std::fs::write(&garbage, b"this is no capture at all").unwrap();
    let magic = cap("broken-magic.pcap");
    let missing = d.join("no-such.pcap");
    for err in nothing_read(
        &[s(&magic), s(&garbage), s(&missing)],
        "all 3 inputs failed (see above)",
    ) {
        for name in ["broken-magic.pcap", "garbage.pcap", "no-such.pcap"] {
            assert!(err.contains(name), "{name} is named: {err}");
        }
    }
    nothing_read(&[s(&magic)], "the input failed (see above)");
    // Empty stdin is no capture either.
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(["audit", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("error: no capture was read"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A damaged input among good ones: still read up to the damage, so something was read; the
/// audit opens by saying it is incomplete and which inputs failed.
#[test]
fn one_failed_input_makes_the_audit_incomplete() {
    let broken = cap("broken-caplen.pcap");
    let good = cap("audit-client.pcap");
    let missing = cap("no-such-capture.pcap");
    let (b, g, m) = (s(&broken), s(&good), s(&missing));

    // Text: the first lines, then the blocked findings of what was read.
    let (code, out, _) = run(&["audit", m, b, g]);
    assert_eq!(code, 2);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "The audit is incomplete: 2 inputs failed, and what follows covers only what was read",
            &format!("  {m}: no such file or directory"),
            &format!("  {b}: byte offset 486: bogus captured length 2147483647 (limit 262144)"),
        ]
    );
    assert!(
        out.contains("  required-blocked tcp mcr.microsoft.com:443"),
        "{out}"
    );

    // Nothing blocked in what was read: never a plain "none".
    let (code, out, _) = run(&["audit", b]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with("The audit is incomplete: 1 input failed"),
        "{out}"
    );
    assert!(
        out.contains(
            "Required (or optional) but blocked\n  none in what was read (the audit is incomplete)\n"
        ),
        "{out}"
    );
    // The same capture read to its end says "none".
    let (code, out, _) = run(&["audit", s(&cap("tcp-outcomes.pcap"))]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("allowscope audit: 0 required hosts blocked"),
        "{out}"
    );
    assert!(
        out.contains("\nRequired (or optional) but blocked\n  none\n"),
        "{out}"
    );
    assert!(!out.contains("incomplete"), "{out}");

    // Markdown.
    let (code, out, _) = run(&["audit", "--format", "markdown", b]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with(&format!(
            "# allowscope audit\n\n**The audit is incomplete: 1 input failed, and what follows \
             covers only what was read.**\n\n- {b}: byte offset 486: bogus captured length \
             2147483647 \\(limit 262144\\)\n\n**0 required hosts blocked"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "\n## Required but blocked\n\nNone in what was read (the audit is incomplete).\n"
        ),
        "{out}"
    );
    let (_, out, _) = run(&["audit", "--format", "markdown", m, g]);
    assert!(
        out.contains("**The audit is incomplete: 1 input failed"),
        "{out}"
    );
    assert!(
        out.contains("| required-blocked | mcr.microsoft.com |"),
        "{out}"
    );
    assert!(!out.contains("None in what was read"), "{out}");

    // JSON: `complete` and `failed_inputs` right after the schema version, only when incomplete.
    let (code, out, _) = run(&["audit", "--format", "json", m, b, g]);
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["complete"], false);
    let failed: Vec<(&str, &str)> = doc["failed_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap(), f["error"].as_str().unwrap()))
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0], (m, &*format!("{m}: no such file or directory")));
    assert_eq!(failed[1].0, b);
    assert!(failed[1].1.contains("byte offset 486"), "{failed:?}");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    // Right after the schema version and what produced the document.
    assert!(out.starts_with("{\n  \"schema_version\": 3,\n  \"provenance\": {"));
    assert!(out.contains("\n  },\n  \"complete\": false,\n  \"failed_inputs\": ["));
    assert!(
        keys.iter().any(|k| *k == "inputs"),
        "nothing renamed: {keys:?}"
    );
    assert_eq!(doc["inputs"].as_array().unwrap().len(), 2);
    let (code, out, _) = run(&["audit", "--format", "json", g]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc.get("complete").is_none() && doc.get("failed_inputs").is_none());
}

/// `merge` of an incomplete document is incomplete: the fields carried over, exit 2.
#[test]
fn merge_of_an_incomplete_audit_is_incomplete() {
    let d = scratch("merge");
    let shard = |name: &str, inputs: &[PathBuf]| {
        let mut args = vec!["audit", "--format", "json", "--fail-on", "never"];
        args.extend(inputs.iter().map(|p| s(p)));
        let (_, out, _) = run(&args);
        let p = d.join(name);
        std::fs::write(&p, out).unwrap();
        p
    };
    let broken = shard("broken.json", &[cap("broken-caplen.pcap")]);
    let good = shard("good.json", &[cap("tcp-outcomes.pcap")]);
    let (code, out, err) = run(&["merge", "--fail-on", "never", s(&good), s(&broken)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: the merged audit is incomplete: 1 input failed in the documents")
            && err.contains("broken-caplen.pcap"),
        "{err}"
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["complete"], false);
    assert_eq!(doc["failed_inputs"].as_array().unwrap().len(), 1);
    // As one run over both would say.
    let (_, whole, _) = run(&[
        "audit",
        "--format",
        "json",
        s(&cap("tcp-outcomes.pcap")),
        s(&cap("broken-caplen.pcap")),
    ]);
    let whole: Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(doc["failed_inputs"], whole["failed_inputs"]);
    let other = shard("other.json", &[cap("udp-outcomes.pcap")]);
    let (code, out, _) = run(&["merge", "--fail-on", "never", s(&good), s(&other)]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc.get("complete").is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--fail-on websocket-problem`: a required-blocked finding or a websocket instance that is
/// not healthy; `unexpected-reached` and `any` include it.
#[test]
fn fail_on_websocket_problem() {
    let code =
        |capture: &str, level: &str| run(&["audit", "-q", "--fail-on", level, s(&cap(capture))]).0;
    // ws-client.pcap and ws-firewall.pcapng: idle kills and failed upgrades, nothing
    // required blocked.
    for capture in ["ws-client.pcap", "ws-firewall.pcapng"] {
        let (_, out, _) = run(&["ws", "--format", "json", s(&cap(capture))]);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert!(doc["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["problem"] == "ws-idle-kill"));
        assert_eq!(code(capture, "required-blocked"), 0, "{capture}");
        assert_eq!(code(capture, "websocket-problem"), 1, "{capture}");
        assert_eq!(code(capture, "unexpected-reached"), 1, "{capture}");
        assert_eq!(code(capture, "any"), 1, "{capture}");
        assert_eq!(code(capture, "never"), 0, "{capture}");
    }
    // proxy.pcap: one healthy websocket, unexpected hosts reached.
    assert_eq!(code("proxy.pcap", "websocket-problem"), 0);
    assert_eq!(code("proxy.pcap", "unexpected-reached"), 1);
    // audit-client.pcap: required hosts blocked.
    assert_eq!(code("audit-client.pcap", "websocket-problem"), 1);

    // merge honours it: the merged document carries the websocket instances.
    let d = scratch("ws-merge");
    let (_, out, _) = run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        s(&cap("ws-client.pcap")),
    ]);
    let doc = d.join("ws.json");
    std::fs::write(&doc, out).unwrap();
    let merge = |level: &str| run(&["merge", "--fail-on", level, s(&doc)]).0;
    assert_eq!(merge("required-blocked"), 0);
    assert_eq!(merge("websocket-problem"), 1);
    assert_eq!(merge("any"), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn help_lists_every_exit_code() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    let codes = out
        .split("Exit codes:")
        .nth(1)
        .and_then(|r| r.split("Examples:").next())
        .unwrap_or_else(|| panic!("no exit codes: {out}"));
    for line in ["\n  0  ", "\n  1  ", "\n  2  "] {
        assert!(codes.contains(line), "{line:?} in {codes}");
    }
    for word in [
        "flows",
        "dns",
        "audit",
        "merge",
        "ws",
        "live",
        "catalog",
        "completions",
        "man",
        "no capture was read",
        "websocket-problem",
        "incomplete",
    ] {
        assert!(codes.contains(word), "{word} in {codes}");
    }
    let (_, out, _) = run(&["audit", "--help"]);
    assert!(out.contains("websocket-problem"), "{out}");
}

/// `ws -q` leaves out the summaries, never an input's error (it said nothing and exited 2).
#[test]
fn ws_quiet_still_says_why_an_input_failed() {
    let bad = cap("broken-caplen.pcap");
    let (code, _, err) = run(&["ws", "-q", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bogus captured length"), "{err}");
}

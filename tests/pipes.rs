//! The broken-pipe rule of every command: when whoever reads stdout goes away
//! (`allowscope audit x.pcap | head -1`), the output stops without a message and the exit code
//! is the one the command would have had; a full disk (`/dev/full`) is exit 2, said.

mod common;

use std::process::{Command, Stdio};

use common::cap;

const BIN: &str = env!("CARGO_BIN_EXE_allowscope");

/// The runs: each prints well over a pipe's buffer, so a closed reader is noticed.
fn runs(shard: &str, shard2: &str) -> Vec<Vec<String>> {
    let dir = cap("").to_str().unwrap().trim_end_matches('/').to_string();
    let c = cap("audit-client.pcap").to_str().unwrap().to_string();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["flows", "--format", "json", &dir]),
        v(&["dns", &dir]),
        v(&["audit", &dir]),
        v(&["audit", "--format", "json", &dir]),
        v(&["audit", "--rules", "azure-firewall-arm", &c]),
        v(&["ws", &dir]),
        v(&["merge", shard, shard2]),
        v(&["catalog", "export"]),
    ]
}

fn code(args: &[String], stdout: Stdio) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            // A reader that went away before the first byte.
            drop(child.stdout.take());
            child.wait_with_output()
        })
        .expect("run allowscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_reader_stops_the_output_silently_and_keeps_the_exit_code() {
    let shard = std::env::temp_dir().join(format!("allowscope-pipes-{}.json", std::process::id()));
    let doc = common::audit_json_of("audit-client.pcap");
    std::fs::write(&shard, doc).unwrap();
    // Another capture's: merge refuses the same input twice.
    let shard2 = shard.with_extension("ws.json");
    std::fs::write(&shard2, common::audit_json_of("ws-client.pcap")).unwrap();
    for args in runs(shard.to_str().unwrap(), shard2.to_str().unwrap()) {
        let (want, _) = code(&args, Stdio::null());
        let (got, err) = code(&args, Stdio::piped());
        assert_eq!(got, want, "{args:?}: {err}");
        assert!(!err.contains("writing output"), "{args:?}: {err}");
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (got, err) = code(&args, Stdio::from(full));
        assert_eq!(got, 2, "{args:?} to /dev/full: {err}");
        assert!(err.contains("error: writing output"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_file(&shard);
    let _ = std::fs::remove_file(&shard2);
}

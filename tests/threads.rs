//! `--threads N` on one input splits its packets among N workers: every recorded capture, on
//! its own, gives the same audit, flows (with the file summaries), DNS lookups and websocket
//! view byte for byte (and the same summaries, errors and exit code on stderr) with 1, 2, 3
//! and 5 threads (the reading thread with a worker of its own, and without), with the file
//! read (the default) or memory-mapped (`--mmap`, on one thread and split). And runs that evict
//! flows give the same output whatever the flow map's random seed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            [".pcap", ".pcapng", ".gz", ".zst"]
                .iter()
                .any(|ext| n.ends_with(ext))
        })
        .collect();
    files.sort();
    files
}

fn run(args: &[&str], threads: &str, file: &Path) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    // "2m": two threads, the file memory-mapped rather than read.
    let (threads, mapped) = match threads.strip_suffix('m') {
        Some(n) => (n, true),
        None => (threads, false),
    };
    let o = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .args(["--threads", threads])
        .args(mapped.then_some("--mmap"))
        .arg(file)
        .output()
        .unwrap();
    (o.status.code(), o.stdout, o.stderr)
}

#[test]
fn one_input_gives_the_same_output_on_any_number_of_threads() {
    let files = captures();
    assert!(files.len() >= 20, "{files:?}");
    // `flows --format json` adds each file's summary: packets, skips, truncation, fragment and
    // flow-table counters (peak live flows included), warnings and the error.
    let commands: [&[&str]; 5] = [
        &["audit", "--format", "json"],
        &["flows", "--format", "ndjson"],
        &["flows", "--format", "json"],
        &["dns", "--format", "json"],
        &["ws", "--format", "json"],
    ];
    let mut compared = 0;
    for file in &files {
        for args in commands {
            let one = run(args, "1", file);
            assert!(
                !one.1.is_empty() || one.0 == Some(2),
                "{args:?} {}: no output",
                file.display()
            );
            for n in ["2", "3", "5", "1m", "2m"] {
                let got = run(args, n, file);
                assert!(
                    got.0 == one.0,
                    "{args:?} {}: exit code {:?} with {n} threads, {:?} with 1",
                    file.display(),
                    got.0,
                    one.0
                );
                assert!(
                    got.1 == one.1,
                    "{args:?} {}: stdout differs with {n} threads",
                    file.display()
                );
                assert!(
                    got.2 == one.2,
                    "{args:?} {}: stderr differs with {n} threads:\n{}\n---\n{}",
                    file.display(),
                    String::from_utf8_lossy(&got.2),
                    String::from_utf8_lossy(&one.2)
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, files.len() * commands.len() * 5);
}

/// A damaged capture read with several threads: the packets before the damage are reported
/// and the error names the same byte offset.
#[test]
fn damage_is_reported_the_same_with_threads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/broken-caplen.pcap");
    let (code, out, err) = run(&["flows", "--format", "ndjson", "-q"], "3", &file);
    assert_eq!(code, Some(2));
    assert!(!out.is_empty());
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("byte offset 486: bogus captured length 2147483647"),
        "{err}"
    );
}

/// The flow table's map is seeded at random in every run (so crafted packets cannot aim at its
/// slots), and its order decides which order flows are evicted in: nothing of that may reach
/// the output. Every capture, at the smallest live-flow cap (16), which evicts in several, gives the same
/// flows, DNS lookups and audit in three runs (three seeds).
#[test]
fn evictions_do_not_depend_on_the_map_seed() {
    let commands: [&[&str]; 3] = [
        &["flows", "--format", "json", "--max-flows", "16"],
        &["dns", "--format", "json", "--max-flows", "16"],
        &["audit", "--format", "json", "--max-flows", "16"],
    ];
    let mut evicting = 0;
    for file in &captures() {
        for args in commands {
            let first = run(args, "1", file);
            if args[0] == "flows" && String::from_utf8_lossy(&first.1).contains("\"evicted\": true")
            {
                evicting += 1;
            }
            for _ in 0..2 {
                let again = run(args, "1", file);
                assert!(
                    again == first,
                    "{args:?} on {} differs between runs",
                    file.display()
                );
            }
        }
    }
    assert!(
        evicting >= 3,
        "only {evicting} captures evict flows at a cap of 16"
    );
}

/// `--no-mmap`, the default since reading became it, is still accepted for scripts written
/// before and gives the same output; together with `--mmap` it is a usage error.
#[test]
fn no_mmap_is_still_accepted() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/audit-client.pcap");
    let audit = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .args(["audit", "--format", "json"])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap()
    };
    let default = audit(&[]);
    let old = audit(&["--no-mmap"]);
    assert_eq!(old.status.code(), default.status.code());
    assert!(!default.stdout.is_empty());
    assert!(old.stdout == default.stdout);
    let both = audit(&["--mmap", "--no-mmap"]);
    assert_eq!(both.status.code(), Some(2));
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
}

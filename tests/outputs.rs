//! Every command's output, on every capture and in every format, against the digests taken
//! before the last change that meant to alter none (issue 17's rule: a refactor keeps outputs
//! byte-stable). `tests/golden/outputs.txt` holds one line per run: the arguments, the exit
//! code, and a digest and length of stdout and of stderr. After a change that means to alter an
//! output, regenerate it with `ALLOWSCOPE_BLESS=1 cargo test --test outputs` and say so in the
//! commit; the diff of the file then names every run whose output moved.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const GOLDEN: &str = "tests/golden/outputs.txt";

/// FNV-1a over 64 bits: enough to notice a changed byte; not a defence against anyone.
fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}/{}", bytes.len())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The captures the project records, by name, sorted.
fn captures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".pcap"))
        .collect();
    names.sort();
    names
}

/// Every run of the table: its arguments (paths relative to the project), as one line each.
fn runs() -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for cap in captures() {
        let c = format!("captures/{cap}");
        for format in ["table", "json", "ndjson"] {
            for cmd in ["flows", "dns", "ws"] {
                lines.push(format!("{cmd} --threads 1 --format {format} {c}"));
            }
        }
        for format in ["text", "json", "markdown", "ndjson"] {
            lines.push(format!("audit --threads 1 --format {format} {c}"));
        }
        lines.push(format!(
            "audit --threads 1 --cloud all --scenario all \
             --service-tags tests/data/service-tags.json --format json {c}"
        ));
    }
    // Many inputs at once, with threads, and per file.
    for format in ["text", "json", "markdown", "ndjson"] {
        lines.push(format!("audit --threads 2 --format {format} captures"));
        lines.push(format!(
            "audit --threads 2 --per-file --format {format} captures"
        ));
    }
    for format in ["table", "json", "ndjson"] {
        for cmd in ["flows", "dns", "ws"] {
            lines.push(format!("{cmd} --threads 2 --format {format} captures"));
        }
    }
    for format in ["table", "json", "toml"] {
        lines.push(format!("catalog list --format {format}"));
        lines.push(format!(
            "catalog list --cloud all --scenario all --format {format}"
        ));
    }
    lines.push("catalog export".to_string());
    lines.push("catalog match myacct.blob.core.windows.net --port 443".to_string());
    lines
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn run(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run allowscope");
    format!(
        "{} exit={} stdout={} stderr={}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        digest(common::stable(&String::from_utf8_lossy(&out.stdout)).as_bytes()),
        digest(&out.stderr)
    )
}

/// The merge of each capture's audit JSON with every other's: one run over all of them (a
/// capture nothing could be read from has no document: its audit writes none).
fn merge_line(dir: &Path) -> String {
    let mut files = Vec::new();
    for cap in captures() {
        let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .args([
                "audit",
                "--threads",
                "1",
                "--format",
                "json",
                "--fail-on",
                "never",
            ])
            .arg(format!("captures/{cap}"))
            .current_dir(root())
            .output()
            .expect("run allowscope");
        if out.stdout.is_empty() {
            continue;
        }
        let path = dir.join(format!("{cap}.json"));
        std::fs::write(&path, &out.stdout).expect("write shard");
        files.push(path);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .arg("merge")
        .args(&files)
        .output()
        .expect("run allowscope merge");
    format!(
        "merge <each capture's audit json> exit={} stdout={} stderr={}",
        out.status.code().unwrap_or(-1),
        digest(common::stable(&String::from_utf8_lossy(&out.stdout)).as_bytes()),
        digest(&out.stderr)
    )
}

#[test]
fn every_output_matches_its_golden_digest() {
    let runs = runs();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = runs.len().div_ceil(threads);
    let mut lines: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|a| run(a)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("runner"))
            .collect()
    });
    let dir = std::env::temp_dir().join(format!("allowscope-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    lines.push(merge_line(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    let got = lines.join("\n") + "\n";

    let path = root().join(GOLDEN);
    if std::env::var_os("ALLOWSCOPE_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write golden digests");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("tests/golden/outputs.txt");
    let key = |l: &str| l.split(" exit=").next().unwrap_or("").to_string();
    let want_by: BTreeMap<String, &str> = want.lines().map(|l| (key(l), l)).collect();
    let mut moved = Vec::new();
    for line in got.lines() {
        match want_by.get(&key(line)) {
            Some(w) if *w == line => {}
            Some(w) => moved.push(format!("  was {w}\n  now {line}")),
            None => moved.push(format!("  new {line}")),
        }
    }
    let got_keys: Vec<String> = got.lines().map(key).collect();
    for k in want_by.keys() {
        if !got_keys.contains(k) {
            moved.push(format!("  gone {k}"));
        }
    }
    assert!(
        moved.is_empty(),
        "{} run(s) differ from {GOLDEN} (run them to see the output; if the change is meant, \
         regenerate with ALLOWSCOPE_BLESS=1 cargo test --test outputs and say so in the commit):\n{}",
        moved.len(),
        moved.join("\n")
    );
}

//! The NDJSON of every command over every recorded capture, read by the engines users land it
//! in (DuckDB, Polars) with no schema given: every row of a kind has the same keys; every row,
//! and every value of every column, is read (a
//! column null in most rows, such as `quic`, must not read as all null). The engines infer the
//! types from the whole file (DuckDB `sample_size=-1`, Polars `infer_schema_length=None`):
//! with their defaults (the first rows only) a column null in all of those reads as null
//! type, and then DuckDB silently returns nulls and Polars refuses the file, on any JSON with
//! optional fields (README, "Reading the NDJSON in an engine").
//!
//! Needs a Python with `duckdb` and `polars`: `$ALLOWSCOPE_PYTHON`, else `.venv/bin/python`
//! (which `.ci/run` makes). Without one the test is skipped, and fails under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{cap, run};

/// A Python that has duckdb and polars, if there is one.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = std::env::var_os("ALLOWSCOPE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import duckdb, polars"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Python with duckdb and polars at {} and CI must not skip (.ci/run makes .venv)",
            p.display()
        );
        eprintln!(
            "skipped: no Python with duckdb and polars at {}",
            p.display()
        );
        return None;
    }
    Some(p)
}

/// Runs `script` with `args`, removes `scratch`, and fails with the script's output unless it
/// passed.
fn python_passes(py: &Path, script: &str, args: &[PathBuf], scratch: &Path) {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    let _ = std::fs::remove_dir_all(scratch);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
}

const CHECK: &str = r#"
import json, sys
import duckdb, polars as pl

for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
    # Every row of a kind has the same keys.
    shapes = {}
    for r in rows:
        shapes.setdefault(r.get("kind"), set()).add(tuple(sorted(r)))
    for kind, keys in shapes.items():
        assert len(keys) == 1, (path, kind, "rows with other keys", keys)
    keys = sorted({k for r in rows for k in r})
    want = {k: sum(1 for r in rows if r.get(k) is not None) for k in keys}
    con = duckdb.connect()
    got = con.execute(
        "select count(*), " + ", ".join(f'count("{k}")' for k in keys)
        + f" from read_json_auto('{path}', sample_size=-1)"
    ).fetchone()
    assert got[0] == len(rows), (path, "duckdb rows", got[0], len(rows))
    for k, n in zip(keys, got[1:]):
        assert n == want[k], (path, "duckdb", k, n, want[k])
    df = pl.read_ndjson(path, infer_schema_length=None)
    assert df.height == len(rows), (path, "polars rows", df.height, len(rows))
    for k in keys:
        n = df.height - df[k].null_count()
        assert n == want[k], (path, "polars", k, n, want[k])
    print(path, len(rows), "rows", len(keys), "columns")
"#;

#[test]
fn engines_read_every_ndjson_output() {
    let Some(py) = python() else { return };
    let dir = std::env::temp_dir().join(format!("allowscope-engines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let captures = cap("");
    let captures = captures.to_str().unwrap();
    let mut files = Vec::new();
    for command in ["flows", "dns", "ws", "audit"] {
        let mut args = vec![command, "--format", "ndjson", "-q", "--label", "host=a"];
        if command == "audit" {
            args.extend(["--fail-on", "never"]);
        }
        args.push(captures);
        let (_, out, err) = run(&args);
        assert!(out.lines().count() > 10, "{command}: {err}");
        let path = dir.join(format!("{command}.ndjson"));
        std::fs::write(&path, out).unwrap();
        files.push(path);
    }
    python_passes(&py, CHECK, &files, &dir);
}

/// The fleet recipe (README, "At scale"): each host's audit lands as Parquet in its own
/// directory; DuckDB's answers over all of them equal `merge`'s document: which required
/// entries were blocked on which hosts, and the coverage matrix (entry x host, counts).
#[test]
fn duckdb_over_parquet_shards_equals_merge() {
    let Some(py) = python() else { return };
    let dir = std::env::temp_dir().join(format!("allowscope-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hosts: [(&str, &[&str]); 3] = [
        ("a", &["audit-client.pcap"]),
        ("b", &["ws-client.pcap", "tls-facts.pcap"]),
        ("c", &["proxy.pcap", "dns-facts.pcap", "udp-outcomes.pcap"]),
    ];
    let mut docs = Vec::new();
    for (host, captures) in hosts {
        let label = format!("host={host}");
        let out = dir.join(format!("host={host}"));
        let doc = dir.join(format!("{host}.json"));
        let mut args = vec![
            "audit".to_string(),
            "--format".into(),
            "json".into(),
            "--fail-on".into(),
            "never".into(),
            "--label".into(),
            label,
            "--parquet".into(),
            out.to_str().unwrap().into(),
        ];
        args.extend(
            captures
                .iter()
                .map(|c| cap(c).to_str().unwrap().to_string()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, json, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        std::fs::write(&doc, json).unwrap();
        docs.push(doc);
    }
    // Every lookup of every host, as `dns` lists them.
    let all: Vec<String> = hosts
        .iter()
        .flat_map(|(_, c)| c.iter())
        .map(|c| cap(c).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["dns", "--format", "ndjson", "-q"];
    args.extend(all.iter().map(String::as_str));
    let lookups = run(&args).1.lines().count();
    assert!(lookups > 10);
    let mut args = vec!["merge", "--fail-on", "never"];
    args.extend(docs.iter().map(|d| d.to_str().unwrap()));
    let (code, merged, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let merged_path = dir.join("merged.json");
    std::fs::write(&merged_path, merged).unwrap();
    let script = r#"
import json, sys, duckdb
root, merged, lookups = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
con = duckdb.connect()
blocked = set(con.execute(f"""
    select labels['host'], entry_id, name
    from read_parquet('{root}/*/findings.parquet')
    where verdict = 'required-blocked' group by all""").fetchall())
want = set()
for f in merged["findings"] + merged["dns_failures"]:
    if f["verdict"] == "required-blocked":
        for file in f["files"]:
            host = file.split(":", 1)[0].removeprefix("host=")
            want.add((host, f["entry"]["id"] if f["entry"] else None, f["name"]))
assert blocked == want, (sorted(blocked ^ want))
assert len(blocked) > 3, blocked
# A finding's files are a list (a path may hold a comma): which host's which input saw each name.
seen = set(con.execute(f"""
    select labels['host'], name, unnest(files)
    from read_parquet('{root}/*/findings.parquet')""").fetchall())
want = set()
for f in merged["findings"] + merged["dns_failures"]:
    for file in f["files"]:
        host, path = file.split(":", 1)
        want.add((host.removeprefix("host="), f["name"], path))
assert seen == want, (sorted(seen ^ want))
matrix = dict(((e, h), n) for e, h, n in con.execute(f"""
    select entry_id, labels['host'], sum(count)::bigint
    from read_parquet('{root}/*/coverage.parquet')
    where file is not null group by all""").fetchall())
want = {}
for c in merged["coverage"]:
    for file, counts in c["by_file"].items():
        key = (c["entry"]["id"], file.split(":", 1)[0].removeprefix("host="))
        want[key] = want.get(key, 0) + sum(counts.values())
assert matrix == want, (matrix, want)
flows = con.execute(f"select count(*) from read_parquet('{root}/*/flows/*.parquet')").fetchone()[0]
ws = con.execute(f"select count(*), count(distinct labels['host']) from read_parquet('{root}/*/websockets.parquet')").fetchone()
assert ws[0] == len(merged["websockets"]["connections"]), ws
dns = con.execute(f"select count(*) from read_parquet('{root}/*/dns/*.parquet')").fetchone()[0]
assert dns == lookups, (dns, lookups)
import glob, polars as pl
for table in ["flows/*.parquet", "dns/*.parquet", "findings.parquet", "coverage.parquet", "websockets.parquet"]:
    files = sorted(glob.glob(f"{root}/*/{table}"))
    n = sum(pl.read_parquet(f).height for f in files)
    d = con.execute(f"select count(*) from read_parquet('{root}/*/{table}')").fetchone()[0]
    assert n == d and n > 0, (table, n, d)
assert flows == sum(i["flow_table"]["flows"] for i in merged["inputs"]), flows
print(len(blocked), "blocked (host, entry, name);", len(matrix), "coverage cells;", flows, "flows;", dns, "lookups;", ws[0], "websockets")
"#;
    python_passes(
        &py,
        script,
        &[dir.clone(), merged_path, PathBuf::from(lookups.to_string())],
        &dir,
    );
}

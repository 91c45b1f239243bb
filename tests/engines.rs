//! The NDJSON of every command over every recorded capture, read by the engines users land it
//! in (DuckDB, Polars) with no schema given: every row, and every value of every column (a
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

const CHECK: &str = r#"
import json, sys
import duckdb, polars as pl

for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
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
    let out = Command::new(py)
        .arg("-c")
        .arg(CHECK)
        .args(&files)
        .output()
        .expect("run python");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
}

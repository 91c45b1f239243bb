//! Helpers shared by the integration tests that run the built binary on `captures/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A capture of the project's `captures/` directory.
pub fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// Runs the built binary (no colour) and returns its exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run allowscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tool a test needs: under CI its absence fails the test, elsewhere the test is skipped.
#[allow(dead_code)] // not every test binary runs tools
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{tool}` is missing and CI must not skip (.ci/run installs it)"
        );
        eprintln!("skipped: `{tool}` is not installed");
    }
    found
}

/// The audit JSON document (`--fail-on never`) of one capture of `captures/`.
#[allow(dead_code)] // not every test binary merges documents
pub fn audit_json_of(capture: &str) -> String {
    let path = cap(capture);
    let (_, doc, _) = run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        path.to_str().unwrap_or_default(),
    ]);
    doc
}

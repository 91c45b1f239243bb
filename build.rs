//! Records the commit the binary is built from (`ALLOWSCOPE_COMMIT`, for the provenance every
//! JSON document carries): `git rev-parse HEAD` in a git checkout (uncommitted changes are not
//! told apart), nothing outside one (a source tarball), or `ALLOWSCOPE_COMMIT` when set (a
//! packager's build). Rebuilds when HEAD moves.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ALLOWSCOPE_COMMIT");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        // HEAD, the branch it names, and the packed refs (a missing file would rerun this
        // script on every build).
        let branch = git(&["symbolic-ref", "-q", "HEAD"]);
        for f in ["HEAD".to_string(), "packed-refs".to_string()]
            .into_iter()
            .chain(branch)
        {
            let p = format!("{dir}/{f}");
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    let commit = std::env::var("ALLOWSCOPE_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_default();
    println!("cargo:rustc-env=ALLOWSCOPE_COMMIT={commit}");
}

//! Terminal habits (issue 18): `--color` with NO_COLOR and TERM=dumb, the progress bar only on
//! a terminal, shell completions and manual pages generated from the command definitions,
//! and `live` in a build without the feature. A terminal is `script`'s pseudo-terminal.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_allowscope");

/// A capture of the project's `captures/` directory.
fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the binary with `env` set (and NO_COLOR and TERM only when given), stdout and
/// stderr piped: (exit code, stdout, stderr).
fn piped(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("NO_COLOR").env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `script` (util-linux) can give a command a pseudo-terminal here.
fn have_script() -> bool {
    let ok = Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "script (util-linux) is needed for the terminal tests"
        );
        eprintln!("skipped: no script (util-linux) to make a pseudo-terminal");
    }
    ok
}

/// Runs `shell_cmd` on a pseudo-terminal (stdout and stderr both the terminal) with `env`
/// set (NO_COLOR only when given) and returns what the terminal showed.
fn on_terminal(shell_cmd: &str, env: &[(&str, &str)]) -> String {
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", shell_cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";

#[test]
fn color_follows_the_option_no_color_and_term() {
    let c = cap("audit-client.pcap");
    let audit = |extra: &[&str], env: &[(&str, &str)]| {
        let mut a = vec!["audit", "-q"];
        a.extend_from_slice(extra);
        a.push(s(&c));
        piped(&a, env).1
    };
    // Piped: colour only when asked for.
    assert!(!audit(&[], &[]).contains('\x1b'));
    assert!(!audit(&["--color", "auto"], &[]).contains('\x1b'));
    assert!(!audit(&["--color", "never"], &[]).contains('\x1b'));
    let always = audit(&["--color", "always"], &[]);
    assert!(always.contains(BOLD) && always.contains(RED), "{always}");
    // `always` wins over NO_COLOR and TERM=dumb; the option is global (before the command).
    assert!(audit(
        &["--color", "always"],
        &[("NO_COLOR", "1"), ("TERM", "dumb")]
    )
    .contains(RED));
    let (_, before, _) = piped(&["--color", "always", "audit", "-q", s(&c)], &[]);
    assert_eq!(before, always);
    // Only the text report is coloured.
    let json = audit(&["--color", "always", "--format", "json"], &[]);
    assert!(!json.contains('\x1b'));

    if !have_script() {
        return;
    }
    let cmd = |opt: &str| format!("{BIN} audit -q {opt} {}", s(&c));
    let tty = |opt: &str, env: &[(&str, &str)]| on_terminal(&cmd(opt), env);
    assert!(tty("", &[]).contains(RED), "a terminal is coloured");
    assert!(tty("--color auto", &[]).contains(BOLD));
    assert!(!tty("--color never", &[]).contains('\x1b'));
    assert!(
        !tty("", &[("NO_COLOR", "1")]).contains('\x1b'),
        "NO_COLOR=1"
    );
    assert!(
        tty("", &[("NO_COLOR", "")]).contains(RED),
        "an empty NO_COLOR is unset"
    );
    assert!(!tty("", &[("TERM", "dumb")]).contains('\x1b'), "TERM=dumb");
    assert!(tty("--color always", &[("TERM", "dumb")]).contains(RED));
}

/// A plain pcap of about `mb` MB: tcp-outcomes.pcap's records over and over.
fn big_pcap(dir: &Path, mb: usize) -> PathBuf {
    let data = std::fs::read(cap("tcp-outcomes.pcap")).unwrap();
    let (head, records) = data.split_at(24);
    let mut out = head.to_vec();
    while out.len() < mb << 20 {
        out.extend_from_slice(records);
    }
    let p = dir.join("big.pcap");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn progress_only_on_a_terminal() {
    let dir = std::env::temp_dir().join(format!("allowscope-progress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = big_pcap(&dir, 12);
    let gz = cap("tcp-outcomes.pcap.gz");
    // Shown at once (ALLOWSCOPE_PROGRESS_DELAY_MS=0) rather than after a second, and redrawn
    // every 2 ms rather than every 100 (a release build reads the input within 100 ms).
    let now = [
        ("ALLOWSCOPE_PROGRESS_DELAY_MS", "0"),
        ("ALLOWSCOPE_PROGRESS_TICK_MS", "2"),
    ];
    // Not a terminal: nothing but the summaries on stderr.
    let (code, _, err) = piped(&["flows", "--threads", "1", s(&big), s(&gz)], &now);
    assert_eq!(code, 0);
    assert!(!err.contains('\x1b') && !err.contains(" inputs"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");

    if have_script() {
        // Plain files: a bar with the percent, sizes, rate, inputs done and time left.
        let shown = on_terminal(
            &format!("{BIN} flows --threads 1 {} > /dev/null", s(&big)),
            &now,
        );
        assert!(shown.contains("0/1 inputs"), "{shown}");
        assert!(
            shown.contains("% ") && shown.contains(" left") && shown.contains(" MiB/"),
            "{shown}"
        );
        // Cleared at the end: the summary is the last line.
        let last = shown.trim_end().lines().last().unwrap_or("");
        assert!(last.contains(&format!("{}: pcap, ", s(&big))), "{shown}");
        // A compressed input's size is not known: bytes read, rate and inputs, no percent.
        let shown = on_terminal(
            &format!("{BIN} flows --threads 1 {} {} > /dev/null", s(&gz), s(&big)),
            &now,
        );
        assert!(
            shown.contains(" read, ") && shown.contains("/2 inputs"),
            "{shown}"
        );
        assert!(!shown.contains(" left"), "{shown}");
        // --quiet: none.
        let shown = on_terminal(
            &format!("{BIN} flows -q --threads 1 {} > /dev/null", s(&big)),
            &now,
        );
        assert!(!shown.contains("inputs"), "{shown}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = piped(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.len() > 1000, "{shell}: {out}");
        for word in ["allowscope", "audit", "fail-on"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
        // Values too, where the shell completes them.
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(out.contains("websocket-problem"), "{shell}");
        }
    }
    // The bash script is bash.
    let (_, script, _) = piped(&["completions", "bash"], &[]);
    if let Ok(o) = Command::new("bash").args(["-n", "-c", &script]).output() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (code, _, err) = piped(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn manual_pages() {
    let (code, out, err) = piped(&["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(".ie \\n(.g .ds Aq"), "{out}");
    assert!(out.contains(".TH allowscope 1"), "{out}");
    for word in ["audit", "merge", "completions", "Exit codes"] {
        assert!(out.contains(word), "man page lacks {word}");
    }
    let dir = std::env::temp_dir().join(format!("allowscope-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, _, err) = piped(&["man", "--dir", s(&dir)], &[]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "allowscope.1",
        "allowscope-audit.1",
        "allowscope-flows.1",
        "allowscope-catalog.1",
        "allowscope-catalog-list.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(text.contains(".TH "), "{page}: {text}");
    }
    assert!(!dir.join("allowscope-live.1").exists() || cfg!(feature = "live"));
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, _, err) = piped(&["man", "--dir", "/nonexistent/dir"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}

/// Without the `live` feature, `allowscope live` says how to get it (exit 2), whatever
/// follows it, and the help does not list it.
#[cfg(not(feature = "live"))]
#[test]
fn live_without_the_feature_says_how_to_get_it() {
    for args in [
        &["live"][..],
        &["live", "-i", "eth0", "--duration", "5"],
        &["live", "--help"],
        &["live", "--list"],
    ] {
        let (code, out, err) = piped(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(
            err.starts_with("error: live capture is not in this build: ")
                && err.contains("cargo install allowscope --features live"),
            "{args:?}: {err}"
        );
    }
    let (_, out, _) = piped(&["--help"], &[]);
    assert!(!out.contains("\n  live "), "{out}");
}

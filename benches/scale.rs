//! `cargo bench --bench scale`: allowscope at scale and under floods (issue 20), beside `cat`
//! and tshark on the same files, in one run, and the goals checked against the figures.
//!
//! Files: the 1 GB bench capture (`target/bench-data/synth2-1024MB.pcap`, as `cargo bench
//! --bench flows` names it, generated if missing), a SYN flood (1M flows, one unanswered SYN
//! each, 70 MB) and a DNS flood (2M unanswered queries for new names, 208 MB) generated into
//! `target/bench-data/` and kept, and with `ALLOWSCOPE_BENCH_10G=1` a 10 GiB capture of the
//! same mix generated into a new directory under the system's temporary directory (`TMPDIR`,
//! else /tmp; it needs 11 GB free) that is removed when the bench ends, panics, or is stopped
//! with Ctrl-C (SIGINT, SIGTERM or SIGHUP: the bench notices after the running child ends and
//! unwinds). A directory left by a bench killed outright (SIGKILL) is removed by the next run.
//!
//! Contenders on each file: `cat FILE > /dev/null` (the I/O floor), the release binary's
//! `audit --format json --fail-on never` on `--threads 1` and `--threads 2`, `dns --format
//! ndjson` on the DNS flood, and tshark extracting SNIs and DNS names (`-T fields`, as `flows`
//! does, keeping every DNS message: the flood's queries have no answers). The binary is the one
//! Cargo builds for benches (`CARGO_BIN_EXE_allowscope`: the bench profile, which is the
//! release profile, in `target/release/allowscope`), so `cargo bench` rebuilds it first.
//! `ALLOWSCOPE_BENCH_TSHARK=0` skips tshark; on the 10 GB file tshark runs only with
//! `ALLOWSCOPE_BENCH_TSHARK_10G=1` (some 10 minutes and 13 GB of RAM on the 2-core host).
//!
//! Each command runs three times (twice on 10 GB, tshark once) right after a `cat` that warms
//! the page cache, and the fastest run counts; wall time, CPU time (user + system) and peak RSS
//! are that run's, of the child, from `wait4`. MB are 10^6 bytes, RSS MiB 2^20.

mod common;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{best_of, load, run_once, Run};

/// The goals.
const RSS_GOAL_MIB: f64 = 256.0;
const TWO_THREADS_GOAL_MBPS: f64 = 2000.0;
const ONE_THREAD_GOAL_MBPS: f64 = 1200.0;
const X_CAT_GOAL: f64 = 4.0;

const SYN_FLOWS: u64 = 1_000_000;
const DNS_QUERIES: u64 = 2_000_000;
const BIG_MIB: u64 = 10 << 10;
const BIG_DIR_PREFIX: &str = "allowscope-bench-10g-";

const TSHARK_FILTER: &str = "tls.handshake.extensions_server_name or dns";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Unwinds (removing the 10 GB directory on the way) if a signal asked the bench to stop.
fn stop_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: stopping");
    }
}

/// A writer that fails once a signal asked the bench to stop (the 10 GB file takes a while).
struct Interruptible<W>(W);

impl<W: Write> Write for Interruptible<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            // Not ErrorKind::Interrupted, which write_all retries.
            return Err(io::Error::other("interrupted by a signal"));
        }
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The 10 GB capture's directory, removed when dropped (on unwinding too).
struct BigDir(PathBuf);

impl BigDir {
    fn new() -> BigDir {
        let tmp = std::env::temp_dir();
        // Left by a bench that was killed outright: its process is gone.
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(BIG_DIR_PREFIX) {
                if !Path::new("/proc").join(pid).exists() {
                    eprintln!("removing {} (left by an earlier run)", e.path().display());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("{BIG_DIR_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the 10 GB capture's directory");
        BigDir(dir)
    }
}

impl Drop for BigDir {
    fn drop(&mut self) {
        eprintln!("removing {}", self.0.display());
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One file to bench.
struct Target {
    label: String,
    path: PathBuf,
    runs: u32,
    dns: bool,
    /// A flood: the audit runs with a live-flow cap too (`--max-flows 100000`), since every
    /// flood flow stays alive for its idle time.
    capped: bool,
    /// Why tshark does not run on it, if it does not.
    no_tshark: Option<String>,
}

impl Target {
    /// Three runs of everything, tshark included.
    fn new(label: &str, path: PathBuf) -> Target {
        Target {
            label: label.into(),
            path,
            runs: 3,
            dns: false,
            capped: false,
            no_tshark: None,
        }
    }
}

/// One line of the table: a contender on a file, or why it did not run.
struct Row {
    file: String,
    mb: f64,
    what: String,
    run: Result<Run, String>,
    cat_secs: Option<f64>,
}

fn bench(t: &Target, want_tshark: bool, rows: &mut Vec<Row>) {
    let mb = std::fs::metadata(&t.path).expect("bench file").len() as f64 / 1e6;
    let cat = || {
        let mut c = Command::new("cat");
        c.arg(&t.path);
        c
    };
    let allowscope = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_allowscope"));
        c.args(args).arg(&t.path);
        c
    };
    let audit = [
        "audit",
        "--format",
        "json",
        "-q",
        "--fail-on",
        "never",
        "--threads",
    ];
    // What each is called, the command (copied for every run), how many runs.
    let mut contenders: Vec<(&str, Command, u32)> = vec![
        ("cat FILE > /dev/null", cat(), t.runs),
        (
            "allowscope audit --format json --threads 1",
            allowscope(&[&audit[..], &["1"]].concat()),
            t.runs,
        ),
        (
            "allowscope audit --format json --threads 2",
            allowscope(&[&audit[..], &["2"]].concat()),
            t.runs,
        ),
    ];
    if t.capped {
        contenders.push((
            "allowscope audit --threads 2 --max-flows 100000",
            allowscope(&[&audit[..], &["2", "--max-flows", "100000"]].concat()),
            t.runs,
        ));
    }
    if t.dns {
        contenders.push((
            "allowscope dns --format ndjson",
            allowscope(&["dns", "--format", "ndjson"]),
            t.runs,
        ));
    }
    let tshark_what = "tshark -T fields: SNIs and DNS names";
    if want_tshark && t.no_tshark.is_none() {
        contenders.push((
            tshark_what,
            common::tshark_fields(&t.path, TSHARK_FILTER),
            1,
        ));
    }
    let mut cat_secs = None;
    for (i, (what, cmd, runs)) in contenders.into_iter().enumerate() {
        // Warm the page cache (the host pages out what has not been read for a minute).
        let _ = run_once(&mut cat());
        stop_if_interrupted();
        let s = if runs == 1 { "" } else { "s" };
        eprintln!("{}: {what} ({runs} run{s}) ...", t.label);
        let copy = || {
            let mut c = Command::new(cmd.get_program());
            c.args(cmd.get_args());
            c
        };
        let run = best_of(runs, copy).ok_or_else(|| "failed (see above)".to_string());
        stop_if_interrupted();
        if i == 0 {
            // cat's time, the others' yardstick.
            cat_secs = run.as_ref().ok().map(|r| r.secs);
        }
        rows.push(Row {
            file: t.label.clone(),
            mb,
            what: what.into(),
            run,
            cat_secs,
        });
    }
    if let (true, Some(why)) = (want_tshark, &t.no_tshark) {
        rows.push(Row {
            file: t.label.clone(),
            mb,
            what: tshark_what.into(),
            run: Err(why.clone()),
            cat_secs,
        });
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{nproc} cores ({model}), {ram_gib:.1} GiB RAM")
}

/// The first line a command prints, if it runs.
fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "-".into())
}

fn find<'a>(rows: &'a [Row], file: &str, what: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.file == file && r.what.contains(what))
}

fn goals(rows: &[Row], big: Option<&str>) {
    println!("\nGoals of issue 20:");
    let verdict = |goal: String, figure: Option<(bool, String)>| {
        let (mark, fig) = match figure {
            Some((true, f)) => ("PASS", f),
            Some((false, f)) => ("FAIL", f),
            None => ("-", "not measured".to_string()),
        };
        println!("  {mark:<4} {goal:<58} {fig}");
    };
    let rss = |file: &str| {
        let peak = ["--threads 1", "--threads 2"]
            .iter()
            .filter_map(|t| find(rows, file, &format!("audit --format json {t}")))
            .filter_map(|r| r.run.as_ref().ok())
            .map(|r| r.rss_kib as f64 / 1024.0)
            .reduce(f64::max)?;
        Some((
            peak < RSS_GOAL_MIB,
            format!("{peak:.0} MiB (the larger of 1 and 2 threads)"),
        ))
    };
    verdict(
        format!("audit peak RSS < {RSS_GOAL_MIB:.0} MiB on a 10 GB capture"),
        big.and_then(rss),
    );
    if big.is_none() {
        println!("       (ALLOWSCOPE_BENCH_10G=1 measures it)");
    }
    verdict(
        format!("audit peak RSS < {RSS_GOAL_MIB:.0} MiB on the SYN flood"),
        rss("SYN flood"),
    );
    verdict(
        format!("audit peak RSS < {RSS_GOAL_MIB:.0} MiB on the DNS flood"),
        rss("DNS flood"),
    );
    // With the live-flow cap, the flows alive at once are bounded too.
    let capped = |file: &str| {
        let r = find(rows, file, "--max-flows 100000")?.run.as_ref().ok()?;
        let peak = r.rss_kib as f64 / 1024.0;
        Some((peak < RSS_GOAL_MIB, format!("{peak:.0} MiB (2 threads)")))
    };
    for file in ["SYN flood", "DNS flood"] {
        verdict(
            format!("audit peak RSS < {RSS_GOAL_MIB:.0} MiB on the {file}, --max-flows 100000"),
            capped(file),
        );
    }
    let one_gb = |threads: &str| {
        find(
            rows,
            "1 GB",
            &format!("audit --format json --threads {threads}"),
        )
        .and_then(|r| Some((r, r.run.as_ref().ok()?)))
    };
    verdict(
        format!("audit --threads 2 >= {TWO_THREADS_GOAL_MBPS:.0} MB/s on 1 GB"),
        one_gb("2").map(|(r, run)| {
            let v = r.mb / run.secs;
            (v >= TWO_THREADS_GOAL_MBPS, format!("{v:.0} MB/s"))
        }),
    );
    verdict(
        format!("audit --threads 2 <= {X_CAT_GOAL:.0} x cat's time on 1 GB"),
        one_gb("2").and_then(|(r, run)| {
            let x = run.secs / r.cat_secs?;
            Some((x <= X_CAT_GOAL, format!("{x:.1} x cat")))
        }),
    );
    verdict(
        format!("audit --threads 1 >= {ONE_THREAD_GOAL_MBPS:.0} MB/s on 1 GB"),
        one_gb("1").map(|(r, run)| {
            let v = r.mb / run.secs;
            (v >= ONE_THREAD_GOAL_MBPS, format!("{v:.0} MB/s"))
        }),
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments besides --bench; only the
    // real `cargo bench` passes --bench. Skip the heavy work otherwise.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    let flag = |name: &str, default: bool| {
        std::env::var(name).map_or(default, |v| v != "0" && !v.is_empty())
    };
    let want_big = flag("ALLOWSCOPE_BENCH_10G", false);
    let want_tshark = flag("ALLOWSCOPE_BENCH_TSHARK", true) && common::have_tshark();
    let tshark_big = flag("ALLOWSCOPE_BENCH_TSHARK_10G", false);

    let data = common::bench_data_dir();
    // v1: the generators of this name; a new version of one gets a new name, since a file
    // already there is not written again.
    let syn = data.join(format!("syn-flood-v1-{SYN_FLOWS}.pcap"));
    let dns = data.join(format!("dns-flood-v1-{DNS_QUERIES}.pcap"));
    let mut targets = vec![
        Target::new("1 GB", common::synth_capture(&data, 1024)),
        Target {
            capped: true,
            ..Target::new(
                "SYN flood",
                common::generated(syn, |w| {
                    allowscope::synth::write_syn_flood(w, SYN_FLOWS, 42)
                }),
            )
        },
        Target {
            dns: true,
            capped: true,
            ..Target::new(
                "DNS flood",
                common::generated(dns, |w| {
                    allowscope::synth::write_dns_flood(w, DNS_QUERIES, 42)
                }),
            )
        },
    ];
    let big_dir = want_big.then(BigDir::new);
    if let Some(dir) = &big_dir {
        let path = common::generated(dir.0.join(format!("synth2-{BIG_MIB}MB.pcap")), |w| {
            allowscope::synth::write_pcap(Interruptible(w), BIG_MIB << 20, 2000, 42)
        });
        targets.push(Target {
            runs: 2,
            no_tshark: (!tshark_big).then(|| {
                "skipped: some 10 minutes and 13 GB of RAM (ALLOWSCOPE_BENCH_TSHARK_10G=1 runs it)"
                    .to_string()
            }),
            ..Target::new("10 GB", path)
        });
    }
    stop_if_interrupted();

    let load_before = load();
    let mut rows = Vec::new();
    for t in &targets {
        bench(t, want_tshark, &mut rows);
    }
    let load_after = load();
    let sizes: Vec<f64> = targets
        .iter()
        .map(|t| std::fs::metadata(&t.path).map_or(0.0, |m| m.len() as f64 / 1e6))
        .collect();
    drop(big_dir);

    println!(
        "\nscale bench, {}, commit {}\nmachine: {}; {}\nload average {load_before} before, {load_after} after\nbinary: {}",
        first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        first_line("git", &["rev-parse", "--short", "HEAD"]),
        machine(),
        if want_tshark {
            first_line("tshark", &["-v"])
        } else {
            "tshark skipped".into()
        },
        env!("CARGO_BIN_EXE_allowscope"),
    );
    for (t, mb) in targets.iter().zip(sizes) {
        println!("  {:<10} {:>9.0} MB  {}", t.label, mb, t.path.display());
    }
    println!(
        "\n{:<10} {:<46} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "file", "contender", "wall s", "CPU s", "MB/s", "RSS MiB", "x cat"
    );
    for r in &rows {
        match &r.run {
            Ok(run) => println!(
                "{:<10} {:<46} {:>8.3} {:>8.3} {:>8.0} {:>9.0} {:>7}",
                r.file,
                r.what,
                run.secs,
                run.cpu,
                r.mb / run.secs,
                run.rss_kib as f64 / 1024.0,
                r.cat_secs
                    .map_or("-".into(), |c| format!("{:.1}", run.secs / c)),
            ),
            Err(why) => println!("{:<10} {:<46} {why}", r.file, r.what),
        }
    }
    goals(&rows, want_big.then_some("10 GB"));
}

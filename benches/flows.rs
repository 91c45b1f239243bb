//! `cargo bench --bench flows`: throughput on a generated capture of the `flows` pipeline in
//! process (read, decode, flow table, first-flight reassembly, extractors) and of the real
//! `allowscope audit` binary on one thread and on all cores (the file read, as by default, and
//! memory-mapped with `--mmap`), beside `cat` (the I/O floor) and
//! tshark on the same file (extracting SNIs and DNS answers, and building its conversation
//! tables).
//!
//! Environment: `ALLOWSCOPE_BENCH_MB` (size of the generated capture in MiB, default 200, at
//! least 100; 1024 for the 1 GB figures of the README), `ALLOWSCOPE_BENCH_FILE` (use this
//! capture instead of generating one), `ALLOWSCOPE_BENCH_TSHARK=0` (skip tshark, which takes
//! most of the time). The generated file goes to `target/bench-data/` and is reused by later
//! runs. Each contender runs two or three times (tshark once) and the fastest run counts (the first run of a process also
//! pays for growing its heap); wall time, CPU time (user + system) and peak RSS are those of
//! that run (of the child process, from `wait4`, for commands). The machine's load average is
//! printed before and after: on a shared machine, CPU time is the steadier figure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use allowscope::capture::CaptureReader;
use allowscope::flow::FlowConfig;
use allowscope::pipeline::analyze_reader;
use common::{best_of, load, run_once, tv};

fn peak_rss_self_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn data_file() -> PathBuf {
    if let Ok(p) = std::env::var("ALLOWSCOPE_BENCH_FILE") {
        return PathBuf::from(p);
    }
    let mb: u64 = std::env::var("ALLOWSCOPE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        .max(100);
    common::synth_capture(&common::bench_data_dir(), mb)
}

struct Row {
    what: String,
    secs: f64,
    cpu: f64,
    /// The contender looks at packets (packets/s is shown).
    per_packet: bool,
    rss_kib: u64,
}

/// One in-process run of the pipeline, and the packets it read.
fn run_ours(path: &Path, mmap: bool) -> (Row, u64) {
    // Reset this process's peak RSS (VmHWM) so that it tells this run's (Linux 4.0 or later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let cpu0 = self_cpu_secs();
    let t = Instant::now();
    let reader = if mmap {
        CaptureReader::open_mmap(path)
    } else {
        CaptureReader::open(path)
    }
    .expect("open capture");
    let r = analyze_reader(path.display().to_string(), reader, &FlowConfig::default());
    let secs = t.elapsed().as_secs_f64();
    let cpu = self_cpu_secs() - cpu0;
    assert!(r.summary.error.is_none(), "{:?}", r.summary.error);
    std::hint::black_box(&r.flows);
    let row = Row {
        what: format!(
            "flows pipeline in process, {}, 1 thread ({} flows)",
            if mmap {
                "mmap".to_string()
            } else {
                format!("{} KiB reads", allowscope::capture::DEFAULT_BUF >> 10)
            },
            r.flows.len()
        ),
        secs,
        cpu,
        per_packet: true,
        // VmHWM of this process during the run (with mmap: the mapped file's pages count).
        rss_kib: peak_rss_self_kib(),
    };
    (row, r.summary.packets)
}

/// The faster of `runs` runs of a command.
fn run_cmd(what: &str, make: impl FnMut() -> Command, per_packet: bool, runs: u32) -> Option<Row> {
    let r = best_of(runs, make)?;
    Some(Row {
        what: what.to_string(),
        secs: r.secs,
        cpu: r.cpu,
        per_packet,
        rss_kib: r.rss_kib,
    })
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments besides --bench; only the
    // real `cargo bench` passes --bench. Skip the heavy work otherwise.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let path = data_file();
    let size = std::fs::metadata(&path).expect("bench file").len();
    let mb = size as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load();
    let cat = || {
        let mut c = Command::new("cat");
        c.arg(&path);
        c
    };
    // Warm the page cache so every contender reads from memory.
    let _ = run_once(&mut cat());
    let cat_row = run_cmd("cat FILE > /dev/null (I/O floor)", cat, false, 2);
    let path_ref = &path;
    let audit = |threads: usize, mapped: bool| {
        move || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_allowscope"));
            c.args(["audit", "--format", "json", "-q", "--fail-on", "never"])
                .args(["--threads", &threads.to_string()])
                .args(mapped.then_some("--mmap"))
                .arg(path_ref);
            c
        }
    };
    let audit_1 = run_cmd(
        "allowscope audit --format json --threads 1",
        audit(1, false),
        true,
        3,
    );
    let audit_n = run_cmd(
        &format!("allowscope audit --format json --threads {cores}"),
        audit(cores, false),
        true,
        3,
    );
    // Mapped, the file's pages count in the peak RSS; read, the peak is the process's own
    // memory.
    let audit_n_mapped = run_cmd(
        &format!("allowscope audit --format json --threads {cores} --mmap"),
        audit(cores, true),
        true,
        3,
    );
    let mut tshark_rows = Vec::new();
    let want_tshark = std::env::var("ALLOWSCOPE_BENCH_TSHARK").map_or(true, |v| v != "0");
    let have_tshark = common::have_tshark();
    if want_tshark && have_tshark {
        let fields = || {
            common::tshark_fields(
                &path,
                "tls.handshake.extensions_server_name or dns.flags.response == 1",
            )
        };
        tshark_rows.extend(run_cmd(
            "tshark -T fields: SNIs and DNS answers",
            fields,
            true,
            1,
        ));
        let conv = || {
            let mut c = Command::new("tshark");
            c.args(["-n", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r"])
                .arg(&path);
            c
        };
        tshark_rows.extend(run_cmd("tshark -q -z conv,tcp -z conv,udp", conv, true, 1));
    } else if !have_tshark {
        eprintln!("tshark not installed: no comparison");
    }
    // In process last: a child forked from this process once it holds a large heap would
    // count that heap in its own peak RSS. Each reading strategy twice, alternating.
    let mut best: [Option<Row>; 2] = [None, None];
    let mut read_packets = 0;
    for round in 0..4 {
        let mmap = round % 2 == 1;
        let (r, packets) = run_ours(&path, mmap);
        read_packets = packets;
        let slot = &mut best[usize::from(mmap)];
        if slot.as_ref().is_none_or(|b| r.secs < b.secs) {
            *slot = Some(r);
        }
    }
    let [read, mapped] = best.map(|r| r.expect("ran"));
    let packets = read_packets;
    let packets_of = |r: &Row| r.per_packet.then_some(packets);
    let load_after = load();

    println!(
        "\nflows bench: {} ({mb:.0} MB, {packets} packets), {cores} cores, load average {load_before} before, {load_after} after",
        path.display(),
    );
    println!(
        "{:<58} {:>8} {:>8} {:>8} {:>12} {:>8} {:>8} {:>9}",
        "what", "wall s", "cpu s", "MB/s", "packets/s", "RSS MB", "x cat", "tshark/x"
    );
    let cat_secs = cat_row.as_ref().map(|r| r.secs);
    let tshark_secs = tshark_rows.first().map(|r| r.secs);
    let rows: Vec<&Row> = cat_row
        .iter()
        .chain([&read, &mapped])
        .chain(audit_1.iter())
        .chain(audit_n.iter())
        .chain(audit_n_mapped.iter())
        .chain(tshark_rows.iter())
        .collect();
    for r in rows {
        let pps = packets_of(r).map_or("-".into(), |p| format!("{:.0}", p as f64 / r.secs));
        println!(
            "{:<58} {:>8.3} {:>8.3} {:>8.0} {:>12} {:>8.0} {:>8} {:>9}",
            r.what,
            r.secs,
            r.cpu,
            mb / r.secs,
            pps,
            r.rss_kib as f64 / 1024.0,
            cat_secs.map_or("-".into(), |c| format!("{:.1}", r.secs / c)),
            tshark_secs.map_or("-".into(), |t| format!("{:.1}", t / r.secs)),
        );
    }
    if let (Some(one), Some(n)) = (&audit_1, &audit_n) {
        println!(
            "audit on {cores} threads vs 1: {:.2}x the speed (wall), {:.2}x the CPU time",
            one.secs / n.secs,
            n.cpu / one.cpu
        );
    }
    println!(
        "x cat: wall time over cat's; tshark/x: tshark's SNI and DNS extraction's wall time over \
         this row's. Peak RSS of the in-process rows is this bench process's during the run \
         (the mapped file's pages count in the mmap rows)."
    );
}

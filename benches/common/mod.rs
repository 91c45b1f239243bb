//! Helpers shared by the benches that time commands (`flows`, `scale`): running a child with
//! its CPU time and peak RSS from `wait4`, the generated captures of `target/bench-data/`, the
//! tshark command they are compared with, the machine's load.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use allowscope::synth::SynthStats;

/// Seconds of a `timeval`.
pub fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The load average over 1, 5 and 15 minutes.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One run of a command: wall time, the child's own CPU time (user + system) and peak RSS.
#[derive(Clone, Copy)]
pub struct Run {
    pub secs: f64,
    pub cpu: f64,
    pub rss_kib: u64,
}

/// Runs a command to its end with stdout and stderr discarded; wall time, and the child's own
/// CPU time and peak RSS from `wait4`. None if it could not start or did not exit with 0.
pub fn run_once(cmd: &mut Command) -> Option<Run> {
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid, writing into locals we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) < 0 {
            return None;
        }
        ru
    };
    let secs = t.elapsed().as_secs_f64();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        eprintln!("{cmd:?}: exit status {status:#x}");
        return None;
    }
    Some(Run {
        secs,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        rss_kib: ru.ru_maxrss as u64,
    })
}

/// The fastest (by wall time) of `runs` runs of a command; None if any run failed.
pub fn best_of(runs: u32, mut make: impl FnMut() -> Command) -> Option<Run> {
    let mut best: Option<Run> = None;
    for _ in 0..runs {
        let r = run_once(&mut make())?;
        if best.is_none_or(|b| r.secs < b.secs) {
            best = Some(r);
        }
    }
    best
}

/// `target/bench-data/`, where generated captures are kept for later runs.
pub fn bench_data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    dir
}

/// `path`, written by `write` first if it does not exist (into a `.tmp` beside it, renamed
/// when complete, so an interrupted run leaves no short file under the real name).
pub fn generated(
    path: PathBuf,
    write: impl FnOnce(BufWriter<File>) -> io::Result<SynthStats>,
) -> PathBuf {
    if !path.exists() {
        eprintln!("generating {} ...", path.display());
        let tmp = path.with_extension("tmp");
        let w = BufWriter::with_capacity(1 << 20, File::create(&tmp).expect("create bench file"));
        let st = write(w).expect("write bench file");
        std::fs::rename(&tmp, &path).expect("rename bench file");
        eprintln!("  {} packets, {} flows", st.packets, st.flows);
    }
    path
}

/// The bench's synthetic capture of `mb` MiB in `dir` (`synth2-{mb}MB.pcap`: v2, the TLS data
/// are real records), generated if missing.
pub fn synth_capture(dir: &Path, mb: u64) -> PathBuf {
    generated(dir.join(format!("synth2-{mb}MB.pcap")), |w| {
        allowscope::synth::write_pcap(w, mb << 20, 2000, 42)
    })
}

/// Whether tshark runs here.
pub fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// tshark extracting SNIs, DNS query names and answers from the packets `filter` keeps.
pub fn tshark_fields(path: &Path, filter: &str) -> Command {
    let mut c = Command::new("tshark");
    c.args(["-n", "-r"]).arg(path).args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "tls.handshake.extensions_server_name",
        "-e",
        "dns.qry.name",
        "-e",
        "dns.cname",
        "-e",
        "dns.a",
        "-e",
        "dns.aaaa",
    ]);
    c
}

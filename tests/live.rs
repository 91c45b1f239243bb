//! Live capture for real: two network namespaces joined by a veth pair, real TLS, DNS, a
//! firewalled address and UDP between them, captured by `allowscope live` in one namespace.
//! Needs root, `ip`, `nft`, `openssl`, `dnsmasq`, `dig` and `bash`; skipped (with a message)
//! otherwise.
#![cfg(feature = "live")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_allowscope");

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sh(cmd: &str) -> Output {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deletes the namespaces (and with them the veth pair), kills the background processes and
/// removes the scratch directory, even when the test panics.
struct Lab {
    ns_a: String,
    ns_b: String,
    veth_a: String,
    veth_b: String,
    /// The first three octets of the pair's /24.
    net: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    /// Namespaces `TAG-PID-a` and `TAG-PID-b` joined by a veth pair in 10.OCTET.x.0/24 (A is
    /// .1, B is .2), and a scratch directory.
    fn new(tag: &str, octet: u8) -> Lab {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("{tag}-live-{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            ns_a: format!("{tag}-{pid}-a"),
            ns_b: format!("{tag}-{pid}-b"),
            // Interface names are limited to 15 bytes.
            veth_a: format!("{tag}{pid}a"),
            veth_b: format!("{tag}{pid}b"),
            net: format!("10.{octet}.{}", pid % 250 + 1),
            dir,
            children: Vec::new(),
        };
        veth_pair(
            [&lab.ns_a, &lab.ns_b],
            [&lab.veth_a, &lab.veth_b],
            [&lab.addr(1), &lab.addr(2)],
        );
        lab
    }

    fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip")
                .args(["netns", "delete", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn spawn_bg(lab: &mut Lab, ns: &str, script: &str) {
    let child = in_ns(ns, &["sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(child);
}

/// Root and the tools a test needs; says why it skips otherwise, except under CI (`CI` set),
/// where no test may pass by skipping: there it fails.
fn can_run(test: &str, tools: &[&str]) -> bool {
    let why = if !is_root() {
        Some("root (id -u is not 0)".to_string())
    } else {
        tools.iter().find(|t| !have(t)).map(|t| format!("`{t}`"))
    };
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test} test needs {why}, and CI must not skip it"
            );
            eprintln!("skipped: {test} test needs {why}");
            false
        }
    }
}

/// Two namespaces joined by a veth pair, `a` and `b` on its ends (a /24).
fn veth_pair(ns: [&str; 2], veth: [&str; 2], addr: [&str; 2]) {
    let ([na, nb], [va, vb], [a, b]) = (ns, veth, addr);
    sh(&format!(
        "ip netns add {na} && ip netns add {nb} && \
         ip link add {va} type veth peer name {vb} && \
         ip link set {va} netns {na} && ip link set {vb} netns {nb} && \
         ip -n {na} addr add {a}/24 dev {va} && ip -n {na} link set {va} up && \
         ip -n {na} link set lo up && \
         ip -n {nb} addr add {b}/24 dev {vb} && ip -n {nb} link set {vb} up && \
         ip -n {nb} link set lo up"
    ));
}

/// An `openssl s_server -www` in `ns` on `addr`:443 with a self-signed certificate for `cn`.
fn tls_server(lab: &mut Lab, ns: &str, addr: &str, cn: &str) {
    let (cert, key) = (lab.dir.join("cert.pem"), lab.dir.join("key.pem"));
    sh(&format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
         -subj /CN={cn} -keyout {} -out {} 2>/dev/null",
        key.display(),
        cert.display()
    ));
    spawn_bg(
        lab,
        ns,
        &format!(
            "exec openssl s_server -quiet -www -accept {addr}:443 -cert {} -key {}",
            cert.display(),
            key.display()
        ),
    );
}

/// (verdict, mechanism, name, port) of every finding and DNS failure.
fn finding_keys(doc: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    let mut keys = BTreeSet::new();
    for list in ["findings", "dns_failures"] {
        for f in doc[list].as_array().into_iter().flatten() {
            keys.insert((
                f["verdict"].as_str().unwrap_or("").to_string(),
                f["mechanism"].as_str().unwrap_or("").to_string(),
                f["name"].as_str().unwrap_or("").to_string(),
                f["dst_port"].to_string(),
            ));
        }
    }
    keys
}

fn wait_for_pcap_header(path: &Path, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::fs::metadata(path)
            .map(|m| m.len() >= 24)
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("live capture did not start within {within:?}");
}

#[test]
fn live_capture_between_namespaces_matches_offline_audit() {
    if !can_run(
        "live capture",
        &["ip", "nft", "openssl", "dnsmasq", "dig", "bash", "timeout"],
    ) {
        return;
    }
    let mut lab = Lab::new("asl", 199);
    let (ns_a, ns_b, veth_a, veth_b) = (
        lab.ns_a.clone(),
        lab.ns_b.clone(),
        lab.veth_a.clone(),
        lab.veth_b.clone(),
    );
    let (b, b_dropped, dir) = (lab.addr(2), lab.addr(3), lab.dir.clone());
    sh(&format!(
        "ip -n {ns_b} addr add {b_dropped}/24 dev {veth_b}"
    ));
    // B's firewall silently drops everything to its second address.
    sh(&format!(
        "ip netns exec {ns_b} nft add table inet asl && \
         ip netns exec {ns_b} nft add chain inet asl in '{{ type filter hook input priority 0; }}' && \
         ip netns exec {ns_b} nft add rule inet asl in ip daddr {b_dropped} drop"
    ));
    // B: a TLS web server, a DNS server that knows the names, a UDP sink that never answers.
    tls_server(&mut lab, &ns_b, &b, "login.microsoftonline.com");
    spawn_bg(
        &mut lab,
        &ns_b,
        &format!(
            "exec dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
             --pid-file= --user=root --bind-interfaces --listen-address={b} \
             --address=/login.microsoftonline.com/{b} \
             --address=/ws1.workspace.eastus.api.azureml.ms/{b_dropped} \
             --address=/eastus.tundra.azureml.ms/{b}"
        ),
    );
    spawn_bg(
        &mut lab,
        &ns_b,
        &format!("exec socat -u UDP-RECV:5831,bind={b} /dev/null 2>/dev/null || exec sleep 30"),
    );

    let out_pcap = dir.join("live.pcap");
    let live = in_ns(
        &ns_a,
        &[
            BIN,
            "live",
            "-i",
            &veth_a,
            "--duration",
            "6",
            "--format",
            "json",
            "--write",
            out_pcap.to_str().unwrap(),
            "--fail-on",
            "never",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_pcap_header(&out_pcap, Duration::from_secs(5));
    // Give the servers in B a moment to listen (they started before the capture).
    std::thread::sleep(Duration::from_millis(300));

    // A: look the names up, then talk.
    let dig = |name: &str| format!("dig +time=1 +tries=2 @{b} {name} A >/dev/null");
    let traffic = format!(
        "{}; {}; {}; \
         (timeout 3 bash -c '</dev/tcp/{b_dropped}/443' 2>/dev/null &) ; \
         (for i in 1 2 3; do echo ping > /dev/udp/{b}/5831; sleep 1; done &) ; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 openssl s_client -quiet \
           -connect {b}:443 -servername login.microsoftonline.com >/dev/null 2>&1; \
         sleep 3.2",
        dig("login.microsoftonline.com"),
        dig("ws1.workspace.eastus.api.azureml.ms"),
        dig("eastus.tundra.azureml.ms"),
    );
    let status = in_ns(&ns_a, &["bash", "-c", &traffic]).status().unwrap();
    assert!(status.success(), "traffic script failed");

    let out = live.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "live failed: {stderr}");
    assert!(
        stderr.contains("dropped by kernel"),
        "no drop counts: {stderr}"
    );
    let live_doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        live_doc["inputs"][0]["interface_drops"].is_u64(),
        "{}",
        live_doc["inputs"][0]
    );

    let offline = Command::new(BIN)
        .args(["audit", "--format", "json", "--fail-on", "never"])
        .arg(&out_pcap)
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(0));
    let offline_doc: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();

    let live_keys = finding_keys(&live_doc);
    eprintln!("live findings: {live_keys:#?}");
    let has = |verdict: &str, mech: &str, name: &str, port: &str| {
        live_keys
            .iter()
            .any(|(v, m, n, p)| v == verdict && m == mech && n == name && p == port)
    };
    assert!(
        has("required-reached", "", "login.microsoftonline.com", "443"),
        "no required-reached login.microsoftonline.com:443"
    );
    assert!(
        live_keys.iter().any(|(v, m, n, _)| v.ends_with("-blocked")
            && m == "drop"
            && n == "ws1.workspace.eastus.api.azureml.ms"),
        "no blocked finding with mechanism drop"
    );
    assert_eq!(live_keys, finding_keys(&offline_doc));
}

/// On a terminal `allowscope live` redraws a live view (capture counters and the audit so far)
/// while it captures, then, stopped by SIGTERM, clears it and prints the final report. `script` gives the command
/// a pseudo-terminal; real TLS crosses a namespace pair during the capture.
#[test]
fn live_view_on_a_terminal() {
    if !can_run("live view", &["ip", "openssl", "script", "timeout", "bash"]) {
        return;
    }
    let mut lab = Lab::new("asv", 198);
    let (ns_a, ns_b, veth_a) = (lab.ns_a.clone(), lab.ns_b.clone(), lab.veth_a.clone());
    let (b, dir) = (lab.addr(2), lab.dir.clone());
    tls_server(&mut lab, &ns_b, &b, "management.azure.com");
    // TLS to management.azure.com every 0.3 s for the whole capture.
    spawn_bg(
        &mut lab,
        &ns_a,
        &format!(
            "sleep 0.5; for i in $(seq 1 12); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | \
             timeout 2 openssl s_client -quiet -connect {b}:443 \
             -servername management.azure.com >/dev/null 2>&1; sleep 0.3; done"
        ),
    );
    let typescript = dir.join("typescript");
    // Stopped by SIGTERM, not --duration: the final report must still come.
    let cmd = format!(
        "timeout --preserve-status -s TERM 5 ip netns exec {ns_a} {BIN} live -i {veth_a} --refresh 0.5 --fail-on never"
    );
    let st = Command::new("script")
        .args(["-q", "-e", "-c", &cmd])
        .arg(&typescript)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "live under script failed");
    let out = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).replace('\r', "");
    let frames: Vec<&str> = out.split("\x1b[H\x1b[2J").collect();
    // Several redraws, and one of them already shows the reached catalog host.
    let views: Vec<&&str> = frames
        .iter()
        .filter(|f| f.starts_with(&format!("allowscope live: {veth_a}")))
        .collect();
    assert!(views.len() >= 4, "{} views:\n{out}", views.len());
    assert!(
        views
            .iter()
            .all(|v| v.contains("packets captured, ") && v.contains(" dropped\n")),
        "{out}"
    );
    // The counts of the audit so far: some view already counts reached required flows.
    assert!(
        views.iter().any(|v| v.contains(" required-reached,")
            && !v.contains(" 0 required-reached,")
            && v.contains(" 1/")),
        "no view showed management.azure.com reached:\n{out}"
    );
    // The last frame (after the view was cleared) is the final text report.
    let last = frames.last().unwrap();
    assert!(
        last.contains("Required (or optional) but blocked"),
        "{last}"
    );
    assert!(last.contains("management.azure.com:443"), "{last}");
}

/// Durations a clock cannot hold are argument errors, before any device is opened (1e300
/// seconds panicked in the timer thread, or never ended the capture).
#[test]
fn durations_a_clock_cannot_hold_are_errors() {
    for args in [
        ["live", "-i", "lo", "--duration", "1e300"],
        ["live", "-i", "lo", "--refresh", "1e300"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("seconds"));
    }
}

/// A user name or filter from the command line is escaped once in the error (the capture
/// source wrote it with `{:?}` and the command escaped that again: `a\b` read `a\\\\b`).
#[test]
fn a_bad_user_or_filter_is_escaped_once() {
    if !can_run("bad user", &[]) {
        return;
    }
    for (args, want) in [
        (
            ["live", "-i", "lo", "--duration", "1", "--user", "a\\b"],
            "no such user \"a\\\\b\"",
        ),
        (
            ["live", "-i", "lo", "--duration", "1", "-f", "port \\x"],
            "bad filter \"port \\\\x\"",
        ),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

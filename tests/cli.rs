//! Integration tests: run the built `allowscope` binary on the recorded captures in captures/
//! and assert the exact flows and outcomes each must show (see captures/README.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_allowscope"))
}

fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = bin().args(args).output().expect("run allowscope");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The flows of one capture as parsed objects, in first-seen order: those of the JSON
/// document, which the NDJSON rows (written as flows finish, epoch by epoch) must hold too,
/// each once.
fn flows(name: &str) -> Vec<Value> {
    let p = cap(name);
    let r = run(&["flows", "--format", "ndjson", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    let mut rows: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    let j = run(&["flows", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(j.code, 0, "{name}: {}", j.stderr);
    let doc: Value = serde_json::from_str(&j.stdout).expect("one JSON document");
    let all: Vec<Value> = doc["flows"].as_array().expect("flows").clone();
    let mut whole: Vec<String> = all.iter().map(|f| f.to_string()).collect();
    rows.iter_mut().for_each(|l| {
        let mut v = serde_json::from_str::<Value>(l).expect("one JSON object per line");
        assert_eq!(
            v["labels"],
            serde_json::json!({}),
            "{name}: a row without its labels"
        );
        v.as_object_mut().unwrap().remove("labels");
        *l = v.to_string()
    });
    rows.sort();
    whole.sort();
    assert!(
        rows == whole,
        "{name}: the NDJSON rows are not the JSON's flows"
    );
    all
}

/// A compact, exact description of a flow: the fields the captures' README promises.
fn describe(f: &Value) -> String {
    let mut s = format!(
        "{} {}:{} > {}:{} {} pkts {}/{} hist {}",
        f["proto"].as_str().unwrap(),
        f["src_ip"].as_str().unwrap(),
        f["src_port"],
        f["dst_ip"].as_str().unwrap(),
        f["dst_port"],
        f["outcome"].as_str().unwrap(),
        f["packets"]["from_client"],
        f["packets"]["from_server"],
        f["history"].as_str().unwrap(),
    );
    if f["outcome"] == "no-answer" {
        s += &format!(" attempts {}", f["attempts"]);
    }
    if let Some(c) = f["close"].as_object() {
        s += &format!(
            " close {} by {}",
            c["how"].as_str().unwrap(),
            c["by"].as_str().unwrap()
        );
    }
    if let Some(i) = f["icmp"].as_object() {
        s += &format!(
            " icmp {}/{} from {}{}",
            i["type"],
            i["code"],
            i["from"].as_str().unwrap(),
            if i["from_server"] == true {
                " (server)"
            } else {
                ""
            }
        );
    }
    s
}

fn describe_all(name: &str) -> Vec<String> {
    flows(name).iter().map(describe).collect()
}

fn assert_lines(got: &[String], want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    if got != want.as_slice() {
        panic!(
            "flows differ\n--- got\n{}\n--- want\n{}",
            got.join("\n"),
            want.join("\n")
        );
    }
}

#[test]
fn tcp_outcomes_exact() {
    assert_lines(
        &describe_all("tcp-outcomes.pcap"),
        &[
            "tcp 10.99.1.2:40087 > 10.99.2.2:8087 midstream pkts 124/62 hist DdAFf close fin by client",
            "tcp 10.99.1.2:40443 > 10.99.2.2:443 established pkts 12/8 hist ShADadFf close fin by client",
            "tcp 10.99.1.2:40081 > 10.99.2.2:8081 no-answer pkts 3/0 hist S attempts 3",
            "tcp 10.99.1.2:40082 > 10.99.2.2:8082 refused pkts 1/1 hist Sr close rst by server",
            "tcp 10.99.1.2:40083 > 10.99.2.2:8083 icmp-unreachable pkts 1/0 hist S icmp 3/13 from 10.99.1.1",
            "tcp 10.99.1.2:40009 > 10.99.2.2:9 refused pkts 1/1 hist Sr close rst by server",
            "tcp 10.99.1.2:40084 > 10.99.2.2:8084 handshake-only pkts 4/2 hist ShAFf close fin by client",
            "tcp 10.99.1.2:40085 > 10.99.2.2:8085 reset-after-hello pkts 5/5 hist ShADafF close fin by server",
            "tcp 10.99.1.2:40086 > 10.99.2.2:8086 reset-after-hello pkts 3/3 hist ShADar close rst by server",
        ],
    );
}

#[test]
fn rst_ttl_tells_firewall_from_server() {
    // The firewall's RST (port 8082) leaves as-fw with TTL 64; the server's own RST (port 9)
    // crossed one router and arrives with TTL 63, like the server's other packets.
    let f = flows("tcp-outcomes.pcap");
    let ttl = |port: u64| {
        let x = f.iter().find(|x| x["dst_port"] == port).unwrap();
        (
            x["ttl"]["from_server"]["min"].as_u64().unwrap(),
            x["ttl"]["from_server"]["max"].as_u64().unwrap(),
        )
    };
    assert_eq!(ttl(8082), (64, 64));
    assert_eq!(ttl(9), (63, 63));
    assert_eq!(ttl(443), (63, 63));
}

#[test]
fn udp_outcomes_exact() {
    assert_lines(
        &describe_all("udp-outcomes.pcap"),
        &[
            "udp 10.99.1.2:50531 > 10.99.2.2:53 established pkts 1/1 hist Dd",
            "udp 10.99.1.2:50532 > 10.99.2.2:53 established pkts 1/1 hist Dd",
            "udp 10.99.1.2:50533 > 10.99.2.2:53 established pkts 1/1 hist Dd",
            "udp 10.99.1.2:50007 > 10.99.2.2:7 established pkts 1/1 hist Dd",
            "udp 10.99.1.2:50999 > 10.99.2.2:9999 icmp-unreachable pkts 1/0 hist D icmp 3/3 from 10.99.2.2 (server)",
            "udp 10.99.1.2:55300 > 10.99.2.2:5300 no-answer pkts 2/0 hist D attempts 2",
            "udp 10.99.1.2:55301 > 10.99.2.2:5301 icmp-unreachable pkts 1/0 hist D icmp 3/13 from 10.99.1.1",
            // 4000 bytes each way in three IPv4 fragments, reassembled into one datagram.
            "udp 10.99.1.2:50070 > 10.99.2.2:7 established pkts 1/1 hist Dd",
        ],
    );
    let f = flows("udp-outcomes.pcap");
    let big = f.iter().find(|x| x["src_port"] == 50070).unwrap();
    assert_eq!(big["payload_bytes"]["from_client"], 4000);
    assert_eq!(big["payload_bytes"]["from_server"], 4000);
    // nanosecond timestamps survive
    let first = f[0]["first_seen"].as_str().unwrap();
    assert_eq!(
        first.len(),
        "2026-11-21T19:56:30.123456789Z".len(),
        "{first}"
    );
}

#[test]
fn ipv6_exact() {
    assert_lines(
        &describe_all("ipv6.pcap"),
        &[
            "tcp fd99:1::2:60443 > fd99:2::2:443 established pkts 10/8 hist ShADadFf close fin by client",
            "tcp fd99:1::2:60081 > fd99:2::2:8081 no-answer pkts 3/0 hist S attempts 3",
            "tcp fd99:1::2:60082 > fd99:2::2:8082 refused pkts 1/1 hist Sr close rst by server",
            "tcp fd99:1::2:60083 > fd99:2::2:8083 icmp-unreachable pkts 2/0 hist S icmp 1/1 from fd99:1::1",
            "tcp fd99:1::2:60009 > fd99:2::2:9 refused pkts 1/1 hist Sr close rst by server",
            "udp fd99:1::2:60053 > fd99:2::2:53 established pkts 1/1 hist Dd",
            "udp fd99:1::2:60999 > fd99:2::2:9999 icmp-unreachable pkts 1/0 hist D icmp 1/4 from fd99:2::2 (server)",
            "udp fd99:1::2:65301 > fd99:2::2:5301 icmp-unreachable pkts 1/0 hist D icmp 1/1 from fd99:1::1",
            "udp fd99:1::2:60007 > fd99:2::2:7 established pkts 1/1 hist Dd",
        ],
    );
    let f = flows("ipv6.pcap");
    let rejected = f.iter().find(|x| x["dst_port"] == 8083).unwrap();
    assert_eq!(
        rejected["icmp"]["count"], 2,
        "both ICMPv6 errors are credited to the flow"
    );
    let big = f.iter().find(|x| x["dst_port"] == 7).unwrap();
    assert_eq!(
        big["payload_bytes"]["from_client"], 4000,
        "IPv6 fragments reassembled"
    );
}

#[test]
fn split_hello_and_vlan_and_two_interfaces() {
    assert_lines(
        &describe_all("split-hello.pcap"),
        &["tcp 10.99.1.2:41443 > 10.99.2.2:443 established pkts 17/14 hist ShADadFf close fin by client"],
    );
    assert_lines(
        &describe_all("vlan.pcap"),
        &[
            "tcp 10.99.3.2:42080 > 10.99.2.2:8080 established pkts 6/4 hist ShADadFf close fin by client",
            "udp 10.99.3.2:42053 > 10.99.2.2:53 established pkts 1/1 hist Dd",
            "tcp 10.99.4.2:43080 > 10.99.2.2:8080 established pkts 6/4 hist ShADadFf close fin by client",
            "udp 10.99.4.2:43053 > 10.99.2.2:53 established pkts 1/1 hist Dd",
        ],
    );
    // Both sides of the firewall: every packet of the allowed flow is seen twice (once per
    // interface, hence the retransmission letters), the dropped SYNs only on the client side.
    assert_lines(
        &describe_all("fw-two-ifaces.pcapng"),
        &[
            "tcp 10.99.1.2:44443 > 10.99.2.2:443 established pkts 24/16 hist ShADadTtFf close fin by client",
            "tcp 10.99.1.2:44081 > 10.99.2.2:8081 no-answer pkts 3/0 hist S attempts 3",
        ],
    );
    let r = run(&[
        "flows",
        "--format",
        "json",
        cap("fw-two-ifaces.pcapng").to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema_version"], 3);
    assert_eq!(
        doc["files"][0]["linktypes"],
        serde_json::json!({"1": 23, "276": 20})
    );
    assert_eq!(doc["files"][0]["format"], "pcapng");
    let v = run(&[
        "flows",
        "--format",
        "json",
        cap("vlan.pcap").to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(
        doc["files"][0]["skipped"]["not_ip"], 4,
        "the tagged ARP frames are counted"
    );
}

/// Fields that must not depend on the container, compression or link layer of a capture.
fn portable(f: &Value) -> Value {
    let mut f = f.clone();
    let o = f.as_object_mut().unwrap();
    o.remove("file");
    o.remove("bytes"); // frame sizes differ between Ethernet and SLL2 headers
                       // tcpdump and dumpcap ran side by side: their clocks read the same packets a few
                       // microseconds apart, and dumpcap keeps nanoseconds.
    for k in ["first_seen", "last_seen", "duration_s"] {
        o.remove(k);
    }
    if let Some(i) = o.get_mut("icmp").and_then(Value::as_object_mut) {
        i.remove("first_seen");
    }
    f
}

#[test]
fn same_traffic_in_every_container_gives_the_same_flows() {
    let base: Vec<Value> = flows("tcp-outcomes.pcap").iter().map(portable).collect();
    assert_eq!(base.len(), 9);
    for other in [
        "tcp-outcomes.pcapng",
        "tcp-outcomes.pcap.gz",
        "tcp-outcomes.pcap.zst",
        "tcp-outcomes.sll2.pcap",
    ] {
        let got: Vec<Value> = flows(other).iter().map(portable).collect();
        assert_eq!(got, base, "{other} differs from tcp-outcomes.pcap");
    }
    // The compressed copies are the same bytes: even frame sizes agree.
    let plain = flows("tcp-outcomes.pcap");
    let gz = flows("tcp-outcomes.pcap.gz");
    for (a, b) in plain.iter().zip(&gz) {
        assert_eq!(a["bytes"], b["bytes"]);
    }
}

/// The encrypted bypass in the JSON: each TLS direction is kept up to the header of its first
/// ApplicationData record and says where that was; the rest is still announced.
#[test]
fn tls_first_flights_stop_at_application_data() {
    let f = flows("tcp-outcomes.pcap");
    let tls = f.iter().find(|x| x["dst_port"] == 443).unwrap();
    let (c, s) = (
        &tls["first_flight"]["from_client"],
        &tls["first_flight"]["from_server"],
    );
    assert_eq!(
        (&c["encrypted_from"], &c["bytes"]),
        (&Value::from(330), &Value::from(335))
    );
    assert_eq!(
        (&s["encrypted_from"], &s["bytes"]),
        (&Value::from(133), &Value::from(138))
    );
    assert_eq!(
        (&c["announced"], &s["announced"]),
        (&Value::from(472), &Value::from(1432))
    );
    assert_eq!(
        (&c["capped"], &c["hole"]),
        (&Value::from(false), &Value::from(false))
    );
    // Not TLS from the first byte: kept whole, no offset.
    let plain = f.iter().find(|x| x["dst_port"] == 8087).unwrap();
    assert_eq!(
        plain["first_flight"]["from_server"]["encrypted_from"],
        Value::Null
    );
    assert_eq!(plain["first_flight"]["from_server"]["bytes"], 915);
    // --reassembly-cap takes 1024 and up, as its help says.
    let p = cap("tcp-outcomes.pcap");
    let p = p.to_str().unwrap();
    assert_eq!(run(&["flows", "-q", "--reassembly-cap", "1024", p]).code, 0);
    let r = run(&["flows", "-q", "--reassembly-cap", "1023", p]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("1024"), "{}", r.stderr);
}

#[test]
fn snaplen_cut_keeps_flows_and_reports_truncation() {
    let full = describe_all("tcp-outcomes.pcap");
    let cut = describe_all("tcp-outcomes.snap96.pcap");
    assert_eq!(cut, full, "a 96-byte snap length changes no outcome");
    let f = flows("tcp-outcomes.snap96.pcap");
    let tls = f.iter().find(|x| x["dst_port"] == 443).unwrap();
    assert_eq!(tls["truncated_packets"], 7);
    let ch = &tls["first_flight"]["from_client"];
    assert_eq!(
        ch["bytes"], 30,
        "96 - 14 - 20 - 32 bytes of headers leave 30 bytes of hello"
    );
    assert_eq!(ch["cut_at"], 30);
    assert_eq!(ch["hole"], true);
    let hello = f.iter().find(|x| x["dst_port"] == 8086).unwrap();
    assert_eq!(hello["first_flight"]["from_client"]["announced"], 329);
    let r = run(&[
        "flows",
        "--format",
        "json",
        cap("tcp-outcomes.snap96.pcap").to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["files"][0]["truncated_packets"], 10);
}

#[test]
fn broken_files_report_offset_and_keep_earlier_packets() {
    // (file, exit code, message on stderr, flows before the damage)
    let cases: &[(&str, i32, &str, usize)] = &[
        (
            "broken-caplen.pcap",
            2,
            "byte offset 486: bogus captured length 2147483647",
            1,
        ),
        (
            "broken-garbage.pcap",
            2,
            "byte offset 486: invalid timestamp fraction",
            1,
        ),
        (
            "broken-magic.pcap",
            2,
            "byte offset 0: not a pcap or pcapng file",
            0,
        ),
        (
            "broken-truncated.pcap",
            0,
            "warning: captures/broken-truncated.pcap: byte offset 23655: last record truncated",
            9,
        ),
        ("broken-truncated.pcapng", 0, "last record truncated", 9),
    ];
    for (name, code, msg, nflows) in cases {
        let p = format!("captures/{name}");
        let out = bin()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["flows", "--format", "ndjson", &p])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{name}: {stderr}");
        assert!(
            stderr.contains(msg),
            "{name}: stderr lacks {msg:?}:\n{stderr}"
        );
        assert!(
            stderr.contains(name),
            "{name}: the message names the file:\n{stderr}"
        );
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(n, *nflows, "{name}: flows before the damage");
    }
    // The first five records of tcp-outcomes are the midstream flow's: they survive the damage.
    let f = flows_allow_error("broken-caplen.pcap");
    assert_eq!(f[0]["dst_port"], 8087);
    assert_eq!(f[0]["outcome"], "midstream");
}

fn flows_allow_error(name: &str) -> Vec<Value> {
    let r = run(&[
        "flows",
        "--format",
        "ndjson",
        "-q",
        cap(name).to_str().unwrap(),
    ]);
    r.stdout
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("labels");
            v
        })
        .collect()
}

#[test]
fn several_inputs_directories_and_stdin() {
    // A damaged file among good ones: all are processed, the exit code says something failed.
    let r = run(&[
        "flows",
        "--format",
        "json",
        cap("broken-caplen.pcap").to_str().unwrap(),
        cap("udp-outcomes.pcap").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["files"].as_array().unwrap().len(), 2);
    assert!(doc["files"][0]["error"]
        .as_str()
        .unwrap()
        .contains("byte offset 486"));
    assert!(doc["files"][1]["error"].is_null());
    let per_file = |suffix: &str| {
        doc["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["file"].as_str().unwrap().ends_with(suffix))
            .count()
    };
    assert_eq!(
        (
            per_file("broken-caplen.pcap"),
            per_file("udp-outcomes.pcap")
        ),
        (1, 8)
    );
    assert!(r.stderr.contains("error: "), "{}", r.stderr);

    // A directory is walked recursively; non-capture files in it are skipped with a note.
    let r = run(&["flows", "--format", "json", cap("").to_str().unwrap()]);
    assert_eq!(r.code, 2, "the directory holds the broken files");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("tcp-outcomes.pcap.zst")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.ends_with("README.md")), "{files:?}");
    assert!(
        r.stderr.contains("skipped") && r.stderr.contains("README.md"),
        "{}",
        r.stderr
    );

    // stdin
    let mut child = bin()
        .args(["flows", "--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(cap("tcp-outcomes.pcap.gz")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The same flows as the file's (rows come as flows finish: compared in one order).
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| describe(&serde_json::from_str(l).unwrap()))
        .collect();
    let mut want = describe_all("tcp-outcomes.pcap");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["file"], "-");
}

#[test]
fn missing_input_and_bad_arguments_exit_2() {
    let r = run(&["flows", "/nonexistent/x.pcap"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/x.pcap"), "{}", r.stderr);
    let r = run(&["flows", "--format", "xml", "x"]);
    assert_eq!(r.code, 2);
    let r = run(&["flows"]);
    assert_eq!(r.code, 2);
}

#[test]
fn help_has_examples_and_exit_codes() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Examples:") && r.stdout.contains("Exit codes:"));
    let r = run(&["flows", "--help"]);
    assert_eq!(r.code, 0);
    for word in [
        "no-answer",
        "reset-after-hello",
        "midstream",
        "--format",
        "Examples:",
    ] {
        assert!(r.stdout.contains(word), "flows --help lacks {word}");
    }
}

#[test]
fn table_output_is_the_default() {
    let r = run(&["flows", cap("tcp-outcomes.pcap").to_str().unwrap()]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("proto") && lines[0].contains("outcome"));
    assert_eq!(lines.len(), 10);
    assert!(lines
        .iter()
        .any(|l| l.contains("10.99.2.2:8081") && l.contains("no-answer x3")));
    assert!(
        r.stderr.contains("237 packets") && r.stderr.contains("9 flows"),
        "{}",
        r.stderr
    );
}

/// The tshark references stored in tests/tshark/ with this suffix: (capture name, path).
fn tshark_refs(suffix: &str) -> Vec<(String, std::path::PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tshark");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(suffix)?;
            let name = name.strip_suffix('.')?.to_string();
            Some((name, path))
        })
        .collect()
}

/// tshark's conversation tables (stored by scripts/tshark-conv.sh in tests/tshark/) list the
/// same conversations with the same frame counts each way as our flows.
#[test]
fn flows_agree_with_tshark_conversations() {
    let mut checked = 0;
    for (name, path) in tshark_refs("conv") {
        let want: BTreeMap<String, (u64, u64)> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Vec<&str> = l.split_whitespace().collect();
                let (a, b) = (format!("{} {}", v[1], v[2]), format!("{} {}", v[3], v[4]));
                let (fa, fb): (u64, u64) = (v[5].parse().unwrap(), v[6].parse().unwrap());
                // canonical order: smaller endpoint first, with its frame count
                if a <= b {
                    (format!("{} {a} {b}", v[0]), (fa, fb))
                } else {
                    (format!("{} {b} {a}", v[0]), (fb, fa))
                }
            })
            .collect();
        let mut got: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for f in flows(&name) {
            let proto = f["proto"].as_str().unwrap();
            if proto != "tcp" && proto != "udp" {
                continue;
            }
            let a = format!("{} {}", f["src_ip"].as_str().unwrap(), f["src_port"]);
            let b = format!("{} {}", f["dst_ip"].as_str().unwrap(), f["dst_port"]);
            let (fa, fb) = (
                f["packets"]["from_client"].as_u64().unwrap(),
                f["packets"]["from_server"].as_u64().unwrap(),
            );
            let (k, v) = if a <= b {
                (format!("{proto} {a} {b}"), (fa, fb))
            } else {
                (format!("{proto} {b} {a}"), (fb, fa))
            };
            let e = got.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        assert_eq!(got, want, "{name}: allowscope vs tshark -z conv");
        checked += 1;
    }
    assert!(
        checked >= 11,
        "expected the stored tshark tables of every capture, found {checked}"
    );
}

/// A capture stopped while gzip was writing it: the flows decompressed so far, a warning, exit 0.
#[test]
fn cut_compressed_capture_is_a_warning() {
    let gz = std::fs::read(cap("tcp-outcomes.pcap.gz")).unwrap();
    let dir = std::env::temp_dir().join(format!("allowscope-cut-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("cut.pcap.gz");
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    let r = run(&["flows", "--format", "ndjson", p.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("compressed stream ends early"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.lines().count() >= 1);
}

/// A file name with a terminal escape sequence, found in a directory, is printed escaped.
#[test]
fn hostile_file_names_are_escaped() {
    let dir = std::env::temp_dir().join(format!("allowscope-esc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(cap("udp-outcomes.pcap"), dir.join("evil\x1b[2J.pcap")).unwrap();
    std::fs::write(dir.join("notes\x1b]0;x\x07.txt"), b"hello").unwrap();
    let r = run(&["flows", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains('\x1b') && !r.stdout.contains('\x1b'),
        "{:?}",
        r.stderr
    );
    assert!(r.stderr.contains("evil\\x1b[2J.pcap"), "{}", r.stderr);
    assert!(r.stderr.contains("notes\\x1b]0;x\\x07.txt"), "{}", r.stderr);
}

fn ndjson(args: &[&str]) -> Vec<Value> {
    let r = run(args);
    assert!(r.code == 0 || r.code == 2, "{args:?}: {}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("labels");
            v
        })
        .collect()
}

/// The SNIs (TLS over TCP, inside CONNECT tunnels, and QUIC), DNS query names and A/AAAA/CNAME
/// answers allowscope extracts equal what tshark extracts from the same capture (stored by
/// scripts/tshark-facts.sh in tests/tshark/*.facts).
#[test]
fn facts_agree_with_tshark() {
    let mut checked = 0;
    for (name, path) in tshark_refs("facts") {
        let want: std::collections::BTreeSet<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let p = cap(&name);
        let p = p.to_str().unwrap();
        let mut got = std::collections::BTreeSet::new();
        for f in ndjson(&["flows", "--format", "ndjson", "-q", p]) {
            for sni in [&f["sni"], &f["quic"]["sni"]] {
                if let Some(s) = sni.as_str() {
                    got.insert(format!("sni {}", s.to_lowercase()));
                }
            }
        }
        for l in ndjson(&["dns", "--format", "ndjson", "-q", p]) {
            if let Some(q) = l["qname"].as_str() {
                got.insert(format!("qname {q}"));
            }
            for a in l["answers"].as_array().unwrap() {
                let t = a["type"].as_str().unwrap().to_lowercase();
                if let (true, Some(v)) = (
                    matches!(t.as_str(), "a" | "aaaa" | "cname"),
                    a["value"].as_str(),
                ) {
                    got.insert(format!("{t} {}", v.to_lowercase()));
                }
            }
        }
        assert_eq!(got, want, "{name}: allowscope vs tshark");
        checked += 1;
    }
    assert!(
        checked >= 15,
        "expected the stored tshark facts of every capture, found {checked}"
    );
}

/// A compact description of a flow's application facts (stable across re-recordings: no
/// packet counts, no closing side, which vary with ACK folding and FIN order).
fn facts_line(f: &Value) -> String {
    let mut s = format!(
        "{} :{} > {}:{} {} name {} ({})",
        f["proto"].as_str().unwrap(),
        f["src_port"],
        f["dst_ip"].as_str().unwrap(),
        f["dst_port"],
        f["outcome"].as_str().unwrap(),
        f["name"].as_str().unwrap_or("-"),
        f["name_source"].as_str().unwrap_or("-"),
    );
    if let Some(t) = f["tls"].as_object() {
        let v: Vec<&str> = t["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        s += &format!(
            " tls {} v{}",
            t["client_hello"].as_str().unwrap(),
            v.join(",")
        );
        if let Some(a) = f["alpn"].as_array() {
            s += &format!(" alpn {}", a.len());
        }
        if let Some(v) = t["server_version"].as_str() {
            s += &format!(" server {v}");
        }
        if let Some(a) = t["alert"].as_object() {
            s += &format!(
                " alert {} {} {}",
                a["side"].as_str().unwrap(),
                a["level"].as_str().unwrap(),
                a["name"].as_str().unwrap()
            );
        }
        if let Some(c) = t["cert_subject"].as_str() {
            s += &format!(" cert [{c}] by [{}]", t["cert_issuer"].as_str().unwrap());
        }
        if t["in_tunnel"] == true {
            s += " in-tunnel";
        }
        if t["handshake_complete"] == true {
            s += " complete";
        }
    }
    if let Some(c) = f["connect_target"].as_str() {
        s += &format!(" connect {c} {}", f["connect"]["statuses"]);
    }
    if let Some(h) = f["http"].as_object() {
        s += &format!(
            " http {} host {} status {}",
            h["method"].as_str().unwrap(),
            h["host"].as_str().unwrap_or("-"),
            h["status"]
        );
    }
    if let Some(q) = f["quic"].as_object() {
        s += &format!(
            " quic v{} {} alpn {} truncated {}",
            q["version"],
            q["sni"].as_str().unwrap_or("-"),
            q["alpn"].as_array().unwrap().len(),
            q["truncated"]
        );
    }
    s
}

fn facts_of(name: &str) -> Vec<String> {
    flows(name).iter().map(facts_line).collect()
}

#[test]
fn tls_facts_exact() {
    assert_lines(
        &facts_of("tls-facts.pcap"),
        &[
            "udp :52053 > 10.99.2.2:53 established name - (-)",
            "tcp :52001 > 10.99.2.11:443 established name login.microsoftonline.com (sni) tls complete v1.3,1.2,1.1,1.0 alpn 2 server 1.3 complete",
            "udp :52054 > 10.99.2.2:53 established name - (-)",
            // TLS 1.2: the certificate is in clear (interception would show another issuer).
            "tcp :52002 > 10.99.2.12:443 established name ml.azure.com (sni) tls complete v1.2 server 1.2 cert [CN=ml.azure.com,O=allowscope test,C=US] by [CN=allowscope Test Root CA,O=allowscope test] complete",
            "tcp :52003 > 10.99.2.13:443 tls-alert name tls13only.allowscope.test (sni) tls complete v1.2 alert server fatal protocol_version",
            "tcp :52004 > 10.99.2.12:443 tls-alert name ml.azure.com (sni) tls complete v1.2 server 1.2 alert client fatal unknown_ca cert [CN=ml.azure.com,O=allowscope test,C=US] by [CN=allowscope Test Root CA,O=allowscope test]",
            "tcp :52005 > 10.99.2.11:443 tls-alert name login.microsoftonline.com (sni) tls complete v1.3,1.2,1.1,1.0 alpn 2 server 1.3 alert client fatal unknown_ca",
            // haproxy's SNI filter: passes ok.allowscope.test, closes after blocked.allowscope.test's hello.
            "tcp :52006 > 10.99.2.14:443 established name ok.allowscope.test (sni) tls complete v1.3,1.2,1.1,1.0 server 1.3 complete",
            "tcp :52007 > 10.99.2.14:443 reset-after-hello name blocked.allowscope.test (sni) tls complete v1.3,1.2,1.1,1.0 alert client fatal decode_error",
            // a 1839-byte ClientHello over two segments
            "tcp :52008 > 10.99.2.2:443 established name big-hello.instances.allowscope.test (sni) tls complete v1.3,1.2,1.1,1.0 alpn 47 server 1.3 complete",
        ],
    );
}

#[test]
fn proxy_and_http_facts_exact() {
    assert_lines(
        &facts_of("proxy.pcap"),
        &[
            // the tunnelled name, not the proxy's
            "tcp :53001 > 10.99.1.1:3128 established name ok.allowscope.test (sni) tls complete v1.3,1.2,1.1,1.0 server 1.3 in-tunnel complete connect ok.allowscope.test:443 [200]",
            "tcp :53002 > 10.99.1.1:3128 proxy-denied name ok.allowscope.test (connect) connect ok.allowscope.test:8787 [403]",
            // 407, then credentials on the same connection, then 200 and TLS inside
            "tcp :53003 > 10.99.1.1:3129 established name ml.azure.com (sni) tls complete v1.3,1.2,1.1,1.0 alpn 2 server 1.3 in-tunnel complete connect ml.azure.com:443 [407,200]",
            "tcp :53005 > 10.99.1.1:3128 established name ok.allowscope.test (http-host) http GET host ok.allowscope.test:8080 status 200",
            "udp :53053 > 10.99.2.2:53 established name - (-)",
            "tcp :53006 > 10.99.2.70:80 http-denied name denied.allowscope.test (http-host) http GET host denied.allowscope.test status 470",
            "udp :53054 > 10.99.2.2:53 established name - (-)",
            "tcp :53007 > 10.99.2.2:80 established name ws.allowscope.test (http-host) http GET host ws.allowscope.test status 101",
        ],
    );
    let f = flows("proxy.pcap");
    let denied = f.iter().find(|x| x["src_port"] == 53002).unwrap();
    assert_eq!(denied["connect"]["x_squid_error"], "ERR_ACCESS_DENIED 0");
    assert_eq!(denied["http_status"], 403);
    let ws = f.iter().find(|x| x["src_port"] == 53007).unwrap();
    assert_eq!(
        ws["http"]["upgrade"].as_str().unwrap().to_lowercase(),
        "websocket"
    );
    let deny = f.iter().find(|x| x["src_port"] == 53006).unwrap();
    assert_eq!(deny["http"]["azure_firewall_deny"], true);
}

/// CONNECT requests whose target is not host:port, sent to squid (proxy-target.pcap): each
/// is the proxy's refusal (its status and X-Squid-Error), named by nothing (the Host header
/// repeats the target, and the proxy's address names nothing), so no catalog host is called
/// blocked; the audit lists them as such among the unattributed flows.
#[test]
fn rejected_connect_targets_exact() {
    assert_lines(
        &facts_of("proxy-target.pcap"),
        &[
            "tcp :55001 > 10.99.1.1:3128 proxy-denied name - (-) http CONNECT host user@ml.azure.com:443 status 500",
            "tcp :55002 > 10.99.1.1:3128 proxy-denied name - (-) http CONNECT host ml.azure.com status 503",
            "tcp :55003 > 10.99.1.1:3128 proxy-denied name - (-) http CONNECT host ml.azure.com:99999 status 400",
        ],
    );
    let f = flows("proxy-target.pcap");
    let squid: Vec<&str> = f
        .iter()
        .map(|x| x["http"]["x_squid_error"].as_str().unwrap())
        .collect();
    assert_eq!(
        squid,
        [
            "ERR_CANNOT_FORWARD 0",
            "ERR_CONNECT_FAIL 113",
            "ERR_INVALID_URL 0"
        ]
    );
    let path = cap("proxy-target.pcap");
    let p = path.to_str().unwrap();
    let text = run(&["audit", p]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains(
        "Unattributed flows (no name to judge them by): 3 CONNECT to a target that is not host:port"
    ));
    let rows = run(&["audit", "--format", "ndjson", p]);
    let evidence: Vec<(String, String, String)> = rows
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"kind\":\"flow\""))
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("verdict"), s("mechanism"), s("evidence"))
        })
        .collect();
    let want = |target: &str, status: u16| {
        (
            "unattributed".to_string(),
            "proxy-denied".to_string(),
            format!("proxy 10.99.1.1:3128 answered a CONNECT to a target that is not host:port ({target}) with {status}"),
        )
    };
    assert_eq!(
        evidence,
        [
            want("user@ml.azure.com:443", 500),
            want("ml.azure.com", 503),
            want("ml.azure.com:99999", 400)
        ]
    );
}

#[test]
fn quic_facts_exact() {
    assert_lines(
        &facts_of("quic.pcap"),
        &[
            "udp :54053 > 10.99.2.2:53 established name - (-)",
            "udp :54001 > 10.99.2.2:443 established name quic.allowscope.test (quic) quic v1 quic.allowscope.test alpn 1 truncated false",
            // a 1797-byte ClientHello spread over two Initial packets
            "udp :54002 > 10.99.2.2:443 established name quic.allowscope.test (quic) quic v1 quic.allowscope.test alpn 41 truncated false",
            "udp :54003 > 10.99.2.2:8443 no-answer name quic.allowscope.test (quic) quic v1 quic.allowscope.test alpn 1 truncated false",
        ],
    );
    let f = flows("quic.pcap");
    assert_eq!(f[1]["alpn"], serde_json::json!(["h3"]));
    assert_eq!(f[3]["attempts"], 4);
}

/// Crafted QUIC of versions before RFC 9000 (captures/make-quic-drafts.py): draft-29 and
/// mvfst Initials decrypted, a Version Negotiation, an unknown version, a cut Initial.
#[test]
fn quic_drafts_exact() {
    let got: Vec<String> = flows("quic-drafts.pcap")
        .iter()
        .map(|f| {
            let q = &f["quic"];
            format!(
                ":{} {} v{} decrypted {} sni {} truncated {} vn {} packets {}",
                f["src_port"],
                q["version_name"].as_str().unwrap(),
                q["version"],
                q["decrypted"],
                q["sni"].as_str().unwrap_or("-"),
                q["truncated"],
                q["server_versions"],
                q["packets"],
            )
        })
        .collect();
    assert_lines(
        &got,
        &[
            r#":55001 draft-29 v4278190109 decrypted true sni draft29.allowscope.test truncated false vn null packets {"handshake":1,"retry":0,"short_header":2,"zero_rtt":0}"#,
            r#":55002 0xfaceb002 v4207849474 decrypted true sni mvfst.allowscope.test truncated false vn null packets {"handshake":0,"retry":0,"short_header":0,"zero_rtt":0}"#,
            r#":55003 0x1a2a3a4a v438975050 decrypted false sni - truncated false vn ["v1","draft-29","draft-27"] packets {"handshake":0,"retry":0,"short_header":0,"zero_rtt":0}"#,
            r#":55004 0xabcd0004 v2882338820 decrypted false sni - truncated false vn null packets {"handshake":0,"retry":0,"short_header":0,"zero_rtt":0}"#,
            r#":55005 draft-29 v4278190109 decrypted false sni - truncated true vn null packets {"handshake":0,"retry":0,"short_header":0,"zero_rtt":0}"#,
        ],
    );
    let f = flows("quic-drafts.pcap");
    assert_eq!(f[0]["name"], "draft29.allowscope.test");
    assert_eq!(f[0]["name_source"], "quic");
    assert_eq!(f[1]["alpn"], serde_json::json!(["h3-fb-05"]));
    assert_eq!(f[4]["truncated_packets"], 1);
    // The v1 flows of the recorded capture say so too.
    for q in flows("quic.pcap")
        .iter()
        .map(|f| &f["quic"])
        .filter(|q| q.is_object())
    {
        assert_eq!(
            (q["version_name"].as_str(), &q["decrypted"]),
            (Some("v1"), &Value::Bool(true))
        );
    }
}

fn lookup_line(l: &Value) -> String {
    let mut s = format!(
        "{} {} {} {}",
        l["transport"].as_str().unwrap(),
        l["qname"].as_str().unwrap_or("-"),
        l["qtype"].as_str().unwrap_or("-"),
        l["rcode"].as_str().unwrap_or("no-answer"),
    );
    let chain: Vec<&str> = l["cnames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    if chain.len() > 1 {
        s += &format!(" chain {}", chain.join(" > "));
    }
    let addrs: Vec<&str> = l["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    if !addrs.is_empty() {
        s += &format!(" addr {}", addrs.join(","));
    }
    for flag in ["nodata", "sinkhole", "privatelink"] {
        if l[flag] == true {
            s += &format!(" {flag}");
        }
    }
    s
}

#[test]
fn dns_lookups_exact() {
    let got: Vec<String> = ndjson(&[
        "dns",
        "--format",
        "ndjson",
        cap("dns-facts.pcap").to_str().unwrap(),
    ])
    .iter()
    .map(lookup_line)
    .collect();
    assert_lines(
        &got,
        &[
            "udp ok.allowscope.test A NOERROR addr 10.99.2.2",
            "udp ok.allowscope.test AAAA NOERROR addr fd99:2::2",
            "udp www.allowscope.test A NOERROR chain www.allowscope.test > edge.allowscope.test > edge.cdn.allowscope.test addr 198.18.0.80",
            "udp ws1.workspace.eastus.api.azureml.ms A NOERROR chain ws1.workspace.eastus.api.azureml.ms > ws1.workspace.eastus.privatelink.api.azureml.ms > eastus.api.azureml.ms addr 198.18.10.4 privatelink",
            "udp ws1.workspace.eastus.api.azureml.ms AAAA NOERROR chain ws1.workspace.eastus.api.azureml.ms > ws1.workspace.eastus.privatelink.api.azureml.ms > eastus.api.azureml.ms nodata privatelink",
            "udp nosuch.allowscope.test A NXDOMAIN",
            "udp www.example.com A REFUSED",
            "udp ok.allowscope.test A SERVFAIL",
            "udp v4only.allowscope.test AAAA NOERROR nodata",
            "udp sinkhole.allowscope.test A NOERROR addr 0.0.0.0 sinkhole",
            "udp sinkhole.allowscope.test AAAA NOERROR addr :: sinkhole",
            "udp svc.allowscope.test HTTPS NOERROR",
            "udp ok.allowscope.test HTTPS NOERROR nodata",
            "udp svc.allowscope.test CAA NOERROR",
            "tcp ok.allowscope.test A NOERROR addr 10.99.2.2",
            "tcp www.allowscope.test A NOERROR chain www.allowscope.test > edge.allowscope.test > edge.cdn.allowscope.test addr 198.18.0.80",
            "tcp ok.allowscope.test A NOERROR addr 10.99.2.2",
            "tcp ok.allowscope.test AAAA NOERROR addr fd99:2::2",
            "udp www.allowscope.test A NOERROR chain www.allowscope.test > edge.allowscope.test > edge.cdn.allowscope.test addr 198.18.0.80",
            "udp ok.allowscope.test A no-answer",
            "udp ok.allowscope.test A no-answer",
        ],
    );
}

/// Names from DNS: a flow to an address the client resolved before the flow began carries the
/// name it asked for (and the chain), when no stronger source exists.
#[test]
fn dns_names_attach_to_later_flows() {
    // In tcp-outcomes.pcap nothing is resolved: no DNS names. In udp-outcomes.pcap the echo
    // flows to 10.99.2.2 start after ok.allowscope.test was resolved to it.
    let f = flows("udp-outcomes.pcap");
    let echo = f.iter().find(|x| x["src_port"] == 50007).unwrap();
    assert_eq!(echo["name"], "ok.allowscope.test");
    assert_eq!(echo["name_source"], "dns");
    assert_eq!(echo["dns_chain"], serde_json::json!(["ok.allowscope.test"]));
    let first = f.iter().find(|x| x["src_port"] == 50531).unwrap();
    assert!(
        first["name"].is_null(),
        "the first lookup's own flow began before any answer"
    );
    // The snap-length-cut hellos: truncated, never "no SNI" presented as complete.
    let cut = flows("tcp-outcomes.snap96.pcap");
    let tls = cut.iter().find(|x| x["dst_port"] == 443).unwrap();
    assert_eq!(tls["tls"]["client_hello"], "truncated");
    assert_eq!(tls["tls"]["truncated_have"], 30);
    assert!(tls["tls"]["truncated_need"].as_u64().unwrap() > 300);
}

/// Output that cannot be written is an error (exit 2) for `ws` as for every command; a file
/// name is escaped once in an error (the catalog's error escapes its own text).
#[test]
fn write_errors_and_escaped_names() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = full {
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_allowscope"))
            .args(["ws", cap("ws-client.pcap").to_str().unwrap()])
            .stdout(full)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(st.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&st.stderr).contains("writing output"));
    } else {
        assert!(std::env::var_os("CI").is_none(), "/dev/full is missing");
    }
    let r = run(&[
        "audit",
        "--catalog",
        "x\\y.toml",
        cap("vlan.pcap").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("x\\\\y.toml:") && !r.stderr.contains("x\\\\\\\\y"),
        "{}",
        r.stderr
    );
}

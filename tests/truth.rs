//! Verdicts on the shapes real networks bring (issue 15): dual-stack clients, injected
//! resets, IP literals, QUIC to catalog hosts, public privatelink chains, a FIN never
//! acknowledged, and every capture cut to 96 bytes a packet. Each capture here was recorded by
//! `captures/record.sh truth` (see captures/README.md); the tests pin every flow's name, where
//! the name came from, outcome, verdict, mechanism and confidence.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{cap, run};

/// `allowscope audit -q --fail-on never --format FORMAT path`'s output; unless `whole`, an
/// input that ends in a read error (exit code 2, the broken-* captures) is accepted with what
/// came before it.
fn audit_out(path: &Path, format: &str, whole: bool) -> String {
    let (code, out, err) = run(&[
        "audit",
        "-q",
        "--fail-on",
        "never",
        "--format",
        format,
        path.to_str().unwrap(),
    ]);
    assert!(
        code == 0 || (!whole && code == 2),
        "{}: {err}",
        path.display()
    );
    out
}

/// The audit's per-flow NDJSON of `path`.
fn flows(path: &Path) -> Vec<Value> {
    flows_of(path, true)
}

/// [`flows`], accepting a read error unless `whole` (see [`audit_out`]).
fn flows_of(path: &Path, whole: bool) -> Vec<Value> {
    common::flow_lines(&audit_out(path, "ndjson", whole))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The audit's JSON document of `path`.
fn audit(path: &Path) -> Value {
    audit_of(path, true)
}

/// [`audit`], accepting a read error unless `whole` (see [`audit_out`]).
fn audit_of(path: &Path, whole: bool) -> Value {
    serde_json::from_str(&audit_out(path, "json", whole)).unwrap()
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "proto dst:port name name_source outcome verdict mechanism confidence" for every flow
/// that is not DNS.
fn lines(file: &str) -> Vec<String> {
    flows(&cap(file))
        .iter()
        .filter(|f| f["dst_port"] != 53)
        .map(|f| {
            format!(
                "{} {}:{} {} {} {} {} {} {}",
                s(&f["proto"]),
                s(&f["dst_ip"]),
                s(&f["dst_port"]),
                s(&f["name"]),
                s(&f["name_source"]),
                s(&f["outcome"]),
                s(&f["verdict"]),
                s(&f["mechanism"]),
                s(&f["confidence"]),
            )
        })
        .collect()
}

fn dns_failures(file: &str) -> Vec<String> {
    audit(&cap(file))["dns_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", s(&f["name"]), s(&f["mechanism"])))
        .collect()
}

#[test]
fn dual_stack_answers_name_the_other_family() {
    // Asked over IPv4, connected over IPv6: the dropped SYN and the hello without SNI are named
    // from the AAAA answer; nothing resolved is a local block.
    assert_eq!(
        lines("dualstack-v4dns.pcap"),
        [
            "tcp fd99:18:20::12:443 ml.azure.com sni established required-reached - -",
            "tcp fd99:18:20::11:443 management.azure.com dns no-answer required-blocked drop medium",
            "tcp fd99:18:20::13:443 eastus.api.azureml.ms dns established required-reached - -",
        ]
    );
    assert_eq!(dns_failures("dualstack-v4dns.pcap"), Vec::<String>::new());
    // Asked over IPv6, connected over IPv4.
    assert_eq!(
        lines("dualstack-v6dns.pcap"),
        [
            "tcp 198.18.20.10:443 login.microsoftonline.com sni established required-reached - -",
            "tcp 198.18.20.21:443 mcr.microsoft.com dns no-answer required-blocked drop medium",
            "tcp 198.18.20.14:443 mystorage.blob.core.windows.net dns established required-reached - -",
        ]
    );
    assert_eq!(dns_failures("dualstack-v6dns.pcap"), Vec::<String>::new());
}

/// dualstack-v4dns.pcap merged in time with vlan.pcap (two more IPv4 clients): the capture no
/// longer shows one host as the only client, so only the MAC address ties the client's IPv4
/// and IPv6 addresses. With the link layer stripped (raw IP), nothing ties them: the dropped
/// flow is named from an answer "any client" received, one step less sure.
#[test]
fn dual_stack_hosts_are_tied_by_mac_address() {
    let dir = std::env::temp_dir().join(format!("allowscope-mac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut merged: Vec<(u32, OwnedFrame)> = frames(&cap("dualstack-v4dns.pcap")).unwrap();
    merged.extend(
        frames(&cap("vlan.pcap"))
            .unwrap()
            .into_iter()
            .map(|(_, f)| (1, f)),
    );
    merged.sort_by_key(|(_, f)| f.0);
    let eth = dir.join("merged.pcapng");
    write_pcapng(&eth, &merged, 65535);
    // Raw IP: the Ethernet header and VLAN tags dropped (ARP and the like too).
    let strip = |d: &[u8]| -> Option<usize> {
        let mut at = 12;
        loop {
            match d.get(at..at + 2)? {
                [0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00] => at += 4,
                [0x08, 0x00] | [0x86, 0xdd] => return Some(at + 2),
                _ => return None,
            }
        }
    };
    let mut raw: Vec<(u32, OwnedFrame)> = merged
        .iter()
        .filter_map(|(i, (ts, _, d, len))| {
            let at = strip(d)?;
            Some((*i, (*ts, 101, d[at..].to_vec(), len - at as u32)))
        })
        .collect();
    raw.sort_by_key(|(_, f)| f.0);
    let raw_path = dir.join("merged-raw.pcapng");
    write_pcapng(&raw_path, &raw, 65535);
    let dropped = |p: &Path| {
        flows(p)
            .into_iter()
            .find(|f| f["dst_ip"] == "fd99:18:20::11")
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    s(&f["name"]),
                    s(&f["name_source"]),
                    s(&f["verdict"]),
                    s(&f["confidence"])
                )
            })
            .unwrap()
    };
    assert_eq!(
        dropped(&eth),
        "management.azure.com dns required-blocked medium"
    );
    assert_eq!(
        dropped(&raw_path),
        "management.azure.com dns-any-client required-blocked low"
    );
    // A block named by a guess does not fail a run below --fail-on any; tied by the MAC, it
    // does.
    let code = |p: &Path, fail_on: &str| {
        run(&[
            "audit",
            "-q",
            "--fail-on",
            fail_on,
            "--format",
            "json",
            p.to_str().unwrap(),
        ])
        .0
    };
    assert_eq!(
        (
            code(&eth, "required-blocked"),
            code(&raw_path, "required-blocked")
        ),
        (1, 0)
    );
    assert_eq!(code(&raw_path, "any"), 1);
    let doc = audit(&raw_path);
    let guessed: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name_guessed"] == true)
        .map(|f| format!("{} {}", s(&f["verdict"]), s(&f["name"])))
        .collect();
    assert_eq!(
        guessed,
        [
            "required-blocked management.azure.com",
            "required-reached eastus.api.azureml.ms"
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn forged_resets_are_named_on_both_sides() {
    for file in ["rst-injected-client.pcap", "rst-injected-firewall.pcapng"] {
        assert_eq!(
            lines(file),
            [
                "tcp 198.18.30.10:443 ml.azure.com sni established required-reached - -",
                "tcp 198.18.30.10:443 mystorage.blob.core.windows.net sni reset-after-hello required-blocked rst-injected high",
            ],
            "{file}"
        );
    }
    let evidence = |file: &str| {
        let doc = audit(&cap(file));
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["mechanism"] == "rst-injected")
            .map(|f| s(&f["evidence"]))
            .unwrap()
    };
    assert_eq!(
        evidence("rst-injected-client.pcap"),
        "handshake to 198.18.30.10:443 completed, ClientHello sent, then forged on the path: \
         a RST to the client in the server's name with TTL 40 where the server's own packets had 63"
    );
    // Firewall side: the RST toward the server in the client's name is forged too.
    let fw = evidence("rst-injected-firewall.pcapng");
    assert!(
        fw.contains("a RST to the server in the client's name with TTL 40"),
        "{fw}"
    );
}

#[test]
fn ip_literals_are_reported_by_address_and_ping_is_no_finding() {
    assert_eq!(
        lines("ip-literal.pcap"),
        [
            "tcp 198.18.40.10:443 198.18.40.10 address established unexpected-reached - -",
            "tcp 198.18.40.11:80 198.18.40.11 address established unexpected-reached - -",
            "tcp 198.18.40.12:443 198.18.40.12 address no-answer unexpected-blocked drop medium",
            "icmp 198.18.40.10:26582 - - established unattributed - -",
        ]
    );
    let doc = audit(&cap("ip-literal.pcap"));
    assert_eq!(doc["counts"]["icmp-echo"], 1);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["proto"] != "icmp"));
    let (_, text, _) = run(&["audit", "-q", cap("ip-literal.pcap").to_str().unwrap()]);
    assert!(
        text.contains("  unexpected-reached tcp 198.18.40.10:443, 1 flow\n"),
        "{text}"
    );
    assert!(text.contains(", 1 ICMP echo;"), "{text}");
}

#[test]
fn quic_to_a_tcp_entry_is_another_port() {
    assert_eq!(
        lines("quic-catalog.pcap"),
        [
            "udp 198.18.50.12:443 ml.azure.com quic established other-port-reached - -",
            "udp 198.18.50.11:443 management.azure.com quic no-answer other-port-blocked udp-drop medium",
            "tcp 198.18.50.11:443 management.azure.com sni established required-reached - -",
        ]
    );
    // Clients fall back to TCP: the QUIC block does not fail the run by default.
    let (code, text, _) = run(&["audit", "-q", cap("quic-catalog.pcap").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        text.contains("this is QUIC, and clients fall back to TCP 443"),
        "{text}"
    );
}

#[test]
fn a_fin_retransmitted_after_both_closed_stays_in_its_flow() {
    for file in ["fin-unacked.pcap", "fin-unacked-firewall.pcapng"] {
        assert_eq!(
            lines(file),
            ["tcp 198.18.70.12:443 ml.azure.com sni established required-reached - -"],
            "{file}"
        );
    }
}

#[test]
fn public_privatelink_chains_name_their_flows() {
    assert_eq!(
        lines("privatelink-public.pcap"),
        [
            "tcp 198.18.60.10:443 login.microsoftonline.com sni established required-reached - -",
            "tcp 198.18.60.20:443 ws1.workspace.eastus.api.azureml.ms sni established required-reached - -",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Every capture cut to 96 bytes a packet.

/// One frame read from a capture: time, link type, bytes, length on the wire.
type OwnedFrame = (i64, u32, Vec<u8>, u32);

/// Every frame of `src` (after its interface), in file order.
fn frames(src: &Path) -> Option<Vec<(u32, OwnedFrame)>> {
    let mut reader = allowscope::capture::CaptureReader::open(src).ok()?;
    let mut v = Vec::new();
    while let Ok(Some(f)) = reader.next_frame() {
        v.push((
            f.interface,
            (f.ts_ns, f.linktype, f.data.to_vec(), f.orig_len),
        ));
    }
    Some(v)
}

/// Writes `frames` (interface key, frame) as a pcapng file: one interface block per key and
/// link type, nanosecond timestamps, `snap` as each interface's snap length.
fn write_pcapng(path: &Path, frames: &[(u32, OwnedFrame)], snap: usize) {
    let mut out: Vec<u8> = Vec::new();
    let block = |out: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    };
    // Section header: byte-order magic, version 1.0, unknown section length.
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut ifaces: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for (iface, (ts, linktype, data, orig_len)) in frames {
        let key = (*iface, *linktype);
        let id = match ifaces.get(&key) {
            Some(&id) => id,
            None => {
                let id = ifaces.len() as u32;
                ifaces.insert(key, id);
                let mut idb = Vec::new();
                idb.extend_from_slice(&(*linktype as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&(snap as u32).to_le_bytes());
                // if_tsresol = 9 (nanoseconds), then the end of options.
                idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
                block(&mut out, 1, &idb);
                id
            }
        };
        let data = &data[..data.len().min(snap)];
        let ts = *ts as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&id.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig_len.to_le_bytes());
        epb.extend_from_slice(data);
        block(&mut out, 6, &epb);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

/// Writes the frames of `src` cut to `snap` bytes as a pcapng file and returns its path.
fn cut(src: &Path, snap: usize, dir: &Path) -> Option<PathBuf> {
    let frames = frames(src)?;
    let name = src.file_name()?.to_string_lossy().replace('.', "-");
    let path = dir.join(format!("{name}.snap{snap}.pcapng"));
    write_pcapng(&path, &frames, snap);
    Some(path)
}

/// Every capture of captures/ that can be read (the broken-* ones that cannot are left out).
fn all_captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            [".pcap", ".pcapng", ".pcap.gz", ".pcap.zst"]
                .iter()
                .any(|x| n.ends_with(x))
        })
        .filter(|p| allowscope::capture::CaptureReader::open(p).is_ok())
        .collect();
    v.sort();
    v
}

type FlowKey = (String, String, String, String, String, String);

fn key(f: &Value) -> FlowKey {
    (
        s(&f["proto"]),
        s(&f["src_ip"]),
        s(&f["src_port"]),
        s(&f["dst_ip"]),
        s(&f["dst_port"]),
        s(&f["first_seen"]),
    )
}

/// DNS findings that say a name was never reached.
const NEVER_REACHED: [&str; 3] = ["dns-no-answer", "local-block", "dns-nodata"];

#[test]
fn nothing_reached_is_called_blocked_in_any_view() {
    let dir = std::env::temp_dir().join(format!("allowscope-snap96-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for full_path in all_captures() {
        let file = full_path.display().to_string();
        let snap = cut(&full_path, 96, &dir).expect("cut");
        let full = flows_of(&full_path, false);
        let cut_flows = flows(&snap);
        let by_key: BTreeMap<FlowKey, &Value> = cut_flows.iter().map(|f| (key(f), f)).collect();
        // Names (not addresses) that some flow reached, in the full capture.
        let mut reached_names = BTreeSet::new();
        for f in &full {
            let established = f["outcome"] == "established";
            let verdict = s(&f["verdict"]);
            assert!(
                !(established && verdict.ends_with("-blocked")),
                "{file}: a reached flow is called {verdict}: {f}"
            );
            if established {
                if f["name_source"] != "address" && !f["name"].is_null() {
                    reached_names.insert(s(&f["name"]));
                }
                if let Some(c) = by_key.get(&key(f)) {
                    let v = s(&c["verdict"]);
                    assert!(
                        !v.ends_with("-blocked"),
                        "{file} cut to 96 bytes: a reached flow is called {v}: {c}"
                    );
                }
            }
            // A name the cut view gives is the full view's name (never a wrong one).
            if let Some(c) = by_key.get(&key(f)) {
                let src = s(&c["name_source"]);
                if src != "-" && src != "address" {
                    assert_eq!(
                        c["name"], f["name"],
                        "{file} cut to 96 bytes names a flow otherwise: {c}"
                    );
                }
            }
        }
        for (view, path) in [("full", &full_path), ("cut to 96 bytes", &snap)] {
            let doc = audit_of(path, false);
            for d in doc["dns_failures"].as_array().unwrap() {
                let name = s(&d["name"]);
                let mech = s(&d["mechanism"]);
                assert!(
                    !(reached_names.contains(&name) && NEVER_REACHED.contains(&mech.as_str())),
                    "{file} ({view}): {name} was reached, yet {mech}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} captures checked");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn snap96_names_what_its_surviving_answers_allow() {
    // In audit-client.pcap cut to 96 bytes the ClientHellos are cut (no SNI), but the DNS
    // answers that kept their address still name the flows that followed them.
    let dir = std::env::temp_dir().join(format!("allowscope-snap96n-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let snap = cut(&cap("audit-client.pcap"), 96, &dir).unwrap();
    let named: BTreeSet<String> = flows(&snap)
        .iter()
        .filter(|f| f["name_source"] == "dns")
        .map(|f| format!("{}:{}", s(&f["name"]), s(&f["dst_port"])))
        .collect();
    for want in [
        "management.azure.com:443",
        "ml.azure.com:443",
        "mcr.microsoft.com:443",
        "myacr.azurecr.io:443",
    ] {
        assert!(named.contains(want), "{want} not named: {named:?}");
    }
    // Its DNS responses are answers (truncated), never "no answer".
    let (_, dns, _) = run(&["dns", snap.to_str().unwrap()]);
    assert!(
        dns.contains("ml.azure.com A  NOERROR  198.18.1.12  [truncated]"),
        "{dns}"
    );
    assert!(!dns.contains("no answer"), "{dns}");
    // proxy.pcap cut to 96 bytes: the CONNECT lines and Host headers are cut, the answers'
    // status lines are not: the proxy's 403 and Azure Firewall's 470 are still refusals, and
    // the 407 that a 200 followed on the same connection is not called one.
    let proxy = cut(&cap("proxy.pcap"), 96, &dir).unwrap();
    let outcomes: Vec<String> = flows(&proxy)
        .iter()
        .filter(|f| f["proto"] == "tcp")
        .map(|f| {
            format!(
                "{} {} {}",
                s(&f["src_port"]),
                s(&f["outcome"]),
                s(&f["mechanism"])
            )
        })
        .collect();
    // Their cut CONNECTs are about their targets: the proxy's address names none of them.
    for f in flows(&proxy).iter().filter(|f| f["dst_port"] == 3128) {
        assert_ne!(f["name_source"], "address", "{f}");
    }
    for want in [
        "53002 proxy-denied proxy-denied",
        "53003 established -",
        "53006 http-denied http-470",
    ] {
        assert!(outcomes.iter().any(|o| o == want), "{want}: {outcomes:?}");
    }
    // And the audit counts them.
    let (_, text, _) = run(&["audit", "-q", "--fail-on", "never", snap.to_str().unwrap()]);
    assert!(
        text.contains("2 DNS failures (17 responses cut by the capture, 0 malformed)"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

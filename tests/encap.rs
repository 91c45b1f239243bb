//! NFLOG and encapsulated captures (captures/README.md, "Encapsulations"): each gives the
//! flows, names and verdicts of the same traffic captured plain, keeps its outer path in
//! `encap`, and NFLOG flows name the rule that logged them.

mod common;

use common::{cap, run};
use serde_json::Value;

/// `audit --format ndjson` of one capture: every flow with its verdict.
fn audited(name: &str) -> Vec<Value> {
    let (code, out, err) = run(&["audit", "--format", "ndjson", cap(name).to_str().unwrap()]);
    assert!(code == 0 || code == 1, "{name}: exit {code}: {err}");
    common::flow_lines(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A flow without what depends on the outer layers or on the capture point: the encap list,
/// frame sizes, the file, and times.
fn inner_view(f: &Value) -> Value {
    let mut f = f.clone();
    let o = f.as_object_mut().unwrap();
    for k in [
        "encap",
        "bytes",
        "file",
        "first_seen",
        "last_seen",
        "duration_s",
    ] {
        o.remove(k);
    }
    f
}

fn encap_types(f: &Value) -> Vec<String> {
    f["encap"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["type"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// (capture, plain capture of the same traffic, encap types every flow must show)
const SAME_AS_PLAIN: &[(&str, &str, &[&str])] = &[
    ("gre.pcap", "vxlan-plain.pcap", &["gre"]),
    ("gretap6.pcap", "vxlan-plain.pcap", &["gre"]),
    ("erspan2.pcap", "vxlan-plain.pcap", &["erspan-2"]),
    ("erspan3.pcap", "vxlan-plain.pcap", &["erspan-3"]),
    ("geneve.pcap", "vxlan-plain.pcap", &["geneve"]),
    ("gtpu.pcap", "vxlan-plain.pcap", &["gtp-u"]),
    ("ipip.pcap", "vxlan-plain.pcap", &["ipip"]),
    ("mpls.pcap", "vxlan-plain.pcap", &["mpls", "mpls"]),
    ("mpls-pw.pcap", "vxlan-plain.pcap", &["mpls"]),
    ("pppoe.pcap", "vxlan-plain.pcap", &["pppoe"]),
    ("teredo.pcap", "ipv6.pcap", &["teredo"]),
    ("sit.pcap", "ipv6.pcap", &["ipv6-in-ip"]),
    ("wifi.pcap", "vxlan-plain.pcap", &[]),
    ("radiotap.pcap", "vxlan-plain.pcap", &[]),
    ("chdlc.pcap", "vxlan-plain.pcap", &[]),
];

/// 802.11 captures say what they could not read: the beacon carries no IP (stderr summary
/// only), the protected frames are counted as undecodable in the text report.
#[test]
fn wireless_frames_not_read_are_said() {
    for f in ["wifi.pcap", "radiotap.pcap"] {
        let (code, out, err) = run(&["audit", cap(f).to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            out.contains("4 of 34 frames not decoded: 1 not IP, 3 malformed (802.11 frame protected (encrypted))"),
            "{out}"
        );
    }
}

#[test]
fn each_encapsulation_gives_the_flows_names_and_verdicts_of_plain_traffic() {
    for &(file, plain, types) in SAME_AS_PLAIN {
        let got = audited(file);
        let want = audited(plain);
        assert_eq!(got.len(), want.len(), "{file}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(inner_view(g), inner_view(w), "{file} vs {plain}");
            assert_eq!(encap_types(g), types, "{file}: {g}");
            assert_eq!(
                w["encap"],
                serde_json::json!([]),
                "{plain} has no encapsulation"
            );
        }
    }
}

/// Recorded with a kernel VXLAN tunnel: the underlay capture and the capture on the tunnel
/// interface, taken at the same time, give the same flows, names and verdicts.
#[test]
fn recorded_vxlan_matches_its_tunnel_interface() {
    let got = audited("vxlan.pcap");
    let want = audited("vxlan-plain.pcap");
    assert_eq!(got.len(), 4);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        let (mut g2, mut w2) = (inner_view(g), inner_view(w));
        // The no-answer evidence quotes the span of the SYNs, which the two capture points
        // may time a few microseconds apart.
        g2.as_object_mut().unwrap().remove("evidence");
        w2.as_object_mut().unwrap().remove("evidence");
        assert_eq!(g2, w2);
        assert_eq!(
            g["encap"],
            serde_json::json!([{"type": "vxlan", "src": "10.98.0.1", "dst": "10.98.0.2", "vni": 42}])
        );
    }
    let verdicts: Vec<&str> = got.iter().map(|f| f["verdict"].as_str().unwrap()).collect();
    assert_eq!(
        verdicts,
        [
            "unattributed",
            "required-reached",
            "unattributed",
            "required-blocked"
        ]
    );
    assert_eq!(got[1]["name"], "ml.azure.com");
    assert_eq!(got[3]["name"], "login.microsoftonline.com");
}

/// The same inner 5-tuples in VNI 42 and VNI 43 are two sets of flows.
#[test]
fn flows_in_different_vnis_stay_apart() {
    let one = audited("vxlan.pcap");
    let two = audited("vxlan-two-vnis.pcap");
    assert_eq!(two.len(), 2 * one.len());
    for pair in two.chunks(2) {
        let vnis: Vec<u64> = pair
            .iter()
            .map(|f| f["encap"][0]["vni"].as_u64().unwrap())
            .collect();
        assert_eq!(vnis, [42, 43]);
        assert_eq!(inner_view(&pair[0]), inner_view(&pair[1]));
    }
    for (a, b) in one.iter().zip(two.iter().step_by(2)) {
        assert_eq!(a, &{
            let mut b = b.clone();
            b["file"] = a["file"].clone();
            b
        });
    }
}

/// NFLOG (`tcpdump -i nflog:5` on nftables `log group 5` rules): every flow names the rule
/// that logged it, in the flows, in the audit's evidence and in its text report.
#[test]
fn nflog_flows_name_their_logging_rule() {
    let flows = audited("nflog.pcap");
    let rules: Vec<(u64, &str)> = flows
        .iter()
        .map(|f| {
            (
                f["src_port"].as_u64().unwrap(),
                f["nflog_prefix"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (41053, "AML-ALLOW"),
            (41443, "AML-ALLOW"),
            (41054, "AML-ALLOW"),
            (41444, "AML-DENY")
        ]
    );
    assert_eq!(flows[1]["verdict"], "required-reached");
    assert_eq!(flows[1]["evidence"], "logged by rule 'AML-ALLOW'");
    assert_eq!(flows[3]["verdict"], "required-blocked");
    let ev = flows[3]["evidence"].as_str().unwrap();
    assert!(ev.ends_with("; logged by rule 'AML-DENY'"), "{ev}");
    let (_, text, _) = run(&["audit", cap("nflog.pcap").to_str().unwrap()]);
    assert!(text.contains("logged by rule 'AML-DENY'"), "{text}");
    // Plain captures: no prefix, no layers.
    let (_, plain, _) = run(&[
        "flows",
        "--format",
        "json",
        cap("tcp-outcomes.pcap").to_str().unwrap(),
    ]);
    // Every flow has both keys (schema version 2): null and empty without NFLOG or tunnels.
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    for f in plain["flows"].as_array().unwrap() {
        assert_eq!(f["nflog_prefix"], serde_json::Value::Null);
        assert_eq!(f["encap"], serde_json::json!([]));
    }
}

/// Nothing silent: a capture none of whose frames could be decoded is said to be one in the
/// text report and on stderr, with exit code 2; one that lost some frames says how many and
/// why in the text report.
#[test]
fn undecodable_frames_are_said() {
    let dir = std::env::temp_dir().join(format!("allowscope-undecoded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Three frames of link type 147 (a private one, never decoded).
    let mut none = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 147] {
        none.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..3u32 {
        for v in [1_700_000_000 + i, 0, 40, 40] {
            none.extend_from_slice(&v.to_le_bytes());
        }
        none.extend_from_slice(&[0u8; 40]);
    }
    let p = dir.join("lt147.pcap");
    std::fs::write(&p, &none).unwrap();
    let (code, out, err) = run(&["audit", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let said = "no frame of link type 147 could be decoded";
    assert!(out.contains(said), "{out}");
    assert!(err.contains(said), "{err}");
    let (code, _, err) = run(&["flows", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(said), "{err}");

    // nflog.pcap and one cut NFLOG frame after it.
    let mut part = std::fs::read(cap("nflog.pcap")).unwrap();
    for v in [1_700_000_000u32, 0, 6, 6] {
        part.extend_from_slice(&v.to_le_bytes());
    }
    part.extend_from_slice(&[2, 0, 0, 5, 0, 0]);
    let p = dir.join("nflog-cut.pcap");
    std::fs::write(&p, &part).unwrap();
    let (code, out, _) = run(&["audit", p.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    assert!(
        out.contains("1 of 27 frames not decoded: 1 malformed (NFLOG TLV cut)"),
        "{out}"
    );
}

/// Split among threads, tunnelled frames go by their inner addresses: both directions of an
/// inner flow meet in one worker, and the output is the one of a single thread.
#[test]
fn tunnelled_captures_split_among_threads_as_one() {
    for f in [
        "vxlan.pcap",
        "vxlan-two-vnis.pcap",
        "gtpu.pcap",
        "mpls.pcap",
        "teredo.pcap",
        "nflog.pcap",
    ] {
        let path = cap(f);
        let one = run(&[
            "flows",
            "--format",
            "json",
            "--threads",
            "1",
            path.to_str().unwrap(),
        ]);
        let four = run(&[
            "flows",
            "--format",
            "json",
            "--threads",
            "4",
            path.to_str().unwrap(),
        ]);
        assert_eq!(one, four, "{f}");
    }
}

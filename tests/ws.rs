//! `allowscope ws` (and the websocket section of `allowscope audit`) on the websocket captures
//! recorded by `captures/record.sh ws`: python websockets servers named as compute instances,
//! a healthy websocket with pings, haproxy cutting idle tunnels after 3 s, nginx dropping the
//! Upgrade header, haproxy refusing the Upgrade with 403, and nginx's 60 s read timeout.
//! The client capture sees one leg of each connection; the firewall capture sees both legs of
//! every proxied one.

use std::path::PathBuf;

use serde_json::Value;

mod common;
use common::{cap, run};

fn ws_json(file: &str) -> Value {
    let p = cap(file);
    let (code, out, err) = run(&["ws", "-q", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// "name client leg transport upgrade-status diagnosis ended-by" per connection.
/// A string field of the JSON (the test fails if it is not one).
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// A compute instance's name without the region's domain.
fn short_name(v: &Value) -> &str {
    text(v).trim_end_matches(".westeurope.instances.azureml.ms")
}

fn rows(doc: &Value) -> Vec<String> {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let short = short_name(&c["name"]);
            format!(
                "{short} {} {} {} {} {} {}",
                c["client"].as_str().unwrap(),
                c["leg"].as_str().unwrap(),
                c["transport"].as_str().unwrap(),
                c["upgrade_status"],
                c["diagnosis"].as_str().unwrap(),
                c["ended_by"].as_str().unwrap_or("open"),
            )
        })
        .collect()
}

fn instance<'a>(doc: &'a Value, short: &str) -> &'a Value {
    let name = format!("{short}.westeurope.instances.azureml.ms");
    doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no instance {name}"))
}

fn conn<'a>(doc: &'a Value, client: &str) -> &'a Value {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == client)
        .unwrap_or_else(|| panic!("no connection from {client}"))
}

fn gap(c: &Value) -> f64 {
    c["idle_before_end_s"].as_f64().unwrap()
}

#[test]
fn client_side_capture_gives_the_exact_diagnosis_per_connection() {
    let doc = ws_json("ws-client.pcap");
    assert_eq!(
        rows(&doc),
        vec![
            "ci-nginx 10.99.1.2:57050 client http 101 ws-idle-kill fin by server",
            "ci-ok 10.99.1.2:57010 client tls null healthy fin by client",
            "ci-idle 10.99.1.2:57020 client tls null ws-idle-kill fin by server",
            "ci-idle 10.99.1.2:57021 client tls null ws-idle-kill fin by server",
            "ci-idle 10.99.1.2:57022 client tls null ws-idle-kill fin by server",
            "ci-strip 10.99.1.2:57030 client http 505 ws-upgrade-failed fin by client",
            "ci-deny 10.99.1.2:57040 client http 403 ws-upgrade-failed fin by client",
            "ci-reset 10.99.1.2:57060 client tls null ws-idle-kill rst by server",
            "ci-drop 10.99.1.2:57070 client tls null ws-idle-kill open",
            "ci-proxy 10.99.1.2:57080 client tls-via-proxy null healthy fin by server",
        ]
    );
    // nginx's default proxy_read_timeout, recognised from the gap.
    let nginx = conn(&doc, "10.99.1.2:57050");
    assert!((59.5..61.0).contains(&gap(nginx)), "{}", gap(nginx));
    assert_eq!(
        nginx["timer"],
        "about 60 s: nginx's default proxy_read_timeout"
    );
    assert_eq!(
        nginx["upgrade_path"],
        "/api/kernels/4f1c2a9e-7d3b-4b8e-9a51-0c6e2d8b7f10/channels"
    );
    // haproxy's 3 s tunnel timeout: a measured gap, below Jupyter's ping interval.
    for p in [57020, 57021, 57022] {
        let c = conn(&doc, &format!("10.99.1.2:{p}"));
        assert!((2.9..3.5).contains(&gap(c)), "{}", gap(c));
        assert_eq!(
            c["timer"],
            "a measured idle gap of 3 s, shorter than Jupyter's 30 s ping interval"
        );
        assert_eq!(c["alpn"], serde_json::json!(["http/1.1"]));
    }
    // The healthy websocket lived 12 s, pinged every second, and closed cleanly right after
    // its last data.
    let ok = conn(&doc, "10.99.1.2:57010");
    assert!(ok["duration_s"].as_f64().unwrap() > 11.5);
    assert!(gap(ok) < 0.5);
    assert_eq!(ok["http1_offered"], true);
    let t = &ok["timeline"];
    assert!(t["handshake_s"].as_f64().unwrap() < 0.1);
    assert!(t["last_client_data_s"].as_f64().unwrap() > 11.5);
    assert!(t["end_s"].as_f64().unwrap() >= t["last_server_data_s"].as_f64().unwrap());
    // One leg only: what the answers themselves prove.
    let strip = conn(&doc, "10.99.1.2:57030");
    assert_eq!(strip["answered_by"], "origin");
    assert_eq!(strip["upgrade_dropped"], true);
    assert_eq!(strip["answer_server"], "nginx/1.22.1");
    let deny = conn(&doc, "10.99.1.2:57040");
    assert_eq!(deny["answered_by"], Value::Null);
    assert_eq!(deny["upgrade_dropped"], false);
    // A firewall that forgot the idle connection: the next message is reset by the firewall
    // (its TTL gives it away), or gets nothing back at all.
    let reset = conn(&doc, "10.99.1.2:57060");
    assert!((5.9..6.5).contains(&gap(reset)), "{}", gap(reset));
    assert!(text(&reset["evidence"]).contains("was answered with a RST"));
    assert_eq!(
        reset["rst_from_middlebox"],
        "made by a middlebox: its TTL 64 differs from the server's own packets (63), IP ID 0, window 0"
    );
    let drop = conn(&doc, "10.99.1.2:57070");
    assert!((5.9..6.5).contains(&gap(drop)), "{}", gap(drop));
    assert!(text(&drop["evidence"]).contains("got no answer at all, not even an ACK"));
    assert!(text(&instance(&doc, "ci-drop")["diagnosis"])
        .starts_with("1 of 1 connections went dead after 6.0 s without a byte either way: "));
    assert!(text(&instance(&doc, "ci-reset")["diagnosis"])
        .starts_with("1 of 1 connections were closed (rst by server) after 6.0 s"));
    // Through squid: the CONNECT answer, and TLS inside the tunnel.
    let proxied = conn(&doc, "10.99.1.2:57080");
    assert_eq!(proxied["connect_status"], 200);
    assert_eq!(proxied["server"], "10.99.1.1:3131");
    assert!(proxied["duration_s"].as_f64().unwrap() > 11.5);

    let problems: Vec<(String, String)> = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                short_name(&i["name"]).to_string(),
                i["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("ci-deny", "ws-upgrade-failed"),
        ("ci-drop", "ws-idle-kill"),
        ("ci-idle", "ws-idle-kill"),
        ("ci-nginx", "ws-idle-kill"),
        ("ci-ok", "healthy"),
        ("ci-proxy", "healthy"),
        ("ci-reset", "ws-idle-kill"),
        ("ci-strip", "ws-upgrade-failed"),
    ];
    assert_eq!(
        problems,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    let idle = instance(&doc, "ci-idle");
    assert_eq!(idle["connections"], 3);
    assert!(text(&idle["diagnosis"]).ends_with("the websocket never stays up"));
    assert!(text(&idle["advice"]).contains("timeout tunnel"));
    assert!(text(&instance(&doc, "ci-nginx")["advice"]).contains("proxy_read_timeout"));
    assert!(text(&instance(&doc, "ci-strip")["advice"]).contains("proxy_http_version 1.1"));
    assert_eq!(instance(&doc, "ci-ok")["advice"], Value::Null);
}

#[test]
fn firewall_capture_ties_the_proxy_legs_together() {
    let doc = ws_json("ws-firewall.pcapng");
    assert_eq!(
        rows(&doc),
        vec![
            "ci-nginx 10.99.1.2:57050 client http 101 ws-idle-kill fin by server",
            "ci-nginx 10.99.2.1:35920 upstream http 101 ws-idle-kill fin by client",
            "ci-ok 10.99.1.2:57010 client tls null healthy fin by client",
            "ci-idle 10.99.1.2:57020 client tls null ws-idle-kill fin by server",
            "ci-idle 10.99.2.1:59866 upstream tls null ws-idle-kill fin by client",
            "ci-idle 10.99.1.2:57021 client tls null ws-idle-kill fin by server",
            "ci-idle 10.99.2.1:60112 upstream tls null ws-idle-kill fin by client",
            "ci-idle 10.99.1.2:57022 client tls null ws-idle-kill fin by server",
            "ci-idle 10.99.2.1:60122 upstream tls null ws-idle-kill fin by client",
            "ci-strip 10.99.1.2:57030 client http 505 ws-upgrade-failed fin by client",
            "ci-deny 10.99.1.2:57040 client http 403 ws-upgrade-failed fin by client",
            "ci-reset 10.99.1.2:57060 client tls null ws-idle-kill rst by server",
            "ci-drop 10.99.1.2:57070 client tls null ws-idle-kill open",
            "ci-proxy 10.99.1.2:57080 client tls-via-proxy null healthy fin by server",
            "ci-proxy 10.99.2.1:34446 upstream tls null healthy fin by server",
        ]
    );
    // squid relays the TLS bytes of the tunnel unchanged too.
    assert_eq!(
        conn(&doc, "10.99.1.2:57080")["other_legs"],
        serde_json::json!(["10.99.2.1:34446 -> 198.18.3.17:443"])
    );
    assert_eq!(instance(&doc, "ci-proxy")["connections"], 1);
    // haproxy in TCP mode relays the ClientHello unchanged: the same client random ties the
    // legs together.
    assert_eq!(
        conn(&doc, "10.99.1.2:57020")["other_legs"],
        serde_json::json!(["10.99.2.1:59866 -> 198.18.3.11:443"])
    );
    // nginx forwarded the handshake as HTTP/1.0 without Upgrade; the origin answered 505.
    let strip = conn(&doc, "10.99.1.2:57030");
    assert_eq!(strip["answered_by"], "origin");
    assert_eq!(strip["upgrade_dropped"], true);
    let ev = strip["evidence"].as_str().unwrap();
    assert!(
        ev.contains("HTTP/1.0` without Upgrade (Connection: close)")
            && ev.contains("Server: Python/3.11 websockets/17.4"),
        "{ev}"
    );
    // haproxy answered 403 itself: nothing with that Sec-WebSocket-Key left it.
    let deny = conn(&doc, "10.99.1.2:57040");
    assert_eq!(deny["answered_by"], "proxy");
    assert_eq!(deny["upgrade_dropped"], false);
    assert!(text(&instance(&doc, "ci-deny")["advice"])
        .starts_with("allow websocket upgrades to ci-deny"));
    // Instances count the connections clients opened, not the proxies' upstream legs.
    assert_eq!(instance(&doc, "ci-idle")["connections"], 3);
    assert_eq!(instance(&doc, "ci-nginx")["connections"], 1);
    assert_eq!(instance(&doc, "ci-ok")["problem"], "healthy");
}

/// A healthy websocket is never reported as broken, by `ws` or by `audit`, whatever else the
/// captures hold.
#[test]
fn healthy_websockets_are_never_broken() {
    for file in ["ws-client.pcap", "ws-firewall.pcapng", "proxy.pcap"] {
        let doc = ws_json(file);
        for c in doc["connections"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            if name.starts_with("ci-ok.")
                || name.starts_with("ci-proxy.")
                || name == "ws.allowscope.test"
            {
                assert_eq!(c["diagnosis"], "healthy", "{file}: {c}");
            }
        }
    }
}

#[test]
fn text_report_has_a_timeline_and_plain_advice() {
    let p = cap("ws-client.pcap");
    let (code, out, err) = run(&["ws", "-q", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ok = out
        .lines()
        .skip_while(|l| !l.starts_with("ci-ok."))
        .nth(1)
        .unwrap();
    assert!(
        ok.starts_with("    start 2026-11-21T22:03:45.692351Z  handshake +0.01"),
        "{ok}"
    );
    assert!(ok.contains(", fin by client after 0.0 s quiet"), "{ok}");
    assert!(out.contains("Diagnosis per instance:"));
    assert!(out.contains(
        "  ci-nginx.westeurope.instances.azureml.ms: 1 of 1 connections were closed (fin by server) after 60.0 s without a byte either way: about 60 s: nginx's default proxy_read_timeout"
    ));
}

/// `--fail-on problem` makes a broken websocket fail a CI job; healthy ones pass.
#[test]
fn exit_codes() {
    let broken = cap("ws-client.pcap");
    let healthy = cap("proxy.pcap");
    let code = |f: &PathBuf, extra: &[&str]| {
        let mut a = vec!["ws", "-q", "--format", "json"];
        a.extend_from_slice(extra);
        a.push(f.to_str().unwrap());
        run(&a).0
    };
    assert_eq!(code(&broken, &[]), 0);
    assert_eq!(code(&broken, &["--fail-on", "problem"]), 1);
    assert_eq!(code(&broken, &["--fail-on", "never"]), 0);
    // proxy.pcap: one healthy websocket (ws.allowscope.test, 101 and a clean close).
    assert_eq!(code(&healthy, &["--fail-on", "problem"]), 0);
    let missing = cap("no-such-file.pcap");
    assert_eq!(code(&missing, &["--fail-on", "problem"]), 2);
}

/// The same TLS client random (or Sec-WebSocket-Key) on many connections is no relay: a
/// generated or replayed hello must not tie hundreds of connections together (nor make the
/// work grow with the square of their number). The bench generator reuses one random.
#[test]
fn a_repeated_handshake_key_ties_nothing_together() {
    let dir = std::env::temp_dir().join(format!("allowscope-ws-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("synth.pcap");
    let file = std::fs::File::create(&path).unwrap();
    allowscope::synth::write_pcap(std::io::BufWriter::new(file), 3 << 20, 64, 7).unwrap();
    let (code, out, err) = run(&["ws", "-q", "--format", "json", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let conns = doc["connections"].as_array().unwrap();
    assert!(conns.len() > 30, "{} connections", conns.len());
    for c in conns {
        assert_eq!(c["leg"], "client", "{c}");
        assert_eq!(c["other_legs"], serde_json::json!([]), "{c}");
    }
}

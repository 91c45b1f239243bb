//! Library-level checks on recorded captures that the JSON output does not show byte for byte.

use std::path::Path;

use allowscope::analyze::analyze_input;
use allowscope::capture::Input;
use allowscope::flow::FlowConfig;

fn keep() -> FlowConfig {
    FlowConfig {
        keep_first_flight: true,
        ..FlowConfig::default()
    }
}

fn cap(name: &str) -> Input {
    Input::File(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name),
    )
}

/// The ClientHello of split-hello.pcap crossed the wire in two TCP segments (MSS 256); the
/// reassembled first flight holds the whole TLS record with its server name.
#[test]
fn client_hello_over_two_segments_is_reassembled() {
    let r = analyze_input(&cap("split-hello.pcap"), &keep());
    assert_eq!(r.flows.len(), 1);
    let flight = r.flows[0].from_client().stream.bytes();
    assert_eq!(flight[0], 0x16, "a TLS handshake record");
    let rec_len = u16::from_be_bytes([flight[3], flight[4]]) as usize;
    assert_eq!(rec_len + 5, 385, "the 385-byte ClientHello of the README");
    assert!(flight.len() >= 385);
    let name = b"a-rather-long-name-for-segmentation.instances.allowscope.test";
    assert!(flight[..385].windows(name.len()).any(|w| w == name));
    assert!(!r.flows[0].from_client().stream.has_hole());
}

/// With a 96-byte snap length the same hello is cut: the first flight says so instead of
/// pretending the stream ended there.
#[test]
fn snaplen_cut_hello_is_marked_as_a_hole() {
    let r = analyze_input(&cap("tcp-outcomes.snap96.pcap"), &keep());
    let f = r.flows.iter().find(|f| f.server.port == 8085).unwrap();
    let s = &f.from_client().stream;
    assert_eq!(s.bytes().len(), 30);
    assert!(s.has_hole());
    assert_eq!(s.cut_at(), Some(30));
}

/// A tiny flow cap forces eviction: every flow is still reported once, marked as evicted.
#[test]
fn flow_cap_evicts_and_counts() {
    let cfg = FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    };
    let r = analyze_input(&cap("udp-outcomes.pcap"), &cfg);
    assert_eq!(r.flows.len(), 8);
    assert!(r.summary.flow_table.evicted > 0);
    assert!(r.summary.flow_table.peak_live <= 2);
    assert_eq!(
        r.flows.iter().filter(|f| f.evicted).count() as u64,
        r.summary.flow_table.evicted
    );
}

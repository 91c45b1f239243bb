//! Library-level checks on recorded captures that the JSON output does not show byte for byte.

use std::path::Path;

use allowscope::capture::Input;
use allowscope::flow::FlowConfig;
use allowscope::pipeline::analyze_input;

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

/// Every recorded capture, damaged at random places (bit flips, cuts, spliced garbage), goes
/// through the whole pipeline (reader, decoder, defragmenter, flow table) without a panic, and
/// a damaged file either reads to its end or stops with an error that names a byte offset
/// inside the file (or, when no frame left could be decoded, says that).
#[test]
fn damaged_captures_never_panic_end_to_end() {
    use allowscope::capture::CaptureReader;
    use allowscope::pipeline::analyze_reader;
    use allowscope::rng::XorShift;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut rng = XorShift::new(0xa11_0d5c0);
    let mut runs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let clean = std::fs::read(&path).unwrap();
        for _ in 0..40 {
            let mut bytes = clean.clone();
            match rng.below(3) {
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(bytes.len());
                        bytes[i] ^= 1 << rng.below(8);
                    }
                }
                1 => bytes.truncate(rng.below(bytes.len())),
                _ => {
                    let at = rng.below(bytes.len());
                    let n = 1 + rng.below(64);
                    let junk = rng.bytes(n);
                    bytes.splice(at..at, junk);
                }
            }
            let len = bytes.len() as u64;
            let Ok(reader) = CaptureReader::from_read(Box::new(std::io::Cursor::new(bytes))) else {
                continue;
            };
            let r = analyze_reader(name.clone(), reader, &FlowConfig::default());
            // A file cut to frames none of which decodes (an 802.11 beacon) says so instead.
            let damage = r.summary.error.as_ref();
            if let Some(e) = damage.filter(|e| !e.contains("could be decoded")) {
                let off: u64 = e
                    .split("byte offset ")
                    .nth(1)
                    .and_then(|s| s.split(':').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no offset in {e}"));
                assert!(off <= len, "{e} (file has {len} bytes)");
            }
            runs += 1;
        }
    }
    assert!(runs > 300, "{runs}");
}

/// A snapshot for the live view shows the input as if it had ended there: for every prefix of
/// a capture, the snapshot taken before the next frame gives the same flows (with their facts,
/// outcomes and DNS names) as reading that prefix as a file.
#[test]
fn live_view_snapshots_equal_the_result_of_the_prefix() {
    use allowscope::capture::CaptureReader;
    use allowscope::pipeline::{analyze_reader, analyze_reader_viewed, FileResult};
    use allowscope::report::FlowRecord;

    let rows = |r: &FileResult| -> Vec<String> {
        r.flows
            .iter()
            .map(|f| serde_json::to_string(&FlowRecord::new(f, "x")).unwrap())
            .collect()
    };
    let reader = |b: Vec<u8>| CaptureReader::from_read(Box::new(std::io::Cursor::new(b))).unwrap();
    // Also with a live-flow cap of 1 on the capture of unanswered SYNs, so that flows are
    // evicted while the input is read, some while they still wait as their first packet.
    let capped = FlowConfig {
        max_flows: 1,
        ..FlowConfig::default()
    };
    for (capture, cfg) in [
        ("audit-client.pcap", FlowConfig::default()),
        ("tcp-outcomes.pcap", capped),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(capture);
        let bytes = std::fs::read(&path).unwrap();
        // Record boundaries of the classic pcap (little-endian, as recorded here).
        let mut ends = vec![24usize];
        while *ends.last().unwrap() < bytes.len() {
            let at = *ends.last().unwrap();
            let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            ends.push(at + 16 + caplen);
        }
        // (frames read when the snapshot was taken, its flows)
        let mut snaps: Vec<(usize, Vec<String>)> = Vec::new();
        let mut keep = |r: FileResult| snaps.push((r.summary.packets as usize, rows(&r)));
        let whole = analyze_reader_viewed(
            "x".into(),
            reader(bytes.clone()),
            &cfg,
            std::time::Duration::ZERO,
            &mut keep,
        );
        assert_eq!(
            rows(&whole),
            rows(&analyze_reader("x".into(), reader(bytes.clone()), &cfg)),
            "watching does not change the result"
        );
        // Check a spread of the snapshots against the prefix they saw.
        assert!(snaps.len() >= 5, "{} snapshots", snaps.len());
        assert!(snaps.iter().any(|(_, rows)| rows.len() > 5));
        for (k, seen) in snaps.iter().step_by(snaps.len() / 12 + 1) {
            let prefix = analyze_reader("x".into(), reader(bytes[..ends[*k]].to_vec()), &cfg);
            assert_eq!(*seen, rows(&prefix), "snapshot after {k} frames");
        }
    }
}

/// The encrypted bypass stops keeping a TLS direction at its first ApplicationData record. On
/// every capture, the facts of every flow are the same as when all 16 KiB are kept, and it
/// did stop somewhere (the TLS captures have encrypted data past the handshake).
#[test]
fn encrypted_bypass_changes_no_fact() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let full = FlowConfig {
        encrypted_bypass: false,
        ..FlowConfig::default()
    };
    let mut sealed = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".pcap"))
        .collect();
    names.sort();
    for name in &names {
        let a = analyze_input(&cap(name), &FlowConfig::default());
        let b = analyze_input(&cap(name), &full);
        assert_eq!(a.flows.len(), b.flows.len(), "{name}");
        for (x, y) in a.flows.iter().zip(&b.flows) {
            assert_eq!(x.facts, y.facts, "{name}: {:?} {:?}", x.client, x.server);
            assert_eq!(x.history.as_str(), y.history.as_str(), "{name}");
            for d in 0..2 {
                let (s, t) = (&x.dirs[d].stream, &y.dirs[d].stream);
                assert_eq!(s.announced(), t.announced(), "{name}");
                assert_eq!(s.cut_at(), t.cut_at(), "{name}");
                if let Some(at) = s.encrypted_from() {
                    sealed += 1;
                    assert_eq!(s.contiguous(), at as usize + 5, "{name}");
                    assert!(t.contiguous() > s.contiguous(), "{name}");
                    assert!(!s.has_hole() && !s.capped(), "{name}");
                } else {
                    assert_eq!(s.contiguous(), t.contiguous(), "{name}");
                }
            }
        }
    }
    assert!(sealed > 40, "{sealed} directions sealed");
}

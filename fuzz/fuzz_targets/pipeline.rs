//! The whole pipeline from bytes: any bytes as a capture file read, decoded, defragmented, put
//! into flows with their protocol facts and names, audited against the built-in catalog, and
//! written as the audit report (text and JSON) and the flows (JSON).
#![no_main]

use allowscope::capture::CaptureReader;
use allowscope::catalog::Catalog;
use allowscope::flow::FlowConfig;
use allowscope::report::audit::{write_audit, AuditFormat};
use allowscope::report::{write_flows, FlowsFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CaptureReader::from_read(Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let cfg = FlowConfig {
        // A small table, so eviction is reached too.
        max_flows: 64,
        ..FlowConfig::default()
    };
    let result = allowscope::pipeline::analyze_reader("fuzz.pcap".into(), reader, &cfg);
    let mut results = [result];
    let sink = &mut std::io::sink();
    let provenance = allowscope::provenance::Provenance::of_run(
        "flows",
        None,
        allowscope::provenance::Options::of(&cfg),
        &Default::default(),
    );
    write_flows(
        sink,
        &mut std::io::sink(),
        &results,
        FlowsFormat::Json,
        &provenance,
    )
    .ok();
    let (audit, judged) = allowscope::audit::audit(&mut results, &Catalog::builtin());
    for format in [AuditFormat::Text, AuditFormat::Json] {
        write_audit(
            sink,
            &audit,
            &judged,
            &results,
            &[],
            format,
            false,
            true,
            true,
        )
        .ok();
    }
});

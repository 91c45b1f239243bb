//! `allowscope merge`'s input: any text as an audit JSON document, and a document that reads
//! merged with itself, and with a copy of itself whose inputs are other captures under other
//! labels (the same input twice is refused before anything is added up).
#![no_main]

use allowscope::audit::merge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = merge::read("fuzz.json", text) else {
        return;
    };
    let mut other = doc.clone();
    for (i, input) in other.inputs.iter_mut().enumerate() {
        input.file = format!("other-{i}.pcap");
        input.sha256 = Some(format!("{i:064x}"));
    }
    other
        .provenance
        .labels
        .insert("host".into(), "other".into());
    for docs in [
        vec![
            ("a.json".to_string(), doc.clone()),
            ("b.json".to_string(), doc.clone()),
        ],
        vec![("a.json".to_string(), doc), ("b.json".to_string(), other)],
    ] {
        if let Ok(merged) = merge::merge(docs) {
            std::hint::black_box(serde_json::to_string(&merged).ok());
        }
    }
});

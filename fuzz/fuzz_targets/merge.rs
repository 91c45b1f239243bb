//! `allowscope merge`'s input: any text as an audit JSON document, and a document that reads
//! merged with itself.
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
    let docs = vec![
        ("a.json".to_string(), doc.clone()),
        ("b.json".to_string(), doc),
    ];
    if let Ok(merged) = merge::merge(docs) {
        std::hint::black_box(serde_json::to_string(&merged).ok());
    }
});

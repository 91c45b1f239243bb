//! A catalog file in TOML: parsed and checked; a catalog that parses is matched against a few
//! names, and its export (`catalog list --format toml`) reads back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // JSON-looking text goes to the workspace_json target.
    if matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        return;
    }
    allowscope_fuzz::catalog_round_trip(text);
});

//! A workspace's `outboundNetworkDependenciesEndpoints` JSON given as a catalog: parsed; a
//! catalog that parses is matched against a few names, and its TOML export reads back to the
//! same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The catalog reader takes text starting with `{` or `[{` for JSON; the rest is TOML.
    if !matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        return;
    }
    allowscope_fuzz::catalog_round_trip(text);
});

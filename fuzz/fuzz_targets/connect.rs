//! CONNECT through a proxy: two records (see `allowscope_fuzz::records`), the client's flight
//! then the server's; where the tunnel starts in each, and each request's target read as
//! `host:port`. The offsets lie inside the streams; a port read is never 0.
#![no_main]

use allowscope::proto::http;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut recs = allowscope_fuzz::records(data);
    let client = recs.next().unwrap_or_default();
    let server = recs.next().unwrap_or_default();
    if let Some((c, s)) = http::tunnel_offsets(client, server) {
        assert!(c <= client.len() && s <= server.len(), "{c} {s}");
    }
    let targets = http::requests(client, false).into_iter().map(|r| r.target);
    for t in targets.chain([String::from_utf8_lossy(client).into_owned()]) {
        if let Some((_, port)) = http::connect_target(&t) {
            assert_ne!(port, 0);
        }
    }
});

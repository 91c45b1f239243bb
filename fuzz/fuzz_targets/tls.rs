//! TLS records, the ClientHello and the server's flight (ServerHello, certificate, alerts): two records (see
//! `allowscope_fuzz::records`), the client's first flight then the server's, read as the
//! protocol extractors read a flow's reassembled streams, with and without a hole after them.
#![no_main]

use allowscope::proto::tls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut recs = allowscope_fuzz::records(data);
    let client = recs.next().unwrap_or_default();
    let server = recs.next().unwrap_or_default();
    for hole in [false, true] {
        std::hint::black_box(tls::client_hello(client, hole));
        std::hint::black_box(tls::server_flight(server, hole));
    }
    std::hint::black_box(tls::client_alerts(client));
    std::hint::black_box(tls::looks_complete(client, server));
});

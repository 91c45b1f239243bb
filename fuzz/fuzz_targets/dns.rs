//! DNS messages: any bytes as one message (UDP), strict and lenient, and as a DNS-over-TCP
//! stream. A message the strict parser reads, the lenient one reads the same, whole.
#![no_main]

use allowscope::proto::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = dns::parse_message(data);
    let lenient = dns::parse_message_lenient(data);
    if let Ok(m) = &strict {
        assert_eq!(lenient.as_ref(), Some(m));
    }
    if let Some(m) = &lenient {
        let chain = m.chain();
        std::hint::black_box((m.is_nodata(), m.is_nodata_in(&chain), m.sinkhole()));
        std::hint::black_box(dns::worth_keeping(m));
    }
    for hole in [false, true] {
        std::hint::black_box(dns::parse_tcp_stream(data, hole));
    }
    std::hint::black_box(dns::whole_tcp_messages(data));
});

//! HTTP/1 heads: any bytes as a client's flight (requests) and as a server's (responses), and
//! as heads the capture cut.
#![no_main]

use allowscope::proto::http;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for hole in [false, true] {
        std::hint::black_box(http::parse_request(data, hole));
        std::hint::black_box(http::parse_response(data, hole));
    }
    std::hint::black_box(http::requests(data, false));
    std::hint::black_box(http::responses(data, false));
    std::hint::black_box(http::status_of_cut(data));
    std::hint::black_box(http::method_of_cut(data));
});

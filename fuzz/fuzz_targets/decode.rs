//! Link and IP decode with defragmentation: records (see `allowscope_fuzz::records`) of a
//! 4-byte big-endian LINKTYPE then a frame, decoded as the pipeline's worker does, fragments
//! fed to a small defragmenter and reassembled datagrams decoded again.
#![no_main]

use allowscope::decode::{self, Defragmenter, L4};
use libfuzzer_sys::fuzz_target;

// Small limits, so eviction and the byte budget are reached too.
const MAX_BYTES: usize = 64 * 1024;
const MAX_DATAGRAMS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut defrag = Defragmenter::new(MAX_BYTES, MAX_DATAGRAMS, 1_000_000_000);
    for (i, rec) in allowscope_fuzz::records(data).enumerate() {
        let (lt, frame) = rec.split_at(rec.len().min(4));
        let mut four = [0u8; 4];
        four[..lt.len()].copy_from_slice(lt);
        let linktype = u32::from_be_bytes(four);
        // 100 ms apart: some datagrams expire before their last fragment.
        let ts_ns = i as i64 * 100_000_000;
        std::hint::black_box(decode::encap_layers(linktype, frame));
        std::hint::black_box(decode::tcp_udp_addresses(linktype, frame));
        let Ok(pkt) = decode::decode(linktype, frame) else {
            continue;
        };
        if let L4::Fragment(fr) = &pkt.l4 {
            defrag.expire(ts_ns);
            if let Some(whole) = defrag.push(ts_ns, &pkt.ip, fr) {
                std::hint::black_box(decode::decode_transport(whole.ip, &whole.data));
            }
        }
        // The bounds hold after every fragment.
        assert!(defrag.buffered_bytes() <= MAX_BYTES);
        assert!(defrag.pending_datagrams() <= MAX_DATAGRAMS);
    }
    std::hint::black_box(defrag.stats());
});

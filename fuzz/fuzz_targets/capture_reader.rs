//! The capture reader: any bytes as a file (pcap, pcapng, gzip or zstd of either), read to the
//! end or to the first error. The reader's counts agree with the frames it returned.
#![no_main]

use allowscope::capture::CaptureReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_read(Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    let (mut frames, mut bytes) = (0u64, 0u64);
    while let Ok(Some(frame)) = reader.next_frame() {
        frames += 1;
        bytes += frame.data.len() as u64;
        std::hint::black_box(frame);
    }
    assert_eq!(reader.stats().frames, frames);
    assert_eq!(reader.stats().captured_bytes, bytes);
    std::hint::black_box((reader.warnings(), reader.format(), reader.compression()));
});

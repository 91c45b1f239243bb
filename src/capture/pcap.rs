//! Classic libpcap format.
//!
//! On-disk layout (every field in the byte order given by the magic):
//!
//! ```text
//! file header, 24 bytes:
//!   0  u32 magic          a1b2c3d4 (microseconds) or a1b23c4d (nanoseconds)
//!   4  u16 version_major  (2)
//!   6  u16 version_minor  (4)
//!   8  i32 thiszone       (unused, 0)
//!  12  u32 sigfigs        (unused, 0)
//!  16  u32 snaplen
//!  20  u32 network        link type in the low 28 bits (upper bits: FCS length flags)
//! record header, 16 bytes, then `incl_len` bytes of packet data:
//!   0  u32 ts_sec         seconds since the epoch
//!   4  u32 ts_frac        microseconds or nanoseconds (below 10^6 or 10^9)
//!   8  u32 incl_len       captured length
//!  12  u32 orig_len       length on the wire
//! ```

use super::source::Source;
use super::{rd32, RawFrame, ReadError, ReadErrorKind, ReadWarning, MAX_RECORD};

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;
/// Caplen limit floor: libpcap's maximum snap length.
const MIN_CAPLEN_LIMIT: u32 = 262_144;

/// Parser state for a classic pcap stream.
pub(crate) struct PcapState {
    be: bool,
    nanos: bool,
    linktype: u32,
    /// Records with a larger captured length are rejected as bogus.
    limit: u32,
}

impl PcapState {
    /// Read the 24-byte file header (the magic was already checked).
    pub(crate) fn read_header(
        src: &mut Source,
        be: bool,
        nanos: bool,
    ) -> Result<PcapState, ReadError> {
        if !src.ensure(FILE_HEADER)? {
            return Err(ReadError::new(0, ReadErrorKind::ShortHeader));
        }
        let h = src.peek(FILE_HEADER);
        let snaplen = rd32(h, 16, be);
        let network = rd32(h, 20, be);
        src.consume(FILE_HEADER);
        Ok(PcapState {
            be,
            nanos,
            linktype: network & 0x0fff_ffff,
            limit: snaplen.clamp(MIN_CAPLEN_LIMIT, MAX_RECORD),
        })
    }

    /// Parse the next record. `Ok(None)` at a clean end or (with a warning) inside a record.
    #[inline]
    pub(crate) fn next(
        &self,
        src: &mut Source,
        warnings: &mut Vec<ReadWarning>,
    ) -> Result<Option<RawFrame>, ReadError> {
        let offset = src.offset();
        if !src.ensure(RECORD_HEADER)? {
            let have = src.avail() as u64;
            if have > 0 {
                warnings.push(ReadWarning::TruncatedRecord {
                    offset,
                    have,
                    need: RECORD_HEADER as u64,
                });
            }
            return Ok(None);
        }
        let h = src.peek(RECORD_HEADER);
        let be = self.be;
        let sec = rd32(h, 0, be);
        let frac = rd32(h, 4, be);
        let caplen = rd32(h, 8, be);
        let orig_len = rd32(h, 12, be);
        let frac_ns = if self.nanos {
            if frac >= 1_000_000_000 {
                return Err(ReadError::new(offset, ReadErrorKind::BadTimestamp { frac }));
            }
            i64::from(frac)
        } else {
            if frac >= 1_000_000 {
                return Err(ReadError::new(offset, ReadErrorKind::BadTimestamp { frac }));
            }
            i64::from(frac) * 1_000
        };
        if caplen > self.limit {
            return Err(ReadError::new(
                offset,
                ReadErrorKind::BogusCaplen {
                    caplen,
                    limit: self.limit,
                },
            ));
        }
        // caplen <= MAX_RECORD, so this cannot overflow.
        let need = RECORD_HEADER + caplen as usize;
        if !src.ensure(need)? {
            warnings.push(ReadWarning::TruncatedRecord {
                offset,
                have: src.avail() as u64,
                need: need as u64,
            });
            return Ok(None);
        }
        let start = src.pos() + RECORD_HEADER;
        src.consume(need);
        Ok(Some(RawFrame {
            start,
            len: caplen as usize,
            // u32 seconds * 10^9 + fraction stays below 2^63.
            ts_ns: i64::from(sec) * 1_000_000_000 + frac_ns,
            linktype: self.linktype,
            interface: 0,
            orig_len: orig_len.max(caplen),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{read_all, PcapB};
    use super::super::{Format, ReadErrorKind, ReadWarning};

    fn two_records(be: bool, nanos: bool) -> Vec<u8> {
        let frac = if nanos { 123_456_789 } else { 123_456 };
        PcapB::new(be, nanos, 65535, 1)
            .rec(1_700_000_000, frac, &[1, 2, 3, 4, 5], 5)
            .rec(1_700_000_001, 0, &[9; 60], 1514)
            .build()
    }

    #[test]
    fn both_byte_orders_micro_and_nano() {
        for be in [false, true] {
            for nanos in [false, true] {
                let bytes = two_records(be, nanos);
                for cap in [16, 64, super::super::DEFAULT_BUF] {
                    let got = read_all(&bytes, cap).expect("open");
                    assert_eq!(
                        got.format,
                        Format::Pcap {
                            nanos,
                            big_endian: be
                        }
                    );
                    assert!(got.err.is_none(), "{:?}", got.err);
                    assert!(got.warnings.is_empty());
                    assert_eq!(got.frames.len(), 2);
                    let f0 = &got.frames[0];
                    let want_ns = if nanos { 123_456_789 } else { 123_456_000 };
                    assert_eq!(f0.ts_ns, 1_700_000_000 * 1_000_000_000 + want_ns);
                    assert_eq!(f0.data, vec![1, 2, 3, 4, 5]);
                    assert_eq!(f0.orig_len, 5);
                    assert_eq!(f0.linktype, 1);
                    assert_eq!(f0.interface, 0);
                    let f1 = &got.frames[1];
                    assert_eq!(f1.ts_ns, 1_700_000_001 * 1_000_000_000);
                    assert_eq!(f1.data.len(), 60);
                    assert_eq!(f1.orig_len, 1514);
                    let st = &got.stats;
                    assert_eq!(st.frames, 2);
                    assert_eq!(st.captured_bytes, 65);
                    assert_eq!(st.wire_bytes, 1519);
                    assert_eq!(st.cut_frames, 1);
                    assert_eq!(st.stream_bytes, bytes.len() as u64);
                    assert_eq!(st.linktypes.get(&1), Some(&2));
                }
            }
        }
    }

    #[test]
    fn format_names() {
        assert_eq!(
            Format::Pcap {
                nanos: false,
                big_endian: true
            }
            .name(),
            "pcap"
        );
        assert_eq!(
            Format::Pcap {
                nanos: true,
                big_endian: false
            }
            .name(),
            "pcap-ns"
        );
        assert_eq!(Format::PcapNg.name(), "pcapng");
    }

    #[test]
    fn linktype_uses_low_28_bits() {
        let bytes = PcapB::new(false, false, 65535, 0x1000_0000 | 276)
            .rec(1, 0, &[0; 4], 4)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames[0].linktype, 276);
    }

    #[test]
    fn caplen_above_orig_len_clamps_orig_len() {
        let bytes = PcapB::new(true, false, 65535, 101)
            .rec(1, 0, &[7; 10], 4)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames[0].orig_len, 10);
        assert_eq!(got.stats.cut_frames, 0);
    }

    #[test]
    fn truncated_last_record_keeps_earlier_frames() {
        let bytes = two_records(false, false);
        let second = 24 + 16 + 5;
        // Cut inside the body of the second record, then inside its header.
        for (cut, have, need) in [(bytes.len() - 1, 75, 76), (second + 3, 3, 16)] {
            let got = read_all(&bytes[..cut], 32).expect("open");
            assert!(got.err.is_none());
            assert_eq!(got.frames.len(), 1);
            assert_eq!(
                got.warnings,
                vec![ReadWarning::TruncatedRecord {
                    offset: second as u64,
                    have,
                    need
                }]
            );
            assert_eq!(
                got.warnings[0].to_string(),
                format!(
                    "byte offset {second}: last record truncated (have {have} of {need} bytes)"
                )
            );
            assert_eq!(got.stats.stream_bytes, cut as u64);
        }
    }

    #[test]
    fn bogus_caplen_after_two_good_records() {
        let mut bytes = two_records(true, false);
        let bad_at = bytes.len() as u64;
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&300_000u32.to_be_bytes());
        bytes.extend_from_slice(&300_000u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 100]);
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames.len(), 2);
        let err = got.err.expect("error");
        assert_eq!(err.offset, bad_at);
        assert!(matches!(
            err.kind,
            ReadErrorKind::BogusCaplen {
                caplen: 300_000,
                limit: 262_144
            }
        ));
        assert_eq!(
            err.to_string(),
            format!("byte offset {bad_at}: bogus captured length 300000 (limit 262144)")
        );
        assert!(got.after_err_none);
    }

    #[test]
    fn snaplen_raises_caplen_limit() {
        let bytes = PcapB::new(false, false, 400_000, 1)
            .rec(1, 0, &vec![0; 300_000], 300_000)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert!(got.err.is_none());
        assert_eq!(got.frames[0].data.len(), 300_000);
    }

    #[test]
    fn garbage_after_valid_packets() {
        let mut bytes = two_records(false, false);
        let bad_at = bytes.len() as u64;
        bytes.extend_from_slice(b"this is not a pcap record at all, just text");
        let got = read_all(&bytes, 4096).expect("open");
        assert_eq!(got.frames.len(), 2);
        let err = got.err.expect("error");
        assert_eq!(err.offset, bad_at);
        // "s is" little-endian as the fraction.
        assert!(
            matches!(err.kind, ReadErrorKind::BadTimestamp { .. }),
            "{err}"
        );

        let mut bytes = two_records(true, true);
        let bad_at = bytes.len() as u64;
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&1_000_000_000u32.to_be_bytes());
        bytes.extend_from_slice(&4u32.to_be_bytes());
        bytes.extend_from_slice(&4u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let got = read_all(&bytes, 4096).expect("open");
        assert_eq!(got.frames.len(), 2);
        let err = got.err.expect("error");
        assert_eq!(err.offset, bad_at);
        assert!(matches!(
            err.kind,
            ReadErrorKind::BadTimestamp {
                frac: 1_000_000_000
            }
        ));
    }

    #[test]
    fn short_header() {
        let bytes = two_records(false, false);
        for cut in [0, 1, 3, 4, 10, 23] {
            let err = read_all(&bytes[..cut], 64).expect_err("error");
            assert_eq!(err.offset, 0);
            assert!(
                matches!(err.kind, ReadErrorKind::ShortHeader),
                "{cut}: {err}"
            );
        }
        // Exactly the header: a valid, empty capture.
        let got = read_all(&bytes[..24], 64).expect("open");
        assert!(got.frames.is_empty() && got.err.is_none() && got.warnings.is_empty());
    }

    #[test]
    fn records_larger_than_buffer() {
        let mut b = PcapB::new(false, true, 65535, 1);
        for i in 0..50u32 {
            let len = (i * 37 % 300) as usize;
            let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            b = b.rec(i, i, &data, len as u32);
        }
        let bytes = b.build();
        let got = read_all(&bytes, 16).expect("open");
        assert!(got.err.is_none() && got.warnings.is_empty());
        assert_eq!(got.frames.len(), 50);
        for (i, f) in got.frames.iter().enumerate() {
            let len = i * 37 % 300;
            assert_eq!(f.data.len(), len);
            assert!(f.data.iter().enumerate().all(|(j, &x)| x == (i + j) as u8));
            assert_eq!(f.ts_ns, i as i64 * 1_000_000_000 + i as i64);
        }
        assert_eq!(got.stats.stream_bytes, bytes.len() as u64);
    }
}

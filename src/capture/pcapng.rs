//! pcapng format.
//!
//! On-disk layout. Every block is framed the same way, in the byte order of its section:
//!
//! ```text
//! block:  u32 block_type, u32 total_length, body..., u32 total_length (repeated)
//!         total_length counts the 12 framing bytes and is a multiple of 4.
//! options (at the end of many bodies): u16 code, u16 length, value padded to 4 bytes;
//!         code 0 (opt_endofopt) ends the list.
//!
//! Section Header Block, type 0x0a0d0d0a (the same in both byte orders):
//!   8 u32 byte_order_magic 0x1a2b3c4d (read as 0x4d3c2b1a: the section is swapped)
//!  12 u16 major (1)  14 u16 minor  16 i64 section_length (-1: unknown)  24 options
//! Interface Description Block, type 1 (interface ids count from 0 in each section):
//!   8 u16 linktype  10 u16 reserved  12 u32 snaplen  16 options:
//!     if_tsresol (9, 1 byte): high bit clear: 10^-n s units, set: 2^-n s units; default 10^-6
//!     if_tsoffset (14, 8 bytes): seconds to add to every timestamp
//! Packet Block (obsolete), type 2:
//!   8 u16 interface  10 u16 drops  12 u32 ts_high  16 u32 ts_low  20 u32 caplen
//!  24 u32 orig_len  28 data (padded to 4), options
//! Simple Packet Block, type 3 (interface 0, no timestamp):
//!   8 u32 orig_len  12 data (padded to 4); caplen = min(orig_len, room, snaplen)
//! Interface Statistics Block, type 5:
//!   8 u32 interface  12 u32 ts_high  16 u32 ts_low  20 options (isb_ifdrop: code 5, u64)
//! Enhanced Packet Block, type 6:
//!   8 u32 interface  12 u32 ts_high  16 u32 ts_low  20 u32 caplen  24 u32 orig_len
//!  28 data (padded to 4), options
//! ```
//!
//! Timestamps are 64-bit counts of interface time units since the epoch (high word first).

use super::source::Source;
use super::{
    rd16, rd32, rd64, RawFrame, ReadError, ReadErrorKind, ReadWarning, ReaderStats, MAX_RECORD,
};

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const ISB: u32 = 5;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_ISB_IFDROP: u16 = 5;

/// The smallest valid total length of a block of each type.
fn min_block_len(block_type: u32) -> u32 {
    match block_type {
        SHB => 28,
        IDB => 20,
        PB | EPB => 32,
        SPB => 16,
        ISB => 24,
        _ => 12,
    }
}

/// Timestamp resolution of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsRes {
    /// Units of 10^-n seconds.
    Pow10(u8),
    /// Units of 2^-n seconds.
    Pow2(u8),
}

#[derive(Debug, Clone)]
struct Iface {
    linktype: u32,
    snaplen: u32,
    res: TsRes,
    offset_s: i64,
}

impl Iface {
    /// Convert a timestamp in interface units to nanoseconds since the epoch, saturating.
    fn ts_ns(&self, high: u32, low: u32) -> i64 {
        let units = u128::from((u64::from(high) << 32) | u64::from(low));
        let ns: u128 = match self.res {
            TsRes::Pow10(6) => units * 1_000,
            TsRes::Pow10(e) if e <= 9 => units * 10u128.pow(u32::from(9 - e)),
            TsRes::Pow10(e) if e <= 47 => units / 10u128.pow(u32::from(e - 9)),
            TsRes::Pow10(_) => 0,
            // units < 2^64, so units * 10^9 < 2^94; the shift is at most 127.
            TsRes::Pow2(p) => (units * 1_000_000_000) >> u32::from(p.min(127)),
        };
        let ns = i128::try_from(ns).unwrap_or(i128::MAX);
        let total = ns.saturating_add(i128::from(self.offset_s) * 1_000_000_000);
        // Never i64::MIN: the flow table stores "no time" as that value (`flow::OptNs`).
        i64::try_from(total.clamp(i128::from(i64::MIN) + 1, i128::from(i64::MAX))).unwrap_or(0)
    }
}

/// Walk an options area, calling `f(code, value)` for each option before opt_endofopt.
fn for_each_option(
    opts: &[u8],
    be: bool,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), ReadErrorKind> {
    let mut rest = opts;
    while rest.len() >= 4 {
        let code = rd16(rest, 0, be);
        let len = usize::from(rd16(rest, 2, be));
        if code == 0 {
            break;
        }
        let value = rest
            .get(4..4 + len)
            .ok_or(ReadErrorKind::Malformed("pcapng option overruns its block"))?;
        f(code, value);
        rest = rest.get((4 + len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(())
}

/// What a block turned out to be.
enum Action {
    Frame(RawFrame),
    Continue,
}

/// Parser state for a pcapng stream.
pub(crate) struct NgState {
    /// Byte order of the current section.
    be: bool,
    /// Interfaces of the current section, by id.
    ifaces: Vec<Iface>,
    /// Timestamp of the previous packet, given to Simple Packet Blocks (which have none).
    last_ts: i64,
}

impl NgState {
    /// Check that a whole minimal Section Header Block is present at the start and that its
    /// byte-order magic is valid. The block itself is parsed by `next`.
    pub(crate) fn check_header(src: &mut Source) -> Result<NgState, ReadError> {
        if !src.ensure(min_block_len(SHB) as usize)? {
            return Err(ReadError::new(0, ReadErrorKind::ShortHeader));
        }
        let be = byte_order(rd32(src.peek(12), 8, false)).map_err(|k| ReadError::new(0, k))?;
        Ok(NgState {
            be,
            ifaces: Vec::new(),
            last_ts: 0,
        })
    }

    /// Parse blocks until the next packet. `Ok(None)` at a clean end or (with a warning) inside
    /// a block.
    pub(crate) fn next(
        &mut self,
        src: &mut Source,
        stats: &mut ReaderStats,
        warnings: &mut Vec<ReadWarning>,
    ) -> Result<Option<RawFrame>, ReadError> {
        loop {
            let offset = src.offset();
            let truncated = |src: &Source, need: u64| ReadWarning::TruncatedRecord {
                offset,
                have: src.avail() as u64,
                need,
            };
            if !src.ensure(8)? {
                if src.avail() > 0 {
                    warnings.push(truncated(src, 8));
                }
                return Ok(None);
            }
            if rd32(src.peek(8), 0, false) == SHB {
                if !src.ensure(12)? {
                    warnings.push(truncated(src, 12));
                    return Ok(None);
                }
                self.be = byte_order(rd32(src.peek(12), 8, false))
                    .map_err(|k| ReadError::new(offset, k))?;
            }
            let be = self.be;
            let head = src.peek(8);
            let block_type = rd32(head, 0, be);
            let len = rd32(head, 4, be);
            if len < min_block_len(block_type) || len % 4 != 0 || len > MAX_RECORD {
                return Err(ReadError::new(
                    offset,
                    ReadErrorKind::BogusBlockLength { block_type, len },
                ));
            }
            let ulen = len as usize;
            if !src.ensure(ulen)? {
                warnings.push(truncated(src, u64::from(len)));
                return Ok(None);
            }
            let start = src.pos();
            let action = self
                .block(src.peek(ulen), block_type, start, stats)
                .map_err(|k| ReadError::new(offset, k))?;
            src.consume(ulen);
            match action {
                Action::Frame(f) => return Ok(Some(f)),
                Action::Continue => continue,
            }
        }
    }

    /// Interpret one complete block (`block` holds exactly `total_length` bytes, which were
    /// checked against the type's minimum). `start` is the block's index in the source.
    fn block(
        &mut self,
        block: &[u8],
        block_type: u32,
        start: usize,
        stats: &mut ReaderStats,
    ) -> Result<Action, ReadErrorKind> {
        let be = self.be;
        let len = block.len();
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        let trailer = rd32(block, len.saturating_sub(4), be);
        if trailer != len32 {
            return Err(ReadErrorKind::BlockLengthMismatch {
                len: len32,
                trailer,
            });
        }
        let body_end = len.saturating_sub(4);
        let options = |from: usize| block.get(from..body_end).unwrap_or(&[]);
        match block_type {
            SHB => {
                let (major, minor) = (rd16(block, 12, be), rd16(block, 14, be));
                if major != 1 {
                    return Err(ReadErrorKind::UnsupportedVersion { major, minor });
                }
                self.ifaces.clear();
                Ok(Action::Continue)
            }
            IDB => {
                let mut iface = Iface {
                    linktype: u32::from(rd16(block, 8, be)),
                    snaplen: rd32(block, 12, be),
                    res: TsRes::Pow10(6),
                    offset_s: 0,
                };
                for_each_option(options(16), be, |code, value| match code {
                    OPT_IF_TSRESOL => {
                        if let Some(&v) = value.first() {
                            iface.res = if v & 0x80 == 0 {
                                TsRes::Pow10(v)
                            } else {
                                TsRes::Pow2(v & 0x7f)
                            };
                        }
                    }
                    OPT_IF_TSOFFSET if value.len() == 8 => {
                        iface.offset_s = rd64(value, 0, be) as i64;
                    }
                    _ => {}
                })?;
                self.ifaces.push(iface);
                Ok(Action::Continue)
            }
            EPB | PB => {
                let id = if block_type == EPB {
                    rd32(block, 8, be)
                } else {
                    u32::from(rd16(block, 8, be))
                };
                let iface = self.iface(id)?;
                let caplen = rd32(block, 20, be);
                let orig_len = rd32(block, 24, be);
                let room = len32.saturating_sub(32);
                if caplen > room {
                    return Err(ReadErrorKind::CaplenExceedsBlock { caplen, room });
                }
                let ts_ns = iface.ts_ns(rd32(block, 12, be), rd32(block, 16, be));
                let linktype = iface.linktype;
                self.last_ts = ts_ns;
                Ok(Action::Frame(RawFrame {
                    start: start + 28,
                    len: caplen as usize,
                    ts_ns,
                    linktype,
                    interface: id,
                    orig_len: orig_len.max(caplen),
                }))
            }
            SPB => {
                let iface = self.iface(0)?;
                let orig_len = rd32(block, 8, be);
                let mut caplen = orig_len.min(len32.saturating_sub(16));
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen);
                }
                Ok(Action::Frame(RawFrame {
                    start: start + 12,
                    len: caplen as usize,
                    ts_ns: self.last_ts,
                    linktype: iface.linktype,
                    interface: 0,
                    orig_len,
                }))
            }
            ISB => {
                let mut drops: Option<u64> = None;
                for_each_option(options(20), be, |code, value| {
                    if code == OPT_ISB_IFDROP && value.len() == 8 {
                        let d = rd64(value, 0, be);
                        drops = Some(drops.unwrap_or(0).saturating_add(d));
                    }
                })?;
                if let Some(d) = drops {
                    let total = stats.interface_drops.get_or_insert(0);
                    *total = total.saturating_add(d);
                }
                Ok(Action::Continue)
            }
            _ => {
                stats.skipped_blocks += 1;
                Ok(Action::Continue)
            }
        }
    }

    fn iface(&self, id: u32) -> Result<&Iface, ReadErrorKind> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.ifaces.get(i))
            .ok_or(ReadErrorKind::UnknownInterface(id))
    }
}

/// The section byte order (`true` = big-endian) from the byte-order magic read little-endian.
fn byte_order(magic_le: u32) -> Result<bool, ReadErrorKind> {
    if magic_le == BYTE_ORDER_MAGIC {
        Ok(false)
    } else if magic_le == BYTE_ORDER_MAGIC.swap_bytes() {
        Ok(true)
    } else {
        Err(ReadErrorKind::BadByteOrderMagic(magic_le))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{read_all, NgB};
    use super::super::{Format, ReadErrorKind, ReadWarning};
    use super::{Iface, TsRes};

    const T0: i64 = 1_700_000_000;

    /// Two interfaces (Ethernet at nanosecond resolution, SLL2 at microseconds plus a
    /// 10 s offset), one EPB on each, an SPB, an unknown block, and an ISB with drops.
    fn sample(be: bool) -> Vec<u8> {
        let b = NgB::new(be);
        let off = b.i64_opt(10);
        b.idb(1, 65535, &[(9, &[9]), (2, b"eth0")])
            .idb(276, 128, &[(9, &[6]), (14, &off)])
            .epb(0, T0 as u64 * 1_000_000_000 + 5, &[1, 2, 3], 3)
            .block(0x0bad_0001, &[0xee; 9])
            .epb(1, T0 as u64 * 1_000_000 + 7, &[4; 61], 1000)
            .spb(3, &[7, 8, 9])
            .isb(0, Some(11))
            .isb(1, None)
            .build()
    }

    #[test]
    fn interfaces_resolutions_spb_unknown_and_isb() {
        for be in [false, true] {
            let bytes = sample(be);
            for cap in [16, 64, 200, super::super::DEFAULT_BUF] {
                let got = read_all(&bytes, cap).expect("open");
                assert_eq!(got.format, Format::PcapNg);
                assert!(got.err.is_none(), "{:?}", got.err);
                assert!(got.warnings.is_empty());
                assert_eq!(got.frames.len(), 3);
                let [a, b, c] = [&got.frames[0], &got.frames[1], &got.frames[2]];
                assert_eq!(
                    (a.ts_ns, a.linktype, a.interface),
                    (T0 * 1_000_000_000 + 5, 1, 0)
                );
                assert_eq!((a.data.as_slice(), a.orig_len), (&[1u8, 2, 3][..], 3));
                assert_eq!(
                    (b.ts_ns, b.linktype, b.interface),
                    ((T0 + 10) * 1_000_000_000 + 7_000, 276, 1)
                );
                assert_eq!((b.data.len(), b.orig_len), (61, 1000));
                // SPB: interface 0, the previous packet's timestamp.
                assert_eq!((c.ts_ns, c.linktype, c.interface), (b.ts_ns, 1, 0));
                assert_eq!(c.data, vec![7, 8, 9]);
                let st = &got.stats;
                assert_eq!(st.frames, 3);
                assert_eq!(st.skipped_blocks, 1);
                assert_eq!(st.interface_drops, Some(11));
                assert_eq!(st.linktypes.get(&1), Some(&2));
                assert_eq!(st.linktypes.get(&276), Some(&1));
                assert_eq!(st.cut_frames, 1);
                assert_eq!(st.captured_bytes, 67);
                assert_eq!(st.wire_bytes, 1006);
                assert_eq!(st.stream_bytes, bytes.len() as u64);
            }
        }
    }

    #[test]
    fn no_isb_drops_means_none() {
        let bytes = NgB::new(false)
            .idb(1, 0, &[])
            .epb(0, 1, &[0; 4], 4)
            .isb(0, None)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.stats.interface_drops, None);
        assert_eq!(got.frames[0].ts_ns, 1_000);
    }

    #[test]
    fn power_of_two_resolution() {
        // 2^-10 s units: 1024 units = 1 s, 512 units = 0.5 s.
        let bytes = NgB::new(true)
            .idb(101, 0, &[(9, &[0x80 | 10])])
            .epb(0, 1024 * 3 + 512, &[0x45], 1)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames[0].ts_ns, 3_500_000_000);
        assert_eq!(got.frames[0].linktype, 101);
    }

    #[test]
    fn timestamp_conversion_never_overflows() {
        let mut iface = Iface {
            linktype: 1,
            snaplen: 0,
            res: TsRes::Pow10(0),
            offset_s: i64::MAX,
        };
        assert_eq!(iface.ts_ns(u32::MAX, u32::MAX), i64::MAX);
        iface.offset_s = i64::MIN;
        // One above i64::MIN, which the flow table keeps for "no time".
        assert_eq!(iface.ts_ns(0, 0), i64::MIN + 1);
        iface.offset_s = 0;
        for v in 0..=255u8 {
            iface.res = if v & 0x80 == 0 {
                TsRes::Pow10(v)
            } else {
                TsRes::Pow2(v & 0x7f)
            };
            for (h, l) in [(0, 0), (0, 1), (u32::MAX, u32::MAX), (12345, 678)] {
                let _ = iface.ts_ns(h, l);
            }
        }
        iface.res = TsRes::Pow10(12);
        assert_eq!(iface.ts_ns(0, 5_000_000), 5_000);
        iface.res = TsRes::Pow2(0);
        assert_eq!(iface.ts_ns(0, 2), 2_000_000_000);
        iface.offset_s = -2;
        assert_eq!(iface.ts_ns(0, 1), -1_000_000_000);
    }

    #[test]
    fn two_sections_reset_interfaces_and_switch_byte_order() {
        let bytes = NgB::new(false)
            .idb(1, 0, &[])
            .idb(113, 0, &[])
            .epb(1, 1_000_000, &[1], 1)
            .shb(true)
            .idb(276, 0, &[(9, &[9])])
            .epb(0, 2_000_000_000, &[2], 1)
            .build();
        let got = read_all(&bytes, 32).expect("open");
        assert!(got.err.is_none(), "{:?}", got.err);
        let got: Vec<_> = got
            .frames
            .iter()
            .map(|f| (f.ts_ns, f.linktype, f.interface, f.data[0]))
            .collect();
        assert_eq!(
            got,
            vec![(1_000_000_000, 113, 1, 1), (2_000_000_000, 276, 0, 2)]
        );

        // Interface 1 of the first section does not exist in the second.
        let b = NgB::new(false)
            .idb(1, 0, &[])
            .idb(1, 0, &[])
            .shb(false)
            .idb(1, 0, &[]);
        let bad_at = b.build().len() as u64;
        let bytes = NgB::new(false)
            .idb(1, 0, &[])
            .idb(1, 0, &[])
            .shb(false)
            .idb(1, 0, &[])
            .epb(1, 0, &[], 0)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        let err = got.err.expect("error");
        assert_eq!(err.offset, bad_at);
        assert!(matches!(err.kind, ReadErrorKind::UnknownInterface(1)));
        assert_eq!(
            err.to_string(),
            format!("byte offset {bad_at}: packet refers to unknown interface 1")
        );
    }

    #[test]
    fn obsolete_packet_block() {
        let bytes = NgB::new(true)
            .idb(1, 0, &[(9, &[3])])
            .pb(0, 42, &[5; 7], 70)
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames.len(), 1);
        let f = &got.frames[0];
        assert_eq!((f.ts_ns, f.data.len(), f.orig_len), (42_000_000, 7, 70));
    }

    #[test]
    fn spb_capped_by_snaplen_and_room() {
        let bytes = NgB::new(false)
            .idb(1, 4, &[])
            .spb(100, &[1, 2, 3, 4, 5, 6])
            .build();
        let got = read_all(&bytes, 64).expect("open");
        assert_eq!(got.frames[0].data, vec![1, 2, 3, 4]);
        assert_eq!(got.frames[0].orig_len, 100);
        let bytes = NgB::new(false).idb(1, 0, &[]).spb(100, &[1, 2, 3]).build();
        let got = read_all(&bytes, 64).expect("open");
        // The block body holds 4 bytes (3 + padding); the rest was not captured.
        assert_eq!(got.frames[0].data, vec![1, 2, 3, 0]);
        let bytes = NgB::new(false).spb(3, &[1, 2, 3]).build();
        let got = read_all(&bytes, 64).expect("open");
        assert!(matches!(
            got.err.map(|e| e.kind),
            Some(ReadErrorKind::UnknownInterface(0))
        ));
    }

    /// `bytes` with `v` written at `at`.
    fn poke(bytes: &[u8], at: usize, v: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b[at..at + v.len()].copy_from_slice(v);
        b
    }

    #[test]
    fn bad_block_lengths() {
        let prefix = NgB::new(false).idb(1, 0, &[]).build();
        let at = prefix.len();
        let bytes = NgB::new(false).idb(1, 0, &[]).epb(0, 0, &[1; 8], 8).build();
        // Too small for any block, not a multiple of 4, over the hard limit, too small for an EPB.
        for len in [10u32, 30, u32::MAX - 3, 28] {
            let b = poke(&bytes, at + 4, &len.to_le_bytes());
            let got = read_all(&b, 64).expect("open");
            assert!(got.frames.is_empty());
            let err = got.err.expect("error");
            assert_eq!(err.offset, at as u64);
            assert!(
                matches!(err.kind, ReadErrorKind::BogusBlockLength { block_type: 6, len: l } if l == len),
                "{len}: {err}"
            );
        }
        // Trailer differs.
        let end = bytes.len();
        let b = poke(&bytes, end - 4, &44u32.to_le_bytes());
        let err = read_all(&b, 64).expect("open").err.expect("error");
        assert_eq!(err.offset, at as u64);
        assert!(matches!(
            err.kind,
            ReadErrorKind::BlockLengthMismatch { trailer: 44, .. }
        ));
        // EPB caplen larger than the block.
        let b = poke(&bytes, at + 20, &200u32.to_le_bytes());
        let err = read_all(&b, 64).expect("open").err.expect("error");
        assert_eq!(err.offset, at as u64);
        assert!(matches!(
            err.kind,
            ReadErrorKind::CaplenExceedsBlock { caplen: 200, .. }
        ));
    }

    #[test]
    fn bad_header_fields() {
        let bytes = NgB::new(false).build();
        // Byte-order magic.
        let err = read_all(&poke(&bytes, 8, &[1, 2, 3, 4]), 64).expect_err("error");
        assert_eq!(err.offset, 0);
        assert!(matches!(
            err.kind,
            ReadErrorKind::BadByteOrderMagic(0x0403_0201)
        ));
        // Major version.
        let err = read_all(&poke(&bytes, 12, &[2, 0]), 64)
            .expect("open")
            .err
            .expect("error");
        assert!(matches!(
            err.kind,
            ReadErrorKind::UnsupportedVersion { major: 2, minor: 0 }
        ));
        // Too short for a section header.
        for cut in [4, 12, 27] {
            let err = read_all(&bytes[..cut], 64).expect_err("error");
            assert!(matches!(err.kind, ReadErrorKind::ShortHeader));
        }
        // Option overrunning its block.
        let b = NgB::new(false).idb(1, 0, &[(9, &[6])]).build();
        let at = bytes.len();
        let b = poke(&b, at + 16 + 2, &[200, 0]);
        let err = read_all(&b, 64).expect("open").err.expect("error");
        assert_eq!(err.offset, at as u64);
        assert!(matches!(err.kind, ReadErrorKind::Malformed(_)));
    }

    #[test]
    fn truncated_last_block() {
        let bytes = sample(false);
        let full = read_all(&bytes, 64).expect("open");
        // The last block is an ISB without drops (40 bytes: 12 framing, 12 fixed, 16 options).
        let last_at = bytes.len() - 40;
        for cut in [bytes.len() - 1, last_at + 3, last_at + 8] {
            let got = read_all(&bytes[..cut], 64).expect("open");
            assert!(got.err.is_none());
            assert_eq!(got.frames, full.frames);
            let need = if cut - last_at < 8 { 8 } else { 40 };
            assert_eq!(
                got.warnings,
                vec![ReadWarning::TruncatedRecord {
                    offset: last_at as u64,
                    have: (cut - last_at) as u64,
                    need
                }]
            );
        }
        // Cut before the end of the second EPB: only the first frame is kept.
        let got = read_all(&bytes[..bytes.len() - 150], 64).expect("open");
        assert_eq!(got.frames.len(), 1);
        assert_eq!(got.warnings.len(), 1);
    }

    #[test]
    fn big_blocks_grow_a_tiny_buffer() {
        let mut b = NgB::new(false).idb(1, 0, &[]);
        for i in 0..40u32 {
            let len = (i * 53 % 500) as usize;
            let data: Vec<u8> = (0..len).map(|j| (i as usize * 3 + j) as u8).collect();
            b = b.epb(0, u64::from(i), &data, len as u32);
        }
        let bytes = b.build();
        let got = read_all(&bytes, 16).expect("open");
        assert!(got.err.is_none() && got.warnings.is_empty());
        assert_eq!(got.frames.len(), 40);
        for (i, f) in got.frames.iter().enumerate() {
            let len = i * 53 % 500;
            assert_eq!(f.data.len(), len);
            assert!(f
                .data
                .iter()
                .enumerate()
                .all(|(j, &x)| x == (i * 3 + j) as u8));
            assert_eq!(f.ts_ns, i as i64 * 1_000);
        }
    }

    #[test]
    fn block_over_hard_limit_is_bogus() {
        let bytes = NgB::new(false).idb(1, 0, &[]).build();
        let at = bytes.len() as u64;
        let mut b = bytes;
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&(super::MAX_RECORD + 4).to_le_bytes());
        b.extend_from_slice(&[0; 64]);
        let err = read_all(&b, 64).expect("open").err.expect("error");
        assert_eq!(err.offset, at);
        assert!(matches!(err.kind, ReadErrorKind::BogusBlockLength { .. }));
    }
}

//! Bytes on the wire: bounds-checked, zero-copy reads over `&[u8]`, shared by every reader of
//! packet headers and protocol messages (`decode`, and the TLS, DNS and QUIC extractors of
//! `proto`).
//!
//! - Free functions read a big-endian integer at an offset: [`be16`], [`be24`], [`be32`],
//!   [`be64`], and [`array`] for a fixed run of bytes (an address). The offset is a `usize`
//!   or, for a header read at fixed offsets, a named [`Field`] in the style of smoltcp's `wire`
//!   module: each header gets a module of consts (`ipv4_field::TOTAL_LEN: Field = 2..4`, single
//!   bytes as plain offsets), kept beside the code that parses that header.
//! - [`Cursor`] reads a message front to back: integers, QUIC variable-length integers, byte
//!   runs, vectors with a 1-, 2- or 3-byte length prefix, skips.
//! - [`Declared`] reads a structure that declares its own length but of which a capture may hold
//!   only a prefix: a read past what was captured is [`Stop::Cut`], one past what the structure
//!   (or a length-prefixed block in it, see [`Declared::limit`]) declares is [`Stop::Bad`].
//!
//! Every read returns `Option` or `Result` and never panics, whatever the bytes, offsets and
//! lengths (only a [`Field`] read with the wrong width, a bug in the code, fails a debug
//! assertion); nothing allocates. The reads are small and `#[inline]`: they are on the
//! per-packet path.

use std::ops::Range;

/// The bytes of a multi-byte header field, as an offset range from the start of its header.
pub type Field = Range<usize>;

/// Where a read starts: a byte offset, or a [`Field`] (its start; in debug builds its length
/// is checked against the size of the read).
pub trait At {
    /// The offset of the first byte of a read of `len` bytes.
    fn at(self, len: usize) -> usize;
}

impl At for usize {
    #[inline(always)]
    fn at(self, _len: usize) -> usize {
        self
    }
}

impl At for Field {
    #[inline(always)]
    fn at(self, len: usize) -> usize {
        debug_assert_eq!(self.len(), len, "a field read with the wrong width");
        self.start
    }
}

/// The `N` bytes of `b` at `at`, or `None` when `b` ends before them.
#[inline]
pub fn array<const N: usize>(b: &[u8], at: impl At) -> Option<[u8; N]> {
    let at = at.at(N);
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The big-endian `u16` of `b` at `at`.
#[inline]
pub fn be16(b: &[u8], at: impl At) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

/// The big-endian 24-bit integer of `b` at `at` (TLS handshake and vector lengths).
#[inline]
pub fn be24(b: &[u8], at: impl At) -> Option<u32> {
    array(b, at).map(|[x, y, z]| u32::from_be_bytes([0, x, y, z]))
}

/// The big-endian `u32` of `b` at `at`.
#[inline]
pub fn be32(b: &[u8], at: impl At) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

/// The big-endian `u64` of `b` at `at`.
#[inline]
pub fn be64(b: &[u8], at: impl At) -> Option<u64> {
    array(b, at).map(u64::from_be_bytes)
}

// ---------------------------------------------------------------------------------------------
// Cursor

/// A reader over `&[u8]` that moves forward as it reads. A read that does not fit returns
/// `None` and leaves the position where it was.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// How many bytes were read (or skipped) so far: the offset of the next read in the buffer.
    #[inline]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    #[inline]
    pub const fn remaining(&self) -> usize {
        // `pos` never passes the end.
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether every byte was read.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes left, without moving.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// The next `n` bytes, or all that are left when fewer are (to read what a capture holds
    /// of a cut structure).
    #[inline]
    pub fn bytes_upto(&mut self, n: usize) -> &'a [u8] {
        let rest = self.rest();
        let s = rest.get(..n).unwrap_or(rest);
        self.pos += s.len();
        s
    }

    /// Moves past `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// The next `N` bytes, as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let a = array(self.buf, self.pos)?;
        self.pos += N;
        Some(a)
    }

    /// The next byte.
    #[inline]
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    /// The next big-endian `u16`.
    #[inline]
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// The next big-endian 24-bit integer.
    #[inline]
    pub fn u24(&mut self) -> Option<u32> {
        self.array()
            .map(|[x, y, z]| u32::from_be_bytes([0, x, y, z]))
    }

    /// The next big-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// The next big-endian `u64`.
    #[inline]
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A QUIC variable-length integer (RFC 9000 section 16): the top two bits of the first
    /// byte give the length (1, 2, 4 or 8 bytes), the other 62 bits the value.
    #[inline]
    pub fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.pos)?;
        let n = 1usize << (first >> 6);
        let s = self.bytes(n)?;
        Some(
            s.iter()
                .skip(1)
                .fold(u64::from(first & 0x3f), |v, &b| v << 8 | u64::from(b)),
        )
    }

    /// A varint used as a length within the buffer.
    #[inline]
    pub fn varint_len(&mut self) -> Option<usize> {
        let save = self.pos;
        let n = usize::try_from(self.varint()?).ok();
        if n.is_none() {
            self.pos = save;
        }
        n
    }

    /// A vector with a 1-byte length prefix: its bytes. `None` (not moving) when the prefix or
    /// the bytes it counts are not all there.
    #[inline]
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        self.prefixed(|c| c.u8().map(usize::from))
    }

    /// A vector with a 2-byte length prefix (see [`Cursor::vec8`]).
    #[inline]
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        self.prefixed(|c| c.u16().map(usize::from))
    }

    /// A vector with a 3-byte length prefix (see [`Cursor::vec8`]).
    #[inline]
    pub fn vec24(&mut self) -> Option<&'a [u8]> {
        self.prefixed(|c| c.u24().and_then(|n| usize::try_from(n).ok()))
    }

    /// The bytes counted by the length that `len` reads, moving past both only when all are
    /// there.
    #[inline(always)]
    fn prefixed(&mut self, len: impl FnOnce(&mut Self) -> Option<usize>) -> Option<&'a [u8]> {
        let mut c = *self;
        let n = len(&mut c)?;
        let v = c.bytes(n)?;
        *self = c;
        Some(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Declared

/// Why a [`Declared`] read stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The captured bytes end before the read does (the structure may go on; the capture
    /// does not).
    Cut,
    /// The read runs past the declared end: a length contradicts its parent, so this is not
    /// the structure expected.
    Bad,
}

/// A reader over a structure declared `declared` bytes long of which the bytes hold perhaps
/// only a prefix (a capture's snap length, a flight cut by the first-flight cap). Reads within
/// the declared end but past the captured bytes are [`Stop::Cut`]; reads past the declared end
/// are [`Stop::Bad`].
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    /// The captured bytes, never longer than the declared end.
    cur: Cursor<'a>,
    /// The declared end (from the start of the structure).
    end: usize,
}

impl<'a> Declared<'a> {
    /// A reader at the start of a structure declared `declared` bytes long, of which `captured`
    /// was captured (bytes past the declared end are not part of it).
    #[inline]
    pub fn new(captured: &'a [u8], declared: usize) -> Self {
        Declared {
            cur: Cursor::new(captured.get(..declared).unwrap_or(captured)),
            end: declared,
        }
    }

    /// The offset of the next read from the start of the structure.
    #[inline]
    pub const fn position(&self) -> usize {
        self.cur.pos
    }

    /// Whether the declared end was reached.
    #[inline]
    pub const fn at_end(&self) -> bool {
        self.cur.pos >= self.end
    }

    /// A read of `n` bytes stays within the declared end.
    #[inline]
    fn fits(&self, n: usize) -> Result<(), Stop> {
        match self.cur.pos.checked_add(n) {
            Some(stop) if stop <= self.end => Ok(()),
            _ => Err(Stop::Bad),
        }
    }

    /// The next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        self.fits(n)?;
        self.cur.bytes(n).ok_or(Stop::Cut)
    }

    /// The next byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, Stop> {
        self.fits(1)?;
        self.cur.u8().ok_or(Stop::Cut)
    }

    /// The next big-endian `u16`.
    #[inline]
    pub fn u16(&mut self) -> Result<u16, Stop> {
        self.fits(2)?;
        self.cur.u16().ok_or(Stop::Cut)
    }

    /// The next big-endian 24-bit integer.
    #[inline]
    pub fn u24(&mut self) -> Result<u32, Stop> {
        self.fits(3)?;
        self.cur.u24().ok_or(Stop::Cut)
    }

    /// Narrows the declared end to the next `n` bytes (a length-prefixed block): [`Stop::Bad`]
    /// when they run past the current one.
    #[inline]
    pub fn limit(&mut self, n: usize) -> Result<(), Stop> {
        self.fits(n)?;
        self.end = self.cur.pos + n;
        Ok(())
    }

    /// The captured bytes from offset `from` to the current position.
    #[inline]
    pub fn since(&self, from: usize) -> &'a [u8] {
        self.cur.buf.get(from..self.cur.pos).unwrap_or_default()
    }

    /// The captured bytes from the current position to the declared end.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        let rest = self.cur.rest();
        rest.get(..self.end.saturating_sub(self.cur.pos))
            .unwrap_or(rest)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    mod field {
        use super::Field;
        pub const LEN: Field = 2..4;
    }

    #[test]
    fn free_reads() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(be16(&b, field::LEN), Some(0x0304));
        assert_eq!(be24(&b, 6), Some(0x070809));
        assert_eq!(be24(&b, 7), None);
        assert_eq!(be32(&b, 5), Some(0x06070809));
        assert_eq!(be64(&b, 1), Some(0x0203040506070809));
        assert_eq!(be64(&b, 2), None);
        assert_eq!(array::<2>(&b, 8), None);
        assert_eq!(be16(&b, usize::MAX), None);
        assert_eq!(be16(&b, usize::MAX - 1), None);
    }

    #[test]
    #[should_panic(expected = "wrong width")]
    #[cfg(debug_assertions)]
    fn a_field_of_the_wrong_width_is_caught_in_debug() {
        let _ = be32(&[0; 8], field::LEN);
    }

    #[test]
    fn cursor_reads_in_order() {
        let b = [
            0x01, 0x00, 0x02, 0xaa, 0xbb, 0x00, 0x00, 0x01, 0x40, 0x25, 0xff,
        ];
        let mut c = Cursor::new(&b);
        assert_eq!(c.u8(), Some(1));
        assert_eq!(c.vec16(), Some(&[0xaa, 0xbb][..]));
        assert_eq!(c.position(), 5);
        assert_eq!(c.u24(), Some(1));
        assert_eq!(c.varint(), Some(0x25));
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.u16(), None);
        assert_eq!(c.position(), 10, "a failed read does not move");
        assert_eq!(c.bytes_upto(5), &[0xff]);
        assert!(c.is_empty());
        assert_eq!(c.u8(), None);
        assert_eq!(c.rest(), &[] as &[u8]);
    }

    #[test]
    fn vectors_do_not_move_when_cut() {
        let b = [3, 1, 2];
        let mut c = Cursor::new(&b);
        assert_eq!(c.vec8(), None);
        assert_eq!(c.position(), 0);
        assert_eq!(c.vec24(), None);
        assert_eq!(Cursor::new(&[0, 0, 2, 7, 8]).vec24(), Some(&[7, 8][..]));
        assert_eq!(Cursor::new(&[0]).vec8(), Some(&[][..]));
    }

    #[test]
    fn varints_of_rfc9000() {
        // RFC 9000 appendix A.1's examples.
        for (bytes, v) in [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c][..],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d][..], 494_878_333),
            (&[0x7b, 0xbd][..], 15_293),
            (&[0x25][..], 37),
            (&[0x40, 0x25][..], 37),
        ] {
            let mut c = Cursor::new(bytes);
            assert_eq!(c.varint(), Some(v));
            assert!(c.is_empty());
        }
        let mut c = Cursor::new(&[0x9d, 0x7f, 0x3e]);
        assert_eq!(c.varint(), None);
        assert_eq!(c.position(), 0);
    }

    #[test]
    fn declared_tells_cut_from_bad() {
        // Declared 6 bytes, 4 captured (and a byte past the declared end that is not ours).
        let mut d = Declared::new(&[0, 2, 9, 9], 6);
        assert_eq!(d.u16(), Ok(2));
        assert_eq!(d.limit(3), Ok(()));
        assert_eq!(d.rest(), &[9, 9]);
        assert_eq!(d.u24(), Err(Stop::Cut));
        assert_eq!(d.take(4), Err(Stop::Bad));
        assert_eq!(d.take(2), Ok(&[9, 9][..]));
        assert_eq!(d.since(0), &[0, 2, 9, 9]);
        assert_eq!(d.u8(), Err(Stop::Cut));
        assert!(!d.at_end());
        assert_eq!(d.limit(2), Err(Stop::Bad));
        let mut d = Declared::new(&[1, 2, 3, 4], 2);
        assert_eq!(d.take(2), Ok(&[1, 2][..]));
        assert!(d.at_end());
        assert_eq!(d.u8(), Err(Stop::Bad));
        assert_eq!(d.rest(), &[] as &[u8]);
    }

    /// One read of each kind, chosen by `op`.
    fn read(c: &mut Cursor<'_>, op: u8, n: usize) -> Option<usize> {
        Some(match op % 12 {
            0 => usize::from(c.u8()?),
            1 => usize::from(c.u16()?),
            2 => c.u24()? as usize,
            3 => c.u32()? as usize,
            4 => c.u64()? as usize,
            5 => c.varint_len()?,
            6 => c.bytes(n)?.len(),
            7 => c.bytes_upto(n).len(),
            8 => c.vec8()?.len(),
            9 => c.vec16()?.len(),
            10 => c.vec24()?.len(),
            _ => c.skip(n).map(|()| 0)?,
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_never_passes_the_end(
            b in proptest::collection::vec(any::<u8>(), 0..64),
            ops in proptest::collection::vec((any::<u8>(), any::<usize>()), 0..32),
            declared in any::<usize>(),
        ) {
            let mut c = Cursor::new(&b);
            let mut d = Declared::new(&b, declared % 80);
            for &(op, n) in &ops {
                let before = c;
                let n = if op & 0x80 != 0 { n } else { n % 70 };
                if read(&mut c, op, n).is_none() {
                    prop_assert_eq!(c.position(), before.position());
                }
                prop_assert!(c.position() <= b.len());
                prop_assert_eq!(c.position() + c.remaining(), b.len());
                prop_assert_eq!(c.rest(), &b[c.position()..]);
                let _ = match op % 5 {
                    0 => d.u8().map(usize::from),
                    1 => d.u16().map(usize::from),
                    2 => d.u24().map(|v| v as usize),
                    3 => d.take(n).map(<[u8]>::len),
                    _ => d.limit(n).map(|()| 0),
                };
                prop_assert!(d.position() <= b.len().min(declared % 80));
                prop_assert!(d.rest().len() + d.position() <= b.len());
                let _ = (d.since(n), d.at_end());
            }
            for at in [0, 1, b.len(), b.len().saturating_sub(3), usize::MAX - 3] {
                let _ = (be16(&b, at), be24(&b, at), be32(&b, at), be64(&b, at));
            }
        }

        #[test]
        fn reads_agree_with_from_be_bytes(
            b in proptest::collection::vec(any::<u8>(), 8..40),
            at in 0usize..32,
        ) {
            let at = at.min(b.len() - 8);
            let s = &b[at..];
            prop_assert_eq!(be16(&b, at), Some(u16::from_be_bytes([s[0], s[1]])));
            prop_assert_eq!(be24(&b, at), Some(u32::from_be_bytes([0, s[0], s[1], s[2]])));
            prop_assert_eq!(be32(&b, at), Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]])));
            prop_assert_eq!(be64(&b, at), Some(u64::from_be_bytes(s[..8].try_into().unwrap())));
            let mut c = Cursor::new(&b);
            c.skip(at).unwrap();
            prop_assert_eq!(c.u16(), be16(&b, at));
            prop_assert_eq!(c.u24(), be24(&b, at + 2));
            prop_assert_eq!(c.u8(), Some(b[at + 5]));
            let mut c = Cursor::new(&b[at..]);
            prop_assert_eq!(c.u32(), be32(&b, at));
            let mut c = Cursor::new(&b[at..]);
            prop_assert_eq!(c.u64(), be64(&b, at));
            let mut d = Declared::new(&b, b.len());
            d.take(at).unwrap();
            prop_assert_eq!(d.u16().ok(), be16(&b, at));
            prop_assert_eq!(d.u24().ok(), be24(&b, at + 2));
        }

        #[test]
        fn varints_round_trip(v in 0u64..(1 << 62), tail in any::<u8>()) {
            let bytes: Vec<u8> = match v {
                0..=0x3f => vec![v as u8],
                0x40..=0x3fff => (v as u16 | 0x4000).to_be_bytes().to_vec(),
                0x4000..=0x3fff_ffff => (v as u32 | 0x8000_0000).to_be_bytes().to_vec(),
                _ => (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec(),
            };
            let mut with_tail = bytes.clone();
            with_tail.push(tail);
            let mut c = Cursor::new(&with_tail);
            prop_assert_eq!(c.varint(), Some(v));
            prop_assert_eq!(c.position(), bytes.len());
        }
    }
}

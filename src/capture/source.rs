//! The byte source under the parsers: either one growable buffer refilled from a stream, or a
//! memory map of the whole file. Both expose the same window `[pos, end)` of unparsed bytes and
//! keep the absolute stream offset of `pos`, so parsers can name exact offsets in errors.

use std::io::{ErrorKind, Read};

use super::{ReadError, ReadErrorKind};

enum Backing {
    /// Streaming: `buf[pos..end]` holds bytes read but not yet consumed.
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        eof: bool,
    },
    /// The whole (uncompressed) file; `end` is its length. Shared, so that worker threads can
    /// read frames straight from it (see [`Source::map`]).
    Mapped(std::sync::Arc<memmap2::Mmap>),
}

/// A window over the capture byte stream.
pub(crate) struct Source {
    backing: Backing,
    /// Index of the first unconsumed byte in the backing bytes.
    pos: usize,
    /// Index one past the last valid byte in the backing bytes.
    end: usize,
    /// Absolute stream offset of backing index 0.
    base: u64,
    /// The (compressed) stream ended before its own end marker, at this decompressed offset:
    /// a capture that was stopped while being compressed.
    pub(crate) cut_short: Option<u64>,
}

impl Source {
    /// A streaming source with an initial buffer of `capacity` bytes (at least 16).
    pub(crate) fn stream(reader: Box<dyn Read + Send>, capacity: usize) -> Source {
        Source {
            backing: Backing::Stream {
                reader,
                buf: vec![0u8; capacity.max(16)],
                eof: false,
            },
            pos: 0,
            end: 0,
            base: 0,
            cut_short: None,
        }
    }

    /// A source over a memory-mapped file.
    pub(crate) fn mapped(map: memmap2::Mmap) -> Source {
        let end = map.len();
        Source {
            backing: Backing::Mapped(std::sync::Arc::new(map)),
            pos: 0,
            end,
            base: 0,
            cut_short: None,
        }
    }

    /// The memory map under a mapped source: frames are slices of it.
    pub(crate) fn map(&self) -> Option<std::sync::Arc<memmap2::Mmap>> {
        match &self.backing {
            Backing::Mapped(m) => Some(m.clone()),
            Backing::Stream { .. } => None,
        }
    }

    /// Absolute stream offset of the parse position.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Absolute stream offset of the end of the bytes read so far.
    #[inline]
    pub(crate) fn reached(&self) -> u64 {
        self.base + self.end as u64
    }

    /// Number of unconsumed bytes available without reading.
    #[inline]
    pub(crate) fn avail(&self) -> usize {
        self.end - self.pos
    }

    /// Index of the parse position in the backing bytes (valid until the next `ensure`).
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Stream { buf, .. } => buf.get(..self.end).unwrap_or(&[]),
            Backing::Mapped(map) => map.get(..self.end).unwrap_or(&[]),
        }
    }

    /// The next `n` unconsumed bytes (shorter if fewer are available; call `ensure` first).
    #[inline]
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        let b = self.bytes();
        let stop = self.pos.saturating_add(n).min(b.len());
        b.get(self.pos..stop).unwrap_or(&[])
    }

    /// Bytes at backing indices `[start, start + len)` (empty if out of range).
    #[inline]
    pub(crate) fn slice(&self, start: usize, len: usize) -> &[u8] {
        match start.checked_add(len) {
            Some(stop) => self.bytes().get(start..stop).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Mark `n` bytes (at most the available ones) as consumed.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n.min(self.avail());
    }

    /// Make at least `n` unconsumed bytes available. Returns `Ok(false)` when the stream ends
    /// first (the bytes that were available stay available). When the record does not fit
    /// between the parse position and the end of the buffer, the unconsumed tail is moved to
    /// the front; when it does not fit in the whole buffer, the buffer grows, but only as data
    /// actually arrives (so a bogus length in a short stream does not allocate much).
    #[inline]
    pub(crate) fn ensure(&mut self, n: usize) -> Result<bool, ReadError> {
        if self.end - self.pos >= n {
            return Ok(true);
        }
        self.fill(n)
    }

    #[cold]
    fn fill(&mut self, n: usize) -> Result<bool, ReadError> {
        let (reader, buf, eof) = match &mut self.backing {
            Backing::Mapped(_) => return Ok(false),
            Backing::Stream { reader, buf, eof } => (reader, buf, eof),
        };
        if *eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos.saturating_add(n) > buf.len() {
            buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end - self.pos < n {
            if self.end == buf.len() {
                // Full buffer and still short: grow (here pos == 0, since the tail was
                // moved to the front whenever the record could not fit after pos).
                let want = self.pos.saturating_add(n);
                let doubled = buf.len().saturating_mul(2).max(64);
                buf.resize(want.min(doubled).max(buf.len() + 1), 0);
            }
            let dst = match buf.get_mut(self.end..) {
                Some(d) => d,
                None => return Ok(false),
            };
            match reader.read(dst) {
                Ok(0) => {
                    *eof = true;
                    return Ok(false);
                }
                Ok(k) => self.end += k.min(dst.len()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    // The decoder ran out of input mid-stream: treat it like a plain file
                    // that stops, so a cut record becomes a warning, not an error.
                    *eof = true;
                    self.cut_short = Some(self.base + self.end as u64);
                    return Ok(false);
                }
                Err(e) => {
                    *eof = true;
                    return Err(ReadError {
                        offset: self.base + self.end as u64,
                        kind: ReadErrorKind::Io(e),
                    });
                }
            }
        }
        Ok(true)
    }
}

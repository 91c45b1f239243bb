//! Capture sources: classic pcap and pcapng, plain or gzip/zstd compressed, from files,
//! directories (recursive) or stdin, and (the `live` feature) an interface through libpcap
//! ([`live`]). Frames borrow from the reader's buffer.

/// One captured frame. `data` borrows from the reader's buffer and is valid until the
/// next call to [`CaptureReader::next_frame`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Link type (LINKTYPE_* value, e.g. 1 Ethernet, 113 SLL, 276 SLL2, 101 raw IP).
    pub linktype: u32,
    /// Interface index (pcapng) or 0 (classic pcap).
    pub interface: u32,
    /// The captured bytes (may be shorter than `orig_len` when cut by the snap length).
    pub data: &'a [u8],
    /// The length of the packet on the wire.
    pub orig_len: u32,
}

// The implementation below this line is filled in by the reader work (see README "Design").

mod digest;
pub use digest::{hex, sha256_hex};
mod input;
#[cfg(feature = "live")]
pub mod live;
mod pcap;
mod pcapng;
mod source;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Cursor, ErrorKind, Read};
use std::path::Path;

pub use input::{expand_inputs, open_input, Input};
use source::Source;

/// Initial size of the streaming read buffer (256 KiB). It grows for larger records. Small
/// enough that what one read copies is still in the core's L2 cache when its frames are parsed:
/// on the 200 MB bench file a 4 MiB buffer cost about 7% more cycles.
pub const DEFAULT_BUF: usize = 256 << 10;

/// Hard limit on a single record (classic pcap record or pcapng block), in bytes. The read
/// buffer never grows beyond about this size.
pub const MAX_RECORD: u32 = 64 << 20;

/// Compression wrapped around the capture stream, detected from magic bytes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain capture file.
    None,
    /// gzip (possibly several concatenated members).
    Gzip,
    /// Zstandard (possibly several concatenated frames).
    Zstd,
}

/// Capture file format, detected from the first four bytes of the (decompressed) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format, with microsecond or nanosecond timestamps, in either byte order.
    Pcap {
        /// Timestamps carry nanoseconds (magic a1b23c4d) rather than microseconds.
        nanos: bool,
        /// The file was written big-endian.
        big_endian: bool,
    },
    /// pcapng (byte order is per section).
    PcapNg,
}

impl Format {
    /// Short name: `"pcap"`, `"pcap-ns"` or `"pcapng"`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Pcap { nanos: false, .. } => "pcap",
            Format::Pcap { nanos: true, .. } => "pcap-ns",
            Format::PcapNg => "pcapng",
        }
    }
}

/// Counters kept while reading.
#[derive(Debug, Default, Clone)]
pub struct ReaderStats {
    /// Frames returned.
    pub frames: u64,
    /// Sum of `frame.data.len()`.
    pub captured_bytes: u64,
    /// Sum of `frame.orig_len`.
    pub wire_bytes: u64,
    /// Bytes of the (decompressed) capture stream consumed so far.
    pub stream_bytes: u64,
    /// Frames per link type.
    pub linktypes: BTreeMap<u32, u64>,
    /// Frames cut by the snap length (`data.len() < orig_len`).
    pub cut_frames: u64,
    /// The latest frame time so far (frames may come out of order): where the capture
    /// stopped watching the flows still open at its end.
    pub latest_ts_ns: Option<i64>,
    /// pcapng blocks skipped (unknown or unused block types).
    pub skipped_blocks: u64,
    /// Sum of pcapng Interface Statistics Block `isb_ifdrop` values, if any were seen.
    pub interface_drops: Option<u64>,
}

/// A non-fatal problem met while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadWarning {
    /// The stream ended inside a record (common when a capture was stopped); the record is dropped.
    TruncatedRecord {
        /// Stream offset of the truncated record.
        offset: u64,
        /// Bytes of the record present.
        have: u64,
        /// Bytes the record needed (the header size when the header itself is cut).
        need: u64,
    },
    /// A gzip or zstd stream ended before its end marker (a capture stopped while being
    /// compressed); everything decompressed up to there was read.
    CompressedStreamCut {
        /// Decompressed offset where the stream stopped.
        offset: u64,
    },
}

impl fmt::Display for ReadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadWarning::TruncatedRecord { offset, have, need } => write!(
                f,
                "byte offset {offset}: last record truncated (have {have} of {need} bytes)"
            ),
            ReadWarning::CompressedStreamCut { offset } => write!(
                f,
                "byte offset {offset}: compressed stream ends early (capture stopped while being written?)"
            ),
        }
    }
}

/// A fatal read error, with the byte offset (in the decompressed stream) of the record where
/// reading went wrong.
#[derive(Debug, thiserror::Error)]
#[error("byte offset {offset}: {kind}")]
pub struct ReadError {
    /// Offset in the (decompressed) capture stream.
    pub offset: u64,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

impl ReadError {
    pub(crate) fn new(offset: u64, kind: ReadErrorKind) -> ReadError {
        ReadError { offset, kind }
    }
}

/// The kinds of [`ReadError`].
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// An I/O or decompression error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream starts with neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (first bytes {0:02x?})")]
    BadMagic([u8; 4]),
    /// The stream ends before the file header (or first pcapng section header) is complete.
    #[error("file too short for a capture header")]
    ShortHeader,
    /// A classic pcap record claims more captured bytes than is plausible.
    #[error("bogus captured length {caplen} (limit {limit})")]
    BogusCaplen { caplen: u32, limit: u32 },
    /// A pcapng block length is too small, not a multiple of 4, or too large.
    #[error("bogus pcapng block length {len} for block type {block_type:#010x}")]
    BogusBlockLength { block_type: u32, len: u32 },
    /// A pcapng block's trailing length differs from its leading length.
    #[error("pcapng block trailer length {trailer} does not match header length {len}")]
    BlockLengthMismatch { len: u32, trailer: u32 },
    /// A classic pcap timestamp fraction is out of range.
    #[error("invalid timestamp fraction {frac} (garbage after valid records?)")]
    BadTimestamp { frac: u32 },
    /// A pcapng packet names an interface not described in its section.
    #[error("packet refers to unknown interface {0}")]
    UnknownInterface(u32),
    /// A pcapng packet's captured length does not fit in its block.
    #[error("captured length {caplen} does not fit in its block (room for {room} bytes)")]
    CaplenExceedsBlock { caplen: u32, room: u32 },
    /// A pcapng section header's byte-order magic is neither 0x1a2b3c4d nor its swap.
    #[error("bad pcapng byte-order magic {0:#010x}")]
    BadByteOrderMagic(u32),
    /// A pcapng section header with a major version other than 1.
    #[error("unsupported pcapng version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
    /// Any other structural problem.
    #[error("{0}")]
    Malformed(&'static str),
}

/// A frame located by a parser: `data` is `len` bytes at backing index `start` of the source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFrame {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) ts_ns: i64,
    pub(crate) linktype: u32,
    pub(crate) interface: u32,
    pub(crate) orig_len: u32,
}

enum Parser {
    Pcap(pcap::PcapState),
    PcapNg(pcapng::NgState),
}

/// Reads frames from a classic pcap or pcapng stream, plain or compressed, without copying
/// frame bytes: each frame borrows the reader's buffer (or the memory map).
pub struct CaptureReader {
    src: Source,
    parser: Parser,
    format: Format,
    compression: Compression,
    stats: ReaderStats,
    warnings: Vec<ReadWarning>,
    done: bool,
    /// The digest of the stream's raw bytes (none for a memory map: [`CaptureReader::digest`]
    /// hashes the map).
    digest: Option<digest::SharedDigest>,
    /// The digest of a mapped input, under way (see [`digest::MapDigest`]).
    map_digest: Option<digest::MapDigest>,
    /// The reading got to the end of the stream (no error stopped it).
    ended: bool,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("offset", &self.src.offset())
            .field("stats", &self.stats)
            .field("warnings", &self.warnings)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// Classic pcap magics as the first four file bytes.
const PCAP_BE_MICRO: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const PCAP_LE_MICRO: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
const PCAP_BE_NANO: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];
const PCAP_LE_NANO: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];
const PCAPNG_SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Whether the first bytes of a file look like a capture or a compressed stream.
pub(crate) fn is_known_magic(first: &[u8]) -> bool {
    first.starts_with(&GZIP_MAGIC)
        || first.starts_with(&ZSTD_MAGIC)
        || [
            PCAP_BE_MICRO,
            PCAP_LE_MICRO,
            PCAP_BE_NANO,
            PCAP_LE_NANO,
            PCAPNG_SHB,
        ]
        .iter()
        .any(|m| first.starts_with(m))
}

pub(crate) fn compression_of(first: &[u8]) -> Compression {
    if first.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if first.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Read up to `buf.len()` bytes, looping over short reads; returns how many were read.
pub(crate) fn read_prefix(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let dst = match buf.get_mut(n..) {
            Some(d) => d,
            None => break,
        };
        match r.read(dst) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n.min(buf.len()))
}

fn io_at(offset: u64) -> impl FnOnce(std::io::Error) -> ReadError {
    move |e| ReadError::new(offset, ReadErrorKind::Io(e))
}

impl CaptureReader {
    /// Open a file for streaming. Gzip (`1f 8b`) and zstd (`28 b5 2f fd`) compression is
    /// detected from the magic bytes and decoded on the fly; then the pcap or pcapng magic is
    /// checked and the file header read.
    pub fn open(path: &Path) -> Result<CaptureReader, ReadError> {
        let file = std::fs::File::open(path).map_err(io_at(0))?;
        CaptureReader::from_read(Box::new(file))
    }

    /// Like [`CaptureReader::open`], over any byte stream (used for stdin).
    pub fn from_read(r: Box<dyn Read + Send>) -> Result<CaptureReader, ReadError> {
        CaptureReader::from_read_with_capacity(r, DEFAULT_BUF)
    }

    pub(crate) fn from_read_with_capacity(
        r: Box<dyn Read + Send>,
        capacity: usize,
    ) -> Result<CaptureReader, ReadError> {
        let digest = digest::new_digest();
        let mut r: Box<dyn Read + Send> = Box::new(digest::Digesting::new(r, digest.clone()));
        let mut head = [0u8; 4];
        let n = read_prefix(&mut r, &mut head).map_err(io_at(0))?;
        let head = head.get(..n).unwrap_or(&[]).to_vec();
        let compression = compression_of(&head);
        let chained: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(r));
        let stream: Box<dyn Read + Send> = match compression {
            Compression::None => chained,
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(chained).map_err(io_at(0))?)
            }
        };
        let mut reader = CaptureReader::from_source(Source::stream(stream, capacity), compression)?;
        reader.digest = Some(digest);
        Ok(reader)
    }

    /// Memory-map the file instead of streaming it. Compressed files (and anything that is not
    /// a regular file) fall back to streaming. The file must not be truncated while mapped.
    pub fn open_mmap(path: &Path) -> Result<CaptureReader, ReadError> {
        let mut file = std::fs::File::open(path).map_err(io_at(0))?;
        let meta = file.metadata().map_err(io_at(0))?;
        if !meta.is_file() {
            return CaptureReader::from_read(Box::new(file));
        }
        if meta.len() == 0 {
            return Err(ReadError::new(0, ReadErrorKind::ShortHeader));
        }
        let mut head = [0u8; 4];
        let n = read_prefix(&mut file, &mut head).map_err(io_at(0))?;
        if compression_of(head.get(..n).unwrap_or(&[])) != Compression::None {
            drop(file);
            return CaptureReader::open(path);
        }
        // SAFETY: the map is read-only, and nothing here writes to the file. As with any file
        // mapping, another process truncating the file while it is mapped would fault (SIGBUS):
        // callers that map (an input split among threads, see `crate::pipeline::split`) document it.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_at(0))?;
        let mut reader = CaptureReader::from_source(Source::mapped(map), Compression::None)?;
        reader.map_digest = reader.src.map().map(digest::MapDigest::start);
        Ok(reader)
    }

    fn from_source(mut src: Source, compression: Compression) -> Result<CaptureReader, ReadError> {
        if !src.ensure(4)? {
            return Err(ReadError::new(0, ReadErrorKind::ShortHeader));
        }
        let mut magic = [0u8; 4];
        if let Some(s) = src.peek(4).get(..4) {
            magic.copy_from_slice(s);
        }
        let (parser, format) = match magic {
            PCAP_BE_MICRO | PCAP_LE_MICRO | PCAP_BE_NANO | PCAP_LE_NANO => {
                let big_endian = magic == PCAP_BE_MICRO || magic == PCAP_BE_NANO;
                let nanos = magic == PCAP_BE_NANO || magic == PCAP_LE_NANO;
                let st = pcap::PcapState::read_header(&mut src, big_endian, nanos)?;
                (Parser::Pcap(st), Format::Pcap { nanos, big_endian })
            }
            PCAPNG_SHB => (
                Parser::PcapNg(pcapng::NgState::check_header(&mut src)?),
                Format::PcapNg,
            ),
            _ => return Err(ReadError::new(0, ReadErrorKind::BadMagic(magic))),
        };
        let stats = ReaderStats {
            stream_bytes: src.offset(),
            ..ReaderStats::default()
        };
        Ok(CaptureReader {
            src,
            parser,
            format,
            compression,
            stats,
            warnings: Vec::new(),
            done: false,
            digest: None,
            map_digest: None,
            ended: false,
        })
    }

    /// The size and SHA-256 (lower-case hex) of the input as stored (a compressed file's
    /// compressed bytes), once it was read to its end; none when an error stopped the reading
    /// (whether it is mapped or not). A memory-mapped file is hashed whole, on a thread of its
    /// own from its opening when it is large (see [`digest::MapDigest`]).
    pub fn digest(&self) -> Option<(u64, String)> {
        if !self.ended {
            return None;
        }
        // A stream has its digest state, a map its digest under way (`open_mmap`).
        match (&self.digest, &self.map_digest) {
            (Some(d), _) => digest::finished(d),
            (None, Some(m)) => Some(m.finish()),
            (None, None) => None,
        }
    }

    /// The memory map the frames are slices of, when the reader was opened with
    /// [`CaptureReader::open_mmap`] on a plain file (worker threads read frames from it in
    /// place instead of copies).
    pub fn map(&self) -> Option<std::sync::Arc<memmap2::Mmap>> {
        self.src.map()
    }

    /// The next frame, borrowing the reader's buffer; `Ok(None)` at the end. After an error,
    /// every later call returns `Ok(None)`. A stream that ends inside a record gives `Ok(None)`
    /// and a [`ReadWarning::TruncatedRecord`].
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let res = match &mut self.parser {
            Parser::Pcap(st) => st.next(&mut self.src, &mut self.warnings),
            Parser::PcapNg(st) => st.next(&mut self.src, &mut self.stats, &mut self.warnings),
        };
        match res {
            Ok(Some(raw)) => {
                let data = self.src.slice(raw.start, raw.len);
                let st = &mut self.stats;
                st.frames += 1;
                st.latest_ts_ns = Some(st.latest_ts_ns.map_or(raw.ts_ns, |l| l.max(raw.ts_ns)));
                st.captured_bytes += data.len() as u64;
                st.wire_bytes += u64::from(raw.orig_len);
                if (data.len() as u64) < u64::from(raw.orig_len) {
                    st.cut_frames += 1;
                }
                match st.linktypes.get_mut(&raw.linktype) {
                    Some(n) => *n += 1,
                    None => {
                        st.linktypes.insert(raw.linktype, 1);
                    }
                }
                st.stream_bytes = self.src.offset();
                Ok(Some(Frame {
                    ts_ns: raw.ts_ns,
                    linktype: raw.linktype,
                    interface: raw.interface,
                    data,
                    orig_len: raw.orig_len,
                }))
            }
            Ok(None) => {
                self.done = true;
                self.ended = true;
                if let Some(offset) = self.src.cut_short {
                    self.warnings
                        .push(ReadWarning::CompressedStreamCut { offset });
                }
                // Everything read was consumed, including any truncated tail.
                self.stats.stream_bytes = self.src.reached();
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                self.stats.stream_bytes = self.src.offset();
                Err(e)
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReaderStats {
        &self.stats
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &[ReadWarning] {
        &self.warnings
    }

    /// The capture format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The compression around the capture stream.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

/// Read a u16 at `off` (0 if out of range).
#[inline]
pub(crate) fn rd16(b: &[u8], off: usize, be: bool) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = off.checked_add(2).and_then(|e| b.get(off..e)) {
        a.copy_from_slice(s);
    }
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Read a u32 at `off` (0 if out of range).
#[inline]
pub(crate) fn rd32(b: &[u8], off: usize, be: bool) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = off.checked_add(4).and_then(|e| b.get(off..e)) {
        a.copy_from_slice(s);
    }
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Read a u64 at `off` (0 if out of range).
#[inline]
pub(crate) fn rd64(b: &[u8], off: usize, be: bool) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = off.checked_add(8).and_then(|e| b.get(off..e)) {
        a.copy_from_slice(s);
    }
    if be {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::testutil::{drain, read_all, Got, NgB, PcapB};
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::encode_all(Cursor::new(bytes), 3).expect("zstd")
    }

    fn sample_pcap() -> Vec<u8> {
        let mut b = PcapB::new(false, false, 262_144, 1);
        for i in 0..200u32 {
            let data: Vec<u8> = (0..(i % 90 + 20)).map(|j| (i ^ j) as u8).collect();
            b = b.rec(1_600_000_000 + i, i * 1000, &data, 1500);
        }
        b.build()
    }

    fn sample_ng() -> Vec<u8> {
        let b = NgB::new(false);
        let off = b.i64_opt(-3);
        let mut b = b
            .idb(1, 0, &[(9, &[9])])
            .idb(276, 64, &[(9, &[0x80 | 20]), (14, &off)]);
        for i in 0..60u32 {
            let data: Vec<u8> = (0..(i % 70)).map(|j| (i + j) as u8).collect();
            b = b.epb(i % 2, u64::from(i) << 20, &data, 100);
            if i % 17 == 0 {
                b = b.spb(30, &data).block(4, &[0; 8]).isb(0, Some(2));
            }
        }
        b.shb(true).idb(105, 0, &[]).pb(0, 5, &[1, 2, 3], 3).build()
    }

    fn same(a: &Got, b: &Got) {
        assert_eq!(a.frames, b.frames);
        assert_eq!(a.warnings, b.warnings);
        assert_eq!(
            a.err.as_ref().map(|e| (e.offset, e.to_string())),
            b.err.as_ref().map(|e| (e.offset, e.to_string()))
        );
        assert_eq!(a.stats.stream_bytes, b.stats.stream_bytes);
        assert_eq!(a.stats.frames, b.stats.frames);
    }

    #[test]
    fn gzip_and_zstd_are_detected_by_magic() {
        for plain in [sample_pcap(), sample_ng()] {
            let want = read_all(&plain, DEFAULT_BUF).expect("open");
            assert!(want.err.is_none() && want.warnings.is_empty());
            assert_eq!(want.compression, Compression::None);
            let mut two_members = gzip(&plain[..100]);
            two_members.extend(gzip(&plain[100..]));
            for (packed, kind) in [
                (gzip(&plain), Compression::Gzip),
                (two_members, Compression::Gzip),
                (zstd(&plain), Compression::Zstd),
            ] {
                for cap in [16, 1000, DEFAULT_BUF] {
                    let got = read_all(&packed, cap).expect("open");
                    assert_eq!(got.compression, kind);
                    same(&got, &want);
                    assert_eq!(got.stats.stream_bytes, plain.len() as u64);
                }
            }
        }
        assert_eq!(
            serde_json::to_string(&Compression::Gzip).expect("json"),
            "\"gzip\""
        );
    }

    /// 2000 records of incompressible data (about 400 kB).
    fn noisy_pcap() -> Vec<u8> {
        let mut rng = Rng(77);
        let mut b = PcapB::new(true, true, 65535, 1);
        for i in 0..2000u32 {
            let data: Vec<u8> = (0..180).map(|_| rng.next_u64() as u8).collect();
            b = b.rec(i, i, &data, 180);
        }
        b.build()
    }

    #[test]
    fn compressed_cut_is_a_warning_and_corruption_an_io_error() {
        let plain = noisy_pcap();
        for packed in [gzip(&plain), zstd(&plain)] {
            // Cut the compressed stream in half (a capture stopped while being compressed):
            // the frames decompressed so far, then a warning, not an error.
            let half = &packed[..packed.len() / 2];
            let got = read_all(half, 64).expect("open");
            assert!(
                got.frames.len() > 100 && got.frames.len() < 2000,
                "{}",
                got.frames.len()
            );
            assert!(got.err.is_none(), "{:?}", got.err);
            assert!(
                got.warnings.iter().any(
                    |w| matches!(w, ReadWarning::CompressedStreamCut { offset } if *offset > 0)
                ),
                "{:?}",
                got.warnings
            );
            assert!(got.after_err_none);
            // Garbage in the middle of the compressed data.
            let mut bad = packed.clone();
            let mid = bad.len() / 2;
            for b in &mut bad[mid..mid + 64] {
                *b ^= 0x5a;
            }
            let got = read_all(&bad, 64).expect("open");
            let e = got.err.expect("error");
            assert!(e.offset > 0 && e.offset <= plain.len() as u64, "{e}");
            assert!(got.frames.len() < 2000);
            assert!(got.after_err_none);
        }
        // A gzip header over nothing useful.
        let err = read_all(&[0x1f, 0x8b], 64).expect_err("error");
        assert!(matches!(
            err.kind,
            ReadErrorKind::Io(_) | ReadErrorKind::ShortHeader
        ));
        // Compressed non-capture data.
        let err = read_all(&gzip(b"hello, world"), 64).expect_err("error");
        assert!(matches!(err.kind, ReadErrorKind::BadMagic(m) if &m == b"hell"));
        let err = read_all(&zstd(b""), 64).expect_err("error");
        assert!(matches!(err.kind, ReadErrorKind::ShortHeader));
    }

    #[test]
    fn read_errors_mid_stream_name_the_offset_reached() {
        struct Failing(Cursor<Vec<u8>>);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                // Short reads of at most 7 bytes, then an error at the end of the data.
                let n = buf.len().min(7);
                match self.0.read(&mut buf[..n])? {
                    0 => Err(std::io::Error::other("device gone")),
                    k => Ok(k),
                }
            }
        }
        let plain = sample_pcap();
        let cut = plain.len() - 10;
        let r = CaptureReader::from_read_with_capacity(
            Box::new(Failing(Cursor::new(plain[..cut].to_vec()))),
            64,
        )
        .expect("open");
        let got = drain(r);
        assert_eq!(got.frames.len(), 199);
        let err = got.err.expect("error");
        assert_eq!(err.offset, cut as u64);
        assert_eq!(
            err.to_string(),
            format!("byte offset {cut}: I/O error: device gone")
        );
        assert!(got.after_err_none);
    }

    #[test]
    fn wrong_magic_and_empty() {
        let err = read_all(b"GIF89a..............................", 64).expect_err("error");
        assert_eq!(err.offset, 0);
        assert!(matches!(
            err.kind,
            ReadErrorKind::BadMagic([0x47, 0x49, 0x46, 0x38])
        ));
        assert_eq!(
            err.to_string(),
            "byte offset 0: not a pcap or pcapng file (first bytes [47, 49, 46, 38])"
        );
        for bytes in [&b""[..], &b"\xd4\xc3"[..]] {
            let err = read_all(bytes, 64).expect_err("error");
            assert_eq!(err.offset, 0);
            assert!(matches!(err.kind, ReadErrorKind::ShortHeader));
            assert_eq!(
                err.to_string(),
                "byte offset 0: file too short for a capture header"
            );
        }
    }

    /// A file in the system temp dir, removed on drop.
    struct TempFile(std::path::PathBuf);
    impl TempFile {
        fn new(tag: &str, bytes: &[u8]) -> TempFile {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!(
                "allowscope-capture-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::write(&p, bytes).expect("write temp file");
            TempFile(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn mmap_matches_streaming() {
        let plain = sample_ng();
        let mut truncated = sample_pcap();
        truncated.truncate(truncated.len() - 5);
        let mut garbage = sample_pcap();
        garbage.extend_from_slice(&[0xff; 40]);
        for (i, bytes) in [plain.clone(), truncated, garbage, gzip(&plain)]
            .iter()
            .enumerate()
        {
            let f = TempFile::new(&format!("mmap{i}"), bytes);
            let streamed = drain(CaptureReader::open(&f.0).expect("open"));
            let mut r = CaptureReader::open_mmap(&f.0).expect("open mmap");
            // Plain files are mapped and their frames are slices of the map (what a split
            // input hands its workers); a compressed one is streamed.
            let map = r.map();
            assert_eq!(map.is_some(), i < 3, "{i}");
            if let (Some(m), Ok(Some(fr))) = (&map, r.next_frame()) {
                let off = fr.data.as_ptr() as usize - m.as_ptr() as usize;
                assert_eq!(&m[off..off + fr.data.len()], fr.data);
            }
            let mapped = drain(CaptureReader::open_mmap(&f.0).expect("open mmap"));
            same(&streamed, &mapped);
            assert_eq!(streamed.compression, mapped.compression);
            assert_eq!(streamed.format, mapped.format);
        }
        let f = TempFile::new("mmap-empty", b"");
        for r in [CaptureReader::open(&f.0), CaptureReader::open_mmap(&f.0)] {
            let err = r.expect_err("error");
            assert!(matches!(err.kind, ReadErrorKind::ShortHeader));
        }
        let f = TempFile::new("mmap-bad", b"hello world, not a capture");
        let err = CaptureReader::open_mmap(&f.0).expect_err("error");
        assert!(matches!(err.kind, ReadErrorKind::BadMagic(_)));
    }

    #[test]
    fn reader_is_send() {
        fn is_send<T: Send>() {}
        is_send::<CaptureReader>();
    }

    use crate::rng::XorShift as Rng;

    /// Read `bytes` with a tiny and a large buffer: never panics, the two agree, offsets
    /// stay within the stream, and a later call after the end is `Ok(None)`.
    fn check_robust(bytes: &[u8], small_cap: usize) {
        let a = read_all(bytes, small_cap);
        let b = read_all(bytes, DEFAULT_BUF);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                same(&a, &b);
                assert!(a.after_err_none);
                if a.compression == Compression::None {
                    assert!(a.stats.stream_bytes <= bytes.len() as u64);
                    if let Some(e) = &a.err {
                        assert!(e.offset <= bytes.len() as u64);
                    }
                }
                assert!(a.stats.captured_bytes <= a.stats.stream_bytes);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("open disagrees: {:?} vs {:?}", a.err(), b.err()),
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let prefixes: [Vec<u8>; 6] = [
            Vec::new(),
            PcapB::new(false, false, 65535, 1).build(),
            PcapB::new(true, true, 0, 276).build(),
            NgB::new(false).build(),
            NgB::new(true).idb(1, 0, &[]).build(),
            vec![0x1f, 0x8b],
        ];
        for i in 0..4000 {
            let mut bytes = prefixes[i % prefixes.len()].clone();
            let len = rng.below(if i % 10 == 0 { 2000 } else { 200 });
            // Mostly small values, so lengths and counts are often plausible.
            for _ in 0..len {
                let v = rng.next_u64();
                bytes.push(if v % 3 == 0 {
                    (v >> 8) as u8
                } else {
                    (v >> 8) as u8 & 0x0f
                });
            }
            check_robust(&bytes, 16 + rng.below(64));
        }
    }

    #[test]
    fn corrupted_valid_files_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let valid = [
            sample_pcap(),
            sample_ng(),
            PcapB::new(true, true, 128, 101)
                .rec(1, 2, &[3; 50], 60)
                .build(),
        ];
        for i in 0..3000 {
            let mut bytes = valid[i % valid.len()].clone();
            match rng.below(4) {
                0 => {
                    let cut = rng.below(bytes.len() + 1);
                    bytes.truncate(cut);
                }
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next_u64() as u8;
                    }
                }
                2 => {
                    // Overwrite a 4-byte field with an extreme value.
                    let at = rng.below(bytes.len().saturating_sub(4));
                    let v =
                        [0u32, 1, 3, 0xffff_ffff, 0x8000_0000, 0x7fff_fffc, 12, 28][rng.below(8)];
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let at = rng.below(bytes.len());
                    let n = rng.below(64);
                    bytes.splice(at..at, (0..n).map(|_| rng.next_u64() as u8));
                }
            }
            check_robust(&bytes, 16 + rng.below(100));
            if i % 50 == 0 {
                check_robust(&gzip(&bytes), 16);
                check_robust(&zstd(&bytes), 16);
            }
        }
    }
}

//! Capture sources: classic pcap and pcapng, plain or gzip/zstd compressed, from files,
//! directories (recursive) or stdin. Frames borrow from the reader's buffer.

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

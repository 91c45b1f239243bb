//! Test helpers: tiny builders for classic pcap and pcapng byte vectors, and a reader driver.

use std::io::Cursor;

use super::{CaptureReader, Compression, Format, ReadError, ReadWarning, ReaderStats};

fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put64(out: &mut Vec<u8>, v: u64, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// Builds a classic pcap file.
pub(crate) struct PcapB {
    be: bool,
    bytes: Vec<u8>,
}

impl PcapB {
    pub(crate) fn new(be: bool, nanos: bool, snaplen: u32, network: u32) -> PcapB {
        let mut bytes = Vec::new();
        put32(
            &mut bytes,
            if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 },
            be,
        );
        put16(&mut bytes, 2, be);
        put16(&mut bytes, 4, be);
        put32(&mut bytes, 0, be);
        put32(&mut bytes, 0, be);
        put32(&mut bytes, snaplen, be);
        put32(&mut bytes, network, be);
        PcapB { be, bytes }
    }

    /// A record whose captured length is `data.len()`.
    pub(crate) fn rec(mut self, sec: u32, frac: u32, data: &[u8], orig_len: u32) -> PcapB {
        let be = self.be;
        put32(&mut self.bytes, sec, be);
        put32(&mut self.bytes, frac, be);
        put32(&mut self.bytes, data.len() as u32, be);
        put32(&mut self.bytes, orig_len, be);
        self.bytes.extend_from_slice(data);
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.bytes
    }
}

/// Builds a pcapng file; starts with a Section Header Block.
pub(crate) struct NgB {
    be: bool,
    bytes: Vec<u8>,
}

/// Encode an options list (with opt_endofopt).
pub(crate) fn ng_opts(be: bool, opts: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (code, value) in opts {
        put16(&mut out, *code, be);
        put16(&mut out, value.len() as u16, be);
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    if !opts.is_empty() {
        put32(&mut out, 0, be);
    }
    out
}

impl NgB {
    pub(crate) fn new(be: bool) -> NgB {
        NgB {
            be,
            bytes: Vec::new(),
        }
        .shb(be)
    }

    /// A new section (switches the byte order of the following blocks).
    pub(crate) fn shb(mut self, be: bool) -> NgB {
        self.be = be;
        let mut body = Vec::new();
        put32(&mut body, 0x1a2b_3c4d, be);
        put16(&mut body, 1, be);
        put16(&mut body, 0, be);
        put64(&mut body, u64::MAX, be);
        body.extend(ng_opts(be, &[(4, b"test")]));
        self.block(0x0a0d_0d0a, &body)
    }

    /// Any block: the body is padded to 4 bytes and framed.
    pub(crate) fn block(mut self, block_type: u32, body: &[u8]) -> NgB {
        let be = self.be;
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        put32(&mut self.bytes, block_type, be);
        put32(&mut self.bytes, total, be);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        put32(&mut self.bytes, total, be);
        self
    }

    pub(crate) fn idb(self, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> NgB {
        let be = self.be;
        let mut body = Vec::new();
        put16(&mut body, linktype, be);
        put16(&mut body, 0, be);
        put32(&mut body, snaplen, be);
        body.extend(ng_opts(be, opts));
        self.block(1, &body)
    }

    /// The option value of if_tsoffset in this section's byte order.
    pub(crate) fn i64_opt(&self, v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put64(&mut out, v as u64, self.be);
        out
    }

    pub(crate) fn epb(self, iface: u32, ts: u64, data: &[u8], orig_len: u32) -> NgB {
        let be = self.be;
        let mut body = Vec::new();
        put32(&mut body, iface, be);
        put32(&mut body, (ts >> 32) as u32, be);
        put32(&mut body, ts as u32, be);
        put32(&mut body, data.len() as u32, be);
        put32(&mut body, orig_len, be);
        body.extend_from_slice(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        body.extend(ng_opts(be, &[(1, b"comment")]));
        self.block(6, &body)
    }

    pub(crate) fn pb(self, iface: u16, ts: u64, data: &[u8], orig_len: u32) -> NgB {
        let be = self.be;
        let mut body = Vec::new();
        put16(&mut body, iface, be);
        put16(&mut body, 0, be);
        put32(&mut body, (ts >> 32) as u32, be);
        put32(&mut body, ts as u32, be);
        put32(&mut body, data.len() as u32, be);
        put32(&mut body, orig_len, be);
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    pub(crate) fn spb(self, orig_len: u32, data: &[u8]) -> NgB {
        let be = self.be;
        let mut body = Vec::new();
        put32(&mut body, orig_len, be);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    pub(crate) fn isb(self, iface: u32, ifdrop: Option<u64>) -> NgB {
        let be = self.be;
        let mut body = Vec::new();
        put32(&mut body, iface, be);
        put32(&mut body, 0, be);
        put32(&mut body, 0, be);
        let mut v = Vec::new();
        put64(&mut v, 7, be);
        let mut d = Vec::new();
        if let Some(x) = ifdrop {
            put64(&mut d, x, be);
        }
        let mut opts: Vec<(u16, &[u8])> = vec![(4, &v)];
        if ifdrop.is_some() {
            opts.push((5, &d));
        }
        body.extend(ng_opts(be, &opts));
        self.block(5, &body)
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.bytes
    }
}

/// An owned copy of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owned {
    pub(crate) ts_ns: i64,
    pub(crate) linktype: u32,
    pub(crate) interface: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) orig_len: u32,
}

/// Everything a reader produced.
#[derive(Debug)]
pub(crate) struct Got {
    pub(crate) frames: Vec<Owned>,
    pub(crate) err: Option<ReadError>,
    pub(crate) warnings: Vec<ReadWarning>,
    pub(crate) stats: ReaderStats,
    pub(crate) format: Format,
    pub(crate) compression: Compression,
    /// After the end (or error), a further call returned `Ok(None)`.
    pub(crate) after_err_none: bool,
}

/// Read a reader to the end.
pub(crate) fn drain(mut r: CaptureReader) -> Got {
    let mut frames = Vec::new();
    let err = loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push(Owned {
                ts_ns: f.ts_ns,
                linktype: f.linktype,
                interface: f.interface,
                data: f.data.to_vec(),
                orig_len: f.orig_len,
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let after_err_none = matches!(r.next_frame(), Ok(None));
    Got {
        frames,
        err,
        warnings: r.warnings().to_vec(),
        stats: r.stats().clone(),
        format: r.format(),
        compression: r.compression(),
        after_err_none,
    }
}

/// Open `bytes` with an initial buffer of `cap` bytes and read to the end.
pub(crate) fn read_all(bytes: &[u8], cap: usize) -> Result<Got, ReadError> {
    let r = CaptureReader::from_read_with_capacity(Box::new(Cursor::new(bytes.to_vec())), cap)?;
    Ok(drain(r))
}

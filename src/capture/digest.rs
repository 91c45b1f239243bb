//! The SHA-256 and size of an input as stored (compressed bytes for a compressed file), taken
//! on the way in: the reader's raw bytes pass through [`Digesting`] before any decompressor,
//! so the file is read once. A digest is known only when the reading got to the end of the
//! stream (an input that stopped on an error has none).

use std::io::Read;
use std::sync::{Arc, Mutex};

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The running digest of one stream.
pub(crate) struct DigestState {
    ctx: ring::digest::Context,
    bytes: u64,
    eof: bool,
}

/// Shared between the reader wrapper (inside the decompressor) and the capture reader.
pub(crate) type SharedDigest = Arc<Mutex<DigestState>>;

pub(crate) fn new_digest() -> SharedDigest {
    Arc::new(Mutex::new(DigestState {
        ctx: ring::digest::Context::new(&ring::digest::SHA256),
        bytes: 0,
        eof: false,
    }))
}

/// The size and SHA-256 (hex) of the whole stream, once it was read to its end.
pub(crate) fn finished(d: &SharedDigest) -> Option<(u64, String)> {
    let s = d.lock().ok()?;
    s.eof
        .then(|| (s.bytes, hex(s.ctx.clone().finish().as_ref())))
}

/// A reader that digests what passes through it.
pub(crate) struct Digesting<R> {
    pub(crate) inner: R,
    pub(crate) state: SharedDigest,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut s) = self.state.lock() {
            match buf.get(..n) {
                Some(b) if n > 0 => {
                    s.ctx.update(b);
                    s.bytes += n as u64;
                }
                _ if !buf.is_empty() => s.eof = true,
                _ => {}
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_read_to_its_end_has_its_digest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let d = new_digest();
        let mut r = Digesting {
            inner: &data[..],
            state: d.clone(),
        };
        let mut buf = [0u8; 777];
        assert!(r.read(&mut buf).unwrap() > 0);
        assert_eq!(finished(&d), None, "not at the end yet");
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(finished(&d), Some((data.len() as u64, sha256_hex(&data))));
    }
}

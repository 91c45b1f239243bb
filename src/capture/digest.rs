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

/// The SHA-256 of a mapped input. One of [`MapDigest::THREAD_FROM`] bytes or more is hashed on
/// a thread of its own from when it is opened, beside its analysis (on the 1 GB bench capture
/// the digest was a fifth of a one-thread run's time when taken after it), a smaller one when
/// asked.
pub(crate) struct MapDigest {
    map: Arc<memmap2::Mmap>,
    running: Mutex<Option<std::thread::JoinHandle<String>>>,
    done: std::sync::OnceLock<String>,
}

impl MapDigest {
    /// Below this, a thread costs more than it saves.
    pub(crate) const THREAD_FROM: usize = 16 << 20;

    pub(crate) fn start(map: Arc<memmap2::Mmap>) -> MapDigest {
        let running = (map.len() >= Self::THREAD_FROM)
            .then(|| {
                let m = map.clone();
                std::thread::Builder::new()
                    .name("sha256".into())
                    .spawn(move || sha256_hex(&m))
                    .ok()
            })
            .flatten();
        MapDigest {
            map,
            running: Mutex::new(running),
            done: std::sync::OnceLock::new(),
        }
    }

    /// The size and digest of the map (waits for its thread if it has one).
    pub(crate) fn finish(&self) -> (u64, String) {
        let hex = self.done.get_or_init(|| {
            let running = self.running.lock().ok().and_then(|mut r| r.take());
            running
                .and_then(|h| h.join().ok())
                .unwrap_or_else(|| sha256_hex(&self.map))
        });
        (self.map.len() as u64, hex.clone())
    }
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

    /// A large map is hashed on its own thread, a small one when asked; both give the digest
    /// of the bytes, once and again.
    #[test]
    fn a_map_has_its_digest_small_or_large() {
        for len in [1000, MapDigest::THREAD_FROM + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let path = std::env::temp_dir()
                .join(format!("allowscope-mapdigest-{}-{len}", std::process::id()));
            std::fs::write(&path, &data).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: a file of this test's own, not changed while mapped.
            let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
            let d = MapDigest::start(map);
            let threaded = d.running.lock().unwrap().is_some();
            assert_eq!(threaded, len >= MapDigest::THREAD_FROM);
            let want = (len as u64, sha256_hex(&data));
            assert_eq!(d.finish(), want);
            assert_eq!(d.finish(), want);
            std::fs::remove_file(&path).unwrap();
        }
    }
}

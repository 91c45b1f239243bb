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

/// What a stream's digest came to: `eof` once the reader saw the stream's end, `done` once
/// every byte was hashed (or the hashing stopped without an end: `done` with no result).
#[derive(Default)]
pub(crate) struct DigestEnd {
    eof: bool,
    done: bool,
    result: Option<(u64, String)>,
}

/// Shared between the reader wrapper (inside the decompressor) and the capture reader: the
/// end, and a signal for a reader waiting on a hashing thread.
pub(crate) type SharedDigest = Arc<(Mutex<DigestEnd>, std::sync::Condvar)>;

pub(crate) fn new_digest() -> SharedDigest {
    Arc::new((Mutex::new(DigestEnd::default()), std::sync::Condvar::new()))
}

/// Records that the reader saw the stream's end.
fn mark_eof(d: &SharedDigest) {
    if let Ok(mut end) = d.0.lock() {
        end.eof = true;
    }
}

/// Records a stream's digest (none when its hashing stopped short) and wakes a reader
/// waiting for it.
fn end_with(d: &SharedDigest, result: Option<(u64, String)>) {
    let (lock, signal) = &**d;
    if let Ok(mut end) = lock.lock() {
        if !end.done {
            end.done = true;
            end.result = result;
        }
    }
    signal.notify_all();
}

/// The size and SHA-256 (hex) of the whole stream, once it was read to its end (waits for
/// its hashing thread to catch up); none before the end or when the hashing stopped short.
pub(crate) fn finished(d: &SharedDigest) -> Option<(u64, String)> {
    let (lock, signal) = &**d;
    let end = lock.lock().ok()?;
    if !end.eof {
        return None;
    }
    let end = signal.wait_while(end, |e| !e.done).ok()?;
    end.result.clone()
}

/// Ends a hashing thread's digest when the thread ends, whatever way: with the result it
/// holds by then (none unless it got to the end marker).
struct EndOnDrop(SharedDigest, Option<(u64, String)>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        end_with(&self.0, self.1.take());
    }
}

/// A stream hashed on a thread of its own: the reader sends it copies of what it read (the
/// buffers come back for reuse), and the end.
struct HashThread {
    chunks: std::sync::mpsc::SyncSender<Option<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// Chunks in flight to a hashing thread: what the reader may run ahead of it.
const IN_FLIGHT: usize = 4;

impl HashThread {
    /// Hashes on from `ctx` (after `bytes` bytes) on a new thread; none if it cannot start.
    fn start(ctx: ring::digest::Context, bytes: u64, end: SharedDigest) -> Option<HashThread> {
        let (chunks, todo) = std::sync::mpsc::sync_channel::<Option<Vec<u8>>>(IN_FLIGHT);
        let (give_back, spare) = std::sync::mpsc::channel();
        let mut ctx = ctx;
        let mut bytes = bytes;
        std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                // A closed channel without the end marker: the reading stopped short.
                let mut end = EndOnDrop(end, None);
                while let Ok(chunk) = todo.recv() {
                    let Some(chunk) = chunk else {
                        end.1 = Some((bytes, hex(ctx.clone().finish().as_ref())));
                        break;
                    };
                    ctx.update(&chunk);
                    bytes += chunk.len() as u64;
                    let _ = give_back.send(chunk);
                }
            })
            .ok()?;
        Some(HashThread { chunks, spare })
    }
}

/// An input of this many bytes or more is hashed on a thread of its own, beside its analysis
/// (on the 1 GB bench capture the digest was a fifth of a one-thread run inline); below it, a
/// thread costs more than it saves.
pub(crate) const THREAD_FROM: usize = 16 << 20;

/// Where a stream's digest is taken: inline, after so many bytes, or on its own thread.
enum Hashing {
    Inline(ring::digest::Context, u64),
    Thread(HashThread),
}

/// A reader that digests what passes through it: inline for the first [`THREAD_FROM`] bytes,
/// then on a thread of its own.
pub(crate) struct Digesting<R> {
    inner: R,
    end: SharedDigest,
    hashing: Hashing,
    at_end: bool,
}

impl<R> Digesting<R> {
    pub(crate) fn new(inner: R, end: SharedDigest) -> Digesting<R> {
        Digesting {
            inner,
            end,
            hashing: Hashing::Inline(ring::digest::Context::new(&ring::digest::SHA256), 0),
            at_end: false,
        }
    }

    fn take(&mut self, b: &[u8]) {
        match &mut self.hashing {
            Hashing::Thread(t) => {
                let mut chunk = t.spare.try_recv().unwrap_or_default();
                chunk.clear();
                chunk.extend_from_slice(b);
                // A thread that is gone has recorded its end (none): nothing more to do.
                let _ = t.chunks.send(Some(chunk));
            }
            Hashing::Inline(ctx, bytes) => {
                ctx.update(b);
                *bytes += b.len() as u64;
                if *bytes >= THREAD_FROM as u64 {
                    // Hashing goes on from this context there, or here if no thread starts.
                    if let Some(t) = HashThread::start(ctx.clone(), *bytes, self.end.clone()) {
                        self.hashing = Hashing::Thread(t);
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        self.at_end = true;
        mark_eof(&self.end);
        match &self.hashing {
            Hashing::Thread(t) => {
                let _ = t.chunks.send(None);
            }
            Hashing::Inline(ctx, bytes) => {
                let hex = hex(ctx.clone().finish().as_ref());
                end_with(&self.end, Some((*bytes, hex)));
            }
        }
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match buf.get(..n) {
            Some(b) if n > 0 => self.take(b),
            _ if !buf.is_empty() && !self.at_end => self.finish(),
            _ => {}
        }
        Ok(n)
    }
}

/// The SHA-256 of a mapped input. One of [`THREAD_FROM`] bytes or more is hashed on a thread
/// of its own from when it is opened, a smaller one when asked.
pub(crate) struct MapDigest {
    map: Arc<memmap2::Mmap>,
    running: Mutex<Option<std::thread::JoinHandle<String>>>,
    done: std::sync::OnceLock<String>,
}

impl MapDigest {
    pub(crate) fn start(map: Arc<memmap2::Mmap>) -> MapDigest {
        let running = (map.len() >= THREAD_FROM)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream read to its end has the digest of its bytes, a small one hashed inline and a
    /// large one on a thread of its own from [`THREAD_FROM`] bytes on; a stream
    /// not read to its end has none, and neither has one whose reader was dropped early.
    #[test]
    fn a_stream_read_to_its_end_has_its_digest() {
        let long = THREAD_FROM as u32 + 1_000_003;
        for len in [0, 100_000u32, long] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let d = new_digest();
            let mut r = Digesting::new(&data[..], d.clone());
            let mut buf = vec![0u8; 77_777];
            let first = r.read(&mut buf).unwrap();
            assert_eq!(first, data.len().min(buf.len()));
            if first > 0 {
                assert_eq!(finished(&d), None, "not at the end yet");
            }
            std::io::copy(&mut r, &mut std::io::sink()).unwrap();
            assert_eq!(matches!(r.hashing, Hashing::Thread(_)), len == long);
            let want = Some((data.len() as u64, sha256_hex(&data)));
            assert_eq!(finished(&d), want);
            drop(r);
            assert_eq!(finished(&d), want, "once and again");
            // Stopped short: no digest, whether the thread had started or not.
            let d = new_digest();
            let mut r = Digesting::new(&data[..], d.clone());
            let mut left = data.len().saturating_sub(1);
            while left > 0 {
                let n = r.read(&mut buf[..left.min(77_777)]).unwrap();
                left -= n;
            }
            drop(r);
            assert_eq!(finished(&d), None);
        }
    }

    /// A large map is hashed on its own thread, a small one when asked; both give the digest
    /// of the bytes, once and again.
    #[test]
    fn a_map_has_its_digest_small_or_large() {
        for len in [1000, THREAD_FROM + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let path = std::env::temp_dir()
                .join(format!("allowscope-mapdigest-{}-{len}", std::process::id()));
            std::fs::write(&path, &data).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: a file of this test's own, not changed while mapped.
            let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
            let d = MapDigest::start(map);
            let threaded = d.running.lock().unwrap().is_some();
            assert_eq!(threaded, len >= THREAD_FROM);
            let want = (len as u64, sha256_hex(&data));
            assert_eq!(d.finish(), want);
            assert_eq!(d.finish(), want);
            std::fs::remove_file(&path).unwrap();
        }
    }
}

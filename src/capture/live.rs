//! Live capture from an interface with libpcap (the `live` cargo feature).
//!
//! [`LiveCapture::open`] opens the interface (and the `--write` file, then drops privileges)
//! and returns the capture with a [`PcapStream`]: the captured packets as a classic
//! (nanosecond) pcap byte stream, read through the same [`crate::capture::CaptureReader`] as a
//! file, so a live run and a run over its `--write` file see the same frames. The bytes go
//! through a bounded channel; `--write` tees the very same bytes to a file.
//! [`LiveCapture::run`] captures on the calling thread until the capture is stopped and returns
//! libpcap's final counters and any errors; whoever reads the stream does so on another thread.
//!
//! On Linux `next_packet()` can block forever on an idle interface (even with a timeout), so
//! the duration, Ctrl-C, SIGTERM and [`Stop::stop`] stop the capture with libpcap's breakloop
//! from another thread.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to capture, and how.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The interface to capture on.
    pub interface: String,
    /// Bytes captured per packet.
    pub snaplen: i32,
    /// Put the interface into promiscuous mode.
    pub promisc: bool,
    /// A BPF capture filter (tcpdump syntax).
    pub filter: Option<String>,
    /// Stop after this long (counted from [`LiveCapture::open`]).
    pub duration: Option<Duration>,
    /// Stop after this many packets.
    pub packets: Option<u64>,
    /// Also write the captured bytes to this pcap file.
    pub write: Option<PathBuf>,
    /// Once the interface and the file are open, switch to this user (its primary group, no
    /// supplementary groups).
    pub user: Option<String>,
}

/// Stops a capture (from any thread): what `--duration`, Ctrl-C and SIGTERM do.
#[derive(Clone)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    brk: Arc<pcap::BreakLoop>,
}

impl Stop {
    /// Ends the capture: [`LiveCapture::run`] returns once it notices (at once when it waits
    /// for a packet).
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.brk.breakloop();
    }

    fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// The counters of a running capture, readable from any thread.
#[derive(Clone, Default)]
pub struct Counters {
    captured: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Counters {
    /// Packets captured so far.
    pub fn captured(&self) -> u64 {
        self.captured.load(Ordering::Relaxed)
    }

    /// Packets the kernel and the interface dropped so far (libpcap's counters, read about
    /// once a second).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// libpcap's counters at the end of a capture.
#[derive(Debug, Clone, Copy)]
pub struct LiveStats {
    /// Packets the filter received.
    pub received: u32,
    /// Packets the kernel dropped.
    pub dropped: u32,
    /// Packets the interface dropped.
    pub if_dropped: u32,
}

impl LiveStats {
    /// Kernel plus interface drops.
    pub fn drops(&self) -> u64 {
        u64::from(self.dropped) + u64::from(self.if_dropped)
    }
}

/// How a capture ended: what [`LiveCapture::run`] returns.
#[derive(Debug, Clone)]
pub struct LiveEnd {
    /// Packets captured.
    pub packets: u64,
    /// libpcap's final counters, if it could give them.
    pub stats: Option<LiveStats>,
    /// What went wrong (the capture stopped by an error, the `--write` file failed); empty
    /// when nothing did.
    pub errors: Vec<String>,
}

/// An open live capture (see the module notes).
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    header: Vec<u8>,
    packets: Option<u64>,
    sender: Option<SyncSender<Vec<u8>>>,
    write: Option<BufWriter<File>>,
    stop: Stop,
    counters: Counters,
}

/// The captured packets as a classic pcap byte stream (a `Read` over the chunks the capture
/// sends through a bounded channel); EOF once the capture has ended.
pub struct PcapStream {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for PcapStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let avail = self.buf.get(self.pos..).unwrap_or(&[]);
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

/// The 24-byte classic pcap file header (native byte order, nanosecond magic).
fn pcap_header(snaplen: u32, linktype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_3c4d_u32.to_ne_bytes());
    h.extend_from_slice(&2u16.to_ne_bytes());
    h.extend_from_slice(&4u16.to_ne_bytes());
    h.extend_from_slice(&0i32.to_ne_bytes());
    h.extend_from_slice(&0u32.to_ne_bytes());
    h.extend_from_slice(&snaplen.to_ne_bytes());
    h.extend_from_slice(&linktype.to_ne_bytes());
    h
}

impl LiveCapture {
    /// Opens the interface with its filter, creates the `write` file, drops privileges to
    /// `user`, and arms the stops (Ctrl-C, SIGTERM, the duration). The error is a message
    /// without the interface's name.
    pub fn open(opts: &LiveOptions) -> Result<(LiveCapture, PcapStream), String> {
        let mut cap = pcap::Capture::from_device(opts.interface.as_str())
            .map_err(|e| e.to_string())?
            .snaplen(opts.snaplen)
            .promisc(opts.promisc)
            .immediate_mode(true)
            .timeout(250)
            .buffer_size(8 << 20)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(|e| e.to_string())?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true)
                .map_err(|e| format!("bad filter \"{f}\": {e}"))?;
        }
        let linktype = cap.get_datalink().0 as u32;
        let write = match &opts.write {
            Some(p) => Some(BufWriter::new(
                File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )),
            None => None,
        };
        if let Some(user) = &opts.user {
            drop_privileges(user)?;
        }

        let stop = Stop {
            flag: Arc::new(AtomicBool::new(false)),
            brk: Arc::new(cap.breakloop_handle()),
        };
        {
            let stop = stop.clone();
            // Only one handler per process; a second capture in the same process keeps the
            // first.
            let _ = ctrlc::set_handler(move || stop.stop());
        }
        if let Some(d) = opts.duration {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(d);
                stop.stop();
            });
        }

        let (tx, rx) = sync_channel(256);
        let capture = LiveCapture {
            cap,
            header: pcap_header(opts.snaplen.max(0) as u32, linktype),
            packets: opts.packets,
            sender: Some(tx),
            write,
            stop,
            counters: Counters::default(),
        };
        let stream = PcapStream {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        Ok((capture, stream))
    }

    /// A control that stops this capture from another thread.
    pub fn stopper(&self) -> Stop {
        self.stop.clone()
    }

    /// The counters of this capture, updated while it runs.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Captures until stopped (or the packet count is reached, or libpcap fails), sending the
    /// pcap bytes to the [`PcapStream`] (which then ends) and to the `write` file.
    pub fn run(mut self) -> LiveEnd {
        let mut errors = Vec::new();
        let mut count = 0u64;
        // Packets are batched into chunks of about 64 KiB; a partial chunk goes out when its
        // first packet is 200 ms old, whenever the read times out (slow traffic), and at the
        // end, so the reader of the stream is never more than a moment behind. The file header
        // goes first.
        let mut chunk = std::mem::take(&mut self.header);
        self.flush(&mut chunk, &mut errors);
        let mut chunk_since: Option<Instant> = None;
        let mut stats_at = Instant::now();
        while !self.stop.stopped() && self.packets.is_none_or(|n| count < n) {
            if stats_at.elapsed() >= Duration::from_secs(1) {
                stats_at = Instant::now();
                if let Ok(s) = self.cap.stats() {
                    self.counters.dropped.store(
                        u64::from(s.dropped) + u64::from(s.if_dropped),
                        Ordering::Relaxed,
                    );
                }
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    let since = *chunk_since.get_or_insert_with(Instant::now);
                    count += 1;
                    self.counters.captured.store(count, Ordering::Relaxed);
                    let h = p.header;
                    let mut rec = [0u8; 16];
                    rec[0..4].copy_from_slice(&(h.ts.tv_sec as u32).to_ne_bytes());
                    rec[4..8].copy_from_slice(&(h.ts.tv_usec as u32).to_ne_bytes());
                    rec[8..12].copy_from_slice(&(p.data.len() as u32).to_ne_bytes());
                    rec[12..16].copy_from_slice(&h.len.to_ne_bytes());
                    chunk.extend_from_slice(&rec);
                    chunk.extend_from_slice(p.data);
                    if chunk.len() >= 1 << 16 || since.elapsed() >= Duration::from_millis(200) {
                        self.flush(&mut chunk, &mut errors);
                        chunk_since = None;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    self.flush(&mut chunk, &mut errors);
                    chunk_since = None;
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    errors.push(format!("capture stopped: {e}"));
                    break;
                }
            }
        }
        self.flush(&mut chunk, &mut errors);
        let stats = self.cap.stats().ok().map(|s| LiveStats {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        });
        self.sender = None;
        if let Some(mut w) = self.write.take() {
            if let Err(e) = w.flush() {
                errors.push(format!("writing capture file: {e}"));
            }
        }
        LiveEnd {
            packets: count,
            stats,
            errors,
        }
    }

    /// Sends `chunk` (when not empty) to the stream and the `write` file, and empties it.
    fn flush(&mut self, chunk: &mut Vec<u8>, errors: &mut Vec<String>) {
        if chunk.is_empty() {
            return;
        }
        if let Some(w) = &mut self.write {
            if let Err(e) = w.write_all(chunk).and_then(|_| w.flush()) {
                errors.push(format!("writing capture file: {e}"));
                self.write = None;
            }
        }
        let bytes = std::mem::replace(chunk, Vec::with_capacity(1 << 16));
        if let Some(s) = &self.sender {
            if s.send(bytes).is_err() {
                self.sender = None;
            }
        }
    }
}

/// An interface libpcap can capture on.
#[derive(Debug, Clone)]
pub struct Interface {
    /// Its name (what [`LiveOptions::interface`] takes).
    pub name: String,
    /// libpcap's description of it, if any.
    pub description: Option<String>,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
}

/// The interfaces libpcap can capture on; the error is libpcap's message.
pub fn interfaces() -> Result<Vec<Interface>, String> {
    let devs = pcap::Device::list().map_err(|e| e.to_string())?;
    Ok(devs
        .into_iter()
        .map(|d| Interface {
            name: d.name,
            description: d.desc,
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
        })
        .collect())
}

/// Switches to `user` (its primary group, no supplementary groups).
fn drop_privileges(user: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(user).map_err(|_| format!("bad user name \"{user}\""))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; the fields are read before
    // any other call that could overwrite it.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("no such user \"{user}\""));
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    // SAFETY: plain system calls on integers; order matters (groups and gid before uid).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(format!("setgroups: {}", io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!("setgid({gid}): {}", io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!("setuid({uid}): {}", io::Error::last_os_error()));
        }
    }
    Ok(())
}

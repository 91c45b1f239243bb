//! `allowscope live`: capture from an interface with libpcap and audit what it sees.
//!
//! The captured packets are written as a classic (nanosecond) pcap byte stream into a bounded
//! channel; the analyzer thread reads that stream through the same [`CaptureReader`] and
//! [`analyze_reader`] pipeline as files, so a live run and an audit of its `--write` file give
//! the same findings. `--write` tees the very same bytes to a file.
//!
//! On Linux `next_packet()` can block forever on an idle interface (even with a timeout), so
//! `--duration`, Ctrl-C and SIGTERM stop the capture with libpcap's breakloop from another thread.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capture::CaptureReader;
use crate::catalog::Catalog;
use crate::cli::live::LiveArgs;
use crate::pipeline::{analyze_reader_viewed, FileResult};
use crate::report::escape_terminal;

/// A `Read` over chunks of a byte stream sent through a bounded channel; EOF when the sender
/// is dropped.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
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

/// Captures until stopped and returns the analyzed result plus whether something failed.
pub(crate) fn capture(
    iface: &str,
    args: &LiveArgs,
    view: Option<Arc<Catalog>>,
    tags: Option<Arc<crate::catalog::TagRanges>>,
) -> Result<(FileResult, bool), String> {
    let mut cap = pcap::Capture::from_device(iface)
        .map_err(|e| e.to_string())?
        .snaplen(args.snaplen)
        .promisc(args.promisc)
        .immediate_mode(true)
        .timeout(250)
        .buffer_size(8 << 20)
        .precision(pcap::Precision::Nano)
        .open()
        .map_err(|e| e.to_string())?;
    if let Some(f) = &args.filter {
        cap.filter(f, true)
            .map_err(|e| format!("bad filter {f:?}: {e}"))?;
    }
    let linktype = cap.get_datalink().0 as u32;
    let mut write = match &args.write {
        Some(p) => Some(BufWriter::new(
            File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => None,
    };
    if let Some(user) = &args.user {
        drop_privileges(user)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let brk = Arc::new(cap.breakloop_handle());
    {
        let (stop, brk) = (stop.clone(), brk.clone());
        // Only one handler per process; a second `live` in the same process keeps the first.
        let _ = ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            brk.breakloop();
        });
    }
    if let Some(secs) = args.duration {
        let (stop, brk) = (stop.clone(), brk.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::SeqCst);
            brk.breakloop();
        });
    }

    let header = pcap_header(args.snaplen.max(0) as u32, linktype);
    let (tx, rx): (SyncSender<Vec<u8>>, _) = sync_channel(256);
    let cfg = args.table.config();
    let name = format!("live:{iface}");
    // The live view: the analyzer renders the audit of a snapshot into `latest`; a painter
    // thread redraws the terminal every --refresh seconds with it and the capture counters.
    let captured = Arc::new(AtomicU64::new(0));
    // Kernel plus interface drops so far (libpcap's counters, read about once a second).
    let dropped = Arc::new(AtomicU64::new(0));
    let latest: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let every = Duration::from_secs_f64(args.refresh);
    let painter = view.as_ref().map(|_| {
        let (captured, dropped, latest, done) = (
            captured.clone(),
            dropped.clone(),
            latest.clone(),
            done.clone(),
        );
        let title = format!(
            "allowscope live: {}{}",
            iface,
            args.filter
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        );
        std::thread::spawn(move || paint(&title, every, [&captured, &dropped], &latest, &done))
    });
    let analyzer = {
        let latest = latest.clone();
        std::thread::spawn(move || {
            let reader = ChannelReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            };
            let r = CaptureReader::from_read(Box::new(reader)).map_err(|e| e.to_string())?;
            let mut render = |mut snap: FileResult| {
                if let Some(cat) = &view {
                    crate::cli::name_by_tags(std::slice::from_mut(&mut snap), tags.as_deref());
                    let open = snap.flows.iter().filter(|f| f.close().is_none()).count();
                    let (audit, _) = crate::audit::audit(std::slice::from_ref(&snap), cat);
                    let text = format!(
                        "{} flows ({} without FIN or RST so far), {} DNS messages\n{}",
                        snap.flows.len(),
                        open,
                        snap.dns.len(),
                        crate::report::audit::live_view(&audit, 15)
                    );
                    if let Ok(mut l) = latest.lock() {
                        *l = Some(text);
                    }
                }
            };
            Ok::<FileResult, String>(if view.is_some() {
                analyze_reader_viewed(name, r, &cfg, every, &mut render)
            } else {
                crate::pipeline::analyze_reader(name, r, &cfg)
            })
        })
    };

    let mut failed = false;
    let mut errors = Vec::new();
    let mut sender = Some(tx);
    let mut count = 0u64;
    // Packets are batched into chunks of about 64 KiB; a partial chunk goes out when its first
    // packet is 200 ms old, whenever the read times out (slow traffic), and at the end, so the
    // analyzer (and the live view) is never more than a moment behind. The file header goes
    // first.
    let mut chunk: Vec<u8> = Vec::with_capacity(1 << 16);
    chunk.extend_from_slice(&header);
    flush(&mut chunk, &mut sender, &mut write, &mut errors);
    let mut chunk_since: Option<Instant> = None;
    let mut stats_at = Instant::now();
    while !stop.load(Ordering::SeqCst) && args.packets.is_none_or(|n| count < n) {
        if stats_at.elapsed() >= Duration::from_secs(1) {
            stats_at = Instant::now();
            if let Ok(s) = cap.stats() {
                dropped.store(s.dropped as u64 + s.if_dropped as u64, Ordering::Relaxed);
            }
        }
        match cap.next_packet() {
            Ok(p) => {
                let since = *chunk_since.get_or_insert_with(Instant::now);
                count += 1;
                captured.store(count, Ordering::Relaxed);
                let h = p.header;
                let mut rec = [0u8; 16];
                rec[0..4].copy_from_slice(&(h.ts.tv_sec as u32).to_ne_bytes());
                rec[4..8].copy_from_slice(&(h.ts.tv_usec as u32).to_ne_bytes());
                rec[8..12].copy_from_slice(&(p.data.len() as u32).to_ne_bytes());
                rec[12..16].copy_from_slice(&h.len.to_ne_bytes());
                chunk.extend_from_slice(&rec);
                chunk.extend_from_slice(p.data);
                if chunk.len() >= 1 << 16 || since.elapsed() >= Duration::from_millis(200) {
                    flush(&mut chunk, &mut sender, &mut write, &mut errors);
                    chunk_since = None;
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                flush(&mut chunk, &mut sender, &mut write, &mut errors);
                chunk_since = None;
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                errors.push(format!("capture stopped: {e}"));
                failed = true;
                break;
            }
        }
    }
    flush(&mut chunk, &mut sender, &mut write, &mut errors);
    let stats = cap.stats().ok();
    drop(sender);
    if let Some(mut w) = write.take() {
        if let Err(e) = w.flush() {
            errors.push(format!("writing capture file: {e}"));
        }
    }
    let result = analyzer
        .join()
        .map_err(|_| "the analyzer thread panicked".to_string());
    done.store(true, Ordering::SeqCst);
    if let Some(p) = painter {
        let _ = p.join();
    }
    let mut result = result??;
    if let Some(s) = stats {
        let drops = s.dropped as u64 + s.if_dropped as u64;
        result.summary.interface_drops = Some(drops);
        if !args.quiet {
            eprintln!(
                "live: {count} packets captured, {} received by filter, {} dropped by kernel, {} dropped by interface",
                s.received, s.dropped, s.if_dropped
            );
        }
    }
    if !errors.is_empty() {
        failed = true;
        let msg = errors.join("; ");
        result.summary.error = Some(match result.summary.error.take() {
            Some(e) => format!("{e}; {msg}"),
            None => msg,
        });
    }
    Ok((result, failed))
}

/// Redraws the live view on stdout every `every` until `done`, then clears it (the final
/// report follows).
fn paint(
    title: &str,
    every: Duration,
    [captured, dropped]: [&AtomicU64; 2],
    latest: &Mutex<Option<String>>,
    done: &AtomicBool,
) {
    let start = Instant::now();
    let mut next = start;
    let mut out = io::stdout();
    while !done.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            let secs = start.elapsed().as_secs();
            let body = latest
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_else(|| "waiting for packets...\n".to_string());
            // Home, clear the screen, draw; the text was escaped where it came from the wire.
            let _ = write!(
                out,
                "\x1b[H\x1b[2J{}  {:02}:{:02}:{:02}  {} packets captured, {} dropped\n\n{}\nCtrl-C stops and prints the report.\n",
                escape_terminal(title),
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                captured.load(Ordering::Relaxed),
                dropped.load(Ordering::Relaxed),
                body
            );
            let _ = out.flush();
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = write!(out, "\x1b[H\x1b[2J");
    let _ = out.flush();
}

fn flush(
    chunk: &mut Vec<u8>,
    sender: &mut Option<SyncSender<Vec<u8>>>,
    write: &mut Option<BufWriter<File>>,
    errors: &mut Vec<String>,
) {
    if chunk.is_empty() {
        return;
    }
    if let Some(w) = write {
        if let Err(e) = w.write_all(chunk).and_then(|_| w.flush()) {
            errors.push(format!("writing capture file: {e}"));
            *write = None;
        }
    }
    let bytes = std::mem::replace(chunk, Vec::with_capacity(1 << 16));
    if let Some(s) = sender {
        if s.send(bytes).is_err() {
            *sender = None;
        }
    }
}

/// Switches to `user` (its primary group, no supplementary groups).
fn drop_privileges(user: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; the fields are read before
    // any other call that could overwrite it.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("no such user {user:?}"));
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

//! One input split among worker threads (`--threads N` with fewer inputs than threads).
//!
//! The calling thread reads the capture, decodes each frame far enough to know its addresses
//! and hands it, in batches, to the worker that owns its flow; each worker runs the per-packet
//! pipeline ([`Worker`]: defragmenter, flow table, extractors) on its share without locks, and
//! the parts are put together as one table would have produced them ([`finish_result`]).
//! `N` threads are `N - 1` worker threads and the reading thread, which with a few workers
//! (up to [`INLINE_UP_TO`]) keeps a share of the flows for a worker of its own: half the share
//! of the others, since reading is the rest of its work. A thread for reading alone would
//! oversubscribe the cores and leave them idle while it waits for a worker's queue.
//!
//! Which worker: a hash of the unordered pair of IP addresses ([`pair_hash`]), so both
//! directions of a flow meet in one worker. Addresses rather than the 5-tuple, because every
//! fragment of a datagram must reach the one defragmenter that holds the others, and fragments
//! after the first carry no ports. An ICMP error goes by the addresses of the packet it quotes
//! (the flow it reports on), not by its own (a router's). So every packet that one table would
//! credit to a flow reaches the worker holding that flow. The one case this misses is an ICMP
//! error that was itself fragmented (it is routed by its own addresses before reassembly);
//! routers size their errors not to need that (576 bytes for IPv4, 1280 for IPv6).
//!
//! Being the same as one table also needs the same clocks: idle flows are swept at the points
//! of the capture a single table would sweep at (the reader runs the [`SweepClock`] and sends a
//! sweep to every worker), fragment reassembly expires by the latest fragment time of the whole
//! input, and DNS names are given after all packets ([`finish_result`]'s DNS pass). The live-
//! flow cap and the buffer budgets are divided among the workers, so the process stays within
//! them; when a cap is reached, which flows are evicted can differ from a single table's (the
//! evictions are counted and summed all the same).
//!
//! A batch is a buffer of frame bytes and a list of items; each worker has a few, which travel
//! to it full and come back empty, so nothing is allocated per packet.

use std::net::IpAddr;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

use super::report_bytes;
use super::stream::Stream;
use super::summary::{finish_result, FileResult, SkipCounts};
use super::worker::{Epoch, Part, SweepClock, Worker};
use crate::capture::{CaptureReader, Frame, ReadError};
use crate::decode::{decode, tcp_udp_addresses, Packet, L4};
use crate::flow::FlowConfig;

/// Most worker threads for one input.
pub const MAX_WORKERS: usize = 64;

/// Up to this many workers (threads), the reading thread keeps a share of the flows for a
/// worker of its own (see [`read_into`]); beyond, reading is a thread's whole work.
const INLINE_UP_TO: usize = 4;

/// Frames (and sweeps) per batch, and frame bytes per batch, before it is sent.
const BATCH_ITEMS: usize = 1024;
const BATCH_BYTES: usize = 1 << 20;
/// Batches per worker besides the one being filled: how far a worker may fall behind.
const IN_FLIGHT: usize = 4;

/// A symmetric hash of two addresses: the same for (a, b) and (b, a).
pub fn pair_hash(a: IpAddr, b: IpAddr) -> u64 {
    fn fold(a: IpAddr) -> u64 {
        match a {
            IpAddr::V4(v) => u64::from(u32::from(v)),
            IpAddr::V6(v) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(23) ^ 0x9e37_79b9_7f4a_7c15
            }
        }
    }
    let (x, y) = (fold(a), fold(b));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    // splitmix64's finaliser over an asymmetric combination of the ordered pair.
    let mut z = lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hi;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The worker (of `n`) that owns the flow of a decoded packet: by its addresses, or for an
/// ICMP error by the addresses of the packet it quotes.
pub fn worker_of(pkt: &Packet<'_>, n: usize) -> usize {
    let (a, b) = match &pkt.l4 {
        L4::IcmpError(e) => match &e.quoted {
            Some(q) => (q.src, q.dst),
            None => (pkt.ip.src, pkt.ip.dst),
        },
        _ => (pkt.ip.src, pkt.ip.dst),
    };
    (pair_hash(a, b) % n as u64) as usize
}

/// A frame to account, or a sweep (`sweep` true: `ts_ns` is the sweep's time).
#[derive(Clone, Copy)]
struct Item {
    seq: u64,
    ts_ns: i64,
    frag_now: i64,
    /// Where the frame's bytes are: in the batch's `data`, or (`in_map`) in the input's
    /// memory map.
    start: u64,
    len: u32,
    in_map: bool,
    linktype: u32,
    orig_len: u32,
    interface: u32,
    sweep: bool,
    /// No frame: the end of an epoch that no sweep ends (see [`super::EPOCH_FRAMES`]).
    cut: bool,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    fn with_capacity() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES),
            items: Vec::with_capacity(BATCH_ITEMS),
        }
    }

    fn full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.data.len() >= BATCH_BYTES
    }

    /// Adds a frame: where it lies in the input's map (`in_map`, its offset there), else a
    /// copy.
    fn push_frame(&mut self, seq: u64, f: &Frame<'_>, frag_now: i64, in_map: Option<u64>) {
        let (start, in_map) = match in_map {
            Some(off) => (off, true),
            None => {
                let start = self.data.len() as u64;
                self.data.extend_from_slice(f.data);
                (start, false)
            }
        };
        self.items.push(Item {
            seq,
            ts_ns: f.ts_ns,
            frag_now,
            start,
            len: f.data.len() as u32,
            in_map,
            linktype: f.linktype,
            orig_len: f.orig_len,
            interface: f.interface,
            sweep: false,
            cut: false,
        });
    }

    /// A sweep at `now` (`cut` false), or the end of an epoch (`cut` true).
    fn push_mark(&mut self, seq: u64, now: i64, cut: bool) {
        self.items.push(Item {
            seq,
            ts_ns: now,
            frag_now: i64::MIN,
            start: 0,
            len: 0,
            in_map: false,
            linktype: 0,
            orig_len: 0,
            interface: 0,
            sweep: !cut,
            cut,
        });
    }

    /// Runs the batch through a worker and empties it for reuse; `epoch` takes what finished
    /// by each sweep.
    fn run(&mut self, w: &mut Worker, map: &[u8], epoch: &mut dyn FnMut(&mut Worker)) {
        for it in &self.items {
            if it.cut {
                epoch(w);
            } else if it.sweep {
                w.sweep(it.seq, it.ts_ns);
                epoch(w);
            } else {
                let start = it.start as usize;
                let bytes = if it.in_map { map } else { &self.data[..] };
                let frame = Frame {
                    ts_ns: it.ts_ns,
                    linktype: it.linktype,
                    interface: it.interface,
                    data: &bytes[start..start + it.len as usize],
                    orig_len: it.orig_len,
                };
                w.frame(it.seq, &frame, it.frag_now);
            }
        }
        self.items.clear();
        self.data.clear();
    }
}

/// How far ahead of the frame being routed the reader asks for a mapped file's bytes (the
/// walk reads each record header from memory the kernel just mapped: without the hint, the
/// reader stalls on every one).
const PREFETCH_AHEAD: usize = 16 << 10;

/// Hints the CPU to fetch `map[at]` into the cache (nothing when out of range or on other
/// architectures).
#[inline]
fn prefetch(map: &[u8], at: usize) {
    if at < map.len() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults and has no effect on memory,
        // and the address is within the map.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                map.as_ptr().add(at) as *const i8,
            )
        };
    }
}

/// Where `data` starts in `map`, if it is a slice of it.
fn offset_in(map: &[u8], data: &[u8]) -> Option<u64> {
    let off = (data.as_ptr() as usize).checked_sub(map.as_ptr() as usize)?;
    (off.checked_add(data.len())? <= map.len()).then_some(off as u64)
}

/// The reader's end of one worker: the batch being filled, where full ones go, where empty
/// ones come back.
struct Lane {
    batch: Batch,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
}

impl Lane {
    fn send(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        // A worker that died (panicked) drops its receiver: stop feeding it; the panic is
        // raised when the scope joins it.
        let Ok(next) = self.empty.recv() else {
            self.batch.items.clear();
            self.batch.data.clear();
            return;
        };
        let full = std::mem::replace(&mut self.batch, next);
        let _ = self.full.send(full);
    }
}

/// Reads an opened capture with its packets split among `workers` threads (1: on this thread,
/// see [`super::analyze_reader`]). The result is the same for any number of workers,
/// except which flows are evicted when the live-flow cap is reached (see the module notes).
pub fn analyze_reader_split(
    name: String,
    reader: CaptureReader,
    cfg: &FlowConfig,
    workers: usize,
) -> FileResult {
    analyze_reader_split_into(name, reader, cfg, workers, None)
}

/// Like [`analyze_reader_split`], handing the flows to `sink` as they finish (see
/// [`super::FlowSink`]).
pub fn analyze_reader_split_into(
    name: String,
    mut reader: CaptureReader,
    cfg: &FlowConfig,
    workers: usize,
    sink: Option<&mut dyn super::FlowSink>,
) -> FileResult {
    let n = workers.clamp(1, MAX_WORKERS);
    if n == 1 {
        return super::read_all(name, reader, cfg, None, sink);
    }
    let mut skipped = SkipCounts::default();
    // A mapped input: workers read frames where they lie, the reader copies nothing.
    let mapped = reader.map();
    let map: &[u8] = mapped.as_deref().map_or(&[], |m| &m[..]);
    // Epochs: the reading thread's worker is 0, the others 1.. in the order of their lanes.
    let mut stream = Stream::new(n, sink, cfg);
    let (epoch_tx, epoch_rx) = channel::<(usize, Epoch)>();
    let (error, parts) = std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let mut inline = Worker::new(cfg, n);
        for id in 1..n {
            let (full_tx, full_rx) = sync_channel::<Batch>(IN_FLIGHT + 1);
            let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT + 1);
            for _ in 0..IN_FLIGHT {
                let _ = empty_tx.send(Batch::with_capacity());
            }
            let epoch_tx = epoch_tx.clone();
            handles.push(scope.spawn(move || {
                let mut w = Worker::new(cfg, n);
                let mut epoch = |w: &mut Worker| {
                    let _ = epoch_tx.send((id, w.take_epoch()));
                };
                for mut b in full_rx {
                    b.run(&mut w, map, &mut epoch);
                    let _ = empty_tx.send(b);
                }
                w.finish()
            }));
            lanes.push(Lane {
                batch: Batch::with_capacity(),
                full: full_tx,
                empty: empty_rx,
            });
        }
        drop(epoch_tx);
        let error = read_into(
            &mut reader,
            &mut inline,
            &mut lanes,
            &mut skipped,
            map,
            &mut |inline: &mut Worker| {
                stream.push(0, inline.take_epoch());
                while let Ok((id, e)) = epoch_rx.try_recv() {
                    stream.push(id, e);
                }
            },
        );
        for l in &mut lanes {
            l.send();
        }
        drop(lanes);
        let mut parts: Vec<Part> = vec![inline.finish()];
        parts.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        (error, parts)
    });
    // The epochs the workers handed on after the reader's last sweep.
    while let Ok((id, e)) = epoch_rx.try_recv() {
        stream.push(id, e);
    }
    let result = finish_result(name, &reader, error, parts, skipped, None, stream);
    if let Some(mapped) = mapped {
        // Unmapping a large file takes a while (every page's mapping is torn down): not on
        // the way to the report. When no thread can be started, the closure is dropped here
        // and the file is unmapped in place.
        let _ = std::thread::Builder::new()
            .name("unmap".into())
            .spawn(move || drop((mapped, reader)));
    }
    result
}

/// The reader's loop: every frame to the lane of its flow, a sweep to every lane when one is
/// due, frames that carry no IP counted here. Returns the read error that ended the input.
fn read_into(
    reader: &mut CaptureReader,
    inline: &mut Worker,
    lanes: &mut [Lane],
    skipped: &mut SkipCounts,
    map: &[u8],
    epoch: &mut dyn FnMut(&mut Worker),
) -> Option<ReadError> {
    // Hash slots: with a few workers, one for the reading thread's own worker and two for
    // each other (the reading thread also reads); with more, the reading thread only reads.
    let own = lanes.len() < INLINE_UP_TO;
    let n = if own {
        1 + 2 * lanes.len()
    } else {
        lanes.len()
    };
    let mut clock = SweepClock::default();
    let mut frag_now = i64::MIN;
    let mut reported = 0u64;
    let mut seq = 0u64;
    let error = loop {
        if seq % 4096 == 4095 {
            report_bytes(reader, &mut reported);
        }
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        if let Some(now) = clock.tick(frame.ts_ns) {
            inline.sweep(seq, now);
            epoch(inline);
            for l in lanes.iter_mut() {
                l.batch.push_mark(seq, now, false);
                if l.batch.full() {
                    l.send();
                }
            }
        } else if seq % super::EPOCH_FRAMES == 0 && seq > 0 {
            epoch(inline);
            for l in lanes.iter_mut() {
                l.batch.push_mark(seq, 0, true);
                if l.batch.full() {
                    l.send();
                }
            }
        }
        // Plain TCP and UDP (nearly every frame) go by the addresses in their IP header; the
        // rest is decoded to find fragments and the flow an ICMP error quotes. A frame whose
        // headers turn out broken is counted by the worker that gets it.
        let lane = match tcp_udp_addresses(frame.linktype, frame.data) {
            Some((a, b)) => Some((pair_hash(a, b) % n as u64) as usize),
            None => match decode(frame.linktype, frame.data) {
                Ok(pkt) => {
                    if matches!(pkt.l4, L4::Fragment(_)) {
                        frag_now = frag_now.max(frame.ts_ns);
                    }
                    Some(worker_of(&pkt, n))
                }
                Err(skip) => {
                    inline.sight_arp(&frame, skip);
                    skipped.count(skip);
                    None
                }
            },
        };
        if let Some(slot) = lane {
            let in_map = offset_in(map, frame.data);
            if let Some(off) = in_map {
                prefetch(map, off as usize + PREFETCH_AHEAD);
            }
            let l = match (own, slot) {
                (true, 0) => {
                    inline.frame(seq, &frame, frag_now);
                    seq += 1;
                    continue;
                }
                (true, _) => &mut lanes[(slot - 1) / 2],
                (false, _) => &mut lanes[slot],
            };
            l.batch.push_frame(seq, &frame, frag_now, in_map);
            if l.batch.full() {
                l.send();
            }
        }
        seq += 1;
    };
    report_bytes(reader, &mut reported);
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IcmpError, IpHeader, Quoted, Tcp};

    /// ClientHellos the reassembly cap cut are counted as such; those the table-wide budget
    /// cut are not (the summary says the budget ran out, and raising the cap would not help).
    #[test]
    fn hellos_over_the_cap_are_not_hellos_the_budget_cut() {
        let mut bytes = Vec::new();
        crate::synth::write_pcap(&mut bytes, 2 << 20, 64, 3).unwrap();
        let read = |cfg: FlowConfig| {
            let reader =
                CaptureReader::from_read(Box::new(std::io::Cursor::new(bytes.clone()))).unwrap();
            super::super::analyze_reader("t".into(), reader, &cfg).summary
        };
        let capped = read(FlowConfig {
            reassembly_cap: 64,
            ..FlowConfig::default()
        });
        assert!(capped.hellos_over_cap > 0);
        assert!(!capped.flow_table.reassembly_budget_exhausted);
        let starved = read(FlowConfig {
            reassembly_budget: 4096,
            ..FlowConfig::default()
        });
        assert!(starved.flow_table.reassembly_budget_exhausted);
        assert_eq!(starved.hellos_over_cap, 0);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn header(src: &str, dst: &str, proto: u8) -> IpHeader {
        IpHeader {
            src: ip(src),
            dst: ip(dst),
            ttl: 64,
            ip_id: Some(7),
            proto,
            payload_len: 20,
            tunnel: 0,
        }
    }

    fn packet(ip: IpHeader, l4: L4<'static>) -> Packet<'static> {
        Packet {
            vlans: [None, None],
            ip,
            l4,
            truncated: false,
            encap_depth: 0,
            nflog_at: Default::default(),
        }
    }

    fn tcp(sp: u16, dp: u16) -> L4<'static> {
        L4::Tcp(Tcp {
            src_port: sp,
            dst_port: dp,
            seq: 1,
            ack: 0,
            flags: 2,
            window: 100,
            payload: &[],
            payload_len: 0,
        })
    }

    /// A frame that lies in the input's map travels as its place there (nothing copied into
    /// the batch); another is copied. Both come back as the same bytes.
    #[test]
    fn mapped_frames_are_not_copied_into_batches() {
        let map: Vec<u8> = (0..200u8).collect();
        let other = [7u8; 30];
        let frame = |data| Frame {
            ts_ns: 1,
            linktype: 1,
            interface: 0,
            data,
            orig_len: 60,
        };
        let mut b = Batch::with_capacity();
        let inside = &map[40..100];
        let at = offset_in(&map, inside);
        assert_eq!(at, Some(40));
        b.push_frame(0, &frame(inside), i64::MIN, at);
        assert!(b.data.is_empty());
        assert_eq!(offset_in(&map, &other), None);
        assert_eq!(offset_in(&map, &map[150..]), Some(150));
        assert_eq!(
            offset_in(&map[..100], &map[90..110]),
            None,
            "runs past the map"
        );
        b.push_frame(1, &frame(&other), i64::MIN, None);
        assert_eq!(b.data.len(), other.len());
        let bytes = |it: &Item| {
            let src = if it.in_map { &map[..] } else { &b.data[..] };
            src[it.start as usize..][..it.len as usize].to_vec()
        };
        assert_eq!(bytes(&b.items[0]), inside);
        assert_eq!(bytes(&b.items[1]), other);
    }

    #[test]
    fn pair_hash_is_symmetric_and_spreads() {
        let pairs = [
            ("10.0.0.1", "10.0.0.2"),
            ("192.0.2.7", "198.51.100.9"),
            ("2001:db8::1", "2001:db8::2"),
            ("::1", "127.0.0.1"),
            ("10.0.0.1", "10.0.0.1"),
        ];
        for (a, b) in pairs {
            assert_eq!(pair_hash(ip(a), ip(b)), pair_hash(ip(b), ip(a)), "{a} {b}");
        }
        // Many client addresses to one server land on every one of three workers.
        let mut seen = [0u32; 3];
        for i in 0..300u32 {
            let c = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            seen[(pair_hash(c, ip("198.18.1.20")) % 3) as usize] += 1;
        }
        assert!(seen.iter().all(|&k| k > 60), "{seen:?}");
    }

    #[test]
    fn both_directions_fragments_and_icmp_errors_of_a_flow_meet() {
        let (c, s, router) = ("10.99.1.2", "198.18.1.22", "10.99.1.1");
        for n in 2..=7 {
            let out = packet(header(c, s, 6), tcp(40000, 445));
            let back = packet(header(s, c, 6), tcp(445, 40000));
            let w = worker_of(&out, n);
            assert_eq!(worker_of(&back, n), w);
            // A non-first fragment of a datagram of the flow: no ports.
            let frag = packet(
                header(c, s, 17),
                L4::Fragment(crate::decode::Fragment {
                    id: 7,
                    proto: 17,
                    offset: 1480,
                    more_fragments: false,
                    data: &[],
                    data_len: 100,
                }),
            );
            assert_eq!(worker_of(&frag, n), w);
            // An ICMP error from a router on the way, quoting the client's packet.
            let quoted = Quoted {
                proto: 6,
                src: ip(c),
                dst: ip(s),
                src_port: 40000,
                dst_port: 445,
            };
            let err = |quoted| {
                packet(
                    header(router, c, 1),
                    L4::IcmpError(IcmpError {
                        v6: false,
                        icmp_type: 3,
                        code: 13,
                        quoted,
                    }),
                )
            };
            assert_eq!(worker_of(&err(Some(quoted)), n), w);
            // From the server itself (port unreachable): the same.
            let mut from_server = err(Some(quoted));
            from_server.ip.src = ip(s);
            assert_eq!(worker_of(&from_server, n), w);
            // An unreadable quote goes by the error's own addresses (it is credited to no flow).
            assert_eq!(
                worker_of(&err(None), n),
                (pair_hash(ip(router), ip(c)) % n as u64) as usize
            );
        }
    }

    /// A hand-made capture with what a split could get wrong: DNS answers over UDP (with a
    /// router's copy) and over TCP naming later flows, a fragmented datagram, an ICMP error
    /// from a router, a flow that idles out and comes back, a frame without IP, and enough
    /// host pairs to use every worker.
    fn tricky_capture() -> Vec<u8> {
        use crate::decode::tcp_flags::{ACK, FIN, PSH, SYN};
        use crate::decode::testutil::{eth, icmp, tcp, tcp_full, udp, V4};
        use std::net::Ipv4Addr;
        let v4 = |src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, id: u16| V4 {
            src,
            dst,
            ttl,
            id,
            ..V4::new(proto)
        };
        let resolver = Ipv4Addr::new(10, 53, 0, 53);
        let router = Ipv4Addr::new(10, 99, 0, 1);
        let c = |i: u8| Ipv4Addr::new(10, 1, 0, i);
        let mut frames: Vec<(i64, Vec<u8>)> = Vec::new();
        let ms = 1_000_000i64;
        let mut t = 1_700_000_000_000 * ms;
        let mut add = |frames: &mut Vec<(i64, Vec<u8>)>, dt: i64, ip: Vec<u8>| {
            t += dt;
            frames.push((t, eth(0x0800, &ip)));
        };
        // 1. UDP lookup of a.example (answer 198.18.1.1), the router's copy of the answer
        //    (same IP ID, TTL one less), then a plain TCP flow to that address.
        let q = crate::synth::dns_message("a.example", 0x0101, false);
        let r = crate::synth::dns_message("a.example", 0x0101, true);
        let s1 = Ipv4Addr::new(198, 18, 1, 1);
        add(
            &mut frames,
            ms,
            v4(c(1), resolver, 17, 64, 1).build(&udp(5001, 53, &q)),
        );
        add(
            &mut frames,
            ms,
            v4(resolver, c(1), 17, 64, 9).build(&udp(53, 5001, &r)),
        );
        add(
            &mut frames,
            0,
            v4(resolver, c(1), 17, 63, 9).build(&udp(53, 5001, &r)),
        );
        add(
            &mut frames,
            ms,
            v4(c(1), s1, 6, 64, 2).build(&tcp(40001, 443, SYN, &[])),
        );
        add(
            &mut frames,
            ms,
            v4(s1, c(1), 6, 60, 3).build(&tcp(443, 40001, SYN | ACK, &[])),
        );
        // 2. DNS over TCP (b.example, answer 198.18.2.2) on a connection that stays open;
        //    a UDP flow to the answer idles out long before that connection ends.
        let qb = crate::synth::dns_message("b.example", 0x0202, false);
        let rb = crate::synth::dns_message("b.example", 0x0202, true);
        let framed = |m: &[u8]| {
            let mut v = (m.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(m);
            v
        };
        let s2 = Ipv4Addr::new(198, 18, 2, 2);
        let seg =
            |sp, dp, seq, ack, flags, p: &[u8]| tcp_full(sp, dp, seq, ack, flags, 500, &[], p);
        add(
            &mut frames,
            ms,
            v4(c(2), resolver, 6, 64, 4).build(&seg(40002, 53, 100, 0, SYN, &[])),
        );
        add(
            &mut frames,
            ms,
            v4(resolver, c(2), 6, 64, 5).build(&seg(53, 40002, 900, 101, SYN | ACK, &[])),
        );
        add(
            &mut frames,
            ms,
            v4(c(2), resolver, 6, 64, 6).build(&seg(40002, 53, 101, 901, PSH | ACK, &framed(&qb))),
        );
        add(
            &mut frames,
            ms,
            v4(resolver, c(2), 6, 64, 7).build(&seg(
                53,
                40002,
                901,
                101 + 2 + qb.len() as u32,
                PSH | ACK,
                &framed(&rb),
            )),
        );
        add(
            &mut frames,
            ms,
            v4(c(2), s2, 17, 64, 8).build(&udp(5002, 8080, b"ping")),
        );
        // 3. A UDP datagram in two IPv4 fragments (the second without ports).
        let s3 = Ipv4Addr::new(198, 18, 3, 3);
        let whole = udp(5003, 9000, &[7u8; 40]);
        add(
            &mut frames,
            ms,
            V4 {
                mf: true,
                ..v4(c(3), s3, 17, 64, 77)
            }
            .build(&whole[..24]),
        );
        add(
            &mut frames,
            ms,
            V4 {
                frag_off: 24,
                ..v4(c(3), s3, 17, 64, 77)
            }
            .build(&whole[24..]),
        );
        // 4. A SYN answered by a router's ICMP administratively prohibited.
        let s4 = Ipv4Addr::new(198, 18, 4, 4);
        let syn = v4(c(4), s4, 6, 64, 10).build(&tcp(40004, 445, SYN, &[]));
        add(&mut frames, ms, syn.clone());
        add(
            &mut frames,
            ms,
            v4(router, c(4), 1, 64, 11).build(&icmp(3, 13, [0; 4], &syn[..28])),
        );
        // 5. Many host pairs, each a short exchange.
        for i in 10..60u8 {
            let s = Ipv4Addr::new(198, 18, 9, i);
            add(
                &mut frames,
                ms,
                v4(c(i), s, 17, 64, 12).build(&udp(6000 + u16::from(i), 7000, b"x")),
            );
            add(
                &mut frames,
                0,
                v4(s, c(i), 17, 64, 13).build(&udp(7000, 6000 + u16::from(i), b"y")),
            );
        }
        // 6. A frame without IP (ARP).
        let last = frames.last().unwrap().0;
        frames.push((last, eth(0x0806, &[0u8; 28])));
        // 7. Much later: the UDP flow of 1. comes back after its idle time (a second flow),
        //    and the DNS-over-TCP connection finally ends.
        add(
            &mut frames,
            10_000 * ms,
            v4(c(2), s2, 17, 64, 14).build(&udp(5002, 8080, b"again")),
        );
        add(
            &mut frames,
            ms,
            v4(c(2), resolver, 6, 64, 15).build(&seg(
                40002,
                53,
                103 + qb.len() as u32,
                903 + rb.len() as u32,
                FIN | ACK,
                &[],
            )),
        );
        let mut pcap = crate::capture::testutil::PcapB::new(false, true, 65535, 1);
        for (ts, f) in &frames {
            let (sec, ns) = (ts / 1_000_000_000, ts % 1_000_000_000);
            pcap = pcap.rec(sec as u32, ns as u32, f, f.len() as u32);
        }
        pcap.build()
    }

    fn run(bytes: &[u8], workers: usize, cfg: &FlowConfig) -> FileResult {
        let reader =
            CaptureReader::from_read(Box::new(std::io::Cursor::new(bytes.to_vec()))).unwrap();
        analyze_reader_split("t.pcap".into(), reader, cfg, workers)
    }

    fn fingerprint(r: &FileResult) -> String {
        format!(
            "{}\n{:?}\n{:?}",
            serde_json::to_string(&r.summary).unwrap(),
            r.flows,
            r.dns
        )
    }

    #[test]
    fn any_number_of_workers_gives_what_one_gives() {
        let cfg = FlowConfig {
            udp_idle_ns: 2_000_000_000,
            ..FlowConfig::default()
        };
        let bytes = tricky_capture();
        let one = run(&bytes, 1, &cfg);
        let s = &one.summary;
        assert_eq!(s.skipped.not_ip, 1);
        assert_eq!((s.fragments.fragments, s.fragments.reassembled), (2, 1));
        assert_eq!(s.flow_table.flows, 57, "{:?}", s.flow_table);
        assert_eq!(s.flow_table.peak_live, crate::flow::peak_live(&one.flows));
        // The router's copy of the UDP answer is one message; the TCP query and answer count.
        assert_eq!(one.dns.len(), 4);
        let to = |last: u8| {
            one.flows
                .iter()
                .filter(|f| f.server.ip == IpAddr::from([198, 18, last, last]))
                .collect::<Vec<_>>()
        };
        assert_eq!(to(1)[0].facts.name.as_deref(), Some("a.example"));
        // Named by the answer that came over TCP although that connection was still open
        // when this flow idled out; the second flow too.
        let b = to(2);
        assert_eq!(b.len(), 2);
        assert!(b
            .iter()
            .all(|f| f.facts.name.as_deref() == Some("b.example")));
        assert_eq!(to(3)[0].dirs[0].packets, 1);
        assert_eq!(to(4)[0].icmp().len(), 1);
        let want = fingerprint(&one);
        for n in 2..=6 {
            let got = run(&bytes, n, &cfg);
            assert!(got.flows.len() == one.flows.len(), "{n} workers");
            assert_eq!(fingerprint(&got), want, "{n} workers");
        }
    }

    #[test]
    fn a_damaged_input_keeps_what_came_before_the_damage_with_the_same_error() {
        let mut bytes = tricky_capture();
        // A bogus captured length in the record header after a few dozen records.
        let cfg = FlowConfig::default();
        let whole = run(&bytes, 1, &cfg);
        let mut off = 24;
        for _ in 0..40 {
            let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap());
            off += 16 + caplen as usize;
        }
        bytes[off + 8..off + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let one = run(&bytes, 1, &cfg);
        assert!(one
            .summary
            .error
            .as_deref()
            .unwrap()
            .contains("bogus captured length"));
        assert_eq!(one.summary.packets, 40);
        assert!(!one.flows.is_empty() && one.flows.len() < whole.flows.len());
        for n in 2..=4 {
            assert_eq!(
                fingerprint(&run(&bytes, n, &cfg)),
                fingerprint(&one),
                "{n} workers"
            );
        }
    }

    #[test]
    fn evictions_are_counted_across_workers() {
        let cfg = FlowConfig {
            max_flows: 16,
            ..FlowConfig::default()
        };
        let bytes = tricky_capture();
        for n in 1..=4 {
            let r = run(&bytes, n, &cfg);
            let t = &r.summary.flow_table;
            assert!(t.evicted > 0, "{n} workers");
            assert_eq!(
                r.flows.iter().filter(|f| f.evicted).count() as u64,
                t.evicted,
                "{n} workers"
            );
            // Each worker keeps to its share of the cap.
            assert!(t.peak_live <= 16, "{n} workers: {}", t.peak_live);
        }
    }

    /// Random damage (bit flips anywhere, timestamps included, so frames go back in time;
    /// cuts) never makes a split read differ from a single one.
    #[test]
    fn damaged_inputs_split_the_same() {
        let clean = tricky_capture();
        let cfg = FlowConfig {
            udp_idle_ns: 2_000_000_000,
            ..FlowConfig::default()
        };
        let mut rng = crate::rng::XorShift::new(0x0005_b117);
        for round in 0..150 {
            let mut bytes = clean.clone();
            for _ in 0..1 + rng.below(6) {
                let i = 24 + rng.below(bytes.len() - 24);
                bytes[i] ^= 1 << rng.below(8);
            }
            if rng.below(4) == 0 {
                bytes.truncate(24 + rng.below(bytes.len() - 24));
            }
            let one = fingerprint(&run(&bytes, 1, &cfg));
            assert_eq!(fingerprint(&run(&bytes, 3, &cfg)), one, "round {round}");
        }
    }
}

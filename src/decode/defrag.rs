//! IPv4/IPv6 fragment reassembly with bounded memory.
//!
//! Each pending datagram keeps one buffer (as long as the furthest byte received) and a
//! sorted list of the byte ranges received. Overlapping data is counted and the bytes that
//! arrived first are kept. Memory is bounded by a byte budget and a datagram count (the
//! least recently active datagram is dropped first), and datagrams idle longer than the
//! timeout are expired.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::ip::MAX_DATAGRAM;
use super::{FragKey, Fragment, IpHeader};

/// A datagram: its fragment key and the tunnel its fragments came through
/// (`IpHeader::tunnel`), so the same datagram id in two tunnels is two datagrams.
type Key = (FragKey, u32);

/// Counters kept by a [`Defragmenter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Datagrams reassembled and returned.
    pub completed: u64,
    /// Datagrams dropped because no fragment arrived for longer than the timeout.
    pub expired: u64,
    /// Datagrams dropped to stay within the byte or datagram limits, or because their
    /// fragments described a datagram over 65535 bytes or disagreed on its length.
    pub dropped_over_limit: u64,
    /// Fragments whose data overlapped data already received (duplicates included); the
    /// bytes received first are kept.
    pub overlaps: u64,
    /// Fragments pushed.
    pub fragments: u64,
}

/// A reassembled datagram: pass it to [`super::decode_transport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The first fragment's IP header facts (addresses, TTL, IPv4 id), with `proto` the
    /// fragmented protocol and `payload_len` the reassembled length.
    pub ip: IpHeader,
    /// The reassembled transport bytes (for IPv6: what followed the Fragment header).
    pub data: Vec<u8>,
}

/// One datagram being reassembled.
#[derive(Debug)]
struct Pending {
    /// Key of this datagram in the activity index.
    activity: (i64, u64),
    /// Header facts of the offset-0 fragment, once seen.
    first: Option<IpHeader>,
    /// Received bytes at their offsets (gaps are zero).
    data: Vec<u8>,
    /// Received ranges `[start, end)`: sorted, disjoint, not touching.
    have: Vec<(u32, u32)>,
    /// Datagram length, known from the fragment with MF=0.
    total: Option<u32>,
}

impl Pending {
    /// Bytes this datagram holds, as counted against the budget.
    fn footprint(&self) -> usize {
        self.data.len() + self.have.len() * std::mem::size_of::<(u32, u32)>()
    }

    fn complete(&self) -> bool {
        match (self.total, self.first) {
            (Some(0), Some(_)) => self.have.is_empty(),
            (Some(t), Some(_)) => self.have.as_slice() == [(0, t)],
            _ => false,
        }
    }

    /// Copy the parts of `src` (at `start`) not received yet; merge the range. Returns true
    /// when some of it had been received before.
    fn insert(&mut self, start: u32, src: &[u8]) -> bool {
        let end = start.saturating_add(u32::try_from(src.len()).unwrap_or(u32::MAX));
        if end <= start {
            return false;
        }
        if self.data.len() < end as usize {
            let grow = end as usize - self.data.len();
            self.data.reserve_exact(grow);
            self.data.resize(end as usize, 0);
        }
        let mut overlap = false;
        let mut cur = start;
        for &(a, b) in &self.have {
            if b <= cur {
                continue;
            }
            if a >= end {
                break;
            }
            if a > cur {
                copy(&mut self.data, src, start, cur, a);
            }
            overlap = true;
            cur = cur.max(b);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            copy(&mut self.data, src, start, cur, end);
        }
        // Merge [start, end) with every range it touches or overlaps.
        let i = self.have.partition_point(|&(_, b)| b < start);
        let j = self.have.partition_point(|&(a, _)| a <= end);
        if i >= j {
            self.have.insert(i, (start, end));
        } else {
            let lo = self.have.get(i).map_or(start, |r| r.0.min(start));
            let hi = self.have.get(j - 1).map_or(end, |r| r.1.max(end));
            if let Some(r) = self.have.get_mut(i) {
                *r = (lo, hi);
            }
            self.have.drain(i + 1..j);
        }
        overlap
    }
}

/// Copy `src[from - start .. to - start]` to `dst[from..to]`.
fn copy(dst: &mut [u8], src: &[u8], start: u32, from: u32, to: u32) {
    let (s, e) = ((from - start) as usize, (to - start) as usize);
    if let (Some(d), Some(s)) = (dst.get_mut(from as usize..to as usize), src.get(s..e)) {
        d.copy_from_slice(s);
    }
}

/// Reassembles fragmented IPv4/IPv6 datagrams with bounded memory.
#[derive(Debug)]
pub struct Defragmenter {
    max_bytes: usize,
    max_datagrams: usize,
    timeout_ns: i64,
    pending: FxHashMap<Key, Pending>,
    /// Pending datagrams by (last activity, sequence): the first is the least recently
    /// active, expired or evicted first.
    activity: BTreeMap<(i64, u64), Key>,
    next_seq: u64,
    buffered: usize,
    stats: DefragStats,
}

/// The bounds of [`Defragmenter::default`].
pub mod defaults {
    /// Fragment bytes held at most.
    pub const MAX_BYTES: usize = 4 << 20;
    /// Datagrams waiting for fragments at most.
    pub const MAX_DATAGRAMS: usize = 1024;
    /// A datagram with no fragment for longer than this is dropped.
    pub const TIMEOUT_NS: i64 = 30_000_000_000;
}

impl Default for Defragmenter {
    /// 4 MiB, 1024 datagrams, 30 s.
    fn default() -> Self {
        Self::new(
            defaults::MAX_BYTES,
            defaults::MAX_DATAGRAMS,
            defaults::TIMEOUT_NS,
        )
    }
}

impl Defragmenter {
    /// A defragmenter holding at most `max_bytes` of fragment data in at most
    /// `max_datagrams` datagrams, dropping datagrams idle for more than `timeout_ns`.
    pub fn new(max_bytes: usize, max_datagrams: usize, timeout_ns: i64) -> Self {
        Defragmenter {
            max_bytes,
            max_datagrams,
            timeout_ns,
            pending: FxHashMap::default(),
            activity: BTreeMap::new(),
            next_seq: 0,
            buffered: 0,
            stats: DefragStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Bytes currently buffered (fragment data and range bookkeeping).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Datagrams currently waiting for fragments.
    pub fn pending_datagrams(&self) -> usize {
        self.pending.len()
    }

    /// Add a fragment seen at `ts_ns` whose packet had the header facts `ip`; returns the
    /// whole datagram once every byte of it has arrived. Datagrams idle for longer than
    /// the timeout at `ts_ns` are expired first.
    ///
    /// Only the captured bytes of a fragment are used: a fragment cut by the snap length
    /// leaves a hole, and its datagram eventually expires.
    pub fn push(&mut self, ts_ns: i64, ip: &IpHeader, frag: &Fragment<'_>) -> Option<Reassembled> {
        self.stats.fragments += 1;
        self.expire(ts_ns);
        let key = (frag.key(ip), ip.tunnel);
        let start = frag.offset;
        let declared_end = u64::from(start) + u64::from(frag.data_len);
        if declared_end > u64::from(MAX_DATAGRAM) {
            // Over 65535 bytes: a malformed or hostile datagram.
            if self.pending.contains_key(&key) {
                self.remove(&key);
            }
            self.stats.dropped_over_limit += 1;
            return None;
        }
        let declared_end = declared_end as u32;
        let keep = frag.data.get(..frag.data_len as usize).unwrap_or(frag.data);

        if !self.pending.contains_key(&key) {
            if frag.data_len == 0 && frag.more_fragments {
                // Nothing to keep.
                return None;
            }
            if self.max_datagrams == 0 {
                self.stats.dropped_over_limit += 1;
                return None;
            }
            while self.pending.len() >= self.max_datagrams {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            let seq = self.bump();
            self.activity.insert((ts_ns, seq), key);
            self.pending.insert(
                key,
                Pending {
                    activity: (ts_ns, seq),
                    first: None,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                },
            );
        } else {
            // Refresh activity.
            let seq = self.bump();
            if let Some(p) = self.pending.get_mut(&key) {
                let old = p.activity;
                p.activity = (old.0.max(ts_ns), seq);
                self.activity.remove(&old);
                self.activity.insert(p.activity, key);
            }
        }

        let p = self.pending.get_mut(&key)?;
        // Length consistency: one final length, and no data past it.
        let inconsistent = if frag.more_fragments {
            p.total.is_some_and(|t| declared_end > t)
        } else {
            p.total.is_some_and(|t| t != declared_end)
                || p.have.last().is_some_and(|&(_, b)| b > declared_end)
        };
        if inconsistent {
            self.remove(&key);
            self.stats.dropped_over_limit += 1;
            return None;
        }
        if !frag.more_fragments {
            p.total = Some(declared_end);
        }
        if start == 0 && p.first.is_none() {
            p.first = Some(*ip);
        }
        let before = p.footprint();
        if p.insert(start, keep) {
            self.stats.overlaps += 1;
        }
        let after = p.footprint();
        self.buffered = self.buffered.saturating_sub(before) + after;

        if p.complete() {
            let total = p.total.unwrap_or(0);
            let first = p.first?;
            let mut p = self.remove(&key)?;
            p.data.truncate(total as usize);
            self.stats.completed += 1;
            return Some(Reassembled {
                ip: IpHeader {
                    proto: key.0.proto,
                    payload_len: total,
                    ..first
                },
                data: p.data,
            });
        }

        // Byte budget: drop the least recently active other datagrams, then this one.
        while self.buffered > self.max_bytes {
            if !self.evict_oldest(Some(&key)) {
                self.remove(&key);
                self.stats.dropped_over_limit += 1;
                break;
            }
        }
        None
    }

    /// Drop datagrams that have seen no fragment for longer than the timeout at `now_ns`.
    pub fn expire(&mut self, now_ns: i64) {
        while let Some((&(last, _), &key)) = self.activity.first_key_value() {
            if now_ns.saturating_sub(last) <= self.timeout_ns {
                break;
            }
            self.remove(&key);
            self.stats.expired += 1;
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Remove a datagram and its bookkeeping.
    fn remove(&mut self, key: &Key) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.activity.remove(&p.activity);
        self.buffered = self.buffered.saturating_sub(p.footprint());
        Some(p)
    }

    /// Drop the least recently active datagram other than `keep`; false if there is none.
    fn evict_oldest(&mut self, keep: Option<&Key>) -> bool {
        let victim = self.activity.values().find(|k| Some(*k) != keep).copied();
        match victim {
            Some(k) => {
                self.remove(&k);
                self.stats.dropped_over_limit += 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{decode, decode_transport, Packet, L4};
    use super::*;

    const SEC: i64 = 1_000_000_000;

    /// A UDP datagram (header + `n` payload bytes with a recognisable pattern).
    fn udp_datagram(n: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        udp(4500, 500, &payload)
    }

    /// Split `datagram` into IPv4 fragments at the given byte boundaries.
    fn v4_frags(datagram: &[u8], cuts: &[usize], id: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(datagram.len());
        for w in bounds.windows(2) {
            let mut h = V4::new(17).frag(w[0] as u16, w[1] != datagram.len());
            h.id = id;
            out.push(h.build(&datagram[w[0]..w[1]]));
        }
        out
    }

    /// Split `datagram` into IPv6 fragments (after a hop-by-hop header).
    fn v6_frags(datagram: &[u8], cuts: &[usize], id: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(datagram.len());
        for w in bounds.windows(2) {
            let mut rest = opts_ext(44, 0);
            rest.extend(frag_ext(17, w[0] as u16, w[1] != datagram.len(), id));
            rest.extend_from_slice(&datagram[w[0]..w[1]]);
            out.push(ipv6(0, &rest));
        }
        out
    }

    fn push_frame(d: &mut Defragmenter, ts: i64, frame: &[u8]) -> Option<Reassembled> {
        let p: Packet<'_> = decode(101, frame).unwrap();
        match p.l4 {
            L4::Fragment(f) => d.push(ts, &p.ip, &f),
            other => panic!("not a fragment: {other:?}"),
        }
    }

    fn check_udp(r: &Reassembled, datagram: &[u8]) {
        assert_eq!(r.data, datagram);
        assert_eq!(r.ip.payload_len as usize, datagram.len());
        assert_eq!(r.ip.proto, 17);
        let (l4, truncated) = decode_transport(r.ip, &r.data);
        assert!(!truncated);
        let L4::Udp(u) = l4 else { panic!("{l4:?}") };
        assert_eq!((u.src_port, u.dst_port), (4500, 500));
        assert_eq!(u.payload, &datagram[8..]);
        assert_eq!(u.payload_len as usize, datagram.len() - 8);
    }

    fn run(d: &mut Defragmenter, frames: &[Vec<u8>], order: &[usize]) -> Option<Reassembled> {
        let mut done = None;
        for (n, &i) in order.iter().enumerate() {
            let r = push_frame(d, n as i64 * 1000, &frames[i]);
            if r.is_some() {
                assert!(done.is_none(), "completed twice");
                done = r;
            }
        }
        done
    }

    #[test]
    fn ipv4_three_fragments_in_order() {
        let dg = udp_datagram(2992);
        let frames = v4_frags(&dg, &[1480, 2960], 7);
        let mut d = Defragmenter::default();
        assert!(push_frame(&mut d, 0, &frames[0]).is_none());
        assert!(push_frame(&mut d, 1, &frames[1]).is_none());
        let r = push_frame(&mut d, 2, &frames[2]).unwrap();
        check_udp(&r, &dg);
        assert_eq!(r.ip.ip_id, Some(7));
        assert_eq!(r.ip.ttl, 64);
        assert_eq!(
            *d.stats(),
            DefragStats {
                completed: 1,
                fragments: 3,
                ..DefragStats::default()
            }
        );
        assert_eq!(d.buffered_bytes(), 0);
        assert_eq!(d.pending_datagrams(), 0);
    }

    #[test]
    fn ipv4_fragments_out_of_order() {
        let dg = udp_datagram(2992);
        let frames = v4_frags(&dg, &[1480, 2960], 8);
        for order in [[2, 0, 1], [1, 2, 0], [2, 1, 0], [0, 2, 1]] {
            let mut d = Defragmenter::default();
            let r = run(&mut d, &frames, &order).expect("complete");
            check_udp(&r, &dg);
            assert_eq!(d.stats().overlaps, 0);
        }
    }

    #[test]
    fn ipv4_overlap_first_data_wins() {
        let dg = udp_datagram(200);
        let mut frames = v4_frags(&dg, &[96], 9);
        // An overlapping fragment covering 64..160 with different bytes, sent second.
        let mut h = V4::new(17).frag(64, true);
        h.id = 9;
        frames.push(h.build(&[0xee; 96]));
        let mut d = Defragmenter::default();
        let r = run(&mut d, &frames, &[0, 2, 1]).unwrap();
        let expected: Vec<u8> = dg[..96]
            .iter()
            .chain(&[0xee; 64])
            .chain(&dg[160..])
            .copied()
            .collect();
        check_udp(&r, &expected);
        // The third fragment overlapped the first, the second overlapped the third.
        assert_eq!(d.stats().overlaps, 2);
        // Overlap arriving after the data it overlaps: the original bytes are kept.
        let mut d = Defragmenter::default();
        let r = run(&mut d, &frames, &[0, 1, 2]);
        let r = r.expect("complete after the second fragment");
        check_udp(&r, &dg);
    }

    #[test]
    fn ipv4_duplicate_fragment() {
        let dg = udp_datagram(2992);
        let frames = v4_frags(&dg, &[1480, 2960], 10);
        let mut d = Defragmenter::default();
        let r = run(&mut d, &frames, &[0, 1, 1, 2]).unwrap();
        check_udp(&r, &dg);
        assert_eq!(d.stats().overlaps, 1);
        assert_eq!(d.stats().fragments, 4);
        // A duplicate after completion starts a new datagram that expires.
        assert!(push_frame(&mut d, 10, &frames[1]).is_none());
        d.expire(10 + 31 * SEC);
        assert_eq!(d.stats().expired, 1);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn missing_fragment_expires() {
        let dg = udp_datagram(2992);
        let frames = v4_frags(&dg, &[1480, 2960], 11);
        let mut d = Defragmenter::new(1 << 20, 16, 30 * SEC);
        assert!(push_frame(&mut d, 0, &frames[0]).is_none());
        assert!(push_frame(&mut d, SEC, &frames[2]).is_none());
        assert_eq!(d.pending_datagrams(), 1);
        assert!(d.buffered_bytes() >= dg.len());
        d.expire(30 * SEC); // idle for 29 s: kept
        assert_eq!(d.pending_datagrams(), 1);
        d.expire(SEC + 30 * SEC + 1);
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.stats().expired, 1);
        assert_eq!(d.buffered_bytes(), 0);
        // The late fragment alone does not complete anything.
        assert!(push_frame(&mut d, 40 * SEC, &frames[1]).is_none());
        // Push also expires: a later unrelated fragment drops the stale one.
        let other = v4_frags(&dg, &[1480], 12);
        assert!(push_frame(&mut d, 80 * SEC, &other[0]).is_none());
        assert_eq!(d.stats().expired, 2);
        assert_eq!(d.pending_datagrams(), 1);
    }

    #[test]
    fn over_limit_eviction() {
        let dg = udp_datagram(2992);
        // Datagram count limit: the least recently active datagram goes.
        let mut d = Defragmenter::new(1 << 20, 2, 30 * SEC);
        let a = v4_frags(&dg, &[1480, 2960], 1);
        let b = v4_frags(&dg, &[1480, 2960], 2);
        let c = v4_frags(&dg, &[1480, 2960], 3);
        assert!(push_frame(&mut d, 1, &a[0]).is_none());
        assert!(push_frame(&mut d, 2, &b[0]).is_none());
        assert!(push_frame(&mut d, 3, &a[1]).is_none()); // a is now the most recent
        assert!(push_frame(&mut d, 4, &c[0]).is_none()); // evicts b
        assert_eq!(d.stats().dropped_over_limit, 1);
        assert_eq!(d.pending_datagrams(), 2);
        check_udp(&push_frame(&mut d, 5, &a[2]).unwrap(), &dg);
        assert!(push_frame(&mut d, 6, &b[1]).is_none()); // b starts over
        assert!(push_frame(&mut d, 7, &b[2]).is_none());
        // Byte limit: room for about one datagram.
        let mut d = Defragmenter::new(4000, 100, 30 * SEC);
        assert!(push_frame(&mut d, 1, &a[0]).is_none());
        assert!(push_frame(&mut d, 2, &a[1]).is_none());
        assert!(push_frame(&mut d, 3, &b[0]).is_none()); // over 4000: a goes
        assert_eq!(d.stats().dropped_over_limit, 1);
        assert_eq!(d.pending_datagrams(), 1);
        assert!(d.buffered_bytes() <= 4000);
        assert!(push_frame(&mut d, 4, &b[1]).is_none());
        check_udp(&push_frame(&mut d, 5, &b[2]).unwrap(), &dg);
        // A late fragment of the evicted datagram starts it over, alone.
        assert!(push_frame(&mut d, 6, &a[2]).is_none());
        assert_eq!(d.pending_datagrams(), 1);
        // A single datagram bigger than the budget is dropped.
        let mut d = Defragmenter::new(1000, 100, 30 * SEC);
        assert!(push_frame(&mut d, 1, &a[2]).is_none()); // 40 bytes at offset 2960
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.stats().dropped_over_limit, 1);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn oversized_and_inconsistent_datagrams_are_dropped() {
        let mut d = Defragmenter::default();
        // Offset 65528 + 16 bytes > 65535.
        let big = V4::new(17).frag(65528, false).build(&[0; 16]);
        assert!(push_frame(&mut d, 0, &big).is_none());
        assert_eq!(d.stats().dropped_over_limit, 1);
        assert_eq!(d.pending_datagrams(), 0);
        // Two last fragments that disagree on the length.
        let dg = udp_datagram(2992);
        let f = v4_frags(&dg, &[1480, 2960], 5);
        assert!(push_frame(&mut d, 1, &f[2]).is_none());
        let other_end = V4 {
            id: 5,
            ..V4::new(17)
        }
        .frag(1480, false)
        .build(&[0; 80]);
        assert!(push_frame(&mut d, 2, &other_end).is_none());
        assert_eq!(d.stats().dropped_over_limit, 2);
        // Data past the known end.
        assert!(push_frame(&mut d, 3, &f[2]).is_none());
        let past = V4 {
            id: 5,
            ..V4::new(17)
        }
        .frag(2960, true)
        .build(&[0; 80]);
        assert!(push_frame(&mut d, 4, &past).is_none());
        assert_eq!(d.stats().dropped_over_limit, 3);
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn distinct_keys_do_not_mix() {
        let dg = udp_datagram(100);
        let a = v4_frags(&dg, &[48], 1);
        let mut b = v4_frags(&dg, &[48], 1);
        // Same id, other source.
        for f in &mut b {
            f[12..16].copy_from_slice(&[192, 0, 2, 1]);
        }
        let mut d = Defragmenter::default();
        assert!(push_frame(&mut d, 0, &a[0]).is_none());
        assert!(push_frame(&mut d, 0, &b[1]).is_none());
        assert_eq!(d.pending_datagrams(), 2);
        let r = push_frame(&mut d, 0, &a[1]).unwrap();
        assert_eq!(r.ip.src, std::net::IpAddr::V4(V4_A));
        check_udp(&r, &dg);
    }

    #[test]
    fn cut_fragment_never_completes() {
        let dg = udp_datagram(2992);
        let f = v4_frags(&dg, &[1480, 2960], 6);
        let mut d = Defragmenter::default();
        assert!(push_frame(&mut d, 0, &f[0]).is_none());
        assert!(push_frame(&mut d, 0, &f[1][..200]).is_none());
        assert!(push_frame(&mut d, 0, &f[2]).is_none());
        assert_eq!(d.pending_datagrams(), 1);
        d.expire(i64::MAX);
        assert_eq!(d.stats().expired, 1);
    }

    #[test]
    fn ipv6_fragments() {
        let dg = udp_datagram(3000);
        let frames = v6_frags(&dg, &[1232, 2464], 0xabcd_0001);
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let mut d = Defragmenter::default();
            let r = run(&mut d, &frames, &order).expect("complete");
            check_udp(&r, &dg);
            assert_eq!(r.ip.ip_id, None);
            assert_eq!(r.ip.ttl, 57);
        }
        // Overlap and duplicate.
        let mut rest = opts_ext(44, 0);
        rest.extend(frag_ext(17, 1000, true, 0xabcd_0001));
        rest.extend([0xee; 400]);
        let overlap = ipv6(0, &rest);
        let mut all = frames.clone();
        all.push(overlap);
        let mut d = Defragmenter::default();
        let r = run(&mut d, &all, &[0, 0, 1, 3, 2]).unwrap();
        check_udp(&r, &dg);
        assert_eq!(d.stats().overlaps, 2);
        // Missing fragment expires.
        let mut d = Defragmenter::new(1 << 20, 8, SEC);
        assert!(run(&mut d, &frames, &[0, 2]).is_none());
        d.expire(5 * SEC);
        assert_eq!(d.stats().expired, 1);
        // Over the datagram limit.
        let mut d = Defragmenter::new(1 << 20, 1, SEC);
        let other = v6_frags(&dg, &[1232, 2464], 2);
        assert!(push_frame(&mut d, 0, &frames[0]).is_none());
        assert!(push_frame(&mut d, 1, &other[0]).is_none());
        assert_eq!(d.stats().dropped_over_limit, 1);
        assert!(push_frame(&mut d, 2, &other[1]).is_none());
        check_udp(&push_frame(&mut d, 3, &other[2]).unwrap(), &dg);
    }

    #[test]
    fn ipv6_reassembled_with_extension_after_fragment_header() {
        // Destination options inside the fragmentable part, then UDP.
        let dg = udp_datagram(600);
        let mut inner = opts_ext(17, 0);
        inner.extend(&dg);
        let mut d = Defragmenter::default();
        let mut done = None;
        for (off, more) in [(0usize, true), (304, false)] {
            let end = if more { 304 } else { inner.len() };
            let mut rest = frag_ext(60, off as u16, more, 3);
            rest.extend_from_slice(&inner[off..end]);
            done = push_frame(&mut d, 0, &ipv6(44, &rest));
        }
        let r = done.unwrap();
        assert_eq!(r.ip.proto, 60);
        let (l4, truncated) = decode_transport(r.ip, &r.data);
        assert!(!truncated);
        let L4::Udp(u) = l4 else { panic!("{l4:?}") };
        assert_eq!(u.payload, &dg[8..]);
    }

    #[test]
    fn random_fragment_streams_keep_invariants() {
        let mut rng = Rng(7);
        let mut d = Defragmenter::new(20_000, 8, 10 * SEC);
        for i in 0..20_000i64 {
            let key = FragKey {
                src: std::net::IpAddr::V4(V4_A),
                dst: std::net::IpAddr::V4(V4_B),
                id: rng.below(12) as u32,
                proto: 17,
            };
            let offset = (rng.below(70_000 / 8) * 8) as u32;
            let len = rng.below(3000);
            let data = vec![1u8; len];
            let frag = Fragment {
                id: key.id,
                proto: key.proto,
                offset: if rng.below(4) == 0 {
                    offset
                } else {
                    offset % 4096
                },
                more_fragments: rng.below(3) != 0,
                data: &data[..rng.below(len + 1)],
                data_len: len as u32,
            };
            let ip = IpHeader {
                src: key.src,
                dst: key.dst,
                ttl: 1,
                ip_id: Some(key.id as u16),
                proto: 17,
                payload_len: len as u32,
                tunnel: 0,
            };
            if let Some(r) = d.push(i * 1000, &ip, &frag) {
                assert_eq!(r.data.len(), r.ip.payload_len as usize);
                let _ = decode_transport(r.ip, &r.data);
            }
            assert!(d.buffered_bytes() <= 20_000);
            assert!(d.pending_datagrams() <= 8);
            let recount: usize = d.pending.values().map(Pending::footprint).sum();
            assert_eq!(recount, d.buffered_bytes());
            assert_eq!(d.activity.len(), d.pending.len());
        }
        assert!(d.stats().fragments == 20_000);
    }
}

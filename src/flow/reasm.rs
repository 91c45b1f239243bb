//! Reassembly of the first flight of one TCP direction.
//!
//! Keeps the first `cap` bytes of a byte stream in sequence order: enough for a ClientHello of
//! several segments, an HTTP request head or a few DNS-over-TCP messages. Retransmissions and
//! overlaps are trimmed (the first copy of a byte wins), out-of-order segments wait until the
//! gap before them is filled, and bytes the capture never had (a segment cut by the snap length,
//! a segment that was never captured) are remembered as such, so an extractor can tell
//! "truncated" from "absent".

/// Bytes a stream's buffer starts with (at most the cap).
const FIRST_RESERVE: usize = 4096;

/// What happened to one segment offered to [`Stream::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// At least one new byte (or the segment lies beyond the cap and is simply not kept).
    New,
    /// Every byte of the segment had been seen before: a retransmission.
    Retransmission,
}

/// The reassembled start of one direction of a TCP connection. A direction that never sent
/// payload (a SYN flood's, an unanswered SYN's) holds only its start: the rest is allocated
/// with its first payload, so a live flow without data stays small.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Sequence number of the first payload byte (ISN + 1, or the first data segment's
    /// sequence number when the SYN was not seen).
    base: Option<u32>,
    held: Option<Box<Held>>,
}

/// What a stream keeps once payload came: the bytes and what is known of them.
#[derive(Debug, Clone, Default)]
// The fields every segment reads first, together (see `Flow`'s layout).
#[repr(C)]
struct Held {
    /// The offset of the first TLS ApplicationData record: nothing past its header is kept.
    sealed_at: Option<u32>,
    /// A segment arrived shorter than its declared length (snap length) at this offset.
    cut_at: Option<u32>,
    /// Encrypted bypass (see [`Stream::encrypted_from`]): where the next TLS record header
    /// is expected in the contiguous bytes, or [`WALK_OFF`] once the stream is known not to
    /// be a run of TLS records from its start.
    tls_walk: u32,
    /// Bytes offered that differed from bytes already kept at the same offset.
    conflicts: u32,
    /// Highest relative end offset announced by any segment (declared length, not captured).
    max_end: u64,
    /// The cap in force (bytes kept at most from the start).
    limit: usize,
    /// Contiguous bytes from `base`.
    data: Vec<u8>,
    /// Out-of-order pieces waiting for the gap before them: (relative offset, bytes).
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    /// Contiguous length at the time the buffers were released (counters outlive the bytes).
    released_len: usize,
    /// Bytes were not kept because the table-wide budget (or the pending bound) ran out.
    budget_refused: bool,
}

/// `Held::tls_walk` when the stream does not start as TLS records (or was sealed).
const WALK_OFF: u32 = u32::MAX;

impl Stream {
    /// Sets the sequence number of the first payload byte (from the SYN: ISN + 1).
    pub fn set_base(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq);
        }
    }

    pub fn has_base(&self) -> bool {
        self.base.is_some()
    }

    /// Offers one segment. `payload` is what the capture holds, `declared` what the IP header
    /// says the segment carried (>= payload.len()). `cap` bounds the bytes kept; `budget` is the
    /// table-wide allowance of buffered bytes, decreased by what this call keeps.
    pub fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        declared: u32,
        cap: usize,
        budget: &mut usize,
    ) -> Pushed {
        let declared = declared.max(payload.len() as u32);
        if declared == 0 {
            return Pushed::New;
        }
        let base = *self.base.get_or_insert(seq);
        let h = self.held.get_or_insert_with(Box::default);
        // Once sealed, nothing past the first ApplicationData record's header is kept.
        let cap = h.sealed_at.map_or(cap, |at| (at as usize + 5).min(cap));
        h.limit = cap;
        // Offset relative to the start, wrapping-aware: a segment a little before the start is a
        // (partial) retransmission of bytes we will never see again.
        let rel = seq.wrapping_sub(base) as i32 as i64;
        let end = rel + declared as i64;
        if end <= 0 {
            return Pushed::Retransmission;
        }
        let end = end as u64;
        let was_seen = end <= h.max_end;
        h.max_end = h.max_end.max(end);
        // Trim what lies before the start.
        let skip = (-rel).max(0) as usize;
        let rel = rel.max(0) as u64;
        let captured = payload.get(skip..).unwrap_or(&[]);
        if (captured.len() as u64) < end - rel && h.cut_at.is_none() {
            h.cut_at = Some((rel + captured.len() as u64).min(u32::MAX as u64) as u32);
        }
        let verdict = if was_seen {
            Pushed::Retransmission
        } else {
            Pushed::New
        };
        if rel >= cap as u64 {
            return verdict;
        }
        let rel = rel as usize;
        let captured = &captured[..captured.len().min(cap - rel)];
        let have = h.data.len();
        if rel <= have {
            // Overlaps or extends the contiguous part; the first copy of a byte wins.
            let overlap = (have - rel).min(captured.len());
            if h.data[rel..rel + overlap] != captured[..overlap] {
                h.conflicts += 1;
            }
            let mut fresh = &captured[overlap..];
            // Encrypted bypass: find the first ApplicationData header before copying, so the
            // ciphertext after it is never copied.
            let seal_at = if h.tls_walk == WALK_OFF {
                None
            } else {
                h.walk_tls(fresh)
            };
            if let Some(at) = seal_at {
                fresh = &fresh[..(at + 5).saturating_sub(have).min(fresh.len())];
            }
            let n = fresh.len().min(*budget);
            if n < fresh.len() {
                h.budget_refused = true;
            }
            if h.data.capacity() == 0 && n > 0 {
                // A first flight is mostly a few segments: start with room for some of them
                // rather than growing from one segment's size in many small steps; TLS records
                // (sealed within their first few segments) start with what they need.
                let room = if h.tls_walk == WALK_OFF {
                    n.max(FIRST_RESERVE)
                } else {
                    n
                };
                h.data.reserve_exact(room.min(cap));
            }
            h.data.extend_from_slice(&fresh[..n]);
            *budget -= n;
            if let Some(at) = seal_at {
                h.seal(at, budget);
            } else if n > 0 && !h.pending.is_empty() {
                h.drain_pending(budget);
                if h.tls_walk != WALK_OFF {
                    if let Some(at) = h.walk_tls(&[]) {
                        h.seal(at, budget);
                    }
                }
            }
        } else if !captured.is_empty() {
            // After a gap: keep it aside, bounded by the cap and the budget.
            if h.pending_bytes + captured.len() <= cap && captured.len() <= *budget {
                *budget -= captured.len();
                h.pending_bytes += captured.len();
                h.pending.push((rel as u32, captured.to_vec()));
            } else {
                h.budget_refused = true;
            }
        }
        verdict
    }

    fn state(&self) -> Option<&Held> {
        self.held.as_deref()
    }

    /// The contiguous bytes from the start of the stream.
    pub fn bytes(&self) -> &[u8] {
        self.state().map_or(&[], |h| &h.data)
    }

    /// Length of the contiguous part from the start (still known after [`Stream::release`]).
    pub fn contiguous(&self) -> usize {
        self.state().map_or(0, Held::contiguous)
    }

    /// Bytes held (contiguous and waiting), for memory accounting.
    pub fn held(&self) -> usize {
        self.state().map_or(0, Held::held)
    }

    /// True when the stream is known to go on past the contiguous bytes but the capture does
    /// not hold the next byte (a missing segment or a snap-length cut), as opposed to the
    /// sender having simply stopped there.
    pub fn has_hole(&self) -> bool {
        self.state().is_some_and(|h| {
            let have = h.contiguous() as u64;
            !h.budget_refused && have < h.max_end.min(h.limit as u64)
        })
    }

    /// The offset at which the snap length first cut a segment, if it did.
    pub fn cut_at(&self) -> Option<u32> {
        self.state()?.cut_at
    }

    /// True when the cap (or the table's budget) stopped buffering (not the encrypted bypass,
    /// which stops it on purpose: see [`Stream::encrypted_from`]).
    pub fn capped(&self) -> bool {
        self.state().is_some_and(|h| {
            h.budget_refused || (h.sealed_at.is_none() && h.max_end > h.limit as u64)
        })
    }

    /// True when the table-wide budget (or the bound on waiting pieces) refused bytes: the
    /// stream was cut there, not by its cap.
    pub fn budget_refused(&self) -> bool {
        self.state().is_some_and(|h| h.budget_refused)
    }

    /// Encrypted bypass: where the first TLS ApplicationData record of a stream that is TLS
    /// records from its first byte starts, when buffering stopped there (see `Held::walk_tls`).
    pub fn encrypted_from(&self) -> Option<u32> {
        self.state()?.sealed_at
    }

    /// Turns the encrypted bypass off for this stream: every byte up to the cap is kept.
    pub fn keep_all(&mut self) {
        let h = self.held.get_or_insert_with(Box::default);
        if h.sealed_at.is_none() {
            h.tls_walk = WALK_OFF;
        }
    }

    /// Number of overlapping segments whose bytes disagreed with what was already kept.
    pub fn conflicts(&self) -> u32 {
        self.state().map_or(0, |h| h.conflicts)
    }

    /// Payload bytes the sender announced, from the start (highest end offset seen).
    pub fn announced(&self) -> u64 {
        self.state().map_or(0, |h| h.max_end)
    }

    /// Frees the buffers (after extraction), keeping the counters.
    pub fn release(&mut self, budget: &mut usize) {
        if let Some(h) = self.held.as_deref_mut() {
            h.release(budget);
        }
    }
}

impl Held {
    /// Moves waiting pieces that now touch the contiguous part into it.
    fn drain_pending(&mut self, budget: &mut usize) {
        loop {
            let have = self.data.len();
            let Some(i) = self.pending.iter().position(|(off, bytes)| {
                (*off as usize) <= have && *off as usize + bytes.len() > have
            }) else {
                // Drop pieces entirely covered already.
                let before = self.pending.len();
                self.pending
                    .retain(|(off, bytes)| *off as usize + bytes.len() > have);
                if self.pending.len() != before {
                    self.recount_pending(budget);
                }
                return;
            };
            let (off, bytes) = self.pending.swap_remove(i);
            let skip = have - off as usize;
            self.data.extend_from_slice(&bytes[skip..]);
            // The bytes moved were already charged to the budget; give back the overlap.
            *budget += skip;
            self.pending_bytes -= bytes.len();
        }
    }

    fn recount_pending(&mut self, budget: &mut usize) {
        let now: usize = self.pending.iter().map(|(_, b)| b.len()).sum();
        *budget += self.pending_bytes - now;
        self.pending_bytes = now;
    }

    /// Length of the contiguous part from the start (still known after a release).
    fn contiguous(&self) -> usize {
        self.data.len().max(self.released_len)
    }

    /// Bytes held (contiguous and waiting).
    fn held(&self) -> usize {
        self.data.len() + self.pending_bytes
    }

    /// Encrypted bypass (Suricata's name for it). In a stream that is TLS records from its
    /// first byte, everything the extractors read (ClientHello, ServerHello, certificate,
    /// alerts before encryption, the ChangeCipherSpec or ApplicationData that shows the
    /// handshake went on) lies before the first ApplicationData record, and what follows is
    /// ciphertext. Once that record's 5-byte header is in the contiguous bytes, the stream
    /// keeps those bytes and nothing after them; the rest is still counted
    /// ([`Stream::announced`], [`Stream::cut_at`]) but never copied, which was most of the
    /// copying on a busy link.
    ///
    /// Walks the record headers not walked before over the kept bytes followed by `next`
    /// (a few operations per record) and returns the offset of the first ApplicationData
    /// record if its header is complete there; stops walking for good at bytes that are not
    /// a plausible record header.
    fn walk_tls(&mut self, next: &[u8]) -> Option<usize> {
        let have = self.data.len();
        let total = have + next.len();
        let byte = |i: usize| {
            if i < have {
                self.data[i]
            } else {
                next[i - have]
            }
        };
        let mut at = self.tls_walk as usize;
        let mut found = None;
        while at + 5 <= total {
            let header = [
                byte(at),
                byte(at + 1),
                byte(at + 2),
                byte(at + 3),
                byte(at + 4),
            ];
            let Some((ty, len)) = super::tls_record::record_header(header) else {
                at = WALK_OFF as usize;
                break;
            };
            if ty == super::tls_record::REC_APPLICATION_DATA {
                found = Some(at);
                break;
            }
            at += 5 + len;
        }
        self.tls_walk = at.min(WALK_OFF as usize) as u32;
        found
    }

    /// Keeps the bytes up to the end of the ApplicationData header at `at` and nothing after.
    fn seal(&mut self, at: usize, budget: &mut usize) {
        let keep = at + 5;
        let before = self.held();
        self.data.truncate(keep);
        if self.data.capacity() > 2 * keep.max(64) {
            self.data.shrink_to_fit();
        }
        self.pending = Vec::new();
        self.pending_bytes = 0;
        self.sealed_at = Some(at as u32);
        self.limit = keep;
        self.tls_walk = WALK_OFF;
        *budget += before - self.held();
    }

    /// Frees the buffers (after extraction), keeping the counters.
    fn release(&mut self, budget: &mut usize) {
        *budget += self.held();
        self.released_len = self.contiguous();
        self.data = Vec::new();
        self.pending = Vec::new();
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &mut Stream, seq: u32, p: &[u8]) -> Pushed {
        let mut budget = usize::MAX / 2;
        s.push(seq, p, p.len() as u32, 64, &mut budget)
    }

    #[test]
    fn in_order_and_retransmission() {
        let mut s = started(1000);
        assert_eq!(push(&mut s, 1000, b"hello "), Pushed::New);
        assert_eq!(push(&mut s, 1006, b"world"), Pushed::New);
        assert_eq!(push(&mut s, 1000, b"hello "), Pushed::Retransmission);
        assert_eq!(s.bytes(), b"hello world");
        assert!(!s.has_hole());
    }

    #[test]
    fn out_of_order_and_overlap() {
        let mut s = started(0);
        push(&mut s, 6, b"world");
        assert_eq!(s.bytes(), b"");
        assert!(s.has_hole());
        push(&mut s, 0, b"hel");
        push(&mut s, 2, b"llo wo"); // overlaps both sides
        assert_eq!(s.bytes(), b"hello world");
        assert!(!s.has_hole());
        assert_eq!(s.held(), 11);
    }

    #[test]
    fn conflicting_overlap_keeps_first() {
        let mut s = started(0);
        push(&mut s, 0, b"abcd");
        push(&mut s, 2, b"XYef");
        assert_eq!(s.bytes(), b"abcdef");
        assert_eq!(s.conflicts(), 1);
    }

    #[test]
    fn sequence_wraps() {
        let mut s = started(u32::MAX - 2);
        push(&mut s, u32::MAX - 2, b"abc");
        push(&mut s, 0, b"def");
        assert_eq!(s.bytes(), b"abcdef");
    }

    #[test]
    fn snaplen_cut_is_a_hole() {
        let mut s = started(10);
        let mut budget = 1 << 20;
        s.push(10, b"abc", 100, 64, &mut budget);
        assert_eq!(s.bytes(), b"abc");
        assert_eq!(s.cut_at(), Some(3));
        assert!(s.has_hole());
        assert_eq!(s.announced(), 100);
    }

    #[test]
    fn cap_and_budget() {
        let mut s = started(0);
        let mut budget = 1 << 20;
        s.push(0, &[7u8; 100], 100, 64, &mut budget);
        assert_eq!(s.bytes().len(), 64);
        assert!(s.capped());
        assert!(!s.has_hole());
        assert_eq!(budget, (1 << 20) - 64);
        s.release(&mut budget);
        assert_eq!(budget, 1 << 20);
        assert_eq!(s.contiguous(), 64);
        assert!(s.bytes().is_empty());

        let mut t = Stream::default();
        let mut small = 5;
        t.push(0, b"0123456789", 10, 64, &mut small);
        assert_eq!(t.bytes(), b"01234");
        assert_eq!(small, 0);
        assert!(t.capped());
    }

    /// A stream whose first payload byte has sequence number `base`.
    fn started(base: u32) -> Stream {
        let mut s = Stream::default();
        s.set_base(base);
        s
    }

    fn rec(ty: u8, body_len: usize) -> Vec<u8> {
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(body_len as u16).to_be_bytes());
        r.extend(std::iter::repeat_n(0x5a, body_len));
        r
    }

    /// Pushes `bytes` in segments of `mss`, sealing after each as the flow table does.
    fn push_sealing(s: &mut Stream, bytes: &[u8], mss: usize, budget: &mut usize) {
        for (i, seg) in bytes.chunks(mss).enumerate() {
            let seq = (i * mss) as u32;
            s.push(seq, seg, seg.len() as u32, 16 * 1024, budget);
        }
    }

    #[test]
    fn encrypted_bypass_stops_at_the_first_application_data_header() {
        let mut flight = rec(22, 300); // handshake
        flight.extend(rec(20, 1)); // ChangeCipherSpec
        let at = flight.len();
        flight.extend(rec(23, 4000)); // ApplicationData
        flight.extend(rec(21, 2)); // (an alert after it is not read)
        flight.extend(rec(23, 9000));
        // Segment sizes that split the ApplicationData header itself, and one that does not.
        for mss in [at + 2, 7, 1460, flight.len()] {
            let mut s = started(0);
            let start = 1 << 20;
            let mut budget = start;
            push_sealing(&mut s, &flight, mss, &mut budget);
            assert_eq!(s.encrypted_from(), Some(at as u32), "mss {mss}");
            assert_eq!(s.bytes(), &flight[..at + 5], "mss {mss}");
            assert_eq!(budget, start - (at + 5), "what was not kept is given back");
            assert_eq!(
                s.announced(),
                flight.len() as u64,
                "the rest is still counted"
            );
            assert!(!s.has_hole() && !s.capped());
        }
    }

    /// Segments of a TLS flight in random order, overlapping and repeated: the stream always
    /// seals at the same record with the same bytes, and the budget matches what is held.
    #[test]
    fn encrypted_bypass_in_any_segment_order() {
        let flight = [rec(22, 517), rec(20, 1), rec(23, 60), rec(23, 900)].concat();
        let at = 517 + 5 + 6;
        let mut rng = crate::rng::XorShift::new(0x9e37_79b9_7f4a_7c15u64);
        let mut rnd = || rng.next_u64();
        for _ in 0..500 {
            let mut s = Stream::default();
            let base = rnd() as u32;
            s.set_base(base);
            let start = 1 << 20;
            let mut budget = start;
            for _ in 0..30 {
                let a = (rnd() % flight.len() as u64) as usize;
                let b = (a + 1 + (rnd() % 300) as usize).min(flight.len());
                let seq = base.wrapping_add(a as u32);
                s.push(seq, &flight[a..b], (b - a) as u32, 16 * 1024, &mut budget);
                assert_eq!(budget + s.held(), start);
            }
            s.push(base, &flight, flight.len() as u32, 16 * 1024, &mut budget);
            assert_eq!(s.encrypted_from(), Some(at as u32));
            assert_eq!(s.bytes(), &flight[..at + 5]);
            assert_eq!(budget + s.held(), start);
        }
    }

    /// Hostile record streams (random types, lengths and bodies, bad header bytes): never a
    /// panic, the budget always matches what is held, and a seal keeps exactly up to the
    /// header of an ApplicationData record.
    #[test]
    fn encrypted_bypass_on_garbage_never_panics() {
        let mut rng = crate::rng::XorShift::new(0x5eed);
        let mut sealed = 0;
        for _ in 0..2000 {
            // Records of random types and lengths with random bodies; now and then a header
            // byte is garbage.
            let mut bytes = Vec::new();
            for _ in 0..1 + rng.below(6) {
                let ty = [20u8, 21, 22, 23, 24, 0x47][rng.below(6)];
                let len = rng.below(300);
                let minor = if rng.below(10) == 0 { 9 } else { 3 };
                bytes.extend([ty, 3, minor, (len >> 8) as u8, len as u8]);
                bytes.extend(rng.bytes(len));
            }
            let mut s = started(0);
            let start = 1 << 20;
            let mut budget = start;
            let mss = 1 + rng.below(80);
            push_sealing(&mut s, &bytes, mss, &mut budget);
            assert_eq!(budget + s.held(), start);
            if let Some(at) = s.encrypted_from() {
                sealed += 1;
                assert_eq!(bytes[at as usize], 23);
                assert_eq!(s.bytes(), &bytes[..at as usize + 5]);
            } else {
                assert_eq!(s.bytes(), &bytes[..]);
            }
        }
        assert!((20..1980).contains(&sealed), "{sealed} of 2000 sealed");
    }

    #[test]
    fn encrypted_bypass_leaves_other_streams_alone() {
        // Not TLS from the first byte (HTTP, then a CONNECT tunnel's TLS): kept up to the cap.
        let mut http = b"CONNECT a:443 HTTP/1.1\r\n\r\n".to_vec();
        http.extend(rec(22, 200));
        http.extend(rec(23, 100));
        // TLS records, then bytes that are not a record: the walk gives up.
        let mut odd = rec(22, 50);
        odd.extend([0x99; 5]);
        odd.extend(rec(23, 100));
        // A handshake that never reaches ApplicationData.
        let hs = [rec(22, 100), rec(22, 100), rec(21, 2)].concat();
        for bytes in [http, odd, hs] {
            let mut s = started(0);
            let mut budget = 1 << 20;
            push_sealing(&mut s, &bytes, 40, &mut budget);
            assert_eq!(s.encrypted_from(), None);
            assert_eq!(s.bytes(), &bytes[..]);
        }
        // A gap before the ApplicationData header: nothing is sealed until it is filled.
        let flight = [rec(22, 100), rec(23, 100)].concat();
        let mut s = started(0);
        let mut budget = 1 << 20;
        s.push(110, &flight[110..], 95, 16 * 1024, &mut budget);
        s.push(0, &flight[..60], 60, 16 * 1024, &mut budget);
        assert_eq!(s.encrypted_from(), None);
        assert!(s.has_hole());
        s.push(60, &flight[60..110], 50, 16 * 1024, &mut budget);
        assert_eq!(s.encrypted_from(), Some(105));
        assert_eq!(s.bytes(), &flight[..110]);
        assert_eq!(
            s.held(),
            110,
            "the waiting piece past the header was dropped"
        );
        assert_eq!(budget, (1 << 20) - 110);
    }

    #[test]
    fn before_start_is_trimmed() {
        let mut s = started(100);
        assert_eq!(push(&mut s, 90, b"0123456789"), Pushed::Retransmission);
        assert_eq!(push(&mut s, 95, b"56789abcde"), Pushed::New);
        assert_eq!(s.bytes(), b"abcde");
    }

    #[test]
    fn pending_bounded_by_cap() {
        let mut s = started(0);
        let mut budget = 1 << 20;
        for i in 0..20u32 {
            s.push(10 + i * 10, &[1u8; 5], 5, 64, &mut budget);
        }
        assert!(s.held() <= 64);
    }

    #[test]
    fn random_segments_never_panic_and_match_reference() {
        // Feed a known stream as random (possibly overlapping, duplicated, reordered) pieces;
        // whatever the order, the contiguous result must be a prefix of the stream.
        let stream: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut rng = crate::rng::XorShift::new(0x2545_f491_4f6c_dd1du64);
        let mut rnd = || rng.next_u64();
        for _ in 0..500 {
            let mut s = Stream::default();
            let base = rnd() as u32;
            s.set_base(base);
            let mut budget = 1 << 20;
            for _ in 0..40 {
                let a = (rnd() % 200) as usize;
                let b = (a + 1 + (rnd() % 40) as usize).min(200);
                s.push(
                    base.wrapping_add(a as u32),
                    &stream[a..b],
                    (b - a) as u32,
                    128,
                    &mut budget,
                );
            }
            // cover everything in order at the end
            s.push(base, &stream, 200, 128, &mut budget);
            assert_eq!(s.bytes(), &stream[..128]);
            assert!(s.capped());
        }
    }
}

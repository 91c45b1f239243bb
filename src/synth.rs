//! Synthetic capture generator for benchmarks: writes a classic pcap (Ethernet) of realistic
//! flow mixes of any size, deterministically from a seed. Not used for the test captures,
//! which are recorded from real tools (see captures/README.md). Built for the unit tests, and
//! behind the `synth` feature for the bench and the integration tests (which Cargo.toml's
//! dev-dependency on this package turns on): not part of the library's API.
//!
//! Mix: TLS connections over IPv4 and IPv6 (SYN, SYN-ACK, ACK, a ClientHello with SNI, some
//! split over two segments, a TLS 1.3 ServerHello and ChangeCipherSpec, then ApplicationData
//! records both ways, FIN both ways), DNS queries with CNAME
//! answers, dropped SYNs (three attempts), refused SYNs, some frames tagged with VLAN 100.
//! Many flows are interleaved, as on a busy link.
//!
//! Two floods for the memory bench (`benches/scale.rs`, issue 20): [`write_syn_flood`] (one
//! unanswered SYN per flow) and [`write_dns_flood`] (one unanswered query per name, every
//! name new). Every generator shares the frame writers below (`IpHead`, `push_tcp`,
//! `push_udp`, `write_record`).

use std::io::{self, Write};

use crate::rng::XorShift;

/// What the generator wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct SynthStats {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

struct Rng(XorShift);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n as usize) as u64
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Tls,
    Dns,
    Drop,
    Refuse,
}

/// One packet to emit: direction and what it carries.
#[derive(Clone, Copy)]
enum Step {
    Syn,
    SynAck,
    Ack,
    Rst,
    Hello { part: u8, of: u8 },
    Data { len: u16 },
    Fin,
    DnsQuery,
    DnsAnswer,
}

struct Gen {
    kind: Kind,
    v6: bool,
    vlan: bool,
    cli: [u8; 16],
    srv: [u8; 16],
    cport: u16,
    sport: u16,
    seq: [u32; 2],
    steps: Vec<(bool, Step)>,
    pos: usize,
    name: String,
    /// Each side has sent TLS data after the ClientHello (client, server).
    spoke: [bool; 2],
}

/// A TLS 1.3-style ClientHello record with the given SNI (and ALPN h2, http/1.1).
pub(crate) fn tls_client_hello(sni: &str) -> Vec<u8> {
    // Handshake body: version, random, empty session id, two suites, null compression,
    // extensions (server_name, ALPN h2/http1.1, supported_versions 1.3/1.2, padding).
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    let sn_list_len = 3 + name.len();
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&((sn_list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(sn_list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    ext.extend_from_slice(&[0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 2, b'h', b'2', 8]);
    ext.extend_from_slice(b"http/1.1");
    ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
    ext.extend_from_slice(&[0x00, 0x15, 0x01, 0x00]);
    ext.extend(std::iter::repeat_n(0u8, 256));
    let mut body = vec![0x03, 0x03];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    body.push(0);
    body.extend_from_slice(&[0x00, 0x04, 0x13, 0x01, 0x13, 0x02, 0x01, 0x00]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

pub(crate) fn dns_message(name: &str, id: u16, answer: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(if answer { &[0x81, 0x80] } else { &[0x01, 0x00] });
    m.extend_from_slice(&[0, 1, 0, if answer { 2 } else { 0 }, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if answer {
        // CNAME to "edge." + name (pointer to the question name at offset 12), then A.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4]);
        m.extend_from_slice(b"edge");
        m.extend_from_slice(&[0xc0, 12]);
        let cname_at = m.len() - 7;
        m.extend_from_slice(&[0xc0, cname_at as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&[198, 18, (id >> 8) as u8, id as u8]);
    }
    m
}

const NAMES: &[&str] = &[
    "login.microsoftonline.com",
    "management.azure.com",
    "eastus.api.azureml.ms",
    "ws1.workspace.eastus.api.azureml.ms",
    "ci1.eastus.instances.azureml.ms",
    "acct.blob.core.windows.net",
    "acct.file.core.windows.net",
    "pypi.org",
    "files.pythonhosted.org",
    "mcr.microsoft.com",
    "graph.microsoft.com",
    "example.org",
];

impl Gen {
    fn new(rng: &mut Rng, flow_no: u64) -> Gen {
        let r = rng.below(100);
        let kind = match r {
            0..=64 => Kind::Tls,
            65..=84 => Kind::Dns,
            85..=94 => Kind::Drop,
            _ => Kind::Refuse,
        };
        let v6 = rng.below(10) == 0;
        let mut cli = [0u8; 16];
        let mut srv = [0u8; 16];
        if v6 {
            cli[..4].copy_from_slice(&[0xfd, 0x00, 0, 1]);
            cli[8..16].copy_from_slice(&rng.next().to_be_bytes());
            srv[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            srv[14..16].copy_from_slice(&(rng.below(4096) as u16).to_be_bytes());
        } else {
            cli[..4].copy_from_slice(&[
                10,
                1 + rng.below(4) as u8,
                rng.below(256) as u8,
                1 + rng.below(250) as u8,
            ]);
            srv[..4].copy_from_slice(&[198, 18, rng.below(64) as u8, 1 + rng.below(250) as u8]);
        }
        let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
        let mut steps = Vec::new();
        let sport = match kind {
            Kind::Dns => 53,
            Kind::Tls => 443,
            _ => [443u16, 8787, 18881, 445][rng.below(4) as usize],
        };
        match kind {
            Kind::Tls => {
                steps.extend([(true, Step::Syn), (false, Step::SynAck), (true, Step::Ack)]);
                if rng.below(10) == 0 {
                    steps.push((true, Step::Hello { part: 0, of: 2 }));
                    steps.push((true, Step::Hello { part: 1, of: 2 }));
                } else {
                    steps.push((true, Step::Hello { part: 0, of: 1 }));
                }
                steps.push((false, Step::Data { len: 1400 }));
                steps.push((false, Step::Data { len: 1400 }));
                steps.push((true, Step::Ack));
                for _ in 0..rng.below(24) {
                    let from_client = rng.below(3) == 0;
                    let len = 100 + rng.below(1300) as u16;
                    steps.push((from_client, Step::Data { len }));
                }
                steps.extend([(true, Step::Fin), (false, Step::Fin), (true, Step::Ack)]);
            }
            Kind::Dns => steps.extend([(true, Step::DnsQuery), (false, Step::DnsAnswer)]),
            Kind::Drop => steps.extend([(true, Step::Syn), (true, Step::Syn), (true, Step::Syn)]),
            Kind::Refuse => steps.extend([(true, Step::Syn), (false, Step::Rst)]),
        }
        Gen {
            kind,
            v6,
            vlan: rng.below(5) == 0,
            cli,
            srv,
            cport: 1024 + ((flow_no * 7919) % 64000) as u16,
            sport,
            seq: [rng.next() as u32, rng.next() as u32],
            steps,
            pos: 0,
            name,
            spoke: [false; 2],
        }
    }

    /// Builds the next packet (Ethernet frame) into `out`; false when the flow is done.
    fn next_frame(
        &mut self,
        out: &mut Vec<u8>,
        hello_cache: &mut Vec<u8>,
        data: &mut Vec<u8>,
    ) -> bool {
        let Some(&(from_client, step)) = self.steps.get(self.pos) else {
            return false;
        };
        self.pos += 1;
        out.clear();
        let d = usize::from(!from_client);
        let (flags, payload): (u8, &[u8]) = match step {
            Step::Syn => (0x02, &[]),
            Step::SynAck => (0x12, &[]),
            Step::Ack => (0x10, &[]),
            Step::Rst => (0x14, &[]),
            Step::Fin => (0x11, &[]),
            Step::Hello { part, of } => {
                if part == 0 {
                    *hello_cache = tls_client_hello(&self.name);
                }
                let n = hello_cache.len();
                let cut = n / of as usize;
                let range = if part + 1 == of {
                    cut * part as usize..n
                } else {
                    cut * part as usize..cut * (part as usize + 1)
                };
                (0x18, &hello_cache[range])
            }
            Step::Data { len } => {
                tls_data(data, !from_client, !self.spoke[d], len as usize);
                self.spoke[d] = true;
                (0x18, data.as_slice())
            }
            Step::DnsQuery | Step::DnsAnswer => (0, &[]),
        };
        let dns;
        let (proto, l4) = if let Kind::Dns = self.kind {
            dns = dns_message(&self.name, self.cport, matches!(step, Step::DnsAnswer));
            (17u8, dns.as_slice())
        } else {
            (6u8, payload)
        };
        let (sip, dip, sp, dp) = if from_client {
            (self.cli, self.srv, self.cport, self.sport)
        } else {
            (self.srv, self.cli, self.sport, self.cport)
        };
        let l4len = if proto == 6 {
            20 + l4.len()
        } else {
            8 + l4.len()
        };
        let head = IpHead {
            from_client,
            vlan: self.vlan,
            v6: self.v6,
            proto,
            src: sip,
            dst: dip,
        };
        head.push(out, l4len);
        if proto == 6 {
            let seq = self.seq[d];
            let ack = self.seq[1 - d];
            push_tcp(out, sp, dp, seq, ack, flags);
            let adv = l4.len() as u32 + u32::from(flags & 0x03 != 0);
            // Dropped SYNs are retransmissions: same ISN.
            if !matches!(self.kind, Kind::Drop) {
                self.seq[d] = seq.wrapping_add(adv);
            }
        } else {
            push_udp(out, sp, dp, l4.len());
        }
        out.extend_from_slice(l4);
        true
    }
}

/// A TLS 1.3 ServerHello record (supported_versions 1.3, an X25519 key share).
pub(crate) fn tls_server_hello() -> Vec<u8> {
    let mut ext = vec![0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
    ext.extend_from_slice(&[0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
    ext.extend((0..32u8).map(|i| i.wrapping_mul(91)));
    let mut body = vec![0x03, 0x03];
    body.extend((0..32u8).map(|i| i.wrapping_mul(53)));
    body.extend_from_slice(&[0, 0x13, 0x01, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut rec = vec![0x16, 0x03, 0x03];
    rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    rec.push(0x02);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(&body);
    rec
}

/// `len` bytes of TLS 1.3 records as a side sends them after the ClientHello: the server's
/// first segment opens with its ServerHello and a ChangeCipherSpec, the client's first with a
/// ChangeCipherSpec, and the rest is ApplicationData records (one per segment, as a busy
/// server writes them) of pseudo-random ciphertext.
fn tls_data(out: &mut Vec<u8>, server: bool, first: bool, len: usize) {
    out.clear();
    if first {
        if server {
            out.extend_from_slice(&tls_server_hello());
        }
        out.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    }
    let body = len.saturating_sub(out.len() + 5);
    out.extend_from_slice(&[0x17, 0x03, 0x03]);
    out.extend_from_slice(&(body as u16).to_be_bytes());
    out.extend_from_slice(&CIPHERTEXT[..body]);
}

/// Stand-in ciphertext (a fixed pseudo-random pattern).
static CIPHERTEXT: [u8; 1500] = {
    let mut b = [0u8; 1500];
    let mut x: u32 = 0x9e37_79b9;
    let mut i = 0;
    while i < b.len() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = x as u8;
        i += 1;
    }
    b
};

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The link and network layers of one frame: Ethernet between two fixed MAC addresses (the
/// client's 02:00:00:00:00:01, the server's :02), a VLAN 100 tag if asked, and an IPv4 header
/// (with its checksum; ID 0, don't fragment, TTL 64) or an IPv6 one (hop limit 64). IPv4
/// addresses are the first four bytes of `src` and `dst`.
struct IpHead {
    from_client: bool,
    vlan: bool,
    v6: bool,
    /// 6 (TCP) or 17 (UDP).
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
}

impl IpHead {
    /// Appends the headers to `out` for a transport segment of `l4len` bytes (its header
    /// included).
    fn push(&self, out: &mut Vec<u8>, l4len: usize) {
        let to = if self.from_client { 2 } else { 1 };
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, to]);
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 3 - to]);
        if self.vlan {
            out.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
        }
        if self.v6 {
            out.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            out.extend_from_slice(&(l4len as u16).to_be_bytes());
            out.extend_from_slice(&[self.proto, 64]);
            out.extend_from_slice(&self.src);
            out.extend_from_slice(&self.dst);
        } else {
            out.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            out.extend_from_slice(&((20 + l4len) as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0x40, 0, 64, self.proto, 0, 0]);
            out.extend_from_slice(&self.src[..4]);
            out.extend_from_slice(&self.dst[..4]);
            let ip_start = out.len() - 20;
            let sum = checksum(&out[ip_start..]);
            out[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

/// Appends a 20-byte TCP header (no options, window 64240, checksum left 0).
fn push_tcp(out: &mut Vec<u8>, sp: u16, dp: u16, seq: u32, ack: u32, flags: u8) {
    out.extend_from_slice(&sp.to_be_bytes());
    out.extend_from_slice(&dp.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
}

/// Appends a UDP header for `payload` bytes of data (checksum 0: none).
fn push_udp(out: &mut Vec<u8>, sp: u16, dp: u16, payload: usize) {
    out.extend_from_slice(&sp.to_be_bytes());
    out.extend_from_slice(&dp.to_be_bytes());
    out.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// The first microsecond timestamp of every generated capture (2025-11-21).
const START_US: u64 = 1_763_700_000_000_000;

/// Writes the file header of a microsecond pcap, Ethernet, snap length 65535; returns its size.
fn write_file_header(w: &mut impl Write) -> io::Result<u64> {
    const HEADER: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    w.write_all(&HEADER)?;
    Ok(HEADER.len() as u64)
}

/// Writes one pcap record (its 16-byte header and the frame); returns the bytes written.
fn write_record(w: &mut impl Write, ts_us: u64, frame: &[u8]) -> io::Result<u64> {
    let len = frame.len() as u32;
    let mut rec = [0u8; 16];
    rec[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    rec[8..12].copy_from_slice(&len.to_le_bytes());
    rec[12..16].copy_from_slice(&len.to_le_bytes());
    w.write_all(&rec)?;
    w.write_all(frame)?;
    Ok(16 + u64::from(len))
}

/// Writes a microsecond pcap of about `target_bytes` bytes with `concurrency` interleaved flows.
pub fn write_pcap(
    mut w: impl Write,
    target_bytes: u64,
    concurrency: usize,
    seed: u64,
) -> io::Result<SynthStats> {
    let mut rng = Rng(XorShift::new(seed));
    let mut st = SynthStats {
        bytes: write_file_header(&mut w)?,
        ..Default::default()
    };
    let mut active: Vec<Gen> = Vec::with_capacity(concurrency);
    let mut frame = Vec::with_capacity(2048);
    let mut hello = Vec::new();
    let mut hellos: Vec<Vec<u8>> = Vec::new();
    let mut data = Vec::with_capacity(2048);
    let mut ts_us = START_US;
    let concurrency = concurrency.max(1);
    while st.bytes < target_bytes {
        while active.len() < concurrency {
            active.push(Gen::new(&mut rng, st.flows));
            hellos.push(Vec::new());
            st.flows += 1;
        }
        let i = rng.below(active.len() as u64) as usize;
        std::mem::swap(&mut hello, &mut hellos[i]);
        let more = active[i].next_frame(&mut frame, &mut hello, &mut data);
        std::mem::swap(&mut hello, &mut hellos[i]);
        if !more {
            active.swap_remove(i);
            hellos.swap_remove(i);
            continue;
        }
        // 1-100 µs apart (about 20k packets/s): flows live seconds, as on a busy link.
        ts_us += 1 + rng.below(100);
        st.bytes += write_record(&mut w, ts_us, &frame)?;
        st.packets += 1;
    }
    w.flush()?;
    Ok(st)
}

/// Servers of [`write_syn_flood`] (198.18.0.1 to .16, port 443).
pub const SYN_FLOOD_SERVERS: u64 = 16;
/// The first source port of a flood's clients and how many they cycle through: Linux's
/// ephemeral range, 32768 to 60999. (Not from 1024: a DNS query from port 2152 or 3544, GTP-U's
/// and Teredo's, can be read as a tunnel.)
const FLOOD_PORT0: u64 = 32_768;
const FLOOD_PORTS: u64 = 28_232;

/// The `i`th of a flood's clients' (address, source port) pairs: the first client (`base`)
/// runs through every port, then the next address (`base + 1`) takes over, and so on.
fn flood_client(base: [u8; 4], i: u64) -> ([u8; 16], u16) {
    (
        v4(base, i / FLOOD_PORTS),
        (FLOOD_PORT0 + i % FLOOD_PORTS) as u16,
    )
}

/// The IPv4 address `base + n`, as the first four of 16 bytes.
fn v4(base: [u8; 4], n: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(
        &u32::from_be_bytes(base)
            .wrapping_add(n as u32)
            .to_be_bytes(),
    );
    a
}

/// The client, its port and the server of the `i`th SYN of a flood: the servers take turns,
/// and a client address runs through every source port on every server before the next one
/// (10.9.0.1, then .2, ...) takes over, so no two SYNs share a 4-tuple (below 2^32 clients).
fn syn_flood_ends(i: u64) -> ([u8; 16], u16, [u8; 16]) {
    let (client, port) = flood_client([10, 9, 0, 1], i / SYN_FLOOD_SERVERS);
    (client, port, v4([198, 18, 0, 1], i % SYN_FLOOD_SERVERS))
}

/// Writes a SYN flood (Ethernet, IPv4): `flows` SYNs to port 443 of [`SYN_FLOOD_SERVERS`]
/// servers, each from a new source port (one 4-tuple, one flow each), none answered, 5 to 15 µs
/// apart (10 on average). Every record is 70 bytes (a 20-byte TCP header, no options), so a
/// million flows make a 70 MB file. Deterministic for a seed (which picks the sequence numbers
/// and the gaps).
pub fn write_syn_flood(w: impl Write, flows: u64, seed: u64) -> io::Result<SynthStats> {
    let rng = Rng(XorShift::new(seed));
    let mut st = write_flood(w, flows, rng, 6, |i, rng, seg| {
        let (src, port, dst) = syn_flood_ends(i);
        push_tcp(seg, port, 443, rng.next() as u32, 0, 0x02);
        (src, dst)
    })?;
    st.flows = flows;
    Ok(st)
}

/// Writes a pcap of `n` frames from clients (Ethernet, IPv4 `proto`), 5 to 15 µs apart (10 on
/// average): `segment(i, rng, seg)` appends the `i`th frame's transport segment (its header
/// and data) to the empty `seg` and returns the source and destination addresses. The stats'
/// `flows` are left 0 for the caller.
fn write_flood(
    mut w: impl Write,
    n: u64,
    mut rng: Rng,
    proto: u8,
    mut segment: impl FnMut(u64, &mut Rng, &mut Vec<u8>) -> ([u8; 16], [u8; 16]),
) -> io::Result<SynthStats> {
    let mut st = SynthStats {
        bytes: write_file_header(&mut w)?,
        ..Default::default()
    };
    let mut frame = Vec::with_capacity(128);
    let mut seg = Vec::with_capacity(128);
    let mut ts_us = START_US;
    for i in 0..n {
        seg.clear();
        let (src, dst) = segment(i, &mut rng, &mut seg);
        frame.clear();
        let head = IpHead {
            from_client: true,
            vlan: false,
            v6: false,
            proto,
            src,
            dst,
        };
        head.push(&mut frame, seg.len());
        frame.extend_from_slice(&seg);
        ts_us += 5 + rng.below(11);
        st.bytes += write_record(&mut w, ts_us, &frame)?;
        st.packets += 1;
    }
    w.flush()?;
    Ok(st)
}

/// The resolver of [`write_dns_flood`] (port 53) and its first client.
pub const DNS_FLOOD_RESOLVER: [u8; 4] = [10, 0, 0, 53];
pub const DNS_FLOOD_CLIENT: [u8; 4] = [10, 2, 0, 1];

/// The name of the `i`th query of a DNS flood: ten hex digits of a permutation of the 40-bit
/// numbers keyed by the seed (every step is invertible), under `flood.example.com`: unique
/// below 2^40 queries, 30 bytes on the wire.
fn dns_flood_name(i: u64, key: u64) -> String {
    const MASK: u64 = (1 << 40) - 1;
    let mut x = (i ^ key) & MASK;
    x = x.wrapping_mul(0x9e37_79b9_7f4b) & MASK;
    x ^= x >> 21;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93) & MASK;
    x ^= x >> 19;
    format!("{x:010x}.flood.example.com")
}

/// Writes a DNS flood (Ethernet, IPv4, UDP): `queries` A queries for names never asked before
/// (`<10 hex digits>.flood.example.com`) to one resolver ([`DNS_FLOOD_RESOLVER`]), none
/// answered, 5 to 15 µs apart, each from a new client address and port (from
/// [`DNS_FLOOD_CLIENT`] port 32768 on, see `flood_client`): one UDP flow per query, as from a
/// crowd of stub resolvers, so the flood fills the flow table as well as the DNS log. Every
/// record is 104 bytes, so two million queries make a 208 MB file. Deterministic for a seed
/// (which picks the names, the transaction IDs and the gaps).
pub fn write_dns_flood(w: impl Write, queries: u64, seed: u64) -> io::Result<SynthStats> {
    let mut rng = Rng(XorShift::new(seed));
    let key = rng.next();
    let mut st = write_flood(w, queries, rng, 17, |i, rng, seg| {
        let dns = dns_message(&dns_flood_name(i, key), rng.next() as u16, false);
        let (client, port) = flood_client(DNS_FLOOD_CLIENT, i);
        push_udp(seg, port, 53, dns.len());
        seg.extend_from_slice(&dns);
        (client, v4(DNS_FLOOD_RESOLVER, 0))
    })?;
    st.flows = queries;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Flood = fn(&mut Vec<u8>, u64, u64) -> io::Result<SynthStats>;

    /// Writes 3000 packets of a flood twice with one seed and once with another, checks the
    /// copies are the same, the other different, every record `record` bytes, the stats right
    /// (`flows` of them), and reads it through the pipeline, which must skip nothing.
    fn flood_read(write: Flood, record: usize, flows: u64) -> crate::pipeline::FileResult {
        let [mut a, mut b, mut c] = [Vec::new(), Vec::new(), Vec::new()];
        let st = write(&mut a, 3000, 5).unwrap();
        write(&mut b, 3000, 5).unwrap();
        write(&mut c, 3000, 6).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 24 + record * 3000);
        assert_eq!(
            (st.bytes, st.packets, st.flows),
            (a.len() as u64, 3000, flows)
        );
        let reader =
            crate::capture::CaptureReader::from_read(Box::new(std::io::Cursor::new(a))).unwrap();
        let r = crate::pipeline::analyze_reader(
            "flood".into(),
            reader,
            &crate::flow::FlowConfig::default(),
        );
        assert!(r.summary.error.is_none(), "{:?}", r.summary.error);
        assert_eq!(r.summary.packets, 3000);
        assert_eq!(r.summary.skipped.total(), 0);
        assert_eq!(r.summary.truncated_packets, 0);
        assert_eq!(r.flows.len() as u64, flows);
        // 10 µs apart on average.
        let span = r.flows[r.flows.len() - 1].first_ns - r.flows[0].first_ns;
        assert!((25_000_000..35_000_000).contains(&span), "{span}");
        r
    }

    #[test]
    fn syn_flood_is_deterministic_sized_and_read_as_one_flow_a_syn() {
        let r = flood_read(|w, n, seed| write_syn_flood(w, n, seed), 70, 3000);
        assert!(r.flows.iter().all(|f| f.server.port == 443));
        assert!(r.dns.is_empty());
    }

    #[test]
    fn syn_flood_tuples_stay_unique_past_every_wrap() {
        let per_client = SYN_FLOOD_SERVERS * FLOOD_PORTS;
        let mut seen = std::collections::HashSet::new();
        for i in (0..4 * per_client)
            .step_by(997)
            .chain([per_client - 1, per_client])
        {
            assert!(seen.insert(syn_flood_ends(i)), "{i}");
        }
        let (c0, p0, s0) = syn_flood_ends(0);
        assert_eq!(
            (c0[..4].to_vec(), p0, s0[..4].to_vec()),
            (vec![10, 9, 0, 1], 32768, vec![198, 18, 0, 1])
        );
        let (c1, p1, _) = syn_flood_ends(per_client - 1);
        assert_eq!((c1[..4].to_vec(), p1), (vec![10, 9, 0, 1], 60999));
        let (c2, p2, _) = syn_flood_ends(per_client);
        assert_eq!((c2[..4].to_vec(), p2), (vec![10, 9, 0, 2], 32768));
    }

    #[test]
    fn dns_flood_is_deterministic_sized_and_read_as_unique_queries() {
        let r = flood_read(|w, n, seed| write_dns_flood(w, n, seed), 104, 3000);
        assert_eq!(r.dns.len(), 3000);
        let names: std::collections::HashSet<_> = r
            .dns
            .iter()
            .map(|e| {
                assert!(!e.message.response);
                assert_eq!(e.server_port, 53);
                e.message.questions[0].name.clone()
            })
            .collect();
        assert_eq!(names.len(), 3000);
    }

    #[test]
    fn dns_flood_names_are_unique_and_30_bytes_on_the_wire() {
        let key = 0x1234_5678_9abc_def0;
        let mut seen = std::collections::HashSet::new();
        for i in (0..1u64 << 40).step_by(1 << 23).chain(1..5000) {
            let n = dns_flood_name(i, key);
            assert_eq!(n.len() + 2, 30, "{n}");
            assert!(seen.insert(n), "{i}");
        }
    }

    #[test]
    fn deterministic_and_sized() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let sa = write_pcap(&mut a, 200_000, 50, 7).unwrap();
        write_pcap(&mut b, 200_000, 50, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 200_000 && a.len() < 202_000);
        assert_eq!(sa.bytes, a.len() as u64);
        assert!(sa.flows > 50);
    }

    #[test]
    fn client_hello_is_well_formed() {
        let ch = tls_client_hello("ci1.eastus.instances.azureml.ms");
        let rec_len = u16::from_be_bytes([ch[3], ch[4]]) as usize;
        assert_eq!(rec_len + 5, ch.len());
        let hs_len = u32::from_be_bytes([0, ch[6], ch[7], ch[8]]) as usize;
        assert_eq!(hs_len + 4, rec_len);
    }

    #[test]
    fn server_flight_reads_as_tls13() {
        let mut d = Vec::new();
        tls_data(&mut d, true, true, 1400);
        assert_eq!(d.len(), 1400);
        let f = crate::proto::tls::server_flight(&d, false);
        assert!(f.server_hello && !f.truncated);
        assert_eq!(f.version, Some(0x0304));
        let mut c = tls_client_hello("pypi.org");
        tls_data(&mut d, false, true, 200);
        c.extend_from_slice(&d);
        let mut s = Vec::new();
        tls_data(&mut s, true, true, 1400);
        assert!(crate::proto::tls::looks_complete(&c, &s));
    }
}

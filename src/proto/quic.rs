//! QUIC Initial packets (RFC 9000, RFC 9001, RFC 9369): the client's first flight is
//! encrypted with keys anyone can derive from the Destination Connection ID, so the
//! ClientHello inside (SNI, ALPN) can be read from a capture.
//!
//! Steps: parse the long headers of the coalesced packets of each datagram, derive the
//! client Initial keys (HKDF-SHA256 from the version's salt and the DCID), remove header
//! protection (AES-128 ECB mask), open the AES-128-GCM payload, walk the frames, put the
//! CRYPTO data back in order by offset, and read SNI and ALPN from the reassembled
//! ClientHello. All cryptography is `ring`'s.
//!
//! Work is bounded: at most [`MAX_DATAGRAMS`] datagrams and [`MAX_CRYPTO_BYTES`] of CRYPTO
//! stream are considered, at most [`MAX_KEY_SETS`] key sets are derived, and reading stops
//! as soon as the whole ClientHello is in.

use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::hkdf;
use serde::Serialize;

use crate::wire::Cursor;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// Datagrams of a flow looked at; later ones are ignored.
pub const MAX_DATAGRAMS: usize = 16;
/// CRYPTO stream bytes kept (offsets beyond are dropped, and the hello is then truncated).
pub const MAX_CRYPTO_BYTES: usize = 64 * 1024;
/// Distinct key sets derived (one per DCID the client used, e.g. before and after a Retry).
pub const MAX_KEY_SETS: usize = 4;
/// Disjoint pieces of CRYPTO data tracked before further gaps are refused.
const MAX_RANGES: usize = 512;
/// AEAD tag and header-protection sample length (AES-128-GCM / AES-128).
const TAG_LEN: usize = 16;
const SAMPLE_LEN: usize = 16;

/// Server datagrams of a flow looked at (Version Negotiation, Retry, Handshake).
pub const MAX_SERVER_DATAGRAMS: usize = crate::flow::MAX_SERVER_DATAGRAMS;
/// Versions kept from a Version Negotiation packet.
pub const MAX_VN_VERSIONS: usize = 32;
/// A client datagram of a version this module cannot decrypt counts as QUIC on its own only
/// at this size: every client datagram carrying an Initial is padded to at least 1200 bytes
/// (RFC 9000 14.1, and the drafts since draft-13), which a random UDP payload starting with
/// a plausible long header rarely is.
pub const MIN_INITIAL_DATAGRAM: usize = 1200;

/// What the client's QUIC Initial packets of one flow said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct QuicFacts {
    /// Version of the first Initial packet (1, or 0x6b3343cf for v2); of the first long
    /// header when no Initial of a version read here was seen.
    pub version: u32,
    /// Destination Connection ID of the first Initial packet (the keys are derived from it).
    #[serde(serialize_with = "super::ser_hex")]
    #[schemars(with = "String", extend("pattern" = "^([0-9a-f]{2})*$"))]
    pub dcid: Vec<u8>,
    /// server_name (host_name type) of the ClientHello, as sent (attacker-controlled:
    /// escape before display).
    pub sni: Option<String>,
    /// ALPN protocol names offered, in order.
    pub alpn: Vec<String>,
    /// CRYPTO data did not reach the end of the ClientHello (missing packet or cut capture).
    pub truncated: bool,
    /// Client Initial packets seen (including ones that failed to decrypt or were cut).
    pub initial_packets: u32,
    /// Initial packets that failed authentication under every key set tried.
    pub decrypt_failures: u32,
    /// `version` as shown: `v1`, `v2`, `draft-29`, or the number in hex (`0xfaceb002`).
    pub version_name: String,
    /// Some client Initial was decrypted. False for a version this module cannot read, an
    /// Initial cut by the capture, or one that failed authentication.
    pub decrypted: bool,
    /// The versions of the server's Version Negotiation packet (its DCID and SCID echo the
    /// client's), by name, in order; null when there was none.
    pub server_versions: Option<Vec<String>>,
    /// Packets other than the client's Initials recognized on the flow (see [`Packets`]).
    pub packets: Packets,
}

/// Packets of other types on a QUIC flow: long headers in the datagrams looked at (the
/// client's first [`MAX_DATAGRAMS`], the server's first [`MAX_SERVER_DATAGRAMS`] long-header
/// ones), short headers (1-RTT) coalesced into those plus every datagram of the flow that
/// starts with one (counted by the flow table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Packets {
    pub zero_rtt: u32,
    pub handshake: u32,
    pub retry: u32,
    pub short_header: u32,
}

/// Feed the client's UDP datagrams of one flow in capture order (each may hold several
/// coalesced QUIC packets). Derives Initial keys from the first Initial's DCID (client side,
/// RFC 9001 5.2; after a Retry the client uses a new DCID: an Initial that fails to decrypt
/// with the keys known so far gets keys from the original DCID under its version, then from
/// its own DCID), removes header protection, decrypts, collects CRYPTO frames by offset (out
/// of order, across several Initial packets; PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE
/// frames understood; a packet's frames stop at anything else), reassembles the ClientHello
/// and extracts SNI and ALPN from its extensions. Stops reading Initials once the ClientHello
/// is complete, so the Initial counters cover the datagrams read until then. Returns None
/// when the flow is not QUIC (see [`flow_facts`]).
pub fn client_initial<'a>(datagrams: impl IntoIterator<Item = &'a [u8]>) -> Option<QuicFacts> {
    flow_facts(datagrams, std::iter::empty())
}

/// [`client_initial`] with the server's long-header datagrams too (Version Negotiation,
/// Retry, Handshake). The flow is QUIC when the client sent an Initial of a version read
/// here (v1, v2, drafts 22 to 34, mvfst), or a long header of another version in a datagram
/// of at least [`MIN_INITIAL_DATAGRAM`] bytes, or when the server answered the client's first
/// long header with a Version Negotiation packet.
pub fn flow_facts<'a, 'b>(
    client: impl IntoIterator<Item = &'a [u8]>,
    server: impl IntoIterator<Item = &'b [u8]>,
) -> Option<QuicFacts> {
    let mut st = State::default();
    for d in client.into_iter().take(MAX_DATAGRAMS) {
        st.datagram(d);
        if !st.done && st.hello_done() {
            st.done = true;
        }
    }
    for d in server.into_iter().take(MAX_SERVER_DATAGRAMS) {
        st.server_datagram(d);
    }
    st.finish()
}

// ---------------------------------------------------------------------------------------
// Versions and keys

struct VersionParams {
    salt: [u8; 20],
    key_label: &'static [u8],
    iv_label: &'static [u8],
    hp_label: &'static [u8],
    /// Long-header packet type bits of Initial / 0-RTT / Handshake / Retry.
    types: [u8; 4],
}

/// The Initial salts (RFC 9001 5.2 and the drafts before it). From draft-23 to v1 only the
/// salt changed; the HKDF labels are those of v1.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// draft-ietf-quic-tls-29 to -32.
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
/// draft-ietf-quic-tls-23 to -28 (and mvfst's draft-27 based versions).
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
/// draft-ietf-quic-tls-21 and -22 (and mvfst's draft-22 based version).
const SALT_DRAFT_22: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];

/// Facebook mvfst's versions: based on draft-22, on draft-27, and its experimental one
/// (draft-27 based too).
pub const MVFST_22: u32 = 0xface_b001;
pub const MVFST_27: u32 = 0xface_b002;
pub const MVFST_EXPERIMENTAL: u32 = 0xface_b00e;

/// Version 1's labels and packet types with another salt.
const fn v1_like(salt: [u8; 20]) -> VersionParams {
    VersionParams {
        salt,
        key_label: b"quic key",
        iv_label: b"quic iv",
        hp_label: b"quic hp",
        types: [0, 1, 2, 3],
    }
}

const V1: VersionParams = v1_like(SALT_V1);
const DRAFT_29: VersionParams = v1_like(SALT_DRAFT_29);
const DRAFT_23: VersionParams = v1_like(SALT_DRAFT_23);
const DRAFT_22: VersionParams = v1_like(SALT_DRAFT_22);

const V2: VersionParams = VersionParams {
    salt: [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d,
        0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
    ],
    key_label: b"quicv2 key",
    iv_label: b"quicv2 iv",
    hp_label: b"quicv2 hp",
    types: [1, 2, 3, 0],
};

/// The IETF draft a version number stands for (0xff0000NN is draft-NN).
fn draft(version: u32) -> Option<u8> {
    (version >> 8 == 0x00ff_0000).then_some(version as u8)
}

/// Parameters of the versions whose Initials can be decrypted: v1, v2, drafts 22 to 34 and
/// mvfst's 0xfaceb001, 0xfaceb002, 0xfaceb00e.
fn params(version: u32) -> Option<&'static VersionParams> {
    match (version, draft(version)) {
        (VERSION_1, _) | (_, Some(33..=34)) => Some(&V1),
        (VERSION_2, _) => Some(&V2),
        (_, Some(29..=32)) => Some(&DRAFT_29),
        (MVFST_27 | MVFST_EXPERIMENTAL, _) | (_, Some(23..=28)) => Some(&DRAFT_23),
        (MVFST_22, _) | (_, Some(22)) => Some(&DRAFT_22),
        _ => None,
    }
}

/// How a version is shown: `v1`, `v2`, `draft-29`, else its number in hex (`0xfaceb002`).
pub fn version_name(version: u32) -> String {
    match (version, draft(version)) {
        (VERSION_1, _) => "v1".into(),
        (VERSION_2, _) => "v2".into(),
        (_, Some(n)) => format!("draft-{n}"),
        _ => format!("0x{version:08x}"),
    }
}

/// HKDF output length for `Prk::expand` (ring wants a `KeyType`).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3 HKDF-Expand-Label with an empty context (RFC 8446 7.1).
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// The client's Initial key material for one (version, DCID).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Secrets {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

fn derive_secrets(p: &VersionParams, dcid: &[u8]) -> Option<Secrets> {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &p.salt).extract(dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &client);
    let mut s = Secrets {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, p.key_label, &mut s.key)?;
    expand_label(&client, p.iv_label, &mut s.iv)?;
    expand_label(&client, p.hp_label, &mut s.hp)?;
    Some(s)
}

struct Keys {
    version: u32,
    dcid: Vec<u8>,
    iv: [u8; 12],
    aead: LessSafeKey,
    hp: HeaderProtectionKey,
}

impl Keys {
    fn new(version: u32, dcid: &[u8]) -> Option<Keys> {
        let s = derive_secrets(params(version)?, dcid)?;
        Some(Keys {
            version,
            dcid: dcid.to_vec(),
            iv: s.iv,
            aead: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &s.key).ok()?),
            hp: HeaderProtectionKey::new(&AES_128, &s.hp).ok()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Long headers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

#[derive(Debug)]
struct LongHeader<'a> {
    version: u32,
    kind: Kind,
    dcid: &'a [u8],
    scid: &'a [u8],
    /// Offset of the (protected) packet number.
    pn_offset: usize,
    /// Offset just past the packet (pn_offset + Length); may exceed the datagram when cut.
    end: usize,
}

#[derive(Debug)]
enum Parsed<'a> {
    Packet(LongHeader<'a>),
    /// A long header of a version this module cannot read beyond the version-independent
    /// fields (RFC 8999): the rest of the datagram is opaque.
    Unknown {
        version: u32,
        dcid: &'a [u8],
        scid: &'a [u8],
    },
    /// A Version Negotiation packet (version 0): the versions field is the rest of the
    /// datagram.
    VersionNegotiation {
        dcid: &'a [u8],
        scid: &'a [u8],
        versions: &'a [u8],
    },
    /// A short-header (1-RTT) packet: it runs to the end of the datagram.
    Short,
    /// Nothing more of this datagram can be read as QUIC packets (garbage, or a header cut
    /// before its connection IDs ended).
    Stop,
    /// The datagram ends inside the header of a packet of this kind and version.
    Cut(Kind, u32),
}

fn parse_long(d: &[u8]) -> Parsed<'_> {
    let mut r = Cursor::new(d);
    let Some(first) = r.u8() else {
        return Parsed::Stop;
    };
    if first & 0x80 == 0 {
        // The fixed bit (0x40) of every version read here; anything else is not QUIC.
        return if first & 0x40 != 0 {
            Parsed::Short
        } else {
            Parsed::Stop
        };
    }
    let Some(version) = r.u32() else {
        return Parsed::Stop;
    };
    let Some(p) = params(version) else {
        // Version-independent fields only: first byte, version, DCID, SCID.
        let mut ids = || -> Option<(&[u8], &[u8])> {
            let dcid = r.vec8().filter(|id| id.len() <= 20)?;
            let scid = r.vec8().filter(|id| id.len() <= 20)?;
            Some((dcid, scid))
        };
        let Some((dcid, scid)) = ids() else {
            return Parsed::Stop;
        };
        return if version == 0 {
            Parsed::VersionNegotiation {
                dcid,
                scid,
                versions: r.rest(),
            }
        } else {
            Parsed::Unknown {
                version,
                dcid,
                scid,
            }
        };
    };
    let bits = (first >> 4) & 0x03;
    let kind = match p.types.iter().position(|&t| t == bits) {
        Some(0) => Kind::Initial,
        Some(1) => Kind::ZeroRtt,
        Some(2) => Kind::Handshake,
        _ => Kind::Retry,
    };
    let mut body = || -> Option<Result<LongHeader<'_>, ()>> {
        let dcid_len = usize::from(r.u8()?);
        if dcid_len > 20 {
            return Some(Err(()));
        }
        let dcid = r.bytes(dcid_len)?;
        let scid_len = usize::from(r.u8()?);
        if scid_len > 20 {
            return Some(Err(()));
        }
        let scid = r.bytes(scid_len)?;
        if kind == Kind::Retry {
            // Retry runs to the end of the datagram.
            return Some(Ok(LongHeader {
                version,
                kind,
                dcid,
                scid,
                pn_offset: d.len(),
                end: d.len(),
            }));
        }
        if kind == Kind::Initial {
            let token_len = r.varint_len()?;
            r.skip(token_len)?;
        }
        let length = r.varint_len()?;
        let pn_offset = r.position();
        Some(Ok(LongHeader {
            version,
            kind,
            dcid,
            scid,
            pn_offset,
            end: pn_offset.saturating_add(length),
        }))
    };
    match body() {
        Some(Ok(h)) => Parsed::Packet(h),
        Some(Err(())) => Parsed::Stop,
        None => Parsed::Cut(kind, version),
    }
}

/// Full packet number from its truncated form (RFC 9000 A.3), `expected` = largest + 1.
fn decode_pn(expected: u64, truncated: u64, bits: u32) -> u64 {
    let win = 1u64 << bits;
    let hwin = win / 2;
    let cand = (expected & !(win - 1)) | truncated;
    if cand.saturating_add(hwin) <= expected && cand < (1u64 << 62).saturating_sub(win) {
        cand + win
    } else if cand > expected.saturating_add(hwin) && cand >= win {
        cand - win
    } else {
        cand
    }
}

/// Removes header protection and opens the packet in `buf` (a copy of the whole packet)
/// with `keys`. On success returns (packet number, plaintext range within `buf`).
fn open(
    keys: &Keys,
    buf: &mut [u8],
    pn_offset: usize,
    expected_pn: u64,
) -> Option<(u64, std::ops::Range<usize>)> {
    let sample = buf.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;
    let mask = keys.hp.new_mask(sample).ok()?;
    buf[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(buf[0] & 0x03) + 1;
    let mut truncated = 0u64;
    for i in 0..pn_len {
        buf[pn_offset + i] ^= mask[1 + i];
        truncated = (truncated << 8) | u64::from(buf[pn_offset + i]);
    }
    let pn = decode_pn(expected_pn, truncated, 8 * pn_len as u32);
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let hdr_len = pn_offset + pn_len;
    let (header, payload) = buf.split_at_mut(hdr_len);
    if payload.len() < TAG_LEN {
        return None;
    }
    let plain = keys
        .aead
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&*header),
            payload,
        )
        .ok()?;
    Some((pn, hdr_len..hdr_len + plain.len()))
}

// ---------------------------------------------------------------------------------------
// CRYPTO stream reassembly

#[derive(Default)]
struct CryptoBuf {
    data: Vec<u8>,
    /// Sorted, disjoint, non-adjacent [start, end) ranges of `data` that were received.
    ranges: Vec<(usize, usize)>,
}

impl CryptoBuf {
    fn insert(&mut self, offset: u64, bytes: &[u8]) {
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if start >= MAX_CRYPTO_BYTES || bytes.is_empty() {
            return;
        }
        let end = start.saturating_add(bytes.len()).min(MAX_CRYPTO_BYTES);
        // Ranges [i, j) touch [start, end): they will be merged into one.
        let i = self.ranges.partition_point(|r| r.1 < start);
        let j = self.ranges.partition_point(|r| r.0 <= end);
        if i == j && self.ranges.len() >= MAX_RANGES {
            return;
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(&bytes[..end - start]);
        let merged = if i < j {
            (start.min(self.ranges[i].0), end.max(self.ranges[j - 1].1))
        } else {
            (start, end)
        };
        self.ranges.splice(i..j, [merged]);
    }

    /// The contiguous bytes from offset 0.
    fn prefix(&self) -> &[u8] {
        match self.ranges.first() {
            Some(&(0, end)) => &self.data[..end],
            _ => &[],
        }
    }
}

/// Walks the frames of a decrypted Initial payload, keeping CRYPTO data.
fn read_frames(payload: &[u8], crypto: &mut CryptoBuf) {
    let mut r = Cursor::new(payload);
    while r.remaining() > 0 {
        let Some(ty) = r.varint() else { return };
        let ok = match ty {
            // PADDING: skip the whole run at once.
            0x00 => r.skip(zero_run(r.rest())),
            // PING
            0x01 => Some(()),
            // ACK, ACK with ECN counts
            0x02 | 0x03 => skip_ack(&mut r, ty == 0x03),
            // CRYPTO
            0x06 => (|| {
                let offset = r.varint()?;
                let len = r.varint_len()?;
                crypto.insert(offset, r.bytes(len)?);
                Some(())
            })(),
            // CONNECTION_CLOSE (transport; the application variant has no frame type)
            0x1c | 0x1d => (|| {
                r.varint()?;
                if ty == 0x1c {
                    r.varint()?;
                }
                let len = r.varint_len()?;
                r.skip(len)?;
                Some(())
            })(),
            _ => None,
        };
        if ok.is_none() {
            return;
        }
    }
}

/// Length of the run of zero bytes `b` starts with (16 bytes at a time: PADDING is most of
/// an Initial).
fn zero_run(b: &[u8]) -> usize {
    let at = 16
        * b.chunks_exact(16)
            .take_while(|c| c.iter().all(|&x| x == 0))
            .count();
    at + b[at..].iter().position(|&x| x != 0).unwrap_or(b.len() - at)
}

fn skip_ack(r: &mut Cursor<'_>, ecn: bool) -> Option<()> {
    r.varint()?; // largest acknowledged
    r.varint()?; // ack delay
    let count = r.varint()?;
    r.varint()?; // first ack range
    for _ in 0..count {
        // Each range takes at least two bytes: a count beyond the payload is garbage.
        r.varint()?;
        r.varint()?;
    }
    if ecn {
        for _ in 0..3 {
            r.varint()?;
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------------------
// ClientHello

/// What the CRYPTO stream prefix says about the ClientHello.
enum Hello<'a> {
    /// Not enough bytes yet to tell.
    Unknown,
    /// The stream does not start with a ClientHello.
    Other,
    /// ClientHello body (possibly cut) and whether it is complete.
    Body(&'a [u8], bool),
}

fn hello(prefix: &[u8]) -> Hello<'_> {
    match prefix {
        [] => Hello::Unknown,
        [t, ..] if *t != 1 => Hello::Other,
        [_, a, b, c, rest @ ..] => {
            let need = (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c);
            Hello::Body(&rest[..need.min(rest.len())], rest.len() >= need)
        }
        _ => Hello::Body(&[], false),
    }
}

/// SNI and ALPN from a ClientHello body; reads what fits when the body is cut.
fn hello_extensions(body: &[u8], sni: &mut Option<String>, alpn: &mut Vec<String>) -> Option<()> {
    let mut r = Cursor::new(body);
    r.skip(2 + 32)?; // legacy_version, random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    let n = r.u16()?;
    let mut exts = Cursor::new(r.bytes_upto(usize::from(n)));
    loop {
        let ty = exts.u16()?;
        let data = exts.vec16()?;
        match ty {
            0 if sni.is_none() => *sni = server_name(data),
            16 if alpn.is_empty() => *alpn = alpn_names(data),
            _ => {}
        }
    }
}

fn server_name(data: &[u8]) -> Option<String> {
    let mut r = Cursor::new(data);
    let n = r.u16()?;
    let mut list = Cursor::new(r.bytes_upto(usize::from(n)));
    loop {
        let ty = list.u8()?;
        let name = list.vec16()?;
        if ty == 0 {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
    }
}

fn alpn_names(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut r = Cursor::new(data);
    let Some(n) = r.u16() else { return out };
    let mut list = Cursor::new(r.bytes_upto(usize::from(n)));
    while let Some(name) = list.vec8() {
        out.push(String::from_utf8_lossy(name).into_owned());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Driver

/// The client's first long header of any version: its version and connection IDs.
struct FirstHeader {
    version: u32,
    dcid: Vec<u8>,
    scid: Vec<u8>,
    /// A version not read here, in a datagram of at least [`MIN_INITIAL_DATAGRAM`] bytes.
    unknown_big: bool,
}

#[derive(Default)]
struct State {
    facts: QuicFacts,
    seen_initial: bool,
    keys: Vec<Keys>,
    /// Largest packet number decrypted + 1 (the Initial space survives a Retry).
    next_pn: u64,
    crypto: CryptoBuf,
    scratch: Vec<u8>,
    /// Some Initial decrypted, or was cut by the capture: a missing hello is then "truncated".
    evidence: bool,
    /// The ClientHello is complete: later datagrams are only looked at for other packets.
    done: bool,
    first: Option<FirstHeader>,
    vn_versions: Option<Vec<u32>>,
}

impl State {
    fn datagram(&mut self, d: &[u8]) {
        let mut rest = d;
        while !rest.is_empty() {
            match parse_long(rest) {
                Parsed::Stop | Parsed::VersionNegotiation { .. } => return,
                Parsed::Short => {
                    self.count_short();
                    return;
                }
                Parsed::Unknown {
                    version,
                    dcid,
                    scid,
                } => {
                    self.first_header(version, dcid, scid, d.len() >= MIN_INITIAL_DATAGRAM);
                    return;
                }
                Parsed::Cut(kind, version) => {
                    if kind == Kind::Initial && !self.done {
                        self.cut_initial(version);
                    }
                    return;
                }
                Parsed::Packet(h) => {
                    self.first_header(h.version, h.dcid, h.scid, false);
                    match h.kind {
                        Kind::Initial if self.done => {}
                        Kind::Initial => {
                            if !self.seen_initial {
                                self.seen_initial = true;
                                self.facts.version = h.version;
                                self.facts.dcid = h.dcid.to_vec();
                            }
                            self.facts.initial_packets =
                                self.facts.initial_packets.saturating_add(1);
                            match rest.get(..h.end) {
                                Some(pkt) => self.initial(&h, pkt),
                                None => self.evidence = true, // cut by the capture
                            }
                        }
                        kind => self.count(kind),
                    }
                    if h.kind == Kind::Retry || h.end >= rest.len() {
                        return;
                    }
                    rest = &rest[h.end..];
                }
            }
        }
    }

    /// A datagram from the server: Version Negotiation (answering the client's first long
    /// header), Retry, Handshake, 0-RTT and short-header packets are counted; nothing is
    /// decrypted.
    fn server_datagram(&mut self, d: &[u8]) {
        let mut rest = d;
        while !rest.is_empty() {
            match parse_long(rest) {
                Parsed::Stop | Parsed::Unknown { .. } | Parsed::Cut(..) => return,
                Parsed::Short => {
                    self.count_short();
                    return;
                }
                Parsed::VersionNegotiation {
                    dcid,
                    scid,
                    versions,
                } => {
                    let Some(first) = &self.first else { return };
                    // The server echoes the client's connection IDs (RFC 9000 17.2.1).
                    if self.vn_versions.is_none()
                        && dcid == first.scid.as_slice()
                        && scid == first.dcid.as_slice()
                        && versions.len() >= 4
                    {
                        self.vn_versions = Some(
                            versions
                                .chunks_exact(4)
                                .take(MAX_VN_VERSIONS)
                                .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
                                .collect(),
                        );
                    }
                    return;
                }
                Parsed::Packet(h) => {
                    if h.kind != Kind::Initial {
                        self.count(h.kind);
                    }
                    if h.kind == Kind::Retry || h.end >= rest.len() {
                        return;
                    }
                    rest = &rest[h.end..];
                }
            }
        }
    }

    fn first_header(&mut self, version: u32, dcid: &[u8], scid: &[u8], unknown_big: bool) {
        if self.first.is_none() {
            self.first = Some(FirstHeader {
                version,
                dcid: dcid.to_vec(),
                scid: scid.to_vec(),
                unknown_big,
            });
        }
    }

    fn count(&mut self, kind: Kind) {
        let p = &mut self.facts.packets;
        let n = match kind {
            Kind::Initial => return,
            Kind::ZeroRtt => &mut p.zero_rtt,
            Kind::Handshake => &mut p.handshake,
            Kind::Retry => &mut p.retry,
        };
        *n = n.saturating_add(1);
    }

    fn count_short(&mut self) {
        let n = &mut self.facts.packets.short_header;
        *n = n.saturating_add(1);
    }

    /// An Initial whose header itself is cut: count it, nothing to decrypt.
    fn cut_initial(&mut self, version: u32) {
        if !self.seen_initial {
            // Too little header to know the DCID for sure: still an Initial.
            self.seen_initial = true;
            self.facts.version = version;
        }
        self.facts.initial_packets = self.facts.initial_packets.saturating_add(1);
        self.evidence = true;
    }

    fn initial(&mut self, h: &LongHeader<'_>, pkt: &[u8]) {
        let mut buf = std::mem::take(&mut self.scratch);
        let mut opened = None;
        for keys in self.keys.iter().filter(|k| k.version == h.version) {
            opened = try_open(keys, &mut buf, pkt, h.pn_offset, self.next_pn);
            if opened.is_some() {
                break;
            }
        }
        if opened.is_none() {
            // New keys: the original DCID under this packet's version (a switch to v2 by
            // compatible version negotiation, RFC 9368, keeps it), then this packet's DCID
            // (a Retry).
            let original = self.facts.dcid.clone();
            for dcid in [original.as_slice(), h.dcid] {
                let known = self
                    .keys
                    .iter()
                    .any(|k| k.version == h.version && k.dcid == dcid);
                if opened.is_some() || known || self.keys.len() >= MAX_KEY_SETS {
                    continue;
                }
                if let Some(keys) = Keys::new(h.version, dcid) {
                    opened = try_open(&keys, &mut buf, pkt, h.pn_offset, self.next_pn);
                    self.keys.push(keys);
                }
            }
        }
        match opened {
            Some((pn, range)) => {
                self.evidence = true;
                self.facts.decrypted = true;
                self.next_pn = self.next_pn.max(pn.saturating_add(1));
                read_frames(&buf[range], &mut self.crypto);
            }
            None => self.facts.decrypt_failures = self.facts.decrypt_failures.saturating_add(1),
        }
        self.scratch = buf;
    }

    /// The ClientHello is complete (or the stream is not one): nothing more to read.
    fn hello_done(&self) -> bool {
        match hello(self.crypto.prefix()) {
            Hello::Unknown => false,
            Hello::Other => true,
            Hello::Body(_, complete) => complete,
        }
    }

    fn finish(self) -> Option<QuicFacts> {
        let quic = self.seen_initial
            || self.vn_versions.is_some()
            || self.first.as_ref().is_some_and(|f| f.unknown_big);
        if !quic {
            return None;
        }
        let mut facts = self.facts;
        if !self.seen_initial {
            if let Some(first) = self.first {
                facts.version = first.version;
                facts.dcid = first.dcid;
            }
        }
        facts.version_name = version_name(facts.version);
        facts.server_versions = self
            .vn_versions
            .map(|v| v.into_iter().map(version_name).collect());
        match hello(self.crypto.prefix()) {
            Hello::Unknown => facts.truncated = self.evidence,
            Hello::Other => {}
            Hello::Body(body, complete) => {
                facts.truncated = !complete;
                hello_extensions(body, &mut facts.sni, &mut facts.alpn);
            }
        }
        Some(facts)
    }
}

fn try_open(
    keys: &Keys,
    buf: &mut Vec<u8>,
    pkt: &[u8],
    pn_offset: usize,
    expected_pn: u64,
) -> Option<(u64, std::ops::Range<usize>)> {
    buf.clear();
    buf.extend_from_slice(pkt);
    open(keys, buf, pn_offset, expected_pn)
}

/// A client Initial of `version` protected the way a sender would (4-byte packet number
/// `pn`, no SCID, no token, the keys of `dcid`) around `payload` (its frames); `None` for a
/// version without Initial keys here, or a payload too long for the length field.
/// For tests and the fuzz target that feeds the decryption real ciphertext.
#[cfg(any(test, feature = "synth"))]
pub fn protect_client_initial(
    version: u32,
    dcid: &[u8],
    pn: u32,
    payload: &[u8],
) -> Option<Vec<u8>> {
    protect_client_initial_with(version, dcid, dcid, pn, payload)
}

/// [`protect_client_initial`] with the keys of `key_dcid` and `dcid` in the header.
#[cfg(any(test, feature = "synth"))]
fn protect_client_initial_with(
    version: u32,
    key_dcid: &[u8],
    dcid: &[u8],
    pn: u32,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let p = params(version)?;
    let s = derive_secrets(p, key_dcid)?;
    let mut pkt = vec![0xc3 | (p.types[0] << 4)];
    pkt.extend(version.to_be_bytes());
    pkt.push(u8::try_from(dcid.len()).ok()?);
    pkt.extend_from_slice(dcid);
    pkt.extend([0, 0]); // SCID length, token length
    let len = u16::try_from(0x4000 | (4 + payload.len() + TAG_LEN)).ok()?;
    pkt.extend(len.to_be_bytes());
    let pn_offset = pkt.len();
    pkt.extend(pn.to_be_bytes());
    let mut nonce = s.iv;
    for (n, b) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
        *n ^= b;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &s.key).ok()?);
    let mut body = payload.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&pkt[..]),
        &mut body,
    )
    .ok()?;
    pkt.extend(body);
    let hp = HeaderProtectionKey::new(&AES_128, &s.hp).ok()?;
    let mask = hp
        .new_mask(&pkt[pn_offset + 4..pn_offset + 4 + SAMPLE_LEN])
        .ok()?;
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    Some(pkt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    const RFC_DCID: &str = "8394c8f03e515708";

    /// RFC 9001 A.2 / RFC 9369 A.2: the CRYPTO frame of the client Initial (then PADDING).
    const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c
        00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006
        001d0017001800100007000504616c706e000500050100000000003300260024001d00209370b2c9caa4
        7fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304000d0010000e040305
        0306030203080408050806002d00020101001c00024001003900320408ffffffffffffffff05048000ff
        ff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff";

    /// RFC 9001 A.2: the protected client Initial packet (1200 bytes).
    const RFC9001_PACKET: &str = "
        c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936
        b47d92ec356c0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8
        d2262cad67500cadb8e7378c8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df
        621230c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5457afd84d05dfffd
        b20392844ae812154682e9cf012f9021a6f0be17ddd0c2084dce25ff9b06cde535d0f920a2db1bf362c2
        3e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7ba
        d1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db059ae0648db2
        f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7
        961b7f25a9323851f681d582363aa5f89937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba66117
        22395c906556be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c7468449a13
        d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663ac69890f4157015853d91e923037c
        227a33cdd5ec281ca3f79c44546b9d90ca00f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c481
        9e8b9c5927726632291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe5896425c5
        bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd14de71e6c418559302f939b0
        e1abd576f279c4b2e0feb85c1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff28f5b76695333
        4113211996d20011a198e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73203a4a13e96f5432ec0f
        d4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3d8b4dae6e705
        769d1de354270123cb11450efc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b0
        3adea2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e72404790a2181014f3b94a
        4e97d117b438130368cc39dbb2d198065ae3986547926cd2162f40a29f0c3c8745c0f50fba3852e566d4
        4575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b6
        5bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e8f2e6ff58001
        75f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723
        c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64
        491c85194aab760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9
        ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf5
        79be0a39013137aac6d404f518cfd46840647e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c
        88d4a9a7f9474241e221af44860018ab0856972e194cd934";

    /// RFC 9369 A.2: the protected client Initial packet of QUIC v2 (1200 bytes).
    const RFC9369_PACKET: &str = "
        d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485dd04de806071bf03dcee
        bfa162e75d6c96058bdbfb127cdfcbf903388e99ad049f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09
        747052f17ac2053d21f57c5d250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243
        cf1a12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500cb9122faa9f1df66
        c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd6818f6625efce3b6def6ba7e4b37a40f7732e0
        93daa7d52190935b8da58976ff3312ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4cce
        e1bfa2a3d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd6f7521a3f6c7
        d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520bcfb7966fc49b393f0061d974a2706df
        8c4a9449f11d7f3d2dcbb90c6b877045636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452
        aaa549e27a1fac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c1216ccce2d
        0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e54df16efaf6ddea94e2c50b4cd1df
        e06017e0e9d02900cffe1935e0491d77ffb4fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a3
        7cbb08b847741c3b8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de714d1
        9d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff99c63a344d6a2ae8aa8e51b7b
        90a4a806105fcbca31506c446151adfeceb51b91abfe43960977c87471cf9ad4074d30e10d6a7f03c63b
        d5d4317f68ff325ba3bd80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18d703dd84045a274ae8bf
        a73379661388d6991fe39b0d93debb41700b41f90a15c4d526250235ddcd6776fc77bc97e7a417ebcb31
        600d01e57f32162a8560cacc7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e823
        8e61f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e7071010d3f270121b493c
        e85054ef58bada42310138fe081adb04e2bd901f2f13458b3d6758158197107c14ebb193230cd1157380
        aa79cae1374a7c1e5bbcb80ee23e06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7c
        a7331dce8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d134b90c9058f8
        632c798d4490da4987307cba922d61c39805d072b589bd52fdf1e86215c2d54e6670e07383a27bbffb5a
        ddf47d66aa85a0c6f9f32e59d85a44dd5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ec
        abee93dfc6e38d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89d5974ee1
        2e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b536f4c4938ae79324dc402894b44fa
        f8afbab35282ab659d13c93f70412e85cb199a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb
        69745a262ccde96ba18b2faa745b6fe189cf772a9f84cbfc";

    fn rfc_payload() -> Vec<u8> {
        let mut p = unhex(RFC_CRYPTO_FRAME);
        p.resize(1162, 0);
        p
    }

    fn varint(v: u64) -> Vec<u8> {
        match v {
            0..=0x3f => vec![v as u8],
            0x40..=0x3fff => (0x4000 | v as u16).to_be_bytes().to_vec(),
            0x4000..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
            _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
        }
    }

    fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend(varint(offset as u64));
        f.extend(varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    fn protect_with(
        version: u32,
        key_dcid: &[u8],
        dcid: &[u8],
        pn: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        protect_client_initial_with(version, key_dcid, dcid, pn, payload).unwrap()
    }

    fn protect(version: u32, dcid: &[u8], pn: u32, payload: &[u8]) -> Vec<u8> {
        protect_with(version, dcid, dcid, pn, payload)
    }

    /// A TLS ClientHello handshake message with SNI, ALPN and `pad` bytes of padding
    /// extension (21).
    fn client_hello(sni: &str, alpn: &[&str], pad: usize) -> Vec<u8> {
        let mut exts = Vec::new();
        let mut ext = |ty: u16, data: Vec<u8>| {
            exts.extend(ty.to_be_bytes());
            exts.extend((data.len() as u16).to_be_bytes());
            exts.extend(data);
        };
        ext(43, vec![2, 3, 4]); // supported_versions
        let mut names = Vec::new();
        for a in alpn {
            names.push(a.len() as u8);
            names.extend(a.as_bytes());
        }
        let mut d = (names.len() as u16).to_be_bytes().to_vec();
        d.extend(names);
        ext(16, d);
        let mut d = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend((sni.len() as u16).to_be_bytes());
        d.extend(sni.as_bytes());
        ext(0, d);
        ext(21, vec![0; pad]);
        let mut body = vec![3, 3];
        body.extend([0x11; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]);
        body.extend([1, 0]);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut msg = vec![1];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    fn run(datagrams: &[Vec<u8>]) -> Option<QuicFacts> {
        client_initial(datagrams.iter().map(|d| d.as_slice()))
    }

    #[test]
    fn rfc9001_keys() {
        let s = derive_secrets(&V1, &unhex(RFC_DCID)).unwrap();
        assert_eq!(s.key.to_vec(), unhex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(s.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(s.hp.to_vec(), unhex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9369_keys() {
        let s = derive_secrets(&V2, &unhex(RFC_DCID)).unwrap();
        assert_eq!(s.key.to_vec(), unhex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(s.iv.to_vec(), unhex("91f73e2351d8fa91660e909f"));
        assert_eq!(s.hp.to_vec(), unhex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn rfc9001_header_protection_and_payload() {
        let pkt = unhex(RFC9001_PACKET);
        assert_eq!(pkt.len(), 1200);
        let Parsed::Packet(h) = parse_long(&pkt) else {
            panic!("not a packet")
        };
        assert_eq!(
            (h.kind, h.version, h.pn_offset, h.end),
            (Kind::Initial, 1, 18, 1200)
        );
        let keys = Keys::new(VERSION_1, h.dcid).unwrap();
        let s = derive_secrets(&V1, h.dcid).unwrap();
        let sample = &pkt[h.pn_offset + 4..h.pn_offset + 20];
        assert_eq!(sample.to_vec(), unhex("d1b1c98dd7689fb8ec11d242b123dc9b"));
        let hp = HeaderProtectionKey::new(&AES_128, &s.hp).unwrap();
        assert_eq!(hp.new_mask(sample).unwrap().to_vec(), unhex("437b9aec36"));
        let mut buf = pkt.clone();
        let (pn, range) = open(&keys, &mut buf, h.pn_offset, 0).unwrap();
        assert_eq!(pn, 2);
        assert_eq!(
            buf[..range.start].to_vec(),
            unhex("c300000001088394c8f03e5157080000449e00000002")
        );
        assert_eq!(buf[range].to_vec(), rfc_payload());
    }

    #[test]
    fn rfc9001_client_initial() {
        let facts = run(&[unhex(RFC9001_PACKET)]).unwrap();
        assert_eq!(
            facts,
            QuicFacts {
                version: VERSION_1,
                dcid: unhex(RFC_DCID),
                sni: Some("example.com".into()),
                alpn: vec!["alpn".into()],
                truncated: false,
                initial_packets: 1,
                decrypt_failures: 0,
                version_name: "v1".into(),
                decrypted: true,
                server_versions: None,
                packets: Packets::default(),
            }
        );
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["dcid"], "8394c8f03e515708");
        assert_eq!(json["sni"], "example.com");
    }

    #[test]
    fn rfc9369_v2_client_initial() {
        let pkt = unhex(RFC9369_PACKET);
        assert_eq!(pkt.len(), 1200);
        let facts = run(&[pkt]).unwrap();
        assert_eq!(facts.version, VERSION_2);
        assert_eq!(facts.dcid, unhex(RFC_DCID));
        assert_eq!(facts.sni.as_deref(), Some("example.com"));
        assert_eq!(facts.alpn, ["alpn"]);
        assert_eq!(
            (
                facts.truncated,
                facts.initial_packets,
                facts.decrypt_failures
            ),
            (false, 1, 0)
        );
        // v1 type bits on a v2 packet are a 0-RTT packet: not an Initial.
        let mut v2_as_0rtt = unhex(RFC9369_PACKET);
        v2_as_0rtt[0] = (v2_as_0rtt[0] & !0x30) | 0x20;
        assert_eq!(run(&[v2_as_0rtt]), None);
    }

    #[test]
    fn test_sealer_reproduces_rfc_packets() {
        let dcid = unhex(RFC_DCID);
        assert_eq!(
            protect(VERSION_1, &dcid, 2, &rfc_payload()),
            unhex(RFC9001_PACKET)
        );
        assert_eq!(
            protect(VERSION_2, &dcid, 2, &rfc_payload()),
            unhex(RFC9369_PACKET)
        );
    }

    #[test]
    fn tampered_packets_fail_authentication() {
        let good = unhex(RFC9001_PACKET);
        // Payload, tag, packet number, a header byte covered by the AAD, and the version's
        // type bits are all authenticated.
        for pos in [20, 100, 600, 1199, 18, 21, 0] {
            let mut pkt = good.clone();
            pkt[pos] ^= 0x01;
            let facts = run(&[pkt]).unwrap();
            assert_eq!(facts.decrypt_failures, 1, "byte {pos}");
            assert_eq!(facts.initial_packets, 1);
            assert_eq!(facts.sni, None);
            assert!(!facts.truncated, "a failed decryption is not a cut capture");
        }
        // A changed DCID derives other keys: fails too (after one re-derivation).
        let mut pkt = good.clone();
        pkt[6] ^= 0x01;
        let facts = run(&[pkt.clone()]).unwrap();
        assert_eq!(facts.decrypt_failures, 1);
        // The tampered copy fails, the genuine one after it still decrypts.
        let mut bad = good.clone();
        bad[500] ^= 0x80;
        let facts = run(&[bad, good]).unwrap();
        assert_eq!((facts.initial_packets, facts.decrypt_failures), (2, 1));
        assert_eq!(facts.sni.as_deref(), Some("example.com"));
    }

    #[test]
    fn hello_over_three_packets_out_of_order() {
        let dcid = [0xab; 8];
        let ch = client_hello("three.example.org", &["h3", "h3-29"], 2500);
        let (a, rest) = ch.split_at(700);
        let (b, c) = rest.split_at(1100);
        let mut p1 = vec![0x01]; // PING
        p1.extend(crypto_frame(700 + 1100, c));
        p1.extend([0x02, 0x00, 0x00, 0x00, 0x00]); // ACK
        let mut p2 = crypto_frame(1200, &b[500..]);
        p2.extend(crypto_frame(700, &b[..600])); // overlap
        p2.extend([0u8; 50]);
        // CRYPTO frames interleaved backwards in one packet.
        let mut p3 = crypto_frame(400, &a[400..]);
        p3.extend([0x1c, 0x00, 0x00, 0x00]); // CONNECTION_CLOSE, empty reason
        p3.extend(crypto_frame(0, &a[..400]));
        let dg = vec![
            protect(VERSION_1, &dcid, 0, &p1),
            protect(VERSION_1, &dcid, 1, &p2),
            protect(VERSION_1, &dcid, 2, &p3),
        ];
        let facts = run(&dg).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("three.example.org"));
        assert_eq!(facts.alpn, ["h3", "h3-29"]);
        assert_eq!((facts.initial_packets, facts.decrypt_failures), (3, 0));
        assert!(!facts.truncated);
        assert_eq!(facts.dcid, dcid);

        // Missing middle packet: the start (SNI, ALPN) is read, the hello is truncated.
        let facts = run(&[dg[0].clone(), dg[2].clone()]).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("three.example.org"));
        assert!(facts.truncated);
        // Missing first packet: nothing from offset 0.
        let facts = run(&dg[..2]).unwrap();
        assert_eq!((facts.sni, facts.truncated), (None, true));
    }

    #[test]
    fn coalesced_packets_and_other_long_headers() {
        let dcid = [7u8; 8];
        let ch = client_hello("coalesced.test", &["h3"], 100);
        let initial = protect(VERSION_1, &dcid, 0, &crypto_frame(0, &ch));
        // A 0-RTT packet first (own datagram), then Initial + Handshake-typed + short header.
        let mut zero_rtt = vec![0xd0, 0, 0, 0, 1, 8];
        zero_rtt.extend(dcid);
        zero_rtt.extend([0, 0x40, 20]);
        zero_rtt.extend([0x55; 20]);
        let mut dg = zero_rtt.clone();
        dg.truncate(zero_rtt.len() - 5); // cut 0-RTT: ignored
        let mut coalesced = initial.clone();
        coalesced.extend(&zero_rtt);
        coalesced.extend([0x41, 1, 2, 3]);
        let facts = run(&[zero_rtt.clone(), dg, coalesced]).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("coalesced.test"));
        assert_eq!(facts.initial_packets, 1);
        // Initial after a 0-RTT in the same datagram.
        let mut dg = zero_rtt.clone();
        dg.extend(&initial);
        assert_eq!(run(&[dg]).unwrap().sni.as_deref(), Some("coalesced.test"));
    }

    #[test]
    fn retry_rederives_keys_from_new_dcid() {
        let (odcid, ndcid) = ([1u8; 8], [2u8; 14]);
        let ch = client_hello("after.retry", &["hq-interop"], 1500);
        let (a, b) = ch.split_at(900);
        let dg = vec![
            protect(VERSION_1, &odcid, 0, &crypto_frame(0, a)),
            protect(VERSION_1, &ndcid, 1, &crypto_frame(900, b)),
        ];
        let facts = run(&dg).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("after.retry"));
        assert_eq!((facts.initial_packets, facts.decrypt_failures), (2, 0));
        assert_eq!(facts.dcid, odcid);
        assert!(!facts.truncated);
        // Chrome-style switch: new DCID in the header, keys still from the original one.
        let dg = vec![
            protect(VERSION_1, &odcid, 0, &crypto_frame(0, a)),
            protect_with(VERSION_1, &odcid, &ndcid, 1, &crypto_frame(900, b)),
        ];
        let facts = run(&dg).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("after.retry"));
        assert_eq!(facts.decrypt_failures, 0);
    }

    #[test]
    fn compatible_version_negotiation_to_v2() {
        // The client starts in v1, then sends v2 Initials to the server's SCID with keys
        // from its original DCID and the v2 salt (RFC 9368).
        let (odcid, server_scid) = ([4u8; 8], [5u8; 6]);
        let ch = client_hello("vn.test", &["h3"], 1500);
        let (a, b) = ch.split_at(1000);
        let dg = vec![
            protect(VERSION_1, &odcid, 0, &crypto_frame(0, a)),
            protect_with(VERSION_2, &odcid, &server_scid, 1, &crypto_frame(1000, b)),
        ];
        let facts = run(&dg).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("vn.test"));
        assert_eq!((facts.version, facts.decrypt_failures), (VERSION_1, 0));
        assert!(!facts.truncated);
    }

    #[test]
    fn key_sets_are_bounded() {
        // Each Initial under a fresh DCID with wrong keys: at most MAX_KEY_SETS derived.
        let ch = client_hello("x.test", &[], 10);
        let dg: Vec<Vec<u8>> = (0..10u8)
            .map(|i| {
                protect_with(
                    VERSION_1,
                    &[0xee; 8],
                    &[i; 8],
                    u32::from(i),
                    &crypto_frame(0, &ch),
                )
            })
            .collect();
        let mut st = State::default();
        for d in &dg {
            st.datagram(d);
        }
        assert_eq!(st.keys.len(), MAX_KEY_SETS);
        let facts = st.finish().unwrap();
        assert_eq!((facts.initial_packets, facts.decrypt_failures), (10, 10));
        assert_eq!(facts.sni, None);
        assert!(!facts.truncated);
    }

    #[test]
    fn datagram_and_crypto_limits() {
        let dcid = [3u8; 8];
        let ch = client_hello("late.test", &[], 10);
        // The hello arrives in datagram MAX_DATAGRAMS + 1: not read.
        let mut dg: Vec<Vec<u8>> = (0..MAX_DATAGRAMS as u32)
            .map(|pn| protect(VERSION_1, &dcid, pn, &[0x01]))
            .collect();
        dg.push(protect(VERSION_1, &dcid, 99, &crypto_frame(0, &ch)));
        let facts = run(&dg).unwrap();
        assert_eq!(facts.initial_packets, MAX_DATAGRAMS as u32);
        assert_eq!((facts.sni, facts.truncated), (None, true));
        // CRYPTO data beyond MAX_CRYPTO_BYTES is dropped.
        let mut buf = CryptoBuf::default();
        buf.insert(MAX_CRYPTO_BYTES as u64, &[1, 2, 3]);
        buf.insert(u64::MAX, &[1]);
        buf.insert(MAX_CRYPTO_BYTES as u64 - 2, &[1, 2, 3, 4]);
        assert_eq!(buf.data.len(), MAX_CRYPTO_BYTES);
        assert_eq!(buf.ranges, [(MAX_CRYPTO_BYTES - 2, MAX_CRYPTO_BYTES)]);
        // A hello declaring more than the cap is reported truncated, its start still read.
        let mut big = client_hello("big.test", &["h3"], 10);
        big[1..4].copy_from_slice(&[0x02, 0, 0]);
        let facts = run(&[protect(VERSION_1, &dcid, 0, &crypto_frame(0, &big))]).unwrap();
        assert_eq!(
            (facts.sni.as_deref(), facts.truncated),
            (Some("big.test"), true)
        );
    }

    #[test]
    fn crypto_ranges_merge() {
        let mut b = CryptoBuf::default();
        b.insert(10, &[1; 5]);
        b.insert(20, &[2; 5]);
        assert_eq!(b.ranges, [(10, 15), (20, 25)]);
        b.insert(15, &[3; 5]); // adjacent on both sides
        assert_eq!(b.ranges, [(10, 25)]);
        b.insert(0, &[4; 3]);
        b.insert(2, &[5; 30]);
        assert_eq!(b.ranges, [(0, 32)]);
        assert_eq!(b.prefix().len(), 32);
        let mut b = CryptoBuf::default();
        for i in 0..(MAX_RANGES as u64 + 10) {
            b.insert(1 + 2 * i, &[9]);
        }
        assert_eq!(b.ranges.len(), MAX_RANGES);
        assert!(b.prefix().is_empty());
    }

    #[test]
    fn frames_stop_at_unknown_type() {
        let ch = client_hello("frames.test", &[], 10);
        let mut p = vec![0x01, 0x00, 0x00];
        p.extend([0x03, 0x05, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00]); // ACK+ECN
        p.extend([0x1d, 0x00, 0x02, b'h', b'i']); // application close
        p.extend(crypto_frame(0, &ch[..20]));
        p.push(0x08); // STREAM: stop
        p.extend(crypto_frame(20, &ch[20..]));
        let mut b = CryptoBuf::default();
        read_frames(&p, &mut b);
        assert_eq!(b.ranges, [(0, 20)]);
    }

    #[test]
    fn zero_runs() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100] {
            assert_eq!(zero_run(&vec![0; len]), len);
            for at in 0..len {
                let mut b = vec![0; len];
                b[at] = 1;
                assert_eq!(zero_run(&b), at, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn packet_number_decoding() {
        // RFC 9000 A.3 example.
        assert_eq!(decode_pn(0xa82f_30eb, 0x9b32, 16), 0xa82f_9b32);
        assert_eq!(decode_pn(0, 2, 32), 2);
        assert_eq!(decode_pn(300, 0x2d, 8), 301);
        assert_eq!(decode_pn(0, 0xff, 8), 0xff);
    }

    #[test]
    fn not_quic() {
        assert_eq!(client_initial(std::iter::empty()), None);
        assert_eq!(run(&[vec![]]), None);
        assert_eq!(run(&[vec![0x40; 100]]), None); // short header
        let mut vn = vec![0xc0, 0, 0, 0, 0, 8];
        vn.extend([1u8; 8]);
        vn.extend([0, 0, 0, 0, 1]);
        assert_eq!(run(&[vn]), None); // version negotiation
        let mut pkt = unhex(RFC9001_PACKET);
        pkt[4] = 2; // unknown version, in a datagram too small for an Initial
        pkt.truncate(MIN_INITIAL_DATAGRAM - 1);
        assert_eq!(run(&[pkt]), None);
        let mut retry = vec![0xf0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4];
        retry.extend([0u8; 30]);
        assert_eq!(run(&[retry]), None);
        assert_eq!(run(&[b"GET / HTTP/1.1\r\n".to_vec()]), None);
    }

    /// draft-ietf-quic-tls-29 A.1: the client's Initial keys for the same DCID as RFC 9001.
    #[test]
    fn draft29_keys() {
        let s = derive_secrets(params(0xff00_001d).unwrap(), &unhex(RFC_DCID)).unwrap();
        assert_eq!(s.key.to_vec(), unhex("175257a31eb09dea9366d8bb79ad80ba"));
        assert_eq!(s.iv.to_vec(), unhex("6b26114b9cba2b63a9e8dd4f"));
        assert_eq!(s.hp.to_vec(), unhex("9ddd12c994c0698b89374a9c077a3077"));
    }

    #[test]
    fn version_table() {
        let salt = |v: u32| params(v).map(|p| p.salt);
        for d in 0x16..=0x22u32 {
            let v = 0xff00_0000 | d;
            let want = match d {
                0x16 => SALT_DRAFT_22,
                0x17..=0x1c => SALT_DRAFT_23,
                0x1d..=0x20 => SALT_DRAFT_29,
                _ => SALT_V1,
            };
            assert_eq!(salt(v), Some(want), "draft {d}");
            assert_eq!(version_name(v), format!("draft-{d}"));
            assert_eq!(params(v).unwrap().key_label, b"quic key");
        }
        assert_eq!(salt(MVFST_22), Some(SALT_DRAFT_22));
        assert_eq!(salt(MVFST_27), Some(SALT_DRAFT_23));
        assert_eq!(salt(MVFST_EXPERIMENTAL), Some(SALT_DRAFT_23));
        for v in [
            0,
            0xff00_0015,
            0xff00_0023,
            0xface_b003,
            0x5130_3530,
            0x1a2a_3a4a,
        ] {
            assert!(params(v).is_none(), "{v:#x}");
        }
        assert_eq!(version_name(VERSION_1), "v1");
        assert_eq!(version_name(VERSION_2), "v2");
        assert_eq!(version_name(MVFST_27), "0xfaceb002");
        assert_eq!(version_name(0x0000_0002), "0x00000002");
    }

    #[test]
    fn drafts_and_mvfst_initials_decrypt() {
        let dcid = [0x5a; 8];
        let ch = client_hello("draft.test", &["h3-29"], 1100);
        let versions = (0xff00_0016..=0xff00_0022).chain([MVFST_22, MVFST_27, MVFST_EXPERIMENTAL]);
        for v in versions {
            let facts = run(&[protect(v, &dcid, 0, &crypto_frame(0, &ch))]).unwrap();
            assert_eq!(facts.sni.as_deref(), Some("draft.test"), "{v:#x}");
            assert_eq!((facts.version, facts.decrypted), (v, true));
            assert_eq!(facts.version_name, version_name(v));
            assert_eq!(facts.alpn, ["h3-29"]);
        }
        // The salt matters: a draft-29 Initial does not open with draft-27 keys.
        let mut pkt = protect(0xff00_001d, &dcid, 0, &crypto_frame(0, &ch));
        pkt[4] = 0x1b;
        let facts = run(&[pkt]).unwrap();
        assert_eq!((facts.decrypted, facts.decrypt_failures), (false, 1));
        assert_eq!(
            (facts.version_name.as_str(), facts.sni.as_deref()),
            ("draft-27", None)
        );
        // A cut draft-29 Initial: QUIC, not decrypted, truncated.
        let pkt = protect(0xff00_001d, &dcid, 0, &crypto_frame(0, &ch));
        let facts = run(&[pkt[..600].to_vec()]).unwrap();
        assert_eq!(
            (
                facts.version_name.as_str(),
                facts.decrypted,
                facts.truncated
            ),
            ("draft-29", false, true)
        );
    }

    /// A long header of `version` with `payload` after the connection IDs.
    fn long_header(first: u8, version: u32, dcid: &[u8], scid: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![first];
        p.extend(version.to_be_bytes());
        p.push(dcid.len() as u8);
        p.extend_from_slice(dcid);
        p.push(scid.len() as u8);
        p.extend_from_slice(scid);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn unknown_version_and_version_negotiation() {
        let (dcid, scid) = ([0x11u8; 8], [0x22u8; 5]);
        let big = long_header(0xc0, 0x1a2a_3a4a, &dcid, &scid, &[0; 1200]);
        let facts = run(std::slice::from_ref(&big)).unwrap();
        assert_eq!(facts.version, 0x1a2a_3a4a);
        assert_eq!(facts.version_name, "0x1a2a3a4a");
        assert_eq!(facts.dcid, dcid);
        assert!(!facts.decrypted && !facts.truncated);
        assert_eq!(
            (facts.initial_packets, facts.server_versions.is_none()),
            (0, true)
        );
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["version_name"], "0x1a2a3a4a");
        assert_eq!(json["decrypted"], false);

        // A small datagram is QUIC only once the server answers it with a Version
        // Negotiation packet that echoes its connection IDs.
        let small = long_header(0xc0, 0x1a2a_3a4a, &dcid, &scid, &[0; 40]);
        assert_eq!(run(std::slice::from_ref(&small)), None);
        let mut list = Vec::new();
        for v in [VERSION_1, 0xff00_001d, MVFST_27, 0x0a1a_2a3a] {
            list.extend(v.to_be_bytes());
        }
        let vn = long_header(0xc5, 0, &scid, &dcid, &list);
        let facts = flow_facts([small.as_slice()], [vn.as_slice()]).unwrap();
        assert_eq!(
            facts.server_versions.as_deref(),
            Some(&["v1", "draft-29", "0xfaceb002", "0x0a1a2a3a"].map(String::from)[..])
        );
        assert!(!facts.decrypted);
        // Connection IDs that do not echo the client's, or no versions: ignored.
        let wrong = long_header(0xc5, 0, &dcid, &scid, &list);
        assert_eq!(flow_facts([small.as_slice()], [wrong.as_slice()]), None);
        let empty = long_header(0xc5, 0, &scid, &dcid, &[1, 2]);
        assert_eq!(flow_facts([small.as_slice()], [empty.as_slice()]), None);
        // A decrypted flow keeps the list too (the client moved to another version).
        let ch = client_hello("vn.example", &[], 10);
        let init = protect(VERSION_1, &dcid, 0, &crypto_frame(0, &ch));
        let vn = long_header(0x80, 0, &[], &dcid, &list);
        let facts = flow_facts([init.as_slice()], [vn.as_slice()]).unwrap();
        assert_eq!(facts.server_versions.unwrap().len(), 4);
        assert_eq!(facts.sni.as_deref(), Some("vn.example"));
    }

    #[test]
    fn other_packet_types_are_counted() {
        let dcid = [0x33u8; 8];
        let ch = client_hello("types.test", &["h3"], 100);
        let init = protect(0xff00_001d, &dcid, 0, &crypto_frame(0, &ch));
        // 0-RTT (type 1) and Handshake (type 2) long headers with a Length of 20.
        let zero_rtt = long_header(
            0xd0,
            0xff00_001d,
            &dcid,
            &[],
            &[
                0x40, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
            ],
        );
        let handshake = long_header(
            0xe0,
            0xff00_001d,
            &[],
            &[7; 8],
            &[
                0x40, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
            ],
        );
        let mut client = init.clone();
        client.extend(&zero_rtt);
        let mut client2 = handshake.clone();
        client2.extend([0x41, 9, 9, 9]); // short header after it
        let mut server = protect(0xff00_001d, &[1; 8], 0, &[1]); // a server Initial: not counted
        server.extend(&handshake);
        let retry = long_header(0xf0, 0xff00_001d, &[], &[7; 8], &[0xaa; 24]);
        let dg = [client.as_slice(), client2.as_slice(), &[0x40, 1, 2]];
        let facts = flow_facts(dg, [server.as_slice(), retry.as_slice()]).unwrap();
        assert_eq!(facts.sni.as_deref(), Some("types.test"));
        assert_eq!(facts.initial_packets, 1);
        assert_eq!(
            facts.packets,
            Packets {
                zero_rtt: 1,
                handshake: 2,
                retry: 1,
                short_header: 2,
            }
        );
        // Without a client Initial, the same packets do not make a flow QUIC.
        assert_eq!(flow_facts([client2.as_slice()], [retry.as_slice()]), None);
    }

    #[test]
    fn truncated_datagrams() {
        let pkt = unhex(RFC9001_PACKET);
        for n in 0..pkt.len() {
            let facts = run(&[pkt[..n].to_vec()]);
            if n < 5 {
                assert_eq!(facts, None, "len {n}");
                continue;
            }
            let facts = facts.unwrap();
            assert_eq!(facts.initial_packets, 1, "len {n}");
            assert!(facts.truncated, "len {n}");
            assert_eq!((facts.sni, facts.decrypt_failures), (None, 0), "len {n}");
        }
        // Several packets, each cut at random places.
        let dcid = [9u8; 8];
        let ch = client_hello("cut.test", &["h3"], 2000);
        let pkts: Vec<Vec<u8>> = ch
            .chunks(700)
            .enumerate()
            .map(|(i, c)| protect(VERSION_1, &dcid, i as u32, &crypto_frame(i * 700, c)))
            .collect();
        let mut rng = XorShift::new(7);
        for _ in 0..500 {
            let dg: Vec<Vec<u8>> = pkts
                .iter()
                .map(|p| p[..rng.below(p.len() + 1)].to_vec())
                .collect();
            let _ = run(&dg);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift::new(0x5eed);
        let good = unhex(RFC9001_PACKET);
        for i in 0..3000 {
            let n = rng.below(1400);
            let mut d = rng.bytes(n);
            match i % 4 {
                // Plausible v1 / v2 long headers with random rest.
                1 if n > 5 => {
                    d[0] |= 0xc0;
                    d[1..5].copy_from_slice(&VERSION_1.to_be_bytes());
                    d[5] %= 24;
                }
                2 if n > 5 => {
                    d[0] |= 0x80;
                    d[1..5].copy_from_slice(&VERSION_2.to_be_bytes());
                }
                // The genuine packet with a few random bytes flipped.
                3 => {
                    d = good.clone();
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(d.len());
                        d[at] = rng.next_u64() as u8;
                    }
                }
                _ => {}
            }
            let _ = run(&[d.clone(), d]);
        }
        // Random decrypted payloads through the frame walker and hello parser.
        for _ in 0..3000 {
            let n = rng.below(600);
            let mut p = rng.bytes(n);
            if n > 0 && rng.below(2) == 0 {
                p[0] = 0x06;
            }
            let mut b = CryptoBuf::default();
            read_frames(&p, &mut b);
            let mut body = rng.bytes(n);
            let (mut sni, mut alpn) = (None, Vec::new());
            hello_extensions(&body, &mut sni, &mut alpn);
            body.splice(
                0..0,
                client_hello("r.test", &["x"], 3)[4..60].iter().copied(),
            );
            hello_extensions(&body, &mut sni, &mut alpn);
        }
    }

    /// Cross-check on the real QUIC captures of the shared corpus (skipped when absent).
    #[test]
    fn corpus_quic_sni() {
        use crate::capture::CaptureReader;
        use crate::decode::{decode, L4};
        use std::path::Path;

        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/zeek"
        ));
        let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.json")) else {
            eprintln!("skipped: no corpus at {}", dir.display());
            return;
        };
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let mut checked = 0;
        for entry in manifest["files"].as_array().unwrap() {
            let file = entry["file"].as_str().unwrap();
            if !file.starts_with("zeek/quic__") {
                continue;
            }
            let expected: Vec<&str> = entry["expected"]["quic_sni"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let path = dir.join(file.trim_start_matches("zeek/"));
            let mut reader = CaptureReader::open(&path).unwrap();
            let mut client = None;
            let mut datagrams: Vec<Vec<u8>> = Vec::new();
            while let Some(frame) = reader.next_frame().unwrap() {
                let Ok(pkt) = decode(frame.linktype, frame.data) else {
                    continue;
                };
                let L4::Udp(u) = pkt.l4 else { continue };
                let me = (pkt.ip.src, u.src_port, pkt.ip.dst, u.dst_port);
                if *client.get_or_insert(me) == me {
                    datagrams.push(u.payload.to_vec());
                }
            }
            let facts = run(&datagrams);
            eprintln!(
                "{file}: expected {expected:?}, found {:?} ({} client datagrams) {facts:?}",
                facts.as_ref().and_then(|f| f.sni.clone()),
                datagrams.len()
            );
            // Every Initial of the first datagrams, without stopping at the complete hello:
            // later Initials (after a Retry, after Chrome's DCID switch) must decrypt too.
            let mut st = State::default();
            for d in datagrams.iter().take(MAX_DATAGRAMS) {
                st.datagram(d);
            }
            let key_sets = st.keys.len();
            let all = st.finish().unwrap();
            eprintln!(
                "  all {} datagrams: {} Initials, {} failures, {key_sets} key sets",
                datagrams.len().min(MAX_DATAGRAMS),
                all.initial_packets,
                all.decrypt_failures
            );
            assert_eq!(all.decrypt_failures, 0, "{file}");
            assert_eq!(all.sni, facts.as_ref().unwrap().sni, "{file}");
            if file.contains("retry") {
                assert_eq!(key_sets, 2, "{file}: keys re-derived after the Retry");
            }
            let facts = facts.unwrap();
            assert_eq!(facts.sni.as_deref(), expected.first().copied(), "{file}");
            assert!(!facts.truncated, "{file}");
            assert_eq!(facts.decrypt_failures, 0, "{file}");
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} QUIC captures in the corpus");
    }
}

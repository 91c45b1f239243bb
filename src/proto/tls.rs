//! TLS facts from the reassembled first flights of a TCP connection: the ClientHello (SNI, ALPN,
//! offered versions, ECH), the server's ServerHello (chosen version, ALPN), plaintext alerts in
//! either direction, the subject and issuer of the server's first certificate (TLS <= 1.2), and a
//! records-only "handshake completed" heuristic. Nothing is decrypted.
//!
//! Layers, and who parses them:
//! - **Records** (type, version, 2-byte length) and the **handshake layer** (type, 3-byte
//!   length, a message possibly fragmented over several records, several messages per record)
//!   are framed here, because a capture often holds only a prefix of them and tls-parser answers
//!   `Incomplete` for any partial record.
//! - The **ClientHello / ServerHello fields** and the **extension list** are walked here too,
//!   with two bounds: what the headers declare and what the capture holds. Whatever lies before
//!   a cut is kept (an SNI extension that was captured whole is reported even when the
//!   ClientHello is cut further on), and a declared length that overflows its parent means "not
//!   a ClientHello".
//! - The **content of each complete extension** we report (server_name, ALPN,
//!   supported_versions) is decoded by tls-parser (`parse_tls_client_hello_extension` /
//!   `parse_tls_server_hello_extension`); one malformed extension loses only itself.
//! - The **certificate** is read with a minimal DER walk up to the subject, so that a
//!   Certificate message cut by the capture (or by the first-flight cap: a chain of 10,000
//!   subjectAltNames does not fit) still gives subject and issuer.
//!
//! Every function takes untrusted bytes, never panics and never indexes without a bound check.

use std::fmt::Write as _;

use tls_parser::{SNIType, TlsExtension};

use super::{Alert, ClientHello, HelloStatus, ServerFacts};
use crate::wire::{be16, be24, Declared, Stop};
// Record framing (types, plausible headers, the header's fields) lives with the flow table,
// which follows it too.
use crate::flow::tls_record::{
    field as record_field, plausible_header, REC_ALERT, REC_APPLICATION_DATA,
    REC_CHANGE_CIPHER_SPEC, REC_HANDSHAKE,
};

/// Field offsets of a handshake message header (RFC 8446 section 4).
mod handshake_field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const LENGTH: Field = 1..4;
    pub const BODY: usize = 4;
}

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
/// TLS 1.3 drafts (before draft 22) sent HelloRetryRequest as its own message type.
const HS_HELLO_RETRY_REQUEST_DRAFT: u8 = 6;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_HELLO_DONE: u8 = 14;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ECH: u16 = 0xfe0d;

/// Smallest ClientHello body: version, random, empty session id, one cipher suite, one
/// compression method.
const MIN_CLIENT_HELLO: usize = 2 + 32 + 1 + 2 + 2 + 1 + 1;
/// Largest ClientHello body we believe (the protocol allows 2^24 - 1; real ones, post-quantum
/// key shares and padding included, stay far below).
const MAX_CLIENT_HELLO: usize = 1 << 18;

/// The ServerHello random that marks a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3:
/// SHA-256 of "HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// GREASE values (RFC 8701) look like 0x?a?a, both bytes equal.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The declared body length of the handshake message that starts `b`.
fn message_len(b: &[u8]) -> Option<usize> {
    be24(b, handshake_field::LENGTH).map(|n| n as usize)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Records

/// One TLS record as the capture holds it.
struct Record<'a> {
    ctype: u8,
    /// Declared body length.
    len: usize,
    /// The captured part of the body (shorter than `len` when the bytes end inside it).
    body: &'a [u8],
}

impl Record<'_> {
    fn is_cut(&self) -> bool {
        self.body.len() < self.len
    }
}

enum Step<'a> {
    Record(Record<'a>),
    /// No byte left: the flight ended on a record boundary.
    End,
    /// The bytes end inside a plausible record header.
    CutHeader,
    /// What follows is not a TLS record.
    Bad,
}

fn next_record(bytes: &[u8], pos: usize, want: Option<u8>) -> Step<'_> {
    let rest = bytes.get(pos..).unwrap_or(&[]);
    if rest.is_empty() {
        return Step::End;
    }
    let head = rest.get(..record_field::BODY).unwrap_or(rest);
    if !plausible_header(head, want) {
        return Step::Bad;
    }
    let (Some(&ctype), Some(len)) = (
        rest.get(record_field::TYPE),
        be16(rest, record_field::LENGTH),
    ) else {
        return Step::CutHeader;
    };
    let len = len as usize;
    let body = rest.get(record_field::BODY..).unwrap_or(&[]);
    let body = body.get(..len).unwrap_or(body);
    Step::Record(Record { ctype, len, body })
}

// ---------------------------------------------------------------------------------------------
// Extensions

/// Walks an extension list, handing each extension whose header was captured to `each`, with
/// the whole extension (header included) when it was captured complete.
fn walk_extensions<'a>(
    c: &mut Declared<'a>,
    mut each: impl FnMut(u16, Option<&'a [u8]>),
) -> Result<(), Stop> {
    let len = c.u16()? as usize;
    c.limit(len)?;
    while !c.at_end() {
        let start = c.position();
        let ty = c.u16()?;
        let n = c.u16()? as usize;
        if let Err(e) = c.take(n) {
            each(ty, None);
            return Err(e);
        }
        each(ty, Some(c.since(start)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ClientHello

/// Reads a client's first flight (reassembled TCP payload from the start of the stream).
///
/// - `Complete`: a whole ClientHello, possibly fragmented over several handshake records (the
///   record bodies are concatenated) and segments.
/// - `Truncated`: the bytes start like a ClientHello but end before it does. With `hole` (the
///   capture is known to lack the bytes right after `bytes`) any consistent prefix of at least
///   one byte qualifies; without it (the sender stopped, or the first-flight cap was reached)
///   the record header must have been captured (5 bytes) and a declared length must run past the
///   end. `have` is `bytes.len()`; `need` is the length from the start the ClientHello needs:
///   the end of the handshake message from its declared length, counting one more 5-byte record
///   header if it must continue past the current record; when the handshake header was not
///   captured, the end of the current record; when the record header itself was not captured,
///   the 9 bytes (record + handshake header) that would tell the size. `partial` holds every
///   field read before the cut: a server_name extension captured whole is reported even if the
///   ClientHello is cut further on; `versions` is the legacy version until supported_versions
///   was read.
/// - `NotTls`: empty input, anything that is not a handshake record starting with a
///   ClientHello, or a ClientHello whose declared lengths contradict each other.
///
/// SSLv2-compatible ClientHellos (2-byte header with the high bit set, message type 1) are
/// reported as `Complete` with no SNI, ALPN or ECH (they cannot carry extensions) and
/// `versions` = the version field (0x0002 for SSL 2.0, 0x0301 for a TLS 1.0 client, ...); they
/// need 5 bytes to be recognised at all, and `need` is then the declared record end.
pub fn client_hello(bytes: &[u8], hole: bool) -> HelloStatus {
    match bytes.first() {
        Some(&REC_HANDSHAKE) => {}
        Some(&b) if b & 0x80 != 0 => return sslv2_client_hello(bytes),
        _ => return HelloStatus::NotTls,
    }
    // Gather the handshake layer until the first message is complete.
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    let hs_target =
        |hs: &[u8]| message_len(hs).map(|len| len.saturating_add(handshake_field::BODY));
    // Where the bytes ended: (start of the record being read, its declared length if its header
    // was captured, handshake bytes before it).
    let cut: Option<(usize, Option<usize>, usize)> = loop {
        if hs_target(&hs).is_some_and(|t| hs.len() >= t) {
            break None;
        }
        match next_record(bytes, pos, Some(REC_HANDSHAKE)) {
            Step::Record(r) => {
                let before = hs.len();
                hs.extend_from_slice(r.body);
                if r.is_cut() {
                    break Some((pos, Some(r.len), before));
                }
                pos += record_field::BODY + r.len;
            }
            Step::End | Step::CutHeader => break Some((pos, None, hs.len())),
            // A handshake message interrupted by another record type, or garbage.
            Step::Bad => return HelloStatus::NotTls,
        }
    };
    // The handshake header: a ClientHello of a believable size.
    if hs
        .get(handshake_field::TYPE)
        .is_some_and(|&t| t != HS_CLIENT_HELLO)
    {
        return HelloStatus::NotTls;
    }
    if hs
        .get(handshake_field::LENGTH.start)
        .is_some_and(|&hi| (hi as usize) << 16 > MAX_CLIENT_HELLO)
    {
        return HelloStatus::NotTls;
    }
    let declared = message_len(&hs);
    if declared.is_some_and(|n| !(MIN_CLIENT_HELLO..=MAX_CLIENT_HELLO).contains(&n)) {
        return HelloStatus::NotTls;
    }
    let body = hs.get(handshake_field::BODY..).unwrap_or(&[]);
    let (ch, res) = match declared {
        Some(n) => parse_client_hello_body(body, n),
        None => (ClientHello::default(), Err(Stop::Cut)),
    };
    let Some((at, rec_len, before)) = cut else {
        return match res {
            Ok(()) => HelloStatus::Complete(ch),
            Err(_) => HelloStatus::NotTls,
        };
    };
    if res == Err(Stop::Bad) || (!hole && bytes.len() < 5) {
        return HelloStatus::NotTls;
    }
    // Handshake bytes still needed after those gathered before the cut record.
    let need = match (declared, rec_len) {
        (Some(n), _) => {
            let rem = n.saturating_add(4).saturating_sub(before);
            at.saturating_add(5).saturating_add(match rec_len {
                Some(l) if rem > l => l.saturating_add(5).saturating_add(rem - l),
                _ => rem,
            })
        }
        (None, Some(l)) => {
            let rem = 4usize.saturating_sub(before);
            at.saturating_add(5).saturating_add(if rem > l {
                l.saturating_add(5).saturating_add(rem - l)
            } else {
                l
            })
        }
        (None, None) => at.saturating_add(5 + 4usize.saturating_sub(before)),
    };
    HelloStatus::Truncated {
        partial: ch,
        have: bytes.len(),
        need: need.max(bytes.len().saturating_add(1)),
    }
}

/// Walks a ClientHello body declared `declared` bytes long, of which `body` was captured.
/// Returns what was read, and why it stopped if it did not reach the end.
fn parse_client_hello_body(body: &[u8], declared: usize) -> (ClientHello, Result<(), Stop>) {
    let mut ch = ClientHello::default();
    let mut legacy = None;
    let res = client_hello_fields(&mut Declared::new(body, declared), &mut ch, &mut legacy);
    if ch.versions.is_empty() {
        ch.versions.extend(legacy);
    }
    (ch, res)
}

fn client_hello_fields(
    c: &mut Declared<'_>,
    ch: &mut ClientHello,
    legacy: &mut Option<u16>,
) -> Result<(), Stop> {
    let version = c.u16()?;
    if version >> 8 != 3 || version & 0xff > 4 {
        return Err(Stop::Bad);
    }
    *legacy = Some(version);
    ch.random = c.take(32)?.try_into().ok();
    let sid = c.u8()? as usize;
    if sid > 32 {
        return Err(Stop::Bad);
    }
    c.take(sid)?;
    let suites = c.u16()? as usize;
    if suites == 0 || suites % 2 != 0 {
        return Err(Stop::Bad);
    }
    c.take(suites)?;
    let methods = c.u8()? as usize;
    if methods == 0 {
        return Err(Stop::Bad);
    }
    c.take(methods)?;
    if c.at_end() {
        return Ok(()); // no extensions (SSL 3.0 / early TLS clients)
    }
    walk_extensions(c, |ty, ext| {
        ch.ech |= ty == EXT_ECH;
        if let Some(ext) = ext {
            decode_client_extension(ty, ext, ch);
        }
    })
}

/// Decodes one complete ClientHello extension (header included) we report.
fn decode_client_extension(ty: u16, ext: &[u8], ch: &mut ClientHello) {
    // A client's supported_versions is a 1-byte length and 2-byte entries: an even extension
    // length cannot be one (tls-parser would read it as a server's single version).
    let wanted = match ty {
        EXT_SERVER_NAME => ch.sni.is_none(),
        EXT_ALPN => ch.alpn.is_empty(),
        EXT_SUPPORTED_VERSIONS => ext.len() % 2 == 1,
        _ => false,
    };
    if !wanted {
        return;
    }
    match tls_parser::parse_tls_client_hello_extension(ext) {
        Ok((_, TlsExtension::SNI(names))) => {
            ch.sni = names
                .iter()
                .find(|(t, name)| *t == SNIType::HostName && !name.is_empty())
                .map(|(_, name)| lossy(name));
        }
        Ok((_, TlsExtension::ALPN(protocols))) => {
            ch.alpn = protocols.iter().map(|p| lossy(p)).collect();
        }
        Ok((_, TlsExtension::SupportedVersions(versions))) => {
            let offered: Vec<u16> = versions
                .iter()
                .map(|v| v.0)
                .filter(|&v| !is_grease(v))
                .collect();
            if !offered.is_empty() {
                ch.versions = offered;
            }
        }
        _ => {}
    }
}

/// An SSLv2-format (or SSLv2-compatible) CLIENT-HELLO: 2-byte header `0x80 | len_hi, len_lo`,
/// then msg type 1, version, cipher_specs / session_id / challenge lengths and their bytes.
/// Needs no `hole`: the 5 bytes it takes to recognise one include the declared length.
fn sslv2_client_hello(bytes: &[u8]) -> HelloStatus {
    let (Some(&b0), Some(&b1), Some(&msg), Some(version)) =
        (bytes.first(), bytes.get(1), bytes.get(2), be16(bytes, 3))
    else {
        return HelloStatus::NotTls;
    };
    let len = ((b0 & 0x7f) as usize) << 8 | b1 as usize;
    let version_ok = version == 0x0002 || (version >> 8 == 3 && version & 0xff <= 4);
    // type, version, three lengths, at least one 3-byte cipher spec and a 16-byte challenge.
    if msg != 1 || !version_ok || len < 9 + 3 + 16 {
        return HelloStatus::NotTls;
    }
    let lengths = (be16(bytes, 5), be16(bytes, 7), be16(bytes, 9));
    if let (Some(specs), Some(sid), Some(challenge)) = lengths {
        let (specs, sid, challenge) = (specs as usize, sid as usize, challenge as usize);
        if specs == 0
            || specs % 3 != 0
            || (sid != 0 && sid != 16)
            || !(16..=32).contains(&challenge)
            || 9 + specs + sid + challenge != len
        {
            return HelloStatus::NotTls;
        }
    }
    let hello = ClientHello {
        versions: vec![version],
        ..ClientHello::default()
    };
    if bytes.len() >= 2 + len {
        HelloStatus::Complete(hello)
    } else {
        HelloStatus::Truncated {
            partial: hello,
            have: bytes.len(),
            need: 2 + len,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// The alert records of one direction, and whether the handshake had moved to encryption.
#[derive(Default)]
struct AlertState {
    alerts: Vec<Alert>,
    /// An ApplicationData record was seen.
    app_data: bool,
    /// A ChangeCipherSpec was seen that starts encryption (not a TLS 1.3 compatibility one).
    ccs: bool,
}

impl AlertState {
    fn encrypted(&self) -> bool {
        self.app_data || self.ccs
    }

    /// Reads an Alert record. Before encryption its body is a sequence of 2-byte alerts (level 1
    /// or 2). After it, only a 2-byte body is read as a plaintext alert: an encrypted one always
    /// carries at least a 16-byte tag or MAC.
    fn record(&mut self, r: &Record<'_>) {
        let before = !self.encrypted();
        if r.len == 0 || r.len % 2 != 0 || (!before && r.len != 2) {
            return;
        }
        let pairs: Vec<(u8, u8)> = r.body.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        if pairs.iter().any(|&(level, _)| level != 1 && level != 2) {
            return;
        }
        self.alerts
            .extend(pairs.into_iter().map(|(level, description)| Alert {
                level,
                description,
                before_handshake: before,
            }));
    }

    fn fatal(&self) -> bool {
        self.alerts.iter().any(|a| a.level == 2)
    }
}

/// A handshake record body that starts a plaintext ClientHello (used to tell a TLS 1.3
/// compatibility ChangeCipherSpec, which a second ClientHello follows after a
/// HelloRetryRequest, from one that starts encryption).
fn starts_client_hello(body: &[u8]) -> bool {
    use handshake_field as f;
    body.get(f::TYPE) == Some(&HS_CLIENT_HELLO)
        && message_len(body).is_some_and(|n| (MIN_CLIENT_HELLO..=MAX_CLIENT_HELLO).contains(&n))
        && body.get(f::BODY) == Some(&3)
        && body.get(f::BODY + 1).is_some_and(|&minor| minor <= 4)
}

/// Length of an SSLv2-format ClientHello at the start of `bytes`, if there is a complete one.
fn sslv2_len(bytes: &[u8]) -> Option<usize> {
    match sslv2_client_hello(bytes) {
        HelloStatus::Complete(_) => {
            let b0 = *bytes.first()?;
            Some((((b0 & 0x7f) as usize) << 8 | *bytes.get(1)? as usize) + 2)
        }
        _ => None,
    }
}

/// The client's records, for alerts and the completion heuristic.
struct ClientWalk {
    alerts: AlertState,
    /// A ClientHello (TLS or SSLv2 format) was seen.
    hello: bool,
    /// A ChangeCipherSpec or ApplicationData record follows the last ClientHello.
    moved_on: bool,
}

fn walk_client(bytes: &[u8]) -> ClientWalk {
    let mut w = ClientWalk {
        alerts: AlertState::default(),
        hello: false,
        moved_on: false,
    };
    let mut pos = 0;
    if let Some(n) = sslv2_len(bytes) {
        w.hello = true;
        pos = n;
    }
    // Bytes still owed to a handshake message that continues in the next record.
    let mut owed = 0usize;
    while let Step::Record(r) = next_record(bytes, pos, None) {
        match r.ctype {
            REC_HANDSHAKE if owed == 0 && starts_client_hello(r.body) => {
                w.hello = true;
                w.moved_on = false;
                // A ClientHello after a ChangeCipherSpec: that one was TLS 1.3 compatibility.
                w.alerts.ccs = false;
                let total = message_len(r.body)
                    .unwrap_or(0)
                    .saturating_add(handshake_field::BODY);
                owed = total.saturating_sub(r.len);
            }
            REC_HANDSHAKE => owed = owed.saturating_sub(r.len),
            REC_CHANGE_CIPHER_SPEC => {
                w.alerts.ccs = true;
                w.moved_on |= w.hello;
            }
            REC_APPLICATION_DATA => {
                w.alerts.app_data = true;
                w.moved_on |= w.hello;
            }
            REC_ALERT => w.alerts.record(&r),
            _ => {}
        }
        if r.is_cut() {
            break;
        }
        pos += record_field::BODY + r.len;
    }
    w
}

/// Alerts sent by the client in its flight (e.g. after a bad certificate): plaintext alert
/// records, with `before_handshake` = no ChangeCipherSpec (except a TLS 1.3 compatibility one,
/// recognised by the second ClientHello that follows it) and no ApplicationData record yet.
/// Reading stops at the first bytes that are not a TLS record.
pub fn client_alerts(bytes: &[u8]) -> Vec<Alert> {
    walk_client(bytes).alerts.alerts
}

// ---------------------------------------------------------------------------------------------
// Server flight

/// The server's records, read in order.
#[derive(Default)]
struct ServerWalk {
    facts: ServerFacts,
    alerts: AlertState,
    /// The plaintext handshake layer (record bodies concatenated) and how much of it was read.
    hs: Vec<u8>,
    hs_done: usize,
    /// The handshake layer stopped making sense (or went encrypted): ignore the rest of it.
    hs_closed: bool,
    /// A ServerHello that is not a HelloRetryRequest was read.
    real_hello: bool,
    /// The version is TLS 1.3 or a draft of it (no plaintext certificate, and a
    /// ChangeCipherSpec is only for middlebox compatibility).
    tls13: bool,
    /// The certificate was read as far as we need it.
    cert_done: bool,
    hello_done: bool,
}

impl ServerWalk {
    fn is_tls13(v: u16) -> bool {
        (v >= 0x0304 && v >> 8 == 3) || v >> 8 == 0x7f
    }

    /// Reads the complete handshake messages gathered so far.
    fn messages(&mut self) {
        // Lend the buffer out while its messages update the other fields.
        let hs = std::mem::take(&mut self.hs);
        while !self.hs_closed {
            let msg = hs.get(self.hs_done..).unwrap_or_default();
            let (Some(&ty), Some(len)) = (msg.get(handshake_field::TYPE), message_len(msg)) else {
                break;
            };
            if ty > 24 && ty != 254 {
                self.hs_closed = true;
                break;
            }
            let start = self.hs_done + handshake_field::BODY;
            let Some(body) = start.checked_add(len).and_then(|end| hs.get(start..end)) else {
                break; // continues in a later record
            };
            self.message(ty, body, len);
            self.hs_done = start + len;
        }
        self.hs = hs;
    }

    /// Reads what was captured of the handshake message the bytes end inside (nothing if they
    /// end inside its 4-byte header).
    fn last_message(&mut self) {
        let hs = std::mem::take(&mut self.hs);
        let at = self.hs_done;
        let msg = hs.get(at..).unwrap_or_default();
        if let (Some(&ty), Some(len)) = (msg.get(handshake_field::TYPE), message_len(msg)) {
            self.message(ty, msg.get(handshake_field::BODY..).unwrap_or(&[]), len);
        }
        self.hs = hs;
    }

    /// One handshake message, `body` being the captured part of its `len` bytes.
    fn message(&mut self, ty: u8, body: &[u8], len: usize) {
        match ty {
            HS_SERVER_HELLO => self.server_hello(body, len),
            HS_HELLO_RETRY_REQUEST_DRAFT => {
                if let Some(v) = be16(body, 0).filter(|v| v >> 8 == 0x7f) {
                    self.facts.server_hello = true;
                    self.facts.version = Some(v);
                    self.tls13 = true;
                }
            }
            HS_CERTIFICATE if self.facts.server_hello && !self.tls13 && !self.cert_done => {
                let mut c = Declared::new(body, len);
                let (subject, issuer, res) = first_certificate(&mut c);
                self.facts.cert_subject = subject;
                self.facts.cert_issuer = issuer;
                self.cert_done = self.facts.cert_subject.is_some() || res != Err(Stop::Cut);
            }
            HS_SERVER_HELLO_DONE => self.hello_done = true,
            _ => {}
        }
    }

    fn server_hello(&mut self, body: &[u8], len: usize) {
        let mut sh = ShFields::default();
        let res = server_hello_fields(&mut Declared::new(body, len), &mut sh);
        let Some(legacy) = sh.legacy else {
            if res == Err(Stop::Cut) {
                self.facts.server_hello = true; // the message type was seen, nothing more
            }
            return;
        };
        if res == Err(Stop::Bad) {
            return;
        }
        self.facts.server_hello = true;
        self.real_hello |= sh.hrr == Some(false);
        // A cut ServerHello whose supported_versions was not read may still be TLS 1.3 unless
        // its legacy version says otherwise (a TLS 1.3 server always writes 0x0303 there).
        let version = sh
            .selected
            .or(Some(legacy).filter(|&v| res.is_ok() || v != 0x0303));
        if let Some(v) = version {
            self.facts.version = Some(v);
            self.tls13 |= Self::is_tls13(v);
        }
        if sh.hrr == Some(true) {
            self.tls13 = true;
        }
        if sh.alpn.is_some() {
            self.facts.alpn = sh.alpn;
        }
    }

    fn record(&mut self, r: &Record<'_>) {
        match r.ctype {
            REC_HANDSHAKE if !self.hs_closed => {
                self.hs.extend_from_slice(r.body);
                self.messages();
            }
            REC_CHANGE_CIPHER_SPEC if !self.tls13 => {
                self.alerts.ccs = true;
                self.hs_closed = true; // what follows (Finished) is encrypted
            }
            REC_APPLICATION_DATA => {
                self.alerts.app_data = true;
                self.hs_closed = true;
            }
            REC_ALERT => self.alerts.record(r),
            _ => {}
        }
    }

    /// All the plaintext facts were read.
    fn finished(&self) -> bool {
        self.alerts.fatal()
            || (self.facts.server_hello
                && (self.tls13 || self.cert_done || self.hello_done || self.alerts.encrypted()))
    }
}

fn walk_server(bytes: &[u8], hole: bool) -> ServerWalk {
    let mut w = ServerWalk::default();
    let mut pos = 0;
    // The bytes end inside a record, or inside a handshake message.
    let mut cut = false;
    let mut garbage = false;
    loop {
        match next_record(bytes, pos, None) {
            Step::Record(r) => {
                w.record(&r);
                if r.is_cut() {
                    // Bytes ending inside ApplicationData (the capture's snap length, or the
                    // encrypted bypass keeping only its header) cut nothing readable.
                    cut = r.ctype != REC_APPLICATION_DATA;
                    break;
                }
                pos += record_field::BODY + r.len;
            }
            Step::End => break,
            Step::CutHeader => {
                cut = true;
                break;
            }
            Step::Bad => {
                garbage = true;
                break;
            }
        }
    }
    // A handshake message the bytes end inside: read what was captured of it.
    if !w.hs_closed && w.hs_done < w.hs.len() {
        w.last_message();
        cut = true;
    }
    w.facts.truncated = !garbage && !w.finished() && (hole || cut);
    w.facts.alerts = std::mem::take(&mut w.alerts.alerts);
    w
}

/// Reads a server's first flight:
/// - `server_hello`: a ServerHello was seen (a TLS 1.3 HelloRetryRequest counts, and so does a
///   ServerHello cut by the capture);
/// - `version`: from supported_versions if present, else the legacy version (for a cut
///   ServerHello whose supported_versions was not captured, only a legacy version other than
///   0x0303, which a TLS 1.3 server would also write); TLS 1.3 drafts give 0x7fNN;
/// - `alpn`: the protocol the ServerHello chose (TLS <= 1.2; TLS 1.3 encrypts it);
/// - `alerts`: plaintext alert records (see [`client_alerts`] for the rules; for the server, a
///   ChangeCipherSpec sent after a TLS 1.3 ServerHello or HelloRetryRequest is middlebox
///   compatibility and does not end `before_handshake`);
/// - `cert_subject` / `cert_issuer`: of the first certificate, TLS <= 1.2, as RFC 4514 strings
///   (last RDN first, e.g. `CN=example.com,O=Example,C=US`), read from a prefix of the
///   certificate when the capture cuts it;
/// - `truncated`: the bytes end (inside a record or handshake message, or at a `hole`) before
///   the facts above were all read: a ServerHello and, for TLS <= 1.2, the certificate (or the
///   end of the plaintext handshake), unless a fatal alert ended the flight.
///
/// Reading stops at the first bytes that are not a TLS record.
pub fn server_flight(bytes: &[u8], hole: bool) -> ServerFacts {
    walk_server(bytes, hole).facts
}

/// The handshake completed, judged from records only: the server sent a ServerHello (a
/// HelloRetryRequest does not count) and the client sent a ChangeCipherSpec or ApplicationData
/// record after its last ClientHello. Cannot tell TLS 1.3 early data (sent before the
/// ServerHello) from data sent after the handshake.
pub fn looks_complete(client: &[u8], server: &[u8]) -> bool {
    if !walk_server(server, false).real_hello {
        return false;
    }
    let c = walk_client(client);
    c.hello && c.moved_on
}

#[derive(Default)]
struct ShFields {
    legacy: Option<u16>,
    /// Some(true) for a HelloRetryRequest, once the random was read.
    hrr: Option<bool>,
    selected: Option<u16>,
    alpn: Option<String>,
}

fn server_hello_fields(c: &mut Declared<'_>, sh: &mut ShFields) -> Result<(), Stop> {
    let version = c.u16()?;
    let draft = version >> 8 == 0x7f;
    if !draft && (version >> 8 != 3 || version & 0xff > 4) {
        return Err(Stop::Bad);
    }
    sh.legacy = Some(version);
    sh.hrr = Some(c.take(32)? == HRR_RANDOM);
    if draft {
        // TLS 1.3 drafts before 22: version, random, cipher suite, extensions.
        c.u16()?;
    } else {
        let sid = c.u8()? as usize;
        if sid > 32 {
            return Err(Stop::Bad);
        }
        c.take(sid)?;
        c.u16()?; // cipher suite
        c.u8()?; // compression
    }
    if c.at_end() {
        return Ok(());
    }
    walk_extensions(c, |ty, ext| {
        let Some(ext) = ext.filter(|_| ty == EXT_SUPPORTED_VERSIONS || ty == EXT_ALPN) else {
            return;
        };
        match tls_parser::parse_tls_server_hello_extension(ext) {
            Ok((_, TlsExtension::SupportedVersions(v))) => {
                sh.selected = v.first().map(|v| v.0).or(sh.selected);
            }
            Ok((_, TlsExtension::ALPN(p))) => {
                sh.alpn = p.first().map(|p| lossy(p)).or(sh.alpn.take());
            }
            _ => {}
        }
    })
}

/// The first certificate of a TLS <= 1.2 Certificate message: (subject, issuer).
/// The result is `Err(Stop::Cut)` when the capture ends before the subject.
fn first_certificate(c: &mut Declared<'_>) -> (Option<String>, Option<String>, Result<(), Stop>) {
    let res = (|| {
        let list = c.u24()? as usize;
        c.limit(list)?;
        let n = c.u24()? as usize;
        c.limit(n)?;
        let der = c.rest();
        Ok((der, der.len() < n))
    })();
    match res {
        Ok((der, cut)) => {
            let (subject, issuer) = cert_names(der);
            let res = if subject.is_none() && cut {
                Err(Stop::Cut)
            } else {
                Ok(())
            };
            (subject, issuer, res)
        }
        Err(e) => (None, None, Err(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// DER: just enough of X.509 to read the issuer and subject names.

/// A DER header: (tag, header length, content length). None when cut or beyond what we read
/// (high tag numbers, indefinite or over-long lengths).
fn der_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let l0 = *b.get(1)?;
    if l0 < 0x80 {
        return Some((tag, 2, l0 as usize));
    }
    let n = (l0 & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = len << 8 | *b.get(2 + i)? as usize;
    }
    Some((tag, 2 + n, len))
}

/// One complete DER element.
struct Der<'a> {
    tag: u8,
    /// Header and content.
    whole: &'a [u8],
    content: &'a [u8],
    /// The bytes after it.
    rest: &'a [u8],
}

fn der_element(b: &[u8]) -> Option<Der<'_>> {
    let (tag, hl, len) = der_header(b)?;
    let end = hl.checked_add(len)?;
    Some(Der {
        tag,
        whole: b.get(..end)?,
        content: b.get(hl..end)?,
        rest: b.get(end..)?,
    })
}

/// One complete DER element with the given tag.
fn der_expect(b: &[u8], tag: u8) -> Option<Der<'_>> {
    der_element(b).filter(|d| d.tag == tag)
}

const DER_INTEGER: u8 = 0x02;
const DER_OID: u8 = 0x06;
const DER_SEQUENCE: u8 = 0x30;
const DER_SET: u8 = 0x31;
/// `[0] EXPLICIT`, the certificate version.
const DER_CONTEXT_0: u8 = 0xa0;

/// Subject and issuer of a certificate, read from a prefix of its DER encoding:
/// Certificate = SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature AlgorithmIdentifier, issuer Name, validity, subject Name, ... }, ... }.
fn cert_names(der: &[u8]) -> (Option<String>, Option<String>) {
    let mut issuer = None;
    let subject = (|| {
        // The two outer SEQUENCEs may be cut: read their headers only.
        let (tag, hl, _) = der_header(der)?;
        let tbs = der.get(hl..).filter(|_| tag == DER_SEQUENCE)?;
        let (tag, hl, len) = der_header(tbs)?;
        let mut rest = tbs.get(hl..).filter(|_| tag == DER_SEQUENCE)?;
        rest = rest.get(..len).unwrap_or(rest);
        if rest.first() == Some(&DER_CONTEXT_0) {
            rest = der_element(rest)?.rest;
        }
        let serial = der_expect(rest, DER_INTEGER)?;
        let algorithm = der_expect(serial.rest, DER_SEQUENCE)?;
        let issuer_name = der_expect(algorithm.rest, DER_SEQUENCE)?;
        issuer = format_name(issuer_name.content);
        let validity = der_expect(issuer_name.rest, DER_SEQUENCE)?;
        format_name(der_expect(validity.rest, DER_SEQUENCE)?.content)
    })();
    (subject, issuer)
}

/// A Name (the content of its SEQUENCE OF RelativeDistinguishedName) as an RFC 4514 string:
/// RDNs last first, separated by `,`; attributes of a multi-valued RDN joined by `+`.
fn format_name(mut rest: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !rest.is_empty() {
        let rdn = der_expect(rest, DER_SET)?;
        rest = rdn.rest;
        let mut set = rdn.content;
        let mut atvs = Vec::new();
        while !set.is_empty() {
            let atv = der_expect(set, DER_SEQUENCE)?;
            set = atv.rest;
            let oid = der_expect(atv.content, DER_OID)?;
            let value = der_element(oid.rest)?;
            atvs.push(format!(
                "{}={}",
                attribute_name(oid.content),
                attribute_value(value.tag, value.whole, value.content)
            ));
        }
        rdns.push(atvs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// Short names as OpenSSL prints them in RFC 2253 mode; anything else in dotted form.
fn attribute_name(oid: &[u8]) -> String {
    const X520: &[(u8, &str)] = &[
        (3, "CN"),
        (4, "SN"),
        (5, "serialNumber"),
        (6, "C"),
        (7, "L"),
        (8, "ST"),
        (9, "STREET"),
        (10, "O"),
        (11, "OU"),
        (12, "title"),
        (15, "businessCategory"),
        (17, "postalCode"),
        (42, "GN"),
        (97, "organizationIdentifier"),
    ];
    const OTHER: &[(&[u8], &str)] = &[
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
            "DC",
        ),
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
            "UID",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            "emailAddress",
        ),
        (
            &[
                0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01,
            ],
            "jurisdictionL",
        ),
        (
            &[
                0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02,
            ],
            "jurisdictionST",
        ),
        (
            &[
                0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03,
            ],
            "jurisdictionC",
        ),
    ];
    if let [0x55, 0x04, n] = oid {
        if let Some((_, name)) = X520.iter().find(|(k, _)| k == n) {
            return (*name).to_string();
        }
    }
    if let Some((_, name)) = OTHER.iter().find(|(k, _)| *k == oid) {
        return (*name).to_string();
    }
    dotted_oid(oid)
}

fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        if v > u64::MAX >> 7 {
            break;
        }
        v = v << 7 | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
        }
    }
    let mut out = String::new();
    if let Some((&first, more)) = arcs.split_first() {
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let _ = write!(out, "{a}.{b}");
        for arc in more {
            let _ = write!(out, ".{arc}");
        }
    }
    out
}

/// A directory string, RFC 4514-escaped; other value types as `#` and the hex of their whole
/// DER encoding.
fn attribute_value(tag: u8, whole: &[u8], content: &[u8]) -> String {
    let text = match tag {
        0x0c | 0x12 | 0x13 | 0x16 | 0x1a => String::from_utf8_lossy(content).into_owned(),
        // TeletexString: in practice Latin-1.
        0x14 => content.iter().map(|&b| b as char).collect(),
        // BMPString: UTF-16BE.
        0x1e => char::decode_utf16(
            content
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        // UniversalString: UTF-32BE.
        0x1c => content
            .chunks_exact(4)
            .map(|q| {
                char::from_u32(u32::from_be_bytes([q[0], q[1], q[2], q[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => return format!("#{}", super::hex(whole)),
    };
    escape_rfc4514(&text)
}

/// RFC 4514 section 2.4: backslash before `"+,;<>\`, a leading space or `#`, a trailing space;
/// control characters as `\XX` hex pairs (of their UTF-8 encoding).
fn escape_rfc4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, ch) in s.chars().enumerate() {
        match ch {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Names of the TLS alert descriptions (RFC 8446 section 6 and earlier).
pub fn alert_name(d: u8) -> &'static str {
    match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::tls_record::MAX_RECORD;
    use crate::rng::XorShift;

    /// A self-signed P-256 certificate made for these tests with `openssl req -x509 -newkey ec
    /// -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=test.allowscope.test/O=Allowscope Test"
    /// -days 3650 -outform DER`.
    const TEST_CERT: &[u8] = &[
        0x30, 0x82, 0x01, 0xc5, 0x30, 0x82, 0x01, 0x6d, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x14,
        0x18, 0xaa, 0xc0, 0xae, 0x84, 0xc2, 0x08, 0x8a, 0x37, 0x76, 0x17, 0xe6, 0x02, 0x7e, 0xc4,
        0xe0, 0x57, 0x39, 0xa7, 0xca, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
        0x03, 0x02, 0x30, 0x39, 0x31, 0x1d, 0x30, 0x1b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x14,
        0x74, 0x65, 0x73, 0x74, 0x2e, 0x61, 0x6c, 0x6c, 0x6f, 0x77, 0x73, 0x63, 0x6f, 0x70, 0x65,
        0x2e, 0x74, 0x65, 0x73, 0x74, 0x31, 0x18, 0x30, 0x16, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c,
        0x0f, 0x41, 0x6c, 0x6c, 0x6f, 0x77, 0x73, 0x63, 0x6f, 0x70, 0x65, 0x20, 0x54, 0x65, 0x73,
        0x74, 0x30, 0x1e, 0x17, 0x0d, 0x32, 0x36, 0x31, 0x31, 0x32, 0x31, 0x32, 0x30, 0x32, 0x32,
        0x30, 0x38, 0x5a, 0x17, 0x0d, 0x33, 0x36, 0x31, 0x31, 0x31, 0x38, 0x32, 0x30, 0x32, 0x32,
        0x30, 0x38, 0x5a, 0x30, 0x39, 0x31, 0x1d, 0x30, 0x1b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c,
        0x14, 0x74, 0x65, 0x73, 0x74, 0x2e, 0x61, 0x6c, 0x6c, 0x6f, 0x77, 0x73, 0x63, 0x6f, 0x70,
        0x65, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x31, 0x18, 0x30, 0x16, 0x06, 0x03, 0x55, 0x04, 0x0a,
        0x0c, 0x0f, 0x41, 0x6c, 0x6c, 0x6f, 0x77, 0x73, 0x63, 0x6f, 0x70, 0x65, 0x20, 0x54, 0x65,
        0x73, 0x74, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x5b,
        0x43, 0x83, 0x70, 0x5e, 0x11, 0xae, 0xba, 0x81, 0xb5, 0x26, 0xef, 0xf8, 0x57, 0xb0, 0x4b,
        0x40, 0xd8, 0x13, 0x69, 0xa0, 0x50, 0xd9, 0x29, 0xd1, 0xfe, 0x5c, 0x20, 0x26, 0xf7, 0x13,
        0x7f, 0xa2, 0x96, 0x84, 0x02, 0xe2, 0x9a, 0x5f, 0xee, 0x3a, 0xe2, 0xec, 0xdd, 0x64, 0x76,
        0x97, 0x5e, 0xe4, 0x5f, 0x30, 0x81, 0xdd, 0x9c, 0xc4, 0x0d, 0x80, 0xfe, 0xe0, 0x89, 0x2e,
        0x4d, 0x06, 0xd8, 0xa3, 0x53, 0x30, 0x51, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04,
        0x16, 0x04, 0x14, 0xf3, 0x30, 0x2d, 0x6a, 0x34, 0xa8, 0xe0, 0xd4, 0x5d, 0xe7, 0xa4, 0x7a,
        0xfa, 0x48, 0x91, 0xbe, 0xf7, 0xe4, 0x9f, 0x9f, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23,
        0x04, 0x18, 0x30, 0x16, 0x80, 0x14, 0xf3, 0x30, 0x2d, 0x6a, 0x34, 0xa8, 0xe0, 0xd4, 0x5d,
        0xe7, 0xa4, 0x7a, 0xfa, 0x48, 0x91, 0xbe, 0xf7, 0xe4, 0x9f, 0x9f, 0x30, 0x0f, 0x06, 0x03,
        0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x0a,
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x46, 0x00, 0x30, 0x43,
        0x02, 0x1f, 0x68, 0xb2, 0x39, 0xf5, 0x0e, 0x8f, 0x2b, 0x3b, 0x60, 0x88, 0x59, 0xfe, 0xd1,
        0xb2, 0xe9, 0x83, 0x87, 0x5b, 0x81, 0xa0, 0xbf, 0xc7, 0x31, 0xfb, 0x70, 0xc2, 0x25, 0xc0,
        0xfc, 0x98, 0x22, 0x02, 0x20, 0x4e, 0x4b, 0x0a, 0xad, 0x03, 0xd7, 0x25, 0x54, 0xb7, 0x03,
        0xeb, 0x47, 0x01, 0x10, 0x8a, 0x76, 0x36, 0x19, 0x92, 0x9d, 0x29, 0xef, 0x9e, 0x72, 0x41,
        0x3d, 0x7a, 0xc2, 0x70, 0x3a, 0x2c, 0xb9,
    ];
    const TEST_CERT_NAME: &str = "O=Allowscope Test,CN=test.allowscope.test";

    fn u16b(v: usize) -> [u8; 2] {
        (v as u16).to_be_bytes()
    }

    fn u24b(v: usize) -> [u8; 3] {
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&u16b(data.len()));
        v.extend_from_slice(data);
        v
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut list = vec![0u8];
        list.extend_from_slice(&u16b(name.len()));
        list.extend_from_slice(name);
        let mut data = u16b(list.len()).to_vec();
        data.extend(list);
        ext(EXT_SERVER_NAME, &data)
    }

    fn alpn_ext(names: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for n in names {
            list.push(n.len() as u8);
            list.extend_from_slice(n.as_bytes());
        }
        let mut data = u16b(list.len()).to_vec();
        data.extend(list);
        ext(EXT_ALPN, &data)
    }

    fn client_versions_ext(versions: &[u16]) -> Vec<u8> {
        let mut data = vec![(versions.len() * 2) as u8];
        for v in versions {
            data.extend_from_slice(&v.to_be_bytes());
        }
        ext(EXT_SUPPORTED_VERSIONS, &data)
    }

    /// Bytes of a test ClientHello body before its extension block.
    const CH_FIXED: usize = 2 + 32 + 1 + 32 + 2 + 6 + 1 + 1;

    fn client_hello_body(exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0x11; 32]);
        b.push(32);
        b.extend_from_slice(&[0x22; 32]);
        b.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
        b.extend_from_slice(&[1, 0]);
        let all = exts.concat();
        b.extend_from_slice(&u16b(all.len()));
        b.extend(all);
        b
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(&u24b(body.len()));
        v.extend_from_slice(body);
        v
    }

    /// Records of `ctype` carrying `payload` in fragments of at most `frag` bytes.
    fn records(ctype: u8, payload: &[u8], frag: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |chunk: &[u8]| {
            out.extend_from_slice(&[ctype, 3, 1]);
            out.extend_from_slice(&u16b(chunk.len()));
            out.extend_from_slice(chunk);
        };
        if payload.is_empty() {
            push(&[]);
        }
        for chunk in payload.chunks(frag.max(1)) {
            push(chunk);
        }
        out
    }

    fn record(ctype: u8, body: &[u8]) -> Vec<u8> {
        records(ctype, body, MAX_RECORD)
    }

    /// GREASE first, then server_name: the SNI extension ends at `typical_sni_end()` in the
    /// handshake layer.
    fn typical_exts() -> Vec<Vec<u8>> {
        vec![
            ext(0x0a0a, &[]),
            sni_ext(b"api.example.com"),
            ext(23, &[]),
            alpn_ext(&["h2", "http/1.1"]),
            client_versions_ext(&[0x1a1a, 0x0304, 0x0303]),
            ext(51, &[0x33; 38]),
        ]
    }

    fn typical_sni_end() -> usize {
        let e = typical_exts();
        4 + CH_FIXED + 2 + e[0].len() + e[1].len()
    }

    fn typical_hello() -> ClientHello {
        ClientHello {
            sni: Some("api.example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            versions: vec![0x0304, 0x0303],
            ech: false,
            random: Some([0x11; 32]),
        }
    }

    fn typical_handshake() -> Vec<u8> {
        handshake(HS_CLIENT_HELLO, &client_hello_body(&typical_exts()))
    }

    fn complete(bytes: &[u8]) -> ClientHello {
        match client_hello(bytes, false) {
            HelloStatus::Complete(ch) => ch,
            other => panic!("expected a complete ClientHello, got {other:?}"),
        }
    }

    /// Calls everything on `b` and checks the invariants that hold for any input.
    fn exercise(b: &[u8]) {
        for hole in [false, true] {
            if let HelloStatus::Truncated { have, need, .. } = client_hello(b, hole) {
                assert_eq!(have, b.len());
                assert!(need > have, "need {need} have {have}");
            }
            let facts = server_flight(b, hole);
            assert!(facts.version.is_none() || facts.server_hello);
        }
        let _ = client_alerts(b);
        let _ = looks_complete(b, b);
        let _ = cert_names(b);
        let _ = format_name(b);
    }

    #[test]
    fn simple_client_hello() {
        let flight = record(REC_HANDSHAKE, &typical_handshake());
        assert_eq!(complete(&flight), typical_hello());
        assert_eq!(
            client_hello(&flight, true),
            HelloStatus::Complete(typical_hello())
        );
        // What follows the ClientHello (early data, a second flight) does not matter.
        let mut more = flight.clone();
        more.extend(record(REC_APPLICATION_DATA, &[0x42; 40]));
        more.extend_from_slice(b"\x17\x03");
        assert_eq!(complete(&more), typical_hello());
    }

    #[test]
    fn client_hello_without_extensions_reports_legacy_version() {
        let mut body = client_hello_body(&[]);
        body.truncate(body.len() - 2);
        body[1] = 1; // TLS 1.0
        let ch = complete(&record(REC_HANDSHAKE, &handshake(HS_CLIENT_HELLO, &body)));
        assert_eq!(
            ch,
            ClientHello {
                versions: vec![0x0301],
                random: Some([0x11; 32]),
                ..Default::default()
            }
        );
    }

    #[test]
    fn client_hello_split_across_two_records() {
        let hs = typical_handshake();
        // Split inside the server_name extension.
        let split = typical_sni_end() - 6;
        let mut flight = record(REC_HANDSHAKE, &hs[..split]);
        flight.extend(record(REC_HANDSHAKE, &hs[split..]));
        assert_eq!(complete(&flight), typical_hello());
    }

    #[test]
    fn client_hello_split_across_many_small_records() {
        let hs = typical_handshake();
        // Fragments of 1 to 9 bytes also split the 4-byte handshake header.
        for frag in 1..10 {
            let flight = records(REC_HANDSHAKE, &hs, frag);
            assert_eq!(complete(&flight), typical_hello(), "fragments of {frag}");
        }
    }

    #[test]
    fn huge_client_hello() {
        // A post-quantum key share and padding before the server_name.
        let mut exts = vec![ext(51, &[0x44; 1250]), ext(21, &vec![0; 3500])];
        exts.extend(typical_exts());
        let hs = handshake(HS_CLIENT_HELLO, &client_hello_body(&exts));
        assert!(hs.len() > 4700);
        assert_eq!(complete(&record(REC_HANDSHAKE, &hs)), typical_hello());
        // Larger than one record: two records of up to 16 KiB.
        let mut exts = vec![ext(21, &vec![0; 20_000])];
        exts.extend(typical_exts());
        let hs = handshake(HS_CLIENT_HELLO, &client_hello_body(&exts));
        let flight = records(REC_HANDSHAKE, &hs, 1 << 14);
        assert_eq!(complete(&flight), typical_hello());
        // Cut in the second record: need is the whole flight.
        match client_hello(&flight[..17_000], true) {
            HelloStatus::Truncated { need, .. } => assert_eq!(need, flight.len()),
            other => panic!("{other:?}"),
        }
    }

    /// Every prefix of `flight` is Truncated (NotTls without a hole when shorter than a
    /// record header), with `need` from `need_for` and the SNI from `sni_from` on.
    fn check_prefixes(flight: &[u8], sni_from: usize, need_for: impl Fn(usize) -> usize) {
        for cut in 1..flight.len() {
            for hole in [true, false] {
                let got = client_hello(&flight[..cut], hole);
                if !hole && cut < 5 {
                    assert_eq!(got, HelloStatus::NotTls, "cut {cut}");
                    continue;
                }
                let HelloStatus::Truncated {
                    partial,
                    have,
                    need,
                } = got
                else {
                    panic!("cut {cut} hole {hole}: {got:?}");
                };
                assert_eq!(have, cut);
                assert_eq!(need, need_for(cut), "cut {cut}");
                if cut >= sni_from {
                    assert_eq!(partial.sni.as_deref(), Some("api.example.com"), "cut {cut}");
                } else {
                    assert_eq!(partial.sni, None, "cut {cut}");
                }
                assert!(!partial.ech);
            }
        }
    }

    #[test]
    fn truncated_single_record_at_every_prefix() {
        let flight = record(REC_HANDSHAKE, &typical_handshake());
        let n = flight.len();
        check_prefixes(
            &flight,
            5 + typical_sni_end(),
            |cut| {
                if cut < 5 {
                    9
                } else {
                    n
                }
            },
        );
        // The partial facts grow: ALPN and supported_versions once read.
        let HelloStatus::Truncated { partial, .. } = client_hello(&flight[..n - 1], false) else {
            panic!()
        };
        assert_eq!(partial.alpn, typical_hello().alpn);
        assert_eq!(partial.versions, typical_hello().versions);
        let HelloStatus::Truncated { partial, .. } = client_hello(&flight[..5 + 6], true) else {
            panic!()
        };
        assert_eq!(partial.versions, vec![0x0303]);
    }

    #[test]
    fn truncated_two_records_at_every_prefix() {
        let hs = typical_handshake();
        let split = typical_sni_end() - 6; // inside the server_name extension
        let mut flight = record(REC_HANDSHAKE, &hs[..split]);
        flight.extend(record(REC_HANDSHAKE, &hs[split..]));
        let n = flight.len();
        check_prefixes(&flight, 10 + typical_sni_end(), |cut| match cut {
            0..5 => 9,
            5..9 => 5 + split, // the first record's end
            _ => n,
        });
    }

    #[test]
    fn truncated_many_records_at_every_prefix() {
        let hs = typical_handshake();
        let frag = 7;
        let flight = records(REC_HANDSHAKE, &hs, frag);
        let n = flight.len();
        let sni = typical_sni_end();
        let sni_from = sni + 5 * sni.div_ceil(frag);
        let last_record = n - (5 + (hs.len() - 1) % frag + 1);
        for cut in 9..n {
            let HelloStatus::Truncated {
                partial,
                have,
                need,
            } = client_hello(&flight[..cut], false)
            else {
                panic!("cut {cut}")
            };
            assert_eq!(have, cut);
            // Assumes the rest comes in one more record: never more than the real flight.
            assert!(need > cut && need <= n, "cut {cut} need {need}");
            if cut >= last_record {
                assert_eq!(need, n, "cut {cut}");
            }
            assert_eq!(partial.sni.is_some(), cut >= sni_from, "cut {cut}");
        }
    }

    #[test]
    fn not_tls() {
        let mut bad_sid = client_hello_body(&typical_exts());
        bad_sid[34] = 40;
        let mut overrun = client_hello_body(&typical_exts());
        overrun[CH_FIXED] = 0x40; // extension block longer than the message
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n".to_vec(),
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            b"EHLO mail.example.com\r\n".to_vec(),
            record(REC_APPLICATION_DATA, &[0x42; 40]),
            record(REC_ALERT, &[2, 40]),
            // A ServerHello where a ClientHello should be.
            record(REC_HANDSHAKE, &handshake(HS_SERVER_HELLO, &[3; 60])),
            // Record version 3.9, record longer than TLS allows.
            vec![22, 3, 9, 0, 50, 1, 0, 0, 46],
            vec![22, 3, 1, 0xff, 0xff, 1, 0, 0, 46],
            // A ClientHello larger than we believe, one too small to be one.
            vec![22, 3, 1, 0x40, 0, 1, 0x10, 0, 0],
            vec![22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0],
            record(REC_HANDSHAKE, &handshake(HS_CLIENT_HELLO, &bad_sid)),
            record(REC_HANDSHAKE, &handshake(HS_CLIENT_HELLO, &overrun)),
        ];
        for case in &cases {
            for hole in [false, true] {
                assert_eq!(client_hello(case, hole), HelloStatus::NotTls, "{case:02x?}");
            }
        }
        // A handshake message interrupted by another record type.
        let hs = typical_handshake();
        let mut flight = record(REC_HANDSHAKE, &hs[..100]);
        flight.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        assert_eq!(client_hello(&flight, true), HelloStatus::NotTls);
        // A bad declared length is found even in a cut ClientHello.
        let flight = record(REC_HANDSHAKE, &handshake(HS_CLIENT_HELLO, &bad_sid));
        assert_eq!(client_hello(&flight[..60], true), HelloStatus::NotTls);
    }

    #[test]
    fn random_bytes_are_not_tls() {
        let mut rng = XorShift::new(0x7153_0001);
        for _ in 0..3000 {
            let len = 1 + rng.below(300);
            let mut b = rng.bytes(len);
            if b[0] == REC_HANDSHAKE || b[0] & 0x80 != 0 {
                b[0] = 0x41;
            }
            for hole in [false, true] {
                assert_eq!(client_hello(&b, hole), HelloStatus::NotTls, "{b:02x?}");
            }
            let facts = server_flight(&b, true);
            assert!(!facts.server_hello && !facts.truncated);
        }
    }

    #[test]
    fn ech_flag() {
        let mut exts = typical_exts();
        exts.push(ext(EXT_ECH, &[0, 0, 1, 0, 1, 0x2a, 0, 0x20, 7, 7]));
        let hs = handshake(HS_CLIENT_HELLO, &client_hello_body(&exts));
        let ch = complete(&record(REC_HANDSHAKE, &hs));
        assert!(ch.ech);
        assert_eq!(ch.sni.as_deref(), Some("api.example.com"));
        // Its header is enough.
        let flight = record(REC_HANDSHAKE, &hs);
        let HelloStatus::Truncated { partial, .. } =
            client_hello(&flight[..flight.len() - 3], true)
        else {
            panic!()
        };
        assert!(partial.ech);
    }

    #[test]
    fn grease_is_ignored() {
        assert!(is_grease(0x0a0a) && is_grease(0x1a1a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a1a) && !is_grease(0x0303) && !is_grease(0x0a0b));
        let exts = vec![
            ext(0x2a2a, &[0]),
            client_versions_ext(&[0x0a0a, 0x0304, 0xfafa, 0x0303]),
            alpn_ext(&["http/1.1"]),
            ext(0xdada, &[]),
        ];
        let ch = complete(&record(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
        ));
        assert_eq!(ch.versions, vec![0x0304, 0x0303]);
        assert_eq!(ch.alpn, vec!["http/1.1".to_string()]);
        assert_eq!(ch.sni, None);
        // Only GREASE offered: the legacy version stands.
        let exts = vec![client_versions_ext(&[0x3a3a])];
        let ch = complete(&record(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
        ));
        assert_eq!(ch.versions, vec![0x0303]);
    }

    #[test]
    fn odd_server_names_never_panic_and_stay_owned() {
        // Not UTF-8, and a control character: kept (lossily) for the output layer to escape.
        let exts = vec![sni_ext(b"caf\xe9\x1b[31m.example")];
        let ch = complete(&record(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
        ));
        assert_eq!(ch.sni.as_deref(), Some("caf\u{fffd}\u{1b}[31m.example"));
        // An empty name is no name; a malformed server_name list loses only itself.
        let exts = vec![sni_ext(b""), alpn_ext(&["h2"])];
        let ch = complete(&record(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
        ));
        assert_eq!((ch.sni, ch.alpn), (None, vec!["h2".to_string()]));
        let exts = vec![
            ext(EXT_SERVER_NAME, &[0, 9, 0, 0, 1, b'a']),
            alpn_ext(&["h2"]),
        ];
        let ch = complete(&record(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
        ));
        assert_eq!((ch.sni, ch.alpn), (None, vec!["h2".to_string()]));
    }

    fn sslv2_hello(version: u16) -> Vec<u8> {
        let specs = [0x01, 0x00, 0x80, 0x00, 0x00, 0x04];
        let challenge = [0x33; 16];
        let len = 9 + specs.len() + challenge.len();
        let mut v = vec![0x80 | (len >> 8) as u8, len as u8, 1];
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&u16b(specs.len()));
        v.extend_from_slice(&u16b(0));
        v.extend_from_slice(&u16b(challenge.len()));
        v.extend_from_slice(&specs);
        v.extend_from_slice(&challenge);
        v
    }

    #[test]
    fn sslv2_client_hello_has_no_sni() {
        let hello = sslv2_hello(0x0301);
        let want = ClientHello {
            versions: vec![0x0301],
            ..Default::default()
        };
        assert_eq!(complete(&hello), want);
        assert_eq!(complete(&sslv2_hello(0x0002)).versions, vec![0x0002]);
        for cut in 1..hello.len() {
            let got = client_hello(&hello[..cut], true);
            if cut < 5 {
                assert_eq!(got, HelloStatus::NotTls);
            } else {
                assert_eq!(
                    got,
                    HelloStatus::Truncated {
                        partial: want.clone(),
                        have: cut,
                        need: hello.len()
                    }
                );
            }
        }
        let mut bad = hello.clone();
        bad[8] = 7; // challenge length that does not add up
        assert_eq!(client_hello(&bad, false), HelloStatus::NotTls);
        // TLS records follow it: alerts and the completion heuristic read them.
        let mut client = hello.clone();
        client.extend(record(REC_HANDSHAKE, &handshake(16, &[0x55; 70])));
        client.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        assert!(looks_complete(&client, &tls12_server_flight(MAX_RECORD)));
        let mut client = hello;
        client.extend(record(REC_ALERT, &[2, 40]));
        assert_eq!(
            client_alerts(&client),
            vec![Alert {
                level: 2,
                description: 40,
                before_handshake: true
            }]
        );
    }

    fn server_hello_body(random: [u8; 32], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(32);
        b.extend_from_slice(&[0x44; 32]);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        if !exts.is_empty() {
            let all = exts.concat();
            b.extend_from_slice(&u16b(all.len()));
            b.extend(all);
        }
        b
    }

    fn certificate(ders: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for d in ders {
            list.extend_from_slice(&u24b(d.len()));
            list.extend_from_slice(d);
        }
        let mut body = u24b(list.len()).to_vec();
        body.extend(list);
        handshake(HS_CERTIFICATE, &body)
    }

    fn tls12_server_hello() -> Vec<u8> {
        let exts = [ext(0xff01, &[0]), alpn_ext(&["h2"])];
        handshake(HS_SERVER_HELLO, &server_hello_body([0x55; 32], &exts))
    }

    /// ServerHello (ALPN h2), Certificate (the test certificate twice), ServerKeyExchange,
    /// ServerHelloDone, in handshake records of at most `frag` bytes.
    fn tls12_server_flight(frag: usize) -> Vec<u8> {
        let mut hs = tls12_server_hello();
        hs.extend(certificate(&[TEST_CERT, TEST_CERT]));
        hs.extend(handshake(12, &[0x77; 100]));
        hs.extend(handshake(HS_SERVER_HELLO_DONE, &[]));
        records(REC_HANDSHAKE, &hs, frag)
    }

    fn tls12_facts() -> ServerFacts {
        ServerFacts {
            server_hello: true,
            version: Some(0x0303),
            alpn: Some("h2".into()),
            alerts: Vec::new(),
            cert_subject: Some(TEST_CERT_NAME.into()),
            cert_issuer: Some(TEST_CERT_NAME.into()),
            truncated: false,
        }
    }

    fn tls13_server_flight() -> Vec<u8> {
        let exts = [ext(51, &[0, 0x1d, 0, 4, 9, 9, 9, 9]), ext(43, &[3, 4])];
        let mut f = record(
            REC_HANDSHAKE,
            &handshake(HS_SERVER_HELLO, &server_hello_body([0x66; 32], &exts)),
        );
        f.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        f.extend(record(REC_APPLICATION_DATA, &[0x99; 300]));
        f
    }

    #[test]
    fn server_hello_tls12_with_alpn_and_certificate() {
        for frag in [MAX_RECORD, 100, 7] {
            let flight = tls12_server_flight(frag);
            for hole in [false, true] {
                assert_eq!(server_flight(&flight, hole), tls12_facts(), "frag {frag}");
            }
        }
    }

    #[test]
    fn tls12_server_flight_cut_at_every_prefix() {
        let flight = tls12_server_flight(MAX_RECORD);
        let sh_end = 5 + tls12_server_hello().len();
        let subject_from = (1..flight.len())
            .find(|&cut| server_flight(&flight[..cut], false).cert_subject.is_some())
            .unwrap_or(usize::MAX);
        // The certificate's own prefix is enough: subject long before the chain ends.
        assert!(subject_from < sh_end + 4 + 6 + 300);
        for cut in 1..flight.len() {
            let f = server_flight(&flight[..cut], false);
            assert_eq!(f.server_hello, cut >= 9, "cut {cut}");
            let whole_hello = cut >= sh_end;
            assert_eq!(f.version, whole_hello.then_some(0x0303), "cut {cut}");
            assert_eq!(f.alpn.is_some(), whole_hello, "cut {cut}");
            assert_eq!(f.truncated, cut < subject_from, "cut {cut}");
            if cut >= subject_from {
                assert_eq!(f.cert_subject.as_deref(), Some(TEST_CERT_NAME));
                assert_eq!(f.cert_issuer.as_deref(), Some(TEST_CERT_NAME));
            }
        }
    }

    #[test]
    fn server_hello_tls13_with_supported_versions() {
        let flight = tls13_server_flight();
        let want = ServerFacts {
            server_hello: true,
            version: Some(0x0304),
            ..Default::default()
        };
        assert_eq!(server_flight(&flight, false), want);
        assert_eq!(server_flight(&flight, true), want);
        // Cut before supported_versions: a ServerHello of unknown version, truncated.
        let cut = server_flight(&flight[..5 + 4 + 40], false);
        assert!(cut.server_hello && cut.truncated);
        assert_eq!(cut.version, None);
        // Cut after it: nothing more to read in plaintext.
        let sh_len =
            5 + 4 + server_hello_body([0; 32], &[ext(51, &[0; 8]), ext(43, &[3, 4])]).len();
        let cut = server_flight(&flight[..sh_len + 3], true);
        assert_eq!(cut, want);
    }

    #[test]
    fn tls13_draft_server_hello() {
        // Draft 18: version 0x7f12, random, cipher suite, extensions.
        let mut body = vec![0x7f, 0x12];
        body.extend_from_slice(&[0x12; 32]);
        body.extend_from_slice(&[0x13, 0x01, 0, 0]);
        let f = server_flight(&record(REC_HANDSHAKE, &handshake(2, &body)), false);
        assert!(f.server_hello && !f.truncated);
        assert_eq!(f.version, Some(0x7f12));
    }

    #[test]
    fn hello_retry_request() {
        let hrr = handshake(
            HS_SERVER_HELLO,
            &server_hello_body(HRR_RANDOM, &[ext(43, &[3, 4]), ext(51, &[0, 0x17])]),
        );
        let mut server = record(REC_HANDSHAKE, &hrr);
        server.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        let f = server_flight(&server, false);
        assert!(f.server_hello && !f.truncated);
        assert_eq!(f.version, Some(0x0304));
        // The client answers with a compatibility ChangeCipherSpec and a second ClientHello.
        let ch = record(REC_HANDSHAKE, &typical_handshake());
        let mut client = ch.clone();
        client.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        client.extend(ch);
        assert!(!looks_complete(&client, &server));
        // An alert after the second ClientHello is still before the handshake.
        let mut aborted = client.clone();
        aborted.extend(record(REC_ALERT, &[2, 47]));
        assert_eq!(
            client_alerts(&aborted),
            vec![Alert {
                level: 2,
                description: 47,
                before_handshake: true
            }]
        );
        // The real ServerHello follows the server's compatibility ChangeCipherSpec.
        server.extend(tls13_server_flight());
        assert!(!looks_complete(&client, &server));
        client.extend(record(REC_APPLICATION_DATA, &[0x99; 60]));
        assert!(looks_complete(&client, &server));
    }

    #[test]
    fn fatal_alert_before_handshake() {
        let server = record(REC_ALERT, &[2, 70]);
        for hole in [false, true] {
            let f = server_flight(&server, hole);
            assert_eq!(
                f,
                ServerFacts {
                    alerts: vec![Alert {
                        level: 2,
                        description: 70,
                        before_handshake: true
                    }],
                    ..Default::default()
                }
            );
        }
        // A warning first (unrecognized_name), then the handshake goes on.
        let mut server = record(REC_ALERT, &[1, 112]);
        server.extend(tls12_server_flight(MAX_RECORD));
        let f = server_flight(&server, false);
        assert!(f.server_hello && f.cert_subject.is_some());
        assert_eq!(f.alerts.len(), 1);
        // Two alerts in one record; a level that is not one is not an alert.
        let f = server_flight(&record(REC_ALERT, &[1, 112, 2, 40]), false);
        assert_eq!(f.alerts.len(), 2);
        assert!(server_flight(&record(REC_ALERT, &[3, 10]), false)
            .alerts
            .is_empty());
    }

    #[test]
    fn alerts_after_change_cipher_spec() {
        let mut server = tls12_server_flight(MAX_RECORD);
        server.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        server.extend(record(REC_HANDSHAKE, &[0x5a; 40])); // encrypted Finished
        server.extend(record(REC_ALERT, &[0x5a; 26])); // encrypted alert: unreadable
        server.extend(record(REC_ALERT, &[1, 0])); // plaintext close_notify
        let f = server_flight(&server, false);
        assert_eq!(
            f.alerts,
            vec![Alert {
                level: 1,
                description: 0,
                before_handshake: false
            }]
        );
        assert_eq!(f.cert_subject.as_deref(), Some(TEST_CERT_NAME));
        // A TLS 1.3 server's compatibility ChangeCipherSpec does not start encryption.
        let mut server = record(
            REC_HANDSHAKE,
            &handshake(
                HS_SERVER_HELLO,
                &server_hello_body([0x66; 32], &[ext(43, &[3, 4])]),
            ),
        );
        server.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        server.extend(record(REC_ALERT, &[2, 80]));
        assert!(server_flight(&server, false).alerts[0].before_handshake);
    }

    #[test]
    fn client_alert_after_bad_certificate() {
        let mut client = record(REC_HANDSHAKE, &typical_handshake());
        client.extend(record(REC_ALERT, &[2, 42]));
        assert_eq!(
            client_alerts(&client),
            vec![Alert {
                level: 2,
                description: 42,
                before_handshake: true
            }]
        );
        // After its ChangeCipherSpec, a TLS 1.2 client's plaintext alert is not before.
        let mut client = record(REC_HANDSHAKE, &typical_handshake());
        client.extend(record(REC_HANDSHAKE, &handshake(16, &[0x55; 70])));
        client.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        client.extend(record(REC_HANDSHAKE, &[0x5a; 40]));
        client.extend(record(REC_ALERT, &[1, 0]));
        assert!(!client_alerts(&client)[0].before_handshake);
        assert!(client_alerts(b"GET / HTTP/1.1\r\n\r\n").is_empty());
    }

    #[test]
    fn completion_heuristic() {
        let ch = record(REC_HANDSHAKE, &typical_handshake());
        // TLS 1.2: ClientKeyExchange, ChangeCipherSpec, Finished.
        let mut client12 = ch.clone();
        client12.extend(record(REC_HANDSHAKE, &handshake(16, &[0x55; 70])));
        client12.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        client12.extend(record(REC_HANDSHAKE, &[0x5a; 40]));
        let mut server12 = tls12_server_flight(MAX_RECORD);
        assert!(looks_complete(&client12, &server12));
        server12.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        assert!(looks_complete(&client12, &server12));
        assert!(!looks_complete(&ch, &server12));
        // TLS 1.3: the client's Finished is application data.
        let mut client13 = ch.clone();
        client13.extend(record(REC_CHANGE_CIPHER_SPEC, &[1]));
        client13.extend(record(REC_APPLICATION_DATA, &[0x99; 60]));
        assert!(looks_complete(&client13, &tls13_server_flight()));
        // No ServerHello: an alert, or not TLS at all.
        assert!(!looks_complete(&client13, &record(REC_ALERT, &[2, 70])));
        assert!(!looks_complete(
            &client13,
            b"HTTP/1.1 400 Bad Request\r\n\r\n"
        ));
        assert!(!looks_complete(
            b"GET / HTTP/1.1\r\n\r\n",
            &tls13_server_flight()
        ));
        // The client gave up with an alert.
        let mut gave_up = ch;
        gave_up.extend(record(REC_ALERT, &[2, 48]));
        assert!(!looks_complete(&gave_up, &tls13_server_flight()));
    }

    /// Bytes that end inside an ApplicationData record (the encrypted bypass keeps only its
    /// header) cut nothing the parser reads; bytes ending inside a handshake record do.
    #[test]
    fn ending_inside_application_data_is_not_a_cut() {
        let mut f = tls13_server_flight();
        f.extend_from_slice(&[REC_APPLICATION_DATA, 3, 3, 0x10, 0x00]);
        let facts = server_flight(&f, false);
        assert!(facts.server_hello && !facts.truncated);
        let header_only = [REC_APPLICATION_DATA, 3, 3, 0x10, 0x00];
        assert!(!server_flight(&header_only, false).truncated);
        let hs_cut = [REC_HANDSHAKE, 3, 3, 0x10, 0x00, HS_SERVER_HELLO];
        assert!(server_flight(&hs_cut, false).truncated);
    }

    #[test]
    fn server_flight_that_is_not_tls() {
        for hole in [false, true] {
            let f = server_flight(b"HTTP/1.1 400 Bad Request\r\n\r\n<html>", hole);
            assert_eq!(f, ServerFacts::default());
        }
        // Nothing captured of a flight the server did send: truncated.
        assert!(server_flight(&[], true).truncated);
        assert!(!server_flight(&[], false).truncated);
    }

    #[test]
    fn certificate_names() {
        assert_eq!(
            cert_names(TEST_CERT),
            (Some(TEST_CERT_NAME.into()), Some(TEST_CERT_NAME.into()))
        );
        // Any prefix: issuer first, then subject, never a panic.
        let mut seen = (false, false);
        for cut in 0..TEST_CERT.len() {
            let (subject, issuer) = cert_names(&TEST_CERT[..cut]);
            assert!(!seen.0 || subject.is_some());
            assert!(!seen.1 || issuer.is_some());
            assert!(subject.is_none() || issuer.is_some());
            seen = (subject.is_some(), issuer.is_some());
        }
        assert_eq!(seen, (true, true));
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        match content.len() {
            n @ 0..0x80 => v.push(n as u8),
            n @ 0x80..0x100 => v.extend_from_slice(&[0x81, n as u8]),
            n => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend_from_slice(content);
        v
    }

    fn atv(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
        let mut c = tlv(0x06, oid);
        c.extend(value);
        tlv(0x30, &c)
    }

    #[test]
    fn name_formatting_and_escaping() {
        let bmp: Vec<u8> = "Zürich"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let rdns = [
            tlv(0x31, &atv(&[0x55, 4, 6], tlv(0x13, b"US"))),
            tlv(0x31, &atv(&[0x55, 4, 10], tlv(0x0c, b"Acme, Inc."))),
            tlv(
                0x31,
                &[
                    atv(&[0x55, 4, 11], tlv(0x0c, b"a")),
                    atv(&[0x55, 4, 3], tlv(0x0c, b"#lead ")),
                ]
                .concat(),
            ),
            tlv(0x31, &atv(&[0x55, 4, 7], tlv(0x1e, &bmp))),
            tlv(0x31, &atv(&[0x2a, 3, 4], tlv(0x02, &[5]))),
            tlv(0x31, &atv(&[0x88, 0x37, 3], tlv(0x0c, b"x"))),
        ];
        assert_eq!(
            format_name(&rdns.concat()).as_deref(),
            Some(r"2.999.3=x,1.2.3.4=#020105,L=Zürich,OU=a+CN=\#lead\ ,O=Acme\, Inc.,C=US")
        );
        assert_eq!(
            escape_rfc4514(" a\"b+c;d<e>f\\g\u{1}h "),
            r#"\ a\"b\+c\;d\<e\>f\\g\01h\ "#
        );
        assert_eq!(format_name(&[]).as_deref(), Some(""));
        assert_eq!(format_name(&[0x31, 5, 0x30]), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift::new(0x7153_0002);
        for i in 0..6000 {
            let len = rng.below(400);
            let mut b = rng.bytes(len);
            // Bias the starts toward records and SSLv2 so the deeper code runs.
            match (i % 5, b.len()) {
                (1, 9..) => {
                    b[..6].copy_from_slice(&[22, 3, 1, 0, (len - 5) as u8, 1]);
                    b[6..9].copy_from_slice(&[0, 0, (len - 9).min(255) as u8]);
                }
                (2, 5..) => b[..3].copy_from_slice(&[0x80, (len - 2) as u8, 1]),
                (3, 5..) => {
                    let t = 20 + b[0] % 5;
                    b[..3].copy_from_slice(&[t, 3, 3]);
                }
                (4, 9..) => {
                    let t = b[5] % 16;
                    b[..6].copy_from_slice(&[22, 3, 3, 0, (len - 5) as u8, t]);
                    b[6] = 0;
                }
                _ => {}
            }
            exercise(&b);
        }
    }

    #[test]
    fn random_cuts_and_flips_never_panic() {
        let mut rng = XorShift::new(0x7153_0003);
        let mut exts = vec![ext(21, &vec![0; 3100])];
        exts.extend(typical_exts());
        let huge = records(
            REC_HANDSHAKE,
            &handshake(HS_CLIENT_HELLO, &client_hello_body(&exts)),
            1000,
        );
        let clients = [records(REC_HANDSHAKE, &typical_handshake(), 37), huge];
        let mut server = tls12_server_flight(300);
        server.extend(record(REC_ALERT, &[1, 0]));
        for i in 0..4000 {
            let src: &[u8] = match i % 3 {
                0 => &clients[0],
                1 => &clients[1],
                _ => &server,
            };
            let cut = rng.below(src.len() + 1);
            let mut b = src[..cut].to_vec();
            if i % 3 != 2 && (1..src.len()).contains(&cut) {
                // A cut ClientHello is never "not TLS".
                assert!(
                    matches!(client_hello(&b, true), HelloStatus::Truncated { .. }),
                    "cut {cut}"
                );
            }
            for _ in 0..rng.below(4) {
                if !b.is_empty() {
                    let k = rng.below(b.len());
                    b[k] ^= 1 << rng.below(8);
                }
            }
            exercise(&b);
            let _ = looks_complete(&b, &server);
            let _ = looks_complete(&clients[0], &b);
        }
    }
}

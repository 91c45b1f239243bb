//! DNS messages (RFC 1035 wire format) over UDP and over TCP (RFC 1035 4.2.2 / RFC 7766: each
//! message behind a two-byte length, several messages per connection).
//!
//! The wire reader is our own and deliberately lenient about what does not matter to an audit:
//! every record type is accepted and only A, AAAA and CNAME data are decoded (HTTPS/SVCB, CAA,
//! RRSIG, TKEY, ... become [`RData::Other`] and are skipped by their length), any class and any
//! opcode are accepted (UPDATE's class ANY/NONE records, NOTIFY, NetBIOS name service), and the
//! header's reserved Z bit is ignored. It is strict about structure: a message that ends before
//! its counts say is [`DnsError::Truncated`], a bad compression pointer or an over-long name is
//! [`DnsError::Malformed`].
//!
//! Why not a crate: simple-dns 0.13 (the best candidate) rejects whole messages for an unknown
//! question type (NXT 30, NetBIOS NB 32, TKEY 249) or class (255, used by UPDATE), rejects the Z
//! bit, and folds unknown opcodes and rcodes into one `Reserved` value; on the conformance
//! corpus it refused 18 of 129 real messages. It stays as a dev-dependency: the tests check this
//! reader against it wherever both accept a message.
//!
//! Names are attacker-controlled. They are returned as printable strings: ASCII lower-cased,
//! no trailing dot (the root is `"."`), and, as in zone files, `.` and `\` inside a label
//! escaped as `\.` and `\\`, and any byte outside `!`..=`~` as `\DDD` (decimal).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::wire::{be16, be32};
use DnsError::Truncated;

/// Length of the fixed DNS header.
const HEADER_LEN: usize = 12;

/// Field offsets of the header (RFC 1035 section 4.1.1).
mod field {
    use crate::wire::Field;
    pub const ID: Field = 0..2;
    pub const FLAGS: Field = 2..4;
    pub const QDCOUNT: Field = 4..6;
    pub const ANCOUNT: Field = 6..8;
    pub const NSCOUNT: Field = 8..10;
    pub const ARCOUNT: Field = 10..12;
}

/// Field offsets of a question after its name (RFC 1035 section 4.1.2).
mod question_field {
    use crate::wire::Field;
    pub const QTYPE: Field = 0..2;
    pub const QCLASS: Field = 2..4;
    pub const END: usize = 4;
}

/// Field offsets of a resource record after its owner name (RFC 1035 section 4.1.3).
mod rr_field {
    use crate::wire::Field;
    pub const TYPE: Field = 0..2;
    pub const TTL: Field = 4..8;
    pub const RDLENGTH: Field = 8..10;
    pub const RDATA: usize = 10;
}
/// Longest name in wire form (RFC 1035 3.1), root label included.
const MAX_NAME_WIRE: usize = 255;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const TYPE_ANY: u16 = 255;

/// Why a DNS message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// The bytes end before the message does (its counts or lengths ask for more).
    Truncated,
    /// The message is structurally wrong (bad compression pointer, over-long name, ...).
    Malformed(&'static str),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Truncated => f.write_str("truncated DNS message"),
            DnsError::Malformed(why) => write!(f, "malformed DNS message: {why}"),
        }
    }
}

impl std::error::Error for DnsError {}

/// One DNS message (query or response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DnsMessage {
    pub id: u16,
    /// The QR flag.
    pub response: bool,
    /// 0 QUERY, 4 NOTIFY, 5 UPDATE, ...
    pub opcode: u8,
    /// Full rcode: header rcode plus EDNS0 extended bits (e.g. 16 BADVERS).
    pub rcode: u16,
    /// The TC flag.
    pub tc: bool,
    /// Question section (for UPDATE: the zone section).
    pub questions: Vec<Question>,
    /// Answer section only (not authority/additional; for UPDATE: the prerequisite section).
    pub answers: Vec<Record>,
    /// Why the message could not be read whole (see [`parse_message_lenient`]): `Truncated`
    /// when the capture cut it, `Malformed` when its structure is wrong. The header and the
    /// questions and answers before that point are as sent.
    #[serde(skip)]
    pub partial: Option<DnsError>,
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Question {
    /// Lower-case, no trailing dot, escaped (see the module docs).
    pub name: String,
    pub qtype: u16,
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Record {
    /// Owner name, normalized like [`Question::name`].
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RData,
}

/// The decoded data of a record: addresses and CNAME targets; everything else only by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "value")]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The target name, normalized like [`Question::name`].
    Cname(String),
    /// Any other type, or an A/AAAA/CNAME whose data has the wrong length or is empty (such as
    /// the "delete an RRset" records of UPDATE). Holds the record type.
    Other(u16),
}

/// The CNAME chain of a message: from the asked name to the final address records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Chain {
    /// The name asked (the first question; without a question, the first answer's owner).
    pub asked: String,
    /// CNAME targets in chain order, excluding `asked`.
    pub cnames: Vec<String>,
    /// A/AAAA answers owned by the last name of the chain, in answer order, with their TTLs.
    pub addresses: Vec<(IpAddr, u32)>,
}

/// DNS messages read from one direction of a TCP connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TcpDns {
    /// The messages that parsed, in stream order.
    pub messages: Vec<DnsMessage>,
    /// The bytes ended inside a message (its length prefix or its body).
    pub truncated: bool,
    /// A complete (length-delimited) message did not parse; reading stopped there.
    pub malformed: bool,
}

/// Name of a (full) rcode, as in the IANA "DNS RCODEs" registry; `"RCODE?"` if unassigned.
pub fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        // 16 is also BADSIG in TSIG error fields; as a message rcode it is BADVERS (RFC 6891).
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => "RCODE?",
    }
}

/// Mnemonic of an RR type / QTYPE (IANA "Resource Record (RR) TYPEs"); `TYPEnnn` (RFC 3597)
/// for the others.
pub fn qtype_name(t: u16) -> Cow<'static, str> {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        66 => "DSYNC",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        128 => "NXNAME",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        261 => "RESINFO",
        32768 => "TA",
        32769 => "DLV",
        _ => return Cow::Owned(format!("TYPE{t}")),
    };
    Cow::Borrowed(name)
}

/// Appends one label, lower-cased and escaped (see the module docs).
fn push_label(out: &mut String, label: &[u8]) {
    out.reserve(label.len());
    for &b in label {
        match b {
            b'.' => out.push_str("\\."),
            b'\\' => out.push_str("\\\\"),
            b'!'..=b'~' => out.push(b.to_ascii_lowercase() as char),
            _ => {
                out.push('\\');
                out.push((b'0' + b / 100) as char);
                out.push((b'0' + b / 10 % 10) as char);
                out.push((b'0' + b % 10) as char);
            }
        }
    }
}

/// Reads the (possibly compressed) name at `start` of `msg`; returns it and the offset just
/// after its in-place part.
///
/// A compression pointer must point into the message body (not the header) and strictly before
/// the start of the run of labels it ends. Legitimate encoders always satisfy this (a pointer
/// names an earlier occurrence), and it makes every jump go backwards, so no input loops.
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    // Room for most names at once (each growth of the string is a reallocation).
    let mut out = String::with_capacity(32);
    let mut pos = start;
    let mut run_start = start;
    let mut end = None;
    let mut wire_len = 1; // the root label
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(pos + 1);
                if out.is_empty() {
                    out.push('.');
                }
                return Ok((out, end));
            }
            0x00 => {
                let l = usize::from(len);
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(DnsError::Truncated)?;
                wire_len += 1 + l;
                if wire_len > MAX_NAME_WIRE {
                    return Err(DnsError::Malformed("name longer than 255 octets"));
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos += 1 + l;
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                if target < HEADER_LEN {
                    return Err(DnsError::Malformed("compression pointer into the header"));
                }
                if target >= run_start {
                    return Err(DnsError::Malformed("compression pointer not backwards"));
                }
                run_start = target;
                pos = target;
            }
            _ => return Err(DnsError::Malformed("unknown label type")),
        }
    }
}

/// The fixed part of a resource record and where its data lies.
struct RawRecord {
    name: String,
    rtype: u16,
    ttl: u32,
    rdata: std::ops::Range<usize>,
}

fn read_record(msg: &[u8], at: usize) -> Result<RawRecord, DnsError> {
    let (name, pos) = read_name(msg, at)?;
    let fixed = msg.get(pos..).unwrap_or_default();
    let rtype = be16(fixed, rr_field::TYPE).ok_or(Truncated)?;
    // The class is not used: UPDATE and mDNS put other values there.
    let ttl = be32(fixed, rr_field::TTL).ok_or(Truncated)?;
    let rdlen = usize::from(be16(fixed, rr_field::RDLENGTH).ok_or(Truncated)?);
    let start = pos + rr_field::RDATA;
    if msg.len() < start + rdlen {
        return Err(DnsError::Truncated);
    }
    Ok(RawRecord {
        name,
        rtype,
        ttl,
        rdata: start..start + rdlen,
    })
}

fn decode_rdata(msg: &[u8], rr: &RawRecord) -> Result<RData, DnsError> {
    let data = &msg[rr.rdata.clone()];
    Ok(match (rr.rtype, data.len()) {
        (TYPE_A, 4) => RData::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
        (TYPE_AAAA, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(data);
            RData::Aaaa(Ipv6Addr::from(a))
        }
        (TYPE_CNAME, n) if n > 0 => {
            // Read within the record: a target running past its data is malformed, not cut.
            match read_name(&msg[..rr.rdata.end], rr.rdata.start) {
                Ok((target, _)) => RData::Cname(target),
                Err(DnsError::Truncated) => {
                    return Err(DnsError::Malformed("CNAME target overruns its record"))
                }
                Err(e) => return Err(e),
            }
        }
        (t, _) => RData::Other(t),
    })
}

/// Parses one DNS message (a UDP payload, or one length-delimited message of a TCP stream).
///
/// All sections are walked, so a message cut anywhere (even in the additional section) is
/// [`DnsError::Truncated`]; bytes after the last record are ignored. The extended rcode comes
/// from the first OPT record of the additional section.
pub fn parse_message(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    let mut msg = header(bytes)?;
    sections(bytes, &mut msg)?;
    Ok(msg)
}

/// Parses what there is of one DNS message: the header (which a snap length rarely cuts: a
/// 96-byte frame keeps it) and the questions and answers as far as they parse. `None` only
/// when the header itself is cut. A message that [`parse_message`] rejects comes back with the
/// reason in [`DnsMessage::partial`]: its id, flags and rcode are still what the sender sent,
/// so a cut or malformed response is an answer, never "no answer".
pub fn parse_message_lenient(bytes: &[u8]) -> Option<DnsMessage> {
    let mut msg = header(bytes).ok()?;
    if let Err(e) = sections(bytes, &mut msg) {
        msg.partial = Some(e);
    }
    Some(msg)
}

/// The fixed header, with empty sections.
fn header(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    if bytes.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let flags = be16(bytes, field::FLAGS).ok_or(Truncated)?;
    Ok(DnsMessage {
        id: be16(bytes, field::ID).ok_or(Truncated)?,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: flags & 0x0f,
        tc: flags & 0x0200 != 0,
        questions: Vec::new(),
        answers: Vec::new(),
        partial: None,
    })
}

/// Reads the sections after the header into `msg`, stopping at the first thing that does not
/// parse (what was read before it stays in `msg`).
fn sections(bytes: &[u8], msg: &mut DnsMessage) -> Result<(), DnsError> {
    let count = |f| be16(bytes, f).ok_or(Truncated);
    let counts = [
        count(field::QDCOUNT)?,
        count(field::ANCOUNT)?,
        count(field::NSCOUNT)?,
        count(field::ARCOUNT)?,
    ];
    let mut pos = HEADER_LEN;

    // Capacities are bounded by what the bytes could hold (a question takes at least 5 bytes,
    // a record 11), so a forged count cannot make a large allocation.
    let room = |min: usize, count: u16| usize::from(count).min(bytes.len() / min);
    msg.questions.reserve(room(5, counts[0]));
    for _ in 0..counts[0] {
        let (name, end) = read_name(bytes, pos)?;
        let fixed = bytes.get(end..).unwrap_or_default();
        let qtype = be16(fixed, question_field::QTYPE).ok_or(Truncated)?;
        be16(fixed, question_field::QCLASS).ok_or(Truncated)?;
        msg.questions.push(Question { name, qtype });
        pos = end + question_field::END;
    }

    msg.answers.reserve(room(11, counts[1]));
    for _ in 0..counts[1] {
        let rr = read_record(bytes, pos)?;
        let data = decode_rdata(bytes, &rr)?;
        pos = rr.rdata.end;
        msg.answers.push(Record {
            name: rr.name,
            rtype: rr.rtype,
            ttl: rr.ttl,
            data,
        });
    }

    for _ in 0..counts[2] {
        pos = read_record(bytes, pos)?.rdata.end;
    }

    let mut opt_seen = false;
    for _ in 0..counts[3] {
        let rr = read_record(bytes, pos)?;
        if rr.rtype == TYPE_OPT && !opt_seen {
            // RFC 6891 6.1.3: the TTL's top byte holds the upper 8 bits of the 12-bit rcode.
            msg.rcode |= ((rr.ttl >> 24) as u16) << 4;
            opt_seen = true;
        }
        pos = rr.rdata.end;
    }
    Ok(())
}

/// How many whole (length-delimited) messages a DNS-over-TCP stream holds so far: those
/// [`parse_tcp_stream`] reads before a message the stream has not finished yet.
pub fn whole_tcp_messages(bytes: &[u8]) -> usize {
    let (mut pos, mut n) = (0usize, 0usize);
    while let Some(len) = be16(bytes, pos) {
        pos += 2 + usize::from(len);
        if pos > bytes.len() {
            break;
        }
        n += 1;
    }
    n
}

/// Reads DNS over TCP: a two-byte length before each message, several messages per stream.
///
/// Stops at the first length-delimited message that does not parse (`malformed`), or when the
/// bytes end inside a length prefix or a message (`truncated`); what there is of that message
/// is kept when it is [`worth_keeping`], with the reason in [`DnsMessage::partial`]. `hole` (the capture lacks bytes
/// after `bytes`) does not change the result: without a hole, a stream that ends inside a
/// message means the sender (or the capture) stopped there, which is reported the same way.
pub fn parse_tcp_stream(bytes: &[u8], hole: bool) -> TcpDns {
    let _ = hole;
    let mut out = TcpDns::default();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(len) = be16(bytes, pos) else {
            out.truncated = true;
            break;
        };
        let body = pos + 2..pos + 2 + usize::from(len);
        let Some(msg) = bytes.get(body.clone()) else {
            // A message cut by the capture: what there is of it still counts (a response's
            // header says it was answered, and how).
            out.truncated = true;
            if let Some(m) = bytes.get(pos + 2..).and_then(parse_message_lenient) {
                if worth_keeping(&m) {
                    out.messages.push(m);
                }
            }
            break;
        };
        match parse_message(msg) {
            Ok(m) => out.messages.push(m),
            Err(_) => {
                out.malformed = true;
                if let Some(m) = parse_message_lenient(msg).filter(worth_keeping) {
                    out.messages.push(m);
                }
                break;
            }
        }
        pos = body.end;
    }
    out
}

/// Whether a message read by [`parse_message_lenient`] is worth keeping: a response (its
/// header is an answer), or a query whose question was read.
pub fn worth_keeping(m: &DnsMessage) -> bool {
    m.response || !m.questions.is_empty()
}

/// Loopback and unspecified addresses (IPv4, IPv6, and IPv4-mapped IPv6).
fn is_sinkhole_addr(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_unspecified() || a.is_loopback(),
        IpAddr::V6(a) => {
            a.is_unspecified()
                || a.is_loopback()
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_unspecified() || v4.is_loopback())
        }
    }
}

impl DnsMessage {
    /// NODATA: a NOERROR response to a standard query, not truncated (TC clear), with a
    /// question, and without any answer of the asked type (ANY: of any type) owned by the asked
    /// name or a name its CNAME chain leads to. A CNAME chain that ends without the asked type
    /// is NODATA; so is an empty answer section.
    pub fn is_nodata(&self) -> bool {
        self.is_nodata_in(&self.chain())
    }

    /// [`DnsMessage::is_nodata`] given this message's [`DnsMessage::chain`], for a caller that
    /// has it already.
    pub fn is_nodata_in(&self, chain: &Chain) -> bool {
        let Some(q) = self.questions.first() else {
            return false;
        };
        if !self.response
            || self.opcode != 0
            || self.rcode != 0
            || self.tc
            || self.partial.is_some()
        {
            return false;
        }
        let names: rustc_hash::FxHashSet<&str> = std::iter::once(chain.asked.as_str())
            .chain(chain.cnames.iter().map(String::as_str))
            .collect();
        !self
            .answers
            .iter()
            .any(|r| names.contains(r.name.as_str()) && (r.rtype == q.qtype || q.qtype == TYPE_ANY))
    }

    /// A sinkhole answer: a response where some A/AAAA answer is an unspecified address
    /// (0.0.0.0, ::) or a loopback address (all of 127.0.0.0/8, and ::1; IPv4-mapped forms
    /// included).
    ///
    /// The whole of 127/8 counts because blocklist resolvers use other loopback addresses than
    /// 127.0.0.1 too, and any loopback answer for a public name means the client cannot reach
    /// the real service. Names under `localhost` (RFC 6761) legitimately resolve to loopback
    /// and never count.
    pub fn sinkhole(&self) -> bool {
        let asked = self
            .questions
            .first()
            .map(|q| q.name.as_str())
            .unwrap_or("");
        if !self.response || asked == "localhost" || asked.ends_with(".localhost") {
            return false;
        }
        self.answers.iter().any(|r| match r.data {
            RData::A(a) => is_sinkhole_addr(IpAddr::V4(a)),
            RData::Aaaa(a) => is_sinkhole_addr(IpAddr::V6(a)),
            _ => false,
        })
    }

    /// The CNAME chain from the asked name to the final address records.
    ///
    /// Answers may come in any order. When a name owns several CNAMEs (invalid, but seen in
    /// forged answers) the first in answer order is followed; a CNAME back to a name already in
    /// the chain ends it (loops are cut, never followed).
    pub fn chain(&self) -> Chain {
        let asked = match (self.questions.first(), self.answers.first()) {
            (Some(q), _) => q.name.clone(),
            (None, Some(r)) => r.name.clone(),
            (None, None) => String::new(),
        };
        let mut next: rustc_hash::FxHashMap<&str, &str> = Default::default();
        for r in &self.answers {
            if let RData::Cname(t) = &r.data {
                next.entry(r.name.as_str()).or_insert(t.as_str());
            }
        }
        let mut seen: rustc_hash::FxHashSet<&str> = Default::default();
        seen.insert(asked.as_str());
        let mut cnames = Vec::new();
        let mut cur = asked.as_str();
        while let Some(&t) = next.get(cur) {
            if !seen.insert(t) {
                break;
            }
            cnames.push(t.to_string());
            cur = t;
        }
        let addresses = self
            .answers
            .iter()
            .filter(|r| r.name == cur)
            .filter_map(|r| match r.data {
                RData::A(a) => Some((IpAddr::V4(a), r.ttl)),
                RData::Aaaa(a) => Some((IpAddr::V6(a), r.ttl)),
                _ => None,
            })
            .collect();
        Chain {
            asked,
            cnames,
            addresses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;
    use std::collections::HashMap;

    const QR: u16 = 0x8000;
    const RD: u16 = 0x0100;
    const RA: u16 = 0x0080;
    const TC: u16 = 0x0200;
    const QUERY: u16 = RD;

    fn resp(rcode: u16) -> u16 {
        QR | RD | RA | rcode
    }

    /// Record data for the builder.
    enum D<'a> {
        A([u8; 4]),
        Aaaa(&'a str),
        /// A CNAME target, compressed like owner names.
        Cname(&'a str),
        /// A name written through the compressor (NS, PTR, SOA mname...).
        Name(&'a str),
        Raw(Vec<u8>),
    }

    /// Builds DNS messages with name compression (against byte-identical suffixes).
    struct Builder {
        buf: Vec<u8>,
        names: HashMap<String, u16>,
        counts: [u16; 4],
        section: usize,
    }

    impl Builder {
        fn new(id: u16, flags: u16) -> Self {
            let mut buf = Vec::new();
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&flags.to_be_bytes());
            buf.extend_from_slice(&[0; 8]);
            Builder {
                buf,
                names: HashMap::new(),
                counts: [0; 4],
                section: 0,
            }
        }

        fn name(&mut self, name: &str) {
            let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
            for i in 0..labels.len() {
                let suffix = labels[i..].join(".");
                if let Some(&off) = self.names.get(&suffix) {
                    self.buf.extend_from_slice(&(0xc000 | off).to_be_bytes());
                    return;
                }
                if self.buf.len() < 0x3fff {
                    self.names.insert(suffix, self.buf.len() as u16);
                }
                self.buf.push(labels[i].len() as u8);
                self.buf.extend_from_slice(labels[i].as_bytes());
            }
            self.buf.push(0);
        }

        fn enter(&mut self, section: usize) {
            assert!(section >= self.section, "sections out of order");
            self.section = section;
            self.counts[section] += 1;
        }

        fn question(mut self, name: &str, qtype: u16) -> Self {
            self.enter(0);
            self.name(name);
            self.buf.extend_from_slice(&qtype.to_be_bytes());
            self.buf.extend_from_slice(&1u16.to_be_bytes());
            self
        }

        fn rr(mut self, section: usize, name: &str, rtype: u16, ttl: u32, data: D) -> Self {
            self.enter(section);
            self.name(name);
            self.buf.extend_from_slice(&rtype.to_be_bytes());
            self.buf.extend_from_slice(&1u16.to_be_bytes());
            self.buf.extend_from_slice(&ttl.to_be_bytes());
            let len_at = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
            match data {
                D::A(a) => self.buf.extend_from_slice(&a),
                D::Aaaa(s) => {
                    let a: Ipv6Addr = s.parse().unwrap();
                    self.buf.extend_from_slice(&a.octets());
                }
                D::Cname(n) | D::Name(n) => self.name(n),
                D::Raw(r) => self.buf.extend_from_slice(&r),
            }
            let len = (self.buf.len() - len_at - 2) as u16;
            self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            self
        }

        fn answer(self, name: &str, rtype: u16, ttl: u32, data: D) -> Self {
            self.rr(1, name, rtype, ttl, data)
        }

        fn authority(self, name: &str, rtype: u16, ttl: u32, data: D) -> Self {
            self.rr(2, name, rtype, ttl, data)
        }

        /// An EDNS0 OPT record carrying the upper 8 bits of the rcode.
        fn opt(mut self, ext_rcode: u8) -> Self {
            self.enter(3);
            self.buf.push(0);
            self.buf.extend_from_slice(&TYPE_OPT.to_be_bytes());
            self.buf.extend_from_slice(&1232u16.to_be_bytes());
            self.buf
                .extend_from_slice(&(u32::from(ext_rcode) << 24).to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
            self
        }

        fn build(mut self) -> Vec<u8> {
            for (i, c) in self.counts.iter().enumerate() {
                self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
            }
            self.buf
        }
    }

    fn soa() -> D<'static> {
        let mut r = Vec::new();
        r.extend_from_slice(b"\x02ns\x00\x0ahostmaster\x00");
        for v in [1u32, 7200, 900, 1_209_600, 300] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        D::Raw(r)
    }

    /// HTTPS (RFC 9460) rdata: priority 1, target ".", alpn=h2,h3, ipv4hint=104.16.1.1.
    fn https_rdata() -> Vec<u8> {
        let mut r = vec![0, 1, 0];
        r.extend_from_slice(&[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3']);
        r.extend_from_slice(&[0, 4, 0, 4, 104, 16, 1, 1]);
        r
    }

    /// CAA (RFC 8659) rdata: 0 issue "letsencrypt.org".
    fn caa_rdata() -> Vec<u8> {
        let mut r = vec![0, 5];
        r.extend_from_slice(b"issue");
        r.extend_from_slice(b"letsencrypt.org");
        r
    }

    const PL_ASKED: &str = "mystorage.blob.core.windows.net";
    const PL_1: &str = "mystorage.privatelink.blob.core.windows.net";
    const PL_2: &str = "blob.ams20prdstr02a.store.core.windows.net";
    const PL_3: &str = "blob-ams20.trafficmanager.privatelink.example.net";

    fn privatelink_chain(reverse: bool) -> Vec<u8> {
        let mut answers = vec![
            (PL_ASKED, TYPE_CNAME, 60, D::Cname(PL_1)),
            (PL_1, TYPE_CNAME, 60, D::Cname(PL_2)),
            (PL_2, TYPE_CNAME, 30, D::Cname(PL_3)),
            (PL_3, TYPE_A, 20, D::A([20, 60, 1, 2])),
            (PL_3, TYPE_A, 20, D::A([20, 60, 1, 3])),
        ];
        if reverse {
            answers.reverse();
        }
        let mut b = Builder::new(0x4242, resp(0)).question(PL_ASKED, TYPE_A);
        for (n, t, ttl, d) in answers {
            b = b.answer(n, t, ttl, d);
        }
        b.build()
    }

    /// A set of well-formed messages covering every feature, for the generic tests.
    fn corpus() -> Vec<Vec<u8>> {
        vec![
            Builder::new(1, QUERY)
                .question("Example.COM", TYPE_A)
                .build(),
            Builder::new(1, resp(0))
                .question("example.com", TYPE_A)
                .answer("example.com", TYPE_A, 300, D::A([93, 184, 216, 34]))
                .build(),
            Builder::new(2, resp(0))
                .question("example.com", TYPE_AAAA)
                .answer(
                    "example.com",
                    TYPE_AAAA,
                    3600,
                    D::Aaaa("2606:2800:220:1::1"),
                )
                .opt(0)
                .build(),
            privatelink_chain(false),
            privatelink_chain(true),
            Builder::new(3, resp(3))
                .question("nope.example.com", TYPE_A)
                .authority("example.com", 6, 300, soa())
                .build(),
            Builder::new(4, resp(5))
                .question("x.example.com", TYPE_A)
                .build(),
            Builder::new(5, resp(2))
                .question("x.example.com", TYPE_A)
                .build(),
            Builder::new(6, resp(0))
                .question("v4only.example.com", TYPE_AAAA)
                .authority("example.com", 6, 300, soa())
                .build(),
            Builder::new(7, resp(0))
                .question("ads.example.com", TYPE_A)
                .answer("ads.example.com", TYPE_A, 10, D::A([0, 0, 0, 0]))
                .build(),
            Builder::new(8, resp(0))
                .question("ads.example.com", TYPE_AAAA)
                .answer("ads.example.com", TYPE_AAAA, 10, D::Aaaa("::"))
                .build(),
            https_mixed(),
            Builder::new(9, resp(0))
                .question("example.com", TYPE_A)
                .opt(1)
                .build(),
            Builder::new(10, resp(0))
                .question("example.com", 2)
                .answer("example.com", 2, 300, D::Name("a.iana-servers.net"))
                .answer("example.com", 2, 300, D::Name("b.iana-servers.net"))
                .rr(
                    3,
                    "a.iana-servers.net",
                    TYPE_A,
                    300,
                    D::A([199, 43, 135, 53]),
                )
                .build(),
        ]
    }

    fn https_mixed() -> Vec<u8> {
        Builder::new(11, resp(0))
            .question("www.example.com", 65)
            .answer(
                "www.example.com",
                TYPE_CNAME,
                300,
                D::Cname("cdn.example.net"),
            )
            .answer("cdn.example.net", 65, 300, D::Raw(https_rdata()))
            .answer("cdn.example.net", 257, 300, D::Raw(caa_rdata()))
            .answer("cdn.example.net", TYPE_A, 300, D::A([104, 16, 1, 1]))
            .answer("cdn.example.net", 46, 300, D::Raw(vec![0; 30]))
            .opt(0)
            .build()
    }

    #[test]
    fn a_query_and_response() {
        let q = parse_message(&corpus()[0]).unwrap();
        assert_eq!(q.id, 1);
        assert!(!q.response);
        assert_eq!(q.opcode, 0);
        assert_eq!(
            q.questions,
            vec![Question {
                name: "example.com".into(),
                qtype: TYPE_A
            }]
        );
        assert!(q.answers.is_empty());
        assert!(!q.is_nodata(), "a query is never NODATA");

        let r = parse_message(&corpus()[1]).unwrap();
        assert!(r.response && !r.tc);
        assert_eq!(r.rcode, 0);
        assert_eq!(rcode_name(r.rcode), "NOERROR");
        assert_eq!(
            r.answers,
            vec![Record {
                name: "example.com".into(),
                rtype: TYPE_A,
                ttl: 300,
                data: RData::A(Ipv4Addr::new(93, 184, 216, 34)),
            }]
        );
        let c = r.chain();
        assert_eq!(c.asked, "example.com");
        assert!(c.cnames.is_empty());
        assert_eq!(c.addresses, vec![("93.184.216.34".parse().unwrap(), 300)]);
        assert!(!r.is_nodata());
        assert!(!r.sinkhole());
    }

    #[test]
    fn aaaa_with_edns() {
        let r = parse_message(&corpus()[2]).unwrap();
        assert_eq!(r.rcode, 0);
        assert_eq!(r.questions[0].qtype, TYPE_AAAA);
        assert_eq!(
            r.answers[0].data,
            RData::Aaaa("2606:2800:220:1::1".parse().unwrap())
        );
        assert_eq!(r.chain().addresses.len(), 1);
        assert!(!r.is_nodata());
    }

    #[test]
    fn privatelink_cname_chain_in_and_out_of_order() {
        for reverse in [false, true] {
            let m = parse_message(&privatelink_chain(reverse)).unwrap();
            let c = m.chain();
            assert_eq!(c.asked, PL_ASKED);
            assert_eq!(c.cnames, vec![PL_1, PL_2, PL_3]);
            let mut addrs = c.addresses.clone();
            addrs.sort();
            assert_eq!(
                addrs,
                vec![
                    ("20.60.1.2".parse().unwrap(), 20),
                    ("20.60.1.3".parse().unwrap(), 20)
                ]
            );
            assert!(c.cnames.iter().any(|n| n.contains(".privatelink.")));
            assert!(!m.is_nodata());
            assert!(!m.sinkhole());
        }
    }

    #[test]
    fn cname_loops_and_forks_are_cut() {
        let m = parse_message(
            &Builder::new(1, resp(0))
                .question("a.example", TYPE_A)
                .answer("b.example", TYPE_CNAME, 1, D::Cname("a.example"))
                .answer("a.example", TYPE_CNAME, 1, D::Cname("b.example"))
                .answer("b.example", TYPE_CNAME, 1, D::Cname("c.example"))
                .answer("c.example", TYPE_CNAME, 1, D::Cname("c.example"))
                .answer("c.example", TYPE_A, 1, D::A([1, 1, 1, 1]))
                .build(),
        )
        .unwrap();
        let c = m.chain();
        // b's first CNAME (back to a) is a loop: the walk stops at b.
        assert_eq!(c.cnames, vec!["b.example"]);
        assert!(c.addresses.is_empty());
        assert!(m.is_nodata(), "no A for a.example or b.example");
        // Without a question the chain starts at the first answer's owner.
        let m = parse_message(
            &Builder::new(1, resp(0))
                .answer("x.example", TYPE_CNAME, 1, D::Cname("y.example"))
                .answer("y.example", TYPE_A, 7, D::A([2, 2, 2, 2]))
                .build(),
        )
        .unwrap();
        let c = m.chain();
        assert_eq!((c.asked.as_str(), c.cnames.len()), ("x.example", 1));
        assert_eq!(c.addresses, vec![("2.2.2.2".parse().unwrap(), 7)]);
        assert!(!m.is_nodata(), "no question: cannot tell");
        let empty = DnsMessage {
            id: 0,
            response: true,
            opcode: 0,
            rcode: 0,
            tc: false,
            questions: vec![],
            answers: vec![],
            partial: None,
        };
        assert_eq!(empty.chain(), Chain::default());
    }

    #[test]
    fn error_rcodes() {
        let c = corpus();
        for (i, code, name) in [(5, 3, "NXDOMAIN"), (6, 5, "REFUSED"), (7, 2, "SERVFAIL")] {
            let m = parse_message(&c[i]).unwrap();
            assert_eq!(m.rcode, code);
            assert_eq!(rcode_name(m.rcode), name);
            assert!(m.answers.is_empty(), "authority records are not answers");
            assert!(!m.is_nodata());
        }
        assert_eq!(rcode_name(1), "FORMERR");
        assert_eq!(rcode_name(4), "NOTIMP");
        assert_eq!(rcode_name(15), "RCODE?");
    }

    #[test]
    fn nodata() {
        let m = parse_message(&corpus()[8]).unwrap();
        assert!(m.is_nodata());
        // A CNAME that leads nowhere.
        let m = parse_message(
            &Builder::new(1, resp(0))
                .question("a.example", TYPE_AAAA)
                .answer("a.example", TYPE_CNAME, 1, D::Cname("b.example"))
                .answer("b.example", TYPE_A, 1, D::A([1, 2, 3, 4]))
                .build(),
        )
        .unwrap();
        assert!(m.is_nodata(), "A but no AAAA at the end of the chain");
        // Asking for the CNAME itself, or ANY, is answered by the CNAME.
        for qtype in [TYPE_CNAME, TYPE_ANY] {
            let m = parse_message(
                &Builder::new(1, resp(0))
                    .question("a.example", qtype)
                    .answer("a.example", TYPE_CNAME, 1, D::Cname("b.example"))
                    .build(),
            )
            .unwrap();
            assert!(!m.is_nodata());
        }
        // A truncated (TC) empty answer is not a NODATA claim, nor is an UPDATE response.
        let tc = Builder::new(1, resp(0) | TC)
            .question("a.example", TYPE_A)
            .build();
        assert!(parse_message(&tc).unwrap().tc);
        assert!(!parse_message(&tc).unwrap().is_nodata());
        let upd = Builder::new(1, resp(0) | (5 << 11))
            .question("example", 6)
            .build();
        let m = parse_message(&upd).unwrap();
        assert_eq!(m.opcode, 5);
        assert!(!m.is_nodata());
    }

    #[test]
    fn sinkholes() {
        let c = corpus();
        assert!(parse_message(&c[9]).unwrap().sinkhole(), "0.0.0.0");
        assert!(parse_message(&c[10]).unwrap().sinkhole(), "::");
        let one = |name: &str, d: D| {
            let t = if matches!(d, D::A(_)) {
                TYPE_A
            } else {
                TYPE_AAAA
            };
            parse_message(
                &Builder::new(1, resp(0))
                    .question(name, t)
                    .answer(name, t, 1, d)
                    .build(),
            )
            .unwrap()
            .sinkhole()
        };
        assert!(one("ads.example", D::A([127, 0, 0, 1])));
        assert!(one("ads.example", D::A([127, 0, 0, 2])));
        assert!(one("ads.example", D::Aaaa("::1")));
        assert!(one("ads.example", D::Aaaa("::ffff:0.0.0.0")));
        assert!(!one("ads.example", D::A([10, 0, 0, 1])));
        assert!(!one("ads.example", D::Aaaa("2001:db8::1")));
        assert!(!one("localhost", D::A([127, 0, 0, 1])));
        assert!(!one("dev.localhost", D::Aaaa("::1")));
        // Answers in a query (mDNS known-answer lists) claim nothing.
        let q = Builder::new(1, QUERY)
            .question("ads.example", TYPE_A)
            .answer("ads.example", TYPE_A, 1, D::A([0, 0, 0, 0]))
            .build();
        assert!(!parse_message(&q).unwrap().sinkhole());
    }

    #[test]
    fn https_and_caa_records_parse() {
        let m = parse_message(&https_mixed()).unwrap();
        assert_eq!(qtype_name(m.questions[0].qtype), "HTTPS");
        let types: Vec<u16> = m.answers.iter().map(|r| r.rtype).collect();
        assert_eq!(types, vec![TYPE_CNAME, 65, 257, TYPE_A, 46]);
        assert_eq!(m.answers[1].data, RData::Other(65));
        assert_eq!(m.answers[2].data, RData::Other(257));
        let c = m.chain();
        assert_eq!(c.cnames, vec!["cdn.example.net"]);
        assert_eq!(c.addresses, vec![("104.16.1.1".parse().unwrap(), 300)]);
        assert!(!m.is_nodata(), "an HTTPS record answers the HTTPS question");
        // Same for queries of these types.
        for t in [64, 65, 257] {
            let q = Builder::new(1, QUERY).question("example.com", t).build();
            assert_eq!(parse_message(&q).unwrap().questions[0].qtype, t);
        }
    }

    #[test]
    fn edns_extended_rcode() {
        let m = parse_message(&corpus()[12]).unwrap();
        assert_eq!(m.rcode, 16);
        assert_eq!(rcode_name(m.rcode), "BADVERS");
        // Extended bits combine with the header's four: 0x01 << 4 | 3 = 19.
        let m = parse_message(
            &Builder::new(1, resp(3))
                .question("example.com", TYPE_A)
                .opt(1)
                .build(),
        )
        .unwrap();
        assert_eq!(m.rcode, 19);
        // Only the first OPT counts.
        let m = parse_message(
            &Builder::new(1, resp(0))
                .question("example.com", TYPE_A)
                .opt(0)
                .opt(1)
                .build(),
        )
        .unwrap();
        assert_eq!(m.rcode, 0);
    }

    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut m = vec![0, 7, 0x81, 0x80];
        m.extend_from_slice(&qd.to_be_bytes());
        m.extend_from_slice(&an.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m
    }

    #[test]
    fn compression_pointer_loops_and_out_of_range() {
        let malformed = |body: &[u8], qd: u16, an: u16| {
            let mut m = header(qd, an);
            m.extend_from_slice(body);
            match parse_message(&m) {
                Err(DnsError::Malformed(_)) => {}
                other => panic!("{body:02x?}: {other:?}"),
            }
        };
        // Pointer to itself.
        malformed(&[0xc0, 12, 0, 1, 0, 1], 1, 0);
        // Two pointers to each other (12 -> 14 -> 12).
        malformed(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1], 1, 0);
        // A label, then a pointer back to that label (a.a.a.a...).
        malformed(&[1, b'a', 0xc0, 12, 0, 1, 0, 1], 1, 0);
        // A valid first question, then a name (at 21) whose pointer goes back into its own
        // run of labels (to 23): backwards from the pointer, but a loop (c.d.d.d...).
        malformed(
            &[
                1, b'a', 1, b'b', 0, 0, 1, 0, 1, 1, b'c', 1, b'd', 0xc0, 23, 0, 1, 0, 1,
            ],
            2,
            0,
        );
        // The same first question, then a legal pointer to its second label.
        let mut ok = header(2, 0);
        ok.extend_from_slice(&[
            1, b'a', 1, b'b', 0, 0, 1, 0, 1, 1, b'c', 0xc0, 14, 0, 1, 0, 1,
        ]);
        assert_eq!(parse_message(&ok).unwrap().questions[1].name, "c.b");
        // Forward, far out of range, and into the header.
        malformed(&[0xc0, 40, 0, 1, 0, 1], 1, 0);
        malformed(&[0xff, 0xff, 0, 1, 0, 1], 1, 0);
        malformed(&[0xc0, 2, 0, 1, 0, 1], 1, 0);
        // Extended (0x40) and reserved (0x80) label types.
        malformed(&[0x41, b'a', 0, 0, 1, 0, 1], 1, 0);
        malformed(&[0x81, b'a', 0, 0, 1, 0, 1], 1, 0);
        // A CNAME whose target runs past its rdata.
        let mut rr = vec![1, b'a', 0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2, 1, b'b', 0];
        rr.extend_from_slice(&[0; 8]);
        malformed(&rr, 0, 1);
    }

    #[test]
    fn name_length_limit() {
        let name = |labels: &[usize]| -> Vec<u8> {
            let mut m = header(1, 0);
            for &l in labels {
                m.push(l as u8);
                m.extend(std::iter::repeat_n(b'x', l));
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            m
        };
        // 3 * 64 + 62 + 1 = 255 octets: the longest legal name.
        let m = parse_message(&name(&[63, 63, 63, 61])).unwrap();
        assert_eq!(m.questions[0].name.len(), 253);
        assert_eq!(
            parse_message(&name(&[63, 63, 63, 62])),
            Err(DnsError::Malformed("name longer than 255 octets"))
        );
        // Names built from many pointers stay bounded too.
        let mut m = header(40, 0);
        m.extend_from_slice(&[63]);
        m.extend(std::iter::repeat_n(b'y', 63));
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut prev = 12u16;
        for _ in 1..40 {
            let here = m.len() as u16;
            m.extend_from_slice(&[63]);
            m.extend(std::iter::repeat_n(b'z', 63));
            m.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 1]);
            prev = here;
        }
        assert!(matches!(parse_message(&m), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn names_are_lowercased_and_escaped() {
        let mut m = header(2, 0);
        m.extend_from_slice(b"\x03A.b\x02\\Z\x04 \xff\x00\x7f\x03COM\x00\x00\x01\x00\x01");
        m.extend_from_slice(b"\x00\x00\x02\x00\x01");
        let msg = parse_message(&m).unwrap();
        assert_eq!(
            msg.questions[0].name,
            "a\\.b.\\\\z.\\032\\255\\000\\127.com"
        );
        assert!(msg.questions[0].name.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(msg.questions[1].name, ".", "the root");
        assert_eq!(msg.questions[1].qtype, 2);
    }

    #[test]
    fn every_truncation_prefix_is_an_error() {
        for m in corpus() {
            assert!(parse_message(&m).is_ok());
            for cut in 0..m.len() {
                assert_eq!(
                    parse_message(&m[..cut]),
                    Err(DnsError::Truncated),
                    "cut at {cut} of {}",
                    m.len()
                );
            }
        }
    }

    #[test]
    fn lenient_keeps_the_header_and_what_parsed() {
        for m in corpus() {
            let whole = parse_message(&m).unwrap();
            assert_eq!(parse_message_lenient(&m).as_ref(), Some(&whole));
            for cut in 0..m.len() {
                let Some(p) = parse_message_lenient(&m[..cut]) else {
                    assert!(cut < HEADER_LEN, "cut at {cut}");
                    continue;
                };
                assert_eq!(p.partial, Some(DnsError::Truncated), "cut at {cut}");
                assert_eq!(
                    (p.id, p.response, p.tc),
                    (whole.id, whole.response, whole.tc)
                );
                // The header's rcode bits survive (an EDNS extended rcode may be cut off).
                assert_eq!(p.rcode & 0x0f, whole.rcode & 0x0f);
                assert!(whole.questions.starts_with(&p.questions));
                assert!(whole.answers.starts_with(&p.answers));
                assert!(!p.is_nodata(), "a cut message is never NODATA");
            }
        }
        // Malformed: an over-long chain of pointers is caught, the header kept.
        let mut m = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 0x00, 0, 1, 0, 1]);
        let p = parse_message_lenient(&m).unwrap();
        assert_eq!(
            p.partial,
            Some(DnsError::Malformed("compression pointer into the header"))
        );
        assert_eq!((p.id, p.rcode, p.response), (0x1234, 3, true));
        assert!(worth_keeping(&p));
        // A query whose question did not parse is not worth keeping; one that did is.
        let q = parse_message_lenient(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a']).unwrap();
        assert!(!worth_keeping(&q));
    }

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut s = Vec::new();
        for m in msgs {
            s.extend_from_slice(&(m.len() as u16).to_be_bytes());
            s.extend_from_slice(m);
        }
        s
    }

    #[test]
    fn tcp_stream_pipelined() {
        let c = corpus();
        let msgs = [c[1].clone(), privatelink_chain(false), https_mixed()];
        let s = framed(&msgs);
        let all = parse_tcp_stream(&s, false);
        assert_eq!(all.messages.len(), 3);
        assert!(!all.truncated && !all.malformed);
        assert_eq!(all.messages[1].chain().cnames.len(), 3);
        assert_eq!(all.messages[2].id, 11);

        let first2 = 2 + msgs[0].len() + 2 + msgs[1].len();
        // Cut in the middle of the third message.
        let cut = parse_tcp_stream(&s[..first2 + 2 + msgs[2].len() / 2], true);
        assert_eq!(cut.messages.len(), 3, "what there is of the third is kept");
        // Of which two are whole: a live connection hands on those only.
        assert_eq!(whole_tcp_messages(&s[..first2 + 2 + msgs[2].len() / 2]), 2);
        assert_eq!(whole_tcp_messages(&s[..first2 + 1]), 2);
        assert_eq!(whole_tcp_messages(&s), 3);
        assert_eq!(whole_tcp_messages(&[]), 0);
        assert_eq!(cut.messages[2].partial, Some(DnsError::Truncated));
        assert_eq!(cut.messages[2].id, 11);
        assert!(cut.truncated && !cut.malformed);
        // Cut inside the third length prefix.
        let cut = parse_tcp_stream(&s[..first2 + 1], true);
        assert_eq!((cut.messages.len(), cut.truncated), (2, true));
        // Cut exactly between messages.
        let cut = parse_tcp_stream(&s[..first2], true);
        assert_eq!((cut.messages.len(), cut.truncated), (2, false));
        // Every cut: messages only grow, never a panic.
        let mut last = 0;
        for i in 0..=s.len() {
            let r = parse_tcp_stream(&s[..i], i < s.len());
            assert!(r.messages.len() >= last);
            assert!(!r.malformed);
            last = r.messages.len();
        }
        assert_eq!(parse_tcp_stream(&[], false), TcpDns::default());
    }

    #[test]
    fn tcp_stream_malformed_stops() {
        let c = corpus();
        let mut s = framed(&[c[1].clone()]);
        s.extend_from_slice(&[0, 5, 1, 2, 3, 4, 5]);
        s.extend_from_slice(&framed(&[c[2].clone()]));
        let r = parse_tcp_stream(&s, false);
        assert_eq!(
            r.messages.len(),
            1,
            "five bytes are no header: nothing kept"
        );
        assert!(r.malformed && !r.truncated);
        // A zero-length message is malformed too.
        let r = parse_tcp_stream(&[0, 0], false);
        assert!(r.malformed && r.messages.is_empty());
        // A message shorter than its counts claim, inside a complete frame.
        let r = parse_tcp_stream(&framed(&[c[1][..c[1].len() - 1].to_vec()]), false);
        assert!(r.malformed);
    }

    #[test]
    fn type_names() {
        for (t, n) in [
            (1, "A"),
            (28, "AAAA"),
            (5, "CNAME"),
            (64, "SVCB"),
            (65, "HTTPS"),
            (257, "CAA"),
            (15, "MX"),
            (16, "TXT"),
            (12, "PTR"),
            (2, "NS"),
            (6, "SOA"),
            (33, "SRV"),
            (255, "ANY"),
            (249, "TKEY"),
            (250, "TSIG"),
            (30, "NXT"),
            (123, "TYPE123"),
            (65535, "TYPE65535"),
        ] {
            assert_eq!(qtype_name(t), n);
        }
        assert_eq!(DnsError::Truncated.to_string(), "truncated DNS message");
        assert_eq!(
            DnsError::Malformed("x").to_string(),
            "malformed DNS message: x"
        );
    }

    #[test]
    fn serializes() {
        let m = parse_message(&corpus()[1]).unwrap();
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["answers"][0]["data"]["type"], "A");
        assert_eq!(v["answers"][0]["data"]["value"], "93.184.216.34");
        let v = serde_json::to_value(parse_message(&https_mixed()).unwrap()).unwrap();
        assert_eq!(v["answers"][0]["data"]["type"], "Cname");
        assert_eq!(v["answers"][1]["data"]["value"], 65);
    }

    fn check_invariants(m: &DnsMessage) {
        for n in m
            .questions
            .iter()
            .map(|q| &q.name)
            .chain(m.answers.iter().map(|r| &r.name))
        {
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
                "{n:?}"
            );
        }
        let c = m.chain();
        assert!(c.cnames.len() <= m.answers.len());
        let _ = (m.is_nodata(), m.sinkhole(), rcode_name(m.rcode));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift::new(0xd45);
        for _ in 0..20_000 {
            let n = rng.below(300);
            let mut b = rng.bytes(n);
            // Make the counts small often, so the sections get read.
            if n >= 12 && rng.below(2) == 0 {
                for pair in b[4..12].chunks_mut(2) {
                    pair[0] = 0;
                    pair[1] %= 4;
                }
            }
            let strict = parse_message(&b);
            if let Ok(m) = &strict {
                check_invariants(m);
            }
            // The lenient reader never panics, keeps the header of anything 12 bytes or longer,
            // agrees with the strict one on what it accepts, and flags the rest.
            let lenient = parse_message_lenient(&b);
            assert_eq!(lenient.is_some(), n >= HEADER_LEN);
            if let Some(l) = &lenient {
                check_invariants(l);
                match &strict {
                    Ok(m) => assert_eq!(l, m),
                    Err(e) => assert_eq!(l.partial, Some(*e)),
                }
            }
            let t = parse_tcp_stream(&b, false);
            t.messages.iter().for_each(check_invariants);
        }
    }

    /// Mutated valid messages: no panic, and wherever simple-dns also accepts the message, both
    /// readers agree on the header, the questions and the answers.
    #[test]
    fn mutations_agree_with_simple_dns() {
        let base = corpus();
        let mut rng = XorShift::new(7);
        let (mut both, mut ours_only, mut theirs_only) = (0, 0, 0);
        for round in 0..30_000 {
            let mut m = base[round % base.len()].clone();
            if round >= base.len() {
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(m.len());
                    m[i] = match rng.below(4) {
                        0 => 0xc0,
                        1 => (rng.below(m.len()) as u8) & 0x3f,
                        _ => rng.next_u64() as u8,
                    };
                }
                if rng.below(4) == 0 {
                    m.truncate(rng.below(m.len() + 1));
                }
            }
            let ours = parse_message(&m);
            if let Ok(o) = &ours {
                check_invariants(o);
            }
            let theirs = simple_dns::Packet::parse(&m);
            match (&ours, &theirs) {
                (Ok(o), Ok(t)) => {
                    both += 1;
                    agree(o, t);
                }
                (Ok(_), Err(_)) => ours_only += 1,
                // Only pointers into the header, which simple-dns follows and we refuse.
                (Err(e), Ok(_)) => {
                    assert_eq!(
                        *e,
                        DnsError::Malformed("compression pointer into the header")
                    );
                    theirs_only += 1;
                }
                _ => {}
            }
            assert!(round >= base.len() || (ours.is_ok() && theirs.is_ok()));
        }
        assert!(both > 1000, "{both} {ours_only} {theirs_only}");
    }

    fn their_name(n: &simple_dns::Name) -> String {
        let mut s = String::new();
        for l in n.get_labels() {
            if !s.is_empty() {
                s.push('.');
            }
            push_label(&mut s, l.as_ref());
        }
        if s.is_empty() {
            s.push('.');
        }
        s
    }

    fn agree(o: &DnsMessage, t: &simple_dns::Packet) {
        use simple_dns::rdata::RData as T;
        assert_eq!(o.id, t.id());
        assert_eq!(o.response, t.has_flags(simple_dns::PacketFlag::RESPONSE));
        assert_eq!(o.tc, t.has_flags(simple_dns::PacketFlag::TRUNCATION));
        // simple-dns 0.13 reads EDNS0's extended rcode from the low byte of the OPT TTL
        // instead of the high byte (RFC 6891 6.1.3): compare only messages without OPT.
        if t.opt().is_none() && t.rcode() != simple_dns::RCODE::Reserved {
            assert_eq!(o.rcode, t.rcode() as u16);
        }
        assert_eq!(o.questions.len(), t.questions.len());
        for (q, tq) in o.questions.iter().zip(&t.questions) {
            assert_eq!(q.name, their_name(&tq.qname));
            assert_eq!(q.qtype, u16::from(tq.qtype));
        }
        assert_eq!(o.answers.len(), t.answers.len());
        for (r, tr) in o.answers.iter().zip(&t.answers) {
            assert_eq!(r.name, their_name(&tr.name));
            assert_eq!(r.ttl, tr.ttl);
            assert_eq!(r.rtype, u16::from(tr.rdata.type_code()));
            match (&r.data, &tr.rdata) {
                (RData::A(a), T::A(ta)) => assert_eq!(*a, Ipv4Addr::from(ta.address)),
                (RData::Aaaa(a), T::AAAA(ta)) => assert_eq!(*a, Ipv6Addr::from(ta.address)),
                (RData::Cname(c), T::CNAME(tc)) => assert_eq!(*c, their_name(&tc.0)),
                (RData::Other(_), _) => {}
                (d, td) => panic!("{d:?} vs {td:?}"),
            }
        }
    }
}

//! IP and transport layers.
//!
//! IPv4 goes through etherparse's `LaxIpv4Slice` (header checks, total-length handling
//! that falls back to the captured bytes, AH). IPv6 uses `LaxIpv6Slice` for the fixed
//! header and its payload-length handling, but the extension-header chain is walked here:
//! etherparse keeps walking *past* a Fragment header into the data of a non-first fragment,
//! and iterating the extensions of a lax slice that stopped on a cut header reads out of
//! bounds (its iterator uses unchecked reads), so neither its walk nor its iterator is used.
//! TCP/UDP use etherparse's header slices; ICMP headers and the 4 port bytes of a quoted
//! packet are read by hand.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{err, LaxIpv4Slice, LaxIpv6Slice, LenSource, TcpHeaderSlice, UdpHeaderSlice};

use super::{ipproto, Fragment, Icmp, IcmpError, IpHeader, Quoted, Tcp, Udp, L4};
use crate::wire::{array, be16, be32};

/// Field offsets of the IPv4 header (RFC 791 section 3.1).
mod ipv4_field {
    use crate::wire::Field;
    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, in 8-byte units).
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    /// Length of the header without options.
    pub const FIXED_LEN: usize = 20;
}

/// Field offsets of the IPv6 header (RFC 8200 section 3).
pub(super) mod ipv6_field {
    use crate::wire::Field;
    /// Version (high nibble), traffic class and flow label.
    pub const VER_TC_FL: usize = 0;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
    pub const FIXED_LEN: usize = 40;
}

/// Field offsets of the TCP header (RFC 9293 section 3.1).
mod tcp_field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset: the header length in 32-bit words (high nibble).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    /// Length of the header without options.
    pub const FIXED_LEN: usize = 20;
}

/// Field offsets of the UDP header (RFC 768), and of the ports that start the header of every
/// transport with ports (TCP, DCCP, SCTP, UDP-Lite too).
pub(super) mod udp_field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const PAYLOAD: usize = 8;
}

/// Field offsets of an IPv6 extension header (RFC 8200 section 4; AH, RFC 4302, starts the
/// same way), and of the rest of a Fragment header.
mod ext_field {
    use crate::wire::Field;
    pub const NEXT_HEADER: usize = 0;
    /// The header's length, in 8-byte units not counting the first (in 4-byte units not
    /// counting the first two for AH).
    pub const LEN: usize = 1;
    /// Fragment header: the offset (13 bits, in 8-byte units), 2 reserved bits, the M flag.
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
    pub const FRAGMENT_LEN: usize = 8;
}

/// The common header of the ICMP and ICMPv6 messages read here (RFC 792, RFC 4443).
mod icmp_field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    /// The identifier of an echo request or reply.
    pub const ECHO_ID: Field = 4..6;
    /// Every message has at least these bytes; an error quotes the invoking packet after them.
    pub const HEADER_LEN: usize = 8;
}

/// IPv6 extension header numbers walked here.
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;

/// Largest datagram payload an IP length field can describe.
pub(super) const MAX_DATAGRAM: u32 = 65535;

/// The IP layer of a packet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Net<'a> {
    pub ip: IpHeader,
    /// The capture ended before the IP header's declared length, or an extension header
    /// did not fit in the bytes there are.
    pub truncated: bool,
    pub body: Body<'a>,
}

/// What follows the IP headers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Body<'a> {
    /// Transport bytes (captured, bounded by the declared length); protocol in `ip.proto`.
    Transport(&'a [u8]),
    /// A fragment of a larger datagram.
    Fragment(Fragment<'a>),
    /// An extension header was cut or inconsistent; `ip.proto` is the header it stopped at.
    Cut,
}

#[inline]
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parse an IP packet whose version the caller does not know (first nibble decides).
pub(super) fn any(data: &[u8]) -> Result<Net<'_>, &'static str> {
    match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data),
        Some(6) => ipv6(data),
        Some(_) => Err("not an IPv4/IPv6 header"),
        None => Err("IP header cut"),
    }
}

/// Parse an IPv4 packet.
pub(super) fn ipv4(data: &[u8]) -> Result<Net<'_>, &'static str> {
    match ipv4_plain(data) {
        Some(net) => Ok(net),
        None => ipv4_lax(data),
    }
}

/// The fixed 20 bytes of an IPv4 header, read by hand.
pub(super) struct V4Fixed {
    /// Header length in 32-bit words.
    pub ihl: u8,
    /// Total length the header declares.
    pub total: usize,
    /// More-fragments flag or a fragment offset: a fragment.
    pub fragment: bool,
    pub ttl: u8,
    pub id: u16,
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// The fixed part of the IPv4 header `data` starts with; `None` when fewer than 20 bytes or
/// the version is not 4. Nothing else is checked.
#[inline]
pub(super) fn v4_fixed(data: &[u8]) -> Option<V4Fixed> {
    use ipv4_field as f;
    let h: &[u8; f::FIXED_LEN] = data.get(..f::FIXED_LEN)?.try_into().ok()?;
    if h[f::VER_IHL] >> 4 != 4 {
        return None;
    }
    Some(V4Fixed {
        ihl: h[f::VER_IHL] & 0x0f,
        total: usize::from(be16(h, f::TOTAL_LEN)?),
        fragment: be16(h, f::FLG_OFF)? & 0x3fff != 0,
        ttl: h[f::TTL],
        id: be16(h, f::IDENT)?,
        proto: h[f::PROTOCOL],
        src: IpAddr::V4(Ipv4Addr::from(array(h, f::SRC_ADDR)?)),
        dst: IpAddr::V4(Ipv4Addr::from(array(h, f::DST_ADDR)?)),
    })
}

/// The usual IPv4 packet, read straight from its fixed header: no options, a declared length
/// the capture holds whole, not a fragment, not AH. `None` for anything else, which
/// [`ipv4_lax`] reads; where this gives an answer, it is the same as that one's.
#[inline]
fn ipv4_plain(data: &[u8]) -> Option<Net<'_>> {
    let h = v4_fixed(data)?;
    const FIXED: usize = ipv4_field::FIXED_LEN;
    if h.ihl != 5 || h.total < FIXED || h.fragment || h.proto == AUTH {
        return None;
    }
    let body = data.get(FIXED..h.total)?;
    Some(Net {
        ip: IpHeader {
            src: h.src,
            dst: h.dst,
            ttl: h.ttl,
            ip_id: Some(h.id),
            proto: h.proto,
            payload_len: len32(h.total - FIXED),
            tunnel: 0,
        },
        truncated: false,
        body: Body::Transport(body),
    })
}

/// Any IPv4 packet, through etherparse's lax reading.
fn ipv4_lax(data: &[u8]) -> Result<Net<'_>, &'static str> {
    let (slice, auth_err) = LaxIpv4Slice::from_slice(data).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(_) => "IPv4 header cut",
        err::ipv4::HeaderSliceError::Content(_) => "bad IPv4 header",
    })?;
    let h = slice.header();
    let hl = h.slice().len();
    let total = usize::from(h.total_len());
    // etherparse falls back to the captured length when total_len is smaller than the
    // header (seen with TSO on the sending host, where it is 0); so do we.
    let (declared, end) = if total >= hl {
        (total - hl, total.min(data.len()))
    } else {
        (data.len().saturating_sub(hl), data.len())
    };
    let declared = len32(declared);
    let payload = slice.payload();
    let truncated = payload.incomplete;
    let src = IpAddr::V4(h.source_addr());
    let dst = IpAddr::V4(h.destination_addr());
    let raw_proto = h.protocol().0;
    let mut ip = IpHeader {
        src,
        dst,
        ttl: h.ttl(),
        ip_id: Some(h.identification()),
        proto: raw_proto,
        payload_len: declared,
        tunnel: 0,
    };

    let offset = u32::from(h.fragments_offset().byte_offset());
    if h.more_fragments() || offset != 0 {
        // The fragment data starts right after the IPv4 header: an AH header (which
        // etherparse would strip from the first fragment) belongs to the datagram.
        let frag_data = data.get(hl..end).unwrap_or_default();
        return Ok(Net {
            ip,
            truncated,
            body: Body::Fragment(Fragment {
                id: u32::from(h.identification()),
                proto: raw_proto,
                offset,
                more_fragments: h.more_fragments(),
                data: frag_data,
                data_len: declared,
            }),
        });
    }

    if let Some(e) = auth_err {
        ip.proto = AUTH;
        return Ok(Net {
            ip,
            truncated: truncated || matches!(e, err::ip_auth::HeaderSliceError::Len(_)),
            body: Body::Cut,
        });
    }
    let ext_len = slice
        .extensions()
        .auth
        .map(|a| a.slice().len())
        .unwrap_or(0);
    ip.proto = payload.ip_number.0;
    ip.payload_len = declared.saturating_sub(len32(ext_len));
    Ok(Net {
        ip,
        truncated,
        body: Body::Transport(payload.payload),
    })
}

/// Parse an IPv6 packet, walking its extension headers.
pub(super) fn ipv6(data: &[u8]) -> Result<Net<'_>, &'static str> {
    let (slice, _ext_err) = LaxIpv6Slice::from_slice(data).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(_) => "IPv6 header cut",
        err::ipv6::HeaderSliceError::Content(_) => "bad IPv6 header",
    })?;
    let h = slice.header();
    let payload = slice.payload();
    // etherparse's extension slice and payload are contiguous after the fixed header, so
    // together they are the IP payload as bounded by payload_length (or the capture).
    let ip_payload_len = slice.extensions().slice().len() + payload.payload.len();
    let ip_payload = data
        .get(ipv6_field::FIXED_LEN..ipv6_field::FIXED_LEN + ip_payload_len)
        .unwrap_or_default();
    let truncated = payload.incomplete;
    let declared = if payload.incomplete || payload.len_source != LenSource::Slice {
        u32::from(h.payload_length())
    } else {
        // payload_length 0 (jumbogram / unset by offload): the captured bytes are all.
        len32(ip_payload.len())
    };
    let src = IpAddr::V6(h.source_addr());
    let dst = IpAddr::V6(h.destination_addr());
    let mut ip = IpHeader {
        src,
        dst,
        ttl: h.hop_limit(),
        ip_id: None,
        proto: h.next_header().0,
        payload_len: declared,
        tunnel: 0,
    };
    let (ext, after) = walk_v6(h.next_header().0, ip_payload);
    let rest = ip_payload.get(after..).unwrap_or_default();
    let left = declared.saturating_sub(len32(after));
    let body = match ext {
        Ext::Transport(proto) => {
            ip.proto = proto;
            ip.payload_len = left;
            Body::Transport(rest)
        }
        Ext::Cut(proto) => {
            ip.proto = proto;
            ip.payload_len = left;
            return Ok(Net {
                ip,
                truncated: true,
                body: Body::Cut,
            });
        }
        Ext::Fragment {
            next,
            offset,
            more,
            id,
        } => {
            ip.proto = next;
            ip.payload_len = left;
            Body::Fragment(Fragment {
                id,
                proto: next,
                offset,
                more_fragments: more,
                data: rest,
                data_len: left,
            })
        }
    };
    Ok(Net {
        ip,
        truncated,
        body,
    })
}

/// Where an IPv6 extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// A non-extension protocol number: the transport starts here.
    Transport(u8),
    /// This extension header did not fit.
    Cut(u8),
    /// A Fragment header that fragments (not atomic); data follows it.
    Fragment {
        next: u8,
        offset: u32,
        more: bool,
        id: u32,
    },
}

/// Walk IPv6 extension headers starting with header number `next` at the start of `buf`;
/// returns where the walk ended and the byte offset of what follows.
fn walk_v6(mut next: u8, buf: &[u8]) -> (Ext, usize) {
    use ext_field as f;
    let mut at = 0usize;
    loop {
        // `at` never passes the end: it moves only past a header that fits.
        let h = buf.get(at..).unwrap_or_default();
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS => h.get(f::LEN).map(|&l| (usize::from(l) + 1) * 8),
            AUTH => h.get(f::LEN).map(|&l| (usize::from(l) + 2) * 4),
            FRAGMENT => Some(f::FRAGMENT_LEN),
            other => return (Ext::Transport(other), at),
        };
        let (Some(len), Some(&following)) = (len, h.get(f::NEXT_HEADER)) else {
            return (Ext::Cut(next), at);
        };
        if h.len() < len {
            return (Ext::Cut(next), at);
        }
        if next == FRAGMENT {
            let (Some(off_flags), Some(id)) = (be16(h, f::FRAG_OFF_M), be32(h, f::FRAG_IDENT))
            else {
                return (Ext::Cut(next), at);
            };
            let offset = u32::from(off_flags >> 3) * 8;
            let more = off_flags & 1 == 1;
            at += len;
            if offset != 0 || more {
                return (
                    Ext::Fragment {
                        next: following,
                        offset,
                        more,
                        id,
                    },
                    at,
                );
            }
            // An atomic fragment (offset 0, M=0) is a whole datagram: keep walking.
        } else {
            at += len;
        }
        next = following;
    }
}

/// Decode the transport layer of a reassembled (or otherwise whole) IP payload.
pub(super) fn transport_of(ip: IpHeader, payload: &[u8]) -> (L4<'_>, bool) {
    let declared = ip.payload_len;
    let payload = payload
        .get(..usize::try_from(declared).unwrap_or(usize::MAX))
        .unwrap_or(payload);
    let short = len32(payload.len()) < declared;
    if ip.src.is_ipv6() && is_v6_ext(ip.proto) {
        let (ext, after) = walk_v6(ip.proto, payload);
        let rest = payload.get(after..).unwrap_or_default();
        let left = declared.saturating_sub(len32(after));
        return match ext {
            Ext::Transport(proto) => {
                let (l4, cut) = transport(proto, rest, left);
                (l4, short || cut)
            }
            Ext::Cut(proto) => (L4::Other { proto }, true),
            // A second fragmentation level is not something we reassemble.
            Ext::Fragment { .. } => (L4::Other { proto: FRAGMENT }, short),
        };
    }
    let (l4, cut) = transport(ip.proto, payload, declared);
    (l4, short || cut)
}

fn is_v6_ext(proto: u8) -> bool {
    matches!(proto, HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS)
}

/// Decode a transport header. `data` is the captured transport bytes (already bounded by
/// the IP-declared length), `declared` the IP-declared transport length. The flag is true
/// when the transport header did not fit in `data`.
pub(super) fn transport(proto: u8, data: &[u8], declared: u32) -> (L4<'_>, bool) {
    match proto {
        ipproto::TCP => tcp(data, declared),
        ipproto::UDP => udp(data, declared),
        ipproto::ICMP | ipproto::ICMPV6 => icmp(proto == ipproto::ICMPV6, data),
        other => (L4::Other { proto: other }, false),
    }
}

fn tcp(data: &[u8], declared: u32) -> (L4<'_>, bool) {
    match TcpHeaderSlice::from_slice(data) {
        Ok(h) => {
            let hl = h.slice().len();
            (
                L4::Tcp(Tcp {
                    src_port: h.source_port(),
                    dst_port: h.destination_port(),
                    seq: h.sequence_number(),
                    ack: h.acknowledgment_number(),
                    flags: h.slice().get(tcp_field::FLAGS).copied().unwrap_or(0),
                    window: h.window_size(),
                    payload: data.get(hl..).unwrap_or_default(),
                    payload_len: declared.saturating_sub(len32(hl)),
                }),
                false,
            )
        }
        // The fixed 20 bytes are there but the options are cut (small snap length, e.g. a
        // SYN's options past 68 bytes): etherparse refuses the header, but ports, sequence
        // numbers and flags are known, so report them with no payload.
        Err(err::tcp::HeaderSliceError::Len(_)) => match fixed_tcp(data) {
            Some(mut t) => {
                let hl = data
                    .get(tcp_field::DATA_OFF)
                    .map_or(tcp_field::FIXED_LEN, |b| usize::from(b >> 4) * 4);
                t.payload_len = declared.saturating_sub(len32(hl));
                (L4::Tcp(t), true)
            }
            None => (
                L4::Other {
                    proto: ipproto::TCP,
                },
                true,
            ),
        },
        // Data offset below 5 words: malformed, not cut.
        Err(err::tcp::HeaderSliceError::Content(_)) => (
            L4::Other {
                proto: ipproto::TCP,
            },
            false,
        ),
    }
}

/// Read the fixed 20-byte TCP header by hand.
fn fixed_tcp(data: &[u8]) -> Option<Tcp<'static>> {
    use tcp_field as f;
    let h = data.get(..f::FIXED_LEN)?;
    Some(Tcp {
        src_port: be16(h, f::SRC_PORT)?,
        dst_port: be16(h, f::DST_PORT)?,
        seq: be32(h, f::SEQ_NUM)?,
        ack: be32(h, f::ACK_NUM)?,
        flags: *h.get(f::FLAGS)?,
        window: be16(h, f::WIN_SIZE)?,
        payload: &[],
        payload_len: 0,
    })
}

fn udp(data: &[u8], declared: u32) -> (L4<'_>, bool) {
    match UdpHeaderSlice::from_slice(data) {
        Ok(h) => {
            let field = u32::from(h.length());
            // The UDP length bounds the datagram unless it is unset (0, e.g. jumbograms or
            // offload) or nonsense (< 8); the IP length bounds it in any case.
            let end = if field >= 8 {
                field.min(declared)
            } else {
                declared
            };
            let end_usize = usize::try_from(end).unwrap_or(usize::MAX).min(data.len());
            (
                L4::Udp(Udp {
                    src_port: h.source_port(),
                    dst_port: h.destination_port(),
                    payload: data.get(udp_field::PAYLOAD..end_usize).unwrap_or_default(),
                    payload_len: end.saturating_sub(udp_field::PAYLOAD as u32),
                }),
                false,
            )
        }
        Err(_) => (
            L4::Other {
                proto: ipproto::UDP,
            },
            true,
        ),
    }
}

fn icmp(v6: bool, data: &[u8]) -> (L4<'_>, bool) {
    let proto = if v6 { ipproto::ICMPV6 } else { ipproto::ICMP };
    let (Some(&icmp_type), Some(&code)) = (data.get(icmp_field::TYPE), data.get(icmp_field::CODE))
    else {
        return (L4::Other { proto }, true);
    };
    let cut = data.len() < icmp_field::HEADER_LEN;
    let is_error = if v6 {
        matches!(icmp_type, 1..=4)
    } else {
        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
    };
    if is_error {
        let quoted = data.get(icmp_field::HEADER_LEN..).and_then(quote);
        return (
            L4::IcmpError(IcmpError {
                v6,
                icmp_type,
                code,
                quoted,
            }),
            cut,
        );
    }
    let is_echo = if v6 {
        matches!(icmp_type, 128 | 129)
    } else {
        matches!(icmp_type, 0 | 8)
    };
    let echo_id = if is_echo {
        be16(data, icmp_field::ECHO_ID)
    } else {
        None
    };
    (
        L4::Icmp(Icmp {
            v6,
            icmp_type,
            code,
            echo_id,
        }),
        cut,
    )
}

/// Protocols whose header starts with 16-bit source and destination ports.
fn has_ports(proto: u8) -> bool {
    // TCP, UDP, DCCP, SCTP, UDP-Lite.
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// The 5-tuple of a packet quoted in an ICMP error (usually cut: only the IP header and 8
/// bytes of transport are guaranteed; 4 are needed).
fn quote(data: &[u8]) -> Option<Quoted> {
    let net = any(data).ok()?;
    let (proto, transport) = match net.body {
        Body::Transport(t) => (net.ip.proto, t),
        // Only the first fragment starts with the transport header.
        Body::Fragment(f) if f.offset == 0 => (f.proto, f.data),
        _ => return None,
    };
    if !has_ports(proto) {
        return None;
    }
    Some(Quoted {
        proto,
        src: net.ip.src,
        dst: net.ip.dst,
        src_port: be16(transport, udp_field::SRC_PORT)?,
        dst_port: be16(transport, udp_field::DST_PORT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil as b;
    use super::super::testutil::{frag_ext, opts_ext, V4_A, V4_B};
    use super::*;

    /// An authentication header of 24 bytes (12-byte ICV).
    fn ah(next: u8) -> Vec<u8> {
        let mut v = vec![next, 4, 0, 0];
        v.extend_from_slice(&[0, 0, 1, 0]); // SPI
        v.extend_from_slice(&[0, 0, 0, 1]); // sequence
        v.extend_from_slice(&[0xaa; 12]); // ICV
        v
    }

    #[test]
    fn plain_ipv4_reads_as_etherparse_does() {
        let mut rng = crate::rng::XorShift::new(0x1234_5678_9abc_def1);
        let mut next = || rng.next_u64();
        let mut taken = 0;
        for i in 0..50_000 {
            let len = (next() % 90) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Mostly headers the fast path may take, with lengths around the captured one,
            // fragments, AH and options now and then.
            if d.len() >= 20 && i % 8 != 0 {
                d[0] = 0x45;
                let total = (d.len() as i64 + (next() % 9) as i64 - 4).max(0) as u16;
                d[2..4].copy_from_slice(&total.to_be_bytes());
                if i % 3 != 0 {
                    d[6] &= 0xc0;
                    d[7] = 0;
                }
                if i % 5 == 0 {
                    d[9] = AUTH;
                }
            }
            let Some(fast) = ipv4_plain(&d) else {
                continue;
            };
            taken += 1;
            let lax = ipv4_lax(&d).expect("the fast path took a header etherparse rejects");
            assert_eq!(format!("{fast:?}"), format!("{lax:?}"), "{d:02x?}");
        }
        assert!(taken > 5_000, "{taken}");
    }

    #[test]
    fn walk_stops_at_transport_fragment_or_cut() {
        let mut chain = opts_ext(43, 0);
        chain.extend(opts_ext(6, 2));
        assert_eq!(walk_v6(0, &chain), (Ext::Transport(6), 32));
        assert_eq!(walk_v6(17, &chain), (Ext::Transport(17), 0));
        assert_eq!(walk_v6(0, &chain[..31]), (Ext::Cut(43), 8));
        assert_eq!(walk_v6(0, &chain[..8]), (Ext::Cut(43), 8));
        let f = frag_ext(60, 16, false, 3);
        let want = Ext::Fragment {
            next: 60,
            offset: 16,
            more: false,
            id: 3,
        };
        assert_eq!(walk_v6(44, &f), (want, 8));
        assert_eq!(walk_v6(44, &f[..7]), (Ext::Cut(44), 0));
        // Atomic fragment then AH then UDP.
        let mut chain = frag_ext(51, 0, false, 1);
        chain.extend(ah(17));
        assert_eq!(walk_v6(44, &chain), (Ext::Transport(17), 32));
    }

    #[test]
    fn authentication_header_before_tcp() {
        let mut body = ah(6);
        body.extend(b::tcp(1, 2, 0x10, b"xyz"));
        let f4 = b::ipv4(51, &body);
        let p = super::super::decode(101, &f4).unwrap();
        assert_eq!(p.ip.proto, 6);
        assert_eq!(p.ip.payload_len, 23);
        assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"xyz"));
        let f6 = b::ipv6(51, &body);
        let p = super::super::decode(101, &f6).unwrap();
        assert_eq!(p.ip.proto, 6);
        assert_eq!(p.ip.payload_len, 23);
        assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"xyz"));
        // AH cut in IPv4.
        let p = super::super::decode(101, &f4[..30]).unwrap();
        assert!(p.truncated);
        assert!(matches!(p.l4, L4::Other { proto: 51 }));
    }

    #[test]
    fn transport_of_bounds_payload_by_declared_length() {
        let seg = b::udp(7, 9, b"abcdef");
        let ip = IpHeader {
            src: IpAddr::V4(V4_A),
            dst: IpAddr::V4(V4_B),
            ttl: 1,
            ip_id: Some(1),
            proto: 17,
            payload_len: 12,
            tunnel: 0,
        };
        let (l4, short) = transport_of(ip, &seg);
        assert!(!short);
        assert!(matches!(l4, L4::Udp(u) if u.payload == b"abcd" && u.payload_len == 4));
        let (_, short) = transport_of(
            IpHeader {
                payload_len: 40,
                ..ip
            },
            &seg,
        );
        assert!(short);
    }
}

//! Builders of hand-made frames for the decode tests.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

pub const V4_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const V4_B: Ipv4Addr = Ipv4Addr::new(20, 0, 0, 2);
pub const V6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const V6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Ethernet II header + payload.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[&MAC_B, &MAC_A, &ethertype.to_be_bytes(), payload])
}

/// Ethernet II with VLAN tags `(tpid, vlan id)`, outermost first.
pub fn eth_vlans(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = cat(&[&MAC_B, &MAC_A]);
    for &(tpid, id) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        // PCP 5 in the top bits, which must be masked off.
        v.extend_from_slice(&((5u16 << 13) | id).to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Linux SLL (v1) header + payload.
pub fn sll(packet_type: u16, arphrd: u16, protocol: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &packet_type.to_be_bytes(),
        &arphrd.to_be_bytes(),
        &0u16.to_be_bytes(), // address length (loopback: 0)
        &[0u8; 8],
        &protocol.to_be_bytes(),
        payload,
    ])
}

/// Linux SLL2 header + payload.
pub fn sll2(protocol: u16, arphrd: u16, packet_type: u8, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &protocol.to_be_bytes(),
        &[0, 0],
        &3u32.to_be_bytes(), // interface index
        &arphrd.to_be_bytes(),
        &[packet_type, 6],
        &MAC_A,
        &[0, 0],
        payload,
    ])
}

/// BSD null/loop header with the family in little-endian (host order on x86).
pub fn null_le(af: u32, payload: &[u8]) -> Vec<u8> {
    cat(&[&af.to_le_bytes(), payload])
}

/// BSD null/loop header with the family in network order.
pub fn null_be(af: u32, payload: &[u8]) -> Vec<u8> {
    cat(&[&af.to_be_bytes(), payload])
}

/// IPv4 header fields.
#[derive(Clone)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    pub mf: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_off: u16,
    pub options: Vec<u8>,
    /// Total length override (else computed).
    pub total_len: Option<u16>,
}

impl V4 {
    pub fn new(proto: u8) -> Self {
        V4 {
            src: V4_A,
            dst: V4_B,
            proto,
            ttl: 64,
            id: 0x1234,
            mf: false,
            frag_off: 0,
            options: Vec::new(),
            total_len: None,
        }
    }

    pub fn frag(mut self, offset: u16, mf: bool) -> Self {
        self.frag_off = offset;
        self.mf = mf;
        self
    }

    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0);
        let hl = 20 + self.options.len();
        let total = self
            .total_len
            .unwrap_or(u16::try_from(hl + payload.len()).unwrap());
        let flags_off = (u16::from(self.mf) << 13) | (self.frag_off / 8);
        let mut h = Vec::with_capacity(hl + payload.len());
        h.push(0x40 | (hl / 4) as u8);
        h.push(0);
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&flags_off.to_be_bytes());
        h.push(self.ttl);
        h.push(self.proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let mut sum = 0u32;
        for c in h.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let ck = !(sum as u16);
        h[10..12].copy_from_slice(&ck.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

/// IPv4 packet with default fields.
pub fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    V4::new(proto).build(payload)
}

/// IPv6 header: `next` is the first next-header value, `rest` the extension headers and
/// payload; payload length computed unless `payload_len` is given.
pub fn ipv6_with(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    rest: &[u8],
    payload_len: Option<u16>,
) -> Vec<u8> {
    let pl = payload_len.unwrap_or(u16::try_from(rest.len()).unwrap());
    cat(&[
        &[0x60, 0, 0, 0],
        &pl.to_be_bytes(),
        &[next, 57],
        &src.octets(),
        &dst.octets(),
        rest,
    ])
}

/// IPv6 packet between V6_A and V6_B.
pub fn ipv6(next: u8, rest: &[u8]) -> Vec<u8> {
    ipv6_with(V6_A, V6_B, next, rest, None)
}

/// A hop-by-hop / destination-options / routing header of `8 * (1 + units)` bytes (PadN).
pub fn opts_ext(next: u8, units: u8) -> Vec<u8> {
    let len = 8 * (usize::from(units) + 1);
    let mut v = vec![next, units, 1, (len - 4) as u8];
    v.resize(len, 0);
    v
}

/// IPv6 Fragment extension header.
pub fn frag_ext(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let of = (offset / 8) << 3 | u16::from(more);
    cat(&[&[next, 0], &of.to_be_bytes(), &id.to_be_bytes()])
}

/// TCP segment.
#[allow(clippy::too_many_arguments)]
pub fn tcp_full(
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let doff = ((20 + options.len()) / 4) as u8;
    cat(&[
        &sp.to_be_bytes(),
        &dp.to_be_bytes(),
        &seq.to_be_bytes(),
        &ack.to_be_bytes(),
        &[doff << 4, flags],
        &window.to_be_bytes(),
        &[0, 0, 0, 0],
        options,
        payload,
    ])
}

/// TCP segment with common values.
pub fn tcp(sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_full(sp, dp, 1000, 2000, flags, 65535, &[], payload)
}

/// Typical SYN options: MSS, SACK permitted, timestamps, NOP, window scale (20 bytes).
pub fn syn_options() -> Vec<u8> {
    vec![
        2, 4, 0x05, 0xb4, // MSS 1460
        4, 2, // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
        1, // NOP
        3, 3, 7, // window scale 7
    ]
}

/// UDP datagram (length field computed).
pub fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap();
    udp_len(sp, dp, len, payload)
}

/// UDP datagram with an explicit length field.
pub fn udp_len(sp: u16, dp: u16, len: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &sp.to_be_bytes(),
        &dp.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ])
}

/// ICMP/ICMPv6 message: type, code, checksum 0, 4 bytes of `rest_of_header`, body.
pub fn icmp(icmp_type: u8, code: u8, rest_of_header: [u8; 4], body: &[u8]) -> Vec<u8> {
    cat(&[&[icmp_type, code, 0, 0], &rest_of_header, body])
}

pub use crate::rng::XorShift as Rng;

//! Packet decoding: link layer -> IP -> TCP/UDP/ICMP, as zero-copy views over a frame.
//!
//! Link layers are parsed here (Ethernet II, 802.1Q/QinQ, Linux SLL and SLL2, raw IP, BSD
//! null/loopback); IP and transport headers use etherparse's lax slices, which keep the layers
//! that parsed when the snap length cut a packet.

use std::net::IpAddr;

/// TCP flag bits as they appear in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// IP protocol numbers used here.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// A decoded packet: the IP header facts and the transport layer, borrowing from the frame.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// Outermost-first VLAN ids (802.1Q / QinQ), at most two kept.
    pub vlans: [Option<u16>; 2],
    pub ip: IpHeader,
    pub l4: L4<'a>,
    /// True when the capture cut the packet before the end its headers declare
    /// (snap length): the layers that parsed are still present.
    pub truncated: bool,
}

/// The facts of the (innermost) IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification field; None for IPv6.
    pub ip_id: Option<u16>,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// Length of the transport-layer bytes as the IP header declares it (may exceed what
    /// was captured).
    pub payload_len: u32,
}

#[derive(Debug, Clone)]
pub enum L4<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    /// ICMP/ICMPv6 error (v4 types 3, 4, 5, 11, 12; v6 types 1-4) with the flow it quotes.
    IcmpError(IcmpError),
    /// Any other ICMP/ICMPv6 message (echo, neighbour discovery, ...).
    Icmp(Icmp),
    /// A fragment of a fragmented IP datagram; feed it to a [`Defragmenter`].
    Fragment(Fragment<'a>),
    /// Another transport protocol (number kept) or one whose header did not fit the capture.
    Other { proto: u8 },
}

#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// See [`tcp_flags`].
    pub flags: u8,
    pub window: u16,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length the IP header declares (>= payload.len(); larger when cut).
    pub payload_len: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
    /// Payload length the UDP/IP headers declare (>= payload.len(); larger when cut).
    pub payload_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The 5-tuple of the packet the error quotes, as that packet travelled (its source is
    /// the host that sent it). None when the quote was too short to read the ports.
    pub quoted: Option<Quoted>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// Echo identifier for echo request/reply, else None.
    pub echo_id: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u32,
    pub more_fragments: bool,
    /// Captured fragment data (after the IP header / fragment extension header).
    pub data: &'a [u8],
    /// Declared data length of this fragment (> data.len() when the capture cut it).
    pub data_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// Why a frame produced no packet. Not fatal: the caller counts these per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The link type is not one we decode (value kept).
    UnsupportedLinkType(u32),
    /// A valid frame that does not carry IP (ARP, LLDP, ...; ethertype kept).
    NotIp(u16),
    /// Too short or inconsistent to read an IP header (what failed is named).
    Malformed(&'static str),
}

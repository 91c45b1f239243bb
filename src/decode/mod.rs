//! Packet decoding: link layer -> IP -> TCP/UDP/ICMP, as zero-copy views over a frame.
//!
//! Link layers are parsed here (Ethernet II, 802.1Q/QinQ, Linux SLL and SLL2, raw IP, BSD
//! null/loopback); IP and transport headers use etherparse's lax slices, which keep the layers
//! that parsed when the snap length cut a packet (the IPv6 extension-header chain is walked
//! here, see `ip.rs` for why).
//!
//! Fragments come out as [`L4::Fragment`]; a [`Defragmenter`] puts them back together and
//! [`decode_transport`] decodes the result:
//!
//! ```
//! use allowscope::decode::{decode, decode_transport, Defragmenter, L4};
//!
//! let mut defrag = Defragmenter::default();
//! # let frames: Vec<(i64, Vec<u8>)> = Vec::new();
//! for (ts_ns, frame) in &frames {
//!     let Ok(packet) = decode(1, frame) else { continue };
//!     if let L4::Fragment(frag) = &packet.l4 {
//!         if let Some(whole) = defrag.push(*ts_ns, &packet.ip, frag) {
//!             let (l4, _truncated) = decode_transport(whole.ip, &whole.data);
//!             let _ = l4;
//!         }
//!     }
//! }
//! ```

use std::net::IpAddr;

use crate::wire;

mod defrag;
#[cfg(test)]
mod encap_tests;
mod ip;
mod link;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
mod tunnel;

pub use defrag::{defaults as defrag_defaults, DefragStats, Defragmenter, Reassembled};
pub use link::{ethertype, linktype, linktype_name};
pub use tunnel::{port as tunnel_port, EncapKind, EncapLayer, MAX_DEPTH as MAX_ENCAP_DEPTH};

/// TCP flag bits as they appear in the header's flags byte.
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers (connection open).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push buffered data to the application.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is valid.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// IP protocol numbers used here.
pub mod ipproto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
}

/// A decoded packet: the IP header facts and the transport layer, borrowing from the frame.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// Outermost-first VLAN ids (802.1Q / QinQ), at most two kept.
    pub vlans: [Option<u16>; 2],
    /// The IP header facts.
    pub ip: IpHeader,
    /// The transport layer.
    pub l4: L4<'a>,
    /// True when the capture cut the packet before the end its headers declare
    /// (snap length): the layers that parsed are still present.
    pub truncated: bool,
    /// Encapsulation layers (tunnels, MPLS labels, PPPoE) walked to reach `ip`: 0 for a
    /// plain packet. [`encap_layers`] lists them.
    pub encap_depth: u8,
    /// NFLOG: where the log prefix of the rule that logged the packet is in the frame (see
    /// [`Packet::nflog_prefix`]); kept as an offset to keep the packet small.
    pub nflog_at: PrefixAt,
}

/// Where an NFLOG prefix lies in its frame: `len` 0 for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixAt {
    pub at: u16,
    pub len: u8,
}

impl Packet<'_> {
    /// The NFLOG log prefix of the packet, from `frame`, the bytes it was decoded from.
    #[inline]
    pub fn nflog_prefix<'f>(&self, frame: &'f [u8]) -> Option<&'f [u8]> {
        let PrefixAt { at, len } = self.nflog_at;
        if len == 0 {
            return None;
        }
        frame.get(usize::from(at)..usize::from(at) + usize::from(len))
    }
}

/// The facts of the (innermost) IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
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
    /// The tunnel the packet came through, as a hash of its layers' kinds, outer endpoints
    /// (either way round) and VNI / key / session: 0 when none (plain traffic, MPLS, PPPoE).
    /// Part of the flow key, so the same inner 5-tuple in two tunnels gives two flows.
    pub tunnel: u32,
}

/// The transport layer of a packet, borrowing from the frame.
#[derive(Debug, Clone)]
pub enum L4<'a> {
    /// A TCP segment.
    Tcp(Tcp<'a>),
    /// A UDP datagram.
    Udp(Udp<'a>),
    /// ICMP/ICMPv6 error (v4 types 3, 4, 5, 11, 12; v6 types 1-4) with the flow it quotes.
    IcmpError(IcmpError),
    /// Any other ICMP/ICMPv6 message (echo, neighbour discovery, ...).
    Icmp(Icmp),
    /// A fragment of a fragmented IP datagram; feed it to a [`Defragmenter`].
    Fragment(Fragment<'a>),
    /// Another transport protocol (number kept) or one whose header did not fit the capture.
    Other {
        /// The IP protocol number (for a cut IPv6 extension header: that header's number).
        proto: u8,
    },
}

/// A TCP segment's header fields and payload.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// See [`tcp_flags`].
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: u16,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length the IP header declares (>= payload.len(); larger when cut).
    pub payload_len: u32,
}

/// A UDP datagram's ports and payload.
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Captured payload bytes (within the UDP length).
    pub payload: &'a [u8],
    /// Payload length the UDP/IP headers declare (>= payload.len(); larger when cut).
    pub payload_len: u32,
}

/// An ICMP/ICMPv6 error message and the flow it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// True for ICMPv6.
    pub v6: bool,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// The 5-tuple of the packet the error quotes, as that packet travelled (its source is
    /// the host that sent it). None when the quote was too short to read the ports.
    pub quoted: Option<Quoted>,
}

/// The 5-tuple of a packet quoted in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Transport protocol of the quoted packet (TCP, UDP, or another with ports: DCCP,
    /// SCTP, UDP-Lite).
    pub proto: u8,
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// Source port of the quoted packet.
    pub src_port: u16,
    /// Destination port of the quoted packet.
    pub dst_port: u16,
}

/// An ICMP/ICMPv6 message that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    /// True for ICMPv6.
    pub v6: bool,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Echo identifier for echo request/reply, else None.
    pub echo_id: Option<u16>,
}

/// One fragment of a fragmented IPv4/IPv6 datagram.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// IPv4 identification (16 bits) or IPv6 Fragment header identification (32 bits).
    pub id: u32,
    /// Protocol of the fragmented data (IPv4 protocol / the Fragment header's next header).
    pub proto: u8,
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u32,
    /// The MF flag (IPv4) / M flag (IPv6): more fragments follow.
    pub more_fragments: bool,
    /// Captured fragment data (after the IP header / fragment extension header).
    pub data: &'a [u8],
    /// Declared data length of this fragment (> data.len() when the capture cut it).
    pub data_len: u32,
}

impl Fragment<'_> {
    /// Which datagram this fragment belongs to, given the header of its packet (the
    /// addresses are the packet's, so a fragment does not carry them twice: a [`Packet`]
    /// stays small enough to copy cheaply).
    pub fn key(&self, ip: &IpHeader) -> FragKey {
        FragKey {
            src: ip.src,
            dst: ip.dst,
            id: self.id,
            proto: self.proto,
        }
    }
}

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 identification (16 bits) or IPv6 Fragment header identification (32 bits).
    pub id: u32,
    /// Protocol of the fragmented data (IPv4 protocol / the Fragment header's next header).
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

/// Decode one frame of LINKTYPE `linktype` (see [`linktype`]). Never panics and does not
/// allocate, whatever the bytes.
///
/// Supported: Ethernet II with 802.1Q / 802.1ad / 0x9100 tags (the first two VLAN ids are
/// kept), Linux SLL and SLL2 (any ARPHRD, loopback included), raw IP (101, 12, 14: the
/// version nibble decides; 228 IPv4; 229 IPv6), BSD null (0) and OpenBSD loop (108) with
/// the address family in either byte order.
///
/// `truncated` is set when the capture ended before the length the IP header declares, or
/// when a header (IPv6 extension, TCP, UDP, ICMP) did not fit in the bytes there are. A TCP
/// header whose fixed 20 bytes are present but whose options are cut still gives
/// [`L4::Tcp`] (with an empty payload); fewer than 20 bytes give `L4::Other { proto: 6 }`.
/// Bytes after the IP datagram (Ethernet padding) are never counted as payload.
pub fn decode(linktype: u32, data: &[u8]) -> Result<Packet<'_>, Skip> {
    let framed = link::frame(linktype, data)?;
    let net = match framed.version {
        link::IpVersion::V4 => ip::ipv4(framed.ip),
        link::IpVersion::V6 => ip::ipv6(framed.ip),
        link::IpVersion::Mpls | link::IpVersion::Pppoe => {
            return tunnel::walk(framed, None, |_| {})
        }
    }
    .map_err(Skip::Malformed)?;
    if let ip::Body::Transport(t) = net.body {
        if tunnel::candidate(net.ip.proto, t) {
            return tunnel::walk(framed, Some(net), |_| {});
        }
    }
    Ok(finish(framed.vlans, net, framed.prefix))
}

/// The packet of a parsed (innermost) IP layer.
#[inline(always)]
fn finish(vlans: [Option<u16>; 2], net: ip::Net<'_>, prefix: PrefixAt) -> Packet<'_> {
    let (l4, cut) = match net.body {
        ip::Body::Transport(t) => ip::transport(net.ip.proto, t, net.ip.payload_len),
        ip::Body::Fragment(f) => (L4::Fragment(f), false),
        ip::Body::Cut => (
            L4::Other {
                proto: net.ip.proto,
            },
            false,
        ),
    };
    Packet {
        vlans,
        ip: net.ip,
        l4,
        truncated: net.truncated || cut,
        encap_depth: 0,
        nflog_at: prefix,
    }
}

/// The encapsulation layers of a frame, outermost first, as [`decode`] walks them (empty for
/// a plain packet; the layers before a malformed one when the walk fails). Allocates: for a
/// flow's first packet, not for every packet.
pub fn encap_layers(linktype: u32, data: &[u8]) -> Vec<EncapLayer> {
    let mut layers = Vec::new();
    let Ok(framed) = link::frame(linktype, data) else {
        return layers;
    };
    let net = match framed.version {
        link::IpVersion::V4 => ip::ipv4(framed.ip),
        link::IpVersion::V6 => ip::ipv6(framed.ip),
        link::IpVersion::Mpls | link::IpVersion::Pppoe => {
            let _ = tunnel::walk(framed, None, |l| layers.push(*l));
            return layers;
        }
    };
    if let Ok(net) = net {
        if matches!(net.body, ip::Body::Transport(t) if tunnel::candidate(net.ip.proto, t)) {
            let _ = tunnel::walk(framed, Some(net), |l| layers.push(*l));
        }
    }
    layers
}

/// The source and destination addresses of a plain (unfragmented) TCP or UDP packet, read
/// straight from the IP header without decoding the rest: what a reader that only routes
/// frames needs. `None` for anything else (fragments, ICMP, IPv6 extension headers, other
/// protocols, tunnels and UDP to or from a tunnel port, headers that do not look whole),
/// which then needs [`decode`]. When it gives addresses and [`decode`] succeeds, they are the
/// packet's `ip.src` and `ip.dst`, and the packet is not a fragment.
#[inline]
pub fn tcp_udp_addresses(linktype: u32, data: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let framed = link::frame(linktype, data).ok()?;
    let h = framed.ip;
    match framed.version {
        link::IpVersion::V4 => {
            let f = ip::v4_fixed(h)?;
            if f.ihl < 5 || f.fragment || !matches!(f.proto, ipproto::TCP | ipproto::UDP) {
                return None;
            }
            // The transport bytes end where the IP header says (not at the frame's end: an
            // Ethernet trailer or FCS follows), as the full decode reads them.
            let body = h
                .get(usize::from(f.ihl) * 4..f.total.min(h.len()))
                .unwrap_or_default();
            if f.proto == ipproto::UDP && udp_tunnel(body) {
                return None;
            }
            Some((f.src, f.dst))
        }
        link::IpVersion::V6 => {
            use ip::ipv6_field as f;
            let h6: &[u8; f::FIXED_LEN] = h.get(..f::FIXED_LEN)?.try_into().ok()?;
            let next = h6[f::NEXT_HEADER];
            if h6[f::VER_TC_FL] >> 4 != 6 || !matches!(next, ipproto::TCP | ipproto::UDP) {
                return None;
            }
            let total = f::FIXED_LEN + usize::from(wire::be16(h6, f::PAYLOAD_LEN)?);
            if next == ipproto::UDP
                && udp_tunnel(h.get(f::FIXED_LEN..total.min(h.len())).unwrap_or_default())
            {
                return None;
            }
            let src: [u8; 16] = wire::array(h6, f::SRC_ADDR)?;
            let dst: [u8; 16] = wire::array(h6, f::DST_ADDR)?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        link::IpVersion::Mpls | link::IpVersion::Pppoe => None,
    }
}

/// Whether a UDP datagram (`udp`: its header and payload, within the IP packet's length) may
/// carry a tunnel: the same test as the full decode's, so that both directions of a tunnelled
/// flow go to one worker; a cut header counts as one (the full decode then decides).
#[inline]
fn udp_tunnel(udp: &[u8]) -> bool {
    udp.len() < ip::udp_field::DST_PORT.end || tunnel::candidate(ipproto::UDP, udp)
}

/// Decode the transport layer of a whole IP payload, such as a datagram a [`Defragmenter`]
/// reassembled: `ip.proto` names the protocol and `ip.payload_len` the declared length
/// (bytes past it are ignored). For IPv6, extension headers that followed the Fragment
/// header are walked first. The flag is true when `payload` is shorter than declared or a
/// header did not fit.
pub fn decode_transport(ip: IpHeader, payload: &[u8]) -> (L4<'_>, bool) {
    ip::transport_of(ip, payload)
}

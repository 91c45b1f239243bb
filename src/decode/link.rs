//! Link-layer framing: find where the IP packet starts in a frame of a given LINKTYPE.
//!
//! Parsed by hand (fixed offsets), without allocation. etherparse's own Linux SLL parser
//! rejects loopback frames (ARPHRD 772), which is one reason the link layers live here.

use super::Skip;
use crate::wire::be16;

/// Field offsets of an Ethernet II header.
pub(super) mod ethernet_field {
    use crate::wire::Field;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Field offsets of a Linux "cooked" capture v1 header.
mod sll_field {
    use crate::wire::Field;
    /// The protocol: an ethertype.
    pub const PROTOCOL: Field = 14..16;
    pub const PAYLOAD: usize = 16;
}

/// Field offsets of a Linux "cooked" capture v2 header.
mod sll2_field {
    use crate::wire::Field;
    /// The protocol: an ethertype.
    pub const PROTOCOL: Field = 0..2;
    pub const PAYLOAD: usize = 20;
}

/// Field offsets of a Cisco HDLC header: address (0x0f unicast, 0x8f broadcast), control 0,
/// protocol (an ethertype).
mod chdlc_field {
    use crate::wire::Field;
    pub const PROTOCOL: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// Field offsets of an 802.1Q (or 802.1ad) tag, after the ethertype that announces it.
mod vlan_field {
    use crate::wire::Field;
    /// Priority, drop eligibility and the VLAN id (low 12 bits).
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// LINKTYPE values (pcap/pcapng link types) decoded here.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II (with optional 802.1Q / 802.1ad / QinQ tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IP, DLT_RAW as numbered on some BSDs.
    pub const RAW_12: u32 = 12;
    /// Raw IP, DLT_RAW as numbered on OpenBSD.
    pub const RAW_14: u32 = 14;
    /// Raw IP: the version nibble tells IPv4 from IPv6.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// PPP (RFC 1661), optionally with the HDLC address/control bytes ff 03.
    pub const PPP: u32 = 9;
    /// PPP in HDLC-like framing (RFC 1662).
    pub const PPP_HDLC: u32 = 50;
    /// Linux "cooked" capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4 only.
    pub const IPV4: u32 = 228;
    /// Raw IPv6 only.
    pub const IPV6: u32 = 229;
    /// Cisco HDLC: address, control, then an ethertype.
    pub const C_HDLC: u32 = 104;
    /// IEEE 802.11 frames (no radio header).
    pub const IEEE802_11: u32 = 105;
    /// IEEE 802.11 frames after a radiotap header.
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    /// Linux netfilter log messages (`tcpdump -i nflog:N`): a 4-byte header and TLVs.
    pub const NFLOG: u32 = 239;
    /// Linux "cooked" capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
}

/// Ethertypes used here.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// MPLS unicast label stack.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast label stack.
    pub const MPLS_MC: u16 = 0x8848;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet bridging (an Ethernet frame follows: GRE, Geneve).
    pub const TEB: u16 = 0x6558;
    /// ERSPAN type I and II (GRE protocol type).
    pub const ERSPAN_2: u16 = 0x88be;
    /// ERSPAN type III (GRE protocol type).
    pub const ERSPAN_3: u16 = 0x22eb;
}

/// What a link layer says follows: IPv4, IPv6, or (rarely) a layer that `tunnel` walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpVersion {
    V4,
    V6,
    /// An MPLS label stack.
    Mpls,
    /// A PPPoE session header.
    Pppoe,
}

/// The result of link-layer framing: the IP bytes (or the MPLS / PPPoE bytes) and the VLAN
/// ids seen on the way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Framed<'a> {
    pub vlans: [Option<u16>; 2],
    pub version: IpVersion,
    pub ip: &'a [u8],
    /// NFLOG: where the log prefix of the rule that logged the packet is (up to its NUL).
    pub prefix: super::PrefixAt,
}

#[inline]
fn four(b: &[u8]) -> Option<[u8; 4]> {
    match b.get(..4) {
        Some(&[a, c, d, e]) => Some([a, c, d, e]),
        _ => None,
    }
}

/// Strip the link layer of `data` (a frame of LINKTYPE `lt`).
#[inline]
pub(super) fn frame(lt: u32, data: &[u8]) -> Result<Framed<'_>, Skip> {
    use linktype as l;
    match lt {
        l::ETHERNET => {
            use ethernet_field as f;
            let ty = be16(data, f::ETHERTYPE).ok_or(Skip::Malformed("Ethernet header cut"))?;
            ether(ty, data.get(f::PAYLOAD..).unwrap_or_default())
        }
        l::LINUX_SLL => {
            use sll_field as f;
            let proto = be16(data, f::PROTOCOL).ok_or(Skip::Malformed("Linux SLL header cut"))?;
            ether(proto, data.get(f::PAYLOAD..).unwrap_or_default())
        }
        l::LINUX_SLL2 => {
            use sll2_field as f;
            const CUT: Skip = Skip::Malformed("Linux SLL2 header cut");
            let ip = data.get(f::PAYLOAD..).ok_or(CUT)?;
            ether(be16(data, f::PROTOCOL).ok_or(CUT)?, ip)
        }
        l::RAW | l::RAW_12 | l::RAW_14 => {
            let first = *data.first().ok_or(Skip::Malformed("empty raw IP frame"))?;
            let version = match first >> 4 {
                4 => IpVersion::V4,
                6 => IpVersion::V6,
                _ => return Err(Skip::Malformed("raw frame is neither IPv4 nor IPv6")),
            };
            Ok(plain(version, data))
        }
        l::IPV4 => Ok(plain(IpVersion::V4, data)),
        l::IPV6 => Ok(plain(IpVersion::V6, data)),
        l::NULL | l::LOOP => {
            let fam = four(data).ok_or(Skip::Malformed("loopback header cut"))?;
            let host = u32::from_le_bytes(fam);
            let net = u32::from_be_bytes(fam);
            // NULL is in the capturing host's order, LOOP in network order; a family value
            // is small, so reading it in the wrong order gives a huge number that never
            // matches: accepting either order is safe for both link types.
            let (first, second) = if lt == l::LOOP {
                (net, host)
            } else {
                (host, net)
            };
            let version = family(first)
                .or_else(|| family(second))
                .ok_or_else(|| Skip::NotIp(u16::try_from(host.min(net)).unwrap_or(u16::MAX)))?;
            Ok(plain(version, data.get(4..).unwrap_or_default()))
        }
        l::PPP | l::PPP_HDLC => {
            // Optional address/control (ff 03), then a protocol field of two bytes, or one
            // when compressed (RFC 1661 section 6.5: the first byte of a full field is even).
            let rest = match data {
                [0xff, 0x03, rest @ ..] => rest,
                _ => data,
            };
            let (proto, ip) = match rest {
                [p, ip @ ..] if p & 1 == 1 => (u16::from(*p), ip),
                [hi, lo, ip @ ..] => (u16::from_be_bytes([*hi, *lo]), ip),
                _ => return Err(Skip::Malformed("PPP header cut")),
            };
            match proto {
                0x0021 => Ok(plain(IpVersion::V4, ip)),
                0x0057 => Ok(plain(IpVersion::V6, ip)),
                other => Err(Skip::NotIp(other)),
            }
        }
        l::NFLOG => nflog(data),
        l::C_HDLC => {
            use chdlc_field as f;
            let proto = be16(data, f::PROTOCOL).ok_or(Skip::Malformed("Cisco HDLC header cut"))?;
            ether(proto, data.get(f::PAYLOAD..).unwrap_or_default())
        }
        l::IEEE802_11 => wifi(data),
        l::IEEE802_11_RADIOTAP => {
            // Version 0, padding, then the header's whole length (little-endian).
            let len = match data {
                [0, _, lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => return Err(Skip::Malformed("radiotap header cut or of another version")),
            };
            let frame = data
                .get(len.max(8)..)
                .ok_or(Skip::Malformed("radiotap header cut or of another version"))?;
            wifi(frame)
        }
        other => Err(Skip::UnsupportedLinkType(other)),
    }
}

fn plain(version: IpVersion, ip: &[u8]) -> Framed<'_> {
    Framed {
        vlans: [None, None],
        version,
        ip,
        prefix: super::PrefixAt::default(),
    }
}

/// NFLOG TLV types read here (linux/netfilter/nfnetlink_log.h).
mod nfula {
    pub const PACKET_HDR: u16 = 1;
    pub const PAYLOAD: u16 = 9;
    pub const PREFIX: u16 = 10;
}

/// An NFLOG frame: a header (address family, version 0, resource id = the log group), then
/// TLVs whose length (which counts the 4-byte TLV header) and type are in the byte order of
/// the host that captured (the values inside are in network order), each padded to 4 bytes.
/// The payload TLV holds the network-layer packet; the family (or the hardware protocol of
/// the packet header TLV, for the bridge family) says which.
#[cold]
#[inline(never)]
fn nflog(data: &[u8]) -> Result<Framed<'_>, Skip> {
    let &[family, _version, _, _, ..] = data else {
        return Err(Skip::Malformed("NFLOG header cut"));
    };
    let mut rest = data.get(4..).unwrap_or_default();
    // Types are small numbers: the first TLV tells the byte order.
    let little = match rest {
        [_, _, t0, t1, ..] => u16::from_le_bytes([*t0, *t1]) < 0x100,
        _ => true,
    };
    let u16_of = |b: [u8; 2]| {
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let (mut payload, mut prefix, mut hw_proto) = (None, None, None);
    let mut was_cut = false;
    while let [l0, l1, t0, t1, ..] = *rest {
        let len = usize::from(u16_of([l0, l1]));
        // The high bits of the type are netlink flags (nested, byte order).
        let ty = u16_of([t0, t1]) & 0x3fff;
        if len < 4 {
            return Err(Skip::Malformed("NFLOG TLV length below 4"));
        }
        // A TLV the snap length cut keeps what there is of it: a cut payload is a packet
        // cut short (decoded as far as it goes and marked truncated), as on any link type.
        let (value, cut) = match rest.get(4..len) {
            Some(v) => (v, false),
            None => (rest.get(4..).unwrap_or_default(), true),
        };
        match ty {
            nfula::PAYLOAD => payload = Some(value),
            nfula::PREFIX => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                prefix = value.get(..end);
            }
            nfula::PACKET_HDR => hw_proto = be16(value, 0),
            _ => {}
        }
        if cut {
            was_cut = true;
            rest = &[];
            break;
        }
        let padded = len.div_ceil(4) * 4;
        rest = rest.get(padded..).unwrap_or_default();
    }
    let ip = match payload {
        Some(p) => p,
        // Bytes left that are no whole TLV header, or a TLV cut before the payload's.
        None if was_cut || !rest.is_empty() => return Err(Skip::Malformed("NFLOG TLV cut")),
        None => return Err(Skip::Malformed("NFLOG frame without a payload")),
    };
    // AF_INET 2, AF_INET6 10; otherwise (AF_BRIDGE, AF_UNSPEC) the hardware protocol, or
    // the version nibble.
    let version = match (family, hw_proto) {
        (2, _) | (_, Some(ethertype::IPV4)) => IpVersion::V4,
        (10, _) | (_, Some(ethertype::IPV6)) => IpVersion::V6,
        _ => match ip.first().map(|b| b >> 4) {
            Some(4) => IpVersion::V4,
            Some(6) => IpVersion::V6,
            _ => return Err(Skip::NotIp(hw_proto.unwrap_or(0))),
        },
    };
    Ok(Framed {
        vlans: [None, None],
        version,
        ip,
        prefix: prefix.map_or_else(Default::default, |p: &[u8]| super::PrefixAt {
            // Both within the frame (a prefix longer than 255 bytes is cut there).
            at: u16::try_from(p.as_ptr() as usize - data.as_ptr() as usize).unwrap_or(0),
            len: u8::try_from(p.len()).unwrap_or(u8::MAX),
        }),
    })
}

/// An IEEE 802.11 frame: data frames (plain or QoS, any To/From-DS combination: a frame
/// between two distribution systems has a fourth address) carrying LLC/SNAP with an ethertype.
/// Management and control frames, null data and non-SNAP payloads carry no IP; a protected
/// (encrypted) data frame cannot be read.
#[cold]
#[inline(never)]
fn wifi(data: &[u8]) -> Result<Framed<'_>, Skip> {
    const CUT: Skip = Skip::Malformed("802.11 header cut");
    let (&fc0, &flags) = (data.first().ok_or(CUT)?, data.get(1).ok_or(CUT)?);
    let (version, ty, subtype) = (fc0 & 0x03, (fc0 >> 2) & 0x03, fc0 >> 4);
    if version != 0 {
        return Err(Skip::Malformed("802.11 frame of another protocol version"));
    }
    // Type 2 is data; subtypes with bit 2 set (null, CF-ack/poll only) carry nothing.
    if ty != 2 || subtype & 0x4 != 0 {
        return Err(Skip::NotIp(0));
    }
    if flags & 0x40 != 0 {
        return Err(Skip::Malformed("802.11 frame protected (encrypted)"));
    }
    let mut at = 24;
    if flags & 0x03 == 0x03 {
        at += 6; // To DS and From DS: four addresses
    }
    if subtype & 0x8 != 0 {
        at += 2; // QoS control
        if flags & 0x80 != 0 {
            at += 4; // HT control (the Order bit of a QoS frame)
        }
    }
    let body = data.get(at..).ok_or(CUT)?;
    match body {
        [0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo, rest @ ..] => {
            ether(u16::from_be_bytes([*hi, *lo]), rest)
        }
        [_, _, _, _, _, _, _, _, ..] => Err(Skip::NotIp(0)),
        _ => Err(Skip::Malformed("802.11 LLC/SNAP header cut")),
    }
}

/// BSD address family -> IP version (AF_INET is 2 everywhere; AF_INET6 is 24 on
/// NetBSD/OpenBSD, 28 on FreeBSD/DragonFly, 30 on macOS).
fn family(af: u32) -> Option<IpVersion> {
    match af {
        2 => Some(IpVersion::V4),
        24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

/// Walk VLAN tags from an ethertype (or SLL protocol) value to IPv4/IPv6.
pub(super) fn ether(mut ty: u16, mut rest: &[u8]) -> Result<Framed<'_>, Skip> {
    let mut vlans = [None, None];
    let mut seen = 0usize;
    loop {
        match ty {
            ethertype::IPV4 => {
                return Ok(Framed {
                    vlans,
                    version: IpVersion::V4,
                    ip: rest,
                    prefix: super::PrefixAt::default(),
                })
            }
            ethertype::IPV6 => {
                return Ok(Framed {
                    vlans,
                    version: IpVersion::V6,
                    ip: rest,
                    prefix: super::PrefixAt::default(),
                })
            }
            ethertype::MPLS | ethertype::MPLS_MC | ethertype::PPPOE_SESSION => {
                let version = if ty == ethertype::PPPOE_SESSION {
                    IpVersion::Pppoe
                } else {
                    IpVersion::Mpls
                };
                return Ok(Framed {
                    vlans,
                    version,
                    ip: rest,
                    prefix: super::PrefixAt::default(),
                });
            }
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                let tci = be16(rest, vlan_field::TCI).ok_or(Skip::Malformed("VLAN tag cut"))?;
                let inner =
                    be16(rest, vlan_field::ETHERTYPE).ok_or(Skip::Malformed("VLAN tag cut"))?;
                if let Some(slot) = vlans.get_mut(seen) {
                    *slot = Some(tci & 0x0fff);
                }
                seen += 1;
                ty = inner;
                // Each tag consumes 4 bytes, so the loop ends with the frame.
                rest = rest.get(vlan_field::PAYLOAD..).unwrap_or_default();
            }
            other => return Err(Skip::NotIp(other)),
        }
    }
}
/// A readable name for a LINKTYPE value.
pub fn linktype_name(lt: u32) -> String {
    let name = match lt {
        0 => "null",
        1 => "ethernet",
        12 | 14 | 101 => "raw-ip",
        108 => "loop",
        9 | 50 => "ppp",
        113 => "linux-sll",
        228 => "ipv4",
        229 => "ipv6",
        104 => "cisco-hdlc",
        105 => "802.11",
        127 => "radiotap",
        239 => "nflog",
        276 => "linux-sll2",
        _ => return format!("linktype-{lt}"),
    };
    name.to_string()
}

//! Tunnels and label stacks: GRE (key, sequence, IPv4/IPv6, transparent Ethernet), ERSPAN
//! types I, II and III, VXLAN, Geneve, GTP-U, Teredo, IP-in-IP and IPv6-in-IP (protocols 4
//! and 41), MPLS label stacks (IPv4, IPv6 or Ethernet below, with or without the pseudowire
//! control word) and PPPoE sessions, walked down to the innermost IP packet.
//!
//! The plain path never comes here: [`candidate`] is a cheap test on the IP protocol and the
//! UDP ports, and link layers hand over only MPLS and PPPoE ethertypes. Each layer passed is
//! reported to a callback (the flow table asks for them once per flow) and, for the tunnels
//! that have outer endpoints, folded into [`IpHeader::tunnel`](super::IpHeader), so the same
//! inner 5-tuple in two tunnels gives two flows.
//!
//! A tunnel header that does not validate on a tunnel's UDP port (a VXLAN header without its
//! I flag, a GTP-U message that is not a T-PDU, a Teredo payload that is not IPv6) is read as
//! the plain UDP it then is. A tunnel header that claims to be one but is cut or inconsistent,
//! or more than [`MAX_DEPTH`] layers, is a malformed frame, counted with its reason.

use std::net::IpAddr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::ip::{self, udp_field, Body, Net};
use super::link::{self, ethernet_field, ethertype, Framed, IpVersion};
use super::{ipproto, Packet, Skip};
use crate::wire::{be16, be32};

/// Most encapsulation layers (MPLS labels count one each) walked in one frame.
pub const MAX_DEPTH: u8 = 8;

/// UDP ports of the tunnels read here.
pub mod port {
    /// VXLAN (destination port).
    pub const VXLAN: u16 = 4789;
    /// Geneve (destination port).
    pub const GENEVE: u16 = 6081;
    /// GTP-U (either port).
    pub const GTP_U: u16 = 2152;
    /// Teredo (either port: client to relay, relay to client).
    pub const TEREDO: u16 = 3544;
}

/// Field offsets of a PPPoE session header (RFC 2516 section 4).
mod pppoe_field {
    use crate::wire::Field;
    /// Version and type, 1 each: 0x11.
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const SESSION: Field = 2..4;
    /// The length of the PPP payload.
    pub const LENGTH: Field = 4..6;
    pub const PAYLOAD: usize = 6;
}

const IPIP: u8 = 4;
const IPV6_IN_IP: u8 = 41;
const GRE: u8 = 47;

/// The kind of an encapsulation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncapKind {
    Gre,
    Erspan1,
    Erspan2,
    Erspan3,
    Vxlan,
    Geneve,
    GtpU,
    Teredo,
    /// IPv4 in IP (protocol 4).
    IpIp,
    /// IPv6 in IP (protocol 41: sit, 6in4, IPv6 in IPv6).
    Ipv6InIp,
    Mpls,
    Pppoe,
}

impl EncapKind {
    /// Every kind (the match in [`EncapKind::name`] and the test beside it keep it whole).
    pub const ALL: [EncapKind; 12] = [
        EncapKind::Gre,
        EncapKind::Erspan1,
        EncapKind::Erspan2,
        EncapKind::Erspan3,
        EncapKind::Vxlan,
        EncapKind::Geneve,
        EncapKind::GtpU,
        EncapKind::Teredo,
        EncapKind::IpIp,
        EncapKind::Ipv6InIp,
        EncapKind::Mpls,
        EncapKind::Pppoe,
    ];

    /// The name in the JSON `encap` list.
    pub fn name(self) -> &'static str {
        match self {
            EncapKind::Gre => "gre",
            EncapKind::Erspan1 => "erspan-1",
            EncapKind::Erspan2 => "erspan-2",
            EncapKind::Erspan3 => "erspan-3",
            EncapKind::Vxlan => "vxlan",
            EncapKind::Geneve => "geneve",
            EncapKind::GtpU => "gtp-u",
            EncapKind::Teredo => "teredo",
            EncapKind::IpIp => "ipip",
            EncapKind::Ipv6InIp => "ipv6-in-ip",
            EncapKind::Mpls => "mpls",
            EncapKind::Pppoe => "pppoe",
        }
    }

    /// The JSON name of the layer's identifier.
    fn id_name(self) -> &'static str {
        match self {
            EncapKind::Vxlan | EncapKind::Geneve => "vni",
            EncapKind::Gre => "key",
            EncapKind::Erspan1 | EncapKind::Erspan2 | EncapKind::Erspan3 => "session",
            EncapKind::GtpU => "teid",
            EncapKind::Mpls => "label",
            EncapKind::Pppoe => "session",
            EncapKind::Teredo | EncapKind::IpIp | EncapKind::Ipv6InIp => "id",
        }
    }

    /// Whether the layer is part of the flow key (see [`tunnel_hash`]): tunnels between IP
    /// endpoints are; MPLS labels (one per direction) and PPPoE sessions are link-level, as
    /// VLAN tags are, and are not. Nor is Teredo: its inner IPv6 addresses are global, and one
    /// connection's packets take different outer paths (through the Teredo server one way and a
    /// relay the other, as in Zeek's Teredo sample). Nor is ERSPAN: a mirror's copy carries no
    /// address space of its own, and a switch often mirrors a port's two directions in two
    /// sessions (or two switches mirror one path): keyed, the answers would land in a flow of
    /// their own and the requests' flow would look unanswered.
    fn keyed(self) -> bool {
        !matches!(
            self,
            EncapKind::Mpls
                | EncapKind::Pppoe
                | EncapKind::Teredo
                | EncapKind::Erspan1
                | EncapKind::Erspan2
                | EncapKind::Erspan3
        )
    }

    /// Whether the identifier is the same both ways (a VNI, a GRE key, a mirror session);
    /// GTP-U TEIDs differ per direction and stay out of the key.
    fn symmetric_id(self) -> bool {
        !matches!(self, EncapKind::GtpU)
    }
}

/// One encapsulation layer a packet came through (outermost first in a list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapLayer {
    pub kind: EncapKind,
    /// Outer IP source and destination (none for MPLS and PPPoE).
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// VNI, GRE key, ERSPAN session, GTP-U TEID, MPLS label or PPPoE session, when the
    /// layer has one.
    pub id: Option<u32>,
}

impl Serialize for EncapLayer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 1 + usize::from(self.src.is_some()) * 2 + usize::from(self.id.is_some());
        let mut m = s.serialize_map(Some(n))?;
        m.serialize_entry("type", self.kind.name())?;
        if let (Some(src), Some(dst)) = (self.src, self.dst) {
            m.serialize_entry("src", &crate::text::ip_text(src))?;
            m.serialize_entry("dst", &crate::text::ip_text(dst))?;
        }
        if let Some(id) = self.id {
            m.serialize_entry(self.kind.id_name(), &id)?;
        }
        m.end()
    }
}

/// The layer as [`EncapLayer`]'s serializer writes it: `type`, the outer addresses of an IP
/// tunnel, and the identifier under the name [`EncapKind::id_name`] gives.
impl schemars::JsonSchema for EncapLayer {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EncapLayer".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let kinds: Vec<&str> = EncapKind::ALL.iter().map(|k| k.name()).collect();
        let mut props = serde_json::Map::new();
        props.insert(
            "type".into(),
            serde_json::json!({ "type": "string", "enum": kinds }),
        );
        for a in ["src", "dst"] {
            props.insert(
                a.into(),
                serde_json::json!({
                    "type": "string",
                    "description": "The outer IP address (IP tunnels only; with the other)."
                }),
            );
        }
        for k in EncapKind::ALL {
            props.entry(k.id_name()).or_insert_with(|| {
                serde_json::json!({
                    "type": "integer",
                    "minimum": 0,
                    "maximum": u32::MAX,
                    "description": "The layer's identifier: VNI, GRE key, ERSPAN or PPPoE session, GTP-U TEID or MPLS label.",
                })
            });
        }
        schemars::json_schema!({
            "type": "object",
            "description": "An encapsulation layer a packet came through.",
            "properties": props,
            "required": ["type"],
            "dependentRequired": { "src": ["dst"], "dst": ["src"] },
            "additionalProperties": false,
        })
    }
}

/// Whether an IP payload may be a tunnel: protocols 4, 41, 47, or UDP to or from a tunnel
/// port. Cheap, for the per-packet path.
#[inline]
pub(super) fn candidate(proto: u8, transport: &[u8]) -> bool {
    match proto {
        IPIP | IPV6_IN_IP | GRE => true,
        ipproto::UDP => match (
            be16(transport, udp_field::SRC_PORT),
            be16(transport, udp_field::DST_PORT),
        ) {
            (Some(s), Some(d)) => {
                tunnel_ports(s, d)
                    || teredo_by_content(transport.get(udp_field::PAYLOAD..).unwrap_or_default())
            }
            _ => false,
        },
        _ => false,
    }
}

/// Whether a UDP payload is Teredo on a port other than 3544, as a client's traffic through a
/// relay is (the relay's port is its own): a whole IPv6 packet that fills the datagram (its
/// payload length plus the 40-byte header), with a Teredo address (2001:0::/32) at one end.
/// What Zeek and tshark recognise it by; cheap enough for every UDP datagram.
#[inline]
pub(super) fn teredo_by_content(p: &[u8]) -> bool {
    use ip::ipv6_field as f;
    const TEREDO_PREFIX: [u8; 4] = [0x20, 0x01, 0x00, 0x00];
    let teredo = |addr| {
        p.get(addr)
            .is_some_and(|a: &[u8]| a.starts_with(&TEREDO_PREFIX))
    };
    p.get(f::VER_TC_FL).is_some_and(|v| v >> 4 == 6)
        && be16(p, f::PAYLOAD_LEN).is_some_and(|n| usize::from(n) + f::FIXED_LEN == p.len())
        && (teredo(f::SRC_ADDR) || teredo(f::DST_ADDR))
}

/// Whether a UDP datagram between these ports may be a tunnel.
#[inline]
pub(super) fn tunnel_ports(src: u16, dst: u16) -> bool {
    dst == port::VXLAN
        || dst == port::GENEVE
        || src == port::GTP_U
        || dst == port::GTP_U
        || src == port::TEREDO
        || dst == port::TEREDO
}

/// What comes next in the walk.
enum Next<'a> {
    /// A parsed IP packet (it may carry a tunnel).
    Net(Net<'a>),
    /// IPv4 or IPv6 by the version nibble.
    Ip(&'a [u8]),
    V4(&'a [u8]),
    V6(&'a [u8]),
    /// A whole Ethernet II frame (addresses first).
    Ether(&'a [u8]),
    Mpls(&'a [u8]),
    Pppoe(&'a [u8]),
}

/// The identity of a tunnel path folded into 64 bits: 0 for none, symmetric in each layer's
/// outer endpoints so both directions of a flow get the same value.
fn tunnel_hash(h: u32, l: &EncapLayer) -> u32 {
    fn fold(a: Option<IpAddr>) -> u64 {
        match a {
            None => 0,
            Some(IpAddr::V4(v)) => u64::from(u32::from(v)),
            Some(IpAddr::V6(v)) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(29) ^ 0x6a09_e667_f3bc_c908
            }
        }
    }
    let (x, y) = (fold(l.src), fold(l.dst));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let id = if l.kind.symmetric_id() {
        l.id.map_or(0, |i| u64::from(i) | 1 << 40)
    } else {
        0
    };
    let mut z = u64::from(h).rotate_left(21)
        ^ lo.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ hi
        ^ (l.kind as u64 + 1) << 48
        ^ id.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z ^ (z >> 32)) as u32).max(1)
}

/// State of one walk.
struct Walk<F> {
    depth: u8,
    hash: u32,
    /// An outer layer was cut by the capture.
    cut: bool,
    on_layer: F,
}

impl<F: FnMut(&EncapLayer)> Walk<F> {
    fn layer(&mut self, l: EncapLayer) -> Result<(), Skip> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Skip::Malformed("more than 8 encapsulation layers"));
        }
        if l.kind.keyed() {
            self.hash = tunnel_hash(self.hash, &l);
        }
        (self.on_layer)(&l);
        Ok(())
    }

    fn outer(&self, kind: EncapKind, net: &Net<'_>, id: Option<u32>) -> EncapLayer {
        EncapLayer {
            kind,
            src: Some(net.ip.src),
            dst: Some(net.ip.dst),
            id,
        }
    }

    /// The tunnel an IP packet carries, if any: its layer and what it carries.
    fn tunnel<'a>(
        &self,
        net: &Net<'a>,
        t: &'a [u8],
    ) -> Result<Option<(EncapLayer, Next<'a>)>, Skip> {
        Ok(match net.ip.proto {
            IPIP => Some((self.outer(EncapKind::IpIp, net, None), Next::V4(t))),
            IPV6_IN_IP => Some((self.outer(EncapKind::Ipv6InIp, net, None), Next::V6(t))),
            GRE => self.gre(net, t)?,
            ipproto::UDP => self.udp(net, t)?,
            _ => None,
        })
    }

    /// GRE version 0; `None` (the packet stays GRE, an other protocol) for version 1 (PPTP),
    /// source routing, or a payload not read here (keepalives, PPP, ...).
    fn gre<'a>(&self, net: &Net<'a>, t: &'a [u8]) -> Result<Option<(EncapLayer, Next<'a>)>, Skip> {
        const CUT: Skip = Skip::Malformed("GRE header cut");
        let flags = be16(t, 0).ok_or(CUT)?;
        let proto = be16(t, 2).ok_or(CUT)?;
        if flags & 0x4007 != 0 {
            return Ok(None);
        }
        let has_seq = flags & 0x1000 != 0;
        let mut at = 4;
        if flags & 0x8000 != 0 {
            at += 4;
        }
        let key = if flags & 0x2000 != 0 {
            let k = be32(t, at).ok_or(CUT)?;
            at += 4;
            Some(k)
        } else {
            None
        };
        if has_seq {
            at += 4;
        }
        let body = t.get(at..).ok_or(CUT)?;
        let gre = self.outer(EncapKind::Gre, net, key);
        Ok(Some(match proto {
            ethertype::IPV4 => (gre, Next::V4(body)),
            ethertype::IPV6 => (gre, Next::V6(body)),
            ethertype::TEB => (gre, Next::Ether(body)),
            ethertype::MPLS | ethertype::MPLS_MC => (gre, Next::Mpls(body)),
            // Type I has no ERSPAN header and no GRE sequence number.
            ethertype::ERSPAN_2 if !has_seq => {
                (self.outer(EncapKind::Erspan1, net, None), Next::Ether(body))
            }
            ethertype::ERSPAN_2 => {
                const CUT2: Skip = Skip::Malformed("ERSPAN type II header cut");
                let w = be16(body, 0).ok_or(CUT2)?;
                if w >> 12 != 1 {
                    return Err(Skip::Malformed(
                        "ERSPAN type II header with another version",
                    ));
                }
                let session = be16(body, 2).ok_or(CUT2)? & 0x3ff;
                let frame = body.get(8..).ok_or(CUT2)?;
                let l = self.outer(EncapKind::Erspan2, net, Some(u32::from(session)));
                (l, Next::Ether(frame))
            }
            ethertype::ERSPAN_3 => {
                const CUT3: Skip = Skip::Malformed("ERSPAN type III header cut");
                let w = be16(body, 0).ok_or(CUT3)?;
                if w >> 12 != 2 {
                    return Err(Skip::Malformed(
                        "ERSPAN type III header with another version",
                    ));
                }
                let session = be16(body, 2).ok_or(CUT3)? & 0x3ff;
                // Bit O: an 8-byte platform-specific subheader follows the 12 bytes.
                let o = body.get(11).ok_or(CUT3)? & 1;
                let frame = body.get(12 + 8 * usize::from(o)..).ok_or(CUT3)?;
                let l = self.outer(EncapKind::Erspan3, net, Some(u32::from(session)));
                (l, Next::Ether(frame))
            }
            _ => return Ok(None),
        }))
    }

    /// VXLAN, Geneve, GTP-U, Teredo: `None` when the header does not validate (plain UDP).
    fn udp<'a>(&self, net: &Net<'a>, t: &'a [u8]) -> Result<Option<(EncapLayer, Next<'a>)>, Skip> {
        let (Some(sport), Some(dport), Some(len)) = (
            be16(t, udp_field::SRC_PORT),
            be16(t, udp_field::DST_PORT),
            be16(t, udp_field::LENGTH),
        ) else {
            return Ok(None);
        };
        // The UDP length bounds the payload unless unset or nonsense (as in `ip::udp`).
        let end = if usize::from(len) >= udp_field::PAYLOAD {
            usize::from(len).min(t.len())
        } else {
            t.len()
        };
        let p = t.get(udp_field::PAYLOAD..end).unwrap_or_default();
        if dport == port::VXLAN {
            // Flags with the I bit and the other reserved bits zero (RFC 7348; the G bit of
            // VXLAN-GBP allowed, its policy id in the next bytes), the VNI, a zero last byte.
            if p.len() < 8 || p[0] & 0x08 == 0 || p[0] & 0x77 != 0 || p[7] != 0 {
                return Ok(None);
            }
            let vni = be32(p, 4).unwrap_or(0) >> 8;
            let l = self.outer(EncapKind::Vxlan, net, Some(vni));
            return Ok(Some((l, Next::Ether(p.get(8..).unwrap_or_default()))));
        }
        if dport == port::GENEVE {
            let (Some(&b0), Some(proto), Some(w)) = (p.first(), be16(p, 2), be32(p, 4)) else {
                return Ok(None);
            };
            if b0 >> 6 != 0 {
                return Ok(None);
            }
            let opts = usize::from(b0 & 0x3f) * 4;
            let body = p
                .get(8 + opts..)
                .ok_or(Skip::Malformed("Geneve options cut"))?;
            let l = self.outer(EncapKind::Geneve, net, Some(w >> 8));
            let next = match proto {
                ethertype::TEB => Next::Ether(body),
                ethertype::IPV4 => Next::V4(body),
                ethertype::IPV6 => Next::V6(body),
                _ => return Ok(None),
            };
            return Ok(Some((l, next)));
        }
        if sport == port::GTP_U || dport == port::GTP_U {
            // Version 1, protocol type GTP, message type 255 (T-PDU); echo and the other
            // signalling messages are plain UDP.
            let (Some(&b0), Some(&ty), Some(teid)) = (p.first(), p.get(1), be32(p, 4)) else {
                return Ok(None);
            };
            if b0 >> 5 != 1 || b0 & 0x10 == 0 || ty != 0xff {
                return Ok(None);
            }
            const CUT: Skip = Skip::Malformed("GTP-U header cut");
            let mut at = 8;
            if b0 & 0x07 != 0 {
                // Sequence number, N-PDU number, next extension header type.
                let mut next = *p.get(11).ok_or(CUT)?;
                at = 12;
                while next != 0 {
                    let units = usize::from(*p.get(at).ok_or(CUT)?);
                    if units == 0 {
                        return Err(Skip::Malformed("GTP-U extension header of length 0"));
                    }
                    at += units * 4;
                    next = *p.get(at - 1).ok_or(CUT)?;
                }
            }
            let body = p.get(at..).ok_or(CUT)?;
            let l = self.outer(EncapKind::GtpU, net, Some(teid));
            return Ok(Some((l, Next::Ip(body))));
        }
        if sport == port::TEREDO || dport == port::TEREDO || teredo_by_content(p) {
            let mut b = p;
            // Authentication indicator (0x0001), then origin indication (0x0000).
            if let [0, 1, id_len, au_len, ..] = *b {
                let skip = 4 + usize::from(id_len) + usize::from(au_len) + 8 + 1;
                b = b.get(skip..).unwrap_or_default();
            }
            if let [0, 0, ..] = b {
                b = b.get(8..).unwrap_or_default();
            }
            // The IPv6 packet fills the datagram as the UDP header declares it (the capture may
            // have cut it): a DNS query from port 3544 whose id begins with 6 is no tunnel.
            let declared = if usize::from(len) >= udp_field::PAYLOAD {
                usize::from(len) - udp_field::PAYLOAD
            } else {
                p.len()
            };
            let inner = declared.saturating_sub(p.len() - b.len());
            let fills = be16(b, ip::ipv6_field::PAYLOAD_LEN)
                .is_some_and(|n| usize::from(n) + ip::ipv6_field::FIXED_LEN == inner);
            if b.len() < 40 || b[0] >> 4 != 6 || !fills {
                return Ok(None);
            }
            let l = self.outer(EncapKind::Teredo, net, None);
            return Ok(Some((l, Next::V6(b))));
        }
        Ok(None)
    }

    /// An MPLS label stack (each label a layer) and what its bottom carries.
    fn mpls<'a>(&mut self, mut b: &'a [u8]) -> Result<Next<'a>, Skip> {
        loop {
            let e = be32(b, 0).ok_or(Skip::Malformed("MPLS label stack cut"))?;
            self.layer(EncapLayer {
                kind: EncapKind::Mpls,
                src: None,
                dst: None,
                id: Some(e >> 12),
            })?;
            b = b.get(4..).unwrap_or_default();
            if e & 0x100 != 0 {
                break;
            }
        }
        Ok(match b.first().map(|x| x >> 4) {
            Some(4) => Next::V4(b),
            Some(6) => Next::V6(b),
            // A pseudowire: Ethernet, after a control word (first nibble 0) or not. An
            // Ethernet destination can begin with 0 too: the ethertype decides.
            Some(0) if !known_ethertype(be16(b, 12)) && known_ethertype(be16(b, 16)) => {
                Next::Ether(b.get(4..).unwrap_or_default())
            }
            Some(_) => Next::Ether(b),
            None => return Err(Skip::Malformed("MPLS payload missing")),
        })
    }

    fn pppoe<'a>(&mut self, b: &'a [u8]) -> Result<Next<'a>, Skip> {
        use pppoe_field as f;
        const CUT: Skip = Skip::Malformed("PPPoE header cut");
        let (Some(&vt), Some(&code), Some(session), Some(len)) = (
            b.get(f::VER_TYPE),
            b.get(f::CODE),
            be16(b, f::SESSION),
            be16(b, f::LENGTH),
        ) else {
            return Err(CUT);
        };
        if vt != 0x11 || code != 0 {
            return Err(Skip::Malformed(
                "PPPoE session header with another version or code",
            ));
        }
        self.layer(EncapLayer {
            kind: EncapKind::Pppoe,
            src: None,
            dst: None,
            id: Some(u32::from(session)),
        })?;
        let end = (f::PAYLOAD + usize::from(len)).min(b.len());
        let ppp = b.get(f::PAYLOAD..end).unwrap_or_default();
        // The protocol field may be compressed to one (odd) byte.
        let (proto, rest) = match ppp {
            [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
            [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
            _ => return Err(CUT),
        };
        match proto {
            0x0021 => Ok(Next::V4(rest)),
            0x0057 => Ok(Next::V6(rest)),
            other => Err(Skip::NotIp(other)),
        }
    }
}

fn known_ethertype(t: Option<u16>) -> bool {
    matches!(
        t,
        Some(
            ethertype::IPV4
                | ethertype::IPV6
                | ethertype::ARP
                | ethertype::VLAN
                | ethertype::QINQ
                | ethertype::QINQ_OLD
                | ethertype::MPLS
                | ethertype::MPLS_MC
                | ethertype::PPPOE_SESSION
        )
    )
}

/// Walks a frame whose link layer gave MPLS or PPPoE (`net` None), or whose IP packet `net`
/// is a [`candidate`], down to the innermost IP packet. Each layer passed goes to `on_layer`.
#[cold]
#[inline(never)]
pub(super) fn walk<'a>(
    framed: Framed<'a>,
    net: Option<Net<'a>>,
    on_layer: impl FnMut(&EncapLayer),
) -> Result<Packet<'a>, Skip> {
    let mut w = Walk {
        depth: 0,
        hash: 0,
        cut: false,
        on_layer,
    };
    let mut next = match (net, framed.version) {
        (Some(net), _) => Next::Net(net),
        (None, IpVersion::Mpls) => Next::Mpls(framed.ip),
        (None, IpVersion::Pppoe) => Next::Pppoe(framed.ip),
        (None, IpVersion::V4) => Next::V4(framed.ip),
        (None, IpVersion::V6) => Next::V6(framed.ip),
    };
    // A datagram on a tunnel's UDP port whose header validated but whose inside is not a
    // packet after all (a DNS answer to a client that happened to pick port 4789, 2152 or
    // 3544) is the plain UDP it then is, as when its header does not validate: dropped, the
    // answer would leave its flow looking unanswered. The outer packet, and the walk's state
    // when it was reached, until the inside parses as IP.
    let mut plain: Option<(Net<'a>, u32, u8, bool)> = None;
    let finish = |net: Net<'a>, hash: u32, depth: u8, cut: bool| {
        let mut p = super::finish(framed.vlans, net, framed.prefix);
        p.ip.tunnel = hash;
        p.encap_depth = depth;
        p.truncated |= cut;
        p
    };
    let mut run = || -> Result<Packet<'a>, Skip> {
        loop {
            next = match next {
                Next::Ip(b) => match b.first().map(|x| x >> 4) {
                    Some(4) => Next::V4(b),
                    Some(6) => Next::V6(b),
                    _ => return Err(Skip::Malformed("tunnel payload is neither IPv4 nor IPv6")),
                },
                Next::V4(b) => Next::Net(ip::ipv4(b).map_err(Skip::Malformed)?),
                Next::V6(b) => Next::Net(ip::ipv6(b).map_err(Skip::Malformed)?),
                Next::Net(net) => {
                    plain = None;
                    let found = match net.body {
                        Body::Transport(t) if candidate(net.ip.proto, t) => {
                            match w.tunnel(&net, t) {
                                Ok(found) => found,
                                // On a tunnel's UDP port, a header that does not hold together
                                // is not a tunnel: the plain UDP it is.
                                Err(_) if net.ip.proto == ipproto::UDP => None,
                                Err(e) => return Err(e),
                            }
                        }
                        _ => None,
                    };
                    match found {
                        Some((layer, inner)) => {
                            if net.ip.proto == ipproto::UDP {
                                plain = Some((net, w.hash, w.depth, w.cut));
                            }
                            w.cut |= net.truncated;
                            w.layer(layer)?;
                            inner
                        }
                        None => return Ok(finish(net, w.hash, w.depth, w.cut)),
                    }
                }
                Next::Ether(b) => {
                    let ty = be16(b, ethernet_field::ETHERTYPE)
                        .ok_or(Skip::Malformed("inner Ethernet header cut"))?;
                    let f = link::ether(ty, b.get(ethernet_field::PAYLOAD..).unwrap_or_default())?;
                    match f.version {
                        IpVersion::V4 => Next::V4(f.ip),
                        IpVersion::V6 => Next::V6(f.ip),
                        IpVersion::Mpls => Next::Mpls(f.ip),
                        IpVersion::Pppoe => Next::Pppoe(f.ip),
                    }
                }
                Next::Mpls(b) => w.mpls(b)?,
                Next::Pppoe(b) => w.pppoe(b)?,
            };
        }
    };
    let result = run();
    match (result, plain) {
        (Err(_), Some((net, hash, depth, cut))) => Ok(finish(net, hash, depth, cut)),
        (r, _) => r,
    }
}

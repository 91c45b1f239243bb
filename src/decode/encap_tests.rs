//! Tests of NFLOG, tunnels and label stacks.

use std::net::{IpAddr, Ipv4Addr};

use super::testutil::{eth, ipv4, ipv6, tcp, udp, V4, V4_A, V4_B};
use super::*;

const OUT_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUT_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The inner packet of every test: TCP 10.0.0.1:1234 -> 20.0.0.2:443 with 3 bytes.
fn inner() -> Vec<u8> {
    ipv4(6, &tcp(1234, 443, 0x18, b"abc"))
}

/// An outer IPv4 packet from OUT_A to OUT_B (or back when `back`).
fn outer(proto: u8, back: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = V4::new(proto);
    (h.src, h.dst) = if back { (OUT_B, OUT_A) } else { (OUT_A, OUT_B) };
    h.build(payload)
}

fn vxlan(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(frame);
    v
}

fn gre(flags: u16, proto: u16, extra: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = flags.to_be_bytes().to_vec();
    v.extend_from_slice(&proto.to_be_bytes());
    v.extend_from_slice(extra);
    v.extend_from_slice(payload);
    v
}

fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let s = u32::from(i + 1 == labels.len()) << 8;
        v.extend_from_slice(&(l << 12 | s | 64).to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// Decodes and checks the inner TCP packet; returns the packet's tunnel and the layers.
fn inner_of(lt: u32, frame: &[u8]) -> (u32, Vec<EncapLayer>) {
    let p = decode(lt, frame).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.ip.src, IpAddr::V4(V4_A));
    assert_eq!(p.ip.dst, IpAddr::V4(V4_B));
    assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"abc" && t.dst_port == 443));
    assert!(!p.truncated);
    let layers = encap_layers(lt, frame);
    assert_eq!(usize::from(p.encap_depth), layers.len());
    // Tunnelled frames are routed by their inner addresses, through the full decode; other
    // frames by the fast path.
    let fast = tcp_udp_addresses(lt, frame);
    if layers.is_empty() {
        assert_eq!(fast, Some((p.ip.src, p.ip.dst)));
    } else {
        assert_eq!(fast, None);
    }
    (p.ip.tunnel, layers)
}

fn kinds(layers: &[EncapLayer]) -> Vec<&'static str> {
    layers.iter().map(|l| l.kind.name()).collect()
}

#[test]
fn vxlan_both_ways_share_a_tunnel_and_vnis_differ() {
    let f = |vni, back| {
        let sport = if back { 50_000 } else { 40_000 };
        eth(
            0x0800,
            &outer(
                17,
                back,
                &udp(sport, 4789, &vxlan(vni, &eth(0x0800, &inner()))),
            ),
        )
    };
    let (t1, layers) = inner_of(1, &f(42, false));
    let (t2, _) = inner_of(1, &f(42, true));
    let (t3, _) = inner_of(1, &f(43, false));
    assert_ne!(t1, 0);
    assert_eq!(t1, t2, "the same tunnel both ways");
    assert_ne!(t1, t3, "another VNI is another tunnel");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].kind, EncapKind::Vxlan);
    assert_eq!(layers[0].id, Some(42));
    assert_eq!(layers[0].src, Some(IpAddr::V4(OUT_A)));
    let json = serde_json::to_string(&layers[0]).unwrap();
    assert_eq!(
        json,
        r#"{"type":"vxlan","src":"192.0.2.1","dst":"192.0.2.2","vni":42}"#
    );
    // Without the I flag it is plain UDP to port 4789.
    let mut bad = vxlan(42, &eth(0x0800, &inner()));
    bad[0] = 0;
    let fr = eth(0x0800, &outer(17, false, &udp(1, 4789, &bad)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(u) if u.dst_port == 4789));
    assert_eq!((p.ip.tunnel, p.encap_depth), (0, 0));
}

#[test]
fn plain_packets_are_untouched() {
    let f = eth(0x0800, &inner());
    let p = decode(1, &f).unwrap();
    assert_eq!(
        (p.ip.tunnel, p.encap_depth, p.nflog_prefix(&f)),
        (0, 0, None)
    );
    assert!(encap_layers(1, &f).is_empty());
    assert!(tcp_udp_addresses(1, &f).is_some());
    // UDP on other ports still takes the fast path; UDP to a tunnel port does not.
    let u = eth(0x0800, &ipv4(17, &udp(5000, 53, b"x")));
    assert!(tcp_udp_addresses(1, &u).is_some());
    let u = eth(0x0800, &ipv4(17, &udp(5000, 6081, b"x")));
    assert!(tcp_udp_addresses(1, &u).is_none());
    let u = eth(0x86dd, &ipv6(17, &udp(3544, 5000, b"x")));
    assert!(tcp_udp_addresses(1, &u).is_none());
}

#[test]
fn gre_variants() {
    // Key 7 and a sequence number, IPv4 payload.
    let key_seq = [0, 0, 0, 7, 0, 0, 0, 1];
    let g = gre(0x3000, 0x0800, &key_seq, &inner());
    let (t, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_ne!(t, 0);
    assert_eq!((l[0].kind, l[0].id), (EncapKind::Gre, Some(7)));
    // Another key, another tunnel; checksum present.
    let g = gre(0xa000, 0x0800, &[0, 0, 0, 0, 0, 0, 0, 8], &inner());
    let (t8, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_ne!(t, t8);
    assert_eq!(l[0].id, Some(8));
    // Transparent Ethernet (gretap), over IPv6.
    let g = gre(0, 0x6558, &[], &eth(0x0800, &inner()));
    let (_, l) = inner_of(1, &eth(0x86dd, &ipv6(47, &g)));
    assert_eq!((kinds(&l), l[0].id), (vec!["gre"], None));
    // Version 1 (PPTP) and payloads not read here stay GRE; a cut key is malformed.
    for g in [
        gre(0x0001, 0x880b, &[], &inner()),
        gre(0, 0x0806, &[], &[0; 28]),
    ] {
        let fr = eth(0x0800, &outer(47, false, &g));
        let p = decode(1, &fr).unwrap();
        assert!(matches!(p.l4, L4::Other { proto: 47 }));
        assert_eq!((p.ip.tunnel, p.encap_depth), (0, 0));
    }
    let g = gre(0x2000, 0x0800, &[0, 0], &[]);
    assert_eq!(
        decode(1, &eth(0x0800, &outer(47, false, &g))).unwrap_err(),
        Skip::Malformed("GRE header cut")
    );
}

#[test]
fn erspan_types() {
    let frame = eth(0x0800, &inner());
    // Type I: no sequence number, no ERSPAN header.
    let g = gre(0, 0x88be, &[], &frame);
    let (_, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_eq!(kinds(&l), ["erspan-1"]);
    // Type II: sequence number, 8-byte header with version 1 and session 0x155.
    let mut h2 = vec![0x10, 0x64, 0x01, 0x55, 0, 0, 0, 0];
    h2.extend_from_slice(&frame);
    let g = gre(0x1000, 0x88be, &[0, 0, 0, 9], &h2);
    let (t2, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_eq!((kinds(&l), l[0].id), (vec!["erspan-2"], Some(0x155)));
    // Type III with the optional 8-byte platform subheader.
    let mut h3 = vec![0x20, 0x64, 0x01, 0x56, 1, 2, 3, 4, 0, 0, 0, 1];
    h3.extend_from_slice(&[0; 8]);
    h3.extend_from_slice(&frame);
    let g = gre(0x1000, 0x22eb, &[0, 0, 0, 9], &h3);
    let (t3, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_eq!((kinds(&l), l[0].id), (vec!["erspan-3"], Some(0x156)));
    // Two mirror sessions (a port's two directions mirrored apart) are not two tunnels: the
    // copies of one connection stay one flow, as when captured plain.
    assert_eq!((t2, t3), (0, 0));
    // A wrong version is malformed.
    h2[0] = 0x20;
    let g = gre(0x1000, 0x88be, &[0, 0, 0, 9], &h2);
    assert!(matches!(
        decode(1, &eth(0x0800, &outer(47, false, &g))),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn geneve_gtp_teredo() {
    // Geneve with 8 bytes of options, Ethernet payload.
    let mut gn = vec![0x02, 0, 0x65, 0x58, 0, 0, 42, 0];
    gn.extend_from_slice(&[0xaa; 8]);
    gn.extend_from_slice(&eth(0x0800, &inner()));
    let (_, l) = inner_of(1, &eth(0x0800, &outer(17, false, &udp(7, 6081, &gn))));
    assert_eq!((kinds(&l), l[0].id), (vec!["geneve"], Some(42)));
    // Options longer than the packet: not a tunnel after all, the plain UDP it is.
    gn.truncate(12);
    let fr = eth(0x0800, &outer(17, false, &udp(7, 6081, &gn)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(u) if u.dst_port == 6081));
    assert_eq!((p.encap_depth, p.ip.tunnel), (0, 0));

    // A DNS answer to a client that picked port 4789: the ID's high byte has the I bit, the
    // rest holds no packet. Plain UDP, so the lookup keeps its answer.
    let dns = [
        0x08, 0x00, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0,
        1, 0, 0, 0, 60, 0, 4, 198, 18, 1, 1,
    ];
    let fr = eth(0x0800, &outer(17, true, &udp(53, 4789, &dns)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(u) if u.src_port == 53 && u.payload == dns));
    assert_eq!(p.encap_depth, 0);
    // The same with VXLAN's reserved bytes zero but an inside that is no packet.
    let mut junk = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    junk.extend_from_slice(&[0xee; 30]);
    let fr = eth(0x0800, &outer(17, true, &udp(53, 4789, &junk)));
    assert!(matches!(decode(1, &fr).unwrap().l4, L4::Udp(_)));
    // GTP-U and Teredo ports with no tunnel inside: plain UDP both ways.
    for (s, d) in [(53, 2152), (2152, 53), (53, 3544)] {
        let fr = eth(
            0x0800,
            &outer(17, false, &udp(s, d, &[0x30, 0xff, 0, 40, 1, 2, 3, 4])),
        );
        assert!(
            matches!(decode(1, &fr).unwrap().l4, L4::Udp(_)),
            "{s} -> {d}"
        );
    }

    // A DNS query from port 3544 whose id begins with 6 (its first byte reads as IPv6's
    // version): the datagram holds no IPv6 packet that fills it, so it is plain UDP (DNS).
    let mut q = crate::synth::dns_message("a-rather-long-name.flood.example.com", 0x6abc, false);
    q.resize(q.len().max(48), 0);
    let fr = eth(0x0800, &outer(17, false, &udp(3544, 53, &q)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(u) if u.src_port == 3544 && u.dst_port == 53));
    assert_eq!(p.encap_depth, 0);

    // GTP-U T-PDU with a sequence number and one extension header; TEIDs per direction.
    let gtp = |teid: u32, back: bool| {
        let body = inner();
        let mut g = vec![0x32, 0xff];
        g.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        g.extend_from_slice(&teid.to_be_bytes());
        g.extend_from_slice(&[0, 1, 0, 0x85, 1, 0x10, 0, 0]);
        g.extend_from_slice(&body);
        eth(0x0800, &outer(17, back, &udp(2152, 2152, &g)))
    };
    let (t1, l) = inner_of(1, &gtp(0x1111, false));
    let (t2, _) = inner_of(1, &gtp(0x2222, true));
    assert_eq!((kinds(&l), l[0].id), (vec!["gtp-u"], Some(0x1111)));
    assert_eq!(t1, t2, "the TEIDs of the two directions are one tunnel");
    // An echo request is plain UDP.
    let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
    let fr = eth(0x0800, &outer(17, false, &udp(2152, 2152, &echo)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(_)));

    // Teredo with an origin indication, IPv6 inside.
    let v6 = ipv6(6, &tcp(1234, 443, 0x18, b"abc"));
    let mut te = vec![0, 0, 0x0d, 0x96, 1, 2, 3, 4];
    te.extend_from_slice(&v6);
    let fr = eth(0x0800, &outer(17, false, &udp(3544, 40_000, &te)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"abc"));
    assert!(p.ip.dst.is_ipv6());
    assert_eq!(p.encap_depth, 1);
    // Not IPv6 after the headers: plain UDP.
    let fr = eth(0x0800, &outer(17, false, &udp(3544, 40_000, b"hello")));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Udp(_)));

    // Through a relay on its own port (not 3544): recognised by content, an IPv6 packet that
    // fills the datagram with a Teredo address (2001:0::/32) at one end.
    let mut v6 = ipv6(6, &tcp(1234, 80, 0x18, b"abc"));
    v6[8..12].copy_from_slice(&[0x20, 0x01, 0x00, 0x00]);
    let fr = eth(0x0800, &outer(17, false, &udp(3797, 32_900, &v6)));
    let p = decode(1, &fr).unwrap();
    assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"abc"));
    assert_eq!(p.encap_depth, 1);
    // The split reader routes it by its inner addresses, like Teredo on 3544, also when an
    // Ethernet trailer follows the IP packet (the test reads the datagram, not the frame).
    assert_eq!(tcp_udp_addresses(1, &fr), None);
    let mut trailer = fr.clone();
    trailer.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(tcp_udp_addresses(1, &trailer), None);
    assert_eq!(decode(1, &trailer).unwrap().encap_depth, 1);
    // Without a Teredo address, or with a datagram the IPv6 packet does not fill: plain UDP.
    let mut other = v6.clone();
    other[8..12].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    let fr = eth(0x0800, &outer(17, false, &udp(3797, 32_900, &other)));
    assert!(matches!(decode(1, &fr).unwrap().l4, L4::Udp(_)));
    let mut longer = v6.clone();
    longer.push(0);
    let fr = eth(0x0800, &outer(17, false, &udp(3797, 32_900, &longer)));
    assert!(matches!(decode(1, &fr).unwrap().l4, L4::Udp(_)));
}

#[test]
fn ip_in_ip_and_6in4() {
    let (t, l) = inner_of(101, &outer(4, false, &inner()));
    assert_ne!(t, 0);
    assert_eq!(kinds(&l), ["ipip"]);
    let v6 = ipv6(6, &tcp(1234, 443, 0x18, b"abc"));
    let fr = outer(41, false, &v6);
    let p = decode(101, &fr).unwrap();
    assert!(p.ip.src.is_ipv6() && matches!(p.l4, L4::Tcp(_)));
    assert_eq!(
        encap_layers(101, &outer(41, false, &v6))[0].kind,
        EncapKind::Ipv6InIp
    );
    // IPv4 in IPv6.
    let (_, l) = inner_of(101, &ipv6(4, &inner()));
    assert_eq!(kinds(&l), ["ipip"]);
}

#[test]
fn mpls_stacks_and_pseudowires() {
    // Two labels over IPv4: link-level, not a tunnel of the key.
    let f = eth(0x8847, &mpls(&[100, 200], &inner()));
    let (t, l) = inner_of(1, &f);
    assert_eq!(t, 0);
    assert_eq!(kinds(&l), ["mpls", "mpls"]);
    assert_eq!((l[0].id, l[1].id), (Some(100), Some(200)));
    // Multicast ethertype, IPv6 below.
    let v6 = ipv6(6, &tcp(1234, 443, 0x18, b"abc"));
    let fr = eth(0x8848, &mpls(&[5], &v6));
    let p = decode(1, &fr).unwrap();
    assert!(p.ip.src.is_ipv6());
    // Ethernet pseudowire without and with a control word (the MACs begin with 0x02).
    let pw = eth(0x0800, &inner());
    inner_of(1, &eth(0x8847, &mpls(&[16], &pw)));
    let mut cw = vec![0, 0, 0, 1];
    cw.extend_from_slice(&pw);
    inner_of(1, &eth(0x8847, &mpls(&[16], &cw)));
    // A stack without a bottom, and one deeper than the limit.
    let mut open = mpls(&[1, 2], &[]);
    open[6] &= !1;
    assert_eq!(
        decode(1, &eth(0x8847, &open)).unwrap_err(),
        Skip::Malformed("MPLS label stack cut")
    );
    let deep: Vec<u32> = (1..=9).collect();
    assert_eq!(
        decode(1, &eth(0x8847, &mpls(&deep, &inner()))).unwrap_err(),
        Skip::Malformed("more than 8 encapsulation layers")
    );
}

#[test]
fn pppoe_sessions() {
    let body = inner();
    let mut s = vec![0x11, 0, 0x12, 0x34];
    s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(&[0x00, 0x21]);
    s.extend_from_slice(&body);
    let (t, l) = inner_of(1, &eth(0x8864, &s));
    assert_eq!((t, kinds(&l), l[0].id), (0, vec!["pppoe"], Some(0x1234)));
    // LCP is not IP; discovery (0x8863) is not either.
    s[6..8].copy_from_slice(&[0xc0, 0x21]);
    assert_eq!(
        decode(1, &eth(0x8864, &s)).unwrap_err(),
        Skip::NotIp(0xc021)
    );
    assert_eq!(
        decode(1, &eth(0x8863, &s)).unwrap_err(),
        Skip::NotIp(0x8863)
    );
}

#[test]
fn nested_tunnels_and_the_depth_limit() {
    // VXLAN in GRE in IPv4: two layers, outermost first.
    let v = vxlan(5, &eth(0x0800, &inner()));
    let mid = outer(17, false, &udp(1, 4789, &v));
    let g = gre(0, 0x0800, &[], &mid);
    let (_, l) = inner_of(1, &eth(0x0800, &outer(47, false, &g)));
    assert_eq!(kinds(&l), ["gre", "vxlan"]);
    // Nine IP-in-IP layers.
    let mut p = inner();
    for _ in 0..9 {
        p = outer(4, false, &p);
    }
    assert_eq!(
        decode(101, &p).unwrap_err(),
        Skip::Malformed("more than 8 encapsulation layers")
    );
}

/// An NFLOG frame: header, then TLVs (little-endian length and type) padded to 4 bytes.
pub(crate) fn nflog(family: u8, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut v = vec![family, 0, 0, 5];
    for (ty, val) in tlvs {
        let len = 4 + val.len();
        v.extend_from_slice(&(len as u16).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(val);
        v.resize(v.len() + (len.div_ceil(4) * 4 - len), 0);
    }
    v
}

#[test]
fn nflog_payload_and_prefix() {
    let pkt = inner();
    let hdr = [0x08, 0x00, 3, 0];
    let f = nflog(
        2,
        &[
            (1, &hdr),
            (10, b"AML-DENY\0"),
            (4, &[0, 0, 0, 2]),
            (9, &pkt),
        ],
    );
    let p = decode(239, &f).unwrap();
    assert_eq!(p.nflog_prefix(&f), Some(&b"AML-DENY"[..]));
    assert!(matches!(p.l4, L4::Tcp(t) if t.payload == b"abc"));
    assert_eq!(tcp_udp_addresses(239, &f), Some((V4_A.into(), V4_B.into())));
    // Big-endian TLV headers (a capture from a big-endian host), no prefix, IPv6.
    let v6 = ipv6(17, &udp(1, 53, b"q"));
    let mut be = vec![10, 0, 0, 5];
    be.extend_from_slice(&((4 + v6.len()) as u16).to_be_bytes());
    be.extend_from_slice(&9u16.to_be_bytes());
    be.extend_from_slice(&v6);
    let p = decode(239, &be).unwrap();
    assert!(p.ip.src.is_ipv6() && p.nflog_prefix(&be).is_none());
    // Broken TLVs.
    assert_eq!(
        decode(239, &nflog(2, &[(10, b"X\0")])).unwrap_err(),
        Skip::Malformed("NFLOG frame without a payload")
    );
    // Cut by the snap length before the payload TLV: nothing to decode.
    let mut cut = f.clone();
    cut.truncate(30);
    assert_eq!(
        decode(239, &cut).unwrap_err(),
        Skip::Malformed("NFLOG TLV cut")
    );
    // Cut inside the payload: the packet as far as it goes, marked truncated.
    let mut cut = f.clone();
    cut.truncate(f.len() - 2);
    let p = decode(239, &cut).unwrap();
    assert!(p.truncated);
    assert_eq!(p.nflog_prefix(&cut), Some(&b"AML-DENY"[..]));
    let zero = [2, 0, 0, 5, 0, 0, 9, 0];
    assert_eq!(
        decode(239, &zero).unwrap_err(),
        Skip::Malformed("NFLOG TLV length below 4")
    );
    assert_eq!(
        decode(239, &[2, 0]).unwrap_err(),
        Skip::Malformed("NFLOG header cut")
    );
}

/// Random bytes behind every tunnel header never panic, and every prefix of a valid frame
/// decodes or is skipped.
#[test]
fn hostile_encapsulations_never_panic() {
    let mut rng = crate::rng::XorShift::new(0x5eed_0016);
    let heads: Vec<Vec<u8>> = vec![
        eth(
            0x0800,
            &outer(17, false, &udp(1, 4789, &vxlan(1, &eth(0x0800, &inner())))),
        ),
        eth(
            0x0800,
            &outer(47, false, &gre(0x3000, 0x88be, &[0; 8], &[0x10; 30])),
        ),
        eth(0x8847, &mpls(&[1, 2, 3], &[0; 40])),
        nflog(2, &[(10, b"P\0"), (9, &inner())]),
    ];
    for h in &heads {
        for cut in 0..h.len() {
            let _ = decode(1, &h[..cut]);
            let _ = decode(239, &h[..cut]);
            let _ = encap_layers(1, &h[..cut]);
        }
        for _ in 0..2000 {
            let mut f = h.clone();
            let at = (rng.next_u64() as usize) % f.len();
            f[at] = rng.next_u64() as u8;
            let _ = decode(1, &f);
            let _ = decode(239, &f);
            let _ = tcp_udp_addresses(1, &f);
        }
    }
}

/// An 802.11 data frame carrying `ip` after LLC/SNAP: `fc0` the first frame-control byte,
/// `flags` the second, `extra` the bytes between the 24-byte header and LLC.
fn wifi(fc0: u8, flags: u8, extra: &[u8], ip: &[u8]) -> Vec<u8> {
    let mut v = vec![fc0, flags, 0, 0];
    v.extend_from_slice(&[0x02; 18]);
    v.extend_from_slice(&[0x10, 0]);
    v.extend_from_slice(extra);
    v.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    v.extend_from_slice(ip);
    v
}

#[test]
fn wireless_and_cisco_hdlc_link_layers() {
    let ip = inner();
    // Plain data to the AP, QoS data from it, a four-address QoS frame with HT control.
    for f in [
        wifi(0x08, 0x01, &[], &ip),
        wifi(0x88, 0x02, &[0, 0], &ip),
        wifi(
            0x88,
            0x83,
            &[0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0, 0, 1, 2, 3, 4],
            &ip,
        ),
    ] {
        inner_of(105, &f);
        // Radiotap: version 0, length 12, then the 802.11 frame.
        let mut r = vec![0, 0, 12, 0, 0x02, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&f);
        inner_of(127, &r);
    }
    // Protected, management, null data, not SNAP, cut.
    assert_eq!(
        decode(105, &wifi(0x88, 0x41, &[0, 0], &ip)).unwrap_err(),
        Skip::Malformed("802.11 frame protected (encrypted)")
    );
    assert_eq!(
        decode(105, &wifi(0x80, 0, &[], &ip)).unwrap_err(),
        Skip::NotIp(0)
    );
    assert_eq!(
        decode(105, &wifi(0x48, 1, &[], &ip)).unwrap_err(),
        Skip::NotIp(0)
    );
    let mut not_snap = wifi(0x08, 1, &[], &ip);
    not_snap[24] = 0x42;
    assert_eq!(decode(105, &not_snap).unwrap_err(), Skip::NotIp(0));
    assert_eq!(
        decode(105, &wifi(0x08, 1, &[], &ip)[..20]).unwrap_err(),
        Skip::Malformed("802.11 header cut")
    );
    assert!(matches!(
        decode(127, &[1, 0, 8, 0, 0, 0, 0, 0]),
        Err(Skip::Malformed(_))
    ));
    // Cisco HDLC: IPv4, and SLARP is not IP.
    let mut h = vec![0x0f, 0, 0x08, 0x00];
    h.extend_from_slice(&ip);
    inner_of(104, &h);
    assert_eq!(
        decode(104, &[0x8f, 0, 0x80, 0x35, 0, 0]).unwrap_err(),
        Skip::NotIp(0x8035)
    );
    // Linux SLL carrying GRE.
    let g = gre(0x2000, 0x0800, &[0, 0, 0, 3], &ip);
    let f = super::testutil::sll(0, 1, 0x0800, &outer(47, false, &g));
    let (_, l) = inner_of(113, &f);
    assert_eq!((kinds(&l), l[0].id), (vec!["gre"], Some(3)));
}

/// `EncapKind::ALL` holds every kind once: the match below has to name a kind added to the
/// enum, and the assertion then fails until ALL lists it.
#[test]
fn every_encap_kind_is_listed() {
    fn index(k: EncapKind) -> usize {
        match k {
            EncapKind::Gre => 0,
            EncapKind::Erspan1 => 1,
            EncapKind::Erspan2 => 2,
            EncapKind::Erspan3 => 3,
            EncapKind::Vxlan => 4,
            EncapKind::Geneve => 5,
            EncapKind::GtpU => 6,
            EncapKind::Teredo => 7,
            EncapKind::IpIp => 8,
            EncapKind::Ipv6InIp => 9,
            EncapKind::Mpls => 10,
            EncapKind::Pppoe => 11,
        }
    }
    let mut seen: Vec<usize> = EncapKind::ALL.iter().map(|&k| index(k)).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
}

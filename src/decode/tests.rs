//! Tests of `decode` over hand-built frames of every supported link type.

use std::net::IpAddr;

use super::testutil::*;
use super::*;

const ETH: u32 = 1;
const SLL: u32 = 113;
const SLL2: u32 = 276;
const RAW: u32 = 101;
const NULL: u32 = 0;
const LOOP: u32 = 108;

fn v4a() -> IpAddr {
    IpAddr::V4(V4_A)
}
fn v4b() -> IpAddr {
    IpAddr::V4(V4_B)
}
fn v6a() -> IpAddr {
    IpAddr::V6(V6_A)
}
fn v6b() -> IpAddr {
    IpAddr::V6(V6_B)
}

fn ok(lt: u32, frame: &[u8]) -> Packet<'_> {
    match decode(lt, frame) {
        Ok(p) => p,
        Err(e) => panic!("decode({lt}) failed: {e:?}"),
    }
}

/// Decode a frame built on the spot (leaked: tests only).
fn dec(lt: u32, frame: Vec<u8>) -> Packet<'static> {
    ok(lt, Vec::leak(frame))
}

fn as_tcp<'a>(p: &Packet<'a>) -> Tcp<'a> {
    match p.l4 {
        L4::Tcp(t) => t,
        ref other => panic!("expected TCP, got {other:?}"),
    }
}

fn as_udp<'a>(p: &Packet<'a>) -> Udp<'a> {
    match p.l4 {
        L4::Udp(u) => u,
        ref other => panic!("expected UDP, got {other:?}"),
    }
}

fn syn_v4() -> Vec<u8> {
    ipv4(6, &tcp(40000, 443, tcp_flags::SYN, &[]))
}

fn udp_v6() -> Vec<u8> {
    ipv6(17, &udp(5353, 53, b"query"))
}

fn check_syn_v4(p: &Packet<'_>) {
    assert_eq!(p.ip.src, v4a());
    assert_eq!(p.ip.dst, v4b());
    assert_eq!(p.ip.proto, ipproto::TCP);
    assert_eq!(p.ip.ip_id, Some(0x1234));
    assert_eq!(p.ip.ttl, 64);
    assert_eq!(p.ip.payload_len, 20);
    assert!(!p.truncated);
    let t = as_tcp(p);
    assert_eq!((t.src_port, t.dst_port), (40000, 443));
    assert_eq!(t.flags, tcp_flags::SYN);
}

fn check_udp_v6(p: &Packet<'_>) {
    assert_eq!(p.ip.src, v6a());
    assert_eq!(p.ip.dst, v6b());
    assert_eq!(p.ip.proto, ipproto::UDP);
    assert_eq!(p.ip.ip_id, None);
    assert_eq!(p.ip.ttl, 57);
    assert!(!p.truncated);
    let u = as_udp(p);
    assert_eq!((u.src_port, u.dst_port), (5353, 53));
    assert_eq!(u.payload, b"query");
    assert_eq!(u.payload_len, 5);
}

// ---------------------------------------------------------------- link layers

#[test]
fn ethernet_ipv4_and_ipv6() {
    let f = eth(0x0800, &syn_v4());
    let p = ok(ETH, &f);
    check_syn_v4(&p);
    assert_eq!(p.vlans, [None, None]);
    check_udp_v6(&dec(ETH, eth(0x86dd, &udp_v6())));
}

#[test]
fn single_vlan_tag() {
    let f = eth_vlans(&[(0x8100, 42)], 0x0800, &syn_v4());
    let p = ok(ETH, &f);
    assert_eq!(p.vlans, [Some(42), None]);
    check_syn_v4(&p);
}

#[test]
fn qinq_keeps_both_ids() {
    let f = eth_vlans(&[(0x88a8, 100), (0x8100, 200)], 0x86dd, &udp_v6());
    let p = ok(ETH, &f);
    assert_eq!(p.vlans, [Some(100), Some(200)]);
    check_udp_v6(&p);
    let f = eth_vlans(&[(0x9100, 7), (0x8100, 4095)], 0x0800, &syn_v4());
    assert_eq!(ok(ETH, &f).vlans, [Some(7), Some(4095)]);
}

#[test]
fn three_tags_keep_the_first_two() {
    let f = eth_vlans(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], 0x0800, &syn_v4());
    let p = ok(ETH, &f);
    assert_eq!(p.vlans, [Some(1), Some(2)]);
    check_syn_v4(&p);
}

#[test]
fn vlan_tag_cut_is_malformed() {
    let f = eth_vlans(&[(0x8100, 42)], 0x0800, &[]);
    assert!(matches!(decode(ETH, &f[..16]), Err(Skip::Malformed(_))));
}

#[test]
fn arp_and_other_ethertypes_are_not_ip() {
    let arp = [0u8, 1, 8, 0, 6, 4, 0, 1];
    assert_eq!(
        decode(ETH, &eth(0x0806, &arp)).unwrap_err(),
        Skip::NotIp(0x0806)
    );
    assert_eq!(
        decode(ETH, &eth(0x88cc, &[0; 30])).unwrap_err(),
        Skip::NotIp(0x88cc)
    );
    // ARP inside a VLAN.
    let f = eth_vlans(&[(0x8100, 5)], 0x0806, &arp);
    assert_eq!(decode(ETH, &f).unwrap_err(), Skip::NotIp(0x0806));
    // 802.3 length field instead of an ethertype.
    assert_eq!(
        decode(ETH, &eth(0x0040, &[0; 64])).unwrap_err(),
        Skip::NotIp(0x0040)
    );
}

#[test]
fn linux_sll_loopback_incoming_and_outgoing() {
    for packet_type in [0u16, 4] {
        let f = sll(packet_type, 772, 0x0800, &syn_v4());
        check_syn_v4(&ok(SLL, &f));
        let f = sll(packet_type, 772, 0x86dd, &udp_v6());
        check_udp_v6(&ok(SLL, &f));
    }
    // An ordinary Ethernet device (ARPHRD 1), VLAN tag in the protocol field.
    let tagged = cat_tag(0x8100, 9, 0x0800, &syn_v4());
    let p = dec(SLL, sll(0, 1, 0x8100, &tagged));
    assert_eq!(p.vlans, [Some(9), None]);
    check_syn_v4(&p);
}

/// 4-byte VLAN tag body (TCI + inner type) followed by a payload.
fn cat_tag(_tpid: u16, id: u16, inner: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&inner.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn linux_sll_non_ip() {
    assert_eq!(
        decode(SLL, &sll(0, 1, 0x0806, &[0; 28])).unwrap_err(),
        Skip::NotIp(0x0806)
    );
    // 802.2 LLC frames carry a non-ethertype protocol value.
    assert_eq!(
        decode(SLL, &sll(0, 1, 0x0004, &[0; 28])).unwrap_err(),
        Skip::NotIp(0x0004)
    );
    assert!(matches!(decode(SLL, &[0; 15]), Err(Skip::Malformed(_))));
}

#[test]
fn linux_sll2() {
    for packet_type in [0u8, 4] {
        check_syn_v4(&dec(SLL2, sll2(0x0800, 772, packet_type, &syn_v4())));
        check_udp_v6(&dec(SLL2, sll2(0x86dd, 1, packet_type, &udp_v6())));
    }
    assert_eq!(
        decode(SLL2, &sll2(0x0806, 1, 0, &[0; 28])).unwrap_err(),
        Skip::NotIp(0x0806)
    );
    assert_eq!(
        decode(SLL2, &sll2(0x0004, 1, 0, &[0; 28])).unwrap_err(),
        Skip::NotIp(4)
    );
    assert!(matches!(
        decode(SLL2, &[8, 0, 0, 0]),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn bsd_null_both_byte_orders() {
    check_syn_v4(&dec(NULL, null_le(2, &syn_v4())));
    check_syn_v4(&dec(NULL, null_be(2, &syn_v4())));
    for af in [24, 28, 30] {
        check_udp_v6(&dec(NULL, null_le(af, &udp_v6())));
        check_udp_v6(&dec(NULL, null_be(af, &udp_v6())));
    }
    assert_eq!(
        decode(NULL, &null_le(7, &[0; 20])).unwrap_err(),
        Skip::NotIp(7)
    );
    assert!(matches!(decode(NULL, &[2, 0, 0]), Err(Skip::Malformed(_))));
}

#[test]
fn openbsd_loop() {
    check_syn_v4(&dec(LOOP, null_be(2, &syn_v4())));
    check_udp_v6(&dec(LOOP, null_be(24, &udp_v6())));
}

#[test]
fn raw_ip_link_types() {
    for lt in [RAW, 12, 14] {
        check_syn_v4(&dec(lt, syn_v4()));
        check_udp_v6(&dec(lt, udp_v6()));
    }
    check_syn_v4(&dec(228, syn_v4()));
    check_udp_v6(&dec(229, udp_v6()));
    // The raw IPv4 link type with an IPv6 packet is malformed, and the other way round.
    assert!(matches!(decode(228, &udp_v6()), Err(Skip::Malformed(_))));
    assert!(matches!(decode(229, &syn_v4()), Err(Skip::Malformed(_))));
    assert!(matches!(decode(RAW, &[0x50; 40]), Err(Skip::Malformed(_))));
    assert!(matches!(decode(RAW, &[]), Err(Skip::Malformed(_))));
}

#[test]
fn unsupported_link_type() {
    for lt in [147u32, 65535, u32::MAX] {
        assert_eq!(
            decode(lt, &eth(0x0800, &syn_v4())).unwrap_err(),
            Skip::UnsupportedLinkType(lt)
        );
    }
}

#[test]
fn short_frames_are_malformed() {
    let f = eth(0x0800, &syn_v4());
    for n in 0..14 {
        assert!(
            matches!(decode(ETH, &f[..n]), Err(Skip::Malformed(_))),
            "{n}"
        );
    }
    // The IPv4 header cut.
    assert!(matches!(
        decode(ETH, &f[..14 + 19]),
        Err(Skip::Malformed(_))
    ));
    // Version 4 with IHL 3.
    let mut bad = syn_v4();
    bad[0] = 0x43;
    assert!(matches!(decode(RAW, &bad), Err(Skip::Malformed(_))));
}

// ---------------------------------------------------------------- IP and TCP/UDP

#[test]
fn ipv6_hop_by_hop_and_destination_options_before_tcp() {
    let seg = tcp(50000, 22, tcp_flags::SYN | tcp_flags::ACK, b"hello");
    let mut rest = opts_ext(60, 0); // hop-by-hop, 8 bytes, next = destination options
    rest.extend(opts_ext(43, 1)); // destination options, 16 bytes, next = routing
    rest.extend(opts_ext(6, 0)); // routing, 8 bytes, next = TCP
    rest.extend(&seg);
    let f = eth(0x86dd, &ipv6(0, &rest));
    let p = ok(ETH, &f);
    assert_eq!(p.ip.proto, ipproto::TCP);
    assert_eq!(p.ip.payload_len as usize, seg.len());
    assert!(!p.truncated);
    let t = as_tcp(&p);
    assert_eq!((t.src_port, t.dst_port), (50000, 22));
    assert_eq!(t.flags, tcp_flags::SYN | tcp_flags::ACK);
    assert_eq!(t.payload, b"hello");
    assert_eq!(t.payload_len, 5);
}

#[test]
fn ipv6_extension_header_cut() {
    let mut rest = opts_ext(60, 0);
    rest.extend(opts_ext(6, 1));
    rest.extend(tcp(1, 2, 0, &[]));
    let full = ipv6(0, &rest);
    // Cut inside the destination options header.
    let p = ok(RAW, &full[..40 + 8 + 10]);
    assert!(p.truncated);
    assert!(matches!(p.l4, L4::Other { proto: 60 }));
}

#[test]
fn tcp_with_options_and_payload() {
    let seg = tcp_full(
        51000,
        443,
        0xdead_beef,
        0x0102_0304,
        tcp_flags::PSH | tcp_flags::ACK,
        502,
        &[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7], // NOP NOP timestamps
        b"GET / HTTP/1.1\r\n",
    );
    let p = dec(ETH, eth(0x0800, &ipv4(6, &seg)));
    let t = as_tcp(&p);
    assert_eq!(t.seq, 0xdead_beef);
    assert_eq!(t.ack, 0x0102_0304);
    assert_eq!(t.flags, tcp_flags::PSH | tcp_flags::ACK);
    assert_eq!(t.window, 502);
    assert_eq!(t.payload, b"GET / HTTP/1.1\r\n");
    assert_eq!(t.payload_len, 16);
    assert_eq!(p.ip.payload_len, 32 + 16);
    assert!(!p.truncated);
}

#[test]
fn snaplen_cut_tcp_payload() {
    let payload = [0x16u8; 1200];
    let f = eth(0x0800, &ipv4(6, &tcp(443, 51000, tcp_flags::ACK, &payload)));
    let cut = &f[..96];
    let p = ok(ETH, cut);
    assert!(p.truncated);
    assert_eq!(p.ip.payload_len, 20 + 1200);
    let t = as_tcp(&p);
    assert_eq!(t.payload.len(), 96 - 14 - 20 - 20);
    assert_eq!(t.payload_len, 1200);
    // Same over IPv6.
    let f = eth(0x86dd, &ipv6(6, &tcp(443, 51000, tcp_flags::ACK, &payload)));
    let p = ok(ETH, &f[..100]);
    assert!(p.truncated);
    let t = as_tcp(&p);
    assert_eq!(t.payload.len(), 100 - 14 - 40 - 20);
    assert_eq!(t.payload_len, 1200);
}

#[test]
fn cut_inside_tcp_header() {
    // A SYN with 20 bytes of options, as captured with a 68-byte snap length.
    let seg = tcp_full(40000, 443, 7, 0, tcp_flags::SYN, 64240, &syn_options(), &[]);
    let f = eth(0x0800, &ipv4(6, &seg));
    let p = ok(ETH, &f[..68]);
    assert!(p.truncated);
    let t = as_tcp(&p);
    assert_eq!(
        (t.src_port, t.dst_port, t.seq, t.flags),
        (40000, 443, 7, tcp_flags::SYN)
    );
    assert!(t.payload.is_empty());
    assert_eq!(t.payload_len, 0);
    // Fewer than 20 bytes of TCP: no TCP view.
    for n in [34, 35, 38, 40, 53] {
        let p = ok(ETH, &f[..n]);
        assert!(p.truncated, "{n}");
        assert!(matches!(p.l4, L4::Other { proto: 6 }), "{n}");
    }
    // Data offset < 5 is malformed.
    let mut bad = ipv4(6, &tcp(1, 2, 0, &[]));
    bad[20 + 12] = 0x40;
    assert!(matches!(ok(RAW, &bad).l4, L4::Other { proto: 6 }));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = eth(0x0800, &ipv4(17, &udp(1000, 53, b"ab")));
    f.resize(60, 0xee);
    let p = ok(ETH, &f);
    assert!(!p.truncated);
    assert_eq!(p.ip.payload_len, 10);
    let u = as_udp(&p);
    assert_eq!(u.payload, b"ab");
    assert_eq!(u.payload_len, 2);
    // A bare TCP ACK padded to 60 bytes.
    let mut f = eth(0x0800, &ipv4(6, &tcp(1, 2, tcp_flags::ACK, &[])));
    f.resize(60, 0);
    let t = as_tcp(&ok(ETH, &f));
    assert!(t.payload.is_empty());
    assert_eq!(t.payload_len, 0);
    // Padding after a small IPv6 packet.
    let mut f = eth(0x86dd, &ipv6(6, &tcp(1, 2, tcp_flags::ACK, &[])));
    f.extend_from_slice(&[0xee; 6]);
    let t = as_tcp(&ok(ETH, &f));
    assert!(t.payload.is_empty());
}

#[test]
fn udp_length_field_is_clamped() {
    // UDP length larger than the IP datagram.
    let p = dec(RAW, ipv4(17, &udp_len(1, 2, 500, b"abcd")));
    let u = as_udp(&p);
    assert_eq!(u.payload, b"abcd");
    assert_eq!(u.payload_len, 4);
    // UDP length smaller than the IP datagram: trailing bytes are not payload.
    let p = dec(RAW, ipv4(17, &udp_len(1, 2, 10, b"abcd")));
    let u = as_udp(&p);
    assert_eq!(u.payload, b"ab");
    assert_eq!(u.payload_len, 2);
    // UDP length 0 (offload): the IP length is used.
    let u = as_udp(&dec(RAW, ipv4(17, &udp_len(1, 2, 0, b"abcd")))).payload_len;
    assert_eq!(u, 4);
    // Cut UDP header.
    let f = ipv4(17, &udp(1, 2, b"x"));
    let p = ok(RAW, &f[..25]);
    assert!(p.truncated);
    assert!(matches!(p.l4, L4::Other { proto: 17 }));
}

#[test]
fn ipv4_options_and_zero_total_length() {
    let mut h = V4::new(6);
    h.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
    let p = dec(RAW, h.build(&tcp(5, 6, tcp_flags::RST, &[])));
    assert_eq!(p.ip.payload_len, 20);
    assert_eq!(as_tcp(&p).flags, tcp_flags::RST);
    // Total length 0, as captured on a sender with segmentation offload.
    let mut h = V4::new(6);
    h.total_len = Some(0);
    let p = dec(RAW, h.build(&tcp(5, 6, tcp_flags::ACK, &[7; 3000])));
    assert!(!p.truncated);
    assert_eq!(as_tcp(&p).payload.len(), 3000);
    assert_eq!(as_tcp(&p).payload_len, 3000);
}

#[test]
fn other_protocols() {
    let p = dec(RAW, ipv4(47, &[0; 8])); // GRE
    assert!(matches!(p.l4, L4::Other { proto: 47 }));
    assert_eq!(p.ip.proto, 47);
    let p = dec(RAW, ipv6(59, &[])); // no next header
    assert!(matches!(p.l4, L4::Other { proto: 59 }));
}

// ---------------------------------------------------------------- ICMP

#[test]
fn icmp_port_unreachable_quoting_udp() {
    let original = V4 {
        src: V4_B,
        dst: V4_A,
        ..V4::new(17)
    }
    .build(&udp(33434, 53, &[0; 32]));
    // Quote the IP header and the first 8 bytes of UDP, as RFC 792 requires.
    let err = icmp(3, 3, [0; 4], &original[..28]);
    let p = dec(ETH, eth(0x0800, &ipv4(1, &err)));
    assert!(!p.truncated);
    match p.l4 {
        L4::IcmpError(e) => {
            assert!(!e.v6);
            assert_eq!((e.icmp_type, e.code), (3, 3));
            assert_eq!(
                e.quoted,
                Some(Quoted {
                    proto: 17,
                    src: v4b(),
                    dst: v4a(),
                    src_port: 33434,
                    dst_port: 53
                })
            );
        }
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn icmp_admin_prohibited_quoting_tcp_syn() {
    let syn = tcp_full(
        40001,
        8443,
        99,
        0,
        tcp_flags::SYN,
        64240,
        &syn_options(),
        &[],
    );
    let original = ipv4(6, &syn);
    let err = icmp(3, 13, [0; 4], &original[..28]);
    let p = dec(
        RAW,
        V4 {
            src: V4_B,
            dst: V4_A,
            ..V4::new(1)
        }
        .build(&err),
    );
    let L4::IcmpError(e) = p.l4 else {
        panic!("{:?}", p.l4)
    };
    assert_eq!((e.icmp_type, e.code), (3, 13));
    let q = e.quoted.unwrap();
    assert_eq!((q.proto, q.src, q.dst), (6, v4a(), v4b()));
    assert_eq!((q.src_port, q.dst_port), (40001, 8443));
    // A quote of the whole packet works too, and one too short for ports gives None.
    let err = icmp(3, 13, [0; 4], &original);
    let L4::IcmpError(e) = dec(RAW, ipv4(1, &err)).l4 else {
        panic!()
    };
    assert_eq!(e.quoted.unwrap().dst_port, 8443);
    let err = icmp(3, 13, [0; 4], &original[..22]);
    let L4::IcmpError(e) = dec(RAW, ipv4(1, &err)).l4 else {
        panic!()
    };
    assert_eq!(e.quoted, None);
}

#[test]
fn icmp_time_exceeded_and_redirect() {
    let original = ipv4(17, &udp(40000, 33435, &[0; 20]));
    for (t, c) in [(11u8, 0u8), (5, 1), (4, 0), (12, 0)] {
        let err = icmp(t, c, [0; 4], &original[..28]);
        let L4::IcmpError(e) = dec(RAW, ipv4(1, &err)).l4 else {
            panic!()
        };
        assert_eq!((e.icmp_type, e.code), (t, c));
        assert_eq!(e.quoted.unwrap().dst_port, 33435);
    }
}

#[test]
fn icmpv6_unreachable_quoting_tcp_over_v6() {
    let syn = tcp_full(40002, 443, 1, 0, tcp_flags::SYN, 64800, &syn_options(), &[]);
    let original = ipv6(6, &syn);
    // ICMPv6 quotes as much as fits in 1280 bytes; a router often cuts it shorter.
    for quote_len in [48, 60, original.len()] {
        let err = icmp(1, 1, [0; 4], &original[..quote_len]);
        let f = eth(0x86dd, &ipv6_with(V6_B, V6_A, 58, &err, None));
        let p = ok(ETH, &f);
        let L4::IcmpError(e) = p.l4 else {
            panic!("{:?}", p.l4)
        };
        assert!(e.v6);
        assert_eq!((e.icmp_type, e.code), (1, 1));
        assert_eq!(
            e.quoted,
            Some(Quoted {
                proto: 6,
                src: v6a(),
                dst: v6b(),
                src_port: 40002,
                dst_port: 443
            })
        );
    }
    // Packet too big, time exceeded, parameter problem.
    for t in [2u8, 3, 4] {
        let err = icmp(t, 0, [0, 0, 5, 0], &original[..48]);
        let L4::IcmpError(e) = dec(RAW, ipv6(58, &err)).l4 else {
            panic!()
        };
        assert_eq!(e.icmp_type, t);
        assert!(e.quoted.is_some());
    }
}

#[test]
fn icmpv6_quote_with_extension_headers() {
    let mut rest = opts_ext(17, 0);
    rest.extend(udp(5000, 4789, &[0; 16]));
    let original = ipv6(60, &rest);
    let err = icmp(1, 4, [0; 4], &original[..40 + 8 + 8]);
    let L4::IcmpError(e) = dec(RAW, ipv6(58, &err)).l4 else {
        panic!()
    };
    let q = e.quoted.unwrap();
    assert_eq!((q.proto, q.src_port, q.dst_port), (17, 5000, 4789));
}

#[test]
fn icmp_echo_and_other() {
    let p = dec(RAW, ipv4(1, &icmp(8, 0, [0x12, 0x34, 0, 1], b"ping")));
    assert!(matches!(
        p.l4,
        L4::Icmp(Icmp {
            v6: false,
            icmp_type: 8,
            code: 0,
            echo_id: Some(0x1234)
        })
    ));
    let p = dec(RAW, ipv4(1, &icmp(0, 0, [0xab, 0xcd, 0, 1], b"ping")));
    assert!(matches!(
        p.l4,
        L4::Icmp(Icmp {
            echo_id: Some(0xabcd),
            ..
        })
    ));
    let p = dec(RAW, ipv6(58, &icmp(128, 0, [0, 7, 0, 1], b"")));
    assert!(matches!(
        p.l4,
        L4::Icmp(Icmp {
            v6: true,
            icmp_type: 128,
            echo_id: Some(7),
            ..
        })
    ));
    let p = dec(RAW, ipv6(58, &icmp(129, 0, [0, 8, 0, 1], b"")));
    assert!(matches!(
        p.l4,
        L4::Icmp(Icmp {
            echo_id: Some(8),
            ..
        })
    ));
    // Neighbour solicitation, router advertisement, ICMPv4 timestamp: no echo id.
    for (proto, t) in [(58u8, 135u8), (58, 134), (1, 13)] {
        let body = icmp(t, 0, [1, 2, 3, 4], &[0; 16]);
        let f = if proto == 58 {
            ipv6(58, &body)
        } else {
            ipv4(1, &body)
        };
        let L4::Icmp(i) = ok(RAW, &f).l4 else {
            panic!()
        };
        assert_eq!((i.icmp_type, i.echo_id), (t, None));
    }
    // Only type and code.
    let f = ipv4(1, &[8, 0]);
    let p = ok(RAW, &f);
    assert!(p.truncated);
    assert!(matches!(p.l4, L4::Icmp(Icmp { echo_id: None, .. })));
    assert!(matches!(dec(RAW, ipv4(1, &[8])).l4, L4::Other { proto: 1 }));
}

// ---------------------------------------------------------------- fragments

#[test]
fn ipv4_fragments_are_reported() {
    let data = [9u8; 16];
    let first = V4::new(17).frag(0, true).build(&data);
    let p = ok(RAW, &first);
    let L4::Fragment(f) = p.l4 else {
        panic!("{:?}", p.l4)
    };
    assert_eq!(
        f.key(&p.ip),
        FragKey {
            src: v4a(),
            dst: v4b(),
            id: 0x1234,
            proto: 17,
        }
    );
    assert_eq!(
        (f.offset, f.more_fragments, f.data.len(), f.data_len),
        (0, true, 16, 16)
    );
    let last = V4::new(17).frag(1480, false).build(&data);
    let L4::Fragment(f) = ok(RAW, &last).l4 else {
        panic!()
    };
    assert_eq!((f.offset, f.more_fragments), (1480, false));
    // A cut fragment keeps its declared length.
    let p = ok(RAW, &first[..30]);
    assert!(p.truncated);
    let L4::Fragment(f) = p.l4 else { panic!() };
    assert_eq!((f.data.len(), f.data_len), (10, 16));
    // DF alone is not fragmentation.
    let mut df = syn_v4();
    df[6] = 0x40;
    check_syn_v4(&ok(RAW, &df));
}

#[test]
fn ipv6_fragments_and_atomic_fragments() {
    let mut rest = frag_ext(17, 0, true, 0xcafe_f00d);
    rest.extend(udp(1, 2, &[0; 8]));
    let p = dec(RAW, ipv6(44, &rest));
    let L4::Fragment(f) = p.l4 else {
        panic!("{:?}", p.l4)
    };
    assert_eq!(
        f.key(&p.ip),
        FragKey {
            src: v6a(),
            dst: v6b(),
            id: 0xcafe_f00d,
            proto: 17,
        }
    );
    assert_eq!((f.offset, f.more_fragments, f.data_len), (0, true, 16));
    assert_eq!(p.ip.proto, 17);
    // Non-first fragment whose next header is an extension: the data is not walked.
    let mut rest = opts_ext(44, 0); // hop-by-hop
    rest.extend(frag_ext(60, 1232, false, 77));
    rest.extend([0xff; 24]);
    let L4::Fragment(f) = dec(RAW, ipv6(0, &rest)).l4 else {
        panic!()
    };
    assert_eq!(
        (f.offset, f.proto, f.data.len(), f.data_len),
        (1232, 60, 24, 24)
    );
    // Atomic fragment: decoded as the whole datagram it is.
    let mut rest = frag_ext(6, 0, false, 5);
    rest.extend(tcp(7, 8, tcp_flags::FIN, &[]));
    let p = dec(RAW, ipv6(44, &rest));
    assert_eq!(as_tcp(&p).flags, tcp_flags::FIN);
    assert_eq!(p.ip.payload_len, 20);
}

// ---------------------------------------------------------------- never panic

fn valid_frames() -> Vec<(u32, Vec<u8>)> {
    let tcp_payload: Vec<u8> = (0..200u8).collect();
    let seg = tcp_full(1, 2, 3, 4, 0x12, 5, &syn_options(), &tcp_payload);
    let v4 = ipv4(6, &seg);
    let mut ext = opts_ext(60, 0);
    ext.extend(opts_ext(44, 0));
    ext.extend(frag_ext(17, 0, true, 9));
    ext.extend(udp(3, 4, &[1; 40]));
    let v6 = ipv6(0, &ext);
    let icmp4 = ipv4(1, &icmp(3, 3, [0; 4], &ipv4(17, &udp(5, 6, &[0; 8]))));
    let icmp6 = ipv6(58, &icmp(1, 0, [0; 4], &ipv6(6, &seg)));
    let frag4 = V4::new(17).frag(8, true).build(&[0; 32]);
    let mut v = Vec::new();
    for ip in [&v4, &v6, &icmp4, &icmp6, &frag4] {
        let et = if ip[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
        let af = if et == 0x0800 { 2 } else { 30 };
        v.push((ETH, eth(et, ip)));
        v.push((ETH, eth_vlans(&[(0x88a8, 1), (0x8100, 2)], et, ip)));
        v.push((SLL, sll(4, 772, et, ip)));
        v.push((SLL2, sll2(et, 772, 0, ip)));
        v.push((RAW, ip.to_vec()));
        v.push((12, ip.to_vec()));
        v.push((14, ip.to_vec()));
        v.push((if et == 0x0800 { 228 } else { 229 }, ip.to_vec()));
        v.push((NULL, null_le(af, ip)));
        v.push((LOOP, null_be(af, ip)));
    }
    v
}

const LINK_TYPES: [u32; 13] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 9, 50];

fn exercise(lt: u32, data: &[u8]) {
    // The split reader's shortcut names the addresses `decode` finds, never for a fragment.
    if let (Some((a, b)), Ok(p)) = (tcp_udp_addresses(lt, data), decode(lt, data)) {
        assert_eq!((p.ip.src, p.ip.dst), (a, b), "{data:02x?}");
        assert!(matches!(p.l4, L4::Tcp(_) | L4::Udp(_) | L4::Other { .. }));
    }
    if let Ok(p) = decode(lt, data) {
        // Views must lie within the frame and within what the headers declare.
        match p.l4 {
            L4::Tcp(t) => assert!(t.payload.len() <= data.len()),
            L4::Udp(u) => assert!(u.payload.len() <= data.len()),
            L4::Fragment(f) => {
                assert!(f.data.len() <= data.len());
                let mut d = Defragmenter::new(1 << 16, 4, 1_000);
                if let Some(r) = d.push(0, &p.ip, &f) {
                    let _ = decode_transport(r.ip, &r.data);
                }
            }
            _ => {}
        }
        let _ = decode_transport(p.ip, data);
    }
}

#[test]
fn addresses_shortcut_for_plain_tcp_and_udp_only() {
    let mut shortcut = 0;
    for (lt, frame) in valid_frames() {
        let p = ok(lt, &frame);
        match tcp_udp_addresses(lt, &frame) {
            Some(ab) => {
                assert_eq!(ab, (p.ip.src, p.ip.dst));
                shortcut += 1;
            }
            // Left to `decode`: ICMP, fragments, extension headers, other protocols.
            None => assert!(
                !matches!(p.l4, L4::Tcp(_) | L4::Udp(_)) || p.ip.src.is_ipv6(),
                "{lt} {p:?}"
            ),
        }
    }
    assert!(shortcut >= 5, "{shortcut}");
    assert_eq!(tcp_udp_addresses(RAW, &syn_v4()), Some((v4a(), v4b())));
    assert_eq!(
        tcp_udp_addresses(ETH, &eth(0x86dd, &udp_v6())),
        Some((v6a(), v6b()))
    );
    let frag = eth(0x0800, &V4::new(17).frag(8, false).build(&[0; 16]));
    assert_eq!(tcp_udp_addresses(ETH, &frag), None);
    let icmp4 = eth(0x0800, &ipv4(1, &icmp(8, 0, [0; 4], b"")));
    assert_eq!(tcp_udp_addresses(ETH, &icmp4), None);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..6000 {
        let len = rng.below(if i % 10 == 0 { 1600 } else { 120 });
        let mut data = rng.bytes(len);
        // Make the random bytes look like IP often enough to get past the first checks.
        if let Some(b) = data.first_mut() {
            if i % 3 == 0 {
                *b = 0x45;
            } else if i % 3 == 1 {
                *b = 0x60;
            }
        }
        for lt in LINK_TYPES {
            exercise(lt, &data);
        }
    }
}

#[test]
fn mutated_valid_frames_never_panic() {
    let mut rng = Rng(42);
    for (lt, frame) in valid_frames() {
        ok(lt, &frame);
        for n in 0..=frame.len() {
            exercise(lt, &frame[..n]);
        }
        for _ in 0..400 {
            let mut f = frame.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(f.len());
                f[at] ^= 1 << rng.below(8);
            }
            if rng.below(2) == 0 {
                let n = rng.below(f.len() + 1);
                f.truncate(n);
            }
            exercise(lt, &f);
        }
    }
}

#[test]
fn ppp_with_and_without_address_control_and_compressed_protocol() {
    use super::link::linktype::{PPP, PPP_HDLC};
    let with_ac = [&[0xff, 0x03, 0x00, 0x21][..], &syn_v4()].concat();
    check_syn_v4(&dec(PPP, with_ac.clone()));
    check_syn_v4(&dec(PPP_HDLC, with_ac));
    check_syn_v4(&dec(PPP, [&[0x00, 0x21][..], &syn_v4()].concat()));
    // protocol-field compression: one odd byte
    check_syn_v4(&dec(PPP, [&[0x21][..], &syn_v4()].concat()));
    check_udp_v6(&dec(PPP, [&[0x00, 0x57][..], &udp_v6()].concat()));
    // LCP is not IP
    assert_eq!(
        decode(PPP, &[0xc0, 0x21, 1, 1, 0, 4]).unwrap_err(),
        Skip::NotIp(0xc021)
    );
    assert!(matches!(
        decode(PPP, &[0xff, 0x03]),
        Err(Skip::Malformed(_))
    ));
}

/// A packet is copied out of `decode` for every frame: past 128 bytes the compiler copies it
/// with a call to memcpy instead of a few moves (measured: about 29 instructions a packet).
#[test]
fn a_packet_stays_small() {
    assert!(
        std::mem::size_of::<super::Packet<'_>>() <= 128,
        "{}",
        std::mem::size_of::<super::Packet<'_>>()
    );
}

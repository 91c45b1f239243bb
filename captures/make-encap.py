#!/usr/bin/env python3
"""make-encap.py - wrap the packets of recorded plain captures in the
encapsulations the test kernel cannot make (GRE, ip6gretap, ERSPAN II/III,
Geneve, GTP-U, IP-in-IP, MPLS, MPLS Ethernet pseudowire, PPPoE, Teredo, sit)
and in the link layers of other capture points (IEEE 802.11, radiotap, Cisco
HDLC), and one VXLAN file with the same inner flows in two VNIs.

Usage: python3 captures/make-encap.py [DIR]   (default: this directory)

Inputs (recorded by record-encap.sh and record.sh): vxlan-plain.pcap (IPv4
traffic: DNS, TLS to ml.azure.com, a dropped SYN), vxlan.pcap (the same in
VXLAN 42) and ipv6.pcap (IPv6 traffic, for Teredo and sit).  Every inner
packet is kept byte for byte with its timestamp; the outer layers are what the
kernel (or a router, switch or carrier) would add: outer endpoints swap with
the direction of the inner packet (the first packet's source is the client
side), outer IPv4 ids count up from 1, UDP checksums are 0 (allowed over
IPv4).  The output depends only on the inputs.  Standard library only.
"""
import os
import struct
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
MAC_C = bytes.fromhex("029600000001")
MAC_S = bytes.fromhex("029600000002")
OUT4 = (bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
OUT6 = (bytes.fromhex("20010db8000000000000000000000001"),
        bytes.fromhex("20010db8000000000000000000000002"))


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(end + "I", data[20:24])[0]
    assert linktype == 1, f"{path}: Ethernet expected"
    out, at = [], 24
    while at + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(end + "IIII", data[at:at + 16])
        out.append((sec, frac, data[at + 16:at + 16 + incl]))
        at += 16 + incl
    return data[:24], end, out


def write_pcap(name, header, end, frames):
    path = os.path.join(DIR, name)
    with open(path, "wb") as f:
        f.write(header)
        for sec, frac, d in frames:
            f.write(struct.pack(end + "IIII", sec, frac, len(d), len(d)))
            f.write(d)
    print(f"wrote {name}: {len(frames)} frames, {os.path.getsize(path)} bytes")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


class Outer:
    """Outer IPv4/IPv6 headers with a per-file id counter."""

    def __init__(self):
        self.ip_id = 0

    def v4(self, up, proto, payload):
        self.ip_id += 1
        src, dst = OUT4 if up else OUT4[::-1]
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ip_id, 0x4000,
                        64, proto, 0, src, dst)
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
        return h + payload

    def v6(self, up, nh, payload):
        src, dst = OUT6 if up else OUT6[::-1]
        return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, src, dst) + payload


def eth(up, ethertype, payload):
    dst, src = (MAC_S, MAC_C) if up else (MAC_C, MAC_S)
    return dst + src + struct.pack("!H", ethertype) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def gre(flags, proto, fields, payload):
    return struct.pack("!HH", flags, proto) + fields + payload


def mpls(labels, payload):
    out = b""
    for i, label in enumerate(labels):
        out += struct.pack("!I", label << 12 | (0x100 if i == len(labels) - 1 else 0) | 64)
    return out + payload


def wrap_all(src_name, out_name, wrap, linktype=1):
    """wrap(outer, up, n, frame, ethertype, ip) gives the new frame, or a list of frames
    (the first at the packet's time, the others 1 us apart after it)."""
    header, end, frames = read_pcap(os.path.join(DIR, src_name))
    header = header[:20] + struct.pack(end + "I", linktype)
    client = frames[0][2][26:30] if frames[0][2][12:14] == b"\x08\x00" else frames[0][2][22:38]
    outer = Outer()
    out = []
    for n, (sec, frac, d) in enumerate(frames):
        ethertype = struct.unpack("!H", d[12:14])[0]
        ip = d[14:]
        src = ip[12:16] if ethertype == 0x0800 else ip[8:24]
        up = src == client
        new = wrap(outer, up, n, d, ethertype, ip)
        for i, f in enumerate(new if isinstance(new, list) else [new]):
            out.append((sec, frac + i, f))
    write_pcap(out_name, header, end, out)


def main():
    seq = lambda n: struct.pack("!I", n + 1)
    # GRE with key 7 and sequence numbers, IPv4 inside (ip link ... type gre key 7 oseq).
    wrap_all("vxlan-plain.pcap", "gre.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 47, gre(0x3000, 0x0800, struct.pack("!I", 7) + seq(n), ip))))
    # ip6gretap: GRE over IPv6 carrying the whole Ethernet frame.
    wrap_all("vxlan-plain.pcap", "gretap6.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x86dd, o.v6(up, 47, gre(0, 0x6558, b"", d))))
    # ERSPAN type II, session 100 (version 1, VLAN 0, COS 0, En 3, T 0).
    erspan2 = struct.pack("!HHI", 0x1000, 0x1800 | 100, 0)
    wrap_all("vxlan-plain.pcap", "erspan2.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 47, gre(0x1000, 0x88be, seq(n), erspan2 + d))))
    # ERSPAN type III, session 101, timestamp = packet number, no platform subheader.
    wrap_all("vxlan-plain.pcap", "erspan3.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 47, gre(0x1000, 0x22eb, seq(n),
                                     struct.pack("!HHIHH", 0x2000, 101, n, 0, 0) + d))))
    # Geneve VNI 42 with one 8-byte option, Ethernet inside.
    geneve = struct.pack("!BBHI", 0x02, 0, 0x6558, 42 << 8) + struct.pack("!HBBI", 0x0104, 1, 1, 0xaabbccdd)
    wrap_all("vxlan-plain.pcap", "geneve.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 17, udp(40000 + n % 7, 6081, geneve + d))))

    # GTP-U T-PDU, TEID 0x100 uplink / 0x200 downlink, every other packet with a
    # sequence number and a PDU session container extension header.
    def gtp(o, up, n, d, t, ip):
        teid = 0x100 if up else 0x200
        if n % 2:
            ext = struct.pack("!HBB", n, 0, 0x85) + bytes([1, 0x10 if up else 0x00, 9, 0])
            h = struct.pack("!BBHI", 0x34, 0xff, len(ext) + len(ip), teid) + ext
        else:
            h = struct.pack("!BBHI", 0x30, 0xff, len(ip), teid)
        return eth(up, 0x0800, o.v4(up, 17, udp(2152, 2152, h + ip)))
    wrap_all("vxlan-plain.pcap", "gtpu.pcap", gtp)
    # IP-in-IP.
    wrap_all("vxlan-plain.pcap", "ipip.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 4, ip)))
    # MPLS: two labels, one LSP per direction, IPv4 below.
    wrap_all("vxlan-plain.pcap", "mpls.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x8847, mpls([16001, 24001] if up else [16002, 24002], ip)))
    # MPLS Ethernet pseudowire with the control word (sequence number = packet number).
    wrap_all("vxlan-plain.pcap", "mpls-pw.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x8847, mpls([300 if up else 301], struct.pack("!I", n & 0xffff) + d)))
    # PPPoE session 0x1234, PPP IPv4.
    wrap_all("vxlan-plain.pcap", "pppoe.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x8864, struct.pack("!BBHHH", 0x11, 0, 0x1234, 2 + len(ip), 0x0021) + ip))
    # Teredo (client 192.0.2.1:40001 <-> relay 192.0.2.2:3544), IPv6 inside; the
    # server's packets carry an origin indication.
    def teredo(o, up, n, d, t, ip):
        if up:
            return eth(up, 0x0800, o.v4(up, 17, udp(40001, 3544, ip)))
        origin = struct.pack("!HH4s", 0, 40001 ^ 0xffff, bytes(b ^ 0xff for b in OUT4[1]))
        return eth(up, 0x0800, o.v4(up, 17, udp(3544, 40001, origin + ip)))
    wrap_all("ipv6.pcap", "teredo.pcap", teredo)
    # sit (IPv6 in IPv4, protocol 41).
    wrap_all("ipv6.pcap", "sit.pcap", lambda o, up, n, d, t, ip: eth(
        up, 0x0800, o.v4(up, 41, ip)))

    # IEEE 802.11 (105): the client's packets as QoS data to the AP (To DS; every fifth
    # one between two distribution systems, four addresses and an HT control field), the
    # server's as plain data from the AP (From DS); a beacon before the first packet and a
    # protected (encrypted) copy after every tenth, which cannot be read.
    bssid, sta, gw = bytes.fromhex("02aa00000001"), MAC_C, MAC_S

    def wifi(up, n, ip):
        snap = b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip
        seq = struct.pack("<H", (n & 0xfff) << 4)
        if up and n % 5 == 0:
            hdr = bytes([0x88, 0x83]) + b"\0\0" + bssid + bssid + gw + seq + sta + b"\x00\x00" + b"\0\0\0\0"
        elif up:
            hdr = bytes([0x88, 0x01]) + b"\0\0" + bssid + sta + gw + seq + b"\x00\x00"
        else:
            hdr = bytes([0x08, 0x02]) + b"\0\0" + sta + bssid + gw + seq
        frames = [hdr + snap]
        if n == 0:
            beacon = bytes([0x80, 0]) + b"\0\0" + b"\xff" * 6 + bssid + bssid + seq + bytes(12)
            frames.insert(0, beacon)
        if n % 10 == 9:
            frames.append(bytes([0x88, 0x41]) + b"\0\0" + bssid + sta + gw + seq + b"\0\0" + bytes(8) + ip[:40])
        return frames
    wrap_all("vxlan-plain.pcap", "wifi.pcap", lambda o, up, n, d, t, ip: wifi(up, n, ip), 105)
    # The same frames after a radiotap header (flags and rate present).
    radiotap = struct.pack("<BBHIBB", 0, 0, 10, 0x6, 0, 0x6c)
    wrap_all("vxlan-plain.pcap", "radiotap.pcap",
             lambda o, up, n, d, t, ip: [radiotap + f for f in wifi(up, n, ip)], 127)
    # Cisco HDLC (104): unicast address 0x0f, an SLARP keepalive (0x8035) before the first.
    def chdlc(o, up, n, d, t, ip):
        frames = [b"\x0f\x00\x08\x00" + ip]
        if n == 0:
            frames.insert(0, b"\x8f\x00\x80\x35" + struct.pack("!III", 2, 1, 0) + b"\xff\xff")
        return frames
    wrap_all("vxlan-plain.pcap", "chdlc.pcap", chdlc, 104)

    # The recorded VXLAN traffic, then the same frames with VNI 43 and other
    # outer source ports: the same inner 5-tuples in two tunnels.
    header, end, frames = read_pcap(os.path.join(DIR, "vxlan.pcap"))
    out = []
    for sec, frac, d in frames:
        out.append((sec, frac, d))
        assert d[12:14] == b"\x08\x00" and d[23] == 17
        hl = (d[14] & 0x0f) * 4
        u = 14 + hl
        other = bytearray(d)
        sport = struct.unpack("!H", d[u:u + 2])[0]
        other[u:u + 2] = struct.pack("!H", sport ^ 0x0100)
        other[u + 6:u + 8] = b"\0\0"  # no UDP checksum
        vni = u + 8 + 4
        other[vni:vni + 3] = (43).to_bytes(3, "big")
        frac2 = frac + 1
        out.append((sec, frac2, bytes(other)))
    write_pcap("vxlan-two-vnis.pcap", header, end, out)


if __name__ == "__main__":
    main()

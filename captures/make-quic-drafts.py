#!/usr/bin/env python3
"""Write captures/quic-drafts.pcap: QUIC packets of versions before RFC 9000, crafted.

Usage: python3 captures/make-quic-drafts.py [OUT]   (needs the `cryptography` package)

Unlike the recorded captures, every packet here is built by this script (no client of
those versions is at hand any more): client Initials protected exactly as the drafts say
(HKDF-SHA256 from the version's Initial salt and the DCID, AES-128-GCM, AES-128 header
protection), and long headers that are not decrypted at all.  The output depends only on
this script (fixed connection IDs, randoms and timestamps), so running it twice gives
identical files.  Ethernet / IPv4 / UDP, correct IP and UDP checksums, the addresses of the
test network of captures/README.md.  Flows (client 10.99.1.2 -> server 10.99.2.2:443):

  55001  draft-29 Initial (SNI draft29.allowscope.test, ALPN h3-29), then the server's
         Handshake packet and a short-header packet each way
  55002  mvfst 0xfaceb002 Initial (draft-27 salt; SNI mvfst.allowscope.test, ALPN h3-fb-05)
  55003  Initial of the reserved version 0x1a2a3a4a (1200 bytes of UDP payload, the least
         that may open a connection); the server answers with a Version
         Negotiation packet listing v1, draft-29, draft-27
  55004  a long header of the unassigned version 0xabcd0004 (1200 bytes): not decrypted
  55005  draft-29 Initial cut by the capture's snap length (200 of 1242 bytes kept)
"""
import hashlib
import hmac
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALTS = {
    "draft-22": bytes.fromhex("7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a"),
    "draft-23": bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502"),
    "draft-29": bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899"),
}
DRAFT_29 = 0xFF00001D
DRAFT_27 = 0xFF00001B
MVFST_27 = 0xFACEB002
CLIENT, SERVER = "10.99.1.2", "10.99.2.2"
CLIENT_MAC, SERVER_MAC = bytes.fromhex("029901000002"), bytes.fromhex("029901000001")


def hkdf_expand_label(secret, label, length):
    info = struct.pack(">HB", length, 6 + len(label)) + b"tls13 " + label + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def client_keys(salt, dcid):
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    client = hkdf_expand_label(initial, b"client in", 32)
    return (
        hkdf_expand_label(client, b"quic key", 16),
        hkdf_expand_label(client, b"quic iv", 12),
        hkdf_expand_label(client, b"quic hp", 16),
    )


def varint2(v):
    return struct.pack(">H", 0x4000 | v)


def client_hello(sni, alpn):
    def ext(ty, data):
        return struct.pack(">HH", ty, len(data)) + data

    name = sni.encode()
    names = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
    exts = (
        ext(0, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)
        + ext(10, bytes.fromhex("0004001d0017"))  # supported_groups
        + ext(13, bytes.fromhex("000404030804"))  # signature_algorithms
        + ext(16, struct.pack(">H", len(names)) + names)
        + ext(43, bytes.fromhex("020304"))  # supported_versions: TLS 1.3
        + ext(51, bytes.fromhex("0024001d0020") + bytes(range(32)))  # key_share
        + ext(0xFFA5, bytes.fromhex("0104800075300901100f00"))  # quic transport params
    )
    body = (
        b"\x03\x03" + bytes(range(0x40, 0x60)) + b"\x00"
        + bytes.fromhex("000413011302") + b"\x01\x00"
        + struct.pack(">H", len(exts)) + exts
    )
    return b"\x01" + struct.pack(">I", len(body))[1:] + body


def initial(version, salt, dcid, scid, sni, alpn, pn=0):
    """A client Initial (4-byte packet number), padded to a 1200-byte-or-more datagram."""
    ch = client_hello(sni, alpn)
    frames = b"\x06\x00" + varint2(len(ch)) + ch
    header_len = 1 + 4 + 1 + len(dcid) + 1 + len(scid) + 1 + 2 + 4
    frames += bytes(max(0, 1200 - header_len - len(frames) - 16))
    key, iv, hp = client_keys(salt, dcid)
    header = (
        bytes([0xC3]) + struct.pack(">I", version)
        + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
        + b"\x00" + varint2(4 + len(frames) + 16)
    )
    pn_offset = len(header)
    header += struct.pack(">I", pn)
    nonce = iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], struct.pack(">Q", pn)))
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    pkt = bytearray(header + sealed)
    sample = bytes(pkt[pn_offset + 4 : pn_offset + 20])
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    pkt[0] ^= mask[0] & 0x0F
    for i in range(4):
        pkt[pn_offset + i] ^= mask[1 + i]
    return bytes(pkt)


def long_header(first, version, dcid, scid, rest):
    return (
        bytes([first]) + struct.pack(">I", version)
        + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid + rest
    )


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, sport, dst, dport, payload, ip_id):
    s, d = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    udp_len = 8 + len(payload)
    pseudo = s + d + struct.pack(">BBH", 0, 17, udp_len)
    udp = struct.pack(">HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack(">H", csum) + udp[8:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id, 0x4000, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    if src == CLIENT:
        eth = SERVER_MAC + CLIENT_MAC
    else:
        eth = CLIENT_MAC + SERVER_MAC
    return eth + b"\x08\x00" + ip + udp


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("quic-drafts.pcap")
    packets = []  # (from_client, client_port, payload, snap)

    def add(from_client, port, payload, snap=None):
        packets.append((from_client, port, payload, snap))

    # 55001: draft-29, with the server's Handshake and 1-RTT packets.
    d1, s1, srv1 = bytes.fromhex("d29a0001d29a0001"), bytes.fromhex("c1c10001"), bytes.fromhex("5e5e0001")
    add(True, 55001, initial(DRAFT_29, SALTS["draft-29"], d1, s1, "draft29.allowscope.test", ["h3-29"]))
    add(False, 55001, long_header(0xE0, DRAFT_29, s1, srv1, varint2(40) + bytes(range(40))))
    add(True, 55001, bytes([0x41]) + srv1 + bytes(range(30)))
    add(False, 55001, bytes([0x40]) + s1 + bytes(range(30)))
    # 55002: mvfst 0xfaceb002 (draft-27 salt).
    d2, s2 = bytes.fromhex("fb02fb02fb02fb02"), bytes.fromhex("c1c10002")
    add(True, 55002, initial(MVFST_27, SALTS["draft-23"], d2, s2, "mvfst.allowscope.test", ["h3-fb-05"]))
    # 55003: a reserved version, answered by Version Negotiation (CIDs echoed).
    d3, s3 = bytes.fromhex("1a2a3a4a00000003"), bytes.fromhex("c1c10003")
    add(True, 55003, long_header(0xC0, 0x1A2A3A4A, d3, s3, b"\x00" + varint2(1178) + bytes(1178)))
    versions = struct.pack(">III", 1, DRAFT_29, DRAFT_27)
    add(False, 55003, long_header(0xC0, 0, s3, d3, versions))
    # 55004: a version nobody decrypts (unassigned): QUIC by its shape and size alone.
    d4, s4 = bytes.fromhex("abcd000400000004"), b""
    add(True, 55004, long_header(0xC3, 0xABCD0004, d4, s4, bytes(1200 - 15)))
    # 55005: a draft-29 Initial the snap length cut.
    d5, s5 = bytes.fromhex("d29a0005d29a0005"), bytes.fromhex("c1c10005")
    add(True, 55005, initial(DRAFT_29, SALTS["draft-29"], d5, s5, "cut.allowscope.test", ["h3-29"]), 200)

    snaplen = 65535
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
    t0 = 1_800_000_000
    for i, (from_client, port, payload, snap) in enumerate(packets):
        if from_client:
            f = frame(CLIENT, port, SERVER, 443, payload, 0x100 + i)
        else:
            f = frame(SERVER, 443, CLIENT, port, payload, 0x200 + i)
        cap = f[: 14 + 20 + 8 + snap] if snap else f
        data += struct.pack("<IIII", t0, 1000 * i, len(cap), len(f)) + cap
    out.write_bytes(data)
    print(f"wrote {out}: {len(packets)} packets, {len(data)} bytes")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Derive small, deliberately damaged capture files from the recorded ones.

Usage: python3 captures/make-broken.py [CAPTURE_DIR]

Reads tcp-outcomes.pcap and tcp-outcomes.pcapng from CAPTURE_DIR (default: the
directory of this script) and writes the broken-* files next to them.  The
output depends only on the input files (the "garbage" comes from a fixed-seed
generator), so running it twice gives identical files.  For every file it
prints where the damage begins and how many intact records precede it.

pcap layout: a 24-byte file header, then records made of a 16-byte header
(ts_sec, ts_frac, caplen, origlen) followed by caplen bytes of data.
"""
import os
import struct
import sys

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "usec"),
    b"\xa1\xb2\xc3\xd4": (">", "usec"),
    b"\x4d\x3c\xb2\xa1": ("<", "nsec"),
    b"\xa1\xb2\x3c\x4d": (">", "nsec"),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_NAMES = {
    PCAPNG_SHB: "SHB",
    0x00000001: "IDB",
    0x00000005: "ISB",
    0x00000006: "EPB",
    0x00000003: "SPB",
    0x00000004: "NRB",
}
GARBAGE_SEED = 0x5EED1234
GARBAGE_LEN = 200
KEEP_RECORDS = 5


def pcap_records(data):
    """Return (endian, [(offset, caplen), ...]) for every complete record."""
    endian, _ = PCAP_MAGICS[data[:4]]
    recs = []
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, off + 8)[0]
        if off + 16 + caplen > len(data):
            break
        recs.append((off, caplen))
        off += 16 + caplen
    if off != len(data):
        raise SystemExit("input pcap is itself damaged at byte %d" % off)
    return endian, recs


def xorshift_bytes(seed, n):
    """Deterministic pseudo-random bytes (xorshift32), independent of Python's RNG."""
    x = seed & 0xFFFFFFFF
    out = bytearray()
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:n])


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)


def main():
    capdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(capdir, "tcp-outcomes.pcap"), "rb") as f:
        pcap = f.read()
    with open(os.path.join(capdir, "tcp-outcomes.pcapng"), "rb") as f:
        pcapng = f.read()
    endian, recs = pcap_records(pcap)
    if len(recs) <= KEEP_RECORDS:
        raise SystemExit("tcp-outcomes.pcap has too few records")
    report = []

    # 1. last record cut in the middle of its data
    last_off, last_len = recs[-1]
    cut = last_off + 16 + last_len // 2
    write(os.path.join(capdir, "broken-truncated.pcap"), pcap[:cut])
    report.append(
        "broken-truncated.pcap: damage at byte %d (header of record #%d, caplen %d, "
        "but the file ends at byte %d with only %d of its data bytes); %d valid records before it"
        % (last_off, len(recs), last_len, cut, last_len // 2, len(recs) - 1))

    # prefix shared by the next files: file header + first KEEP_RECORDS records
    six_off, six_len = recs[KEEP_RECORDS]
    prefix = pcap[:six_off]

    # 2. a record header with an absurd caplen, followed by some real bytes
    ts_sec, ts_frac, _caplen, origlen = struct.unpack_from(endian + "IIII", pcap, six_off)
    bad_hdr = struct.pack(endian + "IIII", ts_sec, ts_frac, 0x7FFFFFFF, origlen)
    tail = pcap[six_off + 16: six_off + 16 + six_len]
    write(os.path.join(capdir, "broken-caplen.pcap"), prefix + bad_hdr + tail)
    report.append(
        "broken-caplen.pcap: damage at byte %d (record #%d header: caplen 0x7fffffff, "
        "origlen %d, then %d bytes, file size %d); %d valid records before it"
        % (six_off, KEEP_RECORDS + 1, origlen, len(tail),
           len(prefix) + 16 + len(tail), KEEP_RECORDS))

    # 3. pseudo-random garbage after KEEP_RECORDS records
    garbage = xorshift_bytes(GARBAGE_SEED, GARBAGE_LEN)
    g_sec, g_frac, g_caplen, g_orig = struct.unpack_from(endian + "IIII", garbage, 0)
    write(os.path.join(capdir, "broken-garbage.pcap"), prefix + garbage)
    report.append(
        "broken-garbage.pcap: damage at byte %d (%d garbage bytes, xorshift32 seed 0x%08X; "
        "read as a record header: caplen %d (0x%08x), origlen %d); %d valid records before it"
        % (six_off, GARBAGE_LEN, GARBAGE_SEED, g_caplen, g_caplen, g_orig, KEEP_RECORDS))

    # 4. bad magic number (on the same short prefix)
    write(os.path.join(capdir, "broken-magic.pcap"), b"ABCD" + prefix[4:])
    report.append(
        "broken-magic.pcap: damage at byte 0 (magic 'ABCD' = 0x41424344; otherwise the "
        "header and first %d records of tcp-outcomes.pcap, %d bytes); 0 readable records"
        % (KEEP_RECORDS, len(prefix)))

    # 5. pcapng cut in the middle of its last block
    if struct.unpack_from("<I", pcapng, 0)[0] != PCAPNG_SHB:
        raise SystemExit("tcp-outcomes.pcapng does not start with a section header")
    bom = pcapng[8:12]
    ng_endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
    blocks = []
    off = 0
    while off + 12 <= len(pcapng):
        btype, blen = struct.unpack_from(ng_endian + "II", pcapng, off)
        if blen < 12 or off + blen > len(pcapng):
            raise SystemExit("input pcapng is itself damaged at byte %d" % off)
        blocks.append((off, btype, blen))
        off += blen
    last_off, last_type, last_len = blocks[-1]
    cut = last_off + last_len // 2
    write(os.path.join(capdir, "broken-truncated.pcapng"), pcapng[:cut])
    epbs = sum(1 for _, t, _ in blocks[:-1] if t == 6)
    report.append(
        "broken-truncated.pcapng: damage at byte %d (last block, %s of %d bytes, cut to %d "
        "bytes; file ends at byte %d); %d complete blocks and %d packets (EPB) before it"
        % (last_off, PCAPNG_NAMES.get(last_type, "type 0x%x" % last_type), last_len,
           last_len // 2, cut, len(blocks) - 1, epbs))

    for line in report:
        print(line)


if __name__ == "__main__":
    main()

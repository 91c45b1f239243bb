#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs for the cargo-fuzz targets (README, "Fuzzing"),
# from the captures of captures/ (and of any directory given as an argument) and a few
# hand-written ones. The corpora are generated, not kept in git (fuzz/.gitignore); running this
# again adds to them (libFuzzer names its finds by their hash, seeds here by their source).
#
#   capture_reader, pipeline   every capture file whole (pcap, pcapng, .gz, .zst, the broken ones)
#   decode                     each capture's frames, 16 to a seed: 4-byte big-endian LINKTYPE
#                              then the frame, each record after a 2-byte big-endian length
#   tls, connect               each TCP connection's client and server bytes (tshark), two records
#   http                       each TCP connection's client bytes and server bytes, one seed each
#   dns                        each DNS message over UDP, each DNS-over-TCP stream
#   quic                       each UDP conversation's datagrams, records of a direction byte
#                              (0 client, 1 server) then the payload
#   quic_sealed                each TLS client's ClientHello message, behind the target's
#                              version, DCID and split bytes (the target seals it into Initials)
#   catalog_toml               the built-in catalog and small hand-written catalogs
#   workspace_json             small hand-written workspace dependency JSON
#   merge                      tests/golden/audit-client.json and small hand-written documents
#
# Needs python3 and tshark (without tshark the protocol targets get the hand seeds only).
set -euo pipefail
cd "$(dirname "$0")/.."

out=fuzz/corpus
dirs=(captures "$@")
mkdir -p "$out"/{capture_reader,pipeline,decode,tls,connect,http,dns,quic,quic_sealed,catalog_toml,workspace_json,merge}

captures=()
for d in "${dirs[@]}"; do
  while IFS= read -r -d '' f; do captures+=("$f"); done < <(
    find "$d" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \
      -o -name '*.pcap.gz' -o -name '*.pcap.zst' -o -name '*.pcapng.gz' -o -name '*.pcapng.zst' \) \
      -size -512k -print0 | sort -z)
done

# Whole files. The seed's name keeps its source.
for f in "${captures[@]}"; do
  name=$(echo "$f" | tr '/' '_')
  cp "$f" "$out/capture_reader/$name"
  cp "$f" "$out/pipeline/$name"
done

python3 - "$out" "${captures[@]}" <<'PY'
import gzip, os, shutil, struct, subprocess, sys
from collections import defaultdict

out, files = sys.argv[1], sys.argv[2:]
have_tshark = shutil.which("tshark") is not None

def rec(b):
    b = b[:0xffff]
    return struct.pack(">H", len(b)) + b

def write(target, name, data):
    if data:
        with open(os.path.join(out, target, name.replace("/", "_")), "wb") as f:
            f.write(data)

def raw(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        try:
            return subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return b""
    return data

def frames(data):
    """(linktype, frame) of a classic pcap or pcapng; stops quietly at anything odd."""
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xd4, 0x4d) else ">"
        lt = struct.unpack(e + "I", data[20:24])[0] & 0x0fffffff
        pos = 24
        while pos + 16 <= len(data):
            caplen = struct.unpack(e + "I", data[pos + 8:pos + 12])[0]
            yield lt, data[pos + 16:pos + 16 + caplen]
            pos += 16 + caplen
    elif magic == b"\x0a\x0d\x0d\x0a":
        e, pos, ifaces = "<", 0, []
        while pos + 12 <= len(data):
            btype = struct.unpack(e + "I", data[pos:pos + 4])[0]
            if btype == 0x0a0d0d0a:
                e = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            blen = struct.unpack(e + "I", data[pos + 4:pos + 8])[0]
            if blen < 12:
                return
            body = data[pos + 8:pos + blen - 4]
            if btype == 1 and len(body) >= 2:
                ifaces.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[:20])
                if iface < len(ifaces):
                    yield ifaces[iface], body[20:20 + caplen]
            elif btype == 3 and len(body) >= 4 and ifaces:
                yield ifaces[0], body[4:]
            pos += blen

def tshark(path, display, fields):
    if not have_tshark:
        return []
    args = ["tshark", "-n", "-r", path, "-Y", display, "-T", "fields", "-E", "occurrence=l"]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True)
    return [l.split("\t") for l in r.stdout.splitlines() if l.strip()]

for path in files:
    base = os.path.basename(path)
    fr = list(frames(raw(path)))
    for i in range(0, min(len(fr), 256), 16):
        write("decode", f"{base}.{i}", b"".join(rec(struct.pack(">I", lt) + d) for lt, d in fr[i:i + 16]))

    # TCP connections: client bytes (the side that sent first) and server bytes, capped.
    streams = defaultdict(lambda: {"first": None, "c": b"", "s": b""})
    for s, src, sport, payload in tshark(path, "tcp.len > 0", ["tcp.stream", "ip.src", "tcp.srcport", "tcp.payload"]):
        st = streams[s]
        side = (src, sport)
        if st["first"] is None:
            st["first"] = side
        key = "c" if side == st["first"] else "s"
        st[key] = (st[key] + bytes.fromhex(payload.replace(":", "")))[:16384]
    for s, st in streams.items():
        c, sv = st["c"], st["s"]
        name = f"{base}.tcp{s}"
        if c[:1] == b"\x16" or sv[:1] == b"\x16":
            write("tls", name, rec(c) + rec(sv))
        if c[:1] == b"\x16" and c[5:6] == b"\x01":
            # The ClientHello message (its first record's body), for quic_sealed to seal into
            # Initials: v1, an 8-byte DCID, split in the middle.
            hello = c[5:5 + int.from_bytes(c[3:5], "big")]
            write("quic_sealed", name, bytes([0, 8]) + bytes(range(8)) + bytes([0x40]) + hello)
        if c[:1].isalpha():
            write("http", name + ".c", c)
            write("http", name + ".s", sv)
            write("connect", name, rec(c) + rec(sv))
        if c[2:3] and not c[:1].isalpha() and c[:1] != b"\x16":
            write("dns", name, c)
            write("dns", name + ".s", sv)

    for i, (payload,) in enumerate(tshark(path, "dns && udp", ["udp.payload"])[:64]):
        write("dns", f"{base}.udp{i}", bytes.fromhex(payload.replace(":", "")))

    convs = defaultdict(lambda: {"first": None, "recs": []})
    for s, src, sport, payload in tshark(path, "quic", ["udp.stream", "ip.src", "udp.srcport", "udp.payload"]):
        cv = convs[s]
        side = (src, sport)
        if cv["first"] is None:
            cv["first"] = side
        if len(cv["recs"]) < 16:
            cv["recs"].append(rec(bytes([0 if side == cv["first"] else 1]) + bytes.fromhex(payload.replace(":", ""))))
    for s, cv in convs.items():
        write("quic", f"{base}.udp{s}", b"".join(cv["recs"]))
PY

# Hand seeds: what captures do not hold.
printf 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n' >"$out/http/hand-get"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n' >"$out/http/hand-responses"
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' >"$out/http/hand-101"
python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
def rec(b):
    return struct.pack(">H", len(b)) + b
c = b"CONNECT login.microsoftonline.com:443 HTTP/1.1\r\nHost: login.microsoftonline.com:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
s = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"
open(f"{out}/connect/hand-407-200", "wb").write(rec(c) + rec(s))
open(f"{out}/connect/hand-v6", "wb").write(rec(b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n") + rec(b"HTTP/1.0 200 OK\r\n\r\n"))
PY

cp src/catalog/azureml.toml "$out/catalog_toml/builtin.toml"
cat >"$out/catalog_toml/hand-small.toml" <<'EOF'
[[entry]]
id = "mine.proxy"
cloud = "any"
group = "proxy"
purpose = "our proxy"
host = "proxy.<region>.corp.example"
proto = "tcp"
ports = ["3128", "8080-8081"]
requirement = "optional"

[[private_endpoint_zone]]
zone = "privatelink.blob.core.windows.net"
cloud = "public"
service = "Blobs"
EOF
cat >"$out/workspace_json/hand.json" <<'EOF'
{"value":[{"properties":{"category":"Azure Active Directory","endpoints":[
{"domainName":"login.microsoftonline.com","endpointDetails":[{"port":80},{"port":443}]}]}},
{"properties":{"category":"Azure Storage","endpoints":[
{"domainName":"*.blob.core.windows.net","endpointDetails":[{"port":443}]},
{"domainName":"myws.example","endpointDetails":[]}]}}]}
EOF
printf '[{"properties":{"category":"c","endpoints":[{"domainName":"a.b","endpointDetails":[{"port":1}]}]}}]' \
  >"$out/workspace_json/hand-bare.json"
cp tests/golden/audit-client.json "$out/merge/audit-client.json"
printf '{"schema_version":3}' >"$out/merge/hand-version"
printf '[]' >"$out/merge/hand-array"

for t in "$out"/*/; do
  printf '%-16s %5d seeds\n' "$(basename "$t")" "$(find "$t" -type f | wc -l)"
done

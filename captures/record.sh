#!/usr/bin/env bash
# record.sh - re-record allowscope's test captures.
#
# Everything runs inside three network namespaces that this script creates and
# removes again (as-cli, as-fw, as-srv); no packet leaves them, and the host's
# own namespaces and interfaces are never touched.
#
#   as-cli  cli-fw 10.99.1.2/24 fd99:1::2/64 --- fw-cli 10.99.1.1 fd99:1::1   as-fw
#   as-fw   fw-srv 10.99.2.1/24 fd99:2::1/64 --- srv-fw 10.99.2.2 fd99:2::2   as-srv
#   as-cli  cli-trunk (no IP) ----------------- fw-trunk (no IP)              as-fw
#           carrying VLAN 100 (10.99.3.0/24) and QinQ 200/300 (10.99.4.0/24)
#
# Usage:   sudo captures/record.sh [all|base|facts|audit|ws|truth|connect]
#            all    (default) base and facts below, about two minutes
#            base   only the transport-level captures (tcp-outcomes*,
#                   udp-outcomes, ipv6, fw-two-ifaces, vlan, split-hello) and
#                   the broken-* files derived from them
#            facts  only the application-facts captures (dns-facts.pcap,
#                   tls-facts.pcap, proxy.pcap, quic.pcap); the base files
#                   here are left exactly as they are
#            audit  only the audited-firewall scenario (audit-client.pcap,
#                   audit-firewall.pcapng), about 45 seconds; every other
#                   file here is left exactly as it is.  Not part of "all".
#            ws     only the websocket scenario (ws-client.pcap,
#                   ws-firewall.pcapng), about 90 seconds; every other file
#                   here is left exactly as it is.  Not part of "all".
#            truth  only the ground-truth captures of issue 15 (dualstack-*,
#                   rst-injected-*, ip-literal, quic-catalog,
#                   privatelink-public, fin-unacked*), about a minute, in
#                   namespaces of their own (as-tcli, as-tfw, as-tsrv), so a
#                   run of another mode elsewhere cannot disturb it; every
#                   other file here is left exactly as it is.  Not part of "all".
#            connect  only proxy-target.pcap: CONNECT requests whose target
#                   squid rejects (userinfo, no port, a port over 65535),
#                   about 15 seconds; every other file here is left exactly
#                   as it is.  Not part of "all".
#          RECORD_LOGS=/some/dir sudo -E captures/record.sh   keeps the
#          helper/server/client logs there for debugging
# Output:  the capture files in the directory of this script, then (base and
#          all) make-broken.py derives the broken-* files from them.
#
# Prerequisites (Debian 12 package names):
#   iproute2 nftables tcpdump tshark (dumpcap, capinfos) openssl dnsmasq
#   socat dnsutils (dig) curl python3 gzip zstd
#   ethtool (optional, but needed for real-sized segments and correct
#            checksums: apt-get install ethtool)
#   for "facts" (and "all") also: squid, apache2-utils (htpasswd), haproxy,
#   and the Python package aioquic for the python3 found in PATH
#   (apt-get install squid apache2-utils haproxy; pip install aioquic);
#   for "audit": squid and haproxy.
#   for "connect": squid and apache2-utils (htpasswd).
#   for "truth": the Python package aioquic (as for "facts"), iputils ping.
#   for "ws": haproxy, nginx, squid, conntrack (apt-get install nginx
#   conntrack) and the Python package websockets (pip install websockets;
#   recorded with 17.4).
#   The Debian packages' own services are not used (and need not run).
# The kernel needs veth, tun/tap, nf_tables with reject, and IPv6.  802.1Q
# support (CONFIG_VLAN_8021Q) is NOT needed: VLAN/QinQ tagging is done in user
# space by a small bridge process (see vlan-bridge in the helper below), because
# the kernel this was recorded on has no 8021q driver.
set -euo pipefail

CAPDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NS_CLI=as-cli
NS_FW=as-fw
NS_SRV=as-srv
ALL_NS=("$NS_CLI" "$NS_FW" "$NS_SRV")
GAP=0.5                     # pause between flows inside one capture

MODE=${1:-all}
case $MODE in
    all | base | facts | audit | ws | truth | connect) ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) echo "record.sh: unknown mode '$MODE' (all, base, facts, audit, ws, truth or connect)" >&2; exit 2 ;;
esac
# "all" is base + facts; "audit", "ws", "truth" and "connect" run only when asked for by name
want() {
    [[ ($MODE == all && $1 != audit && $1 != ws && $1 != truth && $1 != connect) ||
        $MODE == "$1" ]]
}
# truth: namespaces of its own (same topology, other names)
if [[ $MODE == truth ]]; then
    NS_CLI=as-tcli
    NS_FW=as-tfw
    NS_SRV=as-tsrv
    ALL_NS=("$NS_CLI" "$NS_FW" "$NS_SRV")
fi

if [[ $EUID -ne 0 ]]; then
    echo "record.sh: must run as root (network namespaces, nftables, captures)" >&2
    exit 1
fi
for tool in ip nft tcpdump dumpcap capinfos tshark openssl dnsmasq socat dig curl \
            python3 gzip zstd ss; do
    command -v "$tool" >/dev/null || { echo "record.sh: missing tool: $tool" >&2; exit 1; }
done
PY=$(command -v python3)
# needs MODE TOOL...: each tool is on PATH (for MODE's recordings)
needs() {
    local mode=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null ||
            { echo "record.sh: missing tool: $tool (needed for $mode)" >&2; exit 1; }
    done
}
# squid runs as the 'proxy' user its package creates; with_auth: and its Basic auth helper
needs_squid_user() {
    [[ ${1:-} != with_auth || -x /usr/lib/squid/basic_ncsa_auth ]] ||
        { echo "record.sh: missing /usr/lib/squid/basic_ncsa_auth (package squid)" >&2; exit 1; }
    id proxy >/dev/null 2>&1 ||
        { echo "record.sh: no 'proxy' user for squid (package squid creates it)" >&2; exit 1; }
}
# needs_py MODULE HINT: the python3 in PATH imports MODULE
needs_py() {
    "$PY" -c "import $1" 2>/dev/null ||
        { echo "record.sh: $PY cannot import $1 ($2)" >&2; exit 1; }
}
if want facts; then
    needs facts squid haproxy htpasswd
    needs_squid_user with_auth
    needs_py aioquic "pip install aioquic"
fi
if want connect; then
    needs connect squid htpasswd
    needs_squid_user with_auth
fi
if want ws; then
    needs ws haproxy nginx squid conntrack
    needs_squid_user
    needs_py websockets "pip install websockets"
fi
if want truth; then
    needs truth ping
    needs_py aioquic "pip install aioquic"
fi
if want audit; then
    needs audit squid haproxy
    needs_squid_user
fi
HAVE_ETHTOOL=0
command -v ethtool >/dev/null && HAVE_ETHTOOL=1

WORK=$(mktemp -d /tmp/allowscope-record.XXXXXX)
OUT=$WORK/out               # captures are written here, copied to CAPDIR at the end
LOG=$WORK/log
mkdir -p "$OUT" "$LOG"
BG_PIDS=()                  # long-running helpers (servers, bridges)
CAP_PIDS=()                 # capture processes of the current recording

say() { printf '[record] %s\n' "$*"; }

del_namespaces() {
    local ns pid
    for ns in "${ALL_NS[@]}"; do
        if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
            # only processes living in our own namespaces: all of them were
            # started by this script (or by an earlier, interrupted run of it)
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    # squid's shared memory (see SQUID_SERVICE, AUDIT_SQUID_SERVICE), left
    # when it is killed
    rm -f /dev/shm/allowscoperecord-cf__*.shm /dev/shm/allowscopeaudit-cf__*.shm \
        /dev/shm/allowscopews-cf__*.shm
}

cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    for pid in "${CAP_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 0.3
    for pid in "${CAP_PIDS[@]}" "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    del_namespaces
    if [[ $rc -ne 0 ]]; then
        echo "record.sh: failed (exit $rc); logs follow" >&2
        tail -n 20 "$LOG"/* >&2 2>/dev/null
    fi
    if [[ -n ${RECORD_LOGS:-} ]]; then
        mkdir -p "$RECORD_LOGS" && cp -r "$LOG"/. "$RECORD_LOGS"/
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "record.sh: interrupted" >&2; exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# start_bg NAME NS CMD... : run a helper in the background, output to $LOG/NAME.log
start_bg() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$@" >"$LOG/$name.log" 2>&1 &
    BG_PIDS+=($!)
}

# wait_for FILE REGEX [SECONDS]
wait_for() {
    local file=$1 re=$2 end=$((SECONDS + ${3:-10}))
    until grep -Eq -- "$re" "$file" 2>/dev/null; do
        if ((SECONDS >= end)); then
            echo "record.sh: timed out waiting for /$re/ in $file" >&2
            return 1
        fi
        sleep 0.1
    done
}

# wait_port NS tcp|udp PORT : wait until something listens on PORT in NS (any
# address; see wait_listen)
wait_port() { wait_listen "$1" "$2" "" "$3"; }

# cap_start NS CMD... : start a capture process and wait until it is listening
cap_start() {
    local ns=$1 n=${#CAP_PIDS[@]}
    shift
    local err=$LOG/capture-$(date +%s%N)-$n.err
    ip netns exec "$ns" "$@" >/dev/null 2>"$err" &
    CAP_PIDS+=($!)
    wait_for "$err" 'listening on|Capturing on'
}

# cap_stop : SIGINT every capture of the current recording and wait for each to
# flush its file and exit.  The quiet time first matters: libpcap hands packets
# over in blocks (TPACKET_V3, up to ~1 s late) and a capture that is stopped
# drops what it has not been handed yet.
cap_stop() {
    local pid
    sleep 2
    for pid in "${CAP_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${CAP_PIDS[@]}"; do wait "$pid" || true; done
    CAP_PIDS=()
}

# tcpdump_to NS FILE [tcpdump options] [filter]
tcpdump_to() {
    local ns=$1 file=$2
    shift 2
    cap_start "$ns" tcpdump -n -U --immediate-mode -Z root -w "$file" "$@"
}

# cli_port LOW [HIGH]: pin the client's ephemeral port range, for tools that
# cannot bind a source port themselves (openssl s_client)
cli_port() {
    in_ns "$NS_CLI" sysctl -qw net.ipv4.ip_local_port_range="$1 ${2:-$1}"
}

kit() { local ns=$1; shift; in_ns "$ns" "$PY" -u "$WORK/kit.py" "$@"; }

# tls_client LOCALPORT HOST:PORT SNI [extra s_client options]: send one line,
# read the (reversed) echo from s_server -rev, then close (close_notify + FIN)
tls_client() {
    local port=$1 target=$2 sni=$3
    shift 3
    cli_port "$port"
    { printf 'hello from allowscope\n'; sleep 1; } |
        in_ns "$NS_CLI" timeout 10 openssl s_client -connect "$target" -servername "$sni" \
            -no_ign_eof "$@" >>"$LOG/s_client.log" 2>&1 || true
}

# hello_client LOCALPORT HOST:PORT SNI: TLS ClientHello to a server that never
# answers it; -ign_eof keeps the client waiting for the server to act
hello_client() {
    local port=$1 target=$2 sni=$3
    cli_port "$port"
    in_ns "$NS_CLI" timeout 5 openssl s_client -connect "$target" -servername "$sni" \
        -ign_eof </dev/null >>"$LOG/s_client.log" 2>&1 || true
}

# ---- helper program (servers, clients, user-space VLAN bridge) -------------
cat >"$WORK/kit.py" <<'PYEOF'
"""Small network helpers for record.sh (servers, clients, VLAN bridge)."""
import fcntl
import os
import select
import socket
import struct
import sys
import threading
import time


def log(*a):
    print(*a, flush=True)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listener(host, port):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(16)
    return s


def serve_forever(hosts, port, handler):
    socks = [listener(h, port) for h in hosts.split(",")]
    log("ready", hosts, port)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for ls in ready:
            conn, peer = ls.accept()
            threading.Thread(target=handler, args=(conn, peer), daemon=True).start()


# ---- servers -------------------------------------------------------------

def srv_hold(hosts, port):
    """Accept, read until the client closes, then close (FIN)."""
    def handle(conn, peer):
        got = 0
        while True:
            b = conn.recv(65536)
            if not b:
                break
            got += len(b)
        log("hold", peer, "client closed after", got, "bytes")
        conn.close()
    serve_forever(hosts, port, handle)


def srv_hello(hosts, port, mode):
    """Accept, read the client's first bytes (a TLS ClientHello), then close
    without sending anything: mode=fin sends FIN (and then reads whatever the
    client still sends until it closes too, so no RST follows), mode=rst
    aborts with RST (SO_LINGER 0)."""
    def handle(conn, peer):
        conn.settimeout(3)
        data = b""
        try:
            data = conn.recv(65536)
            # a ClientHello may span several segments: read the whole record
            if len(data) >= 5 and data[0] == 0x16:
                want = 5 + struct.unpack("!H", data[3:5])[0]
                while len(data) < want:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
        except socket.timeout:
            pass
        log("hello", peer, "read", len(data), "bytes, closing with", mode)
        if mode == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            conn.shutdown(socket.SHUT_WR)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        conn.close()
    serve_forever(hosts, port, handle)


def srv_lines(hosts, port):
    """Line echo: every line received is sent back prefixed with 'ack '."""
    def handle(conn, peer):
        f = conn.makefile("rb")
        for line in f:
            conn.sendall(b"ack " + line)
        log("lines", peer, "client closed")
        f.close()
        conn.close()
    serve_forever(hosts, port, handle)


def srv_http(hosts, port):
    """Minimal HTTP/1.0 server: one request per connection, fixed answer;
    the client closes first."""
    body = b"allowscope vlan test page\n"
    def handle(conn, peer):
        req = b""
        while b"\r\n\r\n" not in req:
            b = conn.recv(4096)
            if not b:
                break
            req += b
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        # let the client close first (it has the whole body), then close
        while conn.recv(4096):
            pass
        conn.close()
    serve_forever(hosts, port, handle)


def srv_udp_echo(host, port):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    log("ready", host, port)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


# ---- clients -------------------------------------------------------------

def client_sock(kind, src, sport):
    s = socket.socket(family_of(src), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    return s


def cli_connect(src, sport, dst, dport, timeout="5", hold="0.3"):
    """Connect; on success keep the connection idle for `hold` s, then close."""
    s = client_sock(socket.SOCK_STREAM, src, sport)
    s.settimeout(float(timeout))
    t0 = time.monotonic()
    try:
        s.connect((dst, int(dport)))
    except OSError as e:
        log("connect", dst, dport, "failed after %.2fs:" % (time.monotonic() - t0), e)
        s.close()
        return
    log("connect", dst, dport, "established")
    time.sleep(float(hold))
    s.close()


def cli_stream(src, sport, dst, dport, gofile, stopfile, period="0.2"):
    """Long-lived flow.  Connects and exchanges one line at once, then stays
    quiet until `gofile` exists, then sends a numbered line every `period` s
    (each answered by the server) until `stopfile` exists, then closes (FIN).
    The quiet phase lets several captures start without any of them seeing
    more or less of the flow than the others."""
    s = client_sock(socket.SOCK_STREAM, src, sport)
    s.connect((dst, int(dport)))
    n = 1
    s.sendall(b"tick %05d\n" % n)
    s.recv(4096)
    log("connected")
    while not os.path.exists(gofile):
        time.sleep(0.02)
    while not os.path.exists(stopfile):
        n += 1
        s.sendall(b"tick %05d\n" % n)
        s.recv(4096)
        time.sleep(float(period))
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()
    log("closed after", n, "lines")


def cli_udp(src, sport, dst, dport, size, wait="1"):
    """Send one datagram of `size` bytes and wait up to `wait` s for an answer or error."""
    s = client_sock(socket.SOCK_DGRAM, src, sport)
    s.connect((dst, int(dport)))
    pattern = b"allowscope-udp-"
    data = (pattern * (int(size) // len(pattern) + 1))[: int(size)]
    s.send(data)
    s.settimeout(float(wait))
    try:
        r = s.recv(65535)
        log("udp", dst, dport, "answer of", len(r), "bytes")
    except socket.timeout:
        log("udp", dst, dport, "no answer")
    except OSError as e:
        log("udp", dst, dport, "error:", e)
    s.close()


# ---- VLAN bridge ----------------------------------------------------------
# The kernel here has no 802.1Q support, so tagging is done in user space:
# each TAP device is one VLAN (or QinQ) "subinterface"; frames read from it
# get the tag stack inserted and are sent on the trunk veth, frames received
# on the trunk with a matching tag stack are stripped and written to the TAP.

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PACKET_OUTGOING = 4


def parse_tags(spec):
    # "100" -> 802.1Q 100 ; "200+300" -> 802.1ad 200 outer, 802.1Q 300 inner
    ids = [int(x) for x in spec.split("+")]
    tags = []
    for i, vid in enumerate(ids):
        tpid = 0x88A8 if (len(ids) > 1 and i < len(ids) - 1) else 0x8100
        tags.append((tpid, vid))
    return tags


def tag_bytes(tags):
    return b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)


def vlan_bridge(trunk, *taps):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((trunk, 0))
    by_fd = {}
    by_tags = {}
    for t in taps:
        name, spec = t.split("=")
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        tags = parse_tags(spec)
        by_fd[fd] = tag_bytes(tags)
        by_tags[tuple(tags)] = fd
    log("ready", trunk, taps)
    while True:
        ready, _, _ = select.select([sock] + list(by_fd), [], [])
        for r in ready:
            if r is sock:
                data, anc, _flags, addr = sock.recvmsg(65600, socket.CMSG_SPACE(20))
                if addr[2] == PACKET_OUTGOING:
                    continue
                for level, typ, cdata in anc:
                    if level == SOL_PACKET and typ == PACKET_AUXDATA:
                        st, _l, _sl, _m, _n, tci, tpid = struct.unpack("IIIHHHH", cdata[:20])
                        if st & TP_STATUS_VLAN_VALID:
                            if not st & TP_STATUS_VLAN_TPID_VALID:
                                tpid = 0x8100
                            data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
                tags = []
                off = 12
                while len(data) >= off + 4:
                    tpid = struct.unpack("!H", data[off:off + 2])[0]
                    if tpid not in (0x8100, 0x88A8):
                        break
                    tags.append((tpid, struct.unpack("!H", data[off + 2:off + 4])[0] & 0x0FFF))
                    off += 4
                fd = by_tags.get(tuple(tags))
                if fd is not None:
                    os.write(fd, data[:12] + data[off:])
            else:
                frame = os.read(r, 65600)
                sock.send(frame[:12] + by_fd[r] + frame[12:])


COMMANDS = {
    "srv-hold": srv_hold,
    "srv-hello": srv_hello,
    "srv-lines": srv_lines,
    "srv-http": srv_http,
    "srv-udp-echo": srv_udp_echo,
    "connect": cli_connect,
    "stream": cli_stream,
    "udp": cli_udp,
    "vlan-bridge": vlan_bridge,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PYEOF

# ---- second helper: servers and clients of the application-facts captures ----
cat >"$WORK/facts.py" <<'PYEOF'
"""Helpers for the application-facts captures of record.sh (dns-facts,
tls-facts, proxy, quic): an HTTP deny page, a WebSocket echo server and
client, and a QUIC (HTTP/3) server and client built on aioquic."""
import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading


def log(*a):
    print(*a, flush=True)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve_tcp(host, port, handler):
    ls = socket.socket(family_of(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    log("ready", host, port)
    while True:
        conn, peer = ls.accept()
        threading.Thread(target=handler, args=(conn, peer), daemon=True).start()


def read_head(conn):
    """Read one HTTP request or response head (up to the empty line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = conn.recv(4096)
        if not b:
            break
        data += b
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def drain_and_close(conn):
    """Let the client close first, then close."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()


# ---- HTTP 470 deny page -------------------------------------------------------
# An emulation of the page a cloud firewall's application rules answer with
# when no rule allows a plain-HTTP request: status 470 and a one-line reason.

DENY_BODY = b"Action: Deny. Reason: No rule matched. Proceeding with default action.\n"


def deny_page(host, port):
    def handle(conn, peer):
        head, _ = read_head(conn)
        first = head.split(b"\r\n", 1)[0]
        log("deny", peer, first.decode("latin-1"))
        conn.sendall(b"HTTP/1.1 470 status code 470\r\n"
                     b"Content-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(DENY_BODY), DENY_BODY))
        drain_and_close(conn)
    serve_tcp(host, port, handle)


# ---- WebSocket (RFC 6455) ---------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_frame(opcode, payload, mask):
    hdr = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr += bytes([mbit | n])
    else:
        hdr += bytes([mbit | 126]) + struct.pack("!H", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        hdr += key
    return hdr + payload


def ws_read(conn, buf):
    """Read one frame; returns (opcode, payload, remaining buffer)."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            b = conn.recv(4096)
            if not b:
                raise EOFError
            buf += b
    need(2)
    opcode = buf[0] & 0x0F
    masked = buf[1] & 0x80
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        need(4)
        n = struct.unpack("!H", buf[2:4])[0]
        off = 4
    key = b""
    if masked:
        need(off + 4)
        key = buf[off:off + 4]
        off += 4
    need(off + n)
    payload = buf[off:off + n]
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload, buf[off + n:]


def ws_server(host, port):
    """Answers an Upgrade: websocket request with 101, echoes text frames,
    answers the client's close frame and closes after the client."""
    def handle(conn, peer):
        head, buf = read_head(conn)
        lines = head.split(b"\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get(b"upgrade", b"").lower() != b"websocket" or b"sec-websocket-key" not in hdrs:
            body = b"websocket only\n"
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            drain_and_close(conn)
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                     ws_accept(hdrs[b"sec-websocket-key"]) + b"\r\n\r\n")
        log("ws", peer, lines[0].decode("latin-1"), "upgraded")
        try:
            while True:
                op, payload, buf = ws_read(conn, buf)
                if op == 0x1:
                    conn.sendall(ws_frame(0x1, payload, False))
                elif op == 0x8:
                    conn.sendall(ws_frame(0x8, payload[:2], False))
                    break
        except EOFError:
            pass
        drain_and_close(conn)
    serve_tcp(host, port, handle)


def ws_client(src, sport, dst, dport, hostname, path):
    s = socket.socket(family_of(src), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    s.settimeout(5)
    s.connect((dst, int(dport)))
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
              b"Origin: http://%s\r\nUser-Agent: allowscope-record\r\n\r\n"
              % (path.encode(), hostname.encode(), key, hostname.encode()))
    head, buf = read_head(s)
    status = head.split(b"\r\n", 1)[0]
    log("ws-client", status.decode("latin-1"))
    if b" 101 " not in status + b" ":
        s.close()
        return
    s.sendall(ws_frame(0x1, b"hello from allowscope", True))
    op, payload, buf = ws_read(s, buf)
    log("ws-client echo", op, payload)
    s.sendall(ws_frame(0x8, struct.pack("!H", 1000), True))
    op, payload, buf = ws_read(s, buf)
    log("ws-client close", op, payload)
    s.close()


# ---- QUIC / HTTP/3 (aioquic) -----------------------------------------------------

def quic_server(host, ports, cert, key):
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ProtocolNegotiated

    body = b"allowscope quic test page\n"

    class H3Server(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.h3 = None

        def quic_event_received(self, event):
            if isinstance(event, ProtocolNegotiated):
                log("quic alpn", event.alpn_protocol)
                if event.alpn_protocol == "h3":
                    self.h3 = H3Connection(self._quic)
            if self.h3 is None:
                return
            for ev in self.h3.handle_event(event):
                if isinstance(ev, HeadersReceived) and ev.stream_ended:
                    log("quic request", dict(ev.headers).get(b":path"))
                    self.h3.send_headers(ev.stream_id, [
                        (b":status", b"200"),
                        (b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode()),
                    ])
                    self.h3.send_data(ev.stream_id, body, end_stream=True)
                    self.transmit()

    async def main():
        conf = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
        conf.load_cert_chain(cert, key)
        for p in ports.split(","):
            await serve(host, int(p), configuration=conf, create_protocol=H3Server)
        log("ready", host, ports)
        await asyncio.Event().wait()

    asyncio.run(main())


def quic_client(src, sport, dst, dport, sni, alpns, timeout="5"):
    """One HTTP/3 GET / (when h3 is negotiated), then CONNECTION_CLOSE.
    alpns: comma-separated list, or h3+N: h3 followed by N padding names
    (to make the ClientHello larger than one Initial packet)."""
    from aioquic.asyncio import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    if "+" in alpns:
        first, n = alpns.split("+")
        protos = [first] + ["x-allowscope-padding-protocol-%02d" % i for i in range(int(n))]
    else:
        protos = alpns.split(",")

    class H3Client(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.h3 = None
            self.done = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event):
            if self.h3 is None:
                return
            for ev in self.h3.handle_event(event):
                if isinstance(ev, HeadersReceived):
                    log("quic-client headers", ev.headers)
                if isinstance(ev, DataReceived):
                    log("quic-client data", ev.data)
                if getattr(ev, "stream_ended", False) and not self.done.done():
                    self.done.set_result(True)

    async def main():
        conf = QuicConfiguration(is_client=True, alpn_protocols=protos, server_name=sni,
                                 verify_mode=ssl.CERT_NONE)
        loop = asyncio.get_running_loop()
        quic = QuicConnection(configuration=conf)
        _, proto = await loop.create_datagram_endpoint(lambda: H3Client(quic),
                                                       local_addr=(src, int(sport)))
        proto.connect((dst, int(dport)))
        try:
            await asyncio.wait_for(proto.wait_connected(), float(timeout))
        except (asyncio.TimeoutError, ConnectionError) as e:
            log("quic-client", dst, dport, "not connected:", repr(e))
            proto._transport.close()
            return
        alpn = quic.tls.alpn_negotiated
        log("quic-client connected, alpn", alpn)
        if alpn == "h3":
            proto.h3 = H3Connection(quic)
            sid = quic.get_next_available_stream_id()
            proto.h3.send_headers(sid, [
                (b":method", b"GET"), (b":scheme", b"https"),
                (b":authority", sni.encode()), (b":path", b"/"),
                (b"user-agent", b"allowscope-record"),
            ], end_stream=True)
            proto.transmit()
            await asyncio.wait_for(proto.done, float(timeout))
        proto.close()
        await proto.wait_closed()
        proto._transport.close()

    asyncio.run(main())


COMMANDS = {
    "deny-page": deny_page,
    "ws-server": ws_server,
    "ws-client": ws_client,
    "quic-server": quic_server,
    "quic-client": quic_client,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PYEOF

# ---- third helper: servers and clients of the audited-firewall captures -------
cat >"$WORK/audit.py" <<'PYEOF'
"""Helpers for the audited-firewall captures of record.sh (audit-client.pcap,
audit-firewall.pcapng): a plain HTTP server and a UDP client that retries."""
import select
import socket
import sys


def log(*a):
    print(*a, flush=True)


def http_server(hosts, port):
    """HTTP/1.1, one request per connection, one listener per address in the
    comma-separated list: 200 and a one-line text body naming the Host asked
    for, `Connection: close`; the client closes first."""
    socks = []
    for h in hosts.split(","):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((h, int(port)))
        ls.listen(16)
        socks.append(ls)
    log("ready", hosts, port)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for ls in ready:
            conn, peer = ls.accept()
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    b = conn.recv(4096)
                    if not b:
                        break
                    data += b
                host = b"?"
                for line in data.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"host":
                        host = v.strip()
                log("http", peer, data.split(b"\r\n", 1)[0].decode("latin-1"), host.decode("latin-1"))
                body = b"allowscope audit test page for " + host + b"\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                while conn.recv(4096):
                    pass
            except OSError as e:
                log("http", peer, "error:", e)
            conn.close()


def udp_tries(src, sport, dst, dport, tries="3", wait="1"):
    """Send a short datagram up to `tries` times, `wait` s apart, until
    something comes back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    s.connect((dst, int(dport)))
    s.settimeout(float(wait))
    for i in range(int(tries)):
        s.send(b"allowscope-udp-probe %d\n" % (i + 1))
        try:
            r = s.recv(65535)
            log("udp", dst, dport, "answer of", len(r), "bytes after", i + 1, "tries")
            break
        except socket.timeout:
            log("udp", dst, dport, "try", i + 1, "no answer")
        except OSError as e:
            log("udp", dst, dport, "error:", e)
            break
    s.close()


COMMANDS = {
    "http-server": http_server,
    "udp-tries": udp_tries,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PYEOF

# ---- topology ---------------------------------------------------------------
# Fixed MAC addresses and permanent neighbour entries: the captures contain no
# ARP or neighbour discovery on the main links and are the same on every run.
MAC_CLI=02:99:01:00:00:02
MAC_FW1=02:99:01:00:00:01
MAC_FW2=02:99:02:00:00:01
MAC_SRV=02:99:02:00:00:02

ns_sysctls() {
    local ns=$1
    in_ns "$ns" sysctl -qw \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

no_offload() {
    local ns=$1 dev=$2
    if ((HAVE_ETHTOOL)); then
        # tx off: checksums are computed in software, so captured packets
        # carry real checksums instead of offload placeholders
        in_ns "$ns" ethtool -K "$dev" gro off gso off tso off tx off >/dev/null 2>&1 ||
            in_ns "$ns" ethtool -K "$dev" gro off gso off tso off >/dev/null
    fi
}

setup_topology() {
    local ns
    for ns in "${ALL_NS[@]}"; do
        ip netns add "$ns"
        in_ns "$ns" ip link set lo up
        ns_sysctls "$ns"
    done
    ip link add cli-fw netns "$NS_CLI" address "$MAC_CLI" type veth \
        peer name fw-cli netns "$NS_FW" address "$MAC_FW1"
    ip link add fw-srv netns "$NS_FW" address "$MAC_FW2" type veth \
        peer name srv-fw netns "$NS_SRV" address "$MAC_SRV"
    no_offload "$NS_CLI" cli-fw
    no_offload "$NS_FW" fw-cli
    no_offload "$NS_FW" fw-srv
    no_offload "$NS_SRV" srv-fw

    in_ns "$NS_CLI" ip addr add 10.99.1.2/24 dev cli-fw
    in_ns "$NS_CLI" ip addr add fd99:1::2/64 dev cli-fw nodad
    in_ns "$NS_CLI" ip link set cli-fw up
    in_ns "$NS_CLI" ip route add default via 10.99.1.1
    in_ns "$NS_CLI" ip -6 route add default via fd99:1::1
    in_ns "$NS_CLI" ip neigh replace 10.99.1.1 lladdr "$MAC_FW1" dev cli-fw nud permanent
    in_ns "$NS_CLI" ip neigh replace fd99:1::1 lladdr "$MAC_FW1" dev cli-fw nud permanent

    in_ns "$NS_FW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    in_ns "$NS_FW" ip addr add 10.99.1.1/24 dev fw-cli
    in_ns "$NS_FW" ip addr add fd99:1::1/64 dev fw-cli nodad
    in_ns "$NS_FW" ip addr add 10.99.2.1/24 dev fw-srv
    in_ns "$NS_FW" ip addr add fd99:2::1/64 dev fw-srv nodad
    in_ns "$NS_FW" ip link set fw-cli up
    in_ns "$NS_FW" ip link set fw-srv up
    in_ns "$NS_FW" ip neigh replace 10.99.1.2 lladdr "$MAC_CLI" dev fw-cli nud permanent
    in_ns "$NS_FW" ip neigh replace fd99:1::2 lladdr "$MAC_CLI" dev fw-cli nud permanent
    in_ns "$NS_FW" ip neigh replace 10.99.2.2 lladdr "$MAC_SRV" dev fw-srv nud permanent
    in_ns "$NS_FW" ip neigh replace fd99:2::2 lladdr "$MAC_SRV" dev fw-srv nud permanent

    in_ns "$NS_SRV" ip addr add 10.99.2.2/24 dev srv-fw
    in_ns "$NS_SRV" ip addr add fd99:2::2/64 dev srv-fw nodad
    in_ns "$NS_SRV" ip link set srv-fw up
    in_ns "$NS_SRV" ip route add default via 10.99.2.1
    in_ns "$NS_SRV" ip -6 route add default via fd99:2::1
    in_ns "$NS_SRV" ip neigh replace 10.99.2.1 lladdr "$MAC_FW2" dev srv-fw nud permanent
    in_ns "$NS_SRV" ip neigh replace fd99:2::1 lladdr "$MAC_FW2" dev srv-fw nud permanent

    # Recent kernels (this was recorded on 6.18) retransmit the first SYNs at
    # linear 1 s intervals (tcp_syn_linear_timeouts, default 4, which gave 5
    # SYNs in 5 s in a first try): switch back to the classic
    # exponential backoff 1 s, 2 s, 4 s ... so a 5 s connect timeout gives 3 SYNs
    # on every kernel.
    if in_ns "$NS_CLI" test -e /proc/sys/net/ipv4/tcp_syn_linear_timeouts; then
        in_ns "$NS_CLI" sysctl -qw net.ipv4.tcp_syn_linear_timeouts=0
    fi

    # The firewall policy used by all captures.
    in_ns "$NS_FW" nft -f - <<'NFT'
table inet allowscope {
    chain forward {
        type filter hook forward priority filter; policy accept;
        tcp dport 8081 drop
        tcp dport 8082 reject with tcp reset
        meta nfproto ipv4 tcp dport 8083 reject with icmp type admin-prohibited
        meta nfproto ipv6 tcp dport 8083 reject with icmpv6 type admin-prohibited
        udp dport 5300 drop
        meta nfproto ipv4 udp dport 5301 reject with icmp type admin-prohibited
        meta nfproto ipv6 udp dport 5301 reject with icmpv6 type admin-prohibited
    }
}
NFT
}

# Extra veth pair used as an 802.1Q trunk.  Each "VLAN subinterface" is a TAP
# device served by kit.py vlan-bridge, which adds/removes the tags; capturing
# on cli-trunk shows the tagged frames.
setup_vlans() {
    ip link add cli-trunk netns "$NS_CLI" address 02:99:00:00:00:02 type veth \
        peer name fw-trunk netns "$NS_FW" address 02:99:00:00:00:01
    local ns side tap
    for ns in "$NS_CLI" "$NS_FW"; do
        if [[ $ns == "$NS_CLI" ]]; then side=cli; else side=fw; fi
        no_offload "$ns" "$side-trunk"
        in_ns "$ns" sysctl -qw "net.ipv6.conf.$side-trunk.disable_ipv6=1"
        # room for two tags on top of a 1500-byte payload
        in_ns "$ns" ip link set "$side-trunk" mtu 1508 up
        for tap in "$side-v100" "$side-qinq"; do
            in_ns "$ns" ip tuntap add dev "$tap" mode tap
            in_ns "$ns" sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=1"
        done
    done
    in_ns "$NS_CLI" ip link set cli-v100 address 02:99:03:00:00:02
    in_ns "$NS_CLI" ip link set cli-qinq address 02:99:04:00:00:02
    in_ns "$NS_FW" ip link set fw-v100 address 02:99:03:00:00:01
    in_ns "$NS_FW" ip link set fw-qinq address 02:99:04:00:00:01
    in_ns "$NS_CLI" ip addr add 10.99.3.2/24 dev cli-v100
    in_ns "$NS_CLI" ip addr add 10.99.4.2/24 dev cli-qinq
    in_ns "$NS_FW" ip addr add 10.99.3.1/24 dev fw-v100
    in_ns "$NS_FW" ip addr add 10.99.4.1/24 dev fw-qinq
    for tap in cli-v100 cli-qinq; do in_ns "$NS_CLI" ip link set "$tap" up; done
    for tap in fw-v100 fw-qinq; do in_ns "$NS_FW" ip link set "$tap" up; done
    # traffic sourced from a VLAN address leaves through that VLAN
    in_ns "$NS_CLI" ip rule add from 10.99.3.2 lookup 103 pref 1003
    in_ns "$NS_CLI" ip route add default via 10.99.3.1 dev cli-v100 table 103
    in_ns "$NS_CLI" ip rule add from 10.99.4.2 lookup 104 pref 1004
    in_ns "$NS_CLI" ip route add default via 10.99.4.1 dev cli-qinq table 104
    start_bg vlan-bridge-cli "$NS_CLI" "$PY" -u "$WORK/kit.py" vlan-bridge cli-trunk cli-v100=100 cli-qinq=200+300
    start_bg vlan-bridge-fw "$NS_FW" "$PY" -u "$WORK/kit.py" vlan-bridge fw-trunk fw-v100=100 fw-qinq=200+300
    wait_for "$LOG/vlan-bridge-cli.log" '^ready'
    wait_for "$LOG/vlan-bridge-fw.log" '^ready'
}

# ---- servers (all in as-srv) --------------------------------------------------
# Extra names for the application-facts captures.  They are served in every
# mode (the base captures never ask for them, so their answers are unchanged).
DNS_FACTS_RECORDS=(
    # 3-name CNAME chain ending at an A record
    --cname=www.allowscope.test,edge.allowscope.test
    --cname=edge.allowscope.test,edge.cdn.allowscope.test
    --host-record=edge.cdn.allowscope.test,198.18.0.80
    # private-endpoint style chain ending at a public-looking (benchmark,
    # 198.18.0.0/15) address, as seen when the private DNS zone is missing
    --cname=ws1.workspace.eastus.api.azureml.ms,ws1.workspace.eastus.privatelink.api.azureml.ms
    --cname=ws1.workspace.eastus.privatelink.api.azureml.ms,eastus.api.azureml.ms
    --host-record=eastus.api.azureml.ms,198.18.10.4
    # A only: AAAA gives NODATA
    --host-record=v4only.allowscope.test,10.99.2.2
    # sinkhole answers
    --address=/sinkhole.allowscope.test/0.0.0.0
    --address=/sinkhole.allowscope.test/::
    # HTTPS (type 65): 1 . alpn="h3,h2" ipv4hint=10.99.2.2 ; CAA: 0 issue "pki.allowscope.test"
    --host-record=svc.allowscope.test,10.99.2.2
    --dns-rr=svc.allowscope.test,65,00010000010006026833026832000400040a630202
    --dns-rr=svc.allowscope.test,257,00056973737565706b692e616c6c6f7773636f70652e74657374
    # servers of tls-facts / proxy / quic
    --host-record=login.microsoftonline.com,10.99.2.11
    --host-record=ml.azure.com,10.99.2.12
    --host-record=tls13only.allowscope.test,10.99.2.13
    --host-record=denied.allowscope.test,10.99.2.70
    --host-record=ws.allowscope.test,10.99.2.2
    --host-record=quic.allowscope.test,10.99.2.2
)

start_servers() {
    local tls=$WORK/tls
    mkdir -p "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=ok.allowscope.test" \
        -addext "subjectAltName=DNS:ok.allowscope.test,DNS:*.allowscope.test,DNS:*.instances.allowscope.test" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" >"$LOG/openssl-req.log" 2>&1

    # TLS: -rev echoes every line reversed; one instance per address family
    start_bg s_server4 "$NS_SRV" openssl s_server -accept 10.99.2.2:443 -cert "$tls/cert.pem" \
        -key "$tls/key.pem" -rev
    start_bg s_server6 "$NS_SRV" openssl s_server -accept '[fd99:2::2]:443' -cert "$tls/cert.pem" \
        -key "$tls/key.pem" -rev
    # DNS: answers for allowscope.test only, no upstream
    start_bg dnsmasq "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --no-poll --bind-interfaces \
        --listen-address=10.99.2.2 --listen-address=fd99:2::2 --port=53 \
        --user=root --group=root --pid-file="$WORK/dnsmasq.pid" \
        --local=/allowscope.test/ \
        --host-record=ok.allowscope.test,10.99.2.2,fd99:2::2 \
        --host-record=blocked.allowscope.test,10.99.2.2,fd99:2::2 \
        --address=/wild.allowscope.test/10.99.2.9 \
        "${DNS_FACTS_RECORDS[@]}" \
        --log-queries --log-facility=-
    # UDP echo on port 7 (v4 and v6)
    start_bg udp-echo4 "$NS_SRV" socat -b 65536 UDP4-RECVFROM:7,bind=10.99.2.2,fork PIPE
    start_bg udp-echo6 "$NS_SRV" socat -b 65536 UDP6-RECVFROM:7,bind=[fd99:2::2],fork PIPE
    # TCP helpers
    start_bg hold "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold 10.99.2.2,fd99:2::2 8084
    start_bg hello-fin "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hello 10.99.2.2,fd99:2::2 8085 fin
    start_bg hello-rst "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hello 10.99.2.2,fd99:2::2 8086 rst
    start_bg lines "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-lines 10.99.2.2,fd99:2::2 8087
    start_bg http "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-http 10.99.2.2,fd99:2::2 8080
    # also listening behind the drop/reject rules, so it is the firewall alone
    # that decides the outcome for 8081-8083
    start_bg behind-fw "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold 10.99.2.2,fd99:2::2 8081
    start_bg behind-fw2 "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold 10.99.2.2,fd99:2::2 8082
    start_bg behind-fw3 "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold 10.99.2.2,fd99:2::2 8083
    start_bg behind-fw-udp "$NS_SRV" socat UDP4-RECVFROM:5301,bind=10.99.2.2,fork PIPE

    local p
    for p in 443 8080 8081 8082 8083 8084 8085 8086 8087; do wait_port "$NS_SRV" tcp "$p"; done
    for p in 53 7 5301; do wait_port "$NS_SRV" udp "$p"; done
}

# ---- recordings ---------------------------------------------------------------
C4=10.99.1.2
S4=10.99.2.2
C6=fd99:1::2
S6=fd99:2::2

record_tcp_outcomes() {
    say "tcp-outcomes: starting the long-lived flow (midstream) before the capture"
    rm -f "$WORK/go-stream" "$WORK/stop-stream"
    start_bg stream "$NS_CLI" "$PY" -u "$WORK/kit.py" stream "$C4" 40087 "$S4" 8087 \
        "$WORK/go-stream" "$WORK/stop-stream"
    local stream_pid=${BG_PIDS[-1]}
    wait_for "$LOG/stream.log" '^connected'
    sleep 1     # delayed ACKs of the first exchange are over before capturing

    tcpdump_to "$NS_CLI" "$OUT/tcp-outcomes.pcap" -i cli-fw
    tcpdump_to "$NS_CLI" "$OUT/tcp-outcomes.sll2.pcap" -i any -y LINUX_SLL2 'not ifindex 1'
    tcpdump_to "$NS_CLI" "$OUT/tcp-outcomes.snap96.pcap" -i cli-fw -s 96
    cap_start "$NS_CLI" dumpcap -q -i cli-fw -w "$OUT/tcp-outcomes.pcapng"
    sleep "$GAP"
    touch "$WORK/go-stream"
    sleep "$GAP"

    say "a) 443 TLS established"
    tls_client 40443 "$S4:443" ok.allowscope.test; sleep "$GAP"
    say "b) 8081 dropped by the firewall (5 s connect timeout)"
    kit "$NS_CLI" connect "$C4" 40081 "$S4" 8081 5 >>"$LOG/clients.log"; sleep "$GAP"
    say "c) 8082 refused by the firewall (tcp reset)"
    kit "$NS_CLI" connect "$C4" 40082 "$S4" 8082 >>"$LOG/clients.log"; sleep "$GAP"
    say "d) 8083 rejected by the firewall (icmp admin-prohibited)"
    kit "$NS_CLI" connect "$C4" 40083 "$S4" 8083 >>"$LOG/clients.log"; sleep "$GAP"
    say "e) 9 refused by the server kernel (no listener)"
    kit "$NS_CLI" connect "$C4" 40009 "$S4" 9 >>"$LOG/clients.log"; sleep "$GAP"
    say "f) 8084 handshake only"
    kit "$NS_CLI" connect "$C4" 40084 "$S4" 8084 5 0.3 >>"$LOG/clients.log"; sleep "$GAP"
    say "g) 8085 server closes (FIN) after the ClientHello"
    hello_client 40085 "$S4:8085" blocked.allowscope.test; sleep "$GAP"
    say "h) 8086 server resets (RST) after the ClientHello"
    hello_client 40086 "$S4:8086" blocked.allowscope.test; sleep "$GAP"

    say "i) closing the long-lived flow"
    touch "$WORK/stop-stream"
    wait "$stream_pid" || true
    cap_stop

    gzip -9 -n -k "$OUT/tcp-outcomes.pcap"
    zstd -q -19 -k "$OUT/tcp-outcomes.pcap" -o "$OUT/tcp-outcomes.pcap.zst"
}

record_udp_outcomes() {
    tcpdump_to "$NS_CLI" "$OUT/udp-outcomes.pcap" -i cli-fw --time-stamp-precision=nano
    sleep "$GAP"
    say "udp: dig A / AAAA (answered), dig unknown name (NXDOMAIN)"
    in_ns "$NS_CLI" dig @"$S4" -b "$C4#50531" +tries=1 +timeout=2 A ok.allowscope.test >>"$LOG/dig.log"; sleep "$GAP"
    in_ns "$NS_CLI" dig @"$S4" -b "$C4#50532" +tries=1 +timeout=2 AAAA ok.allowscope.test >>"$LOG/dig.log"; sleep "$GAP"
    in_ns "$NS_CLI" dig @"$S4" -b "$C4#50533" +tries=1 +timeout=2 A nosuch.allowscope.test >>"$LOG/dig.log"; sleep "$GAP"
    say "udp: echo (answered), port 9999 (port unreachable)"
    kit "$NS_CLI" udp "$C4" 50007 "$S4" 7 64 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" udp "$C4" 50999 "$S4" 9999 64 >>"$LOG/clients.log"; sleep "$GAP"
    say "udp: 5300 dropped (2 tries), 5301 rejected (admin-prohibited)"
    in_ns "$NS_CLI" dig @"$S4" -p 5300 -b "$C4#55300" +tries=2 +timeout=1 A ok.allowscope.test >>"$LOG/dig.log" || true; sleep "$GAP"
    in_ns "$NS_CLI" dig @"$S4" -p 5301 -b "$C4#55301" +tries=1 +timeout=1 A ok.allowscope.test >>"$LOG/dig.log" || true; sleep "$GAP"
    say "udp: 4000-byte echo (fragmented both ways)"
    kit "$NS_CLI" udp "$C4" 50070 "$S4" 7 4000 >>"$LOG/clients.log"
    cap_stop
}

record_ipv6() {
    tcpdump_to "$NS_CLI" "$OUT/ipv6.pcap" -i cli-fw
    sleep "$GAP"
    say "ipv6: TLS, drop, tcp reset, icmpv6 admin-prohibited, no listener"
    tls_client 60443 "[$S6]:443" ok.allowscope.test; sleep "$GAP"
    kit "$NS_CLI" connect "$C6" 60081 "$S6" 8081 5 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" connect "$C6" 60082 "$S6" 8082 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" connect "$C6" 60083 "$S6" 8083 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" connect "$C6" 60009 "$S6" 9 >>"$LOG/clients.log"; sleep "$GAP"
    say "ipv6: dig AAAA, udp 9999 (port unreachable), udp 5301 (admin-prohibited), 4000-byte echo"
    in_ns "$NS_CLI" dig @"$S6" -b "$C6#60053" +tries=1 +timeout=2 AAAA ok.allowscope.test >>"$LOG/dig.log"; sleep "$GAP"
    kit "$NS_CLI" udp "$C6" 60999 "$S6" 9999 64 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" udp "$C6" 65301 "$S6" 5301 64 >>"$LOG/clients.log"; sleep "$GAP"
    kit "$NS_CLI" udp "$C6" 60007 "$S6" 7 4000 >>"$LOG/clients.log"
    cap_stop
}

record_vlan() {
    setup_vlans
    tcpdump_to "$NS_CLI" "$OUT/vlan.pcap" -i cli-trunk
    sleep "$GAP"
    say "vlan 100: HTTP over TCP, DNS over UDP"
    in_ns "$NS_CLI" curl -sS --max-time 5 --interface 10.99.3.2 --local-port 42080 \
        "http://$S4:8080/vlan100" >>"$LOG/curl.log"; sleep "$GAP"
    in_ns "$NS_CLI" dig @"$S4" -b "10.99.3.2#42053" +tries=1 +timeout=2 A ok.allowscope.test >>"$LOG/dig.log"; sleep "$GAP"
    say "qinq 200/300: HTTP over TCP, DNS over UDP"
    in_ns "$NS_CLI" curl -sS --max-time 5 --interface 10.99.4.2 --local-port 43080 \
        "http://$S4:8080/qinq" >>"$LOG/curl.log"; sleep "$GAP"
    in_ns "$NS_CLI" dig @"$S4" -b "10.99.4.2#43053" +tries=1 +timeout=2 A ok.allowscope.test >>"$LOG/dig.log"
    cap_stop
}

record_fw_two_ifaces() {
    local idx
    idx=$(in_ns "$NS_FW" cat /sys/class/net/fw-srv/ifindex)
    # A veth only offers EN10MB/DOCSIS, so the cooked-v2 side is the "any"
    # pseudo-device restricted to fw-srv with the SLL2 ifindex filter.
    cap_start "$NS_FW" dumpcap -q -i fw-cli -y EN10MB -i any -y LINUX_SLL2 -f "ifindex $idx" \
        -w "$OUT/fw-two-ifaces.pcapng"
    sleep "$GAP"
    say "fw-two-ifaces: TLS established, SYN to 8081 dropped"
    tls_client 44443 "$S4:443" ok.allowscope.test; sleep "$GAP"
    kit "$NS_CLI" connect "$C4" 44081 "$S4" 8081 5 >>"$LOG/clients.log"
    cap_stop
}

record_split_hello() {
    # MTU 296 (IPv4 only: IPv6 needs 1280) on both ends of the cli<->fw link
    in_ns "$NS_CLI" ip link set cli-fw mtu 296
    in_ns "$NS_FW" ip link set fw-cli mtu 296
    sleep 1
    tcpdump_to "$NS_CLI" "$OUT/split-hello.pcap" -i cli-fw
    sleep "$GAP"
    say "split-hello: long SNI + ALPN, ClientHello over several segments"
    tls_client 41443 "$S4:443" a-rather-long-name-for-segmentation.instances.allowscope.test \
        -alpn h2,http/1.1
    cap_stop
    in_ns "$NS_CLI" ip link set cli-fw mtu 1500
    in_ns "$NS_FW" ip link set fw-cli mtu 1500
}

# ---- application-facts captures (mode "facts") ---------------------------------
# Addresses used only here (all inside the namespaces):
#   as-srv  10.99.2.3   dnsmasq that validates DNSSEC (answers SERVFAIL)
#           10.99.2.11  openssl s_server login.microsoftonline.com, ALPN h2,http/1.1
#           10.99.2.12  openssl s_server -www ml.azure.com (cert from a test CA)
#           10.99.2.13  openssl s_server -tls1_3 (TLS 1.3 only)
#   as-fw   10.99.2.14  haproxy SNI filter (forwards to 10.99.2.2:443)
#           10.99.2.70  HTTP 470 deny page (emulates a cloud firewall's deny)
#           10.99.1.1:3128 / :3129  squid (plain / Basic auth)
#   nowhere 10.99.2.53  as-fw drops everything to it (DNS that gets no answer)
# The as-srv addresses are /32s on srv-fw with permanent neighbour entries in
# as-fw (no ARP); the as-fw ones are /32s on its loopback, so as-fw itself
# answers for them, like an inline filter or proxy would.
FACTS_USER=alice
# squid names its shared-memory segments /dev/shm/<service>-cf__*.shm (tmpfs
# shared with the host); a name of our own lets cleanup remove exactly those
SQUID_SERVICE=allowscoperecord   # squid accepts letters and digits only
FACTS_PASS=allowscope-test

fx() { local ns=$1; shift; in_ns "$ns" "$PY" -u "$WORK/facts.py" "$@"; }

# wait_listen NS tcp|udp ADDR PORT : wait until something listens on ADDR:PORT
# in NS (ADDR empty: on any address)
wait_listen() {
    local ns=$1 proto=$2 addr=$3 port=$4 end=$((SECONDS + 10)) flag=t filter
    [[ $proto == udp ]] && flag=u
    filter="sport = :$port"
    [[ -n $addr ]] && filter="src $addr and $filter"
    until [[ -n $(in_ns "$ns" ss -Hln$flag "$filter") ]]; do
        if ((SECONDS >= end)); then
            echo "record.sh: nothing listens on $proto/${addr:+$addr:}$port in $ns" >&2
            return 1
        fi
        sleep 0.1
    done
}

facts_certs() {
    local tls=$WORK/tls
    # a test CA and a leaf issued by it (subject != issuer, visible in TLS 1.2)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -set_serial 0x1001 -subj "/O=allowscope test/CN=allowscope Test Root CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/C=US/O=allowscope test/CN=ml.azure.com" -keyout "$tls/ml.key" -out "$tls/ml.csr"
    printf 'subjectAltName=DNS:ml.azure.com,DNS:*.ml.azure.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$tls/ml.ext"
    openssl x509 -req -in "$tls/ml.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -set_serial 0x2002 \
        -days 30 -extfile "$tls/ml.ext" -out "$tls/ml.pem"
    # self-signed
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -set_serial 0x3003 -subj "/CN=login.microsoftonline.com" \
        -addext "subjectAltName=DNS:login.microsoftonline.com" \
        -keyout "$tls/login.key" -out "$tls/login.pem"
    # an unrelated CA: verifying any server above against it fails
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -set_serial 0x4004 -subj "/O=allowscope test/CN=allowscope Unrelated CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -keyout "$tls/other-ca.key" -out "$tls/other-ca.pem"
}

facts_squid() {
    local d=$LOG/squid
    mkdir -p "$d"
    chmod 711 "$WORK"       # the squid user must reach $LOG/squid
    htpasswd -b -c -m "$d/passwd" "$FACTS_USER" "$FACTS_PASS"
    cat >"$d/squid.conf" <<EOF
# explicit proxy for proxy.pcap: 3128 open, 3129 Basic auth
http_port 10.99.1.1:3128 name=plain
http_port 10.99.1.1:3129 name=auth
visible_hostname proxy.allowscope.test
cache_effective_user proxy
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log
coredump_dir $d
cache deny all
cache_mem 8 MB
dns_nameservers 10.99.2.2
hosts_file none
pinger_enable off
shutdown_lifetime 1 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth $d/passwd
auth_param basic realm allowscope test proxy
auth_param basic children 1 startup=1 idle=1
acl SSL_ports port 443
acl Safe_ports port 80 443 1025-65535
acl CONNECT method CONNECT
acl on_auth_port myportname auth
acl authenticated proxy_auth REQUIRED
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access deny on_auth_port !authenticated
http_access allow all
EOF
    chown -R proxy:proxy "$d"
    in_ns "$NS_FW" squid -n "$SQUID_SERVICE" -k parse -f "$d/squid.conf" >"$LOG/squid-parse.log" 2>&1
    start_bg squid "$NS_FW" squid -n "$SQUID_SERVICE" -N -f "$d/squid.conf"
}

facts_haproxy() {
    cat >"$WORK/haproxy.cfg" <<'EOF'
# SNI filter for tls-facts.pcap: TCP mode, looks at the ClientHello only
global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend sni_filter
    bind 10.99.2.14:443
    tcp-request inspect-delay 5s
    tcp-request content reject if { req.ssl_sni -i blocked.allowscope.test }
    tcp-request content accept if { req.ssl_hello_type 1 }
    default_backend tls_servers
backend tls_servers
    server srv 10.99.2.2:443
EOF
    in_ns "$NS_FW" haproxy -c -f "$WORK/haproxy.cfg" >"$LOG/haproxy-check.log" 2>&1
    start_bg haproxy "$NS_FW" haproxy -db -f "$WORK/haproxy.cfg"
}

setup_facts() {
    say "facts: addresses, firewall rules, certificates and servers"
    local a tls=$WORK/tls
    # After record_split_hello (mode "all") the cli<->fw link has had an MTU
    # below 1280, which makes the kernel drop IPv6 from both ends, with the
    # addresses and routes: put them back (a no-op in mode "facts").
    in_ns "$NS_CLI" ip addr replace fd99:1::2/64 dev cli-fw nodad
    in_ns "$NS_CLI" ip -6 route replace default via fd99:1::1
    in_ns "$NS_CLI" ip neigh replace fd99:1::1 lladdr "$MAC_FW1" dev cli-fw nud permanent
    in_ns "$NS_FW" ip addr replace fd99:1::1/64 dev fw-cli nodad
    in_ns "$NS_FW" ip neigh replace fd99:1::2 lladdr "$MAC_CLI" dev fw-cli nud permanent
    for a in 10.99.2.3 10.99.2.11 10.99.2.12 10.99.2.13; do
        in_ns "$NS_SRV" ip addr add "$a/32" dev srv-fw
        in_ns "$NS_FW" ip neigh replace "$a" lladdr "$MAC_SRV" dev fw-srv nud permanent
    done
    in_ns "$NS_FW" ip addr add 10.99.2.14/32 dev lo
    in_ns "$NS_FW" ip addr add 10.99.2.70/32 dev lo
    # appended to the base policy: a black-holed resolver address, and QUIC to
    # UDP 8443 (the QUIC server listens there too: only the firewall decides)
    in_ns "$NS_FW" nft add rule inet allowscope forward ip daddr 10.99.2.53 drop
    in_ns "$NS_FW" nft add rule inet allowscope forward udp dport 8443 drop

    facts_certs >"$LOG/openssl-facts.log" 2>&1

    # TLS servers (-rev: each line echoed reversed; -www: an HTTP status page)
    start_bg s_login "$NS_SRV" openssl s_server -accept 10.99.2.11:443 \
        -cert "$tls/login.pem" -key "$tls/login.key" -alpn h2,http/1.1 -rev
    start_bg s_ml "$NS_SRV" openssl s_server -accept 10.99.2.12:443 \
        -cert "$tls/ml.pem" -key "$tls/ml.key" -www
    start_bg s_tls13 "$NS_SRV" openssl s_server -accept 10.99.2.13:443 \
        -cert "$tls/cert.pem" -key "$tls/key.pem" -tls1_3 -rev
    # a validating resolver whose upstream (the dnsmasq above) serves unsigned
    # data: every answer fails validation and is turned into SERVFAIL
    start_bg dnsmasq-validating "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --no-poll --bind-interfaces \
        --listen-address=10.99.2.3 --port=53 \
        --user=root --group=root --pid-file="$WORK/dnsmasq-validating.pid" \
        --server=10.99.2.2 --dnssec --dnssec-check-unsigned \
        --trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D \
        --log-queries=extra --log-facility=-
    # WebSocket echo (ws.allowscope.test) and QUIC/HTTP3 (quic.allowscope.test)
    start_bg ws "$NS_SRV" "$PY" -u "$WORK/facts.py" ws-server 10.99.2.2 80
    start_bg quic "$NS_SRV" "$PY" -u "$WORK/facts.py" quic-server 10.99.2.2 443,8443 \
        "$tls/cert.pem" "$tls/key.pem"
    # in as-fw: deny page, SNI filter, proxy
    start_bg deny-page "$NS_FW" "$PY" -u "$WORK/facts.py" deny-page 10.99.2.70 80
    facts_haproxy
    facts_squid

    wait_listen "$NS_SRV" tcp 10.99.2.11 443
    wait_listen "$NS_SRV" tcp 10.99.2.12 443
    wait_listen "$NS_SRV" tcp 10.99.2.13 443
    wait_listen "$NS_SRV" udp 10.99.2.3 53
    wait_listen "$NS_SRV" tcp 10.99.2.2 80
    wait_listen "$NS_SRV" udp 10.99.2.2 443
    wait_listen "$NS_SRV" udp 10.99.2.2 8443
    wait_listen "$NS_FW" tcp 10.99.2.70 80
    wait_listen "$NS_FW" tcp 10.99.2.14 443
    wait_for "$LOG/squid/cache.log" 'Accepting HTTP Socket connections at .*3129' 20
    wait_listen "$NS_FW" tcp 10.99.1.1 3128
    wait_listen "$NS_FW" tcp 10.99.1.1 3129
    sleep 2     # as at the start: multicast-listener reports of re-enabled IPv6 pass first
}

# expect_convs FILE N : the capture must hold exactly N TCP/UDP conversations
# (a client that failed to start would otherwise go unnoticed)
expect_convs() {
    local n
    n=$(tshark -n -q -r "$1" -z conv,tcp -z conv,udp 2>/dev/null | grep -c ' <-> ' || true)
    if [[ $n -ne $2 ]]; then
        echo "record.sh: $(basename "$1") has $n conversations, expected $2" >&2
        return 1
    fi
}

# dq LOCALPORT SERVER DIG-ARGS... : one dig from a fixed source port
dq() {
    local port=$1 srv=$2 src=$C4
    shift 2
    [[ $srv == *:* ]] && src=$C6
    in_ns "$NS_CLI" dig @"$srv" -b "$src#$port" +tries=1 +timeout=2 "$@" >>"$LOG/dig.log" || true
    sleep "$GAP"
}

record_dns_facts() {
    tcpdump_to "$NS_CLI" "$OUT/dns-facts.pcap" -i cli-fw
    sleep "$GAP"
    say "dns-facts: A, AAAA, CNAME chains, NXDOMAIN, REFUSED, SERVFAIL, NODATA"
    dq 51001 "$S4" A ok.allowscope.test
    dq 51002 "$S4" AAAA ok.allowscope.test
    dq 51003 "$S4" A www.allowscope.test
    dq 51004 "$S4" A ws1.workspace.eastus.api.azureml.ms
    dq 51005 "$S4" AAAA ws1.workspace.eastus.api.azureml.ms
    dq 51006 "$S4" A nosuch.allowscope.test
    dq 51007 "$S4" A www.example.com
    dq 51008 10.99.2.3 A ok.allowscope.test
    dq 51009 "$S4" AAAA v4only.allowscope.test
    say "dns-facts: sinkhole, HTTPS, CAA"
    dq 51010 "$S4" A sinkhole.allowscope.test
    dq 51011 "$S4" AAAA sinkhole.allowscope.test
    dq 51012 "$S4" HTTPS svc.allowscope.test
    dq 51013 "$S4" HTTPS ok.allowscope.test
    dq 51014 "$S4" CAA svc.allowscope.test
    say "dns-facts: over TCP (two connections, then two queries on one)"
    dq 51101 "$S4" +tcp A ok.allowscope.test
    dq 51102 "$S4" +tcp A www.allowscope.test
    dq 51103 "$S4" +tcp +keepopen ok.allowscope.test A ok.allowscope.test AAAA
    say "dns-facts: IPv6 query, then a resolver that is dropped"
    dq 61001 "$S6" A www.allowscope.test
    dq 51053 10.99.2.53 +tries=2 +timeout=1 A ok.allowscope.test
    cap_stop
    expect_convs "$OUT/dns-facts.pcap" 19
}

# tls_send LOCALPORT HOST:PORT SNI DATA [extra s_client options]: like
# tls_client, with the given data (printf format) instead of one line
tls_send() {
    local port=$1 target=$2 sni=$3 data=$4
    shift 4
    cli_port "$port"
    { printf "$data"; sleep 1; } |
        in_ns "$NS_CLI" timeout 10 openssl s_client -connect "$target" -servername "$sni" \
            -no_ign_eof "$@" >>"$LOG/s_client.log" 2>&1 || true
}

big_alpn() {
    local i list=h2,http/1.1
    for i in $(seq -w 0 44); do list+=",x-allowscope-padding-protocol-$i"; done
    printf '%s' "$list"
}

record_tls_facts() {
    local tls=$WORK/tls
    tcpdump_to "$NS_CLI" "$OUT/tls-facts.pcap" -i cli-fw
    sleep "$GAP"
    say "tls-facts: DNS + TLS 1.3 login.microsoftonline.com (ALPN h2,http/1.1)"
    dq 52053 "$S4" A login.microsoftonline.com
    tls_client 52001 10.99.2.11:443 login.microsoftonline.com -alpn h2,http/1.1; sleep "$GAP"
    say "tls-facts: DNS + TLS 1.2 ml.azure.com (certificate in clear)"
    dq 52054 "$S4" A ml.azure.com
    tls_send 52002 10.99.2.12:443 ml.azure.com 'GET / HTTP/1.0\r\nHost: ml.azure.com\r\n\r\n' \
        -tls1_2 -CAfile "$tls/ca.pem" -verify_return_error; sleep "$GAP"
    say "tls-facts: alerts (protocol_version from the server, unknown_ca from the client)"
    tls_client 52003 10.99.2.13:443 tls13only.allowscope.test -tls1_2; sleep "$GAP"
    tls_client 52004 10.99.2.12:443 ml.azure.com -tls1_2 -CAfile "$tls/other-ca.pem" \
        -verify_return_error; sleep "$GAP"
    tls_client 52005 10.99.2.11:443 login.microsoftonline.com -alpn h2,http/1.1 \
        -CAfile "$tls/other-ca.pem" -verify_return_error; sleep "$GAP"
    say "tls-facts: haproxy SNI filter (allowed, then rejected)"
    tls_client 52006 10.99.2.14:443 ok.allowscope.test; sleep "$GAP"
    hello_client 52007 10.99.2.14:443 blocked.allowscope.test; sleep "$GAP"
    say "tls-facts: ClientHello larger than one segment"
    tls_client 52008 "$S4:443" big-hello.instances.allowscope.test -alpn "$(big_alpn)"
    cap_stop
    expect_convs "$OUT/tls-facts.pcap" 10
}

# pcurl LOCALPORT[-LAST] CURL-ARGS... : curl from a fixed source port (range)
pcurl() {
    local port=$1
    shift
    in_ns "$NS_CLI" curl -sS --max-time 5 --local-port "$port" -o /dev/null \
        -w '%{http_code} connect=%{http_connect} conns=%{num_connects}\n' "$@" \
        >>"$LOG/curl.log" 2>&1 || true
    sleep "$GAP"
}

record_proxy() {
    tcpdump_to "$NS_CLI" "$OUT/proxy.pcap" -i cli-fw
    sleep "$GAP"
    say "proxy: CONNECT ok.allowscope.test:443 through squid :3128 (allowed, TLS inside)"
    tls_client 53001 ok.allowscope.test:443 ok.allowscope.test -proxy 10.99.1.1:3128; sleep "$GAP"
    say "proxy: CONNECT ok.allowscope.test:8787 (denied, 403)"
    pcurl 53002 -x http://10.99.1.1:3128 https://ok.allowscope.test:8787/
    say "proxy: :3129 with Basic auth (407, then 200)"
    pcurl 53003-53004 --proxy-anyauth -U "$FACTS_USER:$FACTS_PASS" -x http://10.99.1.1:3129 \
        -k https://ml.azure.com/
    say "proxy: plain HTTP GET through the proxy"
    pcurl 53005 -x http://10.99.1.1:3128 http://ok.allowscope.test:8080/via-proxy
    say "proxy: HTTP 470 deny page (direct, no proxy)"
    dq 53053 "$S4" A denied.allowscope.test
    pcurl 53006 --resolve denied.allowscope.test:80:10.99.2.70 http://denied.allowscope.test/admin
    say "proxy: WebSocket upgrade (direct)"
    dq 53054 "$S4" A ws.allowscope.test
    fx "$NS_CLI" ws-client "$C4" 53007 "$S4" 80 ws.allowscope.test /chat >>"$LOG/clients.log"
    cap_stop
    expect_convs "$OUT/proxy.pcap" 8
}

# raw_connect LOCALPORT TARGET: one CONNECT request for TARGET (sent as written, which curl
# would not) to squid's open port, the answer read, then closed
raw_connect() {
    printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: allowscope-record\r\n\r\n' "$2" "$2" |
        in_ns "$NS_CLI" timeout 5 socat -t 2 - "TCP:10.99.1.1:3128,bind=$C4:$1" \
            >>"$LOG/clients.log" 2>&1 || true
    sleep "$GAP"
}

# proxy-target.pcap: CONNECT targets that are not host:port, which squid refuses
record_proxy_target() {
    say "connect: squid (the open port of proxy.pcap's proxy)"
    facts_squid
    wait_for "$LOG/squid/cache.log" 'Accepting HTTP Socket connections at .*3128' 20
    wait_listen "$NS_FW" tcp 10.99.1.1 3128
    tcpdump_to "$NS_CLI" "$OUT/proxy-target.pcap" -i cli-fw
    sleep "$GAP"
    say "proxy-target: CONNECT user@ml.azure.com:443, ml.azure.com (no port), ml.azure.com:99999"
    raw_connect 55001 'user@ml.azure.com:443'
    raw_connect 55002 'ml.azure.com'
    raw_connect 55003 'ml.azure.com:99999'
    cap_stop
    expect_convs "$OUT/proxy-target.pcap" 3
}

record_quic() {
    tcpdump_to "$NS_CLI" "$OUT/quic.pcap" -i cli-fw
    sleep "$GAP"
    say "quic: DNS, HTTP/3 GET (small and 2-Initial ClientHello), dropped attempt"
    dq 54053 "$S4" A quic.allowscope.test
    fx "$NS_CLI" quic-client "$C4" 54001 "$S4" 443 quic.allowscope.test h3 >>"$LOG/clients.log"
    sleep "$GAP"
    fx "$NS_CLI" quic-client "$C4" 54002 "$S4" 443 quic.allowscope.test h3+40 >>"$LOG/clients.log"
    sleep "$GAP"
    fx "$NS_CLI" quic-client "$C4" 54003 "$S4" 8443 quic.allowscope.test h3 3 >>"$LOG/clients.log"
    cap_stop
    expect_convs "$OUT/quic.pcap" 4
}

# ---- audited-firewall captures (mode "audit") -----------------------------------
# One client run recorded twice at the same time: on the client (as-cli,
# cli-fw) and on the firewall (as-fw, fw-cli and fw-srv).  The client resolves
# each name through its own resolver and then connects to the address it got;
# the firewall applies one blocking mechanism per required catalog name.
# Addresses used only here (all inside the namespaces):
#   as-srv  10.99.2.4         dnsmasq, the client's resolver in this scenario
#           198.18.1.0/24     servers of Azure ML catalog names (one address each)
#           198.18.2.0/24     servers of names outside the catalog
#   as-fw   10.99.1.1:3130    squid (explicit proxy, denies two CONNECTs)
#           10.99.1.1:9443    haproxy SNI filter; nft redirects 198.18.1.23:443 to it
#           10.99.1.1:8470    HTTP 470 deny page; nft redirects 198.18.1.10:80 to it
# as-fw routes 198.18.0.0/15 via 10.99.2.2 (as-srv, permanent neighbour entry:
# no ARP); the as-srv addresses are /32s on srv-fw.  198.18.0.0/15 is reserved
# for benchmarking: public-looking, never used on the internet.
# Client source ports: flow K asks DNS from 56100+K and connects from 56000+K.
AUDIT_DNS=10.99.2.4
AUDIT_PROXY=10.99.1.1:3130
AUDIT_SQUID_SERVICE=allowscopeaudit   # letters and digits only (see SQUID_SERVICE)
AUDIT_TLS_DIR=tls-audit               # under $WORK

# TLS servers in as-srv (openssl s_server -rev), NAME=ADDRESS, each with a
# certificate for NAME issued by the audit CA.  The names behind a blocking
# rule have their server too, so only the firewall decides their outcome.
AUDIT_TLS=(
    login.microsoftonline.com=198.18.1.10
    management.azure.com=198.18.1.11
    ml.azure.com=198.18.1.12
    eastus.api.azureml.ms=198.18.1.13
    mystorage.blob.core.windows.net=198.18.1.14
    ws1.workspace.eastus.api.azureml.ms=198.18.1.20
    mcr.microsoft.com=198.18.1.21
    ci1.eastus.instances.azureml.ms=198.18.1.23
    myacr.azurecr.io=198.18.1.25
    example.allowscope.test=198.18.2.10
    updates.allowscope.test=198.18.2.11
    telemetry.allowscope.test=198.18.2.20
)
# other servers: SMB-port listener, UDP echo, plain HTTP
AUDIT_FILE_ADDR=198.18.1.22       # mystorage.file.core.windows.net, tcp 445
AUDIT_TUNDRA_ADDR=198.18.1.24     # eastus.tundra.azureml.ms, udp 5831
AUDIT_WWW_ADDR=198.18.2.12        # www.allowscope.test, tcp 80

audit_dns_records() {
    local entry name addr
    for entry in "${AUDIT_TLS[@]}"; do
        name=${entry%%=*} addr=${entry#*=}
        if [[ $name == ws1.workspace.eastus.api.azureml.ms ]]; then
            # private-endpoint style name: a CNAME through privatelink.
            printf '%s\n' "--cname=$name,ws1.workspace.eastus.privatelink.api.azureml.ms,300" \
                "--host-record=ws1.workspace.eastus.privatelink.api.azureml.ms,$addr"
        else
            printf '%s\n' "--host-record=$name,$addr"
        fi
    done
    printf '%s\n' \
        "--host-record=mystorage.file.core.windows.net,$AUDIT_FILE_ADDR" \
        "--host-record=eastus.tundra.azureml.ms,$AUDIT_TUNDRA_ADDR" \
        "--host-record=www.allowscope.test,$AUDIT_WWW_ADDR" \
        --local=/allowscope.test/ \
        --local=/graph.windows.net/ \
        --address=/graph.microsoft.com/0.0.0.0
}

# make_ca DIR SERIAL CN : a P-256 test CA, DIR/ca.key and DIR/ca.pem
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -set_serial "$2" -subj "/O=allowscope test/CN=$3" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$1/ca.key" -out "$1/ca.pem"
}

# issue_cert DIR NAME SERIAL : a server certificate for NAME from DIR's CA,
# DIR/NAME.key and DIR/NAME.pem
issue_cert() {
    local d=$1 name=$2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/O=allowscope test/CN=$name" -keyout "$d/$name.key" -out "$d/$name.csr"
    printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        "$name" >"$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -set_serial "$3" -days 30 -extfile "$d/$name.ext" -out "$d/$name.pem"
}

audit_certs() {
    local tls=$WORK/$AUDIT_TLS_DIR entry i=0
    make_ca "$tls" 0x5000 "allowscope Audit Test CA"
    for entry in "${AUDIT_TLS[@]}"; do
        i=$((i + 1))
        issue_cert "$tls" "${entry%%=*}" "$(printf '0x%04x' $((0x5000 + i)))"
    done
}

# squid_dir NAME : prints (and creates) $LOG/NAME, a directory the squid user
# can reach
squid_dir() {
    mkdir -p "$LOG/$1"
    chmod 711 "$WORK"
    printf '%s\n' "$LOG/$1"
}

# squid_common DIR : the configuration lines every squid here shares
squid_common() {
    local d=$1
    cat <<EOF
visible_hostname proxy.allowscope.test
cache_effective_user proxy
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log
coredump_dir $d
cache deny all
cache_mem 8 MB
pinger_enable off
shutdown_lifetime 1 seconds
EOF
}

# squid_start DIR SERVICE LABEL PORT : check DIR/squid.conf, run squid in as-fw
# and wait until it accepts connections on PORT
squid_start() {
    local d=$1 service=$2 label=$3 port=$4
    chown -R proxy:proxy "$d"
    in_ns "$NS_FW" squid -n "$service" -k parse -f "$d/squid.conf" >"$LOG/$label-parse.log" 2>&1
    start_bg "$label" "$NS_FW" squid -n "$service" -N -f "$d/squid.conf"
    wait_for "$d/cache.log" "Accepting HTTP Socket connections at .*$port" 20
}

audit_squid() {
    local d
    d=$(squid_dir squid-audit)
    {
        cat <<EOF
# explicit proxy of the audited-firewall scenario: CONNECT to a port other
# than 443, and CONNECT to one listed name, are denied (403)
http_port $AUDIT_PROXY
EOF
        squid_common "$d"
        cat <<'EOF'
# no DNS on the wire: both CONNECTs are denied before any lookup, and the
# reverse lookup of the client that squid does for a denied request would
# otherwise show up on fw-srv as a flow of the firewall's own (nothing listens
# on as-fw's loopback: squid gets a port unreachable there)
dns_nameservers 127.0.0.1
hosts_file none
acl SSL_ports port 443
acl Safe_ports port 80 443 1025-65535
acl CONNECT method CONNECT
acl audit_denied dstdomain mystorage.dfs.core.windows.net
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access deny audit_denied
http_access allow all
EOF
    } >"$d/squid.conf"
    squid_start "$d" "$AUDIT_SQUID_SERVICE" squid-audit 3130
}

audit_haproxy() {
    cat >"$WORK/haproxy-audit.cfg" <<'EOF'
# SNI filter of the audited-firewall scenario (nft redirects the compute
# instance's address to it): resets every ClientHello for *.instances.azureml.ms
global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend sni_filter
    bind 10.99.1.1:9443
    tcp-request inspect-delay 5s
    tcp-request content reject if { req.ssl_sni -m end .instances.azureml.ms }
    tcp-request content accept if { req.ssl_hello_type 1 }
    default_backend compute_instance
backend compute_instance
    server ci1 198.18.1.23:443
EOF
    in_ns "$NS_FW" haproxy -c -f "$WORK/haproxy-audit.cfg" >"$LOG/haproxy-audit-check.log" 2>&1
    start_bg haproxy-audit "$NS_FW" haproxy -db -f "$WORK/haproxy-audit.cfg"
}

setup_audit() {
    say "audit: addresses, firewall rules, certificates and servers"
    local tls=$WORK/$AUDIT_TLS_DIR entry name addr a
    local -a records
    mkdir -p "$tls"
    in_ns "$NS_SRV" ip addr add "$AUDIT_DNS/32" dev srv-fw
    in_ns "$NS_FW" ip neigh replace "$AUDIT_DNS" lladdr "$MAC_SRV" dev fw-srv nud permanent
    in_ns "$NS_FW" ip route add 198.18.0.0/15 via "$S4" dev fw-srv
    for a in "${AUDIT_TLS[@]#*=}" "$AUDIT_FILE_ADDR" "$AUDIT_TUNDRA_ADDR" "$AUDIT_WWW_ADDR"; do
        in_ns "$NS_SRV" ip addr add "$a/32" dev srv-fw
    done

    # A table of its own next to the base one (same hook; a drop or reject
    # in either is final).  nat: the two names the firewall answers itself.
    in_ns "$NS_FW" nft -f - <<'NFT'
table inet allowscope_audit {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ip daddr 198.18.1.20 tcp dport 443 drop
        ip daddr { 198.18.1.21, 198.18.1.25 } tcp dport 443 reject with tcp reset
        ip daddr 198.18.1.22 tcp dport 445 reject with icmp type admin-prohibited
        ip daddr 198.18.1.24 udp dport 5831 drop
        ip daddr 198.18.2.20 drop
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 198.18.1.10 tcp dport 80 redirect to :8470
        ip daddr 198.18.1.23 tcp dport 443 redirect to :9443
    }
}
NFT

    audit_certs >"$LOG/openssl-audit.log" 2>&1
    for entry in "${AUDIT_TLS[@]}"; do
        name=${entry%%=*} addr=${entry#*=}
        start_bg "s_audit-$name" "$NS_SRV" openssl s_server -accept "$addr:443" \
            -cert "$tls/$name.pem" -key "$tls/$name.key" -rev
    done
    start_bg audit-file "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold "$AUDIT_FILE_ADDR" 445
    start_bg audit-tundra "$NS_SRV" socat UDP4-RECVFROM:5831,bind="$AUDIT_TUNDRA_ADDR",fork PIPE
    # www.allowscope.test, and login.microsoftonline.com:80 behind the redirect
    start_bg audit-http "$NS_SRV" "$PY" -u "$WORK/audit.py" http-server "$AUDIT_WWW_ADDR,198.18.1.10" 80
    mapfile -t records < <(audit_dns_records)
    start_bg audit-dnsmasq "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --no-poll --bind-interfaces \
        --listen-address="$AUDIT_DNS" --port=53 \
        --user=root --group=root --pid-file="$WORK/dnsmasq-audit.pid" \
        --local-ttl=300 "${records[@]}" \
        --log-queries --log-facility=-
    # in as-fw: deny page, SNI filter, proxy
    start_bg audit-deny-page "$NS_FW" "$PY" -u "$WORK/facts.py" deny-page 10.99.1.1 8470
    audit_haproxy
    audit_squid

    for entry in "${AUDIT_TLS[@]}"; do wait_listen "$NS_SRV" tcp "${entry#*=}" 443; done
    wait_listen "$NS_SRV" tcp "$AUDIT_FILE_ADDR" 445
    wait_listen "$NS_SRV" udp "$AUDIT_TUNDRA_ADDR" 5831
    wait_listen "$NS_SRV" tcp "$AUDIT_WWW_ADDR" 80
    wait_listen "$NS_SRV" tcp 198.18.1.10 80
    wait_listen "$NS_SRV" udp "$AUDIT_DNS" 53
    wait_listen "$NS_FW" tcp 10.99.1.1 8470
    wait_listen "$NS_FW" tcp 10.99.1.1 9443
    wait_listen "$NS_FW" tcp 10.99.1.1 3130
    sleep 1
}

# resolve LOCALPORT NAME : one A query to the audit resolver from a fixed
# source port; prints the last address in the answer (nothing for NXDOMAIN)
resolve() {
    local out
    out=$(in_ns "$NS_CLI" dig @"$AUDIT_DNS" -b "$C4#$1" +tries=1 +timeout=2 A "$2" 2>&1) || true
    printf '%s\n' "$out" >>"$LOG/dig.log"
    awk '$4 == "A" { a = $5 } END { print a }' <<<"$out"
}

# audit_flow K NAME KIND [PORT] : resolve NAME (DNS from port 56100+K), then,
# unless the answer is missing or 0.0.0.0, connect from port 56000+K:
#   tls      TLS to ADDR:443 with SNI NAME, certificate verified against the
#            audit CA, one line sent and its reversed echo read, then closed
#   hello    TLS to ADDR:443, ClientHello only, waiting for the server to act
#   connect  plain TCP connect to ADDR:PORT, 5 s timeout
#   http     curl http://NAME/ (ADDR:80)
#   udp      3 datagrams to ADDR:PORT, 1 s apart
#   dns      nothing: the DNS answer is the whole flow
audit_flow() {
    local k=$1 name=$2 kind=$3 port=${4:-} addr
    local dport=$((56100 + k)) cport=$((56000 + k))
    addr=$(resolve "$dport" "$name")
    say "audit $k: $name -> ${addr:-(no address)} ($kind${port:+ $port})"
    if [[ $kind != dns && ( -z $addr || $addr == 0.0.0.0 ) ]]; then
        echo "record.sh: audit: no usable address for $name" >&2
        return 1
    fi
    case $kind in
        tls) tls_client "$cport" "$addr:443" "$name" -CAfile "$WORK/$AUDIT_TLS_DIR/ca.pem" \
                 -verify_return_error ;;
        hello) hello_client "$cport" "$addr:443" "$name" ;;
        connect) kit "$NS_CLI" connect "$C4" "$cport" "$addr" "$port" 5 >>"$LOG/clients.log" ;;
        http) pcurl "$cport" --resolve "$name:80:$addr" "http://$name/"; return ;;
        udp) in_ns "$NS_CLI" "$PY" -u "$WORK/audit.py" udp-tries "$C4" "$cport" "$addr" "$port" 3 1 \
                 >>"$LOG/clients.log" ;;
        dns) ;;
    esac
    sleep "$GAP"
}

record_audit() {
    local idx
    idx=$(in_ns "$NS_FW" cat /sys/class/net/fw-srv/ifindex)
    tcpdump_to "$NS_CLI" "$OUT/audit-client.pcap" -i cli-fw
    # the same two-interface capture as fw-two-ifaces.pcapng
    cap_start "$NS_FW" dumpcap -q -i fw-cli -y EN10MB -i any -y LINUX_SLL2 -f "ifindex $idx" \
        -w "$OUT/audit-firewall.pcapng"
    sleep "$GAP"
    say "audit: required names, allowed"
    audit_flow 1 login.microsoftonline.com tls
    audit_flow 2 management.azure.com tls
    audit_flow 3 ml.azure.com tls
    audit_flow 4 eastus.api.azureml.ms tls
    audit_flow 5 mystorage.blob.core.windows.net tls
    say "audit: required names, blocked by the firewall"
    audit_flow 6 ws1.workspace.eastus.api.azureml.ms connect 443      # drop
    audit_flow 7 mcr.microsoft.com connect 443                        # tcp reset
    audit_flow 8 myacr.azurecr.io connect 443                         # tcp reset (custom-images)
    audit_flow 9 mystorage.file.core.windows.net connect 445          # icmp admin-prohibited
    audit_flow 10 ci1.eastus.instances.azureml.ms hello               # SNI filter
    audit_flow 11 graph.windows.net dns                               # NXDOMAIN
    audit_flow 12 graph.microsoft.com dns                             # sinkhole 0.0.0.0
    say "audit: explicit proxy denials (no DNS: the proxy resolves)"
    pcurl 56013 -x "http://$AUDIT_PROXY" https://ci1.eastus.instances.azureml.ms:8787/
    pcurl 56014 -x "http://$AUDIT_PROXY" https://mystorage.dfs.core.windows.net/
    say "audit: HTTP 470 deny page, UDP never answered"
    audit_flow 15 login.microsoftonline.com http
    audit_flow 16 eastus.tundra.azureml.ms udp 5831
    say "audit: names outside the catalog"
    audit_flow 17 example.allowscope.test tls
    audit_flow 18 updates.allowscope.test tls
    audit_flow 19 www.allowscope.test http
    audit_flow 20 telemetry.allowscope.test connect 443               # drop
    cap_stop
    # 18 DNS queries + 18 connections (UDP included)
    expect_convs "$OUT/audit-client.pcap" 36
    expect_convs "$OUT/audit-firewall.pcapng" 36
}

# ---- websocket captures (mode "ws") ----------------------------------------------
# Jupyter kernels on Azure ML compute instances talk over websockets
# (/api/kernels/<id>/channels).  Five compute-instance names, each behind a
# different path, one python-websockets client run recorded on the client
# (as-cli, cli-fw: ws-client.pcap) and on both firewall legs (as-fw, fw-cli and
# fw-srv: ws-firewall.pcapng) at the same time:
#   ci-ok     198.18.3.10  wss, routed straight to the server; the client pings
#                          every second and talks for about 12 s, then closes
#                          (healthy)
#   ci-idle   198.18.3.11  wss through haproxy in TCP mode with "timeout tunnel
#                          3s" (nft redirects :443 to 10.99.1.1:9445); the client
#                          sends one message and goes quiet, haproxy cuts it after
#                          3 s of silence; the client reconnects twice more
#                          (ws-idle-kill, a measured gap of 3 s)
#   ci-strip  198.18.3.12  ws through nginx (redirect :80 -> 10.99.1.1:8481) with
#                          no websocket settings: nginx forwards the request as
#                          HTTP/1.0 without Upgrade, the origin answers 426
#                          (ws-upgrade-failed; the proxy dropped the Upgrade)
#   ci-deny   198.18.3.13  ws through haproxy in HTTP mode (redirect :80 ->
#                          10.99.1.1:8482) that denies any Upgrade with 403
#                          (ws-upgrade-failed, answered by the proxy)
#   ci-nginx  198.18.3.14  ws through nginx with the usual websocket settings
#                          (redirect :80 -> 10.99.1.1:8483): 101, one message,
#                          then silence until nginx's default 60 s
#                          proxy_read_timeout closes it (ws-idle-kill, nginx)
#   ci-reset  198.18.3.15  wss, routed; after 3 s of silence the firewall's
#                          conntrack entry is deleted (a firewall forgetting
#                          an idle connection) and with nf_conntrack_tcp_loose=0
#                          the client's next message is "ct state invalid",
#                          answered with a TCP reset by nftables (ws-idle-kill,
#                          the RST made by a middlebox)
#   ci-drop   198.18.3.16  the same, but nftables drops the invalid packets:
#                          the next message gets no answer at all
#                          (ws-idle-kill, state dropped silently)
#   ci-proxy  198.18.3.17  wss through squid as an explicit CONNECT proxy
#                          (10.99.1.1:3131; squid knows the name from its
#                          hosts file), healthy
# The servers in as-srv are python websockets echo servers (no server pings).
# Names are not resolved: the client connects to the address and sends the name
# as SNI and Host.  Client source ports: 57000 + scenario number * 10 + try.
WS_DIR=ws                        # under $WORK: CA, certificates, nginx/haproxy files
WS_REGION=westeurope.instances.azureml.ms
WS_KERNEL=/api/kernels/4f1c2a9e-7d3b-4b8e-9a51-0c6e2d8b7f10/channels
WS_SQUID_SERVICE=allowscopews    # letters and digits only (see SQUID_SERVICE)

write_ws_py() {
cat >"$WORK/ws.py" <<'PYEOF'
"""Websocket echo server and Jupyter-like clients for record.sh's ws mode."""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus


def log(*a):
    print(*a, flush=True)


async def echo(ws):
    log("open", ws.remote_address, ws.request.path)
    try:
        async for msg in ws:
            await ws.send(msg[::-1])
    except ConnectionClosed as e:
        log("closed", ws.remote_address, repr(e))
    log("end", ws.remote_address)


async def server(addr, port, cert=None, key=None):
    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    async with serve(echo, addr, int(port), ssl=ctx, ping_interval=None):
        log("ready", addr, port)
        await asyncio.Future()


async def client(kind, src, sport, addr, port, name, path, ca, wait, proxy="-"):
    """kind: healthy (pings every second, six messages 2 s apart, clean close),
    idle (one message, then silence for WAIT seconds), state (one message,
    WAIT seconds of silence, then another message, waiting 4 s for its echo),
    upgrade (expects a refusal).  PROXY: http://HOST:PORT for a CONNECT proxy
    (ADDR and PORT are then not used: the proxy resolves NAME)."""
    tls = ca != "-"
    uri = ("wss" if tls else "ws") + "://" + name + path
    kw = dict(local_addr=(src, int(sport)), open_timeout=5, close_timeout=2)
    if proxy == "-":
        kw.update(host=addr, port=int(port), proxy=None)
    else:
        kw.update(proxy=proxy)
    if tls:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["http/1.1"])
        kw.update(ssl=ctx, server_hostname=name)
    if kind == "healthy":
        kw.update(ping_interval=1, ping_timeout=5)
    else:
        kw.update(ping_interval=None)
    try:
        async with connect(uri, **kw) as ws:
            log(kind, name, sport, "open")
            if kind == "healthy":
                for i in range(6):
                    await ws.send('{"msg_type": "execute_request", "n": %d}' % i)
                    log(await ws.recv())
                    await asyncio.sleep(2)
            elif kind == "state":
                await ws.send('{"msg_type": "kernel_info_request"}')
                log(await ws.recv())
                await asyncio.sleep(float(wait))
                await ws.send('{"msg_type": "execute_request", "n": 1}')
                try:
                    log(await asyncio.wait_for(ws.recv(), timeout=4))
                except ConnectionClosed as e:
                    log(kind, name, sport, "cut:", repr(e))
                except asyncio.TimeoutError:
                    log(kind, name, sport, "no answer after 4 s")
            else:
                await ws.send('{"msg_type": "kernel_info_request"}')
                log(await ws.recv())
                try:
                    await asyncio.wait_for(ws.recv(), timeout=float(wait))
                except ConnectionClosed as e:
                    log(kind, name, sport, "cut:", repr(e))
                except asyncio.TimeoutError:
                    log(kind, name, sport, "still open after", wait, "s")
        log(kind, name, sport, "closed")
    except InvalidStatus as e:
        log(kind, name, sport, "refused:", e.response.status_code)
    except (ConnectionClosed, OSError, asyncio.TimeoutError) as e:
        log(kind, name, sport, "ended:", repr(e))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "server":
        asyncio.run(server(*args))
    elif cmd == "client":
        asyncio.run(client(*args))
    else:
        sys.exit("ws.py: unknown command " + cmd)
PYEOF
}

ws_certs() {
    local d=$WORK/$WS_DIR
    make_ca "$d" 0x6000 "allowscope Websocket Test CA"
    issue_cert "$d" "ci-ok.$WS_REGION" 0x6001
    issue_cert "$d" "ci-idle.$WS_REGION" 0x6002
    issue_cert "$d" "ci-reset.$WS_REGION" 0x6003
    issue_cert "$d" "ci-drop.$WS_REGION" 0x6004
    issue_cert "$d" "ci-proxy.$WS_REGION" 0x6005
}

ws_squid() {
    local d
    d=$(squid_dir squid-ws)
    printf '198.18.3.17 ci-proxy.%s\n' "$WS_REGION" >"$d/hosts"
    {
        cat <<EOF
# explicit proxy for wss://ci-proxy...: CONNECT to 443 allowed, the name
# resolved from the hosts file (no DNS on the wire)
http_port 10.99.1.1:3131
EOF
        squid_common "$d"
        cat <<EOF
dns_nameservers 127.0.0.1
hosts_file $d/hosts
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow all
EOF
    } >"$d/squid.conf"
    squid_start "$d" "$WS_SQUID_SERVICE" squid-ws 3131
}

ws_nginx() {
    local d=$WORK/$WS_DIR/nginx
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
# Two reverse proxies in front of compute instances.  8481 has no websocket
# settings (nginx then speaks HTTP/1.0 upstream and drops Upgrade and
# Connection); 8483 has the usual ones, and nginx's default 60 s
# proxy_read_timeout.
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 10.99.1.1:8481;
        location / { proxy_pass http://198.18.3.12:80; }
    }
    server {
        listen 10.99.1.1:8483;
        location / {
            proxy_pass http://198.18.3.14:80;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
        }
    }
}
EOF
    in_ns "$NS_FW" nginx -t -c "$d/nginx.conf" >"$LOG/nginx-check.log" 2>&1
    start_bg nginx-ws "$NS_FW" nginx -c "$d/nginx.conf" -g 'daemon off;'
}

ws_haproxy() {
    cat >"$WORK/$WS_DIR/haproxy.cfg" <<'EOF'
# 9445: TCP relay to ci-idle that cuts a tunnel after 3 s without a byte
# either way.  8482: HTTP proxy to ci-deny that refuses every websocket
# upgrade with 403 (the origin never sees the request).
global
    log stdout format raw local0 info
defaults
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend ws_idle
    mode tcp
    option tcplog
    bind 10.99.1.1:9445
    default_backend ci_idle
backend ci_idle
    mode tcp
    timeout tunnel 3s
    server ci 198.18.3.11:443
frontend ws_deny
    mode http
    option httplog
    bind 10.99.1.1:8482
    http-request deny deny_status 403 if { req.hdr(upgrade) -m str -i websocket }
    default_backend ci_deny
backend ci_deny
    mode http
    server ci 198.18.3.13:80
EOF
    in_ns "$NS_FW" haproxy -c -f "$WORK/$WS_DIR/haproxy.cfg" >"$LOG/haproxy-ws-check.log" 2>&1
    start_bg haproxy-ws "$NS_FW" haproxy -db -f "$WORK/$WS_DIR/haproxy.cfg"
}

setup_ws() {
    say "ws: addresses, redirects, certificates, servers and proxies"
    local d=$WORK/$WS_DIR a
    mkdir -p "$d"
    write_ws_py
    in_ns "$NS_FW" ip route add 198.18.3.0/24 via "$S4" dev fw-srv
    for a in 10 11 12 13 14 15 16 17; do
        in_ns "$NS_SRV" ip addr add "198.18.3.$a/32" dev srv-fw
    done
    # a packet of a connection conntrack no longer knows is "invalid", not
    # picked up again as established
    in_ns "$NS_FW" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
    in_ns "$NS_FW" nft -f - <<'NFT'
table inet allowscope_ws {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ip daddr 198.18.3.15 tcp dport 443 ct state invalid reject with tcp reset
        ip daddr 198.18.3.16 tcp dport 443 ct state invalid drop
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 198.18.3.11 tcp dport 443 redirect to :9445
        ip daddr 198.18.3.12 tcp dport 80 redirect to :8481
        ip daddr 198.18.3.13 tcp dport 80 redirect to :8482
        ip daddr 198.18.3.14 tcp dport 80 redirect to :8483
    }
}
NFT
    ws_certs >"$LOG/openssl-ws.log" 2>&1
    start_bg ws-ok "$NS_SRV" "$PY" -u "$WORK/ws.py" server 198.18.3.10 443 \
        "$d/ci-ok.$WS_REGION.pem" "$d/ci-ok.$WS_REGION.key"
    start_bg ws-idle "$NS_SRV" "$PY" -u "$WORK/ws.py" server 198.18.3.11 443 \
        "$d/ci-idle.$WS_REGION.pem" "$d/ci-idle.$WS_REGION.key"
    start_bg ws-reset "$NS_SRV" "$PY" -u "$WORK/ws.py" server 198.18.3.15 443 \
        "$d/ci-reset.$WS_REGION.pem" "$d/ci-reset.$WS_REGION.key"
    start_bg ws-drop "$NS_SRV" "$PY" -u "$WORK/ws.py" server 198.18.3.16 443 \
        "$d/ci-drop.$WS_REGION.pem" "$d/ci-drop.$WS_REGION.key"
    start_bg ws-proxy "$NS_SRV" "$PY" -u "$WORK/ws.py" server 198.18.3.17 443 \
        "$d/ci-proxy.$WS_REGION.pem" "$d/ci-proxy.$WS_REGION.key"
    for a in 12 13 14; do
        start_bg "ws-plain-$a" "$NS_SRV" "$PY" -u "$WORK/ws.py" server "198.18.3.$a" 80
    done
    ws_nginx
    ws_haproxy
    ws_squid
    for a in 10 11 15 16 17; do wait_listen "$NS_SRV" tcp "198.18.3.$a" 443; done
    for a in 12 13 14; do wait_listen "$NS_SRV" tcp "198.18.3.$a" 80; done
    for a in 8481 8482 8483 9445; do wait_listen "$NS_FW" tcp 10.99.1.1 "$a"; done
    sleep 1
}

# ws_client N TRY KIND ADDR PORT NAME TLS(yes|no) [WAIT [PROXY]]
ws_client() {
    local n=$1 try=$2 kind=$3 addr=$4 port=$5 name=$6 tls=$7 wait=${8:-0} proxy=${9:--} ca=-
    [[ $tls == yes ]] && ca=$WORK/$WS_DIR/ca.pem
    in_ns "$NS_CLI" "$PY" -u "$WORK/ws.py" client "$kind" "$C4" $((57000 + n * 10 + try)) \
        "$addr" "$port" "$name.$WS_REGION" "$WS_KERNEL" "$ca" "$wait" "$proxy" \
        >>"$LOG/ws-clients.log" 2>&1
}

# ws_forget N ADDR NAME: a websocket that goes quiet for 6 s; after 3 s the
# firewall forgets its conntrack entry, so the next message meets the
# forward chain's "ct state invalid" rule for ADDR
ws_forget() {
    local n=$1 addr=$2 name=$3 pid
    ws_client "$n" 0 state "$addr" 443 "$name" yes 6 &
    pid=$!
    sleep 3
    in_ns "$NS_FW" conntrack -D -p tcp -d "$addr" --dport 443 >>"$LOG/conntrack.log" 2>&1
    wait "$pid"
}

record_ws() {
    local idx nginx_pid
    idx=$(in_ns "$NS_FW" cat /sys/class/net/fw-srv/ifindex)
    tcpdump_to "$NS_CLI" "$OUT/ws-client.pcap" -i cli-fw
    cap_start "$NS_FW" dumpcap -q -i fw-cli -y EN10MB -i any -y LINUX_SLL2 -f "ifindex $idx" \
        -w "$OUT/ws-firewall.pcapng"
    sleep "$GAP"
    say "ws 5: ci-nginx, 101 through nginx, then quiet until nginx's 60 s timeout (in the background)"
    ws_client 5 0 idle 198.18.3.14 80 ci-nginx no 75 &
    nginx_pid=$!
    sleep 1
    say "ws 1: ci-ok, healthy websocket with pings, about 12 s"
    ws_client 1 0 healthy 198.18.3.10 443 ci-ok yes
    sleep "$GAP"
    say "ws 2: ci-idle, cut by haproxy after 3 s of silence, three times"
    for try in 0 1 2; do
        ws_client 2 "$try" idle 198.18.3.11 443 ci-idle yes 10
        sleep 1
    done
    say "ws 3: ci-strip, nginx drops the Upgrade, the origin answers 426"
    ws_client 3 0 upgrade 198.18.3.12 80 ci-strip no
    sleep "$GAP"
    say "ws 4: ci-deny, haproxy refuses the Upgrade with 403"
    ws_client 4 0 upgrade 198.18.3.13 80 ci-deny no
    sleep "$GAP"
    say "ws 6: ci-reset, the firewall forgets the idle connection and resets the next message"
    ws_forget 6 198.18.3.15 ci-reset
    sleep "$GAP"
    say "ws 7: ci-drop, the firewall forgets the idle connection and drops the next message"
    ws_forget 7 198.18.3.16 ci-drop
    sleep "$GAP"
    say "ws 8: ci-proxy, healthy websocket through squid (CONNECT)"
    ws_client 8 0 healthy - 0 ci-proxy yes 0 "http://10.99.1.1:3131"
    say "ws: waiting for nginx to time out ci-nginx"
    wait "$nginx_pid"
    sleep "$GAP"
    cap_stop
    # client side: 10 connections; firewall: the 10 client legs and 6 upstream
    # legs of the proxies (ci-deny never reaches its server; ci-ok, ci-reset
    # and ci-drop are routed, one flow each seen on both interfaces)
    expect_convs "$OUT/ws-client.pcap" 10
    expect_convs "$OUT/ws-firewall.pcapng" 16
}

# ---- ground-truth captures of issue 15 (mode "truth") ------------------------------
# Small captures, each holding one situation whose right verdict is known by
# construction, recorded on the client (tcpdump -i cli-fw) and, for two of them,
# on both firewall legs as well.  Own namespace names (as-tcli, as-tfw,
# as-tsrv), same topology and base servers as every other mode.
# Addresses used only here (all inside the namespaces):
#   as-srv  10.99.2.5, fd99:2::5  dnsmasq of dualstack-v4dns / dualstack-v6dns
#           10.99.2.6             dnsmasq of rst-injected
#           10.99.2.7             dnsmasq of quic-catalog
#           10.99.2.8             dnsmasq of privatelink-public
#           10.99.2.9             dnsmasq of fin-unacked
#           198.18.20.x, fd99:18:20::x   dualstack servers (same last number
#                                 for the same name in both families)
#           198.18.30.10          rst-injected: one TLS server for two names
#           198.18.40.x           ip-literal servers
#           198.18.50.x           quic-catalog servers (QUIC and TLS)
#           198.18.60.x           privatelink-public servers
#           198.18.70.12          fin-unacked server
#   as-fw   routes 198.18.0.0/15 via 10.99.2.2 and fd99:18::/32 via fd99:2::2;
#           table inet allowscope_truth (drops, and the ct-mark pair that
#           loses the ACKs of fin-unacked); truth.py rst-inject (the on-path
#           box of rst-injected, raw sockets on fw-cli and fw-srv)
# Every resolver answers with TTL 300 (--local-ttl=300) and one A and/or AAAA
# per name; names it does not know are REFUSED (no upstream; none is asked).
# Client source ports: 58000 + 100 x capture number + flow number; DNS queries
# from 58050 + 100 x capture number + query number (capture numbers: 1
# dualstack-v4dns, 2 dualstack-v6dns, 3 rst-injected, 4 ip-literal, 5
# quic-catalog, 6 privatelink-public, 7 fin-unacked).
TRUTH_TLS_DIR=tls-truth               # under $WORK
TRUTH_FORGED_TTL=40                   # TTL of the on-path box's forged RSTs

write_truth_py() {
    cat >"$WORK/truth.py" <<'PYEOF'
"""Helpers for the ground-truth captures of record.sh (mode truth): an
on-path RST injector, and the TLS server/client of fin-unacked."""
import socket
import ssl
import struct
import sys
import threading
import time


def log(*a):
    print(*a, flush=True)


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


# ---- on-path RST injector ----------------------------------------------------------
# Watches the client-side interface of the firewall (a copy of every frame,
# as a tap or span port would give it; it forwards nothing itself) for a TLS
# ClientHello to TCP 443 whose SNI ends with SUFFIX, and answers it at once with
# two forged RST/ACKs: one to the client carrying the server's addresses and
# port, one to the server carrying the client's, both with IP TTL `ttl`
# (the server's real packets reach the client with 63).  Frames are written
# with AF_PACKET, so they bypass the firewall's routing and nftables.

SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_tcp(src, dst, sport, dport, seq, ack, flags, ttl):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 0, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, ttl, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


def client_hello_sni(p):
    """SNI of a TLS ClientHello starting at p[0] (None if not one)."""
    try:
        if len(p) < 44 or p[0] != 0x16 or p[5] != 1:
            return None
        off = 5 + 4 + 2 + 32
        off += 1 + p[off]                                   # session id
        off += 2 + struct.unpack("!H", p[off:off + 2])[0]   # cipher suites
        off += 1 + p[off]                                   # compression
        end = off + 2 + struct.unpack("!H", p[off:off + 2])[0]
        off += 2
        while off + 4 <= end:
            typ, n = struct.unpack("!HH", p[off:off + 4])
            if typ == 0:
                ln = struct.unpack("!H", p[off + 7:off + 9])[0]
                return p[off + 9:off + 9 + ln].decode("ascii", "replace")
            off += 4 + n
    except (IndexError, struct.error):
        pass
    return None


def mac_of(ifname):
    with open("/sys/class/net/%s/address" % ifname) as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def rst_inject(cli_if, srv_if, srv_peer_mac, suffix, ttl):
    ttl = int(ttl)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    rx.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    rx.bind((cli_if, 0))
    tx_srv = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx_srv.bind((srv_if, 0))
    srv_eth = bytes.fromhex(srv_peer_mac.replace(":", "")) + mac_of(srv_if) + b"\x08\x00"
    seen = set()
    log("ready", cli_if, srv_if, suffix, ttl)
    while True:
        f = rx.recv(65600)
        if len(f) < 54 or f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if dport != 443 or not payload:
            continue
        sni = client_hello_sni(payload)
        if sni is None or not sni.endswith(suffix):
            continue
        csrc, sdst = ip[12:16], ip[16:20]
        key = (csrc, sport, sdst, dport)
        if key in seen:
            continue
        seen.add(key)
        nxt = (seq + len(payload)) & 0xFFFFFFFF
        # to the client: from the server's address and port, seq = what the
        # client expects next from the server, acknowledging the ClientHello
        to_cli = f[6:12] + f[0:6] + b"\x08\x00" + \
            ipv4_tcp(sdst, csrc, dport, sport, ack, nxt, 0x14, ttl)
        # to the server: from the client's address and port, seq = the byte
        # after the ClientHello
        to_srv = srv_eth + ipv4_tcp(csrc, sdst, sport, dport, nxt, ack, 0x14, ttl)
        rx.send(to_cli)
        tx_srv.send(to_srv)
        log("injected", socket.inet_ntoa(csrc), sport, "->", socket.inet_ntoa(sdst), dport,
            "sni", sni, "ttl", ttl)


# ---- rst-injected: a TLS line-reversing server that answers 50 ms late --------------

def rev_server(host, port, delay, cert, key, *more):
    """Like `openssl s_server -rev`: TLS, each line received is sent back
    reversed; close_notify answered, then closed.  It starts the handshake
    `delay` s after the ClientHello has arrived (a server farther away or
    busier than the on-path box).  `more`: NAME=CERT=KEY, another
    certificate chosen when the SNI is NAME."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    by_name = {}
    for spec in more:
        name, c, k = spec.split("=")
        other = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        other.load_cert_chain(c, k)
        by_name[name] = other

    def pick(sslobj, name, _ctx):
        if name in by_name:
            sslobj.context = by_name[name]
    ctx.sni_callback = pick

    def handle(conn, peer):
        conn.settimeout(10)
        try:
            conn.recv(1, socket.MSG_PEEK)       # the ClientHello is here
            time.sleep(float(delay))
            s = ctx.wrap_socket(conn, server_side=True)
        except OSError as e:
            log("rev", peer, "handshake failed:", e)
            conn.close()
            return
        log("rev", peer, "handshake done, sni", s.context is ctx and "(default)" or "(other)")
        buf = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                buf += b
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    s.sendall(line[::-1] + b"\n")
            s = s.unwrap()
        except (ssl.SSLError, OSError) as e:
            log("rev", peer, "error:", e)
        s.close()

    ls = socket.socket(family_of(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    log("ready", host, port)
    while True:
        conn, peer = ls.accept()
        threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


# ---- fin-unacked: a server that closes first ---------------------------------------

def fin_server(host, port, cert, key, pause="0.3"):
    """TLS, one request per connection: HTTP/1.1 200 with Content-Length and
    `Connection: close`, then after `pause` s the server closes first (FIN,
    no close_notify, as many HTTP servers do)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(family_of(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    log("ready", host, port)
    while True:
        conn, peer = ls.accept()
        try:
            conn.settimeout(10)
            s = ctx.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            host_hdr = b"?"
            for line in data.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"host":
                    host_hdr = v.strip()
            body = b"allowscope truth test page for " + host_hdr + b"\n"
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(body), body))
            log("fin-server", peer, data.split(b"\r\n", 1)[0].decode("latin-1"))
            time.sleep(float(pause))
            socket.socket.shutdown(s, socket.SHUT_WR)
            time.sleep(0.5)
            s.close()
        except OSError as e:
            log("fin-server", peer, "error:", e)
            conn.close()


def fin_client(src, sport, dst, dport, sni, cafile):
    """GET / over TLS, read until the server closes, then close (FIN)."""
    ctx = ssl.create_default_context(cafile=cafile)
    s = socket.socket(family_of(src), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, int(sport)))
    s.settimeout(10)
    s.connect((dst, int(dport)))
    ss = ctx.wrap_socket(s, server_hostname=sni, suppress_ragged_eofs=True)
    ss.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: allowscope-record\r\n"
               b"Accept: */*\r\n\r\n" % sni.encode())
    data = b""
    try:
        while True:
            b = ss.recv(65536)
            if not b:
                break
            data += b
    except (ssl.SSLError, OSError) as e:
        log("fin-client read error:", e)
    log("fin-client", data.split(b"\r\n", 1)[0].decode("latin-1"), len(data), "bytes, server closed")
    ss.close()


COMMANDS = {
    "rst-inject": rst_inject,
    "rev-server": rev_server,
    "fin-server": fin_server,
    "fin-client": fin_client,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PYEOF
}

# TLS servers in as-srv (openssl s_server -rev), NAME@ADDRESS, each with a
# certificate for NAME issued by the truth CA
TRUTH_TLS=(
    ml.azure.com@fd99:18:20::12
    management.azure.com@fd99:18:20::11
    eastus.api.azureml.ms@fd99:18:20::13
    login.microsoftonline.com@198.18.20.10
    mcr.microsoft.com@198.18.20.21
    mystorage.blob.core.windows.net@198.18.20.14
    management.azure.com@198.18.50.11
    login.microsoftonline.com@198.18.60.10
    ws1.workspace.eastus.api.azureml.ms@198.18.60.20
)
TRUTH_NAMES=(ml.azure.com management.azure.com eastus.api.azureml.ms login.microsoftonline.com
             mcr.microsoft.com mystorage.blob.core.windows.net ws1.workspace.eastus.api.azureml.ms)

# truth_dnsmasq LABEL ADDRESS[,ADDRESS] RECORDS... : a resolver of its own
truth_dnsmasq() {
    local label=$1 addrs=$2 a
    local -a listen=()
    shift 2
    IFS=, read -ra a <<<"$addrs"
    for addrs in "${a[@]}"; do listen+=("--listen-address=$addrs"); done
    start_bg "dnsmasq-$label" "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --no-poll --bind-interfaces "${listen[@]}" --port=53 \
        --user=root --group=root --pid-file="$WORK/dnsmasq-$label.pid" \
        --local-ttl=300 "$@" --log-queries --log-facility=-
}

# s_server_at LABEL ADDRESS CERTNAME [extra s_server options]
s_server_at() {
    local label=$1 addr=$2 name=$3 tls=$WORK/$TRUTH_TLS_DIR
    shift 3
    [[ $addr == *:* ]] && addr="[$addr]"
    start_bg "s_truth-$label" "$NS_SRV" openssl s_server -accept "$addr:443" \
        -cert "$tls/$name.pem" -key "$tls/$name.key" "$@"
}

setup_truth() {
    say "truth: addresses, firewall rules, certificates and servers"
    local tls=$WORK/$TRUTH_TLS_DIR entry name addr a i=0 idx
    mkdir -p "$tls"
    write_truth_py
    for a in 10.99.2.5 10.99.2.6 10.99.2.7 10.99.2.8 10.99.2.9; do
        in_ns "$NS_SRV" ip addr add "$a/32" dev srv-fw
        in_ns "$NS_FW" ip neigh replace "$a" lladdr "$MAC_SRV" dev fw-srv nud permanent
    done
    in_ns "$NS_SRV" ip addr add fd99:2::5/128 dev srv-fw nodad
    in_ns "$NS_FW" ip neigh replace fd99:2::5 lladdr "$MAC_SRV" dev fw-srv nud permanent
    in_ns "$NS_FW" ip route add 198.18.0.0/15 via "$S4" dev fw-srv
    in_ns "$NS_FW" ip -6 route add fd99:18::/32 via "$S6" dev fw-srv
    for a in 10 11 12 13 14 21; do
        in_ns "$NS_SRV" ip addr add "198.18.20.$a/32" dev srv-fw
        in_ns "$NS_SRV" ip addr add "fd99:18:20::$a/128" dev srv-fw nodad
    done
    for a in 198.18.30.10 198.18.40.10 198.18.40.11 198.18.40.12 198.18.50.11 198.18.50.12 \
             198.18.60.10 198.18.60.20 198.18.70.12; do
        in_ns "$NS_SRV" ip addr add "$a/32" dev srv-fw
    done

    # A table of its own next to the base one.  fin-unacked: the server's FIN
    # marks its connection, and from then on every packet of the client in it
    # (its ACK of that FIN, its own FIN, its retransmissions) is dropped.
    in_ns "$NS_FW" nft -f - <<'NFT'
table inet allowscope_truth {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ip6 daddr fd99:18:20::11 tcp dport 443 drop
        ip daddr 198.18.20.21 tcp dport 443 drop
        ip daddr 198.18.40.12 tcp dport 443 drop
        ip daddr 198.18.50.11 udp dport 443 drop
        ip saddr 198.18.70.12 tcp sport 443 tcp flags & fin == fin ct mark set 0x15
        ip daddr 198.18.70.12 tcp dport 443 ct mark 0x15 drop
    }
}
NFT

    {
        make_ca "$tls" 0x6000 "allowscope Truth Test CA"
        for name in "${TRUTH_NAMES[@]}"; do
            i=$((i + 1))
            issue_cert "$tls" "$name" "$(printf '0x%04x' $((0x6000 + i)))"
        done
        # the IP-literal HTTPS server: a certificate for its address only
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -set_serial 0x6100 -subj "/O=allowscope test/CN=198.18.40.10" \
            -addext "subjectAltName=IP:198.18.40.10" \
            -keyout "$tls/ip-literal.key" -out "$tls/ip-literal.pem"
    } >"$LOG/openssl-truth.log" 2>&1

    # TLS servers (s_server -rev): dualstack, quic-catalog's TCP fallback,
    # privatelink-public
    for entry in "${TRUTH_TLS[@]}"; do
        name=${entry%%@*} addr=${entry#*@}
        s_server_at "$name-$addr" "$addr" "$name" -rev
    done
    # rst-injected: one server, two names (certificate chosen by SNI); it
    # answers a ClientHello 50 ms after it arrived, so the on-path box's
    # forged RST (about 1 ms) is always first, as where the injector sits
    # nearer the client than the server
    start_bg truth-rev "$NS_SRV" "$PY" -u "$WORK/truth.py" rev-server 198.18.30.10 443 0.05 \
        "$tls/ml.azure.com.pem" "$tls/ml.azure.com.key" \
        "mystorage.blob.core.windows.net=$tls/mystorage.blob.core.windows.net.pem=$tls/mystorage.blob.core.windows.net.key"
    # ip-literal: HTTPS status page, plain HTTP; and one behind the drop
    s_server_at ip-https 198.18.40.10 ip-literal -www
    start_bg truth-http "$NS_SRV" "$PY" -u "$WORK/audit.py" http-server 198.18.40.11 80
    start_bg truth-hold "$NS_SRV" "$PY" -u "$WORK/kit.py" srv-hold 198.18.40.12 443
    # quic-catalog: QUIC/HTTP3 for both names (one behind the drop)
    start_bg truth-quic-ml "$NS_SRV" "$PY" -u "$WORK/facts.py" quic-server 198.18.50.12 443 \
        "$tls/ml.azure.com.pem" "$tls/ml.azure.com.key"
    start_bg truth-quic-mgmt "$NS_SRV" "$PY" -u "$WORK/facts.py" quic-server 198.18.50.11 443 \
        "$tls/management.azure.com.pem" "$tls/management.azure.com.key"
    # fin-unacked: the server that closes first
    start_bg truth-fin "$NS_SRV" "$PY" -u "$WORK/truth.py" fin-server 198.18.70.12 443 \
        "$tls/ml.azure.com.pem" "$tls/ml.azure.com.key"

    # resolvers
    local -a ds=()
    for name in login.microsoftonline.com=10 management.azure.com=11 ml.azure.com=12 \
                eastus.api.azureml.ms=13 mystorage.blob.core.windows.net=14 mcr.microsoft.com=21; do
        ds+=("--host-record=${name%=*},198.18.20.${name#*=},fd99:18:20::${name#*=}")
    done
    truth_dnsmasq dualstack 10.99.2.5,fd99:2::5 "${ds[@]}"
    truth_dnsmasq rst 10.99.2.6 --host-record=ml.azure.com,198.18.30.10 \
        --host-record=mystorage.blob.core.windows.net,198.18.30.10
    truth_dnsmasq quic 10.99.2.7 --host-record=ml.azure.com,198.18.50.12 \
        --host-record=management.azure.com,198.18.50.11
    # the public Azure AD chain (its "privatelink" name is part of the public
    # shape), and a workspace name whose privatelink CNAME ends at a public
    # address (a private endpoint whose private DNS zone the client misses)
    truth_dnsmasq privatelink 10.99.2.8 \
        --cname=login.microsoftonline.com,login.mso.msidentity.com,300 \
        --cname=login.mso.msidentity.com,ak.privatelink.msidentity.com,300 \
        --cname=ak.privatelink.msidentity.com,www.tm.ak.prd.aadg.trafficmanager.net,300 \
        --host-record=www.tm.ak.prd.aadg.trafficmanager.net,198.18.60.10 \
        --cname=ws1.workspace.eastus.api.azureml.ms,ws1.workspace.eastus.privatelink.api.azureml.ms,300 \
        --host-record=ws1.workspace.eastus.privatelink.api.azureml.ms,198.18.60.20
    truth_dnsmasq fin 10.99.2.9 --host-record=ml.azure.com,198.18.70.12

    # the on-path box of rst-injected
    start_bg truth-inject "$NS_FW" "$PY" -u "$WORK/truth.py" rst-inject fw-cli fw-srv "$MAC_SRV" \
        .blob.core.windows.net "$TRUTH_FORGED_TTL"

    # (ss wants an IPv6 address in brackets)
    for entry in "${TRUTH_TLS[@]}"; do
        addr=${entry#*@}
        [[ $addr == *:* ]] && addr="[$addr]"
        wait_listen "$NS_SRV" tcp "$addr" 443
    done
    for a in 198.18.30.10 198.18.40.10 198.18.40.12 198.18.70.12; do wait_listen "$NS_SRV" tcp "$a" 443; done
    wait_listen "$NS_SRV" tcp 198.18.40.11 80
    wait_listen "$NS_SRV" udp 198.18.50.12 443
    wait_listen "$NS_SRV" udp 198.18.50.11 443
    for a in 10.99.2.5 '[fd99:2::5]' 10.99.2.6 10.99.2.7 10.99.2.8 10.99.2.9; do
        wait_listen "$NS_SRV" udp "$a" 53
    done
    wait_for "$LOG/truth-inject.log" '^ready'
    sleep 2     # multicast-listener reports of the new IPv6 addresses pass first
}

# tls_nosni LOCALPORT HOST:PORT [extra s_client options]: as tls_client, but
# the ClientHello has no server_name extension
tls_nosni() {
    local port=$1 target=$2
    shift 2
    cli_port "$port"
    { printf 'hello from allowscope\n'; sleep 1; } |
        in_ns "$NS_CLI" timeout 10 openssl s_client -connect "$target" -noservername \
            -no_ign_eof "$@" >>"$LOG/s_client.log" 2>&1 || true
}

# truth_tls LOCALPORT HOST:PORT NAME : tls_client verified against the truth CA
truth_tls() {
    tls_client "$1" "$2" "$3" -CAfile "$WORK/$TRUTH_TLS_DIR/ca.pem" -verify_return_error
    sleep "$GAP"
}

# truth_connect SRC LOCALPORT ADDR PORT : plain connect, 5 s timeout
truth_connect() {
    kit "$NS_CLI" connect "$1" "$2" "$3" "$4" 5 >>"$LOG/clients.log"
    sleep "$GAP"
}

record_dualstack_v4dns() {
    tcpdump_to "$NS_CLI" "$OUT/dualstack-v4dns.pcap" -i cli-fw
    sleep "$GAP"
    say "dualstack-v4dns: resolver over IPv4, connections over IPv6"
    dq 58151 10.99.2.5 A ml.azure.com
    dq 58152 10.99.2.5 AAAA ml.azure.com
    truth_tls 58101 '[fd99:18:20::12]:443' ml.azure.com
    dq 58153 10.99.2.5 A management.azure.com
    dq 58154 10.99.2.5 AAAA management.azure.com
    truth_connect "$C6" 58102 fd99:18:20::11 443
    dq 58155 10.99.2.5 A eastus.api.azureml.ms
    dq 58156 10.99.2.5 AAAA eastus.api.azureml.ms
    tls_nosni 58103 '[fd99:18:20::13]:443'; sleep "$GAP"
    cap_stop
    expect_convs "$OUT/dualstack-v4dns.pcap" 9
}

record_dualstack_v6dns() {
    tcpdump_to "$NS_CLI" "$OUT/dualstack-v6dns.pcap" -i cli-fw
    sleep "$GAP"
    say "dualstack-v6dns: resolver over IPv6, connections over IPv4"
    dq 58251 fd99:2::5 A login.microsoftonline.com
    dq 58252 fd99:2::5 AAAA login.microsoftonline.com
    truth_tls 58201 198.18.20.10:443 login.microsoftonline.com
    dq 58253 fd99:2::5 A mcr.microsoft.com
    dq 58254 fd99:2::5 AAAA mcr.microsoft.com
    truth_connect "$C4" 58202 198.18.20.21 443
    dq 58255 fd99:2::5 A mystorage.blob.core.windows.net
    dq 58256 fd99:2::5 AAAA mystorage.blob.core.windows.net
    tls_nosni 58203 198.18.20.14:443; sleep "$GAP"
    cap_stop
    expect_convs "$OUT/dualstack-v6dns.pcap" 9
}

record_rst_injected() {
    local idx
    idx=$(in_ns "$NS_FW" cat /sys/class/net/fw-srv/ifindex)
    tcpdump_to "$NS_CLI" "$OUT/rst-injected-client.pcap" -i cli-fw
    cap_start "$NS_FW" dumpcap -q -i fw-cli -y EN10MB -i any -y LINUX_SLL2 -f "ifindex $idx" \
        -w "$OUT/rst-injected-firewall.pcapng"
    sleep "$GAP"
    say "rst-injected: ml.azure.com completes, then mystorage.blob.core.windows.net meets forged RSTs"
    dq 58351 10.99.2.6 A ml.azure.com
    truth_tls 58301 198.18.30.10:443 ml.azure.com
    dq 58352 10.99.2.6 A mystorage.blob.core.windows.net
    truth_tls 58302 198.18.30.10:443 mystorage.blob.core.windows.net
    cap_stop
    expect_convs "$OUT/rst-injected-client.pcap" 4
    expect_convs "$OUT/rst-injected-firewall.pcapng" 4
    grep -q '^injected' "$LOG/truth-inject.log" ||
        { echo "record.sh: rst-injected: the injector did not fire" >&2; return 1; }
}

record_ip_literal() {
    tcpdump_to "$NS_CLI" "$OUT/ip-literal.pcap" -i cli-fw
    sleep "$GAP"
    say "ip-literal: HTTPS and HTTP to addresses (no DNS, no SNI), a dropped SYN, ping"
    pcurl 58401 -k https://198.18.40.10/
    pcurl 58402 http://198.18.40.11/
    truth_connect "$C4" 58403 198.18.40.12 443
    in_ns "$NS_CLI" ping -n -c 3 -i 0.5 -W 1 198.18.40.10 >>"$LOG/ping.log" 2>&1
    sleep "$GAP"
    cap_stop
    expect_convs "$OUT/ip-literal.pcap" 3
}

record_quic_catalog() {
    tcpdump_to "$NS_CLI" "$OUT/quic-catalog.pcap" -i cli-fw
    sleep "$GAP"
    say "quic-catalog: QUIC to ml.azure.com answered; to management.azure.com dropped, then TCP 443"
    dq 58551 10.99.2.7 A ml.azure.com
    fx "$NS_CLI" quic-client "$C4" 58501 198.18.50.12 443 ml.azure.com h3 >>"$LOG/clients.log"
    sleep "$GAP"
    dq 58552 10.99.2.7 A management.azure.com
    fx "$NS_CLI" quic-client "$C4" 58502 198.18.50.11 443 management.azure.com h3 3 >>"$LOG/clients.log"
    truth_tls 58503 198.18.50.11:443 management.azure.com
    cap_stop
    expect_convs "$OUT/quic-catalog.pcap" 5
}

record_privatelink_public() {
    tcpdump_to "$NS_CLI" "$OUT/privatelink-public.pcap" -i cli-fw
    sleep "$GAP"
    say "privatelink-public: the public Azure AD chain, then a workspace name asked three times"
    dq 58651 10.99.2.8 A login.microsoftonline.com
    truth_tls 58601 198.18.60.10:443 login.microsoftonline.com
    dq 58652 10.99.2.8 A ws1.workspace.eastus.api.azureml.ms
    dq 58653 10.99.2.8 A ws1.workspace.eastus.api.azureml.ms
    dq 58654 10.99.2.8 A ws1.workspace.eastus.api.azureml.ms
    truth_tls 58602 198.18.60.20:443 ws1.workspace.eastus.api.azureml.ms
    cap_stop
    expect_convs "$OUT/privatelink-public.pcap" 6
}

record_fin_unacked() {
    local idx
    idx=$(in_ns "$NS_FW" cat /sys/class/net/fw-srv/ifindex)
    tcpdump_to "$NS_CLI" "$OUT/fin-unacked.pcap" -i cli-fw
    cap_start "$NS_FW" dumpcap -q -i fw-cli -y EN10MB -i any -y LINUX_SLL2 -f "ifindex $idx" \
        -w "$OUT/fin-unacked-firewall.pcapng"
    sleep "$GAP"
    say "fin-unacked: the server closes first, the firewall loses every client packet after that FIN"
    dq 58751 10.99.2.9 A ml.azure.com
    in_ns "$NS_CLI" "$PY" -u "$WORK/truth.py" fin-client "$C4" 58701 198.18.70.12 443 ml.azure.com \
        "$WORK/$TRUTH_TLS_DIR/ca.pem" >>"$LOG/clients.log" 2>&1
    say "fin-unacked: 6 s of FIN retransmissions"
    sleep 6
    cap_stop
    # let the connection end now (not in a later capture: this is the last)
    in_ns "$NS_FW" nft flush chain inet allowscope_truth forward
    expect_convs "$OUT/fin-unacked.pcap" 2
    expect_convs "$OUT/fin-unacked-firewall.pcapng" 2
}

# ---- main -----------------------------------------------------------------------
say "mode: $MODE"
say "removing leftovers of an earlier run (if any)"
del_namespaces
say "building namespaces $NS_CLI / $NS_FW / $NS_SRV"
setup_topology
start_servers
sleep 2      # let IPv6 multicast-listener reports of the new interfaces pass

BASE_FILES=(tcp-outcomes.pcap tcp-outcomes.sll2.pcap tcp-outcomes.snap96.pcap tcp-outcomes.pcapng
            udp-outcomes.pcap ipv6.pcap split-hello.pcap vlan.pcap fw-two-ifaces.pcapng)
FACTS_FILES=(dns-facts.pcap tls-facts.pcap proxy.pcap quic.pcap)
AUDIT_FILES=(audit-client.pcap audit-firewall.pcapng)
WS_FILES=(ws-client.pcap ws-firewall.pcapng)
TRUTH_FILES=(dualstack-v4dns.pcap dualstack-v6dns.pcap rst-injected-client.pcap
             rst-injected-firewall.pcapng ip-literal.pcap quic-catalog.pcap
             privatelink-public.pcap fin-unacked.pcap fin-unacked-firewall.pcapng)
CONNECT_FILES=(proxy-target.pcap)
SUMMARY=()

if want base; then
    record_tcp_outcomes
    record_udp_outcomes
    record_ipv6
    record_fw_two_ifaces
    record_vlan
    record_split_hello
    SUMMARY+=("${BASE_FILES[@]}")
fi
if want facts; then
    setup_facts
    record_dns_facts
    record_tls_facts
    record_proxy
    record_quic
    SUMMARY+=("${FACTS_FILES[@]}")
fi
if want audit; then
    setup_audit
    record_audit
    SUMMARY+=("${AUDIT_FILES[@]}")
fi
if want ws; then
    setup_ws
    record_ws
    SUMMARY+=("${WS_FILES[@]}")
fi
if want connect; then
    record_proxy_target
    SUMMARY+=("${CONNECT_FILES[@]}")
fi
if want truth; then
    setup_truth
    record_dualstack_v4dns
    record_dualstack_v6dns
    record_rst_injected
    record_ip_literal
    record_quic_catalog
    record_privatelink_public
    record_fin_unacked
    SUMMARY+=("${TRUTH_FILES[@]}")
fi

say "copying captures to $CAPDIR"
for f in "$OUT"/*; do
    cp -f "$f" "$CAPDIR/$(basename "$f")"
    chmod 0644 "$CAPDIR/$(basename "$f")"
done
if want base; then
    "$PY" "$CAPDIR/make-broken.py" "$CAPDIR"
fi

say "summary"
for f in "${SUMMARY[@]}"; do
    printf '  %-28s %7d bytes %5s packets\n' "$f" "$(stat -c %s "$CAPDIR/$f")" \
        "$(capinfos -M -c "$CAPDIR/$f" 2>/dev/null | awk -F': *' '/Number of packets/ {print $2}')"
done
say "done"

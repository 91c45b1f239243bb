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
# Usage:   sudo captures/record.sh          (about one minute)
#          RECORD_LOGS=/some/dir sudo -E captures/record.sh   keeps the
#          helper/server/client logs there for debugging
# Output:  the capture files in the directory of this script, then
#          make-broken.py derives the broken-* files from them.
#
# Prerequisites (Debian 12 package names):
#   iproute2 nftables tcpdump tshark (dumpcap, capinfos) openssl dnsmasq
#   socat dnsutils (dig) curl python3 gzip zstd
#   ethtool (optional, but needed for real-sized segments and correct
#            checksums: apt-get install ethtool)
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

if [[ $EUID -ne 0 ]]; then
    echo "record.sh: must run as root (network namespaces, nftables, captures)" >&2
    exit 1
fi
for tool in ip nft tcpdump dumpcap capinfos tshark openssl dnsmasq socat dig curl \
            python3 gzip zstd ss; do
    command -v "$tool" >/dev/null || { echo "record.sh: missing tool: $tool" >&2; exit 1; }
done
PY=$(command -v python3)
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

# wait_port NS tcp|udp PORT : wait until something listens on PORT in NS
wait_port() {
    local ns=$1 proto=$2 port=$3 end=$((SECONDS + 10)) flag=t
    [[ $proto == udp ]] && flag=u
    until [[ -n $(in_ns "$ns" ss -Hln$flag "sport = :$port") ]]; do
        if ((SECONDS >= end)); then
            echo "record.sh: nothing listens on $proto/$port in $ns" >&2
            return 1
        fi
        sleep 0.1
    done
}

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

# ---- main -----------------------------------------------------------------------
say "removing leftovers of an earlier run (if any)"
del_namespaces
say "building namespaces $NS_CLI / $NS_FW / $NS_SRV"
setup_topology
start_servers
sleep 2      # let IPv6 multicast-listener reports of the new interfaces pass

record_tcp_outcomes
record_udp_outcomes
record_ipv6
record_fw_two_ifaces
record_vlan
record_split_hello

say "copying captures to $CAPDIR"
for f in "$OUT"/*; do
    cp -f "$f" "$CAPDIR/$(basename "$f")"
done
chmod 0644 "$CAPDIR"/*.pcap "$CAPDIR"/*.pcapng "$CAPDIR"/*.gz "$CAPDIR"/*.zst 2>/dev/null || true
"$PY" "$CAPDIR/make-broken.py" "$CAPDIR"

say "summary"
for f in tcp-outcomes.pcap tcp-outcomes.sll2.pcap tcp-outcomes.snap96.pcap tcp-outcomes.pcapng \
         udp-outcomes.pcap ipv6.pcap split-hello.pcap vlan.pcap fw-two-ifaces.pcapng; do
    printf '  %-28s %7d bytes %5s packets\n' "$f" "$(stat -c %s "$CAPDIR/$f")" \
        "$(capinfos -M -c "$CAPDIR/$f" 2>/dev/null | awk -F': *' '/Number of packets/ {print $2}')"
done
say "done"

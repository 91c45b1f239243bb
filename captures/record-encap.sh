#!/usr/bin/env bash
# record-encap.sh - record allowscope's NFLOG and VXLAN test captures with real
# kernel tools, inside two network namespaces this script creates and removes
# again (ae-cli, ae-srv).  Nothing leaves them.
#
#   ae-cli  cli0 10.98.0.1/24 ---- veth ---- srv0 10.98.0.2/24 (+ 10.98.0.3/32)  ae-srv
#           vx42 10.97.42.1/24 == VXLAN VNI 42 over cli0/srv0 == vx42 10.97.42.2/24
#
# The same small traffic runs twice, once over the underlay (for nflog.pcap)
# and once through the VXLAN tunnel (for vxlan.pcap / vxlan-plain.pcap):
#   1. dig ml.azure.com A  (dnsmasq in ae-srv answers with the server address)
#   2. curl -k https://ml.azure.com/ (openssl s_server -www in ae-srv, TLS 1.3)
#   3. dig login.microsoftonline.com A (the .3 address), then curl to
#      https://login.microsoftonline.com/ on the .3 address, whose SYNs
#      the server's nftables drops (3 SYNs in a 4 s connect timeout)
# Client ports are fixed: 41053, 41054 (DNS), 41443 (TLS), 41444 (dropped) in
# the NFLOG run, 42053, 42054, 42443, 42444 in the VXLAN run (a port the
# first run left in TIME_WAIT cannot be bound again at once).
#
# nflog.pcap    tcpdump -i nflog:5 in ae-srv; nftables there logs accepted
#               packets with prefix "AML-ALLOW" and the dropped SYNs with
#               "AML-DENY" (log group 5), both directions of the allowed flows.
# vxlan.pcap    tcpdump on srv0 (the underlay: Ethernet/IPv4/UDP 4789/VXLAN)
# vxlan-plain.pcap  tcpdump on vx42 in ae-srv at the same time: the same
#               packets as the tunnel carried them, without the outer layers.
#
# Usage: sudo captures/record-encap.sh      (about 30 seconds)
# Needs: iproute2 (vxlan), nftables with log (nfnetlink_log), tcpdump with
# nflog support (libpcap >= 1.2), dnsmasq, dig, curl, openssl, ethtool (optional).
set -euo pipefail

CAPDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NS=(ae-cli ae-srv)
[[ $EUID -eq 0 ]] || { echo "record-encap.sh: must run as root" >&2; exit 1; }
for t in ip nft tcpdump dnsmasq dig curl openssl; do
    command -v "$t" >/dev/null || { echo "record-encap.sh: missing tool: $t" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/allowscope-encap.XXXXXX)
PIDS=()                 # servers
CAPS=()                 # captures of the current recording

cleanup() {
    local rc=$? ns pid
    set +e
    trap - EXIT INT TERM
    for pid in "${CAPS[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for ns in "${NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    [[ $rc -ne 0 ]] && tail -n 20 "$WORK"/*.log >&2 2>/dev/null
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
bg() { local name=$1 ns=$2; shift 2; ip netns exec "$ns" "$@" >"$WORK/$name.log" 2>&1 & PIDS+=($!); }
cap() {  # cap NAME NS tcpdump-args...
    local name=$1 ns=$2; shift 2
    ip netns exec "$ns" tcpdump -n -U -Z root "$@" >/dev/null 2>"$WORK/$name.log" &
    CAPS+=($!)
    local end=$((SECONDS + 10))
    until grep -q 'listening on' "$WORK/$name.log"; do
        ((SECONDS < end)) || { echo "capture $name did not start" >&2; exit 1; }
        sleep 0.1
    done
}
stop_caps() {
    sleep 2
    local pid
    for pid in "${CAPS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${CAPS[@]}"; do wait "$pid" 2>/dev/null || true; done
    CAPS=()
}

for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
ip link add cli0 netns ae-cli address 02:98:00:00:00:01 type veth peer name srv0 netns ae-srv address 02:98:00:00:00:02
nsx ae-cli ip addr add 10.98.0.1/24 dev cli0
nsx ae-srv ip addr add 10.98.0.2/24 dev srv0
nsx ae-srv ip addr add 10.98.0.3/32 dev srv0
for ns in "${NS[@]}"; do
    nsx "$ns" ip link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    nsx "$ns" sysctl -qw net.ipv4.tcp_syn_linear_timeouts=0 2>/dev/null || true
done
nsx ae-cli ip link set cli0 up
nsx ae-srv ip link set srv0 up
nsx ae-cli ip neigh replace 10.98.0.2 lladdr 02:98:00:00:00:02 dev cli0 nud permanent
nsx ae-cli ip neigh replace 10.98.0.3 lladdr 02:98:00:00:00:02 dev cli0 nud permanent
nsx ae-srv ip neigh replace 10.98.0.1 lladdr 02:98:00:00:00:01 dev srv0 nud permanent
# VXLAN 42 over the underlay, fixed inner MACs and neighbours (no ARP)
nsx ae-cli ip link add vx42 address 02:97:42:00:00:01 type vxlan id 42 local 10.98.0.1 remote 10.98.0.2 dstport 4789
nsx ae-srv ip link add vx42 address 02:97:42:00:00:02 type vxlan id 42 local 10.98.0.2 remote 10.98.0.1 dstport 4789
nsx ae-cli ip addr add 10.97.42.1/24 dev vx42
nsx ae-srv ip addr add 10.97.42.2/24 dev vx42
nsx ae-srv ip addr add 10.97.42.3/32 dev vx42
# 1450: the inner frame and 50 bytes of VXLAN/UDP/IP/Ethernet fit the 1500 of
# the underlay, so the underlay never fragments (allowscope reassembles outer
# fragments but does not decapsulate them)
nsx ae-cli ip link set vx42 mtu 1450
nsx ae-srv ip link set vx42 mtu 1450
nsx ae-cli ip link set vx42 up
nsx ae-srv ip link set vx42 up
nsx ae-cli ip neigh replace 10.97.42.2 lladdr 02:97:42:00:00:02 dev vx42 nud permanent
nsx ae-cli ip neigh replace 10.97.42.3 lladdr 02:97:42:00:00:02 dev vx42 nud permanent
nsx ae-srv ip neigh replace 10.97.42.1 lladdr 02:97:42:00:00:01 dev vx42 nud permanent
if command -v ethtool >/dev/null; then
    for dev in cli0:ae-cli srv0:ae-srv vx42:ae-cli vx42:ae-srv; do
        for feature in gro gso tso tx; do
            nsx "${dev#*:}" ethtool -K "${dev%:*}" "$feature" off >/dev/null 2>&1 || true
        done
    done
fi

# server side: certificate, TLS server, DNS
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=ml.azure.com -addext subjectAltName=DNS:ml.azure.com \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
bg s_server ae-srv openssl s_server -accept 443 -www -cert "$WORK/cert.pem" -key "$WORK/key.pem"
dns() {  # dns NAME ADDR-OF-ML ADDR-OF-LOGIN
    bg "$1" ae-srv dnsmasq --no-daemon --no-resolv --no-hosts --port 53 --listen-address "$2" \
        --bind-interfaces --address=/ml.azure.com/"$2" \
        --address=/login.microsoftonline.com/"$3" --local-ttl 300 --pid-file=
}
dns dnsmasq-u 10.98.0.2 10.98.0.3
dns dnsmasq-v 10.97.42.2 10.97.42.3
sleep 1

# nftables in ae-srv: log what is accepted, log and drop what is denied
nsx ae-srv nft -f - <<'NFT'
table inet aml {
    chain in {
        type filter hook input priority 0; policy accept;
        ip daddr { 10.98.0.3, 10.97.42.3 } tcp dport 443 log prefix "AML-DENY" group 5 drop
        ip saddr 10.98.0.1 log prefix "AML-ALLOW" group 5 accept
    }
    chain out {
        type filter hook output priority 0; policy accept;
        ip daddr 10.98.0.1 log prefix "AML-ALLOW" group 5 accept
    }
}
NFT

traffic() {  # traffic SERVER-ADDR DENIED-ADDR CLIENT-ADDR PORT-PREFIX
    nsx ae-cli dig +tries=1 +time=2 -b "$3#${4}053" @"$1" ml.azure.com A >"$WORK/dig-$1.log" 2>&1 || true
    sleep 0.3
    nsx ae-cli curl -sk --max-time 5 --local-port ${4}443 --resolve "ml.azure.com:443:$1" \
        https://ml.azure.com/ -o /dev/null || true
    sleep 0.3
    nsx ae-cli dig +tries=1 +time=2 -b "$3#${4}054" @"$1" login.microsoftonline.com A \
        >>"$WORK/dig-$1.log" 2>&1 || true
    sleep 0.3
    nsx ae-cli curl -sk --connect-timeout 4 --local-port ${4}444 \
        --resolve "login.microsoftonline.com:443:$2" https://login.microsoftonline.com/ \
        -o /dev/null || true
}

# 1. NFLOG on the underlay addresses
cap nflog ae-srv -i nflog:5 -w "$WORK/nflog.pcap"
traffic 10.98.0.2 10.98.0.3 10.98.0.1 41
stop_caps
# 2. the same through VXLAN 42: the underlay and the tunnel interface at once
cap vxlan ae-srv -i srv0 -w "$WORK/vxlan.pcap" udp port 4789
cap vxplain ae-srv -i vx42 -w "$WORK/vxlan-plain.pcap"
traffic 10.97.42.2 10.97.42.3 10.97.42.1 42
stop_caps

for f in nflog vxlan vxlan-plain; do
    n=$(tcpdump -r "$WORK/$f.pcap" 2>/dev/null | wc -l)
    echo "record-encap: $f.pcap $n packets"
    ((n >= 10)) || { echo "record-encap: $f.pcap has too few packets" >&2; exit 1; }
    cp "$WORK/$f.pcap" "$CAPDIR/$f.pcap"
done

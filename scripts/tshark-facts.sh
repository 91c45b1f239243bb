#!/usr/bin/env bash
# Writes (or with --check, verifies) tests/tshark/<capture>.facts: what tshark extracts from each
# capture of captures/, as sorted unique lines
#   sni NAME        (tls.handshake.extensions_server_name of every ClientHello, TCP and QUIC)
#   qname NAME      (dns.qry.name)
#   a ADDR | aaaa ADDR | cname NAME   (dns.a, dns.aaaa, dns.cname)
# tests/cli.rs (`facts_agree_with_tshark`) compares allowscope's `flows` and `dns` output with
# these files, so the tests need no tshark; CI runs this script with --check.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tshark-refs.sh
. scripts/tshark-refs.sh

extract() {
  local f=$1 base=$2
  # Decode-as where a protocol runs on a port tshark does not guess (see captures/README.md).
  local opts=(-n)
  case "$base" in
    tcp-outcomes*) opts+=(-d tcp.port==8085,tls) ;;
    proxy.pcap) opts+=(-d tcp.port==3129,http) ;;
  esac
  {
    tshark "${opts[@]}" -r "$f" -Y 'tls.handshake.type == 1' -T fields \
      -e tls.handshake.extensions_server_name 2>/dev/null | tr ',' '\n' | sed -n 's/^\(..*\)$/sni \1/p'
    tshark "${opts[@]}" -r "$f" -Y dns -T fields -E occurrence=a -E separator='|' \
      -e dns.qry.name -e dns.a -e dns.aaaa -e dns.cname 2>/dev/null |
      awk -F'|' '{
        n = split($1, q, ","); for (i = 1; i <= n; i++) if (q[i] != "") print "qname " q[i]
        n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] != "") print "a " a[i]
        n = split($3, b, ","); for (i = 1; i <= n; i++) if (b[i] != "") print "aaaa " b[i]
        n = split($4, c, ","); for (i = 1; i <= n; i++) if (c[i] != "") print "cname " c[i]
      }'
  } | tr 'A-Z' 'a-z' | sort -u
}

tshark_refs "${1:-write}" facts facts

#!/usr/bin/env bash
# Writes (or with --check, verifies) tests/tshark/<capture>.conv: tshark's view of every TCP and
# UDP conversation in each capture of captures/, one line per conversation:
#   proto addrA portA addrB portB frames_A_to_B frames_B_to_A
# sorted. tests/cli.rs (`flows_agree_with_tshark_conversations`) compares allowscope's flows
# with these files, so the tests need no tshark; this script keeps the files honest (CI runs it
# with --check).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tshark-refs.sh
. scripts/tshark-refs.sh

extract() {
  local f=$1 base=$2
  # -n: no name resolution. conv tables print "A:port <-> B:port  framesB->A bytes ... framesA->B bytes ...".
  tshark -n -q -r "$f" -z conv,tcp -z conv,udp 2>/dev/null | awk '
    /^TCP Conversations/ { p = "tcp"; next }
    /^UDP Conversations/ { p = "udp"; next }
    / <-> / && p != "" {
      a = $1; b = $3
      # split "addr:port", IPv6 addresses contain colons: the port is after the last colon
      na = match(a, /:[0-9]+$/); ap = substr(a, na + 1); aa = substr(a, 1, na - 1)
      nb = match(b, /:[0-9]+$/); bp = substr(b, nb + 1); ba = substr(b, 1, nb - 1)
      # fields after "<-> B": frames_from_B, bytes, unit, frames_from_A, bytes, unit, ...
      from_b = $4; from_a = $7
      # the outer UDP of a tunnel (VXLAN, Geneve, GTP-U, Teredo) is not a flow: allowscope
      # reads the conversation inside it, which tshark lists too
      if (p == "udp" && (ap ~ /^(4789|6081|2152|3544)$/ || bp ~ /^(4789|6081|2152|3544)$/)) next
      print p, aa, ap, ba, bp, from_a, from_b
    }' | sort
}

tshark_refs "${1:-write}" conv conversations

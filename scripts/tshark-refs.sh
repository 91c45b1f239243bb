# Sourced by tshark-conv.sh and tshark-facts.sh: runs `extract FILE BASE` (defined by the
# caller; prints sorted lines) over every capture of captures/ except the broken-* ones, and
# writes tests/tshark/BASE.SUFFIX, or with --check compares it with what is stored.
# Usage: tshark_refs MODE SUFFIX UNIT
tshark_refs() {
  local mode=$1 suffix=$2 unit=$3 out=tests/tshark status=0 f base tmp
  mkdir -p "$out"
  command -v tshark >/dev/null || { echo "tshark is not installed (apt-get install -y tshark)" >&2; exit 2; }
  for f in captures/*.pcap captures/*.pcapng captures/*.gz captures/*.zst; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    case "$base" in broken-*) continue ;; esac
    tmp=$(mktemp)
    extract "$f" "$base" > "$tmp"
    if [ "$mode" = "--check" ]; then
      if ! diff -u "$out/$base.$suffix" "$tmp"; then
        echo "tshark disagrees with stored $out/$base.$suffix" >&2
        status=1
      fi
      rm -f "$tmp"
    else
      mv "$tmp" "$out/$base.$suffix"
      echo "wrote $out/$base.$suffix ($(wc -l < "$out/$base.$suffix") $unit)"
    fi
  done
  return $status
}

#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (README, "Fuzzing"), one after another, each for SECONDS:
#   scripts/fuzz.sh SECONDS [TARGET...]     (all targets when none is named)
# Each target starts from fuzz/corpus/TARGET (scripts/fuzz-seeds.sh fills it; what the run
# finds is added there). Prints per target the executions, the corpus size and whether it
# crashed; a crashing input is in fuzz/artifacts/TARGET/ (keep it as a regression test, see the
# README). The whole log of a run is fuzz/logs/TARGET.log. Exits 1 when a target crashed, 2 on
# a usage or build error.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The targets are built
# without a sanitizer (FUZZ_SANITIZER=address to change that): the code they reach has no
# unsafe, and the runs are about twice as fast. Debug assertions and overflow checks are on.
# Extra libFuzzer flags: FUZZ_ARGS (for instance FUZZ_ARGS=-jobs=2).
set -uo pipefail
cd "$(dirname "$0")/../fuzz"

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
secs=$1
shift
sanitizer=${FUZZ_SANITIZER:-none}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p logs
if ! cargo +nightly fuzz build -s "$sanitizer" >logs/build.log 2>&1; then
  cat logs/build.log >&2
  exit 2
fi

crashed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  # -timeout: an input that takes over 30 s is a finding too; -rss_limit_mb: libFuzzer's default.
  # shellcheck disable=SC2086
  cargo +nightly fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units:/ { n = $2 } END { print n + 0 }' "$log")
  if [ "$execs" -eq 0 ]; then
    # No final stats (a crash): the last status line's count.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  fi
  units=$(find "corpus/$t" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    printf '%-16s %12s execs  %6d corpus  ok\n' "$t" "${execs:-0}" "$units"
  else
    crashed=1
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
    printf '%-16s %12s execs  %6d corpus  CRASHED (exit %d) %s\n' "$t" "${execs:-0}" "$units" "$rc" \
      "${artifact:-(see fuzz/$log)}"
  fi
done
exit $crashed

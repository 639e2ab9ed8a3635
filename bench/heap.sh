#!/usr/bin/env bash
# Where the steady-state heap goes: clusterdns under heaptrack on a generated cluster.
#
# Starts the release binary under heaptrack on the cluster's manifests (loopback only), waits
# for the first answer and SETTLE seconds more, then kills it with SIGKILL so that every block
# still live counts as "leaked": heaptrack's leak report is then the steady heap by
# allocation site. Writes, in OUT:
#   heaptrack.gz    the recording
#   leaks.txt       `heaptrack_print --print-leaks` (live bytes and blocks by backtrace)
#   stacks.txt      live bytes by full stack (flame-graph format, one stack a line)
#   leaks-full.txt  every backtrace unmerged, for bench/heap_sites.py
#   status.txt      /proc/<pid>/status just before the kill (VmRSS, VmHWM)
#
# Environment:
#   SCALE    SERVICES:ENDPOINTS_PER_HEADLESS:HEADLESS_PERCENT (default 10000:100:10)
#   OUT      output directory (default /tmp/clusterdns-heap-SCALE)
#   BIN      clusterdns binary (default: the release binary under CARGO_TARGET_DIR)
#   PORT     DNS port on 127.0.0.1 (default 15363)
#   SETTLE   seconds between the first answer and the kill (default 5)
#   CLUSTER  a cluster generated before (clusterdns-bench gen --format json) to use
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-10000:100:10}
PORT=${PORT:-15363}
SETTLE=${SETTLE:-5}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/clusterdns}
BENCH=$TARGET/release/clusterdns-bench
OUT=${OUT:-/tmp/clusterdns-heap-${SCALE//:/-}}
command -v heaptrack >/dev/null || { echo "heap.sh: heaptrack is not installed" >&2; exit 2; }
for b in "$BIN" "$BENCH"; do
  [ -x "$b" ] || { echo "heap.sh: $b is missing (cargo build --release --bins)" >&2; exit 2; }
done

mkdir -p "$OUT"
IFS=: read -r services per_headless percent <<<"$SCALE"
dir=${CLUSTER:-$OUT/cluster}
if [ ! -f "$dir/summary.txt" ]; then
  "$BENCH" gen --services "$services" --endpoints-per-headless "$per_headless" \
    --headless-percent "$percent" --format json --out "$dir" >/dev/null
fi
probe_name=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")

rm -f "$OUT"/heaptrack.*
heaptrack -o "$OUT/heaptrack" "$BIN" --manifests "$dir/manifests" \
  --listen "127.0.0.1:$PORT" --no-forward --metrics-listen "127.0.0.1:$((PORT + 1))" \
  --log-level warn >"$OUT/server.log" 2>&1 &
launcher=$!

pid=
for _ in $(seq 1 600); do
  pid=$(pgrep -n -f "^$BIN --manifests $dir/manifests" || true)
  if [ -n "$pid" ] &&
    "$BENCH" probe "127.0.0.1:$PORT" "$probe_name" --timeout-ms 500 2>/dev/null | grep -q "NOERROR answers=1"; then
    break
  fi
  sleep 0.2
done
[ -n "$pid" ] || { echo "heap.sh: the server did not start" >&2; exit 1; }
sleep "$SETTLE"
cat "/proc/$pid/status" >"$OUT/status.txt"
kill -KILL "$pid"
wait "$launcher" 2>/dev/null || true

data=$(ls "$OUT"/heaptrack.*)
heaptrack_print -f "$data" --print-leaks 1 --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 -n 60 -s 10 >"$OUT/leaks.txt"
heaptrack_print -f "$data" --print-leaks 0 --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 --flamegraph-cost-type leaked -F "$OUT/stacks.txt" >/dev/null
heaptrack_print -f "$data" -m 0 --print-leaks 1 --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 -n 100000 >"$OUT/leaks-full.txt"
grep -E '^(VmRSS|VmHWM)' "$OUT/status.txt"
grep -E 'leaked|total runtime' "$OUT/leaks.txt" | tail -3
echo "heap.sh: $OUT"

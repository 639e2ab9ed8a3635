#!/usr/bin/env bash
# Memory and load time of clusterdns on generated clusters.
#
# For each scale: generate the cluster (clusterdns-bench gen), start the release binary on
# its manifests (loopback only), wait until it answers a known name, and record the load time
# (start to first answer, wall clock and the CPU time the process used by then), the peak
# RSS (VmHWM) and the steady RSS (VmRSS after SETTLE seconds). Prints a table; the server is stopped after each scale.
#
# Environment:
#   SCALES   space-separated SERVICES:ENDPOINTS_PER_HEADLESS:HEADLESS_PERCENT
#            (default: "0:0:0 10000:0:0 10000:100:10 100000:100:10")
#   BIN      clusterdns binary to measure (default: the freshly built release binary)
#   NO_BUILD set to 1 to skip `cargo build --release`
#   PORT     DNS port on 127.0.0.1 (default 15353; the side port is PORT+1)
#   SETTLE   seconds between the first answer and the steady RSS reading (default 3)
#   TIMEOUT  seconds to wait for the first answer (default 120)
#   KEEP     set to a directory to keep the generated clusters there
#   FORMAT   manifests encoding, yaml or json (default: json, which loads several times faster)
set -euo pipefail
cd "$(dirname "$0")/.."

SCALES=${SCALES:-"0:0:0 10000:0:0 10000:100:10 100000:100:10"}
PORT=${PORT:-15353}
SIDE=$((PORT + 1))
SETTLE=${SETTLE:-3}
TIMEOUT=${TIMEOUT:-120}
TARGET=${CARGO_TARGET_DIR:-target}
FORMAT=${FORMAT:-json}

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release --bins >&2
fi
BIN=${BIN:-$TARGET/release/clusterdns}
BENCH=$TARGET/release/clusterdns-bench
[ -x "$BENCH" ] || BENCH=$TARGET/debug/clusterdns-bench
for b in "$BIN" "$BENCH"; do
  [ -x "$b" ] || { echo "memory.sh: $b is missing (build it, or unset NO_BUILD)" >&2; exit 2; }
done

WORK=${KEEP:-$(mktemp -d -t clusterdns-mem.XXXXXX)}
mkdir -p "$WORK"
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# probe NAME: prints "RCODE answers=N", fails on no reply.
probe() {
  if command -v dig >/dev/null 2>&1; then
    local out status n
    out=$(dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 "$1" A 2>/dev/null) || return 1
    status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
    n=$(sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' <<<"$out")
    echo "$status answers=$n"
  else
    "$BENCH" probe "127.0.0.1:$PORT" "$1" --timeout-ms 1000
  fi
}

kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status"; }
now() { date +%s.%N; }

rows=()
for scale in $SCALES; do
  IFS=: read -r services per_headless percent <<<"$scale"
  dir=$WORK/$services-$per_headless-$percent-$FORMAT
  if [ ! -f "$dir/summary.txt" ]; then
    "$BENCH" gen --services "$services" --endpoints-per-headless "$per_headless" \
      --headless-percent "$percent" --format "$FORMAT" --out "$dir" >/dev/null
  fi
  probe_name=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
  endpoints=$(sed -n 's/.*endpoints=\([0-9]*\).*/\1/p' "$dir/summary.txt")
  file_mb=$(( $(stat -c %s "$dir/manifests/cluster.$FORMAT") / 1048576 ))

  start=$(now)
  "$BIN" --manifests "$dir/manifests" --listen "127.0.0.1:$PORT" --no-forward \
    --metrics-listen "127.0.0.1:$SIDE" --log-level warn >"$dir/server.log" 2>&1 &
  server=$!
  answered=
  deadline=$(( $(date +%s) + TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$server" 2>/dev/null || break
    if reply=$(probe "$probe_name") && [[ $reply == "NOERROR answers=1"* ]]; then
      answered=$(now)
      break
    fi
    sleep 0.05
  done
  if [ -z "$answered" ]; then
    echo "memory.sh: $scale: no answer for $probe_name within ${TIMEOUT}s; log:" >&2
    tail -5 "$dir/server.log" >&2
    exit 1
  fi
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server/stat")
  sleep "$SETTLE"
  hwm=$(kib VmHWM "$server")
  rss=$(kib VmRSS "$server")
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=
  load=$(awk -v a="$start" -v b="$answered" 'BEGIN { printf "%.2f", b - a }')
  rows+=("$(printf '| %8s | %9s | %7s%% | %7s | %6s | %5s | %7.1f | %9.1f |' \
    "$services" "$endpoints" "$percent" "$file_mb" "$load" "$cpu" \
    "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')")")
done

echo "clusterdns: $("$BIN" --version 2>/dev/null || echo "$BIN")"
echo
echo "| Services | Endpoints | Headless | ${FORMAT^^} MB | Load s | CPU s | Peak MB | Steady MB |"
echo "|---------:|----------:|---------:|--------:|-------:|------:|--------:|----------:|"
printf '%s\n' "${rows[@]}"

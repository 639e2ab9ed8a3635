#!/usr/bin/env bash
# An hour of churn: EndpointSlice changes at 1,000 a second and a mixed query load at half
# capacity, with RSS, file descriptors, query latency and programming latency over time.
#
# clusterdns (CPU 0) serves a generated cluster (SERVICES) from a manifests directory and
# forwards external names to a loopback upstream (bench/dnstool.py upstream: hot.test A
# records, NXDOMAIN for example.test). Everything else on CPU 1:
#
#  - capacity first: dnsperf -c 4 -q 100 for 10 s on the query mix (the generator's cluster
#    mix, plus one query in five external: four in five of 200 cached names, one in five an
#    NXDOMAIN of 5,000 names); the load is QPS (default: half the measured capacity), dnsperf
#    -Q in 60 s segments (a line of sent/answered/lost/latency per minute);
#  - churn: bench/dnstool.py churn rewrites churn.yaml (by rename) every CHURN_INTERVAL
#    (0.1 s) with SLICES (100) EndpointSlices of as many headless Services, every slice a new
#    address and stamped with endpoints.kubernetes.io/last-change-trigger-time, so
#    clusterdns_kubernetes_dns_programming_duration_seconds measures write to served; after
#    each write it times until churn-0's new address is answered (its own probe, exact);
#  - a client at CLIENT_RATE q/s from 127.0.0.2 (per-query latencies, p50/p99 per minute);
#  - every second: RSS, file descriptors (/proc/PID/fd), CPU ticks; every minute: /metrics,
#    the load average and the top processes.
#
# At the end bench/soak_report.py prints the figures (RSS slope by least squares after the
# first 5 minutes, fds, programming-latency p99 first 10 minutes against the last 10, lost
# queries, the achieved change rate) and draws the plot (PLOT, SVG; matplotlib if installed).
#
#   bench/soak-hour.sh                    # 60 minutes
#   MINUTES=5 QPS=20000 bench/soak-hour.sh
# Environment: MINUTES (60), SERVICES (2000), SLICES (100), CHURN_INTERVAL (0.1), QPS,
# CLIENT_RATE (100), PORT (15590), OUT (a directory for the samples and logs, default a new
# /tmp/clusterdns-soak-hour.XXXXXX, kept), PLOT (bench/soak-hour.svg), BENCH_CACHE,
# NO_BUILD=1. Loopback only; every load bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-60}
SERVICES=${SERVICES:-2000}
SLICES=${SLICES:-100}
CHURN_INTERVAL=${CHURN_INTERVAL:-0.1}
CLIENT_RATE=${CLIENT_RATE:-100}
PORT=${PORT:-15590}
SIDE=$((PORT + 1)); UPORT=$((PORT + 2))
CACHE=${BENCH_CACHE:-/tmp/clusterdns-bench-cache}
TARGET=${CARGO_TARGET_DIR:-target}
PLOT=${PLOT:-bench/soak-hour.svg}
HZ=$(getconf CLK_TCK)
LOG_NAME=soak-hour
for c in dnsperf taskset python3 curl; do
  command -v "$c" >/dev/null || { echo "soak-hour.sh: $c is missing" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "soak-hour.sh: needs 2 CPUs" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin clusterdns --bin clusterdns-bench >&2

OUT=${OUT:-$(mktemp -d -t clusterdns-soak-hour.XXXXXX)}
mkdir -p "$OUT"
WORK=$OUT
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$OUT/clusterdns" "$OUT/clusterdns-bench"
}
trap cleanup EXIT
cp "$TARGET/release/clusterdns" "$TARGET/release/clusterdns-bench" "$OUT/"
GEN=$OUT/clusterdns-bench
# shellcheck source=bench/lib.sh
. bench/lib.sh
TOOL="python3 bench/dnstool.py"
log "samples and logs in $OUT"

dir=$(generated_cluster "$SERVICES" 1 "$CACHE")
probe=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
mkdir -p "$OUT/m"
cp "$dir/manifests/cluster.yaml" "$OUT/m/cluster.yaml"
{
  cat "$dir/queries.txt"
  for i in $(seq 0 24999); do
    if [ $((i % 5)) -eq 0 ]; then echo "nx$((i % 5000)).example.test A"; else echo "host$((i % 200)).hot.test A"; fi
  done
} | shuf --random-source=<(yes) >"$OUT/queries.txt"
head -1000 "$OUT/queries.txt" >"$OUT/client.txt"

taskset -c 1 $TOOL upstream --port "$UPORT" --delay-ms 1 --nx-zone example.test --answer-suffix hot.test \
  --seconds $((MINUTES * 60 + 600)) --stats "$OUT/upstream.stats" &
pids+=($!)
# The churn's first version, so the server starts with it.
$TOOL churn --dir "$OUT/m" --slices "$SLICES" --writes 1 --seconds 5 --probe-timeout 0 \
  --server "127.0.0.1:$PORT" >/dev/null
taskset -c 0 "$OUT/clusterdns" --manifests "$OUT/m" --listen "127.0.0.1:$PORT" \
  --metrics-listen "127.0.0.1:$SIDE" --upstream "127.0.0.1:$UPORT" --log-level info \
  >"$OUT/server.log" 2>&1 &
server=$!
pids+=("$server")
wait_answer "$PORT" "$probe" 300
echo "$server" >"$OUT/server.pid"

# Capacity, on the same mix, before the churn.
a=$(cpu_ticks "$server"); t0=$(date +%s.%N)
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/queries.txt" -c 4 -q 100 -t 2 -l 10 >"$OUT/capacity.log" 2>&1 || true
b=$(cpu_ticks "$server"); t1=$(date +%s.%N)
answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$OUT/capacity.log")
capacity=$(awk -v n="$answered" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
QPS=${QPS:-$((capacity / 2))}
echo "capacity=$capacity qpc=$(awk -v n="$answered" -v t=$((b - a)) -v hz="$HZ" 'BEGIN { printf "%d", (t > 0 ? n * hz / t : 0) }') qps=$QPS minutes=$MINUTES services=$SERVICES slices=$SLICES interval=$CHURN_INTERVAL" >"$OUT/params.txt"
log "$(cat "$OUT/params.txt")"

seconds=$((MINUTES * 60))
start=$(date +%s)
echo "$start" >"$OUT/start.txt"
# Samplers.
(
  while kill -0 "$server" 2>/dev/null; do
    echo "$(date +%s.%N) $(kib VmRSS "$server") $(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 | wc -l) $(cpu_ticks "$server") $(threads "$server")"
    sleep 1
  done
) >"$OUT/samples.txt" &
pids+=($!)
(
  while kill -0 "$server" 2>/dev/null; do
    now=$(date +%s)
    curl -s "http://127.0.0.1:$SIDE/metrics" | sed "s/^/$now /" >>"$OUT/metrics.txt"
    { echo "== $now $(cat /proc/loadavg)"; ps -eo pid,ni,pcpu,rss,comm --sort=-pcpu | head -6; } >>"$OUT/load.txt"
    sleep 60
  done
) &
pids+=($!)
taskset -c 1 $TOOL churn --dir "$OUT/m" --slices "$SLICES" --interval "$CHURN_INTERVAL" --seconds "$seconds" \
  --first 1 --server "127.0.0.1:$PORT" --log "$OUT/churn.log" >"$OUT/churn.out" &
churner=$!
pids+=("$churner")
taskset -c 1 $TOOL client --server "127.0.0.1:$PORT" --bind 127.0.0.2 --rate "$CLIENT_RATE" \
  --seconds "$seconds" --names "$OUT/client.txt" --timeout 2 --interval 60 --log "$OUT/client.log" \
  >"$OUT/client.out" 2>/dev/null &
client=$!
pids+=("$client")
# The load, in 60 s segments.
seg=0
while [ $(($(date +%s) - start)) -lt $((seconds - 5)) ]; do
  left=$((seconds - ($(date +%s) - start)))
  len=$((left < 60 ? left : 60))
  s0=$(date +%s)
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/queries.txt" -c 4 -q 500 -t 2 -Q "$QPS" -l "$len" \
    >"$OUT/dnsperf.$seg.log" 2>&1 || true
  g() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$OUT/dnsperf.$seg.log"; }
  echo "$s0 $len $(g 'Queries sent') $(g 'Queries completed') $(g 'Queries lost') $(g 'Average Latency (s)') $(g 'Latency StdDev (s)')" >>"$OUT/segments.txt"
  rm -f "$OUT/dnsperf.$seg.log"
  seg=$((seg + 1))
done
wait "$churner" || true
wait "$client" || true
curl -s "http://127.0.0.1:$SIDE/metrics" | sed "s/^/$(date +%s) /" >>"$OUT/metrics.txt"
grep -o 'changes=[0-9]*' "$OUT/server.log" | awk -F= '{ s += $2 } END { print "server_changes=" s + 0 }' >"$OUT/server-changes.txt"
python3 bench/soak_report.py "$OUT" --plot "$PLOT"

#!/usr/bin/env bash
# Updates under load: dnsperf at full load (-c 4 -q 100) against clusterdns serving the
# generated 10k-Service cluster from manifests, while a churn loop rewrites a manifest of
# 100 EndpointSlices (of 100 headless Services of its own) every 100 ms, every slice with a
# new endpoint address each time: about 1000 EndpointSlice changes per second. Reports the
# queries lost, dnsperf's latency, the p99 (from its per-query output) and the snapshots the
# server published. Loopback only; bounded in time.
#
#   bench/churn-load.sh                      # 20 s
#   SECONDS_TOTAL=30 SERVICES=100000 bench/churn-load.sh
# Environment: SERVICES (10000), SECONDS_TOTAL (20), PORT (15560), BENCH_CACHE, NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
SECONDS_TOTAL=${SECONDS_TOTAL:-20}
PORT=${PORT:-15560}
SIDE=$((PORT + 1))
CACHE=${BENCH_CACHE:-/tmp/clusterdns-bench-cache}
TARGET=${CARGO_TARGET_DIR:-target}
command -v dnsperf >/dev/null || { echo "churn-load.sh: dnsperf is missing (bench/run installs it)" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --bin clusterdns --bin clusterdns-bench >&2

work=$(mktemp -d -t clusterdns-churn.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cp "$TARGET/release/clusterdns" "$TARGET/release/clusterdns-bench" "$work/"

dir=$CACHE/$SERVICES-s1
if [ ! -f "$dir/summary.txt" ]; then
  "$work/clusterdns-bench" gen --services "$SERVICES" --seed 1 --out "$dir.tmp" >/dev/null
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
fi
mkdir -p "$work/m"
ln -s "$dir/manifests/cluster.yaml" "$work/m/cluster.yaml"

# churn N: the churn manifest, version N: 100 headless Services and their slices.
churn() {
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < 100; i++) {
      printf "apiVersion: v1\nkind: Service\nmetadata: {name: churn-%d, namespace: default}\nspec: {clusterIP: None, ports: [{name: http, port: 8080}]}\n---\n", i
      printf "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: churn-%d-x, namespace: default, labels: {kubernetes.io/service-name: churn-%d}}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\nendpoints:\n- addresses: [\"10.200.%d.%d\"]\n  conditions: {ready: true}\n---\n", i, i, i, n % 250 + 1
    }
  }'
}
churn 0 >"$work/m/churn.yaml"

probe=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
"$work/clusterdns" --manifests "$work/m" --no-forward --listen "127.0.0.1:$PORT" \
  --metrics-listen "127.0.0.1:$SIDE" --log-level warn >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
deadline=$(($(date +%s) + 300))
until "$work/clusterdns-bench" probe "127.0.0.1:$PORT" "$probe" --timeout-ms 500 2>/dev/null | grep -q '^NOERROR'; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "churn-load.sh: no answer" >&2; tail -5 "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
snapshots() { curl -s "http://127.0.0.1:$SIDE/metrics" | awk '/^clusterdns_zone_snapshots_total/ { print $2 }'; }
s0=$(snapshots)

(
  n=0
  while :; do
    n=$((n + 1))
    churn "$n" >"$work/m/.churn.tmp"
    mv "$work/m/.churn.tmp" "$work/m/churn.yaml"
    sleep 0.1
  done
) &
churner=$!
pids+=("$churner")
dnsperf -s 127.0.0.1 -p "$PORT" -d "$dir/queries.txt" -c 4 -q 100 -t 2 -l "$SECONDS_TOTAL" -v >"$work/dnsperf.log" 2>&1 || true
kill "$churner" 2>/dev/null || true
s1=$(snapshots)
echo "clusterdns serving $SERVICES Services; 100 EndpointSlices rewritten every 100 ms for ${SECONDS_TOTAL} s"
grep -E "Queries sent|Queries completed|Queries lost|Queries per second|Average Latency|Latency StdDev" "$work/dnsperf.log"
awk '/^> / { print $NF }' "$work/dnsperf.log" | sort -g |
  awk '{ v[NR] = $1 } END { printf "  Latency p99 (s):      %.6f\n  Latency p99.9 (s):    %.6f\n", v[int(NR * 0.99)], v[int(NR * 0.999)] }'
echo "  Snapshots published:  $((${s1:-0} - ${s0:-0}))"

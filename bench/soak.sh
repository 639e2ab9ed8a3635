#!/usr/bin/env bash
# Soak: mixed load with churn for a fixed time, RSS at the start (warm) and at the end.
#
# clusterdns (release) serves a generated cluster from manifests and forwards external
# names to unbound (local data only, loopback). dnsperf sends a mix of cluster queries
# (the generator's 70% A / 10% SRV / 10% AAAA NODATA / 10% NXDOMAIN) and external names,
# rate-limited; meanwhile a churn loop rewrites a manifest of 50 Services every 200 ms.
# Prints RSS every 10 s; memory must be flat once warm. Loopback only; bounded in time.
#
#   bench/soak.sh                  # 120 s at 5000 qps
#   SECONDS_TOTAL=300 QPS=10000 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${SECONDS_TOTAL:-120}
QPS=${QPS:-5000}
SERVICES=${SERVICES:-2000}
PORT=${PORT:-5356}
UPORT=${UPORT:-5357}
SIDE=${SIDE:-9356}
BIN=target/release/clusterdns
GEN=target/release/clusterdns-bench
command -v dnsperf >/dev/null || { echo "soak.sh: dnsperf is missing (apt-get install dnsperf)" >&2; exit 2; }
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
[ -n "${NO_BUILD:-}" ] || cargo build --release --bins >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$GEN" gen --services "$SERVICES" --out "$work/c" >/dev/null
cat >"$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $UPORT
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  use-syslog: no
  module-config: "iterator"
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  local-zone: "." static
  local-zone: "example.test." static
  local-data: "example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60"
CONF
for i in $(seq 0 199); do
  echo "  local-data: \"host$i.example.test. 60 IN A 192.0.2.$((i % 250))\"" >>"$work/unbound.conf"
done
"$UNBOUND" -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
pids+=($!)

# Queries: the cluster mix, plus one external name in five (hits, and NXDOMAINs).
{
  cat "$work/c/queries.txt"
  for i in $(seq 0 24999); do
    if [ $((i % 5)) -eq 0 ]; then echo "nx$i.example.test A"; else echo "host$((i % 200)).example.test A"; fi
  done
} | shuf --random-source=<(yes) >"$work/queries.txt"

"$BIN" --manifests "$work/c/manifests" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$SIDE" \
  --upstream "127.0.0.1:$UPORT" --log-level warn >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
probe=$(sed -n 's/^probe=//p' "$work/c/summary.txt")
for _ in $(seq 1 300); do
  dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short "$probe" A 2>/dev/null | grep -q . && break
  sleep 0.1
done

# Churn: 50 Services whose cluster IPs move every 200 ms (written by rename, as a ConfigMap).
(
  n=0
  while :; do
    n=$((n + 1))
    for i in $(seq 0 49); do
      printf 'apiVersion: v1\nkind: Service\nmetadata: {name: churn-%d, namespace: default}\nspec: {clusterIP: 10.97.%d.%d, ports: [{name: http, port: 80}]}\n---\n' \
        "$i" "$((n % 200))" "$((i + 1))"
    done >"$work/c/manifests/.churn.tmp"
    mv "$work/c/manifests/.churn.tmp" "$work/c/manifests/churn.yaml"
    sleep 0.2
  done
) &
pids+=($!)

rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$SECONDS_TOTAL" -Q "$QPS" -c 4 -t 2 \
  >"$work/dnsperf.log" 2>&1 &
perf=$!
echo "| t (s) | RSS (MB) |"
echo "|---:|---:|"
t=0
while kill -0 "$perf" 2>/dev/null; do
  echo "| $t | $(rss) |"
  sleep 10
  t=$((t + 10))
done
wait "$perf" || true
echo "| end | $(rss) |"
echo
grep -E "Queries sent|Queries completed|Queries lost|Response codes|Average Latency|Latency StdDev" "$work/dnsperf.log" || cat "$work/dnsperf.log"
echo
curl -s "http://127.0.0.1:$SIDE/metrics" | grep -E '^clusterdns_(zone_snapshots_total|cache_entries|cache_hits_total|forward_requests_total|dropped_total)' || true

#!/usr/bin/env bash
# A one-source UDP flood against clusterdns serving examples/cluster, and meanwhile another
# client sending each query once: how many of that client's queries are answered, and how
# fast. The figure behind tests/it/abuse.rs's flood test, which only checks that a retrying
# client is answered at all while the flood goes on (a loaded CI machine has no figure to hold).
#
#   bench/flood.sh                      # 10 s, the release binary (built if missing)
#   SECONDS_RUN=30 BIN=path/to/clusterdns PORT=15600 bench/flood.sh
#
# The flood: dnsperf with one client (one socket, so one source address and port), up to
# 10,000 queries in flight, never waiting. The client: dnsperf with one socket at 25 queries
# a second, each query sent once with 2 s to be answered (`-t 2`). Loopback only, bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/clusterdns}
PORT=${PORT:-15600}
SECONDS_RUN=${SECONDS_RUN:-10}
command -v dnsperf >/dev/null || { echo "flood.sh: needs dnsperf (apt-get install dnsperf)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --locked --bin clusterdns

work=$(mktemp -d)
"$BIN" --manifests examples/cluster --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 \
  --no-forward >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short cluster.local SOA >/dev/null 2>&1 && break
  sleep 0.1
done

printf '%s\n' "web.shop.svc.cluster.local A" "nope.shop.svc.cluster.local A" \
  "db.data.svc.cluster.local A" >"$work/flood.txt"
echo "web.shop.svc.cluster.local A" >"$work/client.txt"

dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/flood.txt" -c 1 -q 10000 -l $((SECONDS_RUN + 2)) \
  >"$work/flood.out" 2>&1 &
flood=$!
sleep 1
dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/client.txt" -c 1 -Q 25 -t 2 -l "$SECONDS_RUN" \
  >"$work/client.out" 2>&1
wait $flood || true

summary() {
  grep -E "Queries (sent|completed|lost)|Queries per second|Average Latency|Latency StdDev" "$1" |
    sed 's/^ */  /'
}
echo "flood (one socket):"
summary "$work/flood.out"
echo "client (each query sent once, 2 s to answer):"
summary "$work/client.out"

#!/usr/bin/env bash
# Random-subdomain ("water torture") flood: every query a miss that is forwarded, while a hot
# set of external names and the cluster zone are asked beside it.
#
# clusterdns (CPU 0) serves the generated 10k-Service cluster from manifests, forwards
# hot.test to one slow upstream (--stub-domain) and the rest to another (--upstream), both
# bench/dnstool.py upstream on loopback answering after DELAY_MS: an A record (TTL 3600) for
# hot.test names, NXDOMAIN for <random>.example.test. --max-concurrent MAX_CONCURRENT. The
# load on CPU 1:
#
#  - the hot set: 1,000 names hostN.hot.test, warmed (each asked twice), then dnsperf
#    -Q HOT_RATE from 127.0.0.3 for the whole run;
#  - the cluster zone: bench/dnstool.py client at CLUSTER_RATE q/s from 127.0.0.4 (the
#    generator's query mix), BEFORE_SECONDS before the flood and through it;
#  - the flood: one dnsperf socket from 127.0.0.2 at FLOOD_RATE q/s for FLOOD_SECONDS, each
#    query a new <random>.example.test.
#
# Reported from the server's /metrics (differences over the flood): the hot set's cache-hit
# ratio (cache hits / (cache hits + the hot set's forwarded queries); the flood's names are
# all new, so every hit is the hot set's),
# the forwarded rate, clusterdns_forward_max_concurrent_rejects_total, the upstream's received
# rate and most queries in flight at once (its own count), and the cluster-zone client's p50 /
# p99 before and during.
#
#   bench/water-torture.sh
#   FLOOD_SECONDS=30 MAX_CONCURRENT=1000 bench/water-torture.sh
# Environment: SERVICES (10000), FLOOD_RATE (20000), FLOOD_SECONDS (60), BEFORE_SECONDS (15),
# HOT_RATE (2000), CLUSTER_RATE (200), DELAY_MS (5), MAX_CONCURRENT (50), PORT (15580),
# BENCH_CACHE, NO_BUILD=1, KEEP_WORK=1. Loopback only; every load bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
FLOOD_RATE=${FLOOD_RATE:-20000}
FLOOD_SECONDS=${FLOOD_SECONDS:-60}
BEFORE_SECONDS=${BEFORE_SECONDS:-15}
HOT_RATE=${HOT_RATE:-2000}
CLUSTER_RATE=${CLUSTER_RATE:-200}
DELAY_MS=${DELAY_MS:-5}
MAX_CONCURRENT=${MAX_CONCURRENT:-50}
PORT=${PORT:-15580}
SIDE=$((PORT + 1)); UPORT=$((PORT + 2)); HPORT=$((PORT + 3))
CACHE=${BENCH_CACHE:-/tmp/clusterdns-bench-cache}
HZ=$(getconf CLK_TCK)
LOG_NAME=water-torture
# shellcheck source=bench/lib.sh
. bench/lib.sh
load_script_setup water-torture.sh dnsperf taskset python3 curl
TOOL="python3 bench/dnstool.py"

dir=$(generated_cluster "$SERVICES" 1 "$CACHE")
probe=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
mkdir -p "$WORK/m"
ln -s "$dir/manifests/cluster.yaml" "$WORK/m/cluster.yaml"
head -2000 "$dir/queries.txt" >"$WORK/cluster.txt"
for i in $(seq 0 999); do echo "host$i.hot.test A"; done >"$WORK/hot.txt"
# Every flood query a new name: 16 random hex digits and a counter.
awk -v n=$((FLOOD_RATE * (FLOOD_SECONDS + 5))) 'BEGIN { srand(19); for (i = 0; i < n; i++)
  printf "%08x%08x-%d.example.test A\n", int(rand() * 4294967296), int(rand() * 4294967296), i }' >"$WORK/flood.txt"

upstream_seconds=$((BEFORE_SECONDS + FLOOD_SECONDS + 120))
taskset -c 1 $TOOL upstream --port "$UPORT" --delay-ms "$DELAY_MS" --seconds "$upstream_seconds" \
  --stats "$WORK/upstream.stats" &
pids+=($!)
taskset -c 1 $TOOL upstream --port "$HPORT" --delay-ms "$DELAY_MS" --seconds "$upstream_seconds" \
  --stats "$WORK/hot-upstream.stats" &
pids+=($!)
taskset -c 0 "$WORK/clusterdns" --manifests "$WORK/m" --listen "127.0.0.1:$PORT" \
  --metrics-listen "127.0.0.1:$SIDE" --upstream "127.0.0.1:$UPORT" \
  --stub-domain "hot.test=127.0.0.1:$HPORT" --max-concurrent "$MAX_CONCURRENT" \
  --log-level warn >"$WORK/server.log" 2>&1 &
server=$!
pids+=("$server")
wait_answer "$PORT" "$probe" 300
snap() { # snap NAME: the counters, one "key value" a line, into $WORK/NAME
  {
    echo "hits $(metric clusterdns_cache_hits_total)"
    echo "misses $(metric clusterdns_cache_misses_total)"
    echo "entries $(metric clusterdns_cache_entries)"
    echo "evictions $(metric clusterdns_cache_evictions_total)"
    echo "fwd_nx $(metric "clusterdns_forward_requests_total{to=\"127.0.0.1:$UPORT\"}")"
    echo "fwd_hot $(metric "clusterdns_forward_requests_total{to=\"127.0.0.1:$HPORT\"}")"
    echo "rejects $(metric clusterdns_forward_max_concurrent_rejects_total)"
    echo "dropped $(metric clusterdns_dropped_total)"
    echo "requests $(metric clusterdns_dns_requests_total)"
    echo "rcvbuf $(udp RcvbufErrors)"
    echo "ticks $(cpu_ticks "$server")"
    echo "time $(date +%s.%N)"
  } >"$WORK/$1"
}
d() { awk -v k="$1" '$1 == k { v[FILENAME] = $2 } END { printf "%d", v[ARGV[2]] - v[ARGV[1]] }' "$WORK/$2" "$WORK/$3"; }

log "what else runs: $(uptime | sed 's/.*load average/load average/')"
ps -eo pid,ni,pcpu,comm --sort=-pcpu | head -8 >"$WORK/ps-before.txt"

# Warm the hot set: every name twice.
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.0.3 -d "$WORK/hot.txt" -n 2 -c 1 -q 50 -t 5 \
  >"$WORK/warm.log" 2>&1 || true
log "warmed: $(sed -n 's/^ *Queries completed: *\(.*\)/\1/p' "$WORK/warm.log")"
snap s0

total=$((BEFORE_SECONDS + FLOOD_SECONDS + 2))
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.0.3 -d "$WORK/hot.txt" -c 2 -q 200 -t 2 \
  -Q "$HOT_RATE" -l "$total" >"$WORK/hot.log" 2>&1 &
hot=$!
pids+=("$hot")
taskset -c 1 $TOOL client --server "127.0.0.1:$PORT" --bind 127.0.0.4 --rate "$CLUSTER_RATE" \
  --seconds "$total" --names "$WORK/cluster.txt" --timeout 2 --log "$WORK/cluster.log" \
  >"$WORK/cluster.out" 2>/dev/null &
client=$!
pids+=("$client")
sleep "$BEFORE_SECONDS"
snap s1
cp /proc/stat "$WORK/stat1"
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -a 127.0.0.2 -d "$WORK/flood.txt" -c 1 -q 10000 -t 2 \
  -Q "$FLOOD_RATE" -l "$FLOOD_SECONDS" >"$WORK/flood.log" 2>&1 &
flood=$!
pids+=("$flood")
sleep "$FLOOD_SECONDS"
snap s2
cp /proc/stat "$WORK/stat2"
wait "$flood" || true
wait "$hot" || true
wait "$client" || true
snap s3
ps -eo pid,ni,pcpu,comm --sort=-pcpu | head -8 >"$WORK/ps-after.txt"

t1=$(awk '$1 == "time" { print $2 }' "$WORK/s1"); t2=$(awk '$1 == "time" { print $2 }' "$WORK/s2")
secs=$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')
fl() { sed -n "s/^ *$1: *\([0-9]*\).*/\1/p" "$2"; }
hot_sent=$(fl "Queries sent" "$WORK/hot.log"); hot_done=$(fl "Queries completed" "$WORK/hot.log")
hot_rate_real=$(awk -v n="$hot_done" -v t="$total" 'BEGIN { printf "%.0f", n / t }')
# Hot queries answered during the flood: the hot client's rate times the flood's length.
hot_flood=$(awk -v r="$hot_rate_real" -v s="$secs" 'BEGIN { printf "%d", r * s }')
hits=$(d hits s1 s2); misses=$(d misses s1 s2); fwd_nx=$(d fwd_nx s1 s2); fwd_hot=$(d fwd_hot s1 s2)
rejects=$(d rejects s1 s2); dropped=$(d dropped s1 s2); rcvbuf=$(d rcvbuf s1 s2)
fwd_hot_all=$(d fwd_hot s0 s3); hits_before=$(d hits s0 s1)
ticks=$(d ticks s1 s2)
read -r ups_recv _ ups_max ups_inflight < <(head -1 "$WORK/upstream.stats")
ups_mean=$(awk -v a="$t1" -v b="$t2" 'NR > 1 && $1 >= int(a) + 1 && $1 < int(b) { s += $2; n++ } END { printf "%.0f", n ? s / n : 0 }' "$WORK/upstream.stats")
hot_ups_flood=$(awk -v a="$t1" -v b="$t2" 'NR > 1 && $1 >= int(a) && $1 <= int(b) { s += $2 } END { print s + 0 }' "$WORK/hot-upstream.stats")
fsent=$(fl "Queries sent" "$WORK/flood.log"); fdone=$(fl "Queries completed" "$WORK/flood.log"); flost=$(fl "Queries lost" "$WORK/flood.log")
frc=$(sed -n 's/^ *Response codes: *//p' "$WORK/flood.log")
read -r b_sent b_ans b_lost b_p50 b_p99 b_max < <($TOOL window "$WORK/cluster.log" --from "$(awk -v a="$t1" -v s="$BEFORE_SECONDS" 'BEGIN { printf "%.3f", a - s + 1 }')" --to "$t1")
read -r c_sent c_ans c_lost c_p50 c_p99 c_max < <($TOOL window "$WORK/cluster.log" --from "$t1" --to "$t2")

echo "### Random-subdomain flood: ${FLOOD_RATE} q/s of <random>.example.test for ${FLOOD_SECONDS} s"
echo
echo "clusterdns on CPU 0 (10k Services, --max-concurrent $MAX_CONCURRENT, cache defaults), upstreams answering after $DELAY_MS ms, all load on CPU 1. Load average at the start: $(awk '{ print $1, $2, $3 }' /proc/loadavg)."
echo
echo "| figure | value |"
echo "|---|---:|"
echo "| flood sent / answered / lost (one socket, 127.0.0.2) | $fsent / $fdone / $flost ($frc) |"
echo "| hot set (1,000 names, warm) answered during the flood, at ~$hot_rate_real q/s | ~$hot_flood |"
echo "| cache hits during the flood (clusterdns_cache_hits_total) | $hits |"
echo "| **hot-set hit ratio: cache hits / (cache hits + hot queries forwarded)** | **$(awk -v h="$hits" -v f="$fwd_hot" 'BEGIN { printf "%.3f%%", h + f ? 100 * h / (h + f) : 0 }')** |"
echo "| hot-set queries forwarded during the flood (clusterdns_forward_requests_total to the hot upstream; the upstream's own count) | $fwd_hot; $hot_ups_flood |"
echo "| hot-set hit ratio: cache hits / hot queries answered (dnsperf's rate × the flood's length) | $(awk -v h="$hits" -v q="$hot_flood" 'BEGIN { printf "%.2f%%", q ? 100 * h / q : 0 }') |"
echo "| hot set forwarded over the whole run, warming included (2,000 warming queries) | $fwd_hot_all |"
echo "| cache misses during the flood | $misses |"
echo "| forwarded to the flood's upstream | $fwd_nx ($(awk -v n="$fwd_nx" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') q/s) |"
echo "| clusterdns_forward_max_concurrent_rejects_total | $rejects ($(awk -v n="$rejects" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') q/s) |"
echo "| the upstream's received rate (mean / peak second) and most queries in flight at once | $ups_mean / $ups_max q/s; $ups_inflight (cap $MAX_CONCURRENT) |"
echo "| cache entries before / after the flood | $(awk '$1 == "entries" { print $2 }' "$WORK/s1") / $(awk '$1 == "entries" { print $2 }' "$WORK/s2") |"
echo "| clusterdns_dropped_total; kernel RcvbufErrors | $dropped; $rcvbuf |"
echo "| server CPU during the flood | $(awk -v t="$ticks" -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }') |"
echo "| CPU 0 during the flood (/proc/stat) | $(cpu_split 0 "$WORK/stat1" "$WORK/stat2") |"
echo "| CPU 1 during the flood | $(cpu_split 1 "$WORK/stat1" "$WORK/stat2") |"
echo "| cluster zone (127.0.0.4, $CLUSTER_RATE q/s) before: answered/sent, p50 / p99 / max ms | $b_ans/$b_sent, $b_p50 / $b_p99 / $b_max |"
echo "| **cluster zone during: answered/sent, p50 / p99 / max ms** | **$c_ans/$c_sent, $c_p50 / $c_p99** / $c_max |"
echo
echo "Top processes before and after:"
echo '```'
cat "$WORK/ps-before.txt"; echo; cat "$WORK/ps-after.txt"
echo '```'

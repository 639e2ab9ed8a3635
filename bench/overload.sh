#!/usr/bin/env bash
# Overload: three times what one core answers, for a minute, and a well-behaved client beside it.
#
# clusterdns serves the generated 10k-Service cluster from manifests (--no-forward), pinned to
# CPU 0 (one UDP thread). Everything else runs on CPU 1.
#
#  1. Capacity: dnsperf -c 4 -q 100 for CAPACITY_SECONDS; answered per second (wall) and per
#     server CPU-second. The capacity of one core is the latter (dnsperf's closed loop leaves
#     the server part of its CPU idle).
#  2. Overload: `clusterdns-bench flood` (open loop, sendmmsg over SOCKETS sockets, each its own
#     source port, spread over SOURCES addresses from FLOOD_FROM, as several pods flooding would
#     be) offers FACTOR x capacity for OVERLOAD_SECONDS, each query given 0.5 s; dnsperf
#     cannot offer that much from one core. Meanwhile a well-behaved client (bench/dnstool.py
#     client) sends CLIENT_RATE queries a second from 127.0.0.2, each once with 2 s to be
#     answered, from 5 s before the overload to 10 s after it; the server's RSS is sampled
#     every second.
#  3. Reported: offered and answered rate (answered >= 90% of capacity: no collapse), the
#     client's answered share and p50/p99 during the overload, RSS (min/max), the kernel's UDP
#     drops (/proc/net/snmp RcvbufErrors), clusterdns_dropped_total, and the first query the
#     client sent after the overload ended (answered? latency).
#
#   bench/overload.sh
#   OVERLOAD_SECONDS=30 FACTOR=2 bench/overload.sh
# Environment: SERVICES (10000), CAPACITY_SECONDS (15), OVERLOAD_SECONDS (60), FACTOR (3),
# SOCKETS (32), SOURCES (4), FLOOD_FROM (127.0.0.10), HOG (1: a busy loop shares CPU 0 with the server at its UDP thread's priority, so
# the server has about half a core and one core of load can offer 3x what it answers), NO_READ (1: the loader leaves replies unread and sends more; answered is then
# the server's count of responses), CLIENT_RATE (100), PORT (15570), BENCH_CACHE, NO_BUILD=1, KEEP_WORK=1.
# Loopback only (127.0.0.1, the client from 127.0.0.2); every load bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
CAPACITY_SECONDS=${CAPACITY_SECONDS:-15}
OVERLOAD_SECONDS=${OVERLOAD_SECONDS:-60}
FACTOR=${FACTOR:-3}
SOCKETS=${SOCKETS:-32}
SOURCES=${SOURCES:-4}
FLOOD_FROM=${FLOOD_FROM:-127.0.0.10}
CLIENT_RATE=${CLIENT_RATE:-100}
PORT=${PORT:-15570}
SIDE=$((PORT + 1))
CACHE=${BENCH_CACHE:-/tmp/clusterdns-bench-cache}
HZ=$(getconf CLK_TCK)
LOG_NAME=overload
# shellcheck source=bench/lib.sh
. bench/lib.sh
load_script_setup overload.sh dnsperf taskset python3 curl
TOOL="python3 bench/dnstool.py"

dir=$(generated_cluster "$SERVICES" 1 "$CACHE")
probe=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
mkdir -p "$WORK/m"
ln -s "$dir/manifests/cluster.yaml" "$WORK/m/cluster.yaml"
# The client's names: the first 1,000 lines of the query file (its mix).
head -1000 "$dir/queries.txt" >"$WORK/client.txt"

taskset -c 0 "$WORK/clusterdns" --manifests "$WORK/m" --no-forward --listen "127.0.0.1:$PORT" \
  --metrics-listen "127.0.0.1:$SIDE" --log-level warn >"$WORK/server.log" 2>&1 &
server=$!
pids+=("$server")
wait_answer "$PORT" "$probe" 300

log "what else runs: $(uptime | sed 's/.*load average/load average/')"
ps -eo pid,ni,pcpu,comm --sort=-pcpu | head -8 >"$WORK/ps-before.txt"

if [ -n "${HOG:-}" ]; then
  # At the UDP thread's priority (its default --udp-thread-nice), so the two share CPU 0.
  nice -n 10 taskset -c 0 bash -c 'while :; do :; done' &
  pids+=($!)
fi
# --- 1. capacity ---------------------------------------------------------------------------
a=$(cpu_ticks "$server"); t0=$(date +%s.%N)
cp /proc/stat "$WORK/stat0"
taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$dir/queries.txt" -c 4 -q 100 -t 2 -l "$CAPACITY_SECONDS" \
  >"$WORK/capacity.log" 2>&1 || true
b=$(cpu_ticks "$server"); t1=$(date +%s.%N)
cp /proc/stat "$WORK/stat1"
cap_answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$WORK/capacity.log")
capacity=$(awk -v n="$cap_answered" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
cap_qpc=$(awk -v n="$cap_answered" -v t=$((b - a)) -v hz="$HZ" 'BEGIN { printf "%d", (t > 0 ? n * hz / t : 0) }')
cap_share=$(awk -v t=$((b - a)) -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')
log "capacity: $capacity answered/s (server CPU ${cap_share}%), $cap_qpc per server CPU-second"

# --- 2. overload ---------------------------------------------------------------------------
# The capacity the load is a multiple of: one whole core's (per server CPU-second), or with
# HOG the answered rate on the share of CPU 0 the server has beside the busy loop.
cap=$cap_qpc
[ -n "${HOG:-}" ] && cap=$capacity
rate=$((cap * FACTOR))
rss_log=$WORK/rss.txt
(
  while kill -0 "$server" 2>/dev/null; do
    echo "$(date +%s) $(kib VmRSS "$server") $(cpu_ticks "$server")"
    sleep 1
  done
) >"$rss_log" &
sampler=$!
pids+=("$sampler")
$TOOL client --server "127.0.0.1:$PORT" --bind 127.0.0.2 --rate "$CLIENT_RATE" \
  --seconds $((OVERLOAD_SECONDS + 15)) --names "$WORK/client.txt" --timeout 2 \
  --log "$WORK/client.log" >"$WORK/client.out" 2>/dev/null &
client=$!
pids+=("$client")
sleep 5
snmp0_rcv=$(udp RcvbufErrors); snmp0_in=$(udp InErrors)
drop0=$(metric clusterdns_dropped_total); req0=$(metric clusterdns_dns_requests_total)
resp0=$(metric clusterdns_dns_responses_total)
a=$(cpu_ticks "$server")
cp /proc/stat "$WORK/stat2"
start=$(date +%s.%N)
taskset -c 1 "$GEN" flood --server "127.0.0.1:$PORT" --queries "$dir/queries.txt" --rate "$rate" \
  --seconds "$OVERLOAD_SECONDS" --sockets "$SOCKETS" --bind "$FLOOD_FROM" --sources "$SOURCES" --timeout-ms 500 ${NO_READ:+--no-read} >"$WORK/flood.log" 2>&1 &
loader=$!
pids+=("$loader")
# The overload ends when the loader stops sending, before it waits out the last timeouts.
sleep "$OVERLOAD_SECONDS"
end=$(date +%s.%N)
cp /proc/stat "$WORK/stat3"
first=$($TOOL query --server "127.0.0.1:$PORT" --bind 127.0.0.3 "$probe" --timeout 2 || true)
wait "$loader" || true
b=$(cpu_ticks "$server")
snmp1_rcv=$(udp RcvbufErrors); snmp1_in=$(udp InErrors)
drop1=$(metric clusterdns_dropped_total); req1=$(metric clusterdns_dns_requests_total)
resp1=$(metric clusterdns_dns_responses_total)
wait "$client" || true
kill "$sampler" 2>/dev/null || true
ps -eo pid,ni,pcpu,comm --sort=-pcpu | head -8 >"$WORK/ps-after.txt"

flood_field() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/flood.log"; }
sent=$(flood_field sent); answered=$(flood_field answered); lost=$(flood_field lost); late=$(flood_field late)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
offered=$(awk -v n="$sent" -v s="$secs" 'BEGIN { printf "%d", n / s }')
answered_how="answered within 0.5 s during the overload"
if [ -n "${NO_READ:-}" ]; then
  # The loader read nothing: what was answered is what the server sent (within the queue's
  # 100 ms bound of the query's read, so within the 0.5 s).
  answered=$((resp1 - resp0))
  answered_how="answered during the overload (the server's responses; the loader left them unread)"
fi
ans_rate=$(awk -v n="$answered" -v s="$secs" 'BEGIN { printf "%d", n / s }')
ov_share=$(awk -v t=$((b - a)) -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
ov_qpc=$(awk -v n="$answered" -v t=$((b - a)) -v hz="$HZ" 'BEGIN { printf "%d", (t > 0 ? n * hz / t : 0) }')
# The client before, during and after the overload (queries by their send time).
read -r b_sent b_ans _ b_p50 b_p99 _ < <($TOOL window "$WORK/client.log" --to "$start")
read -r c_sent c_ans c_lost c_p50 c_p99 c_max < <($TOOL window "$WORK/client.log" --from "$start" --to "$end")
read -r a_sent a_ans _ a_p50 a_p99 _ < <($TOOL window "$WORK/client.log" --from "$end")
read -r f_at f_lat < <($TOOL window "$WORK/client.log" --from "$end" --first)
read -r rss_first rss_min rss_max rss_last < <(awk -v a="$start" -v b="$end" '$1 >= a && $1 <= b + 1 {
    if (!n++) f = $2; if (!mn || $2 < mn) mn = $2; if ($2 > mx) mx = $2; l = $2 } END {
    printf "%.1f %.1f %.1f %.1f\n", f / 1024, mn / 1024, mx / 1024, l / 1024 }' "$rss_log")

echo "### Overload: ${FACTOR}x one core's capacity for ${OVERLOAD_SECONDS} s"
echo
echo "clusterdns on CPU 0 serving $SERVICES Services (--no-forward); load on CPU 1. Load average at the start: $(awk '{ print $1, $2, $3 }' /proc/loadavg)."
echo
echo "| figure | value |"
echo "|---|---:|"
echo "| capacity: answered per server CPU-second (dnsperf -c 4 -q 100, ${CAPACITY_SECONDS} s) | **$cap_qpc** ($capacity answered/s at server CPU $cap_share%) |"
echo "| the capacity the load is a multiple of | $cap q/s ($([ -n "${HOG:-}" ] && echo "answered per second on the server's share of CPU 0 beside a busy loop" || echo "one core: per server CPU-second")) |"
echo "| offered during the overload (clusterdns-bench flood, $SOCKETS sockets from $SOURCES addresses from $FLOOD_FROM, --rate $rate) | $offered q/s ($(awk -v o="$offered" -v c="$cap" 'BEGIN { printf "%.2f", o / c }')× capacity) |"
echo "| $answered_how | **$ans_rate q/s = $(awk -v o="$ans_rate" -v c="$cap" 'BEGIN { printf "%.0f", 100 * o / c }')% of capacity** (server CPU $ov_share%; $ov_qpc per CPU-s) |"
echo "| CPU 0 during the capacity run / the overload (/proc/stat) | $(cpu_split 0 "$WORK/stat0" "$WORK/stat1") / $(cpu_split 0 "$WORK/stat2" "$WORK/stat3") |"
echo "| answered during the overload, per server CPU-second, against the capacity's | $(awk -v a="$ov_qpc" -v c="$cap_qpc" 'BEGIN { printf "%.0f%%", c ? 100 * a / c : 0 }') |"
echo "| loader's queries sent / answered / late (after 0.5 s) / lost | $sent / $answered / $late / $lost |"
echo "| requests / responses the server counted (clusterdns_dns_requests_total, _responses_total) | $((req1 - req0)) / $((resp1 - resp0)) ($(awk -v n=$((resp1 - resp0)) -v s="$secs" -v c="$cap" 'BEGIN { printf "%d a second, %.0f%% of capacity", n / s, 100 * n / s / c }')) |"
echo "| kernel UDP receive-buffer drops (/proc/net/snmp RcvbufErrors, all sockets) | $((snmp1_rcv - snmp0_rcv)) (InErrors $((snmp1_in - snmp0_in))) |"
echo "| clusterdns_dropped_total (all reasons; by reason below) | $((drop1 - drop0)) |"
for reason in udp_socket_full udp_inflight; do
  echo "| clusterdns_dropped_total{reason=\"$reason\"} (whole run) | $(metric "clusterdns_dropped_total{reason=\"$reason\"}") |"
done
echo "| client (127.0.0.2, $CLIENT_RATE q/s) before: sent / answered, p50 / p99 ms | $b_sent / $b_ans, $b_p50 / $b_p99 |"
echo "| client during: sent / answered / lost | **$c_sent / $c_ans / $c_lost ($(awk -v a="$c_ans" -v s="$c_sent" 'BEGIN { printf "%.1f", s ? 100 * a / s : 0 }')% answered)** |"
echo "| client during: p50 / p99 / max ms | **$c_p50 / $c_p99** / $c_max |"
echo "| client after: sent / answered, p50 / p99 ms | $a_sent / $a_ans, $a_p50 / $a_p99 |"
echo "| client's first query after the end (sent +${f_at:-?} s) | ${f_lat:-?} ms |"
echo "| a fresh query at the end (127.0.0.3, before the loaders' last timeouts) | $first (rcode, answers, ms) |"
echo "| RSS during (first / min / max / last MiB, 1 s samples) | $rss_first / $rss_min / $rss_max / $rss_last |"
echo
echo "Top processes before and after:"
echo '```'
cat "$WORK/ps-before.txt"; echo; cat "$WORK/ps-after.txt"
echo '```'
cp "$rss_log" "${RSS_OUT:-/dev/null}" 2>/dev/null || true

#!/usr/bin/env bash
# clusterdns at scale from the Kubernetes API, not manifests: the API server emulator of the
# integration tests (examples/apiserver.rs, tests/it/common/apiserver.rs) serves a generated
# cluster (100k Services, 1M endpoints by default) and clusterdns follows it with kube-rs.
#
# For streaming lists (sendInitialEvents) and then paged lists (the emulator refusing
# streaming lists, as a server without WatchList):
#   1. initial sync: start to the first correct answer for the cluster's probe name and to
#      /readyz ready; peak RSS (VmHWM) and steady RSS (VmRSS after SETTLE s);
#   2. a forced relist (compaction past every watcher's resourceVersion, watches cut: each
#      resumes into 410 Expired and relists): peak RSS during the relist (VmHWM reset first
#      through /proc/PID/clear_refs) against the steady RSS before it, time to converge
#      (every kind relisted and the probe answered), and a verifier asking RELIST_NAMES names
#      of the cluster's query file throughout, every answer compared with the one before;
# then, with streaming lists only:
#   3. CHURN_RATE EndpointSlice changes a second for CHURN_SECONDS (watch events; one address of
#      a slice moves, stamped with the trigger time) under full dnsperf load (-c 4 -q 100):
#      the programming-latency histogram's p99 over the churn (deltas of /metrics) and
#      dnsperf's lost queries. Once for each of CHURN_ENDPOINTS: 0 changes the cluster's own
#      slices (100 endpoints each), K > 0 1000 slices of K endpoints of Services of their own.
#      After each, the time clusterdns takes to catch up (its programming observations stop
#      growing; at most TIMEOUT s) is reported, and the next churn starts only then.
# The emulator's CPU and RSS are reported beside clusterdns's. clusterdns runs on CPU 0; the
# emulator, dnsperf, the verifier and this script on CPU 1. Loopback only, bounded in time.
#
#   flock /tmp/clusterdns-bench.lock bench/api-scale.sh              # 100k Services, ~5 min
#   SERVICES=10000 flock /tmp/clusterdns-bench.lock bench/api-scale.sh
#
# Environment: SERVICES (100000), PER_HEADLESS (100), HEADLESS_PERCENT (10), MODES
# ("streaming paged"), CHURN_RATE (2000), CHURN_SECONDS (60), CHURN_ENDPOINTS ("1 0"), CHURN_LOAD
# (1; 0: the churn without dnsperf, the programming latency on an idle server), SETTLE (3), TIMEOUT (180),
# RELIST_NAMES (1000), PORT (15570; side port +1, emulator control +2), BENCH_CACHE
# (/tmp/clusterdns-bench-cache), KEEP (a directory to keep logs in), NO_BUILD=1, SERVER_ENV
# (NAME=VALUE words clusterdns is started with, e.g. an LD_PRELOAD of another allocator),
# SERVER_ARGS (flags added to clusterdns's, e.g. `--udp-thread-nice 0`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${API_SCALE_PINNED:-}" ] || exec env API_SCALE_PINNED=1 taskset -c 1 "$0" "$@"

SERVICES=${SERVICES:-100000}
PER_HEADLESS=${PER_HEADLESS:-100}
HEADLESS_PERCENT=${HEADLESS_PERCENT:-10}
MODES=${MODES:-"streaming paged"}
CHURN_RATE=${CHURN_RATE:-2000}
CHURN_SECONDS=${CHURN_SECONDS:-60}
CHURN_ENDPOINTS=${CHURN_ENDPOINTS:-"1 0"}
CHURN_LOAD=${CHURN_LOAD:-1}
SETTLE=${SETTLE:-3}
TIMEOUT=${TIMEOUT:-180}
RELIST_NAMES=${RELIST_NAMES:-1000}
PORT=${PORT:-15570}
SIDE=$((PORT + 1))
CONTROL=$((PORT + 2))
CACHE=${BENCH_CACHE:-/tmp/clusterdns-bench-cache}
TARGET=${CARGO_TARGET_DIR:-target}
HZ=$(getconf CLK_TCK)
command -v dnsperf >/dev/null || { echo "api-scale.sh: dnsperf is missing (bench/run installs it)" >&2; exit 2; }
if [ -z "${NO_BUILD:-}" ]; then
  nice -n 5 cargo build --release --bin clusterdns --bin clusterdns-bench --example apiserver >&2
fi

work=${KEEP:-$(mktemp -d -t clusterdns-api-scale.XXXXXX)}
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cp "$TARGET/release/clusterdns" "$TARGET/release/clusterdns-bench" "$TARGET/release/examples/apiserver" "$work/"

log() { echo "api-scale: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
secs() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }
metrics() { curl -sf "http://127.0.0.1:$SIDE/metrics"; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SIDE/readyz")" = 200 ]; }
answers() { "$work/clusterdns-bench" probe "127.0.0.1:$PORT" "$probe" --timeout-ms 200 2>/dev/null | grep -q '^NOERROR answers=1$'; }
relists() { metrics | awk '/^clusterdns_kubernetes_relists_total/ { n += $2 } END { print n + 0 }'; }
control() { curl -sf --max-time "${2:-10}" "http://127.0.0.1:$CONTROL/$1"; }

dir=$CACHE/$SERVICES-e$PER_HEADLESS-h$HEADLESS_PERCENT-s1-json
if [ ! -f "$dir/summary.txt" ]; then
  log "generating $SERVICES Services into $dir"
  "$work/clusterdns-bench" gen --services "$SERVICES" --endpoints-per-headless "$PER_HEADLESS" \
    --headless-percent "$HEADLESS_PERCENT" --format json --out "$dir.tmp" >/dev/null
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
fi
probe=$(sed -n 's/.*probe=\([^ ]*\).*/\1/p' "$dir/summary.txt")
endpoints=$(sed -n 's/.*endpoints=\([0-9]*\).*/\1/p' "$dir/summary.txt")
head -n "$RELIST_NAMES" "$dir/queries.txt" >"$work/verify-names.txt"

# histogram_p99 BEFORE AFTER: the p99 (ms) and count of the programming-latency observations
# between two /metrics scrapes (bucket deltas summed over service kinds, interpolated as
# Prometheus's histogram_quantile does).
histogram_p99() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def read(path):
    h = {}
    for line in open(path):
        m = re.match(r'clusterdns_kubernetes_dns_programming_duration_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line)
        if m:
            le = float(m.group(1)); h[le] = h.get(le, 0.0) + float(m.group(2))
    return h
a, b = read(sys.argv[1]), read(sys.argv[2])
buckets = sorted((le, b[le] - a.get(le, 0.0)) for le in b)
total = buckets[-1][1] if buckets else 0
if total <= 0:
    print("nan 0"); sys.exit()
rank, prev_le, prev_c, q = 0.99 * total, 0.0, 0.0, buckets[-1][0]
for le, c in buckets:
    if c >= rank:
        q = prev_le if le == float("inf") else (le if c == prev_c else prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c))
        break
    prev_le, prev_c = le, c
print(f"{q * 1000:.1f} {int(total)}")
PY
}

# start_emulator MODE: the emulator serving the cluster, streaming lists on or off.
start_emulator() {
  local edir=$work/emulator-$1 flag=
  mkdir -p "$edir"; rm -f "$edir/ready"
  [ "$1" = streaming ] || flag=--no-streaming-lists
  "$work/apiserver" --manifests "$dir/manifests/cluster.json" --dir "$edir" \
    --control "127.0.0.1:$CONTROL" $flag >"$edir/log" 2>&1 &
  emulator=$!
  pids+=("$emulator")
  local t0; t0=$(now)
  until [ -f "$edir/ready" ]; do
    kill -0 "$emulator" 2>/dev/null || { log "the emulator exited"; cat "$edir/log" >&2; exit 1; }
    sleep 0.2
  done
  log "$1: emulator loaded in $(since "$t0") s ($(cat "$edir/ready")), RSS $(mib "$(kib VmRSS "$emulator")") MiB"
}

# initial_sync MODE: starts clusterdns; sets answer_s ready_s cd_cpu emu_cpu peak steady emu_rss.
initial_sync() {
  local e0 t0; e0=$(ticks "$emulator")
  t0=$(now)
  # shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=VALUE words, SERVER_ARGS of flags
  env ${SERVER_ENV:-} taskset -c 0 "$work/clusterdns" --kubeconfig "$work/emulator-$1/kubeconfig" --no-forward \
    --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$SIDE" --log-level info ${SERVER_ARGS:-} \
    >"$work/clusterdns-$1.log" 2>&1 &
  server=$!
  pids+=("$server")
  answer_s=; ready_s=
  local deadline=$(($(date +%s) + TIMEOUT))
  while [ -z "$answer_s" ] || [ -z "$ready_s" ]; do
    kill -0 "$server" 2>/dev/null || { log "clusterdns exited"; tail -5 "$work/clusterdns-$1.log" >&2; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1: not synced within $TIMEOUT s"; tail -5 "$work/clusterdns-$1.log" >&2; exit 1; }
    [ -n "$answer_s" ] || ! answers || answer_s=$(since "$t0")
    [ -n "$ready_s" ] || ! ready || ready_s=$(since "$t0")
    sleep 0.02
  done
  cd_cpu=$(secs "$(ticks "$server")")
  emu_cpu=$(secs $(($(ticks "$emulator") - e0)))
  sleep "$SETTLE"
  peak=$(mib "$(kib VmHWM "$server")")
  steady=$(mib "$(kib VmRSS "$server")")
  emu_rss=$(mib "$(kib VmRSS "$emulator")")
  log "$1: first answer ${answer_s} s, ready ${ready_s} s, clusterdns CPU ${cd_cpu} s, emulator CPU ${emu_cpu} s, peak ${peak} MiB, steady ${steady} MiB"
}

# relist MODE: forces the relist; sets rl_before rl_peak rl_ratio rl_s rl_verify rl_cd_cpu rl_emu_cpu.
relist() {
  local kinds before_n c0 e0 t0 vlog=$work/verify-$1.txt
  kinds=$(metrics | grep -c '^clusterdns_kubernetes_relists_total')
  before_n=$(relists)
  rl_before=$(mib "$(kib VmRSS "$server")")
  echo 5 >"/proc/$server/clear_refs"  # VmHWM := VmRSS
  rm -f "$work/verify.stop"
  python3 bench/dnstool.py verify --server "127.0.0.1:$PORT" --names "$work/verify-names.txt" \
    --count "$RELIST_NAMES" --rate 400 --seconds "$TIMEOUT" --until "$work/verify.stop" >"$vlog" 2>"$vlog.err" &
  local verifier=$!
  pids+=("$verifier")
  sleep 2  # the verifier's baseline (two passes over the names) and a steady second
  c0=$(ticks "$server"); e0=$(ticks "$emulator")
  t0=$(now)
  control relist >/dev/null
  rl_s=
  local deadline=$(($(date +%s) + TIMEOUT))
  while [ -z "$rl_s" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1: relist did not converge within $TIMEOUT s"; break; }
    if [ "$(relists)" -ge $((before_n + kinds)) ] && ready && answers; then rl_s=$(since "$t0"); fi
    sleep 0.05
  done
  rl_cd_cpu=$(secs $(($(ticks "$server") - c0)))
  rl_emu_cpu=$(secs $(($(ticks "$emulator") - e0)))
  sleep 2
  touch "$work/verify.stop"
  wait "$verifier" || true
  rl_peak=$(mib "$(kib VmHWM "$server")")
  rl_after=$(mib "$(kib VmRSS "$server")")
  rl_ratio=$(awk -v p="$rl_peak" -v s="$rl_before" 'BEGIN { printf "%.2f", p / s }')
  # names sent correct wrong lost
  read -r vn vsent vok vwrong vlost <"$vlog" || true
  rl_verify="${vsent:-0} asked (${vn:-0} names): ${vok:-0} correct, ${vwrong:-?} wrong, ${vlost:-?} lost"
  log "$1: relist converged in ${rl_s:-never} s; RSS ${rl_before} MiB before, peak ${rl_peak} MiB (${rl_ratio}x), ${rl_after} MiB after; verifier: $rl_verify"
  cat "$vlog.err" >&2
}

# churn K: CHURN_RATE slice changes a second under full dnsperf load (K: endpoints=K of the
# emulator's /churn); appends a row to churn_rows.
churn() {
  local c0 e0 what="the cluster's slices (100 endpoints)"
  [ "$1" = 0 ] || what="1000 slices of $1 endpoint(s)"
  if [ "$1" != 0 ]; then  # the churn's own Services, made before the measurement
    control "churn?rate=1&seconds=0&endpoints=$1" 60 >/dev/null
    sleep 2
  fi
  metrics >"$work/metrics-before-$1.txt"
  c0=$(ticks "$server"); e0=$(ticks "$emulator")
  # Niced (19, the lowest priority): the emulator's changes and watch events go first on the
  # shared CPU, so the programming latency measured is clusterdns's, not the emulator's queue.
  local perf=
  if [ "$CHURN_LOAD" = 1 ]; then
    nice -n 19 dnsperf -s 127.0.0.1 -p "$PORT" -d "$dir/queries.txt" -c 4 -q 100 -t 2 -l "$CHURN_SECONDS" \
      >"$work/dnsperf-churn-$1.log" 2>&1 &
    perf=$!
  else
    : >"$work/dnsperf-churn-$1.log"
    sleep 1 & perf=$!
  fi
  pids+=("$perf")
  ch_report=$(control "churn?rate=$CHURN_RATE&seconds=$CHURN_SECONDS&endpoints=$1" $((CHURN_SECONDS + 60)))
  wait "$perf" || true
  ch_cd_cpu=$(secs $(($(ticks "$server") - c0)))
  ch_emu_cpu=$(secs $(($(ticks "$emulator") - e0)))
  ch_sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$work/dnsperf-churn-$1.log")
  ch_lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$work/dnsperf-churn-$1.log")
  ch_qps=$(sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$work/dnsperf-churn-$1.log")
  # Caught up: the programming observations stop growing (every change programmed; at most
  # TIMEOUT s). The p99 is over every change of the churn, those programmed late included.
  local t_end n_prev=-1 n_now
  t_end=$(now)
  local deadline=$(($(date +%s) + TIMEOUT))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    n_now=$(metrics | awk '/^clusterdns_kubernetes_dns_programming_duration_seconds_count/ { n += $2 } END { print n + 0 }')
    [ "$n_now" = "$n_prev" ] && break
    n_prev=$n_now
    sleep 2
  done
  ch_drain=$(awk -v a="$t_end" -v b="$(now)" 'BEGIN { printf "%.0f", b - a - 2 }')
  metrics >"$work/metrics-after-$1.txt"
  read -r ch_p99 ch_obs < <(histogram_p99 "$work/metrics-before-$1.txt" "$work/metrics-after-$1.txt")
  ch_rss=$(mib "$(kib VmRSS "$server")")
  ch_emu_rss=$(mib "$(kib VmRSS "$emulator")")
  log "churn of $what: $ch_report; programming p99 ${ch_p99} ms over $ch_obs observations, caught up ${ch_drain} s after; dnsperf ${ch_sent} sent, ${ch_lost} lost, ${ch_qps} qps"
  churn_rows+=("| $what | $CHURN_RATE/s for $CHURN_SECONDS s | $(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$ch_report") | $ch_p99 ($ch_obs) | $ch_drain | $ch_sent | $ch_lost | ${ch_qps%.*} | $ch_cd_cpu | $ch_emu_cpu | $ch_rss | $ch_emu_rss |")
}

rows=()
churn_rows=()
for mode in $MODES; do
  start_emulator "$mode"
  initial_sync "$mode"
  relist "$mode"
  rows+=("| $mode | ${answer_s} | ${ready_s} | ${cd_cpu} | ${peak} | ${steady} | ${emu_cpu} | ${emu_rss} | ${rl_before} | ${rl_peak} (${rl_ratio}×) | ${rl_s:-never} | ${rl_cd_cpu} / ${rl_emu_cpu} | ${rl_verify} |")
  if [ "$mode" = streaming ] && [ "$CHURN_SECONDS" -gt 0 ]; then
    for k in $CHURN_ENDPOINTS; do churn "$k"; done
  fi
  kill "$server" "$emulator" 2>/dev/null || true
  wait "$server" "$emulator" 2>/dev/null || true
done

echo "clusterdns $("$work/clusterdns" --version 2>/dev/null | head -1) at $(git rev-parse --short HEAD); $SERVICES Services, $endpoints endpoints"
echo
echo "| lists | first answer s | ready s | clusterdns CPU s | peak MiB | steady MiB | emulator CPU s | emulator RSS MiB | relist: RSS before MiB | relist: peak MiB | relist: converged s | relist CPU s (clusterdns / emulator) | answers during the relist |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
if [ ${#churn_rows[@]} -gt 0 ]; then
  echo
  echo "| slices changed | churn | changes/s achieved | programming p99 ms (observations) | caught up s after | dnsperf sent | lost | qps | clusterdns CPU s | emulator CPU s | clusterdns RSS MiB | emulator RSS MiB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${churn_rows[@]}"
fi

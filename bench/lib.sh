# Helpers shared by bench/run, bench/node-local and the load scripts (sourced, not run).
#
# The caller sets: WORK (temporary directory), GEN (clusterdns-bench), SECONDS_RUN (length of
# a perf_round), HZ (getconf CLK_TCK), LOG_NAME (prefix of log lines) and the array `pids`
# (every process started, killed by the caller's EXIT trap).
# shellcheck shell=bash

log() { echo "${LOG_NAME:-bench}: $*" >&2; }

# install_missing PACKAGE:COMMAND...: apt-get install the packages whose command is missing
# (as root, or through sudo).
install_missing() {
  local missing=() spec pkg cmd
  for spec in "$@"; do
    pkg=${spec%%:*}; cmd=${spec#*:}
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# cpu_ticks "PID..." [user]: utime + stime of the processes (a space-separated list), in
# ticks, or utime alone with `user`; read after the ") " that ends the command name, which may
# hold spaces ("nsd: server 1").
cpu_ticks() {
  local p
  # shellcheck disable=SC2086
  for p in $1; do sed 's/^.*) //' "/proc/$p/stat"; done |
    awk -v user="${2:-}" '{ s += $12 + (user == "" ? $13 : 0) } END { print s + 0 }'
}
# descendants PID: PID and every process below it, parents first.
descendants() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1"); do descendants "$p"; done
}
# busiest: the load average and the five busiest processes over one second (top's second frame).
busiest() {
  echo "uptime: $(uptime)"
  top -b -n 2 -d 1 -w 160 | awk '/^top -/ { n++ } n == 2 && /^ *PID/ { on = 1; next } on && c < 5 { c++; print "  " $0 }'
}
kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status"; }
threads() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }

# wait_answer PORT NAME TIMEOUT_S: until NAME answers NOERROR with one A record.
wait_answer() {
  local deadline=$(($(date +%s) + $3))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$GEN" probe "127.0.0.1:$1" "$2" --timeout-ms 500 2>/dev/null | grep -q '^NOERROR answers=[1-9]' && return 0
    sleep 0.2
  done
  log "no answer for $2 on port $1 within $3 s"
  return 1
}

# wait_rd PORT NAME TIMEOUT_S: as wait_answer, with recursion desired (a forwarder's cache).
wait_rd() {
  local deadline=$(($(date +%s) + $3))
  echo "$2 A" >"$WORK/one-query.txt"
  while [ "$(date +%s)" -lt "$deadline" ]; do
    dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/one-query.txt" -n 1 -t 1 2>/dev/null | grep -q 'NOERROR 1 ' && return 0
    sleep 0.2
  done
  log "no answer for $2 on port $1 within $3 s"
  return 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# latencies LOG: the per-query latencies (s) of a dnsperf -v log, one per line (lost queries,
# "> T name type", have none).
latencies() { awk '/^> / && $NF ~ /^[0-9.]+$/ { print $NF }' "$1"; }

# perf_round "PID..." PORT QFILE OUT: one dnsperf run against the server (its processes'
# CPU time counted); appends "answered lost ticks avg_ms sd_ms p99_ms p50_ms" to OUT.
# PERF_MODE=tcp: dnsperf -m tcp (its -c connections, queries pipelined on each).
perf_round() {
  local pid=$1 port=$2 qfile=$3 out=$4 a b ua ub log=$WORK/dnsperf.log
  a=$(cpu_ticks "$pid"); ua=$(cpu_ticks "$pid" user)
  taskset -c "${LOAD_CPUS:-1}" dnsperf -s 127.0.0.1 -p "$port" -d "$qfile" -c 4 -q 100 -t 2 -l "$SECONDS_RUN" -v \
    -T "${LOAD_THREADS:-1}" -m "${PERF_MODE:-udp}" \
    >"$log" 2>&1 || true
  b=$(cpu_ticks "$pid"); ub=$(cpu_ticks "$pid" user)
  local answered lost avg sd p99 p50
  answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$log")
  lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$log")
  avg=$(sed -n 's/^ *Average Latency (s): *\([0-9.]*\).*/\1/p' "$log")
  sd=$(sed -n 's/^ *Latency StdDev (s): *\([0-9.]*\).*/\1/p' "$log")
  read -r p50 p99 <<<"$(latencies "$log" | sort -g | awk '{ v[NR] = $1 }
    END { i = int(NR * 0.5); if (i < 1) i = 1; j = int(NR * 0.99); if (j < 1) j = 1; print v[i] + 0, v[j] + 0 }')"
  echo "${answered:-0} ${lost:-0} $((b - a)) $(awk -v a="${avg:-0}" -v s="${sd:-0}" -v p="$p99" -v m="$p50" 'BEGIN { printf "%.3f %.3f %.3f %.3f", a * 1000, s * 1000, p * 1000, m * 1000 }') $((ub - ua))" >>"$out"
}

# summarize OUT: "qpc_min qpc_max qpc_all avg sd p99 lost answered p50 user_us kernel_us" over
# the rounds in OUT (p99 and p50: the highest round's; user_us and kernel_us: the server's
# user-mode and kernel CPU per answered query, in microseconds).
summarize() {
  awk -v hz="$HZ" '{
      q = $3 > 0 ? $1 * hz / $3 : 0
      if (NR == 1 || q < mn) mn = q; if (q > mx) mx = q
      ans += $1; lost += $2; t += $3; avg += $4; sd += $5; if ($6 > p99) p99 = $6; if ($7 > p50) p50 = $7
      u += $8
    } END {
      printf "%d %d %d %.3f %.3f %.3f %d %d %.3f %.2f %.2f", mn, mx, (t > 0 ? ans * hz / t : 0), avg / NR, sd / NR, p99, lost, ans, p50,
        (ans > 0 ? u / hz * 1e6 / ans : 0), (ans > 0 ? (t - u) / hz * 1e6 / ans : 0)
    }' "$1"
}

knot_conf() { # knot_conf DIR PORT ZONE FILE
  mkdir -p "$1"
  cat >"$1/knot.conf" <<CONF
server:
    rundir: "$1"
    listen: 127.0.0.1@$2
    udp-workers: ${KNOT_WORKERS:-1}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$1"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$1"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: $3
    file: "$4"
CONF
}

# example_test_zone DIR QUERIES: the upstream's zone, example.test with 1000 A records
# host0..host999 (TTL 3600), in DIR/example.test.zone, and one query line per host in QUERIES.
example_test_zone() {
  mkdir -p "$1"
  {
    # shellcheck disable=SC2016
    echo '$TTL 3600'
    echo 'example.test. IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 3600'
    echo 'example.test. IN NS ns.example.test.'
    echo 'ns.example.test. IN A 192.0.2.1'
    for i in $(seq 0 999); do echo "host$i.example.test. IN A 198.51.$((i / 250)).$((i % 250 + 1))"; done
  } >"$1/example.test.zone"
  for i in $(seq 0 999); do echo "host$i.example.test A"; done >"$2"
}

# generated_cluster SERVICES SEED CACHE: the directory of the generated cluster, generated
# on first use.
generated_cluster() {
  local dir=$3/$1-s$2
  if [ ! -f "$dir/summary.txt" ]; then
    log "generating $1 Services (seed $2) into $dir"
    "$GEN" gen --services "$1" --seed "$2" --out "$dir.tmp" >/dev/null
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

nsd_conf() { # nsd_conf DIR PORT ZONE FILE: one server process, no rate limiting, no database
  mkdir -p "$1"
  cat >"$1/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$2
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$1"
    database: ""
    zonelistfile: "$1/zone.list"
    xfrdfile: "$1/xfrd.state"
    xfrdir: "$1"
    pidfile: "$1/nsd.pid"
    logfile: "$1/nsd.log"
    verbosity: 0
    minimal-responses: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: $3
    zonefile: "$4"
CONF
}

# --- load scripts (overload.sh, water-torture.sh) -------------------------------------------

# load_script_setup SCRIPT TOOL...: checks the tools and the 2 CPUs, builds the release
# binaries (unless NO_BUILD), makes WORK (kept with KEEP_WORK), copies the binaries there
# (GEN is clusterdns-bench) and sets the EXIT trap that kills every pid in `pids`.
load_script_setup() {
  local script=$1 c
  shift
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "$script: $c is missing" >&2; exit 2; }
  done
  [ "$(nproc)" -ge 2 ] || { echo "$script: needs 2 CPUs" >&2; exit 2; }
  [ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin clusterdns --bin clusterdns-bench >&2
  WORK=$(mktemp -d -t "clusterdns-${script%.sh}.XXXXXX")
  pids=()
  LOAD_SCRIPT=$script
  trap load_script_cleanup EXIT
  cp "${CARGO_TARGET_DIR:-target}/release/clusterdns" "${CARGO_TARGET_DIR:-target}/release/clusterdns-bench" "$WORK/"
  GEN=$WORK/clusterdns-bench
}

load_script_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "$LOAD_SCRIPT: kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# cpu_split CPU FILE_BEFORE FILE_AFTER: that CPU's time between two /proc/stat copies, in %:
# user, nice (e.g. niced fuzzers), system, softirq, idle, steal.
cpu_split() {
  awk -v c="cpu$1" '$1 == c { for (i = 2; i <= 9; i++) v[FNR == NR ? "a" i : "b" i] = $i; if (FNR != NR) {
      t = 0; for (i = 2; i <= 9; i++) t += v["b" i] - v["a" i]
      printf "user %.0f%%, nice %.0f%%, system %.0f%%, softirq %.0f%%, idle %.0f%%, steal %.0f%%",
        100 * (v["b2"] - v["a2"]) / t, 100 * (v["b3"] - v["a3"]) / t, 100 * (v["b4"] - v["a4"]) / t,
        100 * (v["b8"] - v["a8"]) / t, 100 * (v["b5"] - v["a5"]) / t, 100 * (v["b9"] - v["a9"]) / t } }' "$2" "$3"
}

# metric NAME: the sum of the series whose line starts with NAME on clusterdns's side port $SIDE.
metric() { curl -s "http://127.0.0.1:$SIDE/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

# udp FIELD: the machine's /proc/net/snmp Udp counter FIELD (RcvbufErrors, InErrors, ...).
udp() { awk -v f="$1" '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else for (i = 1; i <= NF; i++) if (k[i] == f) print $i }' /proc/net/snmp; }

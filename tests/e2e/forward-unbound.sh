#!/usr/bin/env bash
# End-to-end forwarding: a real resolver (unbound, answering only its local data, on
# loopback) behind the release binary. `dig` through clusterdns resolves external names,
# serves repeats from the cache, completes ExternalName CNAMEs, and survives the upstream
# going away and coming back. Nothing leaves 127.0.0.1: unbound's root is a static local
# zone, so it never recurses. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/e2e/lib/unbound.sh
. tests/e2e/lib/unbound.sh
BIN=${BIN:-target/release/clusterdns}
PORT=${PORT:-5354}
UPORT=${UPORT:-5355}
MPORT=${MPORT:-9354}
UNBOUND=${UNBOUND:-$(command -v unbound || echo /usr/sbin/unbound)}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

{
  unbound_conf "$work" 127.0.0.1 "$UPORT"
  echo '  local-data: "mail.example.test. 300 IN MX 10 mx.example.test."'
} >"$work/unbound.conf"

start_unbound() {
  "$UNBOUND" -d -c "$work/unbound.conf" >>"$work/unbound.out" 2>&1 &
  upid=$!
  pids+=("$upid")
  for _ in $(seq 1 50); do
    dig @127.0.0.1 -p "$UPORT" +time=1 +tries=1 +short www.example.test A >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "unbound did not start"; cat "$work/unbound.out" "$work/unbound.log" 2>/dev/null; exit 1
}
start_unbound

"$BIN" --manifests examples/cluster --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
  --upstream "127.0.0.1:$UPORT" --upstream-timeout 500ms --health-check-interval 200ms \
  >"$work/clusterdns.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short cluster.local SOA >/dev/null 2>&1 && break
  sleep 0.1
done

fail=0
ask() { dig @127.0.0.1 -p "$PORT" +time=2 +tries=1 "$@"; }
expect() { # expect "<what>" "<got>" "<want>"
  if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', want '$3'"; fail=1; else echo "ok   $1"; fi
}
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

expect "external A" "$(ask +short www.example.test A)" "192.0.2.80"
expect "external AAAA over TCP" "$(ask +tcp +short www.example.test AAAA)" "2001:db8::80"
expect "external MX" "$(ask +short mail.example.test MX)" "10 mx.example.test."
flags=$(ask www.example.test A | sed -n 's/.*flags: \([a-z ]*\);.*/\1/p')
expect "forwarded flags (no aa, ra)" "$flags" "qr rd ra"
expect "NXDOMAIN passed on" "$(ask nope.example.test A | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')" "NXDOMAIN"
expect "cluster names still authoritative" "$(ask +short web.shop.svc.cluster.local A)" "10.96.10.20"
expect "ExternalName completed" "$(ask +short payments.shop.svc.cluster.local A | paste -sd'|' -)" "payments.example.com.|192.0.2.20"

# Repeats come from the cache: the upstream saw one query for www A.
for _ in 1 2 3 4 5; do ask +short www.example.test A >/dev/null; done
# Five distinct questions went upstream (www A, www AAAA, mail MX, nope A, payments A),
# each once, whatever the repeats.
expect "upstream queries" "$(metric "clusterdns_forward_requests_total{to=\"127.0.0.1:$UPORT\"}")" "5"
hits=$(metric 'clusterdns_cache_hits_total{type="success"}')
[ "${hits%.*}" -ge 6 ] && echo "ok   cache hits: $hits" || { echo "FAIL cache hits: $hits"; fail=1; }

# The upstream goes away: cached names still answer, others fail fast with SERVFAIL.
kill "$upid"; wait "$upid" 2>/dev/null || true
expect "cached while the upstream is down" "$(ask +short www.example.test A)" "192.0.2.80"
expect "uncached while down" "$(ask mail.example.test AAAA | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')" "SERVFAIL"
ask mail.example.test TXT >/dev/null || true
expect "upstream marked down" "$(metric "clusterdns_forward_upstream_healthy{to=\"127.0.0.1:$UPORT\"}")" "0"
# ...and comes back: probed, marked up, used again.
start_unbound
for _ in $(seq 1 50); do
  [ "$(metric "clusterdns_forward_upstream_healthy{to=\"127.0.0.1:$UPORT\"}")" = "1" ] && break
  sleep 0.1
done
expect "upstream marked up again" "$(metric "clusterdns_forward_upstream_healthy{to=\"127.0.0.1:$UPORT\"}")" "1"
expect "resolves again after recovery" "$(ask +short mail.example.test MX)" "10 mx.example.test."
expect "new names after recovery" "$(ask +short www.example.test AAAA)" "2001:db8::80"

[ $fail -eq 0 ] || { echo "--- clusterdns log"; cat "$work/clusterdns.log"; }
exit $fail

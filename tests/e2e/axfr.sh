#!/usr/bin/env bash
# End-to-end: `dig axfr` transfers the example cluster zone from the release binary started
# with --transfer-to 127.0.0.1, SOA first and last, with the records queries answer; IXFR at
# the current serial is one SOA; a client outside --transfer-to is REFUSED. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/clusterdns}
PORT=${PORT:-5356}
"$BIN" --manifests examples/cluster --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 \
  --no-forward --transfer-to 127.0.0.1 >/tmp/clusterdns-axfr.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
up=0
for _ in $(seq 1 50); do
  if [ -n "$(dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short cluster.local SOA 2>/dev/null)" ]; then
    up=1
    break
  fi
  sleep 0.1
done
if [ "$up" != 1 ]; then
  echo "FAIL clusterdns did not answer on port $PORT; its log:"
  cat /tmp/clusterdns-axfr.log
  exit 1
fi

fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

xfr=$(dig @127.0.0.1 -p "$PORT" +time=5 +tries=1 +nocmd +nostats +noall +answer cluster.local AXFR)
first=$(echo "$xfr" | head -n 1 | awk '{print $4}')
last=$(echo "$xfr" | tail -n 1 | awk '{print $4}')
[ "$first" = SOA ] && [ "$last" = SOA ] && ok "AXFR starts and ends with the SOA" || bad "AXFR SOA first/last: $first/$last"
for want in \
  "kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1" \
  "web.shop.svc.cluster.local. 30 IN A 10.96.10.20" \
  "db-0.db.data.svc.cluster.local. 30 IN A 10.244.1.30" \
  "payments.shop.svc.cluster.local. 30 IN CNAME payments.example.com." \
  "_http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."; do
  if echo "$xfr" | sed 's/[[:space:]]\+/ /g' | grep -qxF "$want"; then ok "AXFR holds $want"; else
    bad "AXFR lacks $want"
    # What the transfer held under that Service's namespace, and the server's log.
    echo "$xfr" | grep -F ".data.svc." || echo "(no data.svc records: $(echo "$xfr" | grep -c .) records in all)"
    cat /tmp/clusterdns-axfr.log
  fi
done
# Every A record the transfer holds answers the same to a query.
while read -r name _ _ _ addr; do
  got=$(dig @127.0.0.1 -p "$PORT" +time=2 +tries=1 +short "$name" A | grep -cxF "$addr" || true)
  [ "$got" = 1 ] || bad "query $name A does not answer $addr"
done < <(echo "$xfr" | awk '$4 == "A"' | head -n 20)
ok "the transfer's A records answer as queries do"

serial=$(dig @127.0.0.1 -p "$PORT" +short cluster.local SOA | awk '{print $3}')
ixfr=$(dig @127.0.0.1 -p "$PORT" +time=5 +tries=1 +noall +answer cluster.local "IXFR=$serial" | grep -c . || true)
[ "$ixfr" = 1 ] && ok "IXFR at the current serial is one SOA" || bad "IXFR=$serial gave $ixfr records"

# 127.0.0.2 is loopback too, but outside --transfer-to: the transfer fails there while the
# same transfer from 127.0.0.1 still succeeds.
refused=$(dig @127.0.0.1 -p "$PORT" -b 127.0.0.2 +time=5 +tries=1 cluster.local AXFR | grep -c "Transfer failed" || true)
again=$(dig @127.0.0.1 -p "$PORT" +time=5 +tries=1 +noall +answer cluster.local AXFR | grep -c . || true)
[ "$refused" -ge 1 ] && [ "$again" = "$(echo "$xfr" | grep -c .)" ] && ok "AXFR from 127.0.0.2 refused, from 127.0.0.1 whole" \
  || bad "AXFR from 127.0.0.2: $refused failures; from 127.0.0.1 again: $again records"
exit $fail

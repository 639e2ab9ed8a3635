#!/usr/bin/env bash
# End-to-end: the release binary serves examples/cluster on 127.0.0.1:5353 and `dig` (UDP and
# TCP) gets the answers the README promises. Loopback only; exits non-zero on any mismatch.
# The server runs as examples/cluster/EXPECTED.md says; every row of that page's tables is
# asked by tests/it/expected.rs, this script checks a sample of them with dig itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/clusterdns}
PORT=${PORT:-5353}
"$BIN" --manifests examples/cluster --listen "127.0.0.1:$PORT" --metrics-listen 127.0.0.1:0 --no-forward \
  --reverse-cidr 10.96.0.0/12 --reverse-cidr 10.244.0.0/16 >/tmp/clusterdns-e2e.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short cluster.local SOA >/dev/null 2>&1 && break
  sleep 0.1
done

fail=0
check() { # check "<dig args>" "<expected +short output, lines sorted, joined by |>"
  local args=$1 want=$2 got
  for transport in +notcp +tcp; do
    got=$(dig @127.0.0.1 -p "$PORT" +time=2 +tries=1 $transport +short $args | sort | paste -sd'|' -)
    if [ "$got" != "$want" ]; then
      echo "FAIL dig $transport $args: got '$got', want '$want'"; fail=1
    else
      echo "ok   dig $transport $args"
    fi
  done
}
status() { # status "<dig args>" <RCODE>
  local got
  got=$(dig @127.0.0.1 -p "$PORT" +time=2 +tries=1 $1 | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
  if [ "$got" != "$2" ]; then echo "FAIL dig $1: status $got, want $2"; fail=1; else echo "ok   dig $1 -> $2"; fi
}

check "kubernetes.default.svc.cluster.local A" "10.96.0.1"
check "web.shop.svc.cluster.local A" "10.96.10.20"
check "api.shop.svc.cluster.local AAAA" "fd00:10:96::30"
check "_http._tcp.web.shop.svc.cluster.local SRV" "0 100 80 web.shop.svc.cluster.local."
check "db.data.svc.cluster.local A" "10.244.1.30|10.244.2.31"
check "db-0.db.data.svc.cluster.local A" "10.244.1.30"
check "_postgres._tcp.db.data.svc.cluster.local SRV" "0 50 5432 db-0.db.data.svc.cluster.local.|0 50 5432 db-1.db.data.svc.cluster.local."
check "cache-1.cache.data.svc.cluster.local A" "10.244.2.41"
check "search.shop.svc.cluster.local A" "10.96.10.50"
check "queue.data.svc.cluster.local A" "10.244.1.60"
check "payments.shop.svc.cluster.local CNAME" "payments.example.com."
check "edge.shop.svc.cluster.local A" "10.96.10.80"
check "lb.shop.svc.cluster.local A" "10.96.10.90"
check "grafana.default.svc.cluster.local A" "10.96.20.10"
check "-x 10.96.0.10" "kube-dns.kube-system.svc.cluster.local."
check "-x fd00:10:96::30" "api.shop.svc.cluster.local."
check "-x 10.244.2.31" "db-1.db.data.svc.cluster.local."
check "10-244-1-7.shop.pod.cluster.local A" "10.244.1.7"
check "dns-version.cluster.local TXT" '"1.1.0"'
check "cluster.local NS" "ns.dns.cluster.local."
status "empty.data.svc.cluster.local A" NXDOMAIN
status "nope.shop.svc.cluster.local A" NXDOMAIN
status "web.shop.svc.cluster.local AAAA" NOERROR
status "example.com A" REFUSED
status "-x 10.244.3.32" NXDOMAIN
exit $fail

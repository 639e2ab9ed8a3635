#!/usr/bin/env bash
# End-to-end: the resolvers pods really use, against the release binary. Inside a network
# namespace of its own, clusterdns serves a copy of examples/cluster plus two large headless
# Services (100 IPv4 endpoints, 20 IPv6 endpoints) on 10.96.0.10:53, the kube-dns ClusterIP
# on the namespace's loopback, and forwards to unbound on 127.0.0.2:5300 (a static local
# zone, no recursion). /etc/netns/NS/resolv.conf is a pod's resolv.conf (search
# shop.svc.cluster.local svc.cluster.local cluster.local, ndots:5), which `ip netns exec`
# binds over /etc/resolv.conf. Then glibc (getent), musl (a static musl-gcc program: getaddrinfo,
# res_query + ns_initparse), Go's pure resolver, kdig, dig and dnspython resolve the cluster. The
# oversized answers to UDP queries without EDNS must come back truncated (TC) and well formed:
# no bytes after the last record the header counts. Nothing leaves the namespace.
# Installs what it needs with apt-get (and dnspython with pip); Go and dnspython are skipped
# with a SKIP line when they cannot be had. Root only. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/e2e/lib/unbound.sh
. tests/e2e/lib/unbound.sh
BIN=$(realpath "${BIN:-target/release/clusterdns}")
DNS=10.96.0.10
NS=clusterdns-clients-$$
UPSTREAM=127.0.0.2:5300
BIG=100  # IPv4 endpoints of shop/big: 100 A records are 1,600+ bytes
BIG6=20  # IPv6 endpoints of shop/big6: 20 AAAA records are 560+ bytes
MANY=40  # A records of many.example.test (unbound): 40 records are 640+ bytes

[ "$(id -u)" = 0 ] || { echo "FAIL clients.sh needs root (ip netns, apt-get)"; exit 1; }
[ -x "$BIN" ] || { echo "FAIL no $BIN: cargo build --release --bin clusterdns first"; exit 1; }

# --- Tools: install what is missing, with one apt-get update.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have musl-gcc || missing+=(musl-tools)
have kdig || missing+=(knot-dnsutils)
have ip || missing+=(iproute2)
have unbound || missing+=(unbound)
have dig || missing+=(dnsutils)
have getent || missing+=(libc-bin)
go_missing=0
have go || go_missing=1
if [ ${#missing[@]} -gt 0 ] || [ $go_missing = 1 ]; then
  apt_log=$(mktemp)
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ] && ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
    echo "FAIL apt-get install ${missing[*]}:"
    tail -n 20 "$apt_log"
    exit 1
  fi
  if [ $go_missing = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >"$apt_log" 2>&1 || true
  fi
  rm -f "$apt_log"
fi
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
if ! python3 -c 'import dns.message' >/dev/null 2>&1; then
  timeout 120 python3 -m pip install -q --disable-pip-version-check dnspython >/dev/null 2>&1 || true
fi

work=$(mktemp -d)
pids=()
netns_dir_made=0
[ -d /etc/netns ] || netns_dir_made=1
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/etc/netns/$NS" "$work"
  if [ $netns_dir_made = 1 ]; then rmdir /etc/netns 2>/dev/null || true; fi
}
trap cleanup EXIT

pass=0 fail=0 skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skipped() { echo "SKIP $1"; skip=$((skip + 1)); }
nsx() { timeout 10 ip netns exec "$NS" "$@"; }
sorted() { sort | paste -sd'|' -; }
expect() { # expect "<what>" "<got>" "<want>"
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}

# --- The served cluster: a copy of examples/cluster and the large headless Services.
cp -r examples/cluster "$work/cluster"
big_ips=$(for i in $(seq 0 $((BIG - 1))); do echo "10.244.50.$i"; done | sorted)
big6_ips=$(for i in $(seq 1 "$BIG6"); do printf 'fd00:10:244:50::%x\n' "$i"; done | sorted)
big_srv=$(for i in $(seq 0 $((BIG - 1))); do echo "0 1 80 h$i.big.shop.svc.cluster.local."; done | sorted)
# headless NAME FAMILY: a headless Service in shop with one named port (http, 80) and an
# EndpointSlice of that family whose endpoints come from standard input, one
# "ADDRESS HOSTNAME" a line, all ready.
headless() {
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: shop
spec:
  type: ClusterIP
  clusterIP: None
  clusterIPs:
    - None
  ipFamilies:
    - $2
  selector:
    app: $1
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $1-1
  namespace: shop
  labels:
    kubernetes.io/service-name: $1
    service.kubernetes.io/headless: ""
addressType: $2
endpoints:
YAML
  while read -r addr host; do
    printf '  - addresses:\n      - %s\n    hostname: %s\n    conditions:\n      ready: true\n' "$addr" "$host"
  done
  cat <<'YAML'
ports:
  - name: http
    protocol: TCP
    port: 80
YAML
}
{
  echo "# Generated by tests/e2e/clients.sh: headless Services whose answers exceed 512 bytes."
  for i in $(seq 0 $((BIG - 1))); do echo "10.244.50.$i h$i"; done | headless big IPv4
  for i in $(seq 1 "$BIG6"); do printf 'fd00:10:244:50::%x v%d\n' "$i" "$i"; done | headless big6 IPv6
} >"$work/cluster/shop/zz-big.yaml"

# --- The upstream: unbound, authoritative for example.test and example.com only.
many_ips=$(for i in $(seq 1 "$MANY"); do echo "192.0.2.$i"; done | sorted)
{
  unbound_conf "$work" "${UPSTREAM%:*}" "${UPSTREAM#*:}"
  for i in $(seq 1 "$MANY"); do echo "  local-data: \"many.example.test. 300 IN A 192.0.2.$i\""; done
} >"$work/unbound.conf"

# --- The pod: a network namespace, the DNS ClusterIP on its loopback, a pod's resolv.conf.
mkdir -p "/etc/netns/$NS"
cat >"/etc/netns/$NS/resolv.conf" <<EOF
nameserver $DNS
search shop.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
EOF
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$DNS/32" dev lo
# An IPv6 address other than ::1, so glibc's getaddrinfo (AI_ADDRCONFIG) asks for AAAA too.
ip -n "$NS" addr add fd00:10:96::a/128 dev lo nodad

ip netns exec "$NS" "$UNBOUND" -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
pids+=($!)
ip netns exec "$NS" "$BIN" --manifests "$work/cluster" --listen "$DNS:53" \
  --metrics-listen 127.0.0.1:9153 --upstream "$UPSTREAM" >"$work/clusterdns.log" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 100); do
  if [ -n "$(nsx dig @"${UPSTREAM%:*}" -p "${UPSTREAM#*:}" +time=1 +tries=1 +short www.example.test A 2>/dev/null)" ] &&
    [ -n "$(nsx dig @$DNS +time=1 +tries=1 +short cluster.local SOA 2>/dev/null)" ]; then
    up=1
    break
  fi
  sleep 0.1
done
if [ $up != 1 ]; then
  echo "FAIL clusterdns or unbound did not answer in namespace $NS"
  cat "$work/clusterdns.log" "$work/unbound.out" "$work/unbound.log" 2>/dev/null || true
  exit 1
fi
# The served data, asked over TCP, before any client: the big Services are all there.
expect "setup: dig +tcp big.shop A has $BIG records" \
  "$(nsx dig @$DNS +tcp +time=2 +tries=1 +short big.shop.svc.cluster.local A | sorted)" "$big_ips"
expect "setup: dig +tcp big6.shop AAAA has $BIG6 records" \
  "$(nsx dig @$DNS +tcp +time=2 +tries=1 +short big6.shop.svc.cluster.local AAAA | sorted)" "$big6_ips"
expect "setup: dig +tcp many.example.test A (forwarded) has $MANY records" \
  "$(nsx dig @$DNS +tcp +time=2 +tries=1 +short many.example.test A | sorted)" "$many_ips"

# --- 1. glibc: getent, through nsswitch (files dns) and the pod's resolv.conf.
ahosts() { nsx getent ahosts "$1" | awk '{ print $1 }' | sort -u | paste -sd'|' -; }
expect "glibc getent ahosts web (short name, search list)" "$(ahosts web)" "10.96.10.20"
expect "glibc getent ahosts web.shop.svc.cluster.local" "$(ahosts web.shop.svc.cluster.local)" "10.96.10.20"
expect "glibc getent ahosts db.data (headless)" "$(ahosts db.data)" "10.244.1.30|10.244.2.31"
expect "glibc getent ahosts db-0.db.data (endpoint hostname)" "$(ahosts db-0.db.data)" "10.244.1.30"
expect "glibc getent ahosts big (100 endpoints, TCP after TC)" "$(ahosts big)" "$big_ips"
expect "glibc getent ahosts big6 (20 IPv6 endpoints)" "$(ahosts big6.shop.svc.cluster.local)" "$big6_ips"
expect "glibc getent ahosts www.example.test (forwarded to unbound)" "$(ahosts www.example.test)" "192.0.2.80|2001:db8::80"
expect "glibc getent ahosts many.example.test (forwarded, $MANY A)" "$(ahosts many.example.test)" "$many_ips"
expect "glibc getent ahosts payments (ExternalName, CNAME completed)" "$(ahosts payments)" "192.0.2.20"
expect "glibc getent hosts 10.96.0.10 (PTR)" "$(nsx getent hosts 10.96.0.10 | awk '{ print $2 }')" \
  "kube-dns.kube-system.svc.cluster.local"
expect "glibc getent hosts 10.244.50.7 (headless endpoint PTR)" \
  "$(nsx getent hosts 10.244.50.7 | awk '{ print $2 }')" "h7.big.shop.svc.cluster.local"
got=$(nsx getent ahosts nope.shop.svc.cluster.local && echo found || echo "exit $?")
expect "glibc getent ahosts nope.shop (NXDOMAIN)" "$got" "exit 2"

# --- 2. musl: getaddrinfo, and res_query + ns_initparse (musl sends no EDNS).
musl_ver=$(dpkg-query -W -f='${Version}' musl 2>/dev/null || echo unknown)
probe="$work/musl-probe"
if musl-gcc -static -O2 -Wall -o "$probe" tests/e2e/clients/musl-probe.c 2>"$work/musl-gcc.out"; then
  gai() { nsx "$probe" gai "$1" | sed -n 's/^addr //p' | sort -u | paste -sd'|' -; }
  expect "musl getaddrinfo web (short name, search list)" "$(gai web)" "10.96.10.20"
  expect "musl getaddrinfo db.data (headless)" "$(gai db.data)" "10.244.1.30|10.244.2.31"
  expect "musl getaddrinfo www.example.test (forwarded)" "$(gai www.example.test)" "192.0.2.80|2001:db8::80"
  expect "musl getaddrinfo payments (ExternalName)" "$(gai payments)" "192.0.2.20"
  # musl before 1.2.4 has no TCP fallback: it takes the records of the truncated reply.
  for name in big big6.shop.svc.cluster.local; do
    got=$(gai "$name" || true)
    want=$big_ips
    [ "$name" = big ] || want=$big6_ips
    extra=$(comm -23 <(tr '|' '\n' <<<"$got" | sort) <(tr '|' '\n' <<<"$want" | sort) | paste -sd' ' -)
    if [ -n "$got" ] && [ -z "$extra" ]; then
      ok "musl getaddrinfo $name: $(tr '|' '\n' <<<"$got" | wc -l) of its endpoints (musl $musl_ver)"
    else
      bad "musl getaddrinfo $name: got '$got' (not endpoints: '$extra')"
    fi
  done
  mquery() { # mquery NAME TYPE WANT_TC: res_query's reply parses; its counts are what it holds
    local line an=0 ns=0 ar=0 parsed tc
    line=$(nsx "$probe" query "$1" "$2" 2>&1 || true)
    tc=$(sed -n 's/.* tc=\([01]\) .*/\1/p' <<<"$line")
    IFS=/ read -r _ an ns ar < <(sed -n 's/.* counts=\([0-9/]*\) .*/\1/p' <<<"$line") || true
    parsed=$(sed -n 's/.* parsed=\([0-9]*\).*/\1/p' <<<"$line")
    if [[ "$line" != *"ns_initparse=ok parsed="* ]]; then
      bad "musl res_query+ns_initparse $1 $2: $line"
    elif [ "$tc" != "$3" ]; then
      bad "musl res_query $1 $2: tc=$tc, want tc=$3: $line"
    elif [ "$parsed" != $((an + ns + ar)) ] || [ "$an" -lt 1 ]; then
      bad "musl res_query $1 $2: header counts vs records: $line"
    else
      ok "musl res_query+ns_initparse $1 $2 (tc=$tc, $an answers)"
    fi
  }
  mquery web.shop.svc.cluster.local A 0
  mquery 10.0.96.10.in-addr.arpa PTR 0
  # musl 1.2.4 and later retry a truncated reply over TCP; 1.2.3 keeps the truncated one.
  want_tc=1
  if dpkg --compare-versions "$musl_ver" ge 1.2.4 2>/dev/null; then want_tc=0; fi
  mquery big.shop.svc.cluster.local A $want_tc
  mquery big6.shop.svc.cluster.local AAAA $want_tc
  mquery _http._tcp.big.shop.svc.cluster.local SRV $want_tc
  mquery many.example.test A $want_tc
else
  bad "musl-gcc could not build tests/e2e/clients/musl-probe.c: $(cat "$work/musl-gcc.out")"
fi

# --- 3. Go's pure resolver (net.Resolver{PreferGo: true}), CGO_ENABLED=0.
if have go; then
  gobin="$work/goresolve"
  if (cd tests/e2e/clients/goresolve &&
    GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off CGO_ENABLED=0 GOCACHE="$work/gocache" \
      GOPATH="$work/gopath" GOTOOLCHAIN=local timeout 240 go build -o "$gobin" .) >"$work/go.out" 2>&1; then
    gor() { nsx "$gobin" "$@" | sorted; }
    expect "go LookupHost web (short name, search list)" "$(gor host web)" "10.96.10.20"
    expect "go LookupSRV https tcp web.shop" "$(gor srv https tcp web.shop.svc.cluster.local)" \
      "0 100 443 web.shop.svc.cluster.local."
    expect "go LookupSRV postgres tcp db.data (headless)" "$(gor srv postgres tcp db.data.svc.cluster.local)" \
      "0 50 5432 db-0.db.data.svc.cluster.local.|0 50 5432 db-1.db.data.svc.cluster.local."
    expect "go LookupAddr 10.96.0.10" "$(gor addr 10.96.0.10)" "kube-dns.kube-system.svc.cluster.local."
    expect "go LookupHost big (100 endpoints)" "$(gor host big)" "$big_ips"
    expect "go LookupHost big6.shop.svc.cluster.local (20 IPv6 endpoints)" \
      "$(gor host big6.shop.svc.cluster.local)" "$big6_ips"
    expect "go LookupSRV http tcp big.shop (100 targets)" "$(gor srv http tcp big.shop.svc.cluster.local)" "$big_srv"
    expect "go LookupHost www.example.test (forwarded)" "$(gor host www.example.test)" "192.0.2.80|2001:db8::80"
    expect "go LookupHost many.example.test (forwarded, $MANY A)" "$(gor host many.example.test)" "$many_ips"
  else
    bad "go build tests/e2e/clients/goresolve: $(tail -n 5 "$work/go.out")"
  fi
else
  skipped "Go resolver: golang-go is not installed and did not install"
fi

# --- 4. kdig (strict: bytes after the last record make a "malformed reply packet (trailing
# data)") and BIND's dig ("Message has N extra bytes at end"): flags, and header counts
# against the records printed.
rrs() { # the records printed: the record lines, and the OPT record as its pseudosection
  local n
  n=$(grep -cE '^[^;[:space:]][^[:space:]]*[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]' <<<"$1" || true)
  if grep -qE '^;; (EDNS|OPT) PSEUDOSECTION:' <<<"$1"; then n=$((n + 1)); fi
  echo "$n"
}
wcheck() { # wcheck kdig|dig "<options>" NAME TYPE WANT_TC [WANT_ANSWERS]
  local out flags counts an au ad printed what="$1 $2 $3 $4" retry=+retry=0
  [ "$1" = kdig ] || retry=+tries=1
  # shellcheck disable=SC2086 # $2 is a list of options
  out=$(nsx "$1" @$DNS +time=2 $retry $2 "$3" "$4" 2>&1 || true)
  flags=$(sed -n 's/^;; [Ff]lags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -n 1)
  counts=$(sed -n 's/^;; [Ff]lags: .*; QUERY: [0-9]*[;,] ANSWER: \([0-9]*\)[;,] AUTHORITY: \([0-9]*\)[;,] ADDITIONAL: \([0-9]*\).*/\1 \2 \3/p' <<<"$out" | head -n 1)
  printed=$(rrs "$out")
  if grep -qiE 'malformed|trailing|extra bytes' <<<"$out"; then
    bad "$what: $(grep -iE 'malformed|trailing|extra bytes' <<<"$out" | head -n 2 | paste -sd' ' -)"
    return
  fi
  if [ -z "$counts" ]; then
    bad "$what: no reply header: $(head -c 300 <<<"$out" | paste -sd' ' -)"
    return
  fi
  read -r an au ad <<<"$counts"
  if [ "$5" = 1 ] && [[ " $flags " != *" tc "* ]]; then
    bad "$what: flags '$flags' lack tc"
  elif [ "$5" = 0 ] && [[ " $flags " == *" tc "* ]]; then
    bad "$what: flags '$flags' have tc"
  elif [ "$printed" != $((an + au + ad)) ]; then
    bad "$what: header counts $an+$au+$ad, records printed $printed"
  elif [ -n "${6:-}" ] && [ "$an" != "$6" ]; then
    bad "$what: ANSWER $an, want $6"
  else
    ok "$what (flags '$flags', $an+$au+$ad records)"
  fi
}
wcheck kdig "+noedns +ignore" web.shop.svc.cluster.local A 0 1
wcheck kdig "+noedns +ignore" big.shop.svc.cluster.local A 1
wcheck kdig "+noedns +ignore" big6.shop.svc.cluster.local AAAA 1
wcheck kdig "+noedns +ignore" _http._tcp.big.shop.svc.cluster.local SRV 1
wcheck kdig "+noedns +ignore" many.example.test A 1
wcheck kdig "+bufsize=1232 +ignore" big.shop.svc.cluster.local A 1
wcheck kdig "+tcp" big.shop.svc.cluster.local A 0 "$BIG"
wcheck kdig "+tcp" big6.shop.svc.cluster.local AAAA 0 "$BIG6"
wcheck kdig "+tcp" _http._tcp.big.shop.svc.cluster.local SRV 0 "$BIG"
wcheck kdig "+tcp" many.example.test A 0 "$MANY"
# Without +ignore a truncated reply is retried over TCP by the client itself.
wcheck kdig "+noedns" big.shop.svc.cluster.local A 0 "$BIG"
wcheck dig "+noedns +ignore" big.shop.svc.cluster.local A 1
wcheck dig "+noedns +ignore" many.example.test A 1
wcheck dig "+noedns" big6.shop.svc.cluster.local AAAA 0 "$BIG6"

# --- 5. dnspython: dns.message.from_wire of a raw UDP reply without EDNS (TrailingJunk).
if python3 -c 'import dns.message' >/dev/null 2>&1; then
  pcheck() { # pcheck NAME TYPE WANT_TC
    local out
    out=$(nsx python3 tests/e2e/clients/dnspython-probe.py $DNS "$1" "$2" 2>&1 || true)
    if [[ "$out" == *" ok" ]] && [[ "$out" == *" tc=$3 "* ]]; then
      ok "dnspython from_wire $1 $2 ($out)"
    else
      bad "dnspython from_wire $1 $2: $(tail -n 1 <<<"$out") (want tc=$3 and no exception)"
    fi
  }
  pcheck web.shop.svc.cluster.local A 0
  pcheck big.shop.svc.cluster.local A 1
  pcheck big6.shop.svc.cluster.local AAAA 1
  pcheck _http._tcp.big.shop.svc.cluster.local SRV 1
  pcheck many.example.test A 1
else
  skipped "dnspython: not importable and pip could not install it"
fi

if [ $fail -gt 0 ]; then
  echo "--- clusterdns log (last 20 lines)"
  tail -n 20 "$work/clusterdns.log"
fi
if [ $skip -gt 0 ]; then
  echo "clients: $pass passed, $fail failed, $skip skipped"
else
  echo "clients: $pass passed, $fail failed"
fi
[ $fail -eq 0 ]

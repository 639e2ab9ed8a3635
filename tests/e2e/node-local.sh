#!/usr/bin/env bash
# End-to-end: two tiers, as a node runs them. Inside a network namespace of its own:
# - unbound on 127.0.0.2:5300, the node's resolver (static local zones, no recursion);
# - the central clusterdns on 127.0.0.3:53 serving a copy of examples/cluster, forwarding
#   outside names to unbound;
# - the node-local clusterdns (--mode node-local) on 169.254.20.10:53 and the kube-dns
#   ClusterIP 10.96.0.10:53, which --setup-interface puts on an interface of its own
#   (nodelocaldns) with NOTRACK rules; cluster names go to the central over TCP, others to
#   unbound.
# A pod's resolv.conf (nameserver 169.254.20.10, search list, ndots:5) is bound over
# /etc/resolv.conf by `ip netns exec`; glibc (getent) and dig resolve through the node tier.
# Then the central is stopped: known names keep answering (stale), unknown ones SERVFAIL at
# once; the central comes back with a Service moved: the node tier answers the new address.
# At the node tier's exit the interface and its rules are gone. Nothing leaves the namespace.
# Root only; installs what it needs with apt-get. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/e2e/lib/unbound.sh
. tests/e2e/lib/unbound.sh
BIN=$(realpath "${BIN:-target/release/clusterdns}")
NS=clusterdns-node-$$
LOCAL=169.254.20.10
KUBE_DNS=10.96.0.10
CENTRAL=127.0.0.3
UPSTREAM=127.0.0.2:5300
IFACE=nodelocaldns

[ "$(id -u)" = 0 ] || { echo "FAIL node-local.sh needs root (ip netns, nft)"; exit 1; }
[ -x "$BIN" ] || { echo "FAIL no $BIN: cargo build --release --bin clusterdns first"; exit 1; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have ip || missing+=(iproute2)
have unbound || missing+=(unbound)
have dig || missing+=(dnsutils)
have nft || missing+=(nftables)
have getent || missing+=(libc-bin)
have curl || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)

work=$(mktemp -d)
central_pid='' node_pid='' unbound_pid=''
netns_dir_made=0
[ -d /etc/netns ] || netns_dir_made=1
cleanup() {
  for p in $node_pid $central_pid $unbound_pid; do kill "$p" 2>/dev/null || true; done
  for p in $node_pid $central_pid $unbound_pid; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/etc/netns/$NS" "$work"
  if [ $netns_dir_made = 1 ]; then rmdir /etc/netns 2>/dev/null || true; fi
}
trap cleanup EXIT

pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
nsx() { timeout 10 ip netns exec "$NS" "$@"; }
expect() { # expect "<what>" "<got>" "<want>"
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
# wait_for "<what>" <command...>: retries the command every 0.1 s for up to 15 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  bad "$what"
  return 1
}
metric_sum() { # metric_sum URL FAMILY LABEL: the sum of the family's samples carrying LABEL
  nsx curl -fsS "$1" | awk -v f="$2" -v l="$3" 'index($0, f) == 1 && index($0, l) { s += $NF } END { print s + 0 }'
}
digs() { nsx dig "@$LOCAL" +time=2 +tries=1 +short "$@" | sort | paste -sd'|' -; }
rcode() { nsx dig "@$LOCAL" +time=2 +tries=1 "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

cp -r examples/cluster "$work/cluster"
unbound_conf "$work" "${UPSTREAM%:*}" "${UPSTREAM#*:}" >"$work/unbound.conf"

mkdir -p "/etc/netns/$NS"
cat >"/etc/netns/$NS/resolv.conf" <<EOF
nameserver $LOCAL
search shop.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
EOF
ip netns add "$NS"
ip -n "$NS" link set lo up

ip netns exec "$NS" "$UNBOUND" -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
unbound_pid=$!
start_central() {
  ip netns exec "$NS" "$BIN" --manifests "$work/cluster" --manifests-poll 200ms \
    --listen "$CENTRAL:53" --metrics-listen "$CENTRAL:9153" --upstream "$UPSTREAM" \
    --lameduck 0s >>"$work/central.log" 2>&1 &
  central_pid=$!
}
start_central
ip netns exec "$NS" "$BIN" --mode node-local --listen "$LOCAL:53" --listen "$KUBE_DNS:53" \
  --setup-interface "$IFACE" --cluster-dns "$CENTRAL" --upstream "$UPSTREAM" \
  --metrics-listen 127.0.0.1:9253 --cluster-cache-ttl 2s --health-check-interval 200ms \
  --lameduck 0s >"$work/node.log" 2>&1 &
node_pid=$!
if ! wait_for "the node tier ready (/readyz) within 15 s" nsx curl -fsS http://127.0.0.1:9253/readyz; then
  cat "$work/node.log" "$work/central.log"
  exit 1
fi
ok "the node tier is ready: listening and the central reached"

# --- The interface and the NOTRACK rules.
addrs=$(nsx ip -4 -o addr show dev "$IFACE" | awk '{ print $4 }' | sort | paste -sd'|' -)
expect "interface $IFACE holds the listen addresses" "$addrs" "$KUBE_DNS/32|$LOCAL/32"
kind=$(grep -m1 'interface created' "$work/node.log" | grep -o 'kind="\{0,1\}[a-z]*' | tr -d '"' | cut -d= -f2 || true)
if [ -n "$kind" ]; then ok "the log says which interface kind was made: $kind"; else bad "the log does not say the interface kind"; fi
ruleset=$(nsx nft list ruleset)
for a in "$LOCAL" "$KUBE_DNS"; do
  for p in udp tcp; do
    if grep -q "ip daddr $a $p dport 53 notrack" <<<"$ruleset" && grep -q "ip saddr $a $p sport 53 notrack" <<<"$ruleset"; then
      ok "nft: NOTRACK for $p to and from $a:53"
    else
      bad "nft: no NOTRACK for $p to and from $a:53 in: $ruleset"
    fi
  done
done

# --- Pods resolve through the node tier.
ahosts() { nsx getent ahosts "$1" | awk '{ print $1 }' | sort -u | paste -sd'|' -; }
expect "glibc getent ahosts web (short name, search list)" "$(ahosts web)" "10.96.10.20"
expect "glibc getent ahosts db.data (headless)" "$(ahosts db.data)" "10.244.1.30|10.244.2.31"
expect "glibc getent ahosts www.example.test (the node's resolver)" "$(ahosts www.example.test)" "192.0.2.80|2001:db8::80"
expect "glibc getent hosts 10.96.0.10 (PTR from the central)" \
  "$(nsx getent hosts 10.96.0.10 | awk '{ print $2 }')" "kube-dns.kube-system.svc.cluster.local"
expect "dig @$LOCAL _https._tcp.kubernetes.default SRV" \
  "$(digs _https._tcp.kubernetes.default.svc.cluster.local SRV)" "0 100 443 kubernetes.default.svc.cluster.local."
expect "dig @$KUBE_DNS (the ClusterIP on the interface) web.shop" \
  "$(nsx dig @$KUBE_DNS +time=2 +tries=1 +short web.shop.svc.cluster.local A)" "10.96.10.20"
expect "dig nope.shop: NXDOMAIN from the central" "$(rcode nope.shop.svc.cluster.local A)" "NXDOMAIN"
ttl=$(nsx dig "@$LOCAL" +time=2 +tries=1 +noall +answer web.shop.svc.cluster.local A | awk '{ print $2 }')
if [ -n "$ttl" ] && [ "$ttl" -le 2 ]; then ok "cluster answers kept at most --cluster-cache-ttl (TTL $ttl)"; else bad "TTL '$ttl' over 2"; fi

central_metrics="http://$CENTRAL:9153/metrics"
udp=$(metric_sum "$central_metrics" clusterdns_dns_requests_total 'proto="udp"')
tcp=$(metric_sum "$central_metrics" clusterdns_dns_requests_total 'proto="tcp"')
expect "the central saw no UDP query" "$udp" "0"
if [ "$tcp" -ge 5 ]; then ok "the central saw $tcp TCP queries"; else bad "the central saw $tcp TCP queries"; fi
opened=$(metric_sum http://127.0.0.1:9253/metrics clusterdns_forward_connections_opened_total "to=\"tcp://$CENTRAL:53\"")
if [ "$opened" -ge 1 ] && [ "$opened" -le 4 ]; then
  ok "the node tier opened $opened TCP connection(s) to the central"
else
  bad "the node tier opened $opened TCP connections to the central"
fi

# --- The central goes away: known names are served stale, unknown ones fail at once.
kill "$central_pid"
wait "$central_pid" 2>/dev/null || true
central_pid=''
sleep 3 # past the 2 s lifetime of every cached cluster answer
expect "central down: dig web.shop still answers (stale)" "$(digs web.shop.svc.cluster.local A)" "10.96.10.20"
stale_ttl=$(nsx dig "@$LOCAL" +time=2 +tries=1 +noall +answer web.shop.svc.cluster.local A | awk '{ print $2 }')
expect "central down: the stale answer's TTL" "$stale_ttl" "30"
expect "central down: glibc getent ahosts web (stale)" "$(ahosts web)" "10.96.10.20"
reply=$(nsx dig "@$LOCAL" +time=2 +tries=1 api.shop.svc.cluster.local A || true)
got=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$reply")
took=$(sed -n 's/.*Query time: \([0-9]*\) msec.*/\1/p' <<<"$reply")
expect "central down: a name never asked answers SERVFAIL within dig's 2 s (took ${took:-?} ms)" "$got" "SERVFAIL"
expect "central down: outside names still resolve" "$(digs www.example.test A)" "192.0.2.80"

# --- The central comes back with web moved.
sed -i 's/10\.96\.10\.20/10.96.10.21/' "$work/cluster/shop/web.yaml"
start_central
fresh() { [ "$(digs web.shop.svc.cluster.local A)" = "10.96.10.21" ]; }
if wait_for "central back: the node tier answers the moved address" fresh; then
  ok "central back: the node tier answers the moved address (10.96.10.21)"
fi
expect "central back: api.shop answers" "$(digs api.shop.svc.cluster.local A)" "10.96.10.30"

# --- At exit, the interface and the rules go.
kill "$node_pid"
wait "$node_pid" 2>/dev/null || true
node_pid=''
if nsx ip link show "$IFACE" >/dev/null 2>&1; then bad "interface $IFACE left after exit"; else ok "interface $IFACE removed at exit"; fi
if nsx nft list ruleset | grep -q notrack; then bad "NOTRACK rules left after exit"; else ok "NOTRACK rules removed at exit"; fi

echo "node-local.sh: $pass passed, $fail failed"
[ "$fail" = 0 ]

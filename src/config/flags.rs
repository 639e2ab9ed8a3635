//! The flags: `Config`, the clap definition of every command-line flag (each also a key of
//! the `--config` file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{ArgAction, Parser};

use super::file::Loaded;
use super::mode::Mode;
use super::parse::{
    ExternalKinds, StubDomain, parse_duration, parse_external_resources, parse_network, parse_rate,
    parse_stub_domain, parse_upstream,
};
use crate::forward::{Endpoint, Policy};
use crate::logging::LogFormat;
use crate::model::{ConfigMapKey, parse_configmap_key};
use crate::node_setup::Firewall;
use crate::source::selector::{LabelFilter, parse_label_selector};
use crate::zone::PodsMode;

/// clusterdns: the Kubernetes cluster DNS server.
///
/// Serves the cluster zone (<service>.<namespace>.svc.<zone>, as the Kubernetes DNS-Based
/// Service Discovery specification defines it) authoritatively over UDP and TCP.
#[derive(Parser, Debug, Clone)]
#[command(name = "clusterdns", version, about, long_about)]
pub struct Config {
    /// Read settings from this YAML file: each key is a flag's long name (`ttl: 30`,
    /// `upstream: [10.0.0.2]`); flags given on the command line win. Watched: a valid change
    /// is applied live, an invalid one is logged and the running configuration kept.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as YAML (loadable by `--config`) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Print the configuration reference (flag, key, default, meaning) as a Markdown table
    /// and exit.
    #[arg(long)]
    pub print_config_reference: bool,

    /// Serve the objects in this directory of Kubernetes manifests (every .yaml, .yml and
    /// .json file, multi-document, subfolders too), watched for changes, instead of
    /// watching the Kubernetes API.
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    pub manifests: Option<PathBuf>,

    /// Kubeconfig for the Kubernetes API (default: in-cluster service account, then
    /// `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Each watch of the Kubernetes API asks the server to end it after this long
    /// (`timeoutSeconds`) and is made again; one that sends nothing (not even a bookmark)
    /// for this long plus 5 s is taken for dead, stalled without a FIN, and made again from
    /// its last resourceVersion. So a silently broken watch is noticed within this plus 5 s.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub watch_timeout: Duration,

    /// Serve only these namespaces (comma-separated); others answer NXDOMAIN and their
    /// objects are not kept.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Name endpoints without a hostname after their pod (when shorter than 64 characters).
    #[arg(long)]
    pub endpoint_pod_names: bool,

    /// How long listeners wait for the first full list from the API before serving anyway
    /// (names that would be NXDOMAIN answer SERVFAIL until then).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub startup_timeout: Duration,

    /// Address of the HTTP side port: /healthz, /readyz, /metrics. Default: `0.0.0.0:9153`;
    /// `0.0.0.0:9253` in node-local mode (beside a central tier on the same node).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Address to answer on, over UDP and TCP; repeatable. Default: `0.0.0.0:53` and
    /// `[::]:53`, the IPv6 one skipped with a warning on a node without IPv6;
    /// `169.254.20.10:53` in node-local mode.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// The cluster domain.
    #[arg(long, value_name = "NAME", default_value = "cluster.local")]
    pub zone: String,

    /// TTL of cluster records, in seconds (the SOA minimum too).
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,

    /// Pod records `<a-b-c-d>.<namespace>.pod.<zone>`: `insecure` answers the address any
    /// such name spells, in an existing namespace (as the default Kubernetes Corefile);
    /// `verified` only an address a pod in that namespace has (watches Pods).
    #[arg(long, default_value = "insecure",
          value_parser = EnumValueParser::<PodsFlag>::new().map(PodsMode::from))]
    pub pods: PodsMode,

    /// Close a TCP connection that sends no complete query for this long (e.g. `10s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub tcp_idle_timeout: Duration,

    /// Most TCP connections open at once; beyond it new ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tcp_connections: u32,

    /// After SIGTERM, keep answering this long while /readyz reports not ready, so the
    /// Service stops sending queries here before the listeners close (capped by
    /// `--shutdown-grace`).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub lameduck: Duration,

    /// After SIGTERM, exit within this long: the lameduck period, then the queries in flight
    /// are answered and the process exits 0.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How often the manifests directory is re-checked, besides file-system events.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub manifests_poll: Duration,

    /// Serve the RFC 1035 zone files in this directory (`<origin>.zone`) authoritatively beside
    /// the cluster zone, reloaded when they change.
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,

    /// Be authoritative for the reverse names of this CIDR (e.g. the service and pod CIDRs):
    /// an address there that no Service or Pod has answers NXDOMAIN instead of being
    /// forwarded. Repeatable.
    #[arg(long = "reverse-cidr", value_name = "CIDR")]
    pub reverse_cidrs: Vec<ipnet::IpNet>,

    /// Upstream resolver for every name outside the served zones; repeatable. `ADDR[:PORT]`
    /// (UDP, TCP when a reply is truncated; port 53), `tcp://ADDR[:PORT]` (TCP only, over
    /// persistent pipelined connections), `tls://ADDR[:PORT]#SERVER_NAME` (DNS over TLS,
    /// port 853, the certificate verified against SERVER_NAME). Default: the nameservers of
    /// `--resolv-conf`.
    #[arg(long = "upstream", value_name = "ADDR[:PORT]", value_parser = parse_upstream)]
    pub upstreams: Vec<Endpoint>,

    /// Where the default upstreams come from when no `--upstream` is given (a pod with
    /// `dnsPolicy: Default` gets the node's).
    #[arg(long, value_name = "FILE", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,

    /// Answer only the served zones; every other name is REFUSED (no upstreams at all).
    #[arg(long, conflicts_with_all = ["upstreams", "stub_domains"])]
    pub no_forward: bool,

    /// Send a domain to its own upstreams: `DOMAIN=UPSTREAM[,UPSTREAM...]`, each as
    /// `--upstream`; repeatable.
    #[arg(long = "stub-domain", value_name = "DOMAIN=ADDR,...", value_parser = parse_stub_domain)]
    pub stub_domains: Vec<StubDomain>,

    /// A TCP or TLS upstream connection with no query in flight this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub upstream_idle_timeout: Duration,

    /// Most TCP or TLS connections open at once to one upstream (another is opened when each
    /// open one carries 64 queries).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_upstream_connections: u32,

    /// CA certificates (PEM) that `tls://` upstreams' certificates must chain to, instead of
    /// the system's roots.
    #[arg(long, value_name = "FILE")]
    pub upstream_tls_ca: Option<PathBuf>,

    /// The role: `cluster` (the cluster DNS, from the API or `--manifests`) or `node-local`
    /// (a per-node cache in front of it, as NodeLocal DNSCache: no cluster source; the
    /// cluster zone and the reverse zones go to `--cluster-dns` over TCP; listens on
    /// 169.254.20.10:53 and serves its side port on 0.0.0.0:9253 unless told otherwise).
    #[arg(long, value_enum, default_value_t = Mode::Cluster)]
    pub mode: Mode,

    /// Node-local mode: the central cluster DNS (the `kube-dns-upstream` Service), as
    /// `--upstream` but always over TCP or TLS (`ADDR[:PORT]` means `tcp://ADDR[:PORT]`);
    /// repeatable.
    #[arg(long = "cluster-dns", value_name = "ADDR[:PORT]", value_parser = parse_upstream)]
    pub cluster_dns: Vec<Endpoint>,

    /// Node-local mode: longest time a positive cluster-zone answer is cached.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub cluster_cache_ttl: Duration,

    /// Node-local mode: longest time a negative cluster-zone answer (NXDOMAIN, NODATA) is
    /// cached.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub cluster_cache_negative_ttl: Duration,

    /// Node-local mode: how long past expiry a cluster-zone answer is still served (TTL 30)
    /// while every `--cluster-dns` server fails, so known Services keep resolving through
    /// an outage of the central tier.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub cluster_serve_stale: Duration,

    /// Order in which upstreams are tried.
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    pub policy: Policy,

    /// How long to wait for one upstream's reply before trying the next.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// Consecutive failures after which an upstream is marked down (and probed in the
    /// background until it answers again).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_fails: u32,

    /// How often a down upstream is probed (`. IN NS`).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub health_check_interval: Duration,

    /// Most upstream queries outstanding at once; beyond it queries are REFUSED.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,

    /// Most entries in the cache of forwarded answers (TinyLFU: a new answer is kept only if
    /// it is asked for more often than the one it would evict, so one-hit names cannot push
    /// popular ones out);
    /// 0 turns the cache off.
    #[arg(long, value_name = "N", default_value_t = 10000)]
    pub cache_size: u64,

    /// Longest time a positive answer is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub cache_max_ttl: u32,

    /// Longest time a negative answer (NXDOMAIN, NODATA) is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub cache_max_negative_ttl: u32,

    /// Shortest time any answer is cached, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub cache_min_ttl: u32,

    /// Answer from an expired cache entry (with TTL 30) when every upstream fails, up to
    /// this long past its expiry (RFC 8767); 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub serve_stale: Duration,

    /// Refresh a cache entry that is asked for often shortly before it expires.
    #[arg(long)]
    pub prefetch: bool,

    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `info,clusterdns::forward=debug`;
    /// `RUST_LOG` overrides it).
    #[arg(long, value_name = "FILTER", default_value = "info", value_parser = crate::logging::parse_level)]
    pub log_level: String,

    /// Serve only Services whose labels match this Kubernetes label selector
    /// (`app=web,tier!=cache,env in (prod,staging),!legacy`); others answer NXDOMAIN. The API
    /// server filters the Services list/watch; the manifests source skips the others.
    #[arg(long = "labels", value_name = "SELECTOR", value_parser = parse_label_selector)]
    pub labels: Option<LabelFilter>,

    /// Answer for this external zone (repeatable): the load balancer and external IPs of
    /// Services as `<svc>.<ns>.<zone>` (A/AAAA, SRV for named ports, CNAME for load balancer
    /// hostnames), and the hosts of Ingresses under it with their load balancer addresses
    /// (watches Ingresses). Authoritative, with SOA and NS `ns1.dns.<zone>` at the apex.
    #[arg(long = "external-zone", value_name = "ZONE")]
    pub external_zones: Vec<String>,

    /// The kinds whose names `--external-zone` serves, comma-separated: `Service` (external
    /// and load balancer addresses), `Ingress` (hosts), `HTTPRoute`, `GRPCRoute`, `TLSRoute`
    /// (`spec.hostnames`, answering the addresses of the Gateways that accepted the route),
    /// `Gateway` (listener hostnames). Each listed kind is watched; a route kind also
    /// watches Gateways. The Gateway API kinds need their CRDs installed (k8s_gateway's
    /// `resources`).
    #[arg(long = "external-resources", value_name = "KINDS", default_value = "Service,Ingress", value_parser = parse_external_resources)]
    pub external_resources: ExternalKinds,

    /// Answer for the clusterset zone of the Multi-Cluster Services API (KEP-1645; normally
    /// `clusterset.local`): `<svc>.<ns>.svc.<zone>` from ServiceImports
    /// (multicluster.x-k8s.io/v1alpha1) and `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>`
    /// from the EndpointSlices labelled `multicluster.kubernetes.io/service-name` (CoreDNS's
    /// `multicluster` plugin). Watches ServiceImports. Off by default.
    #[arg(long = "multicluster-zone", value_name = "ZONE")]
    pub multicluster_zone: Option<String>,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log a sample of answered queries at info (name, type, response code, duration, client).
    #[arg(long)]
    pub query_log: bool,

    /// Fraction of queries the query log writes (`0.01`: one in a hundred).
    #[arg(long, value_name = "FRACTION", default_value = "0.01", value_parser = parse_rate)]
    pub query_log_rate: f64,

    /// Answer address records (A/AAAA) in a random order, CNAMEs first, so clients that take
    /// the first address spread over all of them (CoreDNS `loadbalance round_robin`).
    #[arg(long)]
    pub shuffle: bool,

    /// Answer AAAA queries for names outside the served zones with NODATA instead of
    /// forwarding them (IPv4-only clusters: halves the upstream load). The cluster zone and
    /// zone files still answer AAAA.
    #[arg(long)]
    pub no_aaaa_outside_zone: bool,

    /// Server-side search path: a query `<name>.<ns>.svc.<zone>` from a pod of `<ns>` is
    /// answered with a CNAME to the first of `<name>.<ns>.svc.<zone>`, `<name>.svc.<zone>`,
    /// `<name>.<zone>`, `<name>.` that exists (CoreDNS `autopath @kubernetes`). Needs
    /// `--pods verified` (the pod watch that maps a client address to its namespace).
    #[arg(long)]
    pub autopath: bool,

    /// Rewrite a question's name before the lookup and the answer's names back, so the
    /// client sees only its own name: `name exact|prefix|suffix|regex FROM TO` (CoreDNS
    /// `rewrite name … answer auto`; a regex TO takes groups as `{1}`); repeatable, tried in
    /// order, the first match applies, once. Applied live on reload.
    #[arg(long = "rewrite", value_name = "RULE", value_parser = crate::rewrite::parse_rule)]
    pub rewrites: Vec<crate::rewrite::Rule>,

    /// Answer the names of this `/etc/hosts`-format file (`ADDR NAME [ALIAS...]`), watched;
    /// other names go on down the chain (CoreDNS `hosts FILE { fallthrough }`).
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,

    /// Answer the names of this ConfigMap key, in `/etc/hosts` format, watched (k3s's
    /// `kube-system/coredns:NodeHosts`); from the API, or from `--manifests`.
    #[arg(long, value_name = "NAMESPACE/NAME:KEY", value_parser = parse_configmap_key)]
    pub hosts_configmap: Option<ConfigMapKey>,

    /// The TTL of host entries (`--hosts`, `--hosts-configmap`).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub hosts_ttl: u32,

    /// No PTR records for the addresses of host entries.
    #[arg(long)]
    pub hosts_no_reverse: bool,

    /// Allow zone transfers of the cluster zone (AXFR over TCP, IXFR) to clients in this
    /// network (`CIDR`, or one address); repeatable. Everyone else is REFUSED.
    #[arg(long = "transfer-to", value_name = "CIDR", value_parser = parse_network)]
    pub transfer_to: Vec<ipnet::IpNet>,

    /// Before listening, create the network interface NAME holding the `--listen` addresses
    /// (type dummy, or a bridge without ports where the kernel has no dummy driver; an
    /// existing one is reused), and take DNS to and from them out of connection tracking
    /// (NOTRACK rules, through nft or else iptables), as NodeLocal DNSCache's node-cache does;
    /// both are checked every minute and put back if removed, and removed at exit. Needs the
    /// NET_ADMIN capability and `ip`, and `nft` or `iptables`. The unspecified addresses
    /// (0.0.0.0, ::) are left out.
    #[arg(long, value_name = "NAME")]
    pub setup_interface: Option<String>,

    /// With `--setup-interface`: leave the interface and its rules in place at exit (the next
    /// start reuses them), so queries to the addresses are not lost during a restart.
    #[arg(long, requires = "setup_interface")]
    pub skip_teardown: bool,

    /// How often the `--setup-interface` interface, its addresses and the rules are checked,
    /// and what is missing put back (node-cache's `-syncinterval`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub node_setup_interval: Duration,

    /// The firewall program of `--setup-interface`: `auto` is nft when it works, else
    /// iptables. `iptables` also adds node-cache's ACCEPT rules to the filter table, for a
    /// node whose iptables filter chains drop untracked packets.
    #[arg(long, value_enum, default_value_t = Firewall::Auto)]
    pub node_firewall: Firewall,

    /// With `--pods verified`: keep per-client figures (queries, NXDOMAINs and search-list
    /// misses per pod over the last minute and five minutes) and serve the top N at
    /// `/debug/clients` on the side port, with `clusterdns_client_requests_total{namespace,
    /// rcode}`; 0 turns them off.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top_clients: u32,

    /// Most UDP queries per second each client address may send (a second's worth at once);
    /// beyond it queries are dropped, or answered empty with TC=1 (see
    /// `--client-limit-slip`), and counted in `clusterdns_client_limited_total`. TCP is
    /// exempt. 0 turns the limit off.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_qps_per_client: u32,

    /// Of the queries over `--max-qps-per-client`, every Nth is answered empty with TC=1
    /// (RRL's slip: a real client retries over TCP and gets its answer) and the rest
    /// dropped; 0 drops them all, 1 answers them all.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub client_limit_slip: u32,

    /// How much lower than the rest of clusterdns the UDP query threads run: a nice value
    /// (0–19) each adds to its own. On a core the queries saturate, the API's changes, the
    /// probes, the metrics, TCP and forwarding go first and the UDP queries take what
    /// remains; 0 gives them equal shares.
    #[arg(long, value_name = "N", default_value_t = crate::server::DEFAULT_UDP_THREAD_NICE,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub udp_thread_nice: i32,

    /// The configuration as loaded: the command line given and the values in effect.
    #[arg(skip)]
    pub loaded: Loaded,
}

/// The values of `--pods`: `zone::PodsMode` as the command line spells and explains it
/// (the zone knows nothing of clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PodsFlag {
    /// No pod records.
    Disabled,
    /// Answer the address the name spells, in an existing namespace (kube-dns behaviour).
    Insecure,
    /// Answer only an address that a pod in that namespace has.
    Verified,
}

impl From<PodsFlag> for PodsMode {
    fn from(flag: PodsFlag) -> Self {
        match flag {
            PodsFlag::Disabled => PodsMode::Disabled,
            PodsFlag::Insecure => PodsMode::Insecure,
            PodsFlag::Verified => PodsMode::Verified,
        }
    }
}

/// Flags a configuration file cannot set.
pub(super) const CLI_ONLY: [&str; 5] = [
    "config",
    "print-config",
    "print-config-reference",
    "help",
    "version",
];

/// The values `arg` accepts, when it names them (`--pods`, `--policy`): what an error and the
/// reference list.
pub(super) fn possible_values(arg: &clap::Arg) -> Vec<String> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return Vec::new();
    }
    arg.get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_owned())
        .collect()
}

#[cfg(test)]
#[path = "flags_tests.rs"]
mod tests;

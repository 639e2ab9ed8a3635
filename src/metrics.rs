//! Prometheus metrics, named as CoreDNS's behind the prefix `clusterdns_` where CoreDNS has the
//! same figure, so its dashboards port by renaming.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::{Name, RecordType};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `clusterdns_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The source revision (`CLUSTERDNS_REVISION` at build time), `unknown` without it.
    pub revision: &'static str,
}

/// Labels of a per-kind source metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The object kind (`Service`, `EndpointSlice`, …).
    pub kind: String,
}

/// Labels of the DNS programming latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceKindLabels {
    /// `cluster_ip`, `headless_with_selector` or `headless_without_selector`.
    pub service_kind: &'static str,
}

/// Labels of queries or connections dropped unanswered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `udp_inflight` (too many UDP queries in flight) or `tcp_connections` (over
    /// `--max-tcp-connections`).
    pub reason: &'static str,
}

/// Labels of a per-upstream metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The upstream's address (`10.0.0.2:53`).
    pub to: String,
}

/// Labels of an upstream's responses.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamRcodeLabels {
    /// The upstream's address.
    pub to: String,
    /// The response code it answered.
    pub rcode: &'static str,
}

/// Labels of cache hits: `success` or `denial` (NXDOMAIN, NODATA), as CoreDNS.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheTypeLabels {
    /// `success` or `denial`.
    pub r#type: &'static str,
}

fn upstream_buckets() -> Histogram {
    // 0.25 ms doubling to ~8 s, as CoreDNS's forward latency buckets span.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

fn programming_buckets() -> Histogram {
    // As CoreDNS: 1 ms doubling, 20 buckets (up to ~17 minutes).
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// Every metric clusterdns exports, in one registry.
pub struct Metrics {
    registry: Registry,
    /// The per-query families: `clusterdns_dns_requests_total`, `clusterdns_dns_responses_total`,
    /// `clusterdns_dns_request_duration_seconds`, `clusterdns_dns_request_size_bytes`,
    /// `clusterdns_dns_response_size_bytes`.
    pub dns: Arc<DnsMetrics>,
    /// `clusterdns_reload_total`: configuration file changes applied.
    pub reloads: Counter,
    /// `clusterdns_reload_failed_total`: configuration file changes rejected (old one kept).
    pub reload_failed: Counter,
    /// `clusterdns_reload_restart_required_total`: changed keys that only a restart applies.
    pub reload_restart_required: Counter,
    /// `clusterdns_build_info{version,revision}`: 1.
    pub build_info: Family<BuildLabels, Gauge>,
    /// `clusterdns_kubernetes_watch_restarts_total{kind}`: watch errors retried with backoff.
    pub watch_restarts: Family<KindLabels, Counter>,
    /// `clusterdns_kubernetes_relists_total{kind}`: full lists (initial, after 410 or outage).
    pub relists: Family<KindLabels, Counter>,
    /// `clusterdns_kubernetes_objects{kind}`: objects held.
    pub objects: Family<KindLabels, Gauge>,
    /// `clusterdns_kubernetes_object_errors_total{kind}`: objects that could not be read.
    pub object_errors: Family<KindLabels, Counter>,
    /// `clusterdns_zone_snapshots_total`: snapshots published.
    pub snapshots: Counter,
    /// `clusterdns_zone_serial`: the SOA serial served.
    pub serial: Gauge,
    /// `clusterdns_zone_synced`: 1 once every source has completed its first full list.
    pub synced: Gauge,
    /// `clusterdns_kubernetes_dns_programming_duration_seconds{service_kind}`.
    pub programming: Family<ServiceKindLabels, Histogram, fn() -> Histogram>,
    /// Cache and forwarding figures.
    pub forward: ForwardMetrics,
    /// `clusterdns_dropped_total{reason}`: queries or connections dropped at a bound.
    pub dropped: Family<DropLabels, Counter>,
    /// `clusterdns_tcp_connections`: TCP connections open.
    pub tcp_connections: Gauge,
}

/// The figures of the cache and the upstream pools.
pub struct ForwardMetrics {
    /// `clusterdns_cache_requests_total`: forwardable queries that looked in the cache.
    pub cache_requests: Counter,
    /// `clusterdns_cache_hits_total{type}`: answered from a fresh entry.
    pub cache_hits: Family<CacheTypeLabels, Counter>,
    /// `clusterdns_cache_misses_total`: no fresh entry.
    pub cache_misses: Counter,
    /// `clusterdns_cache_entries`: entries held.
    pub cache_entries: Gauge,
    /// `clusterdns_cache_evictions_total`: entries evicted for room.
    pub cache_evictions: Counter,
    /// `clusterdns_cache_served_stale_total`: expired entries served because every upstream failed.
    pub cache_served_stale: Counter,
    /// `clusterdns_cache_prefetch_total`: entries refreshed ahead of expiry.
    pub cache_prefetch: Counter,
    /// `clusterdns_forward_coalesced_total`: misses that joined an identical query in flight.
    pub coalesced: Counter,
    /// `clusterdns_forward_requests_total{to}`: queries sent to an upstream.
    pub requests: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_responses_total{to,rcode}`: replies accepted from an upstream.
    pub responses: Family<UpstreamRcodeLabels, Counter>,
    /// `clusterdns_forward_request_duration_seconds{to}`: time to an upstream's reply.
    pub duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    /// `clusterdns_forward_failures_total{to}`: timeouts, network errors, unreadable replies.
    pub failures: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_mismatched_replies_total{to}`: replies dropped for a wrong ID or
    /// question (spoofing, or late replies).
    pub mismatched: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_healthcheck_failures_total{to}`: failed probes of a down upstream.
    pub healthcheck_failures: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_healthcheck_broken_total`: queries failed at once because every
    /// upstream of their pool was down.
    pub healthcheck_broken: Counter,
    /// `clusterdns_forward_max_concurrent_rejects_total`: queries refused over `--max-concurrent`.
    pub max_concurrent_rejects: Counter,
    /// `clusterdns_forward_upstream_healthy{to}`: 1 while the upstream is up.
    pub healthy: Family<UpstreamLabels, Gauge>,
}

impl ForwardMetrics {
    fn new() -> Self {
        Self {
            duration: Family::new_with_constructor(upstream_buckets),
            cache_requests: Counter::default(),
            cache_hits: Family::default(),
            cache_misses: Counter::default(),
            cache_entries: Gauge::default(),
            cache_evictions: Counter::default(),
            cache_served_stale: Counter::default(),
            cache_prefetch: Counter::default(),
            coalesced: Counter::default(),
            requests: Family::default(),
            responses: Family::default(),
            failures: Family::default(),
            mismatched: Family::default(),
            healthcheck_failures: Family::default(),
            healthcheck_broken: Counter::default(),
            max_concurrent_rejects: Counter::default(),
            healthy: Family::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "cache_requests",
            "Forwardable queries that looked in the cache",
            self.cache_requests.clone(),
        );
        r.register(
            "cache_hits",
            "Queries answered from the cache, by type (success, denial)",
            self.cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Queries the cache could not answer",
            self.cache_misses.clone(),
        );
        r.register(
            "cache_entries",
            "Entries in the cache",
            self.cache_entries.clone(),
        );
        r.register(
            "cache_evictions",
            "Cache entries evicted for room",
            self.cache_evictions.clone(),
        );
        r.register(
            "cache_served_stale",
            "Expired entries served while every upstream failed",
            self.cache_served_stale.clone(),
        );
        r.register(
            "cache_prefetch",
            "Cache entries refreshed before they expired",
            self.cache_prefetch.clone(),
        );
        r.register(
            "forward_coalesced",
            "Cache misses that joined an identical upstream query in flight",
            self.coalesced.clone(),
        );
        r.register(
            "forward_requests",
            "Queries sent to an upstream",
            self.requests.clone(),
        );
        r.register(
            "forward_responses",
            "Replies accepted from an upstream, by response code",
            self.responses.clone(),
        );
        r.register(
            "forward_request_duration_seconds",
            "Time to an upstream's reply",
            self.duration.clone(),
        );
        r.register(
            "forward_failures",
            "Upstream queries that timed out, failed or got an unreadable reply",
            self.failures.clone(),
        );
        r.register(
            "forward_mismatched_replies",
            "Upstream replies dropped for a wrong ID or question",
            self.mismatched.clone(),
        );
        r.register(
            "forward_healthcheck_failures",
            "Failed health probes of a down upstream",
            self.healthcheck_failures.clone(),
        );
        r.register(
            "forward_healthcheck_broken",
            "Queries failed at once because every upstream was down",
            self.healthcheck_broken.clone(),
        );
        r.register(
            "forward_max_concurrent_rejects",
            "Queries refused over the outstanding-query cap",
            self.max_concurrent_rejects.clone(),
        );
        r.register(
            "forward_upstream_healthy",
            "1 while the upstream is up, 0 while it is marked down",
            self.healthy.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers the per-query families.
#[derive(Debug)]
struct DnsCollector(Arc<DnsMetrics>);

impl Metrics {
    /// A fresh registry with every metric registered, for the server `dns://:53` and the
    /// zone `cluster.local.`.
    pub fn new() -> Self {
        Self::for_server(&["dns://:53"], &["cluster.local."])
    }

    /// A fresh registry whose per-query families label `servers` and `zones` (the root
    /// zone `.` is added for every other name).
    pub fn for_server(servers: &[&str], zones: &[&str]) -> Self {
        let mut registry = Registry::with_prefix("clusterdns");
        let m = Self {
            dns: Arc::new(DnsMetrics::new(servers, zones)),
            reloads: Counter::default(),
            reload_failed: Counter::default(),
            reload_restart_required: Counter::default(),
            build_info: Family::default(),
            watch_restarts: Family::default(),
            relists: Family::default(),
            objects: Family::default(),
            object_errors: Family::default(),
            snapshots: Counter::default(),
            serial: Gauge::default(),
            synced: Gauge::default(),
            programming: Family::new_with_constructor(programming_buckets),
            forward: ForwardMetrics::new(),
            dropped: Family::default(),
            tcp_connections: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "dropped",
            "Queries or connections dropped at a bound, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "tcp_connections",
            "TCP connections open",
            m.tcp_connections.clone(),
        );
        m.forward.register(&mut registry);
        registry.register_collector(Box::new(DnsCollector(Arc::clone(&m.dns))));
        registry.register(
            "reload",
            "Configuration file changes applied",
            m.reloads.clone(),
        );
        registry.register(
            "reload_failed",
            "Configuration file changes rejected; the previous configuration stays",
            m.reload_failed.clone(),
        );
        registry.register(
            "reload_restart_required",
            "Changed configuration keys that take effect only after a restart",
            m.reload_restart_required.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("CLUSTERDNS_REVISION").unwrap_or("unknown"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Version and source revision of this clusterdns; always 1",
            m.build_info.clone(),
        );
        registry.register(
            "kubernetes_watch_restarts",
            "Kubernetes watch failures retried with backoff, by kind",
            m.watch_restarts.clone(),
        );
        registry.register(
            "kubernetes_relists",
            "Full lists of a kind from the API",
            m.relists.clone(),
        );
        registry.register(
            "kubernetes_objects",
            "Objects held, by kind",
            m.objects.clone(),
        );
        registry.register(
            "kubernetes_object_errors",
            "Objects from the API that could not be read, by kind",
            m.object_errors.clone(),
        );
        registry.register(
            "zone_snapshots",
            "Zone snapshots published",
            m.snapshots.clone(),
        );
        registry.register(
            "zone_synced",
            "1 once every source has completed its first full list, 0 before",
            m.synced.clone(),
        );
        registry.register(
            "zone_serial",
            "SOA serial of the zone served",
            m.serial.clone(),
        );
        registry.register(
            "kubernetes_dns_programming_duration_seconds",
            "Time from an EndpointSlice change (last-change-trigger-time) to its records being served",
            m.programming.clone(),
        );
        Self { registry, ..m }
    }

    /// Records one answered query (no lock, no allocation).
    pub fn observe_query(&self, o: &QueryObservation) {
        self.dns.observe_query(o);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Per-query DNS metrics: CoreDNS's `dns_*` families, recorded without a lock or an allocation.
// ---------------------------------------------------------------------------------------------

/// Transports, as the `proto` label spells them.
pub const PROTOS: [&str; 2] = ["udp", "tcp"];
/// Address families of the client, as the `family` label spells them (CoreDNS: 1 IPv4, 2 IPv6).
pub const FAMILIES: [&str; 2] = ["1", "2"];
/// Query types with their own `type` label; every other one is `other` (as CoreDNS), so a
/// client cannot create a series per type number.
pub const TYPES: [&str; 20] = [
    "A", "AAAA", "ANY", "AXFR", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "IXFR", "MX", "NAPTR",
    "NS", "PTR", "SOA", "SRV", "SVCB", "TXT", "other", "",
];
/// Response codes with their own `rcode` label.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER",
];
/// Upper bounds of the request duration buckets, in seconds (CoreDNS: 0.25 ms doubling, 16).
const DURATION_BOUNDS: [f64; 16] = [
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];
/// Upper bounds of the message size buckets, in bytes (as CoreDNS).
const SIZE_BOUNDS: [f64; 14] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16000.0, 32000.0,
    48000.0, 64000.0,
];

/// The transport of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp = 0,
    /// TCP.
    Tcp = 1,
}

/// The client's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrFamily {
    /// IPv4.
    V4 = 0,
    /// IPv6.
    V6 = 1,
}

impl AddrFamily {
    /// The family of `addr` (an IPv4-mapped IPv6 address counts as IPv6, as the socket saw it).
    pub fn of(addr: &std::net::SocketAddr) -> Self {
        if addr.is_ipv4() { Self::V4 } else { Self::V6 }
    }
}

/// The index of a query type's `type` label in [`TYPES`].
pub fn type_index(t: Option<RecordType>) -> usize {
    let Some(t) = t else {
        return TYPES.len() - 1;
    };
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::ANY => 2,
        RecordType::AXFR => 3,
        RecordType::CAA => 4,
        RecordType::CNAME => 5,
        RecordType::DNSKEY => 6,
        RecordType::DS => 7,
        RecordType::HTTPS => 8,
        RecordType::IXFR => 9,
        RecordType::MX => 10,
        RecordType::NAPTR => 11,
        RecordType::NS => 12,
        RecordType::PTR => 13,
        RecordType::SOA => 14,
        RecordType::SRV => 15,
        RecordType::SVCB => 16,
        RecordType::TXT => 17,
        _ => 18,
    }
}

/// The index of a response code's `rcode` label in [`RCODES`].
pub fn rcode_index(code: u16) -> usize {
    match code {
        0..=5 => usize::from(code),
        16 => 6,
        _ => 7,
    }
}

/// One answered query, as the `dns_*` metrics record it.
#[derive(Clone, Copy, Debug)]
pub struct QueryObservation {
    /// Index of the server (`server` label) in the metrics' server list.
    pub server: usize,
    /// Index of the zone (`zone` label), from [`DnsMetrics::zone_index`].
    pub zone: usize,
    /// Transport.
    pub proto: Proto,
    /// Client address family.
    pub family: AddrFamily,
    /// Index of the query type in [`TYPES`] ([`type_index`]).
    pub qtype: usize,
    /// Index of the response code in [`RCODES`] ([`rcode_index`]).
    pub rcode: usize,
    /// Size of the query, in bytes.
    pub request_size: usize,
    /// Size of the response, in bytes (0 when none was sent).
    pub response_size: usize,
    /// Time from the query's arrival to its answer.
    pub duration: std::time::Duration,
}

/// `(sum, count, per-bucket counts)` of a histogram.
type HistogramValues = (f64, u64, Vec<(f64, u64)>);

/// A histogram of fixed buckets in atomics: observed with a few relaxed atomic adds.
#[derive(Debug)]
struct AtomicHistogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum, as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // Lock-free float add.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// `(sum, count, per-bucket counts)` (the encoder makes them cumulative), or `None` when
    /// nothing was observed.
    fn snapshot(&self) -> Option<HistogramValues> {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        (total > 0).then(|| {
            (
                f64::from_bits(self.sum.load(Ordering::Relaxed)),
                total,
                buckets,
            )
        })
    }
}

/// CoreDNS's per-query families, in flat arrays indexed by label indices: the query path
/// never takes a lock or allocates; a scrape walks the arrays and writes the non-zero series.
#[derive(Debug)]
pub struct DnsMetrics {
    servers: Vec<String>,
    /// Zone labels, `.` last; with each its lowercase labels for matching.
    zones: Vec<(String, Vec<Vec<u8>>)>,
    /// `[server][zone][proto][family][type]`.
    requests: Box<[AtomicU64]>,
    /// `[server][zone][rcode]`.
    responses: Box<[AtomicU64]>,
    /// `[server][zone][type]`.
    duration: Box<[AtomicHistogram]>,
    /// `[server][zone][proto]`.
    request_size: Box<[AtomicHistogram]>,
    /// `[server][zone][proto]`.
    response_size: Box<[AtomicHistogram]>,
}

impl DnsMetrics {
    /// Metrics for `servers` (e.g. `dns://:53`) and `zones` (e.g. `cluster.local.`); the root
    /// zone `.` is added last, for every other name.
    pub fn new(servers: &[&str], zones: &[&str]) -> Self {
        let servers: Vec<String> = if servers.is_empty() {
            vec!["dns://:53".to_owned()]
        } else {
            servers.iter().map(|s| (*s).to_owned()).collect()
        };
        let mut zl: Vec<(String, Vec<Vec<u8>>)> = zones
            .iter()
            .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
            .filter(|z| !z.is_empty())
            .map(|z| {
                let labels = z.split('.').map(|l| l.as_bytes().to_vec()).collect();
                (format!("{z}."), labels)
            })
            .collect();
        // Longest first, so a zone inside another is matched first.
        zl.sort_by_key(|(_, l)| std::cmp::Reverse(l.len()));
        zl.push((".".to_owned(), Vec::new()));
        let (s, z) = (servers.len(), zl.len());
        let atomics = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        let hists = |n: usize, b: &'static [f64]| (0..n).map(|_| AtomicHistogram::new(b)).collect();
        Self {
            requests: atomics(s * z * PROTOS.len() * FAMILIES.len() * TYPES.len()),
            responses: atomics(s * z * RCODES.len()),
            duration: hists(s * z * TYPES.len(), &DURATION_BOUNDS),
            request_size: hists(s * z * PROTOS.len(), &SIZE_BOUNDS),
            response_size: hists(s * z * PROTOS.len(), &SIZE_BOUNDS),
            servers,
            zones: zl,
        }
    }

    /// The index of the zone `name` falls in (the most specific one; `.` for every other
    /// name). Compares labels in place: no allocation.
    pub fn zone_index(&self, name: &Name) -> usize {
        let mut buf: [&[u8]; crate::zone::MAX_LABELS] = [&[]; crate::zone::MAX_LABELS];
        let mut n = 0;
        for (slot, label) in buf.iter_mut().zip(name.iter()) {
            *slot = label;
            n += 1;
        }
        self.zone_index_labels(&buf[..n])
    }

    /// [`DnsMetrics::zone_index`] for a name given as its labels, left to right.
    pub fn zone_index_labels(&self, name: &[&[u8]]) -> usize {
        let n = name.len();
        for (i, (_, labels)) in self.zones.iter().enumerate() {
            if labels.len() > n {
                continue;
            }
            let tail = name.iter().skip(n - labels.len());
            if tail
                .zip(labels.iter())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
            {
                return i;
            }
        }
        self.zones.len() - 1
    }

    /// Records one answered query: a handful of relaxed atomic adds.
    pub fn observe_query(&self, o: &QueryObservation) {
        let server = o.server.min(self.servers.len() - 1);
        let zone = o.zone.min(self.zones.len() - 1);
        let sz = server * self.zones.len() + zone;
        let (proto, family) = (o.proto as usize, o.family as usize);
        let qtype = o.qtype.min(TYPES.len() - 1);
        let rcode = o.rcode.min(RCODES.len() - 1);
        let req = ((sz * PROTOS.len() + proto) * FAMILIES.len() + family) * TYPES.len() + qtype;
        if let Some(c) = self.requests.get(req) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.responses.get(sz * RCODES.len() + rcode) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = self.duration.get(sz * TYPES.len() + qtype) {
            h.observe(o.duration.as_secs_f64());
        }
        if let Some(h) = self.request_size.get(sz * PROTOS.len() + proto) {
            h.observe(o.request_size as f64);
        }
        if let Some(h) = self.response_size.get(sz * PROTOS.len() + proto) {
            h.observe(o.response_size as f64);
        }
    }

    /// Every `(server, zone)` label pair with its flat index.
    fn server_zones(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.servers.iter().enumerate().flat_map(move |(si, s)| {
            self.zones
                .iter()
                .enumerate()
                .map(move |(zi, (z, _))| (si * self.zones.len() + zi, s.as_str(), z.as_str()))
        })
    }

    fn encode_size(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        hists: &[AtomicHistogram],
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (sz, server, zone) in self.server_zones() {
            for (p, proto) in PROTOS.iter().enumerate() {
                if let Some((sum, count, buckets)) = hists
                    .get(sz * PROTOS.len() + p)
                    .and_then(AtomicHistogram::snapshot)
                {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("proto", proto),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        Ok(())
    }
}

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(&mut encoder)
    }
}

impl DnsMetrics {
    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "dns_requests",
            "DNS requests by server, zone, transport, client address family and query type",
            None,
            MetricType::Counter,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (p, proto) in PROTOS.iter().enumerate() {
                for (f, fam) in FAMILIES.iter().enumerate() {
                    for (t, ty) in TYPES.iter().enumerate() {
                        let i = ((sz * PROTOS.len() + p) * FAMILIES.len() + f) * TYPES.len() + t;
                        let v = self
                            .requests
                            .get(i)
                            .map_or(0, |c| c.load(Ordering::Relaxed));
                        if v > 0 {
                            let labels = [
                                ("server", server),
                                ("zone", zone),
                                ("view", ""),
                                ("proto", proto),
                                ("family", fam),
                                ("type", ty),
                            ];
                            family
                                .encode_family(&labels)?
                                .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                        }
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "dns_responses",
            "DNS responses by server, zone and response code",
            None,
            MetricType::Counter,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (r, rcode) in RCODES.iter().enumerate() {
                let v = self
                    .responses
                    .get(sz * RCODES.len() + r)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                if v > 0 {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("rcode", rcode),
                        ("plugin", ""),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "dns_request_duration_seconds",
            "Time to answer a DNS request, by server, zone and query type",
            None,
            MetricType::Histogram,
        )?;
        for (sz, server, zone) in self.server_zones() {
            for (t, ty) in TYPES.iter().enumerate() {
                if let Some((sum, count, buckets)) = self
                    .duration
                    .get(sz * TYPES.len() + t)
                    .and_then(AtomicHistogram::snapshot)
                {
                    let labels = [
                        ("server", server),
                        ("zone", zone),
                        ("view", ""),
                        ("type", ty),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        self.encode_size(
            encoder,
            "dns_request_size_bytes",
            "Size of DNS requests in bytes, by server, zone and transport",
            &self.request_size,
        )?;
        self.encode_size(
            encoder,
            "dns_response_size_bytes",
            "Size of DNS responses in bytes, by server, zone and transport",
            &self.response_size,
        )
    }
}

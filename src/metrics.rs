//! Prometheus metrics, named as CoreDNS's behind the prefix `clusterdns_` where CoreDNS has the
//! same figure, so its dashboards port by renaming.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod query;

pub use query::{DurationHistogram, Proto, QueryCounters, rcode_label, type_label};

/// Labels of a DNS request: transport and query type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `udp` or `tcp`.
    pub proto: &'static str,
    /// The query type (`A`, `AAAA`, …, `other` for uncommon ones).
    pub r#type: &'static str,
}

/// Labels of a DNS response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The response code (`NOERROR`, `NXDOMAIN`, …).
    pub rcode: String,
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
    /// `clusterdns_dns_requests_total{proto,type}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `clusterdns_dns_responses_total{rcode}`.
    pub responses: Family<ResponseLabels, Counter>,
    /// `clusterdns_dns_request_duration_seconds`.
    pub request_duration: DurationHistogram,
    /// The slots of `requests` and `responses` a query records into.
    queries: QueryCounters,
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

impl Metrics {
    /// Records one answered query: its transport, type (`None` when it had no question),
    /// response code and time to answer. Lock-free and allocation-free once each series
    /// has been seen.
    pub fn observe_query(
        &self,
        proto: Proto,
        qtype: Option<u16>,
        rcode: u16,
        duration: std::time::Duration,
    ) {
        self.queries
            .count(&self.requests, &self.responses, proto, qtype, rcode);
        self.request_duration.observe(duration);
    }

    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clusterdns");
        let m = Self {
            requests: Family::default(),
            responses: Family::default(),
            request_duration: DurationHistogram::new(exponential_buckets(0.00001, 2.0, 20)),
            queries: QueryCounters::new(),
            watch_restarts: Family::default(),
            relists: Family::default(),
            objects: Family::default(),
            object_errors: Family::default(),
            snapshots: Counter::default(),
            serial: Gauge::default(),
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
        registry.register(
            "dns_requests",
            "DNS requests by transport and type",
            m.requests.clone(),
        );
        registry.register(
            "dns_responses",
            "DNS responses by response code",
            m.responses.clone(),
        );
        registry.register(
            "dns_request_duration_seconds",
            "Time to answer a DNS request",
            m.request_duration.clone(),
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

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

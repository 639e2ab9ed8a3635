//! The forwarder's metrics: the cache (`clusterdns_cache_*`) and the upstreams
//! (`clusterdns_forward_*`), named as CoreDNS's `cache` and `forward` plugins name theirs.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a per-upstream metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The upstream as configured (`10.0.0.2:53`, `tcp://10.0.0.2:53`, `tls://...#name`).
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

/// The figures of the cache and the upstream pools.
pub struct Metrics {
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
    /// `clusterdns_forward_mismatched_replies_total{to}`: replies dropped for a wrong ID,
    /// opcode or question (spoofing, or late replies), or unreadable.
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
    /// `clusterdns_forward_connections{to}`: open TCP/TLS connections to the upstream.
    pub connections: Family<UpstreamLabels, Gauge>,
    /// `clusterdns_forward_connections_opened_total{to}`: TCP/TLS connections opened.
    pub connections_opened: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_connections_reused_total{to}`: queries sent on a connection that
    /// was already open.
    pub connections_reused: Family<UpstreamLabels, Counter>,
    /// `clusterdns_forward_handshake_failures_total{to}`: TCP connects and TLS handshakes that
    /// failed (a refused connection, a certificate that does not name the server).
    pub handshake_failures: Family<UpstreamLabels, Counter>,
}

impl Metrics {
    /// The forwarder's metrics, registered in `r`.
    pub fn new(r: &mut Registry) -> Self {
        let m = Self {
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
            connections: Family::default(),
            connections_opened: Family::default(),
            connections_reused: Family::default(),
            handshake_failures: Family::default(),
        };
        m.register(r);
        m
    }

    // A flat list of registrations, one per metric: nothing to factor out.
    #[allow(clippy::too_many_lines)]
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
            "Upstream replies dropped for a wrong ID, opcode or question",
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
        r.register(
            "forward_connections",
            "Open TCP and TLS connections to the upstream",
            self.connections.clone(),
        );
        r.register(
            "forward_connections_opened",
            "TCP and TLS connections opened to the upstream",
            self.connections_opened.clone(),
        );
        r.register(
            "forward_connections_reused",
            "Queries sent on an upstream connection that was already open",
            self.connections_reused.clone(),
        );
        r.register(
            "forward_handshake_failures",
            "TCP connects and TLS handshakes to the upstream that failed",
            self.handshake_failures.clone(),
        );
    }
}

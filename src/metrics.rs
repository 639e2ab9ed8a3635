//! Prometheus metrics, named as CoreDNS's behind the prefix `clusterdns_` where CoreDNS has the
//! same figure, so its dashboards port by renaming.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a DNS request: transport and query type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `udp` or `tcp`.
    pub proto: &'static str,
    /// The query type (`A`, `AAAA`, …).
    pub r#type: String,
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
    pub request_duration: Histogram,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clusterdns");
        let m = Self {
            requests: Family::default(),
            responses: Family::default(),
            request_duration: Histogram::new(exponential_buckets(0.00001, 2.0, 20)),
            watch_restarts: Family::default(),
            relists: Family::default(),
            objects: Family::default(),
            object_errors: Family::default(),
            snapshots: Counter::default(),
            serial: Gauge::default(),
            programming: Family::new_with_constructor(programming_buckets),
            registry: Registry::default(),
        };
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

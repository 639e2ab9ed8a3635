//! The API source's metrics: watch restarts, relists and unreadable objects, per kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of a per-kind source metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The object kind (`Service`, `EndpointSlice`, …).
    pub kind: String,
}

/// The sources' metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `clusterdns_kubernetes_watch_restarts_total{kind}`: watch errors retried with backoff.
    pub watch_restarts: Family<KindLabels, Counter>,
    /// `clusterdns_kubernetes_relists_total{kind}`: full lists (initial, after 410 or outage).
    pub relists: Family<KindLabels, Counter>,
    /// `clusterdns_kubernetes_object_errors_total{kind}`: objects that could not be read.
    pub object_errors: Family<KindLabels, Counter>,
}

impl Metrics {
    /// The sources' metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
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
            "kubernetes_object_errors",
            "Objects from the API that could not be read, by kind",
            m.object_errors.clone(),
        );
        m
    }
}

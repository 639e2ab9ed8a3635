//! The per-client figures' metrics: `clusterdns_client_requests_total{namespace, rcode}` and
//! the queries the collector could not keep up with.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of `clusterdns_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    /// The client pod's namespace; `""` for clients that are no pod, `_other` past the cap.
    pub namespace: String,
    /// The response code.
    pub rcode: &'static str,
}

/// Labels of `clusterdns_client_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `dropped`, or `slipped` (answered empty with TC=1).
    pub action: &'static str,
}

/// The per-client metrics.
pub struct Metrics {
    /// `clusterdns_client_requests_total{namespace, rcode}`.
    pub requests: Family<ClientLabels, Counter>,
    /// `clusterdns_client_stats_dropped_total`: queries not counted per client because the
    /// collector's queue was full.
    pub dropped: Counter,
    /// `clusterdns_client_limited_total{action}`: UDP queries over `--max-qps-per-client`.
    pub limited: Family<LimitLabels, Counter>,
}

impl Metrics {
    /// The metrics, registered in `r`.
    pub fn new(r: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            dropped: Counter::default(),
            limited: Family::default(),
        };
        for action in ["dropped", "slipped"] {
            drop(m.limited.get_or_create(&LimitLabels { action }));
        }
        r.register(
            "client_requests",
            "Queries by the namespace of the client's pod (--top-clients), by response code",
            m.requests.clone(),
        );
        r.register(
            "client_stats_dropped",
            "Queries left out of the per-client figures because the collector fell behind",
            m.dropped.clone(),
        );
        r.register(
            "client_limited",
            "UDP queries over --max-qps-per-client, dropped or answered empty with TC=1 (slipped)",
            m.limited.clone(),
        );
        m
    }
}

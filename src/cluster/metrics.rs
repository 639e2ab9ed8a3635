//! The cluster's metrics: objects held per kind, snapshots published, the serial, the synced
//! flag and the DNS programming latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use crate::source::metrics::KindLabels;

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

/// The cluster's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// `clusterdns_kubernetes_objects{kind}`: objects held.
    pub objects: Family<KindLabels, Gauge>,
    /// `clusterdns_zone_snapshots_total`: snapshots published.
    pub snapshots: Counter,
    /// `clusterdns_zone_serial`: the SOA serial served.
    pub serial: Gauge,
    /// `clusterdns_zone_synced`: 1 once every source has completed its first full list.
    pub synced: Gauge,
    /// `clusterdns_kubernetes_dns_programming_duration_seconds{service_kind}`.
    pub programming: Family<ServiceKindLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// The cluster's metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            objects: Family::default(),
            snapshots: Counter::default(),
            serial: Gauge::default(),
            synced: Gauge::default(),
            programming: Family::new_with_constructor(programming_buckets),
        };
        registry.register(
            "kubernetes_objects",
            "Objects held, by kind",
            m.objects.clone(),
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
        m
    }
}

//! The node set-up's metrics: what the periodic check put back, and the checks that failed.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The node set-up's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `clusterdns_node_setup_restored_total`: the interface, addresses and rules that
    /// something else removed and the periodic check put back, one per item.
    pub restored: Counter,
    /// `clusterdns_node_setup_check_errors_total`: periodic checks that failed.
    pub check_errors: Counter,
}

impl Metrics {
    /// The node set-up's metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "node_setup_restored",
            "Interface, addresses and firewall rules of --setup-interface found missing and \
             put back",
            m.restored.clone(),
        );
        registry.register(
            "node_setup_check_errors",
            "Periodic checks of the --setup-interface interface and rules that failed",
            m.check_errors.clone(),
        );
        m
    }
}

//! Prometheus metrics, named as CoreDNS's behind the prefix `clusterdns_` where CoreDNS has the
//! same figure, so its dashboards port by renaming. Each subsystem defines and registers its
//! own (`server::metrics`, `forward::metrics`, `source::metrics`, `cluster::metrics`,
//! `node_setup::metrics`) and is handed only those; this module holds the registry they
//! share, the process-wide figures (build, reloads) and the text exposition.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use crate::clients::metrics::{ClientLabels, Metrics as ClientMetrics};
pub use crate::cluster::metrics::{Metrics as ClusterMetrics, ServiceKindLabels};
pub use crate::forward::metrics::{
    CacheTypeLabels, Metrics as ForwardMetrics, UpstreamLabels, UpstreamRcodeLabels,
};
pub use crate::node_setup::Metrics as NodeSetupMetrics;
pub use crate::server::metrics::{
    AddrFamily, DnsMetrics, DropLabels, FAMILIES, Metrics as ServerMetrics, PROTOS, Proto,
    QueryObservation, RCODES, TYPES, rcode_index, type_index,
};
pub use crate::source::metrics::{KindLabels, Metrics as SourceMetrics};

/// Labels of `clusterdns_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The source revision (`CLUSTERDNS_REVISION` at build time), `unknown` without it.
    pub revision: &'static str,
}

/// Every metric clusterdns exports, in one registry.
pub struct Metrics {
    registry: Registry,
    /// The server's: per-query families and bounds.
    pub server: Arc<ServerMetrics>,
    /// The forwarder's: the cache and the upstreams.
    pub forward: Arc<ForwardMetrics>,
    /// The sources': watches and lists.
    pub source: Arc<SourceMetrics>,
    /// The cluster's: objects, snapshots, programming latency.
    pub cluster: Arc<ClusterMetrics>,
    /// The node set-up's (`--setup-interface`): what its keeper restored.
    pub node_setup: Arc<NodeSetupMetrics>,
    /// The per-client figures' (`--top-clients`).
    pub clients: Arc<ClientMetrics>,
    /// `clusterdns_reload_total`: configuration file changes applied.
    pub reloads: Counter,
    /// `clusterdns_reload_failed_total`: configuration file changes rejected (old one kept).
    pub reload_failed: Counter,
    /// `clusterdns_reload_restart_required_total`: changed keys that only a restart applies.
    pub reload_restart_required: Counter,
    /// `clusterdns_build_info{version,revision}`: 1.
    pub build_info: Family<BuildLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

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
        let server = Arc::new(ServerMetrics::new(&mut registry, servers, zones));
        let forward = Arc::new(ForwardMetrics::new(&mut registry));
        let (reloads, reload_failed, reload_restart_required) = Default::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "reload",
            "Configuration file changes applied",
            Counter::clone(&reloads),
        );
        registry.register(
            "reload_failed",
            "Configuration file changes rejected; the previous configuration stays",
            Counter::clone(&reload_failed),
        );
        registry.register(
            "reload_restart_required",
            "Changed configuration keys that take effect only after a restart",
            Counter::clone(&reload_restart_required),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("CLUSTERDNS_REVISION").unwrap_or("unknown"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Version and source revision of this clusterdns; always 1",
            build_info.clone(),
        );
        let source = Arc::new(SourceMetrics::new(&mut registry));
        let cluster = Arc::new(ClusterMetrics::new(&mut registry));
        let node_setup = Arc::new(NodeSetupMetrics::new(&mut registry));
        let clients = Arc::new(ClientMetrics::new(&mut registry));
        Self {
            clients,
            registry,
            server,
            forward,
            source,
            cluster,
            node_setup,
            reloads,
            reload_failed,
            reload_restart_required,
            build_info,
        }
    }

    /// Records one answered query (no lock, no allocation).
    pub fn observe_query(&self, o: &QueryObservation) {
        self.server.observe_query(o);
    }

    /// The per-query families.
    pub fn dns(&self) -> &DnsMetrics {
        &self.server.dns
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

//! Wiring: source → cluster → snapshot → server, and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use hickory_server::Server;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::{ALL_KINDS, Cluster, ClusterOptions, Delta};
use crate::config::Config;
use crate::server::{self, DnsHandler};
use crate::source::manifests::ManifestSource;
use crate::source::watch;
use crate::zone::{Snapshot, ZoneConfig};

/// A started clusterdns: listening, serving, following its source.
pub struct Running {
    /// Bound UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp: Vec<SocketAddr>,
    zone: Arc<ArcSwap<Snapshot>>,
    server: Server<DnsHandler>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The snapshot currently served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.zone.load_full()
    }

    /// Stops listening, lets queries in flight finish, and stops the source.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::warn!(error = %e, "listener ended with an error");
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Applies batches of deltas from the sources and publishes each new snapshot.
async fn follow(
    mut cluster: Cluster,
    mut rx: mpsc::UnboundedReceiver<Vec<Delta>>,
    zone: Arc<ArcSwap<Snapshot>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        // Coalesce whatever else is already queued into one snapshot.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        if let Some(snap) = cluster.apply(batch) {
            tracing::debug!(
                serial = snap.serial,
                services = snap.services.len(),
                "zone updated"
            );
            zone.store(snap);
        }
    }
}

/// Loads the source, binds the listeners and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let zone_config = ZoneConfig::new(&config.zone, config.ttl, config.pods)
        .map_err(anyhow::Error::msg)
        .context("--zone")?;
    let options = ClusterOptions {
        namespaces: config
            .namespaces
            .iter()
            .map(|n| n.as_str().into())
            .collect(),
        endpoint_pod_names: config.endpoint_pod_names,
    };
    let mut cluster = Cluster::new(Arc::new(zone_config), &ALL_KINDS).with_options(options);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();

    let Some(dir) = &config.manifests else {
        bail!(
            "no source: pass --manifests DIR (the Kubernetes API source is not available in this build)"
        );
    };
    let mut source = ManifestSource::new(dir);
    let scan = source
        .scan(true)
        .with_context(|| format!("cannot read manifests directory {}", dir.display()))?;
    for e in &scan.errors {
        tracing::warn!(error = %e, "manifest rejected");
    }
    let mut initial = scan.deltas;
    initial.extend(ALL_KINDS.map(Delta::Synced));
    cluster.apply(initial);
    let snapshot = cluster.snapshot();
    tracing::info!(
        dir = %dir.display(),
        files = scan.files_read,
        services = snapshot.services.len(),
        serial = snapshot.serial,
        "manifests loaded"
    );
    tasks.push(tokio::spawn(watch::run(source, tx, config.manifests_poll)));

    let zone = Arc::new(ArcSwap::new(snapshot));
    tasks.push(tokio::spawn(follow(cluster, rx, Arc::clone(&zone))));

    let listeners = server::bind(&config.listen)?;
    let (udp, tcp) = (listeners.udp_addrs(), listeners.tcp_addrs());
    let server = listeners.serve(DnsHandler::new(Arc::clone(&zone)), config.tcp_idle_timeout);
    tracing::info!(?udp, ?tcp, zone = %config.zone, "serving");
    Ok(Running {
        udp,
        tcp,
        zone,
        server,
        tasks,
    })
}

//! Wiring: source → cluster → snapshot → server, the side port, and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::{ALL_KINDS, Cluster, ClusterOptions, Delta};
use crate::config::{Config, resolv_conf_nameservers};
use crate::forward::{CacheSettings, ForwardSettings, Forwarder, PoolSettings};
use crate::health::{self, Health};
use crate::metrics::{KindLabels, Metrics, ServiceKindLabels};
use crate::server::{self, DnsHandler, Serving};
use crate::source::manifests::ManifestSource;
use crate::source::{kube as kube_source, watch};
use crate::zone::{Snapshot, ZoneConfig};
use crate::zonefile::{self, ZoneDir};

/// How often the zone files directory is re-checked, besides file-system events.
const ZONES_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// A started clusterdns: listening, serving, following its source.
pub struct Running {
    /// Bound UDP addresses.
    pub udp: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp: Vec<SocketAddr>,
    /// The side port (`/healthz`, `/readyz`, `/metrics`).
    pub metrics_addr: SocketAddr,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    zone: Arc<ArcSwap<Snapshot>>,
    draining: Arc<AtomicBool>,
    server: Serving,
    tasks: Vec<JoinHandle<()>>,
    lameduck: Duration,
    grace: Duration,
}

impl Running {
    /// The snapshot currently served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.zone.load_full()
    }

    /// Lameduck, then drain: readiness turns off while queries are still answered for the
    /// lameduck period; then the listeners stop taking queries, those in flight are answered,
    /// and the source stops; all within the shutdown grace.
    pub async fn shutdown(self) {
        self.draining.store(true, Ordering::Relaxed);
        let lameduck = self.lameduck.min(self.grace);
        if !lameduck.is_zero() {
            tracing::info!(
                ?lameduck,
                "not ready; still answering until the Service drops this endpoint"
            );
            tokio::time::sleep(lameduck).await;
        }
        if !self.server.shutdown(self.grace - lameduck).await {
            tracing::warn!(grace = ?self.grace, "queries still in flight at the end of the shutdown grace were dropped");
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Applies batches of deltas from the sources and publishes each new snapshot.
async fn follow(
    mut cluster: Cluster,
    mut rx: mpsc::UnboundedReceiver<Vec<Delta>>,
    zone: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        // Coalesce whatever else is already queued into one snapshot.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        let was_synced = zone.load().synced;
        if let Some(snap) = cluster.apply(batch) {
            tracing::debug!(
                serial = snap.serial,
                services = snap.services.len(),
                "zone updated"
            );
            if snap.synced && !was_synced {
                tracing::info!(
                    services = snap.services.len(),
                    serial = snap.serial,
                    "zone synced"
                );
            }
            metrics.serial.set(i64::from(snap.serial));
            metrics.snapshots.inc();
            zone.store(snap);
            let now = now_ms();
            for (service_kind, trigger) in cluster.take_programming() {
                let seconds = (now - trigger).max(0) as f64 / 1000.0;
                metrics
                    .programming
                    .get_or_create(&ServiceKindLabels { service_kind })
                    .observe(seconds);
            }
        }
        for (kind, n) in cluster.counts() {
            metrics
                .objects
                .get_or_create(&KindLabels {
                    kind: kind.to_string(),
                })
                .set(n as i64);
        }
    }
}

fn options(config: &Config) -> ClusterOptions {
    ClusterOptions {
        namespaces: config
            .namespaces
            .iter()
            .map(|n| n.as_str().into())
            .collect(),
        endpoint_pod_names: config.endpoint_pod_names,
    }
}

/// The forwarder the configuration asks for: `None` with `--no-forward`, or when no upstream
/// is configured and resolv.conf names none (then only stub domains, if any, are forwarded).
fn forwarder(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Option<Arc<Forwarder>>> {
    if config.no_forward {
        return Ok(None);
    }
    let upstreams = if config.upstreams.is_empty() {
        let path = &config.resolv_conf;
        let found = match std::fs::read_to_string(path) {
            Ok(text) => resolv_conf_nameservers(&text),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read resolv.conf: no default upstreams");
                Vec::new()
            }
        };
        if found.is_empty() {
            tracing::warn!(file = %path.display(), "no nameserver in resolv.conf: names outside the served zones are refused");
        }
        found
    } else {
        config.upstreams.clone()
    };
    let mut stub_domains = Vec::new();
    for s in &config.stub_domains {
        let name = hickory_proto::rr::Name::from_ascii(format!("{}.", s.domain))
            .with_context(|| format!("--stub-domain {}", s.domain))?;
        stub_domains.push((name, s.upstreams.clone()));
    }
    if upstreams.is_empty() && stub_domains.is_empty() {
        return Ok(None);
    }
    tracing::info!(
        ?upstreams,
        stub_domains = config.stub_domains.len(),
        "forwarding"
    );
    let settings = ForwardSettings {
        upstreams,
        stub_domains,
        pool: PoolSettings {
            timeout: config.upstream_timeout,
            max_fails: config.max_fails,
            health_interval: config.health_check_interval,
            policy: config.policy,
        },
        max_concurrent: config.max_concurrent as usize,
        cache: CacheSettings {
            size: config.cache_size,
            max_ttl: config.cache_max_ttl,
            max_negative_ttl: config.cache_max_negative_ttl,
            min_ttl: config.cache_min_ttl,
            serve_stale: config.serve_stale,
        },
        prefetch: config.prefetch,
    };
    Ok(Some(Arc::new(Forwarder::new(
        settings,
        Arc::clone(metrics),
    ))))
}

/// The answer features the configuration turns on.
fn answer_options(config: &Config) -> server::AnswerOptions {
    server::AnswerOptions {
        shuffle: config.shuffle,
        no_aaaa_outside_zone: config.no_aaaa_outside_zone,
        autopath: config.autopath,
        transfer_to: config.transfer_to.clone(),
    }
}

/// Loads the source, binds the listeners and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    if config.autopath && config.pods != crate::zone::PodsMode::Verified {
        anyhow::bail!(
            "--autopath needs --pods verified: the pod watch is what maps a client's address \
             to its namespace"
        );
    }
    let zone_config = ZoneConfig::new(&config.zone, config.ttl, config.pods)
        .map_err(anyhow::Error::msg)
        .context("--zone")?
        .with_reverse_cidrs(config.reverse_cidrs.clone());
    let zone_config = Arc::new(zone_config);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();

    let cluster = match &config.manifests {
        Some(dir) => {
            let mut cluster = Cluster::new(zone_config, &ALL_KINDS).with_options(options(config));
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
            tracing::info!(dir = %dir.display(), files = scan.files_read, services = cluster.snapshot().services.len(), "manifests loaded");
            tasks.push(tokio::spawn(watch::run(source, tx, config.manifests_poll)));
            cluster
        }
        None => {
            let client = kube_source::connect(config).await?;
            let kinds = kube_source::watched_kinds(config);
            let cluster = Cluster::new(zone_config, &kinds).with_options(options(config));
            for kind in kinds {
                tasks.push(tokio::spawn(kube_source::watch_kind(
                    client.clone(),
                    kind,
                    tx.clone(),
                    Arc::clone(&metrics),
                )));
            }
            cluster
        }
    };

    let zone = Arc::new(ArcSwap::new(cluster.snapshot()));
    tasks.push(tokio::spawn(follow(
        cluster,
        rx,
        Arc::clone(&zone),
        Arc::clone(&metrics),
    )));

    let draining = Arc::new(AtomicBool::new(false));
    let health = Health {
        zone: Arc::clone(&zone),
        draining: Arc::clone(&draining),
        metrics: Arc::clone(&metrics),
    };
    let (metrics_addr, side) = health::bind(config.metrics_listen, health)
        .await
        .with_context(|| format!("cannot bind --metrics-listen {}", config.metrics_listen))?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = side.await {
            tracing::error!(error = %e, "side port stopped");
        }
    }));

    // Wait (bounded) for the first full list before answering at all, as CoreDNS does.
    let deadline = tokio::time::Instant::now() + config.startup_timeout;
    while !zone.load().synced && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if !zone.load().synced {
        tracing::warn!(timeout = ?config.startup_timeout, "serving before the first full list from the API: unknown names answer SERVFAIL until it arrives");
    }

    let listeners = server::bind(&config.listen)?;
    let (udp, tcp) = (listeners.udp_addrs(), listeners.tcp_addrs());
    let mut handler = DnsHandler::new(Arc::clone(&zone), Arc::clone(&metrics))
        .with_options(answer_options(config));
    if let Some(dir) = &config.zones {
        if !dir.is_dir() {
            anyhow::bail!("--zones {}: not a directory", dir.display());
        }
        let mut zone_dir = ZoneDir::new(dir);
        let first = zone_dir.scan();
        let origins: Vec<String> = first
            .zones
            .origins()
            .iter()
            .map(|o| o.to_string())
            .collect();
        tracing::info!(dir = %dir.display(), ?origins, errors = first.errors.len(), "zone files loaded");
        let zones = Arc::new(ArcSwap::new(first.zones));
        tasks.push(tokio::spawn(zonefile::follow(
            zone_dir,
            Arc::clone(&zones),
            ZONES_POLL,
        )));
        handler = handler.with_static_zones(zones);
    }
    let forwarder = forwarder(config, &metrics)?;
    if let Some(f) = &forwarder {
        handler = handler.with_forwarder(Arc::clone(f));
    }
    let limits = server::TcpLimits {
        idle_timeout: config.tcp_idle_timeout,
        max_connections: config.max_tcp_connections as usize,
    };
    let server = listeners.serve(handler, limits, Arc::clone(&metrics));
    tracing::info!(?udp, ?tcp, %metrics_addr, zone = %config.zone, "serving");
    if let Some(f) = &forwarder
        && let Some(upstream) = f.find_loop().await
    {
        server.shutdown(config.shutdown_grace).await;
        for t in tasks {
            t.abort();
        }
        anyhow::bail!(
            "forwarding loop: upstream {upstream} sent this server's probe query back to it \
             (it forwards to clusterdns itself); point --upstream or --resolv-conf at a resolver \
             that does not use clusterdns"
        );
    }
    Ok(Running {
        udp,
        tcp,
        metrics_addr,
        metrics,
        zone,
        draining,
        server,
        tasks,
        lameduck: config.lameduck,
        grace: config.shutdown_grace,
    })
}

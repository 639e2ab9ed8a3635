//! Wiring: source → cluster → snapshot → server, the side port, and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clients::metrics::LimitLabels;
use crate::clients::{ClientStats, spawn_collector};
use crate::cluster::{ALL_KINDS, Cluster, Delta};
use crate::config::Config;
use crate::config::Mode;
use crate::forward::{Forwarder, loop_error, spawn_watch};
use crate::health::{self, Health, NodeReady};
use crate::hosts::{self, HostsFile};
use crate::metrics::Metrics;
use crate::node_setup::{NodeSetup, spawn_keeper};
use crate::reload::Live;
use crate::rewrite::Rewriter;
use crate::server::groups::{Group, bind_groups, serve_groups};
use crate::server::limit::ClientLimiter;
use crate::server::{self, DnsHandler};
use crate::source::kube::{self as kube_source, KubeSettings};
use crate::source::manifests::ManifestSource;
use crate::source::watch;
use crate::static_zones::{self, ZoneDir};
use crate::zone::Snapshot;

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
    live: Arc<tokio::sync::Mutex<Live>>,
    reloader: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    lameduck: Duration,
    grace: Duration,
    /// Set once something makes serving on pointless (a forwarding loop found late).
    fatal: tokio::sync::watch::Receiver<Option<String>>,
    /// The node set-up of `--setup-interface`: torn down once the listeners have stopped.
    node: Option<Arc<NodeSetup>>,
}

impl Running {
    /// Waits until clusterdns cannot go on serving, and says why: an upstream found to forward
    /// back to it after start (its loop probes keep going for `LOOP_WATCH`). The caller shuts
    /// down and exits non-zero, as CoreDNS's `loop` plugin does.
    pub async fn fatal(&self) -> String {
        let mut rx = self.fatal.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            // The sender lives as long as `self`: never reached while serving.
            Err(_) => std::future::pending().await,
        }
    }

    /// The snapshot currently served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.zone.load_full()
    }

    /// The UDP and TCP addresses bound now (they change when a reload changes `listen`).
    pub async fn listen_addrs(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let live = self.live.lock().await;
        let udp = live.groups.iter().flat_map(|g| g.udp.clone()).collect();
        let tcp = live.groups.iter().flat_map(|g| g.tcp.clone()).collect();
        (udp, tcp)
    }

    /// Lameduck, then drain: readiness turns off while queries are still answered for the
    /// lameduck period; then the listeners stop taking queries, those in flight are answered,
    /// and the source stops; all within the shutdown grace.
    pub async fn shutdown(self) {
        if let Some(r) = &self.reloader {
            r.abort();
        }
        self.draining.store(true, Ordering::Relaxed);
        let lameduck = self.lameduck.min(self.grace);
        if !lameduck.is_zero() {
            tracing::info!(
                ?lameduck,
                "not ready; still answering until the Service drops this endpoint"
            );
            tokio::time::sleep(lameduck).await;
        }
        let groups = std::mem::take(&mut self.live.lock().await.groups);
        let left = self.grace - lameduck;
        let drained =
            futures::future::join_all(groups.into_iter().map(|g| g.serving.shutdown(left)))
                .await
                .into_iter()
                .all(|d| d);
        if !drained {
            tracing::warn!(grace = ?self.grace, "queries still in flight at the end of the shutdown grace were dropped");
        }
        // Before the keeper is stopped: it waits for a check under way, then restores nothing.
        if let Some(n) = &self.node {
            n.finish().await;
        }
        stop(self.tasks).await;
    }
}

/// Stops what `start` had started before it found it must not serve.
async fn refuse(groups: Vec<Group>, tasks: Vec<JoinHandle<()>>, grace: Duration) {
    for g in groups {
        g.serving.shutdown(grace).await;
    }
    stop(tasks).await;
}

/// Cancels the background tasks and waits until each has let go of what it held (the side
/// port's listener among them).
async fn stop(tasks: Vec<JoinHandle<()>>) {
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        // Cancelled, it ends in a `JoinError`, which says nothing new here (a panic was
        // reported by the panic hook when it happened).
        let _ = t.await;
    }
}

/// Sets up the node (`--setup-interface`), loads the source, binds the listeners and starts
/// serving. When it fails after the node set-up, the set-up is torn down again (unless
/// `--skip-teardown`).
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    config.validate()?;
    let zone_config = Arc::new(config.zone_config()?);
    let metrics = Arc::new(config.metrics());
    let mut tasks = Vec::new();
    let node = match config.setup_spec()? {
        Some(spec) => {
            let node = Arc::new(NodeSetup::install(spec).await?);
            let every = config.node_setup_interval;
            let counted = Arc::clone(&metrics.node_setup);
            tasks.push(spawn_keeper(Arc::clone(&node), every, counted));
            Some(node)
        }
        None => None,
    };
    let started = serve(config, zone_config, metrics, node.clone(), tasks).await;
    if let (Err(_), Some(n)) = (&started, &node) {
        n.finish().await;
    }
    started
}

/// `start` once the node is set up: the source, the listeners, the other tasks.
async fn serve(
    config: &Config,
    zone_config: Arc<crate::zone::ZoneConfig>,
    metrics: Arc<Metrics>,
    setup: Option<Arc<NodeSetup>>,
    mut tasks: Vec<JoinHandle<()>>,
) -> anyhow::Result<Running> {
    crate::querylog::configure(config.query_log, config.query_log_rate);
    let node = (config.mode == Mode::NodeLocal).then(|| Arc::new(NodeReady::default()));
    let (zone, ttl_tx) = publish(config, zone_config, &metrics, &mut tasks).await?;

    let draining = Arc::new(AtomicBool::new(false));
    let clients = client_stats(config, &metrics, &zone, &mut tasks);
    let health = Health {
        zone: Arc::clone(&zone),
        draining: Arc::clone(&draining),
        metrics: Arc::clone(&metrics),
        node: node.clone(),
        clients: clients.clone(),
    };
    let metrics_addr = side_port(config, health, &mut tasks).await?;
    if node.is_none() {
        wait_synced(&zone, config.startup_timeout).await;
    }

    let bound = bind_groups(&config.listen_addrs(), &[])?;
    let options = config.answer_options();
    let rewriter = Rewriter::new(config.rewrites.clone());
    let (mut chain, forwarder) = chain(config, &options, &metrics, &mut tasks)?;
    chain.push(server::Stage::Rewrite(Arc::clone(&rewriter)));
    let handler = DnsHandler::new(Arc::clone(&zone), Arc::clone(&metrics.server))
        .with_options(options)
        .with_chain(chain)
        .with_clients(clients)
        .with_limiter(limiter(config, &metrics))
        .with_udp_thread_nice(config.udp_thread_nice);
    let limits = config.tcp_limits();
    let groups = serve_groups(bound, &handler, limits, &metrics.server);
    let udp: Vec<SocketAddr> = groups.iter().flat_map(|g| g.udp.clone()).collect();
    let tcp: Vec<SocketAddr> = groups.iter().flat_map(|g| g.tcp.clone()).collect();
    tracing::info!(?udp, ?tcp, %metrics_addr, zone = %config.zone, mode = ?config.mode, "serving");
    if let (Some(node), Some(f)) = (&node, &forwarder) {
        node.listening.store(true, Ordering::Relaxed);
        let (f, node, zone) = (Arc::clone(f), Arc::clone(node), config.zone.clone());
        tasks.push(tokio::spawn(reach_central(f, node, zone)));
    }
    let (fatal_tx, fatal) = tokio::sync::watch::channel(None);
    let fatal_tx = Arc::new(fatal_tx);
    if let Some(f) = &forwarder {
        let check = f.check_loops(&f.probes()).await;
        if let Some(upstream) = check.looped {
            refuse(groups, tasks, config.shutdown_grace).await;
            anyhow::bail!(loop_error(&upstream));
        }
        tasks.extend(spawn_watch(f, check.unanswered, &fatal_tx));
    }
    let live = Arc::new(tokio::sync::Mutex::new(Live {
        config: config.clone(),
        groups,
        handler,
        limits,
        forwarder,
        rewriter,
        ttl: ttl_tx,
        metrics: Arc::clone(&metrics),
        fatal: Arc::clone(&fatal_tx),
    }));
    let reloader = config
        .config
        .clone()
        .map(|path| tokio::spawn(crate::reload::watch(path, Arc::clone(&live))));
    Ok(Running {
        udp,
        tcp,
        metrics_addr,
        metrics,
        zone,
        draining,
        live,
        reloader,
        tasks,
        lameduck: config.lameduck,
        grace: config.shutdown_grace,
        fatal,
        node: setup,
    })
}

/// `--max-qps-per-client`: the UDP token buckets, when a limit is set.
fn limiter(config: &Config, metrics: &Metrics) -> Option<Arc<ClientLimiter>> {
    if config.max_qps_per_client == 0 {
        return None;
    }
    let counter = |action| {
        metrics
            .clients
            .limited
            .get_or_create(&LimitLabels { action })
            .clone()
    };
    Some(Arc::new(ClientLimiter::new(
        config.max_qps_per_client,
        config.client_limit_slip,
        counter("dropped"),
        counter("slipped"),
    )))
}

/// `--top-clients` with `--pods verified`: the per-client figures and their collector.
fn client_stats(
    config: &Config,
    metrics: &Metrics,
    zone: &Arc<ArcSwap<Snapshot>>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Option<Arc<ClientStats>> {
    if config.pods != crate::zone::PodsMode::Verified || config.top_clients == 0 {
        return None;
    }
    let top = config.top_clients as usize;
    let c = Arc::new(ClientStats::new(top, Arc::clone(&metrics.clients)));
    tasks.push(spawn_collector(Arc::clone(&c), Arc::clone(zone)));
    Some(c)
}

/// The zone served and its publish loop (with the sender of TTL changes a reload makes): in
/// cluster mode, of the configured source; in node-local mode empty (the cluster zone is the
/// central tier's).
async fn publish(
    config: &Config,
    zone_config: Arc<crate::zone::ZoneConfig>,
    metrics: &Metrics,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Arc<ArcSwap<Snapshot>>, mpsc::UnboundedSender<u32>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let cluster = match config.mode {
        Mode::NodeLocal => Cluster::new(zone_config, &[]),
        Mode::Cluster => load_source(config, zone_config, tx, metrics, tasks).await?,
    };
    let zone = Arc::new(ArcSwap::new(cluster.snapshot()));
    metrics.cluster.synced.set(i64::from(zone.load().synced));
    let (ttl_tx, ttl_rx) = mpsc::unbounded_channel();
    tasks.push(tokio::spawn(crate::cluster::publish::run(
        cluster,
        rx,
        ttl_rx,
        Arc::clone(&zone),
        Arc::clone(&metrics.cluster),
    )));
    Ok((zone, ttl_tx))
}

/// The cluster, loaded from the configured source (a first scan of the manifests directory,
/// or the API client and its watches), with the tasks that follow it sending into `tx`.
async fn load_source(
    config: &Config,
    zone_config: Arc<crate::zone::ZoneConfig>,
    tx: mpsc::UnboundedSender<Vec<Delta>>,
    metrics: &Metrics,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Cluster> {
    Ok(match &config.manifests {
        Some(dir) => {
            let mut cluster =
                Cluster::new(zone_config, &ALL_KINDS).with_options(config.cluster_options());
            let mut source = ManifestSource::new(dir).with_label_filter(config.labels.clone());
            let scan = source
                .scan(true)
                .with_context(|| format!("cannot read manifests directory {}", dir.display()))?;
            for e in &scan.errors {
                tracing::warn!(error = %e, "manifest rejected");
            }
            let mut initial = scan.deltas;
            initial.extend(ALL_KINDS.map(Delta::Synced));
            cluster.apply(initial);
            crate::heap::release_free_memory();
            tracing::info!(dir = %dir.display(), files = scan.files_read, services = cluster.snapshot().services.len(), "manifests loaded");
            tasks.push(tokio::spawn(watch::run(source, tx, config.manifests_poll)));
            cluster
        }
        None => {
            let settings = KubeSettings::from(config);
            let client = kube_source::connect(&settings).await?;
            let kinds = kube_source::watched_kinds(&settings);
            let cluster = Cluster::new(zone_config, &kinds).with_options(config.cluster_options());
            for kind in kinds {
                tasks.push(tokio::spawn(kube_source::watch_kind_selected(
                    client.clone(),
                    kind,
                    kube_source::selectors(&settings, kind),
                    tx.clone(),
                    Arc::clone(&metrics.source),
                )));
            }
            cluster
        }
    })
}

/// The answer chain: the cluster zone (cluster mode only), zone files, the AAAA filter, the
/// upstreams (in node-local mode the cluster zone's among them); each but the first when
/// configured. Also the forwarder, which reload and the loop probes need.
fn chain(
    config: &Config,
    options: &server::AnswerOptions,
    metrics: &Metrics,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Vec<server::Stage>, Option<Arc<Forwarder>>)> {
    let mut chain = Vec::new();
    if config.mode == Mode::Cluster {
        chain.push(server::Stage::Cluster);
    }
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
        tasks.push(tokio::spawn(static_zones::watch(
            zone_dir,
            Arc::clone(&zones),
            ZONES_POLL,
        )));
        chain.push(server::Stage::StaticZones(zones));
    }
    if let Some(stage) = hosts_stage(config, tasks)? {
        chain.push(stage);
    }
    if options.no_aaaa_outside_zone {
        chain.push(server::Stage::AaaaFilter);
    }
    let forwarder = config
        .forward_settings()?
        .map(|settings| Arc::new(Forwarder::new(settings, Arc::clone(&metrics.forward))));
    if let Some(f) = &forwarder {
        chain.push(server::Stage::Forward(Arc::clone(f)));
    }
    Ok((chain, forwarder))
}

/// The host entries' stage, when `--hosts` or `--hosts-configmap` is given: the file read
/// once (it must be readable at start) and then followed by a task.
fn hosts_stage(
    config: &Config,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Option<server::Stage>> {
    let Some(path) = &config.hosts else {
        return Ok(config
            .hosts_configmap
            .is_some()
            .then_some(server::Stage::Hosts(None)));
    };
    let file = HostsFile {
        path: path.clone(),
        options: config.hosts_options(),
    };
    let (table, errors) = file
        .read()
        .with_context(|| format!("--hosts {}: cannot read", path.display()))?;
    tracing::info!(file = %path.display(), names = table.len(), skipped = errors.len(), "hosts file loaded");
    let table = Arc::new(ArcSwap::from_pointee(table));
    tasks.push(tokio::spawn(hosts::watch(
        file,
        Arc::clone(&table),
        ZONES_POLL,
    )));
    Ok(Some(server::Stage::Hosts(Some(table))))
}

/// Binds the side port (`/healthz`, `/readyz`, `/metrics`) and serves it in a task: its address.
async fn side_port(
    config: &Config,
    health: Health,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<SocketAddr> {
    let side_addr = config.side_port();
    let (metrics_addr, side) = health::bind(side_addr, health)
        .await
        .with_context(|| format!("cannot bind --metrics-listen {side_addr}"))?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = side.await {
            tracing::error!(error = %e, "side port stopped");
        }
    }));
    Ok(metrics_addr)
}

/// Node-local readiness: asks the central tier for the cluster zone's SOA every second until
/// one `--cluster-dns` server has answered (or a pod's query got there first).
async fn reach_central(f: Arc<Forwarder>, node: Arc<NodeReady>, zone: String) {
    let Ok(name) = hickory_proto::rr::Name::from_ascii(format!("{}.", zone.trim_end_matches('.')))
    else {
        return;
    };
    loop {
        if f.answered_for(&name) || f.reach(&name).await {
            node.central.store(true, Ordering::Relaxed);
            tracing::info!(zone = %name, "central cluster DNS reached: ready");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits (at most `timeout`) for the first full list before answering at all, as CoreDNS does.
async fn wait_synced(zone: &ArcSwap<Snapshot>, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !zone.load().synced && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if !zone.load().synced {
        tracing::warn!(timeout = ?timeout, "serving before the first full list from the API: unknown names answer SERVFAIL until it arrives");
    }
}

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
use crate::forward::{CacheSettings, ForwardSettings, Forwarder, PoolSettings, Probe};
use crate::health::{self, Health};
use crate::metrics::{KindLabels, Metrics, ServiceKindLabels};
use crate::server::{self, BindError, DnsHandler, Listeners, Serving};
use crate::source::kube::{self as kube_source, KubeSettings};
use crate::source::manifests::ManifestSource;
use crate::source::watch;
use crate::zone::{PodsMode, Snapshot, ZoneConfig};
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
    live: Arc<tokio::sync::Mutex<Live>>,
    reloader: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    lameduck: Duration,
    grace: Duration,
    /// Set once something makes serving on pointless (a forwarding loop found late).
    fatal: tokio::sync::watch::Receiver<Option<String>>,
}

/// The listeners of one configured address (`None`: the default addresses).
pub(crate) struct Group {
    addr: Option<SocketAddr>,
    serving: Serving,
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
}

/// What a configuration reload changes.
pub(crate) struct Live {
    pub(crate) config: Config,
    groups: Vec<Group>,
    handler: DnsHandler,
    limits: server::TcpLimits,
    forwarder: Option<Arc<Forwarder>>,
    ttl: mpsc::UnboundedSender<u32>,
    pub(crate) metrics: Arc<Metrics>,
    fatal: Arc<tokio::sync::watch::Sender<Option<String>>>,
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
        stop(self.tasks).await;
    }
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
    mut ttl: mpsc::UnboundedReceiver<u32>,
    zone: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
) {
    loop {
        let first = tokio::select! {
            b = rx.recv() => match b {
                Some(b) => b,
                None => return,
            },
            Some(t) = ttl.recv() => {
                if let Some(snap) = cluster.set_ttl(t) {
                    tracing::info!(ttl = t, serial = snap.serial, "cluster records now served with the new TTL");
                    metrics.serial.set(i64::from(snap.serial));
                    metrics.snapshots.inc();
                    zone.store(snap);
                }
                continue;
            }
        };
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
            metrics.synced.set(i64::from(snap.synced));
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

/// The API source's settings: what it connects with and what it watches.
impl From<&Config> for KubeSettings {
    fn from(config: &Config) -> Self {
        KubeSettings {
            kubeconfig: config.kubeconfig.clone(),
            watch_pods: config.pods == PodsMode::Verified,
            watch_ingresses: !config.external_zones.is_empty(),
            labels: config.labels.clone(),
        }
    }
}

/// The forwarder the configuration asks for: `None` with `--no-forward`, or when no upstream
/// is configured and resolv.conf names none (then only stub domains, if any, are forwarded).
fn forwarder(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Option<Arc<Forwarder>>> {
    Ok(forward_settings(config)?
        .map(|settings| Arc::new(Forwarder::new(settings, Arc::clone(metrics)))))
}

/// The forwarding settings of `config`; `None` when nothing is forwarded.
fn forward_settings(config: &Config) -> anyhow::Result<Option<ForwardSettings>> {
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
    Ok(Some(settings))
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
    if config.autopath && config.pods != PodsMode::Verified {
        anyhow::bail!(
            "--autopath needs --pods verified: the pod watch is what maps a client's address \
             to its namespace"
        );
    }
    let zone_config = ZoneConfig::new(&config.zone, config.ttl, config.pods)
        .map_err(anyhow::Error::msg)
        .context("--zone")?
        .with_reverse_cidrs(config.reverse_cidrs.clone())
        .with_external_zones(&config.external_zones)
        .map_err(anyhow::Error::msg)?;
    let zone_config = Arc::new(zone_config);
    let server_label = match config.listen.first() {
        Some(a) => format!("dns://{a}"),
        None => "dns://:53".to_owned(),
    };
    let metrics = Arc::new(Metrics::for_server(
        &[&server_label],
        &[&format!("{}.", config.zone.trim_end_matches('.'))],
    ));
    crate::querylog::configure(config.query_log, config.query_log_rate);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();

    let cluster = match &config.manifests {
        Some(dir) => {
            let mut cluster = Cluster::new(zone_config, &ALL_KINDS).with_options(options(config));
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
            tracing::info!(dir = %dir.display(), files = scan.files_read, services = cluster.snapshot().services.len(), "manifests loaded");
            tasks.push(tokio::spawn(watch::run(source, tx, config.manifests_poll)));
            cluster
        }
        None => {
            let settings = KubeSettings::from(config);
            let client = kube_source::connect(&settings).await?;
            let kinds = kube_source::watched_kinds(&settings);
            let cluster = Cluster::new(zone_config, &kinds).with_options(options(config));
            for kind in kinds {
                tasks.push(tokio::spawn(kube_source::watch_kind_filtered(
                    client.clone(),
                    kind,
                    kube_source::label_selector(&settings, kind),
                    tx.clone(),
                    Arc::clone(&metrics),
                )));
            }
            cluster
        }
    };

    let zone = Arc::new(ArcSwap::new(cluster.snapshot()));
    metrics.synced.set(i64::from(zone.load().synced));
    let (ttl_tx, ttl_rx) = mpsc::unbounded_channel();
    tasks.push(tokio::spawn(follow(
        cluster,
        rx,
        ttl_rx,
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

    let bound = bind_groups(&config.listen, &[])?;
    // The answer chain of cluster mode: the cluster zone, zone files, the AAAA filter, the
    // upstreams; each but the first when configured.
    let options = answer_options(config);
    let mut chain = vec![server::Stage::Cluster];
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
        chain.push(server::Stage::StaticZones(zones));
    }
    if options.no_aaaa_outside_zone {
        chain.push(server::Stage::AaaaFilter);
    }
    let forwarder = forwarder(config, &metrics)?;
    if let Some(f) = &forwarder {
        chain.push(server::Stage::Forward(Arc::clone(f)));
    }
    let handler = DnsHandler::new(Arc::clone(&zone), Arc::clone(&metrics))
        .with_options(options)
        .with_chain(chain);
    let limits = server::TcpLimits {
        idle_timeout: config.tcp_idle_timeout,
        max_connections: config.max_tcp_connections as usize,
    };
    let groups = serve_groups(bound, &handler, limits, &metrics);
    let udp: Vec<SocketAddr> = groups.iter().flat_map(|g| g.udp.clone()).collect();
    let tcp: Vec<SocketAddr> = groups.iter().flat_map(|g| g.tcp.clone()).collect();
    tracing::info!(?udp, ?tcp, %metrics_addr, zone = %config.zone, "serving");
    let (fatal_tx, fatal) = tokio::sync::watch::channel(None);
    let fatal_tx = Arc::new(fatal_tx);
    if let Some(f) = &forwarder {
        let check = f.check_loops(&f.probes()).await;
        if let Some(upstream) = check.looped {
            for g in groups {
                g.serving.shutdown(config.shutdown_grace).await;
            }
            stop(tasks).await;
            anyhow::bail!(loop_error(upstream));
        }
        tasks.extend(watch_loops(f, check.unanswered, &fatal_tx));
    }
    let live = Arc::new(tokio::sync::Mutex::new(Live {
        config: config.clone(),
        groups,
        handler,
        limits,
        forwarder,
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
    })
}

/// Why clusterdns stops when `upstream` forwards its queries back to it.
fn loop_error(upstream: SocketAddr) -> String {
    format!(
        "forwarding loop: upstream {upstream} sent this server's probe query back to it \
         (it forwards to clusterdns itself); point --upstream or --resolv-conf at a resolver \
         that does not use clusterdns"
    )
}

/// Keeps probing the upstreams that did not answer a loop probe (`forward::LOOP_WATCH`); a loop
/// found then is reported through `fatal`.
fn watch_loops(
    forwarder: &Arc<Forwarder>,
    pending: Vec<Probe>,
    fatal: &Arc<tokio::sync::watch::Sender<Option<String>>>,
) -> Option<JoinHandle<()>> {
    if pending.is_empty() {
        return None;
    }
    let addrs: Vec<SocketAddr> = pending.iter().map(Probe::addr).collect();
    tracing::info!(upstreams = ?addrs, "upstreams did not answer the loop probe; probing them again for 30 s");
    let (f, fatal) = (Arc::clone(forwarder), Arc::clone(fatal));
    Some(tokio::spawn(async move {
        if let Some(upstream) = f.watch_loops(pending).await {
            let why = loop_error(upstream);
            tracing::error!(%upstream, "{why}");
            fatal.send_replace(Some(why));
        }
    }))
}

/// Binds the listeners of `addrs` (the defaults when empty), skipping those `keep` already
/// has: one group per configured address.
fn bind_groups(
    addrs: &[SocketAddr],
    keep: &[Option<SocketAddr>],
) -> Result<Vec<(Option<SocketAddr>, Listeners)>, BindError> {
    let wanted: Vec<Option<SocketAddr>> = if addrs.is_empty() {
        vec![None]
    } else {
        addrs.iter().copied().map(Some).collect()
    };
    let mut out = Vec::new();
    for a in wanted {
        if keep.contains(&a) || out.iter().any(|(b, _)| *b == a) {
            continue;
        }
        let listeners = match a {
            Some(addr) => server::bind(&[addr])?,
            None => server::bind(&[])?,
        };
        out.push((a, listeners));
    }
    Ok(out)
}

fn serve_groups(
    bound: Vec<(Option<SocketAddr>, Listeners)>,
    handler: &DnsHandler,
    limits: server::TcpLimits,
    metrics: &Arc<Metrics>,
) -> Vec<Group> {
    bound
        .into_iter()
        .map(|(addr, l)| {
            let (udp, tcp) = (l.udp_addrs(), l.tcp_addrs());
            let serving = l.serve(handler.clone(), limits, Arc::clone(metrics));
            Group {
                addr,
                serving,
                udp,
                tcp,
            }
        })
        .collect()
}

/// Keys whose change reaches the forwarder.
const FORWARD_KEYS: [&str; 12] = [
    "upstream",
    "stub-domain",
    "resolv-conf",
    "policy",
    "upstream-timeout",
    "max-fails",
    "health-check-interval",
    "max-concurrent",
    "cache-max-ttl",
    "cache-max-negative-ttl",
    "cache-min-ttl",
    "prefetch",
];

/// Keys besides `FORWARD_KEYS` that a reload applies while serving.
const OTHER_LIVE_KEYS: [&str; 5] = ["ttl", "listen", "log-level", "query-log", "query-log-rate"];

/// Whether a reload applies `key` while serving; any other changed key needs a restart.
pub fn is_live_key(key: &str) -> bool {
    FORWARD_KEYS.contains(&key) || OTHER_LIVE_KEYS.contains(&key)
}

/// Applies a new configuration to a running server; the error says why nothing was applied.
pub(crate) async fn apply(live: &Arc<tokio::sync::Mutex<Live>>, new: Config) -> anyhow::Result<()> {
    let mut live = live.lock().await;
    let changed = live.config.loaded.changed(&new.loaded);
    let restart: Vec<&String> = changed.iter().filter(|k| !is_live_key(k)).collect();
    let forward_changed = changed.iter().any(|k| FORWARD_KEYS.contains(&k.as_str()));
    // Everything that can fail first, so a failure leaves the old configuration whole.
    let settings = if forward_changed {
        forward_settings(&new)?
    } else {
        None
    };
    if forward_changed && settings.is_some() != live.forwarder.is_some() {
        anyhow::bail!(
            "forwarding would be turned {}: restart clusterdns to apply it",
            if settings.is_some() { "on" } else { "off" }
        );
    }
    let bound = if changed.iter().any(|k| k == "listen") {
        let keep: Vec<Option<SocketAddr>> = live.groups.iter().map(|g| g.addr).collect();
        Some(bind_groups(&new.listen, &keep)?)
    } else {
        None
    };
    // Upstreams the reload adds must not forward back here.
    let mut unanswered = Vec::new();
    if let (Some(settings), Some(f)) = (&settings, &live.forwarder) {
        let old: std::collections::HashSet<SocketAddr> =
            f.probes().iter().map(Probe::addr).collect();
        let added: Vec<Probe> = crate::forward::probes_for(settings)
            .into_iter()
            .filter(|p| !old.contains(&p.addr()))
            .collect();
        if !added.is_empty() {
            let check = f.check_loops(&added).await;
            if let Some(upstream) = check.looped {
                anyhow::bail!(loop_error(upstream));
            }
            unanswered = check.unanswered;
        }
    }
    // Then apply.
    if let (Some(settings), Some(f)) = (settings, &live.forwarder) {
        tracing::info!(upstreams = ?settings.upstreams, stub_domains = settings.stub_domains.len(), "forwarding settings changed");
        f.reconfigure(settings);
        // Detached: it ends by itself within `LOOP_WATCH`.
        drop(watch_loops(f, unanswered, &live.fatal));
    }
    if new.ttl != live.config.ttl {
        let _ = live.ttl.send(new.ttl);
    }
    if new.log_level != live.config.log_level
        && let Err(e) = crate::logging::set_level(&new.log_level)
    {
        tracing::warn!(error = %e, "cannot change the log level");
    }
    crate::querylog::configure(new.query_log, new.query_log_rate);
    if let Some(bound) = bound {
        let fresh = serve_groups(bound, &live.handler, live.limits, &live.metrics);
        let wanted: Vec<Option<SocketAddr>> = if new.listen.is_empty() {
            vec![None]
        } else {
            new.listen.iter().copied().map(Some).collect()
        };
        let (kept, gone): (Vec<Group>, Vec<Group>) = std::mem::take(&mut live.groups)
            .into_iter()
            .partition(|g| wanted.contains(&g.addr));
        let added: Vec<SocketAddr> = fresh.iter().flat_map(|g| g.udp.clone()).collect();
        let removed: Vec<SocketAddr> = gone.iter().flat_map(|g| g.udp.clone()).collect();
        tracing::info!(?added, ?removed, "listen addresses changed");
        live.groups = kept;
        live.groups.extend(fresh);
        // The old listeners stop taking queries and answer those in flight.
        let grace = new.shutdown_grace;
        tokio::spawn(async move {
            for g in gone {
                g.serving.shutdown(grace).await;
            }
        });
    }
    for key in &restart {
        tracing::warn!(%key, "configuration key changed; it takes effect after a restart");
    }
    live.metrics
        .reload_restart_required
        .inc_by(restart.len() as u64);
    // Keys needing a restart keep reporting their running value.
    let mut applied = new;
    for key in &restart {
        if let Some(v) = live.config.loaded.get(key).cloned()
            && let Some(slot) = applied.loaded.effective.iter_mut().find(|(k, _)| k == *key)
        {
            slot.1 = v;
        }
    }
    tracing::info!(changed = %changed.join(","), "configuration reloaded");
    live.config = applied;
    Ok(())
}

//! Live reload of the `--config` file: file-system events on its directory (a ConfigMap
//! update swaps the `..data` symbolic link, which a watch on the file itself would miss) and a
//! periodic re-read; a changed content is loaded and validated as at start, then applied.
//! An invalid file keeps the running configuration: it is logged once per change at warn and
//! counted in `clusterdns_reload_failed_total`. `apply` says what each changed key does to
//! the running server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::files::FileWatch;
use crate::forward::{
    Endpoint, ForwardSettings, Forwarder, Probe, loop_error, probes_for, spawn_watch,
};
use crate::metrics::Metrics;
use crate::rewrite::Rewriter;
use crate::server::groups::{Group, bind_groups, regroup, serve_groups};
use crate::server::{DnsHandler, TcpLimits};

/// How often the file is re-read, besides file-system events.
pub const POLL: Duration = Duration::from_secs(1);

/// Follows the configuration file until the task is aborted. Its directory is watched, not
/// the file: a ConfigMap update swaps the directory's `..data` link.
pub(crate) async fn watch(path: PathBuf, live: Arc<tokio::sync::Mutex<Live>>) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut files = FileWatch::new(&dir, false, POLL);
    // The file may have changed between start-up's read and this task's first look: the
    // first look compares it with the running configuration, not with itself.
    let mut last = None;
    let mut first = true;
    loop {
        files.changed().await;
        let now = std::fs::read(&path).ok();
        files.readable(Path::new(&dir).is_dir());
        if now == last && !first {
            continue;
        }
        let was_first = std::mem::replace(&mut first, false);
        last = now;
        let current = live.lock().await.config.clone();
        let metrics = Arc::clone(&live.lock().await.metrics);
        let result = match current.reload() {
            Ok(new) if was_first && current.loaded.changed(&new.loaded).is_empty() => continue,
            Ok(new) => apply(&live, new).await,
            Err(e) => Err(anyhow::Error::msg(e.to_string())),
        };
        match result {
            Ok(()) => {
                metrics.reloads.inc();
            }
            Err(e) => {
                metrics.reload_failed.inc();
                tracing::warn!(file = %path.display(), error = %format!("{e:#}"), "configuration file rejected; the running configuration stays");
            }
        };
    }
}

/// What a configuration reload changes.
pub(crate) struct Live {
    pub(crate) config: Config,
    pub(crate) groups: Vec<Group>,
    pub(crate) handler: DnsHandler,
    pub(crate) limits: TcpLimits,
    pub(crate) forwarder: Option<Arc<Forwarder>>,
    /// The `--rewrite` rules in force.
    pub(crate) rewriter: Arc<Rewriter>,
    /// The publish loop's TTL input.
    pub(crate) ttl: mpsc::UnboundedSender<u32>,
    pub(crate) metrics: Arc<Metrics>,
    /// Where a loop found late is reported.
    pub(crate) fatal: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

/// Keys whose change reaches the forwarder.
const FORWARD_KEYS: [&str; 19] = [
    "upstream",
    "upstream-idle-timeout",
    "max-upstream-connections",
    "upstream-tls-ca",
    "cluster-dns",
    "cluster-cache-ttl",
    "cluster-cache-negative-ttl",
    "cluster-serve-stale",
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
const OTHER_LIVE_KEYS: [&str; 6] = [
    "ttl",
    "listen",
    "log-level",
    "query-log",
    "query-log-rate",
    "rewrite",
];

/// Whether a reload applies `key` while serving; any other changed key needs a restart.
pub fn is_live_key(key: &str) -> bool {
    FORWARD_KEYS.contains(&key) || OTHER_LIVE_KEYS.contains(&key)
}

/// Sends the loop probe through each upstream `settings` adds to `f`'s: an error when one
/// forwards back here, else those that did not answer (to be probed again).
async fn probe_added(
    f: &Forwarder,
    settings: &ForwardSettings,
    metrics: &Metrics,
) -> anyhow::Result<Vec<Probe>> {
    let old: std::collections::HashSet<Endpoint> =
        f.probes().iter().map(|p| p.endpoint().clone()).collect();
    let added: Vec<Probe> = probes_for(settings, &metrics.forward)
        .into_iter()
        .filter(|p| !old.contains(p.endpoint()))
        .collect();
    if added.is_empty() {
        return Ok(Vec::new());
    }
    let check = f.check_loops(&added).await;
    if let Some(upstream) = check.looped {
        anyhow::bail!(loop_error(&upstream));
    }
    Ok(check.unanswered)
}

/// Applies a new configuration to a running server; the error says why nothing was applied.
pub(crate) async fn apply(live: &Arc<tokio::sync::Mutex<Live>>, new: Config) -> anyhow::Result<()> {
    let mut live = live.lock().await;
    let changed = live.config.loaded.changed(&new.loaded);
    // The addresses of `--setup-interface` are put on its interface at start only.
    let fixed = |k: &str| k == "listen" && live.config.setup_interface.is_some();
    let restart: Vec<&String> = changed
        .iter()
        .filter(|k| !is_live_key(k) || fixed(k))
        .collect();
    let forward_changed = changed.iter().any(|k| FORWARD_KEYS.contains(&k.as_str()));
    // Everything that can fail first, so a failure leaves the old configuration whole.
    let settings = if forward_changed {
        new.forward_settings()?
    } else {
        None
    };
    if forward_changed && settings.is_some() != live.forwarder.is_some() {
        anyhow::bail!(
            "forwarding would be turned {}: restart clusterdns to apply it",
            if settings.is_some() { "on" } else { "off" }
        );
    }
    let bound = if changed.iter().any(|k| k == "listen" && !fixed(k)) {
        let keep: Vec<Option<SocketAddr>> = live.groups.iter().map(|g| g.addr).collect();
        Some(bind_groups(&new.listen_addrs(), &keep)?)
    } else {
        None
    };
    // Upstreams the reload adds must not forward back here.
    let unanswered = match (&settings, &live.forwarder) {
        (Some(settings), Some(f)) => probe_added(f, settings, &live.metrics).await?,
        _ => Vec::new(),
    };
    // Then apply.
    if let (Some(settings), Some(f)) = (settings, &live.forwarder) {
        tracing::info!(upstreams = ?settings.upstreams, stub_domains = settings.stub_domains.len(), "forwarding settings changed");
        f.reconfigure(settings);
        // Detached: it ends by itself within `LOOP_WATCH`.
        drop(spawn_watch(f, unanswered, &live.fatal));
    }
    if new.rewrites != live.config.rewrites {
        let rules: Vec<String> = new.rewrites.iter().map(ToString::to_string).collect();
        tracing::info!(?rules, "rewrite rules changed");
        live.rewriter.set(new.rewrites.clone());
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
        let fresh = serve_groups(bound, &live.handler, live.limits, &live.metrics.server);
        regroup(
            &mut live.groups,
            fresh,
            &new.listen_addrs(),
            new.shutdown_grace,
        );
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

//! Forwarding-loop detection, as CoreDNS's `loop` plugin: a random name is sent through each
//! upstream; if it comes back to this server, the upstream forwards to it, and every outside
//! query would go round until it timed out.
//!
//! An upstream that does not answer a probe (not started yet: a node's resolver restarting, a
//! sidecar) is probed again every second for up to `LOOP_WATCH` after start, or after the
//! reload that added it; a loop found then is as fatal as one found at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;

use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::endpoint::Endpoint;
use super::metrics::Metrics;
use super::upstream::{Outgoing, Upstream};
use super::{ForwardSettings, Forwarder, lock};

/// How long an upstream that has not answered keeps being probed.
pub const LOOP_WATCH: Duration = Duration::from_secs(30);

/// How often an unanswered upstream is probed again.
pub const LOOP_PROBE_EVERY: Duration = Duration::from_secs(1);

/// One upstream to probe: the domain its pool serves (probe names go under it) and the
/// upstream (probed over its own transport).
#[derive(Clone)]
pub struct Probe {
    domain: Name,
    upstream: Arc<Upstream>,
}

/// What one round of probes found.
#[derive(Default)]
pub struct LoopCheck {
    /// The first upstream that sent a probe back here.
    pub looped: Option<Endpoint>,
    /// Upstreams that gave no reply at all: to be probed again.
    pub unanswered: Vec<Probe>,
}

/// Every upstream of `settings` (not yet in any pool: a reload's): the default pool's under
/// the root, each stub domain's under its domain.
pub fn probes_for(settings: &ForwardSettings, metrics: &Arc<Metrics>) -> Vec<Probe> {
    let default = settings.upstreams.iter().map(|a| (Name::root(), a));
    let stubs = settings
        .stub_domains
        .iter()
        .flat_map(|s| s.upstreams.iter().map(move |a| (s.domain.clone(), a)));
    default
        .chain(stubs)
        .map(|(domain, e)| Probe {
            domain,
            upstream: Arc::new(Upstream::new(e.clone(), &settings.pool.streams, metrics)),
        })
        .collect()
}

impl Probe {
    /// The upstream probed.
    pub fn endpoint(&self) -> &Endpoint {
        &self.upstream.endpoint
    }
}

impl Forwarder {
    /// Whether an incoming query is one of the loop probes this forwarder sent: counts it.
    pub fn is_loop_probe(&self, name: &Name) -> bool {
        if self.probing.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut probes = lock(&self.probes);
        match probes.get_mut(&name.to_lowercase()) {
            Some((_, seen)) => {
                *seen += 1;
                true
            }
            None => false,
        }
    }

    /// Every upstream of the pools in effect.
    pub fn probes(&self) -> Vec<Probe> {
        let routes = self.routes.load();
        let default = routes.default.iter().map(|r| (Name::root(), r));
        let stubs = routes.stubs.iter().map(|(d, r)| (d.clone(), r));
        default
            .chain(stubs)
            .flat_map(|(domain, r)| {
                r.pool.upstreams().iter().map(move |u| Probe {
                    domain: domain.clone(),
                    upstream: Arc::clone(u),
                })
            })
            .collect()
    }

    /// Sends one random probe name through each of `probes` and waits for every reply (each
    /// within the upstream timeout).
    pub async fn check_loops(&self, probes: &[Probe]) -> LoopCheck {
        let timeout = self.routes.load().settings.pool.timeout;
        self.probing.fetch_add(1, Ordering::Relaxed);
        let mut sent = Vec::new();
        let mut checks = Vec::new();
        for p in probes {
            let (a, b) = (rand::random::<u64>(), rand::random::<u64>());
            let Ok(name) = Name::from_ascii(format!("{a:016x}.{b:016x}"))
                .and_then(|n| n.append_domain(&p.domain))
            else {
                continue;
            };
            lock(&self.probes).insert(name.clone(), (p.endpoint().clone(), 0));
            sent.push(name.clone());
            let q = Outgoing {
                name,
                qtype: RecordType::HINFO,
                qclass: DNSClass::IN,
                rd: true,
                cd: false,
                edns: None,
            };
            let metrics = &self.metrics;
            checks.push(async move {
                let answered = p.upstream.exchange(&q, timeout, metrics).await;
                if let Err(e) = &answered {
                    tracing::debug!(upstream = %p.endpoint(), error = %e, "loop probe got no reply");
                }
                answered.is_ok().then_some(()).ok_or_else(|| p.clone())
            });
        }
        let results = futures::future::join_all(checks).await;
        let mut probes = lock(&self.probes);
        let looped = sent
            .iter()
            .filter_map(|n| probes.get(n))
            .find(|(_, seen)| *seen > 0)
            .map(|(a, _)| a.clone());
        for n in &sent {
            probes.remove(n);
        }
        drop(probes);
        self.probing.fetch_sub(1, Ordering::Relaxed);
        LoopCheck {
            looped,
            unanswered: results.into_iter().filter_map(Result::err).collect(),
        }
    }

    /// Probes `pending` again every `LOOP_PROBE_EVERY` until each has answered or `LOOP_WATCH`
    /// has passed: the first upstream found to loop, if any.
    pub async fn watch_loops(&self, mut pending: Vec<Probe>) -> Option<Endpoint> {
        let until = tokio::time::Instant::now() + LOOP_WATCH;
        while !pending.is_empty() {
            tokio::time::sleep(LOOP_PROBE_EVERY).await;
            if tokio::time::Instant::now() >= until {
                tracing::debug!(upstreams = ?pending.iter().map(|p| p.endpoint().to_string()).collect::<Vec<_>>(), "loop probes never answered; no longer probing");
                return None;
            }
            // Upstreams a reload removed meanwhile are not probed.
            let current: HashSet<Endpoint> =
                self.probes().iter().map(|p| p.endpoint().clone()).collect();
            pending.retain(|p| current.contains(p.endpoint()));
            let round = self.check_loops(&pending).await;
            if round.looped.is_some() {
                return round.looped;
            }
            pending = round.unanswered;
        }
        None
    }
}

/// Why clusterdns stops when `upstream` forwards its queries back to it.
pub fn loop_error(upstream: &Endpoint) -> String {
    format!(
        "forwarding loop: upstream {upstream} sent this server's probe query back to it \
         (it forwards to clusterdns itself); point --upstream or --resolv-conf at a resolver \
         that does not use clusterdns"
    )
}

/// Keeps probing, in a task of its own, the upstreams that did not answer a loop probe
/// (`LOOP_WATCH`); a loop found then is reported through `fatal`.
pub fn spawn_watch(
    forwarder: &Arc<Forwarder>,
    pending: Vec<Probe>,
    fatal: &Arc<tokio::sync::watch::Sender<Option<String>>>,
) -> Option<JoinHandle<()>> {
    if pending.is_empty() {
        return None;
    }
    let addrs: Vec<String> = pending.iter().map(|p| p.endpoint().to_string()).collect();
    tracing::info!(upstreams = ?addrs, "upstreams did not answer the loop probe; probing them again for 30 s");
    let (f, fatal) = (Arc::clone(forwarder), Arc::clone(fatal));
    Some(tokio::spawn(async move {
        if let Some(upstream) = f.watch_loops(pending).await {
            let why = loop_error(&upstream);
            tracing::error!(%upstream, "{why}");
            fatal.send_replace(Some(why));
        }
    }))
}

//! Forwarding: names outside the served zones go to upstream resolvers (a pool for `.` and
//! one per stub domain), through a cache of their answers.
//!
//! A miss starts one upstream query in its own task; identical misses arriving while it is
//! in flight wait for the same result (coalescing). Outstanding upstream queries are capped;
//! beyond the cap a query is refused rather than queued. When every upstream of a pool is
//! down the query fails at once; with serve-stale an expired entry answers instead.

pub mod cache;
pub mod endpoint;
mod loop_probe;
pub mod metrics;
pub mod resolv_conf;
pub mod stream;
pub mod upstream;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use hickory_proto::rr::Name;

use cache::{Cache, Entry, Kind};
pub use cache::{CacheSettings, Key, Reply};
pub use endpoint::{Endpoint, Transport, parse_endpoint};
pub use loop_probe::{LOOP_WATCH, LoopCheck, Probe, loop_error, probes_for, spawn_watch};
use metrics::{CacheTypeLabels, Metrics};
use prometheus_client::metrics::counter::Counter;
pub use stream::{StreamSettings, TlsClient};
pub use upstream::{Outgoing, Policy, PoolSettings};
use upstream::{Pool, PoolError};

/// How long one client query may wait on upstreams in all (resolvers' default timeout is 5 s).
pub const QUERY_BUDGET: Duration = Duration::from_secs(5);

/// A domain sent to upstreams of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct StubRoute {
    /// The domain (and every name below it).
    pub domain: Name,
    /// Its upstreams.
    pub upstreams: Vec<Endpoint>,
    /// Cache lifetimes of its answers, when not the forwarder's own (node-local mode's
    /// cluster zone: 30 s positive, 5 s negative, served stale through a central outage).
    pub cache: Option<CacheSettings>,
}

impl StubRoute {
    /// A stub domain with the forwarder's cache lifetimes.
    pub fn new(domain: Name, upstreams: Vec<Endpoint>) -> Self {
        Self {
            domain,
            upstreams,
            cache: None,
        }
    }
}

/// Everything the forwarder is configured with.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// Upstreams for `.`; empty: only stub domains are forwarded.
    pub upstreams: Vec<Endpoint>,
    /// Domains with upstreams of their own.
    pub stub_domains: Vec<StubRoute>,
    /// Pool behaviour.
    pub pool: PoolSettings,
    /// Cap on outstanding upstream queries.
    pub max_concurrent: usize,
    /// Cache sizes and lifetimes.
    pub cache: CacheSettings,
    /// Refresh popular entries before they expire.
    pub prefetch: bool,
}

/// Why a query could not be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// No upstream serves this name.
    #[error("no upstream for this name")]
    NoUpstream,
    /// Over `--max-concurrent` outstanding queries.
    #[error("too many outstanding upstream queries")]
    Overloaded,
    /// Every upstream of the pool is down.
    #[error("every upstream is down")]
    AllDown,
    /// The upstreams tried did not answer.
    #[error("no upstream answered")]
    Failed,
}

impl From<PoolError> for ForwardError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::AllDown => Self::AllDown,
            PoolError::Failed => Self::Failed,
        }
    }
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<Entry>, ForwardError>>>;

/// A pool and the cache lifetimes of its answers.
struct Route {
    pool: Arc<Pool>,
    cache: CacheSettings,
}

/// The pools and the settings in effect; a reload swaps them whole.
struct Routes {
    default: Option<Route>,
    /// Longest domain first.
    stubs: Vec<(Name, Route)>,
    settings: ForwardSettings,
}

/// The forwarder: pools, cache, queries in flight.
pub struct Forwarder {
    routes: ArcSwap<Routes>,
    cache: Option<Cache>,
    inflight: Mutex<HashMap<Key, Fetch>>,
    outstanding: AtomicUsize,
    metrics: Arc<Metrics>,
    probes: Mutex<HashMap<Name, (Endpoint, u32)>>,
    /// Probe rounds in progress: while any is, incoming names are checked against `probes`.
    probing: AtomicUsize,
    /// `cache_hits_total{type="success"}` and `{type="denial"}`, for the packet path.
    hit_counters: [Counter; 2],
}

impl Routes {
    /// The pools `settings` asks for, reusing those of `old` that are configured alike.
    fn new(settings: ForwardSettings, old: Option<&Routes>, metrics: &Arc<Metrics>) -> Self {
        let reuse = |domain: &Name, endpoints: &[Endpoint]| {
            let old = old.filter(|o| o.settings.pool == settings.pool)?;
            let route = if domain.is_root() {
                old.default.as_ref()
            } else {
                old.stubs.iter().find(|(d, _)| d == domain).map(|(_, r)| r)
            }?;
            let same = route
                .pool
                .upstreams()
                .iter()
                .map(|u| &u.endpoint)
                .eq(endpoints.iter());
            same.then(|| Arc::clone(&route.pool))
        };
        // One upstream object per endpoint, shared by every pool naming it, kept from the
        // old routes when connections are configured alike.
        let mut shared: HashMap<Endpoint, Arc<upstream::Upstream>> = HashMap::new();
        if let Some(o) = old.filter(|o| o.settings.pool.streams == settings.pool.streams) {
            for p in o.pools() {
                for u in p.upstreams() {
                    shared
                        .entry(u.endpoint.clone())
                        .or_insert_with(|| Arc::clone(u));
                }
            }
        }
        let mut route = |domain: Name, endpoints: &[Endpoint], cache: Option<CacheSettings>| {
            let pool = reuse(&domain, endpoints).unwrap_or_else(|| {
                let upstreams = endpoints
                    .iter()
                    .map(|e| {
                        let u = shared.entry(e.clone()).or_insert_with(|| {
                            Arc::new(upstream::Upstream::new(
                                e.clone(),
                                &settings.pool.streams,
                                metrics,
                            ))
                        });
                        Arc::clone(u)
                    })
                    .collect();
                Arc::new(Pool::new(
                    domain.clone(),
                    upstreams,
                    settings.pool.clone(),
                    Arc::clone(metrics),
                ))
            });
            Route {
                pool,
                cache: cache.unwrap_or(settings.cache),
            }
        };
        let default = (!settings.upstreams.is_empty())
            .then(|| route(Name::root(), &settings.upstreams, None));
        let mut stubs: Vec<(Name, Route)> = settings
            .stub_domains
            .iter()
            .map(|s| {
                let d = s.domain.to_lowercase();
                (d.clone(), route(d, &s.upstreams, s.cache))
            })
            .collect();
        stubs.sort_by_key(|(d, _)| std::cmp::Reverse(d.num_labels()));
        Self {
            default,
            stubs,
            settings,
        }
    }

    /// Every pool.
    fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> + '_ {
        self.default
            .iter()
            .chain(self.stubs.iter().map(|(_, r)| r))
            .map(|r| &r.pool)
    }

    /// Every upstream of every pool.
    fn endpoints(&self) -> impl Iterator<Item = Endpoint> + '_ {
        self.pools()
            .flat_map(|p| p.upstreams().iter().map(|u| u.endpoint.clone()))
    }
}

/// Removes a finished query from the in-flight map, even if its task panics.
struct InflightGuard {
    forwarder: Arc<Forwarder>,
    key: Key,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.forwarder.inflight().remove(&self.key);
        self.forwarder.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold no invariant a panicking holder could break half-way.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Forwarder {
    /// A forwarder over the configured pools.
    pub fn new(settings: ForwardSettings, metrics: Arc<Metrics>) -> Self {
        let cache =
            (settings.cache.size > 0).then(|| Cache::new(&settings.cache, Arc::clone(&metrics)));
        let hits = |r#type| {
            metrics
                .cache_hits
                .get_or_create(&CacheTypeLabels { r#type })
                .clone()
        };
        let hit_counters = [hits("success"), hits("denial")];
        let routes = Routes::new(settings, None, &metrics);
        Self {
            hit_counters,
            routes: ArcSwap::from_pointee(routes),
            cache,
            inflight: Mutex::new(HashMap::new()),
            outstanding: AtomicUsize::new(0),
            metrics,
            probes: Mutex::new(HashMap::new()),
            probing: AtomicUsize::new(0),
        }
    }

    /// Applies new settings (a configuration reload): upstreams, stub domains, pool
    /// behaviour, the outstanding-query cap, cache lifetimes for new entries and prefetch.
    /// The cache and the queries in flight are kept; a pool whose upstreams and behaviour
    /// are unchanged keeps its health state. The cache size and the serve-stale window are
    /// fixed at start.
    pub fn reconfigure(&self, settings: ForwardSettings) {
        let old = self.routes.load_full();
        let next = Routes::new(settings, Some(&old), &self.metrics);
        let kept: std::collections::HashSet<Endpoint> = next.endpoints().collect();
        for a in old.endpoints().filter(|a| !kept.contains(a)) {
            self.metrics
                .healthy
                .remove(&metrics::UpstreamLabels { to: a.to_string() });
        }
        self.routes.store(Arc::new(next));
    }

    fn inflight(&self) -> MutexGuard<'_, HashMap<Key, Fetch>> {
        lock(&self.inflight)
    }

    /// The pool for `name` and the cache lifetimes of its answers.
    fn route_for(&self, name: &Name) -> Option<(Arc<Pool>, CacheSettings)> {
        let routes = self.routes.load();
        routes
            .stubs
            .iter()
            .find(|(d, _)| d.zone_of(name))
            .map(|(_, r)| r)
            .or(routes.default.as_ref())
            .map(|r| (Arc::clone(&r.pool), r.cache))
    }

    /// Whether some pool serves `name`.
    pub fn serves(&self, name: &Name) -> bool {
        self.route_for(name).is_some()
    }

    /// Whether an upstream of the pool serving `name` has answered since the pool was made
    /// (node-local readiness: the central tier reached).
    pub fn answered_for(&self, name: &Name) -> bool {
        self.route_for(name).is_some_and(|(p, _)| p.answered())
    }

    /// Sends `name`'s SOA query to each upstream of its pool once (node-local mode: reach the
    /// central tier before any pod asks); whether one answered.
    pub async fn reach(&self, name: &Name) -> bool {
        let Some((pool, _)) = self.route_for(name) else {
            return false;
        };
        let q = Outgoing {
            name: name.clone(),
            qtype: hickory_proto::rr::RecordType::SOA,
            qclass: hickory_proto::rr::DNSClass::IN,
            rd: true,
            cd: false,
            edns: None,
        };
        let tries = pool
            .upstreams()
            .iter()
            .map(|u| u.exchange(&q, pool.timeout(), &self.metrics));
        futures::future::join_all(tries)
            .await
            .iter()
            .any(Result::is_ok)
    }

    /// Entries in the cache.
    pub fn cache_len(&self) -> u64 {
        self.cache.as_ref().map_or(0, Cache::len)
    }

    /// Stores `entry` as the cached answer to `q`, under the key `resolve` looks it up by, as
    /// an upstream's reply is stored. For callers with no upstream to ask (the fuzz targets).
    pub fn store(&self, q: &Outgoing, entry: Entry) {
        if let Some(cache) = &self.cache {
            let dnssec_ok = q.edns.is_some_and(|(_, d)| d);
            let key = Key::new(&q.name, q.qtype, q.qclass, dnssec_ok, q.cd);
            cache.insert(key, Arc::new(entry));
        }
    }

    /// Answers the query `q`, which arrived at `now`, from a fresh cache entry straight into
    /// `out` (see [`wire`]): the response's length, or `None` when the general path must answer
    /// it (a miss, an entry due for prefetch, a response over `limit`). Counts the hit as
    /// `resolve` does.
    pub fn answer_wire(
        &self,
        q: &wire::CacheQuery<'_>,
        limit: usize,
        out: &mut [u8],
        now: Instant,
    ) -> Option<usize> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get_bytes(q.key())?;
        let age = entry.fresh_age(now, || self.routes.load().settings.prefetch)?;
        let len = q.respond(&entry, age, limit, out)?;
        entry.count_hit();
        self.metrics.cache_requests.inc();
        self.hit_counters[usize::from(entry.kind != Kind::Success)].inc();
        Some(len)
    }

    /// Answers `q` from the cache or its upstreams.
    pub async fn resolve(self: &Arc<Self>, q: &Outgoing) -> Result<Reply, ForwardError> {
        let route = self.route_for(&q.name).ok_or(ForwardError::NoUpstream)?;
        let dnssec_ok = q.edns.is_some_and(|(_, d)| d);
        let key = Key::new(&q.name, q.qtype, q.qclass, dnssec_ok, q.cd);
        let now = Instant::now();
        let m = &self.metrics;
        let cached = self.cache.as_ref().and_then(|c| {
            m.cache_requests.inc();
            c.get_unless_absent(&key)
        });
        if let Some(entry) = &cached
            && entry.remaining(now).is_some()
        {
            let r#type = if entry.kind == Kind::Success {
                "success"
            } else {
                "denial"
            };
            m.cache_hits
                .get_or_create(&CacheTypeLabels { r#type })
                .inc();
            if self.routes.load().settings.prefetch && entry.should_prefetch(now) {
                m.cache_prefetch.inc();
                // Started now, awaited by nobody: its task stores the fresh answer.
                let _ = self.start_fetch(&route, key, q);
            }
            return Ok(entry.reply(now, false));
        }
        if self.cache.is_some() {
            m.cache_misses.inc();
        }
        let fetched = match self.start_fetch(&route, key, q) {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok(entry) => Ok(entry.reply(Instant::now(), false)),
            Err(e) => match cached {
                Some(old) if old.within_stale(Instant::now()) => {
                    m.cache_served_stale.inc();
                    Ok(old.reply(Instant::now(), true))
                }
                _ => Err(e),
            },
        }
    }

    /// Joins the query in flight for `key`, or starts one (unless over the cap).
    fn start_fetch(
        self: &Arc<Self>,
        route: &(Arc<Pool>, CacheSettings),
        key: Key,
        q: &Outgoing,
    ) -> Result<Fetch, ForwardError> {
        let mut inflight = self.inflight();
        if let Some(f) = inflight.get(&key) {
            self.metrics.coalesced.inc();
            return Ok(f.clone());
        }
        if self.outstanding.load(Ordering::Relaxed) >= self.routes.load().settings.max_concurrent {
            self.metrics.max_concurrent_rejects.inc();
            return Err(ForwardError::Overloaded);
        }
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        let guard = InflightGuard {
            forwarder: Arc::clone(self),
            key: key.clone(),
        };
        let (pool, cache_settings, q) = (Arc::clone(&route.0), route.1, q.clone());
        let task = tokio::spawn(async move {
            let guard = guard;
            let this = &guard.forwarder;
            let reply = pool.query(&q, QUERY_BUDGET).await?;
            // A non-recursive query's answer is the upstream's own data only: not cached.
            let entry = Arc::new(Entry::from_message(reply, &cache_settings, q.rd));
            if let Some(cache) = &this.cache {
                cache.insert(guard.key.clone(), Arc::clone(&entry));
            }
            Ok(entry)
        });
        let fetch = async move { task.await.unwrap_or(Err(ForwardError::Failed)) }
            .boxed()
            .shared();
        inflight.insert(key, fetch.clone());
        Ok(fetch)
    }
}

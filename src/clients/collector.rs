//! The collector's side: per-client windows, search-list misses, the namespace counter and
//! the top-N report. Runs in one task, off the query path.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::metrics::{ClientLabels, Metrics};
use crate::zone::Snapshot;

/// Seconds per bucket of the windows.
const BUCKET_SECS: u64 = 10;
/// Buckets kept: five minutes.
const BUCKETS: usize = 30;
/// Buckets in the one-minute window.
const MINUTE_BUCKETS: u64 = 6;
/// How long after a search-list NXDOMAIN the answer of a later step still makes it a miss.
pub const MISS_WINDOW: Duration = Duration::from_secs(5);
/// Distinct namespaces labelled in `clusterdns_client_requests_total`; the rest are `_other`.
pub const MAX_NAMESPACES: usize = 1000;

const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOERROR: u8 = 0;

/// Clients tracked at once for a top `n`: enough that the top ones are exact under churn.
pub fn tracked_capacity(n: usize) -> usize {
    n.saturating_mul(50).clamp(1000, 100_000)
}

/// A window's figures for one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Queries.
    pub queries: u64,
    /// NXDOMAIN answers.
    pub nxdomain: u64,
    /// Search-list misses (see the module doc).
    pub search_misses: u64,
}

/// One client of the top N.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientReport {
    /// `namespace/name` of its pod, or its address when it is no pod.
    pub client: String,
    /// Its pod's namespace; empty when it is no pod.
    pub namespace: String,
    /// The last minute.
    pub last_minute: Window,
    /// The last five minutes.
    pub last_five_minutes: Window,
}

/// What `/debug/clients` serves.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The top clients by queries over five minutes, most first.
    pub clients: Vec<ClientReport>,
    /// Clients tracked now (bounded).
    pub tracked: usize,
}

/// One client's buckets.
struct Client {
    namespace: Arc<str>,
    epochs: [u64; BUCKETS],
    counts: [Window; BUCKETS],
}

impl Client {
    fn bucket(&mut self, epoch: u64) -> &mut Window {
        let i = usize::try_from(epoch % BUCKETS as u64).unwrap_or(0);
        if self.epochs[i] != epoch {
            self.epochs[i] = epoch;
            self.counts[i] = Window::default();
        }
        &mut self.counts[i]
    }

    fn window(&self, epoch: u64, buckets: u64) -> Window {
        let mut w = Window::default();
        for (e, c) in self.epochs.iter().zip(&self.counts) {
            if *e <= epoch && epoch - *e < buckets {
                w.queries += c.queries;
                w.nxdomain += c.nxdomain;
                w.search_misses += c.search_misses;
            }
        }
        w
    }
}

/// A search-list walk in progress: the base name's hash, the last NXDOMAIN name's hash, the
/// NXDOMAINs so far, when.
struct Walk {
    base: u64,
    last: u64,
    misses: u64,
    at: Instant,
}

/// The collector's state.
pub(super) struct Collector {
    top: usize,
    capacity: usize,
    clients: HashMap<Arc<str>, Client>,
    walks: HashMap<IpAddr, Walk>,
    namespaces: std::collections::HashSet<Arc<str>>,
    metrics: Arc<Metrics>,
    started: Instant,
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The search-list step `name` is for a client of `namespace` (`origin` is the cluster
/// zone, without the final dot): the base name and whether it is an expansion (`false`: the
/// name as asked, the walk's last step).
fn step<'a>(name: &'a [u8], namespace: &str, origin: &str) -> (&'a [u8], bool) {
    let strip = |suffix: &str| -> Option<&'a [u8]> {
        let s = suffix.as_bytes();
        let n = name.len().checked_sub(s.len() + 1)?;
        (name.get(n + 1..)? == s && name.get(n) == Some(&b'.')).then(|| &name[..n])
    };
    let own = format!("{namespace}.svc.{origin}");
    let svc = format!("svc.{origin}");
    if !namespace.is_empty()
        && let Some(base) = strip(&own)
    {
        return (base, true);
    }
    if let Some(base) = strip(&svc) {
        return (base, true);
    }
    if let Some(base) = strip(origin) {
        return (base, true);
    }
    (name, false)
}

impl Collector {
    pub(super) fn new(top: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            top,
            capacity: tracked_capacity(top),
            clients: HashMap::new(),
            walks: HashMap::new(),
            namespaces: std::collections::HashSet::new(),
            metrics,
            started: Instant::now(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / BUCKET_SECS
    }

    /// Counts one query.
    pub(super) fn add(
        &mut self,
        snap: &Snapshot,
        ip: IpAddr,
        name: &[u8],
        rcode: u8,
        now: Instant,
    ) {
        let ip = ip.to_canonical();
        let pod = snap.pod_names.get(&ip).cloned();
        let (key, namespace): (Arc<str>, Arc<str>) = match &pod {
            Some(p) => {
                let ns = p.split_once('/').map_or("", |(ns, _)| ns);
                (Arc::clone(p), Arc::from(ns))
            }
            None => (Arc::from(ip.to_string()), Arc::from("")),
        };
        self.count_namespace(&namespace, rcode);
        let misses = self.walk(ip, name, &namespace, snap, rcode, now);
        if !self.clients.contains_key(&key) && self.clients.len() >= self.capacity {
            self.evict(now);
        }
        let epoch = self.epoch(now);
        let client = self.clients.entry(key).or_insert_with(|| Client {
            namespace,
            epochs: [u64::MAX; BUCKETS],
            counts: [Window::default(); BUCKETS],
        });
        let b = client.bucket(epoch);
        b.queries += 1;
        b.nxdomain += u64::from(rcode == RCODE_NXDOMAIN);
        b.search_misses += misses;
    }

    fn count_namespace(&mut self, namespace: &Arc<str>, rcode: u8) {
        let known = self.namespaces.contains(namespace);
        let label = if known || self.namespaces.len() < MAX_NAMESPACES {
            if !known {
                self.namespaces.insert(Arc::clone(namespace));
            }
            namespace.to_string()
        } else {
            "_other".to_owned()
        };
        let rcode = crate::wire::rcode_name(hickory_proto::op::ResponseCode::from(0, rcode));
        self.metrics
            .requests
            .get_or_create(&ClientLabels {
                namespace: label,
                rcode,
            })
            .inc();
    }

    /// Follows `ip`'s search-list walk: the misses this query settles (NXDOMAINs of earlier
    /// steps of a walk this query answers).
    fn walk(
        &mut self,
        ip: IpAddr,
        name: &[u8],
        namespace: &str,
        snap: &Snapshot,
        rcode: u8,
        now: Instant,
    ) -> u64 {
        if namespace.is_empty() {
            // Not a pod: its search list is unknown.
            return 0;
        }
        let origin = snap.config.origin.to_ascii().to_ascii_lowercase();
        let origin = origin.trim_end_matches('.');
        let (base, expansion) = step(name, namespace, origin);
        let (base, whole) = (hash(base), hash(name));
        // The walk's last step is the name as given, which may itself end in a search
        // suffix (`api.shop.svc.<zone>` asked from another namespace).
        let current = self
            .walks
            .get(&ip)
            .filter(|w| {
                (w.base == base || w.base == whole)
                    && w.last != whole
                    && now.saturating_duration_since(w.at) <= MISS_WINDOW
            })
            .map_or(0, |w| w.misses);
        match rcode {
            RCODE_NXDOMAIN if expansion => {
                self.walks.insert(
                    ip,
                    Walk {
                        base,
                        last: whole,
                        misses: current + 1,
                        at: now,
                    },
                );
                0
            }
            RCODE_NOERROR => {
                self.walks.remove(&ip);
                current
            }
            _ => 0,
        }
    }

    /// Makes room: drops the tenth of the clients with the fewest queries over five
    /// minutes, and walks older than `MISS_WINDOW`.
    fn evict(&mut self, now: Instant) {
        let epoch = self.epoch(now);
        let mut totals: Vec<(u64, Arc<str>)> = self
            .clients
            .iter()
            .map(|(k, c)| (c.window(epoch, BUCKETS as u64).queries, Arc::clone(k)))
            .collect();
        totals.sort_unstable_by_key(|(q, _)| *q);
        for (_, k) in totals.iter().take(self.capacity / 10 + 1) {
            self.clients.remove(k);
        }
        self.walks
            .retain(|_, w| now.saturating_duration_since(w.at) <= MISS_WINDOW);
    }

    /// The top N as of `now`.
    pub(super) fn report(&mut self, now: Instant) -> Report {
        let epoch = self.epoch(now);
        if self.walks.len() > self.capacity {
            self.walks
                .retain(|_, w| now.saturating_duration_since(w.at) <= MISS_WINDOW);
        }
        let mut all: Vec<ClientReport> = self
            .clients
            .iter()
            .map(|(k, c)| ClientReport {
                client: k.to_string(),
                namespace: c.namespace.to_string(),
                last_minute: c.window(epoch, MINUTE_BUCKETS),
                last_five_minutes: c.window(epoch, BUCKETS as u64),
            })
            .filter(|r| r.last_five_minutes.queries > 0)
            .collect();
        all.sort_by(|a, b| {
            b.last_five_minutes
                .queries
                .cmp(&a.last_five_minutes.queries)
                .then_with(|| a.client.cmp(&b.client))
        });
        all.truncate(self.top);
        Report {
            clients: all,
            tracked: self.clients.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_steps() {
        let o = "cluster.local";
        assert_eq!(
            step(b"web.shop.svc.cluster.local", "shop", o),
            (&b"web"[..], true)
        );
        assert_eq!(
            step(b"web.svc.cluster.local", "shop", o),
            (&b"web"[..], true)
        );
        assert_eq!(step(b"web.cluster.local", "shop", o), (&b"web"[..], true));
        assert_eq!(step(b"web", "shop", o), (&b"web"[..], false));
        assert_eq!(
            step(b"www.example.com.shop.svc.cluster.local", "shop", o),
            (&b"www.example.com"[..], true)
        );
        assert_eq!(
            step(b"www.example.com", "shop", o),
            (&b"www.example.com"[..], false)
        );
        // Another namespace's name is the svc step with a base of two labels.
        assert_eq!(
            step(b"api.data.svc.cluster.local", "shop", o),
            (&b"api.data"[..], true)
        );
        assert_eq!(
            step(b"cluster.local", "shop", o),
            (&b"cluster.local"[..], false)
        );
    }
}

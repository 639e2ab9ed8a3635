//! Who is asking: per-client figures for operators chasing a DNS storm (`--top-clients N`,
//! with `--pods verified`).
//!
//! The query path only copies what it saw (client address, name, response code) into a
//! bounded lock-free queue allocated at start: no lock, no allocation, a failed push when
//! the queue is full (counted, never waited on). A collector task drains the queue a few
//! times a second, maps each address to its pod through the zone's pod index, and keeps:
//! - `clusterdns_client_requests_total{namespace, rcode}` (namespaces capped at
//!   `MAX_NAMESPACES`, beyond which they count as `_other`; clients that are no pod count
//!   under the namespace `""`);
//! - per pod (or address, for clients that are no pod), ten-second buckets of queries,
//!   NXDOMAINs and search-list misses over five minutes, in a table of at most
//!   `tracked_capacity(N)` clients (the quietest are dropped first);
//! - the top N by queries over five minutes, served as JSON at `/debug/clients`.
//!
//! A search-list miss is a NXDOMAIN for a search-list expansion of a name (`<base>.<its
//! namespace>.svc.<zone>`, `<base>.svc.<zone>` or `<base>.<zone>`) followed, from the same
//! client within `MISS_WINDOW`, by an answer for a later step of the same walk (`<base>`
//! under a shorter suffix, or `<base>.` itself): the `ndots:5` queries that only cost.

mod collector;
pub mod metrics;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use tokio::task::JoinHandle;

use collector::Collector;
pub use collector::{ClientReport, Report, Window};
pub use metrics::Metrics;

use crate::zone::Snapshot;

/// Queries the queue holds between two drains.
const QUEUE: usize = 16_384;

/// How often the collector drains the queue.
const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// The longest name kept (presentation form, without the final dot).
const NAME_MAX: usize = 254;

/// One query as the path saw it.
struct Seen {
    ip: IpAddr,
    rcode: u8,
    len: u8,
    name: [u8; NAME_MAX],
}

impl Seen {
    fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }
}

/// The query path's side: where each query is recorded.
pub struct ClientStats {
    queue: ArrayQueue<Box<Seen>>,
    free: ArrayQueue<Box<Seen>>,
    metrics: Arc<Metrics>,
    top: usize,
    report: ArcSwap<Report>,
}

impl ClientStats {
    /// Figures for the top `top` clients; the queue and its records allocated now.
    pub fn new(top: usize, metrics: Arc<Metrics>) -> Self {
        let free = ArrayQueue::new(QUEUE);
        for _ in 0..QUEUE {
            let _ = free.push(Box::new(Seen {
                ip: IpAddr::from([0, 0, 0, 0]),
                rcode: 0,
                len: 0,
                name: [0; NAME_MAX],
            }));
        }
        Self {
            queue: ArrayQueue::new(QUEUE),
            free,
            metrics,
            top,
            report: ArcSwap::from_pointee(Report::default()),
        }
    }

    /// Records a query for the name given as its labels (no lock, no allocation: a record
    /// taken from the free list, filled, queued; dropped and counted when none is free).
    pub fn record_labels(&self, ip: IpAddr, labels: &[&[u8]], rcode: u8) {
        let Some(mut seen) = self.free.pop() else {
            self.metrics.dropped.inc();
            return;
        };
        let mut len = 0;
        for (i, label) in labels.iter().enumerate() {
            let dot = usize::from(i > 0);
            let end = len + dot + label.len();
            let Some(out) = seen.name.get_mut(len..end) else {
                break;
            };
            if dot == 1 {
                out[0] = b'.';
            }
            for (o, b) in out[dot..].iter_mut().zip(label.iter()) {
                *o = b.to_ascii_lowercase();
            }
            len = end;
        }
        seen.ip = ip;
        seen.rcode = rcode;
        seen.len = u8::try_from(len).unwrap_or(u8::MAX);
        self.push(seen);
    }

    /// Records a query for a name in presentation form (the general path).
    pub fn record_text(&self, ip: IpAddr, name: &str, rcode: u8) {
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        let labels: Vec<&[u8]> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('.').map(str::as_bytes).collect()
        };
        self.record_labels(ip, &labels, rcode);
    }

    fn push(&self, seen: Box<Seen>) {
        if let Err(back) = self.queue.push(seen) {
            self.metrics.dropped.inc();
            let _ = self.free.push(back);
        }
    }

    /// The figures as of the last drain.
    pub fn report(&self) -> Arc<Report> {
        self.report.load_full()
    }
}

/// Starts the collector: it drains `stats` every `DRAIN_EVERY`, maps addresses to pods
/// through `zone`, and publishes the report.
pub fn spawn_collector(stats: Arc<ClientStats>, zone: Arc<ArcSwap<Snapshot>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut collector = Collector::new(stats.top, Arc::clone(&stats.metrics));
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snapshot = zone.load_full();
            let now = std::time::Instant::now();
            while let Some(seen) = stats.queue.pop() {
                collector.add(&snapshot, seen.ip, seen.name(), seen.rcode, now);
                let _ = stats.free.push(seen);
            }
            stats.report.store(Arc::new(collector.report(now)));
        }
    })
}

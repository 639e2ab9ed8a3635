//! The publish loop: deltas from the sources, applied in batches (whatever is queued becomes
//! one snapshot), each new snapshot stored for the server, the zone metrics and the DNS
//! programming latency recorded.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::Cluster;
use super::metrics::{KindLabels, Metrics, ServiceKindLabels};
use crate::source::Delta;
use crate::zone::Snapshot;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Applies batches of deltas from the sources and publishes each new snapshot, until the
/// sources' channel closes; a new TTL from `ttl` republishes every record with it.
pub async fn run(
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
        let large = crate::heap::objects_in(&batch) >= crate::heap::LARGE_BATCH;
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
            let first_sync = snap.synced && !was_synced;
            zone.store(snap);
            // A large batch (a first list, a relist, a large manifests change) leaves much
            // freed memory behind: the memory goes back to the system, not only to the heap.
            if large || first_sync {
                tokio::task::spawn_blocking(crate::heap::release_free_memory);
            }
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

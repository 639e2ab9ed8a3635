//! Keeps a manifests directory in step: file-system events (notify) trigger a content scan
//! shortly after they settle, and a periodic size/mtime scan catches anything events miss
//! (a directory recreated, a network file system).

use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Delta;
use super::manifests::ManifestSource;

/// How long events must settle before a scan (editors write files in several steps).
const SETTLE: Duration = Duration::from_millis(50);

/// Whether an event may mean changed content. Opening a file, or closing it unwritten, does
/// not; reacting to it would make every scan (which opens the files) trigger the next one.
fn triggers_scan(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Close(AccessMode::Read))
    )
}

fn start_watcher(
    dir: &std::path::Path,
    tx: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|ev| triggers_scan(&ev.kind)) {
            let _ = tx.send(());
        }
    })
    .ok()?;
    watcher.watch(dir, RecursiveMode::Recursive).ok()?;
    Some(watcher)
}

/// Watches `source`'s directory until `sink` closes, sending the deltas of every change.
pub async fn run(
    mut source: ManifestSource,
    sink: mpsc::UnboundedSender<Vec<Delta>>,
    poll: Duration,
) {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut watcher = start_watcher(source.dir(), ev_tx.clone());
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dir_missing = false;
    loop {
        let force = tokio::select! {
            ev = ev_rx.recv() => {
                if ev.is_none() { return; }
                tokio::time::sleep(SETTLE).await;
                while ev_rx.try_recv().is_ok() {}
                true
            }
            _ = ticker.tick() => false,
            _ = sink.closed() => return,
        };
        match source.scan(force) {
            Ok(scan) => {
                if dir_missing {
                    tracing::info!(dir = %source.dir().display(), "manifests directory is back");
                    dir_missing = false;
                }
                if watcher.is_none() {
                    watcher = start_watcher(source.dir(), ev_tx.clone());
                }
                for e in &scan.errors {
                    tracing::warn!(error = %e, "manifest rejected; its last good version stays");
                }
                if !scan.deltas.is_empty() {
                    tracing::info!(
                        files = scan.files_read,
                        changes = scan.deltas.len(),
                        "manifests changed"
                    );
                    if sink.send(scan.deltas).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if !dir_missing {
                    tracing::warn!(dir = %source.dir().display(), error = %e, "cannot read manifests directory; serving the last good objects");
                    dir_missing = true;
                }
                watcher = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, ModifyKind};

    use super::*;

    #[test]
    fn reading_a_file_triggers_no_scan() {
        assert!(!triggers_scan(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!triggers_scan(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(triggers_scan(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(triggers_scan(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(triggers_scan(&EventKind::Create(CreateKind::File)));
    }
}

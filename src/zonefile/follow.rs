//! Keeps the served zones in step with the directory: file-system events (notify) trigger a
//! scan once they settle, and a periodic scan catches what events miss (a directory
//! recreated, a ConfigMap's symbolic links swapped, a network file system).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::AccessKind;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{ZoneDir, ZoneFileError, ZoneSet};

/// How long events must settle before a scan (editors write files in several steps).
const SETTLE: Duration = Duration::from_millis(50);
/// The shortest periodic scan interval: a smaller `poll` (zero included) is raised to it.
const MIN_POLL: Duration = Duration::from_millis(100);

/// Whether an event can change what the directory holds. Opening and reading are not: the
/// scan itself opens every file, and would otherwise trigger the next scan, forever.
fn changes_content(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
    )
}

fn start_watcher(dir: &Path, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|event| changes_content(&event.kind)) {
            let _ = tx.send(());
        }
    })
    .ok()?;
    watcher.watch(dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

/// Logs the errors not already logged by the previous scan, so a broken file is reported once
/// per change, not once per poll.
fn report(dir: &Path, errors: &[ZoneFileError], reported: &mut Vec<ZoneFileError>) {
    for e in errors.iter().filter(|e| !reported.contains(e)) {
        if e.file == dir {
            tracing::warn!(dir = %dir.display(), reason = %e.reason, "cannot read the zones directory; serving the last good zones");
        } else {
            tracing::warn!(file = %e.file.display(), line = e.line, reason = %e.reason, "zone file rejected; its last good zone stays");
        }
    }
    reported.clear();
    reported.extend_from_slice(errors);
}

/// Follows the directory: notify events (settled ~50 ms) plus a periodic re-scan every `poll`;
/// stores each changed set into `out`, logs errors with `tracing::warn` (file, line, reason) and
/// a `tracing::info` line per reload naming the origins. A missing directory keeps the current
/// set. Returns when nothing else holds `out`. A `poll` under 100 ms is taken as 100 ms.
pub async fn follow(mut dir: ZoneDir, out: Arc<ArcSwap<ZoneSet>>, poll: Duration) {
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut watcher = start_watcher(dir.dir(), tx.clone());
    let mut ticker = tokio::time::interval(poll.max(MIN_POLL));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = Vec::new();
    loop {
        tokio::select! {
            Some(()) = events.recv() => {
                tokio::time::sleep(SETTLE).await;
                while events.try_recv().is_ok() {}
            }
            _ = ticker.tick() => {}
        }
        if Arc::strong_count(&out) == 1 {
            return;
        }
        let scan = dir.scan();
        report(dir.dir(), &scan.errors, &mut reported);
        let dir_unreadable = scan.errors.iter().any(|e| e.file == dir.dir());
        if dir_unreadable {
            // A watch on a deleted directory sees nothing of its successor.
            watcher = None;
        } else if watcher.is_none() {
            watcher = start_watcher(dir.dir(), tx.clone());
        }
        if scan.changed {
            let origins: Vec<String> = scan.zones.origins().iter().map(|o| o.to_string()).collect();
            tracing::info!(dir = %dir.dir().display(), zones = origins.len(), origins = %origins.join(" "), "zone files loaded");
            out.store(scan.zones);
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};

    use super::changes_content;

    #[test]
    fn opening_and_reading_are_not_changes() {
        assert!(!changes_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes_content(&EventKind::Access(AccessKind::Read)));
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changes_content(&kind), "{kind:?}");
        }
    }
}

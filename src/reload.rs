//! Live reload of the `--config` file: file-system events on its directory (a ConfigMap
//! update swaps the `..data` symbolic link, which a watch on the file itself would miss) and a
//! periodic re-read; a changed content is loaded and validated as at start, then applied.
//! An invalid file keeps the running configuration: it is logged once per change at warn and
//! counted in `clusterdns_reload_failed_total`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::AccessKind;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::app::Live;

/// How often the file is re-read, besides file-system events.
pub const POLL: Duration = Duration::from_secs(1);
/// How long events must settle before the file is read (editors write in several steps).
const SETTLE: Duration = Duration::from_millis(50);

fn start_watcher(file: &Path, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let content = res.is_ok_and(|e| {
            !matches!(
                e.kind,
                EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
            )
        });
        if content {
            let _ = tx.send(());
        }
    })
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

/// Follows the configuration file until the task is aborted.
pub(crate) async fn watch(path: PathBuf, live: Arc<tokio::sync::Mutex<Live>>) {
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut watcher = start_watcher(&path, tx.clone());
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The file may have changed between start-up's read and this task's first look: the
    // first look compares it with the running configuration, not with itself.
    let mut last = None;
    let mut first = true;
    loop {
        tokio::select! {
            Some(()) = events.recv() => {
                tokio::time::sleep(SETTLE).await;
                while events.try_recv().is_ok() {}
            }
            _ = ticker.tick() => {}
        }
        let now = std::fs::read(&path).ok();
        if watcher.is_none() {
            watcher = start_watcher(&path, tx.clone());
        }
        if now == last && !first {
            continue;
        }
        let was_first = std::mem::replace(&mut first, false);
        last = now;
        let current = live.lock().await.config.clone();
        let metrics = Arc::clone(&live.lock().await.metrics);
        let result = match current.reload() {
            Ok(new) if was_first && current.loaded.changed(&new.loaded).is_empty() => continue,
            Ok(new) => crate::app::apply(&live, new).await,
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

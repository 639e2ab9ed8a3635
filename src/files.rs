//! Following files on disk: file-system events (notify) on a directory, let to settle, plus a
//! periodic re-check that catches what events miss (a directory recreated, a ConfigMap's
//! symbolic links swapped, a network file system). One event filter for every user: the
//! configuration file (`reload`), the manifests directory (`source::watch`) and the zone
//! files (`static_zones`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long events must settle before the files are read (editors write in several steps).
pub const SETTLE: Duration = Duration::from_millis(50);

/// Whether an event may mean changed content. Opening or reading a file, or closing it
/// unwritten, does not: the reader itself does all three, and would otherwise wake itself,
/// forever.
pub fn changes_content(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

/// Why [`FileWatch::changed`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// File-system events, settled: read everything again.
    Event,
    /// The periodic re-check: compare cheaply first.
    Tick,
}

/// A watch on one directory.
pub struct FileWatch {
    dir: PathBuf,
    mode: RecursiveMode,
    tx: mpsc::UnboundedSender<()>,
    events: mpsc::UnboundedReceiver<()>,
    watcher: Option<notify::RecommendedWatcher>,
    ticker: tokio::time::Interval,
}

impl FileWatch {
    /// Watches `dir` (with its subdirectories when `recursive`), re-checking every `poll`.
    pub fn new(dir: &Path, recursive: bool, poll: Duration) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = Self {
            dir: dir.to_path_buf(),
            mode,
            tx,
            events,
            watcher: None,
            ticker,
        };
        watch.watcher = watch.start();
        watch
    }

    fn start(&self) -> Option<notify::RecommendedWatcher> {
        let tx = self.tx.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| changes_content(&e.kind)) {
                let _ = tx.send(());
            }
        })
        .ok()?;
        watcher.watch(&self.dir, self.mode).ok()?;
        Some(watcher)
    }

    /// Waits for settled events or the next periodic re-check.
    pub async fn changed(&mut self) -> Wake {
        tokio::select! {
            Some(()) = self.events.recv() => {
                tokio::time::sleep(SETTLE).await;
                while self.events.try_recv().is_ok() {}
                Wake::Event
            }
            _ = self.ticker.tick() => Wake::Tick,
        }
    }

    /// Tells the watch whether the directory could be read: a watch on a deleted directory
    /// sees nothing of its successor, so it is dropped, and started again once the
    /// directory is back.
    pub fn readable(&mut self, readable: bool) {
        if !readable {
            self.watcher = None;
        } else if self.watcher.is_none() {
            self.watcher = self.start();
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};

    use super::*;

    #[test]
    fn reading_is_not_a_change() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert!(!changes_content(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(changes_content(&kind), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_write_wakes_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = FileWatch::new(dir.path(), false, Duration::from_secs(3600));
        // The interval's first tick is immediate.
        assert_eq!(watch.changed().await, Wake::Tick);
        std::fs::write(dir.path().join("a.yaml"), "x").unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(10), watch.changed()).await;
        assert_eq!(woke.ok(), Some(Wake::Event));
    }
}

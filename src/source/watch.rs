//! Keeps a manifests directory in step: file-system events (notify) trigger a content scan
//! shortly after they settle, and a periodic size/mtime scan catches anything events miss
//! (a directory recreated, a network file system).

use std::time::Duration;

use tokio::sync::mpsc;

use super::Delta;
use super::manifests::ManifestSource;
use crate::files::{FileWatch, Wake};

/// Watches `source`'s directory until `sink` closes, sending the deltas of every change.
pub async fn run(
    mut source: ManifestSource,
    sink: mpsc::UnboundedSender<Vec<Delta>>,
    poll: Duration,
) {
    let mut files = FileWatch::new(source.dir(), true, poll);
    let mut dir_missing = false;
    loop {
        // Events force a content scan; a tick compares sizes and times first.
        let force = tokio::select! {
            wake = files.changed() => wake == Wake::Event,
            _ = sink.closed() => return,
        };
        match source.scan(force) {
            Ok(scan) => {
                if dir_missing {
                    tracing::info!(dir = %source.dir().display(), "manifests directory is back");
                    dir_missing = false;
                }
                files.readable(true);
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
                files.readable(false);
            }
        }
    }
}

//! Keeps the served zones in step with the directory: file-system events (notify) trigger a
//! scan once they settle, and a periodic scan catches what events miss (a directory
//! recreated, a ConfigMap's symbolic links swapped, a network file system).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{ZoneDir, ZoneFileError, ZoneSet};
use crate::files::FileWatch;

/// The shortest periodic scan interval: a smaller `poll` (zero included) is raised to it.
const MIN_POLL: Duration = Duration::from_millis(100);

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

/// Keeps `out` in step with the directory: notify events (settled ~50 ms) plus a periodic
/// re-scan every `poll` (`files::FileWatch`); stores each changed set into `out`, logs errors
/// with `tracing::warn` (file, line, reason) and a `tracing::info` line per reload naming the
/// origins. A missing directory keeps the current set. Returns when nothing else holds `out`.
/// A `poll` under 100 ms is taken as 100 ms.
pub async fn watch(mut dir: ZoneDir, out: Arc<ArcSwap<ZoneSet>>, poll: Duration) {
    let mut files = FileWatch::new(dir.dir(), false, poll.max(MIN_POLL));
    let mut reported = Vec::new();
    loop {
        files.changed().await;
        if Arc::strong_count(&out) == 1 {
            return;
        }
        let scan = dir.scan();
        report(dir.dir(), &scan.errors, &mut reported);
        files.readable(!scan.errors.iter().any(|e| e.file == dir.dir()));
        if scan.changed {
            let origins: Vec<String> = scan.zones.origins().iter().map(|o| o.to_string()).collect();
            tracing::info!(dir = %dir.dir().display(), zones = origins.len(), origins = %origins.join(" "), "zone files loaded");
            out.store(scan.zones);
        }
    }
}

//! Keeps the table of `--hosts FILE` in step with the file: its directory's file-system events
//! (a ConfigMap mount swaps a `..data` link) and a periodic re-read (`files::FileWatch`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{HostsError, HostsOptions, HostsTable};
use crate::files::FileWatch;

/// The shortest re-read interval: a smaller `poll` is raised to it.
const MIN_POLL: Duration = Duration::from_millis(100);

/// A hosts file and how its entries are answered.
#[derive(Clone, Debug)]
pub struct HostsFile {
    /// The file.
    pub path: PathBuf,
    /// TTL and reverse entries.
    pub options: HostsOptions,
}

impl HostsFile {
    /// Reads and parses the file: its table and its skipped lines, or why it cannot be read.
    pub fn read(&self) -> std::io::Result<(HostsTable, Vec<HostsError>)> {
        let text = std::fs::read_to_string(&self.path)?;
        Ok(HostsTable::parse(&text, self.options))
    }

    /// Logs each skipped line at warn, with the file and its line number.
    pub fn report(&self, errors: &[HostsError]) {
        for e in errors {
            tracing::warn!(file = %self.path.display(), line = e.line, reason = %e.reason, "hosts line skipped");
        }
    }
}

/// Follows `file` until nothing else holds `out`: each changed content is parsed and stored
/// (its bad lines logged once per change and skipped); a file that cannot be read keeps the
/// entries last read, with a warning once per change.
pub async fn watch(file: HostsFile, out: Arc<ArcSwap<HostsTable>>, poll: Duration) {
    let dir = match file.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut files = FileWatch::new(&dir, false, poll.max(MIN_POLL));
    let mut last: Option<Result<String, String>> = None;
    loop {
        files.changed().await;
        if Arc::strong_count(&out) == 1 {
            return;
        }
        let now = std::fs::read_to_string(&file.path).map_err(|e| e.to_string());
        files.readable(Path::new(&dir).is_dir());
        if last.as_ref() == Some(&now) {
            continue;
        }
        match &now {
            Ok(text) => {
                let (table, errors) = HostsTable::parse(text, file.options);
                file.report(&errors);
                if **out.load() != table {
                    tracing::info!(file = %file.path.display(), names = table.len(), skipped = errors.len(), "hosts file loaded");
                    out.store(Arc::new(table));
                }
            }
            Err(e) => {
                tracing::warn!(file = %file.path.display(), error = %e, "cannot read the hosts file; serving the entries last read");
            }
        }
        last = Some(now);
    }
}

//! A directory of zone files: which files are zones, what changed since the last scan, and
//! the last good zone of each file.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::{Zone, ZoneFileError, ZoneSet};

/// The file name suffix of a zone file.
const SUFFIX: &str = ".zone";

/// What is known of one zone file.
struct FileState {
    /// Hash of the content last parsed.
    hash: u64,
    /// The last good zone, kept while the file is broken.
    zone: Option<Arc<Zone>>,
    /// The error of the current content, if it is broken.
    error: Option<ZoneFileError>,
}

/// A directory of zone files, remembering the last good zone of each file.
pub struct ZoneDir {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// Which file serves each origin of `current`.
    served_by: HashMap<Name, PathBuf>,
    current: Arc<ZoneSet>,
}

/// The outcome of one scan.
#[derive(Debug)]
pub struct ScanResult {
    /// The zones to serve now.
    pub zones: Arc<ZoneSet>,
    /// Whether `zones` differs from the previous scan's.
    pub changed: bool,
    /// Every problem found, including files that stay broken since an earlier scan.
    pub errors: Vec<ZoneFileError>,
}

fn content_hash(text: &str) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(7).build_hasher();
    h.write(text.as_bytes());
    h.finish()
}

/// The origin a file name spells (`example.internal.zone` → `example.internal.`), `None` when
/// the file is not a zone file (hidden, such as a ConfigMap's `..data`, or another suffix).
fn origin_of(file_name: &str) -> Option<Result<Name, String>> {
    if file_name.starts_with('.') {
        return None;
    }
    let stem = file_name.strip_suffix(SUFFIX)?;
    Some(
        Name::from_ascii(stem)
            .map(|name| {
                let mut name = name.to_lowercase();
                name.set_fqdn(true);
                name
            })
            .map_err(|e| format!("the file name does not spell a zone origin: {e}")),
    )
}

/// Lists the zone files of `dir` (following symbolic links), sorted, with their origins.
fn list(dir: &Path) -> std::io::Result<Vec<(PathBuf, Result<Name, String>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(origin) = name.to_str().and_then(origin_of) else {
            continue;
        };
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push((path, origin));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl ZoneDir {
    /// A zone directory; nothing is read until `scan`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            served_by: HashMap::new(),
            current: Arc::new(ZoneSet::empty()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The zones of the last scan.
    pub fn zones(&self) -> Arc<ZoneSet> {
        Arc::clone(&self.current)
    }

    /// Re-reads the directory. Files whose content is unchanged are not re-parsed. A file that
    /// fails to parse keeps its last good zone and yields an error naming the file, the line
    /// and the reason. A file that disappears drops its zone. Returns the new set and whether
    /// it changed. A directory that cannot be read changes nothing.
    pub fn scan(&mut self) -> ScanResult {
        let listed = match list(&self.dir) {
            Ok(listed) => listed,
            Err(e) => {
                return ScanResult {
                    zones: self.zones(),
                    changed: false,
                    errors: vec![ZoneFileError::new(
                        &self.dir,
                        format!("cannot read the zones directory: {e}"),
                    )],
                };
            }
        };
        let mut errors = Vec::new();
        self.files.retain(|path, _| {
            listed
                .binary_search_by(|(p, _)| p.as_path().cmp(path))
                .is_ok()
        });
        for (path, origin) in &listed {
            match origin {
                Ok(origin) => self.read_file(path, origin, &mut errors),
                Err(reason) => errors.push(ZoneFileError::new(path, reason.clone())),
            }
        }
        let changed = self.publish(&mut errors);
        ScanResult {
            zones: self.zones(),
            changed,
            errors,
        }
    }

    /// Reads one file, parsing it when its content changed.
    fn read_file(&mut self, path: &Path, origin: &Name, errors: &mut Vec<ZoneFileError>) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ZoneFileError::new(path, format!("cannot read: {e}")));
                return;
            }
        };
        let hash = content_hash(&text);
        if let Some(state) = self.files.get(path)
            && state.hash == hash
        {
            errors.extend(state.error.clone());
            return;
        }
        let state = self
            .files
            .entry(path.to_owned())
            .or_insert_with(|| FileState {
                hash,
                zone: None,
                error: None,
            });
        state.hash = hash;
        match Zone::parse(path, origin, &text) {
            Ok(zone) => {
                // An edit that changes no record (a comment) keeps the zone as it was.
                if !state.zone.as_ref().is_some_and(|old| old.same_as(&zone)) {
                    state.zone = Some(Arc::new(zone));
                }
                state.error = None;
            }
            Err(e) => state.error = Some(e),
        }
        errors.extend(state.error.clone());
    }

    /// Builds the set from each file's last good zone; returns whether it changed. Of two
    /// files for one origin, the one already serving it stays, else the first by name.
    fn publish(&mut self, errors: &mut Vec<ZoneFileError>) -> bool {
        let mut candidates: Vec<(&PathBuf, &Arc<Zone>)> = self
            .files
            .iter()
            .filter_map(|(path, state)| Some((path, state.zone.as_ref()?)))
            .collect();
        // Stable: files stay in name order within each group.
        candidates.sort_by_key(|(path, zone)| self.served_by.get(zone.origin()) != Some(*path));
        let mut served: HashMap<Name, PathBuf> = HashMap::new();
        let mut zones = Vec::new();
        for (path, zone) in candidates {
            if let Some(first) = served.get(zone.origin()) {
                errors.push(ZoneFileError::new(
                    path,
                    format!(
                        "origin {} is already served by {}",
                        zone.origin(),
                        first.display()
                    ),
                ));
                continue;
            }
            served.insert(zone.origin().clone(), path.clone());
            zones.push(Arc::clone(zone));
        }
        let same = served == self.served_by
            && zones.iter().all(|z| {
                self.current
                    .get(z.origin())
                    .is_some_and(|c| Arc::ptr_eq(c, z))
            });
        if same {
            return false;
        }
        self.current = Arc::new(ZoneSet::new(zones));
        self.served_by = served;
        true
    }
}

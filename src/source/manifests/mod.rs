//! A directory of ordinary Kubernetes manifests as a source: every `.yaml`, `.yml` and
//! `.json` file below it, multi-document, watched for changes.
//!
//! Each file keeps its last good objects: a file that stops parsing changes nothing, and an
//! object that fails to convert keeps its previous version. Only objects whose content changed
//! become deltas.
//!
//! Memory: the cluster holds the objects; this source keeps only each object's identity and
//! content hash in its file's list (packed, no heap block an object) and a 16-byte entry of
//! what was sent (`ledger.rs`), so a large directory is not held twice. A YAML file is converted one document at a time, each parsed tree dropped before the next;
//! a JSON object is converted straight from its text, a large file's on every core.

mod ledger;
mod parse;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ledger::{Effective, FileObjects, FileState, Files, IdRef, Sent, identity};

pub use parse::{ManifestError, ParsedFile, parse_file, parse_file_filtered};

use super::Delta;
use super::selector::LabelFilter;
use crate::model::Object;

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
}

/// Lists manifest files below `dir`, sorted, skipping hidden entries (such as the `..data`
/// links of a mounted ConfigMap, which would otherwise be read twice).
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => continue,
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && is_manifest(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How long after its last modification a periodic scan waits before reading a file.
const WRITE_SETTLE: Duration = Duration::from_millis(100);

/// A file's newly read objects, sorted by identity: the content hash, and the object unless
/// it is a kept last good version (which the cluster already has).
type ReadObjects = Vec<(Box<[u8]>, u64, Option<Object>)>;

/// The state of a manifests directory and what has been sent to the cluster.
pub struct ManifestSource {
    dir: PathBuf,
    files: Files,
    /// The files' indexes by path, in path order.
    by_path: BTreeMap<Arc<Path>, u32>,
    effective: Effective,
    /// `--labels`: Services that do not match are not read.
    labels: Option<LabelFilter>,
}

/// The result of one scan.
#[derive(Default)]
pub struct Scan {
    /// Changes to apply.
    pub deltas: Vec<Delta>,
    /// Problems found (each file's errors, every scan that reads it).
    pub errors: Vec<ManifestError>,
    /// Files read.
    pub files_read: usize,
}

fn content_hash(text: &str) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(7).build_hasher();
    h.write(text.as_bytes());
    h.finish()
}

fn object_hash(object: &Object) -> u64 {
    foldhash::quality::FixedState::with_seed(11).hash_one(object)
}

/// Reads `path` again and returns its current version of `id`, if it has a good one.
fn reread(path: &Path, id: IdRef<'_>, labels: Option<&LabelFilter>) -> Option<Object> {
    let text = std::fs::read_to_string(path).ok()?;
    let (objects, _) = parse_file_filtered(path, &text, labels).ok()?;
    let (kind, key) = (id.kind(), id.key());
    objects
        .into_iter()
        .find(|o| o.kind() == kind && o.key() == key)
}

impl ManifestSource {
    /// A source for `dir`; nothing is read until `scan`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: Files(Vec::new(), Vec::new()),
            by_path: BTreeMap::new(),
            effective: Effective::new(),
            labels: None,
        }
    }

    /// Reads only the Services whose labels match `labels`.
    pub fn with_label_filter(mut self, labels: Option<LabelFilter>) -> Self {
        self.labels = labels;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads what changed since the last scan. With `force`, every file's content is
    /// compared, not just its size and modification time. `Err` when the directory itself
    /// cannot be read: nothing changes then.
    // Listing, comparing, reading and diffing against the last scan share the per-file
    // state; the steps are short and in order.
    #[allow(clippy::too_many_lines)]
    pub fn scan(&mut self, force: bool) -> std::io::Result<Scan> {
        let listed = list_files(&self.dir)?;
        let mut scan = Scan::default();
        let present: std::collections::HashSet<&Path> =
            listed.iter().map(PathBuf::as_path).collect();
        let gone: Vec<u32> = self
            .by_path
            .iter()
            .filter(|(p, _)| !present.contains(&***p))
            .map(|(_, &i)| i)
            .collect();
        for index in gone {
            self.replace_file(index, None, &mut scan.deltas);
        }
        for path in &listed {
            let stamp = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let known = self.by_path.get(path.as_path()).copied();
            let state = known.and_then(|i| self.files.get(i));
            if !force && stamp.is_some() && state.is_some_and(|s| s.stamp == stamp) {
                continue;
            }
            // A periodic scan leaves a file that was modified a moment ago to the next one
            // (or to the file-system event): it may be half written, e.g. truncated and not
            // yet refilled, which would read as a file without objects.
            let just_written = stamp.is_some_and(|(modified, _)| {
                SystemTime::now()
                    .duration_since(modified)
                    .is_ok_and(|age| age < WRITE_SETTLE)
            });
            if !force && just_written {
                continue;
            }
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read manifest; keeping its last good objects");
                    continue;
                }
            };
            let hash = content_hash(&text);
            if let Some(state) = known.and_then(|i| self.files.get_mut(i)) {
                state.stamp = stamp;
                if state.hash == hash {
                    continue;
                }
            }
            scan.files_read += 1;
            let parsed = parse_file_filtered(path, &text, self.labels.as_ref());
            drop(text);
            let old = known.and_then(|i| self.files.get(i)).map(|s| &s.objects);
            let objects = match parsed {
                Err(e) => {
                    scan.errors.push(*e);
                    None
                }
                Ok((objects, errors)) => {
                    let mut map: HashMap<Box<[u8]>, (u64, Option<Object>)> = objects
                        .into_iter()
                        .map(|o| (identity(o.kind(), &o.key()), (object_hash(&o), Some(o))))
                        .collect();
                    for e in &errors {
                        // A broken object keeps its last good version.
                        if let Some((kind, key)) = &e.identity
                            && let id = identity(*kind, key)
                            && let Some(old) = old
                            && let Some(prev) = old.position(&id).and_then(|i| old.hash(i))
                        {
                            map.entry(id).or_insert((prev, None));
                        }
                    }
                    scan.errors.extend(errors);
                    let mut list: ReadObjects =
                        map.into_iter().map(|(id, (h, o))| (id, h, o)).collect();
                    list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    Some(list)
                }
            };
            // Remember this content either way: an unreadable file is not parsed again until
            // it changes, and keeps its previous objects meanwhile.
            let index = match known {
                Some(index) => {
                    if let Some(state) = self.files.get_mut(index) {
                        state.hash = hash;
                    }
                    index
                }
                None => self.add_file(path, stamp, hash),
            };
            if let Some(objects) = objects {
                self.replace_file(index, Some(objects), &mut scan.deltas);
            }
        }
        Ok(scan)
    }

    /// A new file without objects; its index.
    fn add_file(&mut self, path: &Path, stamp: Option<(SystemTime, u64)>, hash: u64) -> u32 {
        let path: Arc<Path> = Arc::from(path);
        let state = FileState {
            path: Arc::clone(&path),
            stamp,
            hash,
            objects: FileObjects::default(),
        };
        let Files(slots, free) = &mut self.files;
        let index = match free
            .pop()
            .and_then(|i| Some((i, slots.get_mut(i as usize)?)))
        {
            Some((i, slot)) => {
                *slot = Some(state);
                i
            }
            None => {
                slots.push(Some(state));
                (slots.len() - 1) as u32
            }
        };
        self.by_path.insert(path, index);
        index
    }

    /// Replaces what file `index` defines (`None`: the file is gone), sending the changes.
    fn replace_file(&mut self, index: u32, objects: Option<ReadObjects>, deltas: &mut Vec<Delta>) {
        let Some(path) = self.files.get(index).map(|s| Arc::clone(&s.path)) else {
            return;
        };
        // Take out the entries that point into this file (their slots are about to change),
        // keeping each one's hash by the identity's old slot.
        let old_len = self.files.get(index).map_or(0, |s| s.objects.len());
        let was_here: Vec<Option<u64>> = (0..old_len)
            .map(|slot| self.effective.take_from(&self.files, index, slot))
            .collect();
        let gone_file = objects.is_none();
        let new = objects.unwrap_or_default();
        let new_objects = FileObjects::from_sorted(new.iter().map(|(id, h, _)| (&**id, *h)));
        let old = if gone_file {
            self.by_path.remove(&path);
            self.files.1.push(index);
            self.files
                .0
                .get_mut(index as usize)
                .and_then(Option::take)
                .map(|s| s.objects)
        } else {
            self.files
                .get_mut(index)
                .map(|s| std::mem::replace(&mut s.objects, new_objects))
        }
        .unwrap_or_default();
        // What this file had in effect and no longer defines: another file's version, or
        // removal.
        for slot in (0..old.len()).filter(|&s| was_here.get(s).is_some_and(Option::is_some)) {
            let id = old.id(slot);
            let still_here = self
                .files
                .get(index)
                .is_some_and(|s| s.objects.position(id).is_some());
            if still_here {
                continue;
            }
            self.fall_back(index, id, deltas);
        }
        for (slot, (id, hash, obj)) in new.into_iter().enumerate() {
            let here = Sent {
                file: index,
                slot: slot as u32,
                hash,
            };
            let sent = match old
                .position(&id)
                .and_then(|s| was_here.get(s).copied().flatten())
            {
                Some(h) => Some(Sent { hash: h, ..here }),
                None => self.effective.get(&self.files, &id),
            };
            if let Some(s) = sent.filter(|s| s.file != index) {
                let other = self.files.get(s.file).map(|f| Arc::clone(&f.path));
                let other = other.as_deref().unwrap_or(Path::new("?"));
                tracing::warn!(file = %path.display(), other = %other.display(), kind = %IdRef(&id).kind(), object = %IdRef(&id).key(), "object defined in two files; the later read wins");
            }
            let changed = sent.map(|s| s.hash) != Some(hash);
            match obj {
                Some(obj) if changed => deltas.push(Delta::Upsert(obj)),
                // A kept last good version that differs from what is in effect is not at
                // hand (only its hash is kept): the version in effect stays (from this file,
                // with the hash that was sent).
                None if changed => {
                    if let Some(s) = sent.filter(|s| s.file == index) {
                        self.effective.set(&self.files, s);
                    }
                    continue;
                }
                _ => {}
            }
            self.effective.set(&self.files, here);
        }
    }

    /// `id`, which file `index` sent and no longer defines: the first other file's version
    /// (read again: only hashes are kept), or its removal.
    fn fall_back(&mut self, index: u32, id: &[u8], deltas: &mut Vec<Delta>) {
        let other = self
            .by_path
            .iter()
            .filter(|&(_, &i)| i != index)
            .filter_map(|(p, &i)| Some((p, i, self.files.get(i)?.objects.position(id)?)))
            .find_map(|(p, i, slot)| {
                reread(p, IdRef(id), self.labels.as_ref()).map(|o| (i, slot, o))
            });
        match other {
            Some((file, slot, o)) => {
                let sent = Sent {
                    file,
                    slot: slot as u32,
                    hash: object_hash(&o),
                };
                self.effective.set(&self.files, sent);
                deltas.push(Delta::Upsert(o));
            }
            None => deltas.push(Delta::Remove(IdRef(id).kind(), IdRef(id).key())),
        }
    }
}

#[cfg(test)]
mod tests;

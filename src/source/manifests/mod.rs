//! A directory of ordinary Kubernetes manifests as a source: every `.yaml`, `.yml` and
//! `.json` file below it, multi-document, watched for changes.
//!
//! Each file keeps its last good objects: a file that stops parsing changes nothing, and an
//! object that fails to convert keeps its previous version. Only objects whose content changed
//! become deltas.
//!
//! Memory: the cluster holds the objects; this source keeps only a content hash per object
//! (which file defines what, and what was sent), so a large directory is not held twice. A
//! YAML file is converted one document at a time, each parsed tree dropped before the next;
//! a JSON object is converted straight from its text, a large file's on every core.

mod parse;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use parse::{ManifestError, ParsedFile, parse_file, parse_file_filtered};

use super::Delta;
use super::selector::LabelFilter;
use crate::model::{Kind, Object, ObjectKey};

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

/// An object's identity (kind, namespace and name) in one shared heap block: the source keeps
/// one per object, in `files` and in `effective` (an `Arc` of the kind and an `ObjectKey`
/// would be three blocks, ~128 bytes with the allocator's overhead, per object).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Id(Arc<[u8]>);

impl Id {
    /// The kind's place in `Kind::ALL` (one byte), the namespace's length (four, little
    /// endian), the namespace, the name.
    fn new(kind: Kind, key: &ObjectKey) -> Self {
        let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let mut bytes = Vec::with_capacity(5 + key.namespace.len() + key.name.len());
        bytes.push(index as u8);
        bytes.extend_from_slice(&(key.namespace.len() as u32).to_le_bytes());
        bytes.extend_from_slice(key.namespace.as_bytes());
        bytes.extend_from_slice(key.name.as_bytes());
        Id(bytes.into())
    }

    fn kind(&self) -> Kind {
        let index = self.0.first().map_or(0, |&i| usize::from(i));
        Kind::ALL.get(index).copied().unwrap_or(Kind::ALL[0])
    }

    fn key(&self) -> ObjectKey {
        let len = self
            .0
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes) as usize;
        let text = self.0.get(5..).unwrap_or_default();
        // Both parts were `str`s, cut where the namespace ended.
        let (namespace, name) = text.split_at(len.min(text.len()));
        ObjectKey::new(
            &String::from_utf8_lossy(namespace),
            &String::from_utf8_lossy(name),
        )
    }
}

/// How long after its last modification a periodic scan waits before reading a file.
const WRITE_SETTLE: Duration = Duration::from_millis(100);

/// What one file defines: each object's content hash, sorted by identity (a boxed slice, not
/// a hash table: a file's objects are only looked up when the file is read again). An object
/// that failed to convert keeps the hash of its last good version.
#[derive(Default)]
struct FileObjects(Box<[(Id, u64)]>);

impl FileObjects {
    fn get(&self, id: &Id) -> Option<&u64> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(id)).ok()?;
        self.0.get(i).map(|(_, h)| h)
    }

    fn contains_key(&self, id: &Id) -> bool {
        self.get(id).is_some()
    }

    fn keys(&self) -> impl Iterator<Item = &Id> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl FromIterator<(Id, u64)> for FileObjects {
    fn from_iter<I: IntoIterator<Item = (Id, u64)>>(iter: I) -> Self {
        let mut list: Vec<(Id, u64)> = iter.into_iter().collect();
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // One entry per identity, as the map the file was read into has.
        list.dedup_by(|a, b| a.0 == b.0);
        Self(list.into())
    }
}

/// A file's newly read objects: the content hash, and the object unless it is a kept last
/// good version (which the cluster already has).
type ReadObjects = HashMap<Id, (u64, Option<Object>)>;

struct FileState {
    stamp: Option<(SystemTime, u64)>,
    hash: u64,
    objects: FileObjects,
}

/// The state of a manifests directory and what has been sent to the cluster.
pub struct ManifestSource {
    dir: PathBuf,
    files: BTreeMap<Arc<Path>, FileState>,
    /// For each identity sent to the cluster: the file it came from and its content hash.
    /// The identities are shared with `files`: one copy of each key.
    effective: HashMap<Id, (Arc<Path>, u64)>,
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
fn reread(path: &Path, id: &Id, labels: Option<&LabelFilter>) -> Option<Object> {
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
            files: BTreeMap::new(),
            effective: HashMap::new(),
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
        let gone: Vec<Arc<Path>> = self
            .files
            .keys()
            .filter(|p| !present.contains(&***p))
            .cloned()
            .collect();
        for path in gone {
            self.replace_file(path, None, &mut scan.deltas);
        }
        for path in &listed {
            let stamp = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let known = self.files.get_key_value(path.as_path());
            if !force && stamp.is_some() && known.is_some_and(|(_, s)| s.stamp == stamp) {
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
            let key: Arc<Path> = known
                .map(|(k, _)| Arc::clone(k))
                .unwrap_or_else(|| Arc::from(path.as_path()));
            if let Some(state) = self.files.get_mut(&key) {
                state.stamp = stamp;
                if state.hash == hash {
                    continue;
                }
            }
            scan.files_read += 1;
            let parsed = parse_file_filtered(path, &text, self.labels.as_ref());
            drop(text);
            let old = self.files.get(&key).map(|s| &s.objects);
            let objects = match parsed {
                Err(e) => {
                    scan.errors.push(*e);
                    None
                }
                Ok((objects, errors)) => {
                    let mut map: ReadObjects = objects
                        .into_iter()
                        .map(|o| (Id::new(o.kind(), &o.key()), (object_hash(&o), Some(o))))
                        .collect();
                    for e in &errors {
                        // A broken object keeps its last good version.
                        if let Some((kind, key)) = &e.identity
                            && let id = Id::new(*kind, key)
                            && let Some(&prev) = old.and_then(|o| o.get(&id))
                        {
                            map.entry(id).or_insert((prev, None));
                        }
                    }
                    scan.errors.extend(errors);
                    Some(map)
                }
            };
            // Remember this content either way: an unreadable file is not parsed again until
            // it changes, and keeps its previous objects meanwhile.
            self.files
                .entry(Arc::clone(&key))
                .and_modify(|state| state.hash = hash)
                .or_insert_with(|| FileState {
                    stamp,
                    hash,
                    objects: FileObjects::default(),
                });
            if let Some(objects) = objects {
                self.replace_file(key, Some(objects), &mut scan.deltas);
            }
        }
        Ok(scan)
    }

    /// Replaces what `path` defines (`None`: the file is gone), sending the changes.
    fn replace_file(
        &mut self,
        path: Arc<Path>,
        objects: Option<ReadObjects>,
        deltas: &mut Vec<Delta>,
    ) {
        let old = match &objects {
            None => self
                .files
                .remove(&path)
                .map(|s| s.objects)
                .unwrap_or_default(),
            Some(_) => self
                .files
                .get_mut(&path)
                .map(|s| std::mem::take(&mut s.objects))
                .unwrap_or_default(),
        };
        let new = objects.unwrap_or_default();
        let labels = self.labels.clone();
        for id in old.keys().filter(|id| !new.contains_key(*id)) {
            let from_here = self.effective.get(id).is_some_and(|(p, _)| *p == path);
            if !from_here {
                continue;
            }
            // Fall back to another file that defines the same object, if any (read again:
            // only hashes are kept).
            let other = self
                .files
                .iter()
                .filter(|(p, s)| **p != path && s.objects.contains_key(id))
                .find_map(|(p, _)| reread(p, id, labels.as_ref()).map(|o| (Arc::clone(p), o)));
            match other {
                Some((p, o)) => {
                    self.effective.insert(id.clone(), (p, object_hash(&o)));
                    deltas.push(Delta::Upsert(o));
                }
                None => {
                    deltas.push(Delta::Remove(id.kind(), id.key()));
                    self.effective.remove(id);
                }
            }
        }
        let mut objects = Vec::with_capacity(new.len());
        for (id, (hash, obj)) in new {
            let id = match self.effective.get_key_value(&id) {
                Some((known, _)) => known.clone(),
                None => id,
            };
            objects.push((id.clone(), hash));
            let sent = self.effective.get(&id);
            match sent {
                Some((p, h)) if *h == hash && *p == path => continue,
                Some((p, _)) if *p != path => {
                    tracing::warn!(file = %path.display(), other = %p.display(), kind = %id.kind(), object = %id.key(), "object defined in two files; the later read wins");
                }
                _ => {}
            }
            let changed = sent.map(|(_, h)| *h) != Some(hash);
            match obj {
                Some(obj) if changed => deltas.push(Delta::Upsert(obj)),
                // A kept last good version that differs from what is in effect is not at
                // hand (only its hash is kept): the version in effect stays.
                None if changed => continue,
                _ => {}
            }
            self.effective.insert(id, (Arc::clone(&path), hash));
        }
        if let Some(state) = self.files.get_mut(&path) {
            state.objects = objects.into_iter().collect();
        }
    }
}

#[cfg(test)]
mod tests;

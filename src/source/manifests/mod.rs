//! A directory of ordinary Kubernetes manifests as a source: every `.yaml`, `.yml` and
//! `.json` file below it, multi-document, watched for changes.
//!
//! Each file keeps its last good objects: a file that stops parsing changes nothing, and an
//! object that fails to convert keeps its previous version. Only objects whose content changed
//! become deltas.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::{kind_of, object_from_json};
use crate::cluster::Delta;
use crate::model::{Kind, Object, ObjectKey};

/// A manifest that could not be read, named by file, object and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {object}: {}{reason}", file.display(), field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The file.
    pub file: PathBuf,
    /// The object (`Service shop/web`) or document (`document 3`).
    pub object: String,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The object's identity, when known: its last good version is kept.
    pub identity: Option<(Kind, ObjectKey)>,
}

/// The good objects of one file and the errors of the rest.
pub type ParsedFile = (Vec<Object>, Vec<ManifestError>);

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Converts one document (an object or a `List`), appending objects and errors.
fn document(file: &Path, label: &str, value: Value, out: &mut ParsedFile, depth: usize) {
    let error = |object: String, field: Option<String>, reason: String, identity| ManifestError {
        file: file.to_owned(),
        object,
        field,
        reason,
        identity,
    };
    if value.is_null() {
        return;
    }
    let (Some(api_version), Some(kind)) =
        (str_at(&value, &["apiVersion"]), str_at(&value, &["kind"]))
    else {
        out.1.push(error(
            label.to_owned(),
            None,
            "not a Kubernetes object (apiVersion and kind required)".into(),
            None,
        ));
        return;
    };
    if kind.ends_with("List") && depth == 0 {
        if let Some(Value::Array(items)) = value.get("items") {
            for (i, item) in items.iter().enumerate() {
                document(file, &format!("{label} item {i}"), item.clone(), out, 1);
            }
        }
        return;
    }
    let Some(k) = kind_of(api_version, kind) else {
        tracing::debug!(file = %file.display(), api_version, kind, "skipping kind clusterdns does not serve");
        return;
    };
    let name = str_at(&value, &["metadata", "name"]).unwrap_or_default();
    let namespace = match k {
        Kind::Namespace => "",
        _ => str_at(&value, &["metadata", "namespace"]).unwrap_or("default"),
    };
    let object = if name.is_empty() {
        format!("{kind} ({label})")
    } else if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    };
    let identity = (!name.is_empty()).then(|| (k, ObjectKey::new(namespace, name)));
    match object_from_json(k, value) {
        Ok(obj) => out.0.push(obj),
        Err(e) => {
            let (field, reason) = (e.field, e.reason);
            let field = (!field.is_empty() && field != ".").then_some(field);
            out.1.push(error(object, field, reason, identity));
        }
    }
}

/// Parses one manifest file. `Err` means the file as a whole is unreadable (its previous
/// objects should stay); `Ok` holds the good objects and the errors of the others.
pub fn parse_file(file: &Path, text: &str) -> Result<ParsedFile, Box<ManifestError>> {
    let whole = |reason: String| {
        Box::new(ManifestError {
            file: file.to_owned(),
            object: "file".into(),
            field: None,
            reason,
            identity: None,
        })
    };
    let mut out: ParsedFile = (Vec::new(), Vec::new());
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let value: Value = serde_json::from_str(text).map_err(|e| whole(e.to_string()))?;
        document(file, "document 1", value, &mut out, 0);
        return Ok(out);
    }
    let mut values = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| whole(format!("document {}: {e}", i + 1)))?;
        values.push(value);
    }
    for (i, value) in values.into_iter().enumerate() {
        document(file, &format!("document {}", i + 1), value, &mut out, 0);
    }
    Ok(out)
}

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

type Identity = (Kind, ObjectKey);
type FileObjects = HashMap<Identity, Object>;

struct FileState {
    stamp: Option<(SystemTime, u64)>,
    hash: u64,
    objects: HashMap<Identity, Object>,
}

/// The state of a manifests directory and what has been sent to the cluster.
pub struct ManifestSource {
    dir: PathBuf,
    files: BTreeMap<Arc<Path>, FileState>,
    /// The object in effect for each identity and the file it came from.
    effective: HashMap<Identity, (Arc<Path>, Object)>,
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

impl ManifestSource {
    /// A source for `dir`; nothing is read until `scan`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            effective: HashMap::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads what changed since the last scan. With `force`, every file's content is
    /// compared, not just its size and modification time. `Err` when the directory itself
    /// cannot be read: nothing changes then.
    pub fn scan(&mut self, force: bool) -> std::io::Result<Scan> {
        let listed = list_files(&self.dir)?;
        let mut scan = Scan::default();
        let mut changed: Vec<(Arc<Path>, Option<FileObjects>)> = Vec::new();
        let present: std::collections::HashSet<&Path> =
            listed.iter().map(PathBuf::as_path).collect();
        for gone in self.files.keys().filter(|p| !present.contains(&***p)) {
            changed.push((Arc::clone(gone), None));
        }
        for path in &listed {
            let stamp = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            let known = self.files.get_key_value(path.as_path());
            if !force && stamp.is_some() && known.is_some_and(|(_, s)| s.stamp == stamp) {
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
            let old = self.files.get(&key).map(|s| &s.objects);
            let objects = match parse_file(path, &text) {
                Err(e) => {
                    scan.errors.push(*e);
                    None
                }
                Ok((objects, errors)) => {
                    let mut map: HashMap<Identity, Object> = objects
                        .into_iter()
                        .map(|o| ((o.kind(), o.key()), o))
                        .collect();
                    for e in &errors {
                        // A broken object keeps its last good version.
                        if let Some(id) = &e.identity
                            && let Some(prev) = old.and_then(|o| o.get(id))
                        {
                            map.entry(id.clone()).or_insert_with(|| prev.clone());
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
                    objects: HashMap::new(),
                });
            let Some(objects) = objects else { continue };
            changed.push((key, Some(objects)));
        }
        for (path, objects) in changed {
            self.replace_file(path, objects, &mut scan.deltas);
        }
        Ok(scan)
    }

    fn replace_file(
        &mut self,
        path: Arc<Path>,
        objects: Option<FileObjects>,
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
        for (id, _) in old.iter().filter(|(id, _)| !new.contains_key(*id)) {
            let from_here = self.effective.get(id).is_some_and(|(p, _)| *p == path);
            if !from_here {
                continue;
            }
            // Fall back to another file that defines the same object, if any.
            let other = self
                .files
                .iter()
                .filter(|(p, _)| **p != path)
                .find_map(|(p, s)| s.objects.get(id).map(|o| (Arc::clone(p), o.clone())));
            match other {
                Some((p, o)) => {
                    deltas.push(Delta::Upsert(o.clone()));
                    self.effective.insert(id.clone(), (p, o));
                }
                None => {
                    deltas.push(Delta::Remove(id.0, id.1.clone()));
                    self.effective.remove(id);
                }
            }
        }
        for (id, obj) in &new {
            match self.effective.get(id) {
                Some((p, o)) if *o == *obj && *p == path => continue,
                Some((p, _)) if *p != path => {
                    tracing::warn!(file = %path.display(), other = %p.display(), kind = %id.0, object = %id.1, "object defined in two files; the later read wins");
                }
                _ => {}
            }
            if self.effective.get(id).map(|(_, o)| o) != Some(obj) {
                deltas.push(Delta::Upsert(obj.clone()));
            }
            self.effective
                .insert(id.clone(), (Arc::clone(&path), obj.clone()));
        }
        if let Some(state) = self.files.get_mut(&path) {
            state.objects = new;
        }
    }
}

#[cfg(test)]
mod tests;

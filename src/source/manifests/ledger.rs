//! What the manifests source remembers of each object without holding it: its identity and
//! content hash in its file's list, and what was sent to the cluster (`Effective`).
//!
//! No heap block an object: at 100k Services an identity in a shared block of its own, a map
//! entry naming it and its file, and a row in the file's list were 127 bytes a Service; packed
//! here they are 54.

use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::model::{Kind, ObjectKey};

/// An object's identity as bytes: the kind's place in `Kind::ALL` (one byte), the namespace's
/// length (one byte; 255 and four more, little endian, for a longer one), the namespace, the
/// name. Identities are compared and sorted as these bytes.
pub(super) fn identity(kind: Kind, key: &ObjectKey) -> Box<[u8]> {
    let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    let (namespace, name) = (key.namespace.as_bytes(), key.name.as_bytes());
    let mut bytes = Vec::with_capacity(6 + namespace.len() + name.len());
    bytes.push(index as u8);
    match u8::try_from(namespace.len()) {
        Ok(len) if len < u8::MAX => bytes.push(len),
        _ => {
            bytes.push(u8::MAX);
            bytes.extend_from_slice(&(namespace.len() as u32).to_le_bytes());
        }
    }
    bytes.extend_from_slice(namespace);
    bytes.extend_from_slice(name);
    bytes.into()
}

/// The parts of an identity's bytes (`identity`).
#[derive(Clone, Copy)]
pub(super) struct IdRef<'a>(pub(super) &'a [u8]);

impl IdRef<'_> {
    pub(super) fn kind(self) -> Kind {
        let index = self.0.first().map_or(0, |&i| usize::from(i));
        Kind::ALL.get(index).copied().unwrap_or(Kind::ALL[0])
    }

    pub(super) fn key(self) -> ObjectKey {
        let (len, text) = match self.0.get(1) {
            Some(&u8::MAX) => (
                self.0
                    .get(2..6)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_le_bytes) as usize,
                self.0.get(6..).unwrap_or_default(),
            ),
            Some(&len) => (usize::from(len), self.0.get(2..).unwrap_or_default()),
            None => (0, &[][..]),
        };
        // Both parts were `str`s, cut where the namespace ended.
        let (namespace, name) = text.split_at(len.min(text.len()));
        ObjectKey::new(
            &String::from_utf8_lossy(namespace),
            &String::from_utf8_lossy(name),
        )
    }
}

/// What one file defines, sorted by identity: the identities' bytes in one block with an end
/// each, and each object's content hash. An object that failed to convert keeps the hash of
/// its last good version.
#[derive(Default)]
pub(super) struct FileObjects {
    ids: Box<[u8]>,
    ends: Box<[u32]>,
    hashes: Box<[u64]>,
}

impl FileObjects {
    /// From identities sorted and without repeats, with their hashes.
    pub(super) fn from_sorted<'a>(objects: impl ExactSizeIterator<Item = (&'a [u8], u64)>) -> Self {
        let mut ids = Vec::new();
        let mut ends = Vec::with_capacity(objects.len());
        let mut hashes = Vec::with_capacity(objects.len());
        for (id, hash) in objects {
            ids.extend_from_slice(id);
            ends.push(ids.len() as u32);
            hashes.push(hash);
        }
        Self {
            ids: ids.into(),
            ends: ends.into(),
            hashes: hashes.into(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The identity at `slot`.
    pub(super) fn id(&self, slot: usize) -> &[u8] {
        let start = match slot.checked_sub(1) {
            Some(before) => self.ends.get(before).map_or(0, |&e| e as usize),
            None => 0,
        };
        let end = self.ends.get(slot).map_or(start, |&e| e as usize);
        self.ids.get(start..end).unwrap_or_default()
    }

    pub(super) fn hash(&self, slot: usize) -> Option<u64> {
        self.hashes.get(slot).copied()
    }

    /// Where `id` is.
    pub(super) fn position(&self, id: &[u8]) -> Option<usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.id(mid).cmp(id) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

pub(super) struct FileState {
    pub(super) path: Arc<Path>,
    pub(super) stamp: Option<(SystemTime, u64)>,
    pub(super) hash: u64,
    pub(super) objects: FileObjects,
}

/// What was sent to the cluster for one identity: the file it came from (an index into
/// `ManifestSource::files`), the identity's place in that file's objects, and the content
/// hash. The identity itself is read from the file's objects: 16 bytes an object.
#[derive(Clone, Copy)]
pub(super) struct Sent {
    pub(super) file: u32,
    pub(super) slot: u32,
    pub(super) hash: u64,
}

/// The files, by index (with the indexes of files gone, for reuse); an entry of `effective`
/// reads its identity from here.
pub(super) struct Files(pub(super) Vec<Option<FileState>>, pub(super) Vec<u32>);

impl Files {
    pub(super) fn get(&self, index: u32) -> Option<&FileState> {
        self.0.get(index as usize).and_then(Option::as_ref)
    }

    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut FileState> {
        self.0.get_mut(index as usize).and_then(Option::as_mut)
    }

    /// The identity an entry of `effective` stands for.
    pub(super) fn id_of(&self, sent: &Sent) -> &[u8] {
        debug_assert!(
            self.get(sent.file)
                .is_some_and(|f| (sent.slot as usize) < f.objects.len()),
            "an entry of what was sent points past its file's objects"
        );
        self.get(sent.file)
            .map_or(&[][..], |f| f.objects.id(sent.slot as usize))
    }
}

/// For each identity sent to the cluster: where it came from and its content hash.
///
/// Invariant: every entry's file holds the identity at the entry's slot. A file's objects are
/// replaced only after the entries that point into it have been taken out.
pub(super) struct Effective {
    table: HashTable<Sent>,
    hasher: foldhash::fast::RandomState,
}

impl Effective {
    pub(super) fn new() -> Self {
        Self {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(super) fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    pub(super) fn get(&self, files: &Files, id: &[u8]) -> Option<Sent> {
        self.table
            .find(self.hash(id), |s| files.id_of(s) == id)
            .copied()
    }

    /// Takes out the entry for the identity at `slot` of file `file` if it points there;
    /// gives its hash.
    pub(super) fn take_from(&mut self, files: &Files, file: u32, slot: usize) -> Option<u64> {
        let id = files.get(file)?.objects.id(slot);
        let hash = self.hash(id);
        let entry = self.table.find_entry(hash, |s| files.id_of(s) == id).ok()?;
        if entry.get().file != file {
            return None;
        }
        Some(entry.remove().0.hash)
    }

    /// Sets the entry for the identity `sent` points to.
    pub(super) fn set(&mut self, files: &Files, sent: Sent) {
        let id = files.id_of(&sent);
        let hash = self.hash(id);
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |s| files.id_of(s) == id,
            |s| hasher.hash_one(files.id_of(s)),
        ) {
            Entry::Occupied(mut entry) => *entry.get_mut() = sent,
            Entry::Vacant(entry) => {
                entry.insert(sent);
            }
        }
    }
}

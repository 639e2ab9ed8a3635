//! `ServiceTable`: a snapshot's Services, found by namespace and name.
//!
//! A map from a `namespace/name` key to the records held a copy of the name the records
//! already hold: a 32-byte key block and a 24-byte entry per Service. The table is a set of
//! the records themselves, each hashed and compared by its own namespace and name labels,
//! and looked up by `<namespace>/<name>` (`hashbrown::Equivalent`): an 8-byte entry.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::Equivalent;

use super::{Label, ServiceRecords, ShardedMap};

/// Writes `<namespace>/<name>` into `key`, which is exactly that long.
fn fill_key(key: &mut [u8], namespace: &[u8], name: &[u8]) {
    let (ns, rest) = key.split_at_mut(namespace.len());
    ns.copy_from_slice(namespace);
    if let Some((slash, tail)) = rest.split_first_mut() {
        *slash = b'/';
        tail.copy_from_slice(name);
    }
}

/// Calls `f` with `<namespace>/<name>` as one run of bytes: on the stack when short (as
/// every valid name is), so that a lookup and a stored entry hash with one `write` each.
fn with_key<R>(namespace: &[u8], name: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let n = namespace.len() + 1 + name.len();
    let mut buf = [0u8; 128];
    let mut long = Vec::new();
    let key = match buf.get_mut(..n) {
        Some(k) => k,
        None => {
            long.resize(n, 0);
            &mut long[..]
        }
    };
    fill_key(key, namespace, name);
    f(key)
}

/// Records as an entry of the table: hashed and compared by their namespace and name.
#[derive(Clone, Debug)]
struct Entry(Arc<ServiceRecords>);

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (ns, name) = (self.0.namespace.as_bytes(), self.0.name.as_bytes());
        with_key(ns, name, |k| Key(k).hash(state));
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.namespace == other.0.namespace && self.0.name == other.0.name
    }
}

impl Eq for Entry {}

/// A Service's name to look up: `<namespace>/<name>`, lower case.
#[derive(Clone, Copy, Debug)]
struct Key<'a>(&'a [u8]);

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

impl Equivalent<Entry> for Key<'_> {
    fn equivalent(&self, entry: &Entry) -> bool {
        let (ns, name) = (entry.0.namespace.as_bytes(), entry.0.name.as_bytes());
        self.0.len() == ns.len() + 1 + name.len()
            && self.0.ends_with(name)
            && self.0.starts_with(ns)
            && self.0.get(ns.len()) == Some(&b'/')
    }
}

/// A Service's name as the table keys it: namespace and name in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// The namespace, lower case.
    pub namespace: Label,
    /// The Service's name, lower case.
    pub name: Label,
}

impl ServiceKey {
    /// The key of `namespace/name`, lowered.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Label::lowercase(namespace),
            name: Label::lowercase(name),
        }
    }
}

/// Services' records by namespace and name (each Service's records hold its name).
#[derive(Clone, Debug, Default)]
pub struct ServiceTable(ShardedMap<Entry, ()>);

impl ServiceTable {
    /// No Services.
    pub fn new() -> Self {
        Self(ShardedMap::new())
    }

    /// The number of Services.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The records of the Service whose `<namespace>/<name>`, lower case, is `key`; never
    /// allocates.
    pub fn get(&self, key: &[u8]) -> Option<&Arc<ServiceRecords>> {
        self.0.get_key_value(&Key(key)).map(|(e, ())| &e.0)
    }

    /// The records of the Service a query names, its two labels in any case: the key is
    /// lowered on the stack, never allocated (two labels of at most 63 bytes fit; a longer
    /// name is no Service's).
    pub fn find(&self, namespace: &[u8], name: &[u8]) -> Option<&Arc<ServiceRecords>> {
        let mut buf = [0u8; 127];
        let key = buf.get_mut(..namespace.len() + 1 + name.len())?;
        fill_key(key, namespace, name);
        key.make_ascii_lowercase();
        self.get(key)
    }

    /// The records of the Service `name` in `namespace` (both lower case).
    pub fn get_name(&self, namespace: &[u8], name: &[u8]) -> Option<&Arc<ServiceRecords>> {
        with_key(namespace, name, |k| self.get(k))
    }

    /// The records under `key`.
    pub fn get_key(&self, key: &ServiceKey) -> Option<&Arc<ServiceRecords>> {
        self.get_name(key.namespace.as_bytes(), key.name.as_bytes())
    }

    /// Puts `records` under `key` (`Some`, whose name must be `key`) or removes what is
    /// there (`None`), copying the shard only if an older snapshot shares it.
    pub fn set(&mut self, key: &ServiceKey, records: Option<Arc<ServiceRecords>>) {
        let (ns, name) = (key.namespace.as_bytes(), key.name.as_bytes());
        // Removed first: inserting over an equal entry would keep the old records as the key.
        with_key(ns, name, |k| self.0.remove(&Key(k)));
        if let Some(records) = records {
            debug_assert!(records.namespace == key.namespace && records.name == key.name);
            self.0.set(Entry(records), Some(()));
        }
    }

    /// Every Service's records, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ServiceRecords>> {
        self.0.iter().map(|(e, ())| &e.0)
    }

    /// Entries in shards not shared with `other` (`ShardedMap::unshared_entries`).
    pub fn unshared_entries(&self, other: &Self) -> usize {
        self.0.unshared_entries(&other.0)
    }

    /// The number of shards (`ShardedMap::shard_count`).
    pub fn shard_count(&self) -> usize {
        self.0.shard_count()
    }

    /// Regrows the shards after a run of `set`s (`ShardedMap::rebalance`).
    pub fn rebalance(&mut self) {
        self.0.rebalance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(namespace: &str, name: &str, id: u32) -> Arc<ServiceRecords> {
        Arc::new(ServiceRecords {
            id,
            namespace: namespace.into(),
            name: name.into(),
            headless: false,
            addresses: Default::default(),
            srv_all: Default::default(),
            ports: Box::new([]),
            endpoints: Default::default(),
        })
    }

    #[test]
    fn services_are_found_by_the_name_their_records_hold() {
        let mut a = ServiceTable::new();
        for i in 0..2000 {
            let name = format!("svc-{i}");
            a.set(&ServiceKey::new("ns", &name), Some(records("ns", &name, i)));
        }
        a.rebalance();
        assert_eq!(a.len(), 2000);
        assert_eq!(a.get(b"ns/svc-7").map(|r| r.id), Some(7));
        assert_eq!(a.get_name(b"ns", b"svc-7").map(|r| r.id), Some(7));
        assert!(a.get(b"ns/svc-2000").is_none());
        // The same bytes cut elsewhere are another name.
        assert!(a.get_name(b"ns/svc", b"7").is_none());
        assert!(a.get_name(b"n", b"s/svc-7").is_none());
        assert!(a.get(b"nssvc-7").is_none() && a.get(b"ns/svc-7/").is_none());
        assert_eq!(a.find(b"NS", b"Svc-7").map(|r| r.id), Some(7));
        assert!(a.find(&[b'n'; 64], &[b's'; 64]).is_none());
        // A name too long for the stack buffer is found all the same.
        let long = "l".repeat(200);
        a.set(
            &ServiceKey::new("ns", &long),
            Some(records("ns", &long, 5000)),
        );
        assert_eq!(a.get_name(b"ns", long.as_bytes()).map(|r| r.id), Some(5000));
        assert_eq!(
            a.get(format!("ns/{long}").as_bytes()).map(|r| r.id),
            Some(5000)
        );
        a.set(&ServiceKey::new("ns", &long), None);

        // Replacing keeps one entry and the new records; older tables keep theirs.
        let mut b = a.clone();
        b.set(
            &ServiceKey::new("NS", "svc-7"),
            Some(records("ns", "svc-7", 9000)),
        );
        b.set(&ServiceKey::new("ns", "svc-8"), None);
        assert_eq!(b.len(), 1999);
        assert_eq!(b.get(b"ns/svc-7").map(|r| r.id), Some(9000));
        assert_eq!(a.get(b"ns/svc-7").map(|r| r.id), Some(7));
        assert!(b.get(b"ns/svc-8").is_none() && a.get(b"ns/svc-8").is_some());
        assert_eq!(b.iter().count(), 1999);
        assert_eq!(
            b.get_key(&ServiceKey::new("ns", "svc-9")).map(|r| r.id),
            Some(9)
        );
    }
}

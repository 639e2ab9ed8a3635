//! `ServiceTable`: a snapshot's Services, found by namespace and name.
//!
//! A map from a `namespace/name` key to the records held a copy of the name the records
//! already hold: a 32-byte key block and a 24-byte entry per Service. The table is a set of
//! the records themselves, each hashed and compared by its own namespace and name labels,
//! and looked up by the name's two parts (`hashbrown::Equivalent`): an 8-byte entry.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::Equivalent;

use super::{Label, ServiceRecords, ShardedMap};

/// Hashes a Service's name as both sides of a lookup must: namespace, `/`, name.
fn hash_name<H: Hasher>(namespace: &[u8], name: &[u8], state: &mut H) {
    state.write(namespace);
    state.write_u8(b'/');
    state.write(name);
}

/// Records as an entry of the table: hashed and compared by their namespace and name.
#[derive(Clone, Debug)]
struct Entry(Arc<ServiceRecords>);

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_name(self.0.namespace.as_bytes(), self.0.name.as_bytes(), state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.namespace == other.0.namespace && self.0.name == other.0.name
    }
}

impl Eq for Entry {}

/// A Service's name to look up: namespace and name, lower case.
#[derive(Clone, Copy, Debug)]
struct Name<'a> {
    namespace: &'a [u8],
    name: &'a [u8],
}

impl Hash for Name<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_name(self.namespace, self.name, state);
    }
}

impl Equivalent<Entry> for Name<'_> {
    fn equivalent(&self, entry: &Entry) -> bool {
        entry.0.name.as_bytes() == self.name && entry.0.namespace.as_bytes() == self.namespace
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

    /// The records of the Service `name` in `namespace` (both lower case); never allocates.
    pub fn get(&self, namespace: &[u8], name: &[u8]) -> Option<&Arc<ServiceRecords>> {
        self.0
            .get_key_value(&Name { namespace, name })
            .map(|(e, ())| &e.0)
    }

    /// The records under `key`.
    pub fn get_key(&self, key: &ServiceKey) -> Option<&Arc<ServiceRecords>> {
        self.get(key.namespace.as_bytes(), key.name.as_bytes())
    }

    /// Puts `records` under `key` (`Some`, whose name must be `key`) or removes what is
    /// there (`None`), copying the shard only if an older snapshot shares it.
    pub fn set(&mut self, key: &ServiceKey, records: Option<Arc<ServiceRecords>>) {
        let name = Name {
            namespace: key.namespace.as_bytes(),
            name: key.name.as_bytes(),
        };
        // Removed first: inserting over an equal entry would keep the old records as the key.
        self.0.remove(&name);
        if let Some(records) = records {
            debug_assert!(name.equivalent(&Entry(Arc::clone(&records))));
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
            cname: None,
            addresses: Default::default(),
            srv_all: Default::default(),
            ports: Box::new([]),
            endpoints: Box::new([]),
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
        assert_eq!(a.get(b"ns", b"svc-7").map(|r| r.id), Some(7));
        assert!(a.get(b"ns", b"svc-2000").is_none());
        // The same bytes cut elsewhere are another name.
        assert!(a.get(b"ns/svc", b"7").is_none());
        assert!(a.get(b"n", b"s/svc-7").is_none());

        // Replacing keeps one entry and the new records; older tables keep theirs.
        let mut b = a.clone();
        b.set(
            &ServiceKey::new("NS", "svc-7"),
            Some(records("ns", "svc-7", 9000)),
        );
        b.set(&ServiceKey::new("ns", "svc-8"), None);
        assert_eq!(b.len(), 1999);
        assert_eq!(b.get(b"ns", b"svc-7").map(|r| r.id), Some(9000));
        assert_eq!(a.get(b"ns", b"svc-7").map(|r| r.id), Some(7));
        assert!(b.get(b"ns", b"svc-8").is_none() && a.get(b"ns", b"svc-8").is_some());
        assert_eq!(b.iter().count(), 1999);
        assert_eq!(
            b.get_key(&ServiceKey::new("ns", "svc-9")).map(|r| r.id),
            Some(9)
        );
    }
}

//! How stores hold objects: `ObjectMap` (objects by their key, without a second copy of the
//! key) and `ByNamespace` (object names by namespace).
//!
//! Every model object carries its `ObjectKey` (two strings); a `HashMap<ObjectKey, T>` would
//! hold them twice, which at 100k Services is about 10 MB.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::model::{Label, ObjectKey};

/// A model object that knows its key (each store implements it for the objects it holds).
pub trait Keyed {
    /// The object's namespace and name.
    fn key(&self) -> &ObjectKey;
}

/// An object hashed and compared by its key alone.
struct ByKey<T>(T);

impl<T: Keyed> Hash for ByKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash as the key does, for lookups by `&ObjectKey`.
        self.0.key().hash(state);
    }
}

impl<T: Keyed> PartialEq for ByKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Keyed> Eq for ByKey<T> {}

impl<T: Keyed> Borrow<ObjectKey> for ByKey<T> {
    fn borrow(&self) -> &ObjectKey {
        self.0.key()
    }
}

/// Objects of one kind by key.
pub struct ObjectMap<T>(HashSet<ByKey<T>>);

impl<T: Keyed> ObjectMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        Self(HashSet::new())
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<&T> {
        self.0.get(key).map(|o| &o.0)
    }

    /// Inserts or replaces the object with the same key; gives back the one replaced.
    pub fn insert(&mut self, object: T) -> Option<T> {
        self.0.replace(ByKey(object)).map(|o| o.0)
    }

    /// Removes the object with this key.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<T> {
        self.0.take(key).map(|o| o.0)
    }

    /// Every object.
    pub fn values(&self) -> impl Iterator<Item = &T> + Clone {
        self.0.iter().map(|o| &o.0)
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.0.iter().map(|o| o.0.key())
    }
}

/// Object names by namespace, sorted, for the objects of one namespace (inline labels: no
/// heap block per name).
#[derive(Default)]
pub struct ByNamespace(HashMap<Label, BTreeSet<Label>>);

impl ByNamespace {
    /// Adds `key`'s name under its namespace.
    pub fn insert(&mut self, key: &ObjectKey) {
        let name = key.name.clone();
        match self.0.get_mut(&*key.namespace) {
            Some(set) => {
                set.insert(name);
            }
            None => {
                self.0.insert(key.namespace.clone(), BTreeSet::from([name]));
            }
        }
    }

    /// Removes `key`'s name; a namespace left empty goes too.
    pub fn remove(&mut self, key: &ObjectKey) {
        if let Some(set) = self.0.get_mut(&*key.namespace) {
            set.remove(&key.name);
            if set.is_empty() {
                self.0.remove(&*key.namespace);
            }
        }
    }

    /// The names in `namespace`, sorted.
    pub fn names<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Label> + 'a {
        self.0.get(namespace).into_iter().flatten()
    }

    /// Every namespace with at least one name.
    pub fn namespaces(&self) -> impl Iterator<Item = &Label> {
        self.0.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Service, ServiceKind};

    fn service(name: &str, headless: bool) -> Service {
        Service {
            key: ObjectKey::new("ns", name),
            kind: if headless {
                ServiceKind::Headless
            } else {
                ServiceKind::ExternalName("x.example".into())
            },
            spec: Default::default(),
            external: None,
        }
    }

    #[test]
    fn objects_by_their_own_key() {
        let mut map = ObjectMap::new();
        map.insert(service("a", false));
        map.insert(service("b", false));
        map.insert(service("a", true));
        assert_eq!(map.len(), 2);
        let a = ObjectKey::new("ns", "a");
        assert_eq!(map.get(&a).map(|s| &s.kind), Some(&ServiceKind::Headless));
        assert!(map.remove(&a).is_some());
        assert!(map.get(&a).is_none());
        assert_eq!(map.keys().collect::<Vec<_>>(), [&ObjectKey::new("ns", "b")]);
    }
}

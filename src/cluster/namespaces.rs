//! The Namespaces store: the names of the Namespace objects (DNS needs only that they exist).

use std::collections::HashSet;

use super::{Store, Touched};
use crate::model::{Namespace, ObjectKey};

/// Namespace objects, by name.
pub struct Namespaces(HashSet<Box<str>>);

impl Namespaces {
    /// No Namespaces.
    pub fn new() -> Self {
        Self(HashSet::new())
    }

    /// Adds a Namespace.
    pub fn upsert(&mut self, ns: Namespace, touched: &mut Touched) {
        touched.namespaces |= self.0.insert(ns.name);
    }

    /// Removes the Namespace named by `key` (whose namespace is empty).
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        touched.namespaces |= self.0.remove(&*key.name);
    }

    /// Every Namespace's name.
    pub fn names(&self) -> impl Iterator<Item = &Box<str>> {
        self.0.iter()
    }
}

impl Store for Namespaces {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.iter().map(|n| ObjectKey::new("", n)).collect()
    }
}

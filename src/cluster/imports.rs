//! The ServiceImports store (KEP-1645), for the clusterset zone.

use super::objects::{Keyed, ObjectMap};
use super::{Store, Touched};
use crate::model::{ObjectKey, ServiceImport};

impl Keyed for ServiceImport {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// ServiceImports by key.
pub struct ServiceImports(ObjectMap<ServiceImport>);

impl ServiceImports {
    /// No ServiceImports.
    pub fn new() -> Self {
        Self(ObjectMap::new())
    }

    /// The ServiceImport with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<&ServiceImport> {
        self.0.get(key)
    }

    /// Adds or replaces a ServiceImport: its clusterset records are rebuilt.
    pub fn upsert(&mut self, import: ServiceImport, touched: &mut Touched) {
        if self.0.get(&import.key) != Some(&import) {
            touched.imports.insert(import.key.clone());
            self.0.insert(import);
        }
    }

    /// Removes a ServiceImport: its clusterset records go.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        if self.0.remove(key).is_some() {
            touched.imports.insert(key.clone());
        }
    }

    /// Every namespace with a ServiceImport (lower case).
    pub fn namespaces(&self) -> impl Iterator<Item = Box<str>> + '_ {
        self.0
            .keys()
            .map(|k| k.namespace.to_ascii_lowercase().into_boxed_str())
    }
}

impl Store for ServiceImports {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.keys().cloned().collect()
    }
}

//! The Services store: Services by key and by namespace, and the ones with external
//! addresses (for the external zones).

use std::collections::BTreeSet;

use super::objects::{ByNamespace, Keyed, ObjectMap};
use super::{Store, Touched};
use crate::model::{Label, ObjectKey, Service};

impl Keyed for Service {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// Services by key, with their indexes.
pub struct Services {
    by_key: ObjectMap<Service>,
    by_namespace: ByNamespace,
    /// Services with external addresses, for the external zones.
    external: BTreeSet<ObjectKey>,
}

impl Services {
    /// No Services.
    pub fn new() -> Self {
        Self {
            by_key: ObjectMap::new(),
            by_namespace: ByNamespace::default(),
            external: BTreeSet::new(),
        }
    }

    /// The Service with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<&Service> {
        self.by_key.get(key)
    }

    /// Adds or replaces a Service: its records are rebuilt.
    pub fn upsert(&mut self, svc: Service, touched: &mut Touched) {
        let key = svc.key.clone();
        if self.by_key.get(&key) != Some(&svc) {
            let had_external = self.external.contains(&key);
            if svc.external.is_some() {
                self.external.insert(key.clone());
            } else {
                self.external.remove(&key);
            }
            touched.external |= had_external || svc.external.is_some();
            self.by_namespace.insert(&key);
            self.by_key.insert(svc);
            touched.services.insert(key);
            touched.namespaces = true;
        }
    }

    /// Removes a Service: its records go.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        if self.by_key.remove(key).is_some() {
            touched.external |= self.external.remove(key);
            self.by_namespace.remove(key);
            touched.services.insert(key.clone());
            touched.namespaces = true;
        }
    }

    /// The names of the Services in `namespace`, sorted.
    pub fn names_in<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Label> + 'a {
        self.by_namespace.names(namespace)
    }

    /// Every namespace with a Service.
    pub fn namespaces(&self) -> impl Iterator<Item = &Label> {
        self.by_namespace.namespaces()
    }

    /// The Services with external addresses, by key.
    pub fn with_external(&self) -> impl Iterator<Item = (&ObjectKey, &Service)> + Clone {
        self.external
            .iter()
            .filter_map(|k| Some((k, self.by_key.get(k)?)))
    }
}

impl Store for Services {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.by_key.keys().cloned().collect()
    }
}

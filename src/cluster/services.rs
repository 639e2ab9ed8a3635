//! The Services store: Services by key and by namespace, and the ones with external
//! addresses (for the external zones).
//!
//! The names by namespace are what a Pod's change looks through (the Services that select
//! it, or that its `subdomain` names): without Pods (they are watched only when a setting
//! needs them) that index is not kept, only a count of Services per namespace: 41 bytes a
//! Service at 100k of them.

use std::collections::{BTreeSet, HashMap};

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
    /// The number of Services in each namespace.
    per_namespace: HashMap<Label, u32>,
    /// Service names by namespace, once a Pod has asked (`index_names`).
    by_namespace: Option<ByNamespace>,
    /// Services with external addresses, for the external zones.
    external: BTreeSet<ObjectKey>,
}

impl Services {
    /// No Services.
    pub fn new() -> Self {
        Self {
            by_key: ObjectMap::new(),
            per_namespace: HashMap::new(),
            by_namespace: None,
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
            if let Some(index) = &mut self.by_namespace {
                index.insert(&key);
            }
            if self.by_key.insert(svc).is_none() {
                match self.per_namespace.get_mut(&*key.namespace) {
                    Some(n) => *n += 1,
                    None => {
                        self.per_namespace.insert(key.namespace.clone(), 1);
                    }
                }
            }
            touched.services.insert(key);
            touched.namespaces = true;
        }
    }

    /// Removes a Service: its records go.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        if self.by_key.remove(key).is_some() {
            touched.external |= self.external.remove(key);
            if let Some(index) = &mut self.by_namespace {
                index.remove(key);
            }
            if let Some(n) = self.per_namespace.get_mut(&*key.namespace) {
                *n -= 1;
                if *n == 0 {
                    self.per_namespace.remove(&*key.namespace);
                }
            }
            touched.services.insert(key.clone());
            touched.namespaces = true;
        }
    }

    /// Keeps the Service names by namespace from now on (`names_in` needs them; Pods do).
    pub fn index_names(&mut self) {
        if self.by_namespace.is_none() {
            let mut index = ByNamespace::default();
            for svc in self.by_key.values() {
                index.insert(&svc.key);
            }
            self.by_namespace = Some(index);
        }
    }

    /// The names of the Services in `namespace`, sorted: from the index once `index_names`
    /// was called, else by a scan of every Service.
    pub fn names_in<'a>(&'a self, namespace: &str) -> Vec<&'a Label> {
        match &self.by_namespace {
            Some(index) => index.names(namespace).collect(),
            None => {
                let mut names: Vec<&Label> = self
                    .by_key
                    .values()
                    .filter(|s| &*s.key.namespace == namespace)
                    .map(|s| &s.key.name)
                    .collect();
                names.sort();
                names
            }
        }
    }

    /// Every namespace with a Service.
    pub fn namespaces(&self) -> impl Iterator<Item = &Label> {
        self.per_namespace.keys()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceKind;

    fn service(namespace: &str, name: &str) -> Service {
        Service {
            key: ObjectKey::new(namespace, name),
            kind: ServiceKind::Headless,
            spec: Default::default(),
            external: None,
        }
    }

    #[test]
    fn names_by_namespace_are_the_same_with_and_without_the_index() {
        let mut services = Services::new();
        let mut touched = Touched::default();
        for (ns, name) in [("b", "web"), ("a", "db"), ("b", "api"), ("b", "web")] {
            services.upsert(service(ns, name), &mut touched);
        }
        let names = |s: &Services, ns: &str| -> Vec<String> {
            s.names_in(ns).iter().map(|n| n.to_string()).collect()
        };
        let mut namespaces: Vec<&str> = services.namespaces().map(|n| n.as_str()).collect();
        namespaces.sort_unstable();
        assert_eq!(namespaces, ["a", "b"]);
        assert_eq!(names(&services, "b"), ["api", "web"]);

        services.index_names();
        assert_eq!(names(&services, "b"), ["api", "web"]);
        services.upsert(service("b", "cache"), &mut touched);
        services.remove(&ObjectKey::new("a", "db"), &mut touched);
        assert_eq!(names(&services, "b"), ["api", "cache", "web"]);
        assert!(names(&services, "a").is_empty());
        let namespaces: Vec<&str> = services.namespaces().map(|n| n.as_str()).collect();
        assert_eq!(namespaces, ["b"], "a namespace left empty goes");
    }
}

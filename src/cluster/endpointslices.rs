//! The EndpointSlices store: slices by key and by the Service they belong to, and the trigger
//! times of changes not yet published (for the DNS programming latency).

use std::collections::{BTreeSet, HashMap};

use super::objects::{Keyed, ObjectMap};
use super::{Store, Touched};
use crate::model::{EndpointSlice, Label, ObjectKey};

impl Keyed for EndpointSlice {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// EndpointSlices by key, with their Services.
pub struct EndpointSlices {
    by_key: ObjectMap<EndpointSlice>,
    /// Slice names by the key of their Service.
    by_service: HashMap<ObjectKey, BTreeSet<Label>>,
    /// Multicluster slice names by the key of their ServiceImport (a separate index: they are
    /// never a local Service's endpoints).
    by_import: HashMap<ObjectKey, BTreeSet<Label>>,
    /// Changes with a trigger time, waiting to be published: (Service, Unix ms).
    programming_pending: Vec<(ObjectKey, i64)>,
}

impl EndpointSlices {
    /// No EndpointSlices.
    pub fn new() -> Self {
        Self {
            by_key: ObjectMap::new(),
            by_service: HashMap::new(),
            by_import: HashMap::new(),
            programming_pending: Vec::new(),
        }
    }

    /// Adds or replaces a slice: its Service's records (and its old Service's) are rebuilt.
    /// Endpoints' pod names are kept only with `pod_names` (`--endpoint-pod-names`).
    pub fn upsert(&mut self, mut slice: EndpointSlice, pod_names: bool, touched: &mut Touched) {
        if !pod_names {
            // Pod names only name endpoints with --endpoint-pod-names: not kept otherwise.
            slice.endpoints.forget_pod_names();
        }
        let old = self.by_key.get(&slice.key);
        if old == Some(&slice) {
            return;
        }
        let old_service = old.and_then(|o| o.service.clone());
        let old_import = old.and_then(|o| o.import.as_ref().map(|i| i.service.clone()));
        self.unlink(&slice.key, old_service.as_deref(), touched);
        self.unlink_import(&slice.key, old_import.as_deref(), touched);
        if let Some(import) = &slice.import {
            let key = ObjectKey::new(&slice.key.namespace, &import.service);
            self.by_import
                .entry(key.clone())
                .or_default()
                .insert(slice.key.name.clone());
            touched.imports.insert(key);
        }
        if let Some(svc) = &slice.service {
            let svc_key = ObjectKey::new(&slice.key.namespace, svc);
            if let Some(t) = slice.trigger_time_ms {
                self.programming_pending.push((svc_key.clone(), t));
            }
            self.by_service
                .entry(svc_key.clone())
                .or_default()
                .insert(slice.key.name.clone());
            touched.services.insert(svc_key);
        }
        self.by_key.insert(slice);
    }

    /// Removes a slice: its Service's records are rebuilt.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        if let Some(old) = self.by_key.remove(key) {
            self.unlink(key, old.service.as_deref(), touched);
            let import = old.import.as_ref().map(|i| &*i.service);
            self.unlink_import(key, import, touched);
        }
    }

    fn unlink_import(&mut self, key: &ObjectKey, import: Option<&str>, touched: &mut Touched) {
        let Some(name) = import else { return };
        let import_key = ObjectKey::new(&key.namespace, name);
        if let Some(set) = self.by_import.get_mut(&import_key) {
            set.remove(&key.name);
            if set.is_empty() {
                self.by_import.remove(&import_key);
            }
        }
        touched.imports.insert(import_key);
    }

    /// The multicluster slices of the ServiceImport `import`.
    pub fn of_import<'a>(
        &'a self,
        import: &'a ObjectKey,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.by_import
            .get(import)
            .into_iter()
            .flatten()
            .filter_map(|n| self.by_key.get(&ObjectKey::new(&import.namespace, n)))
    }

    fn unlink(&mut self, key: &ObjectKey, service: Option<&str>, touched: &mut Touched) {
        let Some(svc) = service else { return };
        let svc_key = ObjectKey::new(&key.namespace, svc);
        if let Some(set) = self.by_service.get_mut(&svc_key) {
            set.remove(&key.name);
            if set.is_empty() {
                self.by_service.remove(&svc_key);
            }
        }
        touched.services.insert(svc_key);
    }

    /// The slices of the Service `service`.
    pub fn of_service<'a>(
        &'a self,
        service: &'a ObjectKey,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|n| self.by_key.get(&ObjectKey::new(&service.namespace, n)))
    }

    /// Whether the Service `service` has slices (then its endpoints are not derived from Pods).
    pub fn has_service(&self, service: &ObjectKey) -> bool {
        self.by_service.contains_key(service)
    }

    /// The changes with a trigger time since the last call: (Service, Unix ms).
    pub fn take_programming(&mut self) -> Vec<(ObjectKey, i64)> {
        std::mem::take(&mut self.programming_pending)
    }
}

impl Store for EndpointSlices {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.by_key.keys().cloned().collect()
    }
}

//! The ConfigMaps store (`--hosts-configmap`): their `data`; the host entries of the chosen
//! key are parsed into the snapshot's `hosts` table when it changes.

use super::objects::{Keyed, ObjectMap};
use super::{Store, Touched};
use crate::hosts::{HostsOptions, HostsTable};
use crate::model::{ConfigMap, ConfigMapKey, ObjectKey};

impl Keyed for ConfigMap {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// ConfigMaps by key.
pub struct ConfigMaps(ObjectMap<ConfigMap>);

impl ConfigMaps {
    /// No ConfigMaps.
    pub fn new() -> Self {
        Self(ObjectMap::new())
    }

    /// Adds or replaces a ConfigMap.
    pub fn upsert(&mut self, cm: ConfigMap, touched: &mut Touched) {
        if self.0.get(&cm.key) != Some(&cm) {
            self.0.insert(cm);
            touched.hosts = true;
        }
    }

    /// Removes a ConfigMap.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        touched.hosts |= self.0.remove(key).is_some();
    }

    /// The host entries of `source`'s key (none while the ConfigMap or its key is missing);
    /// bad lines are logged and skipped.
    pub fn hosts(&self, source: &ConfigMapKey, options: HostsOptions) -> HostsTable {
        let Some(text) = self
            .0
            .get(&source.object)
            .and_then(|cm| cm.data.get(source.key.as_str()))
        else {
            tracing::info!(configmap = %source, "no host entries: the ConfigMap or its key is missing");
            return HostsTable::default();
        };
        let (table, errors) = HostsTable::parse(text, options);
        for e in &errors {
            tracing::warn!(configmap = %source, line = e.line, reason = %e.reason, "hosts line skipped");
        }
        tracing::info!(configmap = %source, names = table.len(), skipped = errors.len(), "host entries loaded");
        table
    }
}

impl Store for ConfigMaps {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.keys().cloned().collect()
    }
}

//! The Ingresses store: their hosts and load balancer addresses, for the external zones.

use super::objects::{Keyed, ObjectMap};
use super::{Store, Touched};
use crate::model::{Ingress, ObjectKey};

impl Keyed for Ingress {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// Ingresses by key.
pub struct Ingresses(ObjectMap<Ingress>);

impl Ingresses {
    /// No Ingresses.
    pub fn new() -> Self {
        Self(ObjectMap::new())
    }

    /// Adds or replaces an Ingress.
    pub fn upsert(&mut self, ing: Ingress, touched: &mut Touched) {
        if self.0.get(&ing.key) != Some(&ing) {
            self.0.insert(ing);
            touched.external = true;
        }
    }

    /// Removes an Ingress.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        touched.external |= self.0.remove(key).is_some();
    }

    /// Every Ingress.
    pub fn values(&self) -> impl Iterator<Item = &Ingress> + Clone {
        self.0.values()
    }
}

impl Store for Ingresses {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.keys().cloned().collect()
    }
}

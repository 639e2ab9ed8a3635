//! The Gateway API stores: Gateways (listener hostnames, addresses) and the routes of each
//! kind (HTTPRoute, GRPCRoute, TLSRoute: hostnames and accepting Gateways), for the external
//! zones.

use super::objects::{Keyed, ObjectMap};
use super::{Store, Touched};
use crate::model::{Gateway, ObjectKey, Route};

impl Keyed for Gateway {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

impl Keyed for Route {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// Objects of one external kind by key; any change rebuilds the external table.
pub struct ExternalObjects<T>(ObjectMap<T>);

/// Gateways by key.
pub type Gateways = ExternalObjects<Gateway>;
/// The routes of one kind by key.
pub type Routes = ExternalObjects<Route>;

impl<T: Keyed + PartialEq> ExternalObjects<T> {
    /// None.
    pub fn new() -> Self {
        Self(ObjectMap::new())
    }

    /// The object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<&T> {
        self.0.get(key)
    }

    /// Adds or replaces an object.
    pub fn upsert(&mut self, obj: T, touched: &mut Touched) {
        if self.0.get(obj.key()) != Some(&obj) {
            self.0.insert(obj);
            touched.external = true;
        }
    }

    /// Removes an object.
    pub fn remove(&mut self, key: &ObjectKey, touched: &mut Touched) {
        touched.external |= self.0.remove(key).is_some();
    }

    /// Every object.
    pub fn values(&self) -> impl Iterator<Item = &T> + Clone {
        self.0.values()
    }
}

impl<T: Keyed> Store for ExternalObjects<T> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.keys().cloned().collect()
    }
}

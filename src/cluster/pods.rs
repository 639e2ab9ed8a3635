//! The Pods store: Pods by key, by namespace and by address, and which Services a Pod's change
//! touches (those whose selector picks it while they have no slices, and the headless Service
//! its `subdomain` names).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use super::endpointslices::EndpointSlices;
use super::objects::{ByNamespace, Keyed, ObjectMap};
use super::services::Services;
use super::{Store, Touched};
use crate::model::{Label, ObjectKey, Pod};

impl Keyed for Pod {
    fn key(&self) -> &ObjectKey {
        &self.key
    }
}

/// Pods by key, with their indexes.
pub struct Pods {
    by_key: ObjectMap<Pod>,
    by_namespace: ByNamespace,
    /// Pods by address, for `--pods verified`.
    by_ip: HashMap<IpAddr, BTreeSet<ObjectKey>>,
    /// Pod addresses whose namespaces may have changed since the last publish.
    ips_touched: BTreeSet<IpAddr>,
}

impl Pods {
    /// No Pods.
    pub fn new() -> Self {
        Self {
            by_key: ObjectMap::new(),
            by_namespace: ByNamespace::default(),
            by_ip: HashMap::new(),
            ips_touched: BTreeSet::new(),
        }
    }

    /// Adds or replaces a Pod: the Services it was and is part of are rebuilt.
    pub fn upsert(
        &mut self,
        pod: Pod,
        services: &Services,
        slices: &EndpointSlices,
        touched: &mut Touched,
    ) {
        let old = self.by_key.get(&pod.key);
        if old == Some(&pod) {
            return;
        }
        if let Some(old) = old {
            touched
                .services
                .extend(services_for_pod(old, services, slices));
            let (key, ips) = (old.key.clone(), old.ips.clone());
            self.unindex_ips(&key, &ips);
        }
        for ip in pod.ips.iter() {
            self.by_ip.entry(*ip).or_default().insert(pod.key.clone());
            self.ips_touched.insert(*ip);
        }
        touched
            .services
            .extend(services_for_pod(&pod, services, slices));
        self.by_namespace.insert(&pod.key);
        touched.namespaces = true;
        self.by_key.insert(pod);
    }

    /// Removes a Pod: the Services it was part of are rebuilt.
    pub fn remove(
        &mut self,
        key: &ObjectKey,
        services: &Services,
        slices: &EndpointSlices,
        touched: &mut Touched,
    ) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_namespace.remove(key);
            self.unindex_ips(key, &old.ips);
            touched
                .services
                .extend(services_for_pod(&old, services, slices));
            touched.namespaces = true;
        }
    }

    fn unindex_ips(&mut self, key: &ObjectKey, ips: &[IpAddr]) {
        for ip in ips {
            if let Some(set) = self.by_ip.get_mut(ip) {
                set.remove(key);
                if set.is_empty() {
                    self.by_ip.remove(ip);
                }
            }
            self.ips_touched.insert(*ip);
        }
    }

    /// The Pods in `namespace`.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.by_namespace
            .names(namespace)
            .filter_map(move |n| self.by_key.get(&ObjectKey::new(namespace, n)))
    }

    /// Every namespace with a Pod.
    pub fn namespaces(&self) -> impl Iterator<Item = &Label> {
        self.by_namespace.namespaces()
    }

    /// Namespaces with a pod that has `ip`, lower case.
    pub fn namespaces_of(&self, ip: &IpAddr) -> Option<Arc<[Box<str>]>> {
        let list: BTreeSet<Box<str>> = self
            .by_ip
            .get(ip)?
            .iter()
            .map(|k| k.namespace.to_ascii_lowercase().into_boxed_str())
            .collect();
        (!list.is_empty()).then(|| list.into_iter().collect())
    }

    /// `namespace/name` of the first pod (by key) that has `ip`.
    pub fn name_of(&self, ip: &IpAddr) -> Option<Arc<str>> {
        let key = self.by_ip.get(ip)?.iter().min()?;
        Some(Arc::from(format!("{}/{}", key.namespace, key.name)))
    }

    /// The addresses whose namespaces may have changed since the last call.
    pub fn take_touched_ips(&mut self) -> BTreeSet<IpAddr> {
        std::mem::take(&mut self.ips_touched)
    }
}

impl Store for Pods {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.by_key.keys().cloned().collect()
    }
}

/// Services whose records depend on this pod: selector-derived ones and the headless
/// Service its `subdomain` names.
fn services_for_pod(pod: &Pod, services: &Services, slices: &EndpointSlices) -> Vec<ObjectKey> {
    let ns = &pod.key.namespace;
    services
        .names_in(ns)
        .into_iter()
        .map(|n| ObjectKey::new(ns, n))
        .filter(|k| {
            let Some(svc) = services.get(k) else {
                return false;
            };
            let by_subdomain = pod.subdomain.as_deref() == Some(&*k.name);
            let by_selector = !slices.has_service(k) && pod.matches(svc.selector());
            by_subdomain || by_selector
        })
        .collect()
}

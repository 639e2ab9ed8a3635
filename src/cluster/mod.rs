//! Cluster state: applies source deltas to one store per kind, knows which Services they
//! touch, and publishes a new zone snapshot that shares every untouched Service with the
//! previous one (`snapshot.rs`).

mod configmaps;
mod endpoints;
mod endpointslices;
mod external;
mod gateways;
mod imports;
mod ingresses;
pub mod metrics;
mod multicluster;
mod namespaces;
mod objects;
mod pods;
pub mod publish;
mod services;
mod snapshot;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

pub use crate::source::Delta;

use crate::model::{Kind, Object, ObjectKey};
use crate::zone::{Snapshot, ZoneConfig};
use configmaps::ConfigMaps;
use endpointslices::EndpointSlices;
use gateways::{Gateways, Routes};
use imports::ServiceImports;
use ingresses::Ingresses;
use namespaces::Namespaces;
use pods::Pods;
use services::Services;

/// The kinds a source must list before the zone counts as synced: every row of the table.
pub const ALL_KINDS: [Kind; Kind::ALL.len()] = Kind::ALL;

/// Choices about which objects and names the cluster publishes.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Serve only these namespaces (empty: all). Objects elsewhere are dropped on arrival.
    pub namespaces: HashSet<Box<str>>,
    /// Name endpoints without a hostname after their pod (`targetRef.name`, under 64 characters).
    pub endpoint_pod_names: bool,
    /// The kinds whose names the external zones serve (`--external-resources`: Service,
    /// Ingress, Gateway, HTTPRoute, GRPCRoute, TLSRoute); `None`: all of them.
    pub external_kinds: Option<Vec<Kind>>,
    /// `--hosts-configmap`: the ConfigMap key whose host entries the snapshot carries, and
    /// how they are answered.
    pub hosts: Option<(crate::model::ConfigMapKey, crate::hosts::HostsOptions)>,
}

impl ClusterOptions {
    fn admits(&self, obj: &Object) -> bool {
        // The hosts ConfigMap is read wherever it lives (k3s's is in kube-system).
        self.namespaces.is_empty()
            || self.namespaces.contains(obj.namespace())
            || matches!(obj, Object::ConfigMap(_))
    }
}

/// The cluster's objects and the snapshot built from them.
pub struct Cluster {
    config: Arc<ZoneConfig>,
    options: ClusterOptions,
    namespaces: Namespaces,
    services: Services,
    slices: EndpointSlices,
    pods: Pods,
    ingresses: Ingresses,
    imports: ServiceImports,
    gateways: Gateways,
    http_routes: Routes,
    grpc_routes: Routes,
    tls_routes: Routes,
    configmaps: ConfigMaps,
    /// The next never-used Service id (`ServiceRecords::id`).
    next_id: u32,
    /// Ids of deleted Services, free for new ones.
    free_ids: Vec<u32>,
    expected: BTreeSet<Kind>,
    synced: BTreeSet<Kind>,
    snapshot: Arc<Snapshot>,
    /// Published EndpointSlice changes: (service kind label, trigger time in Unix ms).
    programming_done: Vec<(&'static str, i64)>,
}

/// What one `apply` changed, as the stores report it.
#[derive(Default)]
struct Touched {
    services: BTreeSet<ObjectKey>,
    namespaces: bool,
    synced: bool,
    /// A Service's external addresses, an Ingress, a Gateway or a route changed.
    external: bool,
    /// ServiceImports whose clusterset records need rebuilding (the import or its slices
    /// changed).
    imports: BTreeSet<ObjectKey>,
    /// A ConfigMap changed (the host entries of `--hosts-configmap`).
    hosts: bool,
}

/// What the apply loop asks of every kind's store, besides its upsert and remove.
trait Store {
    /// How many objects it holds.
    fn len(&self) -> usize;
    /// The keys of its objects (a full list removes those it does not name).
    fn keys(&self) -> Vec<ObjectKey>;
}

impl Cluster {
    /// An empty cluster; the zone counts as synced once every kind in `expected` has been listed.
    pub fn new(config: Arc<ZoneConfig>, expected: &[Kind]) -> Self {
        let snapshot = Arc::new(Snapshot::empty(Arc::clone(&config)));
        Self {
            config,
            options: ClusterOptions::default(),
            namespaces: Namespaces::new(),
            services: Services::new(),
            slices: EndpointSlices::new(),
            pods: Pods::new(),
            ingresses: Ingresses::new(),
            imports: ServiceImports::new(),
            gateways: Gateways::new(),
            http_routes: Routes::new(),
            grpc_routes: Routes::new(),
            tls_routes: Routes::new(),
            configmaps: ConfigMaps::new(),
            next_id: 0,
            free_ids: Vec::new(),
            expected: expected.iter().copied().collect(),
            synced: BTreeSet::new(),
            snapshot,
            programming_done: Vec::new(),
        }
    }

    /// Sets the publishing options; call before the first `apply`.
    pub fn with_options(mut self, options: ClusterOptions) -> Self {
        self.options = options;
        self
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// Number of objects held, by kind, in table order.
    pub fn counts(&self) -> [(Kind, usize); Kind::ALL.len()] {
        Kind::ALL.map(|kind| (kind, self.store(kind).len()))
    }

    /// Applies deltas; returns the new snapshot if anything DNS-visible (or sync) changed.
    pub fn apply(&mut self, deltas: impl IntoIterator<Item = Delta>) -> Option<Arc<Snapshot>> {
        let mut touched = Touched::default();
        for delta in deltas {
            match delta {
                Delta::Upsert(obj) if self.options.admits(&obj) => self.upsert(obj, &mut touched),
                Delta::Upsert(_) => {}
                Delta::Remove(kind, key) => self.remove(kind, &key, &mut touched),
                Delta::Reset {
                    kind,
                    objects,
                    retain,
                } => self.reset(kind, objects, retain, &mut touched),
                Delta::Synced(kind) => {
                    touched.synced |= self.synced.insert(kind);
                }
            }
        }
        self.publish(touched)
    }

    /// A full list of `kind`: removes what it does not name (nor `retain`), upserts the rest.
    fn reset(
        &mut self,
        kind: Kind,
        mut objects: Vec<Object>,
        retain: Vec<ObjectKey>,
        touched: &mut Touched,
    ) {
        objects.retain(|o| self.options.admits(o));
        let mut keep: HashSet<ObjectKey> = objects.iter().map(Object::key).collect();
        keep.extend(retain);
        let existing = self.store(kind).keys();
        for key in existing.into_iter().filter(|k| !keep.contains(k)) {
            self.remove(kind, &key, touched);
        }
        for obj in objects.into_iter().filter(|o| o.kind() == kind) {
            self.upsert(obj, touched);
        }
    }

    /// The store of `kind`.
    fn store(&self, kind: Kind) -> &dyn Store {
        match kind {
            Kind::Namespace => &self.namespaces,
            Kind::Service => &self.services,
            Kind::EndpointSlice => &self.slices,
            Kind::Pod => &self.pods,
            Kind::Ingress => &self.ingresses,
            Kind::ServiceImport => &self.imports,
            Kind::Gateway => &self.gateways,
            Kind::HttpRoute => &self.http_routes,
            Kind::GrpcRoute => &self.grpc_routes,
            Kind::TlsRoute => &self.tls_routes,
            Kind::ConfigMap => &self.configmaps,
        }
    }

    fn upsert(&mut self, obj: Object, touched: &mut Touched) {
        match obj {
            Object::Namespace(ns) => self.namespaces.upsert(ns, touched),
            Object::Service(svc) => self.services.upsert(svc, touched),
            Object::EndpointSlice(slice) => {
                let pod_names = self.options.endpoint_pod_names;
                self.slices.upsert(slice, pod_names, touched);
            }
            Object::Pod(pod) => {
                self.services.index_names();
                self.pods.upsert(pod, &self.services, &self.slices, touched);
            }
            Object::Ingress(ing) => self.ingresses.upsert(ing, touched),
            Object::ServiceImport(import) => self.imports.upsert(import, touched),
            Object::Gateway(gw) => self.gateways.upsert(gw, touched),
            Object::HttpRoute(r) => self.http_routes.upsert(r, touched),
            Object::GrpcRoute(r) => self.grpc_routes.upsert(r, touched),
            Object::TlsRoute(r) => self.tls_routes.upsert(r, touched),
            Object::ConfigMap(cm) => self.configmaps.upsert(cm, touched),
        }
    }

    fn remove(&mut self, kind: Kind, key: &ObjectKey, touched: &mut Touched) {
        match kind {
            Kind::Namespace => self.namespaces.remove(key, touched),
            Kind::Service => self.services.remove(key, touched),
            Kind::EndpointSlice => self.slices.remove(key, touched),
            Kind::Pod => self.pods.remove(key, &self.services, &self.slices, touched),
            Kind::Ingress => self.ingresses.remove(key, touched),
            Kind::ServiceImport => self.imports.remove(key, touched),
            Kind::Gateway => self.gateways.remove(key, touched),
            Kind::HttpRoute => self.http_routes.remove(key, touched),
            Kind::GrpcRoute => self.grpc_routes.remove(key, touched),
            Kind::TlsRoute => self.tls_routes.remove(key, touched),
            Kind::ConfigMap => self.configmaps.remove(key, touched),
        }
    }
}

#[cfg(test)]
mod tests;

//! Cluster state: applies source deltas, knows which Services they touch, and publishes a new
//! zone snapshot that shares every untouched Service with the previous one.

mod endpoints;
mod objects;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::source::Delta;

use crate::model::{EndpointSlice, Ingress, Kind, Object, ObjectKey, Pod, Service, ServiceKind};
use crate::zone::{
    ExternalService, ExternalTable, PodsMode, PtrSet, PtrTarget, ReverseMap, ServiceInput,
    ServiceRecords, ShardedMap, Snapshot, ZoneConfig, build_service, service_key,
};
use objects::ObjectMap;

/// The kinds a source must list before the zone counts as synced: every row of the table.
pub const ALL_KINDS: [Kind; Kind::ALL.len()] = Kind::ALL;

/// Choices about which objects and names the cluster publishes.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Serve only these namespaces (empty: all). Objects elsewhere are dropped on arrival.
    pub namespaces: HashSet<Box<str>>,
    /// Name endpoints without a hostname after their pod (`targetRef.name`, under 64 characters).
    pub endpoint_pod_names: bool,
}

impl ClusterOptions {
    fn admits(&self, obj: &Object) -> bool {
        self.namespaces.is_empty() || self.namespaces.contains(obj.namespace())
    }
}

/// The cluster's objects and the snapshot built from them.
pub struct Cluster {
    config: Arc<ZoneConfig>,
    options: ClusterOptions,
    services: ObjectMap<Service>,
    services_by_ns: HashMap<Box<str>, BTreeSet<Box<str>>>,
    slices: ObjectMap<EndpointSlice>,
    slices_by_service: HashMap<ObjectKey, BTreeSet<Box<str>>>,
    pods: ObjectMap<Pod>,
    pods_by_ns: HashMap<Box<str>, BTreeSet<Box<str>>>,
    namespace_objects: HashSet<Box<str>>,
    /// Ingresses, for the external zones.
    ingresses: ObjectMap<Ingress>,
    /// Services with external addresses, for the external zones.
    external_services: BTreeSet<ObjectKey>,
    /// The next never-used Service id (`ServiceRecords::id`).
    next_id: u32,
    /// Ids of deleted Services, free for new ones.
    free_ids: Vec<u32>,
    /// Pods by address, for `--pods verified`.
    pods_by_ip: HashMap<IpAddr, BTreeSet<ObjectKey>>,
    /// Pod addresses whose namespaces may have changed since the last publish.
    pod_ips_touched: BTreeSet<IpAddr>,
    expected: BTreeSet<Kind>,
    synced: BTreeSet<Kind>,
    snapshot: Arc<Snapshot>,
    /// EndpointSlice changes with a trigger time, waiting to be published.
    programming_pending: Vec<(ObjectKey, i64)>,
    /// Published ones: (service kind label, trigger time in Unix ms).
    programming_done: Vec<(&'static str, i64)>,
}

/// A Service a publish rebuilds: its key, snapshot key, id, and whether the id is new.
struct Planned<'a> {
    key: &'a ObjectKey,
    skey: Box<[u8]>,
    id: u32,
    fresh: bool,
}

/// What one `apply` changed.
#[derive(Default)]
struct Touched {
    services: BTreeSet<ObjectKey>,
    namespaces: bool,
    synced: bool,
    /// A Service's external addresses or an Ingress changed.
    external: bool,
}

/// Recomputes each of `keys` with `value_of` and applies to `next` only the values that differ
/// from `old`; returns whether any did.
fn apply_changed<K, V>(
    next: &mut ShardedMap<K, Arc<V>>,
    old: &ShardedMap<K, Arc<V>>,
    keys: impl IntoIterator<Item = K>,
    mut value_of: impl FnMut(&K) -> Option<Arc<V>>,
) -> bool
where
    K: std::hash::Hash + Eq + Clone,
    V: PartialEq + ?Sized,
{
    let changes: Vec<(K, Option<Arc<V>>)> = keys
        .into_iter()
        .map(|k| {
            let v = value_of(&k);
            (k, v)
        })
        .filter(|(k, new)| old.get(k).map(|a| &**a) != new.as_deref())
        .collect();
    let changed = !changes.is_empty();
    next.update(changes);
    changed
}

fn index_insert(index: &mut HashMap<Box<str>, BTreeSet<Box<str>>>, key: &ObjectKey) {
    index
        .entry(key.namespace.clone())
        .or_default()
        .insert(key.name.clone());
}

fn index_remove(index: &mut HashMap<Box<str>, BTreeSet<Box<str>>>, key: &ObjectKey) {
    if let Some(set) = index.get_mut(&key.namespace) {
        set.remove(&key.name);
        if set.is_empty() {
            index.remove(&key.namespace);
        }
    }
}

impl Cluster {
    /// An empty cluster; the zone counts as synced once every kind in `expected` has been listed.
    pub fn new(config: Arc<ZoneConfig>, expected: &[Kind]) -> Self {
        let snapshot = Arc::new(Snapshot::empty(Arc::clone(&config)));
        Self {
            config,
            options: ClusterOptions::default(),
            services: ObjectMap::new(),
            services_by_ns: HashMap::new(),
            slices: ObjectMap::new(),
            slices_by_service: HashMap::new(),
            pods: ObjectMap::new(),
            pods_by_ns: HashMap::new(),
            namespace_objects: HashSet::new(),
            ingresses: ObjectMap::new(),
            external_services: BTreeSet::new(),
            next_id: 0,
            free_ids: Vec::new(),
            pods_by_ip: HashMap::new(),
            pod_ips_touched: BTreeSet::new(),
            expected: expected.iter().copied().collect(),
            synced: BTreeSet::new(),
            snapshot,
            programming_pending: Vec::new(),
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
        Kind::ALL.map(|kind| {
            let n = match kind {
                Kind::Namespace => self.namespace_objects.len(),
                Kind::Service => self.services.len(),
                Kind::EndpointSlice => self.slices.len(),
                Kind::Pod => self.pods.len(),
                Kind::Ingress => self.ingresses.len(),
            };
            (kind, n)
        })
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
        let existing: Vec<ObjectKey> = match kind {
            Kind::Namespace => self
                .namespace_objects
                .iter()
                .map(|n| ObjectKey::new("", n))
                .collect(),
            Kind::Service => self.services.keys().cloned().collect(),
            Kind::EndpointSlice => self.slices.keys().cloned().collect(),
            Kind::Pod => self.pods.keys().cloned().collect(),
            Kind::Ingress => self.ingresses.keys().cloned().collect(),
        };
        for key in existing.into_iter().filter(|k| !keep.contains(k)) {
            self.remove(kind, &key, touched);
        }
        for obj in objects.into_iter().filter(|o| o.kind() == kind) {
            self.upsert(obj, touched);
        }
    }

    fn upsert(&mut self, obj: Object, touched: &mut Touched) {
        match obj {
            Object::Namespace(ns) => {
                touched.namespaces |= self.namespace_objects.insert(ns.name);
            }
            Object::Service(svc) => {
                let key = svc.key.clone();
                if self.services.get(&key) != Some(&svc) {
                    let had_external = self.external_services.contains(&key);
                    if svc.external.is_some() {
                        self.external_services.insert(key.clone());
                    } else {
                        self.external_services.remove(&key);
                    }
                    touched.external |= had_external || svc.external.is_some();
                    index_insert(&mut self.services_by_ns, &key);
                    self.services.insert(svc);
                    touched.services.insert(key);
                    touched.namespaces = true;
                }
            }
            Object::EndpointSlice(mut slice) => {
                if !self.options.endpoint_pod_names {
                    // Pod names only name endpoints with --endpoint-pod-names: not kept otherwise.
                    for ep in slice.endpoints.iter_mut() {
                        ep.pod_name = None;
                    }
                }
                let old = self.slices.get(&slice.key);
                if old == Some(&slice) {
                    return;
                }
                let old_service = old.and_then(|o| o.service.clone());
                self.unlink_slice(&slice.key, old_service.as_deref(), touched);
                if let Some(svc) = &slice.service {
                    let svc_key = ObjectKey::new(&slice.key.namespace, svc);
                    if let Some(t) = slice.trigger_time_ms {
                        self.programming_pending.push((svc_key.clone(), t));
                    }
                    self.slices_by_service
                        .entry(svc_key.clone())
                        .or_default()
                        .insert(slice.key.name.clone());
                    touched.services.insert(svc_key);
                }
                self.slices.insert(slice);
            }
            Object::Ingress(ing) => {
                if self.ingresses.get(&ing.key) != Some(&ing) {
                    self.ingresses.insert(ing);
                    touched.external = true;
                }
            }
            Object::Pod(pod) => {
                let old = self.pods.get(&pod.key);
                if old == Some(&pod) {
                    return;
                }
                if let Some(old) = old {
                    let affected = self.services_for_pod(old);
                    touched.services.extend(affected);
                    let (key, ips) = (old.key.clone(), old.ips.clone());
                    self.unindex_pod_ips(&key, &ips);
                }
                for ip in pod.ips.iter() {
                    self.pods_by_ip
                        .entry(*ip)
                        .or_default()
                        .insert(pod.key.clone());
                    self.pod_ips_touched.insert(*ip);
                }
                touched.services.extend(self.services_for_pod(&pod));
                index_insert(&mut self.pods_by_ns, &pod.key);
                touched.namespaces = true;
                self.pods.insert(pod);
            }
        }
    }

    fn remove(&mut self, kind: Kind, key: &ObjectKey, touched: &mut Touched) {
        match kind {
            Kind::Namespace => touched.namespaces |= self.namespace_objects.remove(&key.name),
            Kind::Service => {
                if self.services.remove(key).is_some() {
                    touched.external |= self.external_services.remove(key);
                    index_remove(&mut self.services_by_ns, key);
                    touched.services.insert(key.clone());
                    touched.namespaces = true;
                }
            }
            Kind::Ingress => touched.external |= self.ingresses.remove(key).is_some(),
            Kind::EndpointSlice => {
                if let Some(old) = self.slices.remove(key) {
                    self.unlink_slice(key, old.service.as_deref(), touched);
                }
            }
            Kind::Pod => {
                if let Some(old) = self.pods.remove(key) {
                    index_remove(&mut self.pods_by_ns, key);
                    self.unindex_pod_ips(key, &old.ips);
                    touched.services.extend(self.services_for_pod(&old));
                    touched.namespaces = true;
                }
            }
        }
    }

    fn unlink_slice(&mut self, key: &ObjectKey, service: Option<&str>, touched: &mut Touched) {
        let Some(svc) = service else { return };
        let svc_key = ObjectKey::new(&key.namespace, svc);
        if let Some(set) = self.slices_by_service.get_mut(&svc_key) {
            set.remove(&key.name);
            if set.is_empty() {
                self.slices_by_service.remove(&svc_key);
            }
        }
        touched.services.insert(svc_key);
    }

    /// Services whose records depend on this pod: selector-derived ones and the headless
    /// Service its `subdomain` names.
    fn services_for_pod(&self, pod: &Pod) -> Vec<ObjectKey> {
        let ns = &pod.key.namespace;
        let Some(names) = self.services_by_ns.get(ns) else {
            return Vec::new();
        };
        names
            .iter()
            .map(|n| ObjectKey::new(ns, n))
            .filter(|k| {
                let Some(svc) = self.services.get(k) else {
                    return false;
                };
                let by_subdomain = pod.subdomain.as_deref() == Some(&*k.name);
                let by_selector =
                    !self.slices_by_service.contains_key(k) && pod.matches(&svc.selector);
                by_subdomain || by_selector
            })
            .collect()
    }

    fn pods_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods_by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(move |n| self.pods.get(&ObjectKey::new(ns, n)))
    }

    /// Builds the records of every planned Service, in order; a large batch (the first list
    /// of a big cluster) is split into one run per core.
    fn build_all(&self, plan: &[Planned<'_>]) -> Vec<Option<ServiceRecords>> {
        let parts = crate::parallel::in_parts(plan, PARALLEL_BUILDS, |_, part| {
            part.iter()
                .map(|p| self.build(p.key, p.id))
                .collect::<Vec<_>>()
        });
        let mut all = Vec::with_capacity(plan.len());
        for part in parts {
            // Building panics only on a bug: the same panic as on one thread.
            all.extend(part.unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    }

    fn build(&self, key: &ObjectKey, id: u32) -> Option<ServiceRecords> {
        let svc = self.services.get(key)?;
        let slices: Vec<&EndpointSlice> = self
            .slices_by_service
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|n| self.slices.get(&ObjectKey::new(&key.namespace, n)))
            .collect();
        let (selected, ports) = if slices.is_empty() && !svc.selector.is_empty() {
            endpoints::selected_pods(svc, self.pods_in(&key.namespace))
        } else {
            endpoints::selected_pods(svc, std::iter::empty())
        };
        let named: Vec<&Pod> = if self.config.pods == PodsMode::Insecure
            && matches!(svc.kind, ServiceKind::Headless)
        {
            self.pods_in(&key.namespace)
                .filter(|p| p.subdomain.as_deref() == Some(&*key.name))
                .collect()
        } else {
            Vec::new()
        };
        let input = ServiceInput {
            namespace: &key.namespace,
            name: &key.name,
            kind: &svc.kind,
            ports: &svc.ports,
            endpoints: endpoints::ready_endpoints(
                svc,
                &slices,
                &selected,
                &ports,
                &named,
                self.options.endpoint_pod_names,
            ),
        };
        build_service(&input, id)
    }

    /// Moves one Service's claims in `reverse` from what `old` published to what `new` does:
    /// only the addresses it gains or loses are rewritten (names are spelled at answer time).
    fn update_ptrs(
        id: u32,
        old: Option<&ServiceRecords>,
        new: Option<&ServiceRecords>,
        by_id: &ShardedMap<u32, Arc<ServiceRecords>>,
        reverse: &mut ReverseMap,
    ) {
        let before = old.map(ServiceRecords::ptr_addresses).unwrap_or_default();
        let after = new.map(ServiceRecords::ptr_addresses).unwrap_or_default();
        // Both sorted: a merge finds what left and what came.
        let (mut i, mut j) = (0, 0);
        loop {
            let ((ip, cluster_ip), add) = match (before.get(i), after.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (Some(x), y) if y.is_none_or(|y| x < y) => {
                    i += 1;
                    (*x, false)
                }
                (_, Some(y)) => {
                    j += 1;
                    (*y, true)
                }
                _ => break,
            };
            let target = PtrTarget::new(id, cluster_ip);
            let next = match (reverse.get(&ip), add) {
                // The common cases: an address only this Service has, coming or going.
                (None, true) => Some(PtrSet::One(target)),
                (Some(t), false) if t.all() == [target] => None,
                (current, _) => {
                    let mut list: Vec<PtrTarget> = current
                        .map(|s| s.all())
                        .unwrap_or_default()
                        .iter()
                        .filter(|t| **t != target)
                        .copied()
                        .collect();
                    if add {
                        list.push(target);
                    }
                    PtrSet::new(list, |id| {
                        by_id
                            .get(&id)
                            .map(|r| format!("{}.{}", r.name.as_str(), r.namespace.as_str()))
                    })
                }
            };
            reverse.set(ip, next);
        }
    }

    fn unindex_pod_ips(&mut self, key: &ObjectKey, ips: &[IpAddr]) {
        for ip in ips {
            if let Some(set) = self.pods_by_ip.get_mut(ip) {
                set.remove(key);
                if set.is_empty() {
                    self.pods_by_ip.remove(ip);
                }
            }
            self.pod_ips_touched.insert(*ip);
        }
    }

    /// An unused Service id.
    fn take_id(&mut self) -> u32 {
        self.free_ids.pop().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        })
    }

    /// Namespaces with a pod that has `ip`.
    fn pod_namespaces_of(&self, ip: &IpAddr) -> Option<Arc<[Box<str>]>> {
        let list: BTreeSet<Box<str>> = self
            .pods_by_ip
            .get(ip)?
            .iter()
            .map(|k| k.namespace.to_ascii_lowercase().into_boxed_str())
            .collect();
        (!list.is_empty()).then(|| list.into_iter().collect())
    }

    fn existing_namespaces(&self) -> HashSet<Box<str>> {
        let mut set: HashSet<Box<str>> = self
            .namespace_objects
            .iter()
            .map(|n| n.to_ascii_lowercase().into_boxed_str())
            .collect();
        for ns in self.services_by_ns.keys().chain(self.pods_by_ns.keys()) {
            set.insert(ns.to_ascii_lowercase().into_boxed_str());
        }
        set
    }

    /// The external zones' names, from every Service with external addresses and every
    /// Ingress (few objects: rebuilt whole).
    fn external_table(&self) -> ExternalTable {
        let services = self.external_services.iter().filter_map(|k| {
            let svc = self.services.get(k)?;
            Some(ExternalService {
                namespace: &k.namespace,
                name: &k.name,
                ports: &svc.ports,
                addresses: svc.external.as_deref()?,
            })
        });
        let hosts = self.ingresses.values().flat_map(|i| {
            i.hosts
                .iter()
                .map(move |h| (&**h, &i.addresses))
                .filter(|(_, a)| !a.is_empty())
        });
        ExternalTable::build(&self.config.external_origins, services, hosts)
    }

    /// Trigger times of EndpointSlice changes published since the last call, with the kind
    /// of their Service (`cluster_ip`, `headless_with_selector`, `headless_without_selector`).
    pub fn take_programming(&mut self) -> Vec<(&'static str, i64)> {
        std::mem::take(&mut self.programming_done)
    }

    /// Serves every record with `ttl` from a new snapshot on (a configuration reload); `None`
    /// when it is the TTL already served.
    pub fn set_ttl(&mut self, ttl: u32) -> Option<Arc<Snapshot>> {
        if self.config.ttl == ttl {
            return None;
        }
        let mut config = (*self.config).clone();
        config.ttl = ttl;
        self.config = Arc::new(config);
        let mut next = (*self.snapshot).clone();
        next.config = Arc::clone(&self.config);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        next.serial = now.max(self.snapshot.serial.wrapping_add(1));
        self.snapshot = Arc::new(next);
        Some(self.snapshot())
    }

    fn publish(&mut self, touched: Touched) -> Option<Arc<Snapshot>> {
        for (key, t) in std::mem::take(&mut self.programming_pending) {
            let label = match self.services.get(&key) {
                Some(Service {
                    kind: ServiceKind::ClusterIp(_),
                    ..
                }) => "cluster_ip",
                Some(s) if matches!(s.kind, ServiceKind::Headless) && !s.selector.is_empty() => {
                    "headless_with_selector"
                }
                Some(s) if matches!(s.kind, ServiceKind::Headless) => "headless_without_selector",
                _ => continue,
            };
            self.programming_done.push((label, t));
        }
        let old = Arc::clone(&self.snapshot);
        let mut next = (*old).clone();
        let mut visible = false;

        let mut freed = Vec::new();
        let plan: Vec<Planned> = touched
            .services
            .iter()
            .map(|key| {
                let skey = service_key(&key.namespace, &key.name);
                let (id, fresh) = match old.services.get(&*skey) {
                    Some(r) => (r.id, false),
                    None => (self.take_id(), true),
                };
                Planned {
                    key,
                    skey,
                    id,
                    fresh,
                }
            })
            .collect();
        let built = self.build_all(&plan);
        for (planned, records) in plan.into_iter().zip(built) {
            let Planned {
                skey, id, fresh, ..
            } = planned;
            let before = old.services.get(&*skey);
            if before.map(|r| &**r) == records.as_ref() {
                if fresh {
                    self.free_ids.push(id);
                }
                continue;
            }
            visible = true;
            let records = records.map(Arc::new);
            next.by_id.set(id, records.clone());
            Self::update_ptrs(
                id,
                before.map(|r| &**r),
                records.as_deref(),
                &next.by_id,
                &mut next.reverse,
            );
            if records.is_none() {
                freed.push(id);
            }
            next.services.set(skey, records);
        }
        // Reused only from the next publish on: nothing in this one can mistake them.
        self.free_ids.append(&mut freed);
        next.services.rebalance();
        next.by_id.rebalance();
        next.reverse.rebalance();

        if self.config.pods == PodsMode::Verified {
            let touched_ips = std::mem::take(&mut self.pod_ips_touched);
            visible |= apply_changed(
                &mut next.pod_namespaces,
                &old.pod_namespaces,
                touched_ips,
                |ip| self.pod_namespaces_of(ip),
            );
        } else {
            self.pod_ips_touched.clear();
        }

        let dns_key = ObjectKey::new("kube-system", "kube-dns");
        if touched.services.contains(&dns_key) {
            let addrs: Arc<[IpAddr]> = match self.services.get(&dns_key).map(|s| &s.kind) {
                Some(ServiceKind::ClusterIp(ips)) => ips.iter().copied().collect(),
                _ => Arc::new([]),
            };
            if addrs != next.nameserver_addresses {
                next.nameserver_addresses = addrs;
                visible = true;
            }
        }
        if touched.external && !self.config.external_origins.is_empty() {
            let table = self.external_table();
            if table != *next.external {
                next.external = Arc::new(table);
                visible = true;
            }
        }
        if touched.namespaces {
            let set = self.existing_namespaces();
            if set != *next.namespaces {
                next.namespaces = Arc::new(set);
                visible = true;
            }
        }
        let synced = self.expected.is_subset(&self.synced);
        if !visible && synced == old.synced {
            return None;
        }
        next.synced = synced;
        if visible {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(0);
            next.serial = now.max(old.serial.wrapping_add(1));
        }
        let regrown = next.services.shard_count() != old.services.shard_count()
            || next.by_id.shard_count() != old.by_id.shard_count()
            || next.reverse.shard_counts() != old.reverse.shard_counts();
        self.snapshot = Arc::new(next);
        if regrown {
            // The maps' old shard tables are free now unless a reader still holds the old
            // snapshot: whole pages of them go back to the system.
            drop(old);
            release_free_memory();
        }
        Some(self.snapshot())
    }
}

/// Below this many Services a publish builds their records on one thread.
const PARALLEL_BUILDS: usize = 4096;

/// Returns the allocator's free pages to the system (glibc keeps them otherwise: after a
/// large load, the freed tables of the maps that grew stay in RSS for good).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and has no precondition; it takes the allocator's
    // own locks, so it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests;

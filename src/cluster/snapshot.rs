//! Publishing: builds the next snapshot from what one apply touched (each touched Service's
//! records and PTRs, pod namespaces, the nameservers, the external zones, the namespaces, the
//! serial), sharing everything untouched with the previous one.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Cluster, Touched, endpoints};
use crate::model::{EndpointSlice, ObjectKey, Pod, Service, ServiceKind};
use crate::zone::{
    PodsMode, PtrSet, PtrTarget, ReverseMap, ServiceInput, ServiceKey, ServiceRecords, ShardedMap,
    Snapshot, build_service,
};

/// A Service a publish rebuilds: its key, snapshot key, id, and whether the id is new.
struct Planned<'a> {
    key: &'a ObjectKey,
    skey: ServiceKey,
    id: u32,
    fresh: bool,
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

impl Cluster {
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
        let slices: Vec<&EndpointSlice> = self.slices.of_service(key).collect();
        let (selected, ports) = if slices.is_empty() && !svc.selector().is_empty() {
            endpoints::selected_pods(svc, self.pods.in_namespace(&key.namespace))
        } else {
            endpoints::selected_pods(svc, std::iter::empty())
        };
        let named: Vec<&Pod> = if self.config.pods == PodsMode::Insecure
            && matches!(svc.kind, ServiceKind::Headless)
        {
            self.pods
                .in_namespace(&key.namespace)
                .filter(|p| p.subdomain.as_deref() == Some(&*key.name))
                .collect()
        } else {
            Vec::new()
        };
        let input = ServiceInput {
            namespace: &key.namespace,
            name: &key.name,
            kind: &svc.kind,
            ports: &svc.ports(),
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

    /// An unused Service id.
    fn take_id(&mut self) -> u32 {
        self.free_ids.pop().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        })
    }

    /// Every namespace that exists: a Namespace object's, or one with a Service or a Pod.
    fn existing_namespaces(&self) -> HashSet<Box<str>> {
        let mut set: HashSet<Box<str>> = self
            .namespaces
            .names()
            .map(|n| n.to_ascii_lowercase().into_boxed_str())
            .collect();
        for ns in self.services.namespaces().chain(self.pods.namespaces()) {
            set.insert(ns.to_ascii_lowercase().into_boxed_str());
        }
        set
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

    /// Trigger times of EndpointSlice changes published since the last call, with the kind
    /// of their Service (`cluster_ip`, `headless_with_selector`, `headless_without_selector`).
    pub fn take_programming(&mut self) -> Vec<(&'static str, i64)> {
        std::mem::take(&mut self.programming_done)
    }

    /// Publishes what `touched` names: the new snapshot, or `None` when nothing DNS-visible
    /// (nor sync) changed.
    // One pass in the order a snapshot must be assembled (programming times, Services,
    // PTR moves, the external table, the serial); each step reads what the one before built.
    #[allow(clippy::too_many_lines)]
    pub(super) fn publish(&mut self, touched: Touched) -> Option<Arc<Snapshot>> {
        for (key, t) in self.slices.take_programming() {
            let label = match self.services.get(&key) {
                Some(Service {
                    kind: ServiceKind::ClusterIp(_),
                    ..
                }) => "cluster_ip",
                Some(s) if matches!(s.kind, ServiceKind::Headless) && !s.selector().is_empty() => {
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
                let skey = ServiceKey::new(&key.namespace, &key.name);
                let (id, fresh) = match old.services.get_key(&skey) {
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
            let before = old.services.get_key(&skey);
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
            next.services.set(&skey, records);
        }
        // Reused only from the next publish on: nothing in this one can mistake them.
        self.free_ids.append(&mut freed);
        next.services.rebalance();
        next.by_id.rebalance();
        next.reverse.rebalance();

        let touched_ips = self.pods.take_touched_ips();
        if self.config.pods == PodsMode::Verified {
            visible |= apply_changed(
                &mut next.pod_namespaces,
                &old.pod_namespaces,
                touched_ips.iter().copied(),
                |ip| self.pods.namespaces_of(ip),
            );
            // Not DNS-visible: no new serial for it.
            apply_changed(&mut next.pod_names, &old.pod_names, touched_ips, |ip| {
                self.pods.name_of(ip)
            });
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
        visible |= self.publish_clusterset(&touched.imports, &mut next, &old);
        if touched.hosts
            && let Some((source, options)) = &self.options.hosts
        {
            let table = self.configmaps.hosts(source, *options);
            if table != *next.hosts {
                next.hosts = Arc::new(table);
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

//! The clusterset zone's records (`--multicluster-zone`): one `ServiceRecords` per
//! ServiceImport, rebuilt when the import or one of its multicluster EndpointSlices changes.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::Cluster;
use crate::model::{ObjectKey, ServiceKind};
use crate::zone::{
    ReadyEndpoint, ServiceInput, ServiceKey, ServiceRecords, Snapshot, build_service, dashed,
};

impl Cluster {
    /// The records of one ServiceImport: its clusterset IPs, or (headless) the ready
    /// endpoints of its slices, each named `<hostname>.<clusterid>` (the hostname, else the
    /// dashed address; no per-cluster name without a source cluster).
    fn build_import(&self, key: &ObjectKey) -> Option<ServiceRecords> {
        let import = self.imports.get(key)?;
        let kind = if import.headless {
            ServiceKind::Headless
        } else {
            ServiceKind::ClusterIp(import.ips.clone().into())
        };
        let mut members = Vec::new();
        if import.headless {
            for slice in self.slices.of_import(key) {
                let cluster = slice
                    .import
                    .as_ref()
                    .map(|i| &*i.cluster)
                    .unwrap_or_default();
                for ep in slice.endpoints.iter().filter(|e| e.ready) {
                    let Some(first) = ep.addresses.first() else {
                        continue;
                    };
                    let host = match ep.hostname {
                        Some(h) => h.as_str().to_owned(),
                        None => dashed(first).as_str().to_owned(),
                    };
                    let label = (!cluster.is_empty()).then(|| format!("{host}.{cluster}"));
                    members.push((label, ep.addresses, &slice.ports));
                }
            }
        }
        let endpoints = members
            .iter()
            .map(|(label, addresses, ports)| ReadyEndpoint {
                hostname: label.as_deref(),
                addresses: *addresses,
                ports,
                in_service: true,
            })
            .collect();
        let input = ServiceInput {
            namespace: &key.namespace,
            name: &key.name,
            kind: &kind,
            ports: &import.ports,
            endpoints,
        };
        build_service(&input, 0)
    }

    /// Rebuilds the clusterset records of `touched` imports into `next`; whether anything
    /// there changed.
    pub(super) fn publish_clusterset(
        &self,
        touched: &BTreeSet<ObjectKey>,
        next: &mut Snapshot,
        old: &Snapshot,
    ) -> bool {
        if self.config.clusterset_origin.is_none() || touched.is_empty() {
            return false;
        }
        let mut visible = false;
        for key in touched {
            let skey = ServiceKey::new(&key.namespace, &key.name);
            let records = self.build_import(key).map(Arc::new);
            if old.clusterset.get_key(&skey).map(|r| &**r) != records.as_deref() {
                next.clusterset.set(&skey, records);
                visible = true;
            }
        }
        next.clusterset.rebalance();
        let namespaces: HashSet<Box<str>> = self.imports.namespaces().collect();
        if namespaces != *next.clusterset_namespaces {
            next.clusterset_namespaces = Arc::new(namespaces);
            visible = true;
        }
        visible
    }
}

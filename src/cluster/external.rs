//! The external zones' table (`--external-zone`), built whole from every object with a name
//! there: Services with external addresses, Ingress hosts, route hostnames through the
//! Gateways that accepted them, Gateway listener hostnames.

use super::Cluster;
use crate::model::{ExternalAddresses, Kind};
use crate::zone::{ExternalService, ExternalTable};

impl Cluster {
    /// Whether the external zones serve the names of `kind` (`--external-resources`).
    fn serves_external(&self, kind: Kind) -> bool {
        self.options
            .external_kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }

    /// Every hostname claim under the external zones, in the order that breaks ties between
    /// CNAMEs (Ingress, HTTPRoute, TLSRoute, GRPCRoute, Gateway listener; Services come
    /// before all of them): (hostname, the addresses it answers).
    fn external_hosts(&self) -> Vec<(&str, &ExternalAddresses)> {
        let mut hosts: Vec<(&str, &ExternalAddresses)> = Vec::new();
        if self.serves_external(Kind::Ingress) {
            for i in self.ingresses.values() {
                hosts.extend(i.hosts.iter().map(|h| (&**h, &i.addresses)));
            }
        }
        let routes = [
            (Kind::HttpRoute, &self.http_routes),
            (Kind::TlsRoute, &self.tls_routes),
            (Kind::GrpcRoute, &self.grpc_routes),
        ];
        for (kind, store) in routes {
            if !self.serves_external(kind) {
                continue;
            }
            for route in store.values() {
                for gw in route.gateways.iter().filter_map(|k| self.gateways.get(k)) {
                    hosts.extend(route.hostnames.iter().map(|h| (&**h, &gw.addresses)));
                }
            }
        }
        if self.serves_external(Kind::Gateway) {
            for gw in self.gateways.values() {
                hosts.extend(gw.hostnames.iter().map(|h| (&**h, &gw.addresses)));
            }
        }
        hosts.retain(|(_, a)| !a.is_empty());
        hosts
    }

    /// The external zones' names (few objects: rebuilt whole).
    pub(super) fn external_table(&self) -> ExternalTable {
        let with_ports: Vec<_> = if self.serves_external(Kind::Service) {
            self.services
                .with_external()
                .map(|(k, svc)| (k, svc, svc.ports()))
                .collect()
        } else {
            Vec::new()
        };
        let services: Vec<ExternalService<'_>> = with_ports
            .iter()
            .filter_map(|(k, svc, ports)| {
                Some(ExternalService {
                    namespace: &k.namespace,
                    name: &k.name,
                    ports,
                    addresses: svc.external.as_deref()?,
                })
            })
            .collect();
        let hosts = self.external_hosts();
        ExternalTable::build(
            &self.config.external_origins,
            services.iter().copied(),
            hosts.iter().copied(),
        )
    }
}

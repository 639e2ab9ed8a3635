//! The minimal cluster model: only the fields of Kubernetes objects that DNS answers depend on.
//!
//! Every field here is a memory decision: at 100k Services and 1M endpoints, one extra
//! `String` per endpoint is tens of megabytes. Strings are boxed (`Box<str>`, no spare
//! capacity), lists are boxed slices (an endpoint's addresses an `IpList`, one address
//! inline), and nothing of the original API object is kept.
//! Names are stored as Kubernetes spells them (always lower case for the objects DNS serves:
//! Services and Namespaces are DNS-1035/1123 labels).

mod config_map;
mod convert;
mod crd;
mod endpoints;
mod fields;
mod ip_list;
mod kind;
mod label;
mod pairs;
mod service_spec;

pub use config_map::{ConfigMap, ConfigMapKey, from_config_map, parse_configmap_key};
pub use convert::{ConvertError, from_ingress, from_namespace, from_pod, from_service};
pub use crd::{from_gateway, from_route, from_service_import};
pub use endpoints::{Endpoint, EndpointRef, Endpoints};
pub use ip_list::{IpList, Ips, IpsIter, OneOrMany, PackedIps};
pub use kind::{Document, Kind, KindRow, MapOnly, Model, Object};
pub use label::Label;
pub use pairs::{Pairs, PairsRef};
pub use service_spec::ServiceSpec;

use std::fmt;
use std::net::IpAddr;

/// A namespaced object's identity: namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace (inline when short, as namespaces almost always are: no heap block).
    pub namespace: Label,
    /// The object's name within its namespace (inline up to 22 bytes).
    pub name: Label,
}

impl ObjectKey {
    /// Builds a key from a namespace and a name.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A v1 Namespace: DNS needs only to know that it exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The namespace's name.
    pub name: Box<str>,
}

impl Model for Namespace {
    fn object_key(&self) -> ObjectKey {
        ObjectKey::new("", &self.name)
    }

    fn namespace(&self) -> &str {
        &self.name
    }
}

/// How a Service is published in DNS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// ClusterIP, NodePort and LoadBalancer: A/AAAA for each cluster IP (one inline).
    ClusterIp(IpList),
    /// `clusterIP: None`: A/AAAA for each ready endpoint.
    Headless,
    /// ExternalName: a CNAME to this name (kept as written, without a trailing dot).
    ExternalName(Box<str>),
}

/// The L4 protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Every protocol, in the order of `code`.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// The protocol as a number below 4 (its place in `ALL`), for packed records.
    pub fn code(self) -> u8 {
        match self {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
            Protocol::Sctp => 2,
        }
    }

    /// The protocol `code` gave (TCP for any other number).
    pub fn from_code(code: u8) -> Self {
        Self::ALL
            .get(usize::from(code))
            .copied()
            .unwrap_or(Protocol::Tcp)
    }

    /// The protocol's SRV label without the underscore: `tcp`, `udp`, `sctp`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// How a Service port reaches its pods.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetPort {
    /// A port number on the pod.
    Number(u16),
    /// A named container port on the pod.
    Name(Box<str>),
}

/// A port of a Service or EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    /// The port's name, lower case; unnamed ports get no `_port._proto` SRV name. Inline when
    /// short, as port names almost always are: no heap block per port.
    pub name: Option<Label>,
    /// The protocol.
    pub protocol: Protocol,
    /// The port number.
    pub port: u16,
}

/// A port of a Service: the port, and how it reaches the pods.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// Name, protocol and number.
    pub port: Port,
    /// The target port, for endpoints derived from Pods.
    pub target: TargetPort,
}

/// A v1 Service, reduced to what DNS publishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    /// Namespace and name.
    pub key: ObjectKey,
    /// ClusterIP, headless or ExternalName.
    pub kind: ServiceKind,
    /// The Service's ports with their targets, and its label selector (empty: the Service
    /// selects no Pods), packed in one heap block.
    /// `publishNotReadyAddresses` is read from there too (`publish_not_ready`).
    pub spec: ServiceSpec,
    /// `spec.externalIPs` and `status.loadBalancer.ingress`, for `--external-zone`; boxed
    /// behind one pointer because most Services have none.
    pub external: Option<Box<ExternalAddresses>>,
}

impl Service {
    /// The ports, without their targets.
    pub fn ports(&self) -> Vec<Port> {
        self.spec.ports().map(|p| p.port).collect()
    }

    /// The label selector; empty means the Service selects no Pods.
    pub fn selector(&self) -> PairsRef<'_> {
        self.spec.selector()
    }

    /// `publishNotReadyAddresses`: not-ready endpoints are published too.
    pub fn publish_not_ready(&self) -> bool {
        self.spec.publish_not_ready()
    }
}

impl Model for Service {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// Addresses a Service or Ingress is reached at from outside the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExternalAddresses {
    /// IP addresses: `externalIPs`, then load balancer `ip`s, as written.
    pub ips: Box<[IpAddr]>,
    /// Load balancer `hostname`s (lower case, without a trailing dot).
    pub hostnames: Box<[Box<str>]>,
}

impl ExternalAddresses {
    /// Whether there is nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.hostnames.is_empty()
    }
}

/// A networking.k8s.io/v1 Ingress, reduced to its hosts and load balancer addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ingress {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `spec.rules[].host`, lower case, without a trailing dot; wildcard hosts are left out.
    pub hosts: Box<[Box<str>]>,
    /// `status.loadBalancer.ingress`.
    pub addresses: ExternalAddresses,
}

impl Model for Ingress {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// A discovery.k8s.io/v1 EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointSlice {
    /// Namespace and name of the slice.
    pub key: ObjectKey,
    /// The Service it belongs to (label `kubernetes.io/service-name`); `None` for a
    /// multicluster slice.
    pub service: Option<Box<str>>,
    /// The ServiceImport and source cluster of a multicluster slice (label
    /// `multicluster.kubernetes.io/service-name`); boxed: most slices are local.
    pub import: Option<Box<ImportSource>>,
    /// The endpoints, as columns.
    pub endpoints: Endpoints,
    /// The ports every endpoint of this slice serves.
    pub ports: Box<[Port]>,
    /// `endpoints.kubernetes.io/last-change-trigger-time`, in Unix milliseconds.
    pub trigger_time_ms: Option<i64>,
}

impl Model for EndpointSlice {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// Where a multicluster EndpointSlice's endpoints come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImportSource {
    /// The ServiceImport's name (label `multicluster.kubernetes.io/service-name`).
    pub service: Box<str>,
    /// The cluster id (label `multicluster.kubernetes.io/source-cluster`), lower case; empty
    /// when the label is missing (then its endpoints have no per-cluster names).
    pub cluster: Box<str>,
}

/// A multicluster.x-k8s.io/v1alpha1 ServiceImport (KEP-1645), reduced to what the clusterset
/// zone publishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceImport {
    /// Namespace and name (the exported Service's).
    pub key: ObjectKey,
    /// `spec.type: Headless`: the name answers the ready endpoints of every exporting cluster.
    pub headless: bool,
    /// `spec.ips`: the clusterset IPs (type `ClusterSetIP`).
    pub ips: Box<[IpAddr]>,
    /// `spec.ports`.
    pub ports: Box<[Port]>,
}

impl Model for ServiceImport {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// A gateway.networking.k8s.io/v1 Gateway: its listeners' hostnames and its addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gateway {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `spec.listeners[].hostname`, lower case, without a trailing dot (`*.` kept).
    pub hostnames: Box<[Box<str>]>,
    /// `status.addresses`: `IPAddress` ones as IPs, `Hostname` ones as hostnames.
    pub addresses: ExternalAddresses,
}

impl Model for Gateway {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// An HTTPRoute, GRPCRoute or TLSRoute: its hostnames and the Gateways that accepted it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `spec.hostnames`, lower case, without a trailing dot (`*.` kept).
    pub hostnames: Box<[Box<str>]>,
    /// The Gateways of `spec.parentRefs` whose entry in `status.parents` has the condition
    /// `Accepted=True`.
    pub gateways: Box<[ObjectKey]>,
}

impl Model for Route {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// A named container port of a Pod, to resolve a Service's named `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    /// The port's name.
    pub name: Box<str>,
    /// The protocol.
    pub protocol: Protocol,
    /// The container port number.
    pub port: u16,
}

/// A v1 Pod, reduced to what DNS publishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pod {
    /// Namespace and name.
    pub key: ObjectKey,
    /// The Pod's labels, sorted by key, for Service selectors.
    pub labels: Box<[(Box<str>, Box<str>)]>,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Box<[IpAddr]>,
    /// `spec.hostname`.
    pub hostname: Option<Box<str>>,
    /// `spec.subdomain`.
    pub subdomain: Option<Box<str>>,
    /// The Ready condition is True.
    pub ready: bool,
    /// Named container ports only (numbered ones need no lookup).
    pub named_ports: Box<[ContainerPort]>,
}

impl Model for Pod {
    fn object_key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

impl Pod {
    /// Whether every key/value of `selector` is among the Pod's labels.
    pub fn matches(&self, selector: PairsRef<'_>) -> bool {
        !selector.is_empty()
            && selector.iter().all(|(k, v)| {
                self.labels
                    .binary_search_by(|(lk, _)| (**lk).cmp(k))
                    .is_ok_and(|i| &*self.labels[i].1 == v)
            })
    }
}

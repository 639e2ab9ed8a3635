//! The cluster zone as pure DNS data: an immutable snapshot, the name classifier, lookups and
//! rendering to records. No tokio, no kube.
//!
//! Data is kept compact (addresses, ports and labels, not `Record`s): at 1M endpoints a
//! prebuilt `Record` per name would cost hundreds of megabytes. Owner names and targets are
//! spelled at answer time, in the question's case.

mod build;
mod clusterset;
mod endpoint_names;
mod external;
mod lookup;
mod name;
mod ptr;
mod render;
mod reverse;
mod services;
mod sharded;
mod soa;
mod srv;
mod xfr;

pub use crate::model::Label;
pub use build::{ReadyEndpoint, ServiceInput, build_service, dashed};
pub use clusterset::CLUSTERSET_SCHEMA_VERSION;
pub use endpoint_names::{EndpointName, EndpointNames};
pub use external::{ExternalRecords, ExternalService, ExternalSrv, ExternalTable};
pub use lookup::{Answer, AnswerData, AnswerZone, Rcode, lookup, lookup_labels};
pub use name::{ClusterName, MAX_LABELS, classify, classify_labels, classify_labels_in};
pub use ptr::{PtrSet, PtrTarget, ReverseMap, Targets, ptr_names};
pub use render::{Rendered, render, target_addresses};
pub use reverse::reverse_address;
pub use services::{ServiceKey, ServiceTable};
pub use sharded::ShardedMap;
pub use soa::{CLUSTER_MNAME, EXTERNAL_MNAME, HOSTMASTER, SOA_TIMERS};
pub use srv::{Srv, SrvList};
pub use xfr::transfer_records;

use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::sync::Arc;

use hickory_proto::rr::Name;

use crate::model::{PackedIps, Protocol};

/// An empty set for telling which of `n` items were seen before, when a build or an answer
/// de-duplicates more of them than a scan of those kept suits.
fn seen_set<T: std::hash::Hash + Eq>(
    n: usize,
) -> hashbrown::HashSet<T, foldhash::fast::RandomState> {
    hashbrown::HashSet::with_capacity_and_hasher(n, foldhash::fast::RandomState::default())
}

/// The schema version of the Kubernetes DNS-Based Service Discovery specification served.
pub const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` TXT record (as CoreDNS).
pub const DNS_VERSION_TTL: u32 = 28800;

/// Whether `<a-b-c-d>.<ns>.pod.<zone>` names are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodsMode {
    /// No pod records.
    Disabled,
    /// Answer the address the name spells, in an existing namespace (kube-dns behaviour).
    Insecure,
    /// Answer only an address that a pod in that namespace has.
    Verified,
}

/// What every snapshot of one zone shares.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The zone's origin, lower case and fully qualified (`cluster.local.`).
    pub origin: Name,
    /// The origin's labels, lower case, right to left (`local`, `cluster`): what the fast path
    /// compares a query's name with.
    pub origin_labels: Vec<Box<[u8]>>,
    /// TTL of every record (and the SOA minimum).
    pub ttl: u32,
    /// Pod record mode.
    pub pods: PodsMode,
    /// Reverse zones answered authoritatively even for addresses nobody has (NXDOMAIN).
    pub reverse_cidrs: Vec<ipnet::IpNet>,
    /// External zones (`--external-zone`), lower case and fully qualified.
    pub external_origins: Vec<Name>,
    /// The clusterset zone (`--multicluster-zone`, KEP-1645), lower case and fully qualified.
    pub clusterset_origin: Option<Name>,
}

/// Why a zone cannot be served; the message names the zone and the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneConfigError {
    /// The cluster zone is no DNS name.
    #[error("zone {zone:?}: {reason}")]
    BadZone {
        /// The zone as given.
        zone: String,
        /// What the name parser said.
        reason: String,
    },
    /// The cluster zone is the root.
    #[error("zone must not be the root")]
    RootZone,
    /// An external zone is no DNS name, the root, or overlaps the cluster zone.
    #[error("--external-zone {zone:?}: {reason}")]
    BadExternal {
        /// The zone as given.
        zone: String,
        /// Why it cannot be served.
        reason: String,
    },
    /// The clusterset zone is no DNS name, the root, or overlaps another served zone.
    #[error("--multicluster-zone {zone:?}: {reason}")]
    BadClusterset {
        /// The zone as given.
        zone: String,
        /// Why it cannot be served.
        reason: String,
    },
}

impl ZoneConfig {
    /// Builds a config, checking the zone name.
    pub fn new(zone: &str, ttl: u32, pods: PodsMode) -> Result<Self, ZoneConfigError> {
        let mut origin = Name::from_ascii(zone.trim_end_matches('.'))
            .map_err(|e| ZoneConfigError::BadZone {
                zone: zone.to_owned(),
                reason: e.to_string(),
            })?
            .to_lowercase();
        origin.set_fqdn(true);
        if origin.is_root() {
            return Err(ZoneConfigError::RootZone);
        }
        let origin_labels = origin.iter().rev().map(Box::from).collect();
        Ok(Self {
            origin,
            origin_labels,
            ttl,
            pods,
            reverse_cidrs: Vec::new(),
            external_origins: Vec::new(),
            clusterset_origin: None,
        })
    }

    /// The same, answering for the clusterset zone `zone` too (call after the external
    /// zones: it must overlap none of them, nor the cluster zone).
    pub fn with_clusterset_zone(mut self, zone: Option<&str>) -> Result<Self, ZoneConfigError> {
        let Some(zone) = zone else { return Ok(self) };
        let bad = |reason: String| ZoneConfigError::BadClusterset {
            zone: zone.to_owned(),
            reason,
        };
        let mut origin = Name::from_ascii(zone.trim_end_matches('.'))
            .map_err(|e| bad(e.to_string()))?
            .to_lowercase();
        origin.set_fqdn(true);
        if origin.is_root() {
            return Err(bad("must not be the root".into()));
        }
        for other in std::iter::once(&self.origin).chain(&self.external_origins) {
            if other.zone_of(&origin) || origin.zone_of(other) {
                return Err(bad(format!("overlaps the zone {other}")));
            }
        }
        self.clusterset_origin = Some(origin);
        Ok(self)
    }

    /// The same, answering for these external zones too; an error names the zone and why.
    pub fn with_external_zones(mut self, zones: &[String]) -> Result<Self, ZoneConfigError> {
        for zone in zones {
            let bad = |reason: String| ZoneConfigError::BadExternal {
                zone: zone.clone(),
                reason,
            };
            let mut origin = Name::from_ascii(zone.trim_end_matches('.'))
                .map_err(|e| bad(e.to_string()))?
                .to_lowercase();
            origin.set_fqdn(true);
            if origin.is_root() {
                return Err(bad("must not be the root".into()));
            }
            if self.origin.zone_of(&origin) || origin.zone_of(&self.origin) {
                return Err(bad(format!("overlaps the cluster zone {}", self.origin)));
            }
            if !self.external_origins.contains(&origin) {
                self.external_origins.push(origin);
            }
        }
        Ok(self)
    }

    /// The same, authoritative for the reverse names of `cidrs` too.
    pub fn with_reverse_cidrs(mut self, cidrs: Vec<ipnet::IpNet>) -> Self {
        self.reverse_cidrs = cidrs.into_iter().map(|c| c.trunc()).collect();
        self
    }
}

/// The SRV set of one named port: `_<name>._<proto>.<svc>.<ns>.svc.<zone>`. 32 bytes: the
/// name with the protocol, then the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    name: PortName,
    /// The SRV records, de-duplicated (one inline: a cluster-IP Service's named port).
    pub srv: SrvList,
}

/// A port's name (lower case, not empty) and protocol in 16 bytes: inline up to 15 bytes of
/// name, as almost every port name is (a container port's name is at most 15 characters; a
/// Service's may be a DNS label of 63), else in a heap block.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PortName {
    /// `tag`: the length (low four bits, 1 to 15) and the protocol's `code` (above); never
    /// zero, so the enum needs no tag of its own.
    Inline {
        tag: NonZeroU8,
        bytes: [u8; PortName::INLINE],
    },
    Long(Box<(Protocol, Box<str>)>),
}

impl PortName {
    const INLINE: usize = 15;
}

impl NamedPort {
    /// The set `srv` of port `name` (lower case, not empty).
    pub fn new(name: &str, protocol: Protocol, srv: SrvList) -> Self {
        let mut bytes = [0u8; PortName::INLINE];
        let tag = u8::try_from(name.len())
            .ok()
            .filter(|&len| usize::from(len) <= PortName::INLINE)
            .and_then(|len| NonZeroU8::new(len | protocol.code() << 4));
        let name = match (tag, bytes.get_mut(..name.len())) {
            (Some(tag), Some(dst)) => {
                dst.copy_from_slice(name.as_bytes());
                PortName::Inline { tag, bytes }
            }
            _ => PortName::Long(Box::new((protocol, name.into()))),
        };
        Self { name, srv }
    }

    /// The port name, lower case.
    pub fn name(&self) -> &str {
        // Copied whole from a `str`.
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The port name's bytes (what a query's label is compared with).
    pub fn name_bytes(&self) -> &[u8] {
        match &self.name {
            PortName::Inline { tag, bytes } => bytes
                .get(..usize::from(tag.get() & 0x0f))
                .unwrap_or_default(),
            PortName::Long(long) => long.1.as_bytes(),
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        match &self.name {
            PortName::Inline { tag, .. } => Protocol::from_code(tag.get() >> 4),
            PortName::Long(long) => long.0,
        }
    }
}

/// How a Service's own name answers (`ServiceRecords::shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceShape<'a> {
    /// A/AAAA from cluster IPs.
    ClusterIp,
    /// A/AAAA from ready endpoints.
    Headless,
    /// CNAME to this target.
    ExternalName(&'a Name),
}

/// Everything DNS answers for one Service, built once per change of the Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecords {
    /// The Service's id while it exists: how reverse entries name it (`Snapshot::by_id`).
    pub id: u32,
    /// Namespace, lower case.
    pub namespace: Label,
    /// Service name, lower case.
    pub name: Label,
    /// Whether the name answers with its ready endpoints' addresses (kept beside `id`: the
    /// shape as a 16-byte enum would make the records a 176-byte heap block, not 144).
    pub headless: bool,
    /// Cluster IPs, or the ready endpoint addresses (de-duplicated), v4 before v6 (one
    /// inline: a cluster-IP Service's; 4 bytes each in an IPv4 headless Service).
    pub addresses: PackedIps,
    /// SRV on the bare Service name: every port; empty when that is the only named port's
    /// set (a headless Service's one port: no second copy of an entry per endpoint). Read
    /// it with `srv_all()`.
    pub srv_all: SrvList,
    /// Named ports, for `_port._proto` names.
    pub ports: Box<[NamedPort]>,
    /// Endpoint names, sorted by label; for an ExternalName Service, its CNAME target
    /// (`EndpointNames::alias`: a Service has one or the other, behind one pointer).
    pub endpoints: EndpointNames,
}

impl ServiceRecords {
    /// How the Service's own name answers.
    pub fn shape(&self) -> ServiceShape<'_> {
        match (self.endpoints.target(), self.headless) {
            (Some(target), _) => ServiceShape::ExternalName(target),
            (None, true) => ServiceShape::Headless,
            (None, false) => ServiceShape::ClusterIp,
        }
    }

    /// Whether the Service's own name exists: a headless Service without ready endpoints has
    /// none (specification §2.4.1), though its named pods still have PTR records.
    pub fn resolvable(&self) -> bool {
        !(self.shape() == ServiceShape::Headless && self.addresses.is_empty())
    }

    /// The addresses this Service puts in the reverse zones, sorted and de-duplicated: its
    /// cluster IPs (`true`) and every endpoint name's addresses (`false`).
    pub fn ptr_addresses(&self) -> Vec<(IpAddr, bool)> {
        let mut list: Vec<(IpAddr, bool)> = Vec::new();
        if self.shape() == ServiceShape::ClusterIp {
            list.extend(self.addresses.iter().map(|ip| (ip, true)));
        }
        for e in self.endpoints.iter() {
            list.extend(e.addresses.iter().map(|ip| (ip, false)));
        }
        list.sort_unstable();
        list.dedup();
        list
    }

    /// SRV on the bare Service name: every port.
    pub fn srv_all(&self) -> &[Srv] {
        match (&*self.srv_all, &*self.ports) {
            ([], [only]) => &only.srv,
            (all, _) => all,
        }
    }

    /// Finds an endpoint name (lower-case label).
    pub fn endpoint(&self, label: &[u8]) -> Option<EndpointName<'_>> {
        self.endpoints.find(label)
    }
}

/// One immutable, complete view of the zone; readers hold it through an `Arc` and never lock.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The zone's fixed settings.
    pub config: Arc<ZoneConfig>,
    /// SOA serial: rises whenever DNS-visible content changes.
    pub serial: u32,
    /// Whether every source has completed its first full list.
    pub synced: bool,
    /// Cluster IPs of `kube-system/kube-dns`: the addresses of `ns.dns.<zone>`.
    pub nameserver_addresses: Arc<[IpAddr]>,
    /// Namespaces that exist (lower case).
    pub namespaces: Arc<HashSet<Box<str>>>,
    /// Services by namespace and name.
    pub services: ServiceTable,
    /// Services by `ServiceRecords::id`: what reverse entries refer to (the same `Arc`s as
    /// `services`).
    pub by_id: ShardedMap<u32, Arc<ServiceRecords>>,
    /// PTR targets by address (every Service's claim; derefs to the answer).
    pub reverse: ReverseMap,
    /// With `--pods verified`: the namespaces (lower case) that have a pod with this address.
    pub pod_namespaces: ShardedMap<IpAddr, Arc<[Box<str>]>>,
    /// With `--pods verified`: `namespace/name` of a pod with this address (the first by
    /// key), for the per-client figures.
    pub pod_names: ShardedMap<IpAddr, Arc<str>>,
    /// The names of the external zones.
    pub external: Arc<ExternalTable>,
    /// The clusterset zone's Services (ServiceImports) by namespace and name; their ids are unused
    /// (the clusterset has no PTR records).
    pub clusterset: ServiceTable,
    /// The namespaces (lower case) that have a ServiceImport.
    pub clusterset_namespaces: Arc<HashSet<Box<str>>>,
    /// The host entries of `--hosts-configmap` (empty without it).
    pub hosts: Arc<crate::hosts::HostsTable>,
}

impl Snapshot {
    /// An empty zone.
    pub fn empty(config: Arc<ZoneConfig>) -> Self {
        Self {
            config,
            serial: 1,
            synced: false,
            nameserver_addresses: Arc::new([]),
            namespaces: Arc::new(HashSet::new()),
            services: ServiceTable::new(),
            by_id: ShardedMap::new(),
            reverse: ReverseMap::new(),
            pod_namespaces: ShardedMap::new(),
            pod_names: ShardedMap::new(),
            external: Arc::default(),
            clusterset: ServiceTable::new(),
            clusterset_namespaces: Arc::new(HashSet::new()),
            hosts: Arc::default(),
        }
    }

    /// The SOA record's own TTL: min(ttl, 300), as CoreDNS.
    pub fn soa_ttl(&self) -> u32 {
        self.config.ttl.min(300)
    }
}

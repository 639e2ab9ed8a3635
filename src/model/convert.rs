//! Conversion from k8s-openapi objects (an EndpointSlice: the fields DNS uses, `fields::Slice`)
//! to the model, keeping only what DNS needs.
//!
//! Each conversion validates the fields it reads and names the offending field on error,
//! so a bad object is reported as `Service shop/web: spec.clusterIPs[1]: ...`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::fields;
use super::{
    ContainerPort, Endpoint, EndpointSlice, ExternalAddresses, ImportSource, Ingress, IpList,
    Label, Namespace, ObjectKey, Pod, Port, Protocol, Service, ServiceKind, ServicePort,
    ServiceSpec, TargetPort,
};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label that ties an EndpointSlice to a ServiceImport (KEP-1645): such a slice holds
/// another cluster's endpoints and is never one of a local Service's.
pub const IMPORT_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label naming the cluster a multicluster EndpointSlice's endpoints run in.
pub const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";
/// The annotation the EndpointSlice controller stamps with the time of the triggering change.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// A field of an API object that the model cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConvertError {
    /// The field's path, e.g. `spec.ports[0].port`.
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

pub(super) fn err(field: impl Into<String>, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(super) fn key(meta: &ObjectMeta) -> Result<ObjectKey, ConvertError> {
    key_of(meta.name.as_deref(), meta.namespace.as_deref())
}

/// The key of an object named `name` in `namespace` (`default` when none): a name is required.
fn key_of(name: Option<&str>, namespace: Option<&str>) -> Result<ObjectKey, ConvertError> {
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("metadata.name", "missing"))?;
    Ok(ObjectKey::new(namespace.unwrap_or("default"), name))
}

pub(super) fn parse_ip(field: impl FnOnce() -> String, text: &str) -> Result<IpAddr, ConvertError> {
    text.parse()
        .map_err(|_| err(field(), format!("{text:?} is not an IP address")))
}

pub(super) fn protocol(
    field: impl FnOnce() -> String,
    p: Option<&str>,
) -> Result<Protocol, ConvertError> {
    match p.unwrap_or("TCP") {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(err(field(), format!("unknown protocol {other:?}"))),
    }
}

pub(super) fn port_number(field: impl FnOnce() -> String, n: i32) -> Result<u16, ConvertError> {
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| err(field(), format!("{n} is not a port number (1-65535)")))
}

pub(super) fn port_name(name: Option<&String>) -> Option<Label> {
    name.filter(|n| !n.is_empty()).map(|n| Label::lowercase(n))
}

fn boxed_map(
    map: Option<&std::collections::BTreeMap<String, String>>,
) -> Box<[(Box<str>, Box<str>)]> {
    // BTreeMap iterates sorted by key, which `Pod::matches` relies on.
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

/// Converts a v1 Namespace.
pub fn from_namespace(ns: &core::Namespace) -> Result<Namespace, ConvertError> {
    let name = ns
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("metadata.name", "missing"))?;
    Ok(Namespace { name: name.into() })
}

/// Converts a v1 Service.
pub fn from_service(svc: &core::Service) -> Result<Service, ConvertError> {
    let key = key(&svc.metadata)?;
    let spec = svc.spec.as_ref().ok_or_else(|| err("spec", "missing"))?;
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let name = spec
            .external_name
            .as_deref()
            .map(|n| n.trim_end_matches('.'))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err("spec.externalName", "missing for type ExternalName"))?;
        ServiceKind::ExternalName(name.into())
    } else {
        let written: Vec<(&str, String)> = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips
                .iter()
                .enumerate()
                .map(|(i, ip)| (ip.as_str(), format!("spec.clusterIPs[{i}]")))
                .collect(),
            (_, Some(ip)) if !ip.is_empty() => vec![(ip.as_str(), "spec.clusterIP".to_owned())],
            _ => Vec::new(),
        };
        if written.is_empty() || written.iter().any(|(ip, _)| *ip == "None") {
            ServiceKind::Headless
        } else {
            let ips = written
                .into_iter()
                .map(|(ip, field)| parse_ip(|| field, ip))
                .collect::<Result<Vec<_>, _>>()?;
            ServiceKind::ClusterIp(ips.into())
        }
    };
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let field = |f: &str| format!("spec.ports[{i}].{f}");
        let port = port_number(|| field("port"), p.port)?;
        let target = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => {
                TargetPort::Number(port_number(|| field("targetPort"), *n)?)
            }
            Some(IntOrString::String(s)) => match s.parse::<i32>() {
                Ok(n) => TargetPort::Number(port_number(|| field("targetPort"), n)?),
                Err(_) => TargetPort::Name(s.as_str().into()),
            },
        };
        ports.push(ServicePort {
            port: Port {
                name: port_name(p.name.as_ref()),
                protocol: protocol(|| field("protocol"), p.protocol.as_deref())?,
                port,
            },
            target,
        });
    }
    Ok(Service {
        key,
        kind,
        spec: ServiceSpec::new(
            ports,
            spec.selector
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .with_publish_not_ready(spec.publish_not_ready_addresses.unwrap_or(false)),
        external: service_external(svc)?,
    })
}

/// A load balancer `hostname`: lower case, without the trailing dot, a valid name.
pub(super) fn lb_hostname(
    field: impl FnOnce() -> String,
    h: &str,
) -> Result<Box<str>, ConvertError> {
    let h = h.trim_end_matches('.').to_ascii_lowercase();
    hickory_proto::rr::Name::from_ascii(&h)
        .map_err(|e| err(field(), format!("{h:?} is not a host name: {e}")))?;
    Ok(h.into_boxed_str())
}

/// `status.loadBalancer.ingress` entries of a Service or Ingress, appended to `out`.
fn lb_ingress<'a>(
    base: &str,
    entries: impl Iterator<Item = (Option<&'a String>, Option<&'a String>)>,
    out: &mut (Vec<IpAddr>, Vec<Box<str>>),
) -> Result<(), ConvertError> {
    for (i, (ip, hostname)) in entries.enumerate() {
        if let Some(ip) = ip.filter(|s| !s.is_empty()) {
            out.0.push(parse_ip(|| format!("{base}[{i}].ip"), ip)?);
        } else if let Some(h) = hostname.filter(|s| !s.is_empty()) {
            out.1
                .push(lb_hostname(|| format!("{base}[{i}].hostname"), h)?);
        }
    }
    Ok(())
}

pub(super) fn external(mut found: (Vec<IpAddr>, Vec<Box<str>>)) -> ExternalAddresses {
    let mut seen = std::collections::HashSet::new();
    found.0.retain(|ip| seen.insert(*ip));
    found.1.dedup();
    ExternalAddresses {
        ips: found.0.into(),
        hostnames: found.1.into(),
    }
}

fn service_external(svc: &core::Service) -> Result<Option<Box<ExternalAddresses>>, ConvertError> {
    let mut found = (Vec::new(), Vec::new());
    let spec = svc.spec.as_ref();
    for (i, ip) in spec
        .and_then(|s| s.external_ips.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        found
            .0
            .push(parse_ip(|| format!("spec.externalIPs[{i}]"), ip)?);
    }
    let entries = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .map(|e| (e.ip.as_ref(), e.hostname.as_ref()));
    lb_ingress("status.loadBalancer.ingress", entries, &mut found)?;
    let addrs = external(found);
    Ok((!addrs.is_empty()).then(|| Box::new(addrs)))
}

/// Converts a networking.k8s.io/v1 Ingress.
pub fn from_ingress(ing: &networking::Ingress) -> Result<Ingress, ConvertError> {
    let key = key(&ing.metadata)?;
    let mut hosts: Vec<Box<str>> = Vec::new();
    for (i, rule) in ing
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) else {
            continue;
        };
        // A wildcard host names no one name to answer.
        if host.starts_with("*.") {
            continue;
        }
        let host = lb_hostname(|| format!("spec.rules[{i}].host"), host)?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let mut found = (Vec::new(), Vec::new());
    let entries = ing
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .map(|e| (e.ip.as_ref(), e.hostname.as_ref()));
    lb_ingress("status.loadBalancer.ingress", entries, &mut found)?;
    Ok(Ingress {
        key,
        hosts: hosts.into(),
        addresses: external(found),
    })
}

/// A slice's key, once its apiVersion and kind (when given) are checked, as k8s-openapi's type
/// checks them.
fn slice_key(slice: &fields::Slice) -> Result<ObjectKey, ConvertError> {
    for (field, given, want) in [
        ("apiVersion", &slice.api_version, "discovery.k8s.io/v1"),
        ("kind", &slice.kind, "EndpointSlice"),
    ] {
        if let Some(given) = given.as_deref().filter(|g| *g != want) {
            return Err(err(
                field,
                format!("invalid value: string {given:?}, expected {want}"),
            ));
        }
    }
    let meta = slice.metadata.as_ref();
    key_of(
        meta.and_then(|m| m.name.as_deref()),
        meta.and_then(|m| m.namespace.as_deref()),
    )
}

/// Converts a discovery.k8s.io/v1 EndpointSlice, read as the fields DNS uses (`fields::Slice`).
pub(crate) fn from_endpoint_slice(slice: &fields::Slice) -> Result<EndpointSlice, ConvertError> {
    let key = slice_key(slice)?;
    let meta = slice.metadata.as_ref();
    let family_ok: fn(&IpAddr) -> bool = match slice.address_type.as_deref().unwrap_or_default() {
        "IPv4" => |ip| ip.is_ipv4(),
        "IPv6" => |ip| ip.is_ipv6(),
        // FQDN slices are deprecated and carry no addresses DNS can publish.
        "FQDN" => |_| false,
        other => {
            return Err(err(
                "addressType",
                format!("unknown address type {other:?}"),
            ));
        }
    };
    let listed = slice.endpoints.as_deref().unwrap_or_default();
    let mut endpoints = Vec::with_capacity(listed.len());
    for (i, ep) in listed.iter().enumerate() {
        let Some(listed) = &ep.addresses else {
            continue;
        };
        if let Some((j, text)) = &listed.bad {
            parse_ip(|| format!("endpoints[{i}].addresses[{j}]"), text)?;
        }
        let addresses: IpList = if listed.ips.iter().all(family_ok) {
            listed.ips.clone()
        } else {
            listed.ips.iter().copied().filter(family_ok).collect()
        };
        if addresses.is_empty() {
            continue;
        }
        let pod_name = ep
            .target_ref
            .as_ref()
            .filter(|r| r.kind.as_deref().unwrap_or("Pod") == "Pod")
            .and_then(|r| r.name.as_deref())
            .map(Box::from);
        endpoints.push(Endpoint {
            addresses,
            ready: ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            hostname: ep
                .hostname
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(Label::lowercase),
            pod_name,
        });
    }
    let mut ports = Vec::new();
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        let field = |f: &str| format!("ports[{i}].{f}");
        // A port without a number means "all ports": nothing to publish in SRV.
        let Some(n) = p.port else { continue };
        ports.push(Port {
            name: port_name(p.name.as_ref()),
            protocol: protocol(|| field("protocol"), p.protocol.as_deref())?,
            port: port_number(|| field("port"), n)?,
        });
    }
    let (service, import) = slice_owner(meta.and_then(|m| m.labels.as_ref()));
    let trigger_time_ms = meta
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(TRIGGER_TIME_ANNOTATION))
        .and_then(|t| parse_rfc3339_ms(t));
    Ok(EndpointSlice {
        key,
        service,
        import,
        endpoints: endpoints.into_iter().collect(),
        ports: ports.into(),
        trigger_time_ms,
    })
}

/// The Service (label `kubernetes.io/service-name`) or, for a multicluster slice, the
/// ServiceImport and source cluster a slice belongs to: a multicluster slice belongs to its
/// ServiceImport only, never to a local Service of the same name.
fn slice_owner(
    labels: Option<&BTreeMap<String, String>>,
) -> (Option<Box<str>>, Option<Box<ImportSource>>) {
    let label = |name: &str| {
        labels
            .and_then(|l| l.get(name))
            .filter(|s| !s.is_empty())
            .map(|s| Box::<str>::from(s.as_str()))
    };
    match label(IMPORT_NAME_LABEL) {
        Some(service) => {
            let cluster = label(SOURCE_CLUSTER_LABEL)
                .map(|c| c.to_ascii_lowercase().into_boxed_str())
                .unwrap_or_default();
            (None, Some(Box::new(ImportSource { service, cluster })))
        }
        None => (label(SERVICE_NAME_LABEL), None),
    }
}

/// Converts a v1 Pod.
pub fn from_pod(pod: &core::Pod) -> Result<Pod, ConvertError> {
    let key = key(&pod.metadata)?;
    let status = pod.status.as_ref();
    let mut ips = Vec::new();
    match status
        .and_then(|s| s.pod_ips.as_ref())
        .filter(|v| !v.is_empty())
    {
        Some(list) => {
            for (i, p) in list.iter().enumerate() {
                ips.push(parse_ip(|| format!("status.podIPs[{i}].ip"), &p.ip)?);
            }
        }
        None => {
            if let Some(ip) = status
                .and_then(|s| s.pod_ip.as_deref())
                .filter(|s| !s.is_empty())
            {
                ips.push(parse_ip(|| "status.podIP".to_owned(), ip)?);
            }
        }
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let spec = pod.spec.as_ref();
    let mut named_ports = Vec::new();
    for (ci, c) in spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let field = |f: &str| format!("spec.containers[{ci}].ports[{pi}].{f}");
            named_ports.push(ContainerPort {
                name: name.into(),
                protocol: protocol(|| field("protocol"), p.protocol.as_deref())?,
                port: port_number(|| field("containerPort"), p.container_port)?,
            });
        }
    }
    let label = |v: Option<&String>| {
        v.filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase().into_boxed_str())
    };
    Ok(Pod {
        key,
        labels: boxed_map(pod.metadata.labels.as_ref()),
        ips: ips.into(),
        hostname: label(spec.and_then(|s| s.hostname.as_ref())),
        subdomain: label(spec.and_then(|s| s.subdomain.as_ref())),
        ready,
        named_ports: named_ports.into(),
    })
}

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, optional fraction) to Unix ms.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    Some(t.as_millisecond())
}

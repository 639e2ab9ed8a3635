//! The custom resources clusterdns reads, which k8s-openapi has no types for: KEP-1645's
//! ServiceImport and the Gateway API's Gateway and routes. Each is a serde struct of the few
//! fields DNS needs (unknown fields are ignored), converted like the built-in kinds, naming
//! the field at fault.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::convert::{
    ConvertError, err, external, key, lb_hostname, parse_ip, port_name, port_number, protocol,
};
use super::{Gateway, ObjectKey, Port, Route, ServiceImport};

/// The Gateway API's group: a parentRef without `group` means it.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// multicluster.x-k8s.io/v1alpha1 ServiceImport: metadata and the spec's type, IPs and ports.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceImportDoc {
    metadata: ObjectMeta,
    spec: ImportSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ImportSpec {
    #[serde(rename = "type")]
    type_: Option<String>,
    ips: Vec<String>,
    ports: Vec<ImportPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ImportPort {
    name: Option<String>,
    protocol: Option<String>,
    port: i32,
}

/// Converts a ServiceImport.
pub fn from_service_import(doc: &ServiceImportDoc) -> Result<ServiceImport, ConvertError> {
    let key = key(&doc.metadata)?;
    let headless = match doc.spec.type_.as_deref().unwrap_or("ClusterSetIP") {
        "ClusterSetIP" => false,
        "Headless" => true,
        other => return Err(err("spec.type", format!("unknown type {other:?}"))),
    };
    let mut ips = Vec::new();
    for (i, ip) in doc.spec.ips.iter().enumerate() {
        let ip = parse_ip(|| format!("spec.ips[{i}]"), ip)?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let mut ports = Vec::new();
    for (i, p) in doc.spec.ports.iter().enumerate() {
        let field = |f: &str| format!("spec.ports[{i}].{f}");
        ports.push(Port {
            name: port_name(p.name.as_ref()),
            protocol: protocol(|| field("protocol"), p.protocol.as_deref())?,
            port: port_number(|| field("port"), p.port)?,
        });
    }
    Ok(ServiceImport {
        key,
        headless,
        ips: ips.into(),
        ports: ports.into(),
    })
}

/// gateway.networking.k8s.io/v1 Gateway: listeners' hostnames and status addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GatewayDoc {
    metadata: ObjectMeta,
    spec: GatewaySpec,
    status: GatewayStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewaySpec {
    listeners: Vec<Listener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Listener {
    hostname: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewayStatus {
    addresses: Vec<GatewayAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatewayAddress {
    #[serde(rename = "type")]
    type_: Option<String>,
    value: String,
}

/// A hostname of a listener or route: lower case, without a trailing dot; `*.` kept.
fn hostname(field: impl FnOnce() -> String, h: &str) -> Result<Box<str>, ConvertError> {
    match h.strip_prefix("*.") {
        Some(rest) => Ok(format!("*.{}", lb_hostname(field, rest)?).into_boxed_str()),
        None => lb_hostname(field, h),
    }
}

/// Converts a Gateway. Addresses of type `IPAddress` (the default) are IPs, `Hostname` ones
/// are hostnames (answered with a CNAME); other types (implementation-specific names) are
/// left out.
pub fn from_gateway(doc: &GatewayDoc) -> Result<Gateway, ConvertError> {
    let key = key(&doc.metadata)?;
    let mut hostnames: Vec<Box<str>> = Vec::new();
    for (i, l) in doc.spec.listeners.iter().enumerate() {
        let Some(h) = l.hostname.as_deref().filter(|h| !h.is_empty()) else {
            continue;
        };
        let h = hostname(|| format!("spec.listeners[{i}].hostname"), h)?;
        if !hostnames.contains(&h) {
            hostnames.push(h);
        }
    }
    let mut found = (Vec::new(), Vec::new());
    for (i, a) in doc.status.addresses.iter().enumerate() {
        let field = || format!("status.addresses[{i}].value");
        match a.type_.as_deref().unwrap_or("IPAddress") {
            "IPAddress" => found.0.push(parse_ip(field, &a.value)?),
            "Hostname" => found.1.push(lb_hostname(field, &a.value)?),
            _ => {}
        }
    }
    Ok(Gateway {
        key,
        hostnames: hostnames.into(),
        addresses: external(found),
    })
}

/// An HTTPRoute, GRPCRoute or TLSRoute: hostnames, parentRefs and their status.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RouteDoc {
    metadata: ObjectMeta,
    spec: RouteSpec,
    status: RouteStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RouteSpec {
    hostnames: Vec<String>,
    parent_refs: Vec<ParentRef>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct ParentRef {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouteStatus {
    parents: Vec<ParentStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ParentStatus {
    parent_ref: ParentRef,
    conditions: Vec<Condition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// The Gateway a parentRef names (in the route's namespace unless it says otherwise), or
/// `None` for a parent of another kind.
fn gateway_of(r: &ParentRef, route_namespace: &str) -> Option<ObjectKey> {
    let group = r.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = r.kind.as_deref().unwrap_or("Gateway");
    (group == GATEWAY_GROUP && kind == "Gateway" && !r.name.is_empty())
        .then(|| ObjectKey::new(r.namespace.as_deref().unwrap_or(route_namespace), &r.name))
}

/// Converts a route of any of the three kinds. A parent counts only when the route's status
/// says a Gateway accepted it (`status.parents[]` with that parentRef and `Accepted=True`).
pub fn from_route(doc: &RouteDoc) -> Result<Route, ConvertError> {
    let key = key(&doc.metadata)?;
    let mut hostnames: Vec<Box<str>> = Vec::new();
    for (i, h) in doc.spec.hostnames.iter().enumerate() {
        let h = hostname(|| format!("spec.hostnames[{i}]"), h)?;
        if !hostnames.contains(&h) {
            hostnames.push(h);
        }
    }
    let accepted: Vec<ObjectKey> = doc
        .status
        .parents
        .iter()
        .filter(|p| {
            p.conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status == "True")
        })
        .filter_map(|p| gateway_of(&p.parent_ref, &key.namespace))
        .collect();
    let mut gateways: Vec<ObjectKey> = Vec::new();
    for r in &doc.spec.parent_refs {
        if let Some(gw) = gateway_of(r, &key.namespace)
            && accepted.contains(&gw)
            && !gateways.contains(&gw)
        {
            gateways.push(gw);
        }
    }
    Ok(Route {
        key,
        hostnames: hostnames.into(),
        gateways: gateways.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(v: serde_json::Value) -> Result<Route, ConvertError> {
        from_route(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn routes_count_only_accepted_gateway_parents() {
        let r = route(serde_json::json!({
            "metadata": {"name": "r", "namespace": "shop"},
            "spec": {
                "hostnames": ["Store.Example.com.", "*.apps.example.com"],
                "parentRefs": [
                    {"name": "edge"},
                    {"name": "other", "namespace": "infra"},
                    {"name": "pending"},
                    {"name": "svc", "kind": "Service", "group": ""},
                ],
            },
            "status": {"parents": [
                {"parentRef": {"name": "edge"}, "conditions": [{"type": "Accepted", "status": "True"}]},
                {"parentRef": {"name": "other", "namespace": "infra"}, "conditions": [{"type": "Accepted", "status": "True"}]},
                {"parentRef": {"name": "pending"}, "conditions": [{"type": "Accepted", "status": "False"}]},
            ]},
        }))
        .unwrap();
        assert_eq!(&*r.hostnames[0], "store.example.com");
        assert_eq!(&*r.hostnames[1], "*.apps.example.com");
        assert_eq!(
            &*r.gateways,
            [
                ObjectKey::new("shop", "edge"),
                ObjectKey::new("infra", "other")
            ]
        );
        let bad = route(serde_json::json!({
            "metadata": {"name": "r"}, "spec": {"hostnames": ["a..b"]}}));
        assert_eq!(bad.unwrap_err().field, "spec.hostnames[0]");
    }

    #[test]
    fn imports_and_gateways() {
        let imp: ServiceImportDoc = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "data"},
            "spec": {"type": "Headless", "ports": [{"name": "SQL", "port": 5432}]},
        }))
        .unwrap();
        let imp = from_service_import(&imp).unwrap();
        assert!(imp.headless && imp.ips.is_empty());
        assert_eq!(imp.ports[0].name.as_deref(), Some("sql"));
        let gw: GatewayDoc = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "edge", "namespace": "infra"},
            "spec": {"listeners": [{"hostname": "*.Example.com"}, {"name": "any"}]},
            "status": {"addresses": [
                {"value": "192.0.2.1"},
                {"type": "Hostname", "value": "lb.example.net"},
                {"type": "example.com/named", "value": "x"},
            ]},
        }))
        .unwrap();
        let gw = from_gateway(&gw).unwrap();
        assert_eq!(&*gw.hostnames, [Box::from("*.example.com")]);
        assert_eq!(gw.addresses.ips.len(), 1);
        assert_eq!(&*gw.addresses.hostnames, [Box::from("lb.example.net")]);
    }
}

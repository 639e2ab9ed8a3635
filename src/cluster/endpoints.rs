//! Which endpoints a Service publishes: its EndpointSlices when it has any, else the Pods its
//! selector matches (as Kubernetes' EndpointSlice controller would derive them), plus pods
//! named by `hostname`/`subdomain` under a headless Service.

use crate::model::{EndpointSlice, Label, Pod, Port, Service, ServiceKind, TargetPort};
use crate::zone::ReadyEndpoint;

/// The owned parts of endpoints derived from Pods (ports resolved per pod).
pub struct DerivedPorts(Vec<Box<[Port]>>);

/// Resolves a Service's target ports against one Pod's named container ports.
fn pod_ports(svc: &Service, pod: &Pod) -> Box<[Port]> {
    svc.spec
        .ports()
        .filter_map(|sp| {
            let p = sp.port;
            let port = match &sp.target {
                TargetPort::Number(n) => *n,
                TargetPort::Name(name) => {
                    pod.named_ports
                        .iter()
                        .find(|c| *c.name == **name && c.protocol == p.protocol)?
                        .port
                }
            };
            Some(Port {
                name: p.name,
                protocol: p.protocol,
                port,
            })
        })
        .collect()
}

/// Pods whose endpoints a selector-only Service gets, with their resolved ports.
pub fn selected_pods<'a>(
    svc: &Service,
    pods: impl Iterator<Item = &'a Pod>,
) -> (Vec<&'a Pod>, DerivedPorts) {
    let mut chosen = Vec::new();
    let mut ports = Vec::new();
    for pod in pods {
        if pod.ips.is_empty() || !pod.matches(svc.selector()) {
            continue;
        }
        if !(pod.ready || svc.publish_not_ready()) {
            continue;
        }
        ports.push(pod_ports(svc, pod));
        chosen.push(pod);
    }
    (chosen, DerivedPorts(ports))
}

/// The endpoints DNS publishes for `svc`.
///
/// `slices` are the Service's EndpointSlices (may be empty); `selected` and `ports` come
/// from `selected_pods` and are used only when there are no slices; `named` are pods in the
/// namespace whose `subdomain` is this Service's name (used for headless Services). With
/// `pod_names`, an endpoint without a hostname is named after its pod (CoreDNS's
/// `endpoint_pod_names`), when the name fits a DNS label.
pub fn ready_endpoints<'a>(
    svc: &'a Service,
    slices: &[&'a EndpointSlice],
    selected: &[&'a Pod],
    ports: &'a DerivedPorts,
    named: &[&'a Pod],
    pod_names: bool,
) -> Vec<ReadyEndpoint<'a>> {
    let mut out = Vec::new();
    if matches!(svc.kind, ServiceKind::ExternalName(_)) {
        return out;
    }
    if !slices.is_empty() {
        for slice in slices {
            for ep in slice.endpoints.iter() {
                // publishNotReadyAddresses: the controller marks every endpoint ready.
                if ep.ready || svc.publish_not_ready() {
                    let pod_name = ep.pod_name.filter(|n| pod_names && n.len() < 64);
                    out.push(ReadyEndpoint {
                        hostname: ep.hostname.map(Label::as_str).or(pod_name),
                        addresses: ep.addresses,
                        ports: &slice.ports,
                        in_service: true,
                    });
                }
            }
        }
    } else {
        for (pod, p) in selected.iter().zip(ports.0.iter()) {
            let hostname = match (&pod.hostname, &pod.subdomain) {
                (Some(h), Some(s)) if **s == *svc.key.name => Some(&**h),
                _ => Some(&*pod.key.name).filter(|n| pod_names && n.len() < 64),
            };
            out.push(ReadyEndpoint {
                hostname,
                addresses: pod.ips[..].into(),
                ports: p,
                in_service: true,
            });
        }
    }
    if matches!(svc.kind, ServiceKind::Headless) {
        for pod in named {
            let Some(h) = pod.hostname.as_deref() else {
                continue;
            };
            if pod.ips.is_empty() || !(pod.ready || svc.publish_not_ready()) {
                continue;
            }
            if out.iter().any(|e| e.hostname == Some(h)) {
                continue;
            }
            out.push(ReadyEndpoint {
                hostname: Some(h),
                addresses: pod.ips[..].into(),
                ports: &[],
                in_service: false,
            });
        }
    }
    out
}

//! Record synthesis: one Service and its ready endpoints become `ServiceRecords` and PTR
//! targets, following the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's choices
//! where the specification leaves one (SRV priority 0, weight ⌊100/N⌋ over the candidates
//! before de-duplication; dashed-address endpoint labels).

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;

use super::{EndpointName, NamedPort, ServiceRecords, ServiceShape, Srv};
use crate::model::{Port, Protocol, ServiceKind};

/// An endpoint that DNS publishes (ready, or published regardless of readiness).
#[derive(Clone, Debug)]
pub struct ReadyEndpoint<'a> {
    /// The endpoint's hostname, if any (otherwise the dashed address names it).
    pub hostname: Option<&'a str>,
    /// Its addresses.
    pub addresses: &'a [IpAddr],
    /// The ports it serves.
    pub ports: &'a [Port],
    /// False for a pod published only by `hostname`/`subdomain`, not selected by the Service:
    /// it gets its own name but is not one of the Service's addresses or SRV targets.
    pub in_service: bool,
}

/// The inputs of one Service's records.
#[derive(Clone, Debug)]
pub struct ServiceInput<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Service name.
    pub name: &'a str,
    /// ClusterIP, headless or ExternalName.
    pub kind: &'a ServiceKind,
    /// The Service's own ports.
    pub ports: &'a [Port],
    /// Published endpoints.
    pub endpoints: Vec<ReadyEndpoint<'a>>,
}

/// The label that names an endpoint without a hostname: its address with `.`/`:` as `-`
/// (`10-244-1-7`, `fd00-1--5`), and a `0` after a trailing `-` (`2001-db8--0`).
pub fn dashed(ip: IpAddr) -> String {
    let mut s = ip.to_string().replace(['.', ':'], "-");
    if s.ends_with('-') {
        s.push('0');
    }
    s
}

/// Candidate count and (target, port) pairs of one named port.
type PortCandidates = (usize, Vec<(u32, u16)>);

fn weight(candidates: usize) -> u16 {
    (100 / candidates.max(1)).max(1) as u16
}

/// Builds the records of one Service, with the id its reverse entries name it by. `None`
/// means the Service has nothing in DNS: an ExternalName that is an IP address, or a headless
/// Service with no endpoint at all. A headless Service whose only endpoints are pods named by
/// `hostname`/`subdomain` has records for their PTRs but no name (`resolvable` is false;
/// specification §2.4.1: NXDOMAIN).
pub fn build_service(input: &ServiceInput<'_>, id: u32) -> Option<ServiceRecords> {
    let namespace = input.namespace.to_ascii_lowercase();
    let name = input.name.to_ascii_lowercase();

    let shape = match input.kind {
        ServiceKind::ClusterIp(_) => ServiceShape::ClusterIp,
        ServiceKind::Headless => ServiceShape::Headless,
        ServiceKind::ExternalName(target) => {
            if target.parse::<IpAddr>().is_ok() {
                return None;
            }
            match Name::from_ascii(format!("{target}.")) {
                Ok(t) => ServiceShape::ExternalName(t),
                Err(_) => return None,
            }
        }
    };

    // Endpoint names: merge endpoints that share a label; sorted for binary search.
    let mut by_label: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let mut labels_of = Vec::with_capacity(input.endpoints.len());
    for ep in &input.endpoints {
        let Some(&first) = ep.addresses.first() else {
            labels_of.push(String::new());
            continue;
        };
        let label = match ep.hostname {
            Some(h) => h.to_ascii_lowercase(),
            None => dashed(first),
        };
        let addrs = by_label.entry(label.clone()).or_default();
        for a in ep.addresses {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        labels_of.push(label);
    }
    let endpoints: Box<[EndpointName]> = by_label
        .into_iter()
        .map(|(label, addresses)| EndpointName {
            label: label.into(),
            addresses: addresses.into(),
        })
        .collect();
    let index_of = |label: &str| {
        endpoints
            .binary_search_by(|e| e.label.as_ref().cmp(label))
            .ok()
            .map(|i| i as u32)
    };

    let (addresses, srv_all, ports) = match input.kind {
        ServiceKind::ExternalName(_) => (Box::default(), Box::default(), Box::default()),
        ServiceKind::ClusterIp(ips) => {
            let w = weight(input.ports.len() * ips.len());
            let mut srv_all: Vec<Srv> = Vec::new();
            for p in input.ports {
                let srv = Srv {
                    weight: w,
                    port: p.port,
                    target: None,
                };
                if !srv_all.contains(&srv) {
                    srv_all.push(srv);
                }
            }
            let mut named: BTreeMap<(Box<str>, Protocol), Vec<u16>> = BTreeMap::new();
            for p in input.ports {
                if let Some(n) = &p.name {
                    named
                        .entry((n.clone(), p.protocol))
                        .or_default()
                        .push(p.port);
                }
            }
            let ports = named
                .into_iter()
                .map(|((name, protocol), nums)| {
                    let w = weight(nums.len() * ips.len());
                    let mut srv: Vec<Srv> = Vec::new();
                    for port in nums {
                        let s = Srv {
                            weight: w,
                            port,
                            target: None,
                        };
                        if !srv.contains(&s) {
                            srv.push(s);
                        }
                    }
                    NamedPort {
                        name: name.into(),
                        protocol,
                        srv: srv.into(),
                    }
                })
                .collect();
            (sorted_families(ips.iter().copied()), srv_all.into(), ports)
        }
        ServiceKind::Headless => {
            let members = || {
                input
                    .endpoints
                    .iter()
                    .zip(&labels_of)
                    .filter(|(ep, _)| ep.in_service)
            };
            let addresses =
                sorted_families(members().flat_map(|(ep, _)| ep.addresses.iter().copied()));
            if addresses.is_empty() {
                if endpoints.is_empty() {
                    return None;
                }
                // Named pods only: their PTRs, no name of its own.
                return Some(ServiceRecords {
                    id,
                    namespace: namespace.into(),
                    name: name.into(),
                    shape,
                    addresses,
                    srv_all: Box::default(),
                    ports: Box::default(),
                    endpoints,
                });
            }
            // Candidates are (address × port); records are de-duplicated by (target, port).
            let mut all: Vec<(u32, u16)> = Vec::new();
            let mut named: BTreeMap<(Box<str>, Protocol), PortCandidates> = BTreeMap::new();
            for (ep, label) in members() {
                let Some(target) = index_of(label) else {
                    continue;
                };
                for p in ep.ports {
                    all.extend(ep.addresses.iter().map(|_| (target, p.port)));
                    if let Some(n) = &p.name {
                        let e = named.entry((n.clone(), p.protocol)).or_default();
                        e.0 += ep.addresses.len();
                        e.1.push((target, p.port));
                    }
                }
            }
            let to_srv = |candidates: usize, mut list: Vec<(u32, u16)>| -> Box<[Srv]> {
                let w = weight(candidates);
                list.sort_unstable();
                list.dedup();
                list.into_iter()
                    .map(|(t, port)| Srv {
                        weight: w,
                        port,
                        target: Some(t),
                    })
                    .collect()
            };
            let srv_all = to_srv(all.len(), all);
            let ports = named
                .into_iter()
                .map(|((name, protocol), (n, list))| NamedPort {
                    name: name.into(),
                    protocol,
                    srv: to_srv(n, list),
                })
                .collect();
            (addresses, srv_all, ports)
        }
    };

    Some(ServiceRecords {
        id,
        namespace: namespace.into(),
        name: name.into(),
        shape,
        addresses,
        srv_all,
        ports,
        endpoints,
    })
}

/// De-duplicates addresses, v4 first, each family in its first-seen order.
fn sorted_families(ips: impl Iterator<Item = IpAddr>) -> Box<[IpAddr]> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ip in ips {
        let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
        if !list.contains(&ip) {
            list.push(ip);
        }
    }
    v4.extend(v6);
    v4.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_labels() {
        let cases = [
            ("10.244.1.7", "10-244-1-7"),
            ("fd00:1::5", "fd00-1--5"),
            ("2001:db8::", "2001-db8--0"),
        ];
        for (ip, want) in cases {
            assert_eq!(dashed(ip.parse().unwrap()), want);
        }
    }

    #[test]
    fn weights_follow_candidates() {
        assert_eq!(weight(1), 100);
        assert_eq!(weight(2), 50);
        assert_eq!(weight(6), 16);
        assert_eq!(weight(300), 1);
        assert_eq!(weight(0), 100);
    }
}

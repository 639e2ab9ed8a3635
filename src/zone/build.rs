//! Record synthesis: one Service and its ready endpoints become `ServiceRecords` and PTR
//! targets, following the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's choices
//! where the specification leaves one (SRV priority 0, weight ⌊100/N⌋ over the candidates
//! before de-duplication; dashed-address endpoint labels).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use hickory_proto::rr::Name;

use super::{EndpointNames, NamedPort, ServiceRecords, Srv, SrvList};
use crate::model::{Ips, Label, PackedIps, Port, Protocol, ServiceKind};

/// An endpoint that DNS publishes (ready, or published regardless of readiness).
#[derive(Clone, Debug)]
pub struct ReadyEndpoint<'a> {
    /// The endpoint's hostname, if any (otherwise the dashed address names it).
    pub hostname: Option<&'a str>,
    /// Its addresses.
    pub addresses: Ips<'a>,
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
/// (`10-244-1-7`, `fd00-1--5`), and a `0` after a trailing `-` (`2001-db8--0`). Inline, with
/// no allocation, for every IPv4 address.
pub fn dashed(ip: IpAddr) -> Label {
    /// Writes what it is given with `.` and `:` as `-`.
    struct Dashes(Label);
    impl fmt::Write for Dashes {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for part in s.split_inclusive(['.', ':']) {
                match part.strip_suffix(['.', ':']) {
                    Some(head) => {
                        self.0.write_str(head)?;
                        self.0.write_str("-")?;
                    }
                    None => self.0.write_str(part)?,
                }
            }
            Ok(())
        }
    }
    let mut out = Dashes(Label::default());
    // Writing to a `Label` cannot fail.
    let _ = write!(out, "{ip}");
    if out.0.ends_with('-') {
        let _ = out.0.write_str("0");
    }
    out.0
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
// Every record set of one Service built in one pass over its endpoints (names, addresses,
// SRV, PTR targets), in the order the specification lists them; the sets share the endpoint
// labels chosen along the way.
#[allow(clippy::too_many_lines)]
pub fn build_service(input: &ServiceInput<'_>, id: u32) -> Option<ServiceRecords> {
    let namespace = input.namespace.to_ascii_lowercase();
    let name = input.name.to_ascii_lowercase();

    let headless = matches!(input.kind, ServiceKind::Headless);
    let cname = match input.kind {
        ServiceKind::ClusterIp(_) | ServiceKind::Headless => None,
        ServiceKind::ExternalName(target) => {
            if target.parse::<IpAddr>().is_ok() {
                return None;
            }
            match Name::from_ascii(format!("{target}.")) {
                Ok(t) => Some(t),
                Err(_) => return None,
            }
        }
    };

    // Endpoint names: merge endpoints that share a label; sorted for binary search. Labels
    // are inline (no allocation per endpoint, at up to 1M of them).
    let labels_of: Vec<Label> = input
        .endpoints
        .iter()
        .map(|ep| match (ep.hostname, ep.addresses.first()) {
            (_, None) => Label::default(),
            (Some(h), Some(_)) => Label::lowercase(h),
            (None, Some(first)) => dashed(first),
        })
        .collect();
    let mut order: Vec<usize> = (0..input.endpoints.len())
        .filter(|&i| !input.endpoints[i].addresses.is_empty())
        .collect();
    // Stable: a label's addresses keep the endpoints' order.
    order.sort_by(|&a, &b| labels_of[a].cmp(&labels_of[b]));
    let endpoints = EndpointNames::new(
        order
            .chunk_by(|&a, &b| labels_of[a] == labels_of[b])
            .map(|group| {
                let mut list: Vec<IpAddr> = group
                    .iter()
                    .flat_map(|&i| input.endpoints[i].addresses)
                    .collect();
                dedup_in_order(&mut list);
                (labels_of[group[0]].clone(), list)
            })
            .collect(),
    );
    let index_of = |label: &Label| endpoints.position(label.as_bytes()).map(|i| i as u32);

    let (addresses, srv_all, ports) = match input.kind {
        ServiceKind::ExternalName(_) => (PackedIps::default(), SrvList::default(), Box::default()),
        ServiceKind::ClusterIp(ips) => {
            let w = weight(input.ports.len() * ips.len());
            let mut srv_all: Vec<Srv> = Vec::new();
            for p in input.ports {
                let srv = Srv::new(w, p.port, None);
                if !srv_all.contains(&srv) {
                    srv_all.push(srv);
                }
            }
            let mut named: BTreeMap<(Label, Protocol), Vec<u16>> = BTreeMap::new();
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
                        let s = Srv::new(w, port, None);
                        if !srv.contains(&s) {
                            srv.push(s);
                        }
                    }
                    NamedPort::new(&name, protocol, srv.into())
                })
                .collect();
            (
                sorted_families(ips.iter().copied()).into(),
                srv_all.into(),
                ports,
            )
        }
        ServiceKind::Headless => {
            let members = || {
                input
                    .endpoints
                    .iter()
                    .zip(&labels_of)
                    .filter(|(ep, _)| ep.in_service)
            };
            let addresses = sorted_families(members().flat_map(|(ep, _)| ep.addresses.iter()));
            if addresses.is_empty() {
                if endpoints.is_empty() {
                    return None;
                }
                // Named pods only: their PTRs, no name of its own.
                return Some(ServiceRecords {
                    id,
                    namespace: namespace.into(),
                    name: name.into(),
                    headless,
                    addresses: addresses.into(),
                    srv_all: SrvList::default(),
                    ports: Box::default(),
                    endpoints,
                });
            }
            // Candidates are (address × port); records are de-duplicated by (target, port).
            let mut all: Vec<(u32, u16)> = Vec::new();
            let mut named: BTreeMap<(Label, Protocol), PortCandidates> = BTreeMap::new();
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
            let to_srv = |candidates: usize, mut list: Vec<(u32, u16)>| -> SrvList {
                let w = weight(candidates);
                list.sort_unstable();
                list.dedup();
                list.into_iter()
                    .map(|(t, port)| Srv::new(w, port, Some(t)))
                    .collect()
            };
            let srv_all = to_srv(all.len(), all);
            let ports = named
                .into_iter()
                .map(|((name, protocol), (n, list))| {
                    NamedPort::new(&name, protocol, to_srv(n, list))
                })
                .collect();
            (addresses.into(), srv_all, ports)
        }
    };

    // One named port (always so for the generated headless Services): its set is the
    // bare name's, kept once (`ServiceRecords::srv_all`).
    let srv_all = match &*ports {
        [only] if only.srv == srv_all => SrvList::default(),
        _ => srv_all,
    };
    Some(ServiceRecords {
        id,
        namespace: namespace.into(),
        name: name.into(),
        headless,
        addresses,
        srv_all,
        ports,
        // An ExternalName Service has no endpoints: its target takes their place.
        endpoints: match cname {
            Some(target) => EndpointNames::alias(target),
            None => endpoints,
        },
    })
}

/// De-duplicates addresses, v4 first, each family in its first-seen order.
fn sorted_families(ips: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let (mut v4, mut v6): (Vec<IpAddr>, Vec<IpAddr>) = ips.partition(IpAddr::is_ipv4);
    dedup_in_order(&mut v4);
    dedup_in_order(&mut v6);
    v4.extend(v6);
    v4
}

/// Up to this many addresses are de-duplicated by comparing each with those before it; more
/// go through a hash set, so a headless Service of thousands of endpoints builds in linear
/// time, not quadratic.
const SCAN_DEDUP_MAX: usize = 32;

/// Drops every address seen earlier in `list`, keeping the first of each in place.
fn dedup_in_order(list: &mut Vec<IpAddr>) {
    if list.len() <= SCAN_DEDUP_MAX {
        let mut kept = 0;
        for i in 0..list.len() {
            let ip = list[i];
            if !list[..kept].contains(&ip) {
                list[kept] = ip;
                kept += 1;
            }
        }
        list.truncate(kept);
    } else {
        let mut seen = super::seen_set(list.len());
        list.retain(|ip| seen.insert(*ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quadratic de-duplication `dedup_in_order` replaced: first-seen order kept.
    fn dedup_by_scan(ips: &[IpAddr]) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in ips {
            if !out.contains(ip) {
                out.push(*ip);
            }
        }
        out
    }

    #[test]
    fn dedup_keeps_the_first_of_each_address_in_order_at_every_size() {
        // A small xorshift: the same addresses on every run, with many repeats.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in [0, 1, 2, 31, 32, 33, 100, 5_000] {
            let pool = (len / 3).max(1) as u64;
            let ips: Vec<IpAddr> = (0..len)
                .map(|_| {
                    let k = next() % pool;
                    if k.is_multiple_of(4) {
                        IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, k as u16])
                    } else {
                        IpAddr::from([10, 244, (k >> 8) as u8, k as u8])
                    }
                })
                .collect();
            let mut got = ips.clone();
            dedup_in_order(&mut got);
            assert_eq!(got, dedup_by_scan(&ips), "{len} addresses");
            let want: Vec<IpAddr> = dedup_by_scan(&ips)
                .into_iter()
                .filter(IpAddr::is_ipv4)
                .chain(dedup_by_scan(&ips).into_iter().filter(IpAddr::is_ipv6))
                .collect();
            assert_eq!(
                sorted_families(ips.iter().copied()),
                want,
                "{len} addresses"
            );
        }
    }

    #[test]
    fn dashed_labels() {
        let cases = [
            ("10.244.1.7", "10-244-1-7"),
            ("fd00:1::5", "fd00-1--5"),
            ("2001:db8::", "2001-db8--0"),
        ];
        for (ip, want) in cases {
            assert_eq!(dashed(ip.parse().unwrap()).as_str(), want);
        }
    }

    fn port(name: Option<&str>, port: u16) -> Port {
        Port {
            name: name.map(Label::from),
            protocol: Protocol::Tcp,
            port,
        }
    }

    fn headless(ports: &[Port]) -> ServiceRecords {
        let ips: Vec<IpAddr> = (1..=3u8).map(|i| IpAddr::from([10, 244, 0, i])).collect();
        let input = ServiceInput {
            namespace: "ns",
            name: "db",
            kind: &ServiceKind::Headless,
            ports,
            endpoints: ips
                .iter()
                .map(|ip| ReadyEndpoint {
                    hostname: None,
                    addresses: std::slice::from_ref(ip).into(),
                    ports,
                    in_service: true,
                })
                .collect(),
        };
        build_service(&input, 7).unwrap()
    }

    #[test]
    fn a_single_named_port_shares_its_srv_set_with_the_bare_name() {
        let one = headless(&[port(Some("sql"), 5432)]);
        assert!(one.srv_all.is_empty(), "kept once, in the named port");
        assert_eq!(one.srv_all(), &*one.ports[0].srv);
        let targets: Vec<_> = one.srv_all().iter().map(|s| s.target()).collect();
        assert_eq!(targets, [Some(0), Some(1), Some(2)]);
        assert!(
            one.srv_all()
                .iter()
                .all(|s| s.weight == 33 && s.port == 5432)
        );

        // An unnamed second port: the bare name has more than the named port.
        let two = headless(&[port(Some("sql"), 5432), port(None, 9187)]);
        assert_eq!(two.srv_all().len(), 6);
        assert_eq!(two.ports[0].srv.len(), 3);
        assert!(two.srv_all().iter().all(|s| s.weight == 16));
        assert_eq!(std::mem::size_of::<Srv>(), 8);
        // With its `Arc`'s two counts, a 136-byte request: glibc's 144-byte block.
        assert!(std::mem::size_of::<ServiceRecords>() <= 120);
        assert_eq!(Srv::new(1, 2, None).target(), None);
        assert_eq!(Srv::new(1, 2, Some(0)).target(), Some(0));
    }

    #[test]
    fn port_names_inline_up_to_fifteen_bytes_and_longer_ones_kept_whole() {
        use crate::model::Protocol;
        let srv = || SrvList::from(vec![Srv::new(100, 80, None)]);
        for protocol in Protocol::ALL {
            for name in [
                "a",
                "http",
                "tcp-prometheus1",
                "http-metrics-endpoint",
                &"p".repeat(63),
            ] {
                let port = NamedPort::new(name, protocol, srv());
                assert_eq!((port.name(), port.protocol()), (name, protocol));
                assert_eq!(port.srv, srv());
            }
        }
        assert_eq!(std::mem::size_of::<NamedPort>(), 32);
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

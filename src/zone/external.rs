//! External zones (`--external-zone`): how the cluster's edge is reached from outside, as
//! CoreDNS's k8s_external and the k8s_gateway plugin answer it together.
//!
//! - `<svc>.<ns>.<zone>`: A/AAAA of a Service's `externalIPs` and load balancer `ip`s, or a
//!   CNAME to its load balancer `hostname` when it has no address; SRV on the Service name
//!   (every port) and on `_<port>._<proto>.<svc>.<ns>.<zone>` (named ports).
//! - An Ingress host, a route hostname (HTTPRoute, GRPCRoute, TLSRoute) or a Gateway
//!   listener hostname under the zone: the load balancer's or Gateway's addresses (or a CNAME
//!   to its hostname). A name several of them claim answers all their addresses.
//! - A wildcard hostname `*.<base>` (routes and listeners): every name below `<base>` that no
//!   exact name gives records, the most specific wildcard first.
//! - The apex: SOA and NS `ns1.dns.<zone>`, whose addresses are kube-system/kube-dns's
//!   external ones. Ancestors of every name are empty non-terminals (NODATA), the rest is
//!   NXDOMAIN.
//!
//! Few objects have external addresses (load balancers and Ingresses are counted in tens or
//! hundreds, not 100k), so the whole table is rebuilt when one of them changes; a lookup is
//! one hash probe on the lower-cased name, spelled into a stack buffer.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;

use crate::model::{ExternalAddresses, Port};

/// The SRV records of one external name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalSrv {
    /// ⌊100 / ports⌋, at least 1.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The target: the Service's external name, or its load balancer hostname.
    pub target: Name,
    /// The target's addresses, as additional records (none for a hostname).
    pub glue: Box<[IpAddr]>,
}

/// What one name of an external zone answers; all empty is an empty non-terminal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalRecords {
    /// A/AAAA addresses, v4 before v6.
    pub addresses: Box<[IpAddr]>,
    /// A CNAME target, only when there are no addresses.
    pub cname: Option<Name>,
    /// SRV records.
    pub srv: Box<[ExternalSrv]>,
}

/// Every name of every external zone, keyed by its lower-case spelling without the final dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalTable {
    names: HashMap<Box<[u8]>, ExternalRecords>,
    /// Wildcard hostnames' records, keyed by the name below `*.`.
    wildcards: HashMap<Box<[u8]>, ExternalRecords>,
    /// The addresses of `ns1.dns.<zone>` (kube-system/kube-dns's external addresses).
    pub nameserver_addresses: Box<[IpAddr]>,
}

/// A Service with external addresses, as the table builder reads it.
#[derive(Clone, Copy)]
pub struct ExternalService<'a> {
    /// Namespace, as written.
    pub namespace: &'a str,
    /// Name, as written.
    pub name: &'a str,
    /// Its ports.
    pub ports: &'a [Port],
    /// Its external addresses.
    pub addresses: &'a ExternalAddresses,
}

/// Adds `addrs` to what a name answers: IPs merge; a CNAME to the first hostname only while
/// there is no IP.
fn merge(e: &mut ExternalRecords, addrs: &ExternalAddresses) {
    let mut ips: Vec<IpAddr> = e.addresses.to_vec();
    ips.extend_from_slice(&addrs.ips);
    e.addresses = sorted(&ips).into();
    if e.addresses.is_empty() {
        if e.cname.is_none() {
            e.cname = addrs.hostnames.first().and_then(|h| {
                let mut n = Name::from_ascii(h).ok()?;
                n.set_fqdn(true);
                Some(n)
            });
        }
    } else {
        // RFC 1034 §3.6.2: a name with addresses cannot be an alias too.
        e.cname = None;
    }
}

impl ExternalRecords {
    /// Whether the name has records of its own (not an empty non-terminal).
    pub fn has_data(&self) -> bool {
        !self.addresses.is_empty() || self.cname.is_some() || !self.srv.is_empty()
    }
}

/// Lower-case dotted text of `name` without the final dot.
fn key_of(name: &Name) -> Box<[u8]> {
    let mut text = name.to_ascii();
    text.make_ascii_lowercase();
    text.trim_end_matches('.').as_bytes().into()
}

fn sorted(ips: &[IpAddr]) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    let mut v: Vec<IpAddr> = ips.iter().copied().filter(|ip| seen.insert(*ip)).collect();
    // v4 before v6; otherwise as written (a stable sort).
    v.sort_by_key(|ip| ip.is_ipv6());
    v
}

impl ExternalTable {
    /// Builds the table for `origins` from the Services and Ingress hosts that have external
    /// addresses.
    pub fn build<'a>(
        origins: &[Name],
        services: impl Iterator<Item = ExternalService<'a>> + Clone,
        hosts: impl Iterator<Item = (&'a str, &'a ExternalAddresses)> + Clone,
    ) -> Self {
        let mut table = ExternalTable::default();
        for zone in origins {
            if let Ok(ns1) =
                Name::from_ascii(super::soa::EXTERNAL_MNAME).and_then(|n| n.append_name(zone))
            {
                table.entry(&ns1);
                table.add_ent_chain(&ns1, zone);
            }
            for svc in services.clone() {
                let Ok(owner) = Name::from_ascii(format!("{}.{}", svc.name, svc.namespace))
                    .and_then(|n| n.append_name(zone))
                else {
                    continue;
                };
                table.add_service(&owner, zone, &svc);
                if svc.namespace == "kube-system" && svc.name == "kube-dns" {
                    table.nameserver_addresses = sorted(&svc.addresses.ips).into();
                }
            }
            for (host, addrs) in hosts.clone() {
                table.add_host(host, addrs, zone);
            }
        }
        let ns_addrs = table.nameserver_addresses.clone();
        for zone in origins {
            if let Ok(ns1) =
                Name::from_ascii(super::soa::EXTERNAL_MNAME).and_then(|n| n.append_name(zone))
            {
                table.add_addresses(
                    &ns1,
                    &ExternalAddresses {
                        ips: ns_addrs.clone(),
                        hostnames: Box::new([]),
                    },
                );
            }
        }
        table
    }

    fn entry(&mut self, name: &Name) -> &mut ExternalRecords {
        self.names.entry(key_of(name)).or_default()
    }

    /// Every ancestor of `name` strictly below `zone` exists (NODATA unless it has data).
    fn add_ent_chain(&mut self, name: &Name, zone: &Name) {
        let mut n = name.base_name();
        while n.num_labels() > zone.num_labels() {
            self.entry(&n);
            n = n.base_name();
        }
    }

    /// A hostname (`*.` for a wildcard) with the addresses it answers, if under `zone`.
    fn add_host(&mut self, host: &str, addrs: &ExternalAddresses, zone: &Name) {
        let (wildcard, bare) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let Ok(mut name) = Name::from_ascii(bare) else {
            return;
        };
        name.set_fqdn(true);
        if !zone.zone_of(&name) {
            return;
        }
        if wildcard {
            merge(self.wildcards.entry(key_of(&name)).or_default(), addrs);
            // The wildcard's parent exists (RFC 4592), as do its ancestors.
            if name.num_labels() > zone.num_labels() {
                self.entry(&name);
                self.add_ent_chain(&name, zone);
            }
        } else if name.num_labels() > zone.num_labels() {
            self.add_addresses(&name, addrs);
            self.add_ent_chain(&name, zone);
        }
    }

    fn add_addresses(&mut self, owner: &Name, addrs: &ExternalAddresses) {
        merge(self.entry(owner), addrs);
    }

    fn add_service(&mut self, owner: &Name, zone: &Name, svc: &ExternalService<'_>) {
        self.add_addresses(owner, svc.addresses);
        self.add_ent_chain(owner, zone);
        let ips = sorted(&svc.addresses.ips);
        // An SRV target must not be an alias (RFC 2782): with no address, the load balancer's
        // hostname itself.
        let target = if ips.is_empty() {
            match svc.addresses.hostnames.first().map(Name::from_ascii) {
                Some(Ok(mut n)) => {
                    n.set_fqdn(true);
                    n
                }
                _ => return,
            }
        } else {
            owner.clone()
        };
        let srv = |port: &Port, weight: u16| ExternalSrv {
            weight,
            port: port.port,
            target: target.clone(),
            glue: ips.clone().into(),
        };
        let all_weight = (100 / svc.ports.len().max(1)).max(1) as u16;
        let all: Vec<ExternalSrv> = svc.ports.iter().map(|p| srv(p, all_weight)).collect();
        let e = self.entry(owner);
        let mut merged = e.srv.to_vec();
        merged.extend(all);
        e.srv = merged.into();
        for p in svc.ports.iter() {
            let Some(port_name) = &p.name else { continue };
            let Ok(name) = Name::from_ascii(format!("_{port_name}._{}", p.protocol.label()))
                .and_then(|n| n.append_name(owner))
            else {
                continue;
            };
            self.entry(&name).srv = Box::new([srv(p, 100)]);
            self.add_ent_chain(&name, owner);
        }
    }

    /// The records of a name (lower case, no final dot), wildcards aside.
    pub fn get(&self, key: &[u8]) -> Option<&ExternalRecords> {
        self.names.get(key)
    }

    /// What a name (lower case, no final dot) answers: its own records; else those of the
    /// most specific wildcard above it whose base is at least `zone_len` bytes long (under
    /// the zone); else its entry, an empty non-terminal, if any.
    pub fn find(&self, key: &[u8], zone_len: usize) -> Option<&ExternalRecords> {
        let own = self.names.get(key);
        if own.is_some_and(ExternalRecords::has_data) || self.wildcards.is_empty() {
            return own;
        }
        let mut rest = key;
        while let Some(dot) = rest.iter().position(|&b| b == b'.') {
            rest = &rest[dot + 1..];
            if rest.len() < zone_len {
                break;
            }
            if let Some(w) = self.wildcards.get(rest) {
                return Some(w);
            }
        }
        own
    }

    /// Number of names (empty non-terminals included).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table has no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The origin among `origins` that the name `labels` (left to right, no root label) falls
/// under (the longest), with its label count.
pub fn external_origin(labels: &[&[u8]], origins: &[Name]) -> Option<usize> {
    origins
        .iter()
        .filter(|o| {
            let mut name = labels.iter().rev();
            labels.len() >= usize::from(o.num_labels())
                && o.iter()
                    .rev()
                    .all(|z| name.next().is_some_and(|l| l.eq_ignore_ascii_case(z)))
        })
        .map(|o| usize::from(o.num_labels()))
        .max()
}

/// Spells the name `labels` lower case without the final dot into `buf`; `None` if it does
/// not fit.
pub fn spell_lower<'b>(labels: &[&[u8]], buf: &'b mut [u8; 255]) -> Option<&'b [u8]> {
    let mut n = 0;
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            *buf.get_mut(n)? = b'.';
            n += 1;
        }
        buf.get_mut(n..n + label.len())?.copy_from_slice(label);
        n += label.len();
    }
    let out = &mut buf[..n];
    out.make_ascii_lowercase();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// The labels of `s`, as the lookup gives them.
    fn labels(s: &str) -> Vec<&[u8]> {
        s.split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect()
    }

    fn addrs(ips: &[&str], hostnames: &[&str]) -> ExternalAddresses {
        ExternalAddresses {
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            hostnames: hostnames.iter().map(|h| (*h).into()).collect(),
        }
    }

    fn describe(t: &ExternalTable, key: &str) -> String {
        match t.get(key.as_bytes()) {
            None => "none".into(),
            Some(r) => format!(
                "{:?} {:?} {:?}",
                r.addresses,
                r.cname.as_ref().map(ToString::to_string),
                r.srv
                    .iter()
                    .map(|s| format!("{} {} {}", s.weight, s.port, s.target))
                    .collect::<Vec<_>>()
            ),
        }
    }

    #[test]
    fn names_merge_and_parents_exist() {
        let lb = addrs(&["2001:db8::1", "203.0.113.1"], &[]);
        let named = addrs(&[], &["lb.example.net"]);
        let ports = [Port {
            name: Some("http".into()),
            protocol: Protocol::Tcp,
            port: 80,
        }];
        let services = [
            ExternalService {
                namespace: "shop",
                name: "web",
                ports: &ports,
                addresses: &lb,
            },
            ExternalService {
                namespace: "shop",
                name: "aws",
                ports: &[],
                addresses: &named,
            },
        ];
        // An Ingress host that is also a Service's external name: the addresses merge and
        // the hostname's CNAME gives way to them.
        let extra = addrs(&["198.51.100.9"], &[]);
        let both = addrs(&[], &["other.example.net"]);
        let hosts = [
            ("web.shop.example.com", &both),
            ("aws.shop.example.com", &extra),
        ];
        let t = ExternalTable::build(
            &[name("example.com.")],
            services.iter().copied(),
            hosts.iter().map(|(h, a)| (*h, *a)),
        );
        let table = [
            (
                "web.shop.example.com",
                r#"[203.0.113.1, 2001:db8::1] None ["100 80 web.shop.example.com."]"#,
            ),
            (
                "_http._tcp.web.shop.example.com",
                r#"[] None ["100 80 web.shop.example.com."]"#,
            ),
            ("_tcp.web.shop.example.com", "[] None []"),
            ("shop.example.com", "[] None []"),
            ("aws.shop.example.com", "[198.51.100.9] None []"),
            ("dns.example.com", "[] None []"),
            ("ns1.dns.example.com", "[] None []"),
            ("example.com", "none"),
            ("nope.example.com", "none"),
        ];
        for (key, want) in table {
            assert_eq!(describe(&t, key), want, "{key}");
        }
    }

    #[test]
    fn origins_and_spelling() {
        let origins = [name("example.com."), name("edge.example.com.")];
        assert_eq!(
            external_origin(&labels("a.EDGE.example.COM."), &origins),
            Some(3)
        );
        assert_eq!(
            external_origin(&labels("a.example.com."), &origins),
            Some(2)
        );
        assert_eq!(external_origin(&labels("example.org."), &origins), None);
        assert_eq!(external_origin(&labels("com."), &origins), None);
        let mut buf = [0u8; 255];
        assert_eq!(
            spell_lower(&labels("Web.Shop.Example.COM."), &mut buf),
            Some(&b"web.shop.example.com"[..])
        );
    }
}

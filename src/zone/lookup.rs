//! `lookup(snapshot, name, type) -> Answer`: borrows from the snapshot and allocates nothing.
//!
//! The negative-answer discipline follows RFC 8020 and CoreDNS: a name that exists with other
//! types, or an empty non-terminal, is NODATA; anything else under the zone is NXDOMAIN; both
//! carry the zone's SOA.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

use super::clusterset::{clusterset_lookup, clusterset_origin};
use super::external::{external_origin, spell_lower};
use super::name::{ClusterName, MAX_LABELS, classify_labels_in, name_labels};
use super::reverse::reverse_lookup;
use super::{ExternalSrv, PodsMode, PtrTarget, ServiceRecords, ServiceShape, Snapshot, Srv};
use crate::model::Ips;

/// The response code of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// NOERROR: data, or NODATA when the answer is empty.
    NoError,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL: the zone is not synced yet.
    ServFail,
    /// REFUSED: not a name this server answers.
    Refused,
}

/// The records of the answer section, still compact.
#[derive(Clone, Copy, Debug)]
pub enum AnswerData<'a> {
    /// No records (a negative answer).
    Empty,
    /// The zone's SOA.
    Soa,
    /// The zone's NS record, with the nameserver's addresses as glue.
    Ns,
    /// The `dns-version` TXT record.
    DnsVersion,
    /// The clusterset zone's `dns-version` TXT record (its own schema version).
    ClustersetVersion,
    /// A (`v6 == false`) or AAAA records of these addresses at the query name.
    Addresses {
        /// Addresses of both families; only one family is rendered.
        addrs: Ips<'a>,
        /// Render the IPv6 ones (AAAA).
        v6: bool,
    },
    /// One A/AAAA record for a pod address spelled by the query name.
    PodAddress(IpAddr),
    /// A CNAME to this target.
    Cname(&'a Name),
    /// SRV records of a Service, with their targets' addresses as additional records.
    Srv {
        /// The Service (for target names and addresses).
        service: &'a ServiceRecords,
        /// The SRV set.
        srv: &'a [Srv],
    },
    /// PTR records of `ip`: the names `zone::ptr_names` lists for these targets.
    Ptr {
        /// The address asked for.
        ip: IpAddr,
        /// The Services that answer for it.
        targets: &'a [PtrTarget],
    },
    /// An external zone's NS record (`ns1.dns.<zone>`), with its addresses as glue.
    ExternalNs,
    /// SRV records of an external name, with their targets' addresses as glue.
    ExternalSrv(&'a [ExternalSrv]),
}

/// Which zone an answer belongs to: decides the SOA of negative answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerZone {
    /// Not ours.
    None,
    /// The cluster zone; the last `labels` labels of the query name spell it.
    Cluster {
        /// Number of labels of the origin.
        labels: usize,
    },
    /// `in-addr.arpa.`.
    ReverseV4,
    /// `ip6.arpa.`.
    ReverseV6,
    /// An external zone; the last `labels` labels of the query name spell it.
    External {
        /// Number of labels of the origin.
        labels: usize,
    },
    /// The clusterset zone; the last `labels` labels of the query name spell it.
    Clusterset {
        /// Number of labels of the origin.
        labels: usize,
    },
}

/// The result of a lookup.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// Response code.
    pub rcode: Rcode,
    /// Answer section.
    pub data: AnswerData<'a>,
    /// The zone that answered.
    pub zone: AnswerZone,
}

impl Answer<'_> {
    pub(super) fn refused() -> Self {
        Answer {
            rcode: Rcode::Refused,
            data: AnswerData::Empty,
            zone: AnswerZone::None,
        }
    }
}

/// Lower-cases `label` into `buf`, returning the written part; `None` if it does not fit.
pub(super) fn lower<'b>(label: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..label.len())?;
    out.copy_from_slice(label);
    out.make_ascii_lowercase();
    Some(out)
}

fn find_service<'s>(snap: &'s Snapshot, ns: &[u8], svc: &[u8]) -> Option<&'s ServiceRecords> {
    snap.services
        .find(ns, svc)
        .map(|r| &**r)
        .filter(|r| r.resolvable())
}

fn namespace_exists(snap: &Snapshot, ns: &[u8]) -> bool {
    let mut buf = [0u8; 63];
    lower(ns, &mut buf)
        .and_then(|l| std::str::from_utf8(l).ok())
        .is_some_and(|l| snap.namespaces.contains(l))
}

/// Address records of `addrs` for `qtype`, or NODATA when none of that family exists.
pub(super) fn addresses(addrs: Ips<'_>, qtype: RecordType) -> (Rcode, AnswerData<'_>) {
    let v6 = match qtype {
        RecordType::A => false,
        RecordType::AAAA => true,
        // RFC 8482: answer ANY with one RRset.
        RecordType::ANY => !addrs.has_v4(),
        _ => return (Rcode::NoError, AnswerData::Empty),
    };
    if if v6 { addrs.has_v6() } else { addrs.has_v4() } {
        (Rcode::NoError, AnswerData::Addresses { addrs, v6 })
    } else {
        (Rcode::NoError, AnswerData::Empty)
    }
}

pub(super) const NODATA: (Rcode, AnswerData<'static>) = (Rcode::NoError, AnswerData::Empty);
pub(super) const NXDOMAIN: (Rcode, AnswerData<'static>) = (Rcode::NxDomain, AnswerData::Empty);

pub(super) fn service_answer(svc: &ServiceRecords, qtype: RecordType) -> (Rcode, AnswerData<'_>) {
    match (svc.shape(), qtype) {
        // RFC 1034 §3.6.2: a CNAME owner has no other data; every type gets the CNAME.
        (ServiceShape::ExternalName(target), _) => (Rcode::NoError, AnswerData::Cname(target)),
        (_, RecordType::SRV) if !svc.srv_all().is_empty() => (
            Rcode::NoError,
            AnswerData::Srv {
                service: svc,
                srv: svc.srv_all(),
            },
        ),
        _ => addresses(svc.addresses.view(), qtype),
    }
}

// One match over every name shape of the specification (the classifier's output), each arm
// a few lines: the table the module doc describes, read top to bottom.
#[allow(clippy::too_many_lines)]
fn cluster_lookup<'s>(
    snap: &'s Snapshot,
    class: ClusterName<'_>,
    qtype: RecordType,
) -> (Rcode, AnswerData<'s>) {
    match class {
        ClusterName::Apex => match qtype {
            RecordType::SOA | RecordType::ANY => (Rcode::NoError, AnswerData::Soa),
            RecordType::NS => (Rcode::NoError, AnswerData::Ns),
            _ => NODATA,
        },
        ClusterName::DnsVersion => match qtype {
            RecordType::TXT | RecordType::ANY => (Rcode::NoError, AnswerData::DnsVersion),
            _ => NODATA,
        },
        ClusterName::Nameserver => addresses(snap.nameserver_addresses[..].into(), qtype),
        ClusterName::DnsParent | ClusterName::SvcRoot | ClusterName::PodRoot => NODATA,
        ClusterName::Namespace(ns) => {
            if namespace_exists(snap, ns) {
                NODATA
            } else {
                NXDOMAIN
            }
        }
        ClusterName::Service { ns, svc } => match find_service(snap, ns, svc) {
            Some(rec) => service_answer(rec, qtype),
            None => NXDOMAIN,
        },
        ClusterName::ServiceChild { ns, svc, label } => {
            let Some(rec) = find_service(snap, ns, svc) else {
                return NXDOMAIN;
            };
            if matches!(rec.shape(), ServiceShape::ExternalName(_)) {
                return NXDOMAIN;
            }
            if let Some(proto) = label.strip_prefix(b"_") {
                // `_<proto>.<svc>…` is an empty non-terminal when some named port uses it.
                return if rec
                    .ports
                    .iter()
                    .any(|p| p.protocol().label().as_bytes().eq_ignore_ascii_case(proto))
                {
                    NODATA
                } else {
                    NXDOMAIN
                };
            }
            let mut buf = [0u8; 63];
            match lower(label, &mut buf).and_then(|l| rec.endpoint(l)) {
                Some(ep) => addresses(ep.addresses, qtype),
                None => NXDOMAIN,
            }
        }
        ClusterName::Srv {
            ns,
            svc,
            port,
            proto,
        } => {
            let Some(rec) = find_service(snap, ns, svc) else {
                return NXDOMAIN;
            };
            let named = rec.ports.iter().find(|p| {
                p.name_bytes().eq_ignore_ascii_case(port)
                    && p.protocol().label().as_bytes().eq_ignore_ascii_case(proto)
            });
            match named {
                None => NXDOMAIN,
                Some(p) if matches!(qtype, RecordType::SRV | RecordType::ANY) => (
                    Rcode::NoError,
                    AnswerData::Srv {
                        service: rec,
                        srv: &p.srv,
                    },
                ),
                Some(_) => NODATA,
            }
        }
        ClusterName::Pod { ns, label } => {
            if snap.config.pods == PodsMode::Disabled || !namespace_exists(snap, ns) {
                return NXDOMAIN;
            }
            let verified = |ip: &IpAddr| {
                snap.config.pods != PodsMode::Verified
                    || snap.pod_namespaces.get(ip).is_some_and(|list| {
                        list.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(ns))
                    })
            };
            match pod_address(label).filter(verified) {
                None => NXDOMAIN,
                Some(ip) => match (ip, qtype) {
                    (IpAddr::V4(_), RecordType::A | RecordType::ANY)
                    | (IpAddr::V6(_), RecordType::AAAA | RecordType::ANY) => {
                        (Rcode::NoError, AnswerData::PodAddress(ip))
                    }
                    _ => NODATA,
                },
            }
        }
        ClusterName::Nothing => NXDOMAIN,
    }
}

/// Parses a dashed pod label (`10-244-1-7`, `fd00-1--5`) into the address it spells.
fn pod_address(label: &[u8]) -> Option<IpAddr> {
    let mut buf = [0u8; 63];
    let l = buf.get_mut(..label.len())?;
    for sep in [b'.', b':'] {
        l.copy_from_slice(label);
        for b in l.iter_mut().filter(|b| **b == b'-') {
            *b = sep;
        }
        let parsed = std::str::from_utf8(l).ok().and_then(|t| match sep {
            b'.' => t.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
            _ => t.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        });
        if parsed.is_some() {
            return parsed;
        }
    }
    None
}

/// Looks `name` up for `qtype`.
pub fn lookup<'s>(snap: &'s Snapshot, name: &Name, qtype: RecordType) -> Answer<'s> {
    let mut buf: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    match name_labels(name, &mut buf) {
        Some(labels) => lookup_labels(snap, labels, qtype),
        None => Answer::refused(),
    }
}

/// `lookup` for a name given as its labels, left to right (without the root label): the
/// request path's fast answer reads them straight from the packet.
pub fn lookup_labels<'s>(snap: &'s Snapshot, name: &[&[u8]], qtype: RecordType) -> Answer<'s> {
    if let Some((class, labels)) = classify_labels_in(name, &snap.config.origin_labels) {
        let (mut rcode, data) = cluster_lookup(snap, class, qtype);
        if rcode == Rcode::NxDomain && !snap.synced {
            // Until the first full list, a missing name may just not have arrived yet.
            rcode = Rcode::ServFail;
        }
        return Answer {
            rcode,
            data,
            zone: AnswerZone::Cluster { labels },
        };
    }
    if let Some(labels) = clusterset_origin(name, &snap.config) {
        let (mut rcode, data) = clusterset_lookup(snap, name, labels, qtype);
        if rcode == Rcode::NxDomain && !snap.synced {
            rcode = Rcode::ServFail;
        }
        return Answer {
            rcode,
            data,
            zone: AnswerZone::Clusterset { labels },
        };
    }
    if let Some(labels) = external_origin(name, &snap.config.external_origins) {
        let (mut rcode, data) = external_lookup(snap, name, labels, qtype);
        if rcode == Rcode::NxDomain && !snap.synced {
            rcode = Rcode::ServFail;
        }
        return Answer {
            rcode,
            data,
            zone: AnswerZone::External { labels },
        };
    }
    reverse_lookup(snap, name, qtype)
}

fn external_lookup<'s>(
    snap: &'s Snapshot,
    name: &[&[u8]],
    zone_labels: usize,
    qtype: RecordType,
) -> (Rcode, AnswerData<'s>) {
    if name.len() == zone_labels {
        return match qtype {
            RecordType::SOA | RecordType::ANY => (Rcode::NoError, AnswerData::Soa),
            RecordType::NS => (Rcode::NoError, AnswerData::ExternalNs),
            _ => NODATA,
        };
    }
    let mut buf = [0u8; 255];
    let zone = name.get(name.len() - zone_labels..).unwrap_or_default();
    let zone_len = zone
        .iter()
        .map(|l| l.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    let Some(rec) = spell_lower(name, &mut buf).and_then(|k| snap.external.find(k, zone_len))
    else {
        return NXDOMAIN;
    };
    match &rec.cname {
        Some(target) => (Rcode::NoError, AnswerData::Cname(target)),
        None if qtype == RecordType::SRV && !rec.srv.is_empty() => {
            (Rcode::NoError, AnswerData::ExternalSrv(&rec.srv))
        }
        None => addresses(rec.addresses[..].into(), qtype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_labels() {
        assert_eq!(
            pod_address(b"10-244-1-7"),
            Some("10.244.1.7".parse().unwrap())
        );
        assert_eq!(
            pod_address(b"fd00-1--5"),
            Some("fd00:1::5".parse().unwrap())
        );
        assert_eq!(
            pod_address(b"2001-db8--0"),
            Some("2001:db8::".parse().unwrap())
        );
        assert_eq!(
            pod_address(b"fd00-1-2--5"),
            Some("fd00:1:2::5".parse().unwrap())
        );
        assert_eq!(pod_address(b"10-244-1"), None);
        assert_eq!(pod_address(b"web"), None);
    }
}

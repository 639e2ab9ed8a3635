//! The clusterset zone (`--multicluster-zone`): KEP-1645's DNS specification for
//! ServiceImports, answered as CoreDNS's `multicluster` plugin does.
//!
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA of the import's clusterset IPs (`ClusterSetIP`), or of the
//!   ready endpoints of every exporting cluster (`Headless`; none: NXDOMAIN); SRV on the bare
//!   name (every port) and on `_<port>._<proto>.<svc>.<ns>.svc.<zone>` (named ports).
//! - `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>`: a headless endpoint's addresses; the
//!   hostname is the endpoint's, else its dashed address; the cluster id is the slice's
//!   `multicluster.kubernetes.io/source-cluster` label. `<clusterid>.<svc>…` is an empty
//!   non-terminal. A ClusterSetIP import has no per-cluster names (§2.3.4).
//! - The apex: SOA and NS as the cluster zone's (`ns.dns.<zone>`, kube-dns's cluster IPs),
//!   `dns-version.<zone>` TXT `"1.0.0"`.
//! - No PTR: reverse names stay with the cluster zone.
//!
//! The records of one import are `ServiceRecords` built by the cluster zone's builder, its
//! endpoint labels being `<hostname>.<clusterid>` (two labels in one), so SRV targets and
//! rendering are the cluster zone's.

use hickory_proto::rr::RecordType;

use super::external::external_origin;
use super::lookup::{AnswerData, NODATA, NXDOMAIN, Rcode, addresses, lower, service_answer};
use super::{ServiceRecords, ServiceShape, Snapshot, ZoneConfig};

/// The schema version of KEP-1645's DNS specification served at `dns-version.<zone>`.
pub const CLUSTERSET_SCHEMA_VERSION: &str = "1.0.0";

/// The label count of the clusterset zone when `labels` (left to right) fall under it.
pub(super) fn clusterset_origin(labels: &[&[u8]], config: &ZoneConfig) -> Option<usize> {
    external_origin(
        labels,
        std::slice::from_ref(config.clusterset_origin.as_ref()?),
    )
}

fn find<'s>(snap: &'s Snapshot, ns: &[u8], svc: &[u8]) -> Option<&'s ServiceRecords> {
    snap.clusterset
        .find(ns, svc)
        .map(|r| &**r)
        .filter(|r| r.resolvable())
}

/// `<hostname>.<clusterid>` of a headless import: the endpoint's addresses.
fn endpoint<'s>(
    rec: &'s ServiceRecords,
    host: &[u8],
    cluster: &[u8],
) -> Option<crate::model::Ips<'s>> {
    let mut buf = [0u8; 127];
    let n = host.len() + 1 + cluster.len();
    let k = buf.get_mut(..n)?;
    k[..host.len()].copy_from_slice(host);
    k[host.len()] = b'.';
    k[host.len() + 1..].copy_from_slice(cluster);
    k.make_ascii_lowercase();
    rec.endpoint(k).map(|e| e.addresses)
}

/// `<label>.<svc>.<ns>.svc.<zone>`: `_<proto>` above named ports, or a cluster id above
/// endpoint names; both empty non-terminals.
fn child(rec: &ServiceRecords, label: &[u8]) -> (Rcode, AnswerData<'static>) {
    let exists = match label.strip_prefix(b"_") {
        Some(proto) => rec
            .ports
            .iter()
            .any(|p| p.protocol().label().as_bytes().eq_ignore_ascii_case(proto)),
        None => {
            let mut buf = [0u8; 63];
            let Some(cluster) = lower(label, &mut buf) else {
                return NXDOMAIN;
            };
            rec.shape() == ServiceShape::Headless
                && rec.endpoints.iter().any(|e| {
                    let l = e.label;
                    l.len() > cluster.len()
                        && l.ends_with(cluster)
                        && l[l.len() - cluster.len() - 1] == b'.'
                })
        }
    };
    if exists { NODATA } else { NXDOMAIN }
}

/// Answers `name` (labels left to right) under the clusterset zone of `zone_labels` labels.
pub(super) fn clusterset_lookup<'s>(
    snap: &'s Snapshot,
    name: &[&[u8]],
    zone_labels: usize,
    qtype: RecordType,
) -> (Rcode, AnswerData<'s>) {
    let is = |l: &[u8], s: &str| l.eq_ignore_ascii_case(s.as_bytes());
    let rest = name.get(..name.len() - zone_labels).unwrap_or_default();
    match rest {
        [] => match qtype {
            RecordType::SOA | RecordType::ANY => (Rcode::NoError, AnswerData::Soa),
            RecordType::NS => (Rcode::NoError, AnswerData::Ns),
            _ => NODATA,
        },
        [v] if is(v, "dns-version") => match qtype {
            RecordType::TXT | RecordType::ANY => (Rcode::NoError, AnswerData::ClustersetVersion),
            _ => NODATA,
        },
        [l] if is(l, "dns") || is(l, "svc") => NODATA,
        [n, d] if is(n, "ns") && is(d, "dns") => {
            addresses(snap.nameserver_addresses[..].into(), qtype)
        }
        [ns, s] if is(s, "svc") => {
            let mut buf = [0u8; 63];
            let known = lower(ns, &mut buf)
                .and_then(|l| std::str::from_utf8(l).ok())
                .is_some_and(|l| snap.clusterset_namespaces.contains(l));
            if known { NODATA } else { NXDOMAIN }
        }
        [svc, ns, s] if is(s, "svc") => match find(snap, ns, svc) {
            Some(rec) => service_answer(rec, qtype),
            None => NXDOMAIN,
        },
        [label, svc, ns, s] if is(s, "svc") => match find(snap, ns, svc) {
            Some(rec) => child(rec, label),
            None => NXDOMAIN,
        },
        [a, b, svc, ns, s] if is(s, "svc") => {
            let Some(rec) = find(snap, ns, svc) else {
                return NXDOMAIN;
            };
            match (a.strip_prefix(b"_"), b.strip_prefix(b"_")) {
                (Some(port), Some(proto)) => {
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
                _ => match endpoint(rec, a, b) {
                    Some(addrs) => addresses(addrs, qtype),
                    None => NXDOMAIN,
                },
            }
        }
        _ => NXDOMAIN,
    }
}

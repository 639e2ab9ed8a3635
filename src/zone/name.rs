//! The name classifier: reads a query name right to left (zone, `svc`/`pod`, namespace,
//! service, endpoint or `_port._proto`) without allocating.
//!
//! Labels are returned as they were spelled; comparisons are ASCII case-insensitive, as the
//! specification requires ("All comparisons between query data and data in Kubernetes are
//! case-insensitive").

use hickory_proto::rr::Name;

/// What a name under the cluster zone refers to. Labels keep the query's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterName<'a> {
    /// `<zone>`.
    Apex,
    /// `dns-version.<zone>`.
    DnsVersion,
    /// `dns.<zone>`: empty non-terminal above the nameserver's name.
    DnsParent,
    /// `ns.dns.<zone>`: the nameserver named by the NS record.
    Nameserver,
    /// `svc.<zone>`.
    SvcRoot,
    /// `pod.<zone>`.
    PodRoot,
    /// `<ns>.svc.<zone>` or `<ns>.pod.<zone>`.
    Namespace(&'a [u8]),
    /// `<svc>.<ns>.svc.<zone>`.
    Service {
        /// The namespace label.
        ns: &'a [u8],
        /// The service label.
        svc: &'a [u8],
    },
    /// `<label>.<svc>.<ns>.svc.<zone>`: an endpoint name, or `_<proto>` above SRV names.
    ServiceChild {
        /// The namespace label.
        ns: &'a [u8],
        /// The service label.
        svc: &'a [u8],
        /// The label below the service.
        label: &'a [u8],
    },
    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>` (underscores stripped).
    Srv {
        /// The namespace label.
        ns: &'a [u8],
        /// The service label.
        svc: &'a [u8],
        /// Port name without `_`.
        port: &'a [u8],
        /// Protocol without `_`.
        proto: &'a [u8],
    },
    /// `<address>.<ns>.pod.<zone>`.
    Pod {
        /// The namespace label.
        ns: &'a [u8],
        /// The dashed address label.
        label: &'a [u8],
    },
    /// Under the zone, but no name of the specification's shape: NXDOMAIN.
    Nothing,
}

/// Classifies `name` against the zone `origin` (lower case). `None` when the name is outside
/// the zone; otherwise the class and the number of labels of `name` that spell the zone.
pub fn classify<'a>(name: &'a Name, origin: &Name) -> Option<(ClusterName<'a>, usize)> {
    let mut buf: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
    let labels = name_labels(name, &mut buf)?;
    classify_labels(labels, origin)
}

pub use crate::wire::MAX_LABELS;

/// The labels of `name`, left to right, in `buf`; `None` if there are more than it holds.
pub fn name_labels<'a, 'b>(name: &'a Name, buf: &'b mut [&'a [u8]]) -> Option<&'b [&'a [u8]]> {
    let mut n = 0;
    for l in name.iter() {
        *buf.get_mut(n)? = l;
        n += 1;
    }
    buf.get(..n)
}

/// `classify` for a name given as its labels, left to right (the root label excluded).
pub fn classify_labels<'a>(name: &[&'a [u8]], origin: &Name) -> Option<(ClusterName<'a>, usize)> {
    classify_in(name, origin.iter().rev(), origin.num_labels() as usize)
}

/// `classify_labels` against the zone's labels as `ZoneConfig::origin_labels` holds them (lower
/// case, right to left): no walk of the origin's `Name` per query.
pub fn classify_labels_in<'a>(
    name: &[&'a [u8]],
    origin_rev: &[Box<[u8]>],
) -> Option<(ClusterName<'a>, usize)> {
    classify_in(name, origin_rev.iter().map(|l| &**l), origin_rev.len())
}

fn classify_in<'a, 'o>(
    name: &[&'a [u8]],
    origin_rev: impl Iterator<Item = &'o [u8]>,
    zone_labels: usize,
) -> Option<(ClusterName<'a>, usize)> {
    let mut labels = name.iter().copied().rev();
    for zone_label in origin_rev {
        match labels.next() {
            Some(l) if crate::wire::eq_lower(l, zone_label) => {}
            _ => return None,
        }
    }
    let rest: usize = labels.len();
    // Read up to five labels left of the zone, right to left; more is always NXDOMAIN.
    let mut r: [&[u8]; 5] = [&[]; 5];
    if rest > r.len() {
        return Some((ClusterName::Nothing, zone_labels));
    }
    for (slot, l) in r.iter_mut().zip(labels) {
        *slot = l;
    }
    let is = |l: &[u8], s: &str| crate::wire::eq_lower(l, s.as_bytes());
    let class = match rest {
        0 => ClusterName::Apex,
        1 if is(r[0], "dns-version") => ClusterName::DnsVersion,
        1 if is(r[0], "dns") => ClusterName::DnsParent,
        2 if is(r[0], "dns") && is(r[1], "ns") => ClusterName::Nameserver,
        1 if is(r[0], "svc") => ClusterName::SvcRoot,
        1 if is(r[0], "pod") => ClusterName::PodRoot,
        2 if is(r[0], "svc") || is(r[0], "pod") => ClusterName::Namespace(r[1]),
        3 if is(r[0], "pod") => ClusterName::Pod {
            ns: r[1],
            label: r[2],
        },
        3 if is(r[0], "svc") => ClusterName::Service {
            ns: r[1],
            svc: r[2],
        },
        4 if is(r[0], "svc") => ClusterName::ServiceChild {
            ns: r[1],
            svc: r[2],
            label: r[3],
        },
        5 if is(r[0], "svc") => match (r[3].strip_prefix(b"_"), r[4].strip_prefix(b"_")) {
            (Some(proto), Some(port)) if !proto.is_empty() && !port.is_empty() => {
                ClusterName::Srv {
                    ns: r[1],
                    svc: r[2],
                    port,
                    proto,
                }
            }
            _ => ClusterName::Nothing,
        },
        _ => ClusterName::Nothing,
    };
    Some((class, zone_labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(q: &str) -> String {
        let origin = Name::from_ascii("cluster.local.").unwrap();
        let name = Name::from_ascii(q).unwrap();
        match classify(&name, &origin) {
            None => "outside".into(),
            Some((c, n)) => {
                let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let c = match c {
                    ClusterName::Namespace(ns) => format!("Namespace {}", s(ns)),
                    ClusterName::Service { ns, svc } => format!("Service {}/{}", s(ns), s(svc)),
                    ClusterName::ServiceChild { ns, svc, label } => {
                        format!("Child {}/{} {}", s(ns), s(svc), s(label))
                    }
                    ClusterName::Srv {
                        ns,
                        svc,
                        port,
                        proto,
                    } => format!("Srv {}/{} {} {}", s(ns), s(svc), s(port), s(proto)),
                    ClusterName::Pod { ns, label } => format!("Pod {} {}", s(ns), s(label)),
                    other => format!("{other:?}"),
                };
                format!("{c} @{n}")
            }
        }
    }

    #[test]
    fn classifies_right_to_left() {
        let table = [
            ("cluster.local.", "Apex @2"),
            ("CLUSTER.Local.", "Apex @2"),
            ("example.com.", "outside"),
            ("local.", "outside"),
            ("xcluster.local.", "outside"),
            ("dns-version.cluster.local.", "DnsVersion @2"),
            ("dns.cluster.local.", "DnsParent @2"),
            ("ns.dns.cluster.local.", "Nameserver @2"),
            ("svc.cluster.local.", "SvcRoot @2"),
            ("pod.cluster.local.", "PodRoot @2"),
            ("foo.cluster.local.", "Nothing @2"),
            ("shop.svc.cluster.local.", "Namespace shop @2"),
            ("shop.pod.cluster.local.", "Namespace shop @2"),
            ("web.shop.svc.cluster.local.", "Service shop/web @2"),
            ("WeB.ShOp.SvC.cluster.local.", "Service ShOp/WeB @2"),
            ("db-0.db.data.svc.cluster.local.", "Child data/db db-0"),
            ("_tcp.web.shop.svc.cluster.local.", "Child shop/web _tcp"),
            (
                "_http._tcp.web.shop.svc.cluster.local.",
                "Srv shop/web http tcp @2",
            ),
            ("http.tcp.web.shop.svc.cluster.local.", "Nothing @2"),
            ("_._tcp.web.shop.svc.cluster.local.", "Nothing @2"),
            ("a._http._tcp.web.shop.svc.cluster.local.", "Nothing @2"),
            ("10-0-0-1.shop.pod.cluster.local.", "Pod shop 10-0-0-1 @2"),
            ("x.10-0-0-1.shop.pod.cluster.local.", "Nothing @2"),
            ("a.b.c.d.e.f.g.h.cluster.local.", "Nothing @2"),
        ];
        for (q, want) in table {
            let got = class(q);
            assert!(got.starts_with(want), "{q}: got {got}, want {want}");
        }
    }
}

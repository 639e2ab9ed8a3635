//! Every record of the cluster zone, for a zone transfer (AXFR, RFC 5936): the SOA, the
//! apex NS and its glue, `dns-version`, and per Service its A/AAAA (or CNAME), SRV on the
//! bare name and on each named port, and its endpoint names; with `--pods verified`, the pod
//! names of every known pod address. The SOA comes first and last.
//!
//! Each name is answered through `lookup` and `render`, so a transfer holds exactly what
//! queries answer. Not transferred: pod names in `insecure` mode (any address a name spells,
//! an unbounded set) and the reverse zones (`in-addr.arpa.`, `ip6.arpa.`), which are zones of
//! their own that this server only partly holds.

use hickory_proto::rr::{Name, Record, RecordType};

use super::{PodsMode, ServiceRecords, ServiceShape, Snapshot, lookup, render};

/// The answers for `name` of each type in `types`, appended to `out`.
fn answers(snap: &Snapshot, name: &Name, types: &[RecordType], out: &mut Vec<Record>) {
    for t in types {
        let answer = lookup(snap, name, *t);
        out.extend(render(snap, &answer, name).answers);
    }
}

/// `prefix.<origin>`, if it spells a name.
fn under(prefix: &str, origin: &Name) -> Option<Name> {
    Name::from_ascii(prefix).ok()?.append_name(origin).ok()
}

/// Every record of the zone in transfer order: SOA, the rest (apex first, then Services
/// sorted by namespace and name, then pods), SOA again.
pub fn transfer_records(snap: &Snapshot) -> Vec<Record> {
    use RecordType::{A, AAAA, CNAME, NS, SOA, SRV, TXT};
    let origin = &snap.config.origin;
    let mut out = Vec::new();
    answers(snap, origin, &[SOA], &mut out);
    let Some(soa) = out.first().cloned() else {
        return out;
    };
    answers(snap, origin, &[NS], &mut out);
    if let Some(ns) = under(super::soa::CLUSTER_MNAME, origin) {
        answers(snap, &ns, &[A, AAAA], &mut out);
    }
    if let Some(v) = under("dns-version", origin) {
        answers(snap, &v, &[TXT], &mut out);
    }
    // In the order of `<namespace>/<name>` as bytes.
    let key = |s: &ServiceRecords| {
        let (ns, name) = (s.namespace.as_bytes(), s.name.as_bytes());
        ns.iter()
            .chain(b"/")
            .chain(name)
            .copied()
            .collect::<Vec<u8>>()
    };
    let mut services: Vec<_> = snap.services.iter().map(|s| (key(s), s)).collect();
    services.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, svc) in services.into_iter().filter(|(_, s)| s.resolvable()) {
        let Some(name) = under(&format!("{}.{}.svc", svc.name, svc.namespace), origin) else {
            continue;
        };
        if matches!(svc.shape(), ServiceShape::ExternalName(_)) {
            answers(snap, &name, &[CNAME], &mut out);
            continue;
        }
        answers(snap, &name, &[A, AAAA, SRV], &mut out);
        for port in svc.ports.iter() {
            let label = format!("_{}._{}", port.name(), port.protocol().label());
            if let Ok(srv) = Name::from_ascii(&label).and_then(|l| l.append_name(&name)) {
                answers(snap, &srv, &[SRV], &mut out);
            }
        }
        for ep in svc.endpoints.iter() {
            if let Ok(n) = Name::from_ascii(ep.label_str()).and_then(|l| l.append_name(&name)) {
                answers(snap, &n, &[A, AAAA], &mut out);
            }
        }
    }
    if snap.config.pods == PodsMode::Verified {
        let mut pods: Vec<_> = snap.pod_namespaces.iter().collect();
        pods.sort_by_key(|(ip, _)| **ip);
        for (ip, namespaces) in pods {
            let dashed = ip.to_string().replace(['.', ':'], "-");
            for ns in namespaces.iter() {
                if let Some(n) = under(&format!("{dashed}.{ns}.pod"), origin) {
                    answers(snap, &n, &[if ip.is_ipv4() { A } else { AAAA }], &mut out);
                }
            }
        }
    }
    out.push(soa);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::zone::{ServiceRecords, ZoneConfig};

    #[test]
    fn soa_first_and_last_services_between() {
        let config = ZoneConfig::new("cluster.local", 30, PodsMode::Verified).unwrap();
        let mut snap = Snapshot::empty(Arc::new(config));
        snap.synced = true;
        snap.namespaces = Arc::new(["shop".into()].into_iter().collect());
        let svc = ServiceRecords {
            id: 0,
            namespace: "shop".into(),
            name: "web".into(),
            headless: false,
            addresses: vec!["10.96.0.1".parse().unwrap(), "fd00::1".parse().unwrap()].into(),
            srv_all: Default::default(),
            ports: Box::new([]),
            endpoints: Default::default(),
        };
        snap.services.set(
            &crate::zone::ServiceKey::new("shop", "web"),
            Some(Arc::new(svc)),
        );
        let ns: Arc<[Box<str>]> = Arc::new(["shop".into()]);
        snap.pod_namespaces
            .set("10.244.0.7".parse().unwrap(), Some(ns));
        let lines: Vec<String> = transfer_records(&snap)
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
            .collect();
        assert_eq!(lines.first(), lines.last());
        assert!(lines[0].starts_with("cluster.local. SOA ns.dns.cluster.local."));
        assert_eq!(
            lines[1..lines.len() - 1],
            [
                "cluster.local. NS ns.dns.cluster.local.",
                "dns-version.cluster.local. TXT 1.1.0",
                "web.shop.svc.cluster.local. A 10.96.0.1",
                "web.shop.svc.cluster.local. AAAA fd00::1",
                "10-244-0-7.shop.pod.cluster.local. A 10.244.0.7",
            ]
        );
    }
}

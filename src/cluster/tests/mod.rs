//! Record synthesis from model objects, as tables of (query, type) → zone-file text.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{ALL_KINDS, Cluster, Delta};
use crate::model::{
    Endpoint, EndpointSlice, Namespace, Object, ObjectKey, Pod, Port, Protocol, Service,
    ServiceKind, ServicePort, ServiceSpec, TargetPort,
};
use crate::zone::{PodsMode, ServiceRecords, ZoneConfig, lookup, render};

fn ips(list: &[&str]) -> Box<[IpAddr]> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn port(name: &str, n: u16) -> Port {
    Port {
        name: (!name.is_empty()).then(|| name.into()),
        protocol: Protocol::Tcp,
        port: n,
    }
}

fn service(
    ns: &str,
    name: &str,
    kind: ServiceKind,
    ports: Vec<Port>,
    selector: &[(&str, &str)],
) -> Object {
    Object::Service(Service {
        key: ObjectKey::new(ns, name),
        kind,
        spec: ServiceSpec::new(
            ports.into_iter().map(|port| ServicePort {
                target: TargetPort::Number(port.port),
                port,
            }),
            selector.iter().copied(),
        ),
        external: None,
    })
}

fn endpoint(addr: &str, ready: bool, hostname: Option<&str>) -> Endpoint {
    Endpoint {
        addresses: ips(&[addr]).into(),
        ready,
        hostname: hostname.map(Into::into),
        pod_name: None,
    }
}

fn slice(ns: &str, name: &str, svc: &str, endpoints: Vec<Endpoint>, ports: Vec<Port>) -> Object {
    Object::EndpointSlice(EndpointSlice {
        key: ObjectKey::new(ns, name),
        service: Some(svc.into()),
        import: None,
        endpoints: endpoints.into(),
        ports: ports.into(),
        trigger_time_ms: None,
    })
}

fn pod(ns: &str, name: &str, ip: &str, ready: bool, labels: &[(&str, &str)]) -> Object {
    Object::Pod(Pod {
        key: ObjectKey::new(ns, name),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ips: ips(&[ip]),
        hostname: None,
        subdomain: None,
        ready,
        named_ports: Box::new([]),
    })
}

fn cluster(objects: Vec<Object>) -> Cluster {
    cluster_with(
        PodsMode::Insecure,
        super::ClusterOptions::default(),
        objects,
    )
}

/// A synced cluster of `objects`, with a pods mode and options.
fn cluster_with(pods: PodsMode, options: super::ClusterOptions, objects: Vec<Object>) -> Cluster {
    let config = ZoneConfig::new("cluster.local", 5, pods).unwrap();
    let mut c = Cluster::new(Arc::new(config), &ALL_KINDS).with_options(options);
    let mut deltas: Vec<Delta> = objects.into_iter().map(Delta::Upsert).collect();
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    c.apply(deltas);
    c
}

fn text(c: &Cluster, name: &str, qtype: RecordType) -> String {
    let snap = c.snapshot();
    let qname = Name::from_ascii(name).unwrap();
    let answer = lookup(&snap, &qname, qtype);
    let r = render(&snap, &answer, &qname);
    let mut out = vec![format!("{:?}", answer.rcode)];
    for rec in r.answers.iter().chain(&r.additionals) {
        out.push(format!(
            "{} {} IN {} {}",
            rec.name,
            rec.ttl,
            rec.record_type(),
            rec.data
        ));
    }
    if !r.authorities.is_empty() {
        out.push("+soa".into());
    }
    out.join("\n")
}

fn example() -> Cluster {
    cluster(vec![
        Object::Namespace(Namespace { name: "ns".into() }),
        service(
            "ns",
            "svc",
            ServiceKind::ClusterIp(ips(&["10.0.0.1"]).into()),
            vec![port("http", 80), port("", 81)],
            &[],
        ),
        slice(
            "ns",
            "svc-a",
            "svc",
            vec![
                endpoint("172.0.0.2", true, None),
                endpoint("172.0.0.3", false, None),
            ],
            vec![port("http", 8080)],
        ),
        service(
            "ns",
            "hdls",
            ServiceKind::Headless,
            vec![port("http", 80)],
            &[],
        ),
        slice(
            "ns",
            "hdls-a",
            "hdls",
            vec![
                endpoint("172.0.0.4", true, Some("a")),
                endpoint("172.0.0.5", true, Some("a")),
                endpoint("172.0.0.6", true, None),
                endpoint("fd00::7", true, None),
            ],
            vec![port("http", 8080)],
        ),
        service(
            "ns",
            "sel",
            ServiceKind::Headless,
            vec![port("http", 80)],
            &[("app", "sel")],
        ),
        pod(
            "ns",
            "sel-0",
            "172.0.1.1",
            true,
            &[("app", "sel"), ("tier", "x")],
        ),
        pod("ns", "sel-1", "172.0.1.2", false, &[("app", "sel")]),
        pod("ns", "other", "172.0.1.3", true, &[("app", "other")]),
        service(
            "ns",
            "ext",
            ServiceKind::ExternalName("example.org".into()),
            vec![],
            &[],
        ),
        service(
            "ns",
            "extip",
            ServiceKind::ExternalName("1.2.3.4".into()),
            vec![],
            &[],
        ),
    ])
}

#[test]
fn synthesis_table() {
    let c = example();
    let table: &[(&str, RecordType, &str)] = &[
        (
            "svc.ns.svc.cluster.local.",
            RecordType::A,
            "NoError\nsvc.ns.svc.cluster.local. 5 IN A 10.0.0.1",
        ),
        (
            "svc.ns.svc.cluster.local.",
            RecordType::SRV,
            "NoError\nsvc.ns.svc.cluster.local. 5 IN SRV 0 50 80 svc.ns.svc.cluster.local.\nsvc.ns.svc.cluster.local. 5 IN SRV 0 50 81 svc.ns.svc.cluster.local.\nsvc.ns.svc.cluster.local. 5 IN A 10.0.0.1",
        ),
        (
            "172-0-0-2.svc.ns.svc.cluster.local.",
            RecordType::A,
            "NoError\n172-0-0-2.svc.ns.svc.cluster.local. 5 IN A 172.0.0.2",
        ),
        (
            "172-0-0-3.svc.ns.svc.cluster.local.",
            RecordType::A,
            "NxDomain\n+soa",
        ),
        // Two endpoints sharing a hostname: both addresses; weight over 4 candidates.
        (
            "a.hdls.ns.svc.cluster.local.",
            RecordType::A,
            "NoError\na.hdls.ns.svc.cluster.local. 5 IN A 172.0.0.4\na.hdls.ns.svc.cluster.local. 5 IN A 172.0.0.5",
        ),
        (
            "_http._tcp.hdls.ns.svc.cluster.local.",
            RecordType::SRV,
            "NoError\n_http._tcp.hdls.ns.svc.cluster.local. 5 IN SRV 0 25 8080 172-0-0-6.hdls.ns.svc.cluster.local.\n_http._tcp.hdls.ns.svc.cluster.local. 5 IN SRV 0 25 8080 a.hdls.ns.svc.cluster.local.\n_http._tcp.hdls.ns.svc.cluster.local. 5 IN SRV 0 25 8080 fd00--7.hdls.ns.svc.cluster.local.\n172-0-0-6.hdls.ns.svc.cluster.local. 5 IN A 172.0.0.6\na.hdls.ns.svc.cluster.local. 5 IN A 172.0.0.4\na.hdls.ns.svc.cluster.local. 5 IN A 172.0.0.5\nfd00--7.hdls.ns.svc.cluster.local. 5 IN AAAA fd00::7",
        ),
        (
            "hdls.ns.svc.cluster.local.",
            RecordType::AAAA,
            "NoError\nhdls.ns.svc.cluster.local. 5 IN AAAA fd00::7",
        ),
        // Selector-derived: ready pods that match every selector label.
        (
            "sel.ns.svc.cluster.local.",
            RecordType::A,
            "NoError\nsel.ns.svc.cluster.local. 5 IN A 172.0.1.1",
        ),
        (
            "ext.ns.svc.cluster.local.",
            RecordType::A,
            "NoError\next.ns.svc.cluster.local. 5 IN CNAME example.org.",
        ),
        (
            "extip.ns.svc.cluster.local.",
            RecordType::A,
            "NxDomain\n+soa",
        ),
        (
            "1.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            "NoError\n1.0.0.10.in-addr.arpa. 5 IN PTR svc.ns.svc.cluster.local.",
        ),
        (
            "2.0.0.172.in-addr.arpa.",
            RecordType::PTR,
            "NoError\n2.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-2.svc.ns.svc.cluster.local.",
        ),
        (
            "5.0.0.172.in-addr.arpa.",
            RecordType::PTR,
            "NoError\n5.0.0.172.in-addr.arpa. 5 IN PTR a.hdls.ns.svc.cluster.local.",
        ),
        (
            "cluster.local.",
            RecordType::SOA,
            "NoError\ncluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5",
        ),
    ];
    let serial = c.snapshot().serial.to_string();
    for (name, qtype, want) in table {
        let got = text(&c, name, *qtype).replace(&serial, "SERIAL");
        assert_eq!(got, *want, "{name} {qtype}");
    }
}

#[test]
fn unchanged_objects_publish_nothing_and_changes_raise_the_serial() {
    let mut c = example();
    let before = c.snapshot();
    let same = service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.1"]).into()),
        vec![port("http", 80), port("", 81)],
        &[],
    );
    assert!(
        c.apply([Delta::Upsert(same)]).is_none(),
        "re-sending an object changes nothing"
    );
    let moved = service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.9"]).into()),
        vec![port("http", 80)],
        &[],
    );
    let after = c.apply([Delta::Upsert(moved)]).expect("a new snapshot");
    assert!(after.serial > before.serial);
    assert_eq!(
        text(&c, "9.0.0.10.in-addr.arpa.", RecordType::PTR),
        "NoError\n9.0.0.10.in-addr.arpa. 5 IN PTR svc.ns.svc.cluster.local."
    );
    assert_eq!(
        text(&c, "1.0.0.10.in-addr.arpa.", RecordType::PTR),
        "Refused",
        "old cluster IP's PTR is gone"
    );
}

#[test]
fn reset_removes_what_a_relist_no_longer_has() {
    let mut c = example();
    let keep = service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.1"]).into()),
        vec![port("http", 80), port("", 81)],
        &[],
    );
    let retained = ObjectKey::new("ns", "hdls");
    c.apply([Delta::Reset {
        kind: crate::model::Kind::Service,
        objects: vec![keep],
        retain: vec![retained],
    }]);
    assert!(
        text(&c, "hdls.ns.svc.cluster.local.", RecordType::A).starts_with("NoError"),
        "an unreadable listed object keeps its last good version"
    );
    assert!(text(&c, "svc.ns.svc.cluster.local.", RecordType::A).starts_with("NoError"));
    assert_eq!(
        text(&c, "ext.ns.svc.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
    // `sel` was not in the relist: its endpoint's PTR is gone; the retained `hdls` keeps its.
    assert_eq!(
        text(&c, "1.1.0.172.in-addr.arpa.", RecordType::PTR),
        "Refused"
    );
    assert!(text(&c, "4.0.0.172.in-addr.arpa.", RecordType::PTR).contains("a.hdls"));
}

#[test]
fn not_synced_turns_nxdomain_into_servfail() {
    let config = ZoneConfig::new("cluster.local", 5, PodsMode::Insecure).unwrap();
    let mut c = Cluster::new(Arc::new(config), &ALL_KINDS);
    c.apply([Delta::Upsert(service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.1"]).into()),
        vec![],
        &[],
    ))]);
    assert_eq!(
        text(&c, "nope.ns.svc.cluster.local.", RecordType::A),
        "ServFail\n+soa"
    );
    assert!(text(&c, "svc.ns.svc.cluster.local.", RecordType::A).starts_with("NoError"));
    c.apply(ALL_KINDS.map(Delta::Synced));
    assert_eq!(
        text(&c, "nope.ns.svc.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
}

#[test]
fn verified_pods_answer_only_addresses_a_pod_has() {
    let mut c = cluster_with(
        PodsMode::Verified,
        super::ClusterOptions::default(),
        vec![
            Object::Namespace(Namespace { name: "ns".into() }),
            Object::Namespace(Namespace {
                name: "other".into(),
            }),
            pod("ns", "p", "172.0.1.1", true, &[]),
        ],
    );
    assert_eq!(
        text(&c, "172-0-1-1.ns.pod.cluster.local.", RecordType::A),
        "NoError\n172-0-1-1.ns.pod.cluster.local. 5 IN A 172.0.1.1"
    );
    assert_eq!(
        text(&c, "172-0-1-1.other.pod.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
    assert_eq!(
        text(&c, "172-0-1-2.ns.pod.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
    c.apply([Delta::Remove(
        crate::model::Kind::Pod,
        ObjectKey::new("ns", "p"),
    )]);
    assert_eq!(
        text(&c, "172-0-1-1.ns.pod.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
}

#[test]
fn namespace_filter_and_endpoint_pod_names() {
    let options = super::ClusterOptions {
        namespaces: ["ns".into()].into_iter().collect(),
        endpoint_pod_names: true,
        external_kinds: None,
        hosts: None,
    };
    let named = slice(
        "ns",
        "svc-a",
        "svc",
        vec![Endpoint {
            pod_name: Some("web-7d9f".into()),
            ..endpoint("172.0.0.2", true, None)
        }],
        vec![port("http", 80)],
    );
    let c = cluster_with(
        PodsMode::Insecure,
        options,
        vec![
            service(
                "ns",
                "svc",
                ServiceKind::Headless,
                vec![port("http", 80)],
                &[],
            ),
            named,
            service(
                "hidden",
                "svc",
                ServiceKind::ClusterIp(ips(&["10.0.0.2"]).into()),
                vec![],
                &[],
            ),
        ],
    );
    assert_eq!(
        text(&c, "web-7d9f.svc.ns.svc.cluster.local.", RecordType::A),
        "NoError\nweb-7d9f.svc.ns.svc.cluster.local. 5 IN A 172.0.0.2"
    );
    assert_eq!(
        text(&c, "svc.hidden.svc.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
    assert_eq!(
        text(&c, "hidden.svc.cluster.local.", RecordType::A),
        "NxDomain\n+soa"
    );
    assert_eq!(
        c.counts()[1],
        (crate::model::Kind::Service, 1),
        "objects outside the filter are not kept"
    );
}

mod churn;

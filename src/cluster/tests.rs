//! Record synthesis from model objects, as tables of (query, type) → zone-file text.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{ALL_KINDS, Cluster, Delta};
use crate::model::{
    Endpoint, EndpointSlice, Namespace, Object, ObjectKey, Pod, Port, Protocol, Service,
    ServiceKind, TargetPort,
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
    let target_ports = ports.iter().map(|p| TargetPort::Number(p.port)).collect();
    Object::Service(Service {
        key: ObjectKey::new(ns, name),
        kind,
        ports: ports.into(),
        target_ports,
        publish_not_ready: false,
        selector: selector
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
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
            ServiceKind::ClusterIp(ips(&["10.0.0.1"])),
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
        ServiceKind::ClusterIp(ips(&["10.0.0.1"])),
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
        ServiceKind::ClusterIp(ips(&["10.0.0.9"])),
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
        ServiceKind::ClusterIp(ips(&["10.0.0.1"])),
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
        ServiceKind::ClusterIp(ips(&["10.0.0.1"])),
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
    };
    let mut ep = endpoint("172.0.0.2", true, None);
    ep.pod_name = Some("web-7d9f".into());
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
            slice("ns", "svc-a", "svc", vec![ep], vec![port("http", 80)]),
            service(
                "hidden",
                "svc",
                ServiceKind::ClusterIp(ips(&["10.0.0.2"])),
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

#[test]
fn a_relist_of_unchanged_objects_does_not_churn_the_zone() {
    let mut c = example();
    let before = c.snapshot();
    let same = service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.1"])),
        vec![port("http", 80), port("", 81)],
        &[],
    );
    let relist = Delta::Reset {
        kind: crate::model::Kind::EndpointSlice,
        objects: vec![slice(
            "ns",
            "svc-a",
            "svc",
            vec![
                endpoint("172.0.0.2", true, None),
                endpoint("172.0.0.3", false, None),
            ],
            vec![port("http", 8080)],
        )],
        retain: vec![ObjectKey::new("ns", "hdls-a")],
    };
    assert!(
        c.apply([Delta::Upsert(same), relist]).is_none(),
        "nothing DNS-visible changed"
    );
    assert!(Arc::ptr_eq(&before, &c.snapshot()));
}

#[test]
fn an_address_shared_by_services_answers_for_each() {
    let ptr = "9.9.0.10.in-addr.arpa.";
    let headless = |name: &str, host: &str| {
        vec![
            service("ns", name, ServiceKind::Headless, vec![port("p", 1)], &[]),
            slice(
                "ns",
                name,
                name,
                vec![endpoint("10.0.9.9", true, Some(host))],
                vec![port("p", 1)],
            ),
        ]
    };
    let mut objects = headless("b", "y");
    objects.extend(headless("a", "x"));
    let mut c = cluster(objects);
    assert_eq!(
        text(&c, ptr, RecordType::PTR),
        "NoError\n9.9.0.10.in-addr.arpa. 5 IN PTR x.a.ns.svc.cluster.local.\n9.9.0.10.in-addr.arpa. 5 IN PTR y.b.ns.svc.cluster.local."
    );

    // A cluster IP wins over endpoint names; the first by name among several.
    let cluster_ip = |name: &str| {
        service(
            "ns",
            name,
            ServiceKind::ClusterIp(ips(&["10.0.9.9"])),
            vec![],
            &[],
        )
    };
    c.apply([cluster_ip("z"), cluster_ip("c")].map(Delta::Upsert));
    assert_eq!(
        text(&c, ptr, RecordType::PTR),
        "NoError\n9.9.0.10.in-addr.arpa. 5 IN PTR c.ns.svc.cluster.local."
    );
    c.apply([Delta::Remove(
        crate::model::Kind::Service,
        ObjectKey::new("ns", "c"),
    )]);
    assert_eq!(
        text(&c, ptr, RecordType::PTR),
        "NoError\n9.9.0.10.in-addr.arpa. 5 IN PTR z.ns.svc.cluster.local."
    );

    // An endpoint name hidden behind the cluster IP changes; removing the cluster IP shows it.
    let renamed = slice(
        "ns",
        "a",
        "a",
        vec![endpoint("10.0.9.9", true, Some("w"))],
        vec![port("p", 1)],
    );
    assert!(c.apply([Delta::Upsert(renamed)]).is_some());
    c.apply([Delta::Remove(
        crate::model::Kind::Service,
        ObjectKey::new("ns", "z"),
    )]);
    assert_eq!(
        text(&c, ptr, RecordType::PTR),
        "NoError\n9.9.0.10.in-addr.arpa. 5 IN PTR w.a.ns.svc.cluster.local.\n9.9.0.10.in-addr.arpa. 5 IN PTR y.b.ns.svc.cluster.local."
    );

    // One owner left, then none.
    c.apply([Delta::Remove(
        crate::model::Kind::Service,
        ObjectKey::new("ns", "b"),
    )]);
    assert_eq!(
        text(&c, ptr, RecordType::PTR),
        "NoError\n9.9.0.10.in-addr.arpa. 5 IN PTR w.a.ns.svc.cluster.local."
    );
    c.apply([Delta::Remove(
        crate::model::Kind::Service,
        ObjectKey::new("ns", "a"),
    )]);
    assert_eq!(text(&c, ptr, RecordType::PTR), "Refused");
}

/// One EndpointSlice change copies an amount of the snapshot that does not grow with the
/// zone: the changed Service's records, and the few shards of the Services and reverse maps
/// that hold its keys.
#[test]
fn one_slice_change_copies_the_same_amount_at_any_zone_size() {
    const ENDPOINTS: u32 = 10;
    let mut copied = Vec::new();
    for services in [500u32, 5000] {
        let config = Arc::new(ZoneConfig::new("cluster.local", 30, PodsMode::Disabled).unwrap());
        let mut cluster = Cluster::new(config, &ALL_KINDS);
        let addr = |s: u32, e: u32| {
            let n = s * ENDPOINTS + e;
            format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)
        };
        let slice_of = |s: u32, moved: bool| {
            let endpoints = (0..ENDPOINTS)
                .map(|e| match (e, moved) {
                    (0, true) => endpoint("192.0.2.1", true, None),
                    _ => endpoint(&addr(s, e), true, None),
                })
                .collect();
            slice(
                "ns",
                &format!("svc-{s}-0"),
                &format!("svc-{s}"),
                endpoints,
                vec![port("http", 8080)],
            )
        };
        let mut deltas: Vec<Delta> = (0..services)
            .flat_map(|s| {
                let svc = service(
                    "ns",
                    &format!("svc-{s}"),
                    ServiceKind::Headless,
                    vec![port("http", 80)],
                    &[],
                );
                [Delta::Upsert(svc), Delta::Upsert(slice_of(s, false))]
            })
            .collect();
        deltas.extend(ALL_KINDS.map(Delta::Synced));
        let before = cluster.apply(deltas).unwrap();
        assert_eq!(before.services.len(), services as usize);
        assert_eq!(before.reverse.len(), (services * ENDPOINTS) as usize);

        let after = cluster
            .apply([Delta::Upsert(slice_of(services / 2, true))])
            .expect("the change is visible");
        let moved: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(after.reverse.get(&moved).is_some() && before.reverse.get(&moved).is_none());
        let services_copied = after.services.unshared_entries(&before.services);
        let reverse_copied = after.reverse.unshared_entries(&before.reverse);
        // One Service key and 11 addresses touched: each copies one shard of at most a few
        // times 64 entries, at either size.
        assert!(services_copied <= 256, "{services_copied} Services copied");
        assert!(
            reverse_copied <= 11 * 256,
            "{reverse_copied} reverse entries copied"
        );
        copied.push(reverse_copied);
    }
    // Ten times the zone: not ten times the copy.
    assert!(
        copied[1] < copied[0] * 3,
        "reverse entries copied at 5k and 50k endpoints: {copied:?}"
    );
}

/// A batch large enough to be built on several threads gives the records one thread builds
/// from the same objects in small batches.
#[test]
fn a_large_batch_built_in_parallel_equals_small_batches() {
    let objects: Vec<Object> = (0..6000u32)
        .flat_map(|s| {
            let (kind, ns) = if s % 3 == 0 {
                (ServiceKind::Headless, "db")
            } else {
                let ip = format!("10.96.{}.{}", s >> 8, s & 255);
                (ServiceKind::ClusterIp(ips(&[&ip])), "web")
            };
            let name = format!("svc-{s}");
            let endpoints = (0..3u32)
                .map(|e| {
                    let host = format!("{name}-{e}");
                    let ip = format!("10.{}.{}.{}", 100 + e, s >> 8, s & 255);
                    endpoint(&ip, e != 2, (s % 2 == 0).then_some(host.as_str()))
                })
                .collect();
            [
                service(ns, &name, kind, vec![port("http", 80)], &[]),
                slice(
                    ns,
                    &format!("{name}-0"),
                    &name,
                    endpoints,
                    vec![port("http", 8080)],
                ),
            ]
        })
        .collect();
    let config = Arc::new(ZoneConfig::new("cluster.local", 5, PodsMode::Disabled).unwrap());
    let mut one = Cluster::new(Arc::clone(&config), &ALL_KINDS);
    let mut deltas: Vec<Delta> = objects.iter().cloned().map(Delta::Upsert).collect();
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    let whole = one.apply(deltas).unwrap();

    let mut small = Cluster::new(config, &ALL_KINDS);
    let mut parts = None;
    for chunk in objects.chunks(1000) {
        parts = small
            .apply(chunk.iter().cloned().map(Delta::Upsert).collect::<Vec<_>>())
            .or(parts);
    }
    let parts = small.apply(ALL_KINDS.map(Delta::Synced)).or(parts).unwrap();

    assert_eq!(whole.services.len(), 6000);
    assert_eq!(whole.services.len(), parts.services.len());
    // 4000 cluster IPs and two ready endpoints of each Service (the third is not ready).
    assert_eq!(whole.reverse.len(), 4000 + 6000 * 2);
    let without_id = |r: &ServiceRecords| ServiceRecords { id: 0, ..r.clone() };
    for (key, records) in whole.services.iter() {
        let other = parts.services.get(key).expect("the same Services");
        assert_eq!(without_id(records), without_id(other));
        assert_eq!(
            whole.by_id.get(&records.id).map(|r| &r.name),
            Some(&records.name)
        );
    }
    for name in [
        "svc-3.db.svc.cluster.local.",
        "svc-6-0.svc-6.db.svc.cluster.local.",
        "0.6.100.10.in-addr.arpa.",
        "7.0.96.10.in-addr.arpa.",
    ] {
        for qtype in [RecordType::A, RecordType::PTR, RecordType::SRV] {
            let answer = text(&one, name, qtype);
            assert!(answer.starts_with("NoError"), "{name} {qtype}: {answer}");
            assert_eq!(answer, text(&small, name, qtype), "{name} {qtype}");
        }
    }
}

//! Relists, shared addresses and the cost of one change: what a changing cluster does to
//! the zone.

use super::*;

#[test]
fn a_relist_of_unchanged_objects_does_not_churn_the_zone() {
    let mut c = example();
    let before = c.snapshot();
    let same = service(
        "ns",
        "svc",
        ServiceKind::ClusterIp(ips(&["10.0.0.1"]).into()),
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
            ServiceKind::ClusterIp(ips(&["10.0.9.9"]).into()),
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
                (ServiceKind::ClusterIp(ips(&[&ip]).into()), "web")
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
    for records in whole.services.iter() {
        let other = parts
            .services
            .get_name(records.namespace.as_bytes(), records.name.as_bytes())
            .expect("the same Services");
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

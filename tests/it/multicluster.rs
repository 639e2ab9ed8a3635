//! `--multicluster-zone`: ServiceImports and multicluster EndpointSlices (KEP-1645) answered
//! under the clusterset zone over real sockets, from manifests and from the API alike, with
//! the cluster zone left as it was.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually};
use hickory_proto::rr::RecordType::{self, A, AAAA, NS, PTR, SOA, SRV, TXT};
use serde_json::Value;

const ZONE: [&str; 2] = ["--multicluster-zone", "clusterset.local"];

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multicluster/clusterset.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// Applies every document of `yaml` to the emulator.
pub fn apply_yaml(api: &ApiServer, yaml: &str) {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = <Value as serde::Deserialize>::deserialize(doc).unwrap();
        if !value.is_null() {
            api.apply(value);
        }
    }
}

const SOA_LINE: &str = ";authority clusterset.local. 30 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. SERIAL 7200 1800 86400 30";

/// (query, type, the reply as zone text; `NODATA`/`NXDOMAIN` stand for the negative answer
/// with the SOA).
const TABLE: &[(&str, RecordType, &str)] = &[
    // ClusterSetIP.
    (
        "web.shop.svc.clusterset.local.",
        A,
        "NoError aa\n;answer web.shop.svc.clusterset.local. 30 IN A 10.42.0.1",
    ),
    ("web.shop.svc.clusterset.local.", AAAA, "NODATA"),
    (
        "_http._tcp.web.shop.svc.clusterset.local.",
        SRV,
        "NoError aa\n;answer _http._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 80 web.shop.svc.clusterset.local.\n;additional web.shop.svc.clusterset.local. 30 IN A 10.42.0.1",
    ),
    ("_tcp.web.shop.svc.clusterset.local.", SRV, "NODATA"),
    // No per-cluster names for a ClusterSetIP import (§2.3.4).
    ("cluster-a.web.shop.svc.clusterset.local.", A, "NXDOMAIN"),
    // Headless: the ready endpoints of both clusters.
    (
        "db.data.svc.clusterset.local.",
        A,
        "NoError aa\n;answer db.data.svc.clusterset.local. 30 IN A 10.1.0.1\n;answer db.data.svc.clusterset.local. 30 IN A 10.1.0.2\n;answer db.data.svc.clusterset.local. 30 IN A 10.2.0.1",
    ),
    ("db.data.svc.clusterset.local.", AAAA, "NODATA"),
    (
        "db-0.cluster-a.db.data.svc.clusterset.local.",
        A,
        "NoError aa\n;answer db-0.cluster-a.db.data.svc.clusterset.local. 30 IN A 10.1.0.1",
    ),
    (
        "DB-0.Cluster-B.db.data.svc.clusterset.local.",
        A,
        "NoError aa\n;answer DB-0.Cluster-B.db.data.svc.clusterset.local. 30 IN A 10.2.0.1",
    ),
    (
        "10-1-0-2.cluster-a.db.data.svc.clusterset.local.",
        A,
        "NoError aa\n;answer 10-1-0-2.cluster-a.db.data.svc.clusterset.local. 30 IN A 10.1.0.2",
    ),
    // Not ready: no name.
    (
        "db-2.cluster-a.db.data.svc.clusterset.local.",
        A,
        "NXDOMAIN",
    ),
    (
        "db-0.cluster-c.db.data.svc.clusterset.local.",
        A,
        "NXDOMAIN",
    ),
    ("cluster-a.db.data.svc.clusterset.local.", A, "NODATA"),
    ("cluster-c.db.data.svc.clusterset.local.", A, "NXDOMAIN"),
    (
        "_sql._tcp.db.data.svc.clusterset.local.",
        SRV,
        "NoError aa\n;answer _sql._tcp.db.data.svc.clusterset.local. 30 IN SRV 0 33 5432 10-1-0-2.cluster-a.db.data.svc.clusterset.local.\n;answer _sql._tcp.db.data.svc.clusterset.local. 30 IN SRV 0 33 5432 db-0.cluster-a.db.data.svc.clusterset.local.\n;answer _sql._tcp.db.data.svc.clusterset.local. 30 IN SRV 0 33 5432 db-0.cluster-b.db.data.svc.clusterset.local.\n;additional 10-1-0-2.cluster-a.db.data.svc.clusterset.local. 30 IN A 10.1.0.2\n;additional db-0.cluster-a.db.data.svc.clusterset.local. 30 IN A 10.1.0.1\n;additional db-0.cluster-b.db.data.svc.clusterset.local. 30 IN A 10.2.0.1",
    ),
    ("_sql._udp.db.data.svc.clusterset.local.", SRV, "NXDOMAIN"),
    // Unknown names, namespaces with and without imports.
    ("nope.shop.svc.clusterset.local.", A, "NXDOMAIN"),
    ("shop.svc.clusterset.local.", A, "NODATA"),
    ("kube-system.svc.clusterset.local.", A, "NXDOMAIN"),
    ("10-1-0-1.data.pod.clusterset.local.", A, "NXDOMAIN"),
    // The apex and the schema version.
    (
        "clusterset.local.",
        SOA,
        "NoError aa\n;answer clusterset.local. 30 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. SERIAL 7200 1800 86400 30",
    ),
    (
        "clusterset.local.",
        NS,
        "NoError aa\n;answer clusterset.local. 30 IN NS ns.dns.clusterset.local.",
    ),
    (
        "dns-version.clusterset.local.",
        TXT,
        "NoError aa\n;answer dns-version.clusterset.local. 28800 IN TXT 1.0.0",
    ),
    // The cluster zone keeps its own endpoints only.
    (
        "db.data.svc.cluster.local.",
        A,
        "NoError aa\n;answer db.data.svc.cluster.local. 30 IN A 10.244.0.9",
    ),
    (
        "db-0.db.data.svc.cluster.local.",
        A,
        "NoError aa\n;answer db-0.db.data.svc.cluster.local. 30 IN A 10.244.0.9",
    ),
    ("web.shop.svc.cluster.local.", A, "NXDOMAIN"),
];

fn expected(want: &str) -> String {
    match want {
        "NODATA" => format!("NoError aa\n{SOA_LINE}"),
        "NXDOMAIN" => format!("NXDomain aa\n{SOA_LINE}"),
        w => w.to_owned(),
    }
}

fn cluster_soa(got: &str) -> String {
    // The cluster zone's negative answers carry its own SOA.
    got.replace(
        ";authority cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 30",
        SOA_LINE,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusterset_zone_from_manifests_and_from_the_api() {
    let yaml = example();
    let m = TestServer::with_files(&[("clusterset.yaml", &yaml)], &ZONE).await;
    for (name, qtype, want) in TABLE {
        let got = cluster_soa(&ask(m.addr, name, *qtype).await);
        assert_eq!(got, expected(want), "{name} {qtype}");
    }
    // No PTR for clusterset IPs: the reverse zones stay with the cluster zone.
    let got = ask(m.addr, "1.0.42.10.in-addr.arpa.", PTR).await;
    assert!(!got.contains("clusterset"), "{got}");

    let api = ApiServer::start().await;
    apply_yaml(&api, &yaml);
    let k = TestServer::kube(&api, &ZONE).await;
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("/apis/multicluster.x-k8s.io/v1alpha1/serviceimports")),
        "ServiceImports are watched: {:?}",
        api.requests()
    );
    for (name, qtype, _) in TABLE {
        let from_manifests = ask(m.addr, name, *qtype).await;
        let from_api = ask(k.addr, name, *qtype).await;
        assert_eq!(from_api, from_manifests, "{name} {qtype}");
    }

    // A third cluster exports its endpoints; then the import goes.
    api.apply(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-cluster-c", "namespace": "data", "labels": {
            "multicluster.kubernetes.io/service-name": "db",
            "multicluster.kubernetes.io/source-cluster": "cluster-c"}},
        "addressType": "IPv6",
        "endpoints": [{"addresses": ["fd00:3::1"], "hostname": "db-0"}],
        "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
    }));
    let within = Duration::from_secs(10);
    let got = eventually(
        k.addr,
        "db-0.cluster-c.db.data.svc.clusterset.local.",
        AAAA,
        within,
        |t| t.contains("fd00:3::1"),
    )
    .await;
    assert!(got.starts_with("NoError aa\n;answer"), "{got}");
    assert!(api.delete(
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceImport",
        "data",
        "db"
    ));
    let got = eventually(k.addr, "db.data.svc.clusterset.local.", A, within, |t| {
        t.starts_with("NXDomain")
    })
    .await;
    assert!(got.starts_with("NXDomain aa"), "{got}");
    let got = ask(k.addr, "db.data.svc.cluster.local.", A).await;
    assert!(
        got.contains("10.244.0.9") && !got.contains("10.1.0.1"),
        "{got}"
    );
    m.running.shutdown().await;
    k.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_there_is_no_clusterset_zone() {
    let s = TestServer::with_files(&[("clusterset.yaml", &example())], &[]).await;
    let got = ask(s.addr, "web.shop.svc.clusterset.local.", A).await;
    assert!(got.starts_with("Refused"), "{got}");
    let got = ask(s.addr, "db.data.svc.cluster.local.", A).await;
    assert!(
        got.contains("10.244.0.9") && !got.contains("10.1.0.1"),
        "{got}"
    );
}

#[test]
fn a_clusterset_zone_overlapping_another_is_refused() {
    for zone in ["cluster.local", "svc.cluster.local", "local", "example.com"] {
        let err = clusterdns::zone::ZoneConfig::new(
            "cluster.local",
            30,
            clusterdns::zone::PodsMode::Insecure,
        )
        .and_then(|z| z.with_external_zones(&["example.com".to_owned()]))
        .and_then(|z| z.with_clusterset_zone(Some(zone)))
        .expect_err(zone)
        .to_string();
        assert!(
            err.contains("--multicluster-zone") && err.contains("overlaps"),
            "{zone}: {err}"
        );
    }
}

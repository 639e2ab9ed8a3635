//! The Kubernetes API source against an API server emulator speaking the real list/watch
//! protocol over HTTP: every change shows in DNS, outages serve the last state, relists
//! recover, readiness follows sync.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use clusterdns::app::Running;
use common::apiserver::ApiServer;
use common::{TestServer, ask, eventually, http_get};
use hickory_proto::rr::RecordType::{self, A, CNAME, SRV};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(10);

struct Kube {
    api: ApiServer,
    dns: Running,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start_against(api: ApiServer, extra: &[&str]) -> Kube {
    let mut args = extra.to_vec();
    if !extra.contains(&"--startup-timeout") {
        args.extend_from_slice(&["--startup-timeout", "3s"]);
    }
    let s = TestServer::kube(&api, &args).await;
    Kube {
        api,
        dns: s.running,
        addr: s.addr,
        _dir: s.dir,
    }
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn cluster_ip(ns: &str, name: &str, ip: &str, port_name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": port_name, "port": 80, "protocol": "TCP"}]}})
}

fn external(ns: &str, name: &str, target: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"type": "ExternalName", "externalName": target}})
}

fn headless(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})
}

fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    endpoints: &[(&str, bool)],
    trigger: Option<&str>,
) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    let mut meta =
        json!({"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}});
    if let Some(t) = trigger {
        meta["annotations"] = json!({"endpoints.kubernetes.io/last-change-trigger-time": t});
    }
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
           "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}

async fn wait_for(k: &Kube, name: &str, qtype: RecordType, want: &str) {
    let got = eventually(k.addr, name, qtype, WITHIN, |t| t.contains(want)).await;
    assert!(
        got.contains(want),
        "{name} {qtype}: want {want:?} in\n{got}"
    );
}

async fn wait_rcode(k: &Kube, name: &str, qtype: RecordType, rcode: &str) {
    let got = eventually(k.addr, name, qtype, WITHIN, |t| t.starts_with(rcode)).await;
    assert!(
        got.starts_with(rcode),
        "{name} {qtype}: want {rcode}, got\n{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_creates_updates_and_deletes() {
    let api = ApiServer::start().await;
    api.apply(namespace("shop"));
    api.apply(external("shop", "pay", "pay.example.com"));
    api.apply(headless("shop", "db"));
    api.apply(slice(
        "shop",
        "db-1",
        "db",
        &[("10.244.0.1", true), ("10.244.0.2", false)],
        None,
    ));
    let k = start_against(api, &[]).await;
    let (code, _) = http_get(k.dns.metrics_addr, "/readyz").await;
    assert_eq!(code, 200, "ready once synced");

    wait_for(
        &k,
        "pay.shop.svc.cluster.local.",
        CNAME,
        "CNAME pay.example.com.",
    )
    .await;
    let db = "db.shop.svc.cluster.local.";
    wait_for(&k, db, A, "10.244.0.1").await;
    assert!(
        !ask(k.addr, db, A).await.contains("10.244.0.2"),
        "not-ready endpoint left out"
    );

    // ExternalName becomes ClusterIP.
    k.api.apply(cluster_ip("shop", "pay", "10.96.0.50", "http"));
    wait_for(&k, "pay.shop.svc.cluster.local.", A, "A 10.96.0.50").await;

    // An endpoint becomes ready, another not ready.
    k.api.apply(slice(
        "shop",
        "db-1",
        "db",
        &[("10.244.0.1", false), ("10.244.0.2", true)],
        None,
    ));
    let got = eventually(k.addr, db, A, WITHIN, |t| {
        t.contains("10.244.0.2") && !t.contains("10.244.0.1")
    })
    .await;
    assert!(
        got.contains("10.244.0.2") && !got.contains("10.244.0.1"),
        "{got}"
    );

    // A port renamed: the old SRV name goes, the new one comes.
    wait_for(
        &k,
        "_http._tcp.pay.shop.svc.cluster.local.",
        SRV,
        "SRV 0 100 80",
    )
    .await;
    k.api.apply(cluster_ip("shop", "pay", "10.96.0.50", "web"));
    wait_for(
        &k,
        "_web._tcp.pay.shop.svc.cluster.local.",
        SRV,
        "SRV 0 100 80",
    )
    .await;
    wait_rcode(
        &k,
        "_http._tcp.pay.shop.svc.cluster.local.",
        SRV,
        "NXDomain",
    )
    .await;

    // Deletes.
    k.api.delete("v1", "Service", "shop", "pay");
    wait_rcode(&k, "pay.shop.svc.cluster.local.", A, "NXDomain").await;
    k.api
        .delete("discovery.k8s.io/v1", "EndpointSlice", "shop", "db-1");
    wait_rcode(&k, db, A, "NXDomain").await;
    k.api.delete("v1", "Service", "shop", "db");
    k.api.delete("v1", "Namespace", "", "shop");
    wait_rcode(&k, "shop.svc.cluster.local.", A, "NXDomain").await;

    let (_, metrics) = http_get(k.dns.metrics_addr, "/metrics").await;
    for name in [
        "clusterdns_kubernetes_relists_total{kind=\"Service\"}",
        "clusterdns_kubernetes_objects{kind=\"EndpointSlice\"}",
        "clusterdns_dns_requests_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"}",
        "clusterdns_dns_responses_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",rcode=\"NXDOMAIN\",plugin=\"\"}",
        "clusterdns_zone_serial",
    ] {
        assert!(metrics.contains(name), "/metrics has {name}:\n{metrics}");
    }
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_the_last_state_and_a_restart_catches_up() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("a", "one", "10.96.1.1", "http"));
    api.apply(cluster_ip("a", "two", "10.96.1.2", "http"));
    let k = start_against(api, &[]).await;
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;

    k.api.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        ask(k.addr, "one.a.svc.cluster.local.", A)
            .await
            .contains("10.96.1.1"),
        "last state served during the outage"
    );
    assert_eq!(
        http_get(k.dns.metrics_addr, "/readyz").await.0,
        200,
        "readiness stays once reached"
    );

    // Changes made while clusterdns cannot see them; history compacted, so a relist is needed.
    k.api.delete("v1", "Service", "a", "two");
    k.api.apply(cluster_ip("a", "three", "10.96.1.3", "http"));
    k.api.compact();
    k.api.restart().await;
    // Reconnects back off exponentially (kube's default, capped at 30 s, as client-go's).
    let got = eventually(
        k.addr,
        "three.a.svc.cluster.local.",
        A,
        Duration::from_secs(45),
        |t| t.contains("10.96.1.3"),
    )
    .await;
    assert!(
        got.contains("10.96.1.3"),
        "caught up after the restart: {got}"
    );
    wait_rcode(&k, "two.a.svc.cluster.local.", A, "NXDomain").await;
    assert!(
        ask(k.addr, "one.a.svc.cluster.local.", A)
            .await
            .contains("10.96.1.1")
    );
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_forces_a_relist_that_recovers() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("a", "one", "10.96.1.1", "http"));
    let k = start_against(api, &[]).await;
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    let relists = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("clusterdns_kubernetes_relists_total{kind=\"Service\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    let before = relists(&http_get(k.dns.metrics_addr, "/metrics").await.1);

    // Keep the watcher out while the history it would resume from is compacted away.
    k.api.set_failing(true);
    k.api.drop_connections();
    k.api.apply(cluster_ip("a", "one", "10.96.1.9", "http"));
    k.api.delete("v1", "Service", "a", "one");
    k.api.apply(cluster_ip("a", "four", "10.96.1.4", "http"));
    k.api.compact();
    k.api.set_failing(false);
    let got = eventually(
        k.addr,
        "four.a.svc.cluster.local.",
        A,
        Duration::from_secs(45),
        |t| t.contains("10.96.1.4"),
    )
    .await;
    assert!(
        got.contains("10.96.1.4"),
        "relist brought the new object: {got}"
    );
    wait_rcode(&k, "one.a.svc.cluster.local.", A, "NXDomain").await;
    let after = relists(&http_get(k.dns.metrics_addr, "/metrics").await.1);
    assert!(
        after > before,
        "the 410 caused a counted relist: {before} -> {after}"
    );
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_with_the_api_down_answers_servfail_then_recovers() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    api.apply(cluster_ip("a", "one", "10.96.1.1", "http"));
    api.set_failing(true);
    let k = start_against(api, &["--startup-timeout", "500ms"]).await;
    let got = ask(k.addr, "one.a.svc.cluster.local.", A).await;
    assert!(got.starts_with("ServFail"), "unknown while unsynced: {got}");
    assert_eq!(
        http_get(k.dns.metrics_addr, "/readyz").await.0,
        503,
        "not ready before sync"
    );
    assert_eq!(
        http_get(k.dns.metrics_addr, "/healthz").await.0,
        200,
        "alive all the same"
    );

    k.api.set_failing(false);
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    wait_rcode(&k, "nope.a.svc.cluster.local.", A, "NXDomain").await;
    assert_eq!(http_get(k.dns.metrics_addr, "/readyz").await.0, 200);
    k.dns.shutdown().await;
}

/// Serves Service `one` from `api`, then adds `two`: both must answer (the list, then a
/// watch event).
async fn list_then_watch(api: ApiServer) -> Kube {
    api.apply(namespace("a"));
    api.apply(cluster_ip("a", "one", "10.96.1.1", "http"));
    let k = start_against(api, &[]).await;
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    k.api.apply(cluster_ip("a", "two", "10.96.1.2", "http"));
    wait_for(&k, "two.a.svc.cluster.local.", A, "10.96.1.2").await;
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_paged_lists_without_streaming_support() {
    let api = ApiServer::start().await;
    api.set_streaming_lists_supported(false);
    let k = list_then_watch(api).await;
    k.dns.shutdown().await;
}

/// Objects are read as text from watch events whose type comes first, as the API server
/// writes them; from a server that writes the object first, the list starts again reading
/// JSON trees, still streaming, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_the_object_before_the_type_are_read_as_trees() {
    let api = ApiServer::start().await;
    api.set_objects_before_types(true);
    let k = list_then_watch(api).await;
    let requests = k.api.requests();
    let lists = |all: &[String]| -> usize {
        all.iter()
            .filter(|r| r.contains("/services?") && r.contains("sendInitialEvents=true"))
            .count()
    };
    assert_eq!(
        lists(&requests),
        2,
        "a second streaming list: {requests:#?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("/services?") && r.contains("limit=")),
        "no paged list: {requests:#?}"
    );
    k.dns.shutdown().await;
}

/// Paged lists read their items as text too; a watch event whose object comes first makes the
/// watcher list again, still paged, reading trees, and the change it carried is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_lists_then_events_with_the_object_first_are_read_as_trees() {
    let api = ApiServer::start().await;
    api.set_streaming_lists_supported(false);
    api.set_objects_before_types(true);
    let k = list_then_watch(api).await;
    let requests = k.api.requests();
    let paged = requests
        .iter()
        .filter(|r| r.contains("/services?") && r.contains("limit=") && !r.contains("watch="))
        .count();
    assert_eq!(paged, 2, "a second paged list: {requests:#?}");
    k.dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_filter_and_programming_latency() {
    let api = ApiServer::start().await;
    for ns in ["a", "b"] {
        api.apply(namespace(ns));
        api.apply(cluster_ip(ns, "one", "10.96.1.1", "http"));
    }
    let k = start_against(api, &["--namespaces", "a"]).await;
    wait_for(&k, "one.a.svc.cluster.local.", A, "10.96.1.1").await;
    wait_rcode(&k, "one.b.svc.cluster.local.", A, "NXDomain").await;
    wait_rcode(&k, "b.svc.cluster.local.", A, "NXDomain").await;

    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    k.api.apply(slice(
        "a",
        "one-x",
        "one",
        &[("10.244.0.1", true)],
        Some(&now),
    ));
    wait_for(&k, "10-244-0-1.one.a.svc.cluster.local.", A, "10.244.0.1").await;
    let (_, metrics) = http_get(k.dns.metrics_addr, "/metrics").await;
    let count = metrics
        .lines()
        .find(|l| l.starts_with("clusterdns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"cluster_ip\"}"))
        .unwrap_or_else(|| panic!("programming latency recorded:\n{metrics}"));
    assert!(count.ends_with(" 1"), "{count}");
    k.dns.shutdown().await;
}

/// Loads every object of `examples/cluster` into the emulator.
fn load_example(api: &ApiServer) {
    for path in clusterdns::source::manifests::list_files(&common::example_dir()).unwrap() {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = if path.extension().is_some_and(|e| e == "json") {
            vec![serde_json::from_str(&text).unwrap()]
        } else {
            serde_yaml_ng::Deserializer::from_str(&text)
                .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
                .collect()
        };
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if matches!(kind, "Namespace" | "Service" | "EndpointSlice" | "Pod") {
                api.apply(doc);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_the_manifests_do() {
    let api = ApiServer::start().await;
    load_example(&api);
    // Pods are watched with --pods verified, so selector-derived endpoints work the same.
    let k = start_against(api, &["--pods", "verified"]).await;
    let m = common::TestServer::example(&["--pods", "verified"]).await;
    let queries: &[(&str, RecordType)] = &[
        ("web.shop.svc.cluster.local.", A),
        ("api.shop.svc.cluster.local.", RecordType::AAAA),
        ("_http._tcp.web.shop.svc.cluster.local.", SRV),
        ("web.shop.svc.cluster.local.", SRV),
        ("db.data.svc.cluster.local.", A),
        ("_postgres._tcp.db.data.svc.cluster.local.", SRV),
        ("db-0.db.data.svc.cluster.local.", A),
        ("search.shop.svc.cluster.local.", A),
        ("10-244-1-50.search.shop.svc.cluster.local.", A),
        ("cache-1.cache.data.svc.cluster.local.", A),
        ("queue.data.svc.cluster.local.", A),
        ("empty.data.svc.cluster.local.", A),
        ("payments.shop.svc.cluster.local.", CNAME),
        ("cluster.local.", RecordType::NS),
        ("10.0.96.10.in-addr.arpa.", RecordType::PTR),
        ("30.1.244.10.in-addr.arpa.", RecordType::PTR),
        ("10-244-1-50.shop.pod.cluster.local.", A),
        ("10-244-9-9.shop.pod.cluster.local.", A),
        ("nope.shop.svc.cluster.local.", A),
        ("dns-version.cluster.local.", RecordType::TXT),
    ];
    for (name, qtype) in queries {
        let from_manifests = ask(m.addr, name, *qtype).await;
        let from_api = ask(k.addr, name, *qtype).await;
        assert_eq!(from_api, from_manifests, "{name} {qtype}");
    }
    m.running.shutdown().await;
    k.dns.shutdown().await;
}

fn pod(ns: &str, name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "x"}]},
           "status": {"podIP": ip, "podIPs": [{"ip": ip}], "conditions": [{"type": "Ready", "status": "True"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_pod_records_follow_pods() {
    let api = ApiServer::start().await;
    api.apply(namespace("a"));
    let k = start_against(api, &["--pods", "verified"]).await;
    let name = "10-244-0-7.a.pod.cluster.local.";
    wait_rcode(&k, name, A, "NXDomain").await;
    k.api.apply(pod("a", "p", "10.244.0.7"));
    wait_for(&k, name, A, "A 10.244.0.7").await;
    k.api.delete("v1", "Pod", "a", "p");
    wait_rcode(&k, name, A, "NXDomain").await;
    k.dns.shutdown().await;
}

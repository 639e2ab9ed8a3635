//! Who is asking (`--top-clients`, `--pods verified`): pods with loopback addresses in the
//! manifests send a scripted mix of queries from those addresses, search-list walks with a
//! known waste among them; `/debug/clients` and `clusterdns_client_requests_total` must say
//! exactly that. And the figures stay bounded when thousands of addresses ask.

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::upstream::FakeUpstream;
use common::{TestServer, http_get, metric, query};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;
use tokio::net::UdpSocket;

/// A pod of the test with a loopback address, as a manifest.
fn pod(namespace: &str, name: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  containers:\n    - name: app\n      image: app\nstatus:\n  phase: Running\n  \
         podIP: {ip}\n  podIPs:\n    - ip: {ip}\n"
    )
}

/// Asks `name` from `from` (a loopback address): the reply.
async fn ask_from(from: Ipv4Addr, server: SocketAddr, name: &str) -> Message {
    let sock = UdpSocket::bind((from, 0)).await.unwrap();
    let bytes = query(name, RecordType::A, None).to_vec().unwrap();
    sock.send_to(&bytes, server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("a reply")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

/// What a pod's stub resolver does with `ndots:5` for `name`: each search step in turn
/// until one is not NXDOMAIN. The response codes seen.
async fn resolve(from: Ipv4Addr, server: SocketAddr, ns: &str, name: &str) -> Vec<ResponseCode> {
    let mut seen = Vec::new();
    for suffix in [
        format!(".{ns}.svc.cluster.local."),
        ".svc.cluster.local.".into(),
        ".cluster.local.".into(),
        ".".into(),
    ] {
        let rcode = ask_from(from, server, &format!("{name}{suffix}"))
            .await
            .metadata
            .response_code;
        seen.push(rcode);
        if rcode != ResponseCode::NXDomain {
            break;
        }
    }
    seen
}

async fn report(s: &TestServer) -> Value {
    let (status, body) = http_get(s.running.metrics_addr, "/debug/clients").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls the report until its clients' five-minute queries add up to `total`.
async fn report_with(s: &TestServer, total: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = report(s).await;
        let sum: u64 = r["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["last_five_minutes"]["queries"].as_u64().unwrap())
            .sum();
        if sum >= total {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{total} queries counted: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FRONTEND: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const BATCH: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);
const WORKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 13);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);

async fn server(top: &str) -> (TestServer, FakeUpstream) {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let u = up.addr().to_string();
    let s =
        TestServer::example(&["--pods", "verified", "--top-clients", top, "--upstream", &u]).await;
    let pods = [
        pod("shop", "frontend-0", "127.0.0.11"),
        pod("data", "batch-0", "127.0.0.12"),
        pod("data", "worker-0", "127.0.0.13"),
    ]
    .concat();
    std::fs::write(s.path("zz-clients.yaml"), pods).unwrap();
    // Verified pod records answer once the pods are in the zone.
    let pod_a = "127-0-0-13.data.pod.cluster.local.";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ask_from(STRANGER, s.addr, pod_a).await.answers.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the test's pods loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (s, up)
}

#[tokio::test]
async fn the_top_clients_show_each_pods_queries_nxdomains_and_search_list_waste() {
    let (s, _up) = server("20").await;
    let a = s.addr;
    // frontend-0 (shop): www.example.com walks the whole search list (3 NXDOMAIN, then the
    // forwarded answer), then web is found at the first step.
    let nx = ResponseCode::NXDomain;
    let ok = ResponseCode::NoError;
    assert_eq!(
        resolve(FRONTEND, a, "shop", "www.example.com").await,
        [nx, nx, nx, ok]
    );
    assert_eq!(resolve(FRONTEND, a, "shop", "web").await, [ok]);
    // batch-0 (data): a Service of another namespace by its full name, dots < ndots: three
    // wasted steps before the name itself.
    assert_eq!(
        resolve(BATCH, a, "data", "api.shop.svc.cluster.local").await,
        [nx, nx, nx, ok]
    );
    // worker-0 (data): one NXDOMAIN that nothing follows (no waste), five good answers.
    assert_eq!(
        ask_from(WORKER, a, "nope.data.svc.cluster.local.")
            .await
            .metadata
            .response_code,
        nx
    );
    for _ in 0..5 {
        assert_eq!(
            ask_from(WORKER, a, "web.shop.svc.cluster.local.")
                .await
                .metadata
                .response_code,
            ok
        );
    }
    // The stranger (no pod): counted under its address.
    for _ in 0..2 {
        ask_from(STRANGER, a, "web.shop.svc.cluster.local.").await;
    }
    // The readiness loop above asked 127-0-0-13... from the stranger too: count them.
    let r = report_with(&s, 18).await;
    let clients = r["clients"].as_array().unwrap();
    let row = |c: &str| -> (String, u64, u64, u64) {
        let v = clients
            .iter()
            .find(|x| x["client"] == c)
            .unwrap_or_else(|| panic!("{c} in {r}"));
        let w = &v["last_five_minutes"];
        assert_eq!(v["last_minute"], *w, "{c}: all within the minute");
        (
            v["namespace"].as_str().unwrap().to_owned(),
            w["queries"].as_u64().unwrap(),
            w["nxdomain"].as_u64().unwrap(),
            w["search_misses"].as_u64().unwrap(),
        )
    };
    assert_eq!(row("shop/frontend-0"), ("shop".into(), 5, 3, 3));
    assert_eq!(row("data/batch-0"), ("data".into(), 4, 3, 3));
    assert_eq!(row("data/worker-0"), ("data".into(), 6, 1, 0));
    let (ns, stranger_queries, _, misses) = row("127.0.0.99");
    assert_eq!((ns.as_str(), misses), ("", 0));
    assert!(stranger_queries >= 3, "2 and the readiness polls");
    // Ordered by queries, most first.
    let order: Vec<&str> = clients
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|c| std::cmp::Reverse(row(c).1));
    assert_eq!(order, sorted);
    // The namespace counter.
    let series = |ns: &str, rcode: &str| {
        metric(
            &s,
            &format!("clusterdns_client_requests_total{{namespace=\"{ns}\",rcode=\"{rcode}\"}}"),
        )
    };
    assert_eq!(series("shop", "NXDOMAIN"), 3.0);
    assert_eq!(series("shop", "NOERROR"), 2.0);
    assert_eq!(series("data", "NXDOMAIN"), 4.0);
    assert_eq!(series("data", "NOERROR"), 6.0);
    assert_eq!(metric(&s, "clusterdns_client_stats_dropped_total"), 0.0);
}

#[tokio::test]
async fn the_figures_stay_bounded_whatever_asks() {
    let (s, _up) = server("3").await;
    // 1,500 addresses that are no pod, one query each, and the pods, many each.
    for i in 0..1500u16 {
        let from = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1);
        ask_from(from, s.addr, "web.shop.svc.cluster.local.").await;
    }
    for from in [FRONTEND, BATCH, WORKER] {
        for _ in 0..20 {
            ask_from(from, s.addr, "web.shop.svc.cluster.local.").await;
        }
    }
    let r = report_with(&s, 60).await;
    let clients = r["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 3, "the top 3 only: {r}");
    for c in clients {
        assert!(
            c["client"].as_str().unwrap().contains('/'),
            "the pods lead: {r}"
        );
    }
    let tracked = r["tracked"].as_u64().unwrap();
    assert!(
        tracked <= 1000,
        "at most 1000 clients tracked, not {tracked}"
    );
    // Every address that is no pod shares one namespace series.
    let text = s.running.metrics.encode();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("clusterdns_client_requests_total{"))
        .collect();
    for l in &series {
        assert!(
            ["namespace=\"\"", "namespace=\"shop\"", "namespace=\"data\""]
                .iter()
                .any(|ns| l.contains(ns)),
            "one series per namespace and rcode, the addresses that are no pod in one: {series:?}"
        );
    }
    let strangers = metric(
        &s,
        "clusterdns_client_requests_total{namespace=\"\",rcode=\"NOERROR\"}",
    );
    assert!(strangers >= 1500.0, "{strangers}");
}

#[tokio::test]
async fn the_figures_name_the_pods_the_api_watch_knows() {
    use serde_json::json;
    let api = common::apiserver::ApiServer::start().await;
    for ns in ["shop", "data"] {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.10.20", "clusterIPs": ["10.96.10.20"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}));
    let pod = |ns: &str, name: &str, ip: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"containers": [{"name": "app", "image": "app"}]},
               "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
    };
    api.apply(pod("shop", "frontend-0", "127.0.0.11"));
    api.apply(pod("data", "batch-0", "127.0.0.12"));
    let s = TestServer::kube(&api, &["--pods", "verified"]).await;
    let nx = ResponseCode::NXDomain;
    let ok = ResponseCode::NoError;
    let web = "web.shop.svc.cluster.local.";
    assert_eq!(
        ask_from(FRONTEND, s.addr, web).await.metadata.response_code,
        ok
    );
    // batch-0 walks its search list for web.shop: one miss before the name answers.
    assert_eq!(resolve(BATCH, s.addr, "data", "web.shop").await, [nx, ok]);
    let r = report_with(&s, 3).await;
    let clients = r["clients"].as_array().unwrap();
    let find = |c: &str| clients.iter().find(|x| x["client"] == c).cloned();
    let frontend = find("shop/frontend-0").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(frontend["last_minute"]["queries"], 1);
    let batch = find("data/batch-0").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(batch["namespace"], "data");
    assert_eq!(batch["last_minute"]["queries"], 2);
    assert_eq!(batch["last_minute"]["search_misses"], 1);
}

#[tokio::test]
async fn without_verified_pods_there_are_no_client_figures() {
    let s = TestServer::example(&[]).await;
    let (status, body) = http_get(s.running.metrics_addr, "/debug/clients").await;
    assert_eq!(status, 404);
    assert!(body.contains("--pods verified"), "{body}");
}

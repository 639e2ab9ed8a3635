//! The answer features operators turn on: `--shuffle`, `--no-aaaa-outside-zone`,
//! `--autopath`, over real sockets against a server started by the test (and upstreams
//! started by the test where forwarding is involved).

use crate::common;

use std::collections::HashSet;

use common::upstream::FakeUpstream;
use common::{TestServer, ask, query, udp, zone_text};
use hickory_proto::rr::RecordType;

/// A headless Service `pool.default` with `n` ready endpoints 10.244.0.1 ..= 10.244.0.n, an
/// ExternalName Service `ext.default` pointing at `multi.example.com`, and a dual-stack
/// ClusterIP Service `dual.default` (10.96.0.10, fd00::10).
fn cluster(n: u8) -> String {
    let mut endpoints = String::new();
    for i in 1..=n {
        endpoints.push_str(&format!(
            "  - addresses: [\"10.244.0.{i}\"]\n    conditions: {{ready: true}}\n"
        ));
    }
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: default}}
---
apiVersion: v1
kind: Service
metadata: {{name: pool, namespace: default}}
spec:
  clusterIP: None
  ports: [{{name: http, port: 80, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: pool-1
  namespace: default
  labels: {{kubernetes.io/service-name: pool}}
addressType: IPv4
endpoints:
{endpoints}---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: default}}
spec:
  type: ExternalName
  externalName: multi.example.com
---
apiVersion: v1
kind: Service
metadata: {{name: dual, namespace: default}}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, \"fd00::10\"]
  ports: [{{name: http, port: 80, protocol: TCP}}]
"
    )
}

async fn started_upstream() -> FakeUpstream {
    let up = FakeUpstream::start().await;
    for i in 1..=6 {
        up.add(&format!("multi.example.com. 300 IN A 192.0.2.{i}"));
    }
    up.add("multi.example.com. 300 IN AAAA 2001:db8::1");
    up.add("alias.example.com. 300 IN CNAME multi.example.com.");
    up
}

/// The answer section's record data, in order, and each record's type.
async fn answer_order(
    server: &TestServer,
    name: &str,
    qtype: RecordType,
) -> Vec<(RecordType, String)> {
    let (m, _) = udp(server.addr, &query(name, qtype, Some(1232))).await;
    m.answers
        .iter()
        .map(|r| (r.record_type(), r.data.to_string()))
        .collect()
}

/// Asks `name` 40 times: the set of records never changes, CNAMEs always come first, and
/// more than one order of the addresses shows up. Returns the distinct orders seen.
async fn orders(server: &TestServer, name: &str) -> HashSet<Vec<String>> {
    let mut seen = HashSet::new();
    let mut set: Option<Vec<String>> = None;
    for _ in 0..40 {
        let answers = answer_order(server, name, RecordType::A).await;
        let cnames = answers
            .iter()
            .take_while(|(t, _)| *t == RecordType::CNAME)
            .count();
        assert!(
            answers[cnames..].iter().all(|(t, _)| *t == RecordType::A),
            "{name}: CNAMEs first, then the addresses: {answers:?}"
        );
        let order: Vec<String> = answers.iter().map(|(_, d)| d.clone()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        match &set {
            None => set = Some(sorted),
            Some(s) => assert_eq!(s, &sorted, "{name}: the same records every time"),
        }
        seen.insert(order);
    }
    seen
}

#[tokio::test]
async fn shuffle_permutes_addresses_keeping_cnames_first() {
    let up = started_upstream().await;
    let u = up.addr().to_string();
    let server =
        TestServer::with_files(&[("c.yaml", &cluster(6))], &["--shuffle", "--upstream", &u]).await;
    // A headless Service's endpoints, from the cluster zone.
    let pool = orders(&server, "pool.default.svc.cluster.local.").await;
    assert!(pool.len() > 1, "one order only: {pool:?}");
    assert_eq!(pool.iter().next().map(Vec::len), Some(6));
    // An ExternalName: its CNAME, then the target's addresses from the upstream.
    let ext = orders(&server, "ext.default.svc.cluster.local.").await;
    assert!(ext.len() > 1, "one order only: {ext:?}");
    assert!(ext.iter().all(|o| o[0] == "multi.example.com."), "{ext:?}");
    // A forwarded answer (served from the cache after the first time) with a CNAME.
    let alias = orders(&server, "alias.example.com.").await;
    assert!(alias.len() > 1, "one order only: {alias:?}");
    assert!(
        alias
            .iter()
            .all(|o| o.len() == 7 && o[0] == "multi.example.com.")
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn without_shuffle_the_order_is_stable() {
    let server = TestServer::with_files(&[("c.yaml", &cluster(6))], &[]).await;
    let first = answer_order(&server, "pool.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(first.len(), 6);
    for _ in 0..10 {
        let again = answer_order(&server, "pool.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(again, first);
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn aaaa_outside_the_zone_is_nodata_without_forwarding() {
    let up = started_upstream().await;
    let u = up.addr().to_string();
    let server = TestServer::with_files(
        &[("c.yaml", &cluster(2))],
        &["--no-aaaa-outside-zone", "--upstream", &u],
    )
    .await;
    // An external name: NOERROR, nothing in any section, and the upstream never asked.
    let (m, _) = udp(
        server.addr,
        &query("multi.example.com.", RecordType::AAAA, Some(1232)),
    )
    .await;
    assert_eq!(zone_text(&m), "NoError");
    assert!(m.metadata.recursion_available);
    // An ExternalName's AAAA: its CNAME only, the target's AAAA not asked for.
    let ext = ask(
        server.addr,
        "ext.default.svc.cluster.local.",
        RecordType::AAAA,
    )
    .await;
    assert_eq!(
        ext,
        "NoError aa\n;answer ext.default.svc.cluster.local. 30 IN CNAME multi.example.com."
    );
    assert_eq!(up.count("multi.example.com.", RecordType::AAAA), 0);
    // A is still forwarded.
    let a = ask(server.addr, "multi.example.com.", RecordType::A).await;
    assert!(a.contains("IN A 192.0.2.1"), "{a}");
    assert_eq!(up.count("multi.example.com.", RecordType::A), 1);
    // The cluster zone still answers AAAA.
    let dual = ask(
        server.addr,
        "dual.default.svc.cluster.local.",
        RecordType::AAAA,
    )
    .await;
    assert_eq!(
        dual,
        "NoError aa\n;answer dual.default.svc.cluster.local. 30 IN AAAA fd00::10"
    );
    let aaaa = up
        .received()
        .iter()
        .filter(|r| {
            r.message
                .queries
                .iter()
                .any(|q| q.query_type() == RecordType::AAAA)
        })
        .count();
    assert_eq!(aaaa, 0, "no AAAA query reached the upstream");
    server.running.shutdown().await;
}

#[tokio::test]
async fn aaaa_is_forwarded_without_the_flag() {
    let up = started_upstream().await;
    let u = up.addr().to_string();
    let server = TestServer::with_files(&[("c.yaml", &cluster(2))], &["--upstream", &u]).await;
    let text = ask(server.addr, "multi.example.com.", RecordType::AAAA).await;
    assert!(text.contains("IN AAAA 2001:db8::1"), "{text}");
    assert_eq!(up.count("multi.example.com.", RecordType::AAAA), 1);
    server.running.shutdown().await;
}

/// The example's namespace `default` with a pod at 127.0.0.1 (the address the test's
/// queries come from) and a ClusterIP Service `web`.
const AUTOPATH_CLUSTER: &str = "apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  containers: [{name: c, image: x}]
status:
  podIP: 127.0.0.1
  conditions: [{type: Ready, status: \"True\"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, protocol: TCP}]
";

/// The search list of a pod in `default` on a node whose own resolv.conf searches
/// `corp.example`: what kubelet writes, with `options ndots:5`.
const SEARCH: [&str; 4] = [
    "default.svc.cluster.local.",
    "svc.cluster.local.",
    "cluster.local.",
    "corp.example.",
];

/// Resolves `name` as a glibc stub resolver with `SEARCH` and ndots:5 does, sending from
/// `source`: each search name in turn while the answer is NXDOMAIN, then the name itself.
/// Returns the final reply and how many queries it took.
async fn stub_lookup(
    server: std::net::SocketAddr,
    source: &str,
    name: &str,
) -> (hickory_proto::op::Message, usize) {
    use hickory_proto::op::{Message, ResponseCode};
    let sock = tokio::net::UdpSocket::bind((source, 0)).await.unwrap();
    let mut tries: Vec<String> = SEARCH.iter().map(|s| format!("{name}.{s}")).collect();
    tries.push(format!("{name}."));
    let mut sent = 0;
    let mut last = None;
    for t in tries {
        let q = query(&t, RecordType::A, Some(1232));
        sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
        sent += 1;
        let mut buf = vec![0u8; 65535];
        let n = tokio::time::timeout(std::time::Duration::from_secs(3), sock.recv(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(reply.metadata.id, q.metadata.id);
        let done = reply.metadata.response_code != ResponseCode::NXDomain;
        last = Some(reply);
        if done {
            break;
        }
    }
    (last.unwrap(), sent)
}

async fn autopath_server(up: &FakeUpstream, autopath: bool) -> TestServer {
    let u = up.addr().to_string();
    let mut flags = vec!["--pods", "verified", "--upstream", u.as_str()];
    if autopath {
        flags.push("--autopath");
    }
    TestServer::with_files(&[("c.yaml", AUTOPATH_CLUSTER)], &flags).await
}

/// Upstream queries for names that contain `part`.
fn upstream_queries(up: &FakeUpstream, part: &str) -> Vec<String> {
    up.received()
        .iter()
        .flat_map(|r| r.message.queries.iter().map(|q| q.name().to_string()))
        .filter(|n| n.contains(part))
        .collect()
}

#[tokio::test]
async fn autopath_answers_an_external_name_in_one_query() {
    let up = FakeUpstream::start().await;
    up.add("www.example.org. 300 IN A 192.0.2.80");
    up.add("api.example.org. 300 IN A 192.0.2.81");

    // Without autopath: the pod's resolver walks its whole search path.
    let plain = autopath_server(&up, false).await;
    let (reply, sent) = stub_lookup(plain.addr, "127.0.0.1", "www.example.org").await;
    assert_eq!(
        zone_text(&reply),
        "NoError\n;answer www.example.org. 300 IN A 192.0.2.80"
    );
    assert_eq!(sent, 5, "four search names, then the name");
    assert_eq!(
        upstream_queries(&up, "example.org."),
        ["www.example.org.corp.example.", "www.example.org."]
    );
    plain.running.shutdown().await;
    up.clear();

    // With it: one query, answered with a CNAME from the first search name to the name.
    let server = autopath_server(&up, true).await;
    let (reply, sent) = stub_lookup(server.addr, "127.0.0.1", "api.example.org").await;
    assert_eq!(sent, 1);
    assert_eq!(
        zone_text(&reply),
        "NoError\n;answer api.example.org.default.svc.cluster.local. 300 IN CNAME api.example.org.\n;answer api.example.org. 300 IN A 192.0.2.81"
    );
    assert_eq!(upstream_queries(&up, "example.org."), ["api.example.org."]);

    // An address that is no pod's: no autopath, the search walk as usual.
    up.clear();
    let (_, sent) = stub_lookup(server.addr, "127.0.0.2", "www.example.org").await;
    assert_eq!(sent, 5);
    server.running.shutdown().await;
}

#[tokio::test]
async fn autopath_finds_cluster_names_along_the_path() {
    let up = FakeUpstream::start().await;
    let server = autopath_server(&up, true).await;
    // The first search name exists: answered as it is, no CNAME.
    let (reply, sent) = stub_lookup(server.addr, "127.0.0.1", "web").await;
    assert_eq!(sent, 1);
    assert_eq!(
        zone_text(&reply),
        "NoError aa\n;answer web.default.svc.cluster.local. 30 IN A 10.96.0.20"
    );
    // `web.default`: found at the second step, `web.default.svc.cluster.local.`.
    let (reply, sent) = stub_lookup(server.addr, "127.0.0.1", "web.default").await;
    assert_eq!(sent, 1);
    assert_eq!(
        zone_text(&reply),
        "NoError aa\n;answer web.default.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.\n;answer web.default.svc.cluster.local. 30 IN A 10.96.0.20"
    );
    // From elsewhere, the same name takes two queries.
    let (_, sent) = stub_lookup(server.addr, "127.0.0.2", "web.default").await;
    assert_eq!(sent, 2);
    assert!(
        upstream_queries(&up, "cluster.local.").is_empty(),
        "the cluster zone is never forwarded"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn autopath_needs_verified_pods() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let config = clusterdns::config::Config::try_parse_from([
        "clusterdns",
        "--manifests",
        d,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--no-forward",
        "--autopath",
    ])
    .unwrap();
    let err = match clusterdns::app::start(&config).await {
        Ok(_) => panic!("--autopath started without --pods verified"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("--pods verified"), "{err}");
}

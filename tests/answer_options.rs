//! The answer features operators turn on: `--shuffle`, `--no-aaaa-outside-zone`,
//! `--autopath`, over real sockets against a server started by the test (and upstreams
//! started by the test where forwarding is involved).

mod common;

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

//! Node-local mode over real sockets: a central clusterdns serving the example cluster and a
//! node-local clusterdns in front of it (`--mode node-local --cluster-dns`), both started by
//! the test on loopback. The node tier answers the cluster zone and the reverse zones from
//! the central over TCP only, caps their lifetimes, serves known names stale through a
//! central outage, fails unknown ones at once, and is fresh again when the central is back.
//! (The interface and NOTRACK set-up in a network namespace is `tests/e2e/node-local.sh`.)

use crate::common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::process::free_port;
use common::upstream::FakeUpstream;
use common::{TestServer, query, udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    udp(addr, &query(name, qtype, Some(1232))).await.0
}

/// The answer section as sorted text without TTLs, to compare two servers' answers.
fn rdata(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

fn metrics_of(s: &TestServer) -> String {
    s.running.metrics.encode()
}

/// The sum of every sample of `family` whose labels contain `label`.
fn sum(text: &str, family: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn readyz(s: &TestServer) -> (u16, String) {
    common::http_get(s.running.metrics_addr, "/readyz").await
}

async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Queries every row of the comparison through both tiers.
const NAMES: [(&str, RecordType); 8] = [
    ("kubernetes.default.svc.cluster.local.", RecordType::A),
    (
        "_https._tcp.kubernetes.default.svc.cluster.local.",
        RecordType::SRV,
    ),
    ("10.0.96.10.in-addr.arpa.", RecordType::PTR),
    ("web.shop.svc.cluster.local.", RecordType::A),
    ("web.shop.svc.cluster.local.", RecordType::AAAA),
    ("api.shop.svc.cluster.local.", RecordType::AAAA),
    (
        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    ),
    ("nope.shop.svc.cluster.local.", RecordType::A),
];

#[tokio::test]
async fn the_node_tier_answers_the_cluster_zone_from_the_central_over_tcp_only() {
    let central = TestServer::example(&["--ttl", "300"]).await;
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let cluster_dns = central.addr.to_string();
    let upstream = up.addr().to_string();
    let node =
        TestServer::node_local(&["--cluster-dns", &cluster_dns, "--upstream", &upstream]).await;
    for (name, qtype) in NAMES {
        let direct = ask(central.addr, name, qtype).await;
        let through = ask(node.addr, name, qtype).await;
        assert_eq!(
            through.metadata.response_code, direct.metadata.response_code,
            "{name} {qtype}"
        );
        assert_eq!(rdata(&through), rdata(&direct), "{name} {qtype}");
        let cap = if direct.answers.is_empty() { 5 } else { 30 };
        for r in through.answers.iter().chain(&through.authorities) {
            assert!(
                r.ttl <= cap,
                "{name} {qtype}: TTL {} over the node cap {cap}",
                r.ttl
            );
        }
        assert!(
            through.metadata.recursion_available,
            "{name}: RA from a forwarder"
        );
    }
    // Other names go to the upstreams, never to the central.
    let www = ask(node.addr, "www.example.com.", RecordType::A).await;
    assert_eq!(rdata(&www), ["www.example.com. A 192.0.2.10"]);
    let text = metrics_of(&central);
    let over_udp = sum(&text, "clusterdns_dns_requests_total", "proto=\"udp\"");
    let over_tcp = sum(&text, "clusterdns_dns_requests_total", "proto=\"tcp\"");
    assert_eq!(
        over_udp,
        NAMES.len() as f64,
        "the central sees UDP only from the test's own direct queries, none from the node tier"
    );
    assert!(
        over_tcp >= NAMES.len() as f64,
        "{over_tcp} TCP queries at the central"
    );
    let to = format!("tcp://{cluster_dns}");
    let opened = sum(
        &metrics_of(&node),
        "clusterdns_forward_connections_opened_total",
        &format!("to=\"{to}\""),
    );
    assert!(
        (1.0..=3.0).contains(&opened),
        "{opened} connections to the central"
    );
    assert!(
        up.received().iter().all(|r| !r.message.queries[0]
            .name()
            .to_ascii()
            .contains("cluster.local")),
        "the upstream never sees cluster names"
    );
    let (status, body) = readyz(&node).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
}

#[tokio::test]
async fn known_names_outlive_a_central_outage_and_fresh_answers_follow_its_return() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let central = TestServer::example(&["--listen", &listen]).await;
    let node = TestServer::node_local(&[
        "--cluster-dns",
        &listen,
        "--cluster-cache-ttl",
        "1s",
        "--health-check-interval",
        "100ms",
    ])
    .await;
    let web = "web.shop.svc.cluster.local.";
    assert_eq!(
        rdata(&ask(node.addr, web, RecordType::A).await),
        [format!("{web} A 10.96.10.20")]
    );
    central.running.shutdown().await;
    // Past the 1 s lifetime, with the central gone: served stale.
    let stale = eventually(
        "the entry expired and served stale",
        Duration::from_secs(10),
        async || {
            let m = ask(node.addr, web, RecordType::A).await;
            (m.answers.first().map(|r| r.ttl) == Some(30)).then_some(m)
        },
    )
    .await;
    assert_eq!(stale.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&stale), [format!("{web} A 10.96.10.20")]);
    let unknown = ask(node.addr, "api.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        unknown.metadata.response_code,
        ResponseCode::ServFail,
        "never asked before: nothing to serve"
    );
    // Back, with Service web moved: the node tier follows.
    let central = TestServer::example(&["--listen", &listen]).await;
    let file = central.path("shop/web.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("10.96.10.20", "10.96.10.21")).unwrap();
    let fresh = eventually(
        "the fresh answer through the node tier",
        Duration::from_secs(15),
        async || {
            let m = ask(node.addr, web, RecordType::A).await;
            (rdata(&m) == [format!("{web} A 10.96.10.21")]).then_some(m)
        },
    )
    .await;
    assert!(fresh.answers[0].ttl <= 1, "a fresh entry, not a stale one");
    let api = ask(node.addr, "api.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(api.metadata.response_code, ResponseCode::NoError);
    drop(central);
}

#[tokio::test]
async fn the_node_tier_is_not_ready_until_a_central_server_answers() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let node = TestServer::node_local(&["--cluster-dns", &listen]).await;
    let (status, body) = readyz(&node).await;
    assert_eq!(status, 503);
    assert!(body.contains("--cluster-dns"), "{body}");
    let central = TestServer::example(&["--listen", &listen]).await;
    eventually(
        "ready once the central answers",
        Duration::from_secs(10),
        async || (readyz(&node).await.0 == 200).then_some(()),
    )
    .await;
    let m = ask(
        node.addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert!(matches!(&m.answers[0].data, RData::A(a) if a.to_string() == "10.96.0.1"));
    drop(central);
}

#[tokio::test]
async fn node_local_flags_are_checked_together() {
    use clap::Parser;
    let err = |args: &[&str]| {
        let mut all = vec!["clusterdns"];
        all.extend_from_slice(args);
        let c = clusterdns::config::Config::try_parse_from(all).unwrap();
        c.validate().unwrap_err().to_string()
    };
    let none = err(&["--mode", "node-local"]);
    assert!(none.contains("--cluster-dns"), "{none}");
    let manifests = err(&[
        "--mode",
        "node-local",
        "--cluster-dns",
        "10.0.0.10",
        "--manifests",
        "x",
    ]);
    assert!(manifests.contains("--manifests"), "{manifests}");
    let cluster = err(&["--cluster-dns", "10.0.0.10"]);
    assert!(cluster.contains("node-local"), "{cluster}");
    let c = clusterdns::config::Config::try_parse_from([
        "clusterdns",
        "--mode",
        "node-local",
        "--cluster-dns",
        "10.0.0.10",
    ])
    .unwrap();
    assert_eq!(
        c.listen_addrs(),
        ["169.254.20.10:53".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.side_port(), "0.0.0.0:9253".parse::<SocketAddr>().unwrap());
    let routes = c.forward_settings().unwrap().unwrap().stub_domains;
    let domains: HashSet<String> = routes.iter().map(|r| r.domain.to_string()).collect();
    assert_eq!(
        domains,
        HashSet::from([
            "cluster.local.".into(),
            "in-addr.arpa.".into(),
            "ip6.arpa.".into()
        ])
    );
    for r in &routes {
        assert_eq!(
            r.upstreams[0].to_string(),
            "tcp://10.0.0.10:53",
            "forced onto TCP"
        );
    }
}

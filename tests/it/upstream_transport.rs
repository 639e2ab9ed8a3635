//! TCP and TLS upstreams over real sockets: clusterdns forwarding to a fake upstream started
//! by the test on loopback (`tcp://`), or to a rustls server in the test relaying to it
//! (`tls://`, a private CA made for the test). Pipelining, reuse, idle close, a server that
//! closes mid-answer, health probes over the upstream's own transport, certificates checked.

use crate::common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::tls::{TestPki, TlsFront};
use common::upstream::{Behaviour, FakeUpstream, Proto};
use common::{TestServer, metric, query, udp, wait_for, zone_text};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

/// The client ports of the TCP connections the upstream saw queries for `name` on.
fn connections_for(up: &FakeUpstream, name: &str) -> Vec<SocketAddr> {
    up.received()
        .iter()
        .filter(|r| r.message.queries[0].name().to_ascii() == name)
        .map(|r| r.from)
        .collect()
}

async fn a_record(addr: SocketAddr, name: &str) -> (ResponseCode, Vec<String>) {
    let (reply, _) = udp(addr, &query(name, RecordType::A, Some(1232))).await;
    let ips = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    (reply.metadata.response_code, ips)
}

#[tokio::test]
async fn a_tcp_upstream_carries_a_hundred_concurrent_queries_on_two_connections() {
    let up = FakeUpstream::start().await;
    for i in 0..100 {
        up.add(&format!("n{i}.example.com. 300 IN A 192.0.2.{}", i + 1));
    }
    // Every answer waits: the queries can only all be answered by being in flight together.
    up.behave("example.com.", Behaviour::Delay(Duration::from_secs(1)));
    let tcp = format!("tcp://{}", up.addr());
    let s = TestServer::example(&["--upstream", &tcp]).await;
    let addr = s.addr;
    let asks = (0..100).map(|i| async move { a_record(addr, &format!("n{i}.example.com.")).await });
    let replies = futures::future::join_all(asks).await;
    for (i, (rcode, ips)) in replies.iter().enumerate() {
        assert_eq!(*rcode, ResponseCode::NoError, "n{i}");
        assert_eq!(ips, &[format!("192.0.2.{}", i + 1)], "n{i}: its own answer");
    }
    let received = up.received();
    assert!(
        received.iter().all(|r| r.proto == Proto::Tcp),
        "a tcp:// upstream sees TCP only"
    );
    let connections: HashSet<SocketAddr> = received.iter().map(|r| r.from).collect();
    assert!(
        (1..=2).contains(&connections.len()),
        "100 concurrent queries over at most 2 connections, not {}",
        connections.len()
    );
    assert!(
        up.max_in_flight() >= 64,
        "pipelined: {} queries were in flight at once at most",
        up.max_in_flight()
    );
    let label = format!("{{to=\"{tcp}\"}}");
    let opened = metric(
        &s,
        &format!("clusterdns_forward_connections_opened_total{label}"),
    );
    assert!((1.0..=2.0).contains(&opened), "{opened} connections opened");
    let reused = metric(
        &s,
        &format!("clusterdns_forward_connections_reused_total{label}"),
    );
    assert!(reused >= 98.0, "{reused} queries on an open connection");
}

#[tokio::test]
async fn tcp_connections_are_reused_then_closed_when_idle_and_reopened() {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    up.add("payments.example.com. 300 IN A 192.0.2.20");
    up.add("late.example.com. 300 IN A 192.0.2.30");
    let tcp = format!("tcp://{}", up.addr());
    let s = TestServer::example(&["--upstream", &tcp, "--upstream-idle-timeout", "1s"]).await;
    assert_eq!(a_record(s.addr, "www.example.com.").await.1, ["192.0.2.10"]);
    assert_eq!(
        a_record(s.addr, "payments.example.com.").await.1,
        ["192.0.2.20"]
    );
    let first = connections_for(&up, "www.example.com.");
    assert_eq!(
        first,
        connections_for(&up, "payments.example.com."),
        "back-to-back queries share one connection"
    );
    let gauge = format!("clusterdns_forward_connections{{to=\"{tcp}\"}}");
    assert_eq!(metric(&s, &gauge), 1.0, "one connection open");
    wait_for(
        "the idle connection closed",
        Duration::from_secs(10),
        || metric(&s, &gauge) == 0.0,
    )
    .await;
    assert_eq!(
        a_record(s.addr, "late.example.com.").await.1,
        ["192.0.2.30"]
    );
    let late = connections_for(&up, "late.example.com.");
    assert_eq!(late.len(), 1);
    assert_ne!(late, first, "a new connection after the idle close");
}

#[tokio::test]
async fn a_connection_closed_mid_answer_is_retried_once_on_a_fresh_one() {
    let up = FakeUpstream::start().await;
    up.add("x.cut.example.com. 300 IN A 192.0.2.99");
    up.behave("cut.example.com.", Behaviour::CutTcpOnce);
    let tcp = format!("tcp://{}", up.addr());
    let s = TestServer::example(&["--upstream", &tcp]).await;
    let (rcode, ips) = a_record(s.addr, "x.cut.example.com.").await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(ips, ["192.0.2.99"], "answered by the retry");
    let tries = connections_for(&up, "x.cut.example.com.");
    assert_eq!(tries.len(), 2, "sent once, then once more: {tries:?}");
    assert_ne!(tries[0], tries[1], "the retry went on a fresh connection");
}

#[tokio::test]
async fn a_down_tcp_upstream_is_probed_over_tcp_until_it_is_back() {
    let mut up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let tcp = format!("tcp://{}", up.addr());
    let s = TestServer::example(&[
        "--upstream",
        &tcp,
        "--max-fails",
        "1",
        "--health-check-interval",
        "100ms",
        "--upstream-timeout",
        "500ms",
    ])
    .await;
    up.stop().await;
    let (rcode, _) = a_record(s.addr, "www.example.com.").await;
    assert_eq!(rcode, ResponseCode::ServFail, "nothing listens");
    let healthy = format!("clusterdns_forward_upstream_healthy{{to=\"{tcp}\"}}");
    assert_eq!(metric(&s, &healthy), 0.0, "marked down");
    up.restart().await;
    wait_for(
        "the upstream marked up again",
        Duration::from_secs(10),
        || metric(&s, &healthy) == 1.0,
    )
    .await;
    let probes: Vec<Proto> = up
        .received()
        .iter()
        .filter(|r| r.message.queries[0].query_type() == RecordType::NS)
        .map(|r| r.proto)
        .collect();
    assert!(!probes.is_empty(), "the health probe reached it");
    assert!(
        probes.iter().all(|p| *p == Proto::Tcp),
        "probed over TCP: {probes:?}"
    );
    assert_eq!(a_record(s.addr, "www.example.com.").await.1, ["192.0.2.10"]);
}

#[tokio::test]
async fn a_tls_upstream_signed_by_the_given_ca_answers() {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "dns.test");
    let front = TlsFront::start(&pki, up.addr()).await;
    let tls = format!("tls://{}#dns.test", front.addr);
    let ca = pki.ca_file.to_str().unwrap();
    let s = TestServer::example(&["--upstream", &tls, "--upstream-tls-ca", ca]).await;
    let (rcode, ips) = a_record(s.addr, "www.example.com.").await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(ips, ["192.0.2.10"]);
    assert!(
        up.received().iter().all(|r| r.proto == Proto::Tcp),
        "through the TLS front only"
    );
    // A second query reuses the TLS connection.
    let text = zone_text(
        &udp(s.addr, &query("www.example.com.", RecordType::AAAA, None))
            .await
            .0,
    );
    assert!(!text.contains("SERVFAIL"), "{text}");
    let label = format!("{{to=\"tls://{}#dns.test\"}}", front.addr);
    assert_eq!(
        metric(
            &s,
            &format!("clusterdns_forward_connections_opened_total{label}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &s,
            &format!("clusterdns_forward_handshake_failures_total{label}")
        ),
        0.0
    );
}

#[tokio::test]
async fn a_tls_certificate_for_another_name_is_refused() {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "dns.test");
    let front = TlsFront::start(&pki, up.addr()).await;
    let tls = format!("tls://{}#other.test", front.addr);
    let ca = pki.ca_file.to_str().unwrap();
    let s = TestServer::example(&["--upstream", &tls, "--upstream-tls-ca", ca]).await;
    let (rcode, ips) = a_record(s.addr, "www.example.com.").await;
    assert_eq!(rcode, ResponseCode::ServFail, "{ips:?}");
    assert!(
        up.received().is_empty(),
        "nothing passed the handshake: {:?}",
        up.received()
    );
    let label = format!("{{to=\"{tls}\"}}");
    assert!(
        metric(
            &s,
            &format!("clusterdns_forward_handshake_failures_total{label}")
        ) >= 1.0
    );
}

#[tokio::test]
async fn a_tls_upstream_without_its_ca_is_refused() {
    let up = FakeUpstream::start().await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "dns.test");
    let other = tempfile::tempdir().unwrap();
    let stranger = TestPki::new(other.path(), "dns.test");
    let front = TlsFront::start(&pki, up.addr()).await;
    let tls = format!("tls://{}#dns.test", front.addr);
    let ca = stranger.ca_file.to_str().unwrap();
    let s = TestServer::example(&["--upstream", &tls, "--upstream-tls-ca", ca]).await;
    let (rcode, _) = a_record(s.addr, "www.example.com.").await;
    assert_eq!(rcode, ResponseCode::ServFail, "a CA that did not sign it");
    assert!(up.received().is_empty());
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let config = clusterdns::config::Config::try_parse_from([
        "clusterdns",
        "--manifests",
        common::example_dir().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--upstream",
        "tls://127.0.0.1:853#dns.test",
        "--upstream-tls-ca",
        empty.to_str().unwrap(),
    ])
    .unwrap();
    let err = match clusterdns::app::start(&config).await {
        Ok(_) => panic!("started with a CA file holding no certificate"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("--upstream-tls-ca") && err.contains("empty.pem"),
        "{err}"
    );
}

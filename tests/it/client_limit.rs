//! `--max-qps-per-client` over real sockets: one client's burst is cut to its bucket, every
//! second query over the limit is answered empty with TC=1 (and a strict parser accepts it),
//! the rest dropped, and the counters say exactly what the client saw; another client and
//! TCP are untouched.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, metric, query, tcp};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

const WEB: &str = "web.shop.svc.cluster.local.";

/// Sends `n` queries for `WEB` from one socket at once, then reads replies until none comes
/// for a second: the replies by ID, and how long the sending took.
async fn burst(from: &str, server: SocketAddr, n: u16) -> (HashMap<u16, Vec<u8>>, Duration) {
    let sock = UdpSocket::bind(from).await.unwrap();
    let started = tokio::time::Instant::now();
    for id in 0..n {
        let mut q = query(WEB, RecordType::A, None);
        q.metadata.id = id;
        sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
    }
    let took = started.elapsed();
    let mut replies = HashMap::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
    {
        let bytes = buf[..len].to_vec();
        let id = u16::from_be_bytes([bytes[0], bytes[1]]);
        assert!(replies.insert(id, bytes).is_none(), "one reply per query");
    }
    (replies, took)
}

#[tokio::test]
async fn a_clients_burst_is_cut_to_its_bucket_and_every_second_query_over_it_slips() {
    let s = TestServer::example(&["--max-qps-per-client", "10"]).await;
    let (replies, took) = burst("127.0.0.1:0", s.addr, 100).await;
    let mut answered = 0;
    let mut slipped = 0;
    for (id, bytes) in &replies {
        let strict = common::strict::read(bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        let m = Message::from_vec(bytes).unwrap();
        assert_eq!(m.queries[0].name().to_ascii(), WEB, "the question echoed");
        if strict.truncated {
            assert_eq!(strict.counts, [0, 0, 0], "a slip carries no record");
            slipped += 1;
        } else {
            assert_eq!(m.answers.len(), 1, "{id}: a full answer");
            answered += 1;
        }
    }
    // A full bucket (10) and what it regains while the burst is sent (10 a second).
    let most = 10 + (took.as_secs_f64() * 10.0).ceil() as usize + 1;
    assert!(
        (10..=most).contains(&answered),
        "{answered} answered of 100 (most {most})"
    );
    let limited = 100 - answered;
    assert_eq!(
        slipped,
        limited / 2,
        "every second query over the limit slips"
    );
    assert_eq!(
        metric(&s, "clusterdns_client_limited_total{action=\"slipped\"}"),
        slipped as f64
    );
    assert_eq!(
        metric(&s, "clusterdns_client_limited_total{action=\"dropped\"}"),
        (limited - slipped) as f64
    );
    // Another client has a bucket of its own.
    let (other, _) = burst("127.0.0.2:0", s.addr, 5).await;
    assert_eq!(other.len(), 5);
    assert!(
        other
            .values()
            .all(|b| !common::strict::read(b).unwrap().truncated)
    );
    // TCP is exempt: the limited client's retry over TCP is answered, every time.
    for _ in 0..30 {
        let m = tcp(s.addr, &query(WEB, RecordType::A, None)).await;
        assert_eq!(m.answers.len(), 1);
    }
}

#[tokio::test]
async fn without_a_limit_every_query_is_answered() {
    let s = TestServer::example(&[]).await;
    let (replies, _) = burst("127.0.0.1:0", s.addr, 100).await;
    assert_eq!(replies.len(), 100);
    let text = s.running.metrics.encode();
    assert!(
        text.contains("clusterdns_client_limited_total{action=\"dropped\"} 0"),
        "{text}"
    );
}

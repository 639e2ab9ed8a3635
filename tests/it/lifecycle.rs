//! Shutting down without dropping a query: lameduck (not ready, still answering), then the
//! listeners close and the queries in flight are answered; and the TCP connection cap.

use crate::common;

use std::time::Duration;

use common::upstream::{Behaviour, FakeUpstream};
use common::{TestServer, query, udp, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn readyz(addr: std::net::SocketAddr) -> u16 {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn lameduck_keeps_answering_while_not_ready() {
    let s = TestServer::example(&["--lameduck", "1s", "--shutdown-grace", "3s"]).await;
    assert_eq!(readyz(s.running.metrics_addr).await, 200);
    let addr = s.addr;
    let metrics_addr = s.running.metrics_addr;
    let TestServer { running, dir, .. } = s;
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Not ready any more, but still answering.
    let probe = readyz(metrics_addr).await;
    assert_eq!(probe, 503, "readiness turns false first");
    let (r, _) = udp(
        addr,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.answers.len(), 1, "answered during the lameduck period");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shut down within the grace")
        .unwrap();
    // Closed now.
    let q = query("web.shop.svc.cluster.local.", RecordType::A, None);
    assert!(
        udp_raw(addr, &q.to_vec().unwrap(), Duration::from_millis(300))
            .await
            .is_none()
    );
    drop(dir);
}

#[tokio::test]
async fn queries_in_flight_are_answered_before_exit() {
    let up = FakeUpstream::start().await;
    up.add("slow.example.com. 60 IN A 192.0.2.9");
    up.behave(
        "slow.example.com.",
        Behaviour::Delay(Duration::from_millis(800)),
    );
    let s = TestServer::example(&[
        "--upstream",
        &up.addr().to_string(),
        "--shutdown-grace",
        "3s",
    ])
    .await;
    let addr = s.addr;
    let udp_ask = tokio::spawn(async move {
        udp(addr, &query("slow.example.com.", RecordType::A, None))
            .await
            .0
    });
    let tcp_ask = tokio::spawn(async move {
        common::tcp(addr, &query("slow.example.com.", RecordType::A, None)).await
    });
    // Both queries are with the (slow) upstream when the shutdown starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while up.count("slow.example.com.", RecordType::A) < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.running.shutdown().await;
    let (u, t): (Message, Message) = (udp_ask.await.unwrap(), tcp_ask.await.unwrap());
    for r in [u, t] {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers[0].data.to_string(), "192.0.2.9");
    }
}

#[tokio::test]
async fn the_port_is_free_once_shutdown_returns() {
    // The UDP sockets are read by threads of their own; `shutdown` returns only after every
    // one of them has closed its socket, and the side port's listener is closed too, so a
    // restart on the same ports binds at once.
    for round in 0..10 {
        let s = TestServer::example(&[]).await;
        let addr = s.addr;
        let side = s.running.metrics_addr;
        let TestServer { running, dir, .. } = s;
        running.shutdown().await;
        common::process::closed_for_good();
        // Without SO_REUSEPORT, these fail while any of the server's sockets is open.
        let udp = std::net::UdpSocket::bind(addr);
        assert!(udp.is_ok(), "round {round}: UDP {addr}: {udp:?}");
        let tcp = std::net::TcpListener::bind(addr);
        assert!(tcp.is_ok(), "round {round}: TCP {addr}: {tcp:?}");
        let metrics = std::net::TcpListener::bind(side);
        assert!(
            metrics.is_ok(),
            "round {round}: side port {side}: {metrics:?}"
        );
        drop(dir);
    }
}

#[tokio::test]
async fn a_server_dropped_without_shutdown_closes_its_sockets() {
    // Its UDP threads stop too. Left serving, their sockets would hold the port, and the next
    // server of this process given it (a port-0 bind with SO_REUSEPORT may be) would share its
    // datagrams with them: answers from another test's zone, or none.
    let s = TestServer::example(&[]).await;
    let addr = s.addr;
    // Answered: the UDP threads are under way.
    let (r, _) = udp(
        addr,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.answers.len(), 1);
    drop(s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        common::process::closed_for_good();
        match std::net::UdpSocket::bind(addr) {
            Ok(_) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "UDP {addr} still bound 5 s after the drop: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tcp_connections_beyond_the_cap_are_closed_and_the_others_keep_working() {
    let s = TestServer::example(&["--max-tcp-connections", "2"]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Give the server a moment to accept both.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the third connection is closed at once: {closed:?}"
    );
    let dropped = s.running.metrics.encode();
    assert!(
        dropped.contains("clusterdns_dropped_total{reason=\"tcp_connections\"} 1"),
        "{dropped}"
    );
    // The two held connections still answer.
    for conn in held.iter_mut() {
        let q = query("web.shop.svc.cluster.local.", RecordType::A, None);
        let bytes = q.to_vec().unwrap();
        conn.write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .unwrap();
        conn.write_all(&bytes).await.unwrap();
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).await.unwrap();
        let r = Message::from_vec(&body).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.answers.len(), 1);
    }
    // A slot frees when a connection closes.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = common::tcp(
        s.addr,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.answers.len(), 1);
}

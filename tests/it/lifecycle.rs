//! Shutting down without dropping a query: lameduck (not ready, still answering), then the
//! listeners close and the queries in flight are answered; and the TCP connection cap.

use crate::common;

use std::time::Duration;

use common::upstream::{Behaviour, FakeUpstream, Gate};
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
    let s = TestServer::example(&["--lameduck", "5s", "--shutdown-grace", "10s"]).await;
    assert_eq!(readyz(s.running.metrics_addr).await, 200);
    let addr = s.addr;
    let metrics_addr = s.running.metrics_addr;
    let TestServer { running, dir, .. } = s;
    let stopping = tokio::spawn(running.shutdown());
    // Not ready any more (the first thing the shutdown does), but still answering.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while readyz(metrics_addr).await != 503 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness turns false first"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!stopping.is_finished(), "still in the lameduck period");
    let (r, _) = udp(
        addr,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(r.answers.len(), 1, "answered during the lameduck period");
    tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .expect("shut down after the lameduck period and the grace")
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
    up.add("u.slow.example.com. 60 IN A 192.0.2.9");
    up.add("t.slow.example.com. 60 IN A 192.0.2.9");
    let gate = Gate::new();
    up.behave("slow.example.com.", Behaviour::Hold(gate.clone()));
    let s = TestServer::example(&[
        "--upstream",
        &up.addr().to_string(),
        "--shutdown-grace",
        "20s",
    ])
    .await;
    let addr = s.addr;
    let udp_ask = tokio::spawn(async move {
        udp(addr, &query("u.slow.example.com.", RecordType::A, None))
            .await
            .0
    });
    let tcp_ask = tokio::spawn(async move {
        common::tcp(addr, &query("t.slow.example.com.", RecordType::A, None)).await
    });
    // Both queries are held at the upstream when the shutdown starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while up.count("u.slow.example.com.", RecordType::A) < 1
        || up.count("t.slow.example.com.", RecordType::A) < 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both at the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopping = tokio::spawn(s.running.shutdown());
    // The upstream answers only once the listeners are closed: the queries were in flight
    // through the whole of the shutdown's start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "listeners closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stopping.is_finished(), "the shutdown waits for them");
    gate.open();
    tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("shut down within the grace")
        .unwrap();
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
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        // Answered: the server has accepted it.
        ask_on(&mut conn).await;
        held.push(conn);
    }
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
        ask_on(conn).await;
    }
    // A slot frees when a connection closes: once the server has seen the close, a new
    // connection is served.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        if let Some(r) = try_ask_on(&mut conn).await {
            assert_eq!(r.answers.len(), 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a slot freed by the close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks for web.shop over `conn`; `None` when the connection is closed instead.
async fn try_ask_on(conn: &mut TcpStream) -> Option<Message> {
    let q = query("web.shop.svc.cluster.local.", RecordType::A, None);
    let bytes = q.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    conn.write_all(&framed).await.ok()?;
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut len))
        .await
        .expect("an answer or a close")
        .ok()?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut body).await.ok()?;
    let r = Message::from_vec(&body).unwrap();
    assert_eq!(r.metadata.id, q.metadata.id);
    Some(r)
}

/// Asks for web.shop over `conn`, which must answer.
async fn ask_on(conn: &mut TcpStream) {
    let r = try_ask_on(conn).await.expect("answered on the connection");
    assert_eq!(r.answers.len(), 1);
}

//! Protocol behaviour over real sockets: EDNS(0), truncation and TCP, malformed queries.

use crate::common;

use std::fmt::Write;
use std::time::Duration;

use common::{TestServer, query, tcp, udp, udp_raw};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

/// A headless Service with `n` ready endpoints: its A answer does not fit in 1232 bytes.
fn big_headless(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: big-1\n  namespace: default\n  labels: {kubernetes.io/service-name: big}\naddressType: IPv4\nports: [{name: http, port: 80, protocol: TCP}]\nendpoints:\n",
    );
    for i in 0..n {
        writeln!(s, "- addresses: [\"10.1.{}.{}\"]", i / 250, i % 250 + 1).unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let server = TestServer::with_files(&[("big.yaml", &big_headless(150))], &[]).await;
    let name = "big.default.svc.cluster.local.";

    // No EDNS: 512 bytes at most, TC set.
    let (m, len) = udp(server.addr, &query(name, RecordType::A, None)).await;
    assert!(len <= 512, "{len} bytes without EDNS");
    assert!(m.metadata.truncation);
    assert!(m.edns.is_none(), "no OPT when the query had none");

    // EDNS 4096 is capped at 1232.
    let (m, len) = udp(server.addr, &query(name, RecordType::A, Some(4096))).await;
    assert!(len <= 1232, "{len} bytes with EDNS 4096");
    assert!(m.metadata.truncation);

    // EDNS 800 is honoured.
    let (m, len) = udp(server.addr, &query(name, RecordType::A, Some(800))).await;
    assert!(len <= 800, "{len} bytes with EDNS 800");
    assert!(m.metadata.truncation);

    // TCP carries the whole answer.
    let m = tcp(server.addr, &query(name, RecordType::A, None)).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 150);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);

    // SRV over TCP: 150 records with their glue.
    let m = tcp(
        server.addr,
        &query(
            "_http._tcp.big.default.svc.cluster.local.",
            RecordType::SRV,
            None,
        ),
    )
    .await;
    assert_eq!(m.answers.len(), 150);
    assert_eq!(m.additionals.len(), 150);
    server.running.shutdown().await;
}

/// A headless Service `huge` with `n` ready endpoints, in slices of 1,000 (the API's cap).
fn huge_headless(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: huge, namespace: default}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n",
    );
    for (k, start) in (0..n).step_by(1000).enumerate() {
        write!(
            s,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: huge-{k}\n  namespace: default\n  labels: {{kubernetes.io/service-name: huge}}\naddressType: IPv4\nports: [{{name: http, port: 80, protocol: TCP}}]\nendpoints:\n"
        )
        .unwrap();
        for i in start..n.min(start + 1000) {
            writeln!(s, "- addresses: [\"10.2.{}.{}\"]", i / 250, i % 250 + 1).unwrap();
        }
    }
    s
}

/// Sends `q` over a fresh TCP connection and returns the raw reply.
async fn tcp_raw(server: &TestServer, q: &Message) -> Vec<u8> {
    let mut s = common::tcp_send(server.addr, q).await;
    common::tcp_read_raw(&mut s, Duration::from_secs(5)).await
}

/// An answer larger than one DNS message (65,535 bytes) is cut to the records that fit, with
/// TC set, over TCP, and truncated as any other over UDP: never SERVFAIL, never without its
/// question. 3,000 endpoints: the SRV answer and its glue take about 170 KB; the A answer,
/// 48 KB, still comes whole over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_larger_than_a_message_are_cut_not_refused() {
    let server = TestServer::with_files(&[("huge.yaml", &huge_headless(3000))], &[]).await;
    let srv = "_http._tcp.huge.default.svc.cluster.local.";

    for edns in [None, Some(1232)] {
        let q = query(srv, RecordType::SRV, edns);
        let raw = tcp_raw(&server, &q).await;
        let strict = common::strict::read(&raw).expect("strictly valid");
        let m = Message::from_vec(&raw).expect("parses");
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{edns:?}");
        assert!(m.metadata.truncation, "TC: some SRV records are left out");
        assert_eq!(m.queries.len(), 1, "the question is echoed");
        // As many records as the message holds: no room left for another (~100 bytes).
        assert!(
            m.answers.len() < 3000 && raw.len() > 65_000,
            "{} SRV records in {} bytes",
            m.answers.len(),
            raw.len()
        );
        assert!(m.answers.iter().all(|r| r.record_type() == RecordType::SRV));
        assert_eq!(m.edns.is_some(), edns.is_some(), "OPT kept when asked");
        assert!(strict.truncated);

        let (m, len) = udp(server.addr, &q).await;
        assert!(len <= edns.map_or(512, usize::from), "{len} bytes over UDP");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.truncation);
        assert_eq!(m.queries.len(), 1);
    }

    // 48 KB of A records fit one message: whole, no TC.
    let m = tcp(
        server.addr,
        &query("huge.default.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 3000);
    server.running.shutdown().await;
}

/// A headless Service `v6` with `n` ready IPv6 endpoints.
fn big_v6(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: v6, namespace: default}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: v6-1\n  namespace: default\n  labels: {kubernetes.io/service-name: v6}\naddressType: IPv6\nports: [{name: http, port: 80, protocol: TCP}]\nendpoints:\n",
    );
    for i in 0..n {
        writeln!(s, "- addresses: [\"fd00:10::{:x}\"]", i + 1).unwrap();
    }
    s
}

/// Sends `q` over UDP and reads the raw reply strictly (as kdig, dnspython, musl do).
async fn strict_udp(server: &TestServer, q: &Message) -> (Vec<u8>, common::strict::Strict) {
    let raw = udp_raw(server.addr, &q.to_vec().unwrap(), Duration::from_secs(2))
        .await
        .expect("a reply");
    let read = common::strict::read(&raw).unwrap_or_else(|e| panic!("{e}: {raw:02x?}"));
    (raw, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_udp_replies_end_at_a_record_boundary() {
    let server = TestServer::with_files(
        &[("big.yaml", &big_headless(100)), ("v6.yaml", &big_v6(20))],
        &[],
    )
    .await;
    let a = "big.default.svc.cluster.local.";
    // Without EDNS (how glibc and musl ask): 512 bytes at most, whole records only, the first
    // owner a pointer to the question, as many 16-byte A records as fit.
    let (raw, r) = strict_udp(&server, &query(a, RecordType::A, None)).await;
    assert!(r.truncated);
    assert_eq!(r.first_owner_len, Some(2), "owner points at the question");
    assert_eq!(usize::from(r.counts[0]), (512 - r.question_end) / 16);
    assert_eq!(r.counts[1..], [0, 0]);
    assert_eq!(raw.len(), r.question_end + 16 * usize::from(r.counts[0]));
    let plain_count = usize::from(r.counts[0]);
    // With EDNS the OPT record survives the cut.
    for payload in [512, 800, 1232] {
        let (raw, r) = strict_udp(&server, &query(a, RecordType::A, Some(payload))).await;
        assert!(r.truncated, "EDNS {payload}");
        assert!(raw.len() <= usize::from(payload), "EDNS {payload}");
        assert_eq!(r.counts[2], 1, "the OPT record, EDNS {payload}");
        let whole = (usize::from(payload) - r.question_end - 11) / 16;
        assert_eq!(usize::from(r.counts[0]), whole, "EDNS {payload}");
    }
    // AAAA of 20 endpoints: 28-byte records.
    let (_, r) = strict_udp(
        &server,
        &query("v6.default.svc.cluster.local.", RecordType::AAAA, None),
    )
    .await;
    assert!(r.truncated);
    assert_eq!(usize::from(r.counts[0]), (512 - r.question_end) / 28);
    // SRV of 100 endpoints with their glue: whole SRV records, TC set.
    let (_, r) = strict_udp(
        &server,
        &query(
            "_http._tcp.big.default.svc.cluster.local.",
            RecordType::SRV,
            None,
        ),
    )
    .await;
    assert!(r.truncated);
    assert!(r.counts[0] > 0 && r.counts[0] < 100, "{:?}", r.counts);
    // The same answer over TCP is whole and untruncated.
    let m = tcp(server.addr, &query(a, RecordType::A, None)).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    // hickory's decoder agrees with the strict reader on what the truncated reply holds.
    let (m, _) = udp(server.addr, &query(a, RecordType::A, None)).await;
    assert_eq!(m.answers.len(), plain_count);
    assert!(m.metadata.truncation);
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_payload_version_and_do_bit() {
    let server = TestServer::example(&[]).await;
    let name = "web.shop.svc.cluster.local.";

    let (m, _) = udp(server.addr, &query(name, RecordType::A, Some(4096))).await;
    let edns = m.edns.expect("OPT in the answer");
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(edns.version(), 0);
    assert!(!edns.flags().dnssec_ok);

    let (m, _) = udp(server.addr, &query(name, RecordType::A, Some(512))).await;
    assert_eq!(m.edns.expect("OPT").max_payload(), 512);

    let mut q = query(name, RecordType::A, Some(1232));
    q.edns.as_mut().unwrap().set_dnssec_ok(true);
    let (m, _) = udp(server.addr, &q).await;
    assert!(
        m.edns.expect("OPT").flags().dnssec_ok,
        "DO echoed (RFC 3225)"
    );

    let mut q = query(name, RecordType::A, Some(1232));
    q.edns.as_mut().unwrap().set_version(1);
    let (m, _) = udp(server.addr, &q).await;
    // Extended RCODE 16 is BADVERS in an OPT context (hickory decodes it as its alias BADSIG).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.answers.is_empty());
    assert_eq!(m.edns.expect("OPT with BADVERS").version(), 0);
    server.running.shutdown().await;
}

fn header(id: u16, flags: u16, qd: u16) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [id, flags, qd, 0, 0, 0] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}

fn question(name: &[&str], qtype: u16, class: u16) -> Vec<u8> {
    let mut b = Vec::new();
    for l in name {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&class.to_be_bytes());
    b
}

const WEB: [&str; 5] = ["web", "shop", "svc", "cluster", "local"];

async fn still_answers(server: &TestServer) {
    let (m, _) = udp(
        server.addr,
        &query("web.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1, "server still answers after bad input");
}

/// Sends `bad`, then a good query, from one socket: the first reply must be the good one's.
/// The server reads a socket's datagrams in order, so a reply to `bad` would come first; a
/// check on silence alone would pass on a server too slow to answer within its wait.
async fn dropped(addr: std::net::SocketAddr, bad: &[u8]) -> bool {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = query("web.shop.svc.cluster.local.", RecordType::A, None);
    sock.send_to(bad, addr).await.unwrap();
    sock.send_to(&good.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let _len = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .expect("the good query answered")
        .unwrap();
    buf[..2] == good.metadata.id.to_be_bytes()
}

/// Sends `bad` and reads the reply, which must be a FORMERR with its ID.
async fn formerr(addr: std::net::SocketAddr, bad: &[u8], what: &str) {
    let reply = udp_raw(addr, bad, Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("{what}: FORMERR reply"));
    let m = Message::from_vec(&reply).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        m.metadata.id,
        u16::from_be_bytes([bad[0], bad[1]]),
        "{what}"
    );
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_get_formerr_or_are_dropped() {
    let server = TestServer::example(&[]).await;

    // Shorter than a header: dropped.
    assert!(
        dropped(server.addr, &[0x12, 0x34, 0x01]).await,
        "short header"
    );
    still_answers(&server).await;

    // QR=1 (a response sent to us): never answered, so no reflection.
    let mut b = header(0x1111, 0x8100, 1);
    b.extend(question(&WEB, 1, 1));
    assert!(dropped(server.addr, &b).await, "QR=1");

    // QDCOUNT 0 and 2: FORMERR.
    for qd in [0u16, 2] {
        let mut b = header(0x2222 + qd, 0x0100, qd);
        for _ in 0..qd {
            b.extend(question(&WEB, 1, 1));
        }
        formerr(server.addr, &b, &format!("QDCOUNT {qd}")).await;
    }

    // A compression pointer to itself.
    let mut b = header(0x3333, 0x0100, 1);
    b.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    formerr(server.addr, &b, "a pointer to itself").await;

    // A question cut short.
    let mut b = header(0x4444, 0x0100, 1);
    b.extend(&question(&WEB, 1, 1)[..10]);
    formerr(server.addr, &b, "a question cut short").await;

    // A name over 255 octets.
    let long: Vec<String> = (0..5).map(|_| "a".repeat(63)).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let mut b = header(0x5555, 0x0100, 1);
    b.extend(question(&long, 1, 1));
    formerr(server.addr, &b, "a name over 255 octets").await;
    still_answers(&server).await;
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_opcodes_and_classes() {
    let server = TestServer::example(&[]).await;
    for op in [OpCode::Status, OpCode::Notify] {
        let mut q = query("web.shop.svc.cluster.local.", RecordType::A, None);
        q.metadata.op_code = op;
        let (m, _) = udp(server.addr, &q).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp, "{op:?}");
    }
    let mut q = query("web.shop.svc.cluster.local.", RecordType::A, None);
    q.queries[0].query_class = DNSClass::CH;
    let (m, _) = udp(server.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    still_answers(&server).await;
    server.running.shutdown().await;
}

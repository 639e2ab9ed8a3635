//! Abusive clients over real sockets: malformed and hostile messages get the answer RFC 1035
//! and RFC 6891 require (or none at all), ANY is never amplified (RFC 8482), TCP connections
//! that stall, pipeline or never read are handled, and a flood from one source does not starve
//! another client. After every abuse the server must still answer a normal query.

use crate::common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, query, tcp, udp, udp_raw};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WEB: [&str; 5] = ["web", "shop", "svc", "cluster", "local"];
const WEB_NAME: &str = "web.shop.svc.cluster.local.";
const WEB_IP: &str = "10.96.10.20";
/// How long a reply that must come may take (a bound on the wait, not a figure).
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// A 12-byte header: ID, flags, then QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b
}

/// Standard query flags: QR=0, OPCODE=QUERY, RD=1.
const QUERY: u16 = 0x0100;
/// A response: QR=1, RD=1.
const RESPONSE: u16 = 0x8100;

fn wire_name(labels: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for l in labels {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.push(0);
    b
}

fn question(labels: &[&str], qtype: u16, class: u16) -> Vec<u8> {
    let mut b = wire_name(labels);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&class.to_be_bytes());
    b
}

/// An OPT pseudo-RR (RFC 6891 §6.1.2): `owner`, payload 1232, RDLENGTH `rdlen` (which may lie),
/// then `rdata`.
fn opt(owner: &[u8], rdlen: u16, rdata: &[u8]) -> Vec<u8> {
    let mut b = owner.to_vec();
    b.extend_from_slice(&41u16.to_be_bytes());
    b.extend_from_slice(&1232u16.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&rdlen.to_be_bytes());
    b.extend_from_slice(rdata);
    b
}

/// A query for `web.shop` A with `flags`, the given counts, and `rest` after the question.
fn web_query(id: u16, flags: u16, counts: [u16; 4], rest: &[u8]) -> Vec<u8> {
    let mut b = header(id, flags, counts);
    b.extend(question(&WEB, 1, 1));
    b.extend_from_slice(rest);
    b
}

/// What the server must do with a message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// No reply at all.
    Dropped,
    /// A reply with this RCODE, the request's ID, QR=1, and no answer records.
    Rcode(ResponseCode),
    /// RFC 1035 leaves the choice to the server: FORMERR, or the normal answer for the
    /// question (which must then be correct).
    FormErrOrAnswer,
}

/// Checks one reply (or its absence) against `expect`.
fn check(label: &str, id: u16, expect: Expect, reply: Option<&[u8]>) {
    let Some(bytes) = reply else {
        assert_eq!(expect, Expect::Dropped, "{label}: no reply");
        return;
    };
    let m = Message::from_vec(bytes).unwrap_or_else(|e| panic!("{label}: reply parses: {e}"));
    assert_eq!(m.metadata.id, id, "{label}: reply ID");
    assert_eq!(m.metadata.message_type, MessageType::Response, "{label}");
    let rcode = m.metadata.response_code;
    match expect {
        Expect::Dropped => panic!("{label}: answered {rcode:?}, expected no reply"),
        Expect::Rcode(want) => {
            assert_eq!(rcode, want, "{label}");
            assert!(m.answers.is_empty(), "{label}: no answer records");
        }
        Expect::FormErrOrAnswer if rcode == ResponseCode::FormErr => {}
        Expect::FormErrOrAnswer => {
            assert_eq!(rcode, ResponseCode::NoError, "{label}");
            assert_eq!(m.answers.len(), 1, "{label}");
            assert_eq!(m.answers[0].data.to_string(), WEB_IP, "{label}");
        }
    }
}

/// A normal query over UDP still gets the right answer.
async fn healthy(addr: SocketAddr, after: &str) {
    let (m, _) = udp(addr, &query(WEB_NAME, RecordType::A, None)).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "after {after}"
    );
    let ips: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(ips, [WEB_IP], "answers right after {after}");
}

/// `bytes` with its RFC 1035 §4.2.2 two-byte length prefix.
fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut b = (bytes.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(bytes);
    b
}

/// Reads one length-prefixed message; `None` on EOF, reset or `wait` without one.
async fn read_frame(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(wait, async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    })
    .await
    .ok()
    .flatten()
}

fn id_of(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Sends `bad` then a normal query in one write on a fresh TCP connection. The reply to `bad`
/// (by ID) must match `expect`, and the normal query must be answered: on the same connection,
/// or, when the server chose to close it, on a new one.
async fn over_tcp(addr: SocketAddr, label: &str, id: u16, bad: &[u8], expect: Expect) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let good = query(WEB_NAME, RecordType::A, None);
    let good_id = good.metadata.id;
    assert_ne!(good_id, id);
    let mut out = framed(bad);
    out.extend(framed(&good.to_vec().unwrap()));
    s.write_all(&out).await.unwrap();
    let (mut bad_reply, mut good_reply) = (None, None);
    // Answers may come in any order (RFC 7766 §6.2.1.1): read until both are in, or until
    // nothing more comes shortly after the good one.
    while good_reply.is_none() || bad_reply.is_none() {
        let wait = if good_reply.is_some() {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(3)
        };
        let Some(frame) = read_frame(&mut s, wait).await else {
            break;
        };
        if frame.len() >= 2 && id_of(&frame) == good_id {
            good_reply = Some(frame);
        } else {
            assert!(bad_reply.is_none(), "{label} (TCP): one reply per message");
            bad_reply = Some(frame);
        }
    }
    check(&format!("{label} (TCP)"), id, expect, bad_reply.as_deref());
    match good_reply {
        Some(r) => {
            let m = Message::from_vec(&r).unwrap();
            assert_eq!(m.answers[0].data.to_string(), WEB_IP, "{label} (TCP)");
        }
        None => {
            let m = tcp(addr, &good).await;
            assert_eq!(
                m.answers[0].data.to_string(),
                WEB_IP,
                "{label} (TCP, new connection)"
            );
        }
    }
}

/// Sends `bytes` then a normal query from one socket, and returns the reply to `bytes` if
/// one came before the normal query's answer. The server reads one socket's datagrams in
/// order, so silence here is a drop, not a server too slow for a fixed wait.
async fn udp_then_healthy(addr: SocketAddr, bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = query(WEB_NAME, RecordType::A, None);
    sock.send_to(bytes, addr).await.unwrap();
    sock.send_to(&good.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(REPLY_WAIT, sock.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{label}: the normal query after it answered"))
        .unwrap();
    (buf[..n].len() < 2 || id_of(&buf[..n]) != good.metadata.id).then(|| buf[..n].to_vec())
}

/// Each case over UDP and over TCP, with a normal query after each.
async fn run_cases(server: &TestServer, cases: &[(&str, Vec<u8>, Expect)]) {
    for (label, bytes, expect) in cases {
        let id = if bytes.len() >= 2 { id_of(bytes) } else { 0 };
        let reply = if *expect == Expect::Dropped {
            udp_then_healthy(server.addr, bytes, label).await
        } else {
            udp_raw(server.addr, bytes, REPLY_WAIT).await
        };
        check(label, id, *expect, reply.as_deref());
        healthy(server.addr, label).await;
        over_tcp(server.addr, label, id, bytes, *expect).await;
        healthy(server.addr, label).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_and_questions() {
    let server = TestServer::example(&[]).await;
    let formerr = Expect::Rcode(ResponseCode::FormErr);
    // A 255-octet name (the RFC 1035 §2.3.4 limit) and a 256-octet one, inside the zone.
    let a63 = "a".repeat(63);
    let mut at_limit: Vec<&str> = vec![&a63, &a63, &a63];
    let tail = "b".repeat(255 - 3 * 64 - 16);
    at_limit.push(&tail);
    at_limit.extend(["cluster", "local"]);
    assert_eq!(wire_name(&at_limit).len(), 255);
    let longer = "b".repeat(tail.len() + 1);
    let mut over_limit = at_limit.clone();
    over_limit[3] = &longer;
    assert_eq!(wire_name(&over_limit).len(), 256);

    let mut cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "11-byte header",
            header(0x0101, QUERY, [1, 0, 0, 0])[..11].to_vec(),
            Expect::Dropped,
        ),
        ("QDCOUNT 0", header(0x0102, QUERY, [0, 0, 0, 0]), formerr),
        (
            "QDCOUNT 2",
            [
                web_query(0x0103, QUERY, [2, 0, 0, 0], &[]),
                question(&WEB, 28, 1),
            ]
            .concat(),
            formerr,
        ),
        // QDCOUNT says 2, one question is there.
        (
            "QDCOUNT past the end",
            web_query(0x0104, QUERY, [2, 0, 0, 0], &[]),
            formerr,
        ),
        // ANCOUNT and ARCOUNT claim records the message does not hold.
        (
            "ANCOUNT past the end",
            web_query(0x0105, QUERY, [1, 1, 0, 0], &[]),
            formerr,
        ),
        (
            "ARCOUNT past the end",
            web_query(0x0106, QUERY, [1, 0, 0, 3], &[]),
            formerr,
        ),
    ];
    // Two compression pointers pointing at each other (offsets 12 and 14).
    let mut b = header(0x0107, QUERY, [1, 0, 0, 0]);
    b.extend_from_slice(&[0xC0, 14, 0xC0, 12, 0, 1]);
    cases.push(("pointer loop of two", b, formerr));
    // A label, then a pointer back to it: a name that grows forever.
    let mut b = header(0x0108, QUERY, [1, 0, 0, 0]);
    b.extend_from_slice(&[1, b'a', 0xC0, 12, 0, 1, 0, 1]);
    cases.push(("pointer back to its own label", b, formerr));
    // A pointer forward, past the end of the message.
    let mut b = header(0x0109, QUERY, [1, 0, 0, 0]);
    b.extend_from_slice(&[0xC0, 0xFF, 0, 1, 0, 1]);
    cases.push(("pointer past the end", b, formerr));
    // A 64-octet label: the length byte 0x40 is the deprecated extended label type.
    let mut b = header(0x010A, QUERY, [1, 0, 0, 0]);
    b.push(64);
    b.extend(std::iter::repeat_n(b'a', 64));
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(("64-octet label", b, formerr));
    // Label type 0b10 is reserved.
    let mut b = header(0x010B, QUERY, [1, 0, 0, 0]);
    b.extend_from_slice(&[0x80, b'a', 0, 0, 1, 0, 1]);
    cases.push(("reserved label type", b, formerr));
    let mut b = header(0x010C, QUERY, [1, 0, 0, 0]);
    b.extend(question(&over_limit, 1, 1));
    cases.push(("256-octet name", b, formerr));
    run_cases(&server, &cases).await;

    // The 255-octet name is legal: answered (NXDOMAIN, with the SOA).
    let mut b = header(0x010D, QUERY, [1, 0, 0, 0]);
    b.extend(question(&at_limit, 1, 1));
    let reply = udp_raw(server.addr, &b, REPLY_WAIT)
        .await
        .expect("255 octets answered");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1, "negative answer carries the SOA");

    // A zero-length TCP frame: not a message; the connection may stay or close, the server
    // answers the next query either way.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let good = query(WEB_NAME, RecordType::A, None);
    let mut out = vec![0, 0];
    out.extend(framed(&good.to_vec().unwrap()));
    s.write_all(&out).await.unwrap();
    if let Some(r) = read_frame(&mut s, Duration::from_secs(3)).await {
        assert_eq!(
            id_of(&r),
            good.metadata.id,
            "only the real query is answered"
        );
    }
    healthy(server.addr, "a zero-length TCP frame").await;
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_opt_records_get_formerr() {
    let server = TestServer::example(&[]).await;
    let formerr = Expect::Rcode(ResponseCode::FormErr);
    let root = [0u8];
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        // RFC 6891 §6.1.2: the owner MUST be the root.
        (
            "OPT owned by a non-root name",
            web_query(
                0x0201,
                QUERY,
                [1, 0, 0, 1],
                &opt(&wire_name(&["x"]), 0, &[]),
            ),
            formerr,
        ),
        // RFC 6891 §6.1.1: OPT belongs in the additional section.
        (
            "OPT in the answer section",
            web_query(0x0202, QUERY, [1, 1, 0, 0], &opt(&root, 0, &[])),
            formerr,
        ),
        (
            "OPT in the authority section",
            web_query(0x0203, QUERY, [1, 0, 1, 0], &opt(&root, 0, &[])),
            formerr,
        ),
        // RDLENGTH 12, four bytes present.
        (
            "OPT RDATA cut short",
            web_query(0x0204, QUERY, [1, 0, 0, 1], &opt(&root, 12, &[0, 10, 0, 8])),
            formerr,
        ),
        // RFC 6891 §6.1.1: more than one OPT is a FORMERR.
        (
            "two OPT records",
            web_query(
                0x0205,
                QUERY,
                [1, 0, 0, 2],
                &[opt(&root, 0, &[]), opt(&root, 0, &[])].concat(),
            ),
            formerr,
        ),
        // An option whose OPTION-LENGTH (200) is larger than the whole RDATA (8).
        (
            "EDNS option longer than the OPT RDATA",
            web_query(
                0x0206,
                QUERY,
                [1, 0, 0, 1],
                &opt(&root, 8, &[0, 10, 0, 200, 1, 2, 3, 4]),
            ),
            formerr,
        ),
    ];
    run_cases(&server, &cases).await;

    // A COOKIE option of 2 bytes, then an ECS option whose length (1) runs past the end of the
    // RDATA. hickory-proto drops the options and the query is answered as if it had none;
    // FORMERR would be as right. Either way, an OPT comes back (RFC 6891 §7).
    let id = 0x0207;
    let bytes = web_query(
        id,
        QUERY,
        [1, 0, 0, 1],
        &opt(&root, 10, &[0, 10, 0, 2, 1, 2, 0, 8, 0, 1]),
    );
    let reply = udp_raw(server.addr, &bytes, REPLY_WAIT).await;
    check(
        "EDNS option past the end of the RDATA",
        id,
        Expect::FormErrOrAnswer,
        reply.as_deref(),
    );
    let m = Message::from_vec(&reply.unwrap()).unwrap();
    if m.metadata.response_code == ResponseCode::NoError {
        assert!(m.edns.is_some(), "OPT in the answer to an EDNS query");
    }
    healthy(server.addr, "an EDNS option past the end").await;
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_class_other_opcodes_and_trailing_garbage() {
    let server = TestServer::example(&[]).await;
    let mut cases: Vec<(&str, Vec<u8>, Expect)> = Vec::new();
    // Class 77 is unassigned: not ours to answer.
    let mut b = header(0x0301, QUERY, [1, 0, 0, 0]);
    b.extend(question(&WEB, 1, 77));
    cases.push(("class 77", b, Expect::Rcode(ResponseCode::Refused)));
    // IQUERY (1, obsolete: RFC 3425), STATUS (2), unassigned (3), NOTIFY (4), UPDATE (5),
    // DSO (6), unassigned (15): NOTIMP.
    let labels = [
        "IQUERY",
        "STATUS",
        "opcode 3",
        "NOTIFY",
        "UPDATE",
        "DSO",
        "opcode 15",
    ];
    for (op, label) in [1u16, 2, 3, 4, 5, 6, 15].into_iter().zip(labels) {
        let flags = (op << 11) | QUERY;
        let b = web_query(0x0310 + op, flags, [1, 0, 0, 0], &[]);
        cases.push((label, b, Expect::Rcode(ResponseCode::NotImp)));
    }
    // Bytes after the last section.
    let b = web_query(
        0x0320,
        QUERY,
        [1, 0, 0, 0],
        b"\xC0\x0Cgarbage after the question",
    );
    cases.push(("trailing garbage", b, Expect::FormErrOrAnswer));
    run_cases(&server, &cases).await;

    // The question is echoed in the REFUSED and NOTIMP answers, and an EDNS query gets an OPT.
    let mut b = header(0x0330, (5 << 11) | QUERY, [1, 0, 0, 1]);
    b.extend(question(&WEB, 1, 1));
    b.extend(opt(&[0], 0, &[]));
    let m =
        Message::from_vec(&udp_raw(server.addr, &b, REPLY_WAIT).await.expect("NOTIMP")).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(m.queries.len(), 1, "question echoed");
    assert!(
        m.edns.is_some(),
        "OPT in the answer to an EDNS query (RFC 6891 §7)"
    );
    let mut b = header(0x0331, QUERY, [1, 0, 0, 0]);
    b.extend(question(&WEB, 1, 77));
    let m =
        Message::from_vec(&udp_raw(server.addr, &b, REPLY_WAIT).await.expect("REFUSED")).unwrap();
    assert_eq!(u16::from(m.queries[0].query_class), 77, "question echoed");
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_responses_are_never_answered() {
    let server = TestServer::example(&[]).await;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "QR=1",
            web_query(0x0401, RESPONSE, [1, 0, 0, 0], &[]),
            Expect::Dropped,
        ),
        (
            "QR=1, QDCOUNT 0",
            header(0x0402, RESPONSE, [0, 0, 0, 0]),
            Expect::Dropped,
        ),
        (
            "QR=1 with trailing garbage",
            web_query(0x0403, RESPONSE, [1, 0, 0, 0], b"\xC0\xFF"),
            Expect::Dropped,
        ),
        (
            "QR=1, opcode NOTIFY",
            web_query(0x0404, (4 << 11) | RESPONSE, [1, 0, 0, 0], &[]),
            Expect::Dropped,
        ),
    ];
    run_cases(&server, &cases).await;
    server.running.shutdown().await;
}

/// RFC 1035 §4.1.1: a response is never answered, or two servers can be made to bounce a
/// packet between them forever, and a spoofed source gets reflected traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_responses_are_never_answered() {
    let server = TestServer::example(&[]).await;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "QR=1, QDCOUNT past the end",
            web_query(0x0411, RESPONSE, [2, 0, 0, 0], &[]),
            Expect::Dropped,
        ),
        (
            "QR=1, two OPT records",
            web_query(
                0x0412,
                RESPONSE,
                [1, 0, 0, 2],
                &[opt(&[0], 0, &[]), opt(&[0], 0, &[])].concat(),
            ),
            Expect::Dropped,
        ),
        (
            "QR=1, FORMERR itself",
            header(0x0413, RESPONSE | 1, [0, 1, 0, 0]),
            Expect::Dropped,
        ),
    ];
    run_cases(&server, &cases).await;
    server.running.shutdown().await;
}

/// Services for the ANY tests: dual-stack ClusterIP, ExternalName, and a headless Service with
/// `n` ready endpoints, each with a hostname.
fn any_cluster(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: dual, namespace: shop}\n\
         spec:\n  clusterIP: 10.96.0.30\n  clusterIPs: [10.96.0.30, \"fd00::30\"]\n  ports: [{name: http, port: 80}]\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: shop}\n\
         spec: {type: ExternalName, externalName: pay.example.com}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: shop}\n\
         spec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: many-1, namespace: shop, labels: {kubernetes.io/service-name: many}}\n\
         addressType: IPv4\nports: [{name: http, port: 80, protocol: TCP}]\nendpoints:\n",
    );
    for i in 0..n {
        writeln!(
            s,
            "- {{addresses: [\"10.1.{}.{}\"], hostname: host-{i}}}",
            i / 250,
            i % 250 + 1
        )
        .unwrap();
    }
    s
}

/// The answer section holds at most one RRset: one owner, one type.
fn one_rrset(m: &Message) -> bool {
    let first = m.answers.first();
    m.answers
        .iter()
        .all(|r| first.is_some_and(|f| f.name == r.name && f.record_type() == r.record_type()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_is_answered_minimally() {
    let server = TestServer::with_files(&[("c.yaml", &any_cluster(150))], &[]).await;
    let addr = server.addr;

    // A ClusterIP Service with an A and an AAAA record: ANY gets one of them, no bigger than
    // the A answer (the question is the same size).
    let dual = "dual.shop.svc.cluster.local.";
    let (a, a_len) = udp(addr, &query(dual, RecordType::A, None)).await;
    assert_eq!(a.answers.len(), 1);
    let (any, any_len) = udp(addr, &query(dual, RecordType::ANY, None)).await;
    assert_eq!(any.metadata.response_code, ResponseCode::NoError);
    assert_eq!(any.answers.len(), 1, "one record for ANY (RFC 8482 §4.2)");
    assert!(
        any_len <= a_len + 12,
        "ANY {any_len} bytes, A {a_len} bytes"
    );
    assert!(any.additionals.is_empty() && any.authorities.is_empty());

    // An ExternalName: the CNAME alone.
    let (m, _) = udp(
        addr,
        &query("ext.shop.svc.cluster.local.", RecordType::ANY, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);

    // The apex: one record, not SOA + NS + everything.
    let (m, _) = udp(addr, &query("cluster.local.", RecordType::ANY, None)).await;
    assert!(
        m.answers.len() <= 1 && one_rrset(&m),
        "apex ANY: {:?}",
        m.answers
    );

    // A headless Service with 150 endpoints: never more than the A answer, and within the
    // UDP limits, so ANY is no better an amplifier than A.
    let many = "many.shop.svc.cluster.local.";
    let (m, len) = udp(addr, &query(many, RecordType::ANY, None)).await;
    assert!(len <= 512, "{len} bytes without EDNS");
    assert!(one_rrset(&m));
    let (m, len) = udp(addr, &query(many, RecordType::ANY, Some(4096))).await;
    assert!(len <= 1232, "{len} bytes with EDNS 4096");
    assert!(one_rrset(&m));
    let (_, a_len) = udp(addr, &query(many, RecordType::A, Some(4096))).await;
    assert!(
        len <= a_len + 12,
        "ANY {len} bytes, A {a_len} bytes over UDP"
    );
    let a = tcp(addr, &query(many, RecordType::A, None)).await;
    let any = tcp(addr, &query(many, RecordType::ANY, None)).await;
    let (a_len, any_len) = (a.to_vec().unwrap().len(), any.to_vec().unwrap().len());
    assert!(one_rrset(&any));
    assert!(
        any_len <= a_len + 12,
        "ANY {any_len} bytes, A {a_len} bytes over TCP"
    );
    assert!(any.additionals.is_empty(), "no glue for ANY");

    // SRV names: one SRV RRset.
    let srv = "_http._tcp.many.shop.svc.cluster.local.";
    let (m, len) = udp(addr, &query(srv, RecordType::ANY, Some(1232))).await;
    assert!(len <= 1232);
    assert!(one_rrset(&m));
    healthy_any(addr).await;
    server.running.shutdown().await;
}

/// A normal query for the ANY cluster.
async fn healthy_any(addr: SocketAddr) {
    let (m, _) = udp(
        addr,
        &query("dual.shop.svc.cluster.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers[0].data.to_string(), "10.96.0.30");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_queries_are_all_answered() {
    let server = TestServer::example(&[]).await;
    let asks: Vec<(&str, RecordType, ResponseCode, Option<&str>)> = vec![
        (WEB_NAME, RecordType::A, ResponseCode::NoError, Some(WEB_IP)),
        (
            "api.shop.svc.cluster.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
            Some("fd00:10:96::30"),
        ),
        (
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
            Some("10.96.0.1"),
        ),
        (
            "nope.shop.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            None,
        ),
        (
            "db-1.db.data.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
            Some("10.244.2.31"),
        ),
        ("example.com.", RecordType::A, ResponseCode::Refused, None),
    ];
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    let mut want = std::collections::HashMap::new();
    // 60 queries: ten rounds of the six, all in one write.
    for _ in 0..10 {
        for (name, qtype, rcode, data) in &asks {
            let mut q = query(name, *qtype, None);
            q.metadata.id = loop {
                let id = rand::random::<u16>();
                if !want.contains_key(&id) {
                    break id;
                }
            };
            want.insert(q.metadata.id, (*name, *rcode, *data));
            out.extend(framed(&q.to_vec().unwrap()));
        }
    }
    s.write_all(&out).await.unwrap();
    while !want.is_empty() {
        let frame = read_frame(&mut s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{} pipelined queries unanswered", want.len()));
        let m = Message::from_vec(&frame).unwrap();
        let (name, rcode, data) = want
            .remove(&m.metadata.id)
            .unwrap_or_else(|| panic!("reply with an unknown or repeated ID {}", m.metadata.id));
        assert_eq!(m.queries[0].name().to_string(), name);
        assert_eq!(m.metadata.response_code, rcode, "{name}");
        let got: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(
            got,
            data.into_iter().map(str::to_owned).collect::<Vec<_>>(),
            "{name}"
        );
    }
    server.running.shutdown().await;
}

/// Whether the server closes `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // Bytes from the server (none are expected): keep waiting for the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_framed_tcp_connections_are_closed() {
    let server = TestServer::example(&["--tcp-idle-timeout", "500ms"]).await;
    let within = Duration::from_secs(5);

    // Silent from the start.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Half a length prefix.
    let mut half_prefix = TcpStream::connect(server.addr).await.unwrap();
    half_prefix.write_all(&[0]).await.unwrap();
    // A whole prefix, half the message.
    let mut half_message = TcpStream::connect(server.addr).await.unwrap();
    let q = query(WEB_NAME, RecordType::A, None).to_vec().unwrap();
    half_message
        .write_all(&framed(&q)[..2 + q.len() / 2])
        .await
        .unwrap();
    // Silent after one answered query.
    let mut after_one = TcpStream::connect(server.addr).await.unwrap();
    after_one.write_all(&framed(&q)).await.unwrap();
    assert!(
        read_frame(&mut after_one, Duration::from_secs(3))
            .await
            .is_some()
    );

    for (label, s) in [
        ("silent", &mut silent),
        ("half a length prefix", &mut half_prefix),
        ("half a message", &mut half_message),
        ("silent after one query", &mut after_one),
    ] {
        assert!(
            closed_within(s, within).await,
            "{label}: closed by the server within {within:?}"
        );
    }

    healthy(server.addr, "idle connections").await;
    server.running.shutdown().await;
}

/// A connection that keeps asking outlives the idle timeout many times over: it is idleness
/// that closes, not age. (A timeout of 2 s, so that a loaded machine's pause between two
/// queries 100 ms apart does not pass for idleness.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_tcp_connections_outlive_the_idle_timeout() {
    const IDLE: Duration = Duration::from_secs(2);
    let server = TestServer::example(&["--tcp-idle-timeout", "2s"]).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    let opened = tokio::time::Instant::now();
    let mut asked = 0;
    while opened.elapsed() < 3 * IDLE {
        let q = query(WEB_NAME, RecordType::A, None);
        busy.write_all(&framed(&q.to_vec().unwrap())).await.unwrap();
        let r = read_frame(&mut busy, Duration::from_secs(3)).await;
        assert_eq!(
            r.as_deref().map(id_of),
            Some(q.metadata.id),
            "busy connection answered after {:?} ({asked} queries)",
            opened.elapsed()
        );
        asked += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthy(server.addr, "a busy connection").await;
    server.running.shutdown().await;
}

/// Most queries a hog writes: 14 MB, more than the socket buffers of both ends hold, so a
/// server that stops reading when its answers back up makes the hog's writes block first.
const HOG_CAP: usize = 300_000;

/// Bytes of answers waiting unread in `s`'s receive queue.
fn unread(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    usize::try_from(n).unwrap()
}

/// A connection that writes queries (in batches of 100) and never reads, until the server's
/// answers have backed up: a write has made no progress for two seconds while no answer
/// arrived (the server neither reads nor writes the connection), with answers unread. A
/// server merely slowed by a loaded machine still sends answers, and the hog goes on. At most
/// `HOG_CAP` queries. Returns it and the count.
async fn hog(addr: SocketAddr) -> (TcpStream, usize) {
    let one = framed(&query(WEB_NAME, RecordType::A, None).to_vec().unwrap());
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 100).collect();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut written, mut pos) = (0, 0);
    let mut quiet_since: Option<(tokio::time::Instant, usize)> = None;
    while written < HOG_CAP {
        // `write`, not `write_all`, so a stalled write given up on leaves no half frame.
        match tokio::time::timeout(Duration::from_millis(500), s.write(&batch[pos..])).await {
            Ok(Ok(n)) if n > 0 => {
                quiet_since = None;
                pos += n;
                if pos == batch.len() {
                    (written, pos) = (written + 100, 0);
                }
            }
            Ok(_) => panic!("the server closed a connection it should only stop reading"),
            Err(_) => {
                let (now, waiting) = (tokio::time::Instant::now(), unread(&s));
                match quiet_since {
                    Some((since, at)) if at == waiting => {
                        if waiting > 0 && now - since >= Duration::from_secs(2) {
                            break;
                        }
                    }
                    _ => quiet_since = Some((now, waiting)),
                }
            }
        }
    }
    (s, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_do_not_stall_others() {
    // Stalled connections are closed after the idle timeout (the next test); here they are
    // kept, stalled, for the whole test.
    let server = TestServer::example(&["--tcp-idle-timeout", "10m"]).await;
    let addr = server.addr;
    // Three hogs, each stuck with the server's answers backed up.
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let (s, written) = hog(addr).await;
        assert!(
            written < HOG_CAP,
            "the server stops reading a connection whose answers back up (it read {written})"
        );
        hogs.push(s);
    }

    // Meanwhile, over UDP and over other TCP connections, every query is answered.
    for i in 0..50 {
        let mut q = query(WEB_NAME, RecordType::A, None);
        q.metadata.id = rand::random();
        let (m, _) = udp(addr, &q).await;
        assert_eq!(m.answers[0].data.to_string(), WEB_IP, "UDP query {i}");
        if i % 5 == 0 {
            let m = tcp(addr, &q).await;
            assert_eq!(m.answers[0].data.to_string(), WEB_IP, "TCP query {i}");
        }
    }
    // The hogs were stuck all along: their answers still wait, unread.
    for (i, s) in hogs.iter().enumerate() {
        assert!(unread(s) > 0, "hog {i} has answers waiting");
    }
    drop(hogs);
    healthy(addr, "clients that never read").await;
    server.running.shutdown().await;
}

/// A connection whose answers cannot be written for longer than the idle timeout is closed,
/// so a client that never reads cannot hold a connection (and its buffers) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected() {
    let server = TestServer::example(&["--tcp-idle-timeout", "500ms"]).await;
    let one = framed(&query(WEB_NAME, RecordType::A, None).to_vec().unwrap());
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 100).collect();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Writes until the server resets the connection, for at most 30 s. The server answers
    // until its send buffer is full (a few MB of answers), then its writes stall; once they
    // have stalled for the idle timeout it closes, and a close with queries still unread
    // resets the connection, so the next write fails.
    let started = tokio::time::Instant::now();
    let limit = Duration::from_secs(30);
    let (mut written, mut pos) = (0, 0);
    let closed = loop {
        if started.elapsed() > limit {
            break false;
        }
        // `write`, not `write_all`, so a stalled write given up on leaves no half frame.
        match tokio::time::timeout(Duration::from_secs(1), s.write(&batch[pos..])).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => {
                pos += n;
                if pos == batch.len() {
                    (written, pos) = (written + 100, 0);
                }
            }
            // Stalled: the server is not reading now; try again.
            Err(_) => {}
        }
    };
    assert!(
        closed,
        "connection that never reads still open after {limit:?} ({written} queries written)"
    );
    healthy(server.addr, "a stuck connection").await;
    server.running.shutdown().await;
}

/// Datagrams the kernel dropped on the UDP sockets bound to `addr`'s port (all of them: the
/// server has several sharing it) because their receive buffers were full (the `drops` column
/// of `/proc/net/udp`), where Linux tells.
fn socket_drops(addr: SocketAddr) -> Option<u64> {
    let port = format!(":{:04X}", addr.port());
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let drops = table.lines().filter_map(|l| {
        let mut fields = l.split_whitespace();
        fields.nth(1).filter(|a| a.ends_with(&port))?;
        l.split_whitespace().last()?.parse::<u64>().ok()
    });
    Some(drops.sum())
}

/// One task floods the server from one socket of 127.0.0.2 (never reading), as another pod
/// would, until the client on 127.0.0.1 is done, while that client asks 50 normal queries with
/// random IDs, each sent again every 250 ms until answered, as stub resolvers do. The flood
/// sends its first 2,000 queries, waits for the client, and goes on; the client asks only once
/// the flood has resumed, and each of its answers must come while the flood is still sending,
/// so the two overlap however the machine schedules them. How fast the answers come under a flood is a figure for the
/// machine, not a check: `bench/flood.sh` measures it (latency and loss of a client sending
/// each query once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_from_one_source_does_not_starve_a_retrying_client() {
    const HEAD_START: usize = 2_000;
    /// A bound on the whole test, not a figure: reached only when the client is starved.
    const GIVE_UP: Duration = Duration::from_secs(60);
    let server = TestServer::example(&[]).await;
    let addr = server.addr;
    let drops_before = socket_drops(addr);
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (under_way_tx, under_way) = tokio::sync::oneshot::channel::<()>();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let flood = {
        let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
        tokio::spawn(async move {
            // Another address than the client's: lanes keep sources apart by address, so a
            // flood fills only its own. A client sharing the flooder's address (its own pod)
            // shares its lane, and gets a part of the answers; `bench/overload.sh` measures it.
            let sock = UdpSocket::bind("127.0.0.2:0").await.unwrap();
            let names = [
                WEB_NAME,
                "nope.shop.svc.cluster.local.",
                "db.data.svc.cluster.local.",
            ];
            let packets: Vec<Vec<u8>> = names
                .iter()
                .map(|n| query(n, RecordType::A, None).to_vec().unwrap())
                .collect();
            let (mut under_way_tx, mut go_rx) = (Some(under_way_tx), Some(go_rx));
            let started = tokio::time::Instant::now();
            for i in 0.. {
                if i == HEAD_START
                    && let (Some(tx), Some(rx)) = (under_way_tx.take(), go_rx.take())
                {
                    let _ = tx.send(());
                    // The client has dropped its sender if it gave up.
                    let _ = rx.await;
                }
                if stop.load(Ordering::Relaxed) || started.elapsed() > 2 * GIVE_UP {
                    break;
                }
                let mut p = packets[i % packets.len()].clone();
                p[..2].copy_from_slice(&rand::random::<u16>().to_be_bytes());
                // A full send buffer is not the test's concern: the flooder moves on.
                let _ = sock.send_to(&p, addr).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let head_start = tokio::time::timeout(GIVE_UP, under_way).await;
    assert!(
        matches!(head_start, Ok(Ok(()))),
        "the flood sent its first {HEAD_START} queries"
    );
    let at_start = sent.load(Ordering::Relaxed);
    let _ = go.send(());
    let resumed = tokio::time::Instant::now();
    while sent.load(Ordering::Relaxed) == at_start && resumed.elapsed() < GIVE_UP {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        sent.load(Ordering::Relaxed) > at_start,
        "the flood went on once the client was ready"
    );

    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let give_up = tokio::time::Instant::now() + GIVE_UP;
    for i in 0..50 {
        let mut q = query(WEB_NAME, RecordType::A, None);
        q.metadata.id = rand::random();
        let bytes = q.to_vec().unwrap();
        let flood_before = sent.load(Ordering::Relaxed);
        let mut answer = None;
        'query: while tokio::time::Instant::now() < give_up {
            sock.send_to(&bytes, addr).await.unwrap();
            let resend = (tokio::time::Instant::now() + Duration::from_millis(250)).min(give_up);
            while let Ok(n) = tokio::time::timeout_at(resend, sock.recv(&mut buf)).await {
                let m = Message::from_vec(&buf[..n.unwrap()]).unwrap();
                // A late reply to an earlier query (or try) is skipped; only this ID counts.
                if m.metadata.id == q.metadata.id {
                    answer = Some(m);
                    break 'query;
                }
            }
        }
        let flood_during = sent.load(Ordering::Relaxed) - flood_before;
        let drops = socket_drops(addr).zip(drops_before).map(|(a, b)| a - b);
        let m = answer.unwrap_or_else(|| {
            panic!(
                "query {i} unanswered after {GIVE_UP:?} of retries, {flood_during} flood \
                 packets meanwhile; the server's socket dropped {drops:?} datagrams"
            )
        });
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let ips: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(ips, [WEB_IP], "the answer to the query");
    }
    // The flood stops only when told: it went on through every query.
    assert!(!flood.is_finished(), "the flood lasted the whole time");
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    healthy(addr, "the flood").await;
    server.running.shutdown().await;
}

/// Query types outside the common set share one metrics series: a client cycling through
/// type numbers cannot grow the registry.
#[tokio::test]
async fn uncommon_query_types_share_one_metrics_series() {
    let server = TestServer::example(&[]).await;
    for t in [65000u16, 65001, 65002, 3333] {
        let q = query(WEB_NAME, RecordType::Unknown(t), None);
        let reply = udp_raw(server.addr, &q.to_vec().unwrap(), Duration::from_secs(2)).await;
        assert!(reply.is_some(), "TYPE{t} answered");
    }
    let text = server.running.metrics.encode();
    assert!(
        text.contains(
            "zone=\"cluster.local.\",view=\"\",proto=\"udp\",family=\"1\",type=\"other\"} 4"
        ),
        "{text}"
    );
    assert!(!text.contains("TYPE65000"), "{text}");
}

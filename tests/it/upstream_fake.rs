//! The fake upstream used by the forwarder's tests, checked over real UDP and TCP sockets.
use crate::common;

use std::time::{Duration, Instant};

use futures::StreamExt;

use common::upstream::{Behaviour, DEFAULT_SOA, FakeUpstream, Gate, Proto, parse_record};
use common::{query, tcp, udp, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WWW_A: [&str; 2] = [
    "www.example.com. 300 IN A 192.0.2.1",
    "www.example.com. 300 IN A 192.0.2.2",
];
/// An RRSIG over A (type covered 0x0001), in RFC 3597 generic form.
const WWW_RRSIG: &str = "www.example.com. 300 IN RRSIG \\# 6 0001 0d 02 0000";

/// A fake holding the two `www` A records.
async fn www() -> FakeUpstream {
    let fake = FakeUpstream::start().await;
    WWW_A.iter().for_each(|line| fake.add(line));
    fake
}

fn lines(records: &[Record]) -> Vec<String> {
    let line = |r: &Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
    records.iter().map(line).collect()
}

async fn write_query(stream: &mut TcpStream, msg: &Message) {
    let bytes = msg.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend(bytes);
    stream.write_all(&framed).await.unwrap();
}

async fn read_reply(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut len));
    read.await.expect("TCP reply in time").unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

#[tokio::test]
async fn answers_from_records_as_a_recursive_server() {
    let fake = www().await;
    let mut q = query("WWW.Example.COM.", RecordType::A, Some(4096));
    let (reply, _) = udp(fake.addr(), &q).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.queries, q.queries);
    assert_eq!(reply.queries[0].name().to_string(), "WWW.Example.COM.");
    assert_eq!(lines(&reply.answers), WWW_A);
    assert!(reply.authorities.is_empty());
    let m = &reply.metadata;
    assert!(m.recursion_available && m.recursion_desired && !m.authoritative && !m.truncation);
    let edns = reply.edns.expect("EDNS echoed");
    assert_eq!(edns.max_payload(), 1232);
    assert!(!edns.flags().dnssec_ok);

    q = query("www.example.com.", RecordType::A, None);
    q.metadata.recursion_desired = false;
    let reply = tcp(fake.addr(), &q).await;
    assert!(!reply.metadata.recursion_desired && reply.metadata.recursion_available);
    assert!(reply.edns.is_none(), "no EDNS without EDNS in the query");
    assert_eq!(lines(&reply.answers), WWW_A);
}

#[tokio::test]
async fn parses_the_common_record_types() {
    let fake = FakeUpstream::start().await;
    let table = [
        "v6.example.com. 60 IN AAAA 2001:db8::1",
        "example.com. 3600 IN MX 10 mail.example.com.",
        "example.com. 3600 IN NS ns.example.com.",
        "txt.example.com. 60 IN TXT \"hello world\"",
        "_dns._udp.example.com. 30 IN SRV 0 100 53 ns.example.com.",
        "1.2.0.192.in-addr.arpa. 300 IN PTR www.example.com.",
    ];
    for line in table {
        fake.add(line);
        let record = parse_record(line);
        let name = record.name.to_string();
        let (reply, _) = udp(fake.addr(), &query(&name, record.record_type(), None)).await;
        assert_eq!(reply.answers, [record], "{line}");
    }
    let (reply, _) = udp(fake.addr(), &query("example.com.", RecordType::SOA, None)).await;
    assert_eq!(lines(&reply.answers), [DEFAULT_SOA]);
}

#[tokio::test]
async fn negative_answers_carry_the_soa() {
    let fake = www().await;
    fake.add("a.b.example.com. 60 IN A 192.0.2.9");
    let nx = udp(
        fake.addr(),
        &query("nope.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(nx.0.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.0.answers.is_empty());
    assert_eq!(lines(&nx.0.authorities), [DEFAULT_SOA]);

    for (name, qtype) in [
        ("www.example.com.", RecordType::AAAA),
        ("b.example.com.", RecordType::A), // empty non-terminal
        ("example.com.", RecordType::A),   // the SOA's owner exists
    ] {
        let (reply, _) = udp(fake.addr(), &query(name, qtype, None)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(lines(&reply.authorities), [DEFAULT_SOA], "{name}");
    }

    let soa = "other.test. 30 IN SOA ns.other.test. admin.other.test. 7 1 1 1 5";
    fake.set_soa(soa);
    let (reply, _) = udp(
        fake.addr(),
        &query("nope.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(lines(&reply.authorities), [soa]);
}

#[tokio::test]
async fn follows_cnames() {
    let fake = www().await;
    let alias = "alias.example.com. 60 IN CNAME www.example.com.";
    let dangling = "gone.example.com. 60 IN CNAME nowhere.example.com.";
    fake.add(alias);
    fake.add(dangling);
    let (reply, _) = udp(
        fake.addr(),
        &query("alias.example.com.", RecordType::A, None),
    )
    .await;
    assert_eq!(lines(&reply.answers), [alias, WWW_A[0], WWW_A[1]]);
    let (reply, _) = udp(
        fake.addr(),
        &query("alias.example.com.", RecordType::CNAME, None),
    )
    .await;
    assert_eq!(lines(&reply.answers), [alias]);
    let (reply, _) = udp(
        fake.addr(),
        &query("gone.example.com.", RecordType::AAAA, None),
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(lines(&reply.answers), [dangling]);
    assert_eq!(lines(&reply.authorities), [DEFAULT_SOA]);
}

#[tokio::test]
async fn rrsigs_only_with_do() {
    let fake = www().await;
    fake.add(WWW_RRSIG);
    // An RRSIG over AAAA (type 28) is not served with the A RRset.
    fake.add("www.example.com. 300 IN RRSIG \\# 2 001c");
    let mut q = query("www.example.com.", RecordType::A, Some(1232));
    let (plain, _) = udp(fake.addr(), &q).await;
    assert_eq!(plain.answers.len(), 2);
    assert!(!plain.edns.unwrap().flags().dnssec_ok);

    q.edns.as_mut().unwrap().set_dnssec_ok(true);
    let (signed, _) = udp(fake.addr(), &q).await;
    assert!(signed.edns.unwrap().flags().dnssec_ok, "DO echoed");
    let types: Vec<RecordType> = signed.answers.iter().map(Record::record_type).collect();
    assert_eq!(types, [RecordType::A, RecordType::A, RecordType::RRSIG]);
    assert_eq!(signed.answers[2], parse_record(WWW_RRSIG));
}

#[tokio::test]
async fn delays_each_query_independently() {
    const DELAY: Duration = Duration::from_millis(500);
    let fake = www().await;
    fake.add("slow.example.com. 60 IN A 192.0.2.7");
    fake.behave("slow.example.com", Behaviour::Delay(DELAY));
    let addr = fake.addr();
    let started = Instant::now();
    let slow = |_| async move {
        udp(addr, &query("slow.example.com.", RecordType::A, None)).await;
        started.elapsed()
    };
    let fast = async {
        udp(addr, &query("www.example.com.", RecordType::A, None)).await;
        started.elapsed()
    };
    // The three slow queries overlap: all of them are in when the first is answered (in
    // turn, the second would arrive only after the first answer).
    let overlap = async {
        let mut slow: futures::stream::FuturesUnordered<_> = (0..3).map(slow).collect();
        let first = slow.next().await.unwrap();
        let in_at_first = fake.count("slow.example.com.", RecordType::A);
        let mut all = vec![first];
        while let Some(at) = slow.next().await {
            all.push(at);
        }
        (all, in_at_first)
    };
    let ((slow_at, in_at_first), fast_at) = tokio::join!(overlap, fast);
    for at in &slow_at {
        assert!(*at >= DELAY, "delayed: {at:?}");
        assert!(
            fast_at < *at,
            "other names are not delayed: {fast_at:?}, {at:?}"
        );
    }
    assert_eq!(in_at_first, 3, "delays overlap");
}

#[tokio::test]
async fn silent_never_answers_but_counts() {
    let fake = www().await;
    fake.behave(".", Behaviour::Silent);
    let bytes = query("www.example.com.", RecordType::A, None)
        .to_vec()
        .unwrap();
    assert_eq!(
        udp_raw(fake.addr(), &bytes, Duration::from_millis(300)).await,
        None
    );
    assert_eq!(fake.count("www.example.com.", RecordType::A), 1);
}

#[tokio::test]
async fn rcodes_and_the_most_specific_suffix() {
    let fake = www().await;
    fake.add("ok.example.com. 60 IN A 192.0.2.8");
    fake.behave("EXAMPLE.com", Behaviour::Rcode(ResponseCode::Refused));
    fake.behave("ok.example.com.", Behaviour::Answer);
    fake.behave("", Behaviour::Rcode(ResponseCode::ServFail));
    let ask = |name: &'static str| {
        let addr = fake.addr();
        async move { udp(addr, &query(name, RecordType::A, None)).await.0 }
    };
    let refused = ask("www.example.com.").await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(refused.answers.is_empty() && refused.authorities.is_empty());
    assert_eq!(ask("ok.example.com.").await.answers.len(), 1);
    // Whole labels: "badexample.com" is not under "example.com".
    let other = ask("badexample.com.").await;
    assert_eq!(other.metadata.response_code, ResponseCode::ServFail);
    assert!(other.metadata.recursion_available);
}

#[tokio::test]
async fn root_ns_answers_health_probes() {
    let fake = FakeUpstream::start().await;
    let (reply, _) = udp(fake.addr(), &query(".", RecordType::NS, None)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers[0].record_type(), RecordType::NS);
    fake.behave(".", Behaviour::Silent);
    let bytes = query(".", RecordType::NS, None).to_vec().unwrap();
    assert_eq!(
        udp_raw(fake.addr(), &bytes, Duration::from_millis(200)).await,
        None
    );
}

#[tokio::test]
async fn truncates_over_udp_only() {
    let fake = www().await;
    fake.add("www.example.com. 300 IN A 192.0.2.3");
    fake.behave("www.example.com", Behaviour::TruncateUdp);
    let q = query("www.example.com.", RecordType::A, Some(1232));
    let (over_udp, _) = udp(fake.addr(), &q).await;
    assert!(over_udp.metadata.truncation);
    assert_eq!(lines(&over_udp.answers), [WWW_A[0]]);
    let over_tcp = tcp(fake.addr(), &q).await;
    assert!(!over_tcp.metadata.truncation);
    assert_eq!(over_tcp.answers.len(), 3);
}

#[tokio::test]
async fn honours_the_udp_payload_size() {
    let fake = FakeUpstream::start().await;
    let text = "x".repeat(200);
    for i in 0..4 {
        fake.add(&format!("big.example.com. 60 IN TXT \"{i}{text}\""));
    }
    let (small, len) = udp(
        fake.addr(),
        &query("big.example.com.", RecordType::TXT, None),
    )
    .await;
    assert!(small.metadata.truncation && small.answers.is_empty() && len <= 512);
    let q = query("big.example.com.", RecordType::TXT, Some(4096));
    let (large, len) = udp(fake.addr(), &q).await;
    assert!(!large.metadata.truncation && large.answers.len() == 4 && len > 512);
    let q = query("big.example.com.", RecordType::TXT, Some(600));
    assert!(udp(fake.addr(), &q).await.0.metadata.truncation);
    let q = query("big.example.com.", RecordType::TXT, None);
    assert_eq!(tcp(fake.addr(), &q).await.answers.len(), 4);
}

#[tokio::test]
async fn malformed_wrong_id_and_wrong_question() {
    let fake = www().await;
    let q = query("www.example.com.", RecordType::A, None);
    let bytes = q.to_vec().unwrap();
    let wait = Duration::from_secs(2);

    fake.behave("", Behaviour::Malformed);
    let garbage = udp_raw(fake.addr(), &bytes, wait).await.expect("a reply");
    assert_eq!(garbage[..2], q.metadata.id.to_be_bytes());
    assert!(Message::from_vec(&garbage).is_err());

    fake.behave("", Behaviour::WrongId);
    let raw = udp_raw(fake.addr(), &bytes, wait).await.expect("a reply");
    let reply = Message::from_vec(&raw).unwrap();
    assert_ne!(reply.metadata.id, q.metadata.id);
    assert_eq!(lines(&reply.answers), WWW_A);

    fake.behave("", Behaviour::WrongQuestion);
    let (reply, _) = udp(fake.addr(), &q).await;
    assert_eq!(
        reply.queries[0].name().to_string(),
        "wrong.www.example.com."
    );
    assert_eq!(reply.answers.len(), 2);
    assert!(
        reply
            .answers
            .iter()
            .all(|r| r.name == *reply.queries[0].name())
    );
}

#[tokio::test]
async fn relays_to_another_upstream() {
    let next = www().await;
    let front = FakeUpstream::start().await;
    front.behave("", Behaviour::Relay(next.addr()));
    let q = query("www.example.com.", RecordType::A, Some(1232));
    let (reply, _) = udp(front.addr(), &q).await;
    assert_eq!(lines(&reply.answers), WWW_A);
    let reply = tcp(front.addr(), &q).await;
    assert_eq!(lines(&reply.answers), WWW_A);
    assert_eq!(front.count("www.example.com.", RecordType::A), 2);
    let relayed = next.received();
    assert_eq!(relayed.len(), 2);
    assert!(
        relayed
            .iter()
            .all(|r| r.proto == Proto::Udp && r.message.metadata.id == q.metadata.id)
    );
}

#[tokio::test]
async fn logs_and_counts_queries() {
    let fake = www().await;
    udp(fake.addr(), &query("www.example.com.", RecordType::A, None)).await;
    tcp(fake.addr(), &query("WWW.EXAMPLE.COM.", RecordType::A, None)).await;
    udp(
        fake.addr(),
        &query("www.example.com.", RecordType::AAAA, None),
    )
    .await;
    assert_eq!(fake.count("Www.Example.Com", RecordType::A), 2);
    assert_eq!(fake.count("www.example.com.", RecordType::AAAA), 1);
    assert_eq!(fake.count("www.example.com.", RecordType::MX), 0);
    let received = fake.received();
    let protos: Vec<Proto> = received.iter().map(|r| r.proto).collect();
    assert_eq!(protos, [Proto::Udp, Proto::Tcp, Proto::Udp]);
    assert!(received.iter().all(|r| r.from.ip().is_loopback()));
    assert_eq!(
        received[1].message.queries[0].name().to_string(),
        "WWW.EXAMPLE.COM."
    );
    fake.clear();
    assert!(fake.received().is_empty());

    fake.remove("www.example.com.", RecordType::A);
    let (reply, _) = udp(fake.addr(), &query("www.example.com.", RecordType::A, None)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn several_queries_per_tcp_connection_and_garbage_survived() {
    let fake = www().await;
    fake.add("slow.example.com. 60 IN A 192.0.2.7");
    let gate = Gate::new();
    fake.behave("slow.example.com", Behaviour::Hold(gate.clone()));
    // Garbage, mangled queries and a truncated TCP frame do not stop the fake.
    udp_raw(fake.addr(), &[0xde, 0xad], Duration::from_millis(100)).await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let valid = query("www.example.com.", RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let mut seed = 0x2545_f491_u32;
    for _ in 0..500 {
        let mut mangled = valid.clone();
        for _ in 0..3 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let at = (seed >> 8) as usize % mangled.len();
            mangled[at] = (seed >> 24) as u8;
        }
        mangled.truncate(mangled.len() - (seed % 4) as usize);
        sender.send_to(&mangled, fake.addr()).await.unwrap();
    }
    let mut broken = TcpStream::connect(fake.addr()).await.unwrap();
    broken.write_all(&[0x00, 0x20, 1, 2, 3]).await.unwrap();
    drop(broken);

    let mut stream = TcpStream::connect(fake.addr()).await.unwrap();
    let slow = query("slow.example.com.", RecordType::A, None);
    let fast = query("www.example.com.", RecordType::A, None);
    write_query(&mut stream, &slow).await;
    write_query(&mut stream, &fast).await;
    // The slow one is held until the fast one, asked after it, has been answered.
    let first = read_reply(&mut stream).await;
    gate.open();
    let second = read_reply(&mut stream).await;
    assert_eq!(
        first.metadata.id, fast.metadata.id,
        "answers as they complete"
    );
    assert_eq!(second.metadata.id, slow.metadata.id);
    assert_eq!(tcp(fake.addr(), &fast).await.answers.len(), 2);
}

#[tokio::test]
async fn stop_frees_the_port_and_restart_serves_it_again() {
    let mut fake = www().await;
    fake.behave(
        "slow.example.com",
        Behaviour::Delay(Duration::from_secs(30)),
    );
    let addr = fake.addr();
    // A connection and a query still pending at stop.
    let mut open = TcpStream::connect(addr).await.unwrap();
    write_query(&mut open, &query("slow.example.com.", RecordType::A, None)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake.count("slow.example.com.", RecordType::A) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the query arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    fake.stop().await;
    let mut byte = [0u8; 1];
    assert_eq!(
        open.read(&mut byte).await.unwrap_or(0),
        0,
        "connection closed"
    );
    common::process::closed_for_good();
    drop(UdpSocket::bind(addr).await.expect("UDP port free"));
    drop(TcpListener::bind(addr).await.expect("TCP port free"));
    let bytes = query("www.example.com.", RecordType::A, None)
        .to_vec()
        .unwrap();
    assert_eq!(
        udp_raw(addr, &bytes, Duration::from_millis(200)).await,
        None
    );

    fake.restart().await;
    assert_eq!(fake.addr(), addr);
    let (reply, _) = udp(addr, &query("www.example.com.", RecordType::A, None)).await;
    assert_eq!(lines(&reply.answers), WWW_A);
    assert_eq!(
        tcp(addr, &query("www.example.com.", RecordType::A, None))
            .await
            .answers
            .len(),
        2
    );
    assert_eq!(
        fake.count("slow.example.com.", RecordType::A),
        1,
        "log kept"
    );

    fake.stop().await;
    let mut again = FakeUpstream::start_on(addr).await;
    again.add(WWW_A[0]);
    let (reply, _) = udp(addr, &query("www.example.com.", RecordType::A, None)).await;
    assert_eq!(lines(&reply.answers), [WWW_A[0]]);
    again.stop().await;
}

//! Zone transfer (`--transfer-to`): AXFR over TCP and IXFR, with a real TCP client reading
//! the framed messages of the answer.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, query, tcp_send, udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Sends `msg` over TCP and reads answer messages until the transfer is complete: a second
/// SOA, a first message holding only the SOA (IXFR: up to date), or an error code.
async fn transfer(addr: SocketAddr, msg: &Message) -> Vec<Message> {
    let mut s = tcp_send(addr, msg).await;
    let mut out: Vec<Message> = Vec::new();
    let mut soas = 0;
    loop {
        let raw = read_frame(&mut s).await;
        // Every message of the transfer reads strictly: counts that match the records, no
        // bytes after the last one.
        let strict = common::strict::read(&raw)
            .unwrap_or_else(|e| panic!("message {} of the transfer: {e}", out.len() + 1));
        assert!(!strict.truncated, "TC is never set over TCP");
        let m = Message::from_vec(&raw).expect("transfer message parses");
        assert_eq!(m.metadata.id, msg.metadata.id);
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let only_soa = out.is_empty() && m.answers.len() == 1 && soas == 1;
        let failed = m.metadata.response_code != ResponseCode::NoError;
        out.push(m);
        if soas >= 2 || only_soa || failed {
            return out;
        }
    }
}

/// One length-prefixed message, raw.
async fn read_frame(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    common::tcp_read_raw(s, Duration::from_secs(5)).await
}

fn records(messages: &[Message]) -> Vec<Record> {
    messages.iter().flat_map(|m| m.answers.clone()).collect()
}

fn ixfr(serial: u32) -> Message {
    let mut m = query("cluster.local.", RecordType::IXFR, None);
    let soa = SOA::new(
        Name::from_ascii("ns.dns.cluster.local.").unwrap(),
        Name::from_ascii("hostmaster.cluster.local.").unwrap(),
        serial,
        7200,
        1800,
        86400,
        30,
    );
    m.authorities.push(Record::from_rdata(
        Name::from_ascii("cluster.local.").unwrap(),
        30,
        RData::SOA(soa),
    ));
    m
}

#[tokio::test]
async fn axfr_holds_every_record_the_zone_answers() {
    let server = TestServer::example(&["--transfer-to", "127.0.0.0/8"]).await;
    let msgs = transfer(
        server.addr,
        &query("cluster.local.", RecordType::AXFR, None),
    )
    .await;
    let all = records(&msgs);
    assert!(msgs.iter().all(|m| m.metadata.authoritative));
    assert_eq!(all.first().map(Record::record_type), Some(RecordType::SOA));
    assert_eq!(all.first(), all.last(), "the same SOA first and last");
    assert_eq!(
        all.iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count(),
        2
    );

    // Group the transfer by (name, type): each set is exactly what a query answers.
    let mut sets: BTreeMap<(String, RecordType), BTreeSet<String>> = BTreeMap::new();
    for r in &all[1..all.len() - 1] {
        sets.entry((r.name.to_string(), r.record_type()))
            .or_default()
            .insert(r.data.to_string());
    }
    for ((name, rtype), want) in &sets {
        let (m, _) = udp(server.addr, &query(name, *rtype, Some(4096))).await;
        let got: BTreeSet<String> = m
            .answers
            .iter()
            .filter(|r| r.record_type() == *rtype && r.name.to_string() == *name)
            .map(|r| r.data.to_string())
            .collect();
        assert_eq!(&got, want, "{name} {rtype}");
    }
    // And the zone's kinds of names are all there.
    for (name, rtype) in [
        ("cluster.local.", RecordType::NS),
        ("web.shop.svc.cluster.local.", RecordType::A),
        ("_http._tcp.web.shop.svc.cluster.local.", RecordType::SRV),
        ("db.data.svc.cluster.local.", RecordType::A),
        ("db-0.db.data.svc.cluster.local.", RecordType::A),
        ("_postgres._tcp.db.data.svc.cluster.local.", RecordType::SRV),
    ] {
        assert!(
            sets.contains_key(&(name.to_owned(), rtype)),
            "{name} {rtype} missing from {:?}",
            sets.keys()
        );
    }
    assert!(
        all.iter().any(|r| r.record_type() == RecordType::CNAME),
        "an ExternalName Service"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn transfers_are_refused_to_others_and_over_udp() {
    let server = TestServer::example(&["--transfer-to", "10.0.0.0/8"]).await;
    let msgs = transfer(
        server.addr,
        &query("cluster.local.", RecordType::AXFR, None),
    )
    .await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].metadata.response_code, ResponseCode::Refused);
    assert!(msgs[0].answers.is_empty());
    server.running.shutdown().await;

    let server = TestServer::example(&["--transfer-to", "127.0.0.1"]).await;
    // AXFR over UDP.
    let (m, _) = udp(
        server.addr,
        &query("cluster.local.", RecordType::AXFR, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A name that is not the zone.
    for name in ["shop.svc.cluster.local.", "example.com.", "in-addr.arpa."] {
        let msgs = transfer(server.addr, &query(name, RecordType::AXFR, None)).await;
        assert_eq!(
            msgs[0].metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn ixfr_is_one_soa_when_current_else_the_whole_zone() {
    let server = TestServer::example(&["--transfer-to", "127.0.0.1/32"]).await;
    let serial = server.running.snapshot().serial;
    let axfr = records(
        &transfer(
            server.addr,
            &query("cluster.local.", RecordType::AXFR, None),
        )
        .await,
    );

    for current in [serial, serial.wrapping_add(1)] {
        let msgs = transfer(server.addr, &ixfr(current)).await;
        let got = records(&msgs);
        assert_eq!(got.len(), 1, "client serial {current}: single SOA");
        assert_eq!(got[0], axfr[0]);
    }
    let full = records(&transfer(server.addr, &ixfr(serial.wrapping_sub(1))).await);
    assert_eq!(full, axfr, "an outdated client gets the whole zone");
    // Over UDP an outdated client gets the SOA, which sends it to TCP.
    let (m, _) = udp(server.addr, &ixfr(serial.wrapping_sub(1))).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers, vec![axfr[0].clone()]);
    server.running.shutdown().await;
}

/// `n` ClusterIP Services `svc-<i>.bulk` with two named ports each.
fn bulk(n: u32) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: bulk}\n");
    for i in 0..n {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: bulk}}\nspec:\n  clusterIP: 10.96.{}.{}\n  ports: [{{name: http, port: 80, protocol: TCP}}, {{name: metrics, port: 9090, protocol: TCP}}]\n",
            i / 250,
            i % 250 + 1
        ));
    }
    out
}

#[tokio::test]
async fn a_large_zone_comes_in_several_messages() {
    let n = 1500;
    let server =
        TestServer::with_files(&[("bulk.yaml", &bulk(n))], &["--transfer-to", "127.0.0.1"]).await;
    let msgs = transfer(
        server.addr,
        &query("cluster.local.", RecordType::AXFR, None),
    )
    .await;
    // Each message was read strictly (`transfer`); more than one was needed.
    assert!(msgs.len() > 1, "{} message(s)", msgs.len());
    let all = records(&msgs);
    assert_eq!(all.first(), all.last());
    let a: BTreeSet<String> = all
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(a.len(), n as usize, "one A name per Service");
    // Per Service: A, SRV on the bare name (two ports), and one SRV per named port.
    let srv = all
        .iter()
        .filter(|r| r.record_type() == RecordType::SRV)
        .count();
    assert_eq!(srv, 4 * n as usize);
    server.running.shutdown().await;
}

//! Odd upstream replies over real sockets: what clusterdns sends its client when an upstream
//! answers with bytes that hickory reads but that do not make a valid answer to the query.
//!
//! The reply below is the `upstream_reply` fuzz finding
//! (`fuzz/regressions/upstream_reply/update-opcode-records-without-rdata`, found as
//! `crash-6382c6e3…`) less its first byte, which picks the query. It reads as: ID, QR, opcode
//! UPDATE (5), AA, RA, rcode NOTIMP; the question `exampLe.com. TXT IN`; two answers and one
//! additional record, each with type 0, class 20 or 0 and no RDATA; then 159 bytes of
//! trailing garbage (hickory ignores bytes past the counted records). In an UPDATE message
//! hickory reads a record without RDATA as an update record (`RData::Update0`); in any other
//! message it refuses one (`InvalidEmptyRecord`). clusterdns answers with opcode QUERY, so
//! copying those records into its response made a message that neither hickory ("unexpected
//! record with length 0 in non-update message") nor dnspython ("DNS message is malformed")
//! could read. The reply is now dropped as not answering the query (`accept_reply`).

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, metric, query, udp_raw};
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The upstream's reply of the finding (its ID is replaced by the query's).
const FINDING: &str = concat!(
    "5eedac840001000200000001076578616d704c6503636f6d0000100001c00c0000",
    "0014000000000000000000000000000000000000000000000000000000000000000000",
    "776f726ce422c00c1b000100000e790010072668656c9512000000776f726c6422c00c",
    "0041000100000e10000e072200ff1200000000004d0000000000000000003100000000",
    "0000000a000824a5ac1b8e973f41000000000000000000000000000014000000000000",
    "0000000e5eed85800001002c00000000000000000000f60000000000776f726ce422c0",
    "0c0038c00c00fadf010000003c00",
);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An upstream on loopback UDP that answers every TXT query with `reply` (the query's ID
/// written over its first two bytes) and anything else (the start-up loop probe) with an
/// empty NOERROR.
async fn raw_upstream(reply: Vec<u8>) -> (SocketAddr, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let id = q.metadata.id.to_be_bytes();
            let out = if q.queries[0].query_type() == RecordType::TXT {
                let mut r = reply.clone();
                r[..2].copy_from_slice(&id);
                r
            } else {
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.metadata.recursion_available = true;
                r.queries = q.queries.clone();
                r.to_vec().unwrap()
            };
            let _ = sock.send_to(&out, from).await;
        }
    });
    (addr, task)
}

/// Asks `example.com. TXT` (EDNS 1232, DO) over UDP and returns the raw response.
async fn ask_txt(s: &TestServer) -> Vec<u8> {
    let mut q = query("example.com.", RecordType::TXT, None);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    q.edns = Some(edns);
    udp_raw(s.addr, &q.to_vec().unwrap(), Duration::from_secs(3))
        .await
        .expect("a UDP response")
}

/// The client gets a response it can read, whatever the upstream's rcode (NOTIMP as found:
/// not cached; NOERROR: cached, so the second answer comes from the cache's byte copy): an
/// upstream reply whose opcode is not the query's is not an answer to it, so it is dropped
/// as a mismatched reply and the query fails with SERVFAIL when no other reply comes.
#[tokio::test]
async fn an_update_opcode_reply_is_not_copied_into_a_query_response() {
    for rcode_byte in [0x84u8, 0x80] {
        let mut reply = hex(FINDING);
        reply[3] = rcode_byte;
        let (up, task) = raw_upstream(reply).await;
        let u = up.to_string();
        let s = TestServer::example(&["--upstream", &u, "--upstream-timeout", "300ms"]).await;
        for attempt in 0..2 {
            let bytes = ask_txt(&s).await;
            let m = Message::from_vec(&bytes).unwrap_or_else(|e| {
                panic!("rcode byte {rcode_byte:#x}, attempt {attempt}: response does not decode ({e}): {bytes:02x?}")
            });
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            assert!(m.answers.is_empty() && m.additionals.is_empty(), "{m:?}");
        }
        let mismatched = format!("clusterdns_forward_mismatched_replies_total{{to=\"{u}\"}}");
        assert!(metric(&s, &mismatched) >= 1.0, "counted as mismatched");
        task.abort();
    }
}

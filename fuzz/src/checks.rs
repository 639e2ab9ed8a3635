//! The checks every answer to a query packet owes it, shared by the `request` and
//! `request_structured` targets, and the comparison of its UDP and TCP answers.

use std::sync::LazyLock;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use crate::{Served, is_encode_fallback, serve, udp_limit};
use clusterdns::server::DnsHandler;

/// With `CLUSTERDNS_FUZZ_STRICT=1`, known deviations fail too.
static STRICT: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("CLUSTERDNS_FUZZ_STRICT").is_some_and(|v| v == "1"));

/// Runs `packet` through `handler` over `protocol` and checks the answer: never a panic;
/// exactly one answer; it re-parses with the query's ID and QR set, fits what the client
/// allowed over UDP, echoes the question and OPT, and owns its answers by the query name.
pub fn check_request(handler: &DnsHandler, packet: &[u8], protocol: Protocol) {
    match serve(handler, packet, protocol) {
        Served::Dropped => {}
        Served::FormErr { header, sent } => {
            let [answer] = &sent[..] else {
                panic!("{} responses to an undecodable query", sent.len());
            };
            let message = check_common(answer, header.id, protocol, None);
            assert!(message.queries.is_empty(), "FORMERR echoes no question");
            assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        }
        Served::Handled { request, sent } => {
            let [answer] = &sent[..] else {
                panic!("{} responses to one query", sent.len());
            };
            if !*STRICT && question_points_into_header(request.as_slice(), request.queries.len()) {
                // Known: hickory-server echoes the question's raw bytes, so a compression
                // pointer into the header reads differently in the response (whose header
                // differs), or not at all. Reproducers: `fuzz/regressions/request/`.
                check_size(answer, protocol, Some(&request));
                assert_eq!(answer.get(..2), packet.get(..2), "answer ID");
                return;
            }
            let message = check_common(answer, request.metadata.id, protocol, Some(&request));
            if is_encode_fallback(answer) {
                // hickory's encoder gives up only when the question section alone is too big.
                let limit = match protocol {
                    Protocol::Udp => udp_limit(Some(&request)),
                    _ => usize::from(u16::MAX),
                };
                assert!(
                    12 + request.queries.as_bytes().len() > limit,
                    "SERVFAIL fallback for a question that fits: {message:?}"
                );
                return;
            }
            check_question(&message, &request);
            check_answers(&message, &request);
        }
    }
}

/// Over UDP, the answer fits the size the client allowed.
fn check_size(answer: &[u8], protocol: Protocol, request: Option<&Request>) {
    if protocol == Protocol::Udp {
        let limit = udp_limit(request);
        assert!(
            answer.len() <= limit,
            "{} bytes over UDP, client allows {limit}",
            answer.len()
        );
    }
}

/// Re-parses `answer` and checks what every response owes the query.
fn check_common(answer: &[u8], id: u16, protocol: Protocol, request: Option<&Request>) -> Message {
    let message = match Message::from_bytes(answer) {
        Ok(m) => m,
        Err(e) => panic!("answer does not re-parse: {e}: {answer:02x?}"),
    };
    assert_eq!(message.metadata.id, id, "answer ID");
    assert_eq!(message.metadata.message_type, MessageType::Response);
    check_size(answer, protocol, request);
    message
}

/// The question section is the query's, spelled as the client spelled it.
fn check_question(message: &Message, request: &Request) {
    let asked = request.queries.queries();
    assert_eq!(message.queries.len(), asked.len(), "question count");
    for (got, want) in message.queries.iter().zip(asked) {
        let want = want.original();
        assert_eq!(
            got.name().to_ascii(),
            want.name().to_ascii(),
            "question name"
        );
        assert_eq!(got.query_type(), want.query_type(), "question type");
        assert_eq!(got.query_class(), want.query_class(), "question class");
    }
}

/// What the answer says about the query: EDNS echoed (RFC 6891 §7); every answer record owned
/// by the query name, spelled as the question was (we never chase a CNAME or answer for
/// another name); data and negative answers authoritative, and negative answers carrying the
/// SOA of a zone above the name (RFC 2308 §3).
fn check_answers(message: &Message, request: &Request) {
    let truncated = message.metadata.truncation;
    if !truncated {
        assert_eq!(
            message.edns.is_some(),
            request.edns.is_some(),
            "OPT in the answer iff in the query"
        );
    }
    let Some(query) = request.queries.queries().first() else {
        return;
    };
    let qname = query.original().name();
    for record in &message.answers {
        assert_eq!(
            record.name.to_ascii(),
            qname.to_ascii(),
            "answer owner for the question"
        );
    }
    let rcode = message.metadata.response_code;
    if matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        assert!(
            message.metadata.authoritative,
            "{rcode} answer not authoritative"
        );
    }
    let negative = rcode == ResponseCode::NXDomain
        || (rcode == ResponseCode::NoError && message.answers.is_empty());
    if negative && !truncated {
        let soa = message
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA);
        let Some(soa) = soa else {
            panic!("{rcode} answer without SOA: {message:?}");
        };
        assert!(soa.name.zone_of(qname), "SOA of {} for {qname}", soa.name);
    }
}

/// Whether a name of the question section, following compression pointers, reads any byte of
/// the 12-byte header.
fn question_points_into_header(packet: &[u8], questions: usize) -> bool {
    let mut at = 12;
    for _ in 0..questions {
        let (end, hits_header) = walk_name(packet, at);
        if hits_header {
            return true;
        }
        at = end + 4;
    }
    false
}

/// Follows the name at `at`: the offset just after it in place, and whether a pointer of its
/// chain lands in the header. The packet decoded, so the chain is finite and in bounds.
fn walk_name(packet: &[u8], mut at: usize) -> (usize, bool) {
    let mut end = None;
    for _ in 0..packet.len() {
        let Some(&len) = packet.get(at) else { break };
        match len {
            0 => return (end.unwrap_or(at + 1), false),
            l if l & 0xC0 == 0xC0 => {
                let target = usize::from(l & 0x3F) << 8 | usize::from(packet[at + 1]);
                end.get_or_insert(at + 2);
                if target < 12 {
                    return (end.unwrap_or(at + 2), true);
                }
                at = target;
            }
            l => at += 1 + usize::from(l),
        }
    }
    (end.unwrap_or(at), false)
}

/// The records of a message in order, each with its section (0 answer, 1 authority,
/// 2 additional) and its zone-file text.
fn records(m: &Message) -> Vec<(u8, String)> {
    let text = |s: u8| move |r: &Record| (s, r.to_string());
    m.answers
        .iter()
        .map(text(0))
        .chain(m.authorities.iter().map(text(1)))
        .chain(m.additionals.iter().map(text(2)))
        .collect()
}

/// The header as text, without the TC bit.
fn header_but_tc(m: &Message) -> String {
    let mut h = m.metadata;
    h.truncation = false;
    format!("{h:?}")
}

/// Serves `packet` over UDP and over TCP from the same handler and checks that the answers
/// differ only as the protocols allow (`wire::fit`, the truncation rule, is the only thing
/// the server does differently by transport for a query the fixtures answer):
///
/// - both dropped, or both the same FORMERR bytes, or both answered;
/// - a UDP answer that is the bare SERVFAIL of an over-long question only when the question
///   alone is over the UDP limit;
/// - otherwise the same header but for TC, the same question, and
///   - without TC over UDP: the same answer and authority records, the UDP additional
///     records a prefix of the TCP ones (extra records go without TC, RFC 2181 §9);
///   - with TC over UDP: its records, section by section, a prefix of the TCP answer's;
///   - the same OPT record, unless the UDP answer had no room for it.
///
/// Zone transfers, whose UDP rules differ (refused AXFR, single-SOA IXFR), and the known
/// pointer-into-the-header question are left out.
pub fn compare_udp_tcp(handler: &DnsHandler, packet: &[u8]) {
    let udp = serve(handler, packet, Protocol::Udp);
    let tcp = serve(handler, packet, Protocol::Tcp);
    let (udp, tcp, request) = match (udp, tcp) {
        (Served::Dropped, Served::Dropped) => return,
        (Served::FormErr { sent: u, .. }, Served::FormErr { sent: t, .. }) => {
            assert_eq!(u, t, "FORMERR differs between UDP and TCP");
            return;
        }
        (
            Served::Handled {
                request, sent: u, ..
            },
            Served::Handled { sent: t, .. },
        ) => (u, t, request),
        _ => panic!("UDP and TCP read the packet differently: {packet:02x?}"),
    };
    let (Some(udp), Some(tcp)) = (udp.first(), tcp.first()) else {
        panic!("an answer over one transport only: {packet:02x?}");
    };
    if question_points_into_header(request.as_slice(), request.queries.len()) {
        return;
    }
    let transfer = request.queries.queries().iter().any(|q| {
        matches!(
            q.original().query_type(),
            RecordType::AXFR | RecordType::IXFR
        )
    });
    if transfer {
        return;
    }
    let limit = udp_limit(Some(&request));
    if is_encode_fallback(udp) && !is_encode_fallback(tcp) {
        assert!(
            12 + request.queries.as_bytes().len() > limit,
            "UDP SERVFAIL fallback for a question that fits"
        );
        return;
    }
    let (Ok(u), Ok(t)) = (Message::from_vec(udp), Message::from_vec(tcp)) else {
        panic!("an answer does not decode: {udp:02x?} / {tcp:02x?}");
    };
    assert_eq!(header_but_tc(&u), header_but_tc(&t), "UDP and TCP headers");
    assert!(!t.metadata.truncation, "TC over TCP");
    assert_eq!(
        u.queries, t.queries,
        "UDP and TCP questions for {packet:02x?}"
    );
    let (ur, tr) = (records(&u), records(&t));
    if u.metadata.truncation {
        assert!(
            tr.starts_with(&ur),
            "truncated UDP records not a prefix of the TCP ones:\n{ur:#?}\n{tr:#?}"
        );
    } else {
        assert_eq!(
            u.answers, t.answers,
            "UDP and TCP answers (no TC) for {packet:02x?}"
        );
        assert_eq!(
            u.authorities, t.authorities,
            "UDP and TCP authorities (no TC)"
        );
        assert!(
            tr.starts_with(&ur),
            "UDP additional records not a prefix of the TCP ones:\n{ur:#?}\n{tr:#?}"
        );
    }
    match (&u.edns, &t.edns) {
        (Some(ue), Some(te)) => assert_eq!(ue, te, "UDP and TCP OPT"),
        (None, Some(_)) => assert!(
            udp.len() + 11 > limit,
            "UDP answer dropped the OPT with room for it ({} of {limit} bytes)",
            udp.len()
        ),
        (Some(_), None) => panic!("OPT over UDP but not over TCP"),
        (None, None) => {}
    }
}

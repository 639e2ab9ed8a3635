//! Arbitrary bytes as an upstream's reply to a known query, through what the forwarder does
//! with it: acceptance (`forward::upstream::accept_reply`: ID, QR, opcode and question), the
//! cache entry (`Entry::from_message`: kind and lifetime), the served copy (TTLs counted down,
//! or stale), and the response to the client built from it, which must encode and decode.
//!
//! The cached copy holds the reply's records (TTLs aside). With the entry stored in a
//! forwarder's cache, the byte-copy responder (`Forwarder::answer_wire`, the cache-hit fast
//! path of `forward::wire`) answers the client's query with the message the general path
//! (`Forwarder::resolve`, `wire::encode`) answers: same header, question, records and TTLs,
//! OPT; names compared without case, since both spell a name that repeats the question as the
//! client's question.
//!
//! The first byte picks the query (`clusterdns_fuzz::upstream_queries`, bits 0-1), the
//! transport of the client's query (bit 2: TCP) and its spelling (bit 3: upper case); the rest
//! is the reply.

#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use clusterdns::forward::cache::{Entry, Kind, SERVFAIL_TTL, STALE_TTL};
use clusterdns::forward::upstream::accept_reply;
use clusterdns::forward::{
    CacheSettings, ForwardSettings, Forwarder, Outgoing, Policy, PoolSettings, Reply,
    StreamSettings, parse_endpoint,
};
use clusterdns::metrics::{Metrics, Proto};
use clusterdns::server::{DnsHandler, answer_general};
use clusterdns::wire::MAX_UDP_PAYLOAD;
use clusterdns_fuzz::{EXAMPLE, FIXTURE, UPSTREAM_ID, describe, upstream_queries};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;

static QUERIES: LazyLock<Vec<Outgoing>> = LazyLock::new(upstream_queries);

/// The defaults of `--cache-max-ttl`, `--cache-max-negative-ttl`, `--cache-min-ttl` and
/// `--serve-stale`.
const SETTINGS: CacheSettings = CacheSettings {
    size: 10_000,
    max_ttl: 3600,
    max_negative_ttl: 1800,
    min_ttl: 5,
    serve_stale: Duration::from_secs(3600),
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, reply)) = data.split_first() else {
        return;
    };
    let query = &QUERIES[usize::from(pick & 3) % QUERIES.len()];
    let Some(message) = accept_reply(query, UPSTREAM_ID, reply) else {
        return;
    };
    assert_eq!(message.metadata.id, UPSTREAM_ID, "accepted another ID");
    assert_eq!(message.metadata.message_type, MessageType::Response);
    assert_eq!(
        message.metadata.op_code,
        OpCode::Query,
        "accepted another opcode"
    );
    let asked = message
        .queries
        .first()
        .expect("accepted without a question");
    assert_eq!(asked.name(), &query.name, "accepted another name");
    assert_eq!(asked.query_type(), query.qtype, "accepted another type");

    let upstream = message.clone();
    let entry = Entry::from_message(message, &SETTINGS, true);
    if entry.kind == Kind::Uncacheable {
        assert_eq!(entry.ttl, 0, "uncacheable entry with a lifetime");
    } else {
        let cap = SETTINGS
            .max_ttl
            .max(SETTINGS.max_negative_ttl)
            .max(SERVFAIL_TTL);
        assert!(
            (SETTINGS.min_ttl..=cap).contains(&entry.ttl),
            "lifetime {} outside [{}, {cap}] for {:?}",
            entry.ttl,
            SETTINGS.min_ttl,
            entry.kind
        );
    }
    let now = Instant::now();
    let fresh = entry.reply(now, false);
    if entry.kind != Kind::Uncacheable {
        for r in sections(&fresh) {
            assert!(
                r.ttl <= entry.ttl,
                "served TTL {} above the entry's {}",
                r.ttl,
                entry.ttl
            );
        }
    }
    let stale = entry.reply(now, true);
    for r in sections(&stale) {
        assert_eq!(r.ttl, STALE_TTL, "stale record with TTL {}", r.ttl);
    }
    same_records(&upstream, &fresh);
    respond(query, &fresh);
    let copy = Entry::from_message(upstream.clone(), &SETTINGS, true);
    byte_copy(query, copy, &upstream, pick);
});

/// The records without their TTLs, as text.
fn untimed<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<String> {
    records
        .map(|r| {
            let mut r = r.clone();
            r.ttl = 0;
            r.to_string()
        })
        .collect()
}

/// The cached copy's records are the upstream reply's, section by section, TTLs aside.
fn same_records(upstream: &Message, reply: &Reply) {
    assert_eq!(
        untimed(upstream.answers.iter()),
        untimed(reply.answers.iter()),
        "cached answers"
    );
    assert_eq!(
        untimed(upstream.authorities.iter()),
        untimed(reply.authorities.iter()),
        "cached authorities"
    );
    assert_eq!(
        untimed(upstream.additionals.iter()),
        untimed(reply.additionals.iter()),
        "cached additionals"
    );
}

/// A handler whose only stage forwards (to an upstream never asked: every answer here is a
/// cache hit), over the example zone.
static FORWARDING: LazyLock<(Arc<Forwarder>, DnsHandler)> = LazyLock::new(|| {
    let _runtime = FIXTURE.runtime.enter();
    let settings = ForwardSettings {
        upstreams: vec![parse_endpoint("127.0.0.1:9").expect("endpoint")],
        stub_domains: Vec::new(),
        pool: PoolSettings {
            timeout: Duration::from_secs(1),
            max_fails: 2,
            health_interval: Duration::from_secs(1),
            policy: Policy::Sequential,
            streams: StreamSettings::default(),
        },
        max_concurrent: 100,
        cache: SETTINGS,
        prefetch: false,
    };
    let metrics = Metrics::new();
    let forwarder = Arc::new(Forwarder::new(settings, metrics.forward));
    let handler = DnsHandler::new(Arc::new(ArcSwap::new(Arc::clone(&EXAMPLE))), metrics.server)
        .with_forwarder(Arc::clone(&forwarder));
    (forwarder, handler)
});

/// The client's query for `query`: its flags and EDNS, so that it finds the stored entry.
fn client_query(query: &Outgoing, upper: bool) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = query.rd;
    m.metadata.checking_disabled = query.cd;
    let name = if upper {
        Name::from_ascii(query.name.to_ascii().to_uppercase()).expect("name")
    } else {
        query.name.clone()
    };
    let mut q = Query::query(name, query.qtype);
    q.set_query_class(query.qclass);
    m.add_query(q);
    if let Some((payload, dnssec_ok)) = query.edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().expect("client query")
}

/// Stores `entry` and asks the handler the client's query: when the byte-copy responder
/// answers, the general path answers the same message, and its records are the upstream's.
fn byte_copy(query: &Outgoing, entry: Entry, upstream: &Message, pick: u8) {
    // The cache keeps no uncacheable entry (the one stored before would answer instead).
    if entry.kind == Kind::Uncacheable || entry.ttl == 0 {
        return;
    }
    let (forwarder, handler) = &*FORWARDING;
    forwarder.store(query, entry);
    let packet = client_query(query, pick & 8 != 0);
    let (proto, protocol) = if pick & 4 != 0 {
        (Proto::Tcp, Protocol::Tcp)
    } else {
        (Proto::Udp, Protocol::Udp)
    };
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut out = vec![0u8; usize::from(u16::MAX)];
    let Some(len) = handler.fast_answer(&packet, proto, src, &mut out) else {
        return;
    };
    let fast = &out[..len];
    let general = FIXTURE
        .runtime
        .block_on(answer_general(handler, packet.clone(), src, protocol))
        .expect("the general path answers a cache hit");
    assert_eq!(
        describe(fast).to_ascii_lowercase(),
        describe(&general).to_ascii_lowercase(),
        "byte copy and general path differ for {packet:02x?}"
    );
    let copied = Message::from_vec(fast).expect("the byte copy decodes");
    let lower =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|s| s.to_ascii_lowercase()).collect() };
    assert_eq!(
        lower(untimed(copied.answers.iter())),
        lower(untimed(upstream.answers.iter())),
        "byte copy answers"
    );
    assert_eq!(
        lower(untimed(copied.authorities.iter())),
        lower(untimed(upstream.authorities.iter())),
        "byte copy authorities"
    );
    assert_eq!(
        lower(untimed(copied.additionals.iter())),
        lower(untimed(upstream.additionals.iter())),
        "byte copy additionals"
    );
}

fn sections(reply: &Reply) -> impl Iterator<Item = &hickory_proto::rr::Record> {
    reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .chain(&reply.additionals)
}

/// The client's response built from `reply`, as the server sends it over UDP: it encodes
/// within the payload limit (or fails cleanly, which the server answers SERVFAIL), and what
/// encodes decodes to the same sections.
fn respond(query: &Outgoing, reply: &Reply) {
    let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = reply.rcode;
    m.metadata.truncation = reply.truncated;
    m.add_query(Query::query(query.name.clone(), query.qtype));
    m.answers = reply.answers.clone();
    m.authorities = reply.authorities.clone();
    m.additionals = reply.additionals.clone();
    let mut buf = Vec::with_capacity(usize::from(MAX_UDP_PAYLOAD));
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(MAX_UDP_PAYLOAD);
    if m.emit(&mut encoder).is_err() {
        return;
    }
    let Ok(bytes) = m.to_bytes() else {
        return;
    };
    let again = Message::from_vec(&bytes).expect("our response does not decode");
    assert_eq!(again.answers.len(), m.answers.len(), "answer count changed");
    assert_eq!(again.authorities.len(), m.authorities.len());
    assert_eq!(again.additionals.len(), m.additionals.len());
}

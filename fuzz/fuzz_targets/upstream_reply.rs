//! Arbitrary bytes as an upstream's reply to a known query, through what the forwarder does
//! with it: acceptance (`forward::upstream::accept_reply`: ID, QR and question checks), the
//! cache entry (`Entry::from_message`: kind and lifetime), the served copy (TTLs counted down,
//! or stale), and the response to the client built from it, which must encode and decode.
//!
//! The first byte picks the query (`clusterdns_fuzz::upstream_queries`), the rest is the reply.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use clusterdns::forward::cache::{Entry, Kind, SERVFAIL_TTL, STALE_TTL};
use clusterdns::forward::upstream::accept_reply;
use clusterdns::forward::{CacheSettings, Outgoing, Reply};
use clusterdns::wire::MAX_UDP_PAYLOAD;
use clusterdns_fuzz::{UPSTREAM_ID, upstream_queries};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
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
    let query = &QUERIES[usize::from(pick) % QUERIES.len()];
    let Some(message) = accept_reply(query, UPSTREAM_ID, reply) else {
        return;
    };
    assert_eq!(message.metadata.id, UPSTREAM_ID, "accepted another ID");
    assert_eq!(message.metadata.message_type, MessageType::Response);
    let asked = message
        .queries
        .first()
        .expect("accepted without a question");
    assert_eq!(asked.name(), &query.name, "accepted another name");
    assert_eq!(asked.query_type(), query.qtype, "accepted another type");

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
    respond(query, &fresh);
});

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

//! Differential: for any packet, the fast path (`DnsHandler::fast_answer`, packet bytes to
//! packet bytes) either declines or answers the same message the general path (hickory's
//! decoder, the answer chain's `resolve`, `wire::encode`) answers: the same header, question,
//! records (names spelled alike) and OPT. Compression may differ: both are valid encodings,
//! and the general path's encoder finds a few more suffixes to point at.

#![no_main]

use std::net::SocketAddr;

use clusterdns::metrics::Proto;
use clusterdns_fuzz::{FIXTURE, describe, protocol_for_id};
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let id = packet
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let protocol = protocol_for_id(id);
    let handler = FIXTURE.handler_for_id(id);
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let proto = match protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    };
    let mut out = vec![0u8; usize::from(u16::MAX)];
    let Some(len) = handler.fast_answer(packet, proto, src, &mut out) else {
        return;
    };
    let fast = &out[..len];
    let general = FIXTURE
        .runtime
        .block_on(clusterdns::server::answer_general(
            handler,
            packet.to_vec(),
            src,
            protocol,
        ))
        .expect("the general path answers what the fast path answers");
    assert_eq!(
        describe(fast),
        describe(&general),
        "fast and general answers differ for {packet:02x?}"
    );
    if protocol == Protocol::Udp {
        assert!(len <= 1232, "{len} bytes over UDP");
    }
});

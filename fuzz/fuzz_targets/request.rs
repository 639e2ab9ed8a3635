//! Raw bytes as a query packet through the whole request path, against the example cluster:
//! never a panic; every answer re-parses, carries the query's ID and question, and fits the
//! size the client allowed over UDP; the UDP answer is the TCP answer but for truncation
//! (`clusterdns_fuzz::checks`).

#![no_main]

use clusterdns_fuzz::checks::{check_request, compare_udp_tcp};
use clusterdns_fuzz::{FIXTURE, protocol_for_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    let id = packet
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let handler = FIXTURE.handler_for_id(id);
    check_request(handler, packet, protocol_for_id(id));
    compare_udp_tcp(handler, packet);
});

//! A structure-aware query (`clusterdns_fuzz::structured::Query`: header bits, opcode,
//! questions named mostly from the example zone, EDNS with options, extra records) encoded
//! to wire bytes, through the same request path and checks as `request`, and answered over
//! UDP and TCP alike but for truncation.

#![no_main]

use clusterdns_fuzz::FIXTURE;
use clusterdns_fuzz::checks::{check_request, compare_udp_tcp};
use clusterdns_fuzz::structured::Query;
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: Query| {
    let packet = query.encode();
    let handler = FIXTURE.handler_for_id(query.fixture_id());
    let protocol = if query.tcp {
        Protocol::Tcp
    } else {
        Protocol::Udp
    };
    check_request(handler, &packet, protocol);
    compare_udp_tcp(handler, &packet);
});

//! Decode → encode → decode gives the same message, for what the server parses: a hickory
//! `Message` (what clients make of our answers) and hickory-server's `MessageRequest` (what
//! our handler is given).

#![no_main]

use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    message(data);
    request(data);
});

fn message(data: &[u8]) {
    let Ok(original) = Message::from_bytes(data) else {
        return;
    };
    let encoded = match original.to_bytes() {
        Ok(e) => e,
        Err(e) => panic!("decoded message does not encode: {e}: {original:?}"),
    };
    let again = match Message::from_bytes(&encoded) {
        Ok(m) => m,
        Err(e) => panic!("encoded message does not decode: {e}: {original:?}"),
    };
    assert_eq!(original, again, "message round trip");
}

fn request(data: &[u8]) {
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let Ok(original) = Request::from_bytes(data.to_vec(), src, Protocol::Udp) else {
        return;
    };
    let encoded = match original.to_bytes() {
        Ok(e) => e,
        Err(e) => panic!("decoded request does not encode: {e}: {original:?}"),
    };
    let again = match Request::from_bytes(encoded, src, Protocol::Udp) {
        Ok(m) => m,
        Err(e) => panic!("encoded request does not decode: {e}: {original:?}"),
    };
    // `Queries` also compares the raw question bytes, which compression may change.
    assert_eq!(original.metadata, again.metadata, "request header");
    assert_eq!(
        original.queries.queries(),
        again.queries.queries(),
        "request question"
    );
    assert_eq!(original.answers, again.answers, "request answers");
    assert_eq!(
        original.authorities, again.authorities,
        "request authorities"
    );
    assert_eq!(
        original.additionals, again.additionals,
        "request additionals"
    );
    assert_eq!(original.edns, again.edns, "request EDNS");
    assert_eq!(original.signature, again.signature, "request signature");
}

//! The raw-query pipeline: one query's bytes to the bytes of its answers. The fast path
//! (`DnsHandler::fast_answer`) when it takes the query, else hickory's decoder, the general
//! path and `wire::encode` (which applies the truncation rule over UDP).
//!
//! Decoding follows hickory-server's own server: fewer than 12 bytes (no header) are dropped;
//! a header followed by an unreadable body gets FORMERR; a response (QR=1) is never answered.

use std::net::SocketAddr;

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::DnsHandler;
use super::metrics::Proto;

fn servfail(id: u16) -> Option<Vec<u8>> {
    let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
    m.metadata.response_code = ResponseCode::ServFail;
    m.to_vec().ok()
}

/// FORMERR for a query whose header reads but whose body does not (no question echoed); RA
/// when the server forwards.
fn formerr(header: &Header, recursion_available: bool) -> Option<Vec<u8>> {
    let mut m = Message::response(header.metadata.id, header.metadata.op_code);
    m.metadata.recursion_desired = header.metadata.recursion_desired;
    m.metadata.recursion_available = recursion_available;
    m.metadata.response_code = ResponseCode::FormErr;
    m.to_vec().ok()
}

/// The answer to one raw query, or `None` when it gets none: the fast path's when it takes
/// the query, else the general path's.
pub async fn answer(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    answer_messages(handler, raw, src, protocol)
        .await
        .into_iter()
        .next()
}

/// Every message answering one raw query: the fast path's answer when it takes the query,
/// else the general path's (several for a zone transfer over TCP, none when it gets no answer).
pub(super) async fn answer_messages(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let proto = match protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    };
    let fast = FAST_OUT.with_borrow_mut(|out| {
        let len = handler.fast_answer(&raw, proto, src, &mut out[..])?;
        out.get(..len).map(<[u8]>::to_vec)
    });
    match fast {
        Some(bytes) => vec![bytes],
        None => answer_all(handler, raw, src, protocol).await,
    }
}

thread_local! {
    /// The fast path's output buffer for `answer` (a whole TCP message).
    static FAST_OUT: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; usize::from(u16::MAX)].into_boxed_slice());
}

/// The answer to one raw query through hickory's decoder, the handler and hickory's encoder,
/// never the fast path (`answer` falls back to it; tests compare the two).
pub async fn answer_general(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    answer_all(handler, raw, src, protocol)
        .await
        .into_iter()
        .next()
}

/// Every message the general path answers one raw query with.
async fn answer_all(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let Ok(header) = Header::read(&mut BinDecoder::new(&raw)) else {
        return Vec::new();
    };
    if header.metadata.message_type == MessageType::Response {
        return Vec::new();
    }
    let (started, request_size) = (std::time::Instant::now(), raw.len());
    let request = match Request::from_bytes(raw, src, protocol) {
        Ok(r) => r,
        Err(error) => {
            tracing::debug!(%src, %error, "unreadable query: FORMERR");
            let out = formerr(&header, handler.forwards());
            let sizes = (request_size, out.as_ref().map_or(0, Vec::len));
            handler.count_formerr(protocol, src, sizes);
            return out.into_iter().collect();
        }
    };
    let responses = handler.answer(&request).await;
    let rcode = responses
        .first()
        .map_or(ResponseCode::ServFail, |r| r.metadata.response_code);
    let out: Vec<Vec<u8>> = responses
        .iter()
        .filter_map(|r| encode(&request, r))
        .collect();
    let sizes = (request_size, out.iter().map(Vec::len).sum());
    handler.record(&request, rcode, sizes, started);
    out
}

/// `response` in wire form: over UDP cut to what its OPT offers (the handler sets
/// min(client's, 1232)), else 512, by the truncation rule; over TCP whole, or as much as one
/// message holds (TC set). SERVFAIL when it cannot be encoded.
fn encode(request: &Request, response: &crate::wire::Response) -> Option<Vec<u8>> {
    let limit = match request.protocol() {
        Protocol::Udp => {
            crate::wire::reply_limit(false, response.edns.as_ref().map(|e| e.max_payload()))
        }
        _ => usize::from(u16::MAX),
    };
    let queries = u16::try_from(request.queries.len()).unwrap_or(u16::MAX);
    match crate::wire::encode(request.queries.as_bytes(), queries, response, limit) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            let id = response.metadata.id;
            // Debug, not warn: a client can send such queries at will.
            tracing::debug!(%error, id, "cannot encode a response; answering SERVFAIL");
            servfail(id)
        }
    }
}

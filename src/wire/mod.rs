//! The DNS wire layer shared by every path that reads or writes packets: the question of a
//! query read once ([`Question`]), the size rules
//! (`MAX_UDP_PAYLOAD`, [`clamp_payload`]), response-code names, record-type numbers, the
//! encoder of general-path responses ([`encode`]) and the truncation rule ([`fit`]): a UDP
//! reply that does not fit ends at a record boundary, compressed as the whole reply is, with
//! header counts that match what it holds.
//!
//! It depends on hickory-proto only: no sockets, no zone, no server.

mod encode;
mod question;
mod truncate;

pub use encode::{Response, encode};
pub use question::{ClientEdns, MAX_LABELS, OPT_LEN, Question, opt_record};
pub use truncate::fit;

use hickory_proto::op::ResponseCode;

/// Largest UDP answer offered, whatever the client says (DNS Flag Day 2020: 1232 avoids
/// IP fragmentation on every common path).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The most a UDP reply may take without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;

/// Longest CNAME chain followed when completing an answer, in the cluster zone and in zone
/// files alike (CoreDNS: 10).
pub const MAX_CNAME_CHAIN: usize = 10;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type SOA.
pub const TYPE_SOA: u16 = 6;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type SRV.
pub const TYPE_SRV: u16 = 33;
/// Record type OPT (EDNS, RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// Query type IXFR.
pub const TYPE_IXFR: u16 = 251;
/// Query type AXFR.
pub const TYPE_AXFR: u16 = 252;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// Whether a label as a client spelled it equals `lower`, a label in lower case: ASCII
/// case-insensitive, lowering one side only.
#[inline]
pub fn eq_lower(label: &[u8], lower: &[u8]) -> bool {
    label.len() == lower.len()
        && label
            .iter()
            .zip(lower)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// The payload size a response offers a client that advertised `client` in its OPT record:
/// min(client's, 1232), and never below 512 (RFC 6891 §6.2.5).
pub fn clamp_payload(client: u16) -> u16 {
    client.clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
}

/// The most bytes a reply may take: a whole message over TCP; over UDP what the client's OPT
/// allows ([`clamp_payload`]), 512 without one.
pub fn reply_limit(tcp: bool, client_payload: Option<u16>) -> usize {
    match (tcp, client_payload) {
        (true, _) => usize::from(u16::MAX),
        (false, None) => usize::from(PLAIN_UDP_PAYLOAD),
        (false, Some(p)) => usize::from(clamp_payload(p)),
    }
}

/// The RFC mnemonic of a response code, as metrics and logs label it.
pub fn rcode_name(code: ResponseCode) -> &'static str {
    match u16::from(code) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "OTHER",
    }
}

/// The big-endian `u16` at `at`.
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// The end of the (possibly compressed) name at `pos`: after its root label or its pointer.
pub(crate) fn skip_name(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *b.get(pos)?;
        match len & 0xC0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xC0 => {
                b.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Where one resource record lies in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordAt {
    /// Where its TTL field starts.
    pub ttl_at: usize,
    /// Its type.
    pub rtype: u16,
    /// Where the next record starts.
    pub end: usize,
}

/// The record starting at `pos` of `msg` (owner name, type, class, TTL, RDLENGTH, RDATA);
/// `None` when it runs past the end.
pub(crate) fn record_at(msg: &[u8], pos: usize) -> Option<RecordAt> {
    let fixed = skip_name(msg, pos)?;
    let rtype = u16_at(msg, fixed)?;
    let rdlen = usize::from(u16_at(msg, fixed + 8)?);
    let end = fixed + 10 + rdlen;
    (end <= msg.len()).then_some(RecordAt {
        ttl_at: fixed + 4,
        rtype,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_clamped_to_512_and_1232() {
        assert_eq!(clamp_payload(0), 512);
        assert_eq!(clamp_payload(512), 512);
        assert_eq!(clamp_payload(1000), 1000);
        assert_eq!(clamp_payload(4096), 1232);
        assert_eq!(reply_limit(false, None), 512);
        assert_eq!(reply_limit(false, Some(4096)), 1232);
        assert_eq!(reply_limit(true, None), 65535);
    }

    #[test]
    fn names_skip_labels_and_pointers() {
        let b = b"\x03www\x07example\x00\xc0\x0c";
        assert_eq!(skip_name(b, 0), Some(13));
        assert_eq!(skip_name(b, 13), Some(15));
        assert_eq!(skip_name(b"\x03ww", 0), None);
        assert_eq!(skip_name(b"\x80", 0), None);
    }

    #[test]
    fn records_are_walked_to_their_end() {
        // Owner a pointer, type A, class IN, TTL 30, 4 bytes of address.
        let r = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x00\x00\x01";
        assert_eq!(
            record_at(r, 0),
            Some(RecordAt {
                ttl_at: 6,
                rtype: 1,
                end: 16
            })
        );
        assert_eq!(record_at(&r[..15], 0), None);
    }
}

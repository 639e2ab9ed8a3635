//! Zone transfer of the cluster zone (`--transfer-to CIDR`): AXFR over TCP (RFC 5936) and
//! IXFR (RFC 1995) answered with a single SOA when the client is current, else with the
//! whole zone (an AXFR-style IXFR answer: the server keeps no history of changes).
//!
//! Only clients in the allowed networks get a transfer; everyone else, and AXFR over UDP,
//! gets REFUSED. IXFR over UDP always gets the single current SOA, which tells an outdated
//! client to come back over TCP (RFC 1995 §2). A zone that has not completed its first list
//! answers SERVFAIL rather than a partial transfer.

use std::net::IpAddr;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Metadata, ResponseCode};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncodable;
use hickory_server::server::Request;

use super::DnsHandler;
use crate::wire::Response;
use crate::zone::transfer_records;

/// Most bytes of records in one transfer message: a TCP message is at most 65535 bytes,
/// and the header, question and OPT take at most about 300 of them. Record sizes are counted
/// uncompressed, so a message is never larger than this.
const MESSAGE_BUDGET: usize = 64_000;

/// Whether `client` (the serial of the client's copy) is at least `current`, in RFC 1982
/// serial number arithmetic.
fn serial_current(client: u32, current: u32) -> bool {
    client == current || (client.wrapping_sub(current) as i32) > 0
}

/// The serial in the SOA of an IXFR request's authority section.
fn client_serial(request: &Request) -> Option<u32> {
    request.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Splits `records` into runs that fit one message each.
fn chunks(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        // Uncompressed wire size: owner, type, class, TTL, length, data.
        let len = r.to_bytes().map_or(MESSAGE_BUDGET, |b| b.len());
        if size + len > MESSAGE_BUDGET && i > start {
            out.push(&records[start..i]);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

impl DnsHandler {
    /// Whether `ip` may transfer the zone.
    fn may_transfer(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.options.transfer_to.iter().any(|net| net.contains(&ip))
    }

    /// Answers an AXFR or IXFR question for `name`.
    pub(super) fn transfer(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        name: &Name,
        qtype: RecordType,
    ) -> Vec<Response> {
        let snapshot = self.zone.load_full();
        let allowed = self.may_transfer(request.src().ip())
            && *name == snapshot.config.origin
            && (qtype == RecordType::IXFR || request.protocol() != Protocol::Udp);
        if !allowed {
            tracing::debug!(src = %request.src(), %name, %qtype, "zone transfer refused");
            return vec![self.error(request, edns, ResponseCode::Refused)];
        }
        if !snapshot.synced {
            return vec![self.error(request, edns, ResponseCode::ServFail)];
        }
        let single_soa = qtype == RecordType::IXFR
            && (request.protocol() == Protocol::Udp
                || client_serial(request).is_some_and(|s| serial_current(s, snapshot.serial)));
        let mut records = transfer_records(&snapshot);
        if single_soa {
            records.truncate(1);
        }
        tracing::debug!(src = %request.src(), %qtype, serial = snapshot.serial, records = records.len(), "zone transfer");
        let messages: Vec<Response> = chunks(&records)
            .into_iter()
            .map(|chunk| {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = true;
                metadata.recursion_available = self.forwards();
                metadata.response_code = ResponseCode::NoError;
                let mut r = Response::empty(metadata, edns.cloned());
                r.answers = chunk.to_vec();
                r
            })
            .collect();
        if messages.is_empty() {
            return vec![self.error(request, edns, ResponseCode::ServFail)];
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::rr::rdata::TXT;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_current(5, 5));
        assert!(serial_current(6, 5));
        assert!(!serial_current(4, 5));
        // Wrapped around: 1 is after u32::MAX.
        assert!(serial_current(1, u32::MAX));
        assert!(!serial_current(u32::MAX, 1));
    }

    #[test]
    fn chunks_stay_within_the_budget() {
        let owner = Name::from_ascii("big.example.").unwrap();
        let rec = Record::from_rdata(owner, 30, RData::TXT(TXT::new(vec!["x".repeat(200)])));
        let records = vec![rec; 1000];
        let parts = chunks(&records);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(|c| c.len()).sum::<usize>(), 1000);
        for c in &parts {
            let bytes: usize = c.iter().map(|r| r.to_bytes().unwrap().len()).sum();
            assert!(bytes <= MESSAGE_BUDGET, "{bytes}");
        }
        assert!(chunks(&[]).is_empty());
    }
}

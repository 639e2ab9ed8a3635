//! Per-query metrics and the sampled query log, for both paths: the fast path counts from the
//! question it read (`wire::Question`), the general path from hickory's request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{LowerName, RecordType};
use hickory_server::server::Request;

use super::DnsHandler;
use super::metrics::{AddrFamily, Proto, QueryObservation, rcode_index, type_index};
use crate::wire::Question;

impl DnsHandler {
    /// Counts a query so malformed it never reached the handler (answered FORMERR).
    pub(super) fn count_formerr(&self, protocol: Protocol, src: SocketAddr, sizes: (usize, usize)) {
        let proto = proto_of(protocol);
        self.observe(proto, src, None, None, ResponseCode::FormErr, sizes, None);
    }

    /// Records a query the general path answered.
    pub(super) fn record(
        &self,
        request: &Request,
        rcode: ResponseCode,
        sizes: (usize, usize),
        started: Instant,
    ) {
        let query = request.queries.queries().first();
        self.observe(
            proto_of(request.protocol()),
            request.src(),
            query.map(|q| q.name()),
            query.map(|q| q.query_type()),
            rcode,
            sizes,
            Some(started),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        proto: Proto,
        src: SocketAddr,
        name: Option<&LowerName>,
        qtype: Option<RecordType>,
        rcode: ResponseCode,
        (request_size, response_size): (usize, usize),
        started: Option<Instant>,
    ) {
        let dns = &self.metrics.dns;
        let duration = started.map(|s| s.elapsed()).unwrap_or_default();
        self.metrics.observe_query(&QueryObservation {
            server: 0,
            zone: name.map_or(usize::MAX, |n| dns.zone_index(n)),
            proto,
            family: AddrFamily::of(&src),
            qtype: type_index(qtype),
            rcode: rcode_index(u16::from(rcode)),
            request_size,
            response_size,
            duration,
        });
        if let (Some(clients), Some(n)) = (&self.clients, name) {
            let code = u8::try_from(u16::from(rcode)).unwrap_or(u8::MAX);
            clients.record_text(src.ip(), &n.to_string(), code);
        }
        let name = name.map(|n| n as &dyn std::fmt::Display);
        crate::querylog::sample(&src, name, qtype, rcode, duration);
    }

    /// Records a query the fast path answered with `rcode`, `response_size` bytes.
    pub(super) fn record_fast(
        &self,
        q: &Question<'_>,
        proto: Proto,
        src: SocketAddr,
        (rcode, response_size): (u8, usize),
        duration: Duration,
    ) {
        let labels = q.labels();
        let qtype = RecordType::from(q.qtype());
        self.metrics.observe_query(&QueryObservation {
            server: 0,
            zone: self.metrics.dns.zone_index_labels(labels),
            proto,
            family: AddrFamily::of(&src),
            qtype: type_index(Some(qtype)),
            rcode: rcode_index(u16::from(rcode)),
            request_size: q.packet().len(),
            response_size,
            duration,
        });
        if let Some(clients) = &self.clients {
            clients.record_labels(src.ip(), labels, rcode);
        }
        crate::querylog::sample(
            &src,
            Some(&WireName(labels)),
            Some(qtype),
            ResponseCode::from(0, rcode),
            duration,
        );
    }
}

fn proto_of(protocol: Protocol) -> Proto {
    match protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    }
}

/// A name given as its labels, displayed with dots (for the query log).
struct WireName<'a>(&'a [&'a [u8]]);

impl std::fmt::Display for WireName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for label in self.0 {
            write!(f, "{}.", String::from_utf8_lossy(label))?;
        }
        if self.0.is_empty() {
            f.write_str(".")?;
        }
        Ok(())
    }
}

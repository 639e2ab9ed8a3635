//! The DNS front end: hickory-server's `Server` for sockets and framing, and one
//! `RequestHandler` that answers from the current zone snapshot synchronously.
//!
//! The only module that imports hickory-server.

mod listen;

pub use listen::{BindError, Listeners, bind};

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::metrics::{Metrics, RequestLabels, ResponseLabels};
use crate::zone::{Rcode, Snapshot, lookup, render};

/// Largest UDP answer offered, whatever the client says (DNS Flag Day 2020: 1232 avoids
/// IP fragmentation on every common path).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Answers queries from the zone snapshot it holds.
#[derive(Clone)]
pub struct DnsHandler {
    zone: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
}

impl DnsHandler {
    /// A handler reading snapshots from `zone` and counting into `metrics`.
    pub fn new(zone: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Self { zone, metrics }
    }

    fn record(&self, request: &Request, info: &ResponseInfo, started: std::time::Instant) {
        let proto = match request.protocol() {
            hickory_server::net::xfer::Protocol::Udp => "udp",
            _ => "tcp",
        };
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| q.query_type().to_string())
            .unwrap_or_default();
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                proto,
                r#type: qtype,
            })
            .inc();
        self.metrics
            .responses
            .get_or_create(&ResponseLabels {
                rcode: rcode_name(info.response_code).to_owned(),
            })
            .inc();
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The RFC mnemonic of a response code, as metrics label it.
fn rcode_name(code: ResponseCode) -> &'static str {
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

fn response_code(rcode: Rcode) -> ResponseCode {
    match rcode {
        Rcode::NoError => ResponseCode::NoError,
        Rcode::NxDomain => ResponseCode::NXDomain,
        Rcode::ServFail => ResponseCode::ServFail,
        Rcode::Refused => ResponseCode::Refused,
    }
}

/// The OPT record of the response: our payload size (min(client's, 1232), at least 512), version
/// 0, the DO bit echoed (RFC 3225).
fn response_edns(request: &Request) -> Option<Edns> {
    let client = request.edns.as_ref()?;
    let mut edns = Edns::new();
    edns.set_max_payload(client.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    edns.set_version(0);
    edns.set_dnssec_ok(client.flags().dnssec_ok);
    Some(edns)
}

async fn send_error<R: ResponseHandler>(
    request: &Request,
    edns: Option<&Edns>,
    code: ResponseCode,
    mut handle: R,
) -> ResponseInfo {
    let mut builder = MessageResponseBuilder::new(&request.queries, None);
    if let Some(e) = edns {
        builder.edns(e);
    }
    let response = builder.error_msg(&request.metadata, code);
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => failed(request, e),
    }
}

fn failed(request: &Request, error: impl std::fmt::Display) -> ResponseInfo {
    tracing::debug!(%error, "failed to send response");
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: Default::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        let started = std::time::Instant::now();
        let info = self.answer(request, handle).await;
        self.record(request, &info, started);
        info
    }
}

impl DnsHandler {
    async fn answer<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let edns = response_edns(request);
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return send_error(request, edns.as_ref(), ResponseCode::BADVERS, handle).await;
        }
        if request.metadata.op_code != OpCode::Query {
            return send_error(request, edns.as_ref(), ResponseCode::NotImp, handle).await;
        }
        let Ok(info) = request.request_info() else {
            return send_error(request, edns.as_ref(), ResponseCode::FormErr, handle).await;
        };
        let query = info.query.original();
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            return send_error(request, edns.as_ref(), ResponseCode::Refused, handle).await;
        }
        let snapshot = self.zone.load();
        let answer = lookup(&snapshot, query.name(), qtype);
        let rendered = render(&snapshot, &answer, query.name());
        tracing::debug!(name = %query.name(), %qtype, rcode = ?answer.rcode, answers = rendered.answers.len(), "query");

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.rcode != Rcode::Refused;
        metadata.response_code = response_code(answer.rcode);
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let none: &[Record] = &[];
        let response = builder.build(
            metadata,
            rendered.answers.iter(),
            rendered.authorities.iter(),
            none.iter(),
            rendered.additionals.iter(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => failed(request, e),
        }
    }
}

//! The general path: a query hickory's decoder read (any shape the fast path declines), the
//! protocol checks (EDNS version, opcode, class, zone transfers), autopath, then the answer
//! chain's `resolve`, turned into a [`Response`] for `wire::encode`.

use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Name, RecordType};
use hickory_server::server::Request;

use super::{DnsHandler, autopath, shuffle};
use crate::forward::Outgoing;
use crate::wire::{Response, clamp_payload};
use crate::zone::{Rcode, Rendered};

/// What a query resolved to, before it is sent.
pub(super) enum Outcome {
    /// A response with these header bits and sections.
    Records {
        /// Header bits (response code, AA, RA, TC, AD).
        metadata: Metadata,
        /// The sections.
        rendered: Rendered,
    },
    /// A response with only this code.
    Error(ResponseCode),
}

/// The response code of a zone answer.
pub(super) fn response_code(rcode: Rcode) -> ResponseCode {
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
    edns.set_max_payload(clamp_payload(client.max_payload()));
    edns.set_version(0);
    edns.set_dnssec_ok(client.flags().dnssec_ok);
    Some(edns)
}

/// The upstream query for a client's question.
pub(super) fn outgoing(request: &Request, name: Name, qtype: RecordType) -> Outgoing {
    Outgoing {
        name,
        qtype,
        qclass: DNSClass::IN,
        rd: request.metadata.recursion_desired,
        cd: request.metadata.checking_disabled,
        edns: request
            .edns
            .as_ref()
            .map(|e| (clamp_payload(e.max_payload()), e.flags().dnssec_ok)),
    }
}

impl DnsHandler {
    /// The response with only the code `code`: RA set when this server forwards (every
    /// response says whether recursion is available, errors included).
    pub(super) fn error(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        code: ResponseCode,
    ) -> Response {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.recursion_available = self.forwards();
        Response::empty(metadata, edns.cloned())
    }

    /// Every message answering `request` (several for a zone transfer over TCP).
    pub(crate) async fn answer(&self, request: &Request) -> Vec<Response> {
        let edns = response_edns(request);
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return vec![self.error(request, edns.as_ref(), ResponseCode::BADVERS)];
        }
        if request.metadata.op_code != OpCode::Query {
            return vec![self.error(request, edns.as_ref(), ResponseCode::NotImp)];
        }
        let Ok(info) = request.request_info() else {
            return vec![self.error(request, edns.as_ref(), ResponseCode::FormErr)];
        };
        let query = info.query.original();
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN {
            return vec![self.error(request, edns.as_ref(), ResponseCode::Refused)];
        }
        let name = query.name();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return self.transfer(request, edns.as_ref(), name, qtype);
        }
        let outcome = match self.autopath(request, name, qtype).await {
            Some(outcome) => outcome,
            None => self.resolve(request, name, qtype).await,
        };
        vec![self.respond(request, edns.as_ref(), outcome)]
    }

    /// With `--autopath`, when the question is the first step of a known pod's search path:
    /// the first name of the path that resolves, behind a CNAME from the question; the
    /// question's own answer when none does. `None` when autopath does not apply.
    async fn autopath(&self, request: &Request, name: &Name, qtype: RecordType) -> Option<Outcome> {
        if !self.options.autopath {
            return None;
        }
        let path = autopath::search_path(&self.zone.load(), request.src().ip(), name)?;
        let mut first = None;
        for candidate in path {
            let outcome = self.resolve(request, &candidate, qtype).await;
            if autopath::found(&outcome) {
                tracing::debug!(%name, %candidate, "autopath");
                return Some(autopath::cname_from(name, outcome));
            }
            first.get_or_insert(outcome);
        }
        first
    }

    /// The response to `request` that `outcome` makes.
    fn respond(&self, request: &Request, edns: Option<&Edns>, outcome: Outcome) -> Response {
        match outcome {
            Outcome::Records {
                metadata,
                mut rendered,
            } => {
                if self.options.shuffle {
                    shuffle::shuffle_addresses(&mut rendered.answers);
                }
                Response {
                    metadata,
                    answers: rendered.answers,
                    authorities: rendered.authorities,
                    additionals: rendered.additionals,
                    edns: edns.cloned(),
                }
            }
            Outcome::Error(code) => self.error(request, edns, code),
        }
    }
}

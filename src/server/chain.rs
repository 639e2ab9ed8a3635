//! The answer chain: the stages a query goes through, in order, written once as data. Both
//! paths walk the same list: the fast path (packet bytes to packet bytes, synchronous, no
//! allocation) asks each stage's `fast`, the general path (hickory's decoder, async) each
//! stage's `resolve`. A stage answers, passes the query on, or (on the fast path only)
//! declines, sending it to the general path.
//!
//! The list is built by `app` per mode: `[Cluster, StaticZones, AaaaFilter, Forward]` in
//! cluster mode, each but `Cluster` only when configured. A query that no stage answers is
//! REFUSED. An enum, not boxed trait objects, keeps the fast path allocation-free.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::{Name, RecordType};
use hickory_server::server::Request;

use super::general::{Outcome, outgoing, response_code};
use super::{DnsHandler, fast};
use crate::forward::{ForwardError, Forwarder};
use crate::static_zones::ZoneSet;
use crate::wire::{Question, TYPE_AAAA};
use crate::zone::{AnswerData, Rcode, Rendered, lookup, render};

/// One stage of the chain.
#[derive(Clone)]
pub enum Stage {
    /// The cluster zone and its reverse names, from the current snapshot.
    Cluster,
    /// RFC 1035 zone files (`--zones`).
    StaticZones(Arc<ArcSwap<ZoneSet>>),
    /// `--no-aaaa-outside-zone`: AAAA for any name the stages before did not answer is NODATA.
    AaaaFilter,
    /// The upstreams, behind the cache.
    Forward(Arc<Forwarder>),
}

impl Stage {
    /// Where the stage stands in the chain: the order `DnsHandler` keeps stages in.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Self::Cluster => 0,
            Self::StaticZones(_) => 1,
            Self::AaaaFilter => 2,
            Self::Forward(_) => 3,
        }
    }
}

/// What a stage did with a query on the fast path.
pub(super) enum Step {
    /// The response is in the output buffer, this many bytes.
    Answered(fast::Answered),
    /// Not this stage's: the next one may take it.
    Pass,
    /// This stage's, but not on the fast path: the general path answers it.
    Decline,
}

impl Stage {
    /// The fast path's step for `q`.
    pub(super) fn fast(
        &self,
        handler: &DnsHandler,
        q: &Question<'_>,
        options: fast::Options,
        out: &mut [u8],
    ) -> Step {
        match self {
            Self::Cluster => match fast::answer_question(&handler.zone.load(), q, options, out) {
                Some(a) => Step::Answered(a),
                None => Step::Pass,
            },
            // A zone file added since a name was cached takes it over at once.
            Self::StaticZones(zones) if zones.load().covers_wire(q.name()) => Step::Decline,
            Self::StaticZones(_) => Step::Pass,
            Self::AaaaFilter if q.qtype() == TYPE_AAAA => Step::Decline,
            Self::AaaaFilter => Step::Pass,
            // Cached answers are not shuffled on this path.
            Self::Forward(_) if options.shuffle => Step::Decline,
            Self::Forward(f) => {
                let Some(cached) = crate::forward::wire::CacheQuery::new(q) else {
                    return Step::Decline;
                };
                match f.answer_wire(&cached, q.limit(!options.udp), out) {
                    Some(len) => Step::Answered(fast::Answered {
                        len,
                        qtype: q.qtype(),
                        rcode: out.get(3).map_or(0, |b| b & 0x0F),
                    }),
                    None => Step::Decline,
                }
            }
        }
    }

    /// The general path's answer for `name`/`qtype`, or `None` to pass it on.
    pub(super) async fn resolve(
        &self,
        handler: &DnsHandler,
        request: &Request,
        name: &Name,
        qtype: RecordType,
    ) -> Option<Outcome> {
        match self {
            Self::Cluster => handler.cluster(request, name, qtype).await,
            Self::StaticZones(zones) => {
                let z = zones.load().lookup(name, qtype)?;
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = z.authoritative;
                metadata.recursion_available = handler.forwards();
                metadata.response_code = z.rcode;
                let rendered = Rendered {
                    answers: z.answers,
                    authorities: z.authorities,
                    additionals: z.additionals,
                };
                Some(Outcome::Records { metadata, rendered })
            }
            Self::AaaaFilter => (qtype == RecordType::AAAA).then(|| handler.no_aaaa(request)),
            Self::Forward(f) => Some(handler.forward(f, request, name, qtype).await),
        }
    }
}

impl DnsHandler {
    /// The answer for `name`/`qtype` (which may differ from the question's name): the first
    /// stage's that answers; REFUSED when none does.
    pub(super) async fn resolve(
        &self,
        request: &Request,
        name: &Name,
        qtype: RecordType,
    ) -> Outcome {
        for stage in self.chain.iter() {
            if let Some(outcome) = stage.resolve(self, request, name, qtype).await {
                return outcome;
            }
        }
        Outcome::Error(ResponseCode::Refused)
    }

    /// The cluster zone's answer, an ExternalName's CNAME completed (`cname`); `None` for a
    /// name outside it.
    async fn cluster(&self, request: &Request, name: &Name, qtype: RecordType) -> Option<Outcome> {
        let (rcode, mut rendered, cname) = self.cluster_answer(name, qtype)?;
        // An ExternalName's target is chased for addresses only (a CNAME query wants the
        // CNAME itself).
        let chase = cname.filter(|_| matches!(qtype, RecordType::A | RecordType::AAAA));
        tracing::debug!(%name, %qtype, ?rcode, answers = rendered.answers.len(), "query");
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = self.forwards();
        metadata.response_code = rcode;
        if let Some(target) = chase {
            // The chain's end decides the response code (RFC 6604 §3); the CNAME always stays.
            let end = self.complete_cname(request, target, qtype).await;
            metadata.truncation = end.truncated;
            metadata.response_code = end.rcode;
            rendered.answers.extend(end.answers);
            rendered.authorities = end.authorities;
        }
        Some(Outcome::Records { metadata, rendered })
    }

    /// The cluster zone's answer for `name`/`qtype`, rendered, with the target when it is a
    /// CNAME (an ExternalName); `None` for a name outside the zone.
    pub(super) fn cluster_answer(
        &self,
        name: &Name,
        qtype: RecordType,
    ) -> Option<(ResponseCode, Rendered, Option<Name>)> {
        let snapshot = self.zone.load();
        let answer = lookup(&snapshot, name, qtype);
        if answer.rcode == Rcode::Refused {
            return None;
        }
        let cname = match answer.data {
            AnswerData::Cname(target) => Some(target.clone()),
            _ => None,
        };
        Some((
            response_code(answer.rcode),
            render(&snapshot, &answer, name),
            cname,
        ))
    }

    /// NODATA for an AAAA query outside the served zones (`--no-aaaa-outside-zone`): NOERROR
    /// with no records and no SOA. Not authoritative: the name is not ours, and there is no
    /// SOA of its zone to give without asking an upstream (RFC 2308 §5: without one, the
    /// answer is not cached as negative, so turning the flag off takes effect at once).
    fn no_aaaa(&self, request: &Request) -> Outcome {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = self.forwards();
        metadata.response_code = ResponseCode::NoError;
        Outcome::Records {
            metadata,
            rendered: Rendered::default(),
        }
    }

    /// Answers a name outside the served zones from the forwarder.
    async fn forward(
        &self,
        fwd: &Arc<Forwarder>,
        request: &Request,
        name: &Name,
        qtype: RecordType,
    ) -> Outcome {
        if fwd.is_loop_probe(name) {
            tracing::error!(%name, "received this server's own loop probe: an upstream forwards to it");
            return Outcome::Error(ResponseCode::ServFail);
        }
        let q = outgoing(request, name.clone(), qtype);
        match fwd.resolve(&q).await {
            Ok(reply) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.recursion_available = true;
                metadata.authentic_data = reply.authentic_data;
                metadata.truncation = reply.truncated;
                metadata.response_code = reply.rcode;
                let rendered = Rendered {
                    answers: reply.answers,
                    authorities: reply.authorities,
                    additionals: reply.additionals,
                };
                Outcome::Records { metadata, rendered }
            }
            Err(e) => {
                tracing::debug!(name = %q.name, error = %e, "not forwarded");
                Outcome::Error(match e {
                    ForwardError::NoUpstream | ForwardError::Overloaded => ResponseCode::Refused,
                    ForwardError::AllDown | ForwardError::Failed => ResponseCode::ServFail,
                })
            }
        }
    }
}

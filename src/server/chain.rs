//! The answer chain: the stages a query goes through, in order, written once as data. Both
//! paths walk the same list: the fast path (packet bytes to packet bytes, synchronous, no
//! allocation) asks each stage's `fast`, the general path (hickory's decoder, async) each
//! stage's `resolve`. A stage answers, passes the query on, or (on the fast path only)
//! declines, sending it to the general path.
//!
//! The list is built by `app` per mode: `[Rewrite, Cluster, StaticZones, Hosts, AaaaFilter,
//! Forward]` in cluster mode, `Cluster` only there, `StaticZones`, `Hosts`, `AaaaFilter` and
//! `Forward` only when configured. A query that no stage answers is REFUSED. An enum, not
//! boxed trait objects, keeps the fast path allocation-free.
//!
//! `Rewrite` answers nothing itself: the general path rewrites the name before asking the
//! other stages and spells the answer's names back (`DnsHandler::resolve`); on the fast path
//! it declines the names a rule matches.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::CNAME;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::Request;

use super::general::{Outcome, outgoing, response_code};
use super::{DnsHandler, fast};
use crate::forward::{ForwardError, Forwarder};
use crate::hosts::HostsTable;
use crate::rewrite::{Rewriter, Rewritten, revert};
use crate::static_zones::ZoneSet;
use crate::wire::{Question, TYPE_AAAA};
use crate::zone::{AnswerData, Rcode, Rendered, lookup, render};

/// One stage of the chain.
#[derive(Clone)]
pub enum Stage {
    /// `--rewrite`: the question's name rewritten before the other stages, the answer's names
    /// back after them.
    Rewrite(Arc<Rewriter>),
    /// The cluster zone and its reverse names, from the current snapshot.
    Cluster,
    /// RFC 1035 zone files (`--zones`).
    StaticZones(Arc<ArcSwap<ZoneSet>>),
    /// Host entries: `--hosts` (the file's table, when given) and `--hosts-configmap` (the
    /// table in the snapshot).
    Hosts(Option<Arc<ArcSwap<HostsTable>>>),
    /// `--no-aaaa-outside-zone`: AAAA for any name the stages before did not answer is NODATA.
    AaaaFilter,
    /// The upstreams, behind the cache.
    Forward(Arc<Forwarder>),
}

impl Stage {
    /// Where the stage stands in the chain: the order `DnsHandler` keeps stages in.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Self::Rewrite(_) => 0,
            Self::Cluster => 1,
            Self::StaticZones(_) => 2,
            Self::Hosts(_) => 3,
            Self::AaaaFilter => 4,
            Self::Forward(_) => 5,
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
    /// The fast path's step for `q`, which arrived at `now` (as far as a cached answer's age
    /// is concerned: its batch's start).
    pub(super) fn fast(
        &self,
        handler: &DnsHandler,
        q: &Question<'_>,
        options: fast::Options,
        out: &mut [u8],
        now: std::time::Instant,
    ) -> Step {
        match self {
            // One relaxed load when there are no rules.
            Self::Rewrite(r) if !r.any() => Step::Pass,
            Self::Rewrite(r) => {
                let mut buf = [0u8; 256];
                match q.lower_text(&mut buf) {
                    Some(text) if !r.matches(text) => Step::Pass,
                    _ => Step::Decline,
                }
            }
            Self::Hosts(file) => {
                let snapshot = handler.zone.load();
                let tables = [
                    file.as_ref().map(|f| f.load_full()),
                    Some(Arc::clone(&snapshot.hosts)),
                ];
                if tables.iter().flatten().all(|t| t.is_empty()) {
                    return Step::Pass;
                }
                let mut buf = [0u8; 256];
                match q.lower_text(&mut buf) {
                    Some(text) if !tables.iter().flatten().any(|t| t.covers(text)) => Step::Pass,
                    _ => Step::Decline,
                }
            }
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
                match f.answer_wire(&cached, q.limit(!options.udp), out, now) {
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
            Self::Rewrite(_) => None,
            Self::Cluster => handler.cluster(request, name, qtype).await,
            Self::Hosts(file) => {
                let answers = handler.hosts_records(file.as_ref(), name, qtype)?;
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = true;
                metadata.recursion_available = handler.forwards();
                metadata.response_code = ResponseCode::NoError;
                let rendered = Rendered {
                    answers,
                    ..Rendered::default()
                };
                Some(Outcome::Records { metadata, rendered })
            }
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
    /// stage's that answers; REFUSED when none does. With `--rewrite`, the stages are asked
    /// the rewritten name (one rewrite, never repeated) and the answer's names that are the
    /// rewritten name, or below it, are spelled back as `name`.
    pub(super) async fn resolve(
        &self,
        request: &Request,
        name: &Name,
        qtype: RecordType,
    ) -> Outcome {
        let rewritten = match self.chain.first() {
            Some(Stage::Rewrite(r)) => r.rewrite(name),
            _ => None,
        };
        match rewritten {
            None => self.resolve_stages(request, name, qtype).await,
            Some(Rewritten::Invalid(to)) => {
                tracing::debug!(%name, %to, "rewritten to a name that is not a domain name: SERVFAIL");
                Outcome::Error(ResponseCode::ServFail)
            }
            Some(Rewritten::Name(asked)) => {
                tracing::debug!(%name, %asked, "rewritten");
                let mut outcome = self.resolve_stages(request, &asked, qtype).await;
                if let Outcome::Records { rendered, .. } = &mut outcome {
                    for record in &mut rendered.answers {
                        if let Some(back) = revert(&record.name, &asked, name) {
                            record.name = back;
                        }
                        if let RData::CNAME(CNAME(target)) = &mut record.data
                            && let Some(back) = revert(target, &asked, name)
                        {
                            *target = back;
                        }
                    }
                }
                outcome
            }
        }
    }

    /// The first stage's answer for `name`/`qtype`; REFUSED when none answers.
    async fn resolve_stages(&self, request: &Request, name: &Name, qtype: RecordType) -> Outcome {
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

    /// The host entries' records for `name`/`qtype` (the file's first, then the ConfigMap's);
    /// empty for NODATA (a name with entries, none of that type); `None` for a name without
    /// entries.
    pub(super) fn hosts_records(
        &self,
        file: Option<&Arc<ArcSwap<HostsTable>>>,
        name: &Name,
        qtype: RecordType,
    ) -> Option<Vec<Record>> {
        let from_file = file.and_then(|f| f.load().lookup(name, qtype));
        let from_map = self.zone.load().hosts.lookup(name, qtype);
        match (from_file, from_map) {
            (Some(mut a), Some(b)) => {
                a.extend(b.into_iter().filter(|r| !a.contains(r)).collect::<Vec<_>>());
                Some(a)
            }
            (a, b) => a.or(b),
        }
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

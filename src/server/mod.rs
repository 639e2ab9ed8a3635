//! The DNS front end: the sockets (`listen`, `udp`: a thread per UDP socket with
//! `recvmmsg`/`sendmmsg`; `transport`: TCP), the fast path that answers common queries from
//! packet bytes to packet bytes (`fast`), and one hickory `RequestHandler` for the rest, which
//! answers from the current zone snapshot synchronously (or forwards).
//!
//! The only module that imports hickory-server.

mod autopath;
mod cname;
pub mod fast;
mod listen;
#[cfg(target_os = "linux")]
mod mmsg;
mod shuffle;
mod transport;
mod udp;
mod xfr;

pub use listen::{BindError, Listeners, Serving, bind};
pub use transport::{TcpLimits, answer as answer_raw, answer_general};

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RecordType};
use hickory_server::server::Request;

use crate::forward::{ForwardError, Forwarder, Outgoing};
use crate::metrics::{AddrFamily, Metrics, Proto, QueryObservation, rcode_index, type_index};
use crate::wire::{Response, clamp_payload};
use crate::zone::{AnswerData, MAX_LABELS, Rcode, Rendered, Snapshot, lookup, render};
use crate::zonefile::ZoneSet;

/// Optional answer features, all off by default.
#[derive(Clone, Debug, Default)]
pub struct AnswerOptions {
    /// `--shuffle`: address records in a random order, CNAMEs first.
    pub shuffle: bool,
    /// `--no-aaaa-outside-zone`: AAAA for a name outside the served zones is NODATA, never
    /// forwarded.
    pub no_aaaa_outside_zone: bool,
    /// `--autopath`: a pod's search-path walk answered in one round trip.
    pub autopath: bool,
    /// `--transfer-to`: networks allowed to transfer the cluster zone (AXFR/IXFR).
    pub transfer_to: Vec<ipnet::IpNet>,
}

/// Answers queries from the zone snapshot it holds, and forwards the rest.
#[derive(Clone)]
pub struct DnsHandler {
    zone: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    forwarder: Option<Arc<Forwarder>>,
    static_zones: Option<Arc<ArcSwap<ZoneSet>>>,
    options: Arc<AnswerOptions>,
}

impl DnsHandler {
    /// A handler reading snapshots from `zone` and counting into `metrics`.
    pub fn new(zone: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Self {
            zone,
            metrics,
            forwarder: None,
            static_zones: None,
            options: Arc::default(),
        }
    }

    /// The same handler, with these answer features.
    pub fn with_options(mut self, options: AnswerOptions) -> Self {
        self.options = Arc::new(options);
        self
    }

    /// The same handler, also answering the zones of `zones` (zone files) authoritatively.
    pub fn with_static_zones(mut self, zones: Arc<ArcSwap<ZoneSet>>) -> Self {
        self.static_zones = Some(zones);
        self
    }

    /// The static zones' answer for `name`, if it is in one of them.
    pub(super) fn static_lookup(
        &self,
        name: &hickory_server::proto::rr::Name,
        qtype: RecordType,
    ) -> Option<crate::zonefile::ZoneAnswer> {
        self.static_zones.as_ref()?.load().lookup(name, qtype)
    }

    /// The same handler, forwarding names outside its zones through `forwarder`.
    pub fn with_forwarder(mut self, forwarder: Arc<Forwarder>) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    /// Answers `packet` from a fresh forwarder cache entry straight into `out`, when it is a
    /// plain query for a name outside the cluster zone and the zone files (see
    /// `forward::wire`): the response's length and query type.
    fn answer_cached(&self, packet: &[u8], tcp: bool, out: &mut [u8]) -> Option<(usize, u16)> {
        let forwarder = self.forwarder.as_ref()?;
        let q = crate::forward::wire::WireQuery::parse(packet)?;
        // Cluster names never reach the cache; a zone file added since a name was cached
        // takes it over at once.
        if self
            .static_zones
            .as_ref()
            .is_some_and(|z| z.load().covers_wire(q.name()))
        {
            return None;
        }
        let len = forwarder.answer_wire(&q, q.limit(tcp), out)?;
        Some((len, q.qtype()))
    }

    /// Whether names outside the served zones are forwarded (the RA bit of every response).
    pub fn forwards(&self) -> bool {
        self.forwarder.is_some()
    }

    /// Counts a query so malformed it never reached the handler (answered FORMERR).
    fn count_formerr(
        &self,
        protocol: hickory_server::net::xfer::Protocol,
        src: std::net::SocketAddr,
        sizes: (usize, usize),
    ) {
        self.observe(
            protocol,
            src,
            None,
            None,
            ResponseCode::FormErr,
            sizes,
            None,
        );
    }

    /// Records an answered query in the per-query metrics.
    fn record(
        &self,
        request: &Request,
        rcode: ResponseCode,
        sizes: (usize, usize),
        started: std::time::Instant,
    ) {
        let query = request.queries.queries().first();
        self.observe(
            request.protocol(),
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
        protocol: hickory_server::net::xfer::Protocol,
        src: std::net::SocketAddr,
        name: Option<&hickory_server::proto::rr::LowerName>,
        qtype: Option<RecordType>,
        rcode: ResponseCode,
        (request_size, response_size): (usize, usize),
        started: Option<std::time::Instant>,
    ) {
        let dns = &self.metrics.dns;
        let proto = match protocol {
            hickory_server::net::xfer::Protocol::Udp => Proto::Udp,
            _ => Proto::Tcp,
        };
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
        let name = name.map(|n| n as &dyn std::fmt::Display);
        crate::querylog::sample(&src, name, qtype, rcode, duration);
    }

    /// Answers `query` on the fast path into `out`, counting it: from the cluster zone
    /// (`fast::answer`), else from a fresh forwarder cache entry (`forward::wire`). The length
    /// written, or `None` when the query needs the general path.
    pub fn fast_answer(
        &self,
        query: &[u8],
        proto: Proto,
        src: std::net::SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        let started = Instant::now();
        let snapshot = self.zone.load();
        // Autopath answers a pod's search-path walk: queries from known pods take the general
        // path, which knows the walk.
        if self.options.autopath
            && snapshot
                .pod_namespaces
                .get(&src.ip().to_canonical())
                .is_some()
        {
            return None;
        }
        let options = fast::Options {
            shuffle: self.options.shuffle,
            udp: proto == Proto::Udp,
            recursion_available: self.forwarder.is_some(),
        };
        let (len, qtype) = match fast::answer(&snapshot, query, options, out) {
            Some(answered) => (answered.len, answered.qtype),
            // Cached answers are not shuffled on this path.
            None if self.options.shuffle => return None,
            None => self.answer_cached(query, proto == Proto::Tcp, out)?,
        };
        let rcode = out.get(3).map_or(0, |b| b & 0x0F);
        let mut buf: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let n = fast::question_labels(query, &mut buf, &mut [0; MAX_LABELS]);
        let labels = &buf[..n];
        let duration = started.elapsed();
        let qtype = RecordType::from(qtype);
        self.metrics.observe_query(&QueryObservation {
            server: 0,
            zone: self.metrics.dns.zone_index_labels(labels),
            proto,
            family: AddrFamily::of(&src),
            qtype: type_index(Some(qtype)),
            rcode: rcode_index(u16::from(rcode)),
            request_size: query.len(),
            response_size: len,
            duration,
        });
        crate::querylog::sample(
            &src,
            Some(&WireName(labels)),
            Some(qtype),
            ResponseCode::from(0, rcode),
            duration,
        );
        Some(len)
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

/// What a query resolved to, before it is sent.
enum Outcome {
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

impl DnsHandler {
    /// The response with only the code `code`: RA set when this server forwards (every
    /// response says whether recursion is available, errors included).
    fn error(&self, request: &Request, edns: Option<&Edns>, code: ResponseCode) -> Response {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.recursion_available = self.forwarder.is_some();
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
    async fn autopath(
        &self,
        request: &Request,
        name: &hickory_server::proto::rr::Name,
        qtype: RecordType,
    ) -> Option<Outcome> {
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

    /// The answer for `name`/`qtype` (which may differ from the question's name): the cluster
    /// zone, then the zone files, then the upstreams.
    async fn resolve(
        &self,
        request: &Request,
        name: &hickory_server::proto::rr::Name,
        qtype: RecordType,
    ) -> Outcome {
        // The cluster zone (and its reverse names), straight from the snapshot.
        let local = {
            let snapshot = self.zone.load();
            let answer = lookup(&snapshot, name, qtype);
            (answer.rcode != Rcode::Refused).then(|| {
                let chase = match answer.data {
                    AnswerData::Cname(target)
                        if matches!(qtype, RecordType::A | RecordType::AAAA) =>
                    {
                        Some(target.clone())
                    }
                    _ => None,
                };
                (answer.rcode, render(&snapshot, &answer, name), chase)
            })
        };
        let Some((rcode, mut rendered, chase)) = local else {
            // Then the zone files, then the upstreams.
            if let Some(z) = self.static_lookup(name, qtype) {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = z.authoritative;
                metadata.recursion_available = self.forwarder.is_some();
                metadata.response_code = z.rcode;
                let rendered = Rendered {
                    answers: z.answers,
                    authorities: z.authorities,
                    additionals: z.additionals,
                };
                return Outcome::Records { metadata, rendered };
            }
            if self.filters_aaaa(qtype) {
                return self.no_aaaa(request);
            }
            return self.forward(request, name, qtype).await;
        };
        tracing::debug!(%name, %qtype, ?rcode, answers = rendered.answers.len(), "query");
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = self.forwarder.is_some();
        metadata.response_code = response_code(rcode);
        if let Some(target) = chase {
            // The chain's end decides the response code (RFC 6604 §3); the CNAME always stays.
            let end = self.complete_cname(request, target, qtype).await;
            metadata.truncation = end.truncated;
            metadata.response_code = end.rcode;
            rendered.answers.extend(end.answers);
            rendered.authorities = end.authorities;
        }
        Outcome::Records { metadata, rendered }
    }
}

/// The upstream query for a client's question.
pub(super) fn outgoing(
    request: &Request,
    name: hickory_server::proto::rr::Name,
    qtype: RecordType,
) -> Outgoing {
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
    /// Whether `--no-aaaa-outside-zone` keeps this query type from the upstreams.
    pub(super) fn filters_aaaa(&self, qtype: RecordType) -> bool {
        self.options.no_aaaa_outside_zone && qtype == RecordType::AAAA
    }

    /// NODATA for an AAAA query outside the served zones (`--no-aaaa-outside-zone`): NOERROR
    /// with no records and no SOA. Not authoritative: the name is not ours, and there is no
    /// SOA of its zone to give without asking an upstream (RFC 2308 §5: without one, the
    /// answer is not cached as negative, so turning the flag off takes effect at once).
    fn no_aaaa(&self, request: &Request) -> Outcome {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = self.forwarder.is_some();
        metadata.response_code = ResponseCode::NoError;
        Outcome::Records {
            metadata,
            rendered: Rendered::default(),
        }
    }

    /// Answers a name outside the served zones from the forwarder: REFUSED without one.
    async fn forward(
        &self,
        request: &Request,
        name: &hickory_server::proto::rr::Name,
        qtype: RecordType,
    ) -> Outcome {
        let Some(fwd) = &self.forwarder else {
            return Outcome::Error(ResponseCode::Refused);
        };
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

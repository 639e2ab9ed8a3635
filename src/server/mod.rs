//! The DNS front end: the sockets (`listen`; `udp`: a thread per UDP socket with
//! `recvmmsg`/`sendmmsg`; `tcp`: the TCP accept and connection loops), the raw-query pipeline
//! (`pipeline`: the fast path, else hickory's decoder and the general path), and the answer
//! chain both paths walk (`chain`): the cluster zone, zone files, the AAAA filter, the
//! forwarder.
//!
//! - `fast`: cluster-zone answers from packet bytes to packet bytes;
//! - `general`: protocol checks, autopath and the response of the general path;
//! - `cname`: ExternalName completion; `xfr`: zone transfers; `shuffle`: `--shuffle`;
//! - `observe`: per-query metrics and the query log.
//!
//! The only module that imports hickory-server.

mod autopath;
mod batch;
mod chain;
mod cname;
pub mod fast;
mod general;
pub mod groups;
mod histogram;
mod lanes;
pub mod limit;
mod listen;
pub mod metrics;
#[cfg(target_os = "linux")]
pub mod mmsg;
mod observe;
mod pipeline;
mod priority;
mod shuffle;
mod tcp;
mod udp;
mod xfr;

pub use chain::Stage;
pub use listen::{BindError, Listeners, Serving, bind};
pub use pipeline::{answer as answer_raw, answer_general};
pub use tcp::TcpLimits;

/// How much lower than the rest of clusterdns the UDP threads run by default
/// (`--udp-thread-nice`; `udp.rs` says why).
pub const DEFAULT_UDP_THREAD_NICE: i32 = 10;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::forward::Forwarder;
use crate::static_zones::ZoneSet;
use crate::wire::Question;
use crate::zone::Snapshot;
use chain::Step;
use metrics::{Metrics, Proto};

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

/// Answers queries through its answer chain, from the zone snapshot it holds onwards.
#[derive(Clone)]
pub struct DnsHandler {
    zone: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    /// The stages, in chain order (`Stage::rank`).
    chain: Arc<[Stage]>,
    /// Whether the chain forwards (the RA bit of every response).
    forwards: bool,
    options: Arc<AnswerOptions>,
    /// `--top-clients`: where each query is recorded per client.
    clients: Option<Arc<crate::clients::ClientStats>>,
    /// `--max-qps-per-client`: the UDP token buckets.
    limiter: Option<Arc<limit::ClientLimiter>>,
    /// `--udp-thread-nice`: what each UDP thread adds to its nice value as it starts.
    udp_thread_nice: i32,
}

/// What the UDP loops do with a datagram before answering it.
pub enum Gate {
    /// Answer it.
    Pass,
    /// Over its client's limit: drop it.
    Drop,
    /// Over its client's limit: send these first bytes of the output buffer (TC=1, empty).
    Reply(usize),
}

impl DnsHandler {
    /// A handler over the cluster zone alone, reading snapshots from `zone` and counting into
    /// `metrics`.
    pub fn new(zone: Arc<ArcSwap<Snapshot>>, metrics: Arc<Metrics>) -> Self {
        Self {
            zone,
            metrics,
            chain: Arc::new([Stage::Cluster]),
            forwards: false,
            options: Arc::default(),
            clients: None,
            limiter: None,
            udp_thread_nice: DEFAULT_UDP_THREAD_NICE,
        }
    }

    /// The same handler, its UDP threads lowering their priority by `nice` (0: not at all).
    pub fn with_udp_thread_nice(mut self, nice: i32) -> Self {
        self.udp_thread_nice = nice;
        self
    }

    /// The same handler, limiting each client's UDP queries with `limiter`.
    pub fn with_limiter(mut self, limiter: Option<Arc<limit::ClientLimiter>>) -> Self {
        self.limiter = limiter;
        self
    }

    /// What each UDP thread adds to its nice value (`--udp-thread-nice`).
    pub fn udp_thread_nice(&self) -> i32 {
        self.udp_thread_nice
    }

    /// UDP admission (`--max-qps-per-client`): whether the datagram from `src` is answered,
    /// dropped, or slipped (the reply written into `out`). No lock, no allocation.
    pub fn udp_gate(&self, query: &[u8], src: SocketAddr, out: &mut [u8]) -> Gate {
        let Some(limiter) = &self.limiter else {
            return Gate::Pass;
        };
        match limiter.check(src.ip()) {
            limit::Verdict::Allow => Gate::Pass,
            limit::Verdict::Drop => Gate::Drop,
            limit::Verdict::Slip => match limit::slip_reply(query, out) {
                Some(len) => Gate::Reply(len),
                None => Gate::Drop,
            },
        }
    }

    /// The same handler, recording each query per client into `clients`.
    pub fn with_clients(mut self, clients: Option<Arc<crate::clients::ClientStats>>) -> Self {
        self.clients = clients;
        self
    }

    /// The same handler answering through `stages` (kept in chain order).
    pub fn with_chain(mut self, mut stages: Vec<Stage>) -> Self {
        stages.sort_by_key(Stage::rank);
        self.forwards = stages.iter().any(|s| matches!(s, Stage::Forward(_)));
        self.chain = stages.into();
        self
    }

    /// The same handler with `stage` added to its chain, in its place.
    fn with_stage(self, stage: Stage) -> Self {
        let mut stages: Vec<Stage> = self
            .chain
            .iter()
            .filter(|s| s.rank() != stage.rank())
            .cloned()
            .collect();
        stages.push(stage);
        self.with_chain(stages)
    }

    /// The same handler, with these answer features (`no_aaaa_outside_zone` adds the AAAA
    /// filter stage).
    pub fn with_options(mut self, options: AnswerOptions) -> Self {
        let filter = options.no_aaaa_outside_zone;
        self.options = Arc::new(options);
        if filter {
            self.with_stage(Stage::AaaaFilter)
        } else {
            let stages = self
                .chain
                .iter()
                .filter(|s| !matches!(s, Stage::AaaaFilter))
                .cloned()
                .collect();
            self.with_chain(stages)
        }
    }

    /// The same handler, also answering the zones of `zones` (zone files) authoritatively.
    pub fn with_static_zones(self, zones: Arc<ArcSwap<ZoneSet>>) -> Self {
        self.with_stage(Stage::StaticZones(zones))
    }

    /// The same handler, forwarding names outside its zones through `forwarder`.
    pub fn with_forwarder(self, forwarder: Arc<Forwarder>) -> Self {
        self.with_stage(Stage::Forward(forwarder))
    }

    /// Whether names outside the served zones are forwarded (the RA bit of every response).
    pub fn forwards(&self) -> bool {
        self.forwards
    }

    /// Answers `query` on the fast path into `out`, counting it: the question is read once
    /// (`wire::Question`) and the chain's stages asked in order. The length written, or `None`
    /// when the query needs the general path.
    pub fn fast_answer(
        &self,
        query: &[u8],
        proto: Proto,
        src: SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        self.fast_answer_since(query, proto, src, out, Instant::now())
    }

    /// `fast_answer` for a query whose handling began at `started`: the UDP loop reads the
    /// clock once per batch, and a query's duration runs from the batch's start, since its
    /// answer waits for those before it and leaves with them.
    pub fn fast_answer_since(
        &self,
        query: &[u8],
        proto: Proto,
        src: SocketAddr,
        out: &mut [u8],
        started: Instant,
    ) -> Option<usize> {
        // Autopath answers a pod's search-path walk: queries from known pods take the general
        // path, which knows the walk.
        if self.options.autopath
            && self
                .zone
                .load()
                .pod_namespaces
                .get(&src.ip().to_canonical())
                .is_some()
        {
            return None;
        }
        let mut q = Question::unread(query);
        if !q.read() {
            return None;
        }
        let options = fast::Options {
            shuffle: self.options.shuffle,
            udp: proto == Proto::Udp,
            recursion_available: self.forwards,
        };
        for stage in self.chain.iter() {
            match stage.fast(self, &q, options, out, started) {
                Step::Answered(a) => {
                    self.record_fast(&q, proto, src, (a.rcode, a.len), started.elapsed());
                    return Some(a.len);
                }
                Step::Pass => {}
                Step::Decline => return None,
            }
        }
        None
    }
}

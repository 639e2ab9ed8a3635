//! Upstream resolvers: one exchange (UDP, then TCP when the reply is truncated; or over the
//! upstream's persistent TCP/TLS connections, see [`super::stream`]), health (marked down
//! after consecutive failures, probed over its own transport in the background until it
//! answers), and a pool trying its healthy upstreams in the configured order.
//!
//! A UDP query goes out with a random ID from a fresh socket on a kernel-chosen ephemeral port
//! (randomised by Linux), connected to the upstream so the kernel drops datagrams from any
//! other source; a reply whose ID or question differs from the query is dropped and counted,
//! and the wait goes on for the real one. On a stream the connection picks the ID and matches
//! the reply by it; the question is checked here the same way.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::endpoint::Endpoint;
use super::metrics::{Metrics, UpstreamLabels, UpstreamRcodeLabels};
use super::stream::{StreamError, StreamSettings, Streams};

/// The question and flags of an upstream query.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Query name, spelled as the client asked.
    pub name: Name,
    /// Query type.
    pub qtype: RecordType,
    /// Query class.
    pub qclass: DNSClass,
    /// Recursion desired (the client's).
    pub rd: bool,
    /// Checking disabled (the client's).
    pub cd: bool,
    /// EDNS payload size and DO bit, when the client sent EDNS.
    pub edns: Option<(u16, bool)>,
}

impl Outgoing {
    fn encode(&self, id: u16) -> Option<Vec<u8>> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = self.rd;
        m.metadata.checking_disabled = self.cd;
        let mut q = Query::query(self.name.clone(), self.qtype);
        q.set_query_class(self.qclass);
        m.add_query(q);
        if let Some((payload, dnssec_ok)) = self.edns {
            let mut e = Edns::new();
            e.set_max_payload(payload.max(512));
            e.set_version(0);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().ok()
    }

    /// Whether `reply` answers this query sent with `id`: a response with that ID, opcode
    /// QUERY (copied from the query, RFC 1035 §4.1.1) and question. In an UPDATE reply
    /// hickory reads a record without RDATA as an update record, which a QUERY response
    /// cannot carry: no client would read ours (hickory: `InvalidEmptyRecord`).
    fn answered_by(&self, reply: &Message, id: u16) -> bool {
        reply.metadata.id == id
            && reply.metadata.message_type == MessageType::Response
            && reply.metadata.op_code == OpCode::Query
            && reply.queries.len() == 1
            && reply.queries.first().is_some_and(|q| {
                q.query_type() == self.qtype
                    && q.query_class() == self.qclass
                    && q.name() == &self.name
            })
    }
}

/// Why one exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No acceptable reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// A socket error (e.g. ICMP port unreachable).
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The query could not be encoded.
    #[error("query cannot be encoded")]
    Encode,
    /// The TCP reply could not be read as DNS.
    #[error("unreadable reply")]
    Malformed,
    /// The persistent connection failed.
    #[error("{0}")]
    Stream(#[from] StreamError),
}

/// The outcome of reading replies: a match, or a count of ones dropped.
struct Exchange<'a> {
    to: &'a SocketAddr,
    upstream: &'a Upstream,
    query: &'a Outgoing,
    metrics: &'a Metrics,
}

impl Exchange<'_> {
    fn label(&self) -> UpstreamLabels {
        self.upstream.label()
    }

    /// Parses `bytes`, counting it when it is not the reply to `id`.
    fn accept(&self, bytes: &[u8], id: u16) -> Option<Message> {
        let reply = accept_reply(self.query, id, bytes);
        if reply.is_none() {
            self.metrics.mismatched.get_or_create(&self.label()).inc();
        }
        reply
    }

    async fn udp(&self, deadline: tokio::time::Instant) -> Result<Message, AttemptError> {
        let id = rand::random::<u16>();
        let bytes = self.query.encode(id).ok_or(AttemptError::Encode)?;
        let local: SocketAddr = if self.to.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await?;
        sock.connect(self.to).await?;
        sock.send(&bytes).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Err(AttemptError::Timeout(left(deadline))),
            };
            if let Some(m) = buf.get(..n).and_then(|b| self.accept(b, id)) {
                return Ok(m);
            }
        }
    }

    async fn tcp(&self, deadline: tokio::time::Instant) -> Result<Message, AttemptError> {
        let id = rand::random::<u16>();
        let bytes = self.query.encode(id).ok_or(AttemptError::Encode)?;
        let len = u16::try_from(bytes.len()).map_err(|_| AttemptError::Encode)?;
        let work = async {
            let mut s = TcpStream::connect(self.to).await?;
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&bytes);
            s.write_all(&framed).await?;
            loop {
                let mut prefix = [0u8; 2];
                s.read_exact(&mut prefix).await?;
                let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                s.read_exact(&mut reply).await?;
                if let Some(m) = self.accept(&reply, id) {
                    return Ok::<_, AttemptError>(m);
                }
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(AttemptError::Timeout(left(deadline))),
        }
    }

    /// Over the upstream's persistent connections: the connection sets the ID.
    async fn stream(
        &self,
        streams: &Streams,
        deadline: tokio::time::Instant,
    ) -> Result<Message, AttemptError> {
        let bytes = self.query.encode(0).ok_or(AttemptError::Encode)?;
        let reply = match tokio::time::timeout_at(deadline, streams.exchange(bytes)).await {
            Ok(r) => r?,
            Err(_) => return Err(AttemptError::Timeout(left(deadline))),
        };
        let id = reply
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(AttemptError::Malformed)?;
        self.accept(&reply, id).ok_or(AttemptError::Malformed)
    }

    /// UDP first; the same query over TCP when the reply is truncated. When TCP fails the
    /// truncated reply stands (its TC bit tells the client). Stream upstreams: their
    /// connections only.
    async fn run(&self, timeout: Duration) -> Result<Message, AttemptError> {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(streams) = &self.upstream.streams {
            return self.stream(streams, deadline).await;
        }
        let reply = self.udp(deadline).await?;
        if !reply.metadata.truncation {
            return Ok(reply);
        }
        match self.tcp(deadline).await {
            Ok(full) => Ok(full),
            Err(e) => {
                tracing::debug!(upstream = %self.to, error = %e, "TCP retry of a truncated reply failed");
                Ok(reply)
            }
        }
    }
}

/// Reads `bytes`, received from an upstream, as the reply to `query` sent with `id`: the parsed
/// message when it is a response with that ID and opcode QUERY to that question, `None` for
/// anything else (malformed bytes, another ID, a query, another opcode, another question).
/// Every upstream datagram and TCP message goes through here before it reaches the cache.
pub fn accept_reply(query: &Outgoing, id: u16, bytes: &[u8]) -> Option<Message> {
    Message::from_vec(bytes)
        .ok()
        .filter(|m| query.answered_by(m, id))
}

fn left(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

/// One upstream resolver, its connections and its health.
pub struct Upstream {
    /// Where it listens and how it is spoken to.
    pub endpoint: Endpoint,
    streams: Option<Streams>,
    fails: AtomicU32,
    down: AtomicBool,
    /// Set once it has answered anything.
    answered: AtomicBool,
}

impl Upstream {
    /// An upstream assumed up, with no connection open yet.
    pub fn new(endpoint: Endpoint, streams: &StreamSettings, metrics: &Arc<Metrics>) -> Self {
        let streams = endpoint
            .is_stream()
            .then(|| Streams::new(endpoint.clone(), streams.clone(), Arc::clone(metrics)));
        Self {
            endpoint,
            streams,
            fails: AtomicU32::new(0),
            down: AtomicBool::new(false),
            answered: AtomicBool::new(false),
        }
    }

    /// Its metric labels.
    pub fn label(&self) -> UpstreamLabels {
        UpstreamLabels {
            to: self.endpoint.to_string(),
        }
    }

    /// Sends `query` once (UDP, TCP on truncation; or over its connections) and returns the
    /// matching reply.
    pub async fn exchange(
        &self,
        query: &Outgoing,
        timeout: Duration,
        metrics: &Metrics,
    ) -> Result<Message, AttemptError> {
        let reply = Exchange {
            to: &self.endpoint.addr,
            upstream: self,
            query,
            metrics,
        }
        .run(timeout)
        .await?;
        self.answered.store(true, Ordering::Relaxed);
        Ok(reply)
    }

    /// Whether it is marked down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

/// The order in which upstreams are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// A random order per query.
    Random,
    /// Each query starts at the next upstream.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// Always the first healthy one, in the order given.
    Sequential,
}

/// How a pool talks to its upstreams.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    /// Wait for one upstream's reply.
    pub timeout: Duration,
    /// Consecutive failures that mark an upstream down.
    pub max_fails: u32,
    /// Probe interval of a down upstream.
    pub health_interval: Duration,
    /// Order of tries.
    pub policy: Policy,
    /// Connections to TCP and TLS upstreams.
    pub streams: StreamSettings,
}

/// Why a pool could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every upstream is marked down: failed at once, nothing sent.
    #[error("every upstream is down")]
    AllDown,
    /// Every upstream tried failed.
    #[error("no upstream answered")]
    Failed,
}

/// Upstreams for one domain (`.` or a stub domain).
pub struct Pool {
    /// The domain it serves, for logs.
    pub domain: String,
    /// The domain it serves.
    zone: Name,
    upstreams: Vec<Arc<Upstream>>,
    settings: PoolSettings,
    next: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl Pool {
    /// A pool of `upstreams` (shared with other pools naming the same endpoint: one health
    /// state and one set of connections per server).
    pub fn new(
        zone: Name,
        upstreams: Vec<Arc<Upstream>>,
        settings: PoolSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        for u in &upstreams {
            if !u.is_down() {
                metrics.healthy.get_or_create(&u.label()).set(1);
            }
        }
        Self {
            domain: zone.to_string(),
            zone,
            upstreams,
            settings,
            next: AtomicUsize::new(0),
            metrics,
        }
    }

    /// The upstreams, in configuration order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Whether any of its upstreams has answered since the pool was made.
    pub fn answered(&self) -> bool {
        self.upstreams
            .iter()
            .any(|u| u.answered.load(Ordering::Relaxed))
    }

    /// Read timeout of one try.
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// The healthy upstreams in the order this query tries them.
    fn order(&self) -> Vec<Arc<Upstream>> {
        let mut up: Vec<Arc<Upstream>> = self
            .upstreams
            .iter()
            .filter(|u| !u.is_down())
            .cloned()
            .collect();
        match self.settings.policy {
            Policy::Sequential => {}
            Policy::RoundRobin => {
                if !up.is_empty() {
                    let start = self.next.fetch_add(1, Ordering::Relaxed) % up.len();
                    up.rotate_left(start);
                }
            }
            Policy::Random => {
                use rand::seq::SliceRandom;
                up.shuffle(&mut rand::rng());
            }
        }
        up
    }

    /// Asks the healthy upstreams in turn until one answers, within `budget`.
    pub async fn query(
        self: &Arc<Self>,
        q: &Outgoing,
        budget: Duration,
    ) -> Result<Message, PoolError> {
        let order = self.order();
        if order.is_empty() {
            self.metrics.healthcheck_broken.inc();
            return Err(PoolError::AllDown);
        }
        let deadline = Instant::now() + budget;
        let m = &self.metrics;
        for u in order {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let label = u.label();
            m.requests.get_or_create(&label).inc();
            let started = Instant::now();
            match u.exchange(q, self.settings.timeout.min(remaining), m).await {
                Ok(reply) => {
                    m.duration
                        .get_or_create(&label)
                        .observe(started.elapsed().as_secs_f64());
                    m.responses
                        .get_or_create(&UpstreamRcodeLabels {
                            to: label.to,
                            rcode: crate::wire::rcode_name(reply.metadata.response_code),
                        })
                        .inc();
                    u.fails.store(0, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!(upstream = %u.endpoint, name = %q.name, error = %e, "upstream query failed");
                    m.failures.get_or_create(&label).inc();
                    self.failed(&u);
                }
            }
        }
        Err(PoolError::Failed)
    }

    fn failed(self: &Arc<Self>, u: &Arc<Upstream>) {
        let fails = u.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails < self.settings.max_fails || u.down.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(upstream = %u.endpoint, domain = %self.domain, fails, "upstream marked down; probing it until it answers");
        self.metrics.healthy.get_or_create(&u.label()).set(0);
        tokio::spawn(probe(
            Arc::downgrade(self),
            Arc::clone(u),
            self.settings.clone(),
        ));
    }
}

/// The health probe, every interval until the upstream answers acceptably. The default pool
/// asks `. IN NS` and wants neither SERVFAIL nor REFUSED (a resolver answering those cannot
/// resolve for us); a stub domain's pool asks `<domain> IN NS` and wants anything but
/// SERVFAIL (an authoritative server, such as the central cluster DNS behind a node-local
/// tier, may refuse a parent of the names it serves). Ends when the pool is gone.
async fn probe(pool: Weak<Pool>, u: Arc<Upstream>, settings: PoolSettings) {
    let Some(zone) = pool.upgrade().map(|p| p.zone.clone()) else {
        return;
    };
    let stub = !zone.is_root();
    let q = Outgoing {
        name: zone,
        qtype: RecordType::NS,
        qclass: DNSClass::IN,
        rd: true,
        cd: false,
        edns: None,
    };
    let label = u.label();
    loop {
        tokio::time::sleep(settings.health_interval).await;
        let Some(pool) = pool.upgrade() else { return };
        let m = &pool.metrics;
        match u.exchange(&q, settings.timeout, m).await {
            Ok(r)
                if !matches!(
                    r.metadata.response_code,
                    ResponseCode::ServFail | ResponseCode::Refused
                ) || (stub && r.metadata.response_code == ResponseCode::Refused) =>
            {
                u.fails.store(0, Ordering::Relaxed);
                u.down.store(false, Ordering::Relaxed);
                m.healthy.get_or_create(&label).set(1);
                tracing::info!(upstream = %u.endpoint, domain = %pool.domain, "upstream up again");
                return;
            }
            _ => {
                m.healthcheck_failures.get_or_create(&label).inc();
            }
        }
    }
}

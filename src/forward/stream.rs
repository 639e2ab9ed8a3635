//! Persistent, pipelined TCP and TLS connections to one upstream (RFC 7766 §6.2.1, RFC 7858).
//!
//! A connection is a task owning the socket: queries reach it over a channel, go out as soon
//! as they arrive (several in flight, each under an ID unique on that connection), and replies
//! are matched back by ID in whatever order they come. A query takes the open connection with
//! the fewest queries in flight; another connection is opened beside it when every one holds
//! `PIPELINE_DEPTH` queries, up to `max_connections`. A connection with nothing in flight for
//! `idle_timeout` is closed, as CoreDNS's `expire`. A query whose connection broke before the
//! answer (reset, closed by the server, closed idle the moment it was sent) is sent once more
//! on a fresh connection.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use super::endpoint::{Endpoint, Transport};
use super::metrics::{Metrics, UpstreamLabels};

/// Queries one connection carries before another is opened beside it.
pub const PIPELINE_DEPTH: usize = 64;

/// How long a TCP connect and TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The roots TLS upstreams' certificates are verified against.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    ca: Option<PathBuf>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").field("ca", &self.ca).finish()
    }
}

/// Two clients are alike when they trust the same roots (the same CA file, or the system's).
impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.ca == other.ca
    }
}

/// Why the TLS roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("--upstream-tls-ca {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The system store has no usable root certificate.
    #[error("no root certificate in the system store for tls:// upstreams; give --upstream-tls-ca")]
    NoSystemRoots,
}

impl TlsClient {
    /// Trusts the certificates in `ca` (PEM), or the system's roots when `None`.
    pub fn load(ca: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        if let Some(path) = ca {
            use rustls_pki_types::pem::PemObject;
            let bad = |why: String| TlsError::CaFile {
                path: path.to_owned(),
                why,
            };
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no certificate in the file".into()));
            }
        } else {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "reading the system's root certificates");
            }
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::CaFile {
                path: ca.map(Path::to_owned).unwrap_or_default(),
                why: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            ca: ca.map(Path::to_owned),
        })
    }
}

/// How connections to stream upstreams are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSettings {
    /// A connection with nothing in flight this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once to one upstream.
    pub max_connections: usize,
    /// Roots for `tls://` upstreams; `None` when no upstream uses TLS.
    pub tls: Option<TlsClient>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(10),
            max_connections: 8,
            tls: None,
        }
    }
}

/// Why a stream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The connection closed (or could not be opened) before the answer, twice.
    #[error("connection closed before the answer")]
    Broken,
    /// `tls://` with no TLS roots configured.
    #[error("no TLS roots configured")]
    NoTls,
}

/// One query for a connection: the DNS message (its ID is set by the connection) and where
/// the reply goes.
struct Request {
    message: Vec<u8>,
    reply: oneshot::Sender<Vec<u8>>,
}

/// One open (or opening) connection, as the pool sees it.
struct Conn {
    tx: mpsc::UnboundedSender<Request>,
    inflight: AtomicUsize,
    closed: Arc<AtomicBool>,
}

/// Counts a query in flight on a connection for as long as its caller waits.
struct InFlight<'a>(&'a Conn);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connections to one stream upstream.
pub struct Streams {
    endpoint: Endpoint,
    settings: StreamSettings,
    metrics: Arc<Metrics>,
    conns: Mutex<Vec<Arc<Conn>>>,
}

impl Streams {
    /// No connection yet: the first query opens one.
    pub fn new(endpoint: Endpoint, settings: StreamSettings, metrics: Arc<Metrics>) -> Self {
        // Every series of the upstream exists from the start, at 0.
        let label = UpstreamLabels {
            to: endpoint.to_string(),
        };
        drop(metrics.connections.get_or_create(&label));
        drop(metrics.connections_opened.get_or_create(&label));
        drop(metrics.connections_reused.get_or_create(&label));
        drop(metrics.handshake_failures.get_or_create(&label));
        Self {
            endpoint,
            settings,
            metrics,
            conns: Mutex::new(Vec::new()),
        }
    }

    fn label(&self) -> UpstreamLabels {
        UpstreamLabels {
            to: self.endpoint.to_string(),
        }
    }

    /// Sends `message` and returns the reply with the same ID (the ID in `message` is
    /// replaced by one free on the connection; the reply carries it). Retries once on a fresh
    /// connection when the first breaks. The caller bounds the wait.
    pub async fn exchange(&self, message: Vec<u8>) -> Result<Vec<u8>, StreamError> {
        let conn = self.pick(false)?;
        match self.send(&conn, message.clone()).await {
            Ok(reply) => Ok(reply),
            Err(()) => {
                let fresh = self.pick(true)?;
                self.send(&fresh, message)
                    .await
                    .map_err(|()| StreamError::Broken)
            }
        }
    }

    async fn send(&self, conn: &Conn, message: Vec<u8>) -> Result<Vec<u8>, ()> {
        conn.inflight.fetch_add(1, Ordering::Relaxed);
        let _counted = InFlight(conn);
        let (reply, rx) = oneshot::channel();
        conn.tx.send(Request { message, reply }).map_err(|_| ())?;
        rx.await.map_err(|_| ())
    }

    /// The connection for the next query: the open one with the fewest in flight, or a new
    /// one when each is full (or `fresh` is asked for) and the cap allows.
    fn pick(&self, fresh: bool) -> Result<Arc<Conn>, StreamError> {
        // A panicking holder leaves a list of connections, each usable or marked closed.
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| !c.closed.load(Ordering::Relaxed));
        let least = conns
            .iter()
            .min_by_key(|c| c.inflight.load(Ordering::Relaxed))
            .cloned();
        let room = conns.len() < self.settings.max_connections.max(1);
        match least {
            Some(c) if !fresh && (!room || c.inflight.load(Ordering::Relaxed) < PIPELINE_DEPTH) => {
                self.metrics
                    .connections_reused
                    .get_or_create(&self.label())
                    .inc();
                Ok(c)
            }
            Some(c) if !room => {
                self.metrics
                    .connections_reused
                    .get_or_create(&self.label())
                    .inc();
                Ok(c)
            }
            _ => {
                let c = self.open()?;
                conns.push(Arc::clone(&c));
                Ok(c)
            }
        }
    }

    /// Starts a connection's task; queries sent before it is connected wait in its channel.
    fn open(&self) -> Result<Arc<Conn>, StreamError> {
        let tls = match &self.endpoint.transport {
            Transport::Tls { server_name } => {
                let client = self.settings.tls.as_ref().ok_or(StreamError::NoTls)?;
                let name = rustls_pki_types::ServerName::try_from(server_name.clone())
                    .map_err(|_| StreamError::NoTls)?;
                Some((TlsConnector::from(Arc::clone(&client.config)), name))
            }
            _ => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        let task = Connection {
            endpoint: self.endpoint.clone(),
            label: self.label(),
            metrics: Arc::clone(&self.metrics),
            idle: self.settings.idle_timeout,
            closed: Arc::clone(&closed),
        };
        tokio::spawn(task.run(tls, rx));
        Ok(Arc::new(Conn {
            tx,
            inflight: AtomicUsize::new(0),
            closed,
        }))
    }
}

/// A connection's task: connects, then carries queries and replies until it breaks or idles.
struct Connection {
    endpoint: Endpoint,
    label: UpstreamLabels,
    metrics: Arc<Metrics>,
    idle: Duration,
    closed: Arc<AtomicBool>,
}

type Tls = (TlsConnector, rustls_pki_types::ServerName<'static>);

impl Connection {
    async fn run(self, tls: Option<Tls>, rx: mpsc::UnboundedReceiver<Request>) {
        let addr = self.endpoint.addr;
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok::<_, std::io::Error>(tcp)
        };
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.failed(&e.to_string()),
            Err(_) => return self.failed("connect timed out"),
        };
        let m = &self.metrics;
        m.connections_opened.get_or_create(&self.label).inc();
        m.connections.get_or_create(&self.label).inc();
        match tls {
            None => self.serve(tcp, rx).await,
            Some((connector, name)) => {
                match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
                    Ok(Ok(s)) => self.serve(s, rx).await,
                    Ok(Err(e)) => self.failed(&e.to_string()),
                    Err(_) => self.failed("TLS handshake timed out"),
                }
            }
        }
        m.connections.get_or_create(&self.label).dec();
    }

    fn failed(&self, why: &str) {
        self.closed.store(true, Ordering::Relaxed);
        self.metrics
            .handshake_failures
            .get_or_create(&self.label)
            .inc();
        tracing::debug!(upstream = %self.endpoint, error = why, "upstream connection failed");
    }

    async fn serve<S: AsyncRead + AsyncWrite>(
        &self,
        s: S,
        mut rx: mpsc::UnboundedReceiver<Request>,
    ) {
        let (r, mut w) = tokio::io::split(s);
        let mut frames = FramedRead::new(
            r,
            LengthDelimitedCodec::builder()
                .length_field_length(2)
                .max_frame_length(usize::from(u16::MAX))
                .new_codec(),
        );
        let mut pending: HashMap<u16, oneshot::Sender<Vec<u8>>> = HashMap::new();
        let mut out = Vec::new();
        let mut last = Instant::now();
        loop {
            tokio::select! {
                req = rx.recv() => {
                    let Some(first) = req else { break };
                    out.clear();
                    frame(first, &mut pending, &mut out);
                    while let Ok(more) = rx.try_recv() {
                        frame(more, &mut pending, &mut out);
                    }
                    if w.write_all(&out).await.is_err() {
                        break;
                    }
                    last = Instant::now();
                }
                reply = frames.next() => {
                    let Some(Ok(reply)) = reply else { break };
                    let id = reply.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                    if let Some(tx) = id.and_then(|id| pending.remove(&id)) {
                        let _ = tx.send(reply.to_vec());
                    }
                    last = Instant::now();
                }
                () = tokio::time::sleep_until(last + self.idle) => {
                    // Callers that gave up no longer hold the connection open.
                    pending.retain(|_, tx| !tx.is_closed());
                    if pending.is_empty() {
                        break;
                    }
                    last = Instant::now();
                }
            }
        }
        // Queries queued and not sent are dropped with `rx`: their callers retry elsewhere.
        self.closed.store(true, Ordering::Relaxed);
        rx.close();
        let _ = w.shutdown().await;
    }
}

/// Gives `req` an ID free on the connection and appends it, length-prefixed, to `out`.
fn frame(req: Request, pending: &mut HashMap<u16, oneshot::Sender<Vec<u8>>>, out: &mut Vec<u8>) {
    let Request { mut message, reply } = req;
    if pending.len() > usize::from(u16::MAX) / 2 {
        pending.retain(|_, tx| !tx.is_closed());
    }
    let Ok(len) = u16::try_from(message.len()) else {
        return;
    };
    let Some(id) = (0..64)
        .map(|_| rand::random::<u16>())
        .find(|id| !pending.contains_key(id))
    else {
        return;
    };
    if let Some(head) = message.get_mut(..2) {
        head.copy_from_slice(&id.to_be_bytes());
    } else {
        return;
    }
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&message);
    pending.insert(id, reply);
}

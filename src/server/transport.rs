//! The sockets: a UDP loop per socket and a TCP accept loop per listener, both feeding raw
//! queries to the `DnsHandler` and sending what it answers.
//!
//! Decoding follows hickory-server's own server: fewer than 12 bytes (no header) are dropped;
//! a header followed by an unreadable body gets FORMERR; a response (QR=1) is never answered.
//!
//! Bounds: UDP queries in flight (answers that wait on an upstream) are capped per socket, and
//! packets beyond the cap are dropped; TCP connections are capped (`--max-tcp-connections`,
//! extra connections are closed at once), each connection has at most `MAX_PIPELINED` queries
//! in flight (reading pauses beyond), an idle timeout between queries, and a write timeout so
//! a client that never reads cannot hold answers in memory.
//!
//! Shutdown: once the token is cancelled, sockets stop taking new queries, the queries in
//! flight are answered, and the loops return.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DnsHandler;
use crate::metrics::{Metrics, Proto};

/// Queries in flight on one TCP connection; reading pauses beyond it.
pub const MAX_PIPELINED: usize = 32;
/// Batches (of at most `MAX_BATCH` datagrams) in flight on one UDP socket (only those holding
/// forwarded queries wait); beyond it datagrams are dropped.
pub const MAX_UDP_INFLIGHT: usize = 10_000;
/// How long one answer may wait to be written to a TCP client before the connection closes.
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The encoded answer a handler produced, captured instead of sent: one message, or several
/// for a zone transfer.
#[derive(Clone, Default)]
struct Capture {
    out: Arc<Mutex<Vec<Vec<u8>>>>,
    protocol: Option<Protocol>,
}

impl Capture {
    fn new(protocol: Protocol) -> Self {
        Self {
            out: Arc::default(),
            protocol: Some(protocol),
        }
    }

    fn take_all(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let id = response.metadata().id;
        // UDP: what the response's OPT offers (the handler sets min(client, 1232)), else the
        // RFC 1035 512; TCP: a whole message.
        let max = match self.protocol {
            Some(Protocol::Udp) => response.edns().map_or(512, |e| e.max_payload().max(512)),
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, id, "cannot encode a response; answering SERVFAIL");
                bytes = servfail(id)?;
                let header = Header::read(&mut BinDecoder::new(&bytes))?;
                ResponseInfo::from(header)
            }
        };
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(bytes);
        Ok(info)
    }
}

fn servfail(id: u16) -> Result<Vec<u8>, NetError> {
    let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
    m.metadata.response_code = ResponseCode::ServFail;
    Ok(m.to_vec()?)
}

/// FORMERR for a query whose header reads but whose body does not (no question echoed).
fn formerr(header: &Header) -> Option<Vec<u8>> {
    let mut m = Message::response(header.metadata.id, header.metadata.op_code);
    m.metadata.recursion_desired = header.metadata.recursion_desired;
    m.metadata.response_code = ResponseCode::FormErr;
    m.to_vec().ok()
}

/// The answer to one raw query, or `None` when it gets none: the fast path's when it takes
/// the query, else the general path's.
pub async fn answer(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    answer_messages(handler, raw, src, protocol)
        .await
        .into_iter()
        .next()
}

/// Every message answering one raw query: the fast path's answer when it takes the query,
/// else the general path's (several for a zone transfer over TCP, none when it gets no answer).
async fn answer_messages(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let proto = match protocol {
        Protocol::Udp => Proto::Udp,
        _ => Proto::Tcp,
    };
    let fast = FAST_OUT.with_borrow_mut(|out| {
        let len = handler.fast_answer(&raw, proto, src, &mut out[..])?;
        out.get(..len).map(<[u8]>::to_vec)
    });
    match fast {
        Some(bytes) => vec![bytes],
        None => answer_all(handler, raw, src, protocol).await,
    }
}

thread_local! {
    /// The fast path's output buffer for `answer` (a whole TCP message).
    static FAST_OUT: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; usize::from(u16::MAX)].into_boxed_slice());
}

/// The answer to one raw query through hickory's decoder, the handler and hickory's encoder,
/// never the fast path (`answer` falls back to it; tests compare the two).
pub async fn answer_general(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    answer_all(handler, raw, src, protocol)
        .await
        .into_iter()
        .next()
}

/// Every message the general path answers one raw query with.
async fn answer_all(
    handler: &DnsHandler,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let Ok(header) = Header::read(&mut BinDecoder::new(&raw)) else {
        return Vec::new();
    };
    if header.metadata.message_type == MessageType::Response {
        return Vec::new();
    }
    let (started, request_size) = (std::time::Instant::now(), raw.len());
    let request = match Request::from_bytes(raw, src, protocol) {
        Ok(r) => r,
        Err(error) => {
            tracing::debug!(%src, %error, "unreadable query: FORMERR");
            let out = formerr(&header);
            let sizes = (request_size, out.as_ref().map_or(0, Vec::len));
            handler.count_formerr(protocol, src, sizes);
            return out.into_iter().collect();
        }
    };
    let capture = Capture::new(protocol);
    let info = handler
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    let out = capture.take_all();
    let sizes = (request_size, out.iter().map(Vec::len).sum());
    handler.record(&request, &info, sizes, started);
    out
}

/// Most datagrams read from a socket in one go and answered by one task.
const MAX_BATCH: usize = 32;

/// Datagrams read from a socket together: their bytes back to back, and where each came from.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    queries: Vec<(std::ops::Range<usize>, SocketAddr)>,
}

impl Batch {
    fn push(&mut self, bytes: &[u8], src: SocketAddr) {
        // Port 0 cannot be answered.
        if src.port() != 0 {
            let start = self.data.len();
            self.data.extend_from_slice(bytes);
            self.queries.push((start..self.data.len(), src));
        }
    }

    fn len(&self) -> usize {
        self.queries.len()
    }
}

/// Serves one UDP socket until `shutdown`, then answers what is in flight.
///
/// The loop only reads: it takes what the socket holds (up to `MAX_BATCH` datagrams) and
/// hands the batch to a task, so it drains the socket as fast as a sender can fill it
/// whatever answering costs, and a one-source flood cannot push other clients' datagrams out
/// of the socket buffer. The task writes fast-path answers (cluster zone, cache hits) at once
/// without allocating and answers the rest concurrently. At most `MAX_UDP_INFLIGHT` batches
/// are in flight; beyond that a batch is dropped and counted.
pub async fn serve_udp(
    socket: UdpSocket,
    handler: DnsHandler,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let socket = Arc::new(socket);
    let mut inflight = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, src) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(error) => {
                    // ICMP errors from earlier answers surface here; nothing to do with them.
                    tracing::debug!(%error, "UDP receive error");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let mut batch = Batch::default();
        batch.push(buf.get(..n).unwrap_or_default(), src);
        while batch.len() < MAX_BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((n, src)) => batch.push(buf.get(..n).unwrap_or_default(), src),
                Err(_) => break,
            }
        }
        while inflight.try_join_next().is_some() {}
        if batch.len() == 0 {
            continue;
        }
        if inflight.len() >= MAX_UDP_INFLIGHT {
            metrics
                .dropped
                .get_or_create(&crate::metrics::DropLabels {
                    reason: "udp_inflight",
                })
                .inc_by(batch.len() as u64);
            continue;
        }
        let (socket, handler) = (Arc::clone(&socket), handler.clone());
        inflight.spawn(async move {
            let mut general = Vec::new();
            let mut unsent = Vec::new();
            {
                // UDP answers never exceed the EDNS payload cap.
                let mut out = [0u8; super::MAX_UDP_PAYLOAD as usize];
                for (range, src) in &batch.queries {
                    let query = batch.data.get(range.clone()).unwrap_or_default();
                    match handler.fast_answer(query, Proto::Udp, *src, &mut out) {
                        Some(len) => {
                            let bytes = out.get(..len).unwrap_or_default();
                            match socket.try_send_to(bytes, *src) {
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                    unsent.push((bytes.to_vec(), *src));
                                }
                                Err(error) => {
                                    tracing::debug!(to = %src, %error, "UDP send failed");
                                }
                            }
                        }
                        None => general.push((query.to_vec(), *src)),
                    }
                }
            }
            // A full send buffer: those wait for room.
            for (bytes, src) in unsent {
                send(&socket, &bytes, src).await;
            }
            let answers = general.into_iter().map(|(raw, src)| {
                let (socket, handler) = (&socket, &handler);
                async move {
                    if let Some(bytes) = answer_general(handler, raw, src, Protocol::Udp).await {
                        send(socket, &bytes, src).await;
                    }
                }
            });
            futures::future::join_all(answers).await;
        });
    }
    while inflight.join_next().await.is_some() {}
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        tracing::debug!(%to, %error, "UDP send failed");
    }
}

/// How TCP connections are treated.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Close a connection that sends no complete query for this long.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Accepts TCP connections until `shutdown`, then lets the open ones finish their queries.
pub async fn serve_tcp(
    listener: TcpListener,
    handler: DnsHandler,
    limits: TcpLimits,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(error) => {
                    tracing::debug!(%error, "TCP accept error");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics
                .dropped
                .get_or_create(&crate::metrics::DropLabels {
                    reason: "tcp_connections",
                })
                .inc();
            drop(stream);
            continue;
        };
        metrics.tcp_connections.inc();
        let (handler, shutdown, metrics) =
            (handler.clone(), shutdown.clone(), Arc::clone(&metrics));
        connections.spawn(async move {
            connection(stream, src, handler, limits.idle_timeout, shutdown).await;
            metrics.tcp_connections.dec();
            drop(slot);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Reads one length-prefixed message; `None` at a clean end of stream.
async fn read_frame(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 2];
    match stream.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn connection(
    stream: TcpStream,
    src: SocketAddr,
    handler: DnsHandler,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(MAX_PIPELINED);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let Ok(len) = u16::try_from(reply.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&reply);
            match tokio::time::timeout(TCP_WRITE_TIMEOUT, wr.write_all(&framed)).await {
                Ok(Ok(())) => {}
                _ => {
                    tracing::debug!(%src, "TCP client not reading its answers: closing");
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    let slots = Arc::new(Semaphore::new(MAX_PIPELINED));
    let mut queries = JoinSet::new();
    loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(idle, read_frame(&mut rd)) => f,
            () = shutdown.cancelled() => break,
            // The writer gave up on a client that does not read: drop the connection.
            () = tx.closed() => break,
        };
        let raw = match frame {
            Ok(Ok(Some(raw))) => raw,
            Ok(Ok(None)) => break,
            Ok(Err(error)) => {
                tracing::debug!(%src, %error, "TCP read error");
                break;
            }
            Err(_) => {
                tracing::debug!(%src, ?idle, "TCP connection idle: closing");
                break;
            }
        };
        while queries.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (handler, tx) = (handler.clone(), tx.clone());
        queries.spawn(async move {
            for reply in answer_messages(&handler, raw, src, Protocol::Tcp).await {
                if tx.send(reply).await.is_err() {
                    break;
                }
            }
            drop(slot);
        });
    }
    while queries.join_next().await.is_some() {}
    drop(tx);
    let _ = writer.await;
}

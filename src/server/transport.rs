//! Answering raw queries (the fast path, else hickory's decoder, the `DnsHandler` and
//! hickory's encoder), and the TCP accept loop per listener. The UDP loops are in `udp`.
//!
//! Decoding follows hickory-server's own server: fewer than 12 bytes (no header) are dropped;
//! a header followed by an unreadable body gets FORMERR; a response (QR=1) is never answered.
//!
//! Bounds: TCP connections are capped (`--max-tcp-connections`,
//! extra connections are closed at once), each connection has at most `MAX_PIPELINED` queries
//! in flight (reading pauses beyond), an idle timeout between queries, and a write timeout so
//! a client that never reads cannot hold answers in memory.
//!
//! Shutdown: once the token is cancelled, listeners stop taking new connections, the queries
//! in flight are answered, and the loops return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DnsHandler;
use crate::metrics::{Metrics, Proto};

/// Queries in flight on one TCP connection; reading pauses beyond it.
pub const MAX_PIPELINED: usize = 32;
/// How long one answer may wait to be written to a TCP client before the connection closes.
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

fn servfail(id: u16) -> Option<Vec<u8>> {
    let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
    m.metadata.response_code = ResponseCode::ServFail;
    m.to_vec().ok()
}

/// FORMERR for a query whose header reads but whose body does not (no question echoed); RA
/// when the server forwards.
fn formerr(header: &Header, recursion_available: bool) -> Option<Vec<u8>> {
    let mut m = Message::response(header.metadata.id, header.metadata.op_code);
    m.metadata.recursion_desired = header.metadata.recursion_desired;
    m.metadata.recursion_available = recursion_available;
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
            let out = formerr(&header, handler.forwards());
            let sizes = (request_size, out.as_ref().map_or(0, Vec::len));
            handler.count_formerr(protocol, src, sizes);
            return out.into_iter().collect();
        }
    };
    let responses = handler.answer(&request).await;
    let rcode = responses
        .first()
        .map_or(ResponseCode::ServFail, |r| r.metadata.response_code);
    let out: Vec<Vec<u8>> = responses
        .iter()
        .filter_map(|r| encode(&request, r))
        .collect();
    let sizes = (request_size, out.iter().map(Vec::len).sum());
    handler.record(&request, rcode, sizes, started);
    out
}

/// `response` in wire form: over UDP cut to what its OPT offers (the handler sets
/// min(client's, 1232)), else 512, by the truncation rule; over TCP whole. SERVFAIL when it
/// cannot be encoded.
fn encode(request: &Request, response: &crate::wire::Response) -> Option<Vec<u8>> {
    let limit = match request.protocol() {
        Protocol::Udp => {
            crate::wire::reply_limit(false, response.edns.as_ref().map(|e| e.max_payload()))
        }
        _ => usize::from(u16::MAX),
    };
    let queries = u16::try_from(request.queries.len()).unwrap_or(u16::MAX);
    match crate::wire::encode(request.queries.as_bytes(), queries, response, limit) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            let id = response.metadata.id;
            tracing::warn!(%error, id, "cannot encode a response; answering SERVFAIL");
            servfail(id)
        }
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

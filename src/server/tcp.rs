//! The TCP listeners: an accept loop per listener and a loop per connection, reading
//! length-prefixed queries and writing each answer as soon as it is ready (RFC 7766:
//! pipelined, answers in any order).
//!
//! Bounds: TCP connections are capped (`--max-tcp-connections`, extra connections are closed
//! at once), each connection has at most `MAX_PIPELINED` queries in flight (reading pauses
//! beyond), an idle timeout between queries, and a write timeout so a client that never reads
//! cannot hold answers in memory.
//!
//! Shutdown: once the token is cancelled, listeners stop taking new connections, the queries
//! in flight are answered, and the loops return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DnsHandler;
use super::metrics::Metrics;
use super::pipeline::answer_messages;

/// Queries in flight on one TCP connection; reading pauses beyond it.
pub const MAX_PIPELINED: usize = 32;
/// How long one answer may wait to be written to a TCP client before the connection closes.
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

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
                .get_or_create(&super::metrics::DropLabels {
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

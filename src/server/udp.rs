//! The UDP loops: one per socket (the sockets of an address share its port with
//! `SO_REUSEPORT`, one per core, and the kernel spreads clients over them).
//!
//! On Linux each socket has a thread of its own. It reads up to `MAX_BATCH` datagrams a
//! `recvmmsg` call, and keeps reading while the socket holds more (into a bounded queue of its
//! own, `MAX_READS` calls at most); then it answers a batch: those the fast path takes (the cluster zone, cache hits) into
//! buffers allocated once, written back with one `sendmmsg` call; no task, no allocation and no
//! lock for them. Queries that need the general path (forwarding, autopath, refusals) go to
//! the tokio runtime, a batch per task. Elsewhere (or if a thread cannot be started) a tokio
//! task reads the socket a datagram at a time and does the same.
//!
//! Reading first matters under load: reading a datagram costs a fraction of answering it, so a
//! burst or a flood from one source moves out of the kernel's buffer (a few hundred datagrams
//! at the default `net.core.rmem_max`) into the loop's queue, and another client's query that
//! arrives meanwhile still finds room and is seen. The queue (`queue.rs`) serves light sources
//! first while it is backed up and drops what waited longer than 100 ms, so a pod's query is
//! answered within milliseconds even at several times the capacity. Queries waiting on the
//! general path are capped per socket (`MAX_UDP_INFLIGHT`); beyond it they are dropped and
//! counted.
//!
//! Shutdown: once the token is cancelled the loop stops reading, answers what it has read and
//! what is in flight on the general path, and `serve` returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_server::net::xfer::Protocol;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::metrics::{Metrics, Proto};
use super::pipeline::answer_general;
use super::queue::Batch;
use super::{DnsHandler, Gate};

/// Queries waiting on the general path (an upstream, mostly) per UDP socket; beyond it
/// datagrams are dropped.
pub const MAX_UDP_INFLIGHT: usize = 10_000;

/// Most datagrams read from a socket in one go.
const MAX_BATCH: usize = 32;

/// How long a socket's thread waits in a receive call before it looks at the shutdown token.
pub const RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(50);

/// The socket as the general path writes to it.
#[derive(Clone)]
enum Socket {
    /// Blocking, read by a thread of its own: written without waiting (`MSG_DONTWAIT`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Thread(Arc<std::net::UdpSocket>),
    /// Non-blocking, read and written by tokio.
    Tokio(Arc<tokio::net::UdpSocket>),
}

impl Socket {
    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        let sent = match self {
            Socket::Tokio(socket) => socket.send_to(bytes, to).await.map(drop),
            Socket::Thread(socket) => {
                let to = socket2::SockAddr::from(to);
                let socket = socket2::SockRef::from(socket.as_ref());
                let mut tries = 0;
                loop {
                    match socket.send_to_with_flags(bytes, &to, libc::MSG_DONTWAIT) {
                        // A full send buffer empties within milliseconds; after a few tries
                        // the answer is dropped, as the kernel drops what does not fit.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 5 => {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        }
                        other => break other.map(drop),
                    }
                }
            }
        };
        if let Err(error) = sent {
            tracing::debug!(%to, %error, "UDP send failed");
        }
    }
}

/// What the loops of one socket share.
#[derive(Clone)]
struct Shared {
    socket: Socket,
    handler: DnsHandler,
    metrics: Arc<Metrics>,
    /// Queries on the general path now.
    inflight: Arc<AtomicUsize>,
    tasks: TaskTracker,
}

impl Shared {
    /// Hands a batch to the general path on the runtime, unless the socket already has
    /// `MAX_UDP_INFLIGHT` queries there (then it is dropped and counted).
    fn general(&self, runtime: &tokio::runtime::Handle, batch: Batch) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        if self.inflight.fetch_add(n, Ordering::Relaxed) + n > MAX_UDP_INFLIGHT {
            self.inflight.fetch_sub(n, Ordering::Relaxed);
            self.metrics
                .dropped
                .get_or_create(&super::metrics::DropLabels {
                    reason: "udp_inflight",
                })
                .inc_by(n as u64);
            return;
        }
        let shared = self.clone();
        runtime.spawn(self.tasks.track_future(async move {
            let answers = batch.iter().map(|(query, src)| {
                let raw = query.to_vec();
                let shared = &shared;
                async move {
                    if let Some(bytes) =
                        answer_general(&shared.handler, raw, src, Protocol::Udp).await
                    {
                        shared.socket.send(&bytes, src).await;
                    }
                }
            });
            futures::future::join_all(answers).await;
            shared.inflight.fetch_sub(n, Ordering::Relaxed);
        }));
    }
}

/// Serves one UDP socket until `shutdown`, then answers what is in flight.
pub async fn serve(
    socket: std::net::UdpSocket,
    handler: DnsHandler,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let socket = Arc::new(socket);
    let mut shared = Shared {
        socket: Socket::Thread(Arc::clone(&socket)),
        handler,
        metrics,
        inflight: Arc::default(),
        tasks: TaskTracker::new(),
    };
    #[cfg(target_os = "linux")]
    let threaded = threaded::serve(shared.clone(), Arc::clone(&socket), shutdown.clone()).await;
    #[cfg(not(target_os = "linux"))]
    let threaded = false;
    if !threaded {
        let tokio = socket
            .try_clone()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(tokio::net::UdpSocket::from_std);
        match tokio {
            Ok(tokio) => {
                let tokio = Arc::new(tokio);
                shared.socket = Socket::Tokio(Arc::clone(&tokio));
                serve_async(&shared, &tokio, &shutdown).await;
            }
            Err(error) => tracing::error!(%error, "cannot serve a UDP socket"),
        }
    }
    shared.tasks.close();
    shared.tasks.wait().await;
}

/// The portable loop: reads with tokio a datagram at a time (up to `MAX_BATCH` while the
/// socket has them), answers the fast path at once and hands the rest on.
async fn serve_async(
    shared: &Shared,
    socket: &tokio::net::UdpSocket,
    shutdown: &CancellationToken,
) {
    let runtime = tokio::runtime::Handle::current();
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let mut out = vec![0u8; usize::from(crate::wire::MAX_UDP_PAYLOAD)];
    loop {
        let first = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = shutdown.cancelled() => break,
        };
        let mut general = Batch::default();
        let mut next = Some(first);
        let mut read = 0;
        while let Some(received) = next.take() {
            read += 1;
            match received {
                Ok((n, src)) if src.port() != 0 => {
                    let query = buf.get(..n).unwrap_or_default();
                    let answered = match shared.handler.udp_gate(query, src, &mut out) {
                        Gate::Pass => shared.handler.fast_answer(query, Proto::Udp, src, &mut out),
                        Gate::Drop => continue,
                        Gate::Reply(len) => Some(len),
                    };
                    match answered {
                        Some(len) => {
                            let bytes = out.get(..len).unwrap_or_default();
                            if let Err(error) = socket.send_to(bytes, src).await {
                                tracing::debug!(to = %src, %error, "UDP send failed");
                            }
                        }
                        None => general.push(query, src),
                    }
                }
                // Port 0 cannot be answered.
                Ok(_) => {}
                // ICMP errors from earlier answers surface here; nothing to do with them.
                Err(error) => tracing::debug!(%error, "UDP receive error"),
            }
            if read < MAX_BATCH {
                next = socket.try_recv_from(&mut buf).ok().map(Ok);
            }
        }
        shared.general(&runtime, general);
    }
}

#[cfg(target_os = "linux")]
mod threaded {
    use std::os::fd::AsFd;

    use std::time::Instant;

    use prometheus_client::metrics::counter::Counter;

    use super::super::mmsg::{Receiver, Sender, wait};
    use super::super::queue::{Dropped, Queue};
    use super::{Batch, Gate, MAX_BATCH, Shared};

    use crate::server::metrics::{DropLabels, Metrics, Proto};
    use tokio_util::sync::CancellationToken;

    /// How long a full send buffer is waited for, at most, each time.
    const SEND_WAIT_MS: i32 = 50;
    /// How many times a full send buffer is waited for (`SEND_WAIT_MS` at most each) before
    /// the answers that did not fit are dropped, as the kernel drops what does not fit.
    const SEND_RETRIES: usize = 3;

    /// Runs the socket's loop on a thread of its own until `shutdown`; false when no thread
    /// could be started (the caller serves the socket itself).
    pub(super) async fn serve(
        shared: Shared,
        socket: std::sync::Arc<std::net::UdpSocket>,
        shutdown: CancellationToken,
    ) -> bool {
        let runtime = tokio::runtime::Handle::current();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name("clusterdns-udp".into())
            .spawn(move || {
                run(&shared, &socket, &shutdown, &runtime);
                // The socket closes before the caller hears the thread is done: once
                // `serve` returns, the port is free.
                drop(shared);
                drop(socket);
                drop(done);
            });
        match started {
            Ok(_) => {
                // Resolves when the thread ends (it drops `done`), normally or not.
                let _ = finished.await;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start a UDP thread; serving the socket from the runtime");
                false
            }
        }
    }

    /// Most `recvmmsg` calls between two answered batches: reading may run this many times
    /// ahead of answering before the kernel's buffer takes the excess.
    const MAX_READS: usize = 8;

    fn run(
        shared: &Shared,
        socket: &std::net::UdpSocket,
        shutdown: &CancellationToken,
        runtime: &tokio::runtime::Handle,
    ) {
        let fd = socket.as_fd();
        let mut rx = Receiver::new(MAX_BATCH);
        let mut out = Answers::new(fd);
        let mut queue = Queue::default();
        let drops = Drops::new(&shared.metrics);
        while !shutdown.is_cancelled() {
            // With nothing to answer, the first receive call waits (`RECEIVE_TIMEOUT` at most).
            let read_at = drain(&mut queue, fd, &mut rx);
            if queue.is_empty() {
                continue;
            }
            // One clock read per round: the queue's bound, and where the batch's answering
            // starts (microseconds after the read).
            let now = read_at.unwrap_or_else(Instant::now);
            if let Some(batch) = queue.pop(now) {
                out.answer(shared, runtime, &batch, now);
                queue.recycle(batch);
            }
            drops.count(queue.take_dropped());
        }
        // Datagrams read before the shutdown are answered; the socket is read no more.
        while let Some(batch) = queue.pop_any() {
            out.answer(shared, runtime, &batch, Instant::now());
        }
    }

    /// Reads what the socket holds into the queue (up to `MAX_READS` calls), waiting for the
    /// first datagram when the queue is empty; returns when the datagrams were read, if any
    /// were (one clock read serves the whole call, which takes microseconds).
    fn drain(
        queue: &mut Queue,
        fd: std::os::fd::BorrowedFd<'_>,
        rx: &mut Receiver,
    ) -> Option<Instant> {
        let mut block = queue.is_empty();
        let mut read_at = None;
        for _ in 0..MAX_READS {
            let n = match rx.recv(fd, std::mem::take(&mut block)) {
                Ok(n) => n,
                Err(error) => {
                    // ICMP errors from earlier answers surface here; nothing to do with them.
                    tracing::debug!(%error, "UDP receive error");
                    break;
                }
            };
            if n > 0 {
                let now = *read_at.get_or_insert_with(Instant::now);
                // Cut datagrams, unknown families and port 0 cannot be answered.
                let datagrams = (0..n)
                    .filter_map(|i| rx.datagram(i))
                    .filter(|(_, src)| src.port() != 0);
                queue.admit(now, datagrams);
            }
            if n < MAX_BATCH {
                break;
            }
        }
        read_at
    }

    /// The queue's drop counters, looked up once.
    struct Drops {
        wait: Counter,
        full: Counter,
    }

    impl Drops {
        fn new(metrics: &Metrics) -> Self {
            let counter = |reason| {
                metrics
                    .dropped
                    .get_or_create(&DropLabels { reason })
                    .clone()
            };
            Self {
                wait: counter("udp_queue_wait"),
                full: counter("udp_queue_full"),
            }
        }

        fn count(&self, dropped: Dropped) {
            if dropped.wait > 0 {
                self.wait.inc_by(dropped.wait);
            }
            if dropped.full > 0 {
                self.full.inc_by(dropped.full);
            }
        }
    }

    /// Answers for one batch: written by the fast path into buffers allocated once, then sent
    /// together.
    struct Answers<'fd> {
        fd: std::os::fd::BorrowedFd<'fd>,
        tx: Sender,
        buf: Vec<u8>,
        /// Each answered datagram: where its answer starts in `buf`, its length, its client.
        ready: [(usize, usize, std::net::SocketAddr); MAX_BATCH],
    }

    impl<'fd> Answers<'fd> {
        const SIZE: usize = crate::wire::MAX_UDP_PAYLOAD as usize;

        fn new(fd: std::os::fd::BorrowedFd<'fd>) -> Self {
            Self {
                fd,
                tx: Sender::new(MAX_BATCH),
                buf: vec![0; MAX_BATCH * Self::SIZE],
                ready: [(0, 0, std::net::SocketAddr::from(([0, 0, 0, 0], 0))); MAX_BATCH],
            }
        }

        /// Answers the batch: the fast path's answers at once, the rest on the runtime; each
        /// query's duration counts from `started`.
        fn answer(
            &mut self,
            shared: &Shared,
            runtime: &tokio::runtime::Handle,
            batch: &Batch,
            started: Instant,
        ) {
            let mut general = Batch::default();
            let mut answered = 0;
            let chunks = self.buf.chunks_exact_mut(Self::SIZE);
            for (i, ((query, src), chunk)) in batch.iter().zip(chunks).enumerate() {
                let fast = match shared.handler.udp_gate(query, src, chunk) {
                    Gate::Pass => {
                        let handler = &shared.handler;
                        handler.fast_answer_since(query, Proto::Udp, src, chunk, started)
                    }
                    Gate::Drop => continue,
                    Gate::Reply(len) => Some(len),
                };
                match fast {
                    Some(len) => {
                        if let Some(slot) = self.ready.get_mut(answered) {
                            *slot = (i * Self::SIZE, len, src);
                            answered += 1;
                        }
                    }
                    None => general.push(query, src),
                }
            }
            let ready = self.ready.get(..answered).unwrap_or_default();
            send_all(self.fd, &mut self.tx, &self.buf, ready);
            shared.general(runtime, general);
        }
    }

    /// Sends every ready answer, in as few calls as the socket allows.
    fn send_all(
        fd: std::os::fd::BorrowedFd<'_>,
        tx: &mut Sender,
        answers: &[u8],
        ready: &[(usize, usize, std::net::SocketAddr)],
    ) {
        let mut start = 0;
        let mut retries = 0;
        while let Some(rest) = ready.get(start..).filter(|r| !r.is_empty()) {
            let msgs = rest
                .iter()
                .map(|&(at, len, to)| (answers.get(at..at + len).unwrap_or_default(), to));
            match tx.send(fd, msgs) {
                Ok(sent) if sent > 0 => start += sent,
                Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => {
                    // The first message's own error (an unreachable client, say): skip it.
                    tracing::debug!(to = %rest[0].2, %error, "UDP send failed");
                    start += 1;
                }
                _ => {
                    if retries == SEND_RETRIES {
                        tracing::debug!(dropped = rest.len(), "UDP send buffer full");
                        return;
                    }
                    retries += 1;
                    wait(fd, true, SEND_WAIT_MS);
                }
            }
        }
    }
}

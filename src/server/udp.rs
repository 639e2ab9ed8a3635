//! The UDP loops: one per core, each serving its lanes (`lanes.rs`: the sockets of an address
//! share its port with `SO_REUSEPORT`, and the kernel steers each source to one lane).
//!
//! On Linux each thread waits in `epoll_wait` on its lanes, then serves every ready lane in turn:
//! up to `MAX_BATCH` datagrams read with one `recvmmsg` call and answered at once, those the
//! fast path takes (the cluster zone, cache hits) straight from the receive buffers into
//! buffers allocated once, written back with one `sendmmsg` call; no task, no allocation and
//! no lock for them. Queries that need the general path (forwarding, autopath, refusals) go to
//! the tokio runtime, a batch per task. Then it asks epoll again, which returns at once while
//! a lane holds datagrams. Elsewhere (or if a thread cannot be started) a tokio task per lane
//! reads a datagram at a time and does the same.
//!
//! A thread never reads more than it answers: under overload the excess stays in the kernel,
//! which drops it from the full lane's buffer before any of this process's CPU is spent on it
//! (counted from `SO_MEMINFO` as `clusterdns_dropped_total{reason="udp_socket_full"}`), and
//! every lane gets a batch a round, so a flooding source takes its lane's turn and no more: a
//! pod in another lane is answered within a round of batches, milliseconds at several times
//! the capacity. Queries waiting on the general path are capped per thread
//! (`MAX_UDP_INFLIGHT`); beyond it they are dropped and counted.
//!
//! Each thread runs at a lower scheduling priority than the rest of the process: it adds
//! `--udp-thread-nice` (10 by default) to its nice value as it starts. Where the queries
//! saturate a core, the runtime's work goes first: the API watch and the publish loop
//! (bounded by the API's rate of change), the probes, the metrics, TCP and the general path;
//! the queries take what remains. A flood then slows answers rather than leaving stale
//! records in the zone or failing the liveness probe; on a core with room to spare nothing
//! changes. A container's threads share its cgroup's CPU weight, so the nice value weighs
//! clusterdns's own threads against each other, not against other pods.
//!
//! Shutdown: once the token is cancelled the loop stops reading, answers what is in flight on
//! the general path, and `serve` returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_server::net::xfer::Protocol;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::batch::Batch;
use super::metrics::{Metrics, Proto};
use super::pipeline::answer_general;
use super::{DnsHandler, Gate};

/// Queries waiting on the general path (an upstream, mostly) per UDP thread; beyond it
/// datagrams are dropped.
pub const MAX_UDP_INFLIGHT: usize = 10_000;

/// Most datagrams read from a socket in one go.
const MAX_BATCH: usize = 32;

/// How long a thread waits for a datagram before it looks at the shutdown token (ms).
const POLL_TIMEOUT_MS: i32 = 50;

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

/// What the loops of one thread share.
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
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
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

/// Serves one thread's lanes (sockets of one address) until `shutdown`, then answers what is
/// in flight.
pub async fn serve(
    lanes: Vec<std::net::UdpSocket>,
    handler: DnsHandler,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let lanes: Vec<Arc<std::net::UdpSocket>> = lanes.into_iter().map(Arc::new).collect();
    let Some(first) = lanes.first() else {
        return;
    };
    let shared = Shared {
        // The general path answers from the first lane: all share the address and port.
        socket: Socket::Thread(Arc::clone(first)),
        handler,
        metrics,
        inflight: Arc::default(),
        tasks: TaskTracker::new(),
    };
    #[cfg(target_os = "linux")]
    let threaded = threaded::serve(shared.clone(), lanes.clone(), shutdown.clone()).await;
    #[cfg(not(target_os = "linux"))]
    let threaded = false;
    if !threaded {
        let loops = lanes.iter().filter_map(|lane| {
            let tokio = lane.try_clone().and_then(tokio::net::UdpSocket::from_std);
            match tokio {
                Ok(tokio) => {
                    let tokio = Arc::new(tokio);
                    let mut shared = shared.clone();
                    shared.socket = Socket::Tokio(Arc::clone(&tokio));
                    let shutdown = &shutdown;
                    Some(async move { serve_async(&shared, &tokio, shutdown).await })
                }
                Err(error) => {
                    tracing::error!(%error, "cannot serve a UDP socket");
                    None
                }
            }
        });
        futures::future::join_all(loops).await;
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
    use std::os::fd::{AsFd, BorrowedFd};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use prometheus_client::metrics::counter::Counter;

    use super::super::lanes;
    use super::super::mmsg::{Readable, Receiver, Sender, wait};
    use super::{Batch, Gate, MAX_BATCH, POLL_TIMEOUT_MS, Shared};

    use crate::server::metrics::{DropLabels, Proto};
    use tokio_util::sync::CancellationToken;

    /// How long a full send buffer is waited for, at most, each time.
    const SEND_WAIT_MS: i32 = 50;
    /// How many times a full send buffer is waited for (`SEND_WAIT_MS` at most each) before
    /// the answers that did not fit are dropped, as the kernel drops what does not fit.
    const SEND_RETRIES: usize = 3;
    /// How often the kernel's drop counts of the lanes are read.
    const DROPS_EVERY: Duration = Duration::from_secs(1);

    /// Runs the lanes' loop on a thread of its own until `shutdown`; false when no thread
    /// could be started (the caller serves the lanes itself).
    pub(super) async fn serve(
        shared: Shared,
        lanes: Vec<Arc<std::net::UdpSocket>>,
        shutdown: CancellationToken,
    ) -> bool {
        let runtime = tokio::runtime::Handle::current();
        let fds: Vec<BorrowedFd<'_>> = lanes.iter().map(|l| l.as_fd()).collect();
        let readable = match Readable::new(&fds) {
            Ok(readable) => readable,
            Err(error) => {
                tracing::warn!(%error, "cannot watch UDP sockets with epoll; serving them from the runtime");
                return false;
            }
        };
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name("clusterdns-udp".into())
            .spawn(move || {
                crate::server::priority::lower(shared.handler.udp_thread_nice());
                run(&shared, &lanes, readable, &shutdown, &runtime);
                // The sockets close before the caller hears the thread is done: once
                // `serve` returns, the port is free.
                drop(shared);
                drop(lanes);
                drop(done);
            });
        match started {
            Ok(_) => {
                // Resolves when the thread ends (it drops `done`), normally or not.
                let _ = finished.await;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start a UDP thread; serving the sockets from the runtime");
                false
            }
        }
    }

    fn run(
        shared: &Shared,
        lanes: &[Arc<std::net::UdpSocket>],
        mut readable: Readable,
        shutdown: &CancellationToken,
        runtime: &tokio::runtime::Handle,
    ) {
        let fds: Vec<BorrowedFd<'_>> = lanes.iter().map(|l| l.as_fd()).collect();
        let mut rx = Receiver::new(MAX_BATCH);
        let mut out = Answers::new();
        let mut drops = KernelDrops::new(shared, &fds);
        while !shutdown.is_cancelled() {
            // Returns at once while any lane holds datagrams.
            let mut ready = readable.wait(POLL_TIMEOUT_MS).peekable();
            if ready.peek().is_none() {
                drops.count_if_due(Instant::now());
                continue;
            }
            // One clock read per round: where each batch's answering starts.
            let now = Instant::now();
            // Every ready lane gets one batch: a lane with a backlog waits for the next
            // round, after the others.
            for fd in ready.filter_map(|lane| fds.get(lane).copied()) {
                match rx.recv(fd, false) {
                    Ok(0) => {}
                    Ok(n) => {
                        // Cut datagrams, unknown families and port 0 cannot be answered.
                        let datagrams = (0..n)
                            .filter_map(|i| rx.datagram(i))
                            .filter(|(_, src)| src.port() != 0);
                        out.answer(shared, runtime, fd, datagrams, now);
                    }
                    // ICMP errors from earlier answers surface here; nothing to do with them.
                    Err(error) => tracing::debug!(%error, "UDP receive error"),
                }
            }
            drops.count_if_due(now);
        }
    }

    /// The kernel's drops on the lanes (full receive buffers), added to
    /// `clusterdns_dropped_total{reason="udp_socket_full"}` once a `DROPS_EVERY`.
    struct KernelDrops<'a> {
        fds: &'a [BorrowedFd<'a>],
        /// Each lane's count when last read.
        seen: Vec<u32>,
        counter: Counter,
        next: Instant,
    }

    impl<'a> KernelDrops<'a> {
        fn new(shared: &Shared, fds: &'a [BorrowedFd<'a>]) -> Self {
            let counter = shared
                .metrics
                .dropped
                .get_or_create(&DropLabels {
                    reason: "udp_socket_full",
                })
                .clone();
            Self {
                fds,
                seen: fds
                    .iter()
                    .map(|&fd| lanes::kernel_drops(fd).unwrap_or(0))
                    .collect(),
                counter,
                next: Instant::now() + DROPS_EVERY,
            }
        }

        fn count_if_due(&mut self, now: Instant) {
            if now < self.next {
                return;
            }
            self.next = now + DROPS_EVERY;
            for (&fd, seen) in self.fds.iter().zip(self.seen.iter_mut()) {
                if let Some(drops) = lanes::kernel_drops(fd) {
                    let new = drops.wrapping_sub(*seen);
                    *seen = drops;
                    if new > 0 {
                        self.counter.inc_by(u64::from(new));
                    }
                }
            }
        }
    }

    /// Answers for one batch: written by the fast path into buffers allocated once, then sent
    /// together.
    struct Answers {
        tx: Sender,
        buf: Vec<u8>,
        /// Each answered datagram: where its answer starts in `buf`, its length, its client.
        ready: [(usize, usize, std::net::SocketAddr); MAX_BATCH],
    }

    impl Answers {
        const SIZE: usize = crate::wire::MAX_UDP_PAYLOAD as usize;

        fn new() -> Self {
            Self {
                tx: Sender::new(MAX_BATCH),
                buf: vec![0; MAX_BATCH * Self::SIZE],
                ready: [(0, 0, std::net::SocketAddr::from(([0, 0, 0, 0], 0))); MAX_BATCH],
            }
        }

        /// Answers the datagrams read from `fd`: the fast path's answers at once (sent from
        /// `fd`), the rest on the runtime; each query's duration counts from `started`.
        fn answer<'q>(
            &mut self,
            shared: &Shared,
            runtime: &tokio::runtime::Handle,
            fd: BorrowedFd<'_>,
            datagrams: impl Iterator<Item = (&'q [u8], std::net::SocketAddr)>,
            started: Instant,
        ) {
            let mut general = Batch::default();
            let mut answered = 0;
            let chunks = self.buf.chunks_exact_mut(Self::SIZE);
            for (i, ((query, src), chunk)) in datagrams.zip(chunks).enumerate() {
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
            send_all(fd, &mut self.tx, &self.buf, ready);
            shared.general(runtime, general);
        }
    }

    /// Sends every ready answer, in as few calls as the socket allows.
    fn send_all(
        fd: BorrowedFd<'_>,
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

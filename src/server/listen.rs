//! Binding UDP and TCP listeners on the same address and port.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DnsHandler;
use super::lanes;
use super::metrics::Metrics;
use super::tcp::{self, TcpLimits};
use super::udp;

/// An address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {proto} {addr}: {error}")]
pub struct BindError {
    /// `UDP` or `TCP`.
    pub proto: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The OS error (part of the message, not a separate cause, so it is said once).
    pub error: std::io::Error,
}

/// UDP threads per address: one per core the process may use.
fn udp_threads_per_address() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The UDP sockets of one thread: its lanes (`lanes.rs`).
pub type Lanes = Vec<std::net::UdpSocket>;

/// Bound sockets, ready to serve.
pub struct Listeners {
    udp: Vec<Lanes>,
    tcp: Vec<tokio::net::TcpListener>,
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // `[::]:53` beside `0.0.0.0:53` must not claim the IPv4 port too.
        s.set_only_v6(true)?;
    }
    if ty == Type::STREAM {
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
    } else {
        // The UDP sockets of an address share its port: lanes of a thread per core.
        s.set_reuse_port(true)?;
        // Room for bursts (the kernel caps it at net.core.rmem_max).
        let _ = s.set_recv_buffer_size(lanes::LANE_RECV_BUFFER);
        // Read without waiting; the loop waits in `epoll_wait`.
        s.set_nonblocking(true)?;
    }
    Ok(s)
}

/// Binds UDP and TCP on `addr`. With port 0, TCP takes the port UDP was given; when that
/// port is busy for TCP (an outgoing connection may hold it), another one is tried.
fn bind_one(addr: SocketAddr) -> Result<(Vec<Lanes>, tokio::net::TcpListener), BindError> {
    let mut tries = 0;
    loop {
        match bind_pair(addr) {
            Err(e)
                if addr.port() == 0
                    && e.proto == "TCP"
                    && e.error.kind() == std::io::ErrorKind::AddrInUse
                    && tries < 16 =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

fn bind_pair(addr: SocketAddr) -> Result<(Vec<Lanes>, tokio::net::TcpListener), BindError> {
    let udp_err = |error| BindError {
        proto: "UDP",
        addr,
        error,
    };
    let udp = socket(addr, Type::DGRAM, Protocol::UDP).map_err(udp_err)?;
    udp.bind(&addr.into()).map_err(udp_err)?;
    // With port 0, TCP takes the port UDP was given.
    let bound = udp
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    let tcp_err = |error| BindError {
        proto: "TCP",
        addr: bound,
        error,
    };
    let tcp = socket(bound, Type::STREAM, Protocol::TCP).map_err(tcp_err)?;
    tcp.bind(&bound.into()).map_err(tcp_err)?;
    tcp.listen(1024).map_err(tcp_err)?;
    let udp = udp_lanes(udp, bound)?;
    let tcp = tokio::net::TcpListener::from_std(tcp.into()).map_err(tcp_err)?;
    Ok((udp, tcp))
}

/// The rest of the address's UDP sockets beside `first`, bound in thread order, steered by
/// source (`lanes.rs`), and split into each thread's lanes.
fn udp_lanes(first: Socket, bound: SocketAddr) -> Result<Vec<Lanes>, BindError> {
    let udp_err = |error| BindError {
        proto: "UDP",
        addr: bound,
        error,
    };
    let threads = udp_threads_per_address();
    let per_thread = lanes::lanes_per_thread(threads);
    let mut sockets = vec![std::net::UdpSocket::from(first)];
    for _ in 1..threads * per_thread {
        let extra = socket(bound, Type::DGRAM, Protocol::UDP).map_err(udp_err)?;
        extra.bind(&bound.into()).map_err(udp_err)?;
        sockets.push(std::net::UdpSocket::from(extra));
    }
    if let Some(first) = sockets.first()
        && let Err(error) = lanes::steer(first.as_fd(), bound.is_ipv6(), threads, per_thread)
    {
        tracing::warn!(%bound, %error, "UDP sources are not steered to lanes; the kernel spreads them");
    }
    let mut groups = Vec::with_capacity(threads);
    let mut rest = sockets.into_iter();
    for _ in 0..threads {
        groups.push(rest.by_ref().take(per_thread).collect());
    }
    Ok(groups)
}

/// The addresses used when none is given: every IPv4 and every IPv6 address, port 53.
pub const DEFAULT_LISTEN: [SocketAddr; 2] = [
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 53),
    SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 53),
];

/// Binds UDP and TCP on every address of `addrs`, or on `DEFAULT_LISTEN` when it is empty.
/// Of the defaults, the IPv6 one is optional: a node without IPv6 serves IPv4 alone.
pub fn bind(addrs: &[SocketAddr]) -> Result<Listeners, BindError> {
    let mut listeners = Listeners {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    let defaults = addrs.is_empty();
    for addr in if defaults { &DEFAULT_LISTEN[..] } else { addrs } {
        match bind_one(*addr) {
            Ok((u, t)) => {
                listeners.udp.extend(u);
                listeners.tcp.push(t);
            }
            Err(e) if defaults && addr.is_ipv6() && listeners.tcp.len() == 1 => {
                tracing::warn!(error = %e, "no IPv6 listener; serving IPv4 only");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

impl Listeners {
    /// The bound UDP addresses (one per address, however many sockets share it).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .udp
            .iter()
            .filter_map(|lanes| lanes.first()?.local_addr().ok())
            .collect();
        addrs.dedup();
        addrs
    }

    /// The bound TCP addresses.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Starts serving every socket with `handler`.
    pub fn serve(self, handler: DnsHandler, tcp: TcpLimits, metrics: Arc<Metrics>) -> Serving {
        let token = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for s in self.udp {
            tasks.spawn(udp::serve(
                s,
                handler.clone(),
                token.clone(),
                Arc::clone(&metrics),
            ));
        }
        for l in self.tcp {
            tasks.spawn(tcp::serve_tcp(
                l,
                handler.clone(),
                tcp,
                token.clone(),
                Arc::clone(&metrics),
            ));
        }
        Serving { token, tasks }
    }
}

/// Sockets being served.
pub struct Serving {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Serving {
    /// Stops taking queries, answers those in flight for at most `grace`, then closes
    /// everything. Returns whether everything in flight was answered in time.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        self.token.cancel();
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        drained
    }
}

/// Dropped without `shutdown` (e.g. by a test that ends without it), the sockets close too.
/// Dropping the tasks closes the TCP listeners, but the UDP threads stop only when told:
/// untold, they would serve their sockets for as long as the process lives, and a later
/// port-0 bind with SO_REUSEPORT, another server's in the same process, may be given the port
/// they hold (Linux hands out a port held only by SO_REUSEPORT sockets of the same user), so
/// that server would share its datagrams with them.
impl Drop for Serving {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

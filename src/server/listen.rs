//! Binding UDP and TCP listeners on the same address and port.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};

use super::DnsHandler;

/// An address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {proto} {addr}: {source}")]
pub struct BindError {
    /// `UDP` or `TCP`.
    pub proto: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// Bound sockets, ready to serve.
pub struct Listeners {
    udp: Vec<tokio::net::UdpSocket>,
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
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn bind_one(
    addr: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), BindError> {
    let udp_err = |source| BindError {
        proto: "UDP",
        addr,
        source,
    };
    let udp = socket(addr, Type::DGRAM, Protocol::UDP).map_err(udp_err)?;
    udp.bind(&addr.into()).map_err(udp_err)?;
    // With port 0, TCP takes the port UDP was given.
    let bound = udp
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    let tcp_err = |source| BindError {
        proto: "TCP",
        addr: bound,
        source,
    };
    let tcp = socket(bound, Type::STREAM, Protocol::TCP).map_err(tcp_err)?;
    tcp.bind(&bound.into()).map_err(tcp_err)?;
    tcp.listen(1024).map_err(tcp_err)?;
    let udp = tokio::net::UdpSocket::from_std(udp.into()).map_err(udp_err)?;
    let tcp = tokio::net::TcpListener::from_std(tcp.into()).map_err(tcp_err)?;
    Ok((udp, tcp))
}

/// Binds UDP and TCP on every address.
pub fn bind(addrs: &[SocketAddr]) -> Result<Listeners, BindError> {
    let mut listeners = Listeners {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    for addr in addrs {
        let (u, t) = bind_one(*addr)?;
        listeners.udp.push(u);
        listeners.tcp.push(t);
    }
    Ok(listeners)
}

impl Listeners {
    /// The bound UDP addresses.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The bound TCP addresses.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Starts serving every socket with `handler`; TCP connections idle for `tcp_idle` close.
    pub fn serve(self, handler: DnsHandler, tcp_idle: Duration) -> Server<DnsHandler> {
        let mut server = Server::new(handler);
        for s in self.udp {
            server.register_socket(s);
        }
        for l in self.tcp {
            server.register_listener(l, tcp_idle, 64);
        }
        server
    }
}

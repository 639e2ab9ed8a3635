//! `probe`: one UDP query with hickory-proto, for scripts that wait until a server answers.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// The outcome of one query.
pub struct Reply {
    /// The response code.
    pub rcode: ResponseCode,
    /// Records in the answer section.
    pub answers: usize,
}

/// Sends one query for `name`/`qtype` to `addr` and waits up to `wait` for the reply.
/// `Ok(None)` on timeout.
pub fn probe(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    wait: Duration,
) -> anyhow::Result<Option<Reply>> {
    let qname = Name::from_ascii(name).with_context(|| format!("{name:?} is not a DNS name"))?;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(qname, qtype));
    let bytes = msg.to_vec().context("cannot encode the query")?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .context("wildcard address")?;
    let sock = UdpSocket::bind(local).context("cannot bind a UDP socket")?;
    sock.set_read_timeout(Some(wait))
        .context("cannot set the read timeout")?;
    sock.send_to(&bytes, addr)
        .with_context(|| format!("cannot send to {addr}"))?;
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            // Nothing listening yet: the kernel reports the ICMP port-unreachable here.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) => return Err(e).context("cannot receive the reply"),
        };
        if from != addr {
            continue;
        }
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id {
            continue;
        }
        return Ok(Some(Reply {
            rcode: reply.metadata.response_code,
            answers: reply.answers.len(),
        }));
    }
}

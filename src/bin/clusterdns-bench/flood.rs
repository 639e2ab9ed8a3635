//! `flood`: an open-loop UDP load at a fixed rate, cheap enough per query that one core offers
//! several times what one core of a server answers.
//!
//! The queries (dnsperf's `NAME TYPE` lines) are encoded once; each send copies one, stamps
//! an ID and goes out in `sendmmsg` batches, spread over many sockets (each its own source
//! port). Replies are read with `recvmmsg` and matched by ID to their send time: a reply within
//! the timeout is answered, a later one late, none lost. Nothing is parsed beyond the ID.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clusterdns::server::mmsg::{Receiver, Sender};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Datagrams a `sendmmsg` / `recvmmsg` call.
const BATCH: usize = 64;
/// Most `sendmmsg` calls between two rounds of reading replies: a loader that cannot keep up
/// with its rate still reads what came back.
const SENDS_PER_ROUND: usize = 4;
/// Each socket's receive buffer (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;

/// What `flood` was asked to do.
pub struct Plan<'a> {
    pub server: SocketAddr,
    pub queries: &'a Path,
    pub rate: u64,
    pub seconds: f64,
    pub sockets: usize,
    pub bind: std::net::IpAddr,
    /// Source addresses from `bind` on (IPv4: `bind`, `bind + 1`, ...), taken in turn.
    pub sources: u32,
    pub timeout: Duration,
    /// Leave the replies unread (the kernel drops them): all the loader's CPU goes to sending,
    /// and what was answered is the server's own count.
    pub no_read: bool,
}

/// One socket: its ID counter and each ID's send time (nanoseconds from the start, 0 for none).
struct Source {
    socket: UdpSocket,
    next_id: u16,
    sent_at: Vec<u64>,
}

/// The counts at the end.
#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    late: u64,
    send_errors: u64,
}

fn encode(queries: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(queries)
        .with_context(|| format!("reading {}", queries.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(name), qtype) = (words.next(), words.next().unwrap_or("A")) else {
            continue;
        };
        let name = Name::from_str(name)
            .with_context(|| format!("{}:{}: name {name:?}", queries.display(), n + 1))?;
        let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
            .map_err(|_| anyhow::anyhow!("{}:{}: type {qtype:?}", queries.display(), n + 1))?;
        let mut message = Message::new(0, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name, qtype));
        out.push(message.to_vec()?);
    }
    anyhow::ensure!(!out.is_empty(), "{}: no queries", queries.display());
    Ok(out)
}

/// The flood's sockets, bound and non-blocking.
fn open_sources(plan: &Plan<'_>) -> anyhow::Result<Vec<Source>> {
    let sources = (0..plan.sockets.max(1))
        .map(|i| {
            let bind = match plan.bind {
                std::net::IpAddr::V4(v4) => {
                    let step = u32::try_from(i).unwrap_or(0) % plan.sources.max(1);
                    std::net::IpAddr::V4(u32::from(v4).wrapping_add(step).into())
                }
                v6 => v6,
            };
            let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
            socket.set_nonblocking(true)?;
            // Room for the replies that arrive while the loop is sending.
            if !plan.no_read {
                socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER)?;
            }
            Ok(Source {
                socket,
                next_id: 0,
                sent_at: vec![0; 1 << 16],
            })
        })
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding the flood's sockets")?;
    Ok(sources)
}

/// Runs the load and prints what happened.
pub fn flood(plan: &Plan<'_>) -> anyhow::Result<()> {
    let queries = encode(plan.queries)?;
    let mut sources = open_sources(plan)?;
    let mut tx = Sender::new(BATCH);
    let mut rx = Receiver::new(BATCH);
    let mut tally = Tally::default();
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); BATCH];
    let start = Instant::now();
    let length = Duration::from_secs_f64(plan.seconds);
    let timeout_ns = u64::try_from(plan.timeout.as_nanos()).unwrap_or(u64::MAX);
    let mut next_query = 0usize;
    let mut turn = 0usize;
    loop {
        let elapsed = start.elapsed();
        let sending = elapsed < length;
        let due = if sending {
            (elapsed.as_secs_f64() * plan.rate as f64) as u64
        } else {
            tally.sent
        };
        if !sending && elapsed > length + plan.timeout {
            break;
        }
        for _ in 0..SENDS_PER_ROUND {
            if tally.sent >= due {
                break;
            }
            turn = (turn + 1) % sources.len();
            let Some(source) = sources.get_mut(turn) else {
                break;
            };
            let n = usize::try_from(due - tally.sent)
                .unwrap_or(BATCH)
                .min(BATCH);
            let now_ns = u64::try_from(start.elapsed().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1);
            for buf in out.iter_mut().take(n) {
                let query = queries
                    .get(next_query % queries.len())
                    .map_or(&[][..], Vec::as_slice);
                next_query += 1;
                buf.clear();
                buf.extend_from_slice(query);
                let id = source.next_id;
                source.next_id = id.wrapping_add(1);
                if let Some(bytes) = buf.get_mut(..2) {
                    bytes.copy_from_slice(&id.to_be_bytes());
                }
                if let Some(slot) = source.sent_at.get_mut(usize::from(id)) {
                    *slot = now_ns;
                }
            }
            let msgs = out.iter().take(n).map(|b| (b.as_slice(), plan.server));
            match tx.send(source.socket.as_fd(), msgs) {
                Ok(sent) if sent > 0 => tally.sent += sent as u64,
                // A full send buffer (or an error): try again after reading replies.
                _ => {
                    tally.send_errors += 1;
                    break;
                }
            }
        }
        if !plan.no_read {
            receive(&mut sources, &mut rx, &mut tally, start, timeout_ns);
        }
        if tally.sent >= due {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    report(plan, &tally, length);
    Ok(())
}

/// Reads every reply waiting on every socket.
fn receive(
    sources: &mut [Source],
    rx: &mut Receiver,
    tally: &mut Tally,
    start: Instant,
    timeout_ns: u64,
) {
    for source in sources.iter_mut() {
        loop {
            let n = rx.recv(source.socket.as_fd(), false).unwrap_or(0);
            let now_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            for i in 0..n {
                let Some((reply, _)) = rx.datagram(i) else {
                    continue;
                };
                let Some(id) = reply.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                    continue;
                };
                let Some(slot) = source.sent_at.get_mut(usize::from(id)) else {
                    continue;
                };
                if *slot == 0 {
                    continue;
                }
                if now_ns.saturating_sub(*slot) <= timeout_ns {
                    tally.answered += 1;
                } else {
                    tally.late += 1;
                }
                *slot = 0;
            }
            if n < BATCH {
                break;
            }
        }
    }
}

fn report(plan: &Plan<'_>, tally: &Tally, length: Duration) {
    let secs = length.as_secs_f64().max(f64::MIN_POSITIVE);
    let lost = tally.sent.saturating_sub(tally.answered + tally.late);
    println!("sent {}", tally.sent);
    println!("answered {}", tally.answered);
    println!("late {}", tally.late);
    println!("lost {lost}");
    println!("send_errors {}", tally.send_errors);
    println!("offered_qps {:.0}", tally.sent as f64 / secs);
    println!("answered_qps {:.0}", tally.answered as f64 / secs);
    println!(
        "plan rate={} seconds={} sockets={} sources={} timeout_ms={} read_replies={}",
        plan.rate,
        plan.seconds,
        plan.sockets,
        plan.sources,
        plan.timeout.as_millis(),
        !plan.no_read
    );
}

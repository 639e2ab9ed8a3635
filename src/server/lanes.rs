//! UDP lanes: the sockets of an address, and which of them the kernel gives a datagram to.
//!
//! Every UDP address is served by `threads × lanes` sockets (32 lanes per thread, fewer past 16
//! cores) sharing its port with
//! `SO_REUSEPORT`. A classic BPF program attached to the group (`SO_ATTACH_REUSEPORT_CBPF`)
//! picks the socket for each datagram:
//! - the **thread** from a hash of the source address and port, so one client's many sockets
//!   (a node-local cache, a load generator) still spread over every core;
//! - the **lane** within the thread from the source address alone (its low bits, folded with
//!   the next byte), so each source's datagrams queue in one lane, and the pods of a node, whose
//!   addresses are consecutive in the node's range, fall in different lanes.
//!
//! The thread serves its lanes in turn, one batch each (`udp.rs`), and reads no more than it
//! answers. So under overload a flooding source fills its own lane's kernel buffer, where the
//! kernel drops the excess before any of this process's CPU is spent on it, and a well-behaved
//! pod in another lane waits one round of batches, not behind the flood: stochastic fairness
//! queueing, done by the kernel's per-socket queues. Sources that share a lane share its turn.
//!
//! Where the program cannot be attached (a kernel without it, another OS), the kernel spreads
//! datagrams over the sockets by a hash of both ends, as plain `SO_REUSEPORT` does: everything
//! is still served, without the per-source isolation.

/// Most lanes a thread serves. A well-behaved source shares its lane's turn with whoever else
/// is steered there: with `k` sources flooding, a pod's lane holds one of them with odds of
/// about `k / lanes` (none, for up to this many consecutive addresses).
const MAX_LANES: usize = 32;
/// Most sockets per address (threads × lanes): beyond it each thread gets fewer lanes.
const MAX_SOCKETS: usize = 512;
/// The receive buffer asked for each lane (the kernel caps it at `net.core.rmem_max`): a
/// thread's lanes together hold 16 MiB at most, a few hundred datagrams each, which the
/// thread answers within milliseconds even at one lane's share of its capacity. (Socket
/// memory counts against the pod's memory limit: a flood from many sources fills every lane.)
pub const LANE_RECV_BUFFER: usize = 512 << 10;

/// Lanes per thread for `threads` threads: `MAX_LANES`, fewer on a machine with many cores.
pub fn lanes_per_thread(threads: usize) -> usize {
    (MAX_SOCKETS / threads.max(1)).clamp(1, MAX_LANES)
}

#[cfg(test)]
/// The source address as the program reads it: an IPv4 address whole, an IPv6 address's last
/// 32 bits (as a big-endian number, which is how BPF loads a word).
fn source_word(ip: std::net::IpAddr) -> u32 {
    match ip {
        std::net::IpAddr::V4(v4) => u32::from(v4),
        std::net::IpAddr::V6(v6) => {
            let o = v6.octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]])
        }
    }
}

/// The multiplier of the thread hash (Fibonacci hashing: 2^32 / the golden ratio).
const MIX: u32 = 0x9e37_79b1;

#[cfg(test)]
/// The socket index (in bind order) the program picks for a datagram from `ip`:`port`: the
/// same computation as `program`, for tests and for reading the program.
pub fn socket_index(ip: std::net::IpAddr, port: u16, threads: usize, lanes: usize) -> usize {
    let word = source_word(ip);
    let lane = (word ^ (word >> 8)) % lanes.max(1) as u32;
    let thread = ((word ^ u32::from(port)).wrapping_mul(MIX) >> 16) % threads.max(1) as u32;
    (thread * lanes.max(1) as u32 + lane) as usize
}

/// Linux.
#[cfg(target_os = "linux")]
mod sys {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use libc::{
        BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_H, BPF_K, BPF_LD, BPF_MEM, BPF_MISC, BPF_MOD,
        BPF_MUL, BPF_RET, BPF_RSH, BPF_ST, BPF_TAX, BPF_W, BPF_X, BPF_XOR, SKF_NET_OFF,
        sock_filter, sock_fprog,
    };

    /// `SO_ATTACH_REUSEPORT_CBPF` and `SO_MEMINFO`: asm-generic's numbers (mips uses them
    /// too), and sparc's own.
    const SPARC: bool = cfg!(any(target_arch = "sparc", target_arch = "sparc64"));
    const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = if SPARC { 0x35 } else { 51 };
    const SO_MEMINFO: libc::c_int = if SPARC { 0x39 } else { 55 };
    /// `SO_MEMINFO`'s array length (`SK_MEMINFO_VARS`).
    const MEMINFO_VARS: usize = 9;

    fn op(code: u32, k: u32) -> sock_filter {
        sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// An offset from the network header (the IP header), as BPF's absolute loads take it.
    fn net(offset: i32) -> u32 {
        (SKF_NET_OFF + offset) as u32
    }

    /// The program of `socket_index` for sockets of one family. The IPv4 source is at byte 12
    /// of the IP header and the UDP source port right after a 20-byte header; the IPv6 source's
    /// last word at byte 20, the port after the 40-byte header. (A header with options or
    /// extensions moves the port: such a datagram lands on another thread, still a valid one.)
    pub fn program(v6: bool, threads: u32, lanes: u32) -> Vec<sock_filter> {
        let (source, port) = if v6 { (20, 40) } else { (12, 20) };
        let mut p = vec![
            op(BPF_LD | BPF_W | BPF_ABS, net(source)),
            op(BPF_ST, 0), // M[0] = source
            op(BPF_ALU | BPF_RSH | BPF_K, 8),
            op(BPF_MISC | BPF_TAX, 0),
            op(BPF_LD | BPF_MEM, 0),
            op(BPF_ALU | BPF_XOR | BPF_X, 0),
            op(BPF_ALU | BPF_MOD | BPF_K, lanes.max(1)),
            op(BPF_ST, 1), // M[1] = lane
            op(BPF_LD | BPF_H | BPF_ABS, net(port)),
            op(BPF_MISC | BPF_TAX, 0),
            op(BPF_LD | BPF_MEM, 0),
            op(BPF_ALU | BPF_XOR | BPF_X, 0),
            op(BPF_ALU | BPF_MUL | BPF_K, super::MIX),
            op(BPF_ALU | BPF_RSH | BPF_K, 16),
            op(BPF_ALU | BPF_MOD | BPF_K, threads.max(1)),
            op(BPF_ALU | BPF_MUL | BPF_K, lanes.max(1)),
            op(BPF_MISC | BPF_TAX, 0),
            op(BPF_LD | BPF_MEM, 1),
            op(BPF_ALU | BPF_ADD | BPF_X, 0),
            op(BPF_RET | BPF_A, 0),
        ];
        p.shrink_to_fit();
        p
    }

    /// Attaches the steering program to the group `fd` belongs to (sockets of `v6`'s family,
    /// `threads × lanes` of them, bound in thread order).
    pub fn steer(
        fd: BorrowedFd<'_>,
        v6: bool,
        threads: usize,
        lanes: usize,
    ) -> std::io::Result<()> {
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut filter = program(v6, as_u32(threads), as_u32(lanes));
        let prog = sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: `prog` points to `filter`, which holds exactly `prog.len` instructions and
        // outlives the call (the kernel copies the program before returning); the option's
        // length is the size of the `sock_fprog` passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                (&raw const prog).cast(),
                size_of::<sock_fprog>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Datagrams the kernel dropped on `fd` since it was opened (its receive buffer was full),
    /// where the kernel tells (`SO_MEMINFO`).
    pub fn kernel_drops(fd: BorrowedFd<'_>) -> Option<u32> {
        let mut info = [0u32; MEMINFO_VARS];
        let mut len = size_of_val(&info) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large, and
        // stores the length it wrote in `len`.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &raw mut len,
            )
        };
        let drops = usize::try_from(libc::SK_MEMINFO_DROPS).ok()?;
        let written = usize::try_from(len).ok()? / size_of::<u32>();
        (r == 0 && drops < written).then(|| info[drops])
    }
}

/// Elsewhere the kernel's own spreading serves, and its drops are not known.
#[cfg(not(target_os = "linux"))]
mod sys {
    pub fn steer(
        _fd: std::os::fd::BorrowedFd<'_>,
        _v6: bool,
        _threads: usize,
        _lanes: usize,
    ) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub fn kernel_drops(_fd: std::os::fd::BorrowedFd<'_>) -> Option<u32> {
        None
    }
}

pub use sys::{kernel_drops, steer};

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use socket2::{Domain, Protocol, Socket, Type};

    use super::{socket_index, steer};

    /// `n` sockets sharing one port of `ip` (bound in order), steered for `threads × lanes`.
    fn group(ip: &str, threads: usize, lanes: usize) -> Option<Vec<UdpSocket>> {
        let mut addr: SocketAddr = format!("{ip}:0").parse().ok()?;
        let mut sockets = Vec::new();
        for _ in 0..threads * lanes {
            let s =
                Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).ok()?;
            s.set_reuse_port(true).ok()?;
            s.set_nonblocking(true).ok()?;
            s.bind(&addr.into()).ok()?;
            addr = s.local_addr().ok()?.as_socket()?;
            sockets.push(UdpSocket::from(s));
        }
        steer(sockets[0].as_fd(), addr.is_ipv6(), threads, lanes).unwrap();
        Some(sockets)
    }

    /// Which socket of `group` the datagram holding `tag` reached (waiting up to 5 s for it).
    fn landed(group: &[UdpSocket], tag: &[u8]) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            for (i, s) in group.iter().enumerate() {
                if let Ok(n) = s.recv(&mut buf)
                    && &buf[..n] == tag
                {
                    return Some(i);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Datagrams from several source addresses and ports land on the socket the program's
    /// model (`socket_index`) names: the lane by address, the thread by address and port.
    #[test]
    fn each_source_lands_on_the_socket_the_program_picks() {
        for (server, sources) in [
            (
                "127.0.0.1",
                &[
                    "127.0.0.1",
                    "127.0.0.2",
                    "127.0.0.3",
                    "127.0.0.9",
                    "127.0.1.4",
                ][..],
            ),
            ("[::1]", &["[::1]"][..]),
        ] {
            for (threads, lanes) in [(1, 8), (2, 8), (3, 4), (4, 1)] {
                let Some(group) = group(server, threads, lanes) else {
                    // No IPv6 on this machine's loopback.
                    assert!(server.contains(':'), "binding {server}");
                    continue;
                };
                let to = group[0].local_addr().unwrap();
                let mut lanes_seen = std::collections::BTreeSet::new();
                for (k, source) in sources.iter().enumerate() {
                    for round in 0..6 {
                        let client = UdpSocket::bind(format!("{source}:0")).unwrap();
                        let from = client.local_addr().unwrap();
                        let tag = format!("{k}-{round}");
                        client.send_to(tag.as_bytes(), to).unwrap();
                        let want = socket_index(from.ip(), from.port(), threads, lanes);
                        let got = landed(&group, tag.as_bytes());
                        assert_eq!(got, Some(want), "{from} to {threads}x{lanes} sockets");
                        lanes_seen.insert(want % lanes);
                    }
                }
                // The lane is the address's: one per source address.
                assert!(lanes_seen.len() <= sources.len(), "{lanes_seen:?}");
            }
        }
    }

    /// Consecutive addresses (a node's pods) fall in different lanes.
    #[test]
    fn consecutive_addresses_take_different_lanes() {
        let lanes: std::collections::BTreeSet<usize> = (1..=8u8)
            .map(|last| socket_index([10, 244, 3, last].into(), 53000, 1, 8))
            .collect();
        assert_eq!(lanes.len(), 8);
    }
}

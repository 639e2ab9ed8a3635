//! `recvmmsg(2)` and `sendmmsg(2)` on a UDP socket (Linux): many datagrams per system call,
//! into and out of buffers allocated once.
//!
//! Written on `libc` directly: `nix`'s `sendmmsg` tells how many messages went out only
//! through an iterator that reads every header's address slot, which it leaves uninitialised
//! for sends. Every `unsafe` block below says why it is sound.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A datagram longer than this is cut by the kernel; a DNS message never is (RFC 1035 §4.2.2).
pub const SLOT: usize = u16::MAX as usize;

fn empty_mmsghdr() -> libc::mmsghdr {
    // SAFETY: `mmsghdr` is a C struct of integers and raw pointers; all zeroes is a valid
    // value for each (null pointers, zero lengths), and it is what the kernel expects of the
    // fields a caller does not use.
    unsafe { zeroed() }
}

fn empty_storage() -> libc::sockaddr_storage {
    // SAFETY: `sockaddr_storage` is a C struct of integers; all zeroes is a valid value.
    unsafe { zeroed() }
}

/// `n` message headers, each with its own address slot and one iovec.
struct Headers {
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Headers {
    fn new(n: usize) -> Self {
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Self {
            addrs: vec![empty_storage(); n],
            iovs: vec![iov; n],
            hdrs: vec![empty_mmsghdr(); n],
        }
    }
}

/// A header for one datagram: its address slot (`namelen` bytes of it) and its one iovec.
fn header(
    addr: &mut libc::sockaddr_storage,
    namelen: libc::socklen_t,
    iov: &mut libc::iovec,
) -> libc::mmsghdr {
    let mut hdr = empty_mmsghdr();
    hdr.msg_hdr.msg_name = std::ptr::from_mut(addr).cast();
    hdr.msg_hdr.msg_namelen = namelen;
    hdr.msg_hdr.msg_iov = std::ptr::from_mut(iov);
    hdr.msg_hdr.msg_iovlen = 1;
    hdr
}

/// Headers and buffers for receiving up to `n` datagrams in one call.
pub struct Receiver {
    buf: Vec<u8>,
    h: Headers,
}

impl Receiver {
    /// Room for `n` datagrams of up to `SLOT` bytes. The buffer is zeroed memory that the
    /// kernel maps on first touch, so only the pages datagrams land in become resident.
    pub fn new(n: usize) -> Self {
        Self {
            buf: vec![0; n * SLOT],
            h: Headers::new(n),
        }
    }

    /// Reads what the socket holds: how many datagrams arrived (0 when none did; a
    /// `WouldBlock` error, or the socket's receive timeout, is turned into 0). With `block`,
    /// waits for the first datagram (on a blocking socket, up to its receive timeout), then
    /// takes what else is there without waiting; else does not wait at all.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, block: bool) -> io::Result<usize> {
        let h = &mut self.h;
        let n = h.hdrs.len();
        // The pointers are set afresh before each call, from the vectors as they are now:
        // none of them is resized after `new`, but nothing has to rely on that.
        let slots = self.buf.chunks_exact_mut(SLOT);
        for (((slot, iov), addr), hdr) in slots
            .zip(h.iovs.iter_mut())
            .zip(h.addrs.iter_mut())
            .zip(h.hdrs.iter_mut())
        {
            *iov = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            let namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            *hdr = header(addr, namelen, iov);
        }
        let vlen = libc::c_uint::try_from(n).unwrap_or(libc::c_uint::MAX);
        // SAFETY: `hdrs` holds `n` (= vlen, never more) headers, each pointing to one
        // `sockaddr_storage` of `addrs` (with its true size as `msg_namelen`) and one iovec of
        // `iovs`, which points to a distinct `SLOT`-byte chunk of `buf`. All four vectors are
        // owned by `self`, borrowed mutably for this call and not moved or resized during it,
        // so every pointer the kernel writes through is valid and unaliased. No control
        // buffer is given. A null timeout is allowed (none).
        let got = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                h.hdrs.as_mut_ptr(),
                vlen,
                if block {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(error),
            };
        }
        Ok(usize::try_from(got).unwrap_or(0).min(n))
    }

    /// The `i`th datagram of the last `recv` and its sender; `None` for one the kernel had to
    /// cut, or from an address family other than IPv4 and IPv6.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let hdr = self.h.hdrs.get(i)?;
        if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let len = usize::try_from(hdr.msg_len).ok()?;
        let start = i.checked_mul(SLOT)?;
        let bytes = self.buf.get(start..start.checked_add(len)?)?;
        let from = from_storage(self.h.addrs.get(i)?, hdr.msg_hdr.msg_namelen)?;
        Some((bytes, from))
    }
}

/// Headers for sending up to `n` datagrams in one call.
pub struct Sender {
    h: Headers,
}

impl Sender {
    /// Room for `n` datagrams a call.
    pub fn new(n: usize) -> Self {
        Self { h: Headers::new(n) }
    }

    /// Sends the first messages of `msgs` (at most `n`) without waiting: how many went out.
    /// `WouldBlock` means none did because the socket's send buffer is full; another error is
    /// the first message's own (`sendmmsg` reports a later message's error on the next call).
    pub fn send<'a>(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
    ) -> io::Result<usize> {
        let h = &mut self.h;
        let mut count = 0usize;
        for (((bytes, to), iov), (addr, hdr)) in msgs
            .into_iter()
            .zip(h.iovs.iter_mut())
            .zip(h.addrs.iter_mut().zip(h.hdrs.iter_mut()))
        {
            *iov = libc::iovec {
                // The kernel only reads through it (sendmmsg takes no `const` iovec).
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            };
            let namelen = to_storage(to, addr);
            *hdr = header(addr, namelen, iov);
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        let vlen = libc::c_uint::try_from(count).unwrap_or(libc::c_uint::MAX);
        // SAFETY: the first `count` headers each point to one initialised address of `addrs`
        // (with its length) and one iovec of `iovs`, which points to the caller's `bytes`,
        // borrowed for `'a` and so alive for this call; the kernel only reads them. `self`'s
        // vectors are borrowed mutably for the call and not resized. `count` ≤ `hdrs.len()`.
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                h.hdrs.as_mut_ptr(),
                vlen,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(sent).unwrap_or(0))
    }
}

/// An epoll instance watching sockets for reading (level-triggered): `wait` tells which are
/// readable, however many are watched.
pub struct Readable {
    epoll: std::os::fd::OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Readable {
    /// Watches `fds`; `wait` names each by its index in `fds`.
    pub fn new(fds: &[BorrowedFd<'_>]) -> io::Result<Self> {
        // SAFETY: no pointer is passed; the result is a new descriptor or -1.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just returned to this process and owned by nothing
        // else, so the `OwnedFd` is its only owner and closes it once.
        let epoll = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        for (i, fd) in fds.iter().enumerate() {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both descriptors are open for the call; `event` is a valid
            // `epoll_event` on the stack, read by the kernel during the call only.
            let r = unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    fd.as_raw_fd(),
                    &raw mut event,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; fds.len().max(1)];
        Ok(Self { epoll, events })
    }

    /// Waits up to `timeout_ms` (0: not at all) for watched sockets to be readable; returns
    /// their indexes. Level-triggered epoll puts a socket it reported at the back of its ready
    /// list, so a socket that stays readable does not hide the others.
    pub fn wait(&mut self, timeout_ms: i32) -> impl Iterator<Item = usize> + '_ {
        let max = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` holds `max` (its length, or less) writable `epoll_event`s, borrowed
        // mutably for the call; the kernel writes at most `max` of them.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                max,
                timeout_ms,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        self.events
            .iter()
            .take(n)
            .map(|e| usize::try_from(e.u64).unwrap_or(usize::MAX))
    }
}

/// Waits until `fd` is readable (`write` false) or writable, or `timeout_ms` passes.
pub fn wait(fd: BorrowedFd<'_>, write: bool, timeout_ms: i32) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: if write { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    };
    // SAFETY: one valid `pollfd` on the stack, and the count says one.
    unsafe {
        libc::poll(&raw mut pfd, 1, timeout_ms);
    }
}

fn from_storage(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = usize::try_from(len).ok()?;
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is at least as large and as aligned as every socket
            // address type (that is its purpose), and the kernel said it wrote an IPv4 one.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for an IPv6 address.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    *s = empty_storage();
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: as in `from_storage`; the storage is written as an IPv4 address, whose
            // every field is set here (the rest stays zero, as the kernel expects).
            let v4 = unsafe { &mut *std::ptr::from_mut(s).cast::<libc::sockaddr_in>() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = a.port().to_be();
            v4.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for an IPv6 address.
            let v6 = unsafe { &mut *std::ptr::from_mut(s).cast::<libc::sockaddr_in6>() };
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_port = a.port().to_be();
            v6.sin6_flowinfo = a.flowinfo();
            v6.sin6_addr.s6_addr = a.ip().octets();
            v6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_c_form() {
        for addr in [
            "127.0.0.1:53".parse::<SocketAddr>(),
            "10.244.1.7:40000".parse(),
            "[::1]:5353".parse(),
            "[fd00::a:1]:65535".parse(),
        ] {
            let addr = addr.unwrap_or_else(|e| panic!("{e}"));
            let mut s = empty_storage();
            let len = to_storage(addr, &mut s);
            assert_eq!(from_storage(&s, len), Some(addr));
        }
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to_server, to_client) = (server.local_addr().unwrap(), client.local_addr().unwrap());
        use std::os::fd::AsFd;
        let mut sender = Sender::new(8);
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let sent = sender
            .send(client.as_fd(), msgs.iter().map(|m| (&m[..], to_server)))
            .unwrap();
        assert_eq!(sent, 5);
        let mut receiver = Receiver::new(8);
        let mut got = Vec::new();
        while got.len() < 5 {
            wait(server.as_fd(), false, 1000);
            let n = receiver.recv(server.as_fd(), false).unwrap();
            assert!(n > 0, "datagrams arrive");
            for i in 0..n {
                let (bytes, from) = receiver.datagram(i).unwrap();
                assert_eq!(from, to_client);
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(
            receiver.recv(server.as_fd(), false).unwrap(),
            0,
            "nothing more"
        );
        server
            .set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        assert_eq!(
            receiver.recv(server.as_fd(), true).unwrap(),
            0,
            "the timeout ends a wait"
        );
    }
}

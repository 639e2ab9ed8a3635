//! Serving as deployed: on IPv6 loopback, on the default `0.0.0.0:53` + `[::]:53` pair (the
//! real binary in a network namespace of the test's own), forwarding to the upstreams of a
//! resolv.conf, answers out of order on one TCP connection (RFC 7766 §6.2.1.1), and the UDP
//! size limit on forwarded answers, fresh and cached.

use crate::common;

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::process::SpawnGated;
use common::upstream::{Behaviour, FakeUpstream, Gate};
use common::{TestServer, example_dir, query, tcp_read, tcp_send, udp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const KUBERNETES: &str = "kubernetes.default.svc.cluster.local.";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Asks `KUBERNETES` A at `addr` over UDP and over TCP (blocking sockets of the calling
/// thread's network namespace) until answered, for at most 10 s: the two answers.
fn ask_both(addr: SocketAddr) -> (Message, Message) {
    let any: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    };
    let q = query(KUBERNETES, RecordType::A, None);
    let bytes = q.to_vec().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let sock = UdpSocket::bind(any).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    let over_udp = loop {
        // Until the server has bound, the datagram may be refused: ask again.
        let _ = sock.send_to(&bytes, addr);
        if let Ok(n) = sock.recv(&mut buf) {
            break Message::from_vec(&buf[..n]).unwrap();
        }
        assert!(Instant::now() < deadline, "no UDP answer at {addr}");
    };
    let over_tcp = {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).unwrap();
        Message::from_vec(&body).unwrap()
    };
    for m in [&over_udp, &over_tcp] {
        assert_eq!(m.metadata.id, q.metadata.id, "{addr}");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{addr}");
        assert_eq!(m.answers[0].data.to_string(), "10.96.0.1", "{addr}");
    }
    (over_udp, over_tcp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_ipv6_loopback() {
    let s = TestServer::example(&["--listen", "[::1]:0"]).await;
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    let addr = s.addr;
    tokio::task::spawn_blocking(move || ask_both(addr))
        .await
        .unwrap();
    s.running.shutdown().await;
}

/// The default pair's code path on a port anyone may bind: `0.0.0.0:PORT` and `[::]:PORT`
/// side by side (the IPv6 socket is IPv6-only, so both bind), each answering its family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_both_wildcards_of_one_port() {
    let port = common::process::free_port();
    let (v4, v6) = (format!("0.0.0.0:{port}"), format!("[::]:{port}"));
    let s = TestServer::example(&["--listen", &v4, "--listen", &v6]).await;
    let v4_loop: SocketAddr = ([127, 0, 0, 1], port).into();
    let v6_loop: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    tokio::task::spawn_blocking(move || {
        ask_both(v4_loop);
        ask_both(v6_loop);
    })
    .await
    .unwrap();
    s.running.shutdown().await;
}

/// A network namespace of this test with its loopback up, deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "clusterdns-s-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output_gated()
            .expect("ip (iproute2) is installed");
        assert!(out.status.success(), "ip netns add: {out:?}");
        let ns = Netns { name };
        let out = ns.cmd(["ip", "link", "set", "lo", "up"]).output_gated();
        assert!(out.unwrap().status.success(), "lo up");
        ns
    }

    fn cmd<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `f` on a thread that has entered the namespace.
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: a valid descriptor of a network namespace; only this thread, which ends
            // with `f`, moves into it.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output_gated();
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with no `--listen` binds `0.0.0.0:53` and `[::]:53`: run in a namespace of its
/// own (port 53 needs root, and no other server of the machine may hold it), asked over UDP
/// and TCP on both loopbacks.
#[test]
fn the_default_listen_pair_serves_both_families_on_port_53() {
    if !is_root() {
        eprintln!("not root: port 53 needs a network namespace; skipped");
        return;
    }
    let ns = Netns::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let bin = env!("CARGO_BIN_EXE_clusterdns");
    let child = ns
        .cmd([
            bin,
            "--manifests",
            example_dir().to_str().unwrap(),
            "--no-forward",
            "--metrics-listen",
            "127.0.0.1:9153",
            "--lameduck",
            "0s",
        ])
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn_gated()
        .unwrap();
    let _child = Killed(child);
    let answered = std::panic::catch_unwind(|| {
        ns.within(|| {
            ask_both("127.0.0.1:53".parse().unwrap());
            ask_both("[::1]:53".parse().unwrap());
        });
    });
    if let Err(e) = answered {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        eprintln!("clusterdns log:\n{text}");
        std::panic::resume_unwind(e);
    }
}

/// With no `--upstream`, names outside the cluster go to the nameservers of the resolv.conf
/// (`--resolv-conf FILE`, port 53): a fake upstream on a loopback address of its own, port 53
/// (root), named by a file the test writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_upstreams_come_from_resolv_conf() {
    if !is_root() {
        eprintln!("not root: an upstream on port 53 needs root; skipped");
        return;
    }
    // An address of 127/8 no one else uses, port 53.
    let host = std::process::id() % 250 + 2;
    let ns: SocketAddr = format!("127.53.{host}.1:53").parse().unwrap();
    let up = FakeUpstream::start_on(ns).await;
    up.add("www.example.com. 300 IN A 192.0.2.10");
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "# written by the test\nsearch example.com\nnameserver {}\noptions ndots:5\n",
            ns.ip()
        ),
    )
    .unwrap();
    let s = TestServer::example(&["--resolv-conf", resolv.to_str().unwrap()]).await;
    let (m, _) = udp(s.addr, &query("www.example.com.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers[0].data.to_string(), "192.0.2.10");
    assert_eq!(
        up.count("www.example.com.", RecordType::A),
        1,
        "asked of the resolv.conf's nameserver"
    );
    // The cluster zone is still answered here.
    let (m, _) = udp(s.addr, &query(KUBERNETES, RecordType::A, None)).await;
    assert_eq!(m.answers[0].data.to_string(), "10.96.0.1");
    s.running.shutdown().await;
}

/// RFC 7766 §6.2.1.1: queries pipelined on one connection are answered as each is ready. A
/// forwarded query held at the upstream does not hold back a cluster query sent after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_cluster_answer_overtakes_a_slow_forwarded_one_on_one_connection() {
    let up = FakeUpstream::start().await;
    up.add("slow.example.com. 300 IN A 192.0.2.9");
    let gate = Gate::new();
    up.behave("slow.example.com.", Behaviour::Hold(gate.clone()));
    let s = TestServer::example(&["--upstream", &up.addr().to_string()]).await;
    let slow = query("slow.example.com.", RecordType::A, None);
    let fast = query(KUBERNETES, RecordType::A, None);
    let mut conn = tcp_send(s.addr, &slow).await;
    // The slow one is at the upstream before the fast one is written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while up.count("slow.example.com.", RecordType::A) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "forwarded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    {
        use tokio::io::AsyncWriteExt;
        let bytes = fast.to_vec().unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        conn.write_all(&framed).await.unwrap();
    }
    let first = tcp_read(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(
        first.metadata.id, fast.metadata.id,
        "the cluster answer first"
    );
    assert_eq!(first.answers[0].data.to_string(), "10.96.0.1");
    gate.open();
    let second = tcp_read(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(second.metadata.id, slow.metadata.id);
    assert_eq!(second.answers[0].data.to_string(), "192.0.2.9");
    s.running.shutdown().await;
}

/// A forwarded answer too big for UDP is cut at a record boundary to what the client allows
/// (512 without EDNS, its payload size up to 1232 with it, never more whatever it offers),
/// with TC set and the message strictly valid; the cached copy is cut the same way; over TCP
/// it comes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_and_cached_answers_keep_the_udp_size_limit() {
    const RECORDS: usize = 150;
    let up = FakeUpstream::start().await;
    let s = TestServer::example(&["--upstream", &up.addr().to_string()]).await;
    for (i, payload) in [None, Some(512), Some(1232), Some(4096)]
        .into_iter()
        .enumerate()
    {
        // A name of its own per payload, so its first ask is a miss.
        let name = format!("big{i}.example.com.");
        for n in 1..=RECORDS {
            up.add(&format!(
                "{name} 300 IN A 198.51.{}.{}",
                n / 250,
                n % 250 + 1
            ));
        }
        let limit = payload.map_or(512, |p| usize::from(p.clamp(512, 1232)));
        // The OPT record of an EDNS answer: root owner, type, class, TTL, RDLENGTH.
        let opt = if payload.is_some() { 11 } else { 0 };
        let q = query(&name, RecordType::A, payload).to_vec().unwrap();
        for ask in ["miss", "cache hit"] {
            let at = format!("{name} payload {payload:?}, {ask}");
            let raw = common::udp_raw(s.addr, &q, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{at}: a reply"));
            let r = common::strict::read(&raw).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(raw.len() <= limit, "{at}: {} bytes over {limit}", raw.len());
            assert!(r.truncated, "{at}: TC");
            let fit = (limit - r.question_end - opt) / 16;
            assert_eq!(usize::from(r.counts[0]), fit, "{at}: as many as fit");
            assert_eq!(
                usize::from(r.counts[2]),
                usize::from(payload.is_some()),
                "{at}: OPT"
            );
        }
        let whole = common::tcp(s.addr, &query(&name, RecordType::A, payload)).await;
        assert!(!whole.metadata.truncation);
        assert_eq!(whole.answers.len(), RECORDS, "{name} over TCP");
    }
    // Each name fetched once: the second asks and TCP were answered from the cache.
    for i in 0..4 {
        let name = format!("big{i}.example.com.");
        let udp_asks = up
            .received()
            .iter()
            .filter(|r| r.message.queries[0].name().to_string() == name)
            .filter(|r| r.proto == common::upstream::Proto::Udp)
            .count();
        assert_eq!(
            udp_asks, 1,
            "{name}: one UDP ask (then TCP, as it truncates)"
        );
    }
    s.running.shutdown().await;
}

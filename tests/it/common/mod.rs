//! Test helpers: start clusterdns on an ephemeral loopback port over a manifests directory or
//! the API server emulator, and talk to it over real UDP and TCP sockets.
#![allow(dead_code)]
pub mod apiserver;
pub mod binary;
pub mod objects;
pub mod process;
pub mod strict;
pub mod tls;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use clusterdns::app::{Running, start};
use clusterdns::config::Config;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A running server and the directory it serves.
pub struct TestServer {
    pub running: Running,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// The example cluster shipped in `examples/cluster`.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster")
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl TestServer {
    /// Serves a copy of the example cluster, with extra flags.
    pub async fn example(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&example_dir(), dir.path());
        Self::manifests(dir, extra).await
    }

    /// Serves `files` (name, content) written into a fresh directory.
    pub async fn with_files(files: &[(&str, &str)], extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Self::manifests(dir, extra).await
    }

    /// Serves what the API server emulator holds (through a kubeconfig written for it into
    /// the server's directory), with extra flags.
    pub async fn kube(api: &apiserver::ApiServer, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        let kc = kubeconfig.to_str().unwrap().to_owned();
        Self::start(dir, &["--kubeconfig", &kc], extra).await
    }

    async fn manifests(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let d = dir.path().to_str().unwrap().to_owned();
        let source = ["--manifests", &d, "--manifests-poll", "200ms"];
        Self::start(dir, &source, extra).await
    }

    /// A node-local tier (`--mode node-local`, no cluster source): `extra` names its
    /// `--cluster-dns`; with no `--upstream`, other names have no upstream at all.
    pub async fn node_local(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--mode", "node-local"];
        if !extra.contains(&"--upstream") {
            args.extend_from_slice(&["--resolv-conf", "/dev/null"]);
        }
        Self::start(dir, &args, extra).await
    }

    async fn start(dir: tempfile::TempDir, source: &[&str], extra: &[&str]) -> Self {
        let mut args = vec!["clusterdns", "--metrics-listen", "127.0.0.1:0"];
        if !extra.contains(&"--listen") {
            args.extend_from_slice(&["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(source);
        args.extend_from_slice(extra);
        // Tests never reach the machine's own resolvers: forwarding only where a test names
        // its upstreams.
        let forwards = [
            "--upstream",
            "--stub-domain",
            "--resolv-conf",
            "--cluster-dns",
        ];
        if !args.iter().any(|a| forwards.contains(a)) {
            args.push("--no-forward");
        }
        // Tests shut down at once unless they are about the lameduck period.
        if !extra.contains(&"--lameduck") {
            args.extend_from_slice(&["--lameduck", "0s"]);
        }
        let config = Config::try_parse_from(args).unwrap();
        let running = start(&config)
            .await
            .unwrap_or_else(|e| panic!("clusterdns did not start: {e:#}"));
        let addr = running.udp[0];
        assert_eq!(running.tcp[0], addr, "UDP and TCP share the port");
        Self { running, addr, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A query message for `name`/`qtype`, RD set, with EDNS when `payload` is given.
pub fn query(name: &str, qtype: RecordType, payload: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(p) = payload {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.edns = Some(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7, Ordering::Relaxed)
}

/// Sends raw bytes over UDP; the raw reply, or `None` after `wait`.
pub async fn udp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Sends `msg` over UDP and parses the reply (panics on timeout).
pub async fn udp(addr: SocketAddr, msg: &Message) -> (Message, usize) {
    let bytes = msg.to_vec().unwrap();
    let reply = udp_raw(addr, &bytes, Duration::from_secs(3))
        .await
        .expect("no UDP reply");
    let len = reply.len();
    let parsed = Message::from_vec(&reply).expect("reply parses");
    assert_eq!(parsed.metadata.id, msg.metadata.id, "reply ID matches");
    (parsed, len)
}

/// Opens a TCP connection and writes `msg` on it, length-prefixed.
pub async fn tcp_send(addr: SocketAddr, msg: &Message) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let bytes = msg.to_vec().unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
    s
}

/// Reads one length-prefixed message from `s` within `wait`, raw.
pub async fn tcp_read_raw(s: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut len = [0u8; 2];
    tokio::time::timeout(wait, s.read_exact(&mut len))
        .await
        .expect("TCP message in time")
        .unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

/// Reads one length-prefixed message from `s` within `wait` and parses it.
pub async fn tcp_read(s: &mut TcpStream, wait: Duration) -> Message {
    let buf = tcp_read_raw(s, wait).await;
    Message::from_vec(&buf).expect("TCP message parses")
}

/// Sends `msg` over a fresh TCP connection and parses the reply.
pub async fn tcp(addr: SocketAddr, msg: &Message) -> Message {
    let mut s = tcp_send(addr, msg).await;
    let parsed = tcp_read(&mut s, Duration::from_secs(3)).await;
    assert_eq!(parsed.metadata.id, msg.metadata.id);
    parsed
}

fn record_line(r: &hickory_proto::rr::Record) -> String {
    format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data)
}

/// The reply as zone-file text: `RCODE flags` then `;ANSWER`, `;AUTHORITY`, `;ADDITIONAL`
/// lines, with the SOA serial replaced by `SERIAL` (it is a timestamp).
pub fn zone_text(m: &Message) -> String {
    let mut out = format!("{:?}", m.metadata.response_code);
    if m.metadata.authoritative {
        out.push_str(" aa");
    }
    if m.metadata.truncation {
        out.push_str(" tc");
    }
    let sections = [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ];
    for (name, records) in sections {
        for r in records.iter() {
            let mut line = record_line(r);
            if r.record_type() == RecordType::SOA {
                let parts: Vec<&str> = line.split(' ').collect();
                // name ttl IN SOA mname rname SERIAL refresh retry expire minimum
                let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                if p.len() > 6 {
                    p[6] = "SERIAL".into();
                }
                line = p.join(" ");
            }
            out.push_str(&format!("\n;{name} {line}"));
        }
    }
    out
}

/// Asks over UDP (with EDNS 1232) and returns the zone text of the reply.
pub async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> String {
    zone_text(&udp(addr, &query(name, qtype, Some(1232))).await.0)
}

/// The value of `series` (its full name with labels) in a text exposition, if there.
pub fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A series of `s`'s metrics that must be there: a missing one fails the test rather than
/// reading as 0.
pub fn metric(s: &TestServer, series: &str) -> f64 {
    let text = s.running.metrics.encode();
    series_value(&text, series).unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// Polls `pred` every 20 ms until it holds; fails the test after `within`.
pub async fn wait_for(what: &str, within: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !pred() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP/1.1 GET: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// Polls `name`/`qtype` until `pred` holds on the reply text, for at most `within`.
pub async fn eventually(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = ask(addr, name, qtype).await;
        if pred(&text) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

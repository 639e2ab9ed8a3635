//! `--setup-interface`: the binary run in a network namespace of its own (root, `ip netns`),
//! checked with `ip`, `nft`, `iptables-save` and DNS queries from inside the namespace: the
//! interface and its address, the rules, what the keeper puts back, teardown or not, and the
//! refusal without NET_ADMIN.
//!
//! Without root these tests say so and pass (nothing to set up a namespace with); as root
//! (CI) they need `ip`, `nft`, `iptables` and `setpriv`, which `.ci/run` installs.

use crate::common;

use std::ffi::{OsStr, OsString};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::process::SpawnGated;
use common::{example_dir, query, zone_text};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const IFACE: &str = "nodelocaldns";
const ADDR: &str = "169.254.20.10";
const TABLE: &str = "clusterdns-nodelocaldns";
const COMMENT: &str = "--comment \"clusterdns nodelocaldns\"";

/// A network namespace of this test, deleted when dropped (a failed test too).
struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace with its loopback up, or `None` when not root or when the firewall
    /// programs the tests drive (both nft and iptables) are not installed.
    fn new() -> Option<Netns> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: the --setup-interface tests need a network namespace; skipped");
            return None;
        }
        let installed = |program: &str| {
            let on_path = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
            on_path
                || ["/usr/sbin", "/sbin"]
                    .iter()
                    .any(|d| Path::new(d).join(program).is_file())
        };
        if let Some(missing) = ["ip", "nft", "iptables"]
            .into_iter()
            .find(|p| !installed(p))
        {
            eprintln!(
                "{missing} is not installed: the --setup-interface tests need iproute2, nftables \
                 and iptables (.ci/run installs them); skipped"
            );
            return None;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "clusterdns-t-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output_gated()
            .expect("ip (iproute2) is installed");
        assert!(out.status.success(), "ip netns add: {out:?}");
        let ns = Netns { name };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// `ip netns exec NS args...`.
    fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` in the namespace: its output, whatever the exit code.
    fn run<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> Output {
        self.cmd(args)
            .output_gated()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Runs `args` in the namespace and requires success: its standard output.
    fn ok<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The addresses on the interface, or `None` when there is no such interface.
    fn addresses(&self) -> Option<Vec<String>> {
        let out = self.run(&["ip", "-j", "addr", "show", "dev", IFACE]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(
            v[0]["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["local"].as_str().unwrap().to_owned())
                .collect(),
        )
    }

    /// The comments of the rules in clusterdns's nft table; `None` when there is no table.
    fn nft_rules(&self) -> Option<Vec<(String, u64)>> {
        let out = self.run(&["nft", "-j", "list", "table", "inet", TABLE]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(
            v["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| {
                    let r = &o["rule"];
                    Some((r["comment"].as_str()?.to_owned(), r["handle"].as_u64()?))
                })
                .collect(),
        )
    }

    /// The iptables rules carrying clusterdns's comment, raw and filter tables.
    fn iptables_rules(&self) -> Vec<String> {
        ["raw", "filter"]
            .iter()
            .flat_map(|t| {
                self.ok(&["iptables-save", "-t", t])
                    .lines()
                    .filter(|l| l.contains(COMMENT))
                    .map(|l| format!("{t} {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Starts clusterdns in the namespace on `ADDR:53` with `--setup-interface`, a one-second
    /// check, and `extra`; its log (standard output and error) goes to a file in `logs`.
    fn clusterdns(&self, logs: &tempfile::TempDir, extra: &[&str]) -> Server {
        self.clusterdns_with(logs, &command_line(&[], extra))
    }

    /// Starts `args` in the namespace, its log going to a file in `logs`.
    fn clusterdns_with(&self, logs: &tempfile::TempDir, args: &[OsString]) -> Server {
        let log = logs.path().join(format!("clusterdns-{}.log", now_ns()));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn_gated()
            .unwrap();
        Server { child, log }
    }

    /// A UDP socket of the namespace (made by a thread that entered it).
    fn udp_socket(&self) -> UdpSocket {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: a valid descriptor of a network namespace; only this thread, which ends
            // right after making the socket, moves into it.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            sock
        })
        .join()
        .unwrap()
    }

    /// Asks `kubernetes.default.svc.cluster.local. A` at `ADDR:53` from inside the namespace
    /// until it answers (at most 10 s): the answer.
    fn answer(&self) -> String {
        let sock = self.udp_socket();
        let addr: SocketAddr = format!("{ADDR}:53").parse().unwrap();
        let q = query("kubernetes.default.svc.cluster.local.", RecordType::A, None);
        let bytes = q.to_vec().unwrap();
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Before the listener binds, the address may not be there yet.
            let _ = sock.send_to(&bytes, addr);
            if let Ok(n) = sock.recv(&mut buf) {
                return zone_text(&Message::from_vec(&buf[..n]).unwrap());
            }
            assert!(Instant::now() < deadline, "no answer at {addr} within 10 s");
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output_gated();
    }
}

const SERVE_ARGS: [&str; 11] = [
    "--listen",
    "169.254.20.10:53",
    "--setup-interface",
    IFACE,
    "--no-forward",
    "--metrics-listen",
    "127.0.0.1:9153",
    "--lameduck",
    "0s",
    "--node-setup-interval",
    "1s",
];

/// `prefix`, then the binary serving the example cluster with `SERVE_ARGS`, then `extra`.
fn command_line(prefix: &[&str], extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    args.push(env!("CARGO_BIN_EXE_clusterdns").into());
    args.push("--manifests".into());
    args.push(example_dir().into_os_string());
    args.extend(SERVE_ARGS.iter().chain(extra).map(OsString::from));
    args
}

const ANSWER: &str = "NoError aa\n;answer kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1";

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A clusterdns process and its log.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then its exit status (within 10 s).
    fn terminate(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status_gated()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, self.log());
            }
            assert!(Instant::now() < deadline, "exits within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 100 ms until it holds; fails after 20 s with `what` and the log.
fn eventually(server: &Server, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 20 s\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `clusterdns_node_setup_restored_total` the keeper counted (read inside the namespace).
fn restored_total(ns: &Netns) -> u64 {
    let path = format!("/var/run/netns/{}", ns.name);
    let text = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: as in `udp_socket`.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0);
        let mut s = std::net::TcpStream::connect("127.0.0.1:9153").unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .join()
    .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("clusterdns_node_setup_restored_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no clusterdns_node_setup_restored_total in\n{text}"))
}

#[test]
fn nft_interface_and_rules_are_kept_and_torn_down() {
    let Some(ns) = Netns::new() else { return };
    let logs = tempfile::tempdir().unwrap();
    let server = ns.clusterdns(&logs, &["--node-firewall", "nft"]);
    assert_eq!(ns.answer(), ANSWER);
    assert_eq!(ns.addresses().unwrap()[0], ADDR, "{}", server.log());
    let rules = ns.nft_rules().expect("the nft table");
    let comments: Vec<&str> = rules.iter().map(|(c, _)| c.as_str()).collect();
    for want in [
        "raw prerouting udp to 169.254.20.10:53 notrack",
        "raw prerouting tcp to 169.254.20.10:53 notrack",
        "raw output udp from 169.254.20.10:53 notrack",
        "raw output tcp from 169.254.20.10:53 notrack",
        "raw output udp to 169.254.20.10:53 notrack",
        "raw output tcp to 169.254.20.10:53 notrack",
    ] {
        assert!(comments.contains(&want), "{want} in {comments:?}");
    }
    assert_eq!(comments.len(), 6, "{comments:?}");
    let log = server.log();
    assert!(log.contains("firewall=\"nft\""), "{log}");
    assert!(log.contains("kind="), "the log says which link kind: {log}");

    // Something else removes a rule and the address: both come back.
    let (_, handle) = rules[0].clone();
    let handle = handle.to_string();
    ns.ok(&[
        "nft",
        "delete",
        "rule",
        "inet",
        TABLE,
        "prerouting",
        "handle",
        &handle,
    ]);
    ns.ok(&["ip", "addr", "del", &format!("{ADDR}/32"), "dev", IFACE]);
    eventually(&server, "the rule and the address restored", || {
        ns.nft_rules().is_some_and(|r| r.len() == 6)
            && ns.addresses().is_some_and(|a| a.iter().any(|x| x == ADDR))
    });
    assert_eq!(ns.answer(), ANSWER, "answers after the restore");
    assert!(restored_total(&ns) >= 2);
    // The interface itself, too.
    ns.ok(&["ip", "link", "del", "dev", IFACE]);
    eventually(&server, "the interface restored", || {
        ns.addresses().is_some_and(|a| a.iter().any(|x| x == ADDR))
    });
    assert_eq!(ns.answer(), ANSWER, "answers after the interface is back");

    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(ns.addresses(), None, "interface removed at exit\n{log}");
    assert_eq!(ns.nft_rules(), None, "table removed at exit\n{log}");
}

#[test]
fn iptables_rules_are_kept_and_torn_down() {
    let Some(ns) = Netns::new() else { return };
    let logs = tempfile::tempdir().unwrap();
    let server = ns.clusterdns(&logs, &["--node-firewall", "iptables"]);
    assert_eq!(ns.answer(), ANSWER);
    let rules = ns.iptables_rules();
    // node-cache's set: NOTRACK in raw PREROUTING (to) and OUTPUT (from, and to for the
    // node's own queries), ACCEPT in filter INPUT and OUTPUT; UDP and TCP.
    assert_eq!(rules.len(), 10, "{rules:#?}");
    for (table, chain, end, target) in [
        ("raw", "PREROUTING", "-d", "NOTRACK"),
        ("raw", "OUTPUT", "-s", "NOTRACK"),
        ("raw", "OUTPUT", "-d", "NOTRACK"),
        ("filter", "INPUT", "-d", "ACCEPT"),
        ("filter", "OUTPUT", "-s", "ACCEPT"),
    ] {
        for proto in ["udp", "tcp"] {
            let port = if end == "-d" { "--dport" } else { "--sport" };
            assert!(
                rules.iter().any(|r| r
                    .starts_with(&format!("{table} -A {chain} {end} {ADDR}/32 -p {proto}"))
                    && r.contains(&format!("{port} 53"))
                    && r.ends_with(&format!("-j {target}"))),
                "{table} {chain} {end} {proto} {target} in {rules:#?}"
            );
        }
    }
    assert!(server.log().contains("firewall=\"iptables\""));

    ns.ok(&["iptables", "-w", "-t", "raw", "-D", "PREROUTING", "1"]);
    ns.ok(&["iptables", "-w", "-t", "filter", "-D", "INPUT", "1"]);
    assert_eq!(ns.iptables_rules().len(), 8);
    eventually(&server, "the rules restored", || {
        ns.iptables_rules().len() == 10
    });
    assert_eq!(ns.answer(), ANSWER);

    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(ns.iptables_rules(), Vec::<String>::new(), "{log}");
    assert_eq!(ns.addresses(), None, "{log}");
}

#[test]
fn skip_teardown_leaves_them_for_the_next_start_to_reuse() {
    let Some(ns) = Netns::new() else { return };
    let logs = tempfile::tempdir().unwrap();
    let server = ns.clusterdns(&logs, &["--skip-teardown"]);
    assert_eq!(ns.answer(), ANSWER);
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("left in place"), "{log}");
    assert_eq!(ns.addresses().unwrap()[0], ADDR, "{log}");
    assert_eq!(ns.nft_rules().map(|r| r.len()), Some(6), "{log}");

    let again = ns.clusterdns(&logs, &[]);
    assert_eq!(ns.answer(), ANSWER, "{}", again.log());
    assert!(again.log().contains("interface reused"), "{}", again.log());
    assert_eq!(
        ns.nft_rules().map(|r| r.len()),
        Some(6),
        "no duplicate rules"
    );
    let (status, log) = again.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(ns.addresses(), None, "{log}");
    assert_eq!(ns.nft_rules(), None, "{log}");
}

#[test]
fn without_net_admin_it_refuses_to_start() {
    let Some(ns) = Netns::new() else { return };
    let setpriv = [
        "setpriv",
        "--inh-caps=-net_admin",
        "--bounding-set=-net_admin",
        "--",
    ];
    let out = ns.run(&command_line(&setpriv, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--setup-interface needs the NET_ADMIN capability"),
        "{err}"
    );
    assert_eq!(ns.addresses(), None);
}

#[test]
fn an_interface_of_another_kind_is_not_taken_over() {
    let Some(ns) = Netns::new() else { return };
    ns.ok(&[
        "ip", "link", "add", IFACE, "type", "veth", "peer", "name", "other",
    ]);
    let out = ns.run(&command_line(&[], &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("is a veth link") && err.contains("not taking it over"),
        "{err}"
    );
    assert!(ns.addresses().is_some(), "the veth stays");
}

#[test]
fn only_unspecified_listen_addresses_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "--manifests",
            example_dir().to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
            "--setup-interface",
            IFACE,
            "--no-forward",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .output_gated()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--setup-interface needs a --listen address that is not 0.0.0.0"),
        "{err}"
    );
}

#[test]
fn a_reload_does_not_move_the_listeners_off_the_interface() {
    let Some(ns) = Netns::new() else { return };
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("config.yaml");
    std::fs::write(&file, "listen: [169.254.20.10:53]\n").unwrap();
    let mut args = command_line(&[], &[]);
    // The listen address comes from the file.
    let at = args.iter().position(|a| a == "--listen").unwrap();
    args.drain(at..at + 2);
    args.extend(["--config".into(), file.clone().into_os_string()]);
    let server = ns.clusterdns_with(&logs, &args);
    assert_eq!(ns.answer(), ANSWER);
    std::fs::write(&file, "listen: [169.254.20.10:53, 169.254.20.11:53]\n").unwrap();
    eventually(&server, "the reload logged", || {
        server.log().contains("configuration reloaded")
    });
    let log = server.log();
    assert!(
        log.contains("takes effect after a restart") && log.contains("key=listen"),
        "{log}"
    );
    assert_eq!(ns.addresses().unwrap()[0], ADDR);
    assert_eq!(ns.answer(), ANSWER, "still serving\n{log}");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}\n{log}");
}

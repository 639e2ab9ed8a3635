//! The binary as an operator meets it: flags, errors, serving, SIGTERM.

use crate::common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{SpawnGated, free_port};
use common::{example_dir, query, zone_text};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clusterdns"))
}

#[test]
fn help_documents_every_flag() {
    let out = bin().arg("--help").output_gated().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--manifests",
        "--listen",
        "--zone",
        "--ttl",
        "--pods",
        "--tcp-idle-timeout",
        "--log-level",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
}

/// The binary serving the example manifests on `addr`, without forwarding, its side port on
/// a free loopback port.
fn example_server(addr: SocketAddr) -> Command {
    let mut cmd = bin();
    cmd.args([
        "--manifests",
        example_dir().to_str().unwrap(),
        "--listen",
        &addr.to_string(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--no-forward",
    ]);
    cmd
}

/// The first answer from the server at `addr` to `kubernetes.default`'s A query, asked again
/// every 200 ms for up to 10 s while it starts.
fn first_answer(addr: SocketAddr) -> hickory_proto::op::Message {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = query(
        "kubernetes.default.svc.cluster.local.",
        hickory_proto::rr::RecordType::A,
        None,
    );
    let bytes = q.to_vec().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    loop {
        sock.send_to(&bytes, addr).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            return hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        }
        assert!(Instant::now() < deadline, "binary answered within 10 s");
    }
}

fn one_line_error(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output_gated().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 0, "{args:?} must fail");
    assert_eq!(err.lines().count(), 1, "one line for {args:?}: {err}");
    assert!(err.starts_with("clusterdns: "), "{err}");
    (code, err)
}

#[test]
fn bad_flags_fail_with_one_clear_line() {
    let (code, err) = one_line_error(&["--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
    let (_, err) = one_line_error(&["--ttl", "4000"]);
    assert!(err.contains("4000"), "{err}");
    let (_, err) = one_line_error(&["--pods", "verified-ish"]);
    assert!(err.contains("verified-ish"), "{err}");
    let (_, err) = one_line_error(&["--listen", "nowhere"]);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn unbindable_address_and_missing_directory_fail_clearly() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = example_dir();
    // The side port on loopback too: its default (0.0.0.0:9153) is every interface's, and
    // another server of the machine may hold it.
    let (_, err) = one_line_error(&[
        "--manifests",
        dir.to_str().unwrap(),
        "--listen",
        &addr,
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains(&format!("cannot bind UDP {addr}")), "{err}");

    let (_, err) = one_line_error(&[
        "--manifests",
        "/nonexistent/manifests",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("/nonexistent/manifests"), "{err}");
}

#[test]
fn serves_the_example_and_exits_cleanly_on_sigterm() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = example_server(addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_gated()
        .unwrap();
    let answer = first_answer(addr);
    assert_eq!(
        zone_text(&answer),
        "NoError aa\n;answer kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status_gated()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "exits within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn json_logs_are_one_object_a_line_with_the_sampled_queries() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = example_server(addr)
        .args([
            "--lameduck",
            "0s",
            "--log-format",
            "json",
            "--query-log",
            "--query-log-rate",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_gated()
        .unwrap();
    first_answer(addr);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status_gated()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "start-up lines and the query: {text}");
    for line in &lines {
        assert!(line.get("level").is_some(), "a level on every line: {line}");
    }
    let query_line = lines
        .iter()
        .find(|l| l["message"] == "query")
        .unwrap_or_else(|| panic!("a sampled query line: {text}"));
    assert_eq!(query_line["name"], "kubernetes.default.svc.cluster.local.");
    assert_eq!(query_line["rcode"], "NOERROR");
}

/// The nice value of each thread of process `pid`, by thread name.
#[cfg(target_os = "linux")]
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // a thread that ended meanwhile
        };
        // After the name in parentheses: state is field 3, nice field 19 (proc(5)).
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let nice: i32 = rest.split_whitespace().nth(16).unwrap().parse().unwrap();
        out.push((comm.trim().to_owned(), nice));
    }
    out
}

/// The UDP threads lower their own priority by `--udp-thread-nice` (10 by default); every
/// other thread keeps the process's.
#[cfg(target_os = "linux")]
#[test]
fn udp_threads_run_below_the_rest_of_the_process() {
    for (flag, by) in [(None, 10), (Some("3"), 3), (Some("0"), 0)] {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = example_server(addr);
        if let Some(n) = flag {
            cmd.args(["--udp-thread-nice", n]);
        }
        let server = common::process::Daemon::spawn(&mut cmd);
        let pid = server.id();
        // An answer over UDP: a UDP thread has started; the others may be starting still,
        // so they are read again for up to 2 s.
        first_answer(addr);
        let deadline = Instant::now() + Duration::from_secs(2);
        let (threads, base, udp) = loop {
            let threads = thread_nices(pid);
            let base = threads
                .iter()
                .find(|(name, _)| name == "clusterdns")
                .map(|(_, n)| *n)
                .unwrap_or_else(|| panic!("a main thread: {threads:?}"));
            let udp: Vec<i32> = threads
                .iter()
                .filter(|(name, _)| name == "clusterdns-udp")
                .map(|(_, n)| *n)
                .collect();
            let settled = !udp.is_empty() && udp.iter().all(|n| *n == (base + by).min(19));
            if settled || Instant::now() > deadline {
                break (threads, base, udp);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!udp.is_empty(), "UDP threads: {threads:?}");
        let want = (base + by).min(19);
        assert!(udp.iter().all(|n| *n == want), "{flag:?}: {threads:?}");
        assert!(
            threads
                .iter()
                .filter(|(name, _)| name != "clusterdns-udp")
                .all(|(_, n)| *n == base),
            "{flag:?}: {threads:?}"
        );
    }
    let (_, err) = one_line_error(&["--udp-thread-nice", "20"]);
    assert!(err.contains("20"), "{err}");
}

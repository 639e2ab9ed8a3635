//! The clusterdns binary as a server of a test: on free loopback ports, asked over UDP, its
//! readiness read over HTTP and its log read, killed when dropped.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::process::{Daemon, free_port};
use super::{query, udp_raw, zone_text};

/// A clusterdns process serving DNS on `dns` and its metrics and probes on `metrics`.
pub struct Binary {
    daemon: Daemon,
    pub dns: SocketAddr,
    pub metrics: SocketAddr,
}

impl Binary {
    /// Runs the binary with free loopback ports, no forwarding, no lameduck period,
    /// `--startup-timeout 2s`, then `extra`. `wrap` gets the whole command line (the binary's
    /// path first) and returns the command to spawn: the binary itself, or a wrapper that
    /// ends by executing it.
    pub fn start(extra: &[&str], wrap: impl FnOnce(Vec<String>) -> Command) -> Binary {
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut argv: Vec<String> = vec![env!("CARGO_BIN_EXE_clusterdns").into()];
        for a in [
            "--listen",
            &dns.to_string(),
            "--metrics-listen",
            &metrics.to_string(),
            "--no-forward",
            "--lameduck",
            "0s",
            "--startup-timeout",
            "2s",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            argv.push(a.to_owned());
        }
        let daemon = Daemon::spawn(&mut wrap(argv));
        Binary {
            daemon,
            dns,
            metrics,
        }
    }

    /// The binary run as it is, with `extra` flags.
    pub fn plain(extra: &[&str]) -> Binary {
        Self::start(extra, |argv| {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        })
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Fails the test, with the log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.daemon.exited() {
            panic!("clusterdns exited ({status}); its log:\n{}", self.log());
        }
    }

    /// One UDP query: the reply as zone text, or `None` without a reply within 500 ms.
    pub async fn answer(&self, name: &str, qtype: RecordType) -> Option<String> {
        let bytes = query(name, qtype, Some(1232)).to_vec().unwrap();
        let reply = udp_raw(self.dns, &bytes, Duration::from_millis(500)).await?;
        Some(zone_text(&Message::from_vec(&reply).unwrap()))
    }

    /// Asks for `name` until the reply (zone text) satisfies `pred`, and returns it; fails
    /// with the log if the process exits or after `within`.
    pub async fn until(
        &mut self,
        name: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.assert_running();
            let got = self.answer(name, RecordType::A).await.unwrap_or_default();
            if pred(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} within {within:?}, got\n{got}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks for `name` until the reply contains `want`.
    pub async fn served(&mut self, name: &str, want: &str, within: Duration) {
        self.until(name, within, |t| t.contains(want)).await;
    }

    /// The status of `GET /readyz`, or `None` while nothing listens.
    pub async fn readyz(&self) -> Option<u16> {
        let mut s = tokio::net::TcpStream::connect(self.metrics).await.ok()?;
        let req = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        s.write_all(req.as_bytes()).await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        text.split(' ').nth(1)?.parse().ok()
    }
}

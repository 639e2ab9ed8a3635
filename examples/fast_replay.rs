//! Replays a dnsperf query file through the fast path, for instruction counts:
//!
//! ```text
//! cargo build --release --example fast_replay
//! valgrind --tool=callgrind --toggle-collect='*fast_replay*replay*' \
//!     target/release/examples/fast_replay DIR/manifests DIR/queries.txt 3
//! ```
//!
//! loads the manifests as the server does, encodes every `name type` line of the query file
//! as a query without EDNS (as dnsperf sends them), then answers them all `rounds` times with
//! `clusterdns::server::fast::answer` into one buffer. Only `replay` is counted with the
//! toggle above: instructions per query = its inclusive count / (queries × rounds).
//!
//! With a fourth argument `general`, `replay_general` answers them through the general path
//! instead (hickory's decoder, the handler, hickory's encoder), for comparison.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::metrics::Metrics;
use clusterdns::server::fast::{self, Options};
use clusterdns::server::{DnsHandler, answer_general};
use clusterdns::source::manifests::ManifestSource;
use clusterdns::zone::{PodsMode, Snapshot, ZoneConfig};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

/// Answers every query `rounds` times; returns how many took the fast path.
#[inline(never)]
fn replay(snap: &Snapshot, queries: &[Vec<u8>], rounds: usize, out: &mut [u8]) -> usize {
    let options = Options {
        udp: true,
        recursion_available: true,
        shuffle: false,
    };
    let mut fast = 0;
    for _ in 0..rounds {
        for q in queries {
            fast += usize::from(fast::answer(snap, q, options, out).is_some());
        }
    }
    fast
}

/// Answers every query `rounds` times through the general path; returns how many answered.
#[inline(never)]
fn replay_general(snap: Arc<Snapshot>, queries: &[Vec<u8>], rounds: usize) -> usize {
    let handler = DnsHandler::new(
        Arc::new(arc_swap::ArcSwap::new(snap)),
        Metrics::new().server,
    );
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return 0;
    };
    let src = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut answered = 0;
    for _ in 0..rounds {
        for q in queries {
            let reply = runtime.block_on(answer_general(&handler, q.clone(), src, Protocol::Udp));
            answered += usize::from(reply.is_some());
        }
    }
    answered
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (manifests, queries, rounds, general) = match &args[..] {
        [_, m, q, r] => (m, q, r, false),
        [_, m, q, r, g] if g == "general" => (m, q, r, true),
        _ => {
            eprintln!("usage: fast_replay MANIFESTS_DIR QUERIES_FILE ROUNDS [general]");
            return ExitCode::FAILURE;
        }
    };
    let Ok(rounds) = rounds.parse::<usize>() else {
        eprintln!("ROUNDS: not a number: {rounds}");
        return ExitCode::FAILURE;
    };
    let config = match ZoneConfig::new("cluster.local", 30, PodsMode::Insecure) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let scan = match ManifestSource::new(PathBuf::from(manifests)).scan(true) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{manifests}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut deltas = scan.deltas;
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    cluster.apply(deltas);
    let snap = cluster.snapshot();
    let text = match std::fs::read_to_string(queries) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{queries}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut encoded = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(qtype)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(name), Ok(qtype)) = (Name::from_ascii(name), qtype.parse::<RecordType>()) else {
            eprintln!("{queries}:{}: cannot read {line:?}", i + 1);
            return ExitCode::FAILURE;
        };
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name, qtype));
        match m.to_vec() {
            Ok(b) => encoded.push(b),
            Err(e) => {
                eprintln!("{queries}:{}: {e}", i + 1);
                return ExitCode::FAILURE;
            }
        }
    }
    if general {
        let answered = replay_general(snap, &encoded, rounds);
        println!(
            "queries={} rounds={rounds} answered={answered}",
            encoded.len()
        );
        return ExitCode::SUCCESS;
    }
    let mut out = vec![0u8; 65535];
    let fast = replay(&snap, &encoded, rounds, &mut out);
    println!(
        "queries={} rounds={rounds} fast={fast} general={}",
        encoded.len(),
        encoded.len() * rounds - fast
    );
    ExitCode::SUCCESS
}

//! clusterdns-bench: generates large clusters for benchmarks and probes a running server.
//!
//! `gen` writes manifests clusterdns loads, the equivalent zone file for an authoritative
//! reference server, and a dnsperf query file; `probe` sends one UDP query and prints the rcode.

mod flood;
mod generate;
mod load;
mod plan;
mod probe;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Benchmark helpers for clusterdns.
#[derive(Parser, Debug)]
#[command(name = "clusterdns-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a generated cluster: DIR/manifests/cluster.yaml (or .json), DIR/cluster.local.zone,
    /// DIR/queries.txt and DIR/summary.txt.
    Gen {
        /// Number of Services (kube-system/kube-dns comes on top).
        #[arg(long, default_value_t = 10_000)]
        services: u64,
        /// Ready endpoints of each headless Service.
        #[arg(long, default_value_t = 100)]
        endpoints_per_headless: u64,
        /// Percentage of the Services that are headless.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=100))]
        headless_percent: u64,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Seed of every random choice: the same seed writes the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Manifests encoding: `yaml` (manifests/cluster.yaml) or `json` (manifests/cluster.json,
        /// one object per line; loads several times faster).
        #[arg(long, value_enum, default_value = "yaml")]
        format: generate::Format,
    },
    /// Load a manifests directory in process and print the parse and publish times and RSS.
    Load {
        /// The manifests directory (e.g. DIR/manifests of `gen`).
        dir: PathBuf,
    },
    /// Load a manifests directory, then apply single-EndpointSlice changes one at a time and
    /// print the latency of each (apply and publish of the new snapshot).
    Apply {
        /// The manifests directory (e.g. DIR/manifests of `gen`).
        dir: PathBuf,
        /// Number of changes.
        #[arg(long, default_value_t = 1000)]
        changes: usize,
    },
    /// Offer a fixed rate of UDP queries (open loop, `sendmmsg` over many sockets) for a
    /// while and print how many were sent, answered within the timeout, late and lost.
    Flood {
        /// The server, e.g. 127.0.0.1:5353.
        #[arg(long)]
        server: SocketAddr,
        /// dnsperf's query file: `NAME TYPE` a line, sent in turn.
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        /// Queries a second, all sockets together.
        #[arg(long)]
        rate: u64,
        /// How long to send.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Sockets (source ports) to send from.
        #[arg(long, default_value_t = 32)]
        sockets: usize,
        /// The address the sockets bind to (the first of `--sources`).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Source addresses, consecutive from `--bind` (IPv4): the sockets are spread over them.
        #[arg(long, default_value_t = 1)]
        sources: u32,
        /// A reply later than this is counted late, not answered.
        #[arg(long, default_value_t = 500)]
        timeout_ms: u64,
        /// Leave the replies unread (the kernel drops them), so all the loader's CPU goes to
        /// sending; then only the server can say what it answered.
        #[arg(long)]
        no_read: bool,
    },
    /// Send one UDP query and print the rcode and answer count; exit 1 without a reply.
    Probe {
        /// The server, e.g. 127.0.0.1:5353.
        addr: SocketAddr,
        /// The name to ask for.
        name: String,
        /// The record type.
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        /// How long to wait for the reply, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Gen {
            services,
            endpoints_per_headless,
            headless_percent,
            out,
            seed,
            format,
        } => {
            let plan = plan::Plan {
                services,
                endpoints_per_headless,
                headless_percent,
                seed,
            };
            let summary = generate::generate(&plan, &out, format)?;
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Flood {
            server,
            queries,
            rate,
            seconds,
            sockets,
            bind,
            sources,
            timeout_ms,
            no_read,
        } => flood::flood(&flood::Plan {
            server,
            queries: &queries,
            rate,
            seconds,
            sockets,
            bind,
            sources,
            timeout: Duration::from_millis(timeout_ms),
            no_read,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Load { dir } => load::load(&dir).map(|()| ExitCode::SUCCESS),
        Command::Apply { dir, changes } => load::apply(&dir, changes).map(|()| ExitCode::SUCCESS),
        Command::Probe {
            addr,
            name,
            qtype,
            timeout_ms,
        } => {
            let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
                .map_err(|_| anyhow::anyhow!("unknown record type {qtype:?}"))?;
            let wait = Duration::from_millis(timeout_ms.max(1));
            match probe::probe(addr, &name, qtype, wait)? {
                Some(reply) => {
                    println!("{} answers={}", rcode_name(reply.rcode), reply.answers);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    println!("TIMEOUT");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The rcode's mnemonic, as dig prints it.
fn rcode_name(rcode: ResponseCode) -> String {
    match u16::from(rcode) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clusterdns-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

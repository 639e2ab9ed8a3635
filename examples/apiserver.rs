//! The integration tests' API server emulator (`tests/it/common/apiserver.rs`) as a process
//! of its own, serving a generated cluster for benchmarks (`bench/api-scale.sh`).
//!
//! ```sh
//! cargo run --release --example apiserver -- --manifests DIR/manifests/cluster.json \
//!     --dir OUT --control 127.0.0.1:18080
//! ```
//!
//! Loads the objects of a JSON manifests file (one object per line, `clusterdns-bench gen
//! --format json`), serves them on an ephemeral port of 127.0.0.1, writes `OUT/kubeconfig`
//! and then `OUT/ready` (`objects=N slices=M rv=R`). The control port takes GET requests:
//!
//! - `/streaming?on=0|1`: streaming lists (`sendInitialEvents`) served, or refused with 422
//!   as by a server without WatchList (clients fall back to paged lists);
//! - `/relist`: compaction past every client's resourceVersion and every watch cut, so each
//!   watcher resumes into `410 Expired` and relists;
//! - `/churn?rate=R&seconds=S[&endpoints=K]`: R EndpointSlice changes a second for S seconds
//!   (one endpoint address of a slice moves, stamped with
//!   `endpoints.kubernetes.io/last-change-trigger-time` = now), answered when done with
//!   `changes=N seconds=T`. The slices changed are the cluster's own, in turn, or with
//!   `endpoints=K` 1000 slices of K endpoints of headless Services `churn-I` in namespace
//!   `churn`, made first (without a trigger time);
//! - `/stats`: `rv=R watches=W`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/common/apiserver.rs"]
mod apiserver;
#[path = "../tests/it/common/process.rs"]
mod process;

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Query, State};
use clap::Parser;
use serde_json::{Value, json};

use apiserver::ApiServer;

const SLICE_API: &str = "discovery.k8s.io/v1";
const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The API server emulator, serving a generated cluster.
#[derive(Parser)]
struct Args {
    /// JSON manifests: one object per line.
    #[arg(long)]
    manifests: PathBuf,
    /// Where `kubeconfig` and `ready` are written.
    #[arg(long)]
    dir: PathBuf,
    /// The control port's address.
    #[arg(long, default_value = "127.0.0.1:18080")]
    control: SocketAddr,
    /// Refuse streaming lists from the start.
    #[arg(long)]
    no_streaming_lists: bool,
    /// Changes kept for replay (older ones are compacted away).
    #[arg(long, default_value_t = 5_000)]
    history_limit: usize,
}

struct Emulator {
    server: ApiServer,
    /// (namespace, name) of every EndpointSlice loaded: the churn's targets.
    slices: Vec<(String, String)>,
    /// Changes made by churn so far (the next one's number).
    churned: std::sync::Mutex<u64>,
}

/// Slices of the churn's own Services (`endpoints=K`).
const CHURN_SLICES: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = ApiServer::start().await;
    server.set_streaming_lists_supported(!args.no_streaming_lists);
    let file = std::fs::File::open(&args.manifests)
        .with_context(|| format!("cannot open {}", args.manifests.display()))?;
    let (mut objects, mut slices) = (0usize, Vec::new());
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let obj: Value = serde_json::from_str(&line).context("a manifest line is not JSON")?;
        if obj["kind"] == "EndpointSlice" {
            let meta = &obj["metadata"];
            let ns = meta["namespace"].as_str().unwrap_or("default").to_owned();
            slices.push((ns, meta["name"].as_str().unwrap_or_default().to_owned()));
        }
        server.apply(obj);
        objects += 1;
    }
    // The load is not history anyone replays.
    server.compact();
    server.set_history_limit(args.history_limit);
    server.write_kubeconfig(&args.dir);
    let rv = server.resource_version();
    let emulator = Arc::new(Emulator {
        server,
        slices,
        churned: std::sync::Mutex::new(0),
    });
    let control = axum::Router::new()
        .route("/streaming", axum::routing::get(streaming))
        .route("/relist", axum::routing::get(relist))
        .route("/churn", axum::routing::get(churn))
        .route("/stats", axum::routing::get(stats))
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind(args.control).await?;
    let ready = format!(
        "objects={objects} slices={} rv={rv} url={}\n",
        emulator.slices.len(),
        emulator.server.url()
    );
    std::fs::write(args.dir.join("ready"), &ready)?;
    eprint!("apiserver: {ready}");
    axum::serve(listener, control).await?;
    Ok(())
}

type Params = Query<HashMap<String, String>>;

async fn streaming(State(e): State<Arc<Emulator>>, Query(q): Params) -> String {
    let on = q.get("on").is_none_or(|v| v != "0");
    e.server.set_streaming_lists_supported(on);
    format!("streaming={on}\n")
}

async fn relist(State(e): State<Arc<Emulator>>) -> String {
    e.server.force_relist();
    format!("rv={}\n", e.server.resource_version())
}

async fn stats(State(e): State<Arc<Emulator>>) -> String {
    let rv = e.server.resource_version();
    format!("rv={rv} watches={}\n", e.server.watch_count())
}

async fn churn(State(e): State<Arc<Emulator>>, Query(q): Params) -> String {
    let rate: f64 = q.get("rate").and_then(|v| v.parse().ok()).unwrap_or(1000.0);
    let seconds: f64 = q
        .get("seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let endpoints: usize = q.get("endpoints").and_then(|v| v.parse().ok()).unwrap_or(0);
    let run = tokio::task::spawn_blocking(move || {
        let targets = match endpoints {
            0 => e.slices.clone(),
            k => churn_slices(&e, k),
        };
        churn_for(&e, &targets, rate, seconds)
    });
    match run.await {
        Ok(report) => report,
        Err(err) => format!("error={err}\n"),
    }
}

/// Applies `rate` slice changes a second for `seconds`, catching up after any pause.
fn churn_for(e: &Emulator, targets: &[(String, String)], rate: f64, seconds: f64) -> String {
    if targets.is_empty() {
        return "changes=0 seconds=0 (no EndpointSlices)\n".into();
    }
    let start = Instant::now();
    let until = Duration::from_secs_f64(seconds);
    // Each target as last changed: read from the server once, not at every change.
    let mut current: Vec<Option<serde_json::Value>> = vec![None; targets.len()];
    let (mut done, mut behind_max) = (0u64, 0u64);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= until {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        behind_max = behind_max.max(due.saturating_sub(done));
        while done < due {
            change_one(e, targets, &mut current);
            done += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    format!(
        "changes={done} seconds={secs:.2} rate={:.0} behind_max={behind_max}\n",
        done as f64 / secs
    )
}

/// Moves one endpoint address of the next slice, stamped with the trigger time; `current`
/// holds each target as last changed.
fn change_one(
    e: &Emulator,
    targets: &[(String, String)],
    current: &mut [Option<serde_json::Value>],
) {
    let n = {
        let mut churned = e.churned.lock().unwrap();
        *churned += 1;
        *churned
    };
    let at = (n % targets.len() as u64) as usize;
    let (ns, name) = &targets[at];
    if current[at].is_none() {
        current[at] = e.server.get(SLICE_API, "EndpointSlice", ns, name);
    }
    let Some(slice) = current[at].as_mut() else {
        return;
    };
    let round = n / targets.len() as u64;
    if let Some(endpoints) = slice["endpoints"].as_array_mut()
        && !endpoints.is_empty()
    {
        let i = (round % endpoints.len() as u64) as usize;
        let ip = format!("100.{}.{}.{}", 64 + (n >> 16) % 64, (n >> 8) % 256, n % 256);
        endpoints[i]["addresses"] = json!([ip]);
    }
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    slice["metadata"]["annotations"][TRIGGER] = json!(now);
    e.server.apply_in_place(slice);
}

/// Makes (or remakes) the churn's own headless Services, each with one slice of `k`
/// endpoints; returns the slices.
fn churn_slices(e: &Emulator, k: usize) -> Vec<(String, String)> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "churn"}});
    e.server.apply(ns);
    (0..CHURN_SLICES)
        .map(|i| {
            let name = format!("churn-{i}");
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "churn"},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 8080}]}});
            e.server.apply(svc);
            let endpoints: Vec<Value> = (0..k)
                .map(|j| {
                    json!({"addresses": [format!("10.250.{}.{}", i % 250, j % 250 + 1)],
                                "conditions": {"ready": true}})
                })
                .collect();
            let slice = json!({"apiVersion": SLICE_API, "kind": "EndpointSlice",
                "metadata": {"name": format!("{name}-x"), "namespace": "churn",
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints});
            e.server.apply(slice);
            ("churn".to_owned(), format!("{name}-x"))
        })
        .collect()
}

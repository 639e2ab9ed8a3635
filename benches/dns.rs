//! Criterion benchmarks of the query path and of applying one change at 100k Services.
//!
//! The fixture is the generator's 100k-Service cluster (`clusterdns-bench gen --services
//! 100000 --seed 1`, 1M endpoints), read from `$BENCH_CACHE/100000-s1` (as `bench/run`
//! caches it; default `/tmp/clusterdns-bench-cache`) or generated there on first use.
//! `BENCH_SERVICES` picks another size (e.g. 10000 for a quick run).
//!
//!   cargo bench --bench dns
//!   BENCH_SERVICES=10000 cargo bench --bench dns -- lookup
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::metrics::Metrics;
use clusterdns::model::{IpList, Object};
use clusterdns::server::DnsHandler;
use clusterdns::source::manifests::{list_files, parse_file};
use clusterdns::zone::{PodsMode, Snapshot, ZoneConfig, lookup};

/// The generated cluster: its directory, the cluster built from it, and its snapshot.
struct Fixture {
    cluster: Cluster,
    snapshot: Arc<Snapshot>,
    /// One EndpointSlice of a headless Service, to change.
    slice: clusterdns::model::EndpointSlice,
}

fn fixture_dir() -> PathBuf {
    let services: u64 = std::env::var("BENCH_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let cache =
        std::env::var("BENCH_CACHE").unwrap_or_else(|_| "/tmp/clusterdns-bench-cache".into());
    let dir = PathBuf::from(cache).join(format!("{services}-s1"));
    if !dir.join("summary.txt").exists() {
        let tmp = dir.with_extension("tmp");
        let status = Command::new(env!("CARGO_BIN_EXE_clusterdns-bench"))
            .args([
                "gen",
                "--services",
                &services.to_string(),
                "--seed",
                "1",
                "--out",
            ])
            .arg(&tmp)
            .status()
            .expect("run clusterdns-bench gen");
        assert!(status.success(), "clusterdns-bench gen failed");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).expect("move the generated cluster into place");
    }
    dir
}

fn fixture() -> Fixture {
    let dir = fixture_dir().join("manifests");
    let config =
        Arc::new(ZoneConfig::new("cluster.local", 30, PodsMode::Insecure).expect("zone config"));
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let mut objects = Vec::new();
    for file in list_files(&dir).expect("list manifests") {
        let text = std::fs::read_to_string(&file).expect("read manifest");
        let (good, errors) = parse_file(&file, &text).expect("parse manifest");
        assert!(errors.is_empty(), "manifest errors in {}", file.display());
        objects.extend(good);
    }
    let slice = objects
        .iter()
        .find_map(|o| match o {
            Object::EndpointSlice(s) if s.endpoints.len() > 1 => Some(s.clone()),
            _ => None,
        })
        .expect("the cluster has an EndpointSlice");
    let deltas = objects
        .into_iter()
        .map(Delta::Upsert)
        .chain(ALL_KINDS.iter().map(|k| Delta::Synced(*k)));
    cluster.apply(deltas);
    let snapshot = cluster.snapshot();
    Fixture {
        cluster,
        snapshot,
        slice,
    }
}

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 0x1234;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_str(name).expect("name"), qtype));
    msg.to_vec().expect("encode query")
}

/// An answering path: query bytes in, response bytes out.
type AnswerFn<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<u8>>;

/// The queries benchmarked: hit, NXDOMAIN, SRV, PTR (of the first generated cluster IP).
const CASES: [(&str, &str, RecordType); 5] = [
    (
        "A hit",
        "svc-000001.ns-00000.svc.cluster.local.",
        RecordType::A,
    ),
    (
        "AAAA nodata",
        "svc-000001.ns-00000.svc.cluster.local.",
        RecordType::AAAA,
    ),
    (
        "A nxdomain",
        "missing-1.ns-00000.svc.cluster.local.",
        RecordType::A,
    ),
    (
        "SRV",
        "_http._tcp.svc-000001.ns-00000.svc.cluster.local.",
        RecordType::SRV,
    ),
    ("PTR", "0.1.96.10.in-addr.arpa.", RecordType::PTR),
];

fn benches(c: &mut Criterion) {
    let mut fx = fixture();

    let mut group = c.benchmark_group("lookup");
    for (case, name, qtype) in CASES {
        let name = Name::from_str(name).expect("name");
        group.bench_function(BenchmarkId::from_parameter(case), |b| {
            b.iter(|| black_box(lookup(&fx.snapshot, black_box(&name), qtype)).rcode)
        });
    }
    group.finish();

    // Whole answers, query bytes in, response bytes out. A second entry point is one more
    // line in `paths`.
    let zone = Arc::new(ArcSwap::from(Arc::clone(&fx.snapshot)));
    let handler = DnsHandler::new(Arc::clone(&zone), Metrics::new().server);
    let src: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let answer_raw = |raw: &[u8]| {
        futures::executor::block_on(clusterdns::server::answer_raw(
            &handler,
            raw.to_vec(),
            src,
            Protocol::Udp,
        ))
    };
    // The fast path alone: packet bytes to packet bytes into a reused buffer.
    let out = std::cell::RefCell::new(vec![0u8; 1232]);
    let fast = |raw: &[u8]| {
        let mut out = out.borrow_mut();
        let len = handler.fast_answer(raw, clusterdns::metrics::Proto::Udp, src, &mut out)?;
        Some(out[..len].to_vec())
    };
    let general = |raw: &[u8]| {
        futures::executor::block_on(clusterdns::server::answer_general(
            &handler,
            raw.to_vec(),
            src,
            Protocol::Udp,
        ))
    };
    let paths: [(&str, AnswerFn); 3] = [
        ("answer_raw", &answer_raw),
        ("fast_answer", &fast),
        ("general (hickory)", &general),
    ];
    let mut group = c.benchmark_group("answer");
    for (path, answer) in paths {
        for (case, name, qtype) in CASES {
            let raw = query(name, qtype);
            assert!(answer(&raw).is_some(), "{path} answers {case}");
            group.bench_function(BenchmarkId::new(path, case), |b| {
                b.iter(|| black_box(answer(black_box(&raw))))
            });
        }
    }
    group.finish();

    // One EndpointSlice change (an endpoint's address moves) applied to the cluster and the
    // new snapshot published, as the source loop does.
    let mut versions = [fx.slice.clone(), fx.slice.clone()];
    let moved: IpAddr = "100.127.255.254".parse().expect("address");
    let mut endpoints = versions[1].endpoints.to_vec();
    if let Some(first) = endpoints.first_mut() {
        first.addresses = IpList::from(vec![moved]);
    }
    versions[1].endpoints = endpoints.into();
    let mut flip = 0usize;
    c.bench_function("apply one EndpointSlice change", |b| {
        b.iter(|| {
            flip ^= 1;
            let delta = Delta::Upsert(Object::EndpointSlice(versions[flip].clone()));
            if let Some(snapshot) = fx.cluster.apply([delta]) {
                zone.store(snapshot);
            }
        })
    });
    fx.snapshot = zone.load_full();
}

criterion_group! {
    name = dns;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(dns);

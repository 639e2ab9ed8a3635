//! Zero heap allocations per cluster-zone answer on the fast path: a counting global
//! allocator (this test binary's own) sees no allocation while `server::fast::answer`, and
//! `DnsHandler::fast_answer` with its metrics, answer A, SRV, AAAA-NODATA, NXDOMAIN and PTR
//! queries thousands of times after a warm-up.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use clusterdns::cluster::{ALL_KINDS, Cluster, Delta};
use clusterdns::metrics::{Metrics, Proto};
use clusterdns::server::DnsHandler;
use clusterdns::server::fast::{self, Options};
use clusterdns::source::manifests::ManifestSource;
use clusterdns::zone::{PodsMode, Snapshot, ZoneConfig};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Counts the allocations made by the current thread (other test threads do not disturb it).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter left; its allocations are not ours.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed straight to the system allocator with the caller's arguments,
// so `System`'s guarantees hold; the counter is a const-initialised thread-local `Cell` that
// itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, which is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn snapshot() -> Arc<Snapshot> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster");
    let config = Arc::new(ZoneConfig::new("cluster.local", 30, PodsMode::Insecure).unwrap());
    let mut cluster = Cluster::new(config, &ALL_KINDS);
    let scan = ManifestSource::new(&dir).scan(true).unwrap();
    let mut deltas = scan.deltas;
    deltas.extend(ALL_KINDS.map(Delta::Synced));
    cluster.apply(deltas);
    cluster.snapshot()
}

/// The queries of the benchmark mix, and a PTR, each with and without EDNS, in mixed case.
fn queries() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (what, name, qtype) in [
        ("A", "Web.Shop.svc.cluster.local.", RecordType::A),
        ("headless A", "db.data.svc.cluster.local.", RecordType::A),
        (
            "SRV",
            "_postgres._tcp.db.data.svc.cluster.local.",
            RecordType::SRV,
        ),
        (
            "AAAA NODATA",
            "web.shop.svc.cluster.local.",
            RecordType::AAAA,
        ),
        ("NXDOMAIN", "nope.shop.svc.CLUSTER.local.", RecordType::A),
        ("PTR", "10.0.96.10.in-addr.arpa.", RecordType::PTR),
        (
            "IPv6 PTR",
            "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
            RecordType::PTR,
        ),
    ] {
        for edns in [false, true] {
            let mut m = Message::new(77, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
            if edns {
                let mut e = Edns::new();
                e.set_max_payload(1232);
                m.edns = Some(e);
            }
            out.push((what, m.to_vec().unwrap()));
        }
    }
    out
}

#[test]
fn fast_answers_allocate_nothing() {
    let snap = snapshot();
    let queries = queries();
    let mut out = vec![0u8; 65535];
    let options = Options {
        udp: true,
        recursion_available: false,
        shuffle: false,
    };
    for (what, q) in &queries {
        assert!(
            fast::answer(&snap, q, options, &mut out).is_some(),
            "{what} is on the fast path"
        );
        let before = allocations();
        for _ in 0..2000 {
            std::hint::black_box(fast::answer(&snap, q, options, &mut out));
        }
        assert_eq!(
            allocations() - before,
            0,
            "{what}: allocations in 2000 answers"
        );
    }
}

#[test]
fn fast_answers_with_metrics_allocate_nothing() {
    let metrics = Arc::new(Metrics::new());
    let handler = DnsHandler::new(
        Arc::new(ArcSwap::new(snapshot())),
        Arc::clone(&metrics.server),
    );
    let queries = queries();
    let mut out = vec![0u8; 1232];
    let client: std::net::SocketAddr = ([127, 0, 0, 1], 40000).into();
    // Warm-up: each metrics series is created once (that allocates, once per series).
    for (what, q) in &queries {
        assert!(
            handler
                .fast_answer(q, Proto::Udp, client, &mut out)
                .is_some(),
            "{what} is on the fast path"
        );
    }
    let before = allocations();
    for _ in 0..2000 {
        for (_, q) in &queries {
            std::hint::black_box(handler.fast_answer(q, Proto::Udp, client, &mut out));
        }
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {} answers",
        2000 * queries.len()
    );
    // The answers were counted (reverse names under the zone `.`).
    let text = metrics.encode();
    let count = text
        .lines()
        .filter(|l| l.starts_with("clusterdns_dns_request_duration_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum::<u64>();
    assert_eq!(count, 2001 * queries.len() as u64, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("clusterdns_dns_responses_total{")
                && l.contains("rcode=\"NXDOMAIN\"")
                && l.ends_with(" 4002")),
        "{text}"
    );
}

#[test]
fn fast_answers_recorded_per_client_allocate_nothing() {
    let metrics = Arc::new(Metrics::new());
    let clients = Arc::new(clusterdns::clients::ClientStats::new(
        20,
        Arc::clone(&metrics.clients),
    ));
    let handler = DnsHandler::new(
        Arc::new(ArcSwap::new(snapshot())),
        Arc::clone(&metrics.server),
    )
    .with_clients(Some(Arc::clone(&clients)));
    let queries = queries();
    let mut out = vec![0u8; 1232];
    let client: std::net::SocketAddr = ([127, 0, 0, 1], 40000).into();
    for (_, q) in &queries {
        handler.fast_answer(q, Proto::Udp, client, &mut out);
    }
    let before = allocations();
    // More than the queue holds: both the queued records and the dropped ones are counted
    // without allocating (no collector drains it here).
    for _ in 0..2000 {
        for (_, q) in &queries {
            std::hint::black_box(handler.fast_answer(q, Proto::Udp, client, &mut out));
        }
    }
    assert_eq!(allocations() - before, 0);
    let text = metrics.encode();
    let dropped = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("clusterdns_client_stats_dropped_total ")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let recorded = 2001 * queries.len() as u64;
    assert_eq!(
        dropped,
        recorded - 16_384,
        "the queue held 16,384; the rest dropped"
    );
}

#[test]
fn client_limits_allocate_nothing() {
    use clusterdns::server::Gate;
    use clusterdns::server::limit::ClientLimiter;
    use prometheus_client::metrics::counter::Counter;
    let (dropped, slipped) = (Counter::default(), Counter::default());
    let limiter = ClientLimiter::new(1, 2, dropped.clone(), slipped.clone());
    let metrics = Metrics::new();
    let handler = DnsHandler::new(
        Arc::new(ArcSwap::new(snapshot())),
        Arc::clone(&metrics.server),
    )
    .with_limiter(Some(Arc::new(limiter)));
    let queries = queries();
    let mut out = vec![0u8; 1232];
    let client: std::net::SocketAddr = ([127, 0, 0, 1], 40000).into();
    // Warm-up: each metrics series is created once (that allocates, once per series).
    for (_, q) in &queries {
        handler.fast_answer(q, Proto::Udp, client, &mut out);
    }
    let before = allocations();
    let mut passed = 0;
    for _ in 0..2000 {
        for (_, q) in &queries {
            match handler.udp_gate(q, client, &mut out) {
                Gate::Pass => {
                    passed += 1;
                    std::hint::black_box(handler.fast_answer(q, Proto::Udp, client, &mut out));
                }
                Gate::Drop | Gate::Reply(_) => {}
            }
        }
    }
    assert_eq!(allocations() - before, 0);
    let total = 2000 * queries.len() as u64;
    assert!(passed >= 1, "the bucket's one token");
    assert_eq!(dropped.get() + slipped.get() + passed, total);
    assert!(slipped.get() > 0);
}

#[test]
fn the_counter_counts() {
    let before = allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(10));
    drop(v);
    assert_eq!(allocations() - before, 1);
}

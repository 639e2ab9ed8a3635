//! Recording a query in the per-query metrics allocates nothing (the query path is meant to
//! run without allocating) and its figures come out in the scrape.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use clusterdns::metrics::{AddrFamily, Metrics, Proto, QueryObservation, rcode_index, type_index};
use hickory_proto::rr::{Name, RecordType};

/// Counts the allocations of the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initialiser, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn observing_a_query_allocates_nothing() {
    let metrics = Metrics::for_server(&["dns://:53"], &["cluster.local."]);
    let names: Vec<Name> = [
        "web.shop.svc.cluster.local.",
        "WEB.Shop.SVC.Cluster.Local.",
        "www.example.com.",
        "10.0.96.10.in-addr.arpa.",
        ".",
    ]
    .iter()
    .map(|n| Name::from_ascii(n).unwrap())
    .collect();
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::SRV,
        RecordType::Unknown(65000),
    ];
    let before = allocations();
    for i in 0..10_000usize {
        let name = &names[i % names.len()];
        let o = QueryObservation {
            server: 0,
            zone: metrics.dns().zone_index(name),
            proto: if i % 3 == 0 { Proto::Tcp } else { Proto::Udp },
            family: if i % 5 == 0 {
                AddrFamily::V6
            } else {
                AddrFamily::V4
            },
            qtype: type_index(Some(types[i % types.len()])),
            rcode: rcode_index((i % 4) as u16),
            request_size: 40 + i % 60,
            response_size: 100 + i % 900,
            duration: Duration::from_micros((i % 5000) as u64),
        };
        metrics.observe_query(&o);
    }
    let allocated = allocations() - before;
    assert_eq!(
        allocated, 0,
        "observe_query and zone_index allocated {allocated} times"
    );

    let text = metrics.encode();
    let count = |zone: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("clusterdns_dns_requests_total{"))
            .filter(|l| l.contains(&format!("zone=\"{zone}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    // Two in five names are in the cluster zone, whatever their case.
    assert_eq!(count("cluster.local."), 4000, "{text}");
    assert_eq!(count("."), 6000, "{text}");
    assert!(text.contains("type=\"other\""), "{text}");
    assert!(text.contains("family=\"2\""), "{text}");
    let histogram_total: u64 = text
        .lines()
        .filter(|l| l.starts_with("clusterdns_dns_request_duration_seconds_count{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(histogram_total, 10_000);
}

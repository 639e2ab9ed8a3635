//! The sampled query log (`--query-log`, `--query-log-rate`): one line at info for 1 in N
//! answered queries, with name, type, response code, duration and client. Off, it costs one
//! relaxed atomic load per query.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Log one query in this many; 0 turns the log off.
static EVERY: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);

/// Turns the query log on at `rate` (0 < rate <= 1: the fraction of queries logged) or off.
pub fn configure(enabled: bool, rate: f64) {
    let every = if enabled && rate > 0.0 {
        (1.0 / rate.min(1.0)).round().max(1.0) as u64
    } else {
        0
    };
    EVERY.store(every, Ordering::Relaxed);
}

/// Logs this query if it is the one in N.
pub fn sample(
    client: &SocketAddr,
    name: Option<&dyn std::fmt::Display>,
    qtype: Option<RecordType>,
    rcode: ResponseCode,
    duration: Duration,
) {
    let every = EVERY.load(Ordering::Relaxed);
    if every == 0 || !SEEN.fetch_add(1, Ordering::Relaxed).is_multiple_of(every) {
        return;
    }
    tracing::info!(
        target: "clusterdns::query",
        name = %name.map(|n| n.to_string()).unwrap_or_default(),
        r#type = %qtype.map(|t| t.to_string()).unwrap_or_default(),
        rcode = %crate::wire::rcode_name(rcode),
        duration_us = duration.as_micros() as u64,
        %client,
        "query"
    );
}

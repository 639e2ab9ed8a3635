//! Per-query figures recorded without a lock or an allocation: every series a query can touch
//! is a slot of a fixed table (transport × type label, response code), filled with its
//! `Family` counter the first time it is used and read with one atomic load after; the
//! duration histogram is a row of atomic buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::{RequestLabels, ResponseLabels};

/// The transport a query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Proto {
    fn label(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// The query type labels: `""` when the query had none, common types by name, every other
/// one `other` (so a client cannot create a series per type number, as CoreDNS).
const TYPE_LABELS: [(u16, &str); 20] = [
    (0, ""),
    (1, "A"),
    (28, "AAAA"),
    (255, "ANY"),
    (252, "AXFR"),
    (257, "CAA"),
    (5, "CNAME"),
    (48, "DNSKEY"),
    (43, "DS"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (15, "MX"),
    (35, "NAPTR"),
    (2, "NS"),
    (12, "PTR"),
    (6, "SOA"),
    (33, "SRV"),
    (64, "SVCB"),
    (16, "TXT"),
    (u16::MAX, "other"),
];

/// Index into `TYPE_LABELS` of a query type (`None`: no question).
fn type_index(qtype: Option<u16>) -> usize {
    let Some(t) = qtype else { return 0 };
    TYPE_LABELS
        .iter()
        .skip(1)
        .position(|(code, _)| *code == t)
        .map_or(TYPE_LABELS.len() - 1, |i| i + 1)
}

/// The query type as metrics label it.
pub fn type_label(qtype: u16) -> &'static str {
    TYPE_LABELS[type_index(Some(qtype))].1
}

/// The response code labels, by code where the code has one.
const RCODE_LABELS: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER",
];

fn rcode_index(rcode: u16) -> usize {
    match rcode {
        0..=5 => usize::from(rcode),
        16 => 6,
        _ => 7,
    }
}

/// The RFC mnemonic of a response code, as metrics label it.
pub fn rcode_label(rcode: u16) -> &'static str {
    RCODE_LABELS[rcode_index(rcode)]
}

/// The counters of `dns_requests_total` and `dns_responses_total`, one slot per series.
pub struct QueryCounters {
    requests: [[OnceLock<Counter>; TYPE_LABELS.len()]; 2],
    responses: [OnceLock<Counter>; RCODE_LABELS.len()],
}

impl QueryCounters {
    pub(super) fn new() -> Self {
        Self {
            requests: Default::default(),
            responses: Default::default(),
        }
    }

    pub(super) fn count(
        &self,
        requests: &Family<RequestLabels, Counter>,
        responses: &Family<ResponseLabels, Counter>,
        proto: Proto,
        qtype: Option<u16>,
        rcode: u16,
    ) {
        let t = type_index(qtype);
        let slot = &self.requests[usize::from(proto == Proto::Tcp)][t];
        slot.get_or_init(|| {
            requests
                .get_or_create(&RequestLabels {
                    proto: proto.label(),
                    r#type: TYPE_LABELS[t].1,
                })
                .clone()
        })
        .inc();
        let r = rcode_index(rcode);
        self.responses[r]
            .get_or_init(|| {
                responses
                    .get_or_create(&ResponseLabels {
                        rcode: RCODE_LABELS[r].to_owned(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// A histogram of durations in seconds whose observation is a few atomic adds.
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds in seconds, ascending; `+Inf` last.
    bounds: Box<[f64]>,
    /// Observations per bucket (not cumulative).
    counts: Box<[AtomicU64]>,
    /// Sum of observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// A histogram with these bucket upper bounds (seconds), plus `+Inf`.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Box<[f64]> = bounds
            .into_iter()
            .chain(std::iter::once(f64::INFINITY))
            .collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(HistogramInner {
                bounds,
                counts,
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .inner
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.inner.bounds.len() - 1);
        if let Some(c) = self.inner.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .inner
            .bounds
            .iter()
            .zip(self.inner.counts.iter())
            .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(type_label(1), "A");
        assert_eq!(type_label(33), "SRV");
        assert_eq!(type_label(99), "other");
        assert_eq!(TYPE_LABELS[type_index(None)].1, "");
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(16), "BADVERS");
        assert_eq!(rcode_label(9), "OTHER");
    }

    #[test]
    fn histogram_buckets() {
        let h = DurationHistogram::new([0.001, 0.01]);
        h.observe(std::time::Duration::from_micros(500));
        h.observe(std::time::Duration::from_millis(5));
        h.observe(std::time::Duration::from_secs(1));
        assert_eq!(h.count(), 3);
        let counts: Vec<u64> = h
            .inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 1]);
    }
}

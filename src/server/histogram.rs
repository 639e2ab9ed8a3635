//! Fixed-bucket histograms in atomics for the per-query families: observed as integers
//! (nanoseconds, bytes) with two relaxed atomic adds, exposed in seconds and bytes with
//! CoreDNS's buckets.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request duration buckets, in seconds (CoreDNS: 0.25 ms doubling, 16).
const DURATION_BOUNDS: [f64; 16] = [
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];
/// The same in nanoseconds, as durations are observed (integer compares and adds).
const DURATION_BOUNDS_NS: [u64; 16] = {
    let mut ns = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        ns[i] = 250_000 << i;
        i += 1;
    }
    ns
};
/// Upper bounds of the message size buckets, in bytes (as CoreDNS).
const SIZE_BOUNDS: [f64; 14] = [
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16000.0, 32000.0,
    48000.0, 64000.0,
];
/// The same as integers.
const SIZE_BOUNDS_INT: [u64; 14] = [
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000,
];

/// A histogram's buckets: as exposed, as observed (integers in `unit`s), and the unit.
#[derive(Debug)]
pub(super) struct Buckets {
    bounds: &'static [f64],
    ints: &'static [u64],
    /// What one observed integer is, in the exposed unit (1e-9 s for nanoseconds).
    unit: f64,
    /// `Some(first)` when every bound is twice the one before, from `first`.
    doubling_from: Option<u64>,
}

impl Buckets {
    /// The bucket `v` falls in: the first bound at or above it (`ints.len()` past the last).
    /// Bounds that double from the first (durations') give it as the bit length of the
    /// number of first-bound steps below `v`, without a search.
    fn index(&self, v: u64) -> usize {
        match self.doubling_from {
            Some(first) => {
                let steps = v.saturating_sub(1) / first;
                let bits = (u64::BITS - steps.leading_zeros()) as usize;
                bits.min(self.ints.len())
            }
            None => self.ints.partition_point(|b| *b < v),
        }
    }
}

pub(super) const DURATION: Buckets = Buckets {
    bounds: &DURATION_BOUNDS,
    ints: &DURATION_BOUNDS_NS,
    unit: 1e-9,
    doubling_from: Some(DURATION_BOUNDS_NS[0]),
};
pub(super) const SIZE: Buckets = Buckets {
    bounds: &SIZE_BOUNDS,
    ints: &SIZE_BOUNDS_INT,
    unit: 1.0,
    doubling_from: None,
};

/// `(sum, count, per-bucket counts)` of a histogram.
pub(super) type HistogramValues = (f64, u64, Vec<(f64, u64)>);

/// A histogram of fixed buckets in atomics: observed with two relaxed atomic adds (the
/// sum is an integer, in the buckets' unit).
#[derive(Debug)]
pub(super) struct AtomicHistogram {
    buckets: &'static Buckets,
    /// Non-cumulative counts; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum, in `buckets.unit`s.
    sum: AtomicU64,
}

impl AtomicHistogram {
    pub(super) fn new(buckets: &'static Buckets) -> Self {
        Self {
            buckets,
            counts: (0..=buckets.ints.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, v: u64) {
        let i = self.buckets.index(v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// `(sum, count, per-bucket counts)` (the encoder makes them cumulative), or `None` when
    /// nothing was observed.
    pub(super) fn snapshot(&self) -> Option<HistogramValues> {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            let bound = self.buckets.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        (total > 0).then(|| {
            (
                self.sum.load(Ordering::Relaxed) as f64 * self.buckets.unit,
                total,
                buckets,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{DURATION, DURATION_BOUNDS_NS, SIZE};

    /// The search-free index of the doubling bounds is the search's, at and around every
    /// bound, and far past the last.
    #[test]
    fn the_duration_bucket_is_the_first_bound_at_or_above() {
        let mut values = vec![0, 1, u64::MAX];
        for b in DURATION_BOUNDS_NS {
            values.extend([b - 1, b, b + 1, b / 3 * 2]);
        }
        for v in values {
            let want = DURATION.ints.partition_point(|b| *b < v);
            assert_eq!(DURATION.index(v), want, "{v} ns");
        }
        assert_eq!(SIZE.index(511), 5);
        assert_eq!(SIZE.index(512), 6);
    }
}

//! The cache of forwarded answers (moka, least recently used eviction).
//!
//! Keyed by the lowercased query name, type, class and the DO and CD bits. An entry keeps the
//! upstream's sections and the time it was stored; served records count their TTL down from
//! there. Entries stay in moka past their expiry for the serve-stale window, and are only
//! served stale when every upstream fails. The cluster zone never reaches this cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use super::metrics::Metrics;

/// TTL of records served stale (RFC 8767 §4 suggests 30 s).
pub const STALE_TTL: u32 = 30;
/// How long an upstream SERVFAIL is cached.
pub const SERVFAIL_TTL: u32 = 5;

/// What identifies a cached answer: the query name in lower-case wire form, then type and
/// class (big-endian) and a byte of flags (bit 0 DO, bit 1 CD). The same bytes come from a
/// hickory `Name` (`Key::new`) or straight from a query packet (`forward::wire`), which looks
/// entries up by `&[u8]` without building a key.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Key(Box<[u8]>);

/// Flag bits of the key's last byte.
pub(crate) const KEY_DO: u8 = 1;
pub(crate) const KEY_CD: u8 = 2;

impl Key {
    /// The key of a question.
    pub fn new(
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        dnssec_ok: bool,
        cd: bool,
    ) -> Self {
        let mut bytes = Vec::with_capacity(name.len() + 7);
        for label in name.iter() {
            // A label is at most 63 bytes (hickory checks it when it builds a name).
            bytes.push(u8::try_from(label.len()).unwrap_or(63));
            bytes.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        bytes.push(0);
        bytes.extend(u16::from(qtype).to_be_bytes());
        bytes.extend(u16::from(qclass).to_be_bytes());
        bytes.push(if dnssec_ok { KEY_DO } else { 0 } | if cd { KEY_CD } else { 0 });
        Self(bytes.into_boxed_slice())
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// How long answers are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheSettings {
    /// Most entries (0: no cache).
    pub size: u64,
    /// Cap on positive answers, seconds.
    pub max_ttl: u32,
    /// Cap on negative answers, seconds.
    pub max_negative_ttl: u32,
    /// Floor for every answer, seconds.
    pub min_ttl: u32,
    /// How long past expiry an entry may still be served stale.
    pub serve_stale: Duration,
}

/// The kind of a cached answer, as the hit metric labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Data.
    Success,
    /// NXDOMAIN or NODATA.
    Denial,
    /// SERVFAIL from the upstream.
    ServFail,
    /// Not cacheable (truncated, REFUSED, …): passed to its waiters only.
    Uncacheable,
}

/// An upstream answer, as stored.
#[derive(Debug)]
pub struct Entry {
    /// Response code.
    pub rcode: ResponseCode,
    /// The upstream's AD bit.
    pub authentic_data: bool,
    /// The reply was truncated (TCP retry failed).
    pub truncated: bool,
    answers: Box<[Record]>,
    authorities: Box<[Record]>,
    additionals: Box<[Record]>,
    stored: Instant,
    /// Lifetime in the cache, seconds.
    pub ttl: u32,
    /// What kind of answer it is.
    pub kind: Kind,
    /// How long past expiry it may still be served stale.
    stale: Duration,
    hits: AtomicU32,
    refreshing: AtomicBool,
    /// The sections encoded once, for answering hits straight into a packet.
    pub(crate) wire: Option<super::wire::WireAnswer>,
}

/// An answer ready to send: the sections with TTLs as of now.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Response code.
    pub rcode: ResponseCode,
    /// AD bit.
    pub authentic_data: bool,
    /// TC bit.
    pub truncated: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section (no OPT).
    pub additionals: Vec<Record>,
}

fn min_ttl<'a>(records: impl Iterator<Item = &'a Record>) -> Option<u32> {
    records.map(|r| r.ttl).min()
}

impl Entry {
    /// Classifies and times an upstream reply (RFC 2308 for negatives).
    pub fn from_message(m: Message, s: &CacheSettings, cacheable: bool) -> Self {
        let rcode = m.metadata.response_code;
        let truncated = m.metadata.truncation;
        let negative_ttl = || {
            m.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
        };
        let (kind, ttl) = match rcode {
            _ if truncated || !cacheable => (Kind::Uncacheable, 0),
            ResponseCode::NoError if !m.answers.is_empty() => {
                let ttl = min_ttl(m.answers.iter().chain(m.authorities.iter()))
                    .unwrap_or(s.min_ttl)
                    .min(s.max_ttl);
                (Kind::Success, ttl)
            }
            ResponseCode::NoError | ResponseCode::NXDomain => {
                let ttl = negative_ttl().unwrap_or(s.min_ttl).min(s.max_negative_ttl);
                (Kind::Denial, ttl)
            }
            ResponseCode::ServFail => (Kind::ServFail, SERVFAIL_TTL),
            _ => (Kind::Uncacheable, 0),
        };
        let wire = (kind != Kind::Uncacheable)
            .then(|| super::wire::WireAnswer::build(&m))
            .flatten();
        Self {
            wire,
            rcode,
            authentic_data: m.metadata.authentic_data,
            truncated,
            answers: m.answers.into(),
            authorities: m.authorities.into(),
            additionals: m.additionals.into(),
            stored: Instant::now(),
            ttl: if kind == Kind::Uncacheable {
                0
            } else {
                ttl.max(s.min_ttl)
            },
            kind,
            stale: s.serve_stale,
            hits: AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
        }
    }

    /// Seconds since it was stored, as served TTLs count them.
    pub fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX)
    }

    /// Counts a hit answered without `should_prefetch` (which counts its own).
    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a hit now falls in the prefetch window (the last tenth of its lifetime, at least
    /// 1 s), without counting it.
    pub(crate) fn in_prefetch_window(&self, now: Instant) -> bool {
        let Some(left) = self.remaining(now) else {
            return true;
        };
        left <= Duration::from_secs(u64::from(self.ttl))
            .div_f64(10.0)
            .max(Duration::from_secs(1))
    }

    /// The entry's age in whole seconds when it may be answered from as it is: fresh, and
    /// outside its prefetch window unless `prefetch()` says prefetching is off. The same
    /// decisions as `remaining` and `in_prefetch_window`, from one reading of the age, in
    /// integer nanoseconds.
    pub(crate) fn fresh_age(&self, now: Instant, prefetch: impl FnOnce() -> bool) -> Option<u32> {
        const NS: u64 = 1_000_000_000;
        let age = now.saturating_duration_since(self.stored);
        let age_ns = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        let ttl_ns = u64::from(self.ttl) * NS;
        let left = ttl_ns.checked_sub(age_ns).filter(|&left| left > 0)?;
        if left <= (ttl_ns / 10).max(NS) && prefetch() {
            return None;
        }
        Some(u32::try_from(age.as_secs()).unwrap_or(u32::MAX))
    }

    /// When it was stored.
    #[cfg(test)]
    pub(crate) fn stored_at(&self) -> Instant {
        self.stored
    }

    /// Seconds of freshness left, or `None` once expired.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        let age = now.saturating_duration_since(self.stored);
        Duration::from_secs(u64::from(self.ttl))
            .checked_sub(age)
            .filter(|d| !d.is_zero())
    }

    /// Whether it may still be served stale at `now` (its serve-stale window, from the
    /// settings it was stored under).
    pub fn within_stale(&self, now: Instant) -> bool {
        let age = now.saturating_duration_since(self.stored);
        age < Duration::from_secs(u64::from(self.ttl)) + self.stale
    }

    /// Counts a hit and tells whether this one should refresh the entry ahead of expiry: it
    /// has been asked at least twice and less than a tenth of its lifetime (at least 1 s) is left.
    pub fn should_prefetch(&self, now: Instant) -> bool {
        let hits = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        hits >= 2
            && self.remaining(now).is_some()
            && self.in_prefetch_window(now)
            && !self.refreshing.swap(true, Ordering::Relaxed)
    }

    /// The answer as of `now`: every TTL lowered by the time spent here (never above the
    /// entry's lifetime), or `STALE_TTL` when served stale.
    pub fn reply(&self, now: Instant, stale: bool) -> Reply {
        let age = self.age(now);
        let ttl = |r: &Record| -> Record {
            let mut r = r.clone();
            r.ttl = if stale {
                STALE_TTL
            } else if self.kind == Kind::Uncacheable {
                r.ttl
            } else {
                r.ttl.min(self.ttl).saturating_sub(age)
            };
            r
        };
        Reply {
            rcode: self.rcode,
            authentic_data: self.authentic_data,
            truncated: self.truncated,
            answers: self.answers.iter().map(ttl).collect(),
            authorities: self.authorities.iter().map(ttl).collect(),
            additionals: self.additionals.iter().map(ttl).collect(),
        }
    }
}

/// Entries leave the cache at the end of their serve-stale window.
struct StaleExpiry;

impl moka::Expiry<Key, Arc<Entry>> for StaleExpiry {
    fn expire_after_create(&self, _: &Key, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(value.ttl)) + value.stale)
    }

    // A refreshed entry lives from its own creation, not the one it replaces.
    fn expire_after_update(
        &self,
        key: &Key,
        value: &Arc<Entry>,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

/// The cache.
pub struct Cache {
    /// Hashed with foldhash (randomly seeded per process), as the zone's maps are: SipHash's
    /// cost per lookup was a tenth of a cache hit.
    inner: moka::sync::Cache<Key, Arc<Entry>, foldhash::fast::RandomState>,
    metrics: Arc<Metrics>,
}

impl Cache {
    /// An empty cache of `settings.size` entries.
    pub fn new(settings: &CacheSettings, metrics: Arc<Metrics>) -> Self {
        let evictions = metrics.cache_evictions.clone();
        let inner = moka::sync::Cache::builder()
            .max_capacity(settings.size)
            // TinyLFU: a new entry is admitted only when it is asked for more often than the
            // entry it would evict, so a flood of one-hit names (a pod resolving random
            // subdomains) cannot push the popular answers out.
            .eviction_policy(EvictionPolicy::tiny_lfu())
            .expire_after(StaleExpiry)
            .eviction_listener(move |_, _, cause| {
                // Evicted for room, or refused at admission.
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self { inner, metrics }
    }

    /// The entry for `key`, fresh or not.
    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.inner.get(key)
    }

    /// The entry for `key`, fresh or not; a key it does not hold is not counted as a read.
    /// The general path looks here after the fast path has already looked (and counted the
    /// read): a one-hit name must count once in TinyLFU's frequencies, not twice, or a flood
    /// of them looks as popular as a name asked twice.
    pub fn get_unless_absent(&self, key: &Key) -> Option<Arc<Entry>> {
        if !self.inner.contains_key(key) {
            return None;
        }
        self.inner.get(key)
    }

    /// The entry for the key bytes `key` (see [`Key`]), fresh or not.
    pub fn get_bytes(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.inner.get(key)
    }

    /// Stores `entry` unless it is not cacheable.
    pub fn insert(&self, key: Key, entry: Arc<Entry>) {
        if entry.kind == Kind::Uncacheable || entry.ttl == 0 {
            return;
        }
        self.inner.insert(key, entry);
        // Inserts follow an upstream round trip: settling evictions now keeps the entry count
        // and the eviction metric exact at little cost.
        self.inner.run_pending_tasks();
        self.metrics
            .cache_entries
            .set(i64::try_from(self.inner.entry_count()).unwrap_or(i64::MAX));
    }

    /// Entries held (approximate until moka's housekeeping runs).
    pub fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

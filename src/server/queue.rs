//! The UDP loop's queue: datagrams read from a socket but not yet answered.
//!
//! The loop reads everything the socket holds before it answers a batch (reading costs a
//! fraction of answering), so a burst moves out of the kernel's buffer into this queue and
//! another client's datagram that arrives meanwhile still finds room in the kernel's instead of
//! being dropped there, unseen.
//!
//! Under sustained overload a FIFO queue of that kind stays full, and every query, a
//! well-behaved pod's included, waits the whole queue's length (a third of a second at 3× one
//! core's capacity) and is answered after its client has given up. So, as fq_codel treats
//! sparse flows, the queue has two classes and a time bound:
//! - **Light sources first.** While the queue is backed up (`BACKLOG` datagrams or more), each
//!   datagram's source address is counted in a window of `WINDOW`; a source that has sent at most
//!   `LIGHT` datagrams in the window (a pod resolving a few names) goes to the priority
//!   queue, answered before anything else; the rest (whoever floods) to the bulk queue. With
//!   no backlog nothing is counted: every datagram goes to bulk and is answered at once.
//! - **Nothing older than `MAX_WAIT`.** A batch that waited longer is dropped unanswered
//!   (`clusterdns_dropped_total{reason="udp_queue_wait"}`): stub resolvers retry after a second
//!   or more, so an answer that late is work for nobody, and the capacity goes to queries that
//!   are still waited for. When the queue is full (`QUEUE_DATAGRAMS`, `QUEUE_BYTES`) the oldest
//!   bulk batch makes room (`reason="udp_queue_full"`), so reading, and with it the priority
//!   class, never stops.
//!
//! A flood from many spoofed sources, each light, fills the priority queue instead; then it is
//! bounded the same way (by time, and when full from its head).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most bytes of datagrams read but not yet answered, per socket.
pub const QUEUE_BYTES: usize = 16 << 20;
/// Most datagrams read but not yet answered, per socket.
pub const QUEUE_DATAGRAMS: usize = 64 * 1024;
/// How long a datagram may wait in the queue before it is dropped unanswered: shorter than any
/// stub resolver's first retry (1 s and more), long enough to absorb a burst of ~100 ms of
/// capacity.
pub const MAX_WAIT: Duration = Duration::from_millis(100);
/// Queued datagrams from which sources are told apart.
const BACKLOG: usize = 64;
/// The window in which a source's datagrams are counted.
const WINDOW: Duration = Duration::from_millis(100);
/// Most datagrams in a window from a source that is still served first: a pod's lookup under
/// `ndots:5` is up to a dozen queries at once (each search domain, A and AAAA), and a busy
/// pod makes a few lookups in 100 ms.
const LIGHT: u32 = 64;
/// Slots of the source table (a power of two): sources that share a slot take turns in it.
const SOURCES: usize = 4096;
/// Emptied batches kept for reuse.
const POOL: usize = 64;

/// Datagrams' bytes back to back, where each came from, and when they were read.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub queries: Vec<(std::ops::Range<usize>, SocketAddr)>,
    /// When the datagrams were read (set by the queue).
    pub at: Option<Instant>,
}

impl Batch {
    pub fn push(&mut self, bytes: &[u8], src: SocketAddr) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.queries.push((start..self.data.len(), src));
    }

    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The datagrams and their sources.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.queries
            .iter()
            .map(|(range, src)| (self.data.get(range.clone()).unwrap_or_default(), *src))
    }
}

/// Datagrams dropped by the queue since the last `take_dropped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Waited longer than `MAX_WAIT`.
    pub wait: u64,
    /// Made room in a full queue.
    pub full: u64,
}

/// Recent datagram counts per source address, in a fixed table (no allocation after `new`).
struct Sources {
    /// Per slot: the source's key, the window it was counted in, its count there.
    slots: Box<[(u64, u32, u32)]>,
    window: u32,
    window_start: Instant,
}

impl Sources {
    fn new(now: Instant) -> Self {
        Self {
            slots: vec![(0, 0, 0); SOURCES].into_boxed_slice(),
            window: 1,
            window_start: now,
        }
    }

    fn tick(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            self.window = self.window.wrapping_add(1).max(1);
            self.window_start = now;
        }
    }

    /// Counts a datagram from `ip`; true while the source is light in this window.
    fn light(&mut self, ip: IpAddr) -> bool {
        let key = match ip {
            IpAddr::V4(v4) => u64::from(v4.to_bits()) | 1 << 63,
            IpAddr::V6(v6) => {
                let bits = v6.to_bits();
                (bits >> 64) as u64 ^ (bits as u64)
            }
        };
        // Fibonacci hashing: the high bits of the product pick the slot.
        let slot =
            (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SOURCES.trailing_zeros())) as usize;
        let window = self.window;
        let Some(entry) = self.slots.get_mut(slot) else {
            return false;
        };
        if entry.0 != key || entry.1 != window {
            *entry = (key, window, 0);
        }
        entry.2 = entry.2.saturating_add(1);
        entry.2 <= LIGHT
    }
}

/// Datagrams read but not yet answered: a priority class for light sources and a bulk class,
/// in batches stamped with when they were read.
pub struct Queue {
    /// Light sources' batches, in the order read.
    priority: VecDeque<Batch>,
    /// Everyone else's.
    bulk: VecDeque<Batch>,
    pool: Vec<Batch>,
    sources: Sources,
    bytes: usize,
    datagrams: usize,
    dropped: Dropped,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Queue {
    pub fn new(now: Instant) -> Self {
        Self {
            priority: VecDeque::new(),
            bulk: VecDeque::new(),
            pool: Vec::new(),
            sources: Sources::new(now),
            bytes: 0,
            datagrams: 0,
            dropped: Dropped::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams == 0
    }

    /// Datagrams queued.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.datagrams
    }

    /// Queues datagrams read at `now` (a `recvmmsg` call's worth). With a backlog, light
    /// sources' datagrams go to the priority class; when full, the oldest batches make room.
    pub fn admit<'a>(
        &mut self,
        now: Instant,
        datagrams: impl Iterator<Item = (&'a [u8], SocketAddr)>,
    ) {
        let mut bulk = self.fresh(now);
        if self.datagrams < BACKLOG {
            for (bytes, src) in datagrams {
                bulk.push(bytes, src);
            }
        } else {
            self.sources.tick(now);
            let mut priority = self.fresh(now);
            for (bytes, src) in datagrams {
                if self.sources.light(src.ip()) {
                    priority.push(bytes, src);
                } else {
                    bulk.push(bytes, src);
                }
            }
            self.enqueue(priority, true);
        }
        self.enqueue(bulk, false);
        while self.bytes > QUEUE_BYTES || self.datagrams > QUEUE_DATAGRAMS {
            let Some(batch) = self.take(false) else {
                break;
            };
            self.dropped.full += batch.len() as u64;
            self.recycle(batch);
        }
    }

    fn enqueue(&mut self, batch: Batch, priority: bool) {
        if batch.is_empty() {
            self.pool.push(batch);
            return;
        }
        self.bytes += batch.data.len();
        self.datagrams += batch.len();
        if priority {
            self.priority.push_back(batch);
        } else {
            self.bulk.push_back(batch);
        }
    }

    /// The next batch to answer (priority first), dropping those that waited longer than
    /// `MAX_WAIT` by `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Batch> {
        loop {
            let batch = self.take(true)?;
            let waited = batch
                .at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            if waited <= MAX_WAIT {
                return Some(batch);
            }
            self.dropped.wait += batch.len() as u64;
            self.recycle(batch);
        }
    }

    /// Every batch left, priority first, without the time bound (at shutdown).
    pub fn pop_any(&mut self) -> Option<Batch> {
        self.take(true)
    }

    /// Drops counted since the last call.
    pub fn take_dropped(&mut self) -> Dropped {
        std::mem::take(&mut self.dropped)
    }

    /// Keeps an answered batch's buffers for reuse.
    pub fn recycle(&mut self, mut batch: Batch) {
        if self.pool.len() < POOL {
            batch.data.clear();
            batch.queries.clear();
            self.pool.push(batch);
        }
    }

    fn fresh(&mut self, now: Instant) -> Batch {
        let mut batch = self.pool.pop().unwrap_or_default();
        batch.at = Some(now);
        batch
    }

    /// The oldest batch of one class (priority or bulk first), else of the other.
    fn take(&mut self, priority_first: bool) -> Option<Batch> {
        let (first, second) = if priority_first {
            (&mut self.priority, &mut self.bulk)
        } else {
            (&mut self.bulk, &mut self.priority)
        };
        let batch = match first.pop_front() {
            Some(batch) => batch,
            None => second.pop_front()?,
        };
        self.bytes -= batch.data.len();
        self.datagrams -= batch.len();
        Some(batch)
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;

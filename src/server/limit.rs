//! `--max-qps-per-client`: a token bucket per client address for queries over UDP (TCP is
//! exempt: its handshake proves the address, and its connections are capped already).
//!
//! The buckets live in a fixed table of `SLOTS` slots allocated at start, indexed by a keyed
//! hash of the address; a slot holds the address's tag and its state (milli-tokens and the
//! millisecond of the last refill) in two atomics, updated with compare-and-swap: no lock, no
//! allocation per query. Two addresses that share a slot take it over from each other (each
//! takeover starts a full bucket), so the table stays bounded whatever the sources are, at
//! the price of a looser limit for colliding clients.
//!
//! A query over the limit is dropped, except every `slip`-th one, which is answered with an
//! empty truncated response (TC=1) as RRL's slip: a real client retries over TCP and is
//! answered, while a spoofed victim receives no more than a trickle of small replies.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;

use crate::wire::Question;

/// Slots in the table (a power of two).
const SLOTS: usize = 1 << 16;

/// Most queries per second a limit may be set to (milli-tokens of a second's burst fit 32
/// bits).
pub const MAX_QPS: u32 = 1_000_000;

/// What to do with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit: answer it.
    Allow,
    /// Over the limit: drop it.
    Drop,
    /// Over the limit, the slip's turn: answer empty with TC=1.
    Slip,
}

#[derive(Default)]
struct Slot {
    tag: AtomicU64,
    /// Milli-tokens (high 32 bits) and the millisecond of the last refill (low 32 bits).
    state: AtomicU64,
}

/// The per-client token buckets.
pub struct ClientLimiter {
    slots: Box<[Slot]>,
    hasher: foldhash::fast::FixedState,
    /// Milli-tokens gained per millisecond: the queries per second.
    rate: u64,
    /// A full bucket, milli-tokens: one second's queries.
    burst: u64,
    slip: u64,
    limited: AtomicU64,
    epoch: Instant,
    dropped: Counter,
    slipped: Counter,
}

fn pack(tokens: u64, ms: u32) -> u64 {
    (tokens << 32) | u64::from(ms)
}

fn unpack(state: u64) -> (u64, u32) {
    (state >> 32, (state & 0xffff_ffff) as u32)
}

impl ClientLimiter {
    /// `qps` queries per second per address (a second's worth in one burst); every `slip`-th
    /// query over it answered TC=1 (0: all dropped); counted into `dropped` and `slipped`.
    pub fn new(qps: u32, slip: u32, dropped: Counter, slipped: Counter) -> Self {
        let qps = u64::from(qps.clamp(1, MAX_QPS));
        let slots = (0..SLOTS).map(|_| Slot::default()).collect();
        Self {
            slots,
            hasher: foldhash::fast::FixedState::with_seed(rand::random()),
            rate: qps,
            burst: qps * 1000,
            slip: u64::from(slip),
            limited: AtomicU64::new(0),
            epoch: Instant::now(),
            dropped,
            slipped,
        }
    }

    /// Takes a token from `ip`'s bucket: whether the query is allowed, dropped or slipped.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        let ip = ip.to_canonical();
        let hash = self.hasher.hash_one(ip);
        // The low bits pick the slot; the tag is the whole hash, never 0 (an empty slot).
        let tag = hash | 1;
        let Some(slot) = self.slots.get((hash as usize) & (SLOTS - 1)) else {
            return Verdict::Allow;
        };
        let now = u32::try_from(self.epoch.elapsed().as_millis() & 0xffff_ffff).unwrap_or(0);
        if slot.tag.load(Ordering::Relaxed) != tag {
            // A new address (or one that lost its slot): a full bucket, less this query.
            slot.tag.store(tag, Ordering::Relaxed);
            slot.state
                .store(pack(self.burst - 1000, now), Ordering::Relaxed);
            return Verdict::Allow;
        }
        let mut state = slot.state.load(Ordering::Relaxed);
        loop {
            let (tokens, last) = unpack(state);
            let elapsed = u64::from(now.wrapping_sub(last));
            let tokens = tokens
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.burst);
            let (next, allowed) = if tokens >= 1000 {
                (pack(tokens - 1000, now), true)
            } else {
                (pack(tokens, now), false)
            };
            match slot.state.compare_exchange_weak(
                state,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) if allowed => return Verdict::Allow,
                Ok(_) => return self.over(),
                Err(current) => state = current,
            }
        }
    }

    fn over(&self) -> Verdict {
        let n = self.limited.fetch_add(1, Ordering::Relaxed) + 1;
        if self.slip > 0 && n.is_multiple_of(self.slip) {
            self.slipped.inc();
            Verdict::Slip
        } else {
            self.dropped.inc();
            Verdict::Drop
        }
    }
}

/// The slip's reply to `query` in `out`: its header and question, QR and TC set, AA and the
/// response code cleared (RD and CD echoed), no records. `None` for a packet with no
/// readable question (dropped instead).
pub fn slip_reply(query: &[u8], out: &mut [u8]) -> Option<usize> {
    let q = Question::parse(query)?;
    let end = q.question_end();
    let reply = out.get_mut(..end)?;
    reply.copy_from_slice(query.get(..end)?);
    // Byte 2: QR, opcode, AA, TC, RD; byte 3: RA, Z, AD, CD, RCODE.
    reply[2] = (reply[2] | 0x80 | 0x02) & !0x04;
    reply[3] &= 0x10;
    reply[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let l = ClientLimiter::new(10, 2, Counter::default(), Counter::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..20).map(|_| l.check(ip)).collect();
        let allowed = verdicts.iter().filter(|v| **v == Verdict::Allow).count();
        assert!((10..=11).contains(&allowed), "{verdicts:?}");
        let slipped = verdicts.iter().filter(|v| **v == Verdict::Slip).count();
        let limited = 20 - allowed;
        assert_eq!(slipped, limited / 2, "{verdicts:?}");
        // Another address has a bucket of its own.
        assert_eq!(l.check("10.0.0.2".parse().unwrap()), Verdict::Allow);
        // The v4-mapped form is the same client.
        assert_ne!(l.check("::ffff:10.0.0.1".parse().unwrap()), Verdict::Allow);
    }

    #[test]
    fn slip_replies_are_empty_truncated_answers_to_the_question() {
        let q = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 3, b'w', b'e', b'b', 0, 0, 1, 0, 1,
            // OPT
            0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0,
        ];
        let mut out = [0u8; 512];
        let n = slip_reply(&q, &mut out).unwrap();
        assert_eq!(n, 21);
        assert_eq!(&out[..2], &[0x12, 0x34]);
        assert_eq!(out[2], 0x83, "QR, TC, RD");
        assert_eq!(out[3], 0);
        assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[12..21], &q[12..21]);
        assert_eq!(slip_reply(&[0x12, 0x34, 1], &mut out), None);
    }
}

//! A copy-on-write map split into shards, so that a snapshot update copies one shard, not the zone.
//!
//! Cloning the map clones one `Arc`; changing a key clones the shard that holds it and leaves
//! every other shard shared with older snapshots that readers may still hold. The number of
//! shards grows with the map (doubling, as a hash table grows) so that a shard holds at most
//! `MAX_SHARD_LEN` entries on average: the copy a change makes stays the same size at 1k
//! entries and at 1M. What remains proportional to the map is the shard table itself, one
//! pointer per shard (per 32–64 entries), copied once per update.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::FixedState;

type Shard<K, V> = std::collections::HashMap<K, V, FixedState>;

/// Shards of an empty map.
const MIN_SHARDS: usize = 64;
/// Average entries per shard above which the shard count doubles.
const MAX_SHARD_LEN: usize = 64;

/// A persistent hash map made of independently shared shards.
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Arc<[Arc<Shard<K, V>>]>,
    len: usize,
}

impl<K, V> Clone for ShardedMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: Arc::clone(&self.shards),
            len: self.len,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// The shard of `key` among `count` (a power of two).
fn shard_of<Q: Hash + ?Sized>(key: &Q, count: usize) -> usize {
    // A fixed seed keeps shard placement stable across snapshots; within a shard the
    // HashMap uses another seed, so the two placements are independent. The high bits pick
    // the shard, so doubling the count splits every shard in two.
    let h = FixedState::with_seed(0x5eed).hash_one(key);
    (h >> (64 - count.trailing_zeros())) as usize
}

fn empty_shards<K, V>(count: usize) -> Vec<Arc<Shard<K, V>>> {
    (0..count)
        .map(|_| Arc::new(Shard::with_hasher(FixedState::default())))
        .collect()
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            shards: empty_shards(MIN_SHARDS).into(),
            len: 0,
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Entries in shards this map does not share with `other`: what the updates that made
    /// one from the other copied (every entry, if the shard count differs).
    pub fn unshared_entries(&self, other: &Self) -> usize {
        if self.shards.len() != other.shards.len() {
            return self.len;
        }
        self.shards
            .iter()
            .zip(other.shards.iter())
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .map(|(a, _)| a.len())
            .sum()
    }

    /// Looks a key up; never allocates.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key, self.shards.len())].get(key)
    }

    /// Doubles the shard count (more than once if needed) when shards have grown past
    /// `MAX_SHARD_LEN` entries on average. Rebuilds every shard: amortised over the inserts
    /// that grew the map, as a hash table's own growth is. `update` calls it; after a run of
    /// `set`s, call it once (growing once at the end of a large batch, rather than at each
    /// doubling on the way, leaves the allocator fewer freed tables to hold on to).
    pub fn rebalance(&mut self) {
        let mut count = self.shards.len();
        while self.len > count * MAX_SHARD_LEN {
            count *= 2;
        }
        if count == self.shards.len() {
            return;
        }
        let mut shards: Vec<Shard<K, V>> = (0..count)
            .map(|_| Shard::with_capacity_and_hasher(self.len / count + 1, FixedState::default()))
            .collect();
        for shard in self.shards.iter() {
            for (k, v) in shard.iter() {
                shards[shard_of(k, count)].insert(k.clone(), v.clone());
            }
        }
        self.shards = shards.into_iter().map(Arc::new).collect();
    }

    /// Applies inserts (`Some`) and removals (`None`), copying only the shards they touch.
    pub fn update(&mut self, changes: impl IntoIterator<Item = (K, Option<V>)>) {
        for (key, value) in changes {
            self.set(key, value);
        }
        self.rebalance();
    }

    /// Inserts (`Some`) or removes (`None`) one key, copying its shard only if an older
    /// snapshot still shares it (so many calls in a row copy each shard at most once). The
    /// shard count stays as it is until `rebalance`.
    pub fn set(&mut self, key: K, value: Option<V>) {
        let count = self.shards.len();
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[shard_of(&key, count)]);
        match value {
            Some(v) => self.len += usize::from(shard.insert(key, v).is_none()),
            None => self.len -= usize::from(shard.remove(&key).is_some()),
        }
    }

    /// Iterates over every entry, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_shares_untouched_shards() {
        let mut a: ShardedMap<u32, u32> = ShardedMap::new();
        a.update((0..1000).map(|i| (i, Some(i * 2))));
        assert_eq!(a.len(), 1000);
        let mut b = a.clone();
        b.update([(7, Some(70)), (8, None), (5000, Some(1))]);
        assert_eq!(a.get(&7), Some(&14));
        assert_eq!(b.get(&7), Some(&70));
        assert_eq!(a.get(&8), Some(&16));
        assert_eq!(b.get(&8), None);
        assert_eq!(b.len(), 1000);
        let shared = a
            .shards
            .iter()
            .zip(b.shards.iter())
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert!(
            shared >= a.shard_count() - 3,
            "only touched shards are copied: {shared}"
        );
    }

    #[test]
    fn a_change_copies_the_same_amount_at_any_size() {
        for size in [10_000u32, 1_000_000] {
            let mut a: ShardedMap<u32, u32> = ShardedMap::new();
            for i in 0..size {
                a.set(i, Some(i));
            }
            a.rebalance();
            assert_eq!(a.len(), size as usize);
            assert!(a.len() <= a.shard_count() * MAX_SHARD_LEN);
            assert!((0..size).step_by(997).all(|i| a.get(&i) == Some(&i)));
            let mut b = a.clone();
            b.set(7, Some(70));
            b.set(size + 1, Some(1));
            b.set(8, None);
            let copied = b.unshared_entries(&a);
            // Three shards at most, each of about MAX_SHARD_LEN entries (hashing is not
            // perfectly even: four times the average is far beyond its spread).
            assert!(
                copied <= 3 * 4 * MAX_SHARD_LEN,
                "{copied} entries copied at {size}"
            );
            assert_eq!((a.get(&7), b.get(&7)), (Some(&7), Some(&70)));
            assert_eq!(b.get(&8), None);
        }
    }

    #[test]
    fn set_copies_a_shared_shard_once() {
        let mut a: ShardedMap<u32, u32> = ShardedMap::new();
        a.update((0..1000).map(|i| (i, Some(i))));
        let mut b = a.clone();
        b.set(7, Some(70));
        b.set(8, None);
        b.set(5000, Some(1));
        assert_eq!((a.get(&7), b.get(&7)), (Some(&7), Some(&70)));
        assert_eq!((a.get(&8), b.get(&8)), (Some(&8), None));
        assert_eq!((a.len(), b.len()), (1000, 1000));
        let shared = a
            .shards
            .iter()
            .zip(b.shards.iter())
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert!(
            shared >= a.shard_count() - 3,
            "only touched shards are copied: {shared}"
        );
    }
}

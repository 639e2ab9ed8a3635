//! A copy-on-write map split into shards, so that a snapshot update copies one shard, not the zone.
//!
//! Cloning the map clones one `Arc`; changing a key clones the shard that holds it (about
//! `len / SHARDS` entries, each an `Arc` or a small key) and leaves every other shard shared
//! with older snapshots that readers may still hold.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::FixedState;

type Shard<K, V> = std::collections::HashMap<K, V, FixedState>;

/// Number of shards: at 100k Services a shard holds about 400 entries.
const SHARDS: usize = 256;

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

fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    // A fixed seed keeps shard placement stable across snapshots; within a shard the
    // HashMap uses the same hasher, so spread comes from the high bits here.
    (FixedState::with_seed(0x5eed).hash_one(key) >> 56) as usize % SHARDS
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        let shards: Vec<_> = (0..SHARDS)
            .map(|_| Arc::new(Shard::with_hasher(FixedState::default())))
            .collect();
        Self {
            shards: shards.into(),
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

    /// Looks a key up; never allocates.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key)].get(key)
    }

    /// Applies inserts (`Some`) and removals (`None`), copying only the shards they touch.
    pub fn update(&mut self, changes: impl IntoIterator<Item = (K, Option<V>)>) {
        let mut shards: Vec<Arc<Shard<K, V>>> = self.shards.iter().cloned().collect();
        for (key, value) in changes {
            let shard = Arc::make_mut(&mut shards[shard_of(&key)]);
            let had = match value {
                Some(v) => shard.insert(key, v).is_some(),
                None => {
                    let had = shard.remove(&key).is_some();
                    self.len -= usize::from(had);
                    continue;
                }
            };
            self.len += usize::from(!had);
        }
        self.shards = shards.into();
    }

    /// Inserts (`Some`) or removes (`None`) one key, copying its shard only if an older
    /// snapshot still shares it (so many calls in a row copy each shard at most once).
    pub fn set(&mut self, key: K, value: Option<V>) {
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[shard_of(&key)]);
        let had = match value {
            Some(v) => shard.insert(key, v).is_some(),
            None => {
                let had = shard.remove(&key).is_some();
                self.len -= usize::from(had);
                return;
            }
        };
        self.len += usize::from(!had);
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
            shared >= SHARDS - 3,
            "only touched shards are copied: {shared}"
        );
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
            shared >= SHARDS - 3,
            "only touched shards are copied: {shared}"
        );
    }
}

//! A copy-on-write map split into shards, so that a snapshot update copies one shard, not the zone.
//!
//! Cloning the map clones one `Arc`; changing a key clones the shard that holds it and leaves
//! every other shard shared with older snapshots that readers may still hold. The number of
//! shards grows with the map (doubling, as a hash table grows) so that a shard holds at most
//! `MAX_SHARD_LEN` entries on average: the copy a change makes stays the same size at 1k
//! entries and at 1M. The shard table itself is two levels, groups of shards: an update
//! copies the table of groups and the group it touches, each about √shards pointers (~128
//! at 1M entries), not one pointer per shard.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::FixedState;
use hashbrown::Equivalent;

type Shard<K, V> = hashbrown::HashMap<K, V, FixedState>;

/// Shards of an empty map.
const MIN_SHARDS: usize = 64;
/// Average entries per shard above which the shard count doubles.
const MAX_SHARD_LEN: usize = 64;

/// A persistent hash map made of independently shared shards, held in groups: the shard
/// table is two levels (about √shards groups of √shards shards), so a change clones one
/// group's table and the table of groups, ~400 pointers at 1M entries rather than every
/// shard's (16k).
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    groups: Arc<[Group<K, V>]>,
    /// The number of shards (a power of two).
    shards: usize,
    /// Shards per group (a power of two).
    per_group: usize,
    len: usize,
}

type Group<K, V> = Arc<[Arc<Shard<K, V>>]>;

impl<K, V> Clone for ShardedMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            groups: Arc::clone(&self.groups),
            shards: self.shards,
            per_group: self.per_group,
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

/// Shards per group for `count` shards: the groups and their size both about √count.
fn per_group(count: usize) -> usize {
    let bits = count.trailing_zeros();
    1 << (bits / 2)
}

/// `shards` (a power of two of them) in groups of `per_group(shards.len())`.
fn grouped<K, V>(shards: Vec<Shard<K, V>>) -> Arc<[Group<K, V>]> {
    let per = per_group(shards.len());
    let mut groups = Vec::with_capacity(shards.len() / per);
    let mut shards = shards.into_iter().map(Arc::new).peekable();
    while shards.peek().is_some() {
        groups.push(shards.by_ref().take(per).collect::<Group<K, V>>());
    }
    groups.into()
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        let shards = (0..MIN_SHARDS)
            .map(|_| Shard::with_hasher(FixedState::default()))
            .collect();
        Self {
            groups: grouped(shards),
            shards: MIN_SHARDS,
            per_group: per_group(MIN_SHARDS),
            len: 0,
        }
    }

    /// Every shard, in order.
    fn shards(&self) -> impl Iterator<Item = &Arc<Shard<K, V>>> {
        self.groups.iter().flat_map(|g| g.iter())
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
        self.shards
    }

    /// Entries in shards this map does not share with `other`: what the updates that made
    /// one from the other copied (every entry, if the shard count differs).
    pub fn unshared_entries(&self, other: &Self) -> usize {
        if self.shards != other.shards {
            return self.len;
        }
        self.groups
            .iter()
            .zip(other.groups.iter())
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .flat_map(|(a, b)| a.iter().zip(b.iter()))
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .map(|(a, _)| a.len())
            .sum()
    }

    /// Looks a key up; never allocates.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (g, j) = self.locate(shard_of(key, self.shards));
        self.groups[g][j].get(key)
    }

    /// Looks a key up, returning the stored key too; never allocates.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (g, j) = self.locate(shard_of(key, self.shards));
        self.groups[g][j].get_key_value(key)
    }

    /// The group of shard `i` and its place in it (shifts: `per_group` is a power of two).
    fn locate(&self, i: usize) -> (usize, usize) {
        (
            i >> self.per_group.trailing_zeros(),
            i & (self.per_group - 1),
        )
    }

    /// Doubles the shard count (more than once if needed) when shards have grown past
    /// `MAX_SHARD_LEN` entries on average. Rebuilds every shard: amortised over the inserts
    /// that grew the map, as a hash table's own growth is. `update` calls it; after a run of
    /// `set`s, call it once (growing once at the end of a large batch, rather than at each
    /// doubling on the way, leaves the allocator fewer freed tables to hold on to).
    pub fn rebalance(&mut self) {
        let mut count = self.shards;
        while self.len > count * MAX_SHARD_LEN {
            count *= 2;
        }
        if count == self.shards {
            return;
        }
        let mut shards: Vec<Shard<K, V>> = (0..count)
            .map(|_| Shard::with_capacity_and_hasher(self.len / count + 1, FixedState::default()))
            .collect();
        for (k, v) in self.iter() {
            shards[shard_of(k, count)].insert(k.clone(), v.clone());
        }
        self.groups = grouped(shards);
        self.shards = count;
        self.per_group = per_group(count);
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
    /// shard count stays as it is until `rebalance`. Returns the value it replaced.
    pub fn set(&mut self, key: K, value: Option<V>) -> Option<V> {
        let (g, j) = self.locate(shard_of(&key, self.shards));
        let groups = Arc::make_mut(&mut self.groups);
        let group = Arc::make_mut(&mut groups[g]);
        let shard = Arc::make_mut(&mut group[j]);
        match value {
            Some(v) => {
                let old = shard.insert(key, v);
                self.len += usize::from(old.is_none());
                old
            }
            None => {
                let old = shard.remove(&key);
                self.len -= usize::from(old.is_some());
                old
            }
        }
    }

    /// Removes the entry a borrowed form of its key finds, as `set(key, None)` does.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (g, j) = self.locate(shard_of(key, self.shards));
        if !self.groups[g][j].contains_key(key) {
            return None;
        }
        let groups = Arc::make_mut(&mut self.groups);
        let group = Arc::make_mut(&mut groups[g]);
        let old = Arc::make_mut(&mut group[j]).remove_entry(key);
        self.len -= usize::from(old.is_some());
        old
    }

    /// Iterates over every entry, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards().flat_map(|s| s.iter())
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
            .shards()
            .zip(b.shards())
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
            // Three groups' tables copied, each of √shards pointers, besides the table of
            // groups.
            let groups_copied = a
                .groups
                .iter()
                .zip(b.groups.iter())
                .filter(|(x, y)| !Arc::ptr_eq(x, y))
                .count();
            assert!(
                groups_copied <= 3,
                "{groups_copied} groups copied at {size}"
            );
            let (groups, per) = (a.groups.len(), a.per_group);
            assert_eq!(groups * per, a.shard_count());
            assert!(
                per <= groups && groups <= 2 * per,
                "{groups} groups of {per}"
            );
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
            .shards()
            .zip(b.shards())
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert!(
            shared >= a.shard_count() - 3,
            "only touched shards are copied: {shared}"
        );
    }
}

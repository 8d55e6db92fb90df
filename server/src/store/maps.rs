//! The store's hash maps: foldhash instead of SipHash, and for the maps that grow with
//! the log, shards that grow one at a time.
//!
//! foldhash: recovery inserts every event id of the log into the index, and SipHash
//! was a tenth of a 10M-event recovery. It is seeded per process and per map, so keys
//! a client picks cannot be aimed at one bucket (or one shard).
//!
//! Shards: the index holds an entry per event id and per stream of the whole log. As one
//! table, each doubling moved every entry into fresh memory while the writer waited:
//! 240 ms at 4M event ids, in the middle of a benchmark run, and it grows with the log.
//! In 64 shards, a doubling moves a 64th of them. The total work is the same.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

type Hasher = foldhash::fast::RandomState;

/// A map with the store's hasher.
pub type FastMap<K, V> = HashMap<K, V, Hasher>;

/// Shards per map: a power of two.
const SHARDS: usize = 64;

/// A map of `K` to `V` split by a hash of the key into [`SHARDS`] tables.
#[derive(Debug, Clone)]
pub struct ShardedMap<K, V> {
    shards: Box<[FastMap<K, V>]>,
    /// Picks the shard. Its own seed: the shards' tables use the top bits of their
    /// hash too, which within one shard must not all be alike.
    by_shard: Hasher,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| FastMap::default()).collect(),
            by_shard: Hasher::default(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard(&self, key: &K) -> usize {
        (self.by_shard.hash_one(key) >> (u64::BITS - SHARDS.trailing_zeros())) as usize
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let shard = self.shard(key);
        self.shards[shard].get_mut(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard(&key);
        self.shards[shard].insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let shard = self.shard(key);
        self.shards[shard].remove(key)
    }

    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let shard = self.shard(&key);
        self.shards[shard].entry(key)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_one_map_holds_and_spreads_it() {
        let mut sharded = ShardedMap::default();
        let mut one = HashMap::new();
        for i in 0..20_000u64 {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 5_000;
            assert_eq!(sharded.insert(key, i), one.insert(key, i));
            if i % 3 == 0 {
                *sharded.entry(key + 10_000).or_insert(0) += 1;
                *one.entry(key + 10_000).or_insert(0) += 1;
            }
        }
        assert_eq!(sharded.len(), one.len());
        for (key, value) in &one {
            assert_eq!(sharded.get(key), Some(value));
        }
        assert_eq!(sharded.get(&u64::MAX), None);
        // Every shard has a share: the shard hash is not stuck on a few values.
        let smallest = sharded.shards.iter().map(HashMap::len).min();
        assert!(
            smallest.is_some_and(|n| n > one.len() / SHARDS / 2),
            "{smallest:?}"
        );
    }
}

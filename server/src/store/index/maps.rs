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
//! In 256 shards, a doubling moves a 256th of them. The total work is the same.
//!
//! Staggered growth: a hash spreads keys evenly, so the shards fill at one pace, and
//! left to themselves they all doubled within a few thousand appends of each other: the
//! same stall as one table, in pieces back to back (0.3 s of the writer at 7M event
//! ids, in batches of 1,000, with 64 shards). So shard `i` doubles early, when it is
//! full to `1 - i / (4 * SHARDS)` of its capacity: the doublings of one round fall
//! across the last quarter of the growth before it, each alone. It costs memory: on
//! average the tables run about an eighth emptier.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

type Hasher = foldhash::fast::RandomState;

/// A map with the store's hasher.
pub type FastMap<K, V> = HashMap<K, V, Hasher>;

/// Shards per map: a power of two. The writer's longest stall for growth is one
/// shard's doubling, a 256th of the map's: at 7M event ids, about 1 ms of the 0.3 s
/// that all of them take.
const SHARDS: usize = 256;

/// A map of `K` to `V` split by a hash of the key into [`SHARDS`] tables.
#[derive(Debug, Clone)]
pub struct ShardedMap<K, V> {
    shards: Box<[FastMap<K, V>]>,
    /// Picks the shard, from the top bits of its hash. Its own seed: the shards' tables
    /// use the top bits of their hash too, which within one shard must not all be
    /// alike. foldhash's `quality` variant, one multiply more than `fast`: with some
    /// seeds (they come from stack addresses) `fast`'s top bits spread a run of
    /// integer keys unevenly, a shard at half the mean or less.
    by_shard: foldhash::quality::RandomState,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| FastMap::default()).collect(),
            by_shard: foldhash::quality::RandomState::default(),
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
        self.grow_in_turn(shard);
        self.shards[shard].insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let shard = self.shard(key);
        self.shards[shard].remove(key)
    }

    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let shard = self.shard(&key);
        self.grow_in_turn(shard);
        self.shards[shard].entry(key)
    }

    /// Doubles shard `shard` once it is full to its own line, `1 - shard / (4 *
    /// SHARDS)` of its capacity, so that the shards do not all double at once.
    fn grow_in_turn(&mut self, shard: usize) {
        let table = &mut self.shards[shard];
        let capacity = table.capacity();
        let line = capacity - capacity * shard / (4 * SHARDS);
        if table.len() >= line {
            // One more than it holds: the table takes the next size up.
            table.reserve(capacity - table.len() + 1);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    /// Calls `f` on up to `budget` entries from where `at` says a sweep over every
    /// entry got to, removing those it returns false for, and moves `at` on; `at` is
    /// None once the sweep is done. A shard that grows between two calls may be walked
    /// in another order: the sweep may then miss a few entries or see some twice. A
    /// shard the sweep leaves under a quarter full gives its memory back.
    pub fn sweep(
        &mut self,
        at: &mut Option<SweepAt>,
        budget: usize,
        mut f: impl FnMut(&K, &mut V) -> bool,
    ) where
        K: Clone,
    {
        let mut left = budget;
        while let Some(place) = at.as_mut() {
            if left == 0 {
                return;
            }
            let shard = &mut self.shards[place.shard];
            let (mut seen, mut gone) = (0, Vec::new());
            for (key, value) in shard.iter_mut().skip(place.skip).take(left) {
                if !f(key, value) {
                    gone.push(key.clone());
                }
                seen += 1;
            }
            // Removing moves no other entry: the walk goes on past those kept.
            for key in &gone {
                shard.remove(key);
            }
            left -= seen;
            place.skip += seen - gone.len();
            if place.skip >= shard.len() {
                if shard.len() < shard.capacity() / 4 {
                    shard.shrink_to_fit();
                }
                *at = (place.shard + 1 < SHARDS).then_some(SweepAt {
                    shard: place.shard + 1,
                    skip: 0,
                });
            }
        }
    }
}

/// Where a sweep over a [`ShardedMap`]'s values got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepAt {
    shard: usize,
    skip: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_one_map_holds_and_spreads_it() {
        let mut sharded = ShardedMap::default();
        let mut one = HashMap::new();
        // About 100k keys, some inserted again: a few hundred per shard, so that the
        // emptiest being under half the mean would say the spread is broken.
        for i in 0..200_000u64 {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 50_000;
            assert_eq!(sharded.insert(key, i), one.insert(key, i));
            if i % 3 == 0 {
                *sharded.entry(key + 100_000).or_insert(0) += 1;
                *one.entry(key + 100_000).or_insert(0) += 1;
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

    #[test]
    fn a_sweep_in_small_steps_sees_every_value_once() {
        let mut map = ShardedMap::default();
        for key in 0..10_000u64 {
            map.insert(key, 0u32);
        }
        let mut at = Some(SweepAt::default());
        let mut steps = 0;
        while at.is_some() {
            map.sweep(&mut at, 7, |_, seen| {
                *seen += 1;
                true
            });
            steps += 1;
        }
        assert!(map.iter().all(|(_, seen)| *seen == 1));
        assert!(steps >= 10_000 / 7, "{steps}");
    }

    #[test]
    fn a_sweep_that_removes_still_sees_every_value_once_and_gives_memory_back() {
        let mut map = ShardedMap::default();
        for key in 0..10_000u64 {
            map.insert(key, 0u32);
        }
        let capacity: usize = map.shards.iter().map(HashMap::capacity).sum();
        let mut at = Some(SweepAt::default());
        let mut seen = 0;
        while at.is_some() {
            map.sweep(&mut at, 7, |key, value| {
                *value += 1;
                seen += 1;
                key % 10 == 0
            });
        }
        assert_eq!(seen, 10_000);
        assert_eq!(map.len(), 1_000);
        assert!(map.iter().all(|(key, value)| key % 10 == 0 && *value == 1));
        let left: usize = map.shards.iter().map(HashMap::capacity).sum();
        assert!(left < capacity / 4, "{left} of {capacity}");
    }

    #[test]
    fn shards_double_in_turn_not_all_at_once() {
        let mut map = ShardedMap::default();
        // For each shard, the capacity it left and the map's size when it doubled.
        let mut doublings: Vec<Vec<(usize, usize)>> = vec![Vec::new(); SHARDS];
        for key in 0..1_000_000u64 {
            let shard = map.shard(&key);
            let before = map.shards[shard].capacity();
            map.insert(key, ());
            if map.shards[shard].capacity() != before {
                doublings[shard].push((before, key as usize + 1));
            }
        }
        // The last capacity every shard grew out of, and when each did.
        let last_round = doublings
            .iter()
            .map(|shard| shard.last().map_or(0, |&(capacity, _)| capacity))
            .min()
            .unwrap_or(0);
        assert!(last_round > 2_000, "{last_round}");
        let when: Vec<usize> = doublings
            .iter()
            .map(|shard| shard.iter().find(|(capacity, _)| *capacity == last_round))
            .map(|found| found.map_or(0, |&(_, size)| size))
            .collect();
        // The last quarter of the shards (lines at 75-81 % of capacity) have all doubled
        // before any of the first (94-100 %): a hash alone would mix them.
        let late_lines_first = when[SHARDS * 3 / 4..].iter().max();
        let early_lines_last = when[..SHARDS / 4].iter().min();
        assert!(
            late_lines_first < early_lines_last,
            "{late_lines_first:?} {early_lines_last:?} {when:?}"
        );
    }
}

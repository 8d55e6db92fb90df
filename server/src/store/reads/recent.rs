//! The newest records, in log order, in front of the record cache: what live tails and
//! subscribers read, kept without going through moka.
//!
//! Why not the cache: when the writer offered every committed record to moka, a cache
//! that grew large (hundreds of thousands of entries, filled and evicted beside the
//! writer on the same core) widened the tail of appends: 32 single-event writers on one
//! connection went from p99 / p50 of 1.8 (cache of 0 or 1 MiB) to 5.9 (256 MiB) at the
//! same rate (BENCHMARKS.md, "The tail on one shared connection"). Here the writer pushes
//! each group's records at the end and drops the oldest past a byte bound, reusing the
//! same memory over and over; moka holds only what reads fetched from disk.

use crate::store::index::RecordLoc;
use crate::store::log::record::Record;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The newest records, up to a byte bound the caller gives, by their location.
#[derive(Debug, Default)]
pub struct Recent {
    ring: RwLock<Ring>,
    /// What `ring.bytes` is, for a check without the lock.
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Ring {
    /// In log order: (segment, offset) only grows along it.
    records: VecDeque<(RecordLoc, Arc<Record>, u32)>,
    bytes: u64,
}

impl Recent {
    /// Adds a committed group's records, in log order, with their weight; lets the
    /// oldest go past `bound` bytes.
    pub fn push(&self, records: impl Iterator<Item = (RecordLoc, Arc<Record>, u32)>, bound: u64) {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        for (loc, record, weight) in records {
            ring.bytes += u64::from(weight);
            ring.records.push_back((loc, record, weight));
        }
        self.let_go_past(ring, bound);
    }

    /// Lets the oldest records go until they weigh `bound` bytes at most.
    pub fn trim(&self, bound: u64) {
        if self.bytes.load(Ordering::Relaxed) > bound {
            self.let_go_past(self.ring.write().unwrap_or_else(|e| e.into_inner()), bound);
        }
    }

    fn let_go_past(&self, mut ring: std::sync::RwLockWriteGuard<'_, Ring>, bound: u64) {
        let mut gone = Vec::new();
        while ring.bytes > bound {
            let Some(oldest) = ring.records.pop_front() else {
                break;
            };
            ring.bytes -= u64::from(oldest.2);
            gone.push(oldest.1);
        }
        self.bytes.store(ring.bytes, Ordering::Relaxed);
        drop(ring);
        // Freed after the lock, where readers need not wait for it, and on a push
        // before the group is answered: freed after the answers, they took the core
        // from the tasks sending them (2-4 % fewer appends at 32 writers, BENCHMARKS.md).
        drop(gone);
    }

    /// The record at `loc` if it is among the newest.
    pub fn get(&self, loc: RecordLoc) -> Option<Arc<Record>> {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        let key = |l: &RecordLoc| (l.segment, l.offset);
        let place = ring.records.partition_point(|(l, _, _)| key(l) < key(&loc));
        ring.records
            .get(place)
            .filter(|(l, _, _)| *l == loc)
            .map(|(_, record, _)| record.clone())
    }

    /// Drops the records at `locs`: a scavenge moved or reclaimed them.
    pub fn forget(&self, locs: &[RecordLoc]) {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        if ring.records.is_empty() {
            return;
        }
        // A scavenge forgets whole segments' records: a set, not a scan per record.
        let locs: std::collections::HashSet<&RecordLoc> = locs.iter().collect();
        let before = ring.records.len();
        ring.records.retain(|(l, _, _)| !locs.contains(l));
        if ring.records.len() != before {
            ring.bytes = ring.records.iter().map(|r| u64::from(r.2)).sum();
            self.bytes.store(ring.bytes, Ordering::Relaxed);
        }
    }

    /// Records held, and their weight.
    pub fn figures(&self) -> (u64, u64) {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        (ring.records.len() as u64, ring.bytes)
    }
}

/// A record without events at position `n`, for the tests of the newest records and of
/// the reader.
#[cfg(test)]
pub fn test_record(n: u64) -> Arc<Record> {
    Arc::new(Record {
        first_position: n,
        first_version: 0,
        created_micros: 0,
        stream: crate::store::types::StreamId {
            key: uuid::Uuid::from_u128(u128::from(n)),
            stream_type: "test".into(),
        },
        events: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::test_record as record;
    use super::*;

    fn loc(segment: u32, offset: u64) -> RecordLoc {
        RecordLoc {
            segment,
            len: 100,
            offset,
        }
    }

    #[test]
    fn keeps_the_newest_within_its_bound_and_finds_them_by_location() {
        let recent = Recent::default();
        // Ten records of 150 across a segment boundary: the last six fit in 1,000.
        let all: Vec<_> = (0..10u64)
            .map(|n| (loc(1 + u32::from(n >= 5), (n % 5) * 100), record(n)))
            .collect();
        for pair in all.chunks(2) {
            recent.push(pair.iter().map(|(l, r)| (*l, r.clone(), 150)), 1_000);
        }
        assert_eq!(recent.figures(), (6, 900));
        for (n, (l, _)) in all.iter().enumerate() {
            let found = recent.get(*l).map(|r| r.first_position);
            assert_eq!(found, (n >= 4).then_some(n as u64), "record {n}");
        }
        // Same segment and offset, another length: not the record there.
        assert!(recent.get(RecordLoc { len: 7, ..all[9].0 }).is_none());
        assert!(recent.get(loc(3, 0)).is_none());

        recent.forget(&[all[6].0, loc(9, 9)]);
        assert!(recent.get(all[6].0).is_none());
        assert!(recent.get(all[7].0).is_some());
        assert_eq!(recent.figures(), (5, 750));

        // A smaller bound lets the oldest go at once.
        recent.trim(300);
        assert_eq!(recent.figures(), (2, 300));
        assert!(recent.get(all[7].0).is_none());
        assert!(recent.get(all[8].0).is_some());
    }
}

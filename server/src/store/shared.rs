//! What the one writer thread and every reader share: the index, the record reader and
//! its cache, and the signals subscriptions wait on.

use crate::store::index::Index;
use crate::store::index::disk::IndexDb;
use crate::store::reads::reader::LogReader;
use crate::store::stats::StoreStats;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use tokio::sync::watch;

/// What the writer and the readers share.
#[derive(Debug)]
pub struct Shared {
    pub index: RwLock<Index>,
    pub reader: LogReader,
    /// The log's next position, sent by the writer after each commit is in the index:
    /// what subscriptions wait on.
    pub committed: watch::Sender<u64>,
    /// Set when the store begins to shut down: subscriptions end.
    pub closing: watch::Sender<bool>,
    /// Why the writer refuses every write until a restart, once it does.
    pub refusing: watch::Sender<Option<String>>,
    /// What the store counts as it works, for metrics.
    pub stats: StoreStats,
    /// Where the log's committed records end: what a backup copies.
    pub committed_end: Mutex<CommittedEnd>,
    /// Set while a scavenge runs: one at a time.
    pub scavenging: std::sync::atomic::AtomicBool,
    /// With an index on disk: what a scavenge tells it of the segments it rewrites.
    pub index_rewrites: Option<crate::store::index::ingest::Rewrites>,
    /// With an index on disk: where readers find the records the index in memory let
    /// go of. Weak, so that it closes when the store stops.
    pub index_db: Option<Weak<IndexDb>>,
}

/// The end of the last group made durable and visible, with the position after it: the
/// log up to there is a consistent copy of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedEnd {
    /// The position the next event gets.
    pub position: u64,
    /// The segment the last group is in.
    pub segment: u32,
    /// Where its records end in that segment.
    pub offset: u64,
}

impl Shared {
    /// The index on disk while the store runs, if it has one.
    pub fn index_db(&self) -> Option<Arc<IndexDb>> {
        self.index_db.as_ref()?.upgrade()
    }

    pub fn committed_end(&self) -> CommittedEnd {
        *self
            .committed_end
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_committed_end(&self, end: CommittedEnd) {
        *self
            .committed_end
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = end;
    }
}

/// The index, for reading. A panic while the lock was held cannot leave the index
/// half-updated: the writer applies each record with plain pushes and inserts after the
/// record is durable.
pub fn read_index(shared: &Shared) -> RwLockReadGuard<'_, Index> {
    match shared.index.read() {
        Ok(index) => index,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The index, for the writer to apply a durable group to (see [`read_index`]).
pub fn write_index(shared: &Shared) -> RwLockWriteGuard<'_, Index> {
    match shared.index.write() {
        Ok(index) => index,
        Err(poisoned) => poisoned.into_inner(),
    }
}

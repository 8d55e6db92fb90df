//! What the one writer thread and every reader share: the index, the record reader and
//! its cache, and the signals subscriptions wait on.

use crate::store::index::Index;
use crate::store::reads::reader::LogReader;
use crate::store::stats::StoreStats;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
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

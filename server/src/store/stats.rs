//! What the store counts as it works, for the metrics endpoint: plain atomics and
//! histograms updated where the work happens, read only when metrics are scraped.
//! Nothing here is on the path of a decision.

use crate::store::reads::read::Scope;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The store's running figures.
#[derive(Debug)]
pub struct StoreStats {
    /// Bytes of the segments before the active one.
    pub sealed_bytes: AtomicU64,
    /// Where the next record goes in the active segment: its bytes in use.
    pub active_len: AtomicU64,
    /// Segment files.
    pub segments: AtomicU64,
    /// Event ids the writer holds in memory, about: the events after where the ids on
    /// disk end (every event, without an index on disk).
    pub event_ids_in_memory: AtomicU64,
    /// Appends and deletes written per group commit: how much one fdatasync carries.
    pub group_commit_writes: Histogram,
    /// Each fdatasync of the log, in seconds.
    pub fdatasync_seconds: Histogram,
    /// Where each open subscription has read to.
    pub subscriptions: SubscriptionProgress,
}

impl StoreStats {
    pub fn new(sealed_bytes: u64, active_len: u64, segments: u64) -> Self {
        StoreStats {
            sealed_bytes: AtomicU64::new(sealed_bytes),
            active_len: AtomicU64::new(active_len),
            segments: AtomicU64::new(segments),
            event_ids_in_memory: AtomicU64::new(0),
            // 1, 2, 4, ... 16384 writes.
            group_commit_writes: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            // 50 µs to about 1.6 s: a page-cache sync to a drive that is failing.
            fdatasync_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            subscriptions: SubscriptionProgress::default(),
        }
    }

    /// Runs `sync` (an fdatasync) and records how long it took.
    pub fn timed_sync<T>(&self, sync: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let synced = sync();
        self.fdatasync_seconds
            .observe(started.elapsed().as_secs_f64());
        synced
    }

    /// Bytes of records in the log: every segment in use.
    pub fn log_bytes(&self) -> u64 {
        self.sealed_bytes.load(Ordering::Relaxed) + self.active_len.load(Ordering::Relaxed)
    }
}

/// The open subscriptions and the next version or position each will read.
#[derive(Debug, Default)]
pub struct SubscriptionProgress {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, (Scope, Arc<AtomicU64>)>>,
}

/// One subscription's place in [`SubscriptionProgress`], removed when dropped.
#[derive(Debug)]
pub struct Progress {
    id: u64,
    next: Arc<AtomicU64>,
    stats: Arc<super::shared::Shared>,
}

impl Progress {
    /// Enters a subscription of `scope` that reads `next` first.
    pub fn enter(shared: Arc<super::shared::Shared>, scope: Scope, next: u64) -> Self {
        let progress = &shared.stats.subscriptions;
        let id = progress.next_id.fetch_add(1, Ordering::Relaxed);
        let next = Arc::new(AtomicU64::new(next));
        progress.lock().insert(id, (scope, next.clone()));
        Progress {
            id,
            next,
            stats: shared,
        }
    }

    /// The subscription will read `next` next.
    pub fn set(&self, next: u64) {
        self.next.store(next, Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stats.stats.subscriptions.lock().remove(&self.id);
    }
}

impl SubscriptionProgress {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Scope, Arc<AtomicU64>)>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each open subscription's scope and next version or position, as now.
    pub fn snapshot(&self) -> Vec<(Scope, u64)> {
        self.lock()
            .values()
            .map(|(scope, next)| (scope.clone(), next.load(Ordering::Relaxed)))
            .collect()
    }
}

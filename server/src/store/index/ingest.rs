//! The ingester: a thread that puts each sealed segment's event ids into the index on
//! disk, in segment order, and moves the checkpoint after each, off the writer's
//! thread. The writer keeps a segment's ids in memory until `ingested_through` says
//! they are on disk.
//!
//! It runs at nice 19 (`priority.rs`), on the CPU that appends and reads leave over.
//! How far behind it may fall is bounded: once more than [`MAX_BACKLOG`] segments the
//! writer sealed wait for it, the writer waits before it seals another, so appends
//! wait for the index rather than its memory growing without bound. Segments a start
//! hands it (all of them when the index is rebuilt) do not count, and neither do, up
//! to as many, those the writer seals while the start's still wait: they queue behind
//! them, and counting them made appends wait for the rest of a rebuild (0.8 s at 1M
//! events, minutes at 100M). Memory then stays within twice what the start handed
//! over, and the bound.
//!
//! A scavenge that rewrites a sealed segment tells it too ([`Rewrites`]): it puts the
//! segment's new file into the index in its turn, after any ingestion queued before,
//! and then tells the writer ([`Ingester::take_reingested`]), which lets go of the
//! records the rewrite put back in memory.
//!
//! If an ingestion fails, the ingester stops: the ids it was given stay in the
//! writer's memory, as they did before there was an index on disk, and the next start
//! replays the log past the last checkpoint.

use super::disk::{Checkpoint, IdMap, IndexDb, Rewritten};
use super::priority;
use crate::store::error::StoreError;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Sealed segments the ingester may have yet to put on disk before the writer waits.
pub const MAX_BACKLOG: usize = 4;

/// What the ingester is asked to do, in order.
enum Work {
    /// A sealed segment's ids, and whether it counts in the writer's backlog (rather
    /// than in the catching up after a start).
    Sealed(Checkpoint, Arc<IdMap>, bool),
    /// A segment a scavenge rewrote.
    Rewritten(Rewritten),
    /// The store stops: what was queued before is done, the thread ends.
    Finish,
}

/// No segment ingested yet (by this ingester).
const NONE: u64 = u64::MAX;

/// The writer's handle on the ingester thread.
#[derive(Debug)]
pub struct Ingester {
    db: Arc<IndexDb>,
    sender: Option<mpsc::Sender<Work>>,
    /// The last segment whose ids are on disk, or [`NONE`].
    through: Arc<AtomicU64>,
    /// Segments the writer sealed whose ids are not on disk yet.
    backlog: Arc<AtomicUsize>,
    /// Segments a start handed over, and the writer's sealed behind them, that are
    /// not on disk yet.
    catching_up: Arc<AtomicUsize>,
    /// How many more of the writer's segments may count with those: one per segment a
    /// start handed over. The writer's thread alone changes it.
    may_join: AtomicUsize,
    /// Set when the thread has stopped: nothing more goes on disk.
    stopped: Arc<AtomicBool>,
    /// Rewritten segments sent and not yet done with.
    rewrites_in_flight: Arc<AtomicUsize>,
    /// The rewritten segments put in again, each with the id of the file whose records
    /// the index on disk now holds, until the writer takes them.
    reingested: Arc<Mutex<Vec<(u32, u32)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ingester {
    /// Starts the thread; the index already holds every segment up to `through`.
    pub fn start(db: Arc<IndexDb>, through: Option<u32>) -> std::io::Result<Ingester> {
        let (sender, work) = mpsc::channel::<Work>();
        let through = Arc::new(AtomicU64::new(through.map_or(NONE, u64::from)));
        let backlog = Arc::new(AtomicUsize::new(0));
        let catching_up = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let rewrites_in_flight = Arc::new(AtomicUsize::new(0));
        let reingested = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (db, through) = (db.clone(), through.clone());
            let (backlog, stopped) = (backlog.clone(), stopped.clone());
            let catching_up = catching_up.clone();
            let (in_flight, reingested) = (rewrites_in_flight.clone(), reingested.clone());
            std::thread::Builder::new()
                .name("evenire-ingest".into())
                .spawn(move || {
                    // However it ends, the writer must not wait for it any more.
                    let _stopped = SetOnDrop(stopped);
                    priority::lower_to_nice_19();
                    let started = std::time::Instant::now();
                    let how = match db.ready_filter() {
                        Ok(how) => how,
                        Err(e) => {
                            tracing::error!(
                                error = %e,
                                "reading the event ids on disk failed: each new id is looked \
                                 up on disk, and sealed segments' ids stay in memory"
                            );
                            return;
                        }
                    };
                    tracing::info!(
                        how,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        filter_bytes = db.filter_bytes(),
                        "the filter in front of the event ids on disk is ready"
                    );
                    for work in work {
                        let done = match work {
                            Work::Sealed(checkpoint, ids, in_backlog) => {
                                let done = ingest(&db, checkpoint, &ids);
                                if done.is_ok() {
                                    through.store(u64::from(checkpoint.segment), Ordering::Release);
                                    match in_backlog {
                                        true => backlog.fetch_sub(1, Ordering::Release),
                                        false => catching_up.fetch_sub(1, Ordering::Release),
                                    };
                                }
                                done
                            }
                            Work::Rewritten(rewritten) => {
                                let done = reingest(&db, &rewritten);
                                if let (Ok(true), Some(file)) = (&done, rewritten.file) {
                                    lock(&reingested).push((rewritten.segment, file));
                                }
                                in_flight.fetch_sub(1, Ordering::Release);
                                done.map(|_| ())
                            }
                            Work::Finish => return,
                        };
                        if done.is_err() {
                            return;
                        }
                    }
                })?
        };
        Ok(Ingester {
            db,
            sender: Some(sender),
            through,
            backlog,
            catching_up,
            may_join: AtomicUsize::new(0),
            stopped,
            rewrites_in_flight,
            reingested,
            thread: Some(thread),
        })
    }

    /// Queues the ids of a sealed segment; `sealed_by_writer` unless a start hands it
    /// over.
    pub fn ingest(&self, checkpoint: Checkpoint, ids: Arc<IdMap>, sealed_by_writer: bool) {
        if let Some(sender) = &self.sender {
            let in_backlog = sealed_by_writer && !self.joins_catching_up();
            match in_backlog {
                true => self.backlog.fetch_add(1, Ordering::Release),
                false => self.catching_up.fetch_add(1, Ordering::Release),
            };
            if !sealed_by_writer {
                self.may_join.fetch_add(1, Ordering::Release);
            }
            // A stopped ingester drops them: they stay in the writer's memory.
            let _ = sender.send(Work::Sealed(checkpoint, ids, in_backlog));
        }
    }

    /// Waits while more than [`MAX_BACKLOG`] segments the writer sealed count in its
    /// backlog and are not on disk, unless the ingester has stopped.
    pub fn wait_for_backlog(&self) {
        while self.must_wait() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn must_wait(&self) -> bool {
        self.backlog.load(Ordering::Acquire) > MAX_BACKLOG && !self.stopped.load(Ordering::Acquire)
    }

    /// Whether a segment the writer seals now counts with a start's still waiting
    /// (taking one of the places they leave), not in its backlog.
    fn joins_catching_up(&self) -> bool {
        self.catching_up.load(Ordering::Acquire) > 0
            && self
                .may_join
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
    }

    /// The last segment whose ids are on disk.
    pub fn ingested_through(&self) -> Option<u32> {
        match self.through.load(Ordering::Acquire) {
            NONE => None,
            segment => u32::try_from(segment).ok(),
        }
    }

    pub fn db(&self) -> &IndexDb {
        &self.db
    }

    /// The index on disk, for readers: weak, so that it closes when the store stops.
    pub fn db_weak(&self) -> std::sync::Weak<IndexDb> {
        Arc::downgrade(&self.db)
    }

    /// What a scavenge tells of the segments it rewrites.
    pub fn rewrites(&self) -> Option<Rewrites> {
        let sender = self.sender.clone()?;
        Some(Rewrites {
            db: Arc::downgrade(&self.db),
            sender,
            in_flight: self.rewrites_in_flight.clone(),
        })
    }

    /// The rewritten segments the index on disk holds as they are now, each with the
    /// id of its file then, since the last call.
    pub fn take_reingested(&self) -> Vec<(u32, u32)> {
        std::mem::take(&mut *lock(&self.reingested))
    }

    /// Whether [`Ingester::take_reingested`] has, or may soon have, something.
    pub fn reingesting(&self) -> bool {
        let in_flight = self.rewrites_in_flight.load(Ordering::Acquire) > 0
            && !self.stopped.load(Ordering::Acquire);
        in_flight || !lock(&self.reingested).is_empty()
    }

    /// Waits for every queued segment to be ingested, then saves the filter for the
    /// next start.
    pub fn finish(mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Work::Finish);
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the ingester thread panicked");
            return;
        }
        if let Err(e) = self.db.save_filter() {
            tracing::warn!(error = %e, "saving the filter in front of the event ids failed");
        }
    }
}

impl Drop for Ingester {
    /// Ends the thread after what was queued, even though [`Rewrites`] keep the channel
    /// open.
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Work::Finish);
        }
    }
}

/// Puts a sealed segment into the index; says why not in the log.
fn ingest(db: &IndexDb, checkpoint: Checkpoint, ids: &IdMap) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    db.ingest_segment(ids, checkpoint).inspect_err(|e| {
        tracing::error!(
            segment = checkpoint.segment,
            error = %e,
            "indexing a sealed segment failed: its event ids stay in memory until a restart"
        );
    })?;
    tracing::debug!(
        segment = checkpoint.segment,
        ids = ids.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "indexed a sealed segment's event ids"
    );
    Ok(())
}

/// Puts a segment a scavenge rewrote into the index as its file is now, if the index
/// holds it, and says whether it did; says why not in the log. The note of its rewrite
/// stays then, and the next start rebuilds the index.
fn reingest(db: &IndexDb, rewritten: &Rewritten) -> Result<bool, StoreError> {
    let started = std::time::Instant::now();
    let indexed = db.reingest_segment(rewritten).inspect_err(|e| {
        tracing::error!(
            segment = rewritten.segment,
            error = %e,
            "indexing a rewritten segment failed: the next start rebuilds the index"
        );
    })?;
    tracing::debug!(
        segment = rewritten.segment,
        streams = rewritten.streams.len(),
        indexed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "indexed a segment a scavenge rewrote"
    );
    Ok(indexed)
}

/// A scavenge's side of the ingester: before a sealed segment's file changes, a durable
/// note in the index that it is about to ([`IndexDb::note_rewrite`]), which a start
/// finds if the change did not reach the index and then rebuilds it; after, the
/// segment's new file for the ingester to put in, which takes the note away.
///
/// It does not keep the index open: that closes when the store stops, as it would
/// without a scavenge.
#[derive(Debug, Clone)]
pub struct Rewrites {
    db: std::sync::Weak<IndexDb>,
    sender: mpsc::Sender<Work>,
    in_flight: Arc<AtomicUsize>,
}

impl Rewrites {
    /// Before segment `seq`'s file changes; an error once the index is closed.
    pub fn before(&self, seq: u32) -> Result<(), StoreError> {
        match self.db.upgrade() {
            Some(db) => db.note_rewrite(seq),
            None => Err(StoreError::ShuttingDown),
        }
    }

    /// After it changed, or was left as it was.
    pub fn after(&self, rewritten: Rewritten) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        // A stopped ingester drops it: the note stays, the next start rebuilds.
        if self.sender.send(Work::Rewritten(rewritten)).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A list the ingester and the writer share; a panic while it was held leaves it whole.
fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets its flag when dropped: when the ingester's thread ends, by a return or a panic.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::disk::{INDEX_DIR, write_empty_segment};
    use uuid::Uuid;

    /// A thousand ids of segment `segment`, whose file in `log_dir` holds no records.
    fn segment_ids(log_dir: &std::path::Path, segment: u32) -> (Checkpoint, Arc<IdMap>) {
        write_empty_segment(log_dir, segment);
        let mut ids = IdMap::default();
        for i in 0..1_000 {
            ids.insert(Uuid::new_v4(), u64::from(segment) * 1_000 + i);
        }
        let end_position = (u64::from(segment) + 1) * 1_000;
        (
            Checkpoint {
                segment,
                end_position,
            },
            Arc::new(ids),
        )
    }

    #[test]
    fn the_writer_waits_only_for_its_own_segments_past_the_backlog() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let ingester = Ingester::start(Arc::new(db), None).expect("start");
        // Handed over at a start: not counted.
        for segment in 0..10 {
            let (checkpoint, ids) = segment_ids(dir.path(), segment);
            ingester.ingest(checkpoint, ids, false);
        }
        assert_eq!(ingester.backlog.load(Ordering::Acquire), 0);
        for segment in 10..20 {
            let (checkpoint, ids) = segment_ids(dir.path(), segment);
            ingester.ingest(checkpoint, ids, true);
        }
        ingester.wait_for_backlog();
        assert!(ingester.backlog.load(Ordering::Acquire) <= MAX_BACKLOG);
        ingester.finish();
    }

    #[test]
    fn while_a_start_s_segments_wait_as_many_of_the_writer_s_do_not_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let ingester = Ingester::start(Arc::new(db), None).expect("start");
        // As a start that handed over 3 segments leaves it, none of them in yet.
        ingester.catching_up.store(3, Ordering::Release);
        ingester.may_join.store(3, Ordering::Release);
        let joined: Vec<bool> = (0..5).map(|_| ingester.joins_catching_up()).collect();
        assert_eq!(joined, [true, true, true, false, false]);
        // Once the start's are in, the writer's count again.
        ingester.may_join.store(3, Ordering::Release);
        ingester.catching_up.store(0, Ordering::Release);
        assert!(!ingester.joins_catching_up());
        ingester.finish();
    }

    #[test]
    fn a_stopped_ingester_is_not_waited_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let ingester = Arc::new(Ingester::start(Arc::new(db), None).expect("start"));
        ingester.stopped.store(true, Ordering::Release);
        ingester.backlog.store(MAX_BACKLOG + 10, Ordering::Release);
        // Returns at once rather than forever: a hang fails here (the waiting thread is
        // left behind), not at CI's timeout.
        let (done, returned) = mpsc::channel();
        let waiting = ingester.clone();
        std::thread::spawn(move || {
            waiting.wait_for_backlog();
            let _ = done.send(());
        });
        assert!(
            returned.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the writer waited for a stopped ingester"
        );
    }
}

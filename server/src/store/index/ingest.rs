//! The ingester: a thread that puts each sealed segment's event ids into the index on
//! disk, in segment order, and moves the checkpoint after each, off the writer's
//! thread. The writer keeps a segment's ids in memory until `ingested_through` says
//! they are on disk.
//!
//! It runs at nice 19 (`priority.rs`), on the CPU that appends and reads leave over.
//! How far behind it may fall is bounded: once more than [`MAX_BACKLOG`] segments the
//! writer sealed wait for it, the writer waits before it seals another, so appends
//! wait for the index rather than its memory growing without bound. (Segments a start
//! hands it, all of them when the index is rebuilt, do not count: appends do not wait
//! for a rebuild.)
//!
//! If an ingestion fails, the ingester stops: the ids it was given stay in the
//! writer's memory, as they did before there was an index on disk, and the next start
//! replays the log past the last checkpoint.

use super::disk::{Checkpoint, IdMap, IndexDb};
use super::priority;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Sealed segments the ingester may have yet to put on disk before the writer waits.
pub const MAX_BACKLOG: usize = 4;

/// A sealed segment's ids, and whether the writer sealed it (rather than a start
/// handing it over).
type Sealed = (Checkpoint, Arc<IdMap>, bool);

/// No segment ingested yet (by this ingester).
const NONE: u64 = u64::MAX;

/// The writer's handle on the ingester thread.
#[derive(Debug)]
pub struct Ingester {
    db: Arc<IndexDb>,
    sender: Option<mpsc::Sender<Sealed>>,
    /// The last segment whose ids are on disk, or [`NONE`].
    through: Arc<AtomicU64>,
    /// Segments the writer sealed whose ids are not on disk yet.
    backlog: Arc<AtomicUsize>,
    /// Set when the thread has stopped: nothing more goes on disk.
    stopped: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ingester {
    /// Starts the thread; the index already holds every segment up to `through`.
    pub fn start(db: Arc<IndexDb>, through: Option<u32>) -> std::io::Result<Ingester> {
        let (sender, segments) = mpsc::channel::<Sealed>();
        let through = Arc::new(AtomicU64::new(through.map_or(NONE, u64::from)));
        let backlog = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let thread = {
            let (db, through) = (db.clone(), through.clone());
            let (backlog, stopped) = (backlog.clone(), stopped.clone());
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
                    for (checkpoint, ids, sealed_by_writer) in segments {
                        let started = std::time::Instant::now();
                        if let Err(e) = db.ingest_segment(&ids, checkpoint) {
                            tracing::error!(
                                segment = checkpoint.segment,
                                error = %e,
                                "indexing a sealed segment failed: its event ids stay in memory \
                                 until a restart"
                            );
                            return;
                        }
                        through.store(u64::from(checkpoint.segment), Ordering::Release);
                        if sealed_by_writer {
                            backlog.fetch_sub(1, Ordering::Release);
                        }
                        tracing::debug!(
                            segment = checkpoint.segment,
                            ids = ids.len(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "indexed a sealed segment's event ids"
                        );
                    }
                })?
        };
        Ok(Ingester {
            db,
            sender: Some(sender),
            through,
            backlog,
            stopped,
            thread: Some(thread),
        })
    }

    /// Queues the ids of a sealed segment; `sealed_by_writer` unless a start hands it
    /// over.
    pub fn ingest(&self, checkpoint: Checkpoint, ids: Arc<IdMap>, sealed_by_writer: bool) {
        if let Some(sender) = &self.sender {
            if sealed_by_writer {
                self.backlog.fetch_add(1, Ordering::Release);
            }
            // A stopped ingester drops them: they stay in the writer's memory.
            let _ = sender.send((checkpoint, ids, sealed_by_writer));
        }
    }

    /// Waits while more than [`MAX_BACKLOG`] segments the writer sealed are not on
    /// disk, unless the ingester has stopped.
    pub fn wait_for_backlog(&self) {
        while self.backlog.load(Ordering::Acquire) > MAX_BACKLOG
            && !self.stopped.load(Ordering::Acquire)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
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

    /// Waits for every queued segment to be ingested, then saves the filter for the
    /// next start.
    pub fn finish(mut self) {
        self.sender = None;
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
        // In order: every segment handed over at the start is on disk by now.
        assert!(ingester.ingested_through() >= Some(20 - MAX_BACKLOG as u32 - 1));
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

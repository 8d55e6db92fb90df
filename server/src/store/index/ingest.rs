//! The ingester: a thread that puts each sealed segment's event ids into the index on
//! disk, in segment order, and moves the checkpoint after each, off the writer's
//! thread. The writer keeps a segment's ids in memory until `ingested_through` says
//! they are on disk.
//!
//! If an ingestion fails, the ingester stops: the ids it was given stay in the
//! writer's memory, as they did before there was an index on disk, and the next start
//! replays the log past the last checkpoint.

use super::disk::{Checkpoint, IdMap, IndexDb};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// No segment ingested yet (by this ingester).
const NONE: u64 = u64::MAX;

/// The writer's handle on the ingester thread.
#[derive(Debug)]
pub struct Ingester {
    db: Arc<IndexDb>,
    sender: Option<mpsc::Sender<(Checkpoint, Arc<IdMap>)>>,
    /// The last segment whose ids are on disk, or [`NONE`].
    through: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ingester {
    /// Starts the thread; the index already holds every segment up to `through`.
    pub fn start(db: Arc<IndexDb>, through: Option<u32>) -> std::io::Result<Ingester> {
        let (sender, segments) = mpsc::channel::<(Checkpoint, Arc<IdMap>)>();
        let through = Arc::new(AtomicU64::new(through.map_or(NONE, u64::from)));
        let thread = {
            let (db, through) = (db.clone(), through.clone());
            std::thread::Builder::new()
                .name("evenire-ingest".into())
                .spawn(move || {
                    for (checkpoint, ids) in segments {
                        let started = std::time::Instant::now();
                        if let Err(e) = db.ingest_ids(&ids, checkpoint) {
                            tracing::error!(
                                segment = checkpoint.segment,
                                error = %e,
                                "indexing a sealed segment's event ids failed: they stay in \
                                 memory until a restart"
                            );
                            return;
                        }
                        through.store(u64::from(checkpoint.segment), Ordering::Release);
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
            thread: Some(thread),
        })
    }

    /// Queues the ids of a sealed segment.
    pub fn ingest(&self, checkpoint: Checkpoint, ids: Arc<IdMap>) {
        if let Some(sender) = &self.sender {
            // A stopped ingester drops them: they stay in the writer's memory.
            let _ = sender.send((checkpoint, ids));
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

    /// Waits for every queued segment to be ingested.
    pub fn finish(mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the ingester thread panicked");
        }
    }
}

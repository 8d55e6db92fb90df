//! The store: an append-only log on disk, an in-memory index over it, and a cache.
//!
//! It knows nothing of gRPC. Folders by what they do, files with one job each:
//! - `types`: the store's vocabulary (streams, events, expected versions); `error`:
//!   what can go wrong, for the service layer to map; `settings`: how a store is set
//!   up and its fsync policy; `shared`: what the writer and the readers share;
//! - `log/`: the truth on disk. `record`: the framed, checksummed record codec, one
//!   record per append; `segment`: segment files, their header, scanning them; `fs`:
//!   the seam to the file system, `sim_fs` a simulated one for durability tests;
//!   `recovery`: rebuilding the index from the log at start; `repair`: offline verify
//!   and repair of a data directory;
//! - `index/`: stream -> versions -> record locations (`mod.rs`), and the sharded hash
//!   maps it and the writer's event ids live in (`maps`);
//! - `writer/`: the single writer thread and its group commit (`mod.rs`); `plan`: the
//!   pure planning of a group; `decide`: its checks (retries, expected versions,
//!   tombstones); `group`: the commands and their typed answers; `syncer`: the sync
//!   thread; `reserve`: space written ahead of the log;
//! - `reads/`: `reader`, records through the cache; `read`, a read of a stream or of
//!   the whole log batch by batch; `subscription`, catch-up then live delivery;
//! - `event_store`: the store as the service's `backend::EventStore`.
//!
//! The on-disk format is written down in `docs/storage.md`.

mod backup;
mod error;
mod event_store;
mod index;
mod log;
mod metrics;
mod reads;
mod scavenge;
mod settings;
mod shared;
mod stats;
mod types;
mod writer;

pub use backup::{Backup, BackupChunk, BackupFile, BackupPlan, HeldFile};
pub use error::StoreError;
pub use index::verify::{IndexCheck, check_index};
pub use index::{ListFilter, Listing, STREAM_BYTES};
pub use log::record::Snapshot;
pub use log::{fs, lost, record, repair, restore, segment, sim_fs, skip};
pub use metrics::{Recovery, StoreCollector};
pub use reads::read::LogRead;
pub use reads::subscription::{
    Filter, SubscribeFrom, SubscribeTarget, Subscription, SubscriptionItem,
};
pub use scavenge::{Reclaimed, ScavengeOptions, ScavengeProgress};
pub use settings::{FsyncPolicy, StoreConfig};
pub use types::{
    AppendResult, DeleteMode, DeleteResult, Direction, EventData, ExpectedVersion, MAX_TYPE_LEN,
    ReadFrom, RecordedEvent, StoreFigures, StreamId, StreamInfo, StreamRules, StreamState,
};

use index::Index;
use index::disk::{self, IndexDb};
use index::disk_answers::{answered_by, answered_for_read};
use index::ingest::Ingester;
use log::recovery;
use reads::read;
use reads::reader::LogReader;
use shared::{Shared, read_index};
use std::fs::File;
use std::sync::{Arc, RwLock};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use writer::Writer;
use writer::decide::EventIds;
use writer::group::{
    AppendCommand, Command, DeleteCommand, Reply, RulesCommand, SnapshotCommand, WriteCommand,
};
use writer::syncer::Syncer;

/// An open store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    /// Bounds the bytes queued for the writer: the backpressure on appends.
    pending_bytes: Arc<Semaphore>,
    max_pending_permits: u32,
    writer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// How the last start went, for metrics.
    recovery: metrics::Recovery,
    /// The file system and directory the log is in, for backups.
    fs: Arc<dyn fs::Fs>,
    dir: std::path::PathBuf,
    /// Held for the store's life so no second process opens the same log.
    _lock: Option<File>,
}

/// The writer's event ids from what recovery gathered: with an index on disk, the
/// ids of sealed segments it does not hold yet go to its ingester (all of them when it
/// did not match the log and starts anew); without one, all are kept in memory.
fn event_ids(
    index_db: Option<(IndexDb, Option<disk::Checkpoint>)>,
    recovered: &mut recovery::Recovered,
) -> Result<EventIds, StoreError> {
    let mut segments = std::mem::take(&mut recovered.ids);
    // Without an index on disk, recovery gathered every id in this one map.
    let active = segments.pop().map(|(_, ids)| ids).unwrap_or_default();
    let Some((db, checkpoint)) = index_db else {
        return Ok(EventIds::in_memory(active));
    };
    let (db, through) = match recovered.checkpoint_holds {
        true => {
            db.forget_rewrites_past(checkpoint)?;
            (db, checkpoint.map(|c| c.segment))
        }
        false => (db.rebuild()?, None),
    };
    let sealed = segments
        .into_iter()
        .map(|(segment, ids)| {
            let end_position = segment
                .checked_add(1)
                .and_then(|next| recovered.index.segment_first_position(next))
                .unwrap_or_else(|| recovered.index.next_position());
            let checkpoint = disk::Checkpoint {
                segment,
                end_position,
            };
            (checkpoint, ids)
        })
        .collect();
    let on_disk_end = match through {
        Some(_) => checkpoint.map_or(0, |c| c.end_position),
        None => 0,
    };
    let ingester = Ingester::start(Arc::new(db), through)
        .map_err(|e| StoreError::io("starting the index's ingester thread", e))?;
    Ok(EventIds::on_disk(ingester, on_disk_end, sealed, active))
}

/// How long a stop waits for a scavenge to finish the segment it is on.
const SCAVENGE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Fixed cost charged to the queue budget for each append, whatever its size.
const APPEND_OVERHEAD_BYTES: usize = 256;

impl Store {
    /// Opens (or creates) the store in `config.data_dir`: locks the directory, recovers
    /// the index from the log, and starts the writer. Blocking; may take a while on a
    /// large log.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let dir = &config.data_dir;
        let fs = config.fs.clone();
        fs.create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(fs.as_ref(), dir)?;
        let started = std::time::Instant::now();
        scavenge::remove_leftovers(fs.as_ref(), dir)?;
        let index_db = match config.index_cache_bytes {
            Some(cache) => {
                let (db, checkpoint) = IndexDb::open_or_rebuild(&dir.join(disk::INDEX_DIR), cache)?;
                Some((
                    db.keeping_snapshots(config.snapshots_per_stream),
                    checkpoint,
                ))
            }
            None => None,
        };
        let index = index_db.as_ref().map(|(db, checkpoint)| (db, *checkpoint));
        let mut recovered =
            recovery::recover(fs.as_ref(), dir, config.snapshots_per_stream, index)?;
        let ids = event_ids(index_db, &mut recovered)?;
        if let Some(kept) = config.index_entries_kept {
            recovered.index.keep_entries(kept);
        }
        if let Some(through) = ids.on_disk_through() {
            recovered.index.let_go_all_through(through);
        }
        let ids_in_memory = ids.in_memory_count(recovered.index.next_position());
        recovered
            .index
            .set_default_rules(config.default_rules.clone());
        let recovery = metrics::Recovery {
            seconds: started.elapsed().as_secs_f64(),
            events: recovered.events,
        };
        tracing::info!(
            events = recovered.events,
            streams = recovered.index.stream_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered the log"
        );
        let active_path = segment::segment_path(dir, u64::from(recovered.active_segment));
        let active = fs
            .open_write(&active_path)
            .map_err(|e| StoreError::io(format!("opening {}", active_path.display()), e))?;

        let committed_end = shared::CommittedEnd {
            position: recovered.index.next_position(),
            segment: recovered.active_segment,
            offset: recovered.active_len,
        };
        let shared = Arc::new(Shared {
            committed: watch::Sender::new(recovered.index.next_position()),
            closing: watch::Sender::new(false),
            refusing: watch::Sender::new(None),
            index: RwLock::new(recovered.index),
            reader: LogReader::new(fs.clone(), dir.clone(), config.cache_bytes),
            committed_end: std::sync::Mutex::new(committed_end),
            scavenging: false.into(),
            index_rewrites: ids.rewrites(),
            index_db: ids.index_db(),
            stats: stats::StoreStats::new(
                recovered.sealed_bytes,
                recovered.active_len,
                recovered.segments,
            ),
        });
        shared
            .stats
            .event_ids_in_memory
            .store(ids_in_memory, std::sync::atomic::Ordering::Relaxed);
        let syncer = Syncer::spawn(shared.clone())
            .map_err(|e| StoreError::io("starting the sync thread", e))?;
        let writer = Writer {
            fs,
            dir: dir.clone(),
            fsync: config.fsync,
            segment_size: config.segment_size,
            active: active.into(),
            syncer,
            active_segment: recovered.active_segment,
            active_len: recovered.active_len,
            reserved_end: recovered.active_len,
            last_created: recovered.last_created,
            shared: shared.clone(),
            ids,
            refusing: None,
            upkeep_due: false,
            marks: writer::marks::Marks::new(
                config.fsync == FsyncPolicy::Always,
                recovered.active_segment,
            ),
        };
        // The byte budget bounds memory; the channel's own bound only needs to be large
        // enough never to be the tighter of the two for small appends.
        let (commands, receiver) = mpsc::channel(16 * 1024);
        let writer_thread = std::thread::Builder::new()
            .name("evenire-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::io("starting the writer thread", e))?;
        let max_pending_permits = u32::try_from(config.max_pending_bytes)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32)
            .max(1);
        Ok(Store {
            shared,
            commands,
            pending_bytes: Arc::new(Semaphore::new(max_pending_permits as usize)),
            max_pending_permits,
            writer_thread: std::sync::Mutex::new(Some(writer_thread)),
            recovery,
            fs: config.fs.clone(),
            dir: config.data_dir.clone(),
            _lock: lock,
        })
    }

    /// Appends `events` to `stream` if it meets `expected`. Returns once the events are
    /// durable (as the fsync policy says) and visible to readers. Re-sending an append
    /// whose event ids are already committed at the place it asks for returns the
    /// original result and writes nothing.
    pub async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        mut events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        let cost = record::encoded_append_len(&stream, &events) + APPEND_OVERHEAD_BYTES;
        self.submit(cost, move |permit, reply| {
            // Here, on the caller's task, rather than on the one writer thread.
            record::compact(&mut events);
            WriteCommand::Append(AppendCommand {
                stream,
                expected,
                events,
                reply,
                permit,
            })
        })
        .await
    }

    /// Takes `cost` bytes of the queue's budget (waiting while appends hold it all),
    /// hands the writer the command `command` makes with them, and waits for its
    /// answer.
    async fn submit<T>(
        &self,
        cost: usize,
        command: impl FnOnce(OwnedSemaphorePermit, Reply<T>) -> WriteCommand,
    ) -> Result<T, StoreError> {
        let permits = u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .min(self.max_pending_permits);
        let permit = self
            .pending_bytes
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        let (reply, outcome) = oneshot::channel();
        self.send(command(permit, reply), outcome).await
    }

    /// Hands `command` to the writer and waits for the answer `outcome` receives.
    async fn send<T>(
        &self,
        command: WriteCommand,
        outcome: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.commands
            .send(Command::Write(command))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        outcome.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Starts a read of `stream`. The read sees the stream as it is now: events
    /// appended later are not part of it. `NOT_FOUND` for a stream never written.
    pub fn read(
        &self,
        stream: StreamId,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<LogRead, StoreError> {
        let (first, last) = self.readable(&stream)?;
        Ok(LogRead::new(
            self.shared.clone(),
            read::Scope::Stream(stream),
            first,
            Some(last),
            from,
            direction,
            max_count,
        ))
    }

    /// Starts a read of the whole log (`$all`) in position order; `ReadFrom::Version`
    /// names a position. Like a stream read, it sees the log as it is now.
    pub fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> LogRead {
        let last = self.index().next_position().checked_sub(1);
        LogRead::new(
            self.shared.clone(),
            read::Scope::All,
            0,
            last,
            from,
            direction,
            max_count,
        )
    }

    /// Starts a subscription: history first, then commits as they land. A filtered
    /// subscription to the log reports a checkpoint after every `checkpoint_interval`
    /// events it scanned without a match.
    pub fn subscribe(
        &self,
        target: SubscribeTarget,
        filter: Filter,
        checkpoint_interval: u64,
    ) -> Subscription {
        Subscription::new(self.shared.clone(), target, filter, checkpoint_interval)
    }

    /// Why the store refuses every write until a restart, once it does (a failed
    /// fsync, or a failed write it could not cut off): None until then.
    pub fn write_refusal(&self) -> watch::Receiver<Option<String>> {
        self.shared.refusing.subscribe()
    }

    /// Ends every subscription (they return None); reads and appends go on.
    pub fn close_subscriptions(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Deletes `stream` if it meets `expected`: softly (its events disappear from
    /// reads; a later append starts it again with versions after the deleted ones) or
    /// for good (a tombstone: it can never be written again). Durable like an append,
    /// and idempotent: deleting again what is already deleted that way succeeds.
    pub async fn delete_stream(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        mode: DeleteMode,
    ) -> Result<DeleteResult, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let command = WriteCommand::Delete(DeleteCommand {
            stream,
            expected,
            mode,
            reply,
        });
        self.send(command, outcome).await
    }

    /// Keeps a snapshot of `stream` at `version`: durable like an append, kept apart
    /// from the events (no position, no version of its own). The stream must hold that
    /// version, readable. The newest `snapshots_per_stream` by version are kept.
    pub async fn save_snapshot(
        &self,
        stream: StreamId,
        version: u64,
        snapshot_type: Arc<str>,
        data: bytes::Bytes,
    ) -> Result<(), StoreError> {
        let cost = data.len() + snapshot_type.len() + APPEND_OVERHEAD_BYTES;
        self.submit(cost, move |permit, reply| {
            WriteCommand::Snapshot(SnapshotCommand {
                stream,
                version,
                snapshot_type,
                data,
                reply,
                permit,
            })
        })
        .await
    }

    /// The latest snapshot of `stream` (by version), and a read of the events after
    /// it (of all of them, without one). `NOT_FOUND` for a stream never written or
    /// deleted.
    pub async fn read_from_snapshot(
        &self,
        stream: StreamId,
    ) -> Result<(Option<Snapshot>, LogRead), StoreError> {
        let mut moved = false;
        let (snapshot, first, last) = loop {
            let (readable, snapshot) = answered_for_read(&self.shared, |index, answers| {
                let readable = index.readable(&stream, answers)?;
                Ok((readable, index.latest_snapshot(&stream)))
            })?;
            let (first, last) = readable.ok_or_else(|| self.not_readable(&stream))?;
            let Some(at) = snapshot else {
                break (None, first, last);
            };
            let shared = self.shared.clone();
            match blocking(move || shared.reader.read_snapshot(at.loc)).await {
                // A scavenge rewrote its segment meanwhile: the index knows where.
                Err(StoreError::Moved) if !moved => moved = true,
                read => break (Some(read?), first, last),
            }
        };
        let from = snapshot.as_ref().map_or(first, |s| s.version + 1);
        let read = LogRead::new(
            self.shared.clone(),
            read::Scope::Stream(stream),
            first,
            Some(last),
            ReadFrom::Version(from),
            Direction::Forward,
            None,
        );
        Ok((snapshot, read))
    }

    /// Replaces `stream`'s rules if they are at `expected_revision` (None: any):
    /// durable like a delete. Returns their new revision.
    pub async fn set_stream_rules(
        &self,
        stream: StreamId,
        rules: StreamRules,
        expected_revision: Option<u64>,
    ) -> Result<u64, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let command = WriteCommand::Rules(RulesCommand {
            stream,
            rules,
            expected_revision,
            reply,
        });
        self.send(command, outcome).await
    }

    /// The versions a read of `stream` covers, (first, last); an error for a stream
    /// never written or whose events are all deleted.
    fn readable(&self, stream: &StreamId) -> Result<(u64, u64), StoreError> {
        let readable = answered_for_read(&self.shared, |index, answers| {
            index.readable(stream, answers)
        })?;
        readable.ok_or_else(|| self.not_readable(stream))
    }

    /// Why `stream` has nothing to read: never written, or deleted.
    fn not_readable(&self, stream: &StreamId) -> StoreError {
        let version = answered_by(&self.shared, |index, answers| {
            index.stream_version(stream, answers)
        });
        match version {
            Ok(Some(_)) => StoreError::StreamDeleted(stream.clone()),
            Ok(None) => StoreError::StreamNotFound(stream.clone()),
            Err(e) => e,
        }
    }

    /// What the store knows about `stream`; None for a stream never written.
    pub fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>, StoreError> {
        answered_by(&self.shared, |index, answers| index.info(stream, answers))
    }

    /// What the store holds: its streams, events and log.
    pub fn figures(&self) -> StoreFigures {
        let stats = &self.shared.stats;
        let index = self.index().figures(
            stats
                .event_ids_in_memory
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        StoreFigures {
            streams: index.streams,
            events: index.events,
            log_bytes: Some(stats.log_bytes()),
            log_segments: Some(stats.segments.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }

    /// A page of streams in (type, key) order after `after`: at most `limit`, having
    /// looked at no more than `scan_limit` streams.
    pub fn list_streams(
        &self,
        after: Option<&StreamId>,
        filter: &ListFilter,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Listing, StoreError> {
        let draft = self.index().list(after, filter, limit, scan_limit);
        let mut streams = Vec::with_capacity(draft.streams.len());
        for drafted in draft.streams {
            let info = match drafted {
                Ok(info) => info,
                // Its info needs the index on disk.
                Err(stream) => match self.stream_info(&stream)? {
                    Some(info) => info,
                    None => continue,
                },
            };
            if filter.include_deleted || info.state == StreamState::Live {
                streams.push(info);
            }
        }
        Ok(Listing {
            streams,
            next: draft.next,
        })
    }

    /// Lets the writer finish every append already queued, syncs the log, and stops
    /// it. Appends after this fail with [`StoreError::ShuttingDown`].
    pub async fn shutdown(&self) {
        self.close_subscriptions();
        self.wait_for_scavenge().await;
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
        self.pending_bytes.close();
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Waits a while for a scavenge to stop, which it does after the segment it is
    /// rewriting: that segment's new file reaches the index on disk before the ingester
    /// stops, else the next start rebuilds the index (`index/ingest.rs`).
    async fn wait_for_scavenge(&self) {
        use std::sync::atomic::Ordering;
        let waited = std::time::Instant::now();
        while self.shared.scavenging.load(Ordering::Acquire) {
            if waited.elapsed() > SCAVENGE_STOP_WAIT {
                tracing::warn!("stopping while a scavenge still rewrites a segment");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Starts a scavenge on a thread of its own. Its reports come on the returned
    /// channel, one per segment and a last one marked done, or an error; it goes on if
    /// the receiver is dropped. One at a time: refused while another runs.
    pub fn scavenge(
        &self,
        options: ScavengeOptions,
    ) -> Result<mpsc::Receiver<Result<ScavengeProgress, StoreError>>, StoreError> {
        use std::sync::atomic::Ordering;
        if self.shared.scavenging.swap(true, Ordering::AcqRel) {
            return Err(StoreError::ScavengeRunning);
        }
        let (reports, received) = mpsc::channel(16);
        let (shared, fs, dir) = (self.shared.clone(), self.fs.clone(), self.dir.clone());
        let spawned = std::thread::Builder::new()
            .name("evenire-scavenge".into())
            .spawn(move || {
                let ran = scavenge::run(&shared, fs.as_ref(), &dir, options, |progress| {
                    // A slow watcher misses reports in between, never the last.
                    let report = Ok(progress.clone());
                    let _ = match progress.done {
                        true => reports.blocking_send(report),
                        false => reports
                            .try_send(report)
                            .map_err(|_| mpsc::error::SendError(Err(StoreError::ShuttingDown))),
                    };
                });
                match &ran {
                    Ok(progress) => tracing::info!(
                        dry_run = progress.dry_run,
                        segments = progress.segments_done,
                        rewritten = progress.segments_rewritten,
                        bytes_freed = progress.bytes_freed,
                        events_reclaimed = progress.events_reclaimed,
                        "scavenge done"
                    ),
                    Err(e) => tracing::error!(error = %e, "scavenge failed"),
                }
                if let Err(e) = ran {
                    let _ = reports.blocking_send(Err(e));
                }
                shared.scavenging.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.shared.scavenging.store(false, Ordering::Release);
            return Err(StoreError::io("starting the scavenge thread", e));
        }
        Ok(received)
    }

    /// Starts a backup of the log as committed now, for a caller that holds `held`:
    /// opens the segments and reads the tails of the held files on the blocking pool.
    pub async fn backup(&self, held: Vec<HeldFile>) -> Result<Backup, StoreError> {
        let (fs, dir, shared) = (self.fs.clone(), self.dir.clone(), self.shared.clone());
        blocking(move || Backup::start(fs.as_ref(), &dir, &shared, &held)).await
    }

    /// What the store's metrics read at each scrape.
    pub fn metrics(&self) -> metrics::StoreCollector {
        metrics::StoreCollector {
            shared: self.shared.clone(),
            recovery: self.recovery,
        }
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        read_index(&self.shared)
    }
}

/// Takes the data directory's lock, as a server does, so that an offline repair cannot
/// run beside a server. Held until the returned file is dropped.
pub fn lock_dir(fs: &dyn fs::Fs, dir: &std::path::Path) -> Result<Option<File>, StoreError> {
    fs.lock(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => StoreError::Locked(dir.to_path_buf()),
        _ => StoreError::io(format!("locking {}", dir.join("LOCK").display()), e),
    })
}

/// Runs `work` on the blocking pool and waits for it.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        // The blocking pool only drops a task when the runtime shuts down.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

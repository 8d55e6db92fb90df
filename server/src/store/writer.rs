//! The single writer: one thread owns the active segment and commits appends in groups.
//!
//! It takes everything queued, decides each append and delete against the index
//! (`decide.rs`: idempotent retries, expected versions, tombstones), gives positions and
//! versions in queue order, writes all the records with one `write`, calls `fdatasync` once, and only then publishes them
//! to the index and answers. Because one thread decides every append, two appends with
//! the same expected version can never both succeed, and positions are gapless and in
//! commit order.
//!
//! A failed write is rolled back by truncating the segment to its last committed
//! length, so the next batch can try again (say, once a full disk has room). A failed
//! fsync is not retried: after one, the kernel may have dropped the dirty pages, so the
//! writer refuses every later append until a restart re-reads the log.

use super::decide::{self, AppendDecision, DeleteDecision, EventIds, Pending};
use super::error::StoreError;
use super::fs::{Fs, LogFile};
use super::index::RecordLoc;
use super::record::{self, AppendHeader, Deletion, Record, StoredEvent};
use super::segment;
use super::types::{AppendResult, DeleteMode, DeleteResult, EventData, ExpectedVersion, StreamId};
use super::{FsyncPolicy, Shared};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

/// Group commits stop taking more commands once they hold this many bytes.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// A request to the writer.
#[derive(Debug)]
pub enum Command {
    /// Append events to a stream.
    Append(AppendCommand),
    /// Delete or tombstone a stream.
    Delete(DeleteCommand),
    /// Finish what is queued, sync, and stop.
    Shutdown(oneshot::Sender<()>),
}

/// One append waiting for the writer.
#[derive(Debug)]
pub struct AppendCommand {
    /// The stream.
    pub stream: StreamId,
    /// The precondition.
    pub expected: ExpectedVersion,
    /// The events, at least one.
    pub events: Vec<EventData>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
    /// The share of the queue's byte budget this append holds until it is answered.
    pub permit: OwnedSemaphorePermit,
}

/// One delete waiting for the writer.
#[derive(Debug)]
pub struct DeleteCommand {
    /// The stream.
    pub stream: StreamId,
    /// The precondition.
    pub expected: ExpectedVersion,
    /// Soft delete or tombstone.
    pub mode: DeleteMode,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<DeleteResult, StoreError>>,
}

/// Where an answer goes.
enum Reply {
    Append(oneshot::Sender<Result<AppendResult, StoreError>>),
    Delete(oneshot::Sender<Result<DeleteResult, StoreError>>),
}

/// A successful answer.
enum Outcome {
    Appended(AppendResult),
    Deleted(DeleteResult),
}

impl Reply {
    fn send(self, outcome: Result<Outcome, StoreError>) {
        // A receiver that is gone (the client cancelled) needs no answer.
        match (self, outcome) {
            (Reply::Append(reply), Ok(Outcome::Appended(result))) => {
                let _ = reply.send(Ok(result));
            }
            (Reply::Delete(reply), Ok(Outcome::Deleted(result))) => {
                let _ = reply.send(Ok(result));
            }
            (Reply::Append(reply), Err(e)) => {
                let _ = reply.send(Err(e));
            }
            (Reply::Delete(reply), Err(e)) => {
                let _ = reply.send(Err(e));
            }
            (Reply::Append(_), Ok(Outcome::Deleted(_)))
            | (Reply::Delete(_), Ok(Outcome::Appended(_))) => {
                unreachable!("an answer always matches its command")
            }
        }
    }
}

/// A write decided to go into the current batch, in batch order.
enum Planned {
    Append {
        loc: RecordLoc,
        record: Arc<Record>,
        reply: oneshot::Sender<Result<AppendResult, StoreError>>,
        permit: OwnedSemaphorePermit,
    },
    Delete {
        deletion: Deletion,
        reply: oneshot::Sender<Result<DeleteResult, StoreError>>,
    },
}

impl Planned {
    fn reply(self) -> Reply {
        match self {
            Planned::Append { reply, .. } => Reply::Append(reply),
            Planned::Delete { reply, .. } => Reply::Delete(reply),
        }
    }
}

/// The writer thread's state.
#[derive(Debug)]
pub struct Writer {
    pub(super) fs: Arc<dyn Fs>,
    pub(super) dir: PathBuf,
    pub(super) fsync: FsyncPolicy,
    pub(super) segment_size: u64,
    pub(super) active: Box<dyn LogFile>,
    pub(super) active_segment: u32,
    pub(super) active_len: u64,
    pub(super) shared: Arc<Shared>,
    /// Every event id in the log and its position; only the writer needs them.
    pub(super) ids: EventIds,
    /// Set after a failed fsync: every later write is refused with this reason.
    pub(super) refusing: Option<String>,
}

impl Writer {
    /// Serves commands until a shutdown command or until every sender is gone.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(append) => {
                        bytes += record::encoded_append_len(&append.stream, &append.events);
                        batch.push(Command::Append(append));
                    }
                    Command::Delete(delete) => batch.push(Command::Delete(delete)),
                    Command::Shutdown(done) => {
                        shutdown = Some(done);
                        break;
                    }
                }
                if bytes < MAX_BATCH_BYTES {
                    next = commands.try_recv().ok();
                }
            }
            self.commit(batch, bytes);
            if let Some(done) = shutdown {
                self.finish();
                let _ = done.send(());
                return;
            }
        }
        self.finish();
    }

    /// The last sync before the process goes, whatever the fsync policy.
    fn finish(&mut self) {
        if self.refusing.is_none()
            && let Err(e) = self.active.sync_data()
        {
            tracing::error!(error = %e, "final sync of the log failed");
        }
    }

    /// Decides, writes, syncs and publishes `batch`, whose appends encode to `bytes`.
    fn commit(&mut self, batch: Vec<Command>, bytes: usize) {
        if batch.is_empty() {
            return;
        }
        if let Some(reason) = &self.refusing {
            let error = StoreError::WritesRefused(reason.clone());
            refuse_all(batch, &error);
            return;
        }
        if self.active_len >= self.segment_size
            && let Err(e) = self.rotate()
        {
            let next = self.active_segment + 1;
            refuse_all(
                batch,
                &StoreError::io(format!("creating segment {next}"), e),
            );
            return;
        }

        let created_micros = now_micros();
        // Deletes are a few dozen bytes each: room for the appends is what matters.
        let mut buf = Vec::with_capacity(bytes);
        let mut planned = Vec::new();
        let mut answered = Vec::new();
        {
            let index = match self.shared.index.read() {
                Ok(index) => index,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut pending = Pending::new(index.next_position());
            for command in batch {
                match command {
                    Command::Append(append) => {
                        let decision = decide::append(
                            &index,
                            &pending,
                            &self.ids,
                            &self.shared.reader,
                            &append.stream,
                            append.expected,
                            &append.events,
                        );
                        match decision {
                            Ok(AppendDecision::AlreadyCommitted(result)) => answered
                                .push((Reply::Append(append.reply), Ok(Outcome::Appended(result)))),
                            Err(e) => answered.push((Reply::Append(append.reply), Err(e))),
                            Ok(AppendDecision::Write {
                                first_version,
                                first_position,
                            }) => {
                                pending.add_append(
                                    &index,
                                    &mut self.ids,
                                    &append.stream,
                                    &append.events,
                                    first_version,
                                    first_position,
                                );
                                let frame_start = buf.len();
                                let offset = self.active_len + frame_start as u64;
                                let header = AppendHeader {
                                    first_position,
                                    first_version,
                                    created_micros,
                                    stream: &append.stream,
                                };
                                record::encode_append(&mut buf, header, &append.events);
                                let len = (buf.len() - frame_start) as u32;
                                // The events' payloads were compacted by
                                // `Store::append`: the record can keep them as they are.
                                let record = Arc::new(Record {
                                    first_position,
                                    first_version,
                                    created_micros,
                                    stream: append.stream,
                                    events: append
                                        .events
                                        .into_iter()
                                        .map(StoredEvent::from)
                                        .collect(),
                                });
                                planned.push(Planned::Append {
                                    loc: RecordLoc {
                                        segment: self.active_segment,
                                        len,
                                        offset,
                                    },
                                    record,
                                    reply: append.reply,
                                    permit: append.permit,
                                });
                            }
                        }
                    }
                    Command::Delete(delete) => {
                        let decision = decide::delete(
                            &index,
                            &pending,
                            &delete.stream,
                            delete.expected,
                            delete.mode,
                            created_micros,
                        );
                        match decision {
                            Ok(DeleteDecision::AlreadyDone(result)) => answered
                                .push((Reply::Delete(delete.reply), Ok(Outcome::Deleted(result)))),
                            Err(e) => answered.push((Reply::Delete(delete.reply), Err(e))),
                            Ok(DeleteDecision::Write(deletion)) => {
                                pending.add_delete(&deletion);
                                record::encode_delete(&mut buf, &deletion);
                                planned.push(Planned::Delete {
                                    deletion,
                                    reply: delete.reply,
                                });
                            }
                        }
                    }
                    Command::Shutdown(_) => unreachable!("shutdown ends a batch, never joins it"),
                }
            }
        }

        match self.write_and_sync(&buf) {
            Ok(()) => {
                self.publish(planned);
                for (reply, outcome) in answered {
                    reply.send(outcome);
                }
            }
            Err(e) => {
                // Some answers were decided on writes of this batch: none of it stands,
                // and a retry of it must not be taken for a duplicate.
                for p in &planned {
                    if let Planned::Append { record, .. } = p {
                        for event in &record.events {
                            self.ids.remove(&event.id);
                        }
                    }
                }
                for p in planned {
                    p.reply().send(Err(e.clone()));
                }
                for (reply, _) in answered {
                    reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Writes the batch's records and makes them durable as the policy says.
    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.active.write_all_at(buf, self.active_len) {
            return Err(self.roll_back(e));
        }
        if self.fsync == FsyncPolicy::Always
            && let Err(e) = self.active.sync_data()
        {
            let reason = format!("fdatasync of segment {}: {e}", self.active_segment);
            tracing::error!(%reason, "refusing all writes until restart");
            self.refusing = Some(reason.clone());
            return Err(StoreError::WritesRefused(reason));
        }
        self.active_len += buf.len() as u64;
        Ok(())
    }

    /// Cuts a partly written batch off the segment so that nothing half-written stays.
    fn roll_back(&mut self, error: std::io::Error) -> StoreError {
        let restored = self.active.truncate(self.active_len);
        if let Err(e) = restored {
            let reason = format!("rolling back a failed write ({error}) also failed: {e}");
            tracing::error!(%reason, "refusing all writes until restart");
            self.refusing = Some(reason.clone());
            return StoreError::WritesRefused(reason);
        }
        tracing::warn!(%error, "append batch failed to write and was rolled back");
        StoreError::io("writing to the log", error)
    }

    /// Makes the durable batch visible: cache first (so that readers woken by the
    /// commit find it there), then the index, then subscribers and the answers.
    fn publish(&mut self, planned: Vec<Planned>) {
        for p in &planned {
            if let Planned::Append { loc, record, .. } = p {
                self.shared.reader.remember(*loc, record.clone());
            }
        }
        let next_position = {
            let mut index = match self.shared.index.write() {
                Ok(index) => index,
                Err(poisoned) => poisoned.into_inner(),
            };
            for p in &planned {
                match p {
                    Planned::Append { loc, record, .. } => index.apply(*loc, record),
                    Planned::Delete { deletion, .. } => index.apply_delete(
                        &deletion.stream,
                        deletion.mode,
                        deletion.through_version,
                    ),
                }
            }
            index.next_position()
        };
        self.shared.committed.send_replace(next_position);
        for p in planned {
            match p {
                Planned::Append {
                    record,
                    reply,
                    permit,
                    ..
                } => {
                    drop(permit);
                    let _ = reply.send(Ok(AppendResult {
                        version: record.last_version(),
                        position: record.last_position(),
                    }));
                }
                Planned::Delete { deletion, reply } => {
                    let _ = reply.send(Ok(DeleteResult {
                        through_version: deletion.through_version,
                    }));
                }
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = self.active_segment + 1;
        self.active.sync_data()?;
        let file = segment::create_segment(self.fs.as_ref(), &self.dir, u64::from(next))?;
        tracing::info!(segment = next, "rotated to a new segment");
        self.active = file;
        self.active_segment = next;
        self.active_len = segment::SEGMENT_HEADER_LEN;
        Ok(())
    }
}

/// Answers every command of a batch with `error`.
fn refuse_all(batch: Vec<Command>, error: &StoreError) {
    for command in batch {
        match command {
            Command::Append(append) => Reply::Append(append.reply).send(Err(error.clone())),
            Command::Delete(delete) => Reply::Delete(delete.reply).send(Err(error.clone())),
            Command::Shutdown(_) => {}
        }
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

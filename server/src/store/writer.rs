//! The single writer: one thread owns the active segment and commits appends in groups.
//!
//! It takes everything queued, checks each append against the index (idempotent
//! retries, expected version), gives positions and versions in queue order, writes all
//! the records with one `write`, calls `fdatasync` once, and only then publishes them
//! to the index and answers. Because one thread decides every append, two appends with
//! the same expected version can never both succeed, and positions are gapless and in
//! commit order.
//!
//! A failed write is rolled back by truncating the segment to its last committed
//! length, so the next batch can try again (say, once a full disk has room). A failed
//! fsync is not retried: after one, the kernel may have dropped the dirty pages, so the
//! writer refuses every later append until a restart re-reads the log.

use super::error::StoreError;
use super::index::{Index, RecordLoc};
use super::record::{self, AppendHeader, Record, StoredEvent};
use super::segment;
use super::types::{AppendResult, EventData, ExpectedVersion, StreamId};
use super::{FsyncPolicy, Shared};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use uuid::Uuid;

/// Group commits stop taking more appends once they hold this many bytes.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// A request to the writer.
#[derive(Debug)]
pub enum Command {
    /// Append events to a stream.
    Append(AppendCommand),
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

/// Where an event id is committed (or about to be, within the current batch).
#[derive(Debug, Clone)]
struct EventPlace {
    stream: StreamId,
    version: u64,
    position: u64,
}

/// What the writer decided for one append of a batch.
enum Decision {
    /// Write it with these first version and position.
    Write {
        first_version: u64,
        first_position: u64,
    },
    /// Its events are already committed where it asks: answer with the original result.
    AlreadyCommitted(AppendResult),
}

/// An append that will be written in the current batch.
struct Planned {
    command: AppendCommand,
    loc: RecordLoc,
    first_version: u64,
    first_position: u64,
}

/// The writer thread's state.
#[derive(Debug)]
pub struct Writer {
    pub(super) dir: PathBuf,
    pub(super) fsync: FsyncPolicy,
    pub(super) segment_size: u64,
    pub(super) active: File,
    pub(super) active_segment: u32,
    pub(super) active_len: u64,
    pub(super) shared: Arc<Shared>,
    /// Set after a failed fsync: every later append is refused with this reason.
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
                        batch.push(append);
                        if bytes < MAX_BATCH_BYTES {
                            next = commands.try_recv().ok();
                        }
                    }
                    Command::Shutdown(done) => shutdown = Some(done),
                }
            }
            self.commit(batch);
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

    fn commit(&mut self, batch: Vec<AppendCommand>) {
        if batch.is_empty() {
            return;
        }
        if let Some(reason) = &self.refusing {
            for command in batch {
                let _ = command
                    .reply
                    .send(Err(StoreError::WritesRefused(reason.clone())));
            }
            return;
        }
        if self.active_len >= self.segment_size
            && let Err(e) = self.rotate()
        {
            let error = StoreError::io(format!("creating segment {}", self.active_segment + 1), e);
            for command in batch {
                let _ = command.reply.send(Err(error.clone()));
            }
            return;
        }

        let created_micros = now_micros();
        let mut buf = Vec::new();
        let mut planned = Vec::new();
        let mut answered = Vec::new();
        let batch_start;
        {
            let index = match self.shared.index.read() {
                Ok(index) => index,
                Err(poisoned) => poisoned.into_inner(),
            };
            batch_start = index.next_position();
            let mut pending = Pending::new(batch_start);
            for command in batch {
                match self.decide(&index, &pending, &command) {
                    Ok(Decision::AlreadyCommitted(result)) => answered.push((command, Ok(result))),
                    Err(e) => answered.push((command, Err(e))),
                    Ok(Decision::Write {
                        first_version,
                        first_position,
                    }) => {
                        let offset = self.active_len + buf.len() as u64;
                        let header = AppendHeader {
                            first_position,
                            first_version,
                            created_micros,
                            stream: &command.stream,
                        };
                        record::encode_append(&mut buf, header, &command.events);
                        let len = (self.active_len + buf.len() as u64 - offset) as u32;
                        pending.add(&command, first_version, first_position);
                        planned.push(Planned {
                            loc: RecordLoc {
                                segment: self.active_segment,
                                len,
                                offset,
                            },
                            command,
                            first_version,
                            first_position,
                        });
                    }
                }
            }
        }

        let written = self.write_and_sync(&buf);
        match &written {
            Err(e) => {
                for p in planned {
                    let _ = p.command.reply.send(Err(e.clone()));
                }
            }
            Ok(()) => self.publish(planned, created_micros),
        }
        for (command, mut outcome) in answered {
            // A retry of an append earlier in this batch shares that append's fate.
            if let (Err(e), Ok(result)) = (&written, &outcome)
                && result.position >= batch_start
            {
                outcome = Err(e.clone());
            }
            let _ = command.reply.send(outcome);
        }
    }

    /// Checks one append against the index and the batch so far.
    fn decide(
        &self,
        index: &Index,
        pending: &Pending,
        command: &AppendCommand,
    ) -> Result<Decision, StoreError> {
        if let Some(decision) = self.check_retry(index, pending, command)? {
            return Ok(decision);
        }
        let current = pending
            .versions
            .get(&command.stream)
            .copied()
            .or_else(|| index.stream_version(&command.stream));
        if !command.expected.accepts(current) {
            return Err(StoreError::WrongExpectedVersion {
                stream: command.stream.clone(),
                expected: command.expected,
                actual: current,
            });
        }
        Ok(Decision::Write {
            first_version: current.map_or(0, |v| v + 1),
            first_position: pending.next_position,
        })
    }

    /// An append whose event ids are all committed, consecutively, in this stream at the
    /// place the append asks for is a retry: it gets the original result. Any other use
    /// of a committed id is a conflict.
    fn check_retry(
        &self,
        index: &Index,
        pending: &Pending,
        command: &AppendCommand,
    ) -> Result<Option<Decision>, StoreError> {
        // Consecutive ids of a retry sit in the same record: read it once.
        let mut last_read = None;
        let mut places = Vec::with_capacity(command.events.len());
        for event in &command.events {
            places.push(self.find_event(index, pending, event.id, &mut last_read)?);
        }
        let Some((conflict_at, first_known)) = places
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        else {
            return Ok(None);
        };
        let first_version = first_known.version;
        let same_place = conflict_at == 0
            && places.iter().enumerate().all(|(i, place)| {
                place.as_ref().is_some_and(|p| {
                    p.stream == command.stream && p.version == first_version + i as u64
                })
            })
            && match command.expected {
                ExpectedVersion::Exact(v) => v.checked_add(1) == Some(first_version),
                ExpectedVersion::NoStream => first_version == 0,
                ExpectedVersion::Any | ExpectedVersion::StreamExists => true,
            };
        if same_place {
            let last = places
                .last()
                .and_then(|p| p.as_ref())
                .unwrap_or(first_known);
            return Ok(Some(Decision::AlreadyCommitted(AppendResult {
                version: last.version,
                position: last.position,
            })));
        }
        Err(StoreError::EventIdConflict {
            id: command.events[conflict_at].id,
            stream: first_known.stream.clone(),
            version: first_known.version,
        })
    }

    /// Where an event id is committed, in the index or earlier in this batch.
    /// `last_read` keeps the record read for the previous id.
    fn find_event(
        &self,
        index: &Index,
        pending: &Pending,
        id: Uuid,
        last_read: &mut Option<Arc<Record>>,
    ) -> Result<Option<EventPlace>, StoreError> {
        if let Some(place) = pending.ids.get(&id) {
            return Ok(Some(place.clone()));
        }
        let Some(position) = index.position_of(&id) else {
            return Ok(None);
        };
        let record = match last_read.take() {
            Some(record)
                if record.first_position <= position && position <= record.last_position() =>
            {
                record
            }
            _ => {
                let Some(loc) = index.record_holding(position) else {
                    return Ok(None);
                };
                self.shared.reader.read(loc)?
            }
        };
        *last_read = Some(record.clone());
        let offset = position - record.first_position;
        Ok(Some(EventPlace {
            stream: record.stream.clone(),
            version: record.first_version + offset,
            position,
        }))
    }

    /// Writes the batch's records and makes them durable as the policy says.
    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.active.write_all(buf) {
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
        let restored = self
            .active
            .set_len(self.active_len)
            .and_then(|()| std::io::Seek::seek(&mut self.active, std::io::SeekFrom::End(0)));
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
    fn publish(&mut self, planned: Vec<Planned>, created_micros: i64) {
        let mut committed = Vec::with_capacity(planned.len());
        for p in planned {
            let AppendCommand {
                stream,
                events,
                reply,
                permit,
                ..
            } = p.command;
            let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
            let record = Arc::new(Record {
                first_position: p.first_position,
                first_version: p.first_version,
                created_micros,
                stream,
                events: events.into_iter().map(stored).collect(),
            });
            self.shared.reader.remember(p.loc, record.clone());
            committed.push((p.loc, record, ids, reply, permit));
        }
        let next_position = {
            let mut index = match self.shared.index.write() {
                Ok(index) => index,
                Err(poisoned) => poisoned.into_inner(),
            };
            for (loc, record, ids, _, _) in &committed {
                index.apply(
                    *loc,
                    &record.stream,
                    record.first_version,
                    record.first_position,
                    ids.iter().copied(),
                );
            }
            index.next_position()
        };
        self.shared.committed.send_replace(next_position);
        for (_, record, _, reply, permit) in committed {
            drop(permit);
            let _ = reply.send(Ok(AppendResult {
                version: record.last_version(),
                position: record.last_position(),
            }));
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = self.active_segment + 1;
        self.active.sync_data()?;
        let file = segment::create_segment(&self.dir, u64::from(next))?;
        tracing::info!(segment = next, "rotated to a new segment");
        self.active = file;
        self.active_segment = next;
        self.active_len = segment::SEGMENT_HEADER_LEN;
        Ok(())
    }
}

/// Versions and ids given out earlier in the batch being decided.
struct Pending {
    versions: HashMap<StreamId, u64>,
    ids: HashMap<Uuid, EventPlace>,
    next_position: u64,
}

impl Pending {
    fn new(next_position: u64) -> Self {
        Pending {
            versions: HashMap::new(),
            ids: HashMap::new(),
            next_position,
        }
    }

    fn add(&mut self, command: &AppendCommand, first_version: u64, first_position: u64) {
        for (i, event) in command.events.iter().enumerate() {
            let place = EventPlace {
                stream: command.stream.clone(),
                version: first_version + i as u64,
                position: first_position + i as u64,
            };
            self.ids.insert(event.id, place);
        }
        let count = command.events.len() as u64;
        self.versions
            .insert(command.stream.clone(), first_version + count - 1);
        self.next_position = first_position + count;
    }
}

fn stored(event: EventData) -> StoredEvent {
    StoredEvent {
        id: event.id,
        event_type: event.event_type,
        data: event.data,
        metadata: event.metadata,
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

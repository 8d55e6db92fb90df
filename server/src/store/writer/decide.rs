//! The writer's decisions: whether each append or delete of a group commit goes ahead,
//! and with which versions and positions. Decided against the index plus the writes
//! earlier in the same batch (`Pending`), in queue order, by the one writer thread,
//! which alone keeps every event id ([`EventIds`]).

use super::plan::Records;
use crate::store::error::StoreError;
use crate::store::index::lookup;
use crate::store::index::maps::FastMap;
use crate::store::index::{Index, WriteState};
use crate::store::log::record::{Deletion, Record};
use crate::store::types::{
    AppendResult, DeleteMode, DeleteResult, EventData, ExpectedVersion, StreamId,
};
use std::sync::Arc;
use uuid::Uuid;

/// What was decided for an append.
#[derive(Debug)]
pub enum AppendDecision {
    /// Write it with these first version and position.
    Write {
        first_version: u64,
        first_position: u64,
    },
    /// Its events are already committed where it asks: answer with the original result.
    AlreadyCommitted(AppendResult),
}

/// What was decided for a delete.
#[derive(Debug)]
pub enum DeleteDecision {
    /// Write this delete record.
    Write(Deletion),
    /// The stream is already deleted that way (or tombstoned): nothing to write.
    AlreadyDone(DeleteResult),
}

/// Every event id in the log and its position, for idempotent retries, plus the ids
/// decided into the batch being committed (taken out again if it fails).
pub use crate::store::index::ids::EventIds;

/// Streams and positions given out earlier in the batch being decided, and in the
/// batch before it while that one is still syncing (not yet in the index).
#[derive(Debug)]
pub struct Pending {
    streams: FastMap<StreamId, WriteState>,
    /// The rules revisions decided into the batch.
    rules: FastMap<StreamId, u64>,
    /// The appends decided so far, in position order.
    appends: Vec<PendingAppend>,
    next_position: u64,
    /// The batch before, written but not yet published.
    earlier: Option<Box<Pending>>,
}

/// An append decided into the batch.
#[derive(Debug)]
struct PendingAppend {
    stream: StreamId,
    first_version: u64,
    first_position: u64,
}

/// Where an event id is committed (or about to be, within the current batch).
#[derive(Debug, Clone)]
struct EventPlace {
    stream: StreamId,
    version: u64,
    position: u64,
}

impl Pending {
    /// An empty batch whose first event will get `next_position`.
    pub fn new(next_position: u64) -> Self {
        Pending {
            streams: FastMap::default(),
            rules: FastMap::default(),
            appends: Vec::new(),
            next_position,
            earlier: None,
        }
    }

    /// An empty batch after `earlier`, which is written but not yet in the index. The
    /// batch before `earlier` is in the index by now: it is let go.
    pub fn after(mut earlier: Pending) -> Self {
        earlier.earlier = None;
        Pending {
            next_position: earlier.next_position,
            earlier: Some(Box::new(earlier)),
            ..Pending::new(0)
        }
    }

    fn state(&self, index: &Index, stream: &StreamId) -> Option<WriteState> {
        let earlier = || self.earlier.as_ref()?.streams.get(stream).copied();
        self.streams
            .get(stream)
            .copied()
            .or_else(earlier)
            .or_else(|| index.write_state(stream))
    }

    /// Where the event at `position` goes, if an append of this batch or the one
    /// before holds it.
    fn place(&self, position: u64) -> Option<EventPlace> {
        self.own_place(position)
            .or_else(|| self.earlier.as_ref()?.own_place(position))
    }

    fn own_place(&self, position: u64) -> Option<EventPlace> {
        if position >= self.next_position {
            return None;
        }
        // None when the position is before the batch's first append.
        let after = self
            .appends
            .partition_point(|a| a.first_position <= position);
        let append = &self.appends[after.checked_sub(1)?];
        Some(EventPlace {
            stream: append.stream.clone(),
            version: append.first_version + (position - append.first_position),
            position,
        })
    }

    /// Takes an append decided to be written into account (its ids are in the ids
    /// map already: [`append`] put them there).
    pub fn add_append(
        &mut self,
        index: &Index,
        stream: &StreamId,
        events: &[EventData],
        first_version: u64,
        first_position: u64,
    ) {
        self.appends.push(PendingAppend {
            stream: stream.clone(),
            first_version,
            first_position,
        });
        let count = events.len() as u64;
        let state = WriteState {
            version: first_version + count - 1,
            deleted: false,
            tombstoned: false,
            deleted_through: self.state(index, stream).and_then(|s| s.deleted_through),
        };
        self.streams.insert(stream.clone(), state);
        self.next_position = first_position + count;
    }

    /// The revision of `stream`'s rules, this batch and the one before included.
    fn rules_revision(&self, index: &Index, stream: &StreamId) -> u64 {
        let earlier = || self.earlier.as_ref()?.rules.get(stream).copied();
        self.rules
            .get(stream)
            .copied()
            .or_else(earlier)
            .unwrap_or_else(|| index.rules(stream).0)
    }

    /// Takes rules decided to be written into account.
    pub fn add_rules(&mut self, stream: &StreamId, revision: u64) {
        self.rules.insert(stream.clone(), revision);
    }

    /// Takes a delete decided to be written into account.
    pub fn add_delete(&mut self, deletion: &Deletion) {
        let state = WriteState {
            version: deletion.through_version,
            deleted: true,
            tombstoned: deletion.mode == DeleteMode::Tombstone,
            deleted_through: Some(deletion.through_version),
        };
        self.streams.insert(deletion.stream.clone(), state);
    }
}

/// Decides an append: an idempotent retry, a refusal, or where it goes. When it goes
/// ahead, its ids are in `ids` at their positions; otherwise `ids` is as it was.
pub fn append(
    index: &Index,
    pending: &Pending,
    ids: &mut EventIds,
    records: &dyn Records,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
) -> Result<AppendDecision, StoreError> {
    let first_position = pending.next_position;
    let claimed = ids.claim(events, first_position)?;
    if !claimed
        && let Some(result) = retried(index, pending, ids, records, stream, expected, events)?
    {
        return Ok(AppendDecision::AlreadyCommitted(result));
    }
    let first_version = next_version(index, pending, stream, expected).inspect_err(|_| {
        if claimed {
            ids.release(events);
        }
    })?;
    if !claimed {
        // Ids known but not a retry (an earlier write of theirs is gone, or an id
        // appears twice in the append): they now name these events.
        for (position, event) in (first_position..).zip(events) {
            ids.insert(event.id, position);
        }
    }
    Ok(AppendDecision::Write {
        first_version,
        first_position,
    })
}

/// The version an append to `stream` starts at, if the stream takes it.
fn next_version(
    index: &Index,
    pending: &Pending,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<u64, StoreError> {
    let state = pending.state(index, stream);
    if state.is_some_and(|s| s.tombstoned) {
        return Err(StoreError::StreamTombstoned(stream.clone()));
    }
    let current = state.and_then(WriteState::current);
    if !expected.accepts(current) {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    Ok(state.map_or(0, |s| s.version + 1))
}

/// Whether a snapshot of `stream`, whose state is `state`, may be taken at `version`:
/// the stream holds that version, readable (not deleted or tombstoned).
pub fn snapshot(
    state: Option<WriteState>,
    stream: &StreamId,
    version: u64,
) -> Result<(), StoreError> {
    let state = state.ok_or_else(|| StoreError::StreamNotFound(stream.clone()))?;
    if state.tombstoned {
        return Err(StoreError::StreamTombstoned(stream.clone()));
    }
    if state.deleted {
        return Err(StoreError::StreamDeleted(stream.clone()));
    }
    let first = state.deleted_through.map_or(0, |v| v + 1);
    if version > state.version || version < first {
        return Err(StoreError::SnapshotOutOfRange {
            stream: stream.clone(),
            version,
            first,
            last: state.version,
        });
    }
    Ok(())
}

/// Decides a change of `stream`'s rules that expects them at `expected` (None: any):
/// the revision it makes.
pub fn rules(
    index: &Index,
    pending: &Pending,
    stream: &StreamId,
    expected: Option<u64>,
) -> Result<u64, StoreError> {
    pending
        .state(index, stream)
        .ok_or_else(|| StoreError::StreamNotFound(stream.clone()))?;
    let actual = pending.rules_revision(index, stream);
    match expected {
        Some(expected) if expected != actual => Err(StoreError::WrongRulesRevision {
            stream: stream.clone(),
            expected,
            actual,
        }),
        _ => Ok(actual + 1),
    }
}

/// Whether a snapshot may be taken, in a group decided after `pending`.
pub fn snapshot_in_group(
    index: &Index,
    pending: &Pending,
    stream: &StreamId,
    version: u64,
) -> Result<(), StoreError> {
    snapshot(pending.state(index, stream), stream, version)
}

/// Decides a delete. Deleting again what is already deleted that way succeeds without
/// writing, whatever the expected version: deletes are idempotent.
pub fn delete(
    index: &Index,
    pending: &Pending,
    stream: &StreamId,
    expected: ExpectedVersion,
    mode: DeleteMode,
    created_micros: i64,
) -> Result<DeleteDecision, StoreError> {
    let state = pending
        .state(index, stream)
        .ok_or_else(|| StoreError::StreamNotFound(stream.clone()))?;
    let done = DeleteResult {
        through_version: state.version,
    };
    if state.tombstoned || (mode == DeleteMode::Soft && state.deleted) {
        return Ok(DeleteDecision::AlreadyDone(done));
    }
    if !expected.accepts(state.current()) {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: state.current(),
        });
    }
    Ok(DeleteDecision::Write(Deletion {
        created_micros,
        stream: stream.clone(),
        mode,
        through_version: state.version,
    }))
}

/// An append whose event ids are all committed, consecutively, in this stream at the
/// place the append asks for is a retry: it gets the original result. Any other use of
/// a committed id is a conflict.
fn retried(
    index: &Index,
    pending: &Pending,
    ids: &EventIds,
    records: &dyn Records,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
) -> Result<Option<AppendResult>, StoreError> {
    // Consecutive ids of a retry sit in the same record: read it once.
    let mut last_read = None;
    let mut places = Vec::with_capacity(events.len());
    for event in events {
        places.push(find_event(
            index,
            pending,
            ids,
            records,
            event.id,
            &mut last_read,
        )?);
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
            place
                .as_ref()
                .is_some_and(|p| p.stream == *stream && p.version == first_version + i as u64)
        })
        && match expected {
            ExpectedVersion::Exact(v) => v.checked_add(1) == Some(first_version),
            // No stream: the start of the stream, or the first version after a delete.
            ExpectedVersion::NoStream => {
                first_version == 0
                    || pending
                        .state(index, stream)
                        .and_then(|s| s.deleted_through)
                        .is_some_and(|through| first_version - 1 <= through)
            }
            ExpectedVersion::Any | ExpectedVersion::StreamExists => true,
        };
    if same_place {
        let last = places
            .last()
            .and_then(|p| p.as_ref())
            .unwrap_or(first_known);
        return Ok(Some(AppendResult {
            version: last.version,
            position: last.position,
        }));
    }
    Err(StoreError::EventIdConflict {
        id: events[conflict_at].id,
        stream: first_known.stream.clone(),
        version: first_known.version,
    })
}

/// Where an event id is committed, or goes earlier in this batch.
/// `last_read` keeps the record read for the previous id.
fn find_event(
    index: &Index,
    pending: &Pending,
    ids: &EventIds,
    records: &dyn Records,
    id: Uuid,
    last_read: &mut Option<Arc<Record>>,
) -> Result<Option<EventPlace>, StoreError> {
    let Some(position) = ids.get(&id)? else {
        return Ok(None);
    };
    if let Some(place) = pending.place(position) {
        return Ok(Some(place));
    }
    let record = match last_read.take() {
        Some(record) if record.first_position <= position && position <= record.last_position() => {
            record
        }
        _ => {
            // The writer holds the index's read lock: nothing can move the record
            // while the disk is asked.
            let disk = ids.disk().map(|db| db.streams());
            let Some(found) = lookup::record_holding(index, disk, position)? else {
                return Ok(None);
            };
            records.record(found.loc)?
        }
    };
    if position > record.last_position() {
        // Reclaimed by a scavenge: the id is forgotten, as it will be after a restart.
        return Ok(None);
    }
    *last_read = Some(record.clone());
    let offset = position - record.first_position;
    Ok(Some(EventPlace {
        stream: record.stream.clone(),
        version: record.first_version + offset,
        position,
    }))
}

//! The in-memory index: derived data, rebuilt from the log at every start.
//!
//! - `records`: every append record in log order, with where it lies on disk. Positions
//!   are gapless, so the record holding a position is found by binary search.
//! - `streams`: for each stream, its version and, per append, the first version and the
//!   record it was written in.
//! - `ids`: every committed event id and its position, for idempotent retries.
//!
//! Cost per single-event append: 24 bytes in `records`, 16 in its stream, about 40 in
//! `ids`; plus about 100 bytes per stream.

use super::types::StreamId;
use std::collections::HashMap;
use uuid::Uuid;

/// Where a record lies on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordLoc {
    /// The segment's sequence number.
    pub segment: u32,
    /// Length of the framed record.
    pub len: u32,
    /// Offset of the frame in the segment.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy)]
struct LogRecord {
    first_position: u64,
    loc: RecordLoc,
}

#[derive(Debug, Clone, Copy)]
struct Chunk {
    first_version: u64,
    record: usize,
}

#[derive(Debug, Default)]
struct StreamEntry {
    chunks: Vec<Chunk>,
    version: u64,
}

/// The index. The writer is its only mutator; readers take short read locks.
#[derive(Debug, Default)]
pub struct Index {
    records: Vec<LogRecord>,
    streams: HashMap<StreamId, StreamEntry>,
    ids: HashMap<Uuid, u64>,
    next_position: u64,
}

impl Index {
    /// The version of the stream's last event; None for a stream never written.
    pub fn stream_version(&self, stream: &StreamId) -> Option<u64> {
        self.streams.get(stream).map(|s| s.version)
    }

    /// The position the next committed event will get.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// The position of a committed event id.
    pub fn position_of(&self, id: &Uuid) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// The record that holds `position`.
    pub fn record_holding(&self, position: u64) -> Option<RecordLoc> {
        if position >= self.next_position {
            return None;
        }
        let at = self
            .records
            .partition_point(|r| r.first_position <= position);
        at.checked_sub(1).map(|i| self.records[i].loc)
    }

    /// The record that holds version `version` of `stream`.
    pub fn record_holding_version(&self, stream: &StreamId, version: u64) -> Option<RecordLoc> {
        let entry = self.streams.get(stream)?;
        if version > entry.version {
            return None;
        }
        let at = entry.chunks.partition_point(|c| c.first_version <= version);
        let chunk = entry.chunks.get(at.checked_sub(1)?)?;
        Some(self.records[chunk.record].loc)
    }

    /// Whether `first_position` and `first_version` continue the log and the stream
    /// without a gap: the invariant every committed record must keep.
    pub fn continues(&self, stream: &StreamId, first_version: u64, first_position: u64) -> bool {
        let expected_version = self.stream_version(stream).map_or(0, |v| v + 1);
        first_position == self.next_position && first_version == expected_version
    }

    /// Adds a committed record whose events have `ids`. The caller has checked
    /// [`Index::continues`].
    pub fn apply(
        &mut self,
        loc: RecordLoc,
        stream: &StreamId,
        first_version: u64,
        first_position: u64,
        ids: impl IntoIterator<Item = Uuid>,
    ) {
        let record = self.records.len();
        self.records.push(LogRecord {
            first_position,
            loc,
        });
        let mut position = first_position;
        for id in ids {
            self.ids.insert(id, position);
            position += 1;
        }
        self.next_position = position;
        let entry = match self.streams.get_mut(stream) {
            Some(entry) => entry,
            None => self.streams.entry(stream.clone()).or_default(),
        };
        entry.chunks.push(Chunk {
            first_version,
            record,
        });
        entry.version = first_version + (position - first_position) - 1;
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

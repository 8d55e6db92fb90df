//! Answers from the index on disk: what the index in memory answers of the log up to
//! the checkpoint (a stream's facts, what a read covers, its info, the record holding a
//! version or a position, the streams in listing order), asked of the keyspaces that
//! `disk_streams.rs` and `disk_meta.rs` write. Each answer ignores what lies at or past
//! the checkpoint's end position (`end`): a crash between an ingestion and its
//! checkpoint leaves records and chunks there.
//!
//! Reads are not served from here yet (issue 24): `verify.rs` checks every answer
//! against the index in memory that a replay of the log builds, so that the answers
//! are the same when they are.

use super::disk_streams::{
    DiskChunk, DiskDeletion, StreamKeyspaces, chunk_key, decode_record_pair, index_error,
    malformed, record_entry, stream_key,
};
use super::facts::{RulesInForce, StreamFacts, now_micros};
use super::{LogRecord, RecordLoc, SnapshotLoc};
use crate::store::error::StoreError;
use crate::store::types::{StreamId, StreamInfo, StreamRules};
use std::collections::HashMap;
use std::ops::{Bound, Range};
use std::sync::Arc;
use uuid::Uuid;

/// Rules for the streams of these types that have none of their own.
pub type DefaultRules = HashMap<Arc<str>, StreamRules>;

impl StreamKeyspaces {
    /// What the index knows of `stream` below `end`; None when nothing.
    pub fn stream_facts(
        &self,
        stream: &StreamId,
        end: u64,
    ) -> Result<Option<StreamFacts>, StoreError> {
        Ok(self.stream_entry(stream, end)?.map(|(facts, _)| facts))
    }

    /// [`StreamKeyspaces::stream_facts`], and the stream's last chunk below `end` when
    /// it has one: what the index in memory keeps of a stream (`Index::entry`).
    pub fn stream_entry(
        &self,
        stream: &StreamId,
        end: u64,
    ) -> Result<Option<(StreamFacts, Option<DiskChunk>)>, StoreError> {
        let key = stream_key(stream);
        let first = self.chunks_of(&key, ..).next().transpose()?;
        let first = first.filter(|c| c.first_position < end);
        let last = match first {
            Some(_) => self.chunk_at_or_before(&key, u64::MAX, end)?,
            None => None,
        };
        let facts = facts_of(first, last, self.deletion_by_key(&key)?);
        Ok(facts.map(|facts| (facts, last)))
    }

    /// The rules in force for `stream`: its own, else its type's in `defaults`.
    pub fn rules_for(
        &self,
        stream: &StreamId,
        defaults: &DefaultRules,
    ) -> Result<RulesInForce, StoreError> {
        Ok(match self.meta.rules_of(&stream_key(stream))? {
            Some((revision, rules)) => RulesInForce {
                rules,
                revision,
                type_default: false,
            },
            None => match defaults.get(&stream.stream_type) {
                Some(rules) => RulesInForce {
                    rules: *rules,
                    revision: 0,
                    type_default: true,
                },
                None => RulesInForce::default(),
            },
        })
    }

    /// The versions a read of `stream` covers, (first, last); None for a stream the
    /// index does not know below `end`, or whose events are all deleted.
    pub fn readable(
        &self,
        stream: &StreamId,
        defaults: &DefaultRules,
        end: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(facts) = self.stream_facts(stream, end)? else {
            return Ok(None);
        };
        let first = self.first_readable(stream, &facts, defaults, end)?;
        Ok(facts.readable(first))
    }

    /// What the store would say of `stream` from the index below `end`.
    pub fn info(
        &self,
        stream: &StreamId,
        defaults: &DefaultRules,
        end: u64,
    ) -> Result<Option<StreamInfo>, StoreError> {
        let Some(facts) = self.stream_facts(stream, end)? else {
            return Ok(None);
        };
        let rules = self.rules_for(stream, defaults)?;
        let first = self.first_readable(stream, &facts, defaults, end)?;
        let key = stream_key(stream);
        let positions = [first, facts.version].map(|version| self.position_of(&key, version, end));
        let [first_position, last_position] = positions;
        let (first_position, last_position) = (first_position?, last_position?);
        Ok(Some(facts.info(stream, rules, first, |version| {
            match version == first {
                true => first_position,
                false => last_position,
            }
        })))
    }

    /// The snapshot of `stream` at its highest version, if the index keeps one.
    pub fn latest_snapshot(&self, stream: &StreamId) -> Result<Option<SnapshotLoc>, StoreError> {
        self.meta.latest_snapshot(&stream_key(stream))
    }

    /// The record that holds version `version` of `stream`, if one below `end` does.
    pub fn record_holding_version(
        &self,
        stream: &StreamId,
        version: u64,
        end: u64,
    ) -> Result<Option<RecordLoc>, StoreError> {
        let Some(chunk) = self.chunk_holding(&stream_key(stream), version, end)? else {
            return Ok(None);
        };
        Ok(self.chunk_record(&chunk, end)?.map(|record| record.loc))
    }

    /// The last record below `end` that starts at or before `position`: the one
    /// holding it unless a scavenge reclaimed it (the caller checks its events).
    pub fn record_holding_below(
        &self,
        position: u64,
        end: u64,
    ) -> Result<Option<LogRecord>, StoreError> {
        match end.checked_sub(1) {
            Some(last) => self.record_holding(position.min(last)),
            None => Ok(None),
        }
    }

    /// The first record that starts after `position` and before `end`.
    pub fn record_after(&self, position: u64, end: u64) -> Result<Option<LogRecord>, StoreError> {
        match position.checked_add(1) {
            Some(next) => self.first_record_in(next..end),
            None => Ok(None),
        }
    }

    /// Up to `limit` streams after `after` (from the first when None), in listing order
    /// ((type, key), as their keys sort), that the index knows below `end`.
    pub fn streams_after(
        &self,
        after: Option<&StreamId>,
        limit: usize,
        end: u64,
    ) -> Result<Vec<StreamId>, StoreError> {
        let mut from = after.map(stream_key);
        let mut streams = Vec::new();
        while streams.len() < limit {
            let with_chunks = self.next_stream_with_chunks(from.as_deref(), end)?;
            let deleted = self.next_deleted_stream(from.as_deref())?;
            let next = match (with_chunks, deleted) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            streams.push(decode_stream_key(&next)?);
            from = Some(next);
        }
        Ok(streams)
    }

    /// The first version a read of `stream` returns, under its rules in force.
    fn first_readable(
        &self,
        stream: &StreamId,
        facts: &StreamFacts,
        defaults: &DefaultRules,
        end: u64,
    ) -> Result<u64, StoreError> {
        let rules = self.rules_for(stream, defaults)?.rules;
        let key = stream_key(stream);
        facts.first_readable(&rules, now_micros(), |cutoff| {
            self.first_committed_since(&key, facts, cutoff, end)
        })
    }

    /// The first version of the stream keyed `key` committed at or after `cutoff` (one
    /// past its last when none was).
    pub(super) fn first_committed_since(
        &self,
        key: &[u8],
        facts: &StreamFacts,
        cutoff: i64,
        end: u64,
    ) -> Result<u64, StoreError> {
        match facts.first_stored {
            Some(first) => self.first_committed_in(key, first..facts.version + 1, cutoff, end),
            None => Ok(facts.version + 1),
        }
    }

    /// The first of `versions` of the stream keyed `key` committed at or after `cutoff`
    /// (`versions.end` when none was): commit times rise along a stream, so a binary
    /// search over its versions, one chunk looked up per step, finds it. It lands on
    /// the first version of a chunk, as a chunk's versions share its stamp.
    pub fn first_committed_in(
        &self,
        key: &[u8],
        versions: Range<u64>,
        cutoff: i64,
        end: u64,
    ) -> Result<u64, StoreError> {
        let (mut low, mut high) = (versions.start, versions.end);
        while low < high {
            let middle = low + (high - low) / 2;
            let older = self
                .chunk_at_or_before(key, middle, end)?
                .is_none_or(|chunk| chunk.created_micros < cutoff);
            match older {
                true => low = middle + 1,
                false => high = middle,
            }
        }
        Ok(low)
    }

    /// The position of version `version` of the stream keyed `key`, from the chunk
    /// below `end` that holds it (positions follow versions within an append, and a
    /// scavenge that cuts an append's first events moves neither).
    pub fn version_position(
        &self,
        key: &[u8],
        version: u64,
        end: u64,
    ) -> Result<Option<u64>, StoreError> {
        let chunk = self.chunk_holding(key, version, end)?;
        Ok(chunk.map(|chunk| chunk.first_position + (version - chunk.first_version)))
    }

    /// The positions of the append of `stream` below `end` that holds `version`.
    pub fn chunk_positions(
        &self,
        stream: &StreamId,
        version: u64,
        end: u64,
    ) -> Result<Option<Range<u64>>, StoreError> {
        let chunk = self.chunk_holding(&stream_key(stream), version, end)?;
        Ok(chunk.map(|chunk| {
            chunk.first_position..chunk.first_position.saturating_add(u64::from(chunk.events))
        }))
    }

    /// The position of version `version` of the stream keyed `key`: in its chunk's
    /// record, when the index holds that below `end`.
    fn position_of(&self, key: &[u8], version: u64, end: u64) -> Result<Option<u64>, StoreError> {
        let Some(chunk) = self.chunk_at_or_before(key, version, end)? else {
            return Ok(None);
        };
        let record = self.chunk_record(&chunk, end)?;
        Ok(record.map(|r| r.first_position + (version - chunk.first_version)))
    }

    /// The record of `chunk`: the first that starts in its positions (later than the
    /// chunk when a scavenge cut its first events); None when it was reclaimed.
    fn chunk_record(&self, chunk: &DiskChunk, end: u64) -> Result<Option<LogRecord>, StoreError> {
        let chunk_end = chunk.first_position.saturating_add(u64::from(chunk.events));
        self.first_record_in(chunk.first_position..chunk_end.min(end))
    }

    /// The first record that starts in `positions`.
    pub fn first_record_in(&self, positions: Range<u64>) -> Result<Option<LogRecord>, StoreError> {
        if positions.is_empty() {
            return Ok(None);
        }
        // Most often one starts at the first: a point read (through the tables' bloom
        // filters) is far cheaper than a range's iterator over the levels.
        if let Some(record) = self.record_at(positions.start)? {
            return Ok(Some(record));
        }
        let bounds = positions.start.to_be_bytes()..positions.end.to_be_bytes();
        record_entry(self.records.range(bounds).next())
    }

    /// The record that starts at `position`, if one does.
    fn record_at(&self, position: u64) -> Result<Option<LogRecord>, StoreError> {
        let key = position.to_be_bytes();
        let value = self
            .records
            .get(key)
            .map_err(|e| index_error("reading a record from the index", e))?;
        value
            .map(|value| decode_record_pair(&key, &value))
            .transpose()
    }

    /// Every record that starts in `positions`, in log order.
    pub fn records_in(&self, positions: Range<u64>) -> Result<Vec<LogRecord>, StoreError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let bounds = positions.start.to_be_bytes()..positions.end.to_be_bytes();
        self.records
            .range(bounds)
            .map(|item| {
                let (key, value) = item
                    .into_inner()
                    .map_err(|e| index_error("reading a record from the index", e))?;
                decode_record_pair(&key, &value)
            })
            .collect()
    }

    /// The last record that starts in `positions`.
    pub fn last_record_in(&self, positions: Range<u64>) -> Result<Option<LogRecord>, StoreError> {
        if positions.is_empty() {
            return Ok(None);
        }
        // A read of the log forward asks for the record that starts where the last
        // one ended.
        if let Some(record) = self.record_at(positions.end - 1)? {
            return Ok(Some(record));
        }
        let bounds = positions.start.to_be_bytes()..positions.end.to_be_bytes();
        record_entry(self.records.range(bounds).next_back())
    }

    /// The chunk of the stream keyed `key` below `end` that holds `version`.
    fn chunk_holding(
        &self,
        key: &[u8],
        version: u64,
        end: u64,
    ) -> Result<Option<DiskChunk>, StoreError> {
        let chunk = self.chunk_at_or_before(key, version, end)?;
        Ok(chunk.filter(|chunk| version <= chunk.last_version()))
    }

    /// The last chunk of the stream keyed `key` whose first version is at or before
    /// `version`, among those below `end`.
    fn chunk_at_or_before(
        &self,
        key: &[u8],
        version: u64,
        end: u64,
    ) -> Result<Option<DiskChunk>, StoreError> {
        // A read going forward asks for the version after the last chunk's: the first
        // of the next, found by a point read (through the tables' bloom filters), far
        // cheaper than a range's iterator over the levels.
        let exact = chunk_key(key, version);
        let found = self
            .chunks
            .get(&exact)
            .map_err(|e| index_error("reading a stream's chunk from the index", e))?;
        if let Some(value) = found {
            let chunk = DiskChunk::decode(version, &value)
                .ok_or_else(|| malformed("a chunk", value.len()))?;
            if chunk.first_position < end {
                return Ok(Some(chunk));
            }
        }
        // Versions and positions rise together: those past `end` are the last chunks.
        for chunk in self.chunks_of(key, ..=version).rev() {
            let chunk = chunk?;
            if chunk.first_position < end {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }

    /// The chunks of the stream keyed `key` whose first versions are in `versions`.
    fn chunks_of(
        &self,
        key: &[u8],
        versions: impl std::ops::RangeBounds<u64>,
    ) -> impl DoubleEndedIterator<Item = Result<DiskChunk, StoreError>> + '_ {
        let bound = |b: Bound<&u64>| match b {
            Bound::Included(v) => Bound::Included(chunk_key(key, *v)),
            Bound::Excluded(v) => Bound::Excluded(chunk_key(key, *v)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let low = match versions.start_bound() {
            Bound::Unbounded => Bound::Included(chunk_key(key, 0)),
            other => bound(other),
        };
        let high = match versions.end_bound() {
            Bound::Unbounded => Bound::Included(chunk_key(key, u64::MAX)),
            other => bound(other),
        };
        let prefix = key.len();
        self.chunks.range((low, high)).map(move |item| {
            let (chunk_key, value) = item
                .into_inner()
                .map_err(|e| index_error("reading a stream's chunk from the index", e))?;
            let version = <[u8; 8]>::try_from(&chunk_key[prefix..])
                .map(u64::from_be_bytes)
                .map_err(|_| malformed("a chunk key", chunk_key.len()))?;
            DiskChunk::decode(version, &value).ok_or_else(|| malformed("a chunk", value.len()))
        })
    }

    /// The key of the first stream after `after` with a chunk below `end`.
    fn next_stream_with_chunks(
        &self,
        after: Option<&[u8]>,
        end: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut from = match after {
            // Past every chunk of `after`.
            Some(after) => Bound::Excluded(chunk_key(after, u64::MAX)),
            None => Bound::Unbounded,
        };
        loop {
            let found = self
                .chunks
                .range((from, Bound::Unbounded))
                .next()
                .map(|item| item.into_inner())
                .transpose()
                .map_err(|e| index_error("reading a stream's chunk from the index", e))?;
            let Some((chunk_key_found, value)) = found else {
                return Ok(None);
            };
            let key = chunk_key_found
                .len()
                .checked_sub(8)
                .map(|at| chunk_key_found[..at].to_vec())
                .ok_or_else(|| malformed("a chunk key", chunk_key_found.len()))?;
            // Its first chunk: a stream whose first lies past `end` is not known below it.
            let chunk =
                DiskChunk::decode(0, &value).ok_or_else(|| malformed("a chunk", value.len()))?;
            if chunk.first_position < end {
                return Ok(Some(key));
            }
            from = Bound::Excluded(chunk_key(&key, u64::MAX));
        }
    }

    /// The key of the first stream after `after` that a delete names.
    fn next_deleted_stream(&self, after: Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        let from = match after {
            Some(after) => Bound::Excluded(after.to_vec()),
            None => Bound::Unbounded,
        };
        self.deletes
            .range((from, Bound::Unbounded))
            .next()
            .map(|item| item.key().map(|key| key.to_vec()))
            .transpose()
            .map_err(|e| index_error("reading a stream's delete from the index", e))
    }
}

/// A stream's facts from its first and last chunk below the checkpoint and what its
/// deletes say, as a replay of the log finds them: its version is the later of its last
/// chunk's and its deletes'; it was made by its first append or, when a scavenge
/// reclaimed that and the delete that hid it is older than what remains, its first
/// delete; its last append is its last chunk's, or that delete's when none is left.
fn facts_of(
    first: Option<DiskChunk>,
    last: Option<DiskChunk>,
    deletion: Option<DiskDeletion>,
) -> Option<StreamFacts> {
    let chunks = first.zip(last);
    if chunks.is_none() && deletion.is_none() {
        return None;
    }
    let version = [
        chunks.map(|(_, last)| last.last_version()),
        deletion.map(|d| d.through_version),
    ];
    let created = [
        chunks.map(|(first, _)| first.created_micros),
        deletion.map(|d| d.first_micros),
    ];
    Some(StreamFacts {
        version: version.into_iter().flatten().max()?,
        first_stored: chunks.map(|(first, _)| first.first_version),
        deleted_through: deletion.map(|d| d.through_version),
        tombstoned: deletion.is_some_and(|d| d.tombstoned),
        created_micros: created.into_iter().flatten().min()?,
        last_appended_micros: chunks
            .map(|(_, last)| last.created_micros)
            .or(deletion.map(|d| d.first_micros))?,
    })
}

/// The stream `stream_key` names (`disk_streams::stream_key`).
pub fn decode_stream_key(key: &[u8]) -> Result<StreamId, StoreError> {
    let bad = || malformed("a stream key", key.len());
    let mut stream_type = Vec::new();
    let mut at = 0;
    loop {
        match (key.get(at), key.get(at + 1)) {
            (Some(0), Some(0)) => break,
            (Some(0), Some(0xff)) => {
                stream_type.push(0);
                at += 2;
            }
            (Some(0), _) | (None, _) => return Err(bad()),
            (Some(&byte), _) => {
                stream_type.push(byte);
                at += 1;
            }
        }
    }
    let uuid: [u8; 16] = key
        .get(at + 2..)
        .and_then(|rest| rest.try_into().ok())
        .ok_or_else(bad)?;
    let stream_type = String::from_utf8(stream_type).map_err(|_| bad())?;
    Ok(StreamId {
        key: Uuid::from_bytes(uuid),
        stream_type: Arc::from(stream_type),
    })
}

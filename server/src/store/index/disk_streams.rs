//! The streams' part of the index on disk: for every sealed segment, where each append
//! record lies by its position, each stream's appends by version, and each stream's
//! deletes. Written by the ingester from the segment's own file, so that it is derived
//! from the log exactly as a start derives the index in memory.
//!
//! Keyspaces (integers big-endian, so that keys sort as the numbers do):
//! - `records`: an append record's first position -> its segment, offset and length,
//!   and its commit time (24 bytes). The record holding a position is the last one
//!   at or before it.
//! - `chunks`: a stream's key, then the first version of one of its appends -> that
//!   append's first position, its number of events and its commit time (20 bytes). A
//!   chunk names a position, not a place in a file: positions never change, so a
//!   scavenge that moves records leaves the chunks as they are.
//! - `deletes`: a stream's key -> the version through which it is deleted, whether it
//!   is tombstoned, and the commit stamp of its first delete (17 bytes).
//!
//! Everything a segment puts there is a function of the segment, and merging deletes
//! takes the larger version and either tombstone: ingesting a segment again (after a
//! crash before its checkpoint) gives the same index. Records and chunks are written
//! before the checkpoint moves, so after such a crash some may lie past it: readers of
//! the index ignore what lies past its checkpoint. A stream's version is its last
//! chunk's last version, or what its delete says when a scavenge reclaimed its events.
//!
//! A scavenge that rewrites a segment already ingested has the ingester put the new
//! file in, in place of the old (`reingest_segment`): its records anew, the chunks of
//! the streams that lost events, where its kept snapshots lie.
//!
//! Not here yet (issue 24 goes on): the index in memory is still built from the whole
//! log at every start and serves every read; `disk_reads.rs` answers from here as it
//! does, checked by `verify.rs`.

use super::disk::Rewritten;
use super::disk_meta::{MetaKeyspaces, SegmentMeta};
use super::{LogRecord, RecordLoc};
use crate::store::error::StoreError;
use crate::store::log::record::{Entry, Front};
use crate::store::log::segment;
use crate::store::types::{DeleteMode, StreamId};
use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// One append of a stream, as the index on disk holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskChunk {
    pub first_version: u64,
    pub first_position: u64,
    pub events: u32,
    pub created_micros: i64,
}

impl DiskChunk {
    /// The version of its last event.
    pub fn last_version(&self) -> u64 {
        self.first_version + u64::from(self.events.max(1)) - 1
    }

    fn encode(&self) -> [u8; 20] {
        let mut bytes = [0; 20];
        bytes[0..8].copy_from_slice(&self.first_position.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.events.to_be_bytes());
        bytes[12..20].copy_from_slice(&self.created_micros.to_be_bytes());
        bytes
    }

    pub(super) fn decode(first_version: u64, bytes: &[u8]) -> Option<DiskChunk> {
        let bytes: &[u8; 20] = bytes.try_into().ok()?;
        Some(DiskChunk {
            first_version,
            first_position: u64::from_be_bytes(bytes[0..8].try_into().ok()?),
            events: u32::from_be_bytes(bytes[8..12].try_into().ok()?),
            created_micros: i64::from_be_bytes(bytes[12..20].try_into().ok()?),
        })
    }
}

/// What deletes say of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskDeletion {
    pub through_version: u64,
    pub tombstoned: bool,
    /// The commit stamp of its first delete: a scavenge keeps every delete record, so
    /// a stream whose events it reclaimed was first seen there (`disk_reads.rs`).
    pub first_micros: i64,
}

impl DiskDeletion {
    /// Both deletes at once: the later version, a tombstone if either is one, the
    /// earlier stamp.
    fn merge(self, other: DiskDeletion) -> DiskDeletion {
        DiskDeletion {
            through_version: self.through_version.max(other.through_version),
            tombstoned: self.tombstoned || other.tombstoned,
            first_micros: self.first_micros.min(other.first_micros),
        }
    }

    fn encode(self) -> [u8; 17] {
        let mut bytes = [0; 17];
        bytes[0..8].copy_from_slice(&self.through_version.to_be_bytes());
        bytes[8] = u8::from(self.tombstoned);
        bytes[9..17].copy_from_slice(&self.first_micros.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<DiskDeletion> {
        let bytes: &[u8; 17] = bytes.try_into().ok()?;
        Some(DiskDeletion {
            through_version: u64::from_be_bytes(bytes[0..8].try_into().ok()?),
            tombstoned: bytes[8] != 0,
            first_micros: i64::from_be_bytes(bytes[9..17].try_into().ok()?),
        })
    }
}

fn encode_record(record: &LogRecord) -> [u8; 24] {
    let mut bytes = [0; 24];
    bytes[0..4].copy_from_slice(&record.loc.segment.to_be_bytes());
    bytes[4..8].copy_from_slice(&record.loc.len.to_be_bytes());
    bytes[8..16].copy_from_slice(&record.loc.offset.to_be_bytes());
    bytes[16..24].copy_from_slice(&record.created_micros.to_be_bytes());
    bytes
}

/// The record of `item` from `records`, if there is one.
pub(super) fn record_entry(item: Option<fjall::Guard>) -> Result<Option<LogRecord>, StoreError> {
    let pair = item
        .map(|item| item.into_inner())
        .transpose()
        .map_err(|e| index_error("reading a record from the index", e))?;
    pair.map(|(key, value)| decode_record_pair(&key, &value))
        .transpose()
}

/// The record stored in `records` under `key` (its first position) as `value`.
pub(super) fn decode_record_pair(key: &[u8], value: &[u8]) -> Result<LogRecord, StoreError> {
    let first_position = <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| malformed("a position", key.len()))?;
    decode_record(first_position, value).ok_or_else(|| malformed("a record", value.len()))
}

fn decode_record(first_position: u64, bytes: &[u8]) -> Option<LogRecord> {
    let bytes: &[u8; 24] = bytes.try_into().ok()?;
    Some(LogRecord {
        first_position,
        loc: RecordLoc {
            segment: u32::from_be_bytes(bytes[0..4].try_into().ok()?),
            len: u32::from_be_bytes(bytes[4..8].try_into().ok()?),
            offset: u64::from_be_bytes(bytes[8..16].try_into().ok()?),
        },
        created_micros: i64::from_be_bytes(bytes[16..24].try_into().ok()?),
    })
}

/// A stream's key in `chunks` and `deletes`: its type's bytes, each zero byte written
/// as zero then 0xff, then two zero bytes, then its key's 16 bytes. Keys sort as
/// (type, key) does, as listings go, whatever bytes a type holds: the two zeros end a
/// type before any byte of a longer one that starts the same.
pub fn stream_key(stream: &StreamId) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.stream_type.len() + 18);
    for &byte in stream.stream_type.as_bytes() {
        key.push(byte);
        if byte == 0 {
            key.push(0xff);
        }
    }
    key.extend_from_slice(&[0, 0]);
    key.extend_from_slice(stream.key.as_bytes());
    key
}

pub fn chunk_key(stream_key: &[u8], first_version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream_key.len() + 8);
    key.extend_from_slice(stream_key);
    key.extend_from_slice(&first_version.to_be_bytes());
    key
}

pub(super) fn index_error(context: impl Into<String>, error: fjall::Error) -> StoreError {
    StoreError::io(context, io::Error::other(error.to_string()))
}

/// Every key and value of `keyspace`, in key order; `what` names them in errors.
pub(super) fn entries<'a>(
    keyspace: &'a Keyspace,
    what: &'static str,
) -> impl Iterator<Item = Result<fjall::KvPair, StoreError>> + 'a {
    keyspace.iter().map(move |item| {
        item.into_inner()
            .map_err(|e| index_error(format!("reading the index's {what}"), e))
    })
}

/// Writes `entries`, in strictly rising key order, into `keyspace` as a table of its
/// own, synced when this returns.
fn ingest<K: Into<fjall::UserKey>, V: Into<fjall::UserValue>>(
    keyspace: &Keyspace,
    entries: impl Iterator<Item = (K, V)>,
    seq: u32,
) -> Result<(), StoreError> {
    let ingesting = |e| index_error(format!("indexing segment {seq}"), e);
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return Ok(());
    }
    let mut ingestion = keyspace.start_ingestion().map_err(ingesting)?;
    for (key, value) in entries {
        ingestion.write(key, value).map_err(ingesting)?;
    }
    ingestion.finish().map_err(ingesting)
}

pub(super) fn malformed(what: &str, len: usize) -> StoreError {
    StoreError::IndexMismatch(format!("the index holds {what} of {len} bytes"))
}

/// What one segment put into the index on disk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCounts {
    pub records: usize,
    pub deletes: usize,
}

/// What one segment's records say, in the index's terms.
struct ScannedSegment {
    /// Each append record's first position, and its value in `records`, in order.
    records: Vec<(u64, [u8; 24])>,
    /// Each append's chunk key and value, in log order.
    chunks: Vec<(Vec<u8>, [u8; 20])>,
    /// What its deletes say, by stream key.
    deletes: BTreeMap<Vec<u8>, DiskDeletion>,
    meta: SegmentMeta,
}

/// Reads sealed segment `seq` from `path`: its records' fixed fields, checksums
/// checked. Damage in it is an error, as at a start.
fn scan_segment(path: &Path, seq: u32) -> Result<ScannedSegment, StoreError> {
    let bytes = Bytes::from(
        std::fs::read(path)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?,
    );
    let mut scanned = ScannedSegment {
        records: Vec::new(),
        chunks: Vec::new(),
        deletes: BTreeMap::new(),
        meta: SegmentMeta::default(),
    };
    segment::fronts(path, u64::from(seq), &bytes, |offset, len, front| {
        let loc = RecordLoc {
            segment: seq,
            len: len as u32,
            offset,
        };
        match &front {
            Front::Append(append) => scanned.meta.see(loc, append.created_micros, None),
            Front::Other(entry) => scanned.meta.see(loc, entry.created_micros(), Some(entry)),
        }
        match front {
            Front::Append(append) => {
                let record = LogRecord {
                    first_position: append.first_position,
                    loc,
                    created_micros: append.created_micros,
                };
                let chunk = DiskChunk {
                    first_version: append.first_version,
                    first_position: append.first_position,
                    events: append.event_count,
                    created_micros: append.created_micros,
                };
                scanned
                    .records
                    .push((append.first_position, encode_record(&record)));
                let key = chunk_key(&stream_key(&append.stream), append.first_version);
                scanned.chunks.push((key, chunk.encode()));
            }
            Front::Other(Entry::Delete(deletion)) => {
                let deleted = DiskDeletion {
                    through_version: deletion.through_version,
                    tombstoned: deletion.mode == DeleteMode::Tombstone,
                    first_micros: deletion.created_micros,
                };
                scanned
                    .deletes
                    .entry(stream_key(&deletion.stream))
                    .and_modify(|before| *before = before.merge(deleted))
                    .or_insert(deleted);
            }
            // Snapshots and rules: `meta` above; marks and a rewrite's header say
            // nothing of streams.
            Front::Other(_) => {}
        }
        Ok(())
    })?;
    Ok(scanned)
}

/// The streams' keyspaces.
pub struct StreamKeyspaces {
    pub(super) records: Keyspace,
    pub(super) chunks: Keyspace,
    pub(super) deletes: Keyspace,
    /// Rules, snapshots and segments (`disk_meta.rs`).
    pub meta: MetaKeyspaces,
}

impl std::fmt::Debug for StreamKeyspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamKeyspaces").finish_non_exhaustive()
    }
}

impl StreamKeyspaces {
    pub fn open(
        db: &Database,
        compaction: impl Fn() -> fjall::compaction::Leveled,
    ) -> fjall::Result<StreamKeyspaces> {
        // Each segment's records follow the last one's, so its tables never overlap
        // and fjall's defaults suit them; a segment's chunks are spread over every
        // stream it wrote, as event ids are over all ids, and merge as those do.
        let records = db.keyspace("records", KeyspaceCreateOptions::default)?;
        let chunks = db.keyspace("chunks", || {
            KeyspaceCreateOptions::default().compaction_strategy(Arc::new(compaction()))
        })?;
        let deletes = db.keyspace("deletes", KeyspaceCreateOptions::default)?;
        let meta = MetaKeyspaces {
            rules: db.keyspace("rules", KeyspaceCreateOptions::default)?,
            snapshots: db.keyspace("snapshots", KeyspaceCreateOptions::default)?,
            segments: db.keyspace("segments", KeyspaceCreateOptions::default)?,
            snapshots_kept: 1,
        };
        Ok(StreamKeyspaces {
            records,
            chunks,
            deletes,
            meta,
        })
    }

    /// Reads sealed segment `seq` from `path`, which ends before `end_position`, puts
    /// its records and its streams' chunks into the index as tables of their own
    /// (fjall's ingestion, as for event ids: no journal, which fjall replays at every
    /// open), and its deletes (merged with those already there) and its rules,
    /// snapshots and end (`disk_meta.rs`) into `batch`, which the caller commits with
    /// the checkpoint. A crash between the two leaves the segment's records and chunks
    /// past the checkpoint: whoever reads the index ignores what lies past it, and the
    /// next start ingests the same segment again, which writes the same entries.
    /// Damage in the segment is an error, as at a start.
    pub fn ingest_segment(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        path: &Path,
        seq: u32,
        end_position: u64,
    ) -> Result<SegmentCounts, StoreError> {
        let scanned = scan_segment(path, seq)?;
        let counts = SegmentCounts {
            records: scanned.records.len(),
            deletes: scanned.deletes.len(),
        };
        let mut chunks = scanned.chunks;
        // fjall takes a table's keys in strictly rising order: a segment's records are
        // in position order already.
        chunks.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        chunks.dedup_by(|(a, _), (b, _)| a == b);
        ingest(
            &self.records,
            scanned
                .records
                .into_iter()
                .map(|(p, v)| (p.to_be_bytes(), v)),
            seq,
        )?;
        ingest(&self.chunks, chunks.into_iter(), seq)?;
        for (key, deleted) in scanned.deletes {
            let merged = match self.deletion_by_key(&key)? {
                Some(before) => before.merge(deleted),
                None => deleted,
            };
            batch.insert(&self.deletes, key, merged.encode());
        }
        self.meta.write(batch, seq, end_position, scanned.meta)?;
        Ok(counts)
    }

    /// Puts what sealed segment `rewritten.segment`, already in the index, holds after
    /// a scavenge rewrote it (its file at `path`) into `batch`, in place of what it held
    /// before: every record in its positions anew (kept ones moved, reclaimed ones
    /// gone, cut ones starting later), the chunks there of the streams that lost events
    /// (the others' name positions, which did not change), and where its kept
    /// snapshots lie now. Deletes and rules stay: a scavenge keeps every one.
    pub fn reingest_segment(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        path: &Path,
        rewritten: &Rewritten,
    ) -> Result<(), StoreError> {
        let scanned = scan_segment(path, rewritten.segment)?;
        let positions = &rewritten.positions;
        let bounds = positions.start.to_be_bytes()..positions.end.to_be_bytes();
        // A key both removed and inserted in one batch has one sequence number for
        // both: only those not inserted again are removed.
        let new_records: BTreeMap<[u8; 8], [u8; 24]> = scanned
            .records
            .into_iter()
            .map(|(p, v)| (p.to_be_bytes(), v))
            .collect();
        for item in self.records.range(bounds) {
            let key = item
                .key()
                .map_err(|e| index_error("reading the index's records", e))?;
            if !new_records.contains_key(&*key) {
                batch.remove(&self.records, key);
            }
        }
        for (key, value) in new_records {
            batch.insert(&self.records, key, value);
        }
        let mut streams: Vec<Vec<u8>> = rewritten.streams.iter().map(stream_key).collect();
        streams.sort_unstable();
        streams.dedup();
        let new_chunks: BTreeMap<Vec<u8>, [u8; 20]> = scanned
            .chunks
            .into_iter()
            .filter(|(key, _)| {
                streams
                    .binary_search_by(|stream| stream.as_slice().cmp(&key[..key.len() - 8]))
                    .is_ok()
            })
            .collect();
        for stream in &streams {
            for item in self.chunks.prefix(stream) {
                let (key, value) = item
                    .into_inner()
                    .map_err(|e| index_error("reading the index's chunks", e))?;
                let chunk = DiskChunk::decode(0, &value)
                    .ok_or_else(|| malformed("a chunk", value.len()))?;
                if chunk.first_position >= positions.end {
                    break;
                }
                if chunk.first_position >= positions.start && !new_chunks.contains_key(&*key) {
                    batch.remove(&self.chunks, key);
                }
            }
        }
        for (key, value) in new_chunks {
            batch.insert(&self.chunks, key, value);
        }
        self.meta
            .relocate(batch, rewritten, positions.end, scanned.meta)
    }

    /// Whether any append record starts at or after `position`.
    pub fn holds_records_from(&self, position: u64) -> Result<bool, StoreError> {
        match self.records.range(position.to_be_bytes()..).next() {
            None => Ok(false),
            Some(item) => item
                .key()
                .map(|_| true)
                .map_err(|e| index_error("reading a record from the index", e)),
        }
    }

    /// The append record that starts at or before `position`: the one holding it
    /// unless a scavenge reclaimed it (the caller checks its events).
    pub fn record_holding(&self, position: u64) -> Result<Option<LogRecord>, StoreError> {
        let last = self.records.range(..=position.to_be_bytes()).next_back();
        record_entry(last)
    }

    /// Every record the index holds, in log order.
    pub fn records(&self) -> impl Iterator<Item = Result<LogRecord, StoreError>> + '_ {
        entries(&self.records, "records").map(|item| {
            let (key, value) = item?;
            decode_record_pair(&key, &value)
        })
    }

    /// Every chunk the index holds, by its key (the stream's, then the version).
    pub fn chunks(&self) -> impl Iterator<Item = Result<(Vec<u8>, DiskChunk), StoreError>> + '_ {
        entries(&self.chunks, "chunks").map(|item| {
            let (key, value) = item?;
            let version = key
                .len()
                .checked_sub(8)
                .and_then(|at| <[u8; 8]>::try_from(&key[at..]).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| malformed("a chunk key", key.len()))?;
            let chunk = DiskChunk::decode(version, &value)
                .ok_or_else(|| malformed("a chunk", value.len()))?;
            Ok((key.to_vec(), chunk))
        })
    }

    /// Every stream's deletes, by the stream's key.
    pub fn deletes(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, DiskDeletion), StoreError>> + '_ {
        entries(&self.deletes, "deletes").map(|item| {
            let (key, value) = item?;
            let deleted =
                DiskDeletion::decode(&value).ok_or_else(|| malformed("a delete", value.len()))?;
            Ok((key.to_vec(), deleted))
        })
    }

    pub(super) fn deletion_by_key(&self, key: &[u8]) -> Result<Option<DiskDeletion>, StoreError> {
        let value = self
            .deletes
            .get(key)
            .map_err(|e| index_error("reading a stream's delete from the index", e))?;
        value
            .map(|bytes| {
                DiskDeletion::decode(&bytes).ok_or_else(|| malformed("a delete", bytes.len()))
            })
            .transpose()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::fs::RealFs;
    use crate::store::index::Index;
    use crate::store::index::disk::{Checkpoint, INDEX_DIR, IdMap, IndexDb};
    use crate::store::index::verify::check_index;
    use crate::store::log::recovery;
    use crate::store::{EventData, ExpectedVersion, FsyncPolicy, Store, StoreConfig, StreamRules};
    use uuid::Uuid;

    pub(crate) fn store_config(dir: &Path) -> StoreConfig {
        StoreConfig {
            data_dir: dir.to_path_buf(),
            cache_bytes: 0,
            index_cache_bytes: Some(1 << 20),
            index_entries_kept: None,
            fsync: FsyncPolicy::PowerLossUnsafe,
            // A few appends each: many sealed segments.
            segment_size: 4096,
            max_pending_bytes: 64 << 20,
            fs: Arc::new(RealFs),
            snapshots_per_stream: SNAPSHOTS_KEPT,
            default_rules: Default::default(),
        }
    }

    const SNAPSHOTS_KEPT: usize = 2;

    pub(crate) fn events(count: usize) -> Vec<EventData> {
        (0..count)
            .map(|_| EventData {
                id: Uuid::new_v4(),
                event_type: Arc::from("Tested"),
                data: Bytes::from(vec![b'x'; 100]),
                metadata: Bytes::new(),
            })
            .collect()
    }

    /// Every position and every version of `streams` below the checkpoint resolves on
    /// disk to the record the index in memory (rebuilt from the log) names; each
    /// stream's last chunk there ends at its version, and its deletes are the same.
    fn disk_resolves_as_memory(
        db: &IndexDb,
        memory: &Index,
        checkpoint: Checkpoint,
        streams: &[StreamId],
    ) {
        let disk = db.streams();
        let ingested = |loc: &RecordLoc| loc.segment <= checkpoint.segment;
        for position in 0..checkpoint.end_position {
            assert_eq!(
                disk.record_holding(position).expect("read"),
                memory.record_holding(position),
                "position {position}"
            );
        }
        for stream in streams {
            let version = memory.version_in_memory(stream).expect("written");
            for v in 0..=version {
                let Some(loc) = memory.record_holding_version(stream, v) else {
                    continue;
                };
                let on_disk = disk
                    .record_holding_version(stream, v, checkpoint.end_position)
                    .expect("read");
                match ingested(&loc) {
                    true => assert_eq!(on_disk, Some(loc), "{stream} v{v}"),
                    false => assert_eq!(on_disk, None, "{stream} v{v} is not ingested"),
                }
            }
            let facts = disk
                .stream_facts(stream, checkpoint.end_position)
                .expect("read");
            let last = memory.record_holding_version(stream, version);
            if last.as_ref().is_some_and(ingested) {
                assert_eq!(facts.map(|f| f.version), Some(version), "{stream}");
            }
            let state = memory.write_state(stream).expect("written");
            assert_eq!(
                facts.and_then(|f| f.deleted_through),
                state.deleted_through,
                "{stream}"
            );
            assert_eq!(
                facts.is_some_and(|f| f.tombstoned),
                state.tombstoned,
                "{stream}"
            );
        }
    }

    /// Appends of 1 to 4 events to 12 streams in turn, one of them deleted and one
    /// tombstoned on the way, then to a filler stream, with an index on disk in `dir`,
    /// and stops cleanly: every stream's last append is in a sealed segment. Returns
    /// the streams, the filler last.
    pub(crate) async fn fill(dir: &Path) -> Vec<StreamId> {
        let store = Store::open(store_config(dir)).expect("open");
        // A type with a zero byte in it beside its prefix: their keys must not mix.
        let streams: Vec<StreamId> = (0..12u128)
            .map(|n| StreamId {
                key: Uuid::from_u128(n % 4),
                stream_type: Arc::from(["order", "order\0", "order\0x"][(n / 4) as usize]),
            })
            .collect();
        for round in 0..20 {
            for (n, stream) in streams.iter().enumerate() {
                if round == 6 && n == 3 {
                    store
                        .delete_stream(stream.clone(), ExpectedVersion::Any, DeleteMode::Soft)
                        .await
                        .expect("delete");
                }
                if round == 8 && n == 7 {
                    store
                        .delete_stream(stream.clone(), ExpectedVersion::Any, DeleteMode::Tombstone)
                        .await
                        .expect("tombstone");
                }
                if round >= 8 && n == 7 {
                    continue;
                }
                let count = 1 + (round + n) % 4;
                let appended = store
                    .append(stream.clone(), ExpectedVersion::Any, events(count))
                    .await
                    .expect("append");
                // Three snapshots of some streams (two kept), one of them deleted
                // after its first; rules set twice on another.
                if n % 3 == 0 && round % 5 == 4 {
                    let state = Bytes::from_static(b"state");
                    store
                        .save_snapshot(stream.clone(), appended.version, Arc::from("s"), state)
                        .await
                        .expect("snapshot");
                }
                if n == 5 && round % 10 == 2 {
                    let rules = StreamRules {
                        max_count: Some(1_000 + round as u64),
                        ..StreamRules::default()
                    };
                    store
                        .set_stream_rules(stream.clone(), rules, None)
                        .await
                        .expect("rules");
                }
            }
        }
        // Filler, so that every stream's last append is in a sealed segment.
        let filler = StreamId {
            key: Uuid::new_v4(),
            stream_type: Arc::from("filler"),
        };
        for _ in 0..40 {
            store
                .append(filler.clone(), ExpectedVersion::Any, events(1))
                .await
                .expect("append");
        }
        store.shutdown().await;
        let mut all = streams;
        all.push(filler);
        all
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_sealed_segments_put_on_disk_resolves_as_the_index_in_memory_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let all = fill(dir.path()).await;
        let streams = &all[..all.len() - 1];

        let memory = recovery::replay(&RealFs, dir.path()).expect("replay").index;
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let checkpoint = checkpoint.expect("segments were ingested");
        assert!(checkpoint.segment > 20, "{checkpoint:?}");
        disk_resolves_as_memory(&db, &memory, checkpoint, &all);
        for stream in streams {
            let last = memory
                .record_holding_version(stream, memory.version_in_memory(stream).unwrap_or(0));
            assert!(
                last.is_some_and(|loc| loc.segment <= checkpoint.segment),
                "{stream}"
            );
        }

        // A segment ingested again (a crash before its checkpoint) changes nothing.
        // The checkpoint moves back with each but the last, as a crash's next start
        // would give them.
        for segment in [0, checkpoint.segment / 2] {
            let again = Checkpoint {
                segment,
                end_position: memory.segment_first_position(segment + 1).expect("sealed"),
            };
            db.ingest_segment(&IdMap::default(), again)
                .expect("ingest again");
        }
        db.ingest_segment(&IdMap::default(), checkpoint)
            .expect("ingest again");
        disk_resolves_as_memory(&db, &memory, checkpoint, &all);
        drop(db);
        agreeing(dir.path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_agrees_with_its_own_log_and_not_with_another_of_the_same_shape() {
        let ours_dir = tempfile::tempdir().expect("dir");
        let theirs_dir = tempfile::tempdir().expect("dir");
        fill(ours_dir.path()).await;
        fill(theirs_dir.path()).await;
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&ours_dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let ours = recovery::replay(&RealFs, ours_dir.path())
            .expect("replay")
            .index;
        let theirs = recovery::replay(&RealFs, theirs_dir.path())
            .expect("replay")
            .index;
        assert!(db.agrees_with(&ours, checkpoint));
        // The same streams, versions and sizes, written at other times.
        assert!(!db.agrees_with(&theirs, checkpoint));
        assert!(
            db.agrees_with(&theirs, None),
            "an empty index holds nothing to differ"
        );
        drop(db);

        // What `evenire-server verify` reports: the same, over every record, chunk and
        // delete.
        let check = agreeing(ours_dir.path());
        assert!(
            check.records > 100 && check.chunks > 100 && check.deletes == 2,
            "{check:?}"
        );
        std::fs::remove_dir_all(theirs_dir.path().join(INDEX_DIR)).expect("remove");
        copy_dir(
            &ours_dir.path().join(INDEX_DIR),
            &theirs_dir.path().join(INDEX_DIR),
        );
        let check = check_index(theirs_dir.path(), SNAPSHOTS_KEPT)
            .expect("check")
            .expect("an index");
        assert!(check.difference.is_some(), "{check:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_segment_is_refused_and_the_checkpoint_stays() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let path = segment::segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).expect("read");
        let second = &segment::records(&bytes)[1];
        // A byte of its payload: only the checksum over the events can tell.
        bytes[(second.offset + second.len - 3) as usize] ^= 0x40;
        std::fs::write(&path, &bytes).expect("damage");
        let again = Checkpoint {
            segment: 1,
            end_position: 0,
        };
        let refused = db.ingest_segment(&IdMap::default(), again);
        assert!(
            matches!(refused, Err(StoreError::Corrupt { offset, .. }) if offset == second.offset),
            "{refused:?}"
        );
        assert_eq!(db.checkpoint().expect("read"), checkpoint);
    }

    /// What `evenire-server verify` finds of the index on disk in `dir`, which must
    /// agree with the log and hold no note of a rewrite; run while no store has it open.
    pub(crate) fn agreeing(dir: &Path) -> crate::store::index::verify::IndexCheck {
        let check = check_index(dir, SNAPSHOTS_KEPT)
            .expect("check")
            .expect("an index");
        assert_eq!(check.difference, None, "{check:?}");
        assert!(check.answers > 2 * check.chunks, "{check:?}");
        let (db, _) = IndexDb::open_or_rebuild(&dir.join(INDEX_DIR), 1 << 20).expect("open");
        assert_eq!(db.noted_rewrites().expect("notes"), Vec::<u32>::new());
        check
    }

    /// Runs a scavenge of the store to its end; what it did.
    pub(crate) async fn scavenge(store: &Store) -> crate::store::ScavengeProgress {
        let mut reports = store
            .scavenge(crate::store::ScavengeOptions::default())
            .expect("start a scavenge");
        let mut last = None;
        while let Some(report) = reports.recv().await {
            last = Some(report.expect("scavenge"));
        }
        last.expect("a last report")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_a_scavenge_rewrites_are_put_in_the_index_on_disk_as_they_are_now() {
        let dir = tempfile::tempdir().expect("dir");
        let all = fill(dir.path()).await;
        let store = Store::open(store_config(dir.path())).expect("open");
        // Rules that hide most of a stream's events, some in the middle of an append
        // of several: those records are cut, not only dropped.
        let rules = StreamRules {
            max_count: Some(3),
            ..StreamRules::default()
        };
        store
            .set_stream_rules(all[0].clone(), rules, None)
            .await
            .expect("rules");
        let done = scavenge(&store).await;
        assert!(
            done.segments_rewritten > 3 && done.events_reclaimed > 50,
            "{done:?}"
        );
        store.shutdown().await;

        agreeing(dir.path());
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let memory = recovery::replay(&RealFs, dir.path()).expect("replay").index;
        assert!(db.agrees_with(&memory, checkpoint));
        disk_resolves_as_memory(&db, &memory, checkpoint.expect("a checkpoint"), &all);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_amid_a_scavenge_leaves_the_index_holding_its_rewrites() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let store = Store::open(store_config(dir.path())).expect("open");
        // Slow enough that the stop comes while a segment is being rewritten.
        let options = crate::store::ScavengeOptions {
            dry_run: false,
            bytes_per_second: Some(32 << 10),
        };
        let mut reports = store.scavenge(options).expect("start a scavenge");
        let first = reports.recv().await.expect("a report").expect("scavenge");
        assert!(!first.done, "{first:?}");
        store.shutdown().await;
        agreeing(dir.path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rewrite_noted_and_not_put_in_is_not_trusted_and_the_index_is_rebuilt() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let memory = recovery::replay(&RealFs, dir.path()).expect("replay").index;
        // A segment the index does not hold yet is put in from its file as it is.
        let past = checkpoint.expect("a checkpoint").segment + 1;
        db.note_rewrite(past).expect("note");
        assert!(db.agrees_with(&memory, checkpoint));
        // As a crash between a scavenge's rename and the ingester leaves it.
        db.note_rewrite(2).expect("note");
        assert!(!db.agrees_with(&memory, checkpoint));
        drop(db);
        let check = check_index(dir.path(), SNAPSHOTS_KEPT)
            .expect("check")
            .expect("an index");
        assert!(
            check
                .difference
                .as_deref()
                .is_some_and(|d| d.contains("[2]")),
            "{check:?}"
        );

        let store = Store::open(store_config(dir.path())).expect("open");
        store.shutdown().await;
        let check = agreeing(dir.path());
        assert!(check.records > 100, "rebuilt from the log: {check:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_note_of_a_segment_past_the_checkpoint_is_taken_away_at_a_start() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let (db, checkpoint) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let checkpoint = checkpoint.expect("a checkpoint");
        db.note_rewrite(checkpoint.segment + 1).expect("note");
        drop(db);
        let store = Store::open(store_config(dir.path())).expect("open");
        store.shutdown().await;
        let (db, after) =
            IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        assert_eq!(db.noted_rewrites().expect("notes"), Vec::<u32>::new());
        assert_eq!(after, Some(checkpoint), "trusted, not rebuilt");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_note_past_the_checkpoint_is_not_trusted_beside_an_ingestion_cut_short() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let memory = recovery::replay(&RealFs, dir.path()).expect("replay").index;
        let through = |segment: u32| Checkpoint {
            segment,
            end_position: memory.segment_first_position(segment + 1).expect("sealed"),
        };
        // The index as a crash leaves it when it came after the ingester wrote segment
        // 3's records and chunks (from its file as it was) and before its checkpoint,
        // and a scavenge noted the segment before renaming a new file over it.
        let db = db.rebuild().expect("rebuild");
        for segment in 0..=2 {
            db.ingest_segment(&IdMap::default(), through(segment))
                .expect("ingest");
        }
        let checkpoint = db.checkpoint().expect("checkpoint");
        assert_eq!(checkpoint, Some(through(2)));
        db.note_rewrite(3).expect("note");
        assert!(db.agrees_with(&memory, checkpoint), "not in the index yet");
        db.ingest_tables_only(through(3)).expect("tables");
        assert_eq!(db.stale_rewrites(checkpoint).expect("stale"), [3]);
        assert!(!db.agrees_with(&memory, checkpoint));
    }

    /// Reads ask the index on disk only below its checkpoint: what an ingestion cut
    /// short left past it (streams' later chunks, streams wholly past it, records) is
    /// not an answer, as `verify` finds comparing every answer with a replay of the log
    /// up to the checkpoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_from_disk_ignore_what_lies_past_the_checkpoint() {
        let dir = tempfile::tempdir().expect("dir");
        fill(dir.path()).await;
        let memory = recovery::replay(&RealFs, dir.path()).expect("replay").index;
        let through = |segment: u32| Checkpoint {
            segment,
            end_position: memory.segment_first_position(segment + 1).expect("sealed"),
        };
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let db = db.rebuild().expect("rebuild");
        for segment in 0..=8 {
            db.ingest_segment(&IdMap::default(), through(segment))
                .expect("ingest");
        }
        let mut past = 0;
        for segment in (9..).take_while(|s| memory.segment_first_position(s + 1).is_some()) {
            db.ingest_tables_only(through(segment)).expect("tables");
            past += 1;
        }
        assert!(past >= 5, "{past} segments past the checkpoint");
        assert_eq!(db.checkpoint().expect("checkpoint"), Some(through(8)));
        drop(db);
        let check = agreeing(dir.path());
        assert_eq!(check.checkpoint, Some(through(8)));
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let end = through(8).end_position;
        let last_below = memory.record_holding(end - 1).expect("a record");
        for position in [end, end + 1, u64::MAX] {
            let found = db.streams().record_holding_below(position, end);
            assert_eq!(found.expect("read"), Some(last_below), "{position}");
        }
    }

    pub(crate) fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir").flatten() {
            let target = to.join(entry.file_name());
            match entry.file_type().expect("type").is_dir() {
                true => copy_dir(&entry.path(), &target),
                false => {
                    std::fs::copy(entry.path(), target).expect("copy");
                }
            }
        }
    }

    #[test]
    fn stream_keys_sort_as_type_then_key() {
        let key = |t: &str, k: u128| {
            stream_key(&StreamId {
                key: Uuid::from_u128(k),
                stream_type: Arc::from(t),
            })
        };
        let mut streams = vec![
            ("a", u128::MAX),
            ("a\0", 0),
            ("a\0\0", 5),
            ("a\u{1}", 0),
            ("ab", 0),
            ("b", 1),
            ("b", 2),
            ("", 7),
        ];
        let mut by_key = streams.clone();
        streams.sort();
        by_key.sort_by_key(|&(t, k)| key(t, k));
        assert_eq!(by_key, streams);
    }

    #[test]
    fn a_chunk_key_s_stream_is_never_another_s_prefix() {
        // "a" with a key whose bytes start with zeros, against type "a\0": the type
        // ends where its two zeros are, so neither stream's keys hold the other's.
        let a = stream_key(&StreamId {
            key: Uuid::from_u128(0),
            stream_type: Arc::from("a"),
        });
        let a_nul = stream_key(&StreamId {
            key: Uuid::from_u128(0),
            stream_type: Arc::from("a\0"),
        });
        assert!(!a_nul.starts_with(&a) && !a.starts_with(&a_nul));
    }

    #[test]
    fn values_read_back_as_written() {
        let chunk = DiskChunk {
            first_version: 41,
            first_position: 1 << 40,
            events: 1_000,
            created_micros: -5,
        };
        assert_eq!(DiskChunk::decode(41, &chunk.encode()), Some(chunk));
        assert_eq!(chunk.last_version(), 1_040);
        let record = LogRecord {
            first_position: 9,
            loc: RecordLoc {
                segment: 3,
                len: 77,
                offset: 1 << 33,
            },
            created_micros: 1_700_000_000_000_000,
        };
        assert_eq!(decode_record(9, &encode_record(&record)), Some(record));
        let deleted = DiskDeletion {
            through_version: 12,
            tombstoned: true,
            first_micros: 1_700_000_000_000_000,
        };
        assert_eq!(DiskDeletion::decode(&deleted.encode()), Some(deleted));
        assert_eq!(
            DiskDeletion {
                through_version: 20,
                tombstoned: false,
                first_micros: 1_700_000_000_000_001,
            }
            .merge(deleted),
            DiskDeletion {
                through_version: 20,
                tombstoned: true,
                first_micros: 1_700_000_000_000_000,
            }
        );
    }
}

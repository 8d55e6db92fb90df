//! The in-memory index: derived data, rebuilt from the log at every start.
//!
//! - `segments`: per segment, every append record in it in log order, with where it
//!   lies on disk. Positions only grow, so the record holding a position is found by
//!   binary search. They are gapless until a scavenge reclaims some (`store/scavenge/`):
//!   then a position may be held by no record, and a segment's records are replaced as
//!   a whole when it is rewritten. With an index on disk, a segment it holds lets go of
//!   its records ([`Index::forget_records_through`]): look-ups then say that the disk
//!   has the answer ([`Located`]), and `lookup.rs` asks it.
//! - `streams`: for each stream, its version and, per append, the first version, the
//!   first position it was written at and its commit time (a chunk). With an index on
//!   disk, a stream's chunks below its checkpoint, all but the last, leave memory
//!   ([`Index::let_go_through`]): what needs them asks the disk (`disk_answers.rs`,
//!   `lookup.rs`). A chunk's record
//!   is the one its segment holds in the chunk's positions: found by binary search, so
//!   that a scavenge that rewrites a segment replaces its records and leaves chunks as
//!   they are, and so that a chunk names what the index on disk names
//!   (`disk_streams.rs`). A scavenge drops a prefix of a stream's chunks, never
//!   anything in the middle. With an index on disk, the entries of streams not
//!   written lately leave memory too, past as many as `--index-cache-size` holds
//!   ([`Index::let_go_through`]): what needs one asks the disk for the stream's facts
//!   ([`Index::entry`]), and the writer brings back those it writes
//!   ([`Index::bring_back`]). `ordered` keeps every stream's key.
//!
//! Every event id and its position are kept apart, by the writer alone (`ids.rs`),
//! in memory for the active segment and on disk (`disk.rs`) for sealed ones: readers
//! never need them.
//!
//! Cost per single-event append: 32 bytes in `records` and 24 in its stream (none
//! once the index on disk holds its segment, unless it is its stream's last), and
//! about 40 in the writer's id map while its id is in memory; plus about 80 bytes per
//! stream whose entry is in memory, and 20 per stream in `ordered`.

pub mod disk;
pub mod disk_answers;
pub mod disk_meta;
pub mod disk_reads;
pub mod disk_streams;
pub mod facts;
pub mod filter;
pub mod ids;
pub mod ingest;
pub mod lookup;
pub mod maps;
pub mod priority;
mod rewrite;
pub mod verify;

pub use rewrite::SegmentRewrite;

use disk_answers::{Ask, DiskAnswers, DiskQuery, FactsOnDisk};
use facts::{RulesInForce, StreamFacts};

use crate::store::log::record::Record;
use crate::store::types::{DeleteMode, StreamId, StreamInfo, StreamRules, StreamState};
use maps::{ShardedMap, SweepAt};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, Range};
use std::sync::Arc;
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

/// An append record: its first position, where it lies on disk, and when it was
/// committed (what a stream's `max_age_seconds` rule is checked against, without a
/// disk read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord {
    pub first_position: u64,
    pub loc: RecordLoc,
    /// µs since the Unix epoch; rising along the log (the writer sees to it).
    pub created_micros: i64,
}

/// The append records of one segment, in log order.
#[derive(Debug, Default)]
struct SegmentRecords {
    /// The first position the segment covers: the log's next position when it was
    /// opened. Its first record may start later once a scavenge reclaimed some.
    first_position: u64,
    records: Vec<LogRecord>,
    /// The id of the file its records are read from (`reader::FIRST_REWRITTEN_FILE`):
    /// its number until a scavenge rewrites it.
    file: u32,
    /// Once its records are in the index on disk and let go of here
    /// ([`Index::forget_records_through`]), how many there are; it is then the disk
    /// that says which they are.
    on_disk: Option<usize>,
}

impl SegmentRecords {
    fn len(&self) -> usize {
        self.on_disk.unwrap_or(self.records.len())
    }
}

/// Which record of some positions a look-up wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    First,
    Last,
}

/// Where the answer to a look-up of a stream's version is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionLocated {
    Record(Located),
    /// Its chunk is on disk only, below `end`: the disk says which positions it holds.
    ChunkOnDisk {
        end: u64,
    },
}

/// Where the answer to a look-up of a record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Here, in memory: this record, or none.
    Here(Option<LogRecord>),
    /// In the index on disk (`lookup.rs` asks it).
    OnDisk(OnDisk),
}

/// A look-up the index on disk answers: the first or last record in `positions`,
/// which lie in `segment`, whose records only the disk holds, those of its file `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDisk {
    pub segment: u32,
    pub file: u32,
    pub positions: Range<u64>,
    pub pick: Pick,
}

/// One append of a stream: its first version, the position it was at and when it was
/// committed (what an age rule is checked against, wherever its record is). A scavenge
/// that cuts the append's first events moves the first two on by as many.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    first_version: u64,
    first_position: u64,
    created_micros: i64,
}

#[derive(Debug, Default, Clone)]
struct StreamEntry {
    /// Its appends' chunks in memory, oldest first: every one it has, or those from
    /// where the chunks only the index on disk holds end. The last always stays, so
    /// that reads of a stream's end and its info need no disk read.
    chunks: Vec<Chunk>,
    /// When the index on disk holds chunks of its that memory let go of: the first
    /// version they hold. They run up to the first chunk in memory.
    first_on_disk: Option<u64>,
    version: u64,
    /// Set by a delete: this version and those before it are gone from reads.
    deleted_through: Option<u64>,
    tombstoned: bool,
    created_micros: i64,
    last_appended_micros: i64,
    /// The segment it was last written in (an append, a delete), or the active one
    /// when it was brought back from disk: once the index on disk holds that segment,
    /// the entry may leave memory ([`Index::let_go_through`]).
    last_segment: u32,
    /// Written or brought back since a sweep last passed it: a sweep lets go of the
    /// others first, and takes this away (a second chance, as a clock cache gives).
    recent: bool,
}

impl StreamEntry {
    /// The entry of a stream the index on disk holds, with `facts` and its last chunk
    /// in memory, as an entry keeps it, so that reads of its end and its info ask the
    /// disk no more; the versions below `floor` went in a scavenge the disk does not
    /// hold yet.
    fn from_disk(on_disk: FactsOnDisk, floor: Option<u64>, segment: u32) -> Self {
        let (facts, last) = on_disk;
        let mut chunks: Vec<Chunk> = last
            .map(|last| Chunk {
                first_version: last.first_version,
                first_position: last.first_position,
                created_micros: last.created_micros,
            })
            .into_iter()
            .collect();
        if let Some(floor) = floor.filter(|floor| *floor > 0) {
            rewrite::reclaim_chunks(&mut chunks, facts.version, floor.saturating_sub(1));
        }
        let first_in_memory = chunks
            .first()
            .map_or(facts.version + 1, |c| c.first_version);
        let first_on_disk = facts
            .first_stored
            .map(|first| first.max(floor.unwrap_or(0)))
            .filter(|first| *first < first_in_memory);
        StreamEntry {
            chunks,
            first_on_disk,
            version: facts.version,
            deleted_through: facts.deleted_through,
            tombstoned: facts.tombstoned,
            created_micros: facts.created_micros,
            last_appended_micros: facts.last_appended_micros,
            last_segment: segment,
            recent: true,
        }
    }

    fn facts(&self) -> StreamFacts {
        StreamFacts {
            version: self.version,
            first_stored: self
                .first_on_disk
                .or(self.chunks.first().map(|c| c.first_version)),
            deleted_through: self.deleted_through,
            tombstoned: self.tombstoned,
            created_micros: self.created_micros,
            last_appended_micros: self.last_appended_micros,
        }
    }

    fn state(&self) -> StreamState {
        self.facts().state()
    }

    /// The first version of its chunks in memory, or one past its last.
    fn first_in_memory(&self) -> u64 {
        self.chunks
            .first()
            .map_or(self.version + 1, |c| c.first_version)
    }

    /// Lets go of its chunks that start below `end` but the last: the index on disk
    /// holds them. Returns how many went.
    fn let_go_chunks_below(&mut self, end: u64) -> usize {
        let all_but_last = self.chunks.len().saturating_sub(1);
        let gone = self.chunks[..all_but_last].partition_point(|c| c.first_position < end);
        if gone > 0 {
            self.first_on_disk = self.first_on_disk.or(Some(self.chunks[0].first_version));
            self.chunks.drain(..gone);
            self.chunks.shrink_to_fit();
        }
        gone
    }
}

/// What the writer needs to know of a stream to decide an append or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteState {
    /// The version of its last event ever written.
    pub version: u64,
    /// Soft-deleted and not written since.
    pub deleted: bool,
    /// Never to be written again.
    pub tombstoned: bool,
    /// Versions up to this one were deleted.
    pub deleted_through: Option<u64>,
}

impl WriteState {
    /// The version expected-version checks compare with: a deleted stream counts as no
    /// stream.
    pub fn current(self) -> Option<u64> {
        (!self.deleted && !self.tombstoned).then_some(self.version)
    }
}

/// One page of a stream listing.
#[derive(Debug)]
pub struct Listing<T = StreamInfo> {
    /// The streams, in (type, key) order.
    pub streams: Vec<T>,
    /// Where the next page starts, if the listing may go on.
    pub next: Option<StreamId>,
}

/// What a listing selects.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only streams of this type.
    pub stream_type: Option<String>,
    /// Only keys whose canonical text starts with this.
    pub key_prefix: Option<String>,
    /// Deleted and tombstoned streams too.
    pub include_deleted: bool,
}

/// The index. The writer is its only mutator; readers take short read locks.
#[derive(Debug, Default)]
pub struct Index {
    /// By segment number.
    segments: Vec<SegmentRecords>,
    /// Records in all segments.
    record_count: usize,
    streams: ShardedMap<StreamId, StreamEntry>,
    /// Every stream in (type, key) order, for stable, resumable listings. Keys as
    /// integers (same order as their bytes): comparing them is one instruction, where
    /// a (type, key) tuple compared two byte strings at every level of the tree.
    ordered: BTreeMap<Arc<str>, BTreeSet<u128>>,
    next_position: u64,
    /// Chunks in all streams, for the memory estimate.
    chunks: usize,
    /// The snapshots of the streams that have any, by version, oldest first: at most
    /// `snapshots_kept` each. Apart from the streams' entries, so that the millions of
    /// streams without one pay nothing.
    snapshots: maps::FastMap<StreamId, Vec<SnapshotLoc>>,
    snapshots_kept: usize,
    /// The rules of the streams that have any, with their revision.
    rules: maps::FastMap<StreamId, (u64, StreamRules)>,
    /// The rules of the streams of a type that have none of their own.
    default_rules: std::collections::HashMap<Arc<str>, StreamRules>,
    /// Rules set so far, own or default: a scavenge whose plan saw the same count
    /// knows no rule was loosened since (nothing else makes hidden events readable).
    rules_changes: u64,
    /// The segments up to this one have let go of their records, if any have.
    records_forgotten_through: Option<u32>,
    /// Streams' chunks that start below this position may be on disk only.
    chunks_on_disk_below: u64,
    /// Where the sweep that lets go of them got to, while one runs.
    chunk_sweep: Option<SweepAt>,
    /// Streams written, whether their entries are in memory or on disk only.
    stream_count: usize,
    /// Streams whose entries are on disk only.
    entries_on_disk: usize,
    /// Moves on whenever what the index on disk says of a stream on disk only may
    /// change: the writer brought an entry back to write it (it may leave memory again
    /// later, written), or a rewritten segment's floors went (the disk holds it now).
    /// What a question read from disk between two runs that saw the same epoch holds.
    /// Reads that put entries back do not move it: they change nothing on disk.
    disk_epoch: u64,
    /// How many streams' entries stay in memory at most once the index on disk holds
    /// them (`--index-cache-size`); None: all of them.
    entries_kept: Option<usize>,
    /// Streams whose entries are on disk only, and the first version a scavenge left
    /// them that the disk does not hold yet, with the segment it rewrote: until the
    /// ingester has put that segment's new file in.
    floors: maps::FastMap<StreamId, (u64, u32)>,
}

/// Where one snapshot of a stream lies, and the version it is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLoc {
    pub version: u64,
    pub loc: RecordLoc,
}

/// The index's size, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct IndexFigures {
    pub streams: u64,
    pub records: u64,
    pub events: u64,
    /// Memory estimated from the entries: the records, each stream's chunks and its
    /// entry, and the event ids the writer holds in memory (the costs in this module's
    /// documentation).
    pub bytes: u64,
}

/// Bytes per stream entry in memory beyond its chunks: the entry and the map.
pub const STREAM_BYTES: usize = 80;
/// Bytes per stream in the ordered set, which holds every stream.
const ORDERED_BYTES: usize = 20;
/// Bytes per event id the writer holds in memory.
const EVENT_ID_BYTES: u64 = 40;

impl Index {
    /// An empty index that keeps the last `snapshots_kept` snapshots of each stream
    /// (at least one).
    pub fn keeping(snapshots_kept: usize) -> Self {
        Index {
            snapshots_kept: snapshots_kept.max(1),
            ..Index::default()
        }
    }

    /// Keeps a durable snapshot of `stream` at `version`, found at `loc`: the newest
    /// `snapshots_kept` by version stay known.
    pub fn apply_snapshot(&mut self, stream: &StreamId, version: u64, loc: RecordLoc) {
        let kept = self.snapshots.entry(stream.clone()).or_default();
        let at = kept.partition_point(|s| s.version <= version);
        // The same version again: the newer one replaces it.
        if at > 0 && kept[at - 1].version == version {
            kept[at - 1].loc = loc;
            return;
        }
        kept.insert(at, SnapshotLoc { version, loc });
        let over = kept.len().saturating_sub(self.snapshots_kept.max(1));
        kept.drain(..over);
    }

    /// Sets `stream`'s rules, at `revision`.
    pub fn apply_rules(&mut self, stream: &StreamId, revision: u64, rules: StreamRules) {
        self.rules.insert(stream.clone(), (revision, rules));
        self.rules_changes += 1;
    }

    /// Rules for the streams of these types that have none of their own.
    pub fn set_default_rules(&mut self, rules: std::collections::HashMap<Arc<str>, StreamRules>) {
        self.default_rules = rules;
        self.rules_changes += 1;
    }

    /// How many times rules were set (see the field).
    pub fn rules_changes(&self) -> u64 {
        self.rules_changes
    }

    /// `stream`'s own rules and their revision (0 and none when never set).
    pub fn rules(&self, stream: &StreamId) -> (u64, StreamRules) {
        self.rules.get(stream).copied().unwrap_or_default()
    }

    /// The rules in force for `stream`: its own once set (even to none), else its
    /// type's default; and whether they are that default.
    pub fn rules_in_force(&self, stream: &StreamId) -> (StreamRules, bool) {
        match self.rules.get(stream) {
            Some((_, own)) => (*own, false),
            None => match self.default_rules.get(&stream.stream_type) {
                Some(default) => (*default, true),
                None => (StreamRules::default(), false),
            },
        }
    }

    /// The rules in force for `stream`, with its own rules' revision.
    pub fn rules_for(&self, stream: &StreamId) -> RulesInForce {
        let (revision, _) = self.rules(stream);
        let (rules, type_default) = self.rules_in_force(stream);
        RulesInForce {
            rules,
            revision,
            type_default,
        }
    }

    /// The first version a read of the stream of `entry` returns: past what deletes and
    /// the rules in force removed.
    fn first_readable(
        &self,
        stream: &StreamId,
        entry: &StreamEntry,
        answers: &DiskAnswers,
    ) -> Result<u64, DiskQuery> {
        let (rules, _) = self.rules_in_force(stream);
        entry
            .facts()
            .first_readable(&rules, answers.now_micros(), |cutoff| {
                self.first_committed_since(stream, entry, cutoff, answers)
            })
    }

    /// The first version of the stream of `entry` committed at or after `cutoff` (one
    /// past its last when none was): commit times rise along a stream's chunks, so a
    /// binary search over them finds it, or over those on disk when it is before the
    /// first in memory. (Chunks of records a scavenge reclaimed, left at the front of
    /// a deleted stream's for a while, are older than any kept: their versions are
    /// deleted, and reads start past them whatever this says.)
    fn first_committed_since(
        &self,
        stream: &StreamId,
        entry: &StreamEntry,
        cutoff: i64,
        answers: &DiskAnswers,
    ) -> Result<u64, DiskQuery> {
        let at = entry.chunks.partition_point(|c| c.created_micros < cutoff);
        if at == 0
            && let Some(first) = entry.first_on_disk
        {
            let versions = first..entry.first_in_memory();
            let ask = Ask::FirstCommittedSince { versions, cutoff };
            let found = answers.get(self.disk_query(stream, ask))?;
            return Ok(found.unwrap_or(first));
        }
        Ok(entry
            .chunks
            .get(at)
            .map_or(entry.version + 1, |chunk| chunk.first_version))
    }

    /// `ask` of `stream`'s chunks on disk.
    fn disk_query(&self, stream: &StreamId, ask: Ask) -> DiskQuery {
        DiskQuery {
            stream: stream.clone(),
            ask,
            end: self.chunks_on_disk_below,
        }
    }

    /// The snapshot of `stream` at the highest version, if it has one.
    pub fn latest_snapshot(&self, stream: &StreamId) -> Option<SnapshotLoc> {
        self.snapshots.get(stream)?.last().copied()
    }

    /// The version of the stream's last event ever written; None for a stream never
    /// written.
    pub fn stream_version(
        &self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<Option<u64>, DiskQuery> {
        Ok(self.entry(stream, answers)?.map(|s| s.version))
    }

    /// [`Index::stream_version`] of a stream whose entry is in memory, as every entry
    /// is while a start replays the log and in tests.
    pub fn version_in_memory(&self, stream: &StreamId) -> Option<u64> {
        self.streams.get(stream).map(|s| s.version)
    }

    /// The entry of `stream`: the one in memory, or one made of what the index on disk
    /// said of it in `answers`; None for a stream never written.
    fn entry<'a>(
        &'a self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<Option<Cow<'a, StreamEntry>>, DiskQuery> {
        if let Some(entry) = self.streams.get(stream) {
            return Ok(Some(Cow::Borrowed(entry)));
        }
        if !self.on_disk_only(stream) {
            return Ok(None);
        }
        let on_disk = answers.facts(self.disk_query(stream, Ask::Facts))?;
        let floor = self.floors.get(stream).map(|(floor, _)| *floor);
        Ok(on_disk.map(|on_disk| Cow::Owned(StreamEntry::from_disk(on_disk, floor, 0))))
    }

    /// Whether `stream` was written and its entry is on disk only: the writer brings it
    /// back ([`Index::bring_back`]) before it decides a write of it.
    pub fn on_disk_only(&self, stream: &StreamId) -> bool {
        self.entries_on_disk > 0
            && self.streams.get(stream).is_none()
            && self
                .ordered
                .get(&*stream.stream_type)
                .is_some_and(|keys| keys.contains(&stream.key.as_u128()))
    }

    /// Puts the entry of `stream`, on disk only, back in memory with `facts`, what the
    /// index on disk holds of it, as the writer is about to write it in segment
    /// `segment`: it stays until the index on disk holds that segment.
    pub fn bring_back(&mut self, stream: &StreamId, on_disk: FactsOnDisk, segment: u32) {
        if self.on_disk_only(stream) {
            self.disk_epoch += 1;
            self.put_back(stream, on_disk, segment);
        }
    }

    /// Puts the entry of `stream` back in memory, as written in segment `segment`.
    fn put_back(&mut self, stream: &StreamId, on_disk: FactsOnDisk, segment: u32) {
        if !self.on_disk_only(stream) {
            return;
        }
        let floor = self.floors.remove(stream).map(|(floor, _)| floor);
        let entry = StreamEntry::from_disk(on_disk, floor, segment);
        self.chunks += entry.chunks.len();
        self.streams.insert(stream.clone(), entry);
        self.entries_on_disk -= 1;
    }

    /// The position below which the index on disk answers.
    pub fn disk_end(&self) -> u64 {
        self.chunks_on_disk_below
    }

    /// See the field.
    pub fn disk_epoch(&self) -> u64 {
        self.disk_epoch
    }

    /// Puts the entry of `stream` back in memory with what the index on disk said of it
    /// while the epoch was `epoch`, for a read: the streams read often stay in memory
    /// as those written do (the sweep's second chance), and their reads ask the disk
    /// for their records only. Nothing when the epoch has moved on since.
    pub fn keep_read(&mut self, stream: &StreamId, on_disk: FactsOnDisk, epoch: u64) {
        if epoch == self.disk_epoch {
            let active = self.segments.len().saturating_sub(1) as u32;
            self.put_back(stream, on_disk, active);
        }
    }

    /// Keeps at most `kept` streams' entries in memory once the index on disk holds
    /// them.
    pub fn keep_entries(&mut self, kept: usize) {
        self.entries_kept = Some(kept);
    }

    /// The versions a read of the stream covers: (first, last). None for a stream never
    /// written, or whose events are all deleted.
    pub fn readable(
        &self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<Option<(u64, u64)>, DiskQuery> {
        let Some(entry) = self.entry(stream, answers)? else {
            return Ok(None);
        };
        let first = self.first_readable(stream, &entry, answers)?;
        Ok(entry.facts().readable(first))
    }

    /// What the writer decides appends and deletes on: of an entry in memory, where the
    /// writer brings those it writes back first ([`Index::bring_back`]).
    pub fn write_state(&self, stream: &StreamId) -> Option<WriteState> {
        debug_assert!(!self.on_disk_only(stream), "{stream} was not brought back");
        self.streams
            .get(stream)
            .map(|entry| entry.facts().write_state())
    }

    /// What the store knows about a stream.
    pub fn info(
        &self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<Option<StreamInfo>, DiskQuery> {
        let Some(entry) = self.entry(stream, answers)? else {
            return Ok(None);
        };
        let first = self.first_readable(stream, &entry, answers)?;
        // A live stream's chunks from its first readable version on name their
        // records' positions exactly (a scavenge moves those it cut at its switch), so
        // this needs no record, wherever the records are.
        let position_of = |version| {
            if version < entry.first_in_memory() && entry.first_on_disk.is_some() {
                let ask = Ask::PositionOf { version };
                return answers.get(self.disk_query(stream, ask));
            }
            let at = entry.chunks.partition_point(|c| c.first_version <= version);
            let chunk = at.checked_sub(1).and_then(|at| entry.chunks.get(at));
            Ok(chunk.map(|chunk| chunk.first_position + (version - chunk.first_version)))
        };
        let positions = [position_of(first)?, position_of(entry.version)?];
        let rules = self.rules_for(stream);
        let info = entry.facts().info(stream, rules, first, |version| {
            positions[usize::from(version != first)]
        });
        Ok(Some(info))
    }

    /// Up to `limit` streams after `after` that pass `filter`, looking at no more than
    /// `scan_limit` streams so that a sparse filter cannot make one call walk the whole
    /// store; `next` says where to go on.
    pub fn list(
        &self,
        after: Option<&StreamId>,
        filter: &ListFilter,
        limit: usize,
        scan_limit: usize,
    ) -> Listing<Result<StreamInfo, StreamId>> {
        let mut streams = Vec::new();
        let mut last = None;
        let types = match (after, filter.stream_type.as_deref()) {
            (_, Some(only)) => self
                .ordered
                .range::<str, _>((Bound::Included(only), Bound::Included(only))),
            (Some(after), None) => self
                .ordered
                .range::<str, _>((Bound::Included(&*after.stream_type), Bound::Unbounded)),
            (None, None) => self.ordered.range::<str, _>(..),
        };
        let mut scanned = 0;
        let in_memory = DiskAnswers::new();
        for (stream_type, keys) in types {
            let keys = match after {
                Some(after) if after.stream_type == *stream_type => {
                    keys.range((Bound::Excluded(after.key.as_u128()), Bound::Unbounded))
                }
                Some(after) if *after.stream_type > **stream_type => continue,
                _ => keys.range(..),
            };
            for &key in keys {
                if scanned >= scan_limit || streams.len() >= limit {
                    return Listing {
                        streams,
                        next: last,
                    };
                }
                scanned += 1;
                let stream = StreamId {
                    key: Uuid::from_u128(key),
                    stream_type: stream_type.clone(),
                };
                let key_matches = filter.key_prefix.as_deref().is_none_or(|p| {
                    let mut text = Uuid::encode_buffer();
                    stream
                        .key
                        .hyphenated()
                        .encode_lower(&mut text)
                        .starts_with(p)
                });
                // The streams whose info needs the disk (those on disk only among
                // them) are filled in, and filtered, after the lock is let go
                // (`disk_answers.rs`).
                let state = self.streams.get(&stream).map(StreamEntry::state);
                let wanted = filter.include_deleted || state.is_none_or(|s| s == StreamState::Live);
                if key_matches && wanted {
                    match self.info(&stream, &in_memory) {
                        Ok(Some(info)) => streams.push(Ok(info)),
                        Ok(None) => {}
                        Err(_) => streams.push(Err(stream.clone())),
                    }
                }
                last = Some(stream);
            }
        }
        Listing {
            streams,
            next: None,
        }
    }

    /// Records a delete, written in segment `segment`. The caller has checked the stream
    /// exists.
    pub fn apply_delete(
        &mut self,
        stream: &StreamId,
        mode: DeleteMode,
        through_version: u64,
        segment: u32,
    ) {
        // A stream's snapshots go with its events.
        self.snapshots.remove(stream);
        if let Some(entry) = self.streams.get_mut(stream) {
            entry.deleted_through = Some(through_version);
            entry.last_segment = entry.last_segment.max(segment);
            entry.recent = true;
            if mode == DeleteMode::Tombstone {
                entry.tombstoned = true;
            }
        }
    }

    /// The position the next committed event will get.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Where the last record that starts at or before `position` is: the one holding
    /// it unless a scavenge reclaimed it (the caller checks the record's events).
    /// `lookup::record_holding` asks the disk when the answer is there.
    pub fn locate_holding(&self, position: u64) -> Located {
        if position >= self.next_position {
            return Located::Here(None);
        }
        let segments = self
            .segments
            .partition_point(|s| s.first_position <= position);
        for (seq, segment) in self.segments[..segments].iter().enumerate().rev() {
            if segment.on_disk.is_some() {
                return Located::OnDisk(OnDisk {
                    segment: seq as u32,
                    file: segment.file,
                    positions: segment.first_position..position + 1,
                    pick: Pick::Last,
                });
            }
            let at = segment
                .records
                .partition_point(|r| r.first_position <= position);
            if let Some(i) = at.checked_sub(1) {
                return Located::Here(Some(segment.records[i]));
            }
        }
        Located::Here(None)
    }

    /// Where the first record that starts after `position` is, if there is one: where
    /// a forward read of the log goes on past positions a scavenge reclaimed.
    pub fn locate_after(&self, position: u64) -> Located {
        let segments = self
            .segments
            .partition_point(|s| s.first_position <= position);
        let first = segments.saturating_sub(1);
        for (seq, segment) in self.segments.iter().enumerate().skip(first) {
            if segment.on_disk.is_some() {
                let end = self.segment_end(seq);
                let from = segment.first_position.max(position.saturating_add(1));
                if from < end {
                    return Located::OnDisk(OnDisk {
                        segment: seq as u32,
                        file: segment.file,
                        positions: from..end,
                        pick: Pick::First,
                    });
                }
                continue;
            }
            let at = segment
                .records
                .partition_point(|r| r.first_position <= position);
            if let Some(record) = segment.records.get(at) {
                return Located::Here(Some(*record));
            }
        }
        Located::Here(None)
    }

    /// Where the record that holds version `version` of `stream` is. Where its chunk
    /// is on disk only, `chunk_on_disk` has the positions the disk said it holds, or the
    /// answer is to ask it.
    pub fn locate_version(
        &self,
        stream: &StreamId,
        version: u64,
        chunk_on_disk: Option<Range<u64>>,
    ) -> VersionLocated {
        let Some(entry) = self.streams.get(stream) else {
            // On disk only: the disk says whether a chunk holds the version.
            return match (self.on_disk_only(stream), chunk_on_disk) {
                (false, _) => VersionLocated::Record(Located::Here(None)),
                (true, Some(positions)) => {
                    VersionLocated::Record(locate_first_in(&self.segments, positions))
                }
                (true, None) => VersionLocated::ChunkOnDisk {
                    end: self.chunks_on_disk_below,
                },
            };
        };
        if version > entry.version {
            return VersionLocated::Record(Located::Here(None));
        }
        let at = entry.chunks.partition_point(|c| c.first_version <= version);
        if let Some(at) = at.checked_sub(1) {
            return VersionLocated::Record(locate_chunk_record(&self.segments, entry, at));
        }
        match (entry.first_on_disk, chunk_on_disk) {
            (Some(first), Some(positions)) if first <= version => {
                VersionLocated::Record(locate_first_in(&self.segments, positions))
            }
            (Some(first), None) if first <= version => VersionLocated::ChunkOnDisk {
                end: self.chunks_on_disk_below,
            },
            _ => VersionLocated::Record(Located::Here(None)),
        }
    }

    /// Whether segment `seq`'s records are on disk only, those of its file `file` (a
    /// look-up that found them there checks that they still are: a scavenge's rewrite
    /// puts them here again, and once the disk holds its file, lets go of them again).
    pub fn records_on_disk(&self, seq: u32, file: u32) -> bool {
        self.segments
            .get(seq as usize)
            .is_some_and(|s| s.on_disk.is_some() && s.file == file)
    }

    /// The id of the file segment `seq` is read from now.
    pub fn segment_file(&self, seq: u32) -> Option<u32> {
        self.segments.get(seq as usize).map(|s| s.file)
    }

    /// Lets go of the records of segment `seq` that a scavenge rewrote into file `file`,
    /// which the index on disk now holds as they are, unless it was rewritten again.
    pub fn let_go_rewritten(&mut self, seq: u32, file: u32) {
        // The disk holds what the rewrite left the streams on disk only.
        let floors = self.floors.len();
        self.floors.retain(|_, (_, rewritten)| *rewritten != seq);
        if self.floors.len() != floors {
            self.disk_epoch += 1;
        }
        if let Some(segment) = self.segments.get_mut(seq as usize)
            && segment.file == file
            && segment.on_disk.is_none()
        {
            segment.on_disk = Some(segment.records.len());
            segment.records = Vec::new();
        }
    }

    /// Lets go of the records of every segment up to `seq` that the index on disk holds
    /// as they are (those a scavenge rewrote since the start stay until it holds their
    /// new file: [`Index::let_go_rewritten`]). Look-ups of them then ask the disk.
    fn forget_records_through(&mut self, seq: u32) {
        if self
            .records_forgotten_through
            .is_some_and(|done| done >= seq)
        {
            return;
        }
        let first = self
            .records_forgotten_through
            .map_or(0, |done| done as usize + 1);
        self.records_forgotten_through = Some(seq);
        let last = (seq as usize).min(self.segments.len().saturating_sub(1));
        for (number, segment) in self
            .segments
            .iter_mut()
            .enumerate()
            .take(last + 1)
            .skip(first)
        {
            if segment.on_disk.is_none() && segment.file == number as u32 {
                segment.on_disk = Some(segment.records.len());
                segment.records = Vec::new();
            }
        }
    }

    /// Lets go of what the index on disk holds up to segment `seq`, its checkpoint: the
    /// records there ([`Index::forget_records_through`]), and every stream's chunks
    /// that start there but its last. For the chunks, a sweep over the streams looks at
    /// up to `budget` a call, so that the writer, which calls it with each group it
    /// applies, holds the lock for a short while each time; a start sweeps them all.
    /// Chunks of segments a scavenge rewrote go too: the disk holds what they hold
    /// (their positions, commit times and versions) until the ingester puts the new
    /// file in, and after it.
    pub fn let_go_through(&mut self, seq: u32, budget: usize) {
        self.forget_records_through(seq);
        if self.chunk_sweep.is_none() {
            let end = self.segment_end(seq as usize);
            if end <= self.chunks_on_disk_below {
                return;
            }
            // Set before any chunk goes: what asks the disk for chunks asks below it.
            self.chunks_on_disk_below = end;
            self.chunk_sweep = Some(SweepAt::default());
        }
        let below = self.chunks_on_disk_below;
        let (mut gone, mut left) = (0, 0);
        // Entries past what may stay leave too, those of streams not written since the
        // sweep last passed them first: what the index on disk holds of them is whole.
        let mut over = self
            .entries_kept
            .map_or(0, |kept| self.streams.len().saturating_sub(kept));
        self.streams
            .sweep(&mut self.chunk_sweep, budget, |_, entry| {
                gone += entry.let_go_chunks_below(below);
                if over == 0 || entry.last_segment > seq {
                    return true;
                }
                if std::mem::take(&mut entry.recent) {
                    return true;
                }
                over -= 1;
                gone += entry.chunks.len();
                left += 1;
                false
            });
        self.chunks -= gone;
        self.entries_on_disk += left;
    }

    /// [`Index::let_go_through`] all at once, as a start does: what the replay made is
    /// not what was written recently, so entries get no second chance.
    pub fn let_go_all_through(&mut self, seq: u32) {
        self.streams
            .sweep(&mut Some(SweepAt::default()), usize::MAX, |_, entry| {
                entry.recent = false;
                true
            });
        self.let_go_through(seq, usize::MAX);
    }

    /// Whether a sweep that lets go of chunks is going on.
    pub fn letting_go(&self) -> bool {
        self.chunk_sweep.is_some()
    }

    /// The position after segment `seq`'s last: where the next starts, or the log's
    /// next position for the last.
    fn segment_end(&self, seq: usize) -> u64 {
        self.segments
            .get(seq + 1)
            .map_or(self.next_position, |next| next.first_position)
    }

    /// Whether `first_position` and `first_version` continue the log and the stream
    /// without a gap, into a stream that is not tombstoned: the invariant every
    /// committed append record keeps.
    pub fn continues(&self, stream: &StreamId, first_version: u64, first_position: u64) -> bool {
        let entry = self.streams.get(stream);
        let expected_version = entry.map_or(0, |s| s.version + 1);
        let tombstoned = entry.is_some_and(|s| s.tombstoned);
        first_position == self.next_position && first_version == expected_version && !tombstoned
    }

    /// Whether an append record found after a scavenge rewrote part of the log may
    /// follow what recovery read before it: positions and the stream's versions go on
    /// after what came before (reclaimed ones may be missing), into a stream that is
    /// not tombstoned.
    pub fn continues_after_scavenge(
        &self,
        stream: &StreamId,
        first_version: u64,
        first_position: u64,
    ) -> bool {
        let entry = self.streams.get(stream);
        let expected_version = entry.map_or(0, |s| s.version + 1);
        let tombstoned = entry.is_some_and(|s| s.tombstoned);
        first_position >= self.next_position && first_version >= expected_version && !tombstoned
    }

    /// Makes `stream` known at `version` at least: what a delete record says of a
    /// stream whose events a scavenge reclaimed.
    pub fn ensure_version(&mut self, stream: &StreamId, version: u64, created_micros: i64) {
        let entry = match self.streams.get_mut(stream) {
            Some(entry) => entry,
            None => {
                let entry = new_stream(
                    &mut self.streams,
                    &mut self.ordered,
                    &mut self.stream_count,
                    stream,
                    created_micros,
                );
                entry.last_appended_micros = created_micros;
                entry
            }
        };
        entry.version = entry.version.max(version);
    }

    /// Records that segment `seq` covers positions up to `end` (excluded), though its
    /// records may end before: a scavenge reclaimed the rest.
    pub fn reclaimed_to(&mut self, seq: u32, end: u64) {
        self.open_segment(seq);
        self.next_position = self.next_position.max(end);
    }

    /// Adds a committed append record found at `loc`, in the segment numbered
    /// `loc.segment` (the writer and recovery read files by their number; only a
    /// scavenge gives a rewritten file another). The caller has checked
    /// [`Index::continues`], or recovery its looser rule after a scavenge.
    pub fn apply(&mut self, loc: RecordLoc, record: &Record) {
        let stream = &record.stream;
        debug_assert!(!self.on_disk_only(stream), "{stream} was not brought back");
        let segment = self.open_segment(loc.segment);
        segment.records.push(LogRecord {
            first_position: record.first_position,
            loc,
            created_micros: record.created_micros,
        });
        self.record_count += 1;
        self.next_position = record.last_position() + 1;
        // The look-up first: a stream's key is cloned into the map only when it is new.
        let entry = match self.streams.get_mut(stream) {
            Some(entry) => entry,
            None => new_stream(
                &mut self.streams,
                &mut self.ordered,
                &mut self.stream_count,
                stream,
                record.created_micros,
            ),
        };
        if record.first_version > entry.version + 1 && !entry.chunks.is_empty() {
            // Found by recovery after a scavenge reclaimed the versions in between:
            // what comes before them was reclaimable too (a scavenge reclaims a prefix
            // of a stream), and reads must not reach it across the gap.
            self.chunks -= entry.chunks.len();
            entry.chunks.clear();
            entry.first_on_disk = None;
        }
        self.chunks += 1;
        entry.chunks.push(Chunk {
            first_version: record.first_version,
            first_position: record.first_position,
            created_micros: record.created_micros,
        });
        entry.version = record.last_version();
        entry.last_appended_micros = record.created_micros;
        entry.last_segment = entry.last_segment.max(loc.segment);
        entry.recent = true;
    }

    /// The first position segment `seq` covers, if the log has reached it.
    pub fn segment_first_position(&self, seq: u32) -> Option<u64> {
        self.segments.get(seq as usize).map(|s| s.first_position)
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.stream_count
    }

    /// Makes the records of every segment up to `seq`, those the log has not reached
    /// yet starting at its next position.
    pub fn open_segments_through(&mut self, seq: u32) {
        self.open_segment(seq);
    }

    /// The records of segment `seq`, made if the log has not reached it yet: each starts
    /// at the log's next position.
    fn open_segment(&mut self, seq: u32) -> &mut SegmentRecords {
        let next_position = self.next_position;
        let seq = seq as usize;
        if self.segments.len() <= seq {
            let first = self.segments.len();
            self.segments.resize_with(seq + 1, || SegmentRecords {
                first_position: next_position,
                records: Vec::new(),
                file: 0,
                on_disk: None,
            });
            for (number, segment) in self.segments.iter_mut().enumerate().skip(first) {
                segment.file = number as u32;
            }
        }
        &mut self.segments[seq]
    }

    /// Its entries and their estimated memory, with the writer's `ids_in_memory`.
    pub fn figures(&self, ids_in_memory: u64) -> IndexFigures {
        let record_capacity: usize = self.segments.iter().map(|s| s.records.capacity()).sum();
        let bytes = record_capacity * std::mem::size_of::<LogRecord>()
            + self.chunks * std::mem::size_of::<Chunk>()
            + self.streams.len() * STREAM_BYTES
            + self.stream_count * ORDERED_BYTES;
        IndexFigures {
            streams: self.stream_count as u64,
            records: self.record_count as u64,
            events: self.next_position,
            bytes: bytes as u64 + ids_in_memory * EVENT_ID_BYTES,
        }
    }
}

#[cfg(test)]
impl Index {
    /// How many streams' entries only the index on disk holds.
    pub fn entries_on_disk_only(&self) -> usize {
        assert_eq!(self.entries_on_disk, self.stream_count - self.streams.len());
        self.entries_on_disk
    }

    /// How many streams have chunks that only the index on disk holds.
    pub fn streams_with_chunks_on_disk(&self) -> usize {
        let on_disk = self.streams.iter();
        on_disk.filter(|(_, e)| e.first_on_disk.is_some()).count()
    }
}

/// Makes the entry of `stream`, new, created at `created_micros`, and lists it.
fn new_stream<'a>(
    streams: &'a mut ShardedMap<StreamId, StreamEntry>,
    ordered: &mut BTreeMap<Arc<str>, BTreeSet<u128>>,
    stream_count: &mut usize,
    stream: &StreamId,
    created_micros: i64,
) -> &'a mut StreamEntry {
    let listed = ordered
        .entry(stream.stream_type.clone())
        .or_default()
        .insert(stream.key.as_u128());
    *stream_count += usize::from(listed);
    streams
        .entry(stream.clone())
        .or_insert_with(|| StreamEntry {
            created_micros,
            ..StreamEntry::default()
        })
}

/// The events chunk `at` of the stream of `entry` was appended with (fewer once a
/// scavenge cut its first ones): up to the next chunk's first version, or the stream's.
fn chunk_events(entry: &StreamEntry, at: usize) -> u64 {
    let first = entry.chunks[at].first_version;
    let next = entry
        .chunks
        .get(at + 1)
        .map_or(entry.version + 1, |c| c.first_version);
    next.saturating_sub(first)
}

/// The record of chunk `at` of the stream of `entry` in `segments`: the one its segment
/// holds that starts in the chunk's positions (its first events cut by a scavenge, it
/// starts later). Positions a record held are only ever its own, so the first record
/// of the segment at or after the chunk's first position is its record if it starts
/// before the chunk ends; one that starts later is another's: the chunk's was
/// reclaimed. When the segment's records are on disk only, it is the disk's to say.
fn locate_chunk_record(segments: &[SegmentRecords], entry: &StreamEntry, at: usize) -> Located {
    let Some(chunk) = entry.chunks.get(at) else {
        return Located::Here(None);
    };
    let first = chunk.first_position;
    locate_first_in(
        segments,
        first..first.saturating_add(chunk_events(entry, at)),
    )
}

/// The first record that starts in `positions` (which lie in one segment): where a
/// chunk's record is.
fn locate_first_in(segments: &[SegmentRecords], positions: Range<u64>) -> Located {
    let Range { start: first, end } = positions;
    let seq = segments.partition_point(|s| s.first_position <= first);
    let Some(seq) = seq.checked_sub(1) else {
        return Located::Here(None);
    };
    let segment = &segments[seq];
    if segment.on_disk.is_some() {
        return Located::OnDisk(OnDisk {
            segment: seq as u32,
            file: segment.file,
            positions: first..end,
            pick: Pick::First,
        });
    }
    let records = &segment.records;
    let record = records
        .get(records.partition_point(|r| r.first_position < first))
        .filter(|record| record.first_position < end);
    Located::Here(record.copied())
}

/// [`locate_chunk_record`] where the segment's records are in memory; None otherwise,
/// as when it was reclaimed.
fn record_in(segments: &[SegmentRecords], entry: &StreamEntry, at: usize) -> Option<LogRecord> {
    match locate_chunk_record(segments, entry, at) {
        Located::Here(record) => record,
        Located::OnDisk(_) => None,
    }
}

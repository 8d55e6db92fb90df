//! What a scavenge changes in the index when it rewrites a segment: the segment's
//! records are replaced as a whole (chunks name positions, so those of kept records
//! need no change); live streams whose rules hid events lose those chunks at once;
//! deleted streams' chunks of reclaimed records go later, in short passes
//! ([`Index::drop_gone_chunks`]), since a deleted stream's reads never reach them.

use super::disk_answers::{DiskAnswers, DiskQuery};
use super::{Chunk, Index, Located, LogRecord, RecordLoc, SegmentRecords, locate_chunk_record};
#[cfg(test)]
use crate::store::types::DeleteMode;
use crate::store::types::{StreamId, StreamState};

/// One segment's rewrite, planned from the index and the segment's file while the store
/// serves, and applied at once.
#[derive(Debug, Default)]
pub struct SegmentRewrite {
    pub segment: u32,
    /// The id of the file the index's locations in the segment name before.
    pub old_file: u32,
    /// The id of the rewritten file.
    pub new_file: u32,
    /// The records of the rewritten file, in order, at their new locations.
    pub records: Vec<LogRecord>,
    /// How many records the segment held when planned: one that holds another number
    /// changed since.
    pub records_before: usize,
    /// The streams with events reclaimed in the segment that their rules hid (not a
    /// delete), each with the version through which its events are gone: every event
    /// up to it, wherever it is. Their chunks change at the switch.
    pub streams: Vec<(StreamId, u64)>,
    /// The streams whose events reclaimed in the segment a delete covers: their chunks
    /// of reclaimed records are dropped after the switch.
    pub deleted: Vec<StreamId>,
    /// [`Index::rules_changes`] when the plan began.
    pub rules_changes: u64,
    /// The snapshots kept: where they were and where they are.
    pub snapshots: Vec<(StreamId, RecordLoc, RecordLoc)>,
    /// The streams of the snapshots that go (a delete, or newer ones, left them unkept).
    pub snapshots_gone: Vec<StreamId>,
}

impl Index {
    /// The version through which a scavenge may reclaim `stream`'s events: what deletes
    /// and the rules in force hide from reads, except the last event of a stream that is
    /// not deleted (its version is what the stream continues from). None: nothing.
    pub fn reclaimable_through(
        &self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<Option<u64>, DiskQuery> {
        Ok(self.reclaim_bounds(stream, answers)?.0)
    }

    /// [`Index::reclaimable_through`], and the version through which a delete covers
    /// the stream: its reclaimed events up to there need no change at a switch.
    pub fn reclaim_bounds(
        &self,
        stream: &StreamId,
        answers: &DiskAnswers,
    ) -> Result<(Option<u64>, Option<u64>), DiskQuery> {
        let Some(entry) = self.entry(stream, answers)? else {
            return Ok((None, None));
        };
        let first_readable = self.first_readable(stream, &entry, answers)?;
        let through = (|| {
            let hidden_through = first_readable.checked_sub(1)?;
            match entry.state() {
                StreamState::Live => Some(hidden_through.min(entry.version.checked_sub(1)?)),
                StreamState::Deleted | StreamState::Tombstoned => {
                    Some(hidden_through.min(entry.version))
                }
            }
        })();
        Ok((through, entry.deleted_through))
    }

    /// The id of the file segment `segment` is read from now, and its records; or,
    /// when those are on disk only, how many there are.
    pub fn segment_records(&self, segment: u32) -> Option<(u32, Result<&[LogRecord], usize>)> {
        let records = self.segments.get(segment as usize)?;
        match records.on_disk {
            Some(count) => Some((records.file, Err(count))),
            None => Some((records.file, Ok(&records.records))),
        }
    }

    /// The first position segment `segment` covers, and the one after its last (where
    /// the next segment starts); None for the last segment, which is still written.
    pub fn segment_range(&self, segment: u32) -> Option<(u64, u64)> {
        let this = self.segments.get(segment as usize)?;
        let next = self.segments.get(segment as usize + 1)?;
        Some((this.first_position, next.first_position))
    }

    /// Whether the snapshot of `stream` at `loc` is one the index keeps.
    pub fn keeps_snapshot(&self, stream: &StreamId, loc: RecordLoc) -> bool {
        self.snapshots
            .get(stream)
            .is_some_and(|kept| kept.iter().any(|s| s.loc == loc))
    }

    /// Whether `rewrite` may be applied: not when the index moved on since it was
    /// planned in a way that forbids it (the segment changed, or a stream's rules were
    /// loosened so that events it reclaims are readable again), which it says.
    pub fn check_rewrite(&self, rewrite: &SegmentRewrite) -> Result<(), String> {
        let segment = rewrite.segment;
        let Some(current) = self.segments.get(segment as usize) else {
            return Err(format!("segment {segment} is not in the index"));
        };
        if current.file != rewrite.old_file || current.len() != rewrite.records_before {
            return Err(format!("segment {segment} changed since it was planned"));
        }
        // Only loosened rules make hidden events readable again: with none set since
        // the plan, its decisions stand without looking each stream up again (which,
        // for a segment of some 40k streams, held the lock appends wait on for ms).
        if self.rules_changes == rewrite.rules_changes {
            return Ok(());
        }
        // A delete is never undone, so only the streams their rules hid can matter.
        // This runs under the lock appends wait on, where the disk is not asked: a
        // stream whose answer needs it counts as changed, and the segment stays as it is
        // until a scavenge plans it again.
        let answers = DiskAnswers::new();
        for (stream, through) in &rewrite.streams {
            match self.reclaimable_through(stream, &answers) {
                Ok(reclaimable) if reclaimable >= Some(*through) => {}
                Ok(_) => {
                    return Err(format!(
                        "stream {stream}'s events up to version {through} are readable again"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "stream {stream}'s rules changed, and what they hide now is on disk"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies `rewrite`, whose file is `new_file`; or changes nothing and says why when
    /// the index moved on since it was planned in a way that forbids it: the segment
    /// changed, or a stream's rules were loosened so that events it reclaims are
    /// readable again.
    pub fn rewrite_segment(&mut self, rewrite: &SegmentRewrite) -> Result<(), String> {
        self.check_rewrite(rewrite)?;
        let segment = rewrite.segment;
        let first_position = self.segments[segment as usize].first_position;
        let old = std::mem::replace(
            &mut self.segments[segment as usize],
            SegmentRecords {
                first_position,
                records: rewrite.records.clone(),
                file: rewrite.new_file,
                // Here until the ingester has put the new file in the index on disk
                // (`Index::let_go_rewritten`).
                on_disk: None,
            },
        );
        self.record_count = self.record_count - old.len() + rewrite.records.len();
        // Streams whose rules hid what went: their reads start past it, so their chunks
        // must (a record cut short starts at the first event it kept).
        // Until the ingester has put the new file in, the disk holds what went: an
        // entry in memory stays while the index on disk holds the segments written
        // before (the ingester takes the rewrite in before them), and one on disk only
        // keeps its floor until then.
        let active = self.segments.len().saturating_sub(1) as u32;
        for (stream, through) in &rewrite.streams {
            if self.on_disk_only(stream) {
                let floor = self.floors.entry(stream.clone()).or_insert((0, segment));
                *floor = (floor.0.max(through + 1), segment);
            }
            if let Some(entry) = self.streams.get_mut(stream) {
                entry.last_segment = entry.last_segment.max(active);
                let before = entry.chunks.len();
                reclaim_chunks(&mut entry.chunks, entry.version, *through);
                self.chunks -= before - entry.chunks.len();
                // Every version up to `through` went, so those on disk below it did.
                entry.first_on_disk = entry
                    .first_on_disk
                    .map(|first| first.max(through + 1))
                    .filter(|first| *first < entry.first_in_memory());
            }
        }
        for (stream, was, is) in &rewrite.snapshots {
            if let Some(kept) = self.snapshots.get_mut(stream)
                && let Some(snapshot) = kept.iter_mut().find(|s| s.loc == *was)
            {
                snapshot.loc = *is;
            }
        }
        Ok(())
    }
}

impl Index {
    /// Drops the leading chunks of `streams` whose records a scavenge reclaimed: the
    /// deleted streams of a rewrite, a batch at a time after the switch, so that the
    /// index shrinks without one long hold of its lock.
    pub fn drop_gone_chunks(&mut self, streams: &[StreamId]) {
        for stream in streams {
            let Some(entry) = self.streams.get_mut(stream) else {
                continue;
            };
            // With chunks on disk before those in memory, these are not a prefix, and
            // memory cannot tell whether those went too. They stay: reads of a
            // deleted stream never reach them, and all but its last leave memory with
            // the next checkpoint past them.
            if entry.first_on_disk.is_some() {
                continue;
            }
            let gone = (0..entry.chunks.len())
                .take_while(|&at| {
                    locate_chunk_record(&self.segments, entry, at) == Located::Here(None)
                })
                .count();
            entry.chunks.drain(..gone);
            self.chunks -= gone;
        }
    }
}

/// Drops the chunks of a stream at `version` whose events all lie at or below
/// `through`, and starts the one that holds `through + 1`, if it starts before, there.
pub(super) fn reclaim_chunks(chunks: &mut Vec<Chunk>, version: u64, through: u64) {
    let starting_at_or_before = chunks.partition_point(|c| c.first_version <= through);
    let Some(last) = starting_at_or_before.checked_sub(1) else {
        return;
    };
    let last_ends = chunks
        .get(last + 1)
        .map_or(version, |next| next.first_version - 1);
    if last_ends > through {
        let cut = through + 1 - chunks[last].first_version;
        chunks[last].first_version += cut;
        chunks[last].first_position += cut;
        chunks.drain(..last);
    } else {
        chunks.drain(..=last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(firsts: &[u64]) -> Vec<Chunk> {
        firsts
            .iter()
            .map(|&first_version| Chunk {
                first_version,
                first_position: 100 + first_version,
                created_micros: 1,
            })
            .collect()
    }

    fn firsts(chunks: &[Chunk]) -> Vec<u64> {
        chunks.iter().map(|c| c.first_version).collect()
    }

    #[test]
    fn a_reclaimed_prefix_drops_whole_chunks_and_starts_the_next_after_it() {
        // Chunks of versions 0-4, 5-9, 10-12.
        let mut all = chunks(&[0, 5, 10]);
        reclaim_chunks(&mut all, 12, 4);
        assert_eq!(firsts(&all), [5, 10]);

        let mut part = chunks(&[0, 5, 10]);
        reclaim_chunks(&mut part, 12, 6);
        assert_eq!(firsts(&part), [7, 10]);
        assert_eq!(part[0].first_position, 107, "cut by as many positions");

        let mut last = chunks(&[0, 5, 10]);
        reclaim_chunks(&mut last, 12, 11);
        assert_eq!(firsts(&last), [12]);

        let mut everything = chunks(&[0, 5, 10]);
        reclaim_chunks(&mut everything, 12, 12);
        assert!(everything.is_empty());

        let mut below = chunks(&[5, 10]);
        reclaim_chunks(&mut below, 12, 3);
        assert_eq!(firsts(&below), [5, 10]);
    }

    fn stream(name: &str) -> StreamId {
        StreamId {
            key: uuid::Uuid::nil(),
            stream_type: std::sync::Arc::from(name),
        }
    }

    /// Appends `events` events to `stream` at the log's end, in segment 0, at `offset`.
    fn append(index: &mut Index, stream: &StreamId, events: usize, offset: u64) {
        let first_version = index.version_in_memory(stream).map_or(0, |v| v + 1);
        let record = crate::store::log::record::Record {
            first_position: index.next_position(),
            first_version,
            created_micros: 1,
            stream: stream.clone(),
            events: (0..events)
                .map(|_| crate::store::log::record::StoredEvent {
                    id: uuid::Uuid::new_v4(),
                    event_type: std::sync::Arc::from("Tested"),
                    data: bytes::Bytes::new(),
                    metadata: bytes::Bytes::new(),
                })
                .collect(),
        };
        let loc = RecordLoc {
            segment: 0,
            len: 10,
            offset,
        };
        index.apply(loc, &record);
    }

    #[test]
    fn after_a_rewrite_chunks_find_their_records_kept_cut_or_gone_by_position() {
        let mut index = Index::keeping(1);
        let (deleted, kept, hidden) = (stream("deleted"), stream("kept"), stream("hidden"));
        // Positions: deleted 0-2, kept 3-4, hidden 5-8, deleted 9-10, kept 11.
        append(&mut index, &deleted, 3, 0);
        append(&mut index, &kept, 2, 10);
        append(&mut index, &hidden, 4, 20);
        append(&mut index, &deleted, 2, 30);
        append(&mut index, &kept, 1, 40);
        index.apply_delete(&deleted, DeleteMode::Soft, 3, 0);
        index.open_segments_through(1);
        let moved = |offset| RecordLoc {
            segment: 0,
            len: 5,
            offset,
        };
        let record = |first_position, offset| LogRecord {
            first_position,
            loc: moved(offset),
            created_micros: 1,
        };
        // The deleted stream's first record goes and its second is cut to version 4
        // (position 10); the hidden stream's is cut to versions 2-3 (positions 7-8).
        let rewrite = SegmentRewrite {
            segment: 0,
            old_file: 0,
            new_file: 7,
            records: vec![
                record(3, 100),
                record(7, 200),
                record(10, 300),
                record(11, 400),
            ],
            records_before: 5,
            streams: vec![(hidden.clone(), 1)],
            deleted: vec![deleted.clone()],
            ..SegmentRewrite::default()
        };
        index.rewrite_segment(&rewrite).expect("rewrite");

        assert_eq!(index.record_holding_version(&kept, 1), Some(moved(100)));
        assert_eq!(index.record_holding_version(&kept, 2), Some(moved(400)));
        assert_eq!(index.record_holding_version(&hidden, 2), Some(moved(200)));
        assert_eq!(index.record_holding_version(&hidden, 1), None, "reclaimed");
        let info = index
            .info(&hidden, &Default::default())
            .ok()
            .flatten()
            .expect("hidden");
        assert_eq!(
            (info.first_position, info.last_position),
            (Some(7), Some(8))
        );
        // The deleted stream's chunk of the record that went is gone; that of the one
        // cut short finds it.
        assert_eq!(index.record_holding_version(&deleted, 0), None);
        assert_eq!(index.record_holding_version(&deleted, 4), Some(moved(300)));
        index.drop_gone_chunks(std::slice::from_ref(&deleted));
        let entry = index.streams.get(&deleted).expect("deleted");
        assert_eq!(entry.chunks.len(), 1, "{:?}", entry.chunks);
    }

    /// A rewrite that reclaims what a stream's rules hid, when its entry is on disk
    /// only: until the disk holds the new file (and says so of the stream), reads and
    /// the writer take it to start past what went.
    #[test]
    fn a_rewrite_floors_a_stream_on_disk_only_until_the_disk_holds_its_file() {
        let hidden = stream("hidden");
        // What the disk still says of it: versions 0-3, stored from 0, in one chunk.
        let facts = crate::store::index::facts::StreamFacts {
            version: 3,
            first_stored: Some(0),
            deleted_through: None,
            tombstoned: false,
            created_micros: 1,
            last_appended_micros: 1,
        };
        let chunk = crate::store::index::disk_streams::DiskChunk {
            first_version: 0,
            first_position: 0,
            events: 4,
            created_micros: 1,
        };
        let facts = (facts, Some(chunk));
        let mut index = rewritten_on_disk_only(&hidden);
        let query = index.disk_query(&hidden, crate::store::index::disk_answers::Ask::Facts);
        let answers = DiskAnswers::knowing(query, facts);
        assert_eq!(index.readable(&hidden, &answers), Ok(Some((2, 3))));
        // Once the disk holds the new file, what it says stands; and what a read took
        // from it before is not put back in memory: it may be what the disk said before.
        let epoch = index.disk_epoch();
        index.let_go_rewritten(0, 7);
        assert_eq!(index.readable(&hidden, &answers), Ok(Some((0, 3))));
        index.keep_read(&hidden, facts, epoch);
        assert!(index.on_disk_only(&hidden), "kept from a moved-on epoch");
        let epoch = index.disk_epoch();
        index.keep_read(&hidden, facts, epoch);
        assert!(!index.on_disk_only(&hidden));
        assert_eq!(index.disk_epoch(), epoch, "a read changes nothing on disk");
        // Brought back by the writer before that, it starts past what went.
        let mut index = rewritten_on_disk_only(&hidden);
        let epoch = index.disk_epoch();
        index.bring_back(&hidden, facts, 1);
        assert!(
            index.disk_epoch() > epoch,
            "what the writer brings back it writes"
        );
        assert_eq!(
            index.readable(&hidden, &DiskAnswers::new()),
            Ok(Some((2, 3)))
        );
        let info = index.info(&hidden, &DiskAnswers::new());
        let info = info.ok().flatten().expect("hidden");
        assert_eq!(
            (info.first_position, info.last_position),
            (Some(2), Some(3)),
            "its last chunk cut where the rewrite cut it"
        );
    }

    /// An index whose entries are all on disk only, where a rewrite of segment 0 into
    /// file 7 reclaimed versions 0-1 of `hidden` (positions 0-3; another stream's 4).
    fn rewritten_on_disk_only(hidden: &StreamId) -> Index {
        let mut index = Index::keeping(1);
        index.keep_entries(0);
        append(&mut index, hidden, 4, 0);
        append(&mut index, &stream("other"), 1, 10);
        index.open_segments_through(1);
        index.let_go_all_through(0);
        assert!(index.on_disk_only(hidden));
        let record = |first_position, offset| LogRecord {
            first_position,
            loc: RecordLoc {
                segment: 0,
                len: 5,
                offset,
            },
            created_micros: 1,
        };
        let rewrite = SegmentRewrite {
            segment: 0,
            old_file: 0,
            new_file: 7,
            records: vec![record(2, 100), record(4, 200)],
            records_before: 2,
            streams: vec![(hidden.clone(), 1)],
            ..SegmentRewrite::default()
        };
        index.rewrite_segment(&rewrite).expect("rewrite");
        index
    }
}

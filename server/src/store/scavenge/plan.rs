//! Planning the rewrite of one sealed segment: which of its records stay, which are
//! cut short, which go, and what that frees, by stream type. A dry run stops here.

use super::background::in_background;
use crate::store::error::StoreError;
use crate::store::index::disk_answers::{DiskAnswers, answered_by};
use crate::store::index::{Index, LogRecord, RecordLoc, SegmentRewrite, lookup};
use crate::store::log::record::{self, Entry, Rewritten};
use crate::store::log::segment;
use crate::store::shared::{Shared, read_index};
use crate::store::types::StreamId;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a scavenge reclaims of one stream type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Events that go.
    pub events: u64,
    /// Bytes of their records (and of the snapshots that go) in the segments.
    pub bytes: u64,
}

/// The plan for one segment.
#[derive(Debug)]
pub struct SegmentPlan {
    /// The rewritten file's contents, when anything is reclaimed.
    pub file: Option<Vec<u8>>,
    /// The index's side of it; locations name file 0 until the file has its id.
    pub rewrite: SegmentRewrite,
    /// Where the segment's records were, for the cache to forget.
    pub old_locs: Vec<RecordLoc>,
    /// The file's length before, and after the rewrite (the same when nothing goes).
    pub len_before: u64,
    pub len_after: u64,
    /// By stream type.
    pub by_type: BTreeMap<Arc<str>, Reclaimed>,
    /// The longest the plan held the index's read lock at once (appends wait for it).
    pub longest_read_lock: Duration,
}

/// Plans the rewrite of sealed segment `seq`, whose file holds `bytes`, found to hold
/// the records of `scan`.
///
/// Decisions come from the index as it is now, looked up in batches under short read
/// locks on this thread; the rest (finding what to ask, building the new file) runs in
/// the background CPU class, which never holds a lock (see `background.rs`). Applying
/// the plan checks the decisions again.
pub fn plan_segment(
    shared: &Shared,
    seq: u32,
    bytes: &Bytes,
    scan: segment::Scan,
    now_micros: i64,
) -> Result<SegmentPlan, StoreError> {
    let mut longest = Duration::ZERO;
    let (old_file, range, rules_changes) = with_index(shared, &mut longest, |index| {
        let (file, _) = index
            .segment_records(seq)
            .ok_or_else(|| mismatch(format!("segment {seq} is not in the index")))?;
        let range = index
            .segment_range(seq)
            .ok_or_else(|| mismatch(format!("segment {seq} is the one being written")))?;
        Ok((file, range, index.rules_changes()))
    })?;
    let indexed = copy_records(shared, seq, old_file, &mut longest)?;
    let questions = in_background(|| Ok(Questions::of(&scan, old_file)))?;
    let answers = questions.answer(shared, &mut longest)?;
    let segment = Segment {
        seq,
        old_file,
        range,
        rules_changes,
        bytes,
        indexed: &indexed,
    };
    let mut plan = in_background(|| build(&segment, scan, &questions, &answers, now_micros))?;
    plan.longest_read_lock = longest;
    Ok(plan)
}

/// What the plan of a segment asks the index: how far each of its streams may be
/// reclaimed, and whether each of its snapshots is kept.
struct Questions {
    /// Each stream with appends in the segment, and its place in `streams`.
    places: HashMap<StreamId, usize>,
    streams: Vec<StreamId>,
    /// Each snapshot record, in the segment's order, and where it is.
    snapshots: Vec<(StreamId, RecordLoc)>,
}

/// The index's answers, in the order of the questions.
struct Answers {
    /// Per stream: [`crate::store::index::Index::reclaim_bounds`].
    reclaim_bounds: Vec<(Option<u64>, Option<u64>)>,
    snapshot_kept: Vec<bool>,
}

impl Questions {
    fn of(scan: &segment::Scan, old_file: u32) -> Self {
        let mut questions = Questions {
            places: HashMap::new(),
            streams: Vec::new(),
            snapshots: Vec::new(),
        };
        for scanned in &scan.records {
            match &scanned.entry {
                Entry::Append(append) if !questions.places.contains_key(&append.stream) => {
                    let place = questions.streams.len();
                    questions.places.insert(append.stream.clone(), place);
                    questions.streams.push(append.stream.clone());
                }
                Entry::Snapshot(snapshot) => {
                    let loc = old_loc(scanned, old_file);
                    questions.snapshots.push((snapshot.stream.clone(), loc));
                }
                _ => {}
            }
        }
        questions
    }

    /// Asks the index, a batch per hold of its read lock; the streams whose bounds
    /// need the index on disk after the batch, each on its own.
    fn answer(&self, shared: &Shared, longest: &mut Duration) -> Result<Answers, StoreError> {
        let mut answers = Answers {
            reclaim_bounds: Vec::with_capacity(self.streams.len()),
            snapshot_kept: Vec::with_capacity(self.snapshots.len()),
        };
        for batch in self.streams.chunks(LOCKED_BATCH) {
            let drafted = with_index(shared, longest, |index| {
                let in_memory = DiskAnswers::new();
                let bounds = batch
                    .iter()
                    .map(|s| index.reclaim_bounds(s, &in_memory).ok());
                bounds.collect::<Vec<_>>()
            });
            for (stream, bounds) in batch.iter().zip(drafted) {
                let bounds = match bounds {
                    Some(bounds) => bounds,
                    None => answered_by(shared, |index, on_disk| {
                        index.reclaim_bounds(stream, on_disk)
                    })?,
                };
                answers.reclaim_bounds.push(bounds);
            }
        }
        for batch in self.snapshots.chunks(LOCKED_BATCH) {
            with_index(shared, longest, |index| {
                let kept = batch.iter().map(|(s, loc)| index.keeps_snapshot(s, *loc));
                answers.snapshot_kept.extend(kept);
            });
        }
        Ok(answers)
    }
}

/// What the plan knows of the segment before it looks at its records.
struct Segment<'a> {
    seq: u32,
    old_file: u32,
    /// The positions it covers.
    range: (u64, u64),
    rules_changes: u64,
    bytes: &'a Bytes,
    /// The index's records of it, in order.
    indexed: &'a [LogRecord],
}

fn old_loc(scanned: &segment::ScannedRecord, old_file: u32) -> RecordLoc {
    RecordLoc {
        segment: old_file,
        len: scanned.len as u32,
        offset: scanned.offset,
    }
}

/// The plan, from the index's answers.
fn build(
    segment: &Segment,
    scan: segment::Scan,
    questions: &Questions,
    answers: &Answers,
    now_micros: i64,
) -> Result<SegmentPlan, StoreError> {
    let (seq, bytes, indexed) = (segment.seq, segment.bytes, segment.indexed);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&segment::header_bytes(u64::from(seq)));
    record::encode_rewritten(
        &mut out,
        &Rewritten {
            created_micros: now_micros,
            first_position: segment.range.0,
            end_position: segment.range.1,
        },
    );
    let mut plan = SegmentPlan {
        file: None,
        rewrite: SegmentRewrite {
            segment: seq,
            old_file: segment.old_file,
            rules_changes: segment.rules_changes,
            ..SegmentRewrite::default()
        },
        old_locs: Vec::with_capacity(indexed.len()),
        len_before: bytes.len() as u64,
        len_after: bytes.len() as u64,
        by_type: BTreeMap::new(),
        longest_read_lock: Duration::ZERO,
    };
    // Per stream with events reclaimed: the last one, and whether a delete covers it.
    let mut reclaimed: HashMap<StreamId, (u64, bool)> = HashMap::new();
    let mut anything_goes = false;
    let mut appends = 0;
    let mut snapshots = answers.snapshot_kept.iter();
    for scanned in scan.records {
        let frame = &bytes[scanned.offset as usize..(scanned.offset + scanned.len) as usize];
        let old_loc = old_loc(&scanned, segment.old_file);
        let new_loc = |out: &Vec<u8>, len: usize| RecordLoc {
            segment: 0,
            len: len as u32,
            offset: out.len() as u64,
        };
        match scanned.entry {
            Entry::Append(append) => {
                let expected = indexed.get(appends).copied();
                appends += 1;
                if expected.map(|r| (r.first_position, r.loc))
                    != Some((append.first_position, old_loc))
                {
                    return Err(mismatch(format!(
                        "segment {seq}'s record at offset {} is not where the index has it",
                        scanned.offset
                    )));
                }
                plan.old_locs.push(old_loc);
                let stream = &append.stream;
                let (through, deleted_through) = questions
                    .places
                    .get(stream)
                    .and_then(|place| answers.reclaim_bounds.get(*place).copied())
                    .unwrap_or_default();
                let gone = match through {
                    Some(t) if t >= append.first_version => {
                        (t - append.first_version + 1).min(append.events.len() as u64) as usize
                    }
                    _ => 0,
                };
                if gone > 0 {
                    anything_goes = true;
                    let last_gone = append.first_version + gone as u64 - 1;
                    let entry = reclaimed.entry(stream.clone()).or_default();
                    entry.0 = entry.0.max(last_gone);
                    entry.1 = deleted_through >= Some(entry.0);
                }
                let start = out.len();
                plan.rewrite.records_before += 1;
                if gone < append.events.len() {
                    let loc_at = new_loc(&out, 0);
                    if gone == 0 {
                        out.extend_from_slice(frame);
                    } else {
                        record::encode_record_from(&mut out, &append, gone);
                    }
                    plan.rewrite.records.push(LogRecord {
                        created_micros: append.created_micros,
                        first_position: append.first_position + gone as u64,
                        loc: RecordLoc {
                            len: (out.len() - start) as u32,
                            ..loc_at
                        },
                    });
                }
                if gone > 0 {
                    let kept_bytes = (out.len() - start) as u64;
                    let counted = plan.by_type.entry(stream.stream_type.clone()).or_default();
                    counted.events += gone as u64;
                    counted.bytes += scanned.len - kept_bytes;
                }
            }
            Entry::Snapshot(snapshot) => {
                if snapshots.next().copied().unwrap_or(true) {
                    let loc = new_loc(&out, frame.len());
                    plan.rewrite
                        .snapshots
                        .push((snapshot.stream.clone(), old_loc, loc));
                    out.extend_from_slice(frame);
                } else {
                    anything_goes = true;
                    plan.rewrite.snapshots_gone.push(snapshot.stream.clone());
                    let counted = plan
                        .by_type
                        .entry(snapshot.stream.stream_type.clone())
                        .or_default();
                    counted.bytes += scanned.len;
                }
            }
            // Deletes and rules stay: they say what a stream's version and state are
            // once its events are gone.
            Entry::Delete(_) | Entry::Rules(_) => out.extend_from_slice(frame),
            // Sync marks speak of offsets that no longer exist; a rewritten segment's
            // first record is written anew.
            Entry::SyncMark(_) | Entry::Rewritten(_) => {}
        }
    }
    if appends != indexed.len() {
        return Err(mismatch(format!(
            "segment {seq} holds {appends} appends where the index has {}",
            indexed.len()
        )));
    }
    // What a delete covers needs no change at the switch (see `SegmentRewrite`).
    for (stream, (through, deleted)) in reclaimed {
        match deleted {
            true => plan.rewrite.deleted.push(stream),
            false => plan.rewrite.streams.push((stream, through)),
        }
    }
    if anything_goes {
        plan.len_after = out.len() as u64;
        plan.file = Some(out);
    }
    Ok(plan)
}

impl SegmentPlan {
    /// Names the rewritten file `id` in every new location.
    pub fn name_file(&mut self, id: u32) {
        self.rewrite.new_file = id;
        for record in &mut self.rewrite.records {
            record.loc.segment = id;
        }
        for (_, _, loc) in &mut self.rewrite.snapshots {
            loc.segment = id;
        }
    }
}

/// How many records or streams the plan looks at per hold of the index's read lock: a
/// long hold (a whole segment's, several ms) was the widest gap in appends' latency.
const LOCKED_BATCH: usize = 1024;

/// The index's records of segment `seq` (in file `file`), copied a batch per hold.
fn copy_records(
    shared: &Shared,
    seq: u32,
    file: u32,
    longest: &mut Duration,
) -> Result<Vec<LogRecord>, StoreError> {
    let mut copied = Vec::new();
    loop {
        let done = with_index(shared, longest, |index| {
            // Only a scavenge replaces a sealed segment's records, and this is it.
            let records = match index.segment_records(seq) {
                Some((now, Ok(records))) if now == file => records,
                Some((now, Err(count))) if now == file => return Ok(Err(count)),
                _ => return Err(mismatch(format!("segment {seq} changed while planned"))),
            };
            let end = records.len().min(copied.len() + LOCKED_BATCH);
            let batch = records
                .get(copied.len()..end)
                .ok_or_else(|| mismatch(format!("segment {seq} changed while planned")))?;
            copied.extend_from_slice(batch);
            Ok(Ok(copied.len() == records.len()))
        })?;
        match done {
            Ok(true) => return Ok(copied),
            Ok(false) => {}
            Err(count) => return records_on_disk(shared, seq, file, count),
        }
    }
}

/// The records of segment `seq`, read from its file `file`, which the index on disk
/// holds (`count` of them) and the index in memory let go of: read from the disk, with
/// no lock held.
fn records_on_disk(
    shared: &Shared,
    seq: u32,
    file: u32,
    count: usize,
) -> Result<Vec<LogRecord>, StoreError> {
    let (first, end) = read_index(shared)
        .segment_range(seq)
        .ok_or_else(|| mismatch(format!("segment {seq} is the one being written")))?;
    let db = shared.index_db().ok_or_else(|| {
        mismatch(format!(
            "segment {seq}'s records are on disk, and it closed"
        ))
    })?;
    let records = db.streams().records_in(first..end)?;
    let records: Vec<LogRecord> = records
        .into_iter()
        .map(|record| lookup::in_file(record, seq, file))
        .collect();
    if records.len() != count {
        return Err(mismatch(format!(
            "the index on disk holds {} records of segment {seq}, the index in memory \
             counted {count}",
            records.len()
        )));
    }
    Ok(records)
}

/// Runs `f` on the index under its read lock, keeping in `longest` the longest hold.
fn with_index<T>(shared: &Shared, longest: &mut Duration, f: impl FnOnce(&Index) -> T) -> T {
    let index = read_index(shared);
    let started = Instant::now();
    let out = f(&index);
    *longest = (*longest).max(started.elapsed());
    out
}

fn mismatch(reason: String) -> StoreError {
    StoreError::IndexMismatch(reason)
}

/// Where a rewritten segment is written before it is renamed over the old one.
pub fn rewrite_path(dir: &Path, seq: u32) -> std::path::PathBuf {
    let mut path = segment::segment_path(dir, u64::from(seq)).into_os_string();
    path.push(REWRITE_SUFFIX);
    path.into()
}

/// The suffix of a rewritten segment not yet renamed into place: a start removes any.
pub const REWRITE_SUFFIX: &str = ".scavenge";

//! Planning the rewrite of one sealed segment: which of its records stay, which are
//! cut short, which go, and what that frees, by stream type. A dry run stops here.

use crate::store::error::StoreError;
use crate::store::index::{LogRecord, RecordLoc, SegmentRewrite};
use crate::store::log::record::{self, Entry, Rewritten};
use crate::store::log::segment;
use crate::store::shared::{Shared, read_index};
use crate::store::types::StreamId;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

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
}

/// Plans the rewrite of sealed segment `seq`, whose file (at `path`) holds `bytes`.
/// Decisions come from the index as it is now, looked up stream by stream with short
/// read locks; applying the plan checks them again.
pub fn plan_segment(
    shared: &Shared,
    seq: u32,
    path: &Path,
    bytes: &Bytes,
    now_micros: i64,
) -> Result<SegmentPlan, StoreError> {
    let (old_file, indexed, range, rules_changes) = {
        let index = read_index(shared);
        let (file, records) = index
            .segment_records(seq)
            .ok_or_else(|| mismatch(format!("segment {seq} is not in the index")))?;
        let range = index
            .segment_range(seq)
            .ok_or_else(|| mismatch(format!("segment {seq} is the one being written")))?;
        (file, records.to_vec(), range, index.rules_changes())
    };
    let scan = segment::scan(path, u64::from(seq), bytes, false)?;

    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&segment::header_bytes(u64::from(seq)));
    record::encode_rewritten(
        &mut out,
        &Rewritten {
            created_micros: now_micros,
            first_position: range.0,
            end_position: range.1,
        },
    );
    let mut plan = SegmentPlan {
        file: None,
        rewrite: SegmentRewrite {
            segment: seq,
            old_file,
            rules_changes,
            places: Vec::with_capacity(indexed.len()),
            ..SegmentRewrite::default()
        },
        old_locs: Vec::with_capacity(indexed.len()),
        len_before: bytes.len() as u64,
        len_after: bytes.len() as u64,
        by_type: BTreeMap::new(),
    };
    // Per stream: how far it may be reclaimed (looked up once), and how far it is here.
    let mut reclaimable: HashMap<StreamId, Option<u64>> = HashMap::new();
    let mut reclaimed: HashMap<StreamId, u64> = HashMap::new();
    let mut anything_goes = false;
    let mut appends = 0;
    for scanned in scan.records {
        let frame = &bytes[scanned.offset as usize..(scanned.offset + scanned.len) as usize];
        let old_loc = RecordLoc {
            segment: old_file,
            len: scanned.len as u32,
            offset: scanned.offset,
        };
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
                if !reclaimable.contains_key(stream) {
                    let through = read_index(shared).reclaimable_through(stream);
                    reclaimable.insert(stream.clone(), through);
                }
                let through = reclaimable.get(stream).copied().flatten();
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
                    *entry = (*entry).max(last_gone);
                }
                let start = out.len();
                if gone == append.events.len() {
                    plan.rewrite.places.push(None);
                } else {
                    let place = plan.rewrite.records.len() as u32;
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
                    plan.rewrite.places.push(Some(place));
                }
                if gone > 0 {
                    let kept_bytes = (out.len() - start) as u64;
                    let counted = plan.by_type.entry(stream.stream_type.clone()).or_default();
                    counted.events += gone as u64;
                    counted.bytes += scanned.len - kept_bytes;
                }
            }
            Entry::Snapshot(snapshot) => {
                if read_index(shared).keeps_snapshot(&snapshot.stream, old_loc) {
                    let loc = new_loc(&out, frame.len());
                    plan.rewrite
                        .snapshots
                        .push((snapshot.stream.clone(), old_loc, loc));
                    out.extend_from_slice(frame);
                } else {
                    anything_goes = true;
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
    {
        let index = read_index(shared);
        for (stream, through) in reclaimed {
            let deleted_through = index.write_state(&stream).and_then(|s| s.deleted_through);
            match deleted_through >= Some(through) {
                true => plan.rewrite.deleted.push(stream),
                false => plan.rewrite.streams.push((stream, through)),
            }
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

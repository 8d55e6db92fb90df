//! Recovery: the log is the truth, and the index is rebuilt from it at every start.
//!
//! Every segment is read in order and every record's checksums are checked. A torn
//! tail in the last segment (a write the crash cut short, never acknowledged) is
//! truncated away and the truncation synced. Damage anywhere else stops the start with
//! an error naming the file and offset: acknowledged data would otherwise vanish
//! silently.

use super::decide::EventIds;
use super::error::StoreError;
use super::fs::Fs;
use super::index::{Index, RecordLoc};
use super::record::Entry;
use super::segment::{self, SEGMENT_HEADER_LEN};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// What recovery hands to the writer.
#[derive(Debug)]
pub struct Recovered {
    /// The rebuilt index.
    pub index: Index,
    /// Every event id and its position, for the writer.
    pub ids: EventIds,
    /// The segment new records go to.
    pub active_segment: u32,
    /// Its length after any torn tail was cut off.
    pub active_len: u64,
    /// How many events the log holds.
    pub events: u64,
}

/// A torn write found at the end of the log.
#[derive(Debug, Clone)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Its sequence number.
    pub seq: u64,
    /// Where its valid records end.
    pub valid_len: u64,
    /// Bytes after that.
    pub dropped: u64,
    /// What is wrong with them.
    pub reason: String,
}

/// What reading the whole log found, without changing anything.
#[derive(Debug)]
pub struct Replayed {
    /// The index the log describes.
    pub index: Index,
    /// Every event id and its position.
    pub ids: EventIds,
    /// The segments, in order, with their sizes.
    pub segments: Vec<(u64, PathBuf, u64)>,
    /// Records read.
    pub records: u64,
    /// A torn write at the very end, if any.
    pub torn: Option<TornTail>,
}

/// Reads and checks every segment in `dir` and rebuilds the index, changing nothing on
/// disk. Fails, naming the file and offset, at the first damage that is not a torn
/// tail.
pub fn replay(fs: &dyn Fs, dir: &Path) -> Result<Replayed, StoreError> {
    let segments = segment::list_segments(fs, dir)
        .map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    let last_seq = segments.last().map(|(seq, _)| *seq);
    let mut replayed = Replayed {
        index: Index::default(),
        ids: EventIds::default(),
        segments: Vec::new(),
        records: 0,
        torn: None,
    };
    // One thread reads the next segment from the disk while this one checks and indexes
    // the current: on a cold start the reads and the indexing overlap. It runs at most
    // one segment ahead, so recovery holds two segments' bytes at most.
    std::thread::scope(|scope| {
        let (sender, read) = std::sync::mpsc::sync_channel(1);
        let paths: Vec<PathBuf> = segments.iter().map(|(_, path)| path.clone()).collect();
        scope.spawn(move || {
            for path in paths {
                let bytes = fs
                    .read(&path)
                    .map(Bytes::from)
                    .map_err(|e| StoreError::io(format!("reading {}", path.display()), e));
                if sender.send(bytes).is_err() {
                    return;
                }
            }
        });
        for (seq, path) in segments {
            let seq32 = u32::try_from(seq).map_err(|_| StoreError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: "segment number out of range".into(),
            })?;
            let bytes = match read.recv() {
                Ok(read) => read?,
                Err(_) => {
                    return Err(StoreError::io(
                        "reading the log",
                        io::ErrorKind::BrokenPipe.into(),
                    ));
                }
            };
            let (index, ids) = (&mut replayed.index, &mut replayed.ids);
            let mut records = 0;
            let scan = segment::scan_each(&path, seq, &bytes, Some(seq) == last_seq, |scanned| {
                let loc = RecordLoc {
                    segment: seq32,
                    len: scanned.len as u32,
                    offset: scanned.offset,
                };
                records += 1;
                apply(index, ids, &path, scanned.offset, loc, &scanned.entry)
            })?;
            replayed.records += records;
            if let Some(reason) = scan.torn {
                replayed.torn = Some(TornTail {
                    path: path.clone(),
                    seq,
                    valid_len: scan.valid_len,
                    dropped: bytes.len() as u64 - scan.valid_len,
                    reason,
                });
            }
            replayed.segments.push((seq, path, bytes.len() as u64));
        }
        Ok(replayed)
    })
}

/// Rebuilds the index from the segments in `dir`: [`replay`], then cuts off a torn
/// tail, or creates the first segment of a new store.
pub fn recover(fs: &dyn Fs, dir: &Path) -> Result<Recovered, StoreError> {
    let replayed = replay(fs, dir)?;
    let Some((last_seq, _, last_len)) = replayed.segments.last().cloned() else {
        segment::create_segment(fs, dir, 0)
            .map_err(|e| StoreError::io("creating the first segment", e))?;
        return Ok(Recovered {
            index: Index::default(),
            ids: EventIds::default(),
            active_segment: 0,
            active_len: SEGMENT_HEADER_LEN,
            events: 0,
        });
    };
    let mut active_len = last_len;
    if let Some(torn) = &replayed.torn {
        tracing::warn!(
            segment = %torn.path.display(),
            offset = torn.valid_len,
            dropped_bytes = torn.dropped,
            reason = %torn.reason,
            "dropping a torn write at the end of the log (never acknowledged)"
        );
        repair_tail(fs, dir, &torn.path, torn.seq, torn.valid_len)?;
        active_len = torn.valid_len;
    }
    Ok(Recovered {
        events: replayed.index.next_position(),
        index: replayed.index,
        ids: replayed.ids,
        active_segment: u32::try_from(last_seq).unwrap_or(u32::MAX),
        active_len: active_len.max(SEGMENT_HEADER_LEN),
    })
}

/// Replays one record into the index, checking that it continues the log.
fn apply(
    index: &mut Index,
    ids: &mut EventIds,
    path: &Path,
    offset: u64,
    loc: RecordLoc,
    entry: &Entry,
) -> Result<(), StoreError> {
    let inconsistent = |reason: String| StoreError::Inconsistent {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    match entry {
        Entry::Append(record) => {
            if !index.continues(&record.stream, record.first_version, record.first_position) {
                return Err(inconsistent(format!(
                    "record for stream {} at version {} and position {} does not continue \
                     the log (next position {}, stream version {:?})",
                    record.stream,
                    record.first_version,
                    record.first_position,
                    index.next_position(),
                    index.stream_version(&record.stream),
                )));
            }
            index.apply(loc, record);
            for (position, event) in (record.first_position..).zip(&record.events) {
                ids.insert(event.id, position);
            }
        }
        Entry::Delete(deletion) => {
            if index.stream_version(&deletion.stream) != Some(deletion.through_version) {
                return Err(inconsistent(format!(
                    "delete of stream {} through version {} does not match its version {:?}",
                    deletion.stream,
                    deletion.through_version,
                    index.stream_version(&deletion.stream),
                )));
            }
            index.apply_delete(&deletion.stream, deletion.mode, deletion.through_version);
        }
    }
    Ok(())
}

/// Cuts the last segment back to `valid_len`, or re-creates it when not even its header
/// survived, and makes that durable.
pub fn repair_tail(
    fs: &dyn Fs,
    dir: &Path,
    path: &Path,
    seq: u64,
    valid_len: u64,
) -> Result<(), StoreError> {
    let io = |e| StoreError::io(format!("repairing the tail of {}", path.display()), e);
    if valid_len < SEGMENT_HEADER_LEN {
        fs.remove(path).map_err(io)?;
        segment::create_segment(fs, dir, seq).map_err(io)?;
        return Ok(());
    }
    fs.open_write(path)
        .and_then(|file| file.truncate(valid_len))
        .map_err(io)
}

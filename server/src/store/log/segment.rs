//! Segment files: the log is a numbered series of them in the data directory.
//!
//! A segment is `segment-NNNNNNNNNNNNNNNNNNNN.log` (its sequence number, zero-padded to
//! 20 digits so names sort in log order) and starts with a 24-byte header:
//!
//! ```text
//! [8] magic "EVENIRE\0" | u32 format version = 1 | u32 reserved = 0 | u64 sequence number
//! ```
//!
//! followed by framed records (see `record.rs`) back to back. Records never span
//! segments. No user string ever becomes part of a path.

use super::fs::{Fs, LogFile};
use super::record::{self, Entry, FRAME_HEADER_LEN, Front};
use crate::store::error::StoreError;
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// Bytes of the segment header.
pub const SEGMENT_HEADER_LEN: u64 = 24;
const MAGIC: &[u8; 8] = b"EVENIRE\0";
const FORMAT_VERSION: u32 = 1;
const PREFIX: &str = "segment-";
const SUFFIX: &str = ".log";

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{seq:020}{SUFFIX}"))
}

/// The segments in `dir`, in log order. Other files are ignored.
pub fn list_segments(fs: &dyn Fs, dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for path in fs.list(dir)? {
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            segments.push((seq, path));
        }
    }
    segments.sort();
    Ok(segments)
}

pub fn header_bytes(seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0; SEGMENT_HEADER_LEN as usize];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header
}

/// Creates segment `seq` with its header, durably: the file's contents and its entry in
/// the directory are both synced before this returns.
pub fn create_segment(fs: &dyn Fs, dir: &Path, seq: u64) -> io::Result<Box<dyn LogFile>> {
    let file = fs.create_new(&segment_path(dir, seq))?;
    file.write_all_at(&header_bytes(seq), 0)?;
    file.sync_data()?;
    fs.sync_dir(dir)?;
    Ok(file)
}

/// One record found by [`scan`], with where it lies in its segment.
#[derive(Debug)]
pub struct ScannedRecord {
    /// Offset of the frame in the segment.
    pub offset: u64,
    /// Length of the whole frame.
    pub len: u64,
    /// The decoded record.
    pub entry: Entry,
}

/// The outcome of scanning a segment's bytes.
#[derive(Debug)]
pub struct Scan {
    /// Every valid record, in order.
    pub records: Vec<ScannedRecord>,
    /// Where the valid records end. Less than the file's length when a torn tail or
    /// zeros written ahead follow.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were judged a torn write, if there are any.
    pub torn: Option<String>,
}

/// Checks the header of segment `seq` and decodes every record in `bytes` (the whole
/// file), collecting them; [`scan_each`] has the rules.
pub fn scan(path: &Path, seq: u64, bytes: &Bytes, may_be_torn: bool) -> Result<Scan, StoreError> {
    let mut records = Vec::new();
    let end = scan_each(path, seq, bytes, may_be_torn, |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(Scan {
        records,
        valid_len: end.valid_len,
        torn: end.torn,
    })
}

/// Checks that `bytes` start with the header of segment `seq`.
fn check_header(path: &Path, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let corrupt = |offset: u64, reason: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    };
    if (bytes.len() as u64) < SEGMENT_HEADER_LEN {
        return Err(corrupt(0, "shorter than a segment header"));
    }
    let expected = header_bytes(seq);
    if bytes[..8] != expected[..8] {
        return Err(corrupt(0, "not an Evenire segment (bad magic)"));
    }
    if bytes[8..12] != expected[8..12] {
        return Err(corrupt(0, "unsupported segment format version"));
    }
    if bytes[16..24] != expected[16..24] {
        return Err(corrupt(16, "sequence number differs from the file name"));
    }
    Ok(())
}

/// Every record of sealed segment `seq` (its whole file, `bytes`, which ends with its
/// last record), each checked against its checksums, handed to `visit` with its offset
/// and length and only what [`Front`] holds decoded: what the index on disk needs,
/// without decoding the events (most of the work of [`scan_each`] on a segment of
/// batches). Damage anywhere is an error.
pub fn fronts(
    path: &Path,
    seq: u64,
    bytes: &Bytes,
    mut visit: impl FnMut(u64, u64, Front) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    check_header(path, seq, bytes)?;
    let mut at = SEGMENT_HEADER_LEN as usize;
    while at < bytes.len() {
        let header: &[u8; FRAME_HEADER_LEN] = bytes
            .get(at..at + FRAME_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| corrupt_at(path, at, "incomplete frame header".into()))?;
        let header =
            record::decode_header(header).map_err(|e| corrupt_at(path, at, e.to_string()))?;
        let end = at + header.frame_len() as usize;
        let payload = bytes
            .get(at + FRAME_HEADER_LEN..end)
            .map(|_| bytes.slice(at + FRAME_HEADER_LEN..end))
            .ok_or_else(|| corrupt_at(path, at, "record runs past the end of the file".into()))?;
        let front = record::decode_front(header, payload)
            .map_err(|e| corrupt_at(path, at, e.to_string()))?;
        visit(at as u64, header.frame_len(), front)?;
        at = end;
    }
    Ok(())
}

fn corrupt_at(path: &Path, at: usize, reason: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: at as u64,
        reason,
    }
}

/// Where a segment's valid records end, and why, if bytes follow them.
#[derive(Debug)]
pub struct ScanEnd {
    /// Where the valid records end. Less than the file's length when a torn tail or
    /// zeros written ahead follow.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were judged a torn write, if there are any.
    pub torn: Option<String>,
}

/// Checks the header of segment `seq` and hands every record in `bytes` (the whole
/// file) to `visit` as it is decoded, so that recovery holds one decoded record at a
/// time rather than a whole segment's.
///
/// Only the last segment of a log whose writer did not stop cleanly (`may_be_torn`)
/// may end in anything but its last record, and only in what a crash can leave there:
/// - zeros to the end of the file: space the writer wrote ahead (`reserve.rs`);
/// - a damaged record after which the valid records, if any, belong to at most two
///   commit groups. A crash can leave unsynced pages of the group being synced and of
///   the one written after it, kept or lost in any order; no later group is ever
///   written before the first of those two is durable, and nothing of a group is
///   acknowledged before all of it is. So the damage and everything after it was never
///   acknowledged, and recovery may drop it (a torn write). Groups are told apart by
///   their commit stamps, which the writer makes strictly increasing. Unless a sync
///   mark, before the damage or after it, says the damaged bytes were synced: then the
///   damaged record may have been acknowledged, and it is damage like any other. The
///   writer leaves such marks with each group and once it falls idle
///   (`writer/marks.rs`), so that only what was acknowledged in the last moments
///   before a crash is not covered. After a clean stop, no tail is cut.
///
/// Damage anywhere else means acknowledged data is unreadable: that is an error naming
/// the file and offset, never silently skipped.
pub fn scan_each(
    path: &Path,
    seq: u64,
    bytes: &Bytes,
    may_be_torn: bool,
    mut visit: impl FnMut(ScannedRecord) -> Result<(), StoreError>,
) -> Result<ScanEnd, StoreError> {
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if (bytes.len() as u64) < SEGMENT_HEADER_LEN && may_be_torn {
        // A crash while a new segment's header was being written.
        return Ok(ScanEnd {
            valid_len: 0,
            torn: Some("segment header incomplete".into()),
        });
    }
    check_header(path, seq, bytes)?;

    // Past this, the last segment holds only zeros.
    let data_end = match may_be_torn {
        true => bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1),
        false => bytes.len(),
    };
    // How far this segment was synced, by the sync marks read so far.
    let mut synced_end = 0;
    let mut at = SEGMENT_HEADER_LEN as usize;
    while at < bytes.len() {
        if at >= data_end {
            return Ok(ScanEnd {
                valid_len: at as u64,
                torn: None,
            });
        }
        match frame_at(bytes, at) {
            Ok((entry, len)) => {
                synced_end = synced_end.max(synced_end_of(&entry, seq));
                visit(ScannedRecord {
                    offset: at as u64,
                    len,
                    entry,
                })?;
                at += len as usize;
            }
            Err(problem) if !may_be_torn => return Err(corrupt(at as u64, problem)),
            Err(problem) => {
                let after = after_damage(bytes, seq, at + 1, data_end, UNSYNCED_GROUPS);
                let synced_end = synced_end.max(after.synced_end);
                if at as u64 >= SEGMENT_HEADER_LEN && (at as u64) < synced_end {
                    return Err(corrupt(
                        at as u64,
                        format!(
                            "{problem}, in bytes a sync mark says were synced (up to offset \
                             {synced_end}): a record that may have been acknowledged is damaged"
                        ),
                    ));
                }
                let torn = match after.groups {
                    0 => problem,
                    n if n <= UNSYNCED_GROUPS => {
                        format!("{problem}, then records of {n} unsynced commit groups")
                    }
                    _ => {
                        return Err(corrupt(
                            at as u64,
                            format!(
                                "{problem}, then records of more than {UNSYNCED_GROUPS} commit groups"
                            ),
                        ));
                    }
                };
                return Ok(ScanEnd {
                    valid_len: at as u64,
                    torn: Some(torn),
                });
            }
        }
    }
    Ok(ScanEnd {
        valid_len: at as u64,
        torn: None,
    })
}

/// The records of a segment file's `bytes` that decode, in order, up to the first that
/// does not: for tests and tools that look inside a log file (to damage the second
/// append, say, past the sync marks between records).
pub fn records(bytes: &[u8]) -> Vec<ScannedRecord> {
    let bytes = Bytes::copy_from_slice(bytes);
    let mut records = Vec::new();
    let mut at = SEGMENT_HEADER_LEN as usize;
    while let Ok((entry, len)) = frame_at(&bytes, at) {
        records.push(ScannedRecord {
            offset: at as u64,
            len,
            entry,
        });
        at += len as usize;
    }
    records
}

/// Every intact record of `bytes` from offset `from` on, looking for the next valid
/// frame at every byte past damage: what a repair that cuts at `from` would lose.
pub fn intact_records_from(bytes: &Bytes, from: usize) -> Vec<ScannedRecord> {
    let mut records = Vec::new();
    let mut at = from;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        match frame_at(bytes, at) {
            Ok((entry, len)) => {
                records.push(ScannedRecord {
                    offset: at as u64,
                    len,
                    entry,
                });
                at += len as usize;
            }
            Err(_) => at += 1,
        }
    }
    records
}

/// How many commit groups a crash can leave unsynced: the one syncing and the one
/// written after it.
const UNSYNCED_GROUPS: usize = 2;

/// Decodes the frame at `at`, returning the record and the frame's length.
fn frame_at(bytes: &Bytes, at: usize) -> Result<(Entry, u64), String> {
    let header: &[u8; FRAME_HEADER_LEN] = bytes
        .get(at..at + FRAME_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| "incomplete frame header".to_string())?;
    let header = record::decode_header(header).map_err(|e| e.to_string())?;
    let end = at as u64 + header.frame_len();
    if end > bytes.len() as u64 {
        return Err(format!(
            "record of {} bytes runs past the end of the file",
            header.frame_len()
        ));
    }
    let payload = bytes.slice(at + FRAME_HEADER_LEN..end as usize);
    let entry = record::decode_payload(header, payload).map_err(|e| e.to_string())?;
    Ok((entry, header.frame_len()))
}

/// The valid frames starting at any offset from `from` to `data_end`: how many commit
/// groups they belong to (counting at most `limit + 1`) and what their sync marks say.
/// Only called on the error path of the last segment, to tell what a crash left from
/// damage to acknowledged data.
fn after_damage(
    bytes: &Bytes,
    seq: u64,
    from: usize,
    data_end: usize,
    limit: usize,
) -> AfterDamage {
    let mut stamps: Vec<i64> = Vec::new();
    let mut synced_end = 0;
    let mut at = from;
    while at < data_end && stamps.len() <= limit {
        match frame_at(bytes, at) {
            Ok((entry, len)) => {
                if !stamps.contains(&entry.created_micros()) {
                    stamps.push(entry.created_micros());
                }
                synced_end = synced_end.max(synced_end_of(&entry, seq));
                at += len as usize;
            }
            Err(_) => at += 1,
        }
    }
    AfterDamage {
        groups: stamps.len(),
        synced_end,
    }
}

/// What the valid records after a damaged one say.
struct AfterDamage {
    /// How many commit groups they belong to (counted up to one past the limit).
    groups: usize,
    /// How far their sync marks say segment `seq` was synced.
    synced_end: u64,
}

/// How far `entry` says segment `seq` was synced: 0 unless it is a sync mark for it.
fn synced_end_of(entry: &Entry, seq: u64) -> u64 {
    match entry {
        Entry::SyncMark(mark) if u64::from(mark.segment) == seq => mark.synced_end,
        _ => 0,
    }
}

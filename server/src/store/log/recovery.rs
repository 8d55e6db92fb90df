//! Recovery: the log is the truth, and the index is rebuilt from it at every start.
//!
//! Every segment is read in order and every record's checksums are checked. A torn
//! tail in the last segment (what a crash left of writes that no sync mark covers;
//! `segment::scan_each` has the rule) is truncated away and the truncation synced, and
//! so are zeros the writer had written ahead of the log (`reserve.rs`). Damage anywhere
//! else stops the start with an error naming the file and offset: acknowledged data
//! would otherwise vanish silently. After a clean stop (the writer leaves a marker file
//! once its last sync is done) there is no torn tail: any damage stops the start.

use super::fs::Fs;
use super::record::{Entry, Rewritten};
use super::segment::{self, SEGMENT_HEADER_LEN};
use crate::store::error::StoreError;
use crate::store::index::disk::{Checkpoint, IdMap, IndexDb};
use crate::store::index::{Index, RecordLoc};
use crate::store::writer::decide;
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// What recovery hands to the writer.
#[derive(Debug)]
pub struct Recovered {
    /// The rebuilt index.
    pub index: Index,
    /// The event ids gathered ([`Ids`]): all in one map without an index on disk;
    /// with one, a map per segment it does not cover, in log order, the last one the
    /// active segment's.
    pub ids: Vec<(u32, IdMap)>,
    /// Whether the checkpoint recovery was given matches the log: when it does not,
    /// every id is in `ids` and the index on disk must be rebuilt.
    pub checkpoint_holds: bool,
    /// The segment new records go to.
    pub active_segment: u32,
    /// Its length after any torn tail was cut off.
    pub active_len: u64,
    /// How many events the log holds.
    pub events: u64,
    /// The latest commit stamp in the log: the writer stamps every later group after it.
    pub last_created: i64,
    /// Segment files, the active one included.
    pub segments: u64,
    /// Bytes of the segments before the active one.
    pub sealed_bytes: u64,
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
    /// The event ids gathered, as [`Ids`] asked, and their positions.
    pub ids: Vec<(u32, IdMap)>,
    /// The segments, in order, with their sizes.
    pub segments: Vec<(u64, PathBuf, u64)>,
    /// Records read: appends and deletes.
    pub records: u64,
    /// Sync marks read (`writer/marks.rs`).
    pub sync_marks: u64,
    /// A torn write at the very end, if any.
    pub torn: Option<TornTail>,
    /// Bytes of zeros after the last record, written ahead by a writer that stopped
    /// without a clean shutdown.
    pub reserved: u64,
    /// The latest commit stamp of any record.
    pub last_created: i64,
    /// Whether the last writer stopped cleanly (its marker is there).
    pub clean_stop: bool,
    /// Whether a segment a scavenge rewrote was read.
    pub scavenged: bool,
}

/// The file a writer leaves once the last sync of a clean stop is done; the next start
/// removes it before anything is written.
const CLEAN_STOP: &str = "clean-stop";

/// Records, durably, that the log in `dir` ends with its last record, every byte
/// synced: the next start then takes any damage for damage, even at the end.
pub fn mark_clean_stop(fs: &dyn Fs, dir: &Path) -> io::Result<()> {
    fs.create_new(&dir.join(CLEAN_STOP))?.sync_data()?;
    fs.sync_dir(dir)
}

/// Whether the last writer of `dir` stopped cleanly.
fn stopped_cleanly(fs: &dyn Fs, dir: &Path) -> Result<bool, StoreError> {
    match fs.read(&dir.join(CLEAN_STOP)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(format!("reading {CLEAN_STOP}"), e)),
    }
}

/// Reads and checks every segment in `dir` and rebuilds the index, changing nothing on
/// disk. Fails, naming the file and offset, at the first damage that is not a torn
/// tail.
pub fn replay(fs: &dyn Fs, dir: &Path) -> Result<Replayed, StoreError> {
    replay_keeping(fs, dir, 1, Ids::None)
}

/// Which event ids a replay gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// None (tools that only check or cut the log).
    None,
    /// Every id, in one map (a store without an index on disk): one table at its final
    /// size, not one per segment merged after.
    InOneMap,
    /// Those of each segment from this one on, in a map per segment.
    BySegmentFrom(u32),
}

/// [`replay`], with an index that keeps the last `snapshots_kept` snapshots of each
/// stream, and the event ids `ids` asks for.
pub fn replay_keeping(
    fs: &dyn Fs,
    dir: &Path,
    snapshots_kept: usize,
    ids: Ids,
) -> Result<Replayed, StoreError> {
    replay_segments(fs, dir, snapshots_kept, ids, u64::MAX)
}

/// [`replay_keeping`] of the segments up to `last` only, without ids: the log as it
/// was when that segment was sealed (what an index on disk checkpointed there
/// describes).
pub fn replay_through(
    fs: &dyn Fs,
    dir: &Path,
    snapshots_kept: usize,
    last: u32,
) -> Result<Replayed, StoreError> {
    replay_segments(fs, dir, snapshots_kept, Ids::None, u64::from(last))
}

fn replay_segments(
    fs: &dyn Fs,
    dir: &Path,
    snapshots_kept: usize,
    ids: Ids,
    last: u64,
) -> Result<Replayed, StoreError> {
    let ids_from = match ids {
        Ids::None => u32::MAX,
        Ids::InOneMap => 0,
        Ids::BySegmentFrom(first) => first,
    };
    let segments = segment::list_segments(fs, dir)
        .map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    check_numbering(&segments)?;
    let clean_stop = stopped_cleanly(fs, dir)?;
    // The last segment may end in what a crash left only if there was one.
    let last_seq = match clean_stop {
        true => None,
        false => segments.last().map(|(seq, _)| *seq),
    };
    let segments: Vec<_> = segments
        .into_iter()
        .filter(|(seq, _)| *seq <= last)
        .collect();
    let mut replayed = Replayed {
        index: Index::keeping(snapshots_kept),
        ids: Vec::new(),
        segments: Vec::new(),
        records: 0,
        sync_marks: 0,
        torn: None,
        reserved: 0,
        last_created: i64::MIN,
        clean_stop,
        scavenged: false,
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
            // Known even when it holds no record yet: a checkpoint is checked against
            // where the segment after it starts.
            replayed.index.open_segments_through(seq32);
            let one_map_made = ids == Ids::InOneMap && !replayed.ids.is_empty();
            if seq32 >= ids_from && !one_map_made {
                replayed.ids.push((seq32, IdMap::default()));
            }
            let index = &mut replayed.index;
            let mut ids = match seq32 >= ids_from {
                true => replayed.ids.last_mut().map(|(_, ids)| ids),
                false => None,
            };
            let last_created = &mut replayed.last_created;
            let (mut records, mut sync_marks) = (0, 0);
            let scavenged = &mut replayed.scavenged;
            let mut rewritten = None;
            let scan = segment::scan_each(&path, seq, &bytes, Some(seq) == last_seq, |scanned| {
                let loc = RecordLoc {
                    segment: seq32,
                    len: scanned.len as u32,
                    offset: scanned.offset,
                };
                match scanned.entry {
                    Entry::SyncMark(_) => sync_marks += 1,
                    _ => records += 1,
                }
                *last_created = (*last_created).max(scanned.entry.created_micros());
                let mut replay = Replay {
                    index,
                    ids: ids.as_deref_mut(),
                    path: &path,
                    scavenged,
                    rewritten: &mut rewritten,
                };
                replay.apply(scanned.offset, loc, &scanned.entry)
            })?;
            if let Some(rewritten) = rewritten {
                // Positions after the segment's last record that it covered were
                // reclaimed: the next segment starts after them.
                replayed.index.reclaimed_to(seq32, rewritten.end_position);
            }
            replayed.records += records;
            replayed.sync_marks += sync_marks;
            if let Some(reason) = scan.torn {
                replayed.torn = Some(TornTail {
                    path: path.clone(),
                    seq,
                    valid_len: scan.valid_len,
                    dropped: bytes.len() as u64 - scan.valid_len,
                    reason,
                });
            } else {
                replayed.reserved = bytes.len() as u64 - scan.valid_len;
            }
            replayed.segments.push((seq, path, bytes.len() as u64));
        }
        Ok(replayed)
    })
}

/// Segments are numbered from 0 without a gap: a segment is created durably before
/// anything goes into it, and only `repair` removes any, always the last ones. A
/// missing file is refused here by number, because after a scavenge the positions alone
/// would not show it: they may jump where events were reclaimed.
fn check_numbering(segments: &[(u64, PathBuf)]) -> Result<(), StoreError> {
    for (expected, (seq, path)) in (0..).zip(segments) {
        if *seq != expected {
            let missing = match seq - expected {
                1 => format!("segment {expected} is"),
                _ => format!("segments {expected} to {} are", seq - 1),
            };
            return Err(StoreError::Inconsistent {
                path: path.clone(),
                offset: 0,
                reason: format!("{missing} missing before it (restore it from a backup)"),
            });
        }
    }
    Ok(())
}

/// Rebuilds the index from the segments in `dir`: [`replay`], then cuts off a torn
/// tail, or creates the first segment of a new store.
///
/// Without an index on disk (`index` None), every event id is gathered in one map.
/// With one, those of each segment past its checkpoint, in a map per segment, once the
/// log shows the checkpoint matches: the segment after the checkpoint's starts where
/// the checkpoint says, and the last record before it is the one the index holds
/// ([`IndexDb::agrees_with`]). An index that does not match (the log was restored from
/// a backup, or cut by `repair`) is not trusted: the log is read again for every id.
pub fn recover(
    fs: &dyn Fs,
    dir: &Path,
    snapshots_kept: usize,
    index: Option<(&IndexDb, Option<Checkpoint>)>,
) -> Result<Recovered, StoreError> {
    let checkpoint = index.and_then(|(_, checkpoint)| checkpoint);
    let ids = match index {
        None => Ids::InOneMap,
        Some((_, checkpoint)) => {
            Ids::BySegmentFrom(checkpoint.map_or(0, |c| c.segment.saturating_add(1)))
        }
    };
    let mut replayed = replay_keeping(fs, dir, snapshots_kept, ids)?;
    let checkpoint_holds = checkpoint.is_none_or(|c| {
        let next = c.segment.checked_add(1);
        next.and_then(|next| replayed.index.segment_first_position(next)) == Some(c.end_position)
    }) && index
        .is_none_or(|(db, _)| db.agrees_with(&replayed.index, checkpoint));
    if !checkpoint_holds {
        tracing::warn!(
            ?checkpoint,
            "the index on disk does not match the log: rebuilding it from the log"
        );
        replayed = replay_keeping(fs, dir, snapshots_kept, Ids::BySegmentFrom(0))?;
    }
    if replayed.clean_stop {
        // Gone before anything is written: the next crash must not pass for a clean stop.
        fs.remove(&dir.join(CLEAN_STOP))
            .and_then(|()| fs.sync_dir(dir))
            .map_err(|e| StoreError::io(format!("removing {CLEAN_STOP}"), e))?;
    }
    let Some((last_seq, last_path, last_len)) = replayed.segments.last().cloned() else {
        segment::create_segment(fs, dir, 0)
            .map_err(|e| StoreError::io("creating the first segment", e))?;
        return Ok(Recovered {
            index: Index::keeping(snapshots_kept),
            ids: vec![(0, IdMap::default())],
            checkpoint_holds,
            active_segment: 0,
            active_len: SEGMENT_HEADER_LEN,
            events: 0,
            last_created: i64::MIN,
            segments: 1,
            sealed_bytes: 0,
        });
    };
    let mut active_len = last_len;
    if let Some(torn) = &replayed.torn {
        tracing::warn!(
            segment = %torn.path.display(),
            offset = torn.valid_len,
            dropped_bytes = torn.dropped,
            reason = %torn.reason,
            "dropping a torn write at the end of the log, past what sync marks say was synced"
        );
        repair_tail(fs, dir, &torn.path, torn.seq, torn.valid_len)?;
        active_len = torn.valid_len;
    } else if replayed.reserved > 0 {
        // Zeros only: cut, so that the writer starts from a segment that ends with its
        // last record, whatever its fsync policy now.
        active_len = last_len - replayed.reserved;
        tracing::info!(
            segment = %last_path.display(),
            bytes = replayed.reserved,
            "cutting the space written ahead of the log"
        );
        repair_tail(fs, dir, &last_path, last_seq, active_len)?;
    }
    Ok(Recovered {
        events: replayed.index.next_position(),
        index: replayed.index,
        ids: replayed.ids,
        checkpoint_holds,
        active_segment: u32::try_from(last_seq).unwrap_or(u32::MAX),
        active_len: active_len.max(SEGMENT_HEADER_LEN),
        last_created: replayed.last_created,
        segments: replayed.segments.len() as u64,
        sealed_bytes: replayed
            .segments
            .split_last()
            .map_or(0, |(_, sealed)| sealed.iter().map(|(_, _, len)| len).sum()),
    })
}

/// Replays records into the index, checking each against the log before it.
///
/// Until a segment a scavenge rewrote has been read, the checks are exact: positions
/// and each stream's versions continue without a gap, and deletes, snapshots and rules
/// match their stream's state. After one, what a scavenge may have reclaimed is
/// allowed: positions and versions may jump ahead (never back), and a delete, snapshot
/// or rules record may speak of a stream whose earlier events are gone, or whose
/// later ones come after it.
struct Replay<'a> {
    index: &'a mut Index,
    /// Where the segment's event ids go, if they are wanted.
    ids: Option<&'a mut IdMap>,
    path: &'a Path,
    scavenged: &'a mut bool,
    /// The rewritten-segment record of the segment being read, if it has one.
    rewritten: &'a mut Option<Rewritten>,
}

impl Replay<'_> {
    fn apply(&mut self, offset: u64, loc: RecordLoc, entry: &Entry) -> Result<(), StoreError> {
        let index = &mut *self.index;
        let scavenged = *self.scavenged;
        let inconsistent = |reason: String| StoreError::Inconsistent {
            path: self.path.to_path_buf(),
            offset,
            reason,
        };
        match entry {
            Entry::Rewritten(rewritten) => {
                if offset != SEGMENT_HEADER_LEN
                    || rewritten.first_position != index.next_position()
                    || rewritten.end_position < rewritten.first_position
                {
                    return Err(inconsistent(format!(
                        "rewritten segment covering positions {} to {} does not continue the \
                         log at position {}",
                        rewritten.first_position,
                        rewritten.end_position,
                        index.next_position()
                    )));
                }
                index.reclaimed_to(loc.segment, rewritten.first_position);
                *self.scavenged = true;
                *self.rewritten = Some(*rewritten);
            }
            Entry::Append(record) => {
                let within = self
                    .rewritten
                    .is_none_or(|r| record.last_position() < r.end_position);
                let continues = match scavenged {
                    false => {
                        index.continues(&record.stream, record.first_version, record.first_position)
                    }
                    true => {
                        within
                            && index.continues_after_scavenge(
                                &record.stream,
                                record.first_version,
                                record.first_position,
                            )
                    }
                };
                if !continues {
                    return Err(inconsistent(format!(
                        "record for stream {} at version {} and position {} does not continue \
                         the log (next position {}, stream version {:?})",
                        record.stream,
                        record.first_version,
                        record.first_position,
                        index.next_position(),
                        index.version_in_memory(&record.stream),
                    )));
                }
                index.apply(loc, record);
                if let Some(ids) = self.ids.as_deref_mut() {
                    for (position, event) in (record.first_position..).zip(&record.events) {
                        ids.insert(event.id, position);
                    }
                }
            }
            Entry::Delete(deletion) => {
                let version = index.version_in_memory(&deletion.stream);
                let matches = match scavenged {
                    false => version == Some(deletion.through_version),
                    true => version.is_none_or(|v| v <= deletion.through_version),
                };
                if !matches {
                    return Err(inconsistent(format!(
                        "delete of stream {} through version {} does not match its version {:?}",
                        deletion.stream, deletion.through_version, version,
                    )));
                }
                index.ensure_version(
                    &deletion.stream,
                    deletion.through_version,
                    deletion.created_micros,
                );
                index.apply_delete(
                    &deletion.stream,
                    deletion.mode,
                    deletion.through_version,
                    loc.segment,
                );
            }
            Entry::Snapshot(snapshot) => {
                let state = index.write_state(&snapshot.stream);
                // A kept snapshot's stream may have had its events up to it reclaimed.
                if let Err(e) = decide::snapshot(state, &snapshot.stream, snapshot.version)
                    && !scavenged
                {
                    return Err(inconsistent(format!(
                        "snapshot of a stream it cannot be of: {e}"
                    )));
                }
                index.apply_snapshot(&snapshot.stream, snapshot.version, loc);
            }
            Entry::Rules(set) => {
                let (revision, _) = index.rules(&set.stream);
                let known = scavenged || index.version_in_memory(&set.stream).is_some();
                if !known || set.revision != revision + 1 {
                    return Err(inconsistent(format!(
                        "rules of stream {} at revision {} do not follow revision {revision}",
                        set.stream, set.revision
                    )));
                }
                index.apply_rules(&set.stream, set.revision, set.rules);
            }
            // Read by `segment::scan_each`, which judges damage by it; nothing to index.
            Entry::SyncMark(_) => {}
        }
        Ok(())
    }
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

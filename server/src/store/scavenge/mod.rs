//! Scavenging: giving back the disk that deleted streams, tombstones and stream rules
//! no longer need, while the store serves.
//!
//! Segments before the active one are read one at a time, oldest first. For each, the
//! planner (`plan.rs`) decides against the index what stays: the events reads can
//! still return, every delete and rules record, the snapshots the index keeps, and the
//! last event of each stream that is not deleted (its version is what the stream goes
//! on from). A record whose first events go is written again without them. If
//! anything goes, the kept records are written to a new file after a record saying
//! which positions the segment covers, the file is synced, and then, under the index's
//! write lock, the plan is checked again against the index (a rules change may have
//! made events readable again: then this segment is left as it is), the new file is
//! renamed over the old one and the index points at it. The directory is synced after.
//!
//! A crash at any point leaves either the old file or the new one under the segment's
//! name, and each holds every event reads returned before the scavenge; a leftover
//! new file not yet renamed is removed at the next start. Readers that found a record
//! in the old file just before the switch still read it there: the old file stays
//! open until the index no longer names it, and a read that comes later is told to
//! look again (`StoreError::Moved`), which reads do.

mod background;
pub mod plan;

use crate::store::error::StoreError;
use crate::store::index::disk::Rewritten;
use crate::store::log::fs::Fs;
use crate::store::log::segment;
use crate::store::shared::{Shared, write_index};
use bytes::Bytes;
pub use plan::Reclaimed;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How a scavenge runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScavengeOptions {
    /// Report what would be freed, and change nothing.
    pub dry_run: bool,
    /// Bytes read and written per second at most; None: as fast as the disk goes.
    pub bytes_per_second: Option<u64>,
}

/// Where a scavenge is, and what it freed (or, in a dry run, would free).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScavengeProgress {
    pub dry_run: bool,
    /// Segments it looks at: those before the active one when it started.
    pub segments_total: u64,
    pub segments_done: u64,
    /// Segments rewritten (in a dry run: that would be).
    pub segments_rewritten: u64,
    /// Segments left as they were because the index moved on while they were planned.
    pub segments_skipped: u64,
    pub bytes_read: u64,
    /// What the segment files shrank by.
    pub bytes_freed: u64,
    pub events_reclaimed: u64,
    /// What went, by stream type.
    pub by_type: BTreeMap<String, Reclaimed>,
    /// Set in the last report.
    pub done: bool,
}

/// Scavenges the log in `dir` that `shared` serves, reporting after each segment.
/// Blocking: run it on a thread of its own.
pub fn run(
    shared: &Shared,
    fs: &dyn Fs,
    dir: &Path,
    options: ScavengeOptions,
    mut report: impl FnMut(&ScavengeProgress),
) -> Result<ScavengeProgress, StoreError> {
    let active = shared.committed_end().segment;
    // Every segment up to the active one in the index, so that each sealed one's range
    // ends where the next begins, even when no append has gone into the next yet.
    write_index(shared).open_segments_through(active);
    let segments: Vec<_> = segment::list_segments(fs, dir)
        .map_err(|e| StoreError::io("listing the segments to scavenge", e))?
        .into_iter()
        .filter(|(seq, _)| *seq < u64::from(active))
        .collect();
    let mut progress = ScavengeProgress {
        dry_run: options.dry_run,
        segments_total: segments.len() as u64,
        ..ScavengeProgress::default()
    };
    let mut pacer = Pacer::new(options.bytes_per_second);
    for (seq, path) in segments {
        if *shared.closing.borrow() {
            return Err(StoreError::ShuttingDown);
        }
        let seq = u32::try_from(seq)
            .map_err(|_| StoreError::IndexMismatch(format!("segment number {seq} out of range")))?;
        let (bytes, scan) = background::in_background(|| {
            let bytes = read_paced(fs, &path, &mut pacer)
                .map(Bytes::from)
                .map_err(|e| StoreError::io(format!("reading segment {seq} to scavenge"), e))?;
            let scan = segment::scan(&path, u64::from(seq), &bytes, false)?;
            Ok((bytes, scan))
        })?;
        progress.bytes_read += bytes.len() as u64;
        let mut plan = plan::plan_segment(shared, seq, &bytes, scan, now_micros())?;
        let applied = match (&plan.file, options.dry_run) {
            (Some(_), true) => true,
            (Some(file), false) => {
                let file = file.clone();
                rewrite(shared, fs, dir, seq, &file, &mut plan, &mut pacer)?
            }
            (None, _) => false,
        };
        if applied {
            progress.segments_rewritten += 1;
            progress.bytes_freed += plan.len_before - plan.len_after;
            for (stream_type, reclaimed) in &plan.by_type {
                let counted = progress.by_type.entry(stream_type.to_string()).or_default();
                counted.events += reclaimed.events;
                counted.bytes += reclaimed.bytes;
                progress.events_reclaimed += reclaimed.events;
            }
        } else if plan.file.is_some() {
            progress.segments_skipped += 1;
        }
        progress.segments_done += 1;
        report(&progress);
    }
    progress.done = true;
    report(&progress);
    Ok(progress)
}

/// Writes `file` as segment `seq`'s new contents and switches the index to it; false
/// when the index moved on since the plan (nothing changes then).
fn rewrite(
    shared: &Shared,
    fs: &dyn Fs,
    dir: &Path,
    seq: u32,
    file: &[u8],
    plan: &mut plan::SegmentPlan,
    pacer: &mut Pacer,
) -> Result<bool, StoreError> {
    let path = &segment::segment_path(dir, u64::from(seq));
    let io = |what: &str| {
        let what = format!("{what} segment {seq}'s rewrite");
        move |e| StoreError::io(what, e)
    };
    let temp = plan::rewrite_path(dir, seq);
    match fs.remove(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("removing")(e)),
        _ => {}
    }
    background::in_background(|| {
        let written = fs.create_new(&temp).map_err(io("creating"))?;
        // In pieces, paced, with a sync every few: one write and one sync of a whole
        // segment were a burst of disk traffic that the log's own syncs queued behind.
        for (n, piece) in file.chunks(PIECE).enumerate() {
            written
                .write_all_at(piece, (n * PIECE) as u64)
                .map_err(io("writing"))?;
            if n % SYNC_EVERY_PIECES == SYNC_EVERY_PIECES - 1 {
                written.sync_data().map_err(io("syncing"))?;
            }
            pacer.moved(piece.len());
        }
        written.sync_data().map_err(io("syncing"))
    })?;
    // The index on disk may hold the segment: noted before its file changes, put in
    // again once its new name is durable (`index/ingest.rs`).
    if let Some(rewrites) = &shared.index_rewrites {
        rewrites.before(seq)?;
    }
    let streams = plan.rewrite.streams.iter().map(|(stream, _)| stream);
    let mut rewritten = Rewritten {
        segment: seq,
        file: None,
        positions: 0..0,
        streams: streams.chain(&plan.rewrite.deleted).cloned().collect(),
        snapshots_gone: plan.rewrite.snapshots_gone.clone(),
    };
    let after = |rewritten: Rewritten| {
        if let Some(rewrites) = &shared.index_rewrites {
            rewrites.after(rewritten);
        }
    };
    // Locations that name the old file must go on reading it after the rename.
    shared.reader.hold(plan.rewrite.old_file, seq)?;
    let locked = Instant::now();
    {
        let mut index = write_index(shared);
        if let Some((first, end)) = index.segment_range(seq) {
            rewritten.positions = first..end;
        }
        if let Err(reason) = index.check_rewrite(&plan.rewrite) {
            drop(index);
            tracing::info!(segment = seq, %reason, "left a segment as it was");
            fs.remove(&temp).map_err(io("removing"))?;
            after(rewritten);
            return Ok(false);
        }
        fs.rename(&temp, path).map_err(io("renaming"))?;
        let opened = fs.open_read(path).map_err(io("opening"))?;
        let id = shared.reader.adopt(seq, opened)?;
        plan.name_file(id);
        rewritten.file = Some(id);
        index
            .rewrite_segment(&plan.rewrite)
            .map_err(StoreError::IndexMismatch)?;
    }
    // How long appends waited on the switch: what a scavenge costs their latency most.
    tracing::info!(
        segment = seq,
        freed = plan.len_before - plan.len_after,
        index_locked_us = locked.elapsed().as_micros() as u64,
        plan_read_locked_us = plan.longest_read_lock.as_micros() as u64,
        "segment rewritten"
    );
    fs.sync_dir(dir)
        .map_err(io("syncing the directory after"))?;
    after(rewritten);
    for batch in plan.rewrite.deleted.chunks(DROP_BATCH) {
        write_index(shared).drop_gone_chunks(batch);
    }
    shared.reader.retire(&[plan.rewrite.old_file]);
    shared.reader.forget(plan.old_locs.iter().copied());
    shared
        .stats
        .sealed_bytes
        .fetch_sub(plan.len_before - plan.len_after, Ordering::Relaxed);
    Ok(true)
}

/// The unit of a scavenge's disk traffic: it reads and writes a segment this much at a
/// time, pacing between pieces, so that its rate limit spreads the work evenly.
const PIECE: usize = 1 << 20;
/// Deleted streams whose reclaimed chunks go per hold of the index's lock after a
/// switch: short holds, so appends never wait long.
const DROP_BATCH: usize = 1024;
/// A rewritten segment is synced every this many pieces as it is written.
const SYNC_EVERY_PIECES: usize = 8;

/// Keeps a scavenge's bytes read and written within its rate, by sleeping.
struct Pacer {
    rate: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Self {
        Pacer {
            rate: rate.filter(|r| *r > 0),
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `bytes` more, and sleeps until they are within the rate.
    fn moved(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        let Some(rate) = self.rate else {
            return;
        };
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// The whole of the file at `path`, read a piece at a time at `pacer`'s rate.
fn read_paced(fs: &dyn Fs, path: &Path, pacer: &mut Pacer) -> std::io::Result<Vec<u8>> {
    let file = fs.open_read(path)?;
    let len = file.file_len()? as usize;
    let mut bytes = vec![0; len];
    for (n, piece) in bytes.chunks_mut(PIECE).enumerate() {
        file.read_exact_at(piece, (n * PIECE) as u64)?;
        pacer.moved(piece.len());
    }
    Ok(bytes)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Removes rewritten segments a crash left before they were renamed into place.
pub fn remove_leftovers(fs: &dyn Fs, dir: &Path) -> Result<(), StoreError> {
    let listed = fs
        .list(dir)
        .map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    for path in listed {
        let leftover = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(plan::REWRITE_SUFFIX));
        if leftover {
            tracing::info!(file = %path.display(), "removing a segment rewrite a crash left unfinished");
            fs.remove(&path)
                .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
        }
    }
    Ok(())
}

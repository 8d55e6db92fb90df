//! Offline checking and repair of a data directory: what `evenire-server verify` and
//! `evenire-server repair` run while no server has the directory open.
//!
//! `verify` reads every record the way recovery does and reports, with what a cut at
//! the first damage would lose ([`lost`](super::lost)). `repair` cuts the log at the
//! first damaged record: that segment is truncated there and every later segment
//! removed, so the log again ends with its last good record. What is cut is lost,
//! including acknowledged events after the damage; `--dry-run` says how much first.
//! `repair --skip-damaged-record` loses only the damaged record's events instead, when
//! the records around it are intact ([`skip`](super::skip)). Restoring the damaged file
//! from a backup is the alternative that loses nothing.

use super::fs::{Fs, RealFs};
use super::lost::{Lost, lost_by_cut};
use super::recovery::{self, TornTail};
use super::segment::{self, SEGMENT_HEADER_LEN};
use crate::store::error::StoreError;
use crate::store::index::disk;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// What `verify` found.
#[derive(Debug)]
pub enum Health {
    /// Every record checks out (a torn tail, which any start repairs, is reported).
    Sound {
        /// Segments read.
        segments: usize,
        /// Records read.
        records: u64,
        /// Events they hold.
        events: u64,
        /// A torn write at the end, if any.
        torn: Option<TornTail>,
    },
    /// The log is damaged: recovery refuses to start.
    Damaged(Damage),
}

/// The first damage in the log, and what cutting the log there would remove.
#[derive(Debug)]
pub struct Damage {
    /// What recovery says.
    pub error: String,
    /// The segment with the damaged record.
    pub path: PathBuf,
    /// Where the damaged record starts.
    pub offset: u64,
    /// Bytes of that segment from the damage on.
    pub bytes_cut: u64,
    /// Later segments, which a repair removes.
    pub later_segments: Vec<PathBuf>,
    /// Their bytes.
    pub later_bytes: u64,
    /// Whether the record fails its checksums (damage), rather than decoding but not
    /// continuing the log (an inconsistency).
    pub checksum_failed: bool,
    /// What a cut there loses.
    pub lost: Lost,
}

/// Reads the whole log in `dir` and says whether it is sound. Changes nothing.
pub fn verify(dir: &Path) -> Result<Health, StoreError> {
    match recovery::replay(&RealFs, dir) {
        Ok(replayed) => Ok(Health::Sound {
            segments: replayed.segments.len(),
            records: replayed.records,
            events: replayed.index.next_position(),
            torn: replayed.torn,
        }),
        Err(StoreError::Corrupt {
            path,
            offset,
            reason,
        }) => {
            let error = format!("{}: offset {offset}: {reason}", path.display());
            Ok(Health::Damaged(damage(dir, path, offset, error, true)?))
        }
        Err(StoreError::Inconsistent {
            path,
            offset,
            reason,
        }) => {
            let error = format!("{}: offset {offset}: {reason}", path.display());
            Ok(Health::Damaged(damage(dir, path, offset, error, false)?))
        }
        Err(other) => Err(other),
    }
}

fn damage(
    dir: &Path,
    path: PathBuf,
    offset: u64,
    error: String,
    checksum_failed: bool,
) -> Result<Damage, StoreError> {
    let io = |e| StoreError::io(format!("reading {}", dir.display()), e);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).map_err(io);
    let segments = segment::list_segments(&RealFs, dir).map_err(io)?;
    let seq = segments
        .iter()
        .find(|(_, p)| *p == path)
        .map(|(seq, _)| *seq)
        .unwrap_or(u64::MAX);
    let lost = lost_by_cut(&RealFs, &segments, seq, offset)?;
    let later_segments: Vec<PathBuf> = segments
        .into_iter()
        .filter(|(s, _)| *s > seq)
        .map(|(_, p)| p)
        .collect();
    let mut later_bytes = 0;
    for later in &later_segments {
        later_bytes += size(later)?;
    }
    Ok(Damage {
        error,
        bytes_cut: size(&path)?.saturating_sub(offset),
        path,
        offset,
        later_segments,
        later_bytes,
        checksum_failed,
        lost,
    })
}

/// Cuts the log at its first damage (and a torn tail), durably. Returns what was
/// found; with `dry_run`, changes nothing.
pub fn repair(dir: &Path, dry_run: bool) -> Result<Health, StoreError> {
    let health = verify(dir)?;
    if dry_run {
        return Ok(health);
    }
    let io = |e| StoreError::io(format!("repairing {}", dir.display()), e);
    match &health {
        Health::Sound {
            torn: Some(torn), ..
        } => {
            recovery::repair_tail(&RealFs, dir, &torn.path, torn.seq, torn.valid_len)?;
        }
        Health::Sound { torn: None, .. } => {}
        Health::Damaged(damage) => {
            for later in damage.later_segments.iter().rev() {
                std::fs::remove_file(later).map_err(io)?;
            }
            if damage.offset < SEGMENT_HEADER_LEN {
                std::fs::remove_file(&damage.path).map_err(io)?;
            } else {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&damage.path)
                    .map_err(io)?;
                file.set_len(damage.offset).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
            RealFs.sync_dir(dir).map_err(io)?;
            // It may cover what was cut: the next start builds it again from the log.
            remove_index(dir)?;
        }
    }
    Ok(health)
}

/// Removes the index on disk of the log in `dir`, if it has one: after a repair
/// changed the log, what it says of the changed records is not to be trusted, even
/// past its checkpoint (`index/disk_streams.rs`).
pub fn remove_index(dir: &Path) -> Result<(), StoreError> {
    disk::remove(&dir.join(disk::INDEX_DIR))
}

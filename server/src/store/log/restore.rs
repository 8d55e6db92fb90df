//! Restoring a backup into a new data directory: `evenire-server restore`.
//!
//! The backup directory's manifest (`evenire-backup.json`, written last by `evenire
//! backup`) says which files make the backup and what each one's length and CRC-32C
//! are; a directory without one holds a backup that did not finish, and is refused.
//! Each file is copied and checked against the manifest; with a position to stop at,
//! the log is cut before the first append that reaches it (an append is atomic: one
//! that straddles the position is left out whole); then every record of the new log is
//! read and checked as recovery does, and the positions must end where the manifest
//! (or the cut) says. The target must be empty, or not exist: a restore never mixes
//! with another log.

use super::fs::{Fs, RealFs};
use super::record::Entry;
use super::recovery;
use super::segment::{self, SEGMENT_HEADER_LEN};
use crate::store::error::StoreError;
use bytes::Bytes;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "evenire-backup.json";

/// A backup's manifest, as `evenire backup` writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Every event at a position below this is in the backup.
    pub position: u64,
    pub server_version: String,
    pub finished_unix_seconds: u64,
    pub files: Vec<ManifestFile>,
}

/// One file of a backup.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub length: u64,
    pub crc32c: u32,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// The restored store holds every event at a position below this.
    pub position: u64,
    /// Segments restored.
    pub segments: usize,
    /// Records read and checked.
    pub records: u64,
    /// With a position asked for inside an append: that append's positions, left out.
    pub left_out: Option<(u64, u64)>,
}

/// Why a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup, the target or the position asked for is not what a restore needs;
    /// the message says why.
    #[error("{0}")]
    Refused(String),
    /// Reading the backup or writing the new log failed, or the new log does not check
    /// out.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(message: String) -> RestoreError {
    RestoreError::Refused(message)
}

/// Restores the backup in `from` into `to`, up to `to_position` (events at positions
/// below it) when given, else all of it.
pub fn restore(from: &Path, to: &Path, to_position: Option<u64>) -> Result<Restored, RestoreError> {
    let manifest = read_manifest(from)?;
    let position = to_position.unwrap_or(manifest.position);
    if position > manifest.position {
        return Err(refused(format!(
            "--to-position {position} is past the backup, which holds positions below {}",
            manifest.position
        )));
    }
    prepare_target(to)?;
    let _lock = crate::store::lock_dir(&RealFs, to)?;
    let mut copied = Vec::new();
    for file in &manifest.files {
        copied.push(copy_checked(from, to, file)?);
    }
    let left_out = cut_at(&copied, position)?;
    RealFs
        .sync_dir(to)
        .map_err(|e| StoreError::io(format!("syncing {}", to.display()), e))?;
    let replayed = recovery::replay(&RealFs, to)?;
    let reached = left_out.map_or(position, |(first, _)| first);
    if let Some(torn) = replayed.torn {
        return Err(refused(format!(
            "the restored log ends in a damaged record in {} at offset {}: {}",
            torn.path.display(),
            torn.valid_len,
            torn.reason
        )));
    }
    if replayed.index.next_position() != reached {
        return Err(refused(format!(
            "the restored log holds positions below {}, where {reached} was expected",
            replayed.index.next_position()
        )));
    }
    Ok(Restored {
        manifest,
        position: reached,
        segments: replayed.segments.len(),
        records: replayed.records,
        left_out,
    })
}

fn read_manifest(from: &Path) -> Result<Manifest, RestoreError> {
    let path = from.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refused(format!(
                "{} has no {MANIFEST}: not a backup, or a backup that did not finish (run \
                 `evenire backup {}` again to finish it)",
                from.display(),
                from.display()
            )));
        }
        Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e).into()),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| refused(format!("{} is not a backup manifest: {e}", path.display())))?;
    if manifest.format != 1 {
        return Err(refused(format!(
            "{} is of format {}; this server reads format 1",
            path.display(),
            manifest.format
        )));
    }
    for (seq, file) in manifest.files.iter().enumerate() {
        let expected = segment::segment_path(Path::new(""), seq as u64);
        if Path::new(&file.name) != expected {
            return Err(refused(format!(
                "{} lists `{}` where {} was due",
                path.display(),
                file.name,
                expected.display()
            )));
        }
    }
    Ok(manifest)
}

/// Creates `to`, or checks that it is empty.
fn prepare_target(to: &Path) -> Result<(), RestoreError> {
    match std::fs::read_dir(to) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(refused(format!(
                "{} is not empty: restore into a new directory (a server's data directory \
                 is never overwritten)",
                to.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(to)
            .map_err(|e| StoreError::io(format!("creating {}", to.display()), e).into()),
        Err(e) => Err(StoreError::io(format!("reading {}", to.display()), e).into()),
    }
}

/// Copies one file of the backup, checking its length and CRC-32C on the way; returns
/// the copy's path.
fn copy_checked(from: &Path, to: &Path, file: &ManifestFile) -> Result<PathBuf, RestoreError> {
    let source = from.join(&file.name);
    let target = to.join(&file.name);
    let io = |what: &str, path: &Path, e| StoreError::io(format!("{what} {}", path.display()), e);
    let mut input = std::fs::File::open(&source).map_err(|e| io("opening", &source, e))?;
    let mut output = std::fs::File::create_new(&target).map_err(|e| io("creating", &target, e))?;
    let (mut crc, mut length) = (0, 0u64);
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| io("reading", &source, e))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        length += n as u64;
        output
            .write_all(&buf[..n])
            .map_err(|e| io("writing", &target, e))?;
    }
    if length != file.length || crc != file.crc32c {
        return Err(refused(format!(
            "{} does not match the manifest ({length} bytes, CRC-32C {crc:08x}; the manifest \
             says {} bytes, {:08x}): the backup is damaged",
            source.display(),
            file.length,
            file.crc32c
        )));
    }
    output.sync_all().map_err(|e| io("syncing", &target, e))?;
    Ok(target)
}

/// Cuts the copied log before the first append that holds `position` or later; returns
/// that append's positions when it straddles `position`.
fn cut_at(copied: &[PathBuf], position: u64) -> Result<Option<(u64, u64)>, RestoreError> {
    for (seq, path) in copied.iter().enumerate() {
        let bytes = Bytes::from(
            std::fs::read(path)
                .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?,
        );
        let scan = segment::scan(path, seq as u64, &bytes, false)?;
        let first_beyond = scan.records.iter().find_map(|record| match &record.entry {
            Entry::Append(append) if append.last_position() >= position => {
                Some((record.offset, append.first_position, append.last_position()))
            }
            _ => None,
        });
        let Some((offset, first, last)) = first_beyond else {
            continue;
        };
        let cut = |path: &Path, len: u64| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|file| {
                    file.set_len(len)?;
                    file.sync_all()
                })
                .map_err(|e| StoreError::io(format!("cutting {}", path.display()), e))
        };
        cut(path, offset.max(SEGMENT_HEADER_LEN))?;
        for later in &copied[seq + 1..] {
            std::fs::remove_file(later)
                .map_err(|e| StoreError::io(format!("removing {}", later.display()), e))?;
        }
        return Ok((first < position).then_some((first, last)));
    }
    Ok(None)
}

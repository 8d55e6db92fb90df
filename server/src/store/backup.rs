//! Online backup: a consistent copy of the log while the store serves.
//!
//! The copy ends where the last durable, visible group ended when the backup started
//! ([`CommittedEnd`]): every segment before that group's one whole, and that one up to
//! there. Segments before the active one never change (rotation cut them to their last
//! record before the next one was created), and the active one only grows past the
//! committed end, so reading them while the writer writes needs no lock. The copy is a
//! data directory: its last segment ends with a whole record, as after a clean stop.
//!
//! A caller that holds files from an earlier backup says how long each is and what its
//! tail's CRC-32C is; a file that is a prefix of the server's is continued from where
//! it ends instead of sent again.

use crate::store::error::StoreError;
use crate::store::log::fs::{Fs, ReadAt};
use crate::store::log::segment;
use crate::store::shared::Shared;
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;

/// Bytes per chunk at most.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A file the caller holds from an earlier backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFile {
    pub name: String,
    pub length: u64,
    /// CRC-32C of its bytes in `evenire_proto::backup_tail(length)`.
    pub tail_crc32c: u32,
}

/// What a backup copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    /// Every event at a position below this one is in it.
    pub position: u64,
    pub files: Vec<BackupFile>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub name: String,
    /// Its length in the backup.
    pub length: u64,
    /// Where its chunks start: the caller's length when the caller's copy is a prefix.
    pub fetch_from: u64,
}

/// A piece of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupChunk {
    pub name: String,
    pub offset: u64,
    pub data: Bytes,
    pub crc32c: u32,
}

/// A backup in progress: its plan, then its chunks one by one. Blocking: each chunk is
/// a positioned read.
#[derive(Debug)]
pub struct Backup {
    plan: BackupPlan,
    files: Vec<Arc<dyn ReadAt>>,
    /// The file being sent, and where in it the next chunk starts.
    current: usize,
    offset: u64,
}

impl Backup {
    /// Plans a backup of the log in `dir` as `shared` has committed it now, for a
    /// caller that holds `held`.
    pub fn start(
        fs: &dyn Fs,
        dir: &Path,
        shared: &Shared,
        held: &[HeldFile],
    ) -> Result<Backup, StoreError> {
        let end = shared.committed_end();
        let mut plan = BackupPlan {
            position: end.position,
            files: Vec::new(),
        };
        let mut files = Vec::new();
        for seq in 0..=u64::from(end.segment) {
            let path = segment::segment_path(dir, seq);
            let name = file_name(&path);
            let file = fs
                .open_read(&path)
                .map_err(|e| StoreError::io(format!("opening {name} for a backup"), e))?;
            let length = match seq == u64::from(end.segment) {
                true => end.offset,
                false => file
                    .file_len()
                    .map_err(|e| StoreError::io(format!("reading the length of {name}"), e))?,
            };
            let fetch_from = match held.iter().find(|h| h.name == name) {
                Some(held) if is_prefix(file.as_ref(), held, length)? => held.length,
                _ => 0,
            };
            plan.files.push(BackupFile {
                name,
                length,
                fetch_from,
            });
            files.push(file);
        }
        let offset = plan.files.first().map_or(0, |f| f.fetch_from);
        Ok(Backup {
            plan,
            files,
            current: 0,
            offset,
        })
    }

    pub fn plan(&self) -> &BackupPlan {
        &self.plan
    }

    /// The next chunk; None once every file is sent.
    pub fn next_chunk(&mut self) -> Result<Option<BackupChunk>, StoreError> {
        loop {
            let Some(target) = self.plan.files.get(self.current) else {
                return Ok(None);
            };
            if self.offset >= target.length {
                self.current += 1;
                self.offset = self
                    .plan
                    .files
                    .get(self.current)
                    .map_or(0, |f| f.fetch_from);
                continue;
            }
            let len = (target.length - self.offset).min(CHUNK_BYTES as u64) as usize;
            let mut data = vec![0; len];
            self.files[self.current]
                .read_exact_at(&mut data, self.offset)
                .map_err(|e| StoreError::io(format!("reading {} for a backup", target.name), e))?;
            let chunk = BackupChunk {
                name: target.name.clone(),
                offset: self.offset,
                crc32c: crc32c::crc32c(&data),
                data: Bytes::from(data),
            };
            self.offset += len as u64;
            return Ok(Some(chunk));
        }
    }
}

/// Whether the caller's copy `held` is the first `held.length` bytes of `file`, whose
/// backup is `length` long: by the CRC-32C of its tail.
fn is_prefix(file: &dyn ReadAt, held: &HeldFile, length: u64) -> Result<bool, StoreError> {
    if held.length > length || held.length < segment::SEGMENT_HEADER_LEN {
        return Ok(false);
    }
    let tail = evenire_proto::backup_tail(held.length);
    let mut bytes = vec![0; (tail.end - tail.start) as usize];
    file.read_exact_at(&mut bytes, tail.start)
        .map_err(|e| StoreError::io(format!("reading {} for a backup", held.name), e))?;
    Ok(crc32c::crc32c(&bytes) == held.tail_crc32c)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

//! The index on disk checked against the log: what `evenire-server verify` reports of
//! it, and what the crash harness checks after its kill -9 cycles.
//!
//! The log up to the index's checkpoint is replayed into an index in memory, as a start
//! builds one, and the index on disk must hold exactly what that one describes: the
//! same records in log order, the same chunks of every stream, the same deletes. An
//! index that differs is not damage to the data (the next start finds it does not
//! agree with the log and rebuilds it), but it is a bug, or a scavenge that rewrote a
//! segment after it was indexed (`disk_streams.rs` says why).

use super::Index;
use super::disk::{Checkpoint, INDEX_DIR, IndexDb};
use super::disk_streams::{DiskChunk, DiskDeletion, chunk_key, stream_key};
use crate::store::error::StoreError;
use crate::store::log::fs::RealFs;
use crate::store::log::recovery;
use std::fmt::Debug;
use std::path::Path;

/// What checking the index on disk found.
#[derive(Debug, Default)]
pub struct IndexCheck {
    /// How far the index covers the log; None when it covers nothing yet.
    pub checkpoint: Option<Checkpoint>,
    /// Records, chunks and deletes compared.
    pub records: u64,
    pub chunks: u64,
    pub deletes: u64,
    /// The first difference from the log, if there is one.
    pub difference: Option<String>,
}

/// Checks the index on disk of the log in `dir` against the log; None when there is
/// no index. Run while no server has the directory open.
pub fn check_index(dir: &Path) -> Result<Option<IndexCheck>, StoreError> {
    let index_dir = dir.join(INDEX_DIR);
    if !index_dir.exists() {
        return Ok(None);
    }
    let db = IndexDb::open_to_check(&index_dir)?;
    let mut check = IndexCheck {
        checkpoint: db.checkpoint()?,
        ..IndexCheck::default()
    };
    let Some(checkpoint) = check.checkpoint else {
        return Ok(Some(check));
    };
    let memory = recovery::replay_through(&RealFs, dir, checkpoint.segment)?.index;
    if memory.next_position() != checkpoint.end_position {
        check.difference = Some(format!(
            "the checkpoint says segment {} ends before position {}, the log says {}",
            checkpoint.segment,
            checkpoint.end_position,
            memory.next_position()
        ));
        return Ok(Some(check));
    }
    let disk = db.streams();
    let records = memory
        .segments
        .iter()
        .flat_map(|s| s.records.iter().copied());
    let (count, difference) = first_difference("record", records, disk.records())?;
    check.records = count;
    if difference.is_none() {
        let (count, difference) = first_difference("chunk", chunks(&memory), disk.chunks())?;
        check.chunks = count;
        check.difference = difference;
    } else {
        check.difference = difference;
    }
    if check.difference.is_none() {
        let (count, difference) = first_difference("delete", deletes(&memory), disk.deletes())?;
        check.deletes = count;
        check.difference = difference;
    }
    Ok(Some(check))
}

/// The chunks of every stream of `memory` as the index on disk keeps them, in key order.
fn chunks(memory: &Index) -> impl Iterator<Item = (Vec<u8>, DiskChunk)> {
    let mut chunks = Vec::new();
    for (stream, entry) in memory.streams.iter() {
        let key = stream_key(stream);
        for (i, chunk) in entry.chunks.iter().enumerate() {
            // A replay's chunks all name records it read.
            let Some(record) = memory.record_of(chunk) else {
                continue;
            };
            let next = entry
                .chunks
                .get(i + 1)
                .map_or(entry.version + 1, |c| c.first_version);
            chunks.push((
                chunk_key(&key, chunk.first_version),
                DiskChunk {
                    first_version: chunk.first_version,
                    first_position: record.first_position,
                    events: (next - chunk.first_version) as u32,
                    created_micros: record.created_micros,
                },
            ));
        }
    }
    chunks.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    chunks.into_iter()
}

/// What deletes said of the streams of `memory`, in key order.
fn deletes(memory: &Index) -> impl Iterator<Item = (Vec<u8>, DiskDeletion)> {
    let mut deletes: Vec<_> = memory
        .streams
        .iter()
        .filter_map(|(stream, entry)| {
            let deleted = DiskDeletion {
                through_version: entry.deleted_through?,
                tombstoned: entry.tombstoned,
            };
            Some((stream_key(stream), deleted))
        })
        .collect();
    deletes.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    deletes.into_iter()
}

/// How many items of `expected` and `found` were compared, and the first place they
/// differ, if any.
fn first_difference<T: PartialEq + Debug>(
    what: &str,
    mut expected: impl Iterator<Item = T>,
    mut found: impl Iterator<Item = Result<T, StoreError>>,
) -> Result<(u64, Option<String>), StoreError> {
    let mut count = 0;
    loop {
        let (want, got) = (expected.next(), found.next().transpose()?);
        let difference = match (&want, &got) {
            (None, None) => return Ok((count, None)),
            (Some(want), Some(got)) if want == got => None,
            (Some(want), Some(got)) => Some(format!("the log's {want:?}, the index's {got:?}")),
            (Some(want), None) => Some(format!("the log's {want:?} is missing")),
            (None, Some(got)) => Some(format!("the index has {got:?} the log does not")),
        };
        if let Some(difference) = difference {
            return Ok((count, Some(format!("{what} {count}: {difference}"))));
        }
        count += 1;
    }
}

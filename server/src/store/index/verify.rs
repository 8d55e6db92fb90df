//! The index on disk checked against the log: what `evenire-server verify` reports of
//! it, and what the crash harness checks after its kill -9 cycles.
//!
//! The log up to the index's checkpoint is replayed into an index in memory, as a start
//! builds one, and the index on disk must hold exactly what that one describes, up to
//! its checkpoint: the same records in log order, the same chunks of every stream, the
//! same deletes, rules, snapshots and segment ends. An
//! index that differs is not damage to the data (the next start finds it does not
//! agree with the log and rebuilds it), but it is a bug, or a scavenge's rewrite that a
//! crash kept from the index (noted, `ingest.rs`).

use super::disk::{Checkpoint, INDEX_DIR, IndexDb};
use super::disk_answers::{DiskAnswers, DiskQuery};
use super::disk_streams::{DiskChunk, DiskDeletion, StreamKeyspaces, chunk_key, stream_key};
use super::lookup;
use super::{Index, LogRecord, RecordLoc, record_in};
use crate::store::error::StoreError;
use crate::store::log::fs::RealFs;
use crate::store::log::recovery;
use crate::store::types::{StreamId, StreamRules};
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
    /// Answers compared: each stream's facts, what a read of it covers, its info and
    /// latest snapshot, where an age rule would cut it, the record of each of its chunks' first and last versions, the
    /// records holding each record's start and the position before it and the one after
    /// its start, and the streams in listing order.
    pub answers: u64,
    /// The first difference from the log, if there is one.
    pub difference: Option<String>,
}

/// Checks the index on disk of the log in `dir`, which keeps `snapshots_kept`
/// snapshots of each stream, against the log; None when there is no index. Run while
/// no server has the directory open.
pub fn check_index(dir: &Path, snapshots_kept: usize) -> Result<Option<IndexCheck>, StoreError> {
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
    let stale = db.stale_rewrites(Some(checkpoint))?;
    if !stale.is_empty() {
        check.difference = Some(format!(
            "segments {stale:?} were rewritten by a scavenge, and the server stopped before \
             they were indexed again"
        ));
        return Ok(Some(check));
    }
    let replayed = recovery::replay_through(&RealFs, dir, snapshots_kept, checkpoint.segment)?;
    let memory = &replayed.index;
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
    // What a crash left past the checkpoint (records and chunks are written before it,
    // `disk_streams.rs`) is not the index's yet.
    let end = checkpoint.end_position;
    let covered_record =
        |r: &Result<LogRecord, StoreError>| r.as_ref().map_or(true, |r| r.first_position < end);
    let covered_chunk = |c: &Result<(Vec<u8>, DiskChunk), StoreError>| {
        c.as_ref().map_or(true, |(_, c)| c.first_position < end)
    };
    let records = memory
        .segments
        .iter()
        .flat_map(|s| s.records.iter().copied());
    let compared = [
        first_difference("record", records, disk.records().filter(covered_record))?,
        first_difference("chunk", chunks(memory), disk.chunks().filter(covered_chunk))?,
        first_difference(
            "delete",
            deletes(memory),
            disk.deletes().map(|d| {
                d.map(|(key, deleted)| {
                    let first_micros = 0;
                    (
                        key,
                        DiskDeletion {
                            first_micros,
                            ..deleted
                        },
                    )
                })
            }),
        )?,
        first_difference(
            "rules",
            rules(memory),
            disk.meta
                .all_rules()
                .map(|r| r.map(|(key, set)| (key, (set.revision, set.rules)))),
        )?,
        first_difference("snapshot", snapshots(memory), disk.meta.all_snapshots())?,
        first_difference(
            "segment end",
            segment_ends(memory, checkpoint.segment),
            disk.meta
                .all_segments()
                .map(|s| s.map(|(seq, end)| (seq, end.end_position))),
        )?,
    ];
    [check.records, check.chunks, check.deletes] = [compared[0].0, compared[1].0, compared[2].0];
    check.difference = compared.into_iter().find_map(|(_, difference)| difference);
    if check.difference.is_none() {
        let latest = disk
            .meta
            .all_segments()
            .map(|s| s.map(|(_, end)| end.last_created))
            .try_fold(i64::MIN, |latest, t| t.map(|t| latest.max(t)))?;
        if latest != replayed.last_created {
            check.difference = Some(format!(
                "the latest commit stamp: the log's {}, the index's {latest}",
                replayed.last_created
            ));
        }
    }
    if check.difference.is_none() {
        (check.answers, check.difference) = answers_differ(memory, disk, end)?;
    }
    Ok(Some(check))
}

/// How many of the answers that reads will ask of the index on disk (`disk_reads.rs`)
/// were compared with those of `memory`, and the first that differs, if one does.
fn answers_differ(
    memory: &Index,
    disk: &StreamKeyspaces,
    end: u64,
) -> Result<(u64, Option<String>), StoreError> {
    let defaults = &memory.default_rules;
    let count = std::cell::Cell::new(0);
    let differs = |what: String, want: &dyn Debug, got: &dyn Debug| {
        count.set(count.get() + 1);
        let (want, got) = (format!("{want:?}"), format!("{got:?}"));
        (want != got).then(|| format!("{what}: the log's {want}, the index's {got}"))
    };
    // A replay holds every chunk in memory: nothing is asked of the disk.
    let answers = DiskAnswers::new();
    for (stream, entry) in memory.streams.iter() {
        let facts = Some(entry.facts());
        let checks = [
            differs(
                format!("the facts of stream {stream}"),
                &facts,
                &disk.stream_facts(stream, end)?,
            ),
            differs(
                format!("what a read of stream {stream} covers"),
                &in_memory(memory.readable(stream, &answers))?,
                &disk.readable(stream, defaults, end)?,
            ),
            differs(
                format!("the info of stream {stream}"),
                &in_memory(memory.info(stream, &answers))?,
                &disk.info(stream, defaults, end)?,
            ),
            differs(
                format!("the latest snapshot of stream {stream}"),
                &memory.latest_snapshot(stream),
                &disk.latest_snapshot(stream)?,
            ),
        ];
        if let Some(difference) = checks.into_iter().flatten().next() {
            return Ok((count.get(), Some(difference)));
        }
        // Where an age rule would cut the stream: at its first, middle and last
        // chunks' stamps, and just after the last (nothing is that young).
        let stamps = [
            0,
            entry.chunks.len() / 2,
            entry.chunks.len().saturating_sub(1),
        ]
        .map(|at| record_in(&memory.segments, entry, at).map(|r| r.created_micros));
        let cutoffs = stamps
            .into_iter()
            .flatten()
            .chain(stamps[2].map(|last| last + 1));
        for cutoff in cutoffs {
            if let Some(difference) = differs(
                format!("the first version of stream {stream} committed since {cutoff}"),
                &in_memory(memory.first_committed_since(stream, entry, cutoff, &answers))?,
                &disk.first_committed_since(&stream_key(stream), &entry.facts(), cutoff, end)?,
            ) {
                return Ok((count.get(), Some(difference)));
            }
        }
        for (at, chunk) in entry.chunks.iter().enumerate() {
            // A replay's chunks all name records it read.
            if record_in(&memory.segments, entry, at).is_none() {
                continue;
            }
            let last = chunk.first_version + super::chunk_events(entry, at).max(1) - 1;
            for version in [chunk.first_version, last] {
                if let Some(difference) = differs(
                    format!("the record of version {version} of stream {stream}"),
                    &lookup::record_holding_version(memory, None, stream, version)?.map(|r| r.loc),
                    &disk.record_holding_version(stream, version, end)?,
                ) {
                    return Ok((count.get(), Some(difference)));
                }
            }
        }
    }
    for record in memory.segments.iter().flat_map(|s| s.records.iter()) {
        let position = record.first_position;
        // Before it: the last position of the record before, or one a scavenge
        // reclaimed.
        for at in [position, position.saturating_sub(1)] {
            if let Some(difference) = differs(
                format!("the record holding position {at}"),
                &lookup::record_holding(memory, None, at)?,
                &disk.record_holding_below(at, end)?,
            ) {
                return Ok((count.get(), Some(difference)));
            }
        }
        if let Some(difference) = differs(
            format!("the record after position {position}"),
            &lookup::record_after(memory, None, position)?,
            &disk.record_after(position, end)?,
        ) {
            return Ok((count.get(), Some(difference)));
        }
    }
    let listed = memory.ordered.iter().flat_map(|(stream_type, keys)| {
        keys.iter().map(|key| StreamId {
            key: uuid::Uuid::from_u128(*key),
            stream_type: stream_type.clone(),
        })
    });
    let mut listed = listed.peekable();
    let mut after = None;
    while listed.peek().is_some() {
        let want: Vec<StreamId> = listed.by_ref().take(LISTING_PAGE).collect();
        let got = disk.streams_after(after.as_ref(), LISTING_PAGE, end)?;
        if let Some(difference) =
            differs(format!("the streams listed after {after:?}"), &want, &got)
        {
            return Ok((count.get(), Some(difference)));
        }
        after = want.last().cloned();
    }
    let rest = disk.streams_after(after.as_ref(), 1, end)?;
    let difference = differs(
        "the streams listed last".into(),
        &Vec::<StreamId>::new(),
        &rest,
    );
    Ok((count.get(), difference))
}

/// Streams compared at a time in `answers_differ`'s listing.
const LISTING_PAGE: usize = 1000;

/// The chunks of every stream of `memory` as the index on disk keeps them, in key order.
fn chunks(memory: &Index) -> impl Iterator<Item = (Vec<u8>, DiskChunk)> {
    let mut chunks = Vec::new();
    for (stream, entry) in memory.streams.iter() {
        let key = stream_key(stream);
        for (i, chunk) in entry.chunks.iter().enumerate() {
            // A replay's chunks all name records it read.
            let Some(record) = record_in(&memory.segments, entry, i) else {
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

/// The rules of the streams of `memory` that have any, with their revision, in key
/// order.
fn rules(memory: &Index) -> impl Iterator<Item = (Vec<u8>, (u64, StreamRules))> {
    let mut rules: Vec<_> = memory
        .rules
        .iter()
        .map(|(stream, rules)| (stream_key(stream), *rules))
        .collect();
    rules.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    rules.into_iter()
}

/// The snapshots `memory` keeps, by stream key and version, in key order.
fn snapshots(memory: &Index) -> impl Iterator<Item = (Vec<u8>, RecordLoc)> {
    let mut snapshots = Vec::new();
    for (stream, kept) in memory.snapshots.iter() {
        let key = stream_key(stream);
        for snapshot in kept {
            snapshots.push((chunk_key(&key, snapshot.version), snapshot.loc));
        }
    }
    snapshots.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    snapshots.into_iter()
}

/// Where each segment up to `last` ends: where the next starts.
fn segment_ends(memory: &Index, last: u32) -> impl Iterator<Item = (u32, u64)> + '_ {
    (0..=last).map(move |seq| {
        let end = seq
            .checked_add(1)
            .and_then(|next| memory.segment_first_position(next))
            .unwrap_or(memory.next_position());
        (seq, end)
    })
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
                // The index in memory does not keep it: the streams' facts compared
                // in `answers` show it.
                first_micros: 0,
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

/// An answer of the index a replay built, which holds everything in memory.
fn in_memory<T>(answer: Result<T, DiskQuery>) -> Result<T, StoreError> {
    answer.map_err(|query| {
        StoreError::IndexMismatch(format!("a replay of the log asked the disk {query:?}"))
    })
}

//! `repair --skip-damaged-record`: replaces one damaged record, in place and at its own
//! length, so that the log continues past it and only its own events are lost, where
//! the records around it are intact. Cutting the log there would lose every record
//! after it as well.
//!
//! The replacement keeps the log's numbering whole: a damaged append becomes an append
//! to the same stream, at the same versions and positions, of as many events, each of
//! type [`LOST_EVENT_TYPE`] with empty data and fresh ids (the first one's metadata
//! says what happened and pads the record to its old length). A damaged sync mark
//! becomes a mark that claims nothing. A damaged delete is not replaced: skipping it
//! would bring the stream's deleted events back.
//!
//! What the damaged append held is judged from its own front fields (read without
//! their checksum) and checked against the records around it: its first position must
//! be where the events before it end, its event count must reach the first position
//! after it, its stream type must read as text. After writing, the whole log is
//! verified again; if the replacement does not fit it, the original bytes go back.

use super::fs::{Fs, RealFs};
use super::lost::frame_end;
use super::record::{self, AppendHeader, FRAME_HEADER_LEN, SyncMark, unchecked_append};
use super::repair::{Damage, Health, remove_index, verify};
use super::segment;
use crate::store::error::StoreError;
use crate::store::types::{EventData, StreamId};
use bytes::Bytes;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The type of the events that stand in for those a damaged record held.
pub const LOST_EVENT_TYPE: &str = "$lost";

/// What the metadata of a replacement's first event says, padded with spaces.
const LOST_NOTE: &str = "{\"evenire\":\"these events were lost to damage on disk; \
                         `evenire-server repair --skip-damaged-record` put these in their place\"}";

/// What a skip did, or would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// A damaged append's events, now events of type [`LOST_EVENT_TYPE`].
    Events {
        stream: StreamId,
        versions: Range<u64>,
        positions: Range<u64>,
    },
    /// A damaged sync mark, now one that claims nothing.
    SyncMark,
}

/// A skip that was made, or, with a dry run, planned.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub offset: u64,
    pub replacement: Replacement,
    /// What `verify` finds after it (a dry run: before it).
    pub after: String,
}

/// Replaces the first damaged record of the log in `dir` (see the module's
/// documentation), unless `dry_run`. `Ok(Err(why))` when it cannot be skipped: nothing
/// was changed, and `why` says what stands in the way.
pub fn skip_damaged_record(
    dir: &Path,
    dry_run: bool,
) -> Result<Result<Skipped, String>, StoreError> {
    let damage = match verify(dir)? {
        Health::Sound { .. } => return Ok(Err("the log has no damaged record".into())),
        Health::Damaged(damage) => damage,
    };
    let io = |e| StoreError::io(format!("reading {}", damage.path.display()), e);
    let bytes = Bytes::from(RealFs.read(&damage.path).map_err(io)?);
    let (frame, replacement) = match replacement_for(&damage, &bytes) {
        Ok(planned) => planned,
        Err(why) => return Ok(Err(why)),
    };
    let offset = damage.offset;
    if dry_run {
        return Ok(Ok(Skipped {
            path: damage.path,
            offset,
            replacement,
            after: "unchanged (a dry run)".into(),
        }));
    }
    let original = bytes.slice(offset as usize..offset as usize + frame.len());
    write_synced(&damage.path, offset, &frame)?;
    let after = match verify(dir)? {
        Health::Sound { .. } => "sound".to_string(),
        Health::Damaged(later) if later.path != damage.path || later.offset > offset => {
            format!("damaged further on: {}", later.error)
        }
        Health::Damaged(same) => {
            write_synced(&damage.path, offset, &original)?;
            return Ok(Err(format!(
                "the replacement does not fit the log ({}); the original bytes are back",
                same.error
            )));
        }
    };
    // Its event ids and record are others now: the index on disk is built again.
    remove_index(dir)?;
    Ok(Ok(Skipped {
        path: damage.path,
        offset,
        replacement,
        after,
    }))
}

/// The frame that takes the damaged record's place, byte for byte as long, and what it
/// stands for; or why there is none.
fn replacement_for(damage: &Damage, bytes: &Bytes) -> Result<(Vec<u8>, Replacement), String> {
    if !damage.checksum_failed {
        return Err(
            "the first damage is a record that reads but does not continue the log; \
                    only a record that fails its checksum can be skipped"
                .into(),
        );
    }
    let at = damage.offset as usize;
    let end = frame_end(bytes, at).ok_or(
        "the damaged record's length is damaged too, or runs past the end of its segment: \
         where it ends cannot be known",
    )?;
    if end < bytes.len()
        && bytes[end..].iter().any(|b| *b != 0)
        && damage.lost.next_intact != Some(end as u64)
    {
        return Err("the record after the damaged one is damaged too".into());
    }
    let payload = bytes.slice(at + FRAME_HEADER_LEN..end);
    let frame_len = end - at;
    if record::is_sync_mark_payload(&payload) {
        // The stamp of the record before: a mark is written with its group.
        let created_micros = segment::records(&bytes[..at])
            .last()
            .map_or(0, |r| r.entry.created_micros());
        let mut frame = Vec::new();
        record::encode_sync_mark(
            &mut frame,
            &SyncMark {
                created_micros,
                segment: 0,
                synced_end: 0,
            },
        );
        return match frame.len() == frame_len {
            true => Ok((frame, Replacement::SyncMark)),
            false => Err("the damaged record is not a sync mark's size".into()),
        };
    }
    let positions = damage
        .lost
        .damaged_positions
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or("no intact append follows the damaged record, or it held no positions (a delete): its events cannot be placed")?;
    let front = unchecked_append(payload)
        .ok_or("the damaged record's own fields are damaged: its stream cannot be known")?;
    let count = positions.end - positions.start;
    if front.first_position != positions.start || u64::from(front.event_count) != count {
        return Err(format!(
            "the damaged record says positions {}..{} where the records around it leave {}..{}: \
             its own fields are damaged",
            front.first_position,
            front.first_position + u64::from(front.event_count),
            positions.start,
            positions.end
        ));
    }
    let frame = placeholder(&front, count, frame_len)
        .ok_or("the damaged record is too small to hold a placeholder per event")?;
    Ok((
        frame,
        Replacement::Events {
            stream: front.stream.clone(),
            versions: front.first_version..front.first_version + count,
            positions,
        },
    ))
}

/// `count` lost events in place of a damaged append, padded to `frame_len` bytes.
fn placeholder(front: &record::UncheckedAppend, count: u64, frame_len: usize) -> Option<Vec<u8>> {
    let count = usize::try_from(count).ok()?;
    let mut events: Vec<EventData> = (0..count)
        .map(|_| EventData {
            id: uuid::Uuid::new_v4(),
            event_type: Arc::from(LOST_EVENT_TYPE),
            data: Bytes::new(),
            metadata: Bytes::new(),
        })
        .collect();
    let bare = record::encoded_append_len(&front.stream, &events);
    let mut note = LOST_NOTE.as_bytes().to_vec();
    note.resize(frame_len.checked_sub(bare)?, b' ');
    events.first_mut()?.metadata = Bytes::from(note);
    let mut frame = Vec::with_capacity(frame_len);
    record::encode_append(
        &mut frame,
        AppendHeader {
            first_position: front.first_position,
            first_version: front.first_version,
            created_micros: front.created_micros,
            stream: &front.stream,
        },
        &events,
    );
    (frame.len() == frame_len).then_some(frame)
}

/// Writes `bytes` at `offset` of `path` and syncs them.
fn write_synced(path: &Path, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |e| StoreError::io(format!("writing {}", path.display()), e);
    let file = RealFs.open_write(path).map_err(io)?;
    file.write_all_at(bytes, offset).map_err(io)?;
    file.sync_data().map_err(io)
}

//! What cutting the log at a damaged record would lose, in the terms an operator
//! weighs: the intact records after it, their events and streams, and the positions the
//! damaged record itself held (by the positions of the records around it).

use super::fs::Fs;
use super::record::{Entry, FRAME_HEADER_LEN, decode_header};
use super::segment::{self, SEGMENT_HEADER_LEN};
use crate::store::error::StoreError;
use crate::store::types::StreamId;
use bytes::Bytes;
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What a cut at a damaged record loses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// Intact records after the damaged one (appends and deletes), in its segment and
    /// the later ones.
    pub records: u64,
    /// The events those records hold.
    pub events: u64,
    /// The streams they belong to.
    pub streams: u64,
    /// The deletes among them.
    pub deletes: u64,
    /// The positions the damaged record held, when an intact append follows it: the gap
    /// between the events before it and that append's first. Empty for a record that
    /// held no events (a delete, a sync mark).
    pub damaged_positions: Option<Range<u64>>,
    /// Where the intact records after the damaged one start (its end, when its own
    /// header is intact; else the next valid frame).
    pub next_intact: Option<u64>,
}

/// Reads the segments at and after the damaged record at `offset` of segment
/// `damaged` (`segments` are all of them, in order) and counts what is intact there.
pub fn lost_by_cut(
    fs: &dyn Fs,
    segments: &[(u64, PathBuf)],
    damaged: u64,
    offset: u64,
) -> Result<Lost, StoreError> {
    let read = |path: &Path| {
        fs.read(path)
            .map(Bytes::from)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))
    };
    let mut lost = Lost::default();
    let mut streams: HashSet<StreamId> = HashSet::new();
    let mut first_position_after = None;
    let mut next_position_before = None;
    for (seq, path) in segments.iter().rev() {
        if *seq < damaged && next_position_before.is_some() {
            break;
        }
        let bytes = read(path)?;
        let (before, after) = match seq.cmp(&damaged) {
            std::cmp::Ordering::Less => (segment::records(&bytes), Vec::new()),
            std::cmp::Ordering::Equal => {
                let at = offset as usize;
                let before = segment::records(&bytes[..at.min(bytes.len())]);
                let after = segment::intact_records_from(&bytes, resume_after(&bytes, at));
                lost.next_intact = after.first().map(|r| r.offset);
                (before, after)
            }
            std::cmp::Ordering::Greater => (
                Vec::new(),
                segment::intact_records_from(&bytes, SEGMENT_HEADER_LEN as usize),
            ),
        };
        // Segments are visited last first: the earliest append seen last wins.
        if let Some(first) = after.iter().find_map(|r| match &r.entry {
            Entry::Append(record) => Some(record.first_position),
            _ => None,
        }) {
            first_position_after = Some(first);
        }
        for record in after {
            match record.entry {
                Entry::Append(append) => {
                    lost.records += 1;
                    lost.events += append.events.len() as u64;
                    streams.insert(append.stream);
                }
                Entry::Delete(deletion) => {
                    lost.records += 1;
                    lost.deletes += 1;
                    streams.insert(deletion.stream);
                }
                Entry::Snapshot(snapshot) => {
                    lost.records += 1;
                    streams.insert(snapshot.stream);
                }
                Entry::Rules(rules) => {
                    lost.records += 1;
                    streams.insert(rules.stream);
                }
                Entry::SyncMark(_) | Entry::Rewritten(_) => {}
            }
        }
        if let Some(end) = before.iter().rev().find_map(|r| match &r.entry {
            Entry::Append(record) => Some(record.last_position() + 1),
            _ => None,
        }) {
            next_position_before = Some(end);
        }
    }
    lost.streams = streams.len() as u64;
    let before = next_position_before.unwrap_or(0);
    lost.damaged_positions = first_position_after
        .filter(|after| *after >= before)
        .map(|after| before..after);
    Ok(lost)
}

/// Where the record at `at` ends, when its header (and so its length) is intact and
/// it ends within `bytes`.
pub fn frame_end(bytes: &[u8], at: usize) -> Option<usize> {
    bytes
        .get(at..at + FRAME_HEADER_LEN)
        .and_then(|h| <&[u8; FRAME_HEADER_LEN]>::try_from(h).ok())
        .and_then(|header| decode_header(header).ok())
        .map(|header| at + header.frame_len() as usize)
        .filter(|end| *end <= bytes.len())
}

/// Where to look for intact records after a damaged one at `at`: its end when its
/// header (and so its length) is intact, else the next byte.
fn resume_after(bytes: &[u8], at: usize) -> usize {
    frame_end(bytes, at).unwrap_or(at + 1)
}

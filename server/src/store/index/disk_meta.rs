//! The rest of what the index in memory holds, in the index on disk: streams' rules
//! and snapshots, and where each segment ends. With the records, chunks and deletes of
//! `disk_streams.rs`, what a start needs to build the index without reading the log
//! before the checkpoint.
//!
//! Keyspaces:
//! - `rules`: a stream's key -> its rules record as the log holds it, framed and
//!   checksummed (the record of the highest revision wins);
//! - `snapshots`: a stream's key, then a version -> where the snapshot record lies
//!   (segment, length, offset: 16 bytes). A delete removes a stream's snapshots, and
//!   only the newest `--snapshots-per-stream` by version are kept, as in memory;
//! - `segments`: a segment's number -> the position after its last (where the next
//!   starts) and the latest commit stamp in it (16 bytes): a start continues the
//!   writer's stamps after the latest.

use super::disk::Rewritten;
use super::disk_streams::{entries, index_error, malformed, stream_key};
use super::{RecordLoc, SnapshotLoc};
use crate::store::error::StoreError;
use crate::store::log::record::{self, Entry, RulesRecord};
use crate::store::types::StreamRules;
use fjall::{Keyspace, OwnedWriteBatch};
use std::collections::BTreeMap;

/// What a segment changes of the streams' snapshots.
#[derive(Debug, Default)]
struct SnapshotChanges {
    /// A delete removed those before.
    cleared: bool,
    /// Saved since, by version.
    saved: BTreeMap<u64, RecordLoc>,
}

/// What one segment's records say of rules, snapshots and the segment, gathered in log
/// order while the segment is read, then written with its checkpoint.
#[derive(Debug, Default)]
pub struct SegmentMeta {
    rules: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    snapshots: BTreeMap<Vec<u8>, SnapshotChanges>,
    last_created: Option<i64>,
}

impl SegmentMeta {
    /// Takes in one record of the segment, found at `loc`, whose commit stamp is
    /// `created_micros`.
    pub fn see(&mut self, loc: RecordLoc, created_micros: i64, entry: Option<&Entry>) {
        self.last_created = Some(
            self.last_created
                .map_or(created_micros, |t| t.max(created_micros)),
        );
        match entry {
            Some(Entry::Rules(set)) => {
                let key = stream_key(&set.stream);
                if self
                    .rules
                    .get(&key)
                    .is_none_or(|(revision, _)| *revision < set.revision)
                {
                    let mut framed = Vec::new();
                    record::encode_rules(&mut framed, set);
                    self.rules.insert(key, (set.revision, framed));
                }
            }
            Some(Entry::Snapshot(snapshot)) => {
                let changes = self
                    .snapshots
                    .entry(stream_key(&snapshot.stream))
                    .or_default();
                changes.saved.insert(snapshot.version, loc);
            }
            Some(Entry::Delete(deletion)) => {
                let changes = self
                    .snapshots
                    .entry(stream_key(&deletion.stream))
                    .or_default();
                changes.cleared = true;
                changes.saved.clear();
            }
            _ => {}
        }
    }
}

/// The keyspaces of rules, snapshots and segments.
pub struct MetaKeyspaces {
    pub rules: Keyspace,
    pub snapshots: Keyspace,
    pub segments: Keyspace,
    /// Snapshots kept of each stream, newest by version (at least one).
    pub snapshots_kept: usize,
}

fn encode_loc(loc: RecordLoc) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[0..4].copy_from_slice(&loc.segment.to_be_bytes());
    bytes[4..8].copy_from_slice(&loc.len.to_be_bytes());
    bytes[8..16].copy_from_slice(&loc.offset.to_be_bytes());
    bytes
}

fn decode_loc(bytes: &[u8]) -> Option<RecordLoc> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    Some(RecordLoc {
        segment: u32::from_be_bytes(bytes[0..4].try_into().ok()?),
        len: u32::from_be_bytes(bytes[4..8].try_into().ok()?),
        offset: u64::from_be_bytes(bytes[8..16].try_into().ok()?),
    })
}

fn snapshot_key(stream_key: &[u8], version: u64) -> Vec<u8> {
    let mut key = stream_key.to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Where a segment ends, and the latest commit stamp in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEnd {
    pub end_position: u64,
    pub last_created: i64,
}

impl std::fmt::Debug for MetaKeyspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaKeyspaces").finish_non_exhaustive()
    }
}

impl MetaKeyspaces {
    /// Puts what `meta` gathered of segment `seq`, which ends before `end_position`,
    /// into `batch`, merged with what the index holds: rules of a higher revision
    /// replace those there, a delete removes a stream's snapshots, only the newest kept.
    pub fn write(
        &self,
        batch: &mut OwnedWriteBatch,
        seq: u32,
        end_position: u64,
        meta: SegmentMeta,
    ) -> Result<(), StoreError> {
        for (key, (revision, framed)) in meta.rules {
            if self
                .rules_revision(&key)?
                .is_none_or(|there| there < revision)
            {
                batch.insert(&self.rules, key, framed);
            }
        }
        for (key, changes) in meta.snapshots {
            let there = self.snapshot_versions(&key)?;
            let mut versions: Vec<u64> = match changes.cleared {
                true => Vec::new(),
                false => there.clone(),
            };
            versions.extend(changes.saved.keys());
            versions.sort_unstable();
            versions.dedup();
            let kept = &versions[versions.len().saturating_sub(self.snapshots_kept.max(1))..];
            for version in there.iter().filter(|v| !kept.contains(v)) {
                batch.remove(&self.snapshots, snapshot_key(&key, *version));
            }
            for (version, loc) in changes.saved.iter().filter(|(v, _)| kept.contains(v)) {
                batch.insert(
                    &self.snapshots,
                    snapshot_key(&key, *version),
                    encode_loc(*loc),
                );
            }
        }
        self.write_end(batch, seq, end_position, meta.last_created);
        Ok(())
    }

    /// Puts what `meta` gathered of segment `rewritten.segment` (which ends before
    /// `end_position`) after a scavenge rewrote it into `batch`: where the snapshots the
    /// index keeps lie now, none of those that went (kept here still when what left
    /// them unkept lies past the checkpoint: a start from here would read another
    /// record at their place), and the latest stamp in it. Its rules and deletes are
    /// the same records as before, and what they did to other segments' snapshots
    /// stays done.
    pub fn relocate(
        &self,
        batch: &mut OwnedWriteBatch,
        rewritten: &Rewritten,
        end_position: u64,
        meta: SegmentMeta,
    ) -> Result<(), StoreError> {
        let seq = rewritten.segment;
        let mut gone: Vec<Vec<u8>> = rewritten.snapshots_gone.iter().map(stream_key).collect();
        gone.sort_unstable();
        gone.dedup();
        for key in &gone {
            for item in self.snapshots.prefix(key) {
                let (snapshot_key, value) = item
                    .into_inner()
                    .map_err(|e| index_error("reading a stream's snapshots from the index", e))?;
                let loc = decode_loc(&value).ok_or_else(|| malformed("a snapshot", value.len()))?;
                let version = snapshot_key
                    .strip_prefix(key.as_slice())
                    .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| malformed("a snapshot key", snapshot_key.len()))?;
                // Those the new file holds are put at their new place below (a key
                // both removed and put in one batch would be neither).
                let kept = meta
                    .snapshots
                    .get(key)
                    .is_some_and(|changes| changes.saved.contains_key(&version));
                if loc.segment == seq && !kept {
                    batch.remove(&self.snapshots, snapshot_key);
                }
            }
        }
        for (key, changes) in meta.snapshots {
            for (version, loc) in changes.saved {
                let key = snapshot_key(&key, version);
                let kept = self
                    .snapshots
                    .contains_key(&key)
                    .map_err(|e| index_error("reading a stream's snapshots from the index", e))?;
                if kept {
                    batch.insert(&self.snapshots, key, encode_loc(loc));
                }
            }
        }
        self.write_end(batch, seq, end_position, meta.last_created);
        Ok(())
    }

    fn write_end(
        &self,
        batch: &mut OwnedWriteBatch,
        seq: u32,
        end_position: u64,
        last_created: Option<i64>,
    ) {
        // A segment without records has no stamp: the earliest there is.
        let last_created = last_created.unwrap_or(i64::MIN);
        let mut value = [0; 16];
        value[0..8].copy_from_slice(&end_position.to_be_bytes());
        value[8..16].copy_from_slice(&last_created.to_be_bytes());
        batch.insert(&self.segments, seq.to_be_bytes(), value);
    }

    fn rules_revision(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.rules_of(key)?.map(|(revision, _)| revision))
    }

    /// The own rules of the stream keyed `key`, with their revision, if it has any.
    pub fn rules_of(&self, key: &[u8]) -> Result<Option<(u64, StreamRules)>, StoreError> {
        let framed = self
            .rules
            .get(key)
            .map_err(|e| index_error("reading a stream's rules from the index", e))?;
        framed
            .map(|framed| decode_rules(&framed).map(|set| (set.revision, set.rules)))
            .transpose()
    }

    /// The snapshot of the stream keyed `key` at its highest version, if it has one.
    pub fn latest_snapshot(&self, key: &[u8]) -> Result<Option<SnapshotLoc>, StoreError> {
        let last = self
            .snapshots
            .prefix(key)
            .next_back()
            .map(|item| item.into_inner())
            .transpose()
            .map_err(|e| index_error("reading a stream's snapshots from the index", e))?;
        let Some((snapshot_key, value)) = last else {
            return Ok(None);
        };
        let version = snapshot_key
            .strip_prefix(key)
            .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| malformed("a snapshot key", snapshot_key.len()))?;
        let loc = decode_loc(&value).ok_or_else(|| malformed("a snapshot", value.len()))?;
        Ok(Some(SnapshotLoc { version, loc }))
    }

    /// The versions of the snapshots the index holds of the stream keyed `key`.
    fn snapshot_versions(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        let mut versions = Vec::new();
        for item in self.snapshots.prefix(key) {
            let snapshot_key = item
                .key()
                .map_err(|e| index_error("reading a stream's snapshots from the index", e))?;
            let version = snapshot_key
                .strip_prefix(key)
                .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| malformed("a snapshot key", snapshot_key.len()))?;
            versions.push(version);
        }
        Ok(versions)
    }

    /// Every stream's rules, by the stream's key.
    pub fn all_rules(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, RulesRecord), StoreError>> + '_ {
        entries(&self.rules, "rules").map(|item| {
            let (key, framed) = item?;
            Ok((key.to_vec(), decode_rules(&framed)?))
        })
    }

    /// Every snapshot kept, by the stream's key and version.
    pub fn all_snapshots(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, RecordLoc), StoreError>> + '_ {
        entries(&self.snapshots, "snapshots").map(|item| {
            let (key, value) = item?;
            let loc = decode_loc(&value).ok_or_else(|| malformed("a snapshot", value.len()))?;
            Ok((key.to_vec(), loc))
        })
    }

    /// Every segment's end, by its number.
    pub fn all_segments(&self) -> impl Iterator<Item = Result<(u32, SegmentEnd), StoreError>> + '_ {
        entries(&self.segments, "segments").map(|item| {
            let (key, value) = item?;
            let seq = <[u8; 4]>::try_from(&*key)
                .map(u32::from_be_bytes)
                .map_err(|_| malformed("a segment number", key.len()))?;
            let value: &[u8; 16] = (&*value)
                .try_into()
                .map_err(|_| malformed("a segment's end", value.len()))?;
            let (end, created) = value.split_at(8);
            let end = SegmentEnd {
                end_position: u64::from_be_bytes(end.try_into().unwrap_or_default()),
                last_created: i64::from_be_bytes(created.try_into().unwrap_or_default()),
            };
            Ok((seq, end))
        })
    }
}

/// A rules record the index holds, checked and decoded.
fn decode_rules(framed: &[u8]) -> Result<RulesRecord, StoreError> {
    match record::decode_frame(bytes::Bytes::copy_from_slice(framed)) {
        Ok(Entry::Rules(rules)) => Ok(rules),
        _ => Err(StoreError::IndexMismatch(
            "the index holds rules that do not decode".into(),
        )),
    }
}

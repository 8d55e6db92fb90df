//! One record per append: the frame that makes it checkable and the payload codec.
//!
//! Frame (all integers little-endian, fixed width):
//!
//! ```text
//! u32 payload_len | u32 crc32c(payload) | u32 crc32c(first 8 bytes) | payload
//! ```
//!
//! The header checksum lets recovery trust `payload_len` on its own: a record whose
//! header checks out but whose payload runs past the end of the file is a torn write,
//! while a header that fails its checksum in the middle of a file is damage.
//!
//! Append payload:
//!
//! ```text
//! u8  kind = 1 (append)
//! u64 first_position | u64 first_version | i64 created (µs since the Unix epoch)
//! [16] stream key | u16 stream type length | stream type (UTF-8)
//! u32 event count, then for each event:
//!   [16] id | u16 type length | type (UTF-8) | u32 data length | data
//!   | u32 metadata length | metadata
//! ```
//!
//! Delete payload (a soft delete or a tombstone; it takes no position):
//!
//! ```text
//! u8  kind = 2 (delete)
//! i64 created | [16] stream key | u16 stream type length | stream type
//! u8  mode (1 = soft delete, 2 = tombstone) | u64 version deleted through
//! ```
//!
//! Sync mark payload (takes no position; see `writer/marks.rs`):
//!
//! ```text
//! u8  kind = 3 (sync mark)
//! i64 created | u32 segment | u64 synced end: every byte of that segment before this
//!                                              offset was synced before the mark was written
//! ```
//!
//! Snapshot payload (a stream's state at a version, saved by a client; it takes no
//! position and is no event):
//!
//! ```text
//! u8  kind = 4 (snapshot)
//! i64 created | [16] stream key | u16 stream type length | stream type
//! u64 version | u16 snapshot type length | snapshot type (UTF-8) | u32 data length | data
//! ```
//!
//! Stream rules payload (what a stream keeps readable; takes no position):
//!
//! ```text
//! u8  kind = 5 (stream rules)
//! i64 created | [16] stream key | u16 stream type length | stream type
//! u64 revision | u8 which rules are set (bit 0: max count, bit 1: truncate before)
//! u64 max count | u64 truncate before
//! ```
//!
//! Decoding never trusts a length: every read is bounds-checked, so arbitrary bytes give
//! an error, never a panic.

use crate::store::types::{DeleteMode, EventData, RecordedEvent, StreamId, StreamRules};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use uuid::Uuid;

/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 12;

const KIND_APPEND: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_SYNC_MARK: u8 = 3;
const KIND_SNAPSHOT: u8 = 4;
const KIND_RULES: u8 = 5;
const KIND_REWRITTEN: u8 = 6;
const RULE_MAX_COUNT: u8 = 1;
const RULE_TRUNCATE_BEFORE: u8 = 2;
/// Written after the other two rules' fields, and only when set: rules records without
/// it keep the layout they had before the rule existed.
const RULE_MAX_AGE: u8 = 4;
const MODE_SOFT: u8 = 1;
const MODE_TOMBSTONE: u8 = 2;

/// What one record of the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Events appended to a stream.
    Append(Record),
    /// A stream deleted or tombstoned.
    Delete(Deletion),
    /// How far the log was synced when it was written.
    SyncMark(SyncMark),
    /// A stream's state at a version, as a client saved it.
    Snapshot(Snapshot),
    /// A stream's rules set.
    Rules(RulesRecord),
    /// The first record of a segment a scavenge rewrote: the positions it covers.
    Rewritten(Rewritten),
}

impl Entry {
    /// When its group was committed, µs since the Unix epoch: one stamp per group.
    pub fn created_micros(&self) -> i64 {
        match self {
            Entry::Append(record) => record.created_micros,
            Entry::Delete(deletion) => deletion.created_micros,
            Entry::SyncMark(mark) => mark.created_micros,
            Entry::Snapshot(snapshot) => snapshot.created_micros,
            Entry::Rules(rules) => rules.created_micros,
            Entry::Rewritten(rewritten) => rewritten.created_micros,
        }
    }
}

/// A decoded stream rules record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesRecord {
    /// When it was committed, µs since the Unix epoch.
    pub created_micros: i64,
    /// The stream.
    pub stream: StreamId,
    /// The rules' revision this record makes: one more than the last.
    pub revision: u64,
    pub rules: StreamRules,
}

/// Frames a stream rules record onto `out`.
pub fn encode_rules(out: &mut Vec<u8>, rules: &RulesRecord) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_RULES);
    out.extend_from_slice(&rules.created_micros.to_le_bytes());
    out.extend_from_slice(rules.stream.key.as_bytes());
    put_short_str(out, &rules.stream.stream_type);
    out.extend_from_slice(&rules.revision.to_le_bytes());
    let set = |rule: Option<u64>, bit: u8| if rule.is_some() { bit } else { 0 };
    out.push(
        set(rules.rules.max_count, RULE_MAX_COUNT)
            | set(rules.rules.truncate_before, RULE_TRUNCATE_BEFORE)
            | set(rules.rules.max_age_seconds, RULE_MAX_AGE),
    );
    out.extend_from_slice(&rules.rules.max_count.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&rules.rules.truncate_before.unwrap_or(0).to_le_bytes());
    if let Some(seconds) = rules.rules.max_age_seconds {
        out.extend_from_slice(&seconds.to_le_bytes());
    }
    seal_frame(out, frame_start);
}

/// What a scavenge writes first in a segment it rewrites: the positions the segment
/// covered before anything was reclaimed from it, so that recovery still checks that
/// the log's segments follow one another without a gap, while positions inside may be
/// missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// When the scavenge wrote it, µs since the Unix epoch.
    pub created_micros: i64,
    /// The first position the segment covers.
    pub first_position: u64,
    /// The position after the last it covers: where the next segment starts.
    pub end_position: u64,
}

/// Frames a rewritten-segment record onto `out`.
pub fn encode_rewritten(out: &mut Vec<u8>, rewritten: &Rewritten) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_REWRITTEN);
    out.extend_from_slice(&rewritten.created_micros.to_le_bytes());
    out.extend_from_slice(&rewritten.first_position.to_le_bytes());
    out.extend_from_slice(&rewritten.end_position.to_le_bytes());
    seal_frame(out, frame_start);
}

/// Frames an append record holding `record`'s events from the `skip`th on: what a
/// scavenge keeps of a record whose first events it reclaims.
pub fn encode_record_from(out: &mut Vec<u8>, record: &Record, skip: usize) {
    let skipped = skip as u64;
    let events: Vec<EventData> = record.events[skip..]
        .iter()
        .map(|e| EventData {
            id: e.id,
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            metadata: e.metadata.clone(),
        })
        .collect();
    let header = AppendHeader {
        first_position: record.first_position + skipped,
        first_version: record.first_version + skipped,
        created_micros: record.created_micros,
        stream: &record.stream,
    };
    encode_append(out, header, &events);
}

/// A decoded snapshot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was committed, µs since the Unix epoch.
    pub created_micros: i64,
    /// The stream.
    pub stream: StreamId,
    /// The stream's version the state is at: events after it follow the snapshot.
    pub version: u64,
    /// The client's name for what the data is.
    pub snapshot_type: Arc<str>,
    /// The state, opaque to the store.
    pub data: Bytes,
}

/// A sync mark: a durable statement that a segment was synced up to an offset, so that
/// recovery can tell damage to synced (and so perhaps acknowledged) records from a torn
/// write, even at the end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMark {
    /// The commit stamp of the group it was written with.
    pub created_micros: i64,
    /// The segment it speaks of: the one it is in.
    pub segment: u32,
    /// Every byte of that segment before this offset was synced.
    pub synced_end: u64,
}

/// A decoded delete record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// When it was committed, µs since the Unix epoch.
    pub created_micros: i64,
    /// The stream.
    pub stream: StreamId,
    /// Soft delete or tombstone.
    pub mode: DeleteMode,
    /// The stream's version when it was deleted: this event and those before it are
    /// gone from reads.
    pub through_version: u64,
}

/// A decoded append record: what the store reads back and caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position of the first event; the others follow without gaps.
    pub first_position: u64,
    /// Version of the first event in its stream; the others follow without gaps.
    pub first_version: u64,
    /// Commit time of every event in the record, µs since the Unix epoch.
    pub created_micros: i64,
    /// The stream all the events belong to.
    pub stream: StreamId,
    /// The events, in order.
    pub events: Vec<StoredEvent>,
}

/// An event inside a record; stream, version and position come from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event's id.
    pub id: Uuid,
    /// The kind of event.
    pub event_type: Arc<str>,
    /// The payload.
    pub data: Bytes,
    /// Application metadata.
    pub metadata: Bytes,
}

impl From<EventData> for StoredEvent {
    fn from(event: EventData) -> Self {
        StoredEvent {
            id: event.id,
            event_type: event.event_type,
            data: event.data,
            metadata: event.metadata,
        }
    }
}

/// Copies the events' payloads into one buffer of their own, and points the events at
/// it. Appended events go to the cache as they are, and the cache weighs a record by
/// its size in the log: payloads that still pointed into the request they came in
/// (far larger than the events, shared with whatever else it held) would let the
/// cache grow far past its bound.
pub fn compact(events: &mut [EventData]) {
    let len = events.iter().map(|e| e.data.len() + e.metadata.len()).sum();
    let mut buf = BytesMut::with_capacity(len);
    for event in events.iter() {
        buf.extend_from_slice(&event.data);
        buf.extend_from_slice(&event.metadata);
    }
    let mut payloads = buf.freeze();
    for event in events {
        event.data = payloads.split_to(event.data.len());
        event.metadata = payloads.split_to(event.metadata.len());
    }
}

impl Record {
    /// The event at `index` in the record as the store serves it, if there is one.
    pub fn event(&self, index: usize) -> Option<RecordedEvent> {
        let stored = self.events.get(index)?;
        let offset = index as u64;
        Some(RecordedEvent {
            id: stored.id,
            event_type: stored.event_type.clone(),
            data: stored.data.clone(),
            metadata: stored.metadata.clone(),
            stream: self.stream.clone(),
            version: self.first_version + offset,
            position: self.first_position + offset,
            created_micros: self.created_micros,
        })
    }

    /// Version of the record's last event.
    pub fn last_version(&self) -> u64 {
        self.first_version + self.events.len() as u64 - 1
    }

    /// Position of the record's last event.
    pub fn last_position(&self) -> u64 {
        self.first_position + self.events.len() as u64 - 1
    }
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame header's checksum does not match: its length cannot be trusted.
    #[error("frame header checksum mismatch")]
    HeaderChecksum,
    /// The payload's checksum does not match.
    #[error("payload checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    PayloadChecksum {
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The payload passed its checksum but does not parse: written by a bug or a newer
    /// format.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
}

/// The lengths a valid frame header states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes after the header.
    pub payload_len: u32,
    /// crc32c of the payload.
    pub payload_crc: u32,
}

impl FrameHeader {
    /// Total bytes of the framed record.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Checks and parses a frame header.
pub fn decode_header(header: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, DecodeError> {
    let stored = u32_at(header, 8);
    if crc32c::crc32c(&header[..8]) != stored {
        return Err(DecodeError::HeaderChecksum);
    }
    let payload_len = u32_at(header, 0);
    if payload_len == 0 {
        return Err(DecodeError::Malformed("empty payload"));
    }
    Ok(FrameHeader {
        payload_len,
        payload_crc: u32_at(header, 4),
    })
}

/// Checks a payload against its header's checksum.
fn check_payload(header: FrameHeader, payload: &[u8]) -> Result<(), DecodeError> {
    let computed = crc32c::crc32c(payload);
    if computed != header.payload_crc {
        return Err(DecodeError::PayloadChecksum {
            stored: header.payload_crc,
            computed,
        });
    }
    Ok(())
}

/// Checks a payload against its header's checksum and decodes it.
pub fn decode_payload(header: FrameHeader, payload: Bytes) -> Result<Entry, DecodeError> {
    check_payload(header, &payload)?;
    Cursor {
        buf: payload,
        at: 0,
    }
    .entry()
}

/// What the index on disk reads of a record: an append's fixed fields (its events are
/// not decoded), or any other record whole (they are few and small, but for a snapshot's
/// state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Front {
    Append(UncheckedAppend),
    Other(Entry),
}

/// Checks a payload against its header's checksum, as [`decode_payload`] does, and
/// decodes what [`Front`] holds of it.
pub fn decode_front(header: FrameHeader, payload: Bytes) -> Result<Front, DecodeError> {
    check_payload(header, &payload)?;
    let mut cursor = Cursor {
        buf: payload,
        at: 0,
    };
    match cursor.buf.first() {
        Some(&KIND_APPEND) => {
            cursor.u8()?;
            cursor.append_front().map(Front::Append)
        }
        _ => cursor.entry().map(Front::Other),
    }
}

/// Decodes a whole framed record held in memory.
pub fn decode_frame(frame: Bytes) -> Result<Entry, DecodeError> {
    let header_bytes: &[u8; FRAME_HEADER_LEN] = frame
        .get(..FRAME_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::Malformed("shorter than a frame header"))?;
    let header = decode_header(header_bytes)?;
    if frame.len() as u64 != header.frame_len() {
        return Err(DecodeError::Malformed(
            "frame length differs from its header",
        ));
    }
    decode_payload(header, frame.slice(FRAME_HEADER_LEN..))
}

/// What an append record states besides its events.
#[derive(Debug, Clone, Copy)]
pub struct AppendHeader<'a> {
    /// Position of the first event.
    pub first_position: u64,
    /// Version of the first event.
    pub first_version: u64,
    /// Commit time, µs since the Unix epoch.
    pub created_micros: i64,
    /// The stream.
    pub stream: &'a StreamId,
}

/// Appends one framed append record to `out`.
pub fn encode_append(out: &mut Vec<u8>, header: AppendHeader<'_>, events: &[EventData]) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_APPEND);
    out.extend_from_slice(&header.first_position.to_le_bytes());
    out.extend_from_slice(&header.first_version.to_le_bytes());
    out.extend_from_slice(&header.created_micros.to_le_bytes());
    out.extend_from_slice(header.stream.key.as_bytes());
    put_short_str(out, &header.stream.stream_type);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for event in events {
        out.extend_from_slice(event.id.as_bytes());
        put_short_str(out, &event.event_type);
        put_bytes(out, &event.data);
        put_bytes(out, &event.metadata);
    }
    seal_frame(out, frame_start);
}

/// Appends one framed delete record to `out`.
pub fn encode_delete(out: &mut Vec<u8>, deletion: &Deletion) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_DELETE);
    out.extend_from_slice(&deletion.created_micros.to_le_bytes());
    out.extend_from_slice(deletion.stream.key.as_bytes());
    put_short_str(out, &deletion.stream.stream_type);
    out.push(match deletion.mode {
        DeleteMode::Soft => MODE_SOFT,
        DeleteMode::Tombstone => MODE_TOMBSTONE,
    });
    out.extend_from_slice(&deletion.through_version.to_le_bytes());
    seal_frame(out, frame_start);
}

/// Frames a snapshot record onto `out`.
pub fn encode_snapshot(out: &mut Vec<u8>, snapshot: &Snapshot) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_SNAPSHOT);
    out.extend_from_slice(&snapshot.created_micros.to_le_bytes());
    out.extend_from_slice(snapshot.stream.key.as_bytes());
    put_short_str(out, &snapshot.stream.stream_type);
    out.extend_from_slice(&snapshot.version.to_le_bytes());
    put_short_str(out, &snapshot.snapshot_type);
    put_bytes(out, &snapshot.data);
    seal_frame(out, frame_start);
}

/// The fixed fields at the front of an append payload, read without its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncheckedAppend {
    pub first_position: u64,
    pub first_version: u64,
    pub created_micros: i64,
    pub stream: StreamId,
    pub event_count: u32,
}

/// Reads the fields at the front of `payload` as an append's, ignoring the checksum
/// and whatever follows: for `repair`, which judges them against the records around a
/// damaged one. None if it is not an append or they do not parse.
pub fn unchecked_append(payload: Bytes) -> Option<UncheckedAppend> {
    let mut cursor = Cursor {
        buf: payload,
        at: 0,
    };
    if cursor.u8().ok()? != KIND_APPEND {
        return None;
    }
    cursor.append_front().ok()
}

/// The kind byte of a payload: whether it is a sync mark, for `repair`.
pub fn is_sync_mark_payload(payload: &[u8]) -> bool {
    payload.first() == Some(&KIND_SYNC_MARK)
}

/// Appends one framed sync mark to `out`.
pub fn encode_sync_mark(out: &mut Vec<u8>, mark: &SyncMark) {
    let frame_start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(KIND_SYNC_MARK);
    out.extend_from_slice(&mark.created_micros.to_le_bytes());
    out.extend_from_slice(&mark.segment.to_le_bytes());
    out.extend_from_slice(&mark.synced_end.to_le_bytes());
    seal_frame(out, frame_start);
}

/// Fills in the frame header of the record that starts at `frame_start`.
fn seal_frame(out: &mut [u8], frame_start: usize) {
    let payload_start = frame_start + FRAME_HEADER_LEN;
    let payload_len = (out.len() - payload_start) as u32;
    let payload_crc = crc32c::crc32c(&out[payload_start..]);
    let header_bytes = &mut out[frame_start..payload_start];
    header_bytes[0..4].copy_from_slice(&payload_len.to_le_bytes());
    header_bytes[4..8].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&header_bytes[..8]);
    header_bytes[8..12].copy_from_slice(&header_crc.to_le_bytes());
}

/// The size [`encode_append`] will write, without writing it.
pub fn encoded_append_len(stream: &StreamId, events: &[EventData]) -> usize {
    let fixed = FRAME_HEADER_LEN + 1 + 8 + 8 + 8 + 16 + 2 + stream.stream_type.len() + 4;
    fixed
        + events
            .iter()
            .map(|e| 16 + 2 + e.event_type.len() + 4 + e.data.len() + 4 + e.metadata.len())
            .sum::<usize>()
}

fn put_short_str(out: &mut Vec<u8>, s: &str) {
    // Types are validated to at most 255 bytes before they reach the store.
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Events are validated far below 4 GiB before they reach the store.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut le = [0; 4];
    le.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(le)
}

struct Cursor {
    buf: Bytes,
    at: usize,
}

impl Cursor {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError::Malformed(
                "field runs past the end of the payload",
            ))?;
        let out = self.buf.slice(self.at..end);
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    fn short_str(&mut self) -> Result<Arc<str>, DecodeError> {
        self.short_str_like(None)
    }

    /// A short string that shares `previous`'s allocation when it is the same: the
    /// events of a record mostly have one type.
    fn short_str_like(&mut self, previous: Option<&Arc<str>>) -> Result<Arc<str>, DecodeError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        match previous {
            Some(previous) if previous.as_bytes() == &bytes[..] => Ok(previous.clone()),
            _ => std::str::from_utf8(&bytes)
                .map(Arc::from)
                .map_err(|_| DecodeError::Malformed("type is not UTF-8")),
        }
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn entry(mut self) -> Result<Entry, DecodeError> {
        let entry = match self.u8()? {
            KIND_APPEND => Entry::Append(self.append_record()?),
            KIND_DELETE => Entry::Delete(self.delete_record()?),
            KIND_SYNC_MARK => Entry::SyncMark(SyncMark {
                created_micros: self.u64()? as i64,
                segment: self.u32()?,
                synced_end: self.u64()?,
            }),
            KIND_RULES => Entry::Rules(self.rules_record()?),
            KIND_REWRITTEN => Entry::Rewritten(Rewritten {
                created_micros: self.u64()? as i64,
                first_position: self.u64()?,
                end_position: self.u64()?,
            }),
            KIND_SNAPSHOT => Entry::Snapshot(Snapshot {
                created_micros: self.u64()? as i64,
                stream: self.stream()?,
                version: self.u64()?,
                snapshot_type: self.short_str()?,
                data: self.bytes()?,
            }),
            _ => return Err(DecodeError::Malformed("unknown record kind")),
        };
        if self.at != self.buf.len() {
            return Err(DecodeError::Malformed("trailing bytes after the record"));
        }
        Ok(entry)
    }

    fn stream(&mut self) -> Result<StreamId, DecodeError> {
        let key = self.uuid()?;
        let stream_type = self.short_str()?;
        Ok(StreamId { key, stream_type })
    }

    fn rules_record(&mut self) -> Result<RulesRecord, DecodeError> {
        let created_micros = self.u64()? as i64;
        let stream = self.stream()?;
        let revision = self.u64()?;
        let set = self.u8()?;
        if set & !(RULE_MAX_COUNT | RULE_TRUNCATE_BEFORE | RULE_MAX_AGE) != 0 {
            return Err(DecodeError::Malformed("unknown stream rule"));
        }
        let (max_count, truncate_before) = (self.u64()?, self.u64()?);
        let max_age_seconds = match set & RULE_MAX_AGE {
            0 => None,
            _ => Some(self.u64()?),
        };
        Ok(RulesRecord {
            created_micros,
            stream,
            revision,
            rules: StreamRules {
                max_count: (set & RULE_MAX_COUNT != 0).then_some(max_count),
                truncate_before: (set & RULE_TRUNCATE_BEFORE != 0).then_some(truncate_before),
                max_age_seconds,
            },
        })
    }

    fn delete_record(&mut self) -> Result<Deletion, DecodeError> {
        let created_micros = self.u64()? as i64;
        let stream = self.stream()?;
        let mode = match self.u8()? {
            MODE_SOFT => DeleteMode::Soft,
            MODE_TOMBSTONE => DeleteMode::Tombstone,
            _ => return Err(DecodeError::Malformed("unknown delete mode")),
        };
        Ok(Deletion {
            created_micros,
            stream,
            mode,
            through_version: self.u64()?,
        })
    }

    /// The fields of an append payload before its events.
    fn append_front(&mut self) -> Result<UncheckedAppend, DecodeError> {
        Ok(UncheckedAppend {
            first_position: self.u64()?,
            first_version: self.u64()?,
            created_micros: self.u64()? as i64,
            stream: self.stream()?,
            event_count: self.u32()?,
        })
    }

    fn append_record(&mut self) -> Result<Record, DecodeError> {
        let UncheckedAppend {
            first_position,
            first_version,
            created_micros,
            stream,
            event_count: count,
        } = self.append_front()?;
        if count == 0 {
            return Err(DecodeError::Malformed("append record without events"));
        }
        // Each event takes at least 26 bytes, so a forged count cannot make us allocate
        // more than the payload could hold.
        let mut events: Vec<StoredEvent> =
            Vec::with_capacity((count as usize).min(self.buf.len() / 26));
        for _ in 0..count {
            let id = self.uuid()?;
            let event_type = self.short_str_like(events.last().map(|e| &e.event_type))?;
            events.push(StoredEvent {
                id,
                event_type,
                data: self.bytes()?,
                metadata: self.bytes()?,
            });
        }
        if first_position.checked_add(u64::from(count)).is_none()
            || first_version.checked_add(u64::from(count)).is_none()
        {
            return Err(DecodeError::Malformed("positions or versions overflow"));
        }
        Ok(Record {
            first_position,
            first_version,
            created_micros,
            stream,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (StreamId, Vec<EventData>) {
        let stream = StreamId {
            key: Uuid::from_u128(7),
            stream_type: Arc::from("order"),
        };
        let events = (0..3u8)
            .map(|i| EventData {
                id: Uuid::from_u128(100 + u128::from(i)),
                event_type: Arc::from("Placed"),
                data: Bytes::from(vec![i; usize::from(i) * 10]),
                metadata: Bytes::from_static(b"{}"),
            })
            .collect();
        (stream, events)
    }

    fn encoded() -> (Vec<u8>, StreamId, Vec<EventData>) {
        let (stream, events) = sample();
        let mut out = Vec::new();
        let header = AppendHeader {
            first_position: 40,
            first_version: 5,
            created_micros: 1_700_000_000_000_000,
            stream: &stream,
        };
        encode_append(&mut out, header, &events);
        (out, stream, events)
    }

    #[test]
    fn round_trips_and_predicts_its_length() {
        let (out, stream, events) = encoded();
        assert_eq!(out.len(), encoded_append_len(&stream, &events));
        let Ok(Entry::Append(record)) = decode_frame(Bytes::from(out)) else {
            panic!("expected a valid append record");
        };
        assert_eq!(record.stream, stream);
        assert_eq!(record.first_position, 40);
        assert_eq!(record.last_version(), 7);
        let third = record.event(2).expect("three events");
        assert_eq!(third.id, events[2].id);
        assert_eq!(third.data, events[2].data);
        assert_eq!(third.position, 42);
        assert!(record.event(3).is_none());
    }

    #[test]
    fn deletions_round_trip() {
        let (stream, _) = sample();
        let deletion = Deletion {
            created_micros: 5,
            stream,
            mode: DeleteMode::Tombstone,
            through_version: 41,
        };
        let mut out = Vec::new();
        encode_delete(&mut out, &deletion);
        assert_eq!(decode_frame(Bytes::from(out)), Ok(Entry::Delete(deletion)));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let (out, _, _) = encoded();
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut damaged = out.clone();
                damaged[byte] ^= 1 << bit;
                let result = decode_frame(Bytes::from(damaged));
                assert!(result.is_err(), "flip at byte {byte} bit {bit} went unseen");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let (out, _, _) = encoded();
        for len in 0..out.len() {
            assert!(decode_frame(Bytes::copy_from_slice(&out[..len])).is_err());
        }
    }

    #[test]
    fn compacted_events_keep_their_bytes_but_not_the_request() {
        let request = Bytes::from((0..=255u8).cycle().take(1 << 16).collect::<Vec<u8>>());
        let mut events: Vec<EventData> = (0..10)
            .map(|i| EventData {
                id: Uuid::from_u128(i),
                event_type: Arc::from("Sliced"),
                data: request.slice(i as usize * 100..i as usize * 100 + 17),
                metadata: match i % 3 {
                    0 => Bytes::new(),
                    _ => request.slice(5_000..5_000 + i as usize),
                },
            })
            .collect();
        let before = events.clone();
        compact(&mut events);
        assert_eq!(events, before, "same events, same bytes");
        let inside = |b: &Bytes| request.as_ptr_range().contains(&b.as_ptr());
        for event in &events {
            assert!(!inside(&event.data) && !inside(&event.metadata));
        }
    }

    #[test]
    fn rules_records_keep_their_old_layout_without_an_age_and_round_trip_with_one() {
        let (stream, _) = sample();
        let record = |max_age_seconds| RulesRecord {
            created_micros: 1_700_000_000_000_000,
            stream: stream.clone(),
            revision: 3,
            rules: StreamRules {
                max_count: Some(10),
                truncate_before: None,
                max_age_seconds,
            },
        };
        let mut without = Vec::new();
        encode_rules(&mut without, &record(None));
        let mut with = Vec::new();
        encode_rules(&mut with, &record(Some(86_400)));
        assert_eq!(with.len(), without.len() + 8, "the age only when it is set");
        for (bytes, age) in [(without, None), (with, Some(86_400))] {
            match decode_frame(Bytes::from(bytes)) {
                Ok(Entry::Rules(decoded)) => assert_eq!(decoded, record(age)),
                other => panic!("not the rules record: {other:?}"),
            }
        }
    }
}

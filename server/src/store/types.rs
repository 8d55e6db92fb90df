//! The store's own vocabulary. These types know nothing of gRPC or protobuf: the
//! service layer converts to and from them.

use bytes::Bytes;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Names a stream: a UUID key and a short type string ("order", "sensor").
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The stream's key.
    pub key: Uuid,
    /// The kind of stream: 1 to [`MAX_TYPE_LEN`] bytes of UTF-8.
    pub stream_type: Arc<str>,
}

/// The longest stream or event type, in bytes of UTF-8.
pub const MAX_TYPE_LEN: usize = 255;

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stream_type, self.key)
    }
}

/// An event as a client hands it to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData {
    /// Chosen by the client (for idempotent retries) or by the service layer.
    pub id: Uuid,
    /// The kind of event: 1 to [`MAX_TYPE_LEN`] bytes of UTF-8.
    pub event_type: Arc<str>,
    /// The payload, opaque to the store.
    pub data: Bytes,
    /// Application metadata, opaque to the store.
    pub metadata: Bytes,
}

/// The precondition of an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No precondition.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `current` (None: no events) satisfies this.
    pub fn accepts(self, current: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no_stream"),
            ExpectedVersion::StreamExists => f.write_str("stream_exists"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Where a committed append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's new version: the version of the append's last event.
    pub version: u64,
    /// The log position of the append's last event.
    pub position: u64,
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The event's id.
    pub id: Uuid,
    /// The kind of event.
    pub event_type: Arc<str>,
    /// The payload.
    pub data: Bytes,
    /// Application metadata.
    pub metadata: Bytes,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its 0-based index within the stream.
    pub version: u64,
    /// Its place in the whole log.
    pub position: u64,
    /// When it was committed, in microseconds since the Unix epoch.
    pub created_micros: i64,
}

/// Where a stream read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The first event.
    Start,
    /// The last event.
    End,
    /// This version, included.
    Version(u64),
}

/// The order of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending versions.
    Forward,
    /// Descending versions.
    Backward,
}

/// How a stream is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Its events disappear from reads; a later append starts it again, with versions
    /// after the deleted ones.
    Soft,
    /// It can never be written again.
    Tombstone,
}

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Readable.
    Live,
    /// Soft-deleted and not written since.
    Deleted,
    /// Tombstoned: never to be written again.
    Tombstoned,
}

/// What a store holds, as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFigures {
    /// Streams the store knows, deleted ones included.
    pub streams: u64,
    /// Events ever appended: the position the next one gets.
    pub events: u64,
    /// Bytes of the log on disk; None where the store cannot tell.
    pub log_bytes: Option<u64>,
    /// Segment files of the log; None where the store has none.
    pub log_segments: Option<u64>,
}

/// What the store knows about a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream.
    pub stream: StreamId,
    /// The version of its last event ever written (deleted or not).
    pub version: u64,
    /// Events a read returns now.
    pub event_count: u64,
    /// Position of the first event a read returns; None when there is none.
    pub first_position: Option<u64>,
    /// Position of the last event a read returns; None when there is none.
    pub last_position: Option<u64>,
    /// When its first event was committed, µs since the Unix epoch.
    pub created_micros: i64,
    /// When its last event was committed, µs since the Unix epoch.
    pub last_appended_micros: i64,
    /// Live, deleted or tombstoned.
    pub state: StreamState,
    /// The rules that limit what reads return: its own, or its type's default.
    pub rules: StreamRules,
    /// Whether `rules` are its type's default (`--default-rules`), not its own.
    pub rules_are_type_default: bool,
    /// How many times its rules were set: what a change of them expects.
    pub rules_revision: u64,
}

/// What a stream keeps readable: events outside these rules are gone from its reads at
/// once (their space is reclaimed later). No rule: everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamRules {
    /// Only the newest this many events (at least 1).
    pub max_count: Option<u64>,
    /// Only versions from this one on.
    pub truncate_before: Option<u64>,
    /// Only events committed at most this many seconds ago (at least 1).
    pub max_age_seconds: Option<u64>,
}

impl StreamRules {
    /// The first version the count and version rules leave readable in a stream whose
    /// last version is `last` (the age rule needs the events' times: the index's).
    pub fn first_kept(&self, last: u64) -> u64 {
        let by_count = self
            .max_count
            .map_or(0, |count| (last + 1).saturating_sub(count));
        by_count.max(self.truncate_before.unwrap_or(0))
    }
}

/// The outcome of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteResult {
    /// The stream's events up to this version are gone from reads.
    pub through_version: u64,
}

//! The client's types: plain Rust values, converted to and from the wire in one place.

use bytes::Bytes;
use evenire_proto::WireEvent;
use evenire_proto::v1 as pb;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Names a stream: a UUID key and a type ("order", "sensor").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// The stream's key.
    pub key: Uuid,
    /// The kind of stream: 1 to 255 bytes of UTF-8.
    pub stream_type: String,
}

impl StreamId {
    /// The stream `stream_type`/`key`.
    pub fn new(key: Uuid, stream_type: impl Into<String>) -> Self {
        StreamId {
            key,
            stream_type: stream_type.into(),
        }
    }

    pub(crate) fn to_proto(&self) -> pb::StreamId {
        pb::StreamId {
            key: uuid_text(self.key),
            r#type: self.stream_type.clone(),
        }
    }

    /// A stream as a response names it; an error names the bad key.
    pub(crate) fn from_proto(stream: pb::StreamId) -> Result<Self, String> {
        let key = parse_uuid(stream.key.as_bytes(), "stream key")?;
        Ok(StreamId::new(key, stream.r#type))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stream_type, self.key)
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData {
    /// The event's id. Set it to make retries idempotent; left unset, the server picks
    /// one.
    pub id: Option<Uuid>,
    /// The kind of event: 1 to 255 bytes of UTF-8.
    pub event_type: String,
    /// The payload.
    pub data: Bytes,
    /// Application metadata.
    pub metadata: Bytes,
}

impl EventData {
    /// An event of `event_type` carrying `data`, with a fresh random id so that a retry
    /// of the same value is idempotent.
    pub fn new(event_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        EventData {
            id: Some(Uuid::new_v4()),
            event_type: event_type.into(),
            data: data.into(),
            metadata: Bytes::new(),
        }
    }

    /// An event whose data is `value` serialised as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(event_type, serde_json::to_vec(value)?))
    }

    /// The same event with this id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// The same event with no id: the server picks one, and a retry writes it again.
    pub fn without_id(mut self) -> Self {
        self.id = None;
        self
    }

    /// The same event with this metadata.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The generated message.
    pub(crate) fn into_proto(self) -> pb::EventData {
        pb::EventData {
            id: self.id.map(uuid_text).unwrap_or_default(),
            r#type: self.event_type,
            data: self.data,
            metadata: self.metadata,
        }
    }
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
    pub(crate) fn to_proto(self) -> pb::ExpectedVersion {
        use pb::expected_version::Kind;
        let kind = match self {
            ExpectedVersion::Any => Kind::State(pb::ExpectedState::Any.into()),
            ExpectedVersion::NoStream => Kind::State(pb::ExpectedState::NoStream.into()),
            ExpectedVersion::StreamExists => Kind::State(pb::ExpectedState::StreamExists.into()),
            ExpectedVersion::Exact(v) => Kind::Exact(v),
        };
        pb::ExpectedVersion { kind: Some(kind) }
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

/// Where a read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The first event.
    Start,
    /// The last event (backward), or nothing (forward).
    End,
    /// This version, included.
    Version(u64),
}

impl ReadFrom {
    pub(crate) fn to_proto(self) -> pb::read_request::From {
        use pb::read_request::From;
        match self {
            ReadFrom::Start => From::Origin(pb::ReadOrigin::Start.into()),
            ReadFrom::End => From::Origin(pb::ReadOrigin::End.into()),
            ReadFrom::Version(v) => From::Version(v),
        }
    }
}

/// Where a read of the whole log starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAllFrom {
    /// The first event of the store.
    Start,
    /// The last event (backward), or nothing (forward).
    End,
    /// This position, included.
    Position(u64),
}

impl ReadAllFrom {
    pub(crate) fn to_proto(self) -> pb::read_all_request::From {
        use pb::read_all_request::From;
        match self {
            ReadAllFrom::Start => From::Origin(pb::ReadOrigin::Start.into()),
            ReadAllFrom::End => From::Origin(pb::ReadOrigin::End.into()),
            ReadAllFrom::Position(p) => From::Position(p),
        }
    }
}

/// The order of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending versions.
    Forward,
    /// Descending versions.
    Backward,
}

impl Direction {
    pub(crate) fn to_proto(self) -> pb::ReadDirection {
        match self {
            Direction::Forward => pb::ReadDirection::Forward,
            Direction::Backward => pb::ReadDirection::Backward,
        }
    }
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The event's id.
    pub id: Uuid,
    /// The kind of event.
    pub event_type: String,
    /// The payload.
    pub data: Bytes,
    /// Application metadata.
    pub metadata: Bytes,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its 0-based index within the stream.
    pub version: u64,
    /// Its place in the whole store's log.
    pub position: u64,
    /// When the store committed it.
    pub created: SystemTime,
}

impl RecordedEvent {
    /// The data, parsed as JSON into `T`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }

    pub(crate) fn from_proto(event: pb::RecordedEvent) -> Result<Self, String> {
        let stream = event.stream.ok_or("event without a stream")?;
        Ok(RecordedEvent {
            id: parse_uuid(event.id.as_bytes(), "event id")?,
            event_type: event.r#type,
            data: event.data,
            metadata: event.metadata,
            stream: StreamId::from_proto(stream)?,
            version: event.version,
            position: event.position,
            created: time(event.created.map(|t| (t.seconds, t.nanos))),
        })
    }

    /// The event of a read, from its fields as received; `last` is the stream of the
    /// event before it.
    pub(crate) fn from_wire(event: WireEvent, last: &mut LastStream) -> Result<Self, String> {
        let (key, stream_type) = event.stream.clone().ok_or("event without a stream")?;
        Ok(RecordedEvent {
            id: parse_uuid(event.field(&event.id), "event id")?,
            event_type: text(event.field(&event.event_type), "event type")?,
            data: event.bytes.slice(event.data.clone()),
            metadata: event.bytes.slice(event.metadata.clone()),
            stream: last.stream(event.field(&key), event.field(&stream_type))?,
            version: event.version,
            position: event.position,
            created: time(event.created),
        })
    }
}

/// The stream of the last event received, and its key and type as they came: the
/// events of a read mostly share one stream, which then need not be parsed again for
/// each of them.
#[derive(Debug, Default)]
pub(crate) struct LastStream {
    /// The key's text, then the type's.
    wire: Vec<u8>,
    key_len: usize,
    stream: Option<StreamId>,
}

impl LastStream {
    fn stream(&mut self, key: &[u8], stream_type: &[u8]) -> Result<StreamId, String> {
        let same = self.key_len == key.len()
            && self.wire.len() == key.len() + stream_type.len()
            && self.wire.starts_with(key)
            && self.wire.ends_with(stream_type);
        if same && let Some(stream) = &self.stream {
            return Ok(stream.clone());
        }
        let stream = StreamId::new(
            parse_uuid(key, "stream key")?,
            text(stream_type, "stream type")?,
        );
        self.wire.clear();
        self.wire.extend_from_slice(key);
        self.wire.extend_from_slice(stream_type);
        self.key_len = key.len();
        self.stream = Some(stream.clone());
        Ok(stream)
    }
}

pub(crate) fn parse_uuid(text: &[u8], what: &str) -> Result<Uuid, String> {
    Uuid::try_parse_ascii(text)
        .map_err(|_| format!("{what} `{}` is not a UUID", String::from_utf8_lossy(text)))
}

fn text(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

/// A `google.protobuf.Timestamp` (seconds, nanoseconds) as a time; the epoch when absent.
pub(crate) fn time(created: Option<(i64, i32)>) -> SystemTime {
    created.map_or(UNIX_EPOCH, |(seconds, nanos)| {
        UNIX_EPOCH + Duration::new(seconds.max(0) as u64, nanos.max(0) as u32)
    })
}

/// A UUID's canonical text, written straight into its string (`to_string` goes through
/// the formatting machinery, once per event of every append).
fn uuid_text(id: Uuid) -> String {
    let mut buffer = Uuid::encode_buffer();
    String::from(&*id.hyphenated().encode_lower(&mut buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stream_is_reused_only_for_the_same_key_and_type() {
        let a = "8d6f2a54-58a4-4c8e-9d0e-0f5ef3a1c201";
        let b = "8d6f2a54-58a4-4c8e-9d0e-0f5ef3a1c202";
        let mut last = LastStream::default();
        for (key, stream_type) in [
            (a, "order"),
            (a, "order"),
            (b, "order"),
            (b, "orders"),
            (a, "orders"),
        ] {
            let expected = StreamId::new(Uuid::parse_str(key).expect("a UUID"), stream_type);
            let stream = last.stream(key.as_bytes(), stream_type.as_bytes());
            assert_eq!(stream, Ok(expected));
        }
        // The same bytes as the last key and type, split elsewhere: a key that is not
        // a UUID.
        let stream = last.stream(&a.as_bytes()[..35], b"1orders");
        assert!(stream.is_err(), "{stream:?}");
    }
}

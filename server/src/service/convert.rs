//! Checks requests and turns them into store calls, and store results into responses.
//! Every rejection is `INVALID_ARGUMENT` naming the field or limit at fault, and
//! happens before the store sees the request, so bad input changes nothing.

use crate::store::{
    Direction, EventData, ExpectedVersion, MAX_TYPE_LEN, ReadFrom, RecordedEvent, StreamId,
};
use evenire_proto::v1 as pb;
use std::collections::HashSet;
use std::sync::Arc;
use tonic::Status;
use uuid::Uuid;

/// Limits on what one request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest event: data plus metadata, in bytes.
    pub max_event_size: usize,
    /// Most events in one append.
    pub max_events_per_append: usize,
}

/// An append, checked.
#[derive(Debug)]
pub struct Append {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
}

/// A read, checked.
#[derive(Debug)]
pub struct Read {
    pub stream: StreamId,
    pub from: ReadFrom,
    pub direction: Direction,
    pub max_count: Option<u64>,
}

fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

/// Checks an append request against the contract and the limits.
pub fn append(request: pb::AppendRequest, limits: &Limits) -> Result<Append, Status> {
    let stream = stream_id(request.stream, "stream")?;
    let expected = expected_version(request.expected_version)?;
    if request.events.is_empty() {
        return Err(invalid("events: an append needs at least one event".into()));
    }
    if request.events.len() > limits.max_events_per_append {
        return Err(invalid(format!(
            "events: {} events exceed the limit of {} per append (max_events_per_append)",
            request.events.len(),
            limits.max_events_per_append
        )));
    }
    let mut seen = HashSet::with_capacity(request.events.len());
    let mut events = Vec::with_capacity(request.events.len());
    for (i, event) in request.events.into_iter().enumerate() {
        let event = event_data(event, i, limits)?;
        if !seen.insert(event.id) {
            return Err(invalid(format!(
                "events[{i}].id: {} appears twice in this append",
                event.id
            )));
        }
        events.push(event);
    }
    Ok(Append {
        stream,
        expected,
        events,
    })
}

/// Checks a read request.
pub fn read(request: pb::ReadRequest) -> Result<Read, Status> {
    let stream = stream_id(request.stream, "stream")?;
    let from = match request.from {
        None => return Err(invalid("from: required (an origin or a version)".into())),
        Some(pb::read_request::From::Version(v)) => ReadFrom::Version(v),
        Some(pb::read_request::From::Origin(o)) => match pb::ReadOrigin::try_from(o) {
            Ok(pb::ReadOrigin::Start) => ReadFrom::Start,
            Ok(pb::ReadOrigin::End) => ReadFrom::End,
            Ok(pb::ReadOrigin::Unspecified) | Err(_) => {
                return Err(invalid(format!(
                    "origin: {o} is not READ_ORIGIN_START or READ_ORIGIN_END"
                )));
            }
        },
    };
    let direction = match pb::ReadDirection::try_from(request.direction) {
        Ok(pb::ReadDirection::Forward) => Direction::Forward,
        Ok(pb::ReadDirection::Backward) => Direction::Backward,
        Ok(pb::ReadDirection::Unspecified) | Err(_) => {
            return Err(invalid(format!(
                "direction: {} is not READ_DIRECTION_FORWARD or READ_DIRECTION_BACKWARD",
                request.direction
            )));
        }
    };
    Ok(Read {
        stream,
        from,
        direction,
        max_count: request.max_count,
    })
}

fn stream_id(stream: Option<pb::StreamId>, field: &str) -> Result<StreamId, Status> {
    let stream = stream.ok_or_else(|| invalid(format!("{field}: required")))?;
    Ok(StreamId {
        key: uuid(&stream.key, &format!("{field}.key"))?,
        stream_type: type_name(stream.r#type, &format!("{field}.type"))?,
    })
}

fn uuid(text: &str, field: &str) -> Result<Uuid, Status> {
    // Only the canonical hyphenated form: one spelling per id keeps ids comparable
    // across clients.
    if text.len() != 36 {
        return Err(invalid(format!(
            "{field}: `{}` is not a UUID in canonical form (8-4-4-4-12 hex digits)",
            shorten(text)
        )));
    }
    Uuid::try_parse(text).map_err(|_| {
        invalid(format!(
            "{field}: `{}` is not a UUID in canonical form (8-4-4-4-12 hex digits)",
            shorten(text)
        ))
    })
}

fn type_name(name: String, field: &str) -> Result<Arc<str>, Status> {
    if name.is_empty() {
        return Err(invalid(format!("{field}: must not be empty")));
    }
    if name.len() > MAX_TYPE_LEN {
        return Err(invalid(format!(
            "{field}: {} bytes exceed the limit of {MAX_TYPE_LEN} bytes",
            name.len()
        )));
    }
    Ok(Arc::from(name))
}

fn expected_version(expected: Option<pb::ExpectedVersion>) -> Result<ExpectedVersion, Status> {
    let kind = expected.and_then(|e| e.kind).ok_or_else(|| {
        invalid("expected_version: required (a state or an exact version)".into())
    })?;
    match kind {
        pb::expected_version::Kind::Exact(v) => Ok(ExpectedVersion::Exact(v)),
        pb::expected_version::Kind::State(s) => match pb::ExpectedState::try_from(s) {
            Ok(pb::ExpectedState::Any) => Ok(ExpectedVersion::Any),
            Ok(pb::ExpectedState::NoStream) => Ok(ExpectedVersion::NoStream),
            Ok(pb::ExpectedState::StreamExists) => Ok(ExpectedVersion::StreamExists),
            Ok(pb::ExpectedState::Unspecified) | Err(_) => Err(invalid(format!(
                "expected_version.state: {s} is not ANY, NO_STREAM or STREAM_EXISTS"
            ))),
        },
    }
}

fn event_data(event: pb::EventData, i: usize, limits: &Limits) -> Result<EventData, Status> {
    let id = if event.id.is_empty() {
        Uuid::new_v4()
    } else {
        uuid(&event.id, &format!("events[{i}].id"))?
    };
    let event_type = type_name(event.r#type, &format!("events[{i}].type"))?;
    let size = event.data.len() + event.metadata.len();
    if size > limits.max_event_size {
        return Err(invalid(format!(
            "events[{i}]: data and metadata of {size} bytes exceed the limit of {} bytes \
             (max_event_size)",
            limits.max_event_size
        )));
    }
    Ok(EventData {
        id,
        event_type,
        data: event.data,
        metadata: event.metadata,
    })
}

/// An event as the wire carries it.
pub fn recorded_event(event: RecordedEvent) -> pb::RecordedEvent {
    pb::RecordedEvent {
        id: event.id.to_string(),
        r#type: event.event_type.to_string(),
        data: event.data,
        metadata: event.metadata,
        stream: Some(pb::StreamId {
            key: event.stream.key.to_string(),
            r#type: event.stream.stream_type.to_string(),
        }),
        version: event.version,
        position: event.position,
        created: Some(prost_types::Timestamp {
            seconds: event.created_micros.div_euclid(1_000_000),
            nanos: (event.created_micros.rem_euclid(1_000_000) * 1_000) as i32,
        }),
    }
}

/// At most 64 characters of client input, for error messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

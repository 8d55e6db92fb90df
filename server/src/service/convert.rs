//! Checks requests and turns them into store calls, and store results into responses.
//! Every rejection is `INVALID_ARGUMENT` naming the field or limit at fault, and
//! happens before the store sees the request, so bad input changes nothing.

use super::encode;
use crate::backend::{
    DeleteMode, Direction, EventData, ExpectedVersion, Filter, ListFilter, MAX_TYPE_LEN, ReadFrom,
    StreamId, StreamInfo, StreamRules, StreamState, SubscribeFrom, SubscribeTarget,
    SubscriptionItem,
};
use evenire_proto::v1 as pb;
use evenire_proto::{Encoded, IncomingAppend, IncomingEvent, Outgoing, timestamp};
use prost::Message as _;
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
    /// Most streaming calls (reads, subscriptions) in progress at once.
    pub max_open_reads: usize,
    /// Most of them on one connection.
    pub max_open_reads_per_connection: usize,
    /// Most of them from one client address.
    pub max_open_reads_per_ip: usize,
    /// The pace of backups, all together, in bytes a second; 0: no limit.
    pub backup_bytes_per_second: u64,
    /// The pace of a scavenge that does not name its own, in bytes a second; 0: none.
    pub scavenge_bytes_per_second: u64,
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

pub(super) fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

/// Checks an append request against the contract and the limits.
pub fn append(request: IncomingAppend, limits: &Limits) -> Result<Append, Status> {
    let (key, stream_type) = request.stream.as_ref().ok_or_else(|| required("stream"))?;
    let stream = stream_of(
        utf8(key, "stream.key")?,
        utf8(stream_type, "stream.type")?.into(),
        "stream",
    )?;
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
    let mut seen: HashSet<Uuid, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(request.events.len(), Default::default());
    let mut events: Vec<EventData> = Vec::with_capacity(request.events.len());
    for (i, event) in request.events.into_iter().enumerate() {
        let event = event_data(event, i, limits, events.last().map(|e| &e.event_type))?;
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

/// A read of the whole log, checked. `from` names a position.
#[derive(Debug)]
pub struct ReadAll {
    pub from: ReadFrom,
    pub direction: Direction,
    pub max_count: Option<u64>,
}

/// A subscription, checked.
#[derive(Debug)]
pub struct Subscribe {
    pub target: SubscribeTarget,
    pub filter: Filter,
    pub checkpoint_interval: u64,
}

/// A listing request, checked.
#[derive(Debug)]
pub struct ListStreams {
    pub filter: ListFilter,
    pub after: Option<StreamId>,
    pub page_size: usize,
}

/// A delete, checked.
#[derive(Debug)]
pub struct Delete {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub mode: DeleteMode,
}

/// Streams per page when the request says 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most streams per page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Most entries in each list of a subscription filter.
pub const MAX_FILTER_ENTRIES: usize = 64;
/// Checkpoint interval when the request leaves it at 0.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;

/// Checks a read request.
pub fn read(request: pb::ReadRequest) -> Result<Read, Status> {
    let stream = stream_id(request.stream, "stream")?;
    let from = match request.from {
        None => return Err(invalid("from: required (an origin or a version)".into())),
        Some(pb::read_request::From::Version(v)) => ReadFrom::Version(v),
        Some(pb::read_request::From::Origin(o)) => read_origin(o)?,
    };
    Ok(Read {
        stream,
        from,
        direction: direction(request.direction)?,
        max_count: request.max_count,
    })
}

/// Checks a read of the whole log.
pub fn read_all(request: pb::ReadAllRequest) -> Result<ReadAll, Status> {
    let from = match request.from {
        None => return Err(invalid("from: required (an origin or a position)".into())),
        Some(pb::read_all_request::From::Position(p)) => ReadFrom::Version(p),
        Some(pb::read_all_request::From::Origin(o)) => read_origin(o)?,
    };
    Ok(ReadAll {
        from,
        direction: direction(request.direction)?,
        max_count: request.max_count,
    })
}

/// Checks a subscription request.
pub fn subscribe(request: pb::SubscribeRequest) -> Result<Subscribe, Status> {
    use pb::subscribe_request::Target;
    let target = match request.target {
        None => return Err(invalid("target: required (all or stream)".into())),
        Some(Target::All(all)) => SubscribeTarget::All(match all.from {
            None => {
                return Err(invalid(
                    "all.from: required (an origin or after_position)".into(),
                ));
            }
            Some(pb::subscribe_all::From::AfterPosition(p)) => SubscribeFrom::After(p),
            Some(pb::subscribe_all::From::Origin(o)) => subscribe_origin(o, "all.origin")?,
        }),
        Some(Target::Stream(stream)) => {
            let id = stream_id(stream.stream, "stream.stream")?;
            let from = match stream.from {
                None => {
                    return Err(invalid(
                        "stream.from: required (an origin or after_version)".into(),
                    ));
                }
                Some(pb::subscribe_stream::From::AfterVersion(v)) => SubscribeFrom::After(v),
                Some(pb::subscribe_stream::From::Origin(o)) => {
                    subscribe_origin(o, "stream.origin")?
                }
            };
            SubscribeTarget::Stream(id, from)
        }
    };
    let filter = request.filter.unwrap_or_default();
    let filter = Filter {
        stream_types: filter_list(filter.stream_types, "filter.stream_types")?,
        stream_type_prefixes: filter_list(
            filter.stream_type_prefixes,
            "filter.stream_type_prefixes",
        )?,
        event_types: filter_list(filter.event_types, "filter.event_types")?,
        event_type_prefixes: filter_list(filter.event_type_prefixes, "filter.event_type_prefixes")?,
    };
    let checkpoint_interval = match request.checkpoint_interval {
        0 => DEFAULT_CHECKPOINT_INTERVAL,
        n => u64::from(n),
    };
    Ok(Subscribe {
        target,
        filter,
        checkpoint_interval,
    })
}

/// Checks a listing request.
pub fn list_streams(request: pb::ListStreamsRequest) -> Result<ListStreams, Status> {
    let stream_type = match request.stream_type.is_empty() {
        true => None,
        false => Some(type_name(request.stream_type, "stream_type")?.to_string()),
    };
    let key_prefix = match request.key_prefix.is_empty() {
        true => None,
        false if request.key_prefix.len() <= 36 => Some(request.key_prefix.to_ascii_lowercase()),
        false => {
            return Err(invalid(
                "key_prefix: longer than a UUID (36 characters)".into(),
            ));
        }
    };
    let after = match request.page_token.is_empty() {
        true => None,
        false => Some(page_token(&request.page_token)?),
    };
    let page_size = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => (n as usize).min(MAX_PAGE_SIZE),
    };
    Ok(ListStreams {
        filter: ListFilter {
            stream_type,
            key_prefix,
            include_deleted: request.include_deleted,
        },
        after,
        page_size,
    })
}

/// The token that resumes a listing after `stream`: its key, then its type.
pub fn next_page_token(stream: &StreamId) -> String {
    format!("{}{}", stream.key.hyphenated(), stream.stream_type)
}

fn page_token(token: &str) -> Result<StreamId, Status> {
    let bad = || invalid("page_token: not a token this server issued".into());
    let key = token.get(..36).ok_or_else(bad)?;
    let stream_type = token.get(36..).filter(|t| !t.is_empty()).ok_or_else(bad)?;
    Ok(StreamId {
        key: Uuid::try_parse(key).map_err(|_| bad())?,
        stream_type: type_name(stream_type.to_string(), "page_token")?,
    })
}

/// Checks a request naming one stream.
pub fn get_stream(request: pb::GetStreamRequest) -> Result<StreamId, Status> {
    stream_id(request.stream, "stream")
}

/// Checks a delete request.
pub fn delete_stream(request: pb::DeleteStreamRequest) -> Result<Delete, Status> {
    Ok(Delete {
        stream: stream_id(request.stream, "stream")?,
        expected: expected_version(request.expected_version)?,
        mode: match request.tombstone {
            true => DeleteMode::Tombstone,
            false => DeleteMode::Soft,
        },
    })
}

/// A stream's info as the wire carries it.
pub fn stream_info(info: StreamInfo) -> pb::StreamInfo {
    pb::StreamInfo {
        stream: Some(stream_id_to_proto(&info.stream)),
        version: info.version,
        event_count: info.event_count,
        first_position: info.first_position,
        last_position: info.last_position,
        created: Some(timestamp(info.created_micros)),
        last_appended: Some(timestamp(info.last_appended_micros)),
        state: match info.state {
            StreamState::Live => pb::StreamState::Live,
            StreamState::Deleted => pb::StreamState::Deleted,
            StreamState::Tombstoned => pb::StreamState::Tombstoned,
        }
        .into(),
        rules: Some(pb::StreamRules {
            max_count: info.rules.max_count,
            truncate_before: info.rules.truncate_before,
            max_age_seconds: info.rules.max_age_seconds,
        }),
        rules_revision: info.rules_revision,
        rules_are_type_default: info.rules_are_type_default,
    }
}

/// A stream's new rules, checked.
#[derive(Debug)]
pub struct SetRules {
    pub stream: StreamId,
    pub rules: StreamRules,
    pub expected_revision: Option<u64>,
}

/// Checks a change of rules: a stream, a max count and a max age of at least 1.
pub fn set_stream_rules(request: pb::SetStreamRulesRequest) -> Result<SetRules, Status> {
    let rules = request.rules.unwrap_or_default();
    if rules.max_count == Some(0) {
        return Err(invalid(
            "rules.max_count: 0 would keep nothing; delete the stream instead".into(),
        ));
    }
    if rules.max_age_seconds == Some(0) {
        return Err(invalid(
            "rules.max_age_seconds: 0 would keep nothing; delete the stream instead".into(),
        ));
    }
    Ok(SetRules {
        stream: stream_id(request.stream, "stream")?,
        rules: StreamRules {
            max_count: rules.max_count,
            truncate_before: rules.truncate_before,
            max_age_seconds: rules.max_age_seconds,
        },
        expected_revision: request.expected_revision,
    })
}

pub(super) fn stream_id_to_proto(stream: &StreamId) -> pb::StreamId {
    pb::StreamId {
        key: uuid_text(stream.key),
        r#type: String::from(&*stream.stream_type),
    }
}

/// A UUID's canonical text, written straight into its string: `to_string` goes through
/// the formatting machinery, and reads format two UUIDs for every event they send.
fn uuid_text(id: Uuid) -> String {
    let mut buffer = Uuid::encode_buffer();
    String::from(&*id.hyphenated().encode_lower(&mut buffer))
}

fn read_origin(origin: i32) -> Result<ReadFrom, Status> {
    match pb::ReadOrigin::try_from(origin) {
        Ok(pb::ReadOrigin::Start) => Ok(ReadFrom::Start),
        Ok(pb::ReadOrigin::End) => Ok(ReadFrom::End),
        Ok(pb::ReadOrigin::Unspecified) | Err(_) => Err(invalid(format!(
            "origin: {origin} is not READ_ORIGIN_START or READ_ORIGIN_END"
        ))),
    }
}

fn subscribe_origin(origin: i32, field: &str) -> Result<SubscribeFrom, Status> {
    match pb::SubscribeOrigin::try_from(origin) {
        Ok(pb::SubscribeOrigin::Start) => Ok(SubscribeFrom::Start),
        Ok(pb::SubscribeOrigin::End) => Ok(SubscribeFrom::End),
        Ok(pb::SubscribeOrigin::Unspecified) | Err(_) => Err(invalid(format!(
            "{field}: {origin} is not SUBSCRIBE_ORIGIN_START or SUBSCRIBE_ORIGIN_END"
        ))),
    }
}

fn direction(direction: i32) -> Result<Direction, Status> {
    match pb::ReadDirection::try_from(direction) {
        Ok(pb::ReadDirection::Forward) => Ok(Direction::Forward),
        Ok(pb::ReadDirection::Backward) => Ok(Direction::Backward),
        Ok(pb::ReadDirection::Unspecified) | Err(_) => Err(invalid(format!(
            "direction: {direction} is not READ_DIRECTION_FORWARD or READ_DIRECTION_BACKWARD"
        ))),
    }
}

fn filter_list(entries: Vec<String>, field: &str) -> Result<Vec<String>, Status> {
    if entries.len() > MAX_FILTER_ENTRIES {
        return Err(invalid(format!(
            "{field}: {} entries exceed the limit of {MAX_FILTER_ENTRIES}",
            entries.len()
        )));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| type_name(entry, format_args!("{field}[{i}]")).map(|t| t.to_string()))
        .collect()
}

pub(super) fn stream_id(stream: Option<pb::StreamId>, field: &str) -> Result<StreamId, Status> {
    let stream = stream.ok_or_else(|| required(field))?;
    stream_of(&stream.key, stream.r#type, field)
}

/// The `StreamId` in `field` from its key's and type's text.
fn stream_of(key: &str, stream_type: String, field: &str) -> Result<StreamId, Status> {
    Ok(StreamId {
        key: uuid(key, format_args!("{field}.key"))?,
        stream_type: type_name(stream_type, format_args!("{field}.type"))?,
    })
}

fn required(field: &str) -> Status {
    invalid(format!("{field}: required"))
}

/// `field` names the field in the error; it is only formatted when there is one.
fn uuid(text: &str, field: impl std::fmt::Display) -> Result<Uuid, Status> {
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

pub(super) fn type_name(name: String, field: impl std::fmt::Display) -> Result<Arc<str>, Status> {
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

/// The event's type shares the previous event's `Arc` when they are the same: batches
/// are mostly of one or a few types, and this saves an allocation (and a UTF-8 check)
/// per event.
fn event_data(
    event: IncomingEvent,
    i: usize,
    limits: &Limits,
    previous_type: Option<&Arc<str>>,
) -> Result<EventData, Status> {
    let id = match event.field(&event.id) {
        [] => Uuid::new_v4(),
        text => uuid(
            utf8(text, format_args!("events[{i}].id"))?,
            format_args!("events[{i}].id"),
        )?,
    };
    let event_type = match (previous_type, event.field(&event.event_type)) {
        (Some(previous), name) if previous.as_bytes() == name => previous.clone(),
        (_, name) => {
            let field = format_args!("events[{i}].type");
            type_name(utf8(name, field)?.into(), field)?
        }
    };
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
        data: event.bytes.slice(event.data.clone()),
        metadata: event.bytes.slice(event.metadata.clone()),
    })
}

/// A string field as received, which must be UTF-8.
fn utf8(bytes: &[u8], field: impl std::fmt::Display) -> Result<&str, Status> {
    std::str::from_utf8(bytes).map_err(|_| invalid(format!("{field}: not valid UTF-8")))
}

/// A subscription's step as the wire carries it.
pub fn subscription_item(item: SubscriptionItem) -> Outgoing {
    use pb::subscribe_response::Message;
    let message = match item {
        SubscriptionItem::Events(events) => return encode::subscribe_events(events),
        SubscriptionItem::CaughtUp { position } => Message::CaughtUp(pb::CaughtUp { position }),
        SubscriptionItem::Checkpoint { position } => {
            Message::Checkpoint(pb::Checkpoint { position })
        }
    };
    let response = pb::SubscribeResponse {
        message: Some(message),
    };
    Outgoing::Encoded(Encoded(response.encode_to_vec().into()))
}

/// At most 64 characters of client input, for error messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// A scavenge's report as the contract says it.
pub fn scavenge_progress(progress: &crate::store::ScavengeProgress) -> pb::ScavengeResponse {
    pb::ScavengeResponse {
        dry_run: progress.dry_run,
        segments_total: progress.segments_total,
        segments_done: progress.segments_done,
        segments_rewritten: progress.segments_rewritten,
        segments_skipped: progress.segments_skipped,
        bytes_read: progress.bytes_read,
        bytes_freed: progress.bytes_freed,
        events_reclaimed: progress.events_reclaimed,
        by_type: progress
            .by_type
            .iter()
            .map(|(stream_type, reclaimed)| pb::ScavengedStreamType {
                stream_type: stream_type.clone(),
                events: reclaimed.events,
                bytes: reclaimed.bytes,
            })
            .collect(),
        done: progress.done,
    }
}

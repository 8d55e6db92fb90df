//! Stream administration: list, inspect, delete.

use crate::client::Client;
use crate::error::Error;
use crate::types::{ExpectedVersion, StreamId};
use evenire_proto::v1 as pb;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Readable.
    Live,
    /// Soft-deleted and not written since.
    Deleted,
    /// Tombstoned: it can never be written again.
    Tombstoned,
}

/// What the store knows about a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream.
    pub stream: StreamId,
    /// The version of its last event ever written, deleted or not.
    pub version: u64,
    /// How many events a read returns now.
    pub event_count: u64,
    /// Position of the first event a read returns.
    pub first_position: Option<u64>,
    /// Position of the last event a read returns.
    pub last_position: Option<u64>,
    /// When its first event was ever committed.
    pub created: SystemTime,
    /// When its last event was committed.
    pub last_appended: SystemTime,
    /// Live, deleted or tombstoned.
    pub state: StreamState,
    /// The rules that limit what reads return, as last set.
    pub rules: StreamRules,
    /// How many times its own rules were set: what [`Client::set_stream_rules`]
    /// expects.
    pub rules_revision: u64,
    /// Whether `rules` are the server's default for the stream's type: it has none of
    /// its own.
    pub rules_are_type_default: bool,
}

/// What a stream keeps readable: events outside these rules are gone from its reads
/// at once (their space is reclaimed later). No rule: everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamRules {
    /// Only the newest this many events (at least 1).
    pub max_count: Option<u64>,
    /// Only versions from this one on.
    pub truncate_before: Option<u64>,
    /// Only events committed at most this many seconds ago (at least 1).
    pub max_age_seconds: Option<u64>,
}

/// What a listing selects, and where it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStreams {
    /// Only streams of this type.
    pub stream_type: Option<String>,
    /// Only streams whose key (canonical text) starts with this.
    pub key_prefix: Option<String>,
    /// Deleted and tombstoned streams too.
    pub include_deleted: bool,
    /// At most this many per page (0: the server's default, 100; at most 1,000).
    pub page_size: u32,
    /// The previous page's `next_page_token`.
    pub page_token: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPage {
    /// The streams, in (type, key) order.
    pub streams: Vec<StreamInfo>,
    /// Set when the listing may go on: pass it as `page_token`.
    pub next_page_token: Option<String>,
}

pub(crate) fn time(timestamp: Option<prost_types::Timestamp>) -> SystemTime {
    timestamp
        .map(|t| UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32))
        .unwrap_or(UNIX_EPOCH)
}

impl StreamInfo {
    fn from_proto(info: pb::StreamInfo) -> Result<Self, Error> {
        let stream = info
            .stream
            .ok_or_else(|| Error::BadResponse("stream info without a stream".into()))?;
        let key = uuid::Uuid::try_parse(&stream.key).map_err(|_| {
            Error::BadResponse(format!("stream key `{}` is not a UUID", stream.key))
        })?;
        let state = match pb::StreamState::try_from(info.state) {
            Ok(pb::StreamState::Live) => StreamState::Live,
            Ok(pb::StreamState::Deleted) => StreamState::Deleted,
            Ok(pb::StreamState::Tombstoned) => StreamState::Tombstoned,
            Ok(pb::StreamState::Unspecified) | Err(_) => {
                return Err(Error::BadResponse(format!(
                    "unknown stream state {}",
                    info.state
                )));
            }
        };
        Ok(StreamInfo {
            stream: StreamId::new(key, stream.r#type),
            version: info.version,
            event_count: info.event_count,
            first_position: info.first_position,
            last_position: info.last_position,
            created: time(info.created),
            last_appended: time(info.last_appended),
            rules: info
                .rules
                .map_or_else(StreamRules::default, |rules| StreamRules {
                    max_count: rules.max_count,
                    truncate_before: rules.truncate_before,
                    max_age_seconds: rules.max_age_seconds,
                }),
            rules_revision: info.rules_revision,
            rules_are_type_default: info.rules_are_type_default,
            state,
        })
    }
}

impl Client {
    /// One page of streams; call again with `next_page_token` until it is None.
    pub async fn list_streams(&self, list: &ListStreams) -> Result<StreamPage, Error> {
        let request = pb::ListStreamsRequest {
            stream_type: list.stream_type.clone().unwrap_or_default(),
            key_prefix: list.key_prefix.clone().unwrap_or_default(),
            include_deleted: list.include_deleted,
            page_size: list.page_size,
            page_token: list.page_token.clone().unwrap_or_default(),
        };
        let response = self.inner.clone().list_streams(request).await?.into_inner();
        Ok(StreamPage {
            streams: response
                .streams
                .into_iter()
                .map(StreamInfo::from_proto)
                .collect::<Result<_, _>>()?,
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// What the store knows about `stream`, deleted or not; [`Error::NotFound`] for a
    /// stream never written.
    pub async fn get_stream(&self, stream: &StreamId) -> Result<StreamInfo, Error> {
        let request = pb::GetStreamRequest {
            stream: Some(stream.to_proto()),
        };
        let response = self.inner.clone().get_stream(request).await?.into_inner();
        let info = response
            .info
            .ok_or_else(|| Error::BadResponse("GetStream answered without info".into()))?;
        StreamInfo::from_proto(info)
    }

    /// Deletes `stream` if it meets `expected`: softly (its events disappear from
    /// reads; a later append starts it again after the deleted versions), or with
    /// `tombstone` for good. Returns the version deleted through. Idempotent.
    pub async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        tombstone: bool,
    ) -> Result<u64, Error> {
        let request = pb::DeleteStreamRequest {
            stream: Some(stream.to_proto()),
            expected_version: Some(expected.to_proto()),
            tombstone,
        };
        let response = self
            .inner
            .clone()
            .delete_stream(request)
            .await?
            .into_inner();
        Ok(response.deleted_through_version)
    }

    /// Replaces `stream`'s rules if they are at `expected_revision` (None: any; 0: never
    /// set), else [`Error::WrongExpectedVersion`] with the actual revision. Returns their
    /// new revision. Needs the `admin` role.
    pub async fn set_stream_rules(
        &self,
        stream: &StreamId,
        rules: StreamRules,
        expected_revision: Option<u64>,
    ) -> Result<u64, Error> {
        let request = pb::SetStreamRulesRequest {
            stream: Some(stream.to_proto()),
            rules: Some(pb::StreamRules {
                max_count: rules.max_count,
                truncate_before: rules.truncate_before,
                max_age_seconds: rules.max_age_seconds,
            }),
            expected_revision,
        };
        let response = self
            .inner
            .clone()
            .set_stream_rules(request)
            .await?
            .into_inner();
        Ok(response.revision)
    }
}

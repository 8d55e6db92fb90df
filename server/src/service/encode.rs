//! The wire bytes of the responses that carry events, written directly from the
//! store's events (see `evenire_proto::Encoded` for why): the same bytes prost writes
//! for the generated `ReadResponse`, `ReadAllResponse` and `SubscribeResponse`, which
//! the tests below check.

use super::convert::timestamp;
use crate::store::RecordedEvent;
use bytes::BytesMut;
use evenire_proto::Encoded;
use evenire_proto::wire::{
    bytes_field_len, len_field_len, put_bytes, put_len_prefix, put_varint, varint_field_len,
};
use uuid::Uuid;

/// Field keys.
mod key {
    use evenire_proto::wire::{len_key, varint_key};
    /// `repeated RecordedEvent events = 1` of the responses, and
    /// `SubscribeEvents events = 1` of `SubscribeResponse`.
    pub const EVENTS: u8 = len_key(1);
    pub const ID: u8 = len_key(1);
    pub const TYPE: u8 = len_key(2);
    pub const DATA: u8 = len_key(3);
    pub const METADATA: u8 = len_key(4);
    pub const STREAM: u8 = len_key(5);
    pub const VERSION: u8 = varint_key(6);
    pub const POSITION: u8 = varint_key(7);
    pub const CREATED: u8 = len_key(8);
    /// `StreamId`.
    pub const STREAM_KEY: u8 = len_key(1);
    pub const STREAM_TYPE: u8 = len_key(2);
    /// `google.protobuf.Timestamp`.
    pub const SECONDS: u8 = varint_key(1);
    pub const NANOS: u8 = varint_key(2);
}

/// Length of a UUID's canonical text.
const UUID_TEXT_LEN: usize = 36;

/// A `ReadResponse` or `ReadAllResponse` (one `repeated RecordedEvent` field 1).
pub fn events(events: &[RecordedEvent]) -> Encoded {
    encode(events, false)
}

/// A `SubscribeResponse` whose `events` is a `SubscribeEvents` holding `events`.
pub fn subscribe_events(events: &[RecordedEvent]) -> Encoded {
    encode(events, true)
}

/// The events as `repeated RecordedEvent events = 1`, within a message that is field 1
/// of the outer one when `nested`.
fn encode(events: &[RecordedEvent], nested: bool) -> Encoded {
    let layouts: Vec<Layout> = events.iter().map(Layout::of).collect();
    let len: usize = layouts.iter().map(|l| len_field_len(l.event)).sum();
    let mut buf = BytesMut::with_capacity(if nested { len_field_len(len) } else { len });
    if nested {
        put_len_prefix(key::EVENTS, len, &mut buf);
    }
    put_events(events, &layouts, &mut buf);
    Encoded(buf.freeze())
}

fn put_events(events: &[RecordedEvent], layouts: &[Layout], buf: &mut BytesMut) {
    for (event, layout) in events.iter().zip(layouts) {
        put_len_prefix(key::EVENTS, layout.event, buf);
        put_event(event, layout, buf);
    }
}

/// What an event's encoding needs worked out before it is written: its nested
/// messages' lengths go before them, and the whole event's before it.
struct Layout {
    event: usize,
    stream: usize,
    created: usize,
    seconds: i64,
    nanos: i32,
}

impl Layout {
    fn of(event: &RecordedEvent) -> Self {
        let prost_types::Timestamp { seconds, nanos } = timestamp(event.created_micros);
        // int64 and int32 are varints of their two's complement, sign-extended.
        let created = varint_field_len(seconds as u64) + varint_field_len(i64::from(nanos) as u64);
        let stream = len_field_len(UUID_TEXT_LEN) + bytes_field_len(event.stream.stream_type.len());
        let event_len = len_field_len(UUID_TEXT_LEN)
            + bytes_field_len(event.event_type.len())
            + bytes_field_len(event.data.len())
            + bytes_field_len(event.metadata.len())
            + len_field_len(stream)
            + varint_field_len(event.version)
            + varint_field_len(event.position)
            + len_field_len(created);
        Layout {
            event: event_len,
            stream,
            created,
            seconds,
            nanos,
        }
    }
}

fn put_event(event: &RecordedEvent, layout: &Layout, buf: &mut BytesMut) {
    put_uuid(key::ID, event.id, buf);
    put_bytes(key::TYPE, event.event_type.as_bytes(), buf);
    put_bytes(key::DATA, &event.data, buf);
    put_bytes(key::METADATA, &event.metadata, buf);
    put_len_prefix(key::STREAM, layout.stream, buf);
    put_uuid(key::STREAM_KEY, event.stream.key, buf);
    put_bytes(key::STREAM_TYPE, event.stream.stream_type.as_bytes(), buf);
    put_varint(key::VERSION, event.version, buf);
    put_varint(key::POSITION, event.position, buf);
    put_len_prefix(key::CREATED, layout.created, buf);
    put_varint(key::SECONDS, layout.seconds as u64, buf);
    put_varint(key::NANOS, i64::from(layout.nanos) as u64, buf);
}

fn put_uuid(key: u8, id: Uuid, buf: &mut BytesMut) {
    let mut text = Uuid::encode_buffer();
    put_bytes(key, id.hyphenated().encode_lower(&mut text).as_bytes(), buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StreamId;
    use bytes::Bytes;
    use evenire_proto::v1 as pb;
    use prost::Message;
    use std::sync::Arc;

    /// The same event as the generated type, built field by field: the reference.
    fn generated(event: &RecordedEvent) -> pb::RecordedEvent {
        let micros = event.created_micros;
        let (seconds, nanos) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
        pb::RecordedEvent {
            id: event.id.to_string(),
            r#type: event.event_type.to_string(),
            data: event.data.clone(),
            metadata: event.metadata.clone(),
            stream: Some(pb::StreamId {
                key: event.stream.key.to_string(),
                r#type: event.stream.stream_type.to_string(),
            }),
            version: event.version,
            position: event.position,
            created: Some(prost_types::Timestamp {
                seconds,
                nanos: nanos as i32 * 1_000,
            }),
        }
    }

    /// Events over the edges of every field: empty and multi-byte lengths, zero and
    /// large numbers, times before the epoch and on whole seconds.
    fn edge_events() -> Vec<RecordedEvent> {
        let sizes = [0, 1, 127, 128, 300, 16_384, 70_000];
        let numbers = [0, 1, 127, 128, 1 << 35, u64::MAX];
        let times = [
            0,
            1,
            -1,
            1_000_000,
            -1_500_000,
            1_764_150_000_123_456,
            i64::MIN / 2,
        ];
        (0..60)
            .map(|i| RecordedEvent {
                id: Uuid::from_u128(0x0123_4567_89ab_cdef_u128.wrapping_mul(i as u128 + 1)),
                event_type: Arc::from("t".repeat(1 + sizes[i % 7] % 255)),
                data: Bytes::from(vec![i as u8; sizes[i % 7]]),
                metadata: Bytes::from(vec![7; sizes[(i / 7) % 7] % 1000]),
                stream: StreamId {
                    key: Uuid::from_u128(i as u128),
                    stream_type: Arc::from("s".repeat(1 + i * 5 % 255)),
                },
                version: numbers[i % 6],
                position: numbers[(i / 6) % 6],
                created_micros: times[i % 7],
            })
            .collect()
    }

    #[test]
    fn read_responses_are_what_prost_writes() {
        let events = edge_events();
        for batch in [&events[..], &events[..1], &[]] {
            let reference = pb::ReadResponse {
                events: batch.iter().map(generated).collect(),
            };
            assert_eq!(super::events(batch).0, reference.encode_to_vec());
        }
    }

    #[test]
    fn subscription_events_are_what_prost_writes() {
        let events = edge_events();
        for batch in [&events[..], &events[3..4]] {
            let reference = pb::SubscribeResponse {
                message: Some(pb::subscribe_response::Message::Events(
                    pb::SubscribeEvents {
                        events: batch.iter().map(generated).collect(),
                    },
                )),
            };
            assert_eq!(subscribe_events(batch).0, reference.encode_to_vec());
        }
    }
}

//! The server's responses that carry events, written straight into tonic's send buffer.
//!
//! The server sends events by the million; building a generated `RecordedEvent` for
//! each (four strings, a nested message, a timestamp) and walking it twice to encode it
//! cost more CPU than the rest of a read, and so did encoding into a buffer of our own
//! that tonic then copied into its own. So a response holds the events themselves
//! (borrowed from the store through [`EventSource`], no copies), works out the lengths
//! of its nested messages when it is made, and writes the protobuf bytes when tonic
//! encodes it (with [`SizedCodec`](crate::SizedCodec), into a buffer reserved once).
//! The bytes are the ones prost writes for the generated types, which the tests below
//! check.

use crate::Encoded;
use crate::wire::{
    UUID_TEXT_LEN, bytes_field_len, len_field_len, put_bytes, put_len_prefix, put_uuid, put_varint,
    varint_field_len,
};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, skip_field};
use std::fmt;
use uuid::Uuid;

/// One event as a response carries it, borrowed from whoever holds it.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    pub data: &'a [u8],
    pub metadata: &'a [u8],
    pub stream_key: Uuid,
    pub stream_type: &'a str,
    pub version: u64,
    pub position: u64,
    /// When the store committed it: microseconds since the epoch.
    pub created_micros: i64,
}

/// Events in the order a response sends them.
pub trait EventSource: fmt::Debug + Send + Sync + 'static {
    /// How many.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The event at `index`, below [`len`](EventSource::len).
    fn event(&self, index: usize) -> EventView<'_>;
}

/// A response the server streams: `ReadResponse`, `ReadAllResponse` or
/// `SubscribeResponse`.
#[derive(Debug)]
pub enum Outgoing {
    /// `repeated RecordedEvent events = 1`, written from the events as tonic sends it.
    Events(EventsMessage),
    /// Any other message, encoded beforehand (a subscription's checkpoints).
    Encoded(Encoded),
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing::Encoded(Encoded::default())
    }
}

/// Events as `repeated RecordedEvent events = 1`, with their lengths worked out.
#[derive(Debug)]
pub struct EventsMessage {
    events: Box<dyn EventSource>,
    layouts: Vec<Layout>,
    /// The events' encoded length: the message's, unless nested.
    events_len: usize,
    /// Whether the events are field 1 of an outer message (`SubscribeResponse.events`).
    nested: bool,
}

impl Outgoing {
    /// A `ReadResponse` or `ReadAllResponse` of `events`.
    pub fn events(events: Box<dyn EventSource>) -> Self {
        Outgoing::Events(EventsMessage::new(events, false))
    }

    /// A `SubscribeResponse` whose `events` (a `SubscribeEvents`) holds `events`.
    pub fn subscribe_events(events: Box<dyn EventSource>) -> Self {
        Outgoing::Events(EventsMessage::new(events, true))
    }
}

impl EventsMessage {
    fn new(events: Box<dyn EventSource>, nested: bool) -> Self {
        let layouts: Vec<Layout> = (0..events.len())
            .map(|i| Layout::of(&events.event(i)))
            .collect();
        let events_len = layouts.iter().map(|l| len_field_len(l.event)).sum();
        EventsMessage {
            events,
            layouts,
            events_len,
            nested,
        }
    }

    fn encoded_len(&self) -> usize {
        match self.nested {
            true => len_field_len(self.events_len),
            false => self.events_len,
        }
    }

    /// Each event's small fields are gathered in a scratch buffer and put with its
    /// payloads in five pieces: tonic's buffer checks its room on every put, and a put
    /// per field cost more than the copying.
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if self.nested {
            put_len_prefix(key::EVENTS, self.events_len, buf);
        }
        let mut stream_key = StreamKeyText::default();
        let mut scratch = Vec::with_capacity(1024);
        for (i, layout) in self.layouts.iter().enumerate() {
            put_event(
                &self.events.event(i),
                layout,
                &mut stream_key,
                &mut scratch,
                buf,
            );
        }
    }
}

impl prost::Message for Outgoing {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            Outgoing::Events(events) => events.encode_raw(buf),
            Outgoing::Encoded(encoded) => encoded.encode_raw(buf),
        }
    }

    /// Only ever sent: decoding one skips every field, as prost does with unknown
    /// fields. Readers decode the generated types.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        match self {
            Outgoing::Events(events) => events.encoded_len(),
            Outgoing::Encoded(encoded) => encoded.encoded_len(),
        }
    }

    fn clear(&mut self) {
        *self = Outgoing::default();
    }
}

/// Microseconds since the epoch as a `google.protobuf.Timestamp`, whose nanoseconds are
/// never negative.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Field keys.
mod key {
    use crate::wire::{len_key, varint_key};
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

/// What an event's encoding needs worked out before it is written: its nested
/// messages' lengths go before them, and the whole event's before it.
#[derive(Debug)]
struct Layout {
    event: usize,
    stream: usize,
    created: usize,
    seconds: i64,
    nanos: i32,
}

impl Layout {
    fn of(event: &EventView<'_>) -> Self {
        let prost_types::Timestamp { seconds, nanos } = timestamp(event.created_micros);
        // int64 and int32 are varints of their two's complement, sign-extended.
        let created = varint_field_len(seconds as u64) + varint_field_len(i64::from(nanos) as u64);
        let stream = len_field_len(UUID_TEXT_LEN) + bytes_field_len(event.stream_type.len());
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

/// Writes `event` (its key and length first) into `buf`, its fields other than the
/// payloads by way of `scratch`.
fn put_event(
    event: &EventView<'_>,
    layout: &Layout,
    stream_key: &mut StreamKeyText,
    scratch: &mut Vec<u8>,
    buf: &mut impl BufMut,
) {
    scratch.clear();
    put_len_prefix(key::EVENTS, layout.event, scratch);
    put_uuid(key::ID, event.id, scratch);
    put_bytes(key::TYPE, event.event_type.as_bytes(), scratch);
    put_payload(key::DATA, event.data, scratch, buf);
    put_payload(key::METADATA, event.metadata, scratch, buf);
    put_len_prefix(key::STREAM, layout.stream, scratch);
    put_bytes(key::STREAM_KEY, stream_key.of(event.stream_key), scratch);
    put_bytes(key::STREAM_TYPE, event.stream_type.as_bytes(), scratch);
    put_varint(key::VERSION, event.version, scratch);
    put_varint(key::POSITION, event.position, scratch);
    put_len_prefix(key::CREATED, layout.created, scratch);
    put_varint(key::SECONDS, layout.seconds as u64, scratch);
    put_varint(key::NANOS, i64::from(layout.nanos) as u64, scratch);
    buf.put_slice(scratch);
}

/// A bytes field: its key and length go to `scratch`, which is then put into `buf`
/// with the value, and emptied. Nothing when empty, as proto3 leaves it out.
fn put_payload(key: u8, value: &[u8], scratch: &mut Vec<u8>, buf: &mut impl BufMut) {
    if !value.is_empty() {
        put_len_prefix(key, value.len(), scratch);
        buf.put_slice(scratch);
        buf.put_slice(value);
        scratch.clear();
    }
}

/// The text of the last stream key written: the events of a message mostly share one
/// stream, whose key then need not be formatted again for each of them.
struct StreamKeyText {
    key: Option<Uuid>,
    text: [u8; UUID_TEXT_LEN],
}

impl Default for StreamKeyText {
    fn default() -> Self {
        StreamKeyText {
            key: None,
            text: [0; UUID_TEXT_LEN],
        }
    }
}

impl StreamKeyText {
    fn of(&mut self, key: Uuid) -> &[u8] {
        if self.key != Some(key) {
            key.hyphenated().encode_lower(&mut self.text);
            self.key = Some(key);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equivalence::Generated;
    use crate::v1 as pb;
    use prost::Message;

    /// Events over the edges of every field: empty and multi-byte lengths, zero and
    /// large numbers, times before the epoch and on whole seconds.
    fn edge_events() -> Vec<pb::RecordedEvent> {
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
            .map(|i| pb::RecordedEvent {
                id: Uuid::from_u128(0x0123_4567_89ab_cdef_u128.wrapping_mul(i as u128 + 1))
                    .to_string(),
                r#type: "t".repeat(1 + sizes[i % 7] % 255),
                data: vec![i as u8; sizes[i % 7]].into(),
                metadata: vec![7; sizes[(i / 7) % 7] % 1000].into(),
                stream: Some(pb::StreamId {
                    // Runs of three events share a key, as a stream's events do.
                    key: Uuid::from_u128(i as u128 / 3).to_string(),
                    r#type: "s".repeat(1 + i * 5 % 255),
                }),
                version: numbers[i % 6],
                position: numbers[(i / 6) % 6],
                created: Some(timestamp(times[i % 7])),
            })
            .collect()
    }

    fn encoded(message: Outgoing) -> Vec<u8> {
        let mut buf = Vec::new();
        message.encode(&mut buf).expect("a Vec grows");
        assert_eq!(buf.len(), message.encoded_len(), "the length it said");
        buf
    }

    #[test]
    fn read_responses_are_what_prost_writes() {
        let events = edge_events();
        for batch in [&events[..], &events[..1], &[]] {
            let reference = pb::ReadResponse {
                events: batch.to_vec(),
            };
            let message = Outgoing::events(Box::new(Generated(batch.to_vec())));
            assert_eq!(encoded(message), reference.encode_to_vec());
        }
    }

    #[test]
    fn subscription_events_are_what_prost_writes() {
        let events = edge_events();
        for batch in [&events[..], &events[3..4]] {
            let reference = pb::SubscribeResponse {
                message: Some(pb::subscribe_response::Message::Events(
                    pb::SubscribeEvents {
                        events: batch.to_vec(),
                    },
                )),
            };
            let message = Outgoing::subscribe_events(Box::new(Generated(batch.to_vec())));
            assert_eq!(encoded(message), reference.encode_to_vec());
        }
    }

    #[test]
    fn timestamps_round_to_whole_microseconds_below() {
        assert_eq!(
            timestamp(-1),
            prost_types::Timestamp {
                seconds: -1,
                nanos: 999_999_000
            }
        );
        assert_eq!(
            timestamp(1_500_001),
            prost_types::Timestamp {
                seconds: 1,
                nanos: 500_001_000
            }
        );
    }
}

//! The hand-written encoders and decoders against prost, on messages filled from the
//! compiled contract ([`contract::sample`]) rather than hand-picked literals: whatever
//! field the contract holds is sent, and must come out of the hand-written code as it
//! comes out of the generated types. Each module's own tests add the edge cases
//! (lengths over a byte, repeated fields merged, malformed input).

use crate::contract::{descriptors, sample};
use crate::v1 as pb;
use crate::{EventBatch, EventSource, EventView, IncomingAppend, Outgoing, WireEvent};
use prost::Message;
use prost::bytes::Bytes;
use uuid::Uuid;

const SEEDS: u64 = 300;

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the samples' strings are UTF-8")
}

/// The generated event a [`WireEvent`] stands for. (`..Default::default()` here and
/// below: a field added to the contract must leave these compiling, for the tests to
/// report it.)
#[allow(clippy::needless_update)]
pub fn wire_event(wire: &WireEvent) -> pb::RecordedEvent {
    pb::RecordedEvent {
        id: text(wire.field(&wire.id)),
        r#type: text(wire.field(&wire.event_type)),
        data: wire.bytes.slice(wire.data.clone()),
        metadata: wire.bytes.slice(wire.metadata.clone()),
        stream: wire.stream.as_ref().map(|(key, stream_type)| pb::StreamId {
            key: text(wire.field(key)),
            r#type: text(wire.field(stream_type)),
            ..Default::default()
        }),
        version: wire.version,
        position: wire.position,
        created: wire
            .created
            .map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        ..Default::default()
    }
}

/// The generated request an [`IncomingAppend`] stands for.
#[allow(clippy::needless_update)]
pub fn incoming_append(append: &IncomingAppend) -> pb::AppendRequest {
    pb::AppendRequest {
        stream: append
            .stream
            .as_ref()
            .map(|(key, stream_type)| pb::StreamId {
                key: text(key),
                r#type: text(stream_type),
                ..Default::default()
            }),
        expected_version: append.expected_version,
        events: append
            .events
            .iter()
            .map(|e| pb::EventData {
                id: text(e.field(&e.id)),
                r#type: text(e.field(&e.event_type)),
                data: e.bytes.slice(e.data.clone()),
                metadata: e.bytes.slice(e.metadata.clone()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Generated events as the server's responses take them. Every event must have an id
/// and a stream key that are UUIDs, a stream and a time in whole microseconds: what
/// the server sends.
#[derive(Debug)]
pub struct Generated(pub Vec<pb::RecordedEvent>);

impl EventSource for Generated {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn event(&self, index: usize) -> EventView<'_> {
        let e = &self.0[index];
        let stream = e.stream.as_ref().expect("a stream");
        let created = e.created.expect("a time");
        EventView {
            id: Uuid::parse_str(&e.id).expect("a UUID id"),
            event_type: &e.r#type,
            data: &e.data,
            metadata: &e.metadata,
            stream_key: Uuid::parse_str(&stream.key).expect("a UUID key"),
            stream_type: &stream.r#type,
            version: e.version,
            position: e.position,
            created_micros: created.seconds * 1_000_000 + i64::from(created.nanos) / 1_000,
        }
    }
}

fn encoded(message: &impl Message) -> Vec<u8> {
    let mut buf = Vec::new();
    message.encode(&mut buf).expect("a Vec grows");
    assert_eq!(buf.len(), message.encoded_len(), "the length it said");
    buf
}

#[test]
fn the_client_reads_responses_as_prost_does_with_every_field_and_unknown_ones() {
    let contract = descriptors();
    for message in ["evenire.v1.ReadResponse", "evenire.v1.ReadAllResponse"] {
        for seed in 0..SEEDS {
            let bytes = sample(&contract, message, seed, seed % 2 == 0);
            let reference = pb::ReadResponse::decode(&bytes[..]).expect("prost reads it");
            let batch = EventBatch::decode(Bytes::from(bytes)).expect("the batch reads it");
            let events: Vec<_> = batch.events.iter().map(wire_event).collect();
            assert_eq!(events, reference.events, "{message}, seed {seed}");
        }
    }
}

#[test]
fn the_server_reads_appends_as_prost_does_with_every_field_and_unknown_ones() {
    let contract = descriptors();
    for seed in 0..SEEDS {
        let bytes = sample(&contract, "evenire.v1.AppendRequest", seed, seed % 2 == 0);
        let reference = pb::AppendRequest::decode(&bytes[..]).expect("prost reads it");
        let append = IncomingAppend::decode(Bytes::from(bytes)).expect("the server reads it");
        assert_eq!(incoming_append(&append), reference, "seed {seed}");
    }
}

#[test]
fn the_server_writes_responses_as_prost_does_with_every_field() {
    let contract = descriptors();
    for seed in 0..SEEDS {
        let bytes = sample(&contract, "evenire.v1.ReadResponse", seed, false);
        let reference = pb::ReadResponse::decode(&bytes[..]).expect("prost reads it");
        let message = Outgoing::events(Box::new(Generated(reference.events.clone())));
        let written = encoded(&message);
        let read_back = pb::ReadResponse::decode(&written[..]).expect("prost reads it");
        assert_eq!(read_back, reference, "seed {seed}: fields lost or changed");
        assert_eq!(written, reference.encode_to_vec(), "seed {seed}");
        // And back through the client's reader.
        let batch = EventBatch::decode(Bytes::from(written)).expect("the client reads it");
        let events: Vec<_> = batch.events.iter().map(wire_event).collect();
        assert_eq!(events, reference.events, "seed {seed}");

        let bytes = sample(&contract, "evenire.v1.SubscribeEvents", seed, false);
        let events = pb::SubscribeEvents::decode(&bytes[..]).expect("prost reads it");
        let reference = pb::SubscribeResponse {
            message: Some(pb::subscribe_response::Message::Events(events.clone())),
        };
        let message = Outgoing::subscribe_events(Box::new(Generated(events.events)));
        let written = encoded(&message);
        let read_back = pb::SubscribeResponse::decode(&written[..]).expect("prost reads it");
        assert_eq!(read_back, reference, "seed {seed}: fields lost or changed");
        assert_eq!(written, reference.encode_to_vec(), "seed {seed}");
    }
}

#[test]
fn samples_fill_every_field_of_the_hand_handled_messages() {
    let contract = descriptors();
    let mut seen = std::collections::HashSet::new();
    for seed in 0..SEEDS {
        let bytes = sample(&contract, "evenire.v1.ReadResponse", seed, false);
        for event in pb::ReadResponse::decode(&bytes[..])
            .expect("decodes")
            .events
        {
            let defaults = pb::RecordedEvent::default();
            seen.insert(("type", event.r#type != defaults.r#type));
            seen.insert(("data", event.data != defaults.data));
            seen.insert(("version", event.version != 0));
            seen.insert(("nanos", event.created.is_some_and(|t| t.nanos != 0)));
        }
    }
    for field in ["type", "data", "version", "nanos"] {
        assert!(seen.contains(&(field, true)), "{field} is never filled");
        assert!(seen.contains(&(field, false)), "{field} is always filled");
    }
    assert!(sample(&contract, "evenire.v1.NoSuchMessage", 1, true).is_empty());
}

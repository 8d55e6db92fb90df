//! Arbitrary events through the hand-written encoder of the server's read and
//! subscription responses (`Outgoing`): whatever the events hold, prost reads back
//! exactly them, the message is as long as it said, and the Rust client's hand-written
//! reader (`EventBatch`) reads them too.
#![no_main]

use evenire_proto::v1 as pb;
use evenire_proto::{EventBatch, EventSource, EventView, Outgoing, timestamp};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost::bytes::Bytes;

/// Takes bytes off the input, zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    fn u64(&mut self) -> u64 {
        let mut word = [0; 8];
        let taken = self.bytes(8);
        word[..taken.len()].copy_from_slice(&taken);
        u64::from_le_bytes(word)
    }

    fn text(&mut self) -> String {
        let len = self.u64() as usize % 300;
        String::from_utf8_lossy(&self.bytes(len)).into_owned()
    }

    fn payload(&mut self) -> Vec<u8> {
        let len = self.u64() as usize % 70_000;
        self.bytes(len)
    }
}

#[derive(Debug, Clone)]
struct Event {
    id: uuid::Uuid,
    event_type: String,
    data: Vec<u8>,
    metadata: Vec<u8>,
    stream_key: uuid::Uuid,
    stream_type: String,
    version: u64,
    position: u64,
    created_micros: i64,
}

#[derive(Debug)]
struct Events(Vec<Event>);

impl EventSource for Events {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn event(&self, index: usize) -> EventView<'_> {
        let e = &self.0[index];
        EventView {
            id: e.id,
            event_type: &e.event_type,
            data: &e.data,
            metadata: &e.metadata,
            stream_key: e.stream_key,
            stream_type: &e.stream_type,
            version: e.version,
            position: e.position,
            created_micros: e.created_micros,
        }
    }
}

fn generated(e: &Event) -> pb::RecordedEvent {
    pb::RecordedEvent {
        id: e.id.to_string(),
        r#type: e.event_type.clone(),
        data: e.data.clone().into(),
        metadata: e.metadata.clone().into(),
        stream: Some(pb::StreamId {
            key: e.stream_key.to_string(),
            r#type: e.stream_type.clone(),
        }),
        version: e.version,
        position: e.position,
        created: Some(timestamp(e.created_micros)),
    }
}

fn encoded(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    assert_eq!(bytes.len(), message.encoded_len(), "the length it said");
    bytes
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let count = input.u64() % 8;
    let events: Vec<Event> = (0..count)
        .map(|_| Event {
            id: uuid::Uuid::from_u64_pair(input.u64(), input.u64()),
            event_type: input.text(),
            data: input.payload(),
            metadata: input.payload(),
            stream_key: uuid::Uuid::from_u64_pair(input.u64(), input.u64()),
            stream_type: input.text(),
            version: input.u64(),
            position: input.u64(),
            // Within what a timestamp of whole seconds and nanoseconds holds.
            created_micros: (input.u64() as i64) / 1_000,
        })
        .collect();
    let reference: Vec<pb::RecordedEvent> = events.iter().map(generated).collect();

    let response = encoded(&Outgoing::events(Box::new(Events(Vec::new()))));
    assert!(response.is_empty());
    let events = Events(events);
    let response = encoded(&Outgoing::events(Box::new(Events(events.0.clone()))));
    let decoded = pb::ReadResponse::decode(&response[..]).expect("prost reads the response");
    assert_eq!(decoded.events, reference);
    let batch = EventBatch::decode(Bytes::from(response)).expect("the client reads it");
    assert_eq!(batch.events.len(), reference.len());

    let subscribed = encoded(&Outgoing::subscribe_events(Box::new(events)));
    let decoded = pb::SubscribeResponse::decode(&subscribed[..]).expect("prost reads it");
    let expected = pb::SubscribeResponse {
        message: Some(pb::subscribe_response::Message::Events(pb::SubscribeEvents {
            events: reference,
        })),
    };
    assert_eq!(decoded, expected);
});

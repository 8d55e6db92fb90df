//! The store's events as the responses that carry them read them: a read's batch or a
//! subscription's step becomes an `evenire_proto::Outgoing`, which writes the protobuf
//! bytes when tonic sends it (`proto/outgoing.rs` says why), sharing the cache's bytes
//! until then.

use crate::backend::RecordedEvent;
use evenire_proto::{EventSource, EventView, Outgoing};

/// A `ReadResponse` or `ReadAllResponse` of `events`.
pub fn events(events: Vec<RecordedEvent>) -> Outgoing {
    Outgoing::events(Box::new(Events(events)))
}

/// A `SubscribeResponse` carrying `events`.
pub fn subscribe_events(events: Vec<RecordedEvent>) -> Outgoing {
    Outgoing::subscribe_events(Box::new(Events(events)))
}

#[derive(Debug)]
struct Events(Vec<RecordedEvent>);

impl EventSource for Events {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn event(&self, index: usize) -> EventView<'_> {
        let event = &self.0[index];
        EventView {
            id: event.id,
            event_type: &event.event_type,
            data: &event.data,
            metadata: &event.metadata,
            stream_key: event.stream.key,
            stream_type: &event.stream.stream_type,
            version: event.version,
            position: event.position,
            created_micros: event.created_micros,
        }
    }
}

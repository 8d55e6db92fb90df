//! An append as the Rust client sends it: its events kept as the client was given them
//! and written straight into tonic's send buffer when tonic encodes the message (with
//! the [`SizedCodec`](crate::SizedCodec), into room reserved once), the same bytes
//! prost writes for the generated `AppendRequest`, which the client's tests check.
//!
//! Encoded beforehand into a buffer of its own, as it was, a batch of 1,000 events was
//! then copied whole into tonic's buffer, freshly allocated each time: that copy was a
//! sixth of the benchmark client's CPU in batch appends.

use crate::wire::{
    UUID_TEXT_LEN, bytes_field_len, len_field_len, len_key, put_bytes, put_len_prefix, put_uuid,
};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, skip_field};
use uuid::Uuid;

/// `AppendRequest.events`: `repeated EventData events = 3`.
const EVENTS: u8 = len_key(3);
/// `EventData`: `string id = 1; string type = 2; bytes data = 3; bytes metadata = 4`.
const ID: u8 = len_key(1);
const TYPE: u8 = len_key(2);
const DATA: u8 = len_key(3);
const METADATA: u8 = len_key(4);

/// An `AppendRequest` whose events are written when it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingAppend {
    /// The fields before the events (stream and expected version), encoded.
    head: Bytes,
    events: Vec<OutgoingEvent>,
    /// The whole message's length.
    len: usize,
}

/// An event of an [`OutgoingAppend`]: the fields of `EventData`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// None leaves the id out, for the server to pick one.
    pub id: Option<Uuid>,
    pub event_type: String,
    pub data: Bytes,
    pub metadata: Bytes,
}

impl OutgoingAppend {
    /// The request of `head`, the encoded fields before the events, and `events`.
    pub fn new(head: Bytes, events: Vec<OutgoingEvent>) -> Self {
        let events_len: usize = events.iter().map(|e| len_field_len(e.len())).sum();
        OutgoingAppend {
            len: head.len() + events_len,
            head,
            events,
        }
    }
}

impl OutgoingEvent {
    /// The length of its `EventData` message.
    fn len(&self) -> usize {
        self.id.map_or(0, |_| len_field_len(UUID_TEXT_LEN))
            + bytes_field_len(self.event_type.len())
            + bytes_field_len(self.data.len())
            + bytes_field_len(self.metadata.len())
    }
}

impl prost::Message for OutgoingAppend {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.head);
        for event in &self.events {
            put_len_prefix(EVENTS, event.len(), buf);
            if let Some(id) = event.id {
                put_uuid(ID, id, buf);
            }
            put_bytes(TYPE, event.event_type.as_bytes(), buf);
            put_bytes(DATA, &event.data, buf);
            put_bytes(METADATA, &event.metadata, buf);
        }
    }

    /// Only ever sent: decoding one skips every field, as prost does with unknown
    /// fields. The server reads appends as [`IncomingAppend`](crate::IncomingAppend)s.
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
        self.len
    }

    fn clear(&mut self) {
        *self = OutgoingAppend::default();
    }
}

//! Events as a client receives them: each `RecordedEvent` of a `ReadResponse` or
//! `ReadAllResponse` kept as its bytes, with where each field lies in them.
//!
//! Decoding into the generated `RecordedEvent` makes four strings and a nested message
//! per event, only for the client to parse two of them back into UUIDs: for a read of
//! many small events that was most of the client's CPU. An `EventBatch` reads the same
//! wire format in one pass and copies nothing (tested against the generated types);
//! the client turns each `WireEvent` into its own type.

use crate::read_fields::{
    Plain, event_fields, for_each_field, length_delimited, plain_field, skip, value, varint,
};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, skip_field};
use std::ops::Range;

/// The events of one `ReadResponse` or `ReadAllResponse` (field 1, repeated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventBatch {
    /// The events, in the order received.
    pub events: Vec<WireEvent>,
}

/// A `RecordedEvent` as received: its encoded bytes, and its fields as ranges of them
/// (empty when absent) or values. Strings are not checked for UTF-8 here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WireEvent {
    /// The event's encoded bytes.
    pub bytes: Bytes,
    /// `id`.
    pub id: Range<usize>,
    /// `type`.
    pub event_type: Range<usize>,
    /// `data`.
    pub data: Range<usize>,
    /// `metadata`.
    pub metadata: Range<usize>,
    /// `stream.key` and `stream.type`, when `stream` is present.
    pub stream: Option<(Range<usize>, Range<usize>)>,
    /// `version`.
    pub version: u64,
    /// `position`.
    pub position: u64,
    /// `created` as seconds and nanoseconds, when present.
    pub created: Option<(i64, i32)>,
}

impl WireEvent {
    /// The bytes of the field at `range`.
    pub fn field(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }

    /// Reads the fields of the `RecordedEvent` encoded in `bytes`.
    pub fn decode(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        match Self::decode_plain(&bytes) {
            Some(event) => Ok(WireEvent { bytes, ..event }),
            None => Self::decode_general(bytes),
        }
    }

    /// The event's fields when every one is as the server writes them
    /// ([`plain_field`]), without its bytes; `None` for anything else.
    fn decode_plain(all: &[u8]) -> Option<Self> {
        let mut event = WireEvent::default();
        let mut at = 0;
        while at < all.len() {
            match plain_field(all, &mut at)? {
                (1, Plain::Bytes(range)) => event.id = range,
                (2, Plain::Bytes(range)) => event.event_type = range,
                (3, Plain::Bytes(range)) => event.data = range,
                (4, Plain::Bytes(range)) => event.metadata = range,
                (5, Plain::Bytes(range)) => {
                    // A message that appears twice is merged, as prost merges it.
                    let (mut key, mut stream_type) = event.stream.take().unwrap_or_default();
                    let (upto, mut inner) = (&all[..range.end], range.start);
                    while inner < upto.len() {
                        match plain_field(upto, &mut inner)? {
                            (1, Plain::Bytes(range)) => key = range,
                            (2, Plain::Bytes(range)) => stream_type = range,
                            _ => return None,
                        }
                    }
                    event.stream = Some((key, stream_type));
                }
                (6, Plain::Varint(version)) => event.version = version,
                (7, Plain::Varint(position)) => event.position = position,
                (8, Plain::Bytes(range)) => {
                    let (mut seconds, mut nanos) = event.created.unwrap_or_default();
                    let (upto, mut inner) = (&all[..range.end], range.start);
                    while inner < upto.len() {
                        match plain_field(upto, &mut inner)? {
                            // int64 and int32 travel as their two's complement.
                            (1, Plain::Varint(value)) => seconds = value as i64,
                            (2, Plain::Varint(value)) => nanos = value as i32,
                            _ => return None,
                        }
                    }
                    event.created = Some((seconds, nanos));
                }
                _ => return None,
            }
        }
        Some(event)
    }

    /// Reads any encoding of a `RecordedEvent` prost reads, and fails where it fails.
    fn decode_general(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        let mut event = WireEvent::default();
        let all = &bytes[..];
        let [id, event_type, data, metadata] = event_fields(all, |tag, wire_type, rest| {
            match tag {
                5 => {
                    let inner = value(all, rest, tag, wire_type)?;
                    let (mut key, mut stream_type) = event.stream.take().unwrap_or_default();
                    for_each_field(all, inner, |upto, tag, wire_type, rest| {
                        match tag {
                            1 => key = value(upto, rest, tag, wire_type)?,
                            2 => stream_type = value(upto, rest, tag, wire_type)?,
                            _ => skip(rest, tag, wire_type)?,
                        }
                        Ok(())
                    })?;
                    event.stream = Some((key, stream_type));
                }
                6 => event.version = varint(rest, wire_type)?,
                7 => event.position = varint(rest, wire_type)?,
                8 => {
                    let inner = value(all, rest, tag, wire_type)?;
                    let (mut seconds, mut nanos) = event.created.unwrap_or_default();
                    for_each_field(all, inner, |_, tag, wire_type, rest| {
                        match tag {
                            // int64 and int32 travel as their two's complement.
                            1 => seconds = varint(rest, wire_type)? as i64,
                            2 => nanos = varint(rest, wire_type)? as i32,
                            _ => skip(rest, tag, wire_type)?,
                        }
                        Ok(())
                    })?;
                    event.created = Some((seconds, nanos));
                }
                _ => skip(rest, tag, wire_type)?,
            }
            Ok(())
        })?;
        Ok(WireEvent {
            bytes,
            id,
            event_type,
            data,
            metadata,
            ..event
        })
    }
}

/// Field 1, `repeated RecordedEvent events`, of both responses.
const EVENTS_TAG: u32 = 1;

impl prost::Message for EventBatch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for event in &self.events {
            prost::encoding::bytes::encode(EVENTS_TAG, &event.bytes, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        if tag != EVENTS_TAG {
            return skip_field(wire_type, tag, buf, ctx);
        }
        let bytes = length_delimited(wire_type, buf, ctx)?;
        if self.events.is_empty() {
            // A read's events are mostly alike in size: room for as many as the rest of
            // the message holds at the first one's, instead of the vector growing (and
            // moving) ten times over a message of a thousand.
            let estimate = buf.remaining() / (bytes.len() + 2) + 1;
            self.events.reserve(estimate.min(crate::EVENTS_PER_MESSAGE));
        }
        self.events.push(WireEvent::decode(bytes)?);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.events
            .iter()
            .map(|e| prost::encoding::bytes::encoded_len(EVENTS_TAG, &e.bytes))
            .sum()
    }

    fn clear(&mut self) {
        self.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1 as pb;
    use prost::Message;

    fn event(i: u64) -> pb::RecordedEvent {
        let sizes = [0, 1, 127, 128, 300, 70_000];
        let size = |n: u64| sizes[(n % 6) as usize];
        pb::RecordedEvent {
            id: format!("00000000-0000-0000-0000-{i:012}"),
            r#type: "t".repeat(1 + size(i) % 255),
            data: Bytes::from(vec![i as u8; size(i)]),
            metadata: Bytes::from(vec![7; size(i / 6) % 1000]),
            stream: (i % 5 != 4).then(|| pb::StreamId {
                key: format!("11111111-0000-0000-0000-{i:012}"),
                r#type: "s".repeat(1 + (i as usize * 5) % 255),
            }),
            version: [0, 1, 127, 128, u64::MAX][(i % 5) as usize],
            position: i << 30,
            created: (i % 7 != 6).then(|| prost_types::Timestamp {
                seconds: [0, 1, -1, 1 << 40, i64::MIN][(i % 5) as usize],
                nanos: [0, 1, 999_999_999][(i % 3) as usize],
            }),
        }
    }

    #[test]
    fn reads_what_the_generated_types_write() {
        let response = pb::ReadResponse {
            events: (0..40).map(event).collect(),
        };
        let bytes = response.encode_to_vec();
        let batch = EventBatch::decode(&bytes[..]).expect("decodes");
        let read: Vec<_> = batch
            .events
            .iter()
            .map(crate::equivalence::wire_event)
            .collect();
        assert_eq!(read, response.events);
        assert_eq!(batch.encode_to_vec(), bytes);
        assert_eq!(batch.encoded_len(), bytes.len());
    }

    #[test]
    fn reads_a_response_in_two_pieces_and_refuses_it_cut_as_prost_does() {
        let response = pb::ReadResponse {
            events: (0..5).map(event).collect(),
        };
        let whole = response.encode_to_vec();
        for at in 0..whole.len() {
            let (head, tail) = whole.split_at(at);
            assert_eq!(
                EventBatch::decode(head).is_err(),
                pb::ReadResponse::decode(head).is_err(),
                "cut at {at}"
            );
            // Where a length falls across the pieces, it is read the slow way.
            let batch = EventBatch::decode(head.chain(tail)).expect("decodes");
            let read: Vec<_> = batch
                .events
                .iter()
                .map(crate::equivalence::wire_event)
                .collect();
            assert_eq!(read, response.events, "split at {at}");
        }
    }

    #[test]
    fn the_plain_reading_agrees_with_the_general_one_or_leaves_the_event_to_it() {
        let mut plain = 0;
        for i in 0..40 {
            let bytes = Bytes::from(event(i).encode_to_vec());
            let general = WireEvent::decode_general(bytes.clone()).expect("decodes");
            if let Some(event) = WireEvent::decode_plain(&bytes) {
                plain += 1;
                assert_eq!(WireEvent { bytes, ..event }, general, "event {i}");
            }
        }
        // Those with a ten-byte varint go to the general reading: a version of
        // u64::MAX (8 of the 40), a negative number of seconds (7 more); the rest do not.
        assert_eq!(plain, 25);
        // An unknown field in the stream, and in the event.
        for unusual in [&[5 << 3 | 2, 2, 3 << 3, 1][..], &[9 << 3, 1]] {
            assert_eq!(WireEvent::decode_plain(unusual), None);
        }
    }

    #[test]
    fn skips_unknown_fields_and_merges_repeated_ones() {
        let mut bytes = event(1).encode_to_vec();
        // Unknown fields of every wire type.
        bytes.extend_from_slice(&[9 << 3, 42, 10 << 3 | 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[11 << 3 | 2, 2, b'h', b'i', 12 << 3 | 5, 0, 0, 0, 0]);
        // A second `stream` carrying only its type: the key of the first stays.
        bytes.extend_from_slice(&[5 << 3 | 2, 3, 2 << 3 | 2, 1, b'x']);
        let wire = WireEvent::decode(Bytes::from(bytes)).expect("decodes");
        let mut expected = event(1);
        expected.stream.as_mut().expect("a stream").r#type = "x".into();
        assert_eq!(crate::equivalence::wire_event(&wire), expected);
    }

    #[test]
    fn refuses_what_the_generated_types_refuse() {
        let whole = event(4).encode_to_vec();
        for cut in 1..whole.len() {
            let truncated = &whole[..cut];
            assert_eq!(
                WireEvent::decode(Bytes::copy_from_slice(truncated)).is_err(),
                pb::RecordedEvent::decode(truncated).is_err(),
                "cut at {cut}"
            );
        }
        // `version` as length-delimited, `id` as a varint, a wire type that does not exist.
        for bad in [&[6 << 3 | 2, 1, 0][..], &[1 << 3, 5], &[1 << 3 | 6, 0]] {
            assert!(WireEvent::decode(Bytes::copy_from_slice(bad)).is_err());
            assert!(pb::RecordedEvent::decode(bad).is_err());
        }
    }
}

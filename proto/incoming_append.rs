//! An `AppendRequest` as the server receives it: each `EventData` kept as its bytes,
//! with where each field lies in them.
//!
//! Decoding into the generated types makes two strings per event (its id and type),
//! only for the server to parse the id back into a UUID and the type into a shared
//! name, and reads every field through tonic's buffer a byte at a time: for batches of
//! small events that was the largest part of an append's CPU on the server's side.
//! An `IncomingAppend` reads the same wire format in one pass and copies nothing. It
//! accepts whatever the generated `AppendRequest` accepts, and strings that are not
//! UTF-8 too: the server refuses those itself, naming the field (the tests below check
//! both).

use crate::read_fields::{
    Plain, event_fields, for_each_field, length_delimited, plain_field, skip, value,
};
use crate::v1 as pb;
use crate::wire::{bytes_field_len, len_field_len, len_key, put_bytes, put_len_prefix};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, message, skip_field};
use std::ops::Range;

/// An `AppendRequest`, fields as received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncomingAppend {
    /// `stream`, when present: its `key` and `type` (empty when absent).
    pub stream: Option<(Bytes, Bytes)>,
    /// `expected_version`, decoded by prost.
    pub expected_version: Option<pb::ExpectedVersion>,
    /// `events`, in order.
    pub events: Vec<IncomingEvent>,
}

/// An `EventData` as received: its encoded bytes, and its fields as ranges of them
/// (empty when absent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncomingEvent {
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
}

impl IncomingEvent {
    /// The bytes of the field at `range`.
    pub fn field(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }

    /// Reads the fields of the `EventData` encoded in `bytes`.
    pub fn decode(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        match Self::decode_plain(&bytes) {
            Some([id, event_type, data, metadata]) => Ok(IncomingEvent {
                bytes,
                id,
                event_type,
                data,
                metadata,
            }),
            None => Self::decode_general(bytes),
        }
    }

    /// The event's fields (`id`, `type`, `data`, `metadata`) when every one is as the
    /// clients here write them ([`plain_field`]); `None` for anything else.
    fn decode_plain(all: &[u8]) -> Option<[Range<usize>; 4]> {
        let mut fields: [Range<usize>; 4] = Default::default();
        let mut at = 0;
        while at < all.len() {
            match plain_field(all, &mut at)? {
                (tag @ 1..=4, Plain::Bytes(range)) => fields[usize::from(tag) - 1] = range,
                _ => return None,
            }
        }
        Some(fields)
    }

    /// Reads any encoding of an `EventData` prost reads, and fails where it fails.
    fn decode_general(bytes: Bytes) -> Result<Self, prost::DecodeError> {
        let [id, event_type, data, metadata] =
            event_fields(&bytes, |tag, wire_type, rest| skip(rest, tag, wire_type))?;
        Ok(IncomingEvent {
            bytes,
            id,
            event_type,
            data,
            metadata,
        })
    }
}

/// The length of a `StreamId` of `key` and `stream_type`.
fn stream_len(key: &[u8], stream_type: &[u8]) -> usize {
    bytes_field_len(key.len()) + bytes_field_len(stream_type.len())
}

/// Field numbers of `AppendRequest`.
const STREAM_TAG: u32 = 1;
const EXPECTED_VERSION_TAG: u32 = 2;
const EVENTS_TAG: u32 = 3;

impl prost::Message for IncomingAppend {
    /// Writes the fields back as received, bytes for bytes (the tests compare it with
    /// prost's encoding).
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some((key, stream_type)) = &self.stream {
            // `StreamId`: `string key = 1; string type = 2`.
            put_len_prefix(len_key(STREAM_TAG as u8), stream_len(key, stream_type), buf);
            put_bytes(len_key(1), key, buf);
            put_bytes(len_key(2), stream_type, buf);
        }
        if let Some(expected) = &self.expected_version {
            message::encode(EXPECTED_VERSION_TAG, expected, buf);
        }
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
        match tag {
            STREAM_TAG => {
                let bytes = length_delimited(wire_type, buf, ctx)?;
                // A message that appears twice is merged: fields of the second replace
                // those of the first.
                let (mut key, mut stream_type) = self.stream.take().unwrap_or_default();
                let all = &bytes[..];
                for_each_field(all, 0..all.len(), |upto, tag, wire_type, rest| {
                    match tag {
                        1 => key = bytes.slice(value(upto, rest, tag, wire_type)?),
                        2 => stream_type = bytes.slice(value(upto, rest, tag, wire_type)?),
                        _ => skip(rest, tag, wire_type)?,
                    }
                    Ok(())
                })?;
                self.stream = Some((key, stream_type));
                Ok(())
            }
            EXPECTED_VERSION_TAG => message::merge(
                wire_type,
                self.expected_version.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            EVENTS_TAG => {
                let bytes = length_delimited(wire_type, buf, ctx)?;
                self.events.push(IncomingEvent::decode(bytes)?);
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let stream = self.stream.as_ref().map_or(0, |(key, stream_type)| {
            len_field_len(stream_len(key, stream_type))
        });
        let expected = self
            .expected_version
            .as_ref()
            .map_or(0, |e| message::encoded_len(EXPECTED_VERSION_TAG, e));
        let events: usize = self
            .events
            .iter()
            .map(|e| prost::encoding::bytes::encoded_len(EVENTS_TAG, &e.bytes))
            .sum();
        stream + expected + events
    }

    fn clear(&mut self) {
        *self = IncomingAppend::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn request(events: usize) -> pb::AppendRequest {
        let sizes = [0, 1, 127, 128, 300, 70_000];
        pb::AppendRequest {
            stream: Some(pb::StreamId {
                key: "8d6f2a54-58a4-4c8e-9d0e-0f5ef3a1c201".into(),
                r#type: "order".into(),
            }),
            expected_version: Some(pb::ExpectedVersion {
                kind: Some(pb::expected_version::Kind::Exact(1 << 40)),
            }),
            events: (0..events)
                .map(|i| pb::EventData {
                    id: ["", "00000000-0000-0000-0000-000000000001"][i % 2].into(),
                    r#type: "t".repeat(1 + sizes[i % 6] % 255),
                    data: vec![i as u8; sizes[i % 6]].into(),
                    metadata: vec![7; sizes[(i / 6) % 6] % 1000].into(),
                })
                .collect(),
        }
    }

    #[test]
    fn reads_what_the_generated_types_write() {
        for request in [request(40), request(1), pb::AppendRequest::default()] {
            let bytes = request.encode_to_vec();
            let append = IncomingAppend::decode(&bytes[..]).expect("decodes");
            assert_eq!(crate::equivalence::incoming_append(&append), request);
            assert_eq!(append.encode_to_vec(), bytes);
            assert_eq!(append.encoded_len(), bytes.len());
        }
    }

    #[test]
    fn the_plain_reading_agrees_with_the_general_one_or_leaves_the_event_to_it() {
        let mut events: Vec<Vec<u8>> = request(12)
            .events
            .iter()
            .map(Message::encode_to_vec)
            .collect();
        // An id twice (the last one counts, as in prost), an unknown field, a
        // two-byte key for field 1, a ten-byte length, a wire type `data` lacks.
        events.push(vec![1 << 3 | 2, 1, b'a', 1 << 3 | 2, 1, b'b']);
        events.push(vec![9 << 3, 42, 1 << 3 | 2, 1, b'a']);
        events.push(vec![0x8a, 0x00, 1, b'a']);
        events.push([&[2 << 3 | 2][..], &[0x81; 9], &[0x00]].concat());
        events.push(vec![3 << 3, 5]);
        let mut plain = 0;
        for bytes in events {
            let general = IncomingEvent::decode_general(Bytes::from(bytes.clone()));
            if let Some([id, event_type, data, metadata]) = IncomingEvent::decode_plain(&bytes) {
                plain += 1;
                let event = IncomingEvent {
                    bytes: Bytes::from(bytes),
                    id,
                    event_type,
                    data,
                    metadata,
                };
                assert_eq!(Ok(event), general);
            }
        }
        assert_eq!(
            plain, 13,
            "the client's events and the repeated id, no others"
        );
    }

    #[test]
    fn merges_repeated_fields_and_skips_unknown_ones() {
        let mut bytes = request(2).encode_to_vec();
        // Unknown fields, a second `stream` carrying only its type, a second
        // `expected_version`, and an event with an unknown field and its id twice.
        bytes.extend_from_slice(&[9 << 3, 42, 11 << 3 | 2, 2, b'h', b'i']);
        bytes.extend_from_slice(&[1 << 3 | 2, 3, 2 << 3 | 2, 1, b'x']);
        bytes.extend_from_slice(&[2 << 3 | 2, 2, 1 << 3, 1]);
        bytes.extend_from_slice(&[3 << 3 | 2, 8, 5 << 3, 1, 1 << 3 | 2, 1, b'a', 1 << 3 | 2]);
        bytes.extend_from_slice(&[1, b'b']);
        let append = IncomingAppend::decode(&bytes[..]).expect("decodes");
        assert_eq!(
            crate::equivalence::incoming_append(&append),
            pb::AppendRequest::decode(&bytes[..]).expect("prost decodes it too")
        );
        assert_eq!(append.events[2].field(&append.events[2].id), b"b");
    }

    #[test]
    fn refuses_what_the_generated_types_refuse_except_bad_utf8() {
        let whole = request(3).encode_to_vec();
        for cut in 1..whole.len() {
            let truncated = &whole[..cut];
            assert_eq!(
                IncomingAppend::decode(truncated).is_err(),
                pb::AppendRequest::decode(truncated).is_err(),
                "cut at {cut}"
            );
        }
        // An event's `type` as a varint; an id that is not UTF-8, which the server
        // refuses itself.
        let wrong_type = [3 << 3 | 2, 2, 2 << 3, 1];
        assert!(IncomingAppend::decode(&wrong_type[..]).is_err());
        assert!(pb::AppendRequest::decode(&wrong_type[..]).is_err());
        let not_utf8 = [3 << 3 | 2, 3, 1 << 3 | 2, 1, 0xff];
        assert!(pb::AppendRequest::decode(&not_utf8[..]).is_err());
        let append = IncomingAppend::decode(&not_utf8[..]).expect("left to the server");
        assert_eq!(append.events[0].field(&append.events[0].id), [0xff]);
    }
}

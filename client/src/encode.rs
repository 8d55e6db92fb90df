//! The `AppendRequest` of an append: its stream and expected version encoded here, its
//! events handed over as they are, to be written into tonic's buffer when it is sent
//! (`evenire_proto::OutgoingAppend` says why). The same bytes prost writes for the
//! generated type, which the tests check, without a string for every id.

use crate::types::{EventData, ExpectedVersion, StreamId};
use bytes::{BufMut, BytesMut};
use evenire_proto::v1 as pb;
use evenire_proto::wire::{
    UUID_TEXT_LEN, bytes_field_len, len_field_len, len_key, put_bytes, put_len_prefix,
    put_raw_varint, put_uuid, varint_key,
};
use evenire_proto::{OutgoingAppend, OutgoingEvent};
use prost::encoding::encoded_len_varint;

/// `AppendRequest`: `StreamId stream = 1; ExpectedVersion expected_version = 2;
/// repeated EventData events = 3` (written by `OutgoingAppend`).
const STREAM: u8 = len_key(1);
const EXPECTED: u8 = len_key(2);
/// `StreamId`: `string key = 1; string type = 2`.
const STREAM_KEY: u8 = len_key(1);
const STREAM_TYPE: u8 = len_key(2);
/// `ExpectedVersion`: `oneof kind { ExpectedState state = 1; uint64 exact = 2; }`.
const STATE: u8 = varint_key(1);
const EXACT: u8 = varint_key(2);

/// The request appending `events` to `stream` if it meets `expected`.
pub fn append_request(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> OutgoingAppend {
    let stream_len = len_field_len(UUID_TEXT_LEN) + bytes_field_len(stream.stream_type.len());
    let (kind, value) = expected_kind(expected);
    // A oneof member is written even when it is zero.
    let expected_len = 1 + encoded_len_varint(value);
    let mut head = BytesMut::with_capacity(len_field_len(stream_len) + len_field_len(expected_len));
    put_len_prefix(STREAM, stream_len, &mut head);
    put_uuid(STREAM_KEY, stream.key, &mut head);
    put_bytes(STREAM_TYPE, stream.stream_type.as_bytes(), &mut head);
    put_len_prefix(EXPECTED, expected_len, &mut head);
    head.put_u8(kind);
    put_raw_varint(value, &mut head);
    let events = events
        .into_iter()
        .map(|event| OutgoingEvent {
            id: event.id,
            event_type: event.event_type,
            data: event.data,
            metadata: event.metadata,
        })
        .collect();
    OutgoingAppend::new(head.freeze(), events)
}

/// The key and value of the `ExpectedVersion` member that is set.
fn expected_kind(expected: ExpectedVersion) -> (u8, u64) {
    let state = |state: pb::ExpectedState| (STATE, state as i32 as u64);
    match expected {
        ExpectedVersion::Any => state(pb::ExpectedState::Any),
        ExpectedVersion::NoStream => state(pb::ExpectedState::NoStream),
        ExpectedVersion::StreamExists => state(pb::ExpectedState::StreamExists),
        ExpectedVersion::Exact(version) => (EXACT, version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use uuid::Uuid;

    #[test]
    fn append_requests_are_what_prost_writes() {
        let sizes = [0, 1, 127, 128, 300, 70_000];
        let events: Vec<EventData> = (0..36)
            .map(|i| EventData {
                id: (i % 5 != 0).then(|| Uuid::from_u128(i as u128 * 0x1234_5678_9abc)),
                event_type: "e".repeat(1 + sizes[i % 6] % 255),
                data: vec![i as u8; sizes[i % 6]].into(),
                metadata: vec![1; sizes[(i / 6) % 6] % 1000].into(),
            })
            .collect();
        let expectations = [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::StreamExists,
            ExpectedVersion::Exact(0),
            ExpectedVersion::Exact(300),
            ExpectedVersion::Exact(u64::MAX),
        ];
        for (i, expected) in expectations.into_iter().enumerate() {
            let stream = StreamId::new(Uuid::from_u128(i as u128), "s".repeat(1 + i * 50));
            for batch in [&events[..], &events[i..=i], &[]] {
                let generated = pb::AppendRequest {
                    stream: Some(stream.to_proto()),
                    expected_version: Some(expected.to_proto()),
                    events: batch.iter().map(EventData::to_proto).collect(),
                };
                let ours = append_request(&stream, expected, batch.to_vec());
                assert_eq!(ours.encoded_len(), generated.encoded_len());
                assert_eq!(
                    ours.encode_to_vec(),
                    generated.encode_to_vec(),
                    "{expected:?}, {} events",
                    batch.len()
                );
            }
        }
    }

    /// Requests filled from the compiled contract: a field added to `AppendRequest`,
    /// `StreamId`, `ExpectedVersion` or `EventData` is in the reference and not in what
    /// the client writes, until the client learns it.
    #[test]
    fn append_requests_from_the_contract_are_what_prost_writes() {
        use evenire_proto::contract::{descriptors, sample};
        let contract = descriptors();
        for seed in 0..300 {
            let bytes = sample(&contract, "evenire.v1.AppendRequest", seed, false);
            let reference = pb::AppendRequest::decode(&bytes[..]).expect("prost reads it");
            let pb_stream = reference.stream.clone().expect("samples have a stream");
            let stream = StreamId {
                key: Uuid::parse_str(&pb_stream.key).expect("a UUID key"),
                stream_type: pb_stream.r#type,
            };
            let expected = match reference.expected_version.and_then(|e| e.kind) {
                Some(pb::expected_version::Kind::Exact(version)) => ExpectedVersion::Exact(version),
                Some(pb::expected_version::Kind::State(state)) => {
                    match pb::ExpectedState::try_from(state).expect("a known state") {
                        pb::ExpectedState::NoStream => ExpectedVersion::NoStream,
                        pb::ExpectedState::StreamExists => ExpectedVersion::StreamExists,
                        _ => ExpectedVersion::Any,
                    }
                }
                None => panic!("samples have an expected version"),
            };
            let events = reference
                .events
                .iter()
                .map(|e| EventData {
                    id: (!e.id.is_empty()).then(|| Uuid::parse_str(&e.id).expect("a UUID id")),
                    event_type: e.r#type.clone(),
                    data: e.data.clone(),
                    metadata: e.metadata.clone(),
                })
                .collect();
            let ours = append_request(&stream, expected, events);
            assert_eq!(
                ours.encode_to_vec(),
                reference.encode_to_vec(),
                "seed {seed}"
            );
        }
    }
}

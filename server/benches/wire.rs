//! Micro-benchmarks of a read's wire work for a batch of 1,024 events of 100 bytes (one
//! `ReadResponse`), the hand-written way against the generated types' way:
//! - the server's side: protobuf bytes from the store's events, written directly
//!   (`service::encode::events`, an `evenire_proto::Outgoing`, into room reserved once
//!   as `SizedEncoder` does) or by building a generated `RecordedEvent` per event and
//!   encoding the message with prost (what the server did before);
//! - the client's side: decoding the message into an `EventBatch` (one pass, no copies)
//!   or into the generated types (four strings per event);
//! - and an append of 1,024 such events as the server receives it: decoded into an
//!   `IncomingAppend` (one pass, no copies) or into the generated `AppendRequest`.
//!
//! `cargo bench -p evenire-server --bench wire`; `scripts/test-all` runs each once.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evenire_proto::v1 as pb;
use evenire_proto::{EventBatch, IncomingAppend};
use evenire_server::service::encode;
use evenire_server::store::{RecordedEvent, StreamId};
use prost::Message;
use std::hint::black_box;
use std::sync::Arc;
use uuid::Uuid;

const EVENTS: usize = 1024;

fn events() -> Vec<RecordedEvent> {
    let stream = StreamId {
        key: Uuid::new_v4(),
        stream_type: Arc::from("sensor"),
    };
    let event_type: Arc<str> = Arc::from("TemperatureRecorded");
    (0..EVENTS as u64)
        .map(|i| RecordedEvent {
            id: Uuid::new_v4(),
            event_type: event_type.clone(),
            data: Bytes::from(vec![b'x'; 100]),
            metadata: Bytes::new(),
            stream: stream.clone(),
            version: 41 + i,
            position: 1_000_000 + i,
            created_micros: 1_764_000_000_000_000,
        })
        .collect()
}

fn uuid_text(id: Uuid) -> String {
    let mut buffer = Uuid::encode_buffer();
    String::from(&*id.hyphenated().encode_lower(&mut buffer))
}

/// The generated message, built as the server built it before it encoded by hand.
fn generated(events: &[RecordedEvent]) -> pb::ReadResponse {
    let event = |e: &RecordedEvent| pb::RecordedEvent {
        id: uuid_text(e.id),
        r#type: String::from(&*e.event_type),
        data: e.data.clone(),
        metadata: e.metadata.clone(),
        stream: Some(pb::StreamId {
            key: uuid_text(e.stream.key),
            r#type: String::from(&*e.stream.stream_type),
        }),
        version: e.version,
        position: e.position,
        created: Some(prost_types::Timestamp {
            seconds: e.created_micros.div_euclid(1_000_000),
            nanos: (e.created_micros.rem_euclid(1_000_000) * 1_000) as i32,
        }),
    };
    pb::ReadResponse {
        events: events.iter().map(event).collect(),
    }
}

/// The server's way: the response made from a read's events (copies that share the
/// cache's payloads, as a read takes them), then written into `buf`, emptied and given
/// room for all of it as tonic does with its buffer.
fn by_hand(events: Vec<RecordedEvent>, buf: &mut BytesMut) {
    let message = encode::events(events);
    buf.clear();
    buf.reserve(message.encoded_len());
    message.encode_raw(buf);
}

fn wire(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("read batch of 1024");
    group.throughput(Throughput::Elements(EVENTS as u64));
    let mut buf = BytesMut::new();
    group.bench_function("encode by hand", |b| {
        b.iter(|| by_hand(black_box(events.clone()), &mut buf))
    });
    group.bench_function("encode via generated types", |b| {
        b.iter(|| generated(black_box(&events)).encode_to_vec())
    });
    by_hand(events.clone(), &mut buf);
    let message = buf.split().freeze();
    group.bench_function("decode into EventBatch", |b| {
        b.iter(|| EventBatch::decode(black_box(message.clone())).expect("decodes"))
    });
    group.bench_function("decode into generated types", |b| {
        b.iter(|| pb::ReadResponse::decode(black_box(message.clone())).expect("decodes"))
    });
    group.finish();

    let append = pb::AppendRequest {
        stream: Some(pb::StreamId {
            key: Uuid::new_v4().to_string(),
            r#type: "sensor".into(),
        }),
        expected_version: Some(pb::ExpectedVersion {
            kind: Some(pb::expected_version::Kind::Exact(41)),
        }),
        events: events
            .iter()
            .map(|e| pb::EventData {
                id: uuid_text(e.id),
                r#type: String::from(&*e.event_type),
                data: e.data.clone(),
                metadata: e.metadata.clone(),
            })
            .collect(),
    };
    let append = Bytes::from(append.encode_to_vec());
    let mut group = c.benchmark_group("append of 1024");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("decode into IncomingAppend", |b| {
        b.iter(|| IncomingAppend::decode(black_box(append.clone())).expect("decodes"))
    });
    group.bench_function("decode into generated types", |b| {
        b.iter(|| pb::AppendRequest::decode(black_box(append.clone())).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);

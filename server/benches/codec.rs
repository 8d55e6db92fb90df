//! Micro-benchmarks of the record codec: encoding an append record (what the writer
//! does for every append) and decoding one with its checksums (what every cache miss
//! and recovery does), for batches of 1, 100 and 1,000 events of 100 bytes.
//!
//! `cargo bench -p evenire-server --bench codec`; `scripts/test-all` runs each once
//! (`cargo test --benches`) so that they keep compiling and working.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use evenire_server::store::record::{AppendHeader, decode_frame, encode_append};
use evenire_server::store::{EventData, StreamId};
use std::hint::black_box;
use std::sync::Arc;

fn events(count: usize) -> Vec<EventData> {
    let event_type: Arc<str> = Arc::from("TemperatureRecorded");
    (0..count)
        .map(|_| EventData {
            id: uuid::Uuid::new_v4(),
            event_type: event_type.clone(),
            data: Bytes::from(vec![b'x'; 100]),
            metadata: Bytes::new(),
        })
        .collect()
}

fn encode(stream: &StreamId, events: &[EventData]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = AppendHeader {
        first_position: 1_000_000,
        first_version: 41,
        created_micros: 1_764_000_000_000_000,
        stream,
    };
    encode_append(&mut out, header, events);
    out
}

fn codec(c: &mut Criterion) {
    let stream = StreamId {
        key: uuid::Uuid::new_v4(),
        stream_type: Arc::from("sensor"),
    };
    let mut group = c.benchmark_group("record");
    for count in [1, 100, 1000] {
        let events = events(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("encode", count), &events, |b, events| {
            b.iter(|| encode(black_box(&stream), black_box(events)))
        });
        let frame = Bytes::from(encode(&stream, &events));
        group.bench_with_input(BenchmarkId::new("decode", count), &frame, |b, frame| {
            b.iter(|| decode_frame(black_box(frame.clone())).expect("a frame we encoded"))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);

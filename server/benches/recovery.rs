//! Micro-benchmark of recovery: reading a log and rebuilding the index from it (every
//! checksum, every event id into the id map, every stream into the stream maps), on a
//! log of 100,000 events in 10,000 streams written once before the measurements. The
//! same work as a server's start, without the server.
//!
//! `cargo bench -p evenire-server --bench recovery`; `evenire-bench --only scale` measures
//! the whole server binary on 1M and 10M events.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evenire_server::store::fs::RealFs;
use evenire_server::store::repair::{Health, verify};
use evenire_server::store::{
    EventData, ExpectedVersion, FsyncPolicy, Store, StoreConfig, StreamId,
};
use std::sync::Arc;

const STREAMS: usize = 10_000;
const EVENTS_PER_STREAM: usize = 10;

/// Writes the log once, through the store, with fsync off.
fn write_log(dir: &std::path::Path) {
    let store = Store::open(StoreConfig {
        data_dir: dir.to_path_buf(),
        cache_bytes: 0,
        index_cache_bytes: None,
        index_entries_kept: None,
        fsync: FsyncPolicy::PowerLossUnsafe,
        segment_size: 64 << 20,
        max_pending_bytes: 64 << 20,
        fs: Arc::new(RealFs),
        snapshots_per_stream: 1,
        default_rules: Default::default(),
    })
    .expect("a store in a fresh directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let event_type: Arc<str> = Arc::from("TemperatureRecorded");
    runtime.block_on(async {
        for _ in 0..STREAMS {
            let stream = StreamId {
                key: uuid::Uuid::new_v4(),
                stream_type: Arc::from("sensor"),
            };
            let events = (0..EVENTS_PER_STREAM)
                .map(|_| EventData {
                    id: uuid::Uuid::new_v4(),
                    event_type: event_type.clone(),
                    data: Bytes::from(vec![b'x'; 100]),
                    metadata: Bytes::new(),
                })
                .collect();
            store
                .append(stream, ExpectedVersion::NoStream, events)
                .await
                .expect("an append to a new stream");
        }
        store.shutdown().await;
    });
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_log(dir.path());
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10);
    group.throughput(Throughput::Elements((STREAMS * EVENTS_PER_STREAM) as u64));
    group.bench_function("replay 100k events", |b| {
        b.iter(|| match verify(dir.path()).expect("a readable log") {
            Health::Sound { events, .. } => assert_eq!(events, 100_000),
            damaged => panic!("the log we wrote is damaged: {damaged:?}"),
        })
    });
    group.finish();
}

criterion_group!(benches, recovery);
criterion_main!(benches);

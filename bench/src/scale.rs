//! Scale: how long the server binary takes to start (recover) on a log of N events, and
//! how much memory it then holds. The log is written through the store library, with
//! fsync off, which is only a faster way to make the same files the server writes.

use crate::report::{Figure, Latencies, Progress};
use crate::server::BoxError;
use evenire_server::store::{EventData, ExpectedVersion, FsyncPolicy, Store, StreamId};
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What one scale point measured.
#[derive(Debug)]
pub struct ScalePoint {
    pub start: Figure,
    /// Resident memory right after the start.
    pub rss_mib: f64,
    /// After `$all` was read from the start, so that the cache is as full as it gets.
    pub rss_full_cache_mib: f64,
    pub index_bytes_per_event: f64,
}

/// The key of the `n`th stream [`fill`] writes: spread like random keys, and known
/// afterwards, so that a section can delete some of them.
pub fn stream_key(n: u64) -> uuid::Uuid {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    uuid::Uuid::from_u64_pair(mix(n), mix(n ^ 0x9e37_79b9_7f4a_7c15))
}

/// Writes `events` events in streams of `per_stream` into `dir`, the `n`th stream
/// keyed [`stream_key`]`(n)`, of type "sensor".
pub async fn fill(
    dir: &Path,
    events: u64,
    per_stream: u64,
    payload: usize,
) -> Result<(), BoxError> {
    fill_in_segments(dir, events, per_stream, payload, None).await
}

/// [`fill`], in segments of `segment_size` bytes (None: the server's default).
pub async fn fill_in_segments(
    dir: &Path,
    events: u64,
    per_stream: u64,
    payload: usize,
    segment_size: Option<u64>,
) -> Result<(), BoxError> {
    let mut config = evenire_server::Config::new(dir).store();
    if let Some(size) = segment_size {
        config.segment_size = size;
    }
    config.fsync = FsyncPolicy::PowerLossUnsafe;
    config.cache_bytes = 0;
    let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(config)).await??);
    let streams = events / per_stream;
    let next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&format!("writing {events} events in {streams} streams"));
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let event_type: Arc<str> = Arc::from("Reading");
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let (store, next, done) = (store.clone(), next.clone(), progress.counter());
        let (data, event_type) = (data.clone(), event_type.clone());
        tasks.push(tokio::spawn(async move {
            let stream_type: Arc<str> = Arc::from("sensor");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= streams {
                    break;
                }
                let stream = StreamId {
                    key: stream_key(n),
                    stream_type: stream_type.clone(),
                };
                let batch = (0..per_stream)
                    .map(|_| EventData {
                        id: uuid::Uuid::new_v4(),
                        event_type: event_type.clone(),
                        data: data.clone(),
                        metadata: bytes::Bytes::new(),
                    })
                    .collect();
                store
                    .append(stream, ExpectedVersion::NoStream, batch)
                    .await?;
                done.fetch_add(per_stream, Ordering::Relaxed);
            }
            Ok::<_, evenire_server::store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    store.shutdown().await;
    Ok(())
}

/// Starts the binary on `dir` (holding `events` events) and measures it against an
/// empty server's `baseline_mib`; then reads the whole log so that the cache fills, and
/// measures again.
pub async fn measure(
    binary: &Path,
    dir: &Path,
    events: u64,
    streams: u64,
    cache: &str,
    baseline_mib: f64,
) -> Result<ScalePoint, BoxError> {
    let server = tokio::task::block_in_place(|| {
        let server = ServerProcess::start(binary, dir, &["--cache-size", cache])?;
        // Let the allocator settle after recovery's peak.
        std::thread::sleep(Duration::from_millis(500));
        Ok::<_, BoxError>(server)
    })?;
    let rss_mib = server.rss_mib();
    let start_time = server.start_time;
    let client = evenire_client::Client::connect(server.uri()).await?;
    crate::reads::log_forward(&client, "reading the whole log to fill the cache").await?;
    let rss_full_cache_mib = server.rss_mib();
    server.kill();
    let mut latencies = Latencies::default();
    latencies.record(start_time);
    let start = Figure::new(
        format!("start (recover) {events} events"),
        "events/s",
        events,
        start_time,
        &latencies,
    )
    .conditions(format!(
        "{streams} streams; server binary from spawn to serving; RSS {rss_mib:.0} MiB after \
         start, {rss_full_cache_mib:.0} MiB after reading the whole log (cache {cache})"
    ));
    Ok(ScalePoint {
        start,
        rss_mib,
        rss_full_cache_mib,
        index_bytes_per_event: (rss_mib - baseline_mib).max(0.0) * 1024.0 * 1024.0 / events as f64,
    })
}

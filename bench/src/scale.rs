//! Scale: how long the server binary takes to start (recover) on a log of N events,
//! after a clean stop and after a kill -9, how much memory it then holds, and the append
//! and read lines at that size (to set beside the same lines at another size). The log is
//! written through the store library, with fsync off, which is only a faster way to make
//! the same files the server writes; it can be kept and reused (`--scale-dir`), because
//! every measurement runs on a work copy of it (`work_copy`).

use crate::appends::{self, AppendLoad};
use crate::report::{Figure, Latencies, Progress};
use crate::server::BoxError;
use evenire_client::Client;
use evenire_server::store::{EventData, ExpectedVersion, FsyncPolicy, Store, StreamId};
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What one scale point measured.
#[derive(Debug)]
pub struct ScalePoint {
    /// Start after a clean stop, and after a kill -9 under load.
    pub starts: [Figure; 2],
    /// Appends and reads at this size.
    pub loads: Vec<Figure>,
    /// Resident memory right after the clean start.
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

/// What a scale point runs and with what.
#[derive(Debug)]
pub struct Scenario<'a> {
    pub binary: &'a Path,
    /// `--cache-size`.
    pub cache: &'a str,
    /// An empty server's resident memory.
    pub baseline_mib: f64,
    /// How long each load runs.
    pub duration: Duration,
    /// Events in the stream read forward.
    pub stream_events: u64,
}

/// How long a server may take to stop cleanly: it finishes what is in flight.
const STOP_PATIENCE: Duration = Duration::from_secs(120);

/// Measures a log of `events` events in `streams` streams, kept at `base`, on a work
/// copy in `work`: starts it (the copy may come from a server that was killed), stops
/// it cleanly and times the next start; reads the whole log; kills it under a second
/// of appends and times the start after that; then runs the loads.
pub async fn measure(
    scenario: &Scenario<'_>,
    base: &Path,
    work: &Path,
    events: u64,
    streams: u64,
) -> Result<ScalePoint, BoxError> {
    tokio::task::block_in_place(|| work_copy(base, work))?;
    let start = |what: &str| {
        let args = ["--cache-size", scenario.cache];
        let server = tokio::task::block_in_place(|| {
            let server = ServerProcess::start(scenario.binary, work, &args)?;
            // Let the allocator settle after recovery's peak.
            std::thread::sleep(Duration::from_millis(500));
            Ok::<_, BoxError>(server)
        });
        server.map_err(|e| format!("starting the server on {events} events {what}: {e}"))
    };
    let first = start("(as left)")?;
    tokio::task::block_in_place(|| first.stop(STOP_PATIENCE))?;

    let server = start("after a clean stop")?;
    let clean_start = server.start_time;
    let rss_mib = server.rss_mib();
    let clients = connect(&server.uri(), 4).await?;
    crate::reads::log_forward(&clients[0], "reading the whole log to fill the cache").await?;
    let rss_full_cache_mib = server.rss_mib();

    // Killed while appends are in flight (a second of them): what a crash leaves to
    // the next start.
    let load = AppendLoad::single_events_64_clients(Duration::from_secs(3600));
    let appending = tokio::spawn({
        let clients = clients.clone();
        async move { appends::run(&clients, load).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.kill();
    // The appenders end with the connection's error: what they saw does not matter.
    let _ = appending.await;
    let server = start("after a kill -9")?;
    let killed_start = server.start_time;
    let clients = connect(&server.uri(), 4).await?;
    let loads = run_loads(scenario, &clients, streams, events).await?;
    server.kill();

    let start_figure = |how: &str, took: Duration, before: &str| {
        let mut latencies = Latencies::default();
        latencies.record(took);
        Figure::new(
            format!("start (recover) {events} events, {how}"),
            "events/s",
            events,
            took,
            &latencies,
        )
        .conditions(format!(
            "{streams} streams{before}; server binary from spawn to serving; RSS {rss_mib:.0} \
             MiB after a clean start, {rss_full_cache_mib:.0} MiB after reading the whole log \
             (cache {})",
            scenario.cache
        ))
    };
    Ok(ScalePoint {
        starts: [
            start_figure("after a clean stop", clean_start, ""),
            start_figure(
                "after a kill -9",
                killed_start,
                ", killed in its second of single-event appends",
            ),
        ],
        loads,
        rss_mib,
        rss_full_cache_mib,
        index_bytes_per_event: (rss_mib - scenario.baseline_mib).max(0.0) * 1024.0 * 1024.0
            / events as f64,
    })
}

async fn connect(uri: &str, connections: usize) -> Result<Vec<Client>, BoxError> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(Client::connect(uri.to_string()).await?);
    }
    Ok(clients)
}

/// The lines to set beside each other across sizes: single-event appends at 64
/// clients, one stream read forward, the last event of 1 of (up to) 100,000 of the
/// log's own streams, and batches of 1,000, each named with the log's size.
async fn run_loads(
    scenario: &Scenario<'_>,
    clients: &[Client],
    streams: u64,
    events: u64,
) -> Result<Vec<Figure>, BoxError> {
    let at = |figure: Figure| Figure {
        name: format!("at {events} events: {}", figure.name),
        ..figure
    };
    let mut figures = Vec::new();
    let single = AppendLoad::single_events_64_clients(scenario.duration);
    figures.push(at(appends::run(clients, single).await?));
    let stream = evenire_client::StreamId::new(uuid::Uuid::new_v4(), "bench-scale-read");
    appends::fill_stream(&clients[0], &stream, scenario.stream_events, 100).await?;
    let name = format!("read 1 stream forward ({} events)", scenario.stream_events);
    figures.push(at(crate::reads::stream_forward(
        &clients[0],
        &stream,
        &name,
    )
    .await?));
    let sensors: Vec<_> = (0..streams.min(100_000))
        .map(|n| evenire_client::StreamId::new(stream_key(n), "sensor"))
        .collect();
    let last = crate::reads::last_event_backward(clients, Arc::new(sensors), 64, scenario.duration);
    figures.push(at(last.await?));
    let batches = AppendLoad {
        batch: 1000,
        concurrency: 8,
        ..single
    };
    // Last: it adds the most to the log.
    figures.push(at(appends::run(clients, batches).await?));
    Ok(figures)
}

/// Makes `work` a copy of the log at `base` that a server may change: sealed segments
/// hard-linked where the file system allows (a server only ever writes or truncates
/// the last one, and no scavenge runs here), the last segment and every other file
/// copied.
fn work_copy(base: &Path, work: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(work)?;
    let mut segments = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(base)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("segment-") && name.ends_with(".log") {
            segments.push(entry.path());
        } else {
            others.push(entry.path());
        }
    }
    segments.sort();
    let last = segments.pop();
    for segment in &segments {
        let link = work.join(segment.file_name().unwrap_or_default());
        // Another file system: a copy, slower but the same.
        if std::fs::hard_link(segment, &link).is_err() {
            std::fs::copy(segment, &link)?;
        }
    }
    for file in last.iter().chain(&others) {
        std::fs::copy(file, work.join(file.file_name().unwrap_or_default()))?;
    }
    Ok(())
}

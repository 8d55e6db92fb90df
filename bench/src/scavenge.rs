//! What a scavenge frees and what it costs the writers (issue 22's target: append p99
//! during a scavenge at most twice its p99 without one, in the same run). The log is
//! written through the store library ([`scale::fill`], streams of 10 events) and every
//! other stream deleted, softly; then the server binary serves it, 64 clients append
//! single events alone, then again while a scavenge runs at full speed, and the disk,
//! the index's memory (its `/metrics` gauge) and the scavenge's rate are taken before
//! and after.

use crate::appends::{self, AppendLoad};
use crate::report::{Figure, Latencies, Progress};
use crate::scale;
use crate::server::BoxError;
use evenire_client::Client;
use evenire_server::store::{
    DeleteMode, ExpectedVersion, FsyncPolicy, Store, StoreError, StreamId,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Streams of this many events.
pub const PER_STREAM: u64 = 10;

/// The segment size for a log of `events`: the server's default of 64 MiB, or less for
/// a small log, so that it is some 30 segments and a scavenge has sealed ones to take.
pub fn segment_size(events: u64) -> u64 {
    (events * 170 / 30).clamp(1 << 20, 64 << 20)
}

/// Writes `events` events into `dir` and deletes every other stream.
pub async fn prepare(dir: &Path, events: u64) -> Result<(), BoxError> {
    scale::fill_in_segments(dir, events, PER_STREAM, 100, Some(segment_size(events))).await?;
    let mut config = evenire_server::Config::new(dir).store();
    config.fsync = FsyncPolicy::PowerLossUnsafe;
    config.cache_bytes = 0;
    let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(config)).await??);
    let streams = events / PER_STREAM;
    let next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&format!("deleting {} of {streams} streams", streams / 2));
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let (store, next, done) = (store.clone(), next.clone(), progress.counter());
        tasks.push(tokio::spawn(async move {
            let stream_type: Arc<str> = Arc::from("sensor");
            loop {
                let n = 2 * next.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= streams {
                    return Ok::<_, StoreError>(());
                }
                let stream = StreamId {
                    key: scale::stream_key(n),
                    stream_type: stream_type.clone(),
                };
                store
                    .delete_stream(stream, ExpectedVersion::Any, DeleteMode::Soft)
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    store.shutdown().await;
    Ok(())
}

/// What a scavenge measured.
pub struct Measured {
    /// Appends alone, appends during the scavenge, and the scavenge itself.
    pub figures: [Figure; 3],
}

/// The disk and index figures a scavenge's line quotes, taken before and after it.
pub struct Sizes {
    pub disk_bytes: u64,
    pub index_bytes: u64,
}

/// Appends alone, then during a scavenge; `sizes` takes the disk and index figures.
pub async fn measure<F, Fut>(
    clients: &[Client],
    duration: Duration,
    events: u64,
    rate_limit: Option<u64>,
    sizes: F,
) -> Result<Measured, BoxError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Sizes, BoxError>>,
{
    let load = AppendLoad::single_events_64_clients(duration);
    let mut alone = appends::run(clients, load).await?;
    alone.name = format!("{}, no scavenge", alone.name);

    let before = sizes().await?;
    let started = Instant::now();
    let scavenge = tokio::spawn({
        let client = clients[0].clone();
        async move {
            let report = client.scavenge_to_end(false, rate_limit).await;
            (report, started.elapsed())
        }
    });
    let mut during = appends::run(clients, load).await?;
    let appending = started.elapsed();
    let (report, took) = scavenge.await?;
    let report = report?;
    let after = sizes().await?;

    let p99 = |figure: &Figure| figure.latency.as_ref().map_or(0.0, |l| l.p99_ms);
    let ratio = p99(&during) / p99(&alone).max(1e-9);
    let overlap = took.min(appending).as_secs_f64() / appending.as_secs_f64().max(1e-9);
    during.name = format!("{}, during a scavenge", during.name);
    during.conditions = format!(
        "{}; the scavenge ran through {:.0} % of it; p99 {ratio:.2}x the line above (target 2)",
        during.conditions,
        overlap * 100.0
    );
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let scavenged = Figure::new(
        format!("scavenge {events} events, half the streams deleted"),
        "MiB/s",
        report.bytes_read >> 20,
        took,
        &Latencies::default(),
    )
    .conditions(format!(
        "{:.1} s, {} of {} segments rewritten, {}, beside 64 appending clients; {} events \
         reclaimed; disk {:.0} -> {:.0} MiB, index {:.0} -> {:.0} MiB (the appends meanwhile \
         included)",
        took.as_secs_f64(),
        report.segments_rewritten,
        report.segments_total,
        rate_limit.map_or("at the server's --scavenge-rate-limit".to_string(), |r| {
            format!("paced at {} MiB/s by the call", r >> 20)
        }),
        report.events_reclaimed,
        mib(before.disk_bytes),
        mib(after.disk_bytes),
        mib(before.index_bytes),
        mib(after.index_bytes)
    ));
    Ok(Measured {
        figures: [alone, during, scavenged],
    })
}

/// The index's memory as the server's `/metrics` at `addr` gives it.
pub async fn index_bytes(addr: &str) -> Result<u64, BoxError> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    response
        .lines()
        .find_map(|line| line.strip_prefix("evenire_index_bytes "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .ok_or_else(|| "no evenire_index_bytes in the server's /metrics".into())
}

//! The machine's own limits, measured in the same run as the figures compared with
//! them: how fast the data directory's disk makes a small write durable, how many bytes
//! a second it makes durable and reads back, and how many empty gRPC calls a second the
//! same server answers at a given concurrency.

use crate::report::{Figure, Latencies, Progress};
use crate::server::BoxError;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Appends of `size` bytes to a fresh file in `dir`, each followed by `fdatasync`, for
/// `duration`: the rate and latency of a durable write, what every durable append pays.
pub fn fdatasync(dir: &Path, size: usize, duration: Duration) -> Result<Figure, BoxError> {
    let path = dir.join(format!("ceiling-{size}.tmp"));
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x5a_u8; size];
    let mut latencies = Latencies::default();
    let (started, mut count) = (Instant::now(), 0_u64);
    while started.elapsed() < duration {
        let sent = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.record(sent.elapsed());
        count += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    let (name, unit) = if size >= 1 << 20 {
        (
            format!("ceiling: write {} MiB + fdatasync", size >> 20),
            "MiB/s",
        )
    } else {
        (
            format!("ceiling: append {} KiB + fdatasync", size >> 10),
            "fsyncs/s",
        )
    };
    let count = if size >= 1 << 20 {
        count * (size as u64 >> 20)
    } else {
        count
    };
    Ok(Figure::new(name, unit, count, elapsed, &latencies).conditions("in the data directory"))
}

/// Reads `files` front to back in 1 MiB reads: bytes per second the disk (or the OS
/// page cache) hands over, the most any read of them could do.
pub fn read_files(files: &[std::path::PathBuf]) -> Result<(u64, Duration), BoxError> {
    let mut buffer = vec![0_u8; 1 << 20];
    let (started, mut bytes) = (Instant::now(), 0_u64);
    for path in files {
        let mut file = std::fs::File::open(path)?;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    Ok((bytes, started.elapsed()))
}

/// Asks the kernel to drop the page cache, so the next read comes from the disk.
/// Needs root; returns why not when it cannot.
pub fn drop_os_cache() -> Result<(), String> {
    // Write back dirty pages first: only clean pages are dropped.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| format!("cannot drop the OS page cache ({e}); cold reads come from it"))
}

/// Empty unary gRPC calls (a health check, answered by the same server and transport as
/// every other call) from `concurrency` tasks over `connections` connections, for
/// `duration`.
pub async fn empty_rpc(
    uri: &str,
    connections: usize,
    concurrency: usize,
    duration: Duration,
) -> Result<Figure, BoxError> {
    let mut channels = Vec::new();
    for _ in 0..connections.clamp(1, concurrency.max(1)) {
        let channel = tonic::transport::Endpoint::from_shared(uri.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(HealthClient::new(channel));
    }
    let progress = Progress::start(&format!("empty RPC, {concurrency} clients"));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let mut health = channels[task % channels.len()].clone();
        let done = progress.counter();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                health.check(HealthCheckRequest::default()).await?;
                latencies.record(sent.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.merge(&task.await??);
    }
    let count = progress.counter().load(Ordering::Relaxed);
    Ok(Figure::new(
        format!("ceiling: empty RPC, {concurrency} clients"),
        "calls/s",
        count,
        started.elapsed(),
        &latencies,
    )
    .conditions(format!(
        "{concurrency} clients over {} connections",
        channels.len()
    )))
}

//! Append load: `concurrency` tasks, each appending to its own stream in requests of
//! `batch` events for a fixed time; half of them with exact expected versions.

use crate::report::{Figure, Latencies, Progress};
use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One append run's shape.
#[derive(Debug, Clone, Copy)]
pub struct AppendLoad {
    pub batch: usize,
    pub payload: usize,
    pub concurrency: usize,
    pub duration: Duration,
    /// Every writer on the first connection, as the Rust client and most gRPC clients
    /// are used (one channel per process), rather than spread over all of them.
    pub one_connection: bool,
}

impl AppendLoad {
    /// Single events of 100 B from 64 clients over all the connections: the load the
    /// sections that compare a server with itself (TLS, backups) measure.
    pub fn single_events_64_clients(duration: Duration) -> AppendLoad {
        AppendLoad {
            batch: 1,
            payload: 100,
            concurrency: 64,
            duration,
            one_connection: false,
        }
    }

    pub fn name(&self) -> String {
        let size = if self.payload >= 1024 && self.payload.is_multiple_of(1024) {
            format!("{} KiB", self.payload / 1024)
        } else {
            format!("{} B", self.payload)
        };
        match (self.batch, self.concurrency) {
            (1, c) if self.one_connection => {
                format!("append 1 event of {size}, {c} writers on one connection")
            }
            (1, 1) => format!("append 1 event of {size}, 1 client"),
            (1, c) => format!("append 1 event of {size}, {c} clients"),
            (b, c) => format!("append batches of {b} x {size}, {c} clients"),
        }
    }
}

/// Runs `load` over `clients` (task i uses connection i mod n).
pub async fn run(clients: &[Client], load: AppendLoad) -> Result<Figure, evenire_client::Error> {
    let connections = match load.one_connection {
        true => 1,
        false => clients.len().min(load.concurrency).max(1),
    };
    let payload = bytes_of(load.payload);
    let progress = Progress::start(&load.name());
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = Vec::new();
    for task in 0..load.concurrency {
        let client = clients[task % connections].clone();
        let payload = payload.clone();
        let done = progress.counter();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(uuid::Uuid::new_v4(), "bench");
            let mut latencies = Latencies::default();
            let mut version: Option<u64> = None;
            while Instant::now() < deadline {
                let events: Vec<_> = (0..load.batch)
                    .map(|_| EventData::new("Benchmarked", payload.clone()))
                    .collect();
                let expected = match (task % 2, version) {
                    (0, None) => ExpectedVersion::NoStream,
                    (0, Some(v)) => ExpectedVersion::Exact(v),
                    _ => ExpectedVersion::Any,
                };
                let sent = Instant::now();
                let result = client.append(&stream, expected, events).await?;
                latencies.record(sent.elapsed());
                version = Some(result.version);
                done.fetch_add(load.batch as u64, Ordering::Relaxed);
            }
            Ok::<_, evenire_client::Error>(latencies)
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.merge(&join(task).await?);
    }
    let events = progress.counter().load(Ordering::Relaxed);
    Ok(Figure::new(
        load.name(),
        "events/s",
        events,
        started.elapsed(),
        &latencies,
    )
    .conditions(format!(
        "{} events/request, {} B, {} clients over {connections} connections",
        load.batch, load.payload, load.concurrency
    )))
}

/// A task's result; a panic in it goes on in the caller.
pub async fn join<T>(
    task: tokio::task::JoinHandle<Result<T, evenire_client::Error>>,
) -> Result<T, evenire_client::Error> {
    match task.await {
        Ok(result) => result,
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    }
}

/// A payload of `size` bytes, shared by every event that carries it.
pub fn bytes_of(size: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; size])
}

/// Appends `events` events to `stream` in batches of up to 1,000, as fast as it goes.
pub async fn fill_stream(
    client: &Client,
    stream: &StreamId,
    events: u64,
    payload: usize,
) -> Result<(), evenire_client::Error> {
    let payload = bytes_of(payload);
    let progress = Progress::start(&format!("writing {events} events to one stream"));
    let mut written = 0;
    while written < events {
        let n = 1000.min(events - written);
        let batch: Vec<_> = (0..n)
            .map(|_| EventData::new("Benchmarked", payload.clone()))
            .collect();
        client.append(stream, ExpectedVersion::Any, batch).await?;
        written += n;
        progress.counter().store(written, Ordering::Relaxed);
    }
    Ok(())
}

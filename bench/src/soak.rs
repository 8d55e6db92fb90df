//! Soak: minutes of mixed load against the real server binary, with its resident
//! memory sampled every second, to see it level off under the cache plus a bounded
//! overhead. `evenire-bench --soak-seconds 300`.

use crate::server::BoxError;
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions,
};
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// Runs the soak and prints the samples and a verdict.
pub async fn run(binary: &Path, seconds: u64, cache: &str, payload: usize) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(binary, dir.path(), &["--cache-size", cache])?;
    let uri = server.uri();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let appended = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let client = Client::connect(uri.clone()).await?;
    let streams: Vec<StreamId> = (0..32)
        .map(|_| StreamId::new(uuid::Uuid::new_v4(), "soak"))
        .collect();
    let mut tasks = Vec::new();

    for (i, stream) in streams.iter().cloned().enumerate() {
        let (client, appended) = (client.clone(), appended.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let count = if i % 4 == 0 { 10 } else { 1 };
                let events = (0..count).map(|_| EventData::new("Soaked", vec![b's'; payload]));
                if client
                    .append(&stream, ExpectedVersion::Any, events)
                    .await
                    .is_ok()
                {
                    appended.fetch_add(count, Ordering::Relaxed);
                }
            }
        }));
    }
    for i in 0..4 {
        let (client, streams) = (client.clone(), streams.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                let stream = &streams[n % streams.len()];
                if let Ok(mut read) = client
                    .read(stream, ReadFrom::Start, Direction::Forward, None)
                    .await
                {
                    while let Some(Ok(_)) = read.next().await {}
                }
                if let Ok(mut read) = client
                    .read_all(ReadAllFrom::End, Direction::Backward, Some(1000))
                    .await
                {
                    while let Some(Ok(_)) = read.next().await {}
                }
            }
        }));
    }
    for _ in 0..8 {
        let (client, delivered) = (client.clone(), delivered.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut subscription) = client
                .subscribe_all(SubscribeFrom::End, SubscribeOptions::default())
                .await
            else {
                return;
            };
            while Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
                    Ok(Some(Ok(_))) => {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => return,
                    Err(_) => {}
                }
            }
        }));
    }
    // Connection churn: a client that connects, appends once and goes, every 50 ms.
    let churn_uri = uri.clone();
    tasks.push(tokio::spawn(async move {
        while Instant::now() < deadline {
            if let Ok(client) = Client::connect(churn_uri.clone()).await {
                let stream = StreamId::new(uuid::Uuid::new_v4(), "churn");
                let _ = client
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        [EventData::new("Hello", "{}")],
                    )
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));

    println!(
        "soak: {seconds} s against {} (cache {cache}, payload {payload} B): 32 appenders, 4 readers, 8 subscribers, connection churn every 50 ms",
        binary.display()
    );
    println!(
        "{:>6} {:>10} {:>14} {:>16}",
        "t (s)", "RSS MiB", "appended", "delivered"
    );
    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = server.rss_mib();
        samples.push((rss, appended.load(Ordering::Relaxed)));
        println!(
            "{:>6} {:>10.1} {:>14} {:>16}",
            started.elapsed().as_secs(),
            rss,
            appended.load(Ordering::Relaxed),
            delivered.load(Ordering::Relaxed)
        );
    }
    for task in tasks {
        let _ = task.await;
    }
    verdict(&samples);
    server.kill();
    Ok(())
}

/// What the index may add per event in the soak's appends (one record per one or ten
/// events): docs/storage.md, "The index". The only memory that must grow with the log.
const INDEX_BYTES_PER_EVENT: f64 = 128.0;

/// Compares the peak RSS of the last third of the samples with the middle third's,
/// allowing for the index of the events appended in between: anything more is memory
/// that does not level off.
fn verdict(samples: &[(f64, u64)]) {
    let third = samples.len() / 3;
    if third == 0 {
        println!("too short a soak for a verdict");
        return;
    }
    let peak = |s: &[(f64, u64)]| s.iter().map(|(rss, _)| *rss).fold(0.0, f64::max);
    let (middle, last) = (&samples[third..2 * third], &samples[2 * third..]);
    let appended_since = last.last().map_or(0, |s| s.1) - middle.last().map_or(0, |s| s.1);
    let index_mib = appended_since as f64 * INDEX_BYTES_PER_EVENT / (1024.0 * 1024.0);
    let allowed = peak(middle) * 1.05 + index_mib;
    println!(
        "peak RSS: {:.1} MiB overall, {:.1} MiB in the middle third, {:.1} MiB in the last third; \
         {appended_since} events appended in between may add {index_mib:.1} MiB of index \
         ({INDEX_BYTES_PER_EVENT} B each): {}",
        peak(samples),
        peak(middle),
        peak(last),
        if peak(last) <= allowed {
            "levelled off"
        } else {
            "still growing beyond the index"
        }
    );
}

//! The soak's normal clients, from 127.0.0.1: 32 appenders over one shared connection
//! (a quarter appending ten events at a time), 4 readers of whole streams and of the
//! end of `$all`, 8 live subscribers, and a client that connects, appends once and goes,
//! every 50 ms. Every failure of theirs is counted as an error of the phase it falls in.

use super::Shared;
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Append latencies (µs) and counts, by phase: alone, then beside the hostile clients.
#[derive(Debug, Default)]
pub struct Latencies {
    pub by_phase: [Vec<u32>; 2],
    pub appends: [u64; 2],
}

/// The running normal clients.
#[derive(Debug)]
pub struct Normal {
    appenders: Vec<JoinHandle<Latencies>>,
    others: Vec<JoinHandle<()>>,
}

impl Normal {
    /// Waits for every client to reach the deadline, and merges the appenders' figures.
    pub async fn join(self) -> Latencies {
        let mut all = Latencies::default();
        for appender in self.appenders {
            if let Ok(latencies) = appender.await {
                for phase in 0..2 {
                    all.by_phase[phase].extend(&latencies.by_phase[phase]);
                    all.appends[phase] += latencies.appends[phase];
                }
            }
        }
        for other in self.others {
            let _ = other.await;
        }
        all
    }
}

pub async fn start(
    uri: &str,
    payload: usize,
    deadline: Instant,
    shared: Arc<Shared>,
) -> Result<Normal, String> {
    let client = Client::connect(uri.to_string())
        .await
        .map_err(|e| format!("connecting to {uri}: {e}"))?;
    let streams: Vec<StreamId> = (0..32)
        .map(|_| StreamId::new(uuid::Uuid::new_v4(), "soak"))
        .collect();
    let mut appenders = Vec::new();
    for (i, stream) in streams.iter().cloned().enumerate() {
        let (client, shared) = (client.clone(), shared.clone());
        appenders.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            while Instant::now() < deadline {
                let count = if i % 4 == 0 { 10 } else { 1 };
                let events = (0..count).map(|_| EventData::new("Soaked", vec![b's'; payload]));
                let sent = Instant::now();
                let appended = client.append(&stream, ExpectedVersion::Any, events).await;
                let phase = shared.phase();
                match appended {
                    Ok(_) => {
                        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                        latencies.by_phase[phase].push(us);
                        latencies.appends[phase] += 1;
                        shared.appended.fetch_add(count, Ordering::Relaxed);
                    }
                    Err(_) => shared.error(),
                }
            }
            latencies
        }));
    }
    let mut others = Vec::new();
    for i in 0..4 {
        let (client, streams, shared) = (client.clone(), streams.clone(), shared.clone());
        others.push(tokio::spawn(async move {
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                let stream = &streams[n % streams.len()];
                match client
                    .read(stream, ReadFrom::Start, Direction::Forward, None)
                    .await
                {
                    Ok(read) => read_to_end(read, &shared).await,
                    // Not written yet, in the first moments.
                    Err(evenire_client::Error::NotFound(_)) => {}
                    Err(_) => shared.error(),
                }
                match client
                    .read_all(ReadAllFrom::End, Direction::Backward, Some(1000))
                    .await
                {
                    Ok(read) => read_to_end(read, &shared).await,
                    Err(_) => shared.error(),
                }
            }
        }));
    }
    for _ in 0..8 {
        let (client, shared) = (client.clone(), shared.clone());
        others.push(tokio::spawn(async move {
            let Ok(mut subscription) = client
                .subscribe_all(SubscribeFrom::End, SubscribeOptions::default())
                .await
            else {
                shared.error();
                return;
            };
            while Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
                    Ok(Some(Ok(_))) => {
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        shared.error();
                        return;
                    }
                    Err(_) => {}
                }
            }
        }));
    }
    // Connection churn: a client that connects, appends once and goes, every 50 ms.
    let (churn_uri, churn_shared) = (uri.to_string(), shared.clone());
    others.push(tokio::spawn(async move {
        while Instant::now() < deadline {
            let appended = match Client::connect(churn_uri.clone()).await {
                Ok(client) => client
                    .append(
                        &StreamId::new(uuid::Uuid::new_v4(), "churn"),
                        ExpectedVersion::Any,
                        [EventData::new("Hello", "{}")],
                    )
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if !appended {
                churn_shared.error();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));
    Ok(Normal { appenders, others })
}

async fn read_to_end(mut read: evenire_client::EventStream, shared: &Shared) {
    while let Some(event) = read.next().await {
        if event.is_err() {
            shared.error();
            return;
        }
    }
}

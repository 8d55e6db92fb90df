//! Read load: one stream read forward whole, `$all` from the start, the last event of
//! many streams read backward, and live subscribers following appends.

use crate::appends::{AppendLoad, bytes_of, join};
use crate::report::{Figure, Latencies, Progress};
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions, SubscriptionMessage,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

type Result<T> = std::result::Result<T, evenire_client::Error>;

/// Reads `stream` forward from its start to its end.
pub async fn stream_forward(client: &Client, stream: &StreamId, name: &str) -> Result<Figure> {
    let progress = Progress::start(name);
    let started = Instant::now();
    let events = client
        .read(stream, ReadFrom::Start, Direction::Forward, None)
        .await?;
    drain(events, &progress).await?;
    Ok(whole_read(name, &progress, started))
}

/// Reads the whole log forward.
pub async fn log_forward(client: &Client, name: &str) -> Result<Figure> {
    let progress = Progress::start(name);
    let started = Instant::now();
    let events = client
        .read_all(ReadAllFrom::Start, Direction::Forward, None)
        .await?;
    drain(events, &progress).await?;
    Ok(whole_read(name, &progress, started))
}

async fn drain(mut events: evenire_client::EventStream, progress: &Progress) -> Result<()> {
    let done = progress.counter();
    while let Some(event) = events.next().await {
        event?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// A figure for one read of many events: its latency is the whole read's.
fn whole_read(name: &str, progress: &Progress, started: Instant) -> Figure {
    let mut latencies = Latencies::default();
    latencies.record(started.elapsed());
    let events = progress.counter().load(Ordering::Relaxed);
    Figure::new(name, "events/s", events, started.elapsed(), &latencies)
        .conditions(format!("{events} events in one read"))
}

/// Makes `count` streams of `events_each` events (one append each), `concurrency` at a
/// time.
pub async fn fill_streams(
    clients: &[Client],
    count: usize,
    events_each: usize,
    payload: usize,
) -> Result<Arc<Vec<StreamId>>> {
    let streams: Arc<Vec<StreamId>> = Arc::new(
        (0..count)
            .map(|_| StreamId::new(uuid::Uuid::new_v4(), "sensor"))
            .collect(),
    );
    let progress = Progress::start(&format!("writing {count} streams"));
    let next = Arc::new(AtomicUsize::new(0));
    let payload = bytes_of(payload);
    let mut tasks = Vec::new();
    for task in 0..64 {
        let (client, streams, next) = (
            clients[task % clients.len()].clone(),
            streams.clone(),
            next.clone(),
        );
        let (payload, done) = (payload.clone(), progress.counter());
        tasks.push(tokio::spawn(async move {
            while let Some(stream) = streams.get(next.fetch_add(1, Ordering::Relaxed)) {
                let events = (0..events_each).map(|_| EventData::new("Reading", payload.clone()));
                client
                    .append(stream, ExpectedVersion::NoStream, events)
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, evenire_client::Error>(())
        }));
    }
    for task in tasks {
        join(task).await?;
    }
    Ok(streams)
}

/// The latest event of a stream picked at random from `streams`, read backward, from
/// `concurrency` tasks for `duration`: a sensor dashboard's query.
pub async fn last_event_backward(
    clients: &[Client],
    streams: Arc<Vec<StreamId>>,
    concurrency: usize,
    duration: Duration,
) -> Result<Figure> {
    let name = format!("read last event of 1 of {} streams", streams.len());
    let progress = Progress::start(&name);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (client, streams, done) = (
            clients[task % clients.len()].clone(),
            streams.clone(),
            progress.counter(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            // A cheap, well-spread sequence of stream indices per task.
            let mut pick = (task as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            while Instant::now() < deadline {
                pick = pick.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let stream = &streams[(pick >> 33) as usize % streams.len()];
                let sent = Instant::now();
                let mut events = client
                    .read(stream, ReadFrom::End, Direction::Backward, Some(1))
                    .await?;
                let mut got = 0;
                while let Some(event) = events.next().await {
                    event?;
                    got += 1;
                }
                latencies.record(sent.elapsed());
                assert_eq!(got, 1, "a backward read of limit 1 of a written stream");
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, evenire_client::Error>(latencies)
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.merge(&join(task).await?);
    }
    let reads = progress.counter().load(Ordering::Relaxed);
    Ok(
        Figure::new(name, "reads/s", reads, started.elapsed(), &latencies).conditions(format!(
            "Read backward, limit 1, {concurrency} clients over {} connections",
            clients.len().min(concurrency)
        )),
    )
}

/// `subscribers` live subscriptions to `$all` while `writers` append `events_each`
/// batches of 10: events delivered per second, summed over subscribers; each
/// subscriber's latency is its time to receive them all.
pub async fn fan_out(
    clients: &[Client],
    subscribers: usize,
    duration: Duration,
    payload: usize,
) -> Result<(Figure, Figure)> {
    let mut followers = Vec::new();
    for i in 0..subscribers {
        let mut subscription = clients[i % clients.len()]
            .subscribe_all(SubscribeFrom::End, SubscribeOptions::default())
            .await?;
        while !matches!(
            subscription.next().await,
            Some(Ok(SubscriptionMessage::CaughtUp { .. }))
        ) {}
        followers.push(subscription);
    }
    let (total_tx, total_rx) = tokio::sync::watch::channel(u64::MAX);
    let started = Instant::now();
    let receivers: Vec<_> = followers
        .into_iter()
        .map(|mut subscription| {
            let mut total = total_rx.clone();
            tokio::spawn(async move {
                let mut seen = 0;
                loop {
                    if seen >= *total.borrow_and_update() {
                        return Ok(started.elapsed());
                    }
                    tokio::select! {
                        message = subscription.next() => match message {
                            Some(Ok(SubscriptionMessage::Event(_))) => seen += 1,
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Err(e),
                            None => return Ok(started.elapsed()),
                        },
                        _ = total.changed() => {}
                    }
                }
            })
        })
        .collect();
    let load = AppendLoad {
        batch: 10,
        payload,
        concurrency: 16,
        duration,
        one_connection: false,
    };
    let appended = crate::appends::run(clients, load).await?;
    let _ = total_tx.send(appended.count);
    let mut latencies = Latencies::default();
    for receiver in receivers {
        latencies.record(join(receiver).await?);
    }
    let delivered = appended.count * subscribers as u64;
    let name = format!("live delivery to {subscribers} subscribers");
    let figure = Figure::new(
        name,
        "events/s",
        delivered,
        started.elapsed(),
        &latencies,
    )
    .conditions(format!(
        "$all from its end; 16 writers, batches of 10 x {payload} B; latency = time to receive all"
    ))
    .against(
        format!("appended events/s x {subscribers}"),
        appended.rate * subscribers as f64,
    );
    Ok((figure, appended))
}

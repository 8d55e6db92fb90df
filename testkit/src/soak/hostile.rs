//! The soak's hostile clients, all from 127.0.0.2 so that the server's per-address
//! limits see them as one client: an idle connection flood, a read hog and a
//! subscription hog that open calls and read none, slow readers, and clients that
//! vanish in the middle of a read.

use crate::net::{channel_from, connect_from};
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Where the hostile clients connect from.
pub const HOSTILE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Idle connections the flood keeps trying to hold.
const FLOOD: usize = 300;

/// What the hostile clients did, for the report.
#[derive(Debug, Clone, Default)]
pub struct HostileCounts {
    /// TCP connections opened by the flood and never used.
    pub idle_connections: u64,
    /// Reads and subscriptions held open unread at the peak.
    pub calls_held: u64,
    /// Calls the server refused with RESOURCE_EXHAUSTED.
    pub calls_refused: u64,
    /// Reads abandoned after one event, with their connection.
    pub vanished: u64,
    /// Events the slow readers took.
    pub slow_reads: u64,
}

#[derive(Debug, Default)]
struct Counters {
    idle_connections: AtomicU64,
    calls_held: AtomicU64,
    calls_refused: AtomicU64,
    vanished: AtomicU64,
    slow_reads: AtomicU64,
}

/// The running hostile clients.
#[derive(Debug)]
pub struct Hostile {
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Hostile {
    pub async fn join(self) -> HostileCounts {
        for task in self.tasks {
            let _ = task.await;
        }
        let c = &self.counters;
        HostileCounts {
            idle_connections: c.idle_connections.load(Ordering::Relaxed),
            calls_held: c.calls_held.load(Ordering::Relaxed),
            calls_refused: c.calls_refused.load(Ordering::Relaxed),
            vanished: c.vanished.load(Ordering::Relaxed),
            slow_reads: c.slow_reads.load(Ordering::Relaxed),
        }
    }
}

/// Starts them against `addr` (host:port) until `deadline`, after writing a stream of
/// 4 MiB for them to read: long enough that an unread read never finishes.
pub async fn start(addr: &str, deadline: Instant) -> Result<Hostile, String> {
    let server: SocketAddr = addr
        .parse()
        .map_err(|e| format!("`{addr}` is not an address: {e}"))?;
    let client = Client::from_channel(channel_from(HOSTILE, addr).await?);
    let bulk = StreamId::new(uuid::Uuid::new_v4(), "hostile-bulk");
    for _ in 0..4 {
        let events = (0..1024).map(|_| EventData::new("Bulk", vec![b'b'; 1024]));
        client
            .append(&bulk, ExpectedVersion::Any, events)
            .await
            .map_err(|e| format!("writing the hostile clients' stream: {e}"))?;
    }
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();

    // Idle connections: a new flood every 2 s; the server closes what is over its
    // per-address limit at once and the rest after its handshake timeout.
    let flood = counters.clone();
    tasks.push(tokio::spawn(async move {
        while Instant::now() < deadline {
            let mut held = Vec::with_capacity(FLOOD);
            for _ in 0..FLOOD {
                if let Ok(connection) = connect_from(HOSTILE, server).await {
                    held.push(connection);
                }
            }
            flood
                .idle_connections
                .fetch_add(held.len() as u64, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }));

    // A read hog and a subscription hog: calls opened in waves until refused, never
    // read, held to the end. Waves, not one call at a time, so that the per-address
    // limit is met early in the soak however slow the machine.
    for subscribe in [false, true] {
        let (counters, bulk) = (counters.clone(), bulk.clone());
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let Ok(channel) = channel_from(HOSTILE, &addr).await else {
                return;
            };
            let hog = Client::from_channel(channel);
            let mut reads = Vec::new();
            let mut subscriptions = Vec::new();
            while Instant::now() < deadline {
                let opened = match subscribe {
                    false => {
                        let wave = in_wave(|| {
                            let (hog, bulk) = (hog.clone(), bulk.clone());
                            async move {
                                hog.read(&bulk, ReadFrom::Start, Direction::Forward, None)
                                    .await
                            }
                        });
                        held(wave.await, &mut reads)
                    }
                    true => {
                        let wave = in_wave(|| {
                            let hog = hog.clone();
                            async move {
                                hog.subscribe_all(SubscribeFrom::Start, SubscribeOptions::default())
                                    .await
                            }
                        });
                        held(wave.await, &mut subscriptions)
                    }
                };
                counters
                    .calls_held
                    .fetch_add(opened.held, Ordering::Relaxed);
                counters
                    .calls_refused
                    .fetch_add(opened.refused, Ordering::Relaxed);
                if opened.refused > 0 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }

    // Slow readers: the whole log, one event every 100 ms.
    for _ in 0..4 {
        let (counters, client) = (counters.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut read) = client
                .read_all(evenire_client::ReadAllFrom::Start, Direction::Forward, None)
                .await
            else {
                return;
            };
            while Instant::now() < deadline {
                let next = tokio::time::timeout(Duration::from_secs(1), read.next()).await;
                if !matches!(next, Ok(Some(Ok(_)))) {
                    return;
                }
                counters.slow_reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    // Clients that vanish: a new connection, a read of the bulk stream, one event, gone.
    let (vanishing, addr) = (counters.clone(), addr.to_string());
    tasks.push(tokio::spawn(async move {
        while Instant::now() < deadline {
            if let Ok(channel) = channel_from(HOSTILE, &addr).await {
                let client = Client::from_channel(channel);
                if let Ok(mut read) =
                    bounded(client.read(&bulk, ReadFrom::Start, Direction::Forward, None)).await
                {
                    let _ = tokio::time::timeout(Duration::from_secs(1), read.next()).await;
                    vanishing.vanished.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }));
    Ok(Hostile { tasks, counters })
}

/// A call that gives up after a second: past the server's streams per connection, a
/// new call waits for one of the held ones to end, which they never do.
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, evenire_client::Error>>,
) -> Result<T, ()> {
    match tokio::time::timeout(Duration::from_secs(1), call).await {
        Ok(Ok(done)) => Ok(done),
        _ => Err(()),
    }
}

/// Calls a hog opens at once.
const WAVE: usize = 32;

/// Opens [`WAVE`] calls made by `call` at once, each [`bounded`].
async fn in_wave<T, F>(call: impl Fn() -> F) -> Vec<Result<T, ()>>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, evenire_client::Error>> + Send + 'static,
{
    let mut wave = tokio::task::JoinSet::new();
    for _ in 0..WAVE {
        wave.spawn(bounded(call()));
    }
    let mut opened = Vec::with_capacity(WAVE);
    while let Some(call) = wave.join_next().await {
        opened.push(call.unwrap_or(Err(())));
    }
    opened
}

/// How many of a wave's calls were opened and how many refused.
struct WaveCounts {
    held: u64,
    refused: u64,
}

/// Keeps a wave's opened calls in `held_calls`, and counts them.
fn held<T>(wave: Vec<Result<T, ()>>, held_calls: &mut Vec<T>) -> WaveCounts {
    let mut counts = WaveCounts {
        held: 0,
        refused: 0,
    };
    for call in wave {
        match call {
            Ok(call) => {
                held_calls.push(call);
                counts.held += 1;
            }
            Err(()) => counts.refused += 1,
        }
    }
    counts
}

//! `evenire-bench`: appends and reads on a real server over real gRPC and prints
//! events/s and latencies with the conditions they were measured under.
//!
//! It starts its own server on 127.0.0.1:0 over a fresh data directory (under
//! `--data-dir`, default the system temp dir), or targets one with `--server`.
//!
//! ```sh
//! cargo run --release -p evenire-bench
//! cargo run --release -p evenire-bench -- --events 200000 --concurrency 256
//! ```
//!
//! This is the first cut; the full benchmark (ceilings of the machine, HDR histograms,
//! JSON output) is issue 6.

use clap::Parser;
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions, SubscriptionMessage,
};
use evenire_server::config::{ByteSize, Fsync};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Evenire appends and reads on a real server")]
struct Args {
    /// Target an existing server instead of starting one.
    #[arg(long)]
    server: Option<String>,
    /// Where the started server keeps its data (a fresh directory is made inside).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// fsync policy of the started server.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// Cache size of the started server.
    #[arg(long, default_value_t = ByteSize::mib(256))]
    cache_size: ByteSize,
    /// Single-event appends in the concurrency run.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// Concurrent appenders.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// gRPC connections the appenders share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Bytes of data per event.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Events in the stream read back forward.
    #[arg(long, default_value_t = 200_000)]
    read_events: u64,
    /// Events appended while live subscribers follow.
    #[arg(long, default_value_t = 20_000)]
    fanout_events: u64,
    /// Instead of the benchmark: a soak of this many seconds of mixed load against the
    /// server binary, sampling its memory every second.
    #[arg(long)]
    soak_seconds: Option<u64>,
    /// The server binary the soak starts (default: evenire-server beside this program).
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
}

/// A server this program started, to stop or restart.
struct Started {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), evenire_server::RunError>>,
}

async fn start_server(
    config: evenire_server::Config,
) -> Result<(String, Started), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let uri = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(evenire_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    Ok((uri, Started { stop, handle }))
}

impl Started {
    async fn stop(self) -> Result<(), Box<dyn std::error::Error>> {
        let _ = self.stop.send(());
        self.handle.await??;
        Ok(())
    }
}

mod soak;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(seconds) = args.soak_seconds {
        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("evenire-server"),
        };
        return soak::run(&binary, seconds, &args.cache_size.to_string(), args.payload).await;
    }
    let data = match &args.server {
        Some(_) => None,
        None => Some(tempfile::tempdir_in(
            args.data_dir.clone().unwrap_or_else(std::env::temp_dir),
        )?),
    };
    let server_config = |cache_size| {
        data.as_ref().map(|dir| {
            let mut config = evenire_server::Config::new(dir.path());
            config.fsync = args.fsync;
            config.cache_size = cache_size;
            config
        })
    };
    let (uri, mut server) = match (&args.server, server_config(args.cache_size)) {
        (Some(uri), _) => (uri.clone(), None),
        (None, Some(config)) => {
            let (uri, started) = start_server(config).await?;
            (uri, Some(started))
        }
        (None, None) => unreachable!("a data directory exists when no server is given"),
    };
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        clients.push(connect(&uri).await?);
    }

    println!("evenire-bench: conditions");
    println!(
        "  server          {}",
        args.server.as_deref().unwrap_or("in-process, 127.0.0.1")
    );
    println!("  fsync           {:?}", args.fsync);
    println!("  cache           {}", args.cache_size);
    println!("  payload         {} B", args.payload);
    println!(
        "  concurrency     {} appenders over {} connections",
        args.concurrency,
        clients.len()
    );
    println!(
        "  cores           {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    let single = appends(&clients, args.payload, 1, args.concurrency, args.events).await?;
    single.print(&format!("append 1 event, {} clients", args.concurrency));
    let one = appends(&clients, args.payload, 1, 1, (args.events / 20).max(100)).await?;
    one.print("append 1 event, 1 client");
    for batch in [100, 1000] {
        let total = (args.events * 4).max(batch as u64 * 8);
        let batched = appends(&clients, args.payload, batch, 8, total).await?;
        batched.print(&format!("append batches of {batch}, 8 clients"));
    }
    let read = forward_read(&clients[0], &args).await?;
    read.print("read one stream forward (cached)");
    for subscribers in [1, 100] {
        let fanout = fan_out(&clients, &args, subscribers).await?;
        fanout.print(&format!("live delivery to {subscribers} subscribers"));
    }

    if let Some(started) = server.take() {
        started.stop().await?;
        // Restart on the same log with the cache off: `$all` comes from the disk (the
        // OS page cache is not dropped: that needs root and a quiet machine).
        if let Some(config) = server_config(ByteSize(0)) {
            let (uri, started) = start_server(config).await?;
            let client = connect(&uri).await?;
            let catch_up = read_log(&client).await?;
            catch_up.print("read $all from the start (cache off)");
            started.stop().await?;
        }
    }
    Ok(())
}

async fn connect(uri: &str) -> Result<Client, Box<dyn std::error::Error>> {
    for _ in 0..100 {
        if let Ok(client) = Client::connect(uri.to_string()).await {
            let probe = StreamId::new(uuid::Uuid::new_v4(), "bench-probe");
            if client
                .append(&probe, ExpectedVersion::Any, [EventData::new("Probe", "")])
                .await
                .is_ok()
            {
                return Ok(client);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no server answering at {uri}").into())
}

struct Outcome {
    events: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn print(&self, what: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pick = |q: f64| {
            sorted
                .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{what:<42} {:>12.0} events/s   p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({} events in {:.2} s)",
            self.events as f64 / self.elapsed.as_secs_f64(),
            pick(0.50).as_secs_f64() * 1e3,
            pick(0.99).as_secs_f64() * 1e3,
            sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            self.events,
            self.elapsed.as_secs_f64(),
        );
    }
}

/// `total` events in appends of `batch`, from `concurrency` tasks, each on its own
/// stream; half of the tasks append with exact expected versions.
async fn appends(
    clients: &[Client],
    payload: usize,
    batch: usize,
    concurrency: usize,
    total: u64,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let per_task = (total / concurrency as u64 / batch as u64).max(1);
    let payload = vec![b'x'; payload];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let client = clients[task % clients.len()].clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(uuid::Uuid::new_v4(), "bench");
            let mut latencies = Vec::with_capacity(per_task as usize);
            let mut version: Option<u64> = None;
            for _ in 0..per_task {
                let events: Vec<_> = (0..batch)
                    .map(|_| EventData::new("Benchmarked", payload.clone()))
                    .collect();
                let expected = match (task % 2, version) {
                    (0, None) => ExpectedVersion::NoStream,
                    (0, Some(v)) => ExpectedVersion::Exact(v),
                    _ => ExpectedVersion::Any,
                };
                let sent = Instant::now();
                let result = client.append(&stream, expected, events).await?;
                latencies.push(sent.elapsed());
                version = Some(result.version);
            }
            Ok::<_, evenire_client::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Outcome {
        events: per_task * concurrency as u64 * batch as u64,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Reads the whole log forward.
async fn read_log(client: &Client) -> Result<Outcome, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let events = client
        .read_all(ReadAllFrom::Start, Direction::Forward, None)
        .await?;
    drain(events, started).await
}

/// Reads `events` to the end: how many, in how long since `started`.
async fn drain(
    mut events: evenire_client::EventStream,
    started: Instant,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let mut count = 0;
    while let Some(event) = events.next().await {
        event?;
        count += 1;
    }
    Ok(Outcome {
        events: count,
        elapsed: started.elapsed(),
        latencies: vec![started.elapsed()],
    })
}

/// `subscribers` live subscriptions while 16 writers append `fanout_events` events in
/// batches of 10: events delivered per second, summed over subscribers, and each
/// subscriber's time to receive them all.
async fn fan_out(
    clients: &[Client],
    args: &Args,
    subscribers: usize,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    // 16 writers of batches of 10: a multiple of 160 is what they append exactly.
    let total = (args.fanout_events / 160).max(1) * 160;
    let mut followers = Vec::new();
    for i in 0..subscribers {
        let client = &clients[i % clients.len()];
        let mut subscription = client
            .subscribe_all(SubscribeFrom::End, SubscribeOptions::default())
            .await?;
        while !matches!(
            subscription.next().await,
            Some(Ok(SubscriptionMessage::CaughtUp { .. }))
        ) {}
        followers.push(subscription);
    }
    let started = Instant::now();
    let receivers: Vec<_> = followers
        .into_iter()
        .map(|mut subscription| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < total {
                    match subscription.next().await {
                        Some(Ok(SubscriptionMessage::Event(_))) => seen += 1,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e),
                        None => break,
                    }
                }
                Ok(started.elapsed())
            })
        })
        .collect();
    appends(clients, args.payload, 10, 16, total).await?;
    let mut latencies = Vec::new();
    for receiver in receivers {
        latencies.push(receiver.await??);
    }
    Ok(Outcome {
        events: total * subscribers as u64,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Writes one stream of `read_events` events in batches of 1,000, then reads it forward.
async fn forward_read(client: &Client, args: &Args) -> Result<Outcome, Box<dyn std::error::Error>> {
    let stream = StreamId::new(uuid::Uuid::new_v4(), "bench-read");
    let payload = vec![b'x'; args.payload];
    let mut written = 0;
    while written < args.read_events {
        let n = 1000.min(args.read_events - written);
        let events: Vec<_> = (0..n)
            .map(|_| EventData::new("Benchmarked", payload.clone()))
            .collect();
        client.append(&stream, ExpectedVersion::Any, events).await?;
        written += n;
    }
    let started = Instant::now();
    let events = client
        .read(&stream, ReadFrom::Start, Direction::Forward, None)
        .await?;
    drain(events, started).await
}

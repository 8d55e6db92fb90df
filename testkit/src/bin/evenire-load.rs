//! `evenire-load SERVER RATE SECONDS [BATCH]`: appends RATE × SECONDS events to SERVER
//! at RATE events a second, BATCH events an append (10 by default; the total is rounded
//! up to whole batches for every appender), spread over 100 `load/…` streams, then
//! prints `{"appended": N, "seconds": S}`: S above SECONDS means the rate did not hold.
//! A steady, known write load for what watches the log rather than writes it: the web
//! admin's live tail is measured and tested under it.

use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Appenders at once: enough to keep up with 10,000 events a second in batches of 10
/// while each waits for its append's fsync (group commit syncs them together).
const APPENDERS: u64 = 64;
const STREAMS: u64 = 100;

struct Load {
    server: String,
    rate: u64,
    seconds: u64,
    batch: u64,
}

fn parse() -> Result<Load, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, name: &str, default: Option<u64>| match args.get(index) {
        Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!(
            "{name} must be a whole number above 0, not {text:?}"
        )),
        None => default.ok_or(format!("{name} is missing")),
    };
    Ok(Load {
        server: args.first().cloned().ok_or("SERVER is missing")?,
        rate: number(1, "RATE", None)?,
        seconds: number(2, "SECONDS", None)?,
        batch: number(3, "BATCH", Some(10))?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let load = match parse() {
        Ok(load) => load,
        Err(problem) => {
            eprintln!("evenire-load: {problem}\nusage: evenire-load SERVER RATE SECONDS [BATCH]");
            return ExitCode::from(2);
        }
    };
    let client = match Client::connect(load.server.clone()).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("evenire-load: connecting to {}: {e}", load.server);
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    // Collected, so that every appender starts now rather than when the loop below
    // reaches it.
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(append(client, n, load.batch, load.rate, load.seconds))
        })
        .collect();
    let mut appended = 0;
    for appender in appenders {
        match appender.await {
            Ok(Ok(count)) => appended += count,
            Ok(Err(e)) => {
                eprintln!("evenire-load: an append failed: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("evenire-load: an appender stopped: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{{\"appended\": {appended}, \"seconds\": {seconds:.3}}}");
    ExitCode::SUCCESS
}

/// Appender `n`'s share: a batch every `APPENDERS * batch / rate` seconds, catching up
/// after a slow append so that the rate holds on average. Returns the events appended.
async fn append(
    client: Client,
    n: u64,
    batch: u64,
    rate: u64,
    seconds: u64,
) -> Result<u64, evenire_client::Error> {
    let period = Duration::from_secs_f64((APPENDERS * batch) as f64 / rate as f64);
    let rounds = (rate * seconds).div_ceil(APPENDERS * batch);
    // Staggered, so that the appenders' batches spread over the period.
    let first = tokio::time::Instant::now() + period.mul_f64(n as f64 / APPENDERS as f64);
    let mut ticks = tokio::time::interval_at(first, period);
    for round in 0..rounds {
        ticks.tick().await;
        let key = Uuid::from_u128(u128::from(1 + (n + round * APPENDERS) % STREAMS));
        let stream = StreamId::new(key, "load");
        let events = (0..batch).map(|i| {
            let data = format!("{{\"appender\":{n},\"round\":{round},\"i\":{i}}}");
            EventData::new("Measured", data.into_bytes())
        });
        client.append(&stream, ExpectedVersion::Any, events).await?;
    }
    Ok(rounds * batch)
}

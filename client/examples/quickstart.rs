//! Quickstart: append three events to a new stream, read them forward, then read the
//! latest one backward, and see what a wrong expected version looks like.
//!
//! Start a server (`cargo run --release -p evenire-server`), then:
//!
//! ```sh
//! cargo run -p evenire-client --example quickstart            # $EVENIRE_SERVER, else 127.0.0.1:5243
//! cargo run -p evenire-client --example quickstart -- host:port  # or http://host:port
//! ```

use evenire_client::{Client, Direction, Error, EventData, ExpectedVersion, ReadFrom, StreamId};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;

/// The payload of this example's events.
#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    celsius: f64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The error's own message ("cannot connect: ..."), not its debug form.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(evenire_client::default_address);
    let client = Client::connect(uri).await?;
    let sensor = StreamId::new(uuid::Uuid::new_v4(), "sensor");

    let readings = [19.5, 20.1, 20.8]
        .iter()
        .map(|&celsius| EventData::json("ReadingTaken", &Reading { celsius }))
        .collect::<Result<Vec<_>, _>>()?;
    let appended = client
        .append(&sensor, ExpectedVersion::NoStream, readings)
        .await?;
    println!(
        "appended to {sensor}: version {}, position {}",
        appended.version, appended.position
    );

    let mut events = client
        .read(&sensor, ReadFrom::Start, Direction::Forward, None)
        .await?;
    while let Some(event) = events.next().await {
        let event = event?;
        let reading: Reading = event.json()?;
        println!(
            "  v{} {} {:.1} °C",
            event.version, event.event_type, reading.celsius
        );
    }

    let mut latest = client
        .read(&sensor, ReadFrom::End, Direction::Backward, Some(1))
        .await?;
    if let Some(event) = latest.next().await {
        println!(
            "latest reading: {:.1} °C",
            event?.json::<Reading>()?.celsius
        );
    }

    let stale = EventData::json("ReadingTaken", &Reading { celsius: 0.0 })?;
    match client
        .append(&sensor, ExpectedVersion::Exact(0), [stale])
        .await
    {
        Err(Error::WrongExpectedVersion { actual, .. }) => println!(
            "append expecting version 0 refused: the stream is at version {}",
            actual.map_or_else(|| "none (no events)".to_string(), |v| v.to_string())
        ),
        Err(e) => println!("unexpected error: {e}"),
        Ok(result) => println!("unexpectedly appended at version {}", result.version),
    }
    Ok(())
}

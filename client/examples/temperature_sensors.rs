//! Temperature sensors: a few simulated sensors, each its own stream of type `sensor`,
//! append a reading every interval. The example prints each sensor's latest reading by
//! reading its stream backward (max count 1), and a running average from a live
//! subscription filtered to `sensor` streams.
//!
//! Start a server (`cargo run --release -p evenire-server`), then:
//!
//! ```sh
//! cargo run -p evenire-client --example temperature_sensors
//! cargo run -p evenire-client --example temperature_sensors -- http://host:port 5 20
//! #                                                   server, sensors, rounds
//! ```

use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId, SubscribeFrom,
    SubscribeOptions, SubscriptionFilter, SubscriptionMessage,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_stream::StreamExt;

/// One reading, as JSON in the event's data.
#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    celsius: f64,
}

const INTERVAL: Duration = Duration::from_millis(200);

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
    let mut args = std::env::args().skip(1);
    let uri = args.next().unwrap_or_else(evenire_client::default_address);
    let sensor_count: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    let client = Client::connect(uri).await?;
    let sensors: Vec<_> = (0..sensor_count)
        .map(|_| StreamId::new(uuid::Uuid::new_v4(), "sensor"))
        .collect();

    // Live only, and only sensor streams: a running average of what arrives.
    let filter = SubscriptionFilter::default().stream_type("sensor");
    let mut live = client
        .subscribe_all(SubscribeFrom::End, SubscribeOptions::filtered(filter))
        .await?;
    let expected = sensor_count * rounds;
    let averager = tokio::spawn(async move {
        let (mut count, mut sum) = (0usize, 0.0);
        while count < expected {
            match live.next().await {
                Some(Ok(SubscriptionMessage::Event(event))) => {
                    let reading: Reading = event.json()?;
                    count += 1;
                    sum += reading.celsius;
                    println!(
                        "  live  {} v{:<3} {:>5.1} °C   running average {:.2} °C over {count}",
                        short(&event.stream),
                        event.version,
                        reading.celsius,
                        sum / count as f64
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sum / count.max(1) as f64)
    });

    for round in 0..rounds {
        for (i, sensor) in sensors.iter().enumerate() {
            // A slow wave per sensor, offset so they differ.
            let celsius = 20.0 + i as f64 + ((round + i) as f64 / 3.0).sin() * 2.0;
            let reading = EventData::json("ReadingTaken", &Reading { celsius })?;
            client
                .append(sensor, ExpectedVersion::Any, [reading])
                .await?;
        }
        tokio::time::sleep(INTERVAL).await;
    }

    println!("latest reading of each sensor (read backward, max count 1):");
    for sensor in &sensors {
        let mut latest = client
            .read(sensor, ReadFrom::End, Direction::Backward, Some(1))
            .await?;
        if let Some(event) = latest.next().await {
            let event = event?;
            let reading: Reading = event.json()?;
            println!(
                "  {} v{} {:.1} °C",
                short(sensor),
                event.version,
                reading.celsius
            );
        }
    }
    let average = averager.await?.map_err(|e| e.to_string())?;
    println!("average of all {expected} readings: {average:.2} °C");
    Ok(())
}

/// The first block of a stream's key: enough to tell sensors apart on screen.
fn short(stream: &StreamId) -> String {
    let key = stream.key.to_string();
    format!("{}/{}", stream.stream_type, &key[..8])
}

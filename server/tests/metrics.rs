//! `--metrics-listen` against the real binary: scraped before and after a load of
//! appends, a read, a subscription that reads nothing, a failed append and a connection
//! that does not speak HTTP/2, the counters and gauges each of those should move have
//! moved, and the text is what Prometheus parses.

use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId};
use evenire_proto::v1::event_store_service_client::EventStoreServiceClient;
use evenire_testkit::process::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_stream::StreamExt;

mod common;
use common::{Scrape, http_get, scrape};

#[tokio::test]
async fn a_scrape_under_load_shows_the_counters_moving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(
        &common::binary(),
        dir.path(),
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let metrics = common::logged_field(&server, "metrics_listen").await;
    let before = scrape(&metrics).await;
    assert_eq!(before.get("evenire_appends_total{outcome=\"ok\"}"), 0.0);
    assert_eq!(before.get("evenire_log_segments"), 1.0);

    // A subscriber that reads nothing falls behind as the log grows.
    let mut raw = EventStoreServiceClient::connect(server.uri())
        .await
        .expect("connect");
    let _stalled = raw
        .subscribe(common::subscribe_to_all())
        .await
        .expect("subscribe")
        .into_inner();

    // Appends from 8 tasks at once, so that groups carry several: 8 x 20 appends of
    // 100 events of 1 KiB, 16 MiB in all: more than HTTP/2's windows hold for the
    // stalled subscriber.
    let payload = format!("{{\"v\":\"{}\"}}", "x".repeat(1000));
    let client = Client::connect(server.uri()).await.expect("connect");
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (client, payload) = (client.clone(), payload.clone());
            tokio::spawn(async move {
                let stream = StreamId::new(uuid::Uuid::new_v4(), "sensor");
                for _ in 0..20 {
                    let events = (0..100).map(|_| EventData::new("Read", payload.clone()));
                    client
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                }
                stream
            })
        })
        .collect();
    let mut streams = Vec::new();
    for writer in writers {
        streams.push(writer.await.expect("writer"));
    }
    let refused = client
        .append(
            &streams[0],
            ExpectedVersion::NoStream,
            [EventData::new("Read", "{}")],
        )
        .await;
    assert!(refused.is_err(), "the stream exists");
    let mut read = client
        .read(&streams[1], ReadFrom::Start, Direction::Forward, None)
        .await
        .expect("read");
    let mut read_events = 0;
    while let Some(event) = read.next().await {
        event.expect("an event");
        read_events += 1;
    }
    assert_eq!(read_events, 2000);
    // A connection that does not speak HTTP/2 is refused and counted.
    let mut stranger = TcpStream::connect(&server.addr).await.expect("connect");
    stranger
        .write_all(b"GET / HTTP/1.1\r\nHost: evenire\r\n\r\n")
        .await
        .expect("send");
    let _ = stranger.read(&mut [0; 64]).await;

    let after = scrape(&metrics).await;
    let moved = |sample: &str| after.get(sample) - before.get(sample);
    assert_eq!(moved("evenire_appends_total{outcome=\"ok\"}"), 160.0);
    assert_eq!(
        moved("evenire_appended_events_total{outcome=\"ok\"}"),
        16_000.0
    );
    assert_eq!(after.get("evenire_appends_total{outcome=\"aborted\"}"), 1.0);
    assert_eq!(after.get("evenire_append_duration_seconds_count"), 160.0);
    assert!(after.get("evenire_append_duration_seconds_sum") > 0.0);
    let groups = moved("evenire_group_commit_writes_count");
    assert!(
        (1.0..=160.0).contains(&groups),
        "160 appends in {groups} groups"
    );
    assert_eq!(moved("evenire_group_commit_writes_sum"), 160.0);
    assert!(moved("evenire_fdatasync_seconds_count") >= 1.0);
    assert!(moved("evenire_log_bytes") > 16_000.0 * 1000.0);
    assert_eq!(after.get("evenire_log_events"), 16_000.0);
    assert_eq!(after.get("evenire_index_entries{kind=\"streams\"}"), 8.0);
    assert_eq!(after.get("evenire_index_entries{kind=\"records\"}"), 160.0);
    assert!(after.get("evenire_index_bytes") > 16_000.0 * 40.0);
    // The read found what was just written in the cache.
    assert!(moved("evenire_cache_hits_total") >= 20.0);
    assert!(after.get("evenire_cache_entries") >= 20.0);
    assert!(after.get("evenire_cache_bytes") > 0.0);
    assert_eq!(
        after.get("evenire_streaming_calls_open{call=\"subscribe\"}"),
        1.0
    );
    assert_eq!(
        after.get("evenire_streaming_calls_open{call=\"read\"}"),
        0.0
    );
    assert!(
        after.get("evenire_subscription_lag_max_events") > 1000.0,
        "the stalled subscriber is behind"
    );
    assert!(after.get("evenire_connections_open") >= 2.0);
    assert_eq!(
        moved("evenire_connections_refused_total{reason=\"not_http2\"}"),
        1.0
    );
    assert!(after.get("evenire_recovery_seconds") >= 0.0);
    assert_eq!(after.get("evenire_writes_refused"), 0.0);
    assert!(after.get("process_resident_memory_bytes") > 1e6);

    let (status, _) = http_get(&metrics, "/elsewhere").await;
    assert!(status.contains("404"), "{status}");

    dashboard_names_only_metrics_that_exist(&after);
}

/// Every metric the Grafana dashboard in deploy/ queries is one the server serves, so
/// that a renamed metric does not leave a panel silently empty.
fn dashboard_names_only_metrics_that_exist(scrape: &Scrape) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/evenire.json"
    );
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let served: std::collections::HashSet<&str> = scrape
        .0
        .keys()
        .map(|sample| sample.split('{').next().unwrap_or_default())
        .collect();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut named = 0;
    for target in panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().expect("a query");
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for name in words.filter(|w| w.starts_with("evenire_") || w.starts_with("process_")) {
            assert!(
                served.contains(name),
                "the dashboard queries {name}, which is not served"
            );
            named += 1;
        }
    }
    assert!(named >= 20, "the dashboard's queries name {named} metrics");
}

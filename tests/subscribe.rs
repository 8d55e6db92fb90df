//! Subscriptions: history then live with no gap and no duplicate under concurrent
//! appends, resuming from a checkpoint after a cancel and after a restart, filters and
//! checkpoints, slow subscribers, many subscribers, and shutdown.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered};
use evenire_client::{
    Client, ExpectedVersion, RecordedEvent, SubscribeFrom, SubscribeOptions, Subscription,
    SubscriptionFilter, SubscriptionMessage,
};
use std::time::Duration;
use tokio_stream::StreamExt;

/// The next message, failing the test after 10 s of silence.
async fn next(subscription: &mut Subscription) -> SubscriptionMessage {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a message within 10 s")
        .expect("the subscription goes on")
        .expect("a message, not an error")
}

/// Events until `count` have arrived, skipping other messages.
async fn events(subscription: &mut Subscription, count: usize) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    while out.len() < count {
        if let SubscriptionMessage::Event(event) = next(subscription).await {
            out.push(event);
        }
    }
    out
}

async fn append_many(client: &Client, writers: u64, appends: u64, per_append: u64) {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let stream = new_stream("order");
                for i in 0..appends {
                    client
                        .append(
                            &stream,
                            ExpectedVersion::Any,
                            numbered(w * 1_000_000 + i, per_append),
                        )
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
}

backend_test! {
    /// Writers append while subscribers start at different moments: each sees every event
    /// exactly once, in position order, through and after its switch to live.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn catch_up_then_live_without_gap_or_duplicate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 8 << 20)).await;
        let client = server.client().await;
        append_many(&client, 4, 25, 2).await; // 200 events of history

        let writers = tokio::spawn({
            let client = client.clone();
            async move { append_many(&client, 16, 25, 2).await } // 800 more, racing
        });
        let mut subscribers = Vec::new();
        for delay_ms in [0, 5, 20] {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let mut subscription = client
                .subscribe_all(SubscribeFrom::Start, SubscribeOptions::default())
                .await
                .expect("subscribe");
            subscribers.push(tokio::spawn(async move {
                let mut caught_up = false;
                let mut seen = Vec::new();
                while seen.len() < 1000 {
                    match next(&mut subscription).await {
                        SubscriptionMessage::Event(e) => seen.push(e.position),
                        SubscriptionMessage::CaughtUp { .. } => caught_up = true,
                        SubscriptionMessage::Checkpoint { .. } => {}
                        other => panic!("no reconnects here: {other:?}"),
                    }
                }
                (caught_up, seen)
            }));
        }
        writers.await.expect("writers");
        for subscriber in subscribers {
            let (caught_up, seen) = subscriber.await.expect("subscriber");
            assert!(caught_up, "the switch to live is announced");
            assert_eq!(
                seen,
                (0..1000).collect::<Vec<_>>(),
                "every position once, in order"
            );
        }
    }
}

backend_test! {
    #[tokio::test]
    async fn resumes_after_a_checkpoint_after_cancel_and_after_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = config(dir.path(), 0);
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;
        let stream = new_stream("order");
        client
            .append(&stream, ExpectedVersion::Any, numbered(0, 10))
            .await
            .expect("append");

        // Take five, cancel, resume after the last one taken.
        let mut subscription = client
            .subscribe_all(SubscribeFrom::Start, SubscribeOptions::default())
            .await
            .expect("subscribe");
        let first = events(&mut subscription, 5).await;
        drop(subscription);
        let checkpoint = first.last().expect("five events").position;
        let mut resumed = client
            .subscribe_all(
                SubscribeFrom::After(checkpoint),
                SubscribeOptions::default(),
            )
            .await
            .expect("resume");
        let rest = events(&mut resumed, 5).await;
        assert_eq!(
            rest.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9]
        );
        drop(resumed);

        // The same on a stream, by version, across a server restart the client rides out.
        let mut by_version = client
            .subscribe(
                &stream,
                SubscribeFrom::After(7),
                SubscribeOptions::default(),
            )
            .await
            .expect("subscribe to the stream");
        let tail = events(&mut by_version, 2).await;
        assert_eq!(
            tail.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![8, 9]
        );
        assert!(matches!(
            next(&mut by_version).await,
            SubscriptionMessage::CaughtUp { .. }
        ));

        let addr = server.addr;
        server.stop().await.expect("clean stop");
        let server = TestServer::start_at(addr, settings).await;
        let writer = server.client().await;
        writer
            .append(&stream, ExpectedVersion::Exact(9), numbered(10, 3))
            .await
            .expect("append after restart");
        // Told that it reconnects, then the events after the last one delivered.
        let mut reconnecting = 0;
        let mut after_restart = Vec::new();
        while after_restart.len() < 3 {
            match next(&mut by_version).await {
                SubscriptionMessage::Event(event) => after_restart.push(event),
                SubscriptionMessage::Reconnecting { .. } => reconnecting += 1,
                _ => {}
            }
        }
        assert_eq!(reconnecting, 1, "one notice for the one drop");
        assert_eq!(
            after_restart.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![10, 11, 12],
            "resumed after version 9: nothing lost, nothing repeated"
        );
    }
}

backend_test! {
    #[tokio::test]
    async fn filters_select_by_type_and_prefix_and_checkpoints_report_progress() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 1 << 20)).await;
        let client = server.client().await;
        let sensor = new_stream("sensor");
        let sensor_eu = new_stream("sensor-eu");
        let order = new_stream("order");
        let event = |t: &str| evenire_client::EventData::new(t.to_string(), "{}");
        client
            .append(
                &order,
                ExpectedVersion::Any,
                (0..50).map(|_| event("OrderPlaced")),
            )
            .await
            .expect("append");
        client
            .append(
                &sensor,
                ExpectedVersion::Any,
                [event("ReadingTaken"), event("Calibrated")],
            )
            .await
            .expect("append");
        client
            .append(&sensor_eu, ExpectedVersion::Any, [event("ReadingTaken")])
            .await
            .expect("append");
        client
            .append(
                &order,
                ExpectedVersion::Any,
                (0..50).map(|_| event("OrderShipped")),
            )
            .await
            .expect("append");

        let collect = |filter: SubscriptionFilter, interval: u32| {
            let client = client.clone();
            async move {
                let options = SubscribeOptions {
                    filter,
                    checkpoint_interval: interval,
                    ..SubscribeOptions::default()
                };
                let mut subscription = client
                    .subscribe_all(SubscribeFrom::Start, options)
                    .await
                    .expect("subscribe");
                let mut seen = Vec::new();
                let mut checkpoints = Vec::new();
                loop {
                    match next(&mut subscription).await {
                        SubscriptionMessage::Event(e) => {
                            seen.push((e.stream.stream_type.clone(), e.event_type.clone()))
                        }
                        SubscriptionMessage::Checkpoint { position } => checkpoints.push(position),
                        SubscriptionMessage::CaughtUp { position } => {
                            assert_eq!(position, Some(102), "caught up at the log's end");
                            return (seen, checkpoints);
                        }
                        other => panic!("no reconnects here: {other:?}"),
                    }
                }
            }
        };
        let pair = |s: &str, e: &str| (s.to_string(), e.to_string());

        let (seen, _) = collect(SubscriptionFilter::default().stream_type("sensor"), 0).await;
        assert_eq!(
            seen,
            vec![pair("sensor", "ReadingTaken"), pair("sensor", "Calibrated")]
        );

        let (seen, _) = collect(
            SubscriptionFilter::default().stream_type_prefix("sensor"),
            0,
        )
        .await;
        assert_eq!(seen.len(), 3, "sensor and sensor-eu: {seen:?}");

        let (seen, _) = collect(
            SubscriptionFilter::default()
                .stream_type_prefix("sensor")
                .event_type("ReadingTaken"),
            0,
        )
        .await;
        assert_eq!(
            seen,
            vec![
                pair("sensor", "ReadingTaken"),
                pair("sensor-eu", "ReadingTaken")
            ]
        );

        let (seen, checkpoints) = collect(
            SubscriptionFilter::default().event_type_prefix("OrderShip"),
            10,
        )
        .await;
        assert_eq!(seen.len(), 50);
        assert!(
            !checkpoints.is_empty(),
            "53 unmatched events before the match, interval 10"
        );
        assert!(checkpoints.windows(2).all(|w| w[0] < w[1]));
        assert!(
            checkpoints.iter().all(|p| *p < 53),
            "checkpoints came before the matches"
        );

        // A filter nothing matches still reports where it is.
        let (seen, checkpoints) = collect(SubscriptionFilter::default().stream_type("none"), 7).await;
        assert!(seen.is_empty());
        assert!(checkpoints.len() >= 10, "{checkpoints:?}");
    }
}

backend_test! {
    /// A subscriber that reads nothing while thousands of events are appended neither
    /// stalls the writers nor loses anything: it reads them from the log afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_subscriber_does_not_stall_appends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let mut stalled = client
            .subscribe_all(SubscribeFrom::Start, SubscribeOptions::default())
            .await
            .expect("subscribe");
        // 20,000 events of 1 KiB: far more than any buffer between server and client.
        let stream = new_stream("bulk");
        let payload = vec![b'x'; 1024];
        tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..20 {
                let batch = (0..1000).map(|_| evenire_client::EventData::new("Bulk", payload.clone()));
                client
                    .append(&stream, ExpectedVersion::Any, batch)
                    .await
                    .expect("append while a subscriber stalls");
            }
        })
        .await
        .expect("appends are not held back by the stalled subscriber");

        let seen = events(&mut stalled, 20_000).await;
        assert!(seen.iter().enumerate().all(|(i, e)| e.position == i as u64));
    }
}

backend_test! {
    /// Two hundred subscribers at once all receive every live event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundreds_of_subscribers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 8 << 20)).await;
        let client = server.client().await;
        let mut subscribers = Vec::new();
        for _ in 0..200 {
            let mut subscription = client
                .subscribe_all(SubscribeFrom::End, SubscribeOptions::default())
                .await
                .expect("subscribe");
            assert!(matches!(
                next(&mut subscription).await,
                SubscriptionMessage::CaughtUp { .. }
            ));
            subscribers.push(subscription);
        }
        append_many(&client, 4, 25, 1).await;
        let counts: Vec<_> = subscribers
            .into_iter()
            .map(|mut s| tokio::spawn(async move { events(&mut s, 100).await.len() }))
            .collect();
        for count in counts {
            assert_eq!(count.await.expect("subscriber"), 100);
        }
    }
}

backend_test! {
    /// Shutdown ends subscriptions with UNAVAILABLE, so the server drains at once; without
    /// resume the client sees the error.
    #[tokio::test]
    async fn shutdown_ends_subscriptions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let options = SubscribeOptions {
            resume: false,
            ..SubscribeOptions::default()
        };
        let mut subscription = client
            .subscribe_all(SubscribeFrom::Start, options)
            .await
            .expect("subscribe");
        assert!(matches!(
            next(&mut subscription).await,
            SubscriptionMessage::CaughtUp { .. }
        ));
        let stopped = tokio::time::timeout(Duration::from_secs(5), server.stop()).await;
        assert!(
            matches!(stopped, Ok(Ok(()))),
            "shutdown does not wait on subscribers"
        );
        let end = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("the subscription ends");
        assert!(
            matches!(end, Some(Err(evenire_client::Error::Unavailable(_)))),
            "{end:?}"
        );
    }
}

backend_test! {
    #[tokio::test]
    async fn a_stream_subscription_waits_for_its_stream() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("order");
        let mut subscription = client
            .subscribe(&stream, SubscribeFrom::Start, SubscribeOptions::default())
            .await
            .expect("subscribe to a stream not written yet");
        assert!(matches!(
            next(&mut subscription).await,
            SubscriptionMessage::CaughtUp { position: None }
        ));
        client
            .append(&new_stream("other"), ExpectedVersion::Any, numbered(0, 3))
            .await
            .expect("append elsewhere");
        client
            .append(&stream, ExpectedVersion::NoStream, numbered(0, 2))
            .await
            .expect("append");
        let got = events(&mut subscription, 2).await;
        assert!(got.iter().all(|e| e.stream == stream));
        assert_eq!(
            got.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
}

backend_test! {
    #[tokio::test]
    async fn bad_subscriptions_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let too_many = SubscriptionFilter {
            event_types: (0..65).map(|i| format!("T{i}")).collect(),
            ..SubscriptionFilter::default()
        };
        let refused = client
            .subscribe_all(SubscribeFrom::Start, SubscribeOptions::filtered(too_many))
            .await;
        match refused {
            Err(evenire_client::Error::InvalidArgument(message)) => {
                assert!(
                    message.contains("filter.event_types") && message.contains("64"),
                    "{message}"
                )
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
        let empty_prefix = SubscriptionFilter::default().stream_type_prefix("");
        let refused = client
            .subscribe_all(
                SubscribeFrom::Start,
                SubscribeOptions::filtered(empty_prefix),
            )
            .await;
        assert!(
            matches!(&refused, Err(evenire_client::Error::InvalidArgument(m)) if m.contains("filter.stream_type_prefixes[0]")),
            "{refused:?}"
        );
    }
}

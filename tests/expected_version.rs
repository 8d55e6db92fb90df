//! Optimistic concurrency: each expected-version mode, and many appenders racing on the
//! same expected version, of whom exactly one wins.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, read_all};
use evenire_client::{Direction, Error, ExpectedVersion, ReadFrom};

backend_test! {
    #[tokio::test]
    async fn each_mode_accepts_and_refuses_as_documented() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("order");

        let refused = client
            .append(&stream, ExpectedVersion::StreamExists, numbered(0, 1))
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::WrongExpectedVersion { actual: None, .. })
            ),
            "{refused:?}"
        );
        let refused = client
            .append(&stream, ExpectedVersion::Exact(0), numbered(0, 1))
            .await;
        assert!(matches!(
            refused,
            Err(Error::WrongExpectedVersion { actual: None, .. })
        ));

        let created = client
            .append(&stream, ExpectedVersion::NoStream, numbered(0, 2))
            .await
            .expect("no_stream on a new stream");
        assert_eq!(created.version, 1);

        let refused = client
            .append(&stream, ExpectedVersion::NoStream, numbered(2, 1))
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::WrongExpectedVersion {
                    actual: Some(1),
                    ..
                })
            ),
            "{refused:?}"
        );
        let refused = client
            .append(&stream, ExpectedVersion::Exact(0), numbered(2, 1))
            .await;
        match refused {
            Err(Error::WrongExpectedVersion { actual, message }) => {
                assert_eq!(actual, Some(1));
                assert!(message.contains("expected version 0"), "{message}");
            }
            other => panic!("expected a wrong expected version, got {other:?}"),
        }

        let exact = client
            .append(&stream, ExpectedVersion::Exact(1), numbered(2, 1))
            .await
            .expect("exact version matches");
        assert_eq!(exact.version, 2);
        let exists = client
            .append(&stream, ExpectedVersion::StreamExists, numbered(3, 1))
            .await
            .expect("stream exists");
        assert_eq!(exists.version, 3);
        let any = client
            .append(&stream, ExpectedVersion::Any, numbered(4, 1))
            .await
            .expect("any");
        assert_eq!(any.version, 4);

        let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(
            common::numbers(&events),
            vec![0, 1, 2, 3, 4],
            "refusals wrote nothing"
        );
    }
}

backend_test! {
    /// 64 appenders all expect version 0 of one stream, again and again: per round exactly
    /// one wins, and the stream's versions stay contiguous.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_appenders_one_winner_per_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 1 << 20)).await;
        let client = server.client().await;
        let stream = new_stream("counter");
        client
            .append(&stream, ExpectedVersion::NoStream, numbered(0, 1))
            .await
            .expect("create");

        for round in 0..10u64 {
            let mut racers = Vec::new();
            for racer in 0..64u64 {
                let client = client.clone();
                let stream = stream.clone();
                racers.push(tokio::spawn(async move {
                    client
                        .append(
                            &stream,
                            ExpectedVersion::Exact(round),
                            numbered(1000 * round + racer, 1),
                        )
                        .await
                }));
            }
            let mut winners = 0;
            for racer in racers {
                match racer.await.expect("racer task") {
                    Ok(result) => {
                        winners += 1;
                        assert_eq!(result.version, round + 1);
                    }
                    Err(Error::WrongExpectedVersion { actual, .. }) => {
                        assert_eq!(actual, Some(round + 1));
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
            assert_eq!(winners, 1, "round {round}");
        }
        let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(
            events.iter().map(|e| e.version).collect::<Vec<_>>(),
            (0..=10).collect::<Vec<_>>()
        );
    }
}

backend_test! {
    /// Many appenders with `any` on one stream: every append lands, versions contiguous,
    /// positions strictly increasing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_any_appends_all_land_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("feed");
        let mut tasks = Vec::new();
        for writer in 0..32u64 {
            let client = client.clone();
            let stream = stream.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    client
                        .append(&stream, ExpectedVersion::Any, numbered(writer * 100 + i, 2))
                        .await
                        .expect("append");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer task");
        }
        let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(events.len(), 640);
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.version == i as u64)
        );
        assert!(events.windows(2).all(|w| w[0].position < w[1].position));
        // Each append's two events are adjacent: an append is one unit.
        for pair in events.chunks(2) {
            let numbers = common::numbers(pair);
            assert_eq!(numbers[0] + 1, numbers[1]);
        }
    }
}

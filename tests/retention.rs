//! Stream rules (max count, truncate before, max age): set through the contract with an
//! expected revision, obeyed by a stream's reads and its info at once, shown by
//! GetStream, kept across a restart; `$all` still shows what they hide until the space
//! is reclaimed; a stream type's default rules (`--default-rules`) apply to its streams
//! until one sets its own.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, numbers, read_all};
use evenire_client::{Direction, Error, ExpectedVersion, ReadAllFrom, ReadFrom, StreamRules};
use tokio_stream::StreamExt;

backend_test! {
    #[tokio::test]
    async fn reads_keep_only_what_the_rules_allow_at_once_and_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = config(dir.path(), 0);
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;
        let sensor = new_stream("sensor");
        client
            .append(&sensor, ExpectedVersion::NoStream, numbered(0, 10))
            .await
            .expect("append");
        let info = client.get_stream(&sensor).await.expect("info");
        assert_eq!((info.rules, info.rules_revision), (StreamRules::default(), 0));

        let newest_three = StreamRules { max_count: Some(3), truncate_before: None, max_age_seconds: None };
        let revision = client
            .set_stream_rules(&sensor, newest_three, Some(0))
            .await
            .expect("rules");
        assert_eq!(revision, 1);
        let forward = read_all(&client, &sensor, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&forward), vec![7, 8, 9]);
        let backward = read_all(&client, &sensor, ReadFrom::End, Direction::Backward, None).await;
        assert_eq!(numbers(&backward), vec![9, 8, 7]);
        let from_two = read_all(&client, &sensor, ReadFrom::Version(2), Direction::Forward, None).await;
        assert_eq!(numbers(&from_two), vec![7, 8, 9], "hidden versions are not read");
        let info = client.get_stream(&sensor).await.expect("info");
        assert_eq!((info.event_count, info.rules, info.rules_revision), (3, newest_three, 1));
        assert_eq!(info.first_position, forward.first().map(|e| e.position));

        // Appends go on; the window moves.
        client
            .append(&sensor, ExpectedVersion::Exact(9), numbered(10, 2))
            .await
            .expect("append");
        let forward = read_all(&client, &sensor, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&forward), vec![9, 10, 11]);

        // Two operators: the second, expecting the revision it read, is refused.
        let stale = client
            .set_stream_rules(&sensor, StreamRules::default(), Some(0))
            .await;
        assert!(
            matches!(stale, Err(Error::WrongExpectedVersion { actual: Some(1), .. })),
            "{stale:?}"
        );
        let both = StreamRules { max_count: Some(5), truncate_before: Some(10), max_age_seconds: None };
        assert_eq!(client.set_stream_rules(&sensor, both, Some(1)).await.expect("rules"), 2);
        let forward = read_all(&client, &sensor, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&forward), vec![10, 11], "the stricter rule wins");

        // The log itself still holds every event until its space is reclaimed.
        let mut all = client
            .read_all(ReadAllFrom::Start, Direction::Forward, None)
            .await
            .expect("read $all");
        let mut seen = 0;
        while let Some(event) = all.next().await {
            event.expect("an event");
            seen += 1;
        }
        assert_eq!(seen, 12);

        server.stop().await.expect("clean stop");
        let server = TestServer::start(settings).await;
        let client = server.client().await;
        let info = client.get_stream(&sensor).await.expect("info after a restart");
        assert_eq!((info.rules, info.rules_revision, info.event_count), (both, 2, 2));
        let read = client.read_from_snapshot(&sensor).await.expect("read");
        assert_eq!(numbers(&read.events), vec![10, 11]);
    }
}

backend_test! {
    #[tokio::test]
    async fn rules_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let never = client
            .set_stream_rules(&new_stream("sensor"), StreamRules::default(), None)
            .await;
        assert!(matches!(never, Err(Error::NotFound(_))), "{never:?}");
        let sensor = new_stream("sensor");
        client
            .append(&sensor, ExpectedVersion::NoStream, numbered(0, 1))
            .await
            .expect("append");
        let nothing = StreamRules { max_count: Some(0), truncate_before: None, max_age_seconds: None };
        let refused = client.set_stream_rules(&sensor, nothing, None).await;
        assert!(
            matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("max_count")),
            "{refused:?}"
        );
        let no_age = StreamRules { max_count: None, truncate_before: None, max_age_seconds: Some(0) };
        let refused = client.set_stream_rules(&sensor, no_age, None).await;
        assert!(
            matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("max_age_seconds")),
            "{refused:?}"
        );
        // Past the end: nothing is readable, and the stream is still there.
        let past = StreamRules { max_count: None, truncate_before: Some(5), max_age_seconds: None };
        client.set_stream_rules(&sensor, past, None).await.expect("rules");
        assert!(read_all(&client, &sensor, ReadFrom::Start, Direction::Forward, None).await.is_empty());
        let info = client.get_stream(&sensor).await.expect("info");
        assert_eq!((info.event_count, info.first_position), (0, None));
    }
}

backend_test! {
    #[tokio::test]
    async fn a_types_default_rules_apply_until_a_stream_sets_its_own() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = config(dir.path(), 0);
        settings.default_rules = vec!["sensor:max-count=2".parse().expect("rules")];
        let server = TestServer::start(settings).await;
        let client = server.client().await;
        let (sensor, order) = (new_stream("sensor"), new_stream("order"));
        for stream in [&sensor, &order] {
            client
                .append(stream, ExpectedVersion::NoStream, numbered(0, 5))
                .await
                .expect("append");
        }
        let read = |stream| read_all(&client, stream, ReadFrom::Start, Direction::Forward, None);
        assert_eq!(numbers(&read(&sensor).await), vec![3, 4]);
        assert_eq!(numbers(&read(&order).await), vec![0, 1, 2, 3, 4], "another type");
        let info = client.get_stream(&sensor).await.expect("info");
        assert_eq!(info.rules.max_count, Some(2));
        assert!(info.rules_are_type_default);
        assert_eq!((info.rules_revision, info.event_count), (0, 2));

        // Its own rules, even none, replace the default.
        client
            .set_stream_rules(&sensor, StreamRules::default(), Some(0))
            .await
            .expect("rules");
        assert_eq!(numbers(&read(&sensor).await), vec![0, 1, 2, 3, 4]);
        let info = client.get_stream(&sensor).await.expect("info");
        assert!(!info.rules_are_type_default);
        assert_eq!((info.rules, info.rules_revision), (StreamRules::default(), 1));
    }
}

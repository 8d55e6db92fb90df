//! Retried appends: re-sending events whose ids are committed at the place the append
//! asks for returns the original result and writes nothing, in every mode; the same ids
//! anywhere else are a conflict.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, read_all};
use evenire_client::{Direction, Error, ExpectedVersion, ReadFrom};

backend_test! {
    #[tokio::test]
    async fn a_retry_returns_the_original_result_in_every_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("order");

        let first = numbered(0, 3);
        let original = client
            .append(&stream, ExpectedVersion::NoStream, first.clone())
            .await
            .expect("first append");
        // Others write after it, so a retry cannot pass by luck.
        client
            .append(&stream, ExpectedVersion::Any, numbered(3, 2))
            .await
            .expect("later append");

        for mode in [
            ExpectedVersion::NoStream,
            ExpectedVersion::Any,
            ExpectedVersion::StreamExists,
        ] {
            let retried = client
                .append(&stream, mode, first.clone())
                .await
                .unwrap_or_else(|e| panic!("retry with {mode:?}: {e}"));
            assert_eq!(retried, original, "mode {mode:?}");
        }

        let second = numbered(5, 2);
        let original_second = client
            .append(&stream, ExpectedVersion::Exact(4), second.clone())
            .await
            .expect("exact append");
        let retried = client
            .append(&stream, ExpectedVersion::Exact(4), second.clone())
            .await
            .expect("exact retry");
        assert_eq!(retried, original_second);

        let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(
            common::numbers(&events),
            (0..7).collect::<Vec<_>>(),
            "nothing duplicated"
        );
    }
}

backend_test! {
    #[tokio::test]
    async fn the_same_ids_at_another_place_conflict() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 1 << 20)).await;
        let client = server.client().await;
        let stream = new_stream("order");
        let events = numbered(0, 2);
        client
            .append(&stream, ExpectedVersion::NoStream, events.clone())
            .await
            .expect("append");
        client
            .append(&stream, ExpectedVersion::Any, numbered(2, 1))
            .await
            .expect("append");

        // Exact version that is not where they are.
        let wrong_place = client
            .append(&stream, ExpectedVersion::Exact(2), events.clone())
            .await;
        assert!(
            matches!(wrong_place, Err(Error::EventIdConflict(_))),
            "{wrong_place:?}"
        );

        // Another stream.
        let other = client
            .append(&new_stream("order"), ExpectedVersion::Any, events.clone())
            .await;
        assert!(matches!(other, Err(Error::EventIdConflict(_))), "{other:?}");

        // Only part of the append was committed.
        let mut partly = events.clone();
        partly.push(numbered(9, 1).remove(0));
        let partial = client.append(&stream, ExpectedVersion::Any, partly).await;
        match partial {
            Err(Error::EventIdConflict(message)) => {
                assert!(message.contains("already committed"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }

        let read = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(read.len(), 3, "conflicts wrote nothing");
    }
}

backend_test! {
    /// An append refused (a wrong expected version, a conflict) leaves its ids free: the
    /// same events appended afterwards are written, once.
    #[tokio::test]
    async fn the_ids_of_a_refused_append_stay_free() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 1 << 20)).await;
        let client = server.client().await;
        let stream = new_stream("order");
        let (first, refused_events, new_events) = (numbered(0, 1), numbered(1, 3), numbered(4, 2));
        client
            .append(&stream, ExpectedVersion::NoStream, first.clone())
            .await
            .expect("append");

        let refused = client
            .append(&stream, ExpectedVersion::Exact(5), refused_events.clone())
            .await;
        assert!(
            matches!(refused, Err(Error::WrongExpectedVersion { .. })),
            "{refused:?}"
        );
        // New ids first, then one already committed: a conflict, and the new ones stay free.
        let mut partly = new_events.clone();
        partly.extend(first);
        let conflict = client.append(&stream, ExpectedVersion::Any, partly).await;
        assert!(
            matches!(conflict, Err(Error::EventIdConflict(_))),
            "{conflict:?}"
        );

        // The conflict's new events first, so that the refused ones' first positions are
        // taken by others: an id left pointing there would now conflict.
        client
            .append(&stream, ExpectedVersion::Exact(0), new_events)
            .await
            .expect("the conflict's new events");
        let written = client
            .append(&stream, ExpectedVersion::Exact(2), refused_events)
            .await
            .expect("the refused events, where they now fit");
        assert_eq!((written.version, written.position), (5, 5));
        let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(common::numbers(&events), [0, 4, 5, 1, 2, 3]);
    }
}

backend_test! {
    /// The original and its retry in flight at once: one write, two equal answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_retries_write_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("payment");
        let events = numbered(0, 1);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, stream, events) = (client.clone(), stream.clone(), events.clone());
                tokio::spawn(async move { client.append(&stream, ExpectedVersion::Any, events).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task").expect("append or retry"));
        }
        assert!(results.iter().all(|r| *r == results[0]));
        let read = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(read.len(), 1);
    }
}

backend_test! {
    /// Regression: a retried `no_stream` append that had re-created a soft-deleted stream
    /// (so its first version was not 0) was refused as an event-id conflict instead of
    /// returning the original result. Found by server/tests/model.rs.
    #[tokio::test]
    async fn a_retry_that_recreated_a_deleted_stream_returns_the_original_result() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("order");
        client
            .append(&stream, ExpectedVersion::NoStream, numbered(0, 2))
            .await
            .expect("append");
        client
            .delete_stream(&stream, ExpectedVersion::Exact(1), false)
            .await
            .expect("soft delete");
        let events = numbered(2, 2);
        let original = client
            .append(&stream, ExpectedVersion::NoStream, events.clone())
            .await
            .expect("re-create after delete");
        assert_eq!(original.version, 3);
        let retried = client
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("the retry is idempotent");
        assert_eq!(retried, original);
    }
}

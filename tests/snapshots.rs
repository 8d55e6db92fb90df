//! Snapshots: saved at a version the stream holds, read back with the events after
//! them in one call, kept apart from events (no position, no version, not in `$all`),
//! the newest few kept per stream, gone with a deleted stream, and all of it after a
//! restart.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, numbers};
use evenire_client::{Direction, Error, ExpectedVersion, ReadAllFrom};
use tokio_stream::StreamExt;

backend_test! {
    #[tokio::test]
    async fn a_stream_is_read_from_its_latest_snapshot_and_keeps_it_across_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = config(dir.path(), 0);
        settings.snapshots_per_stream = 2;
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;
        let order = new_stream("order");
        client
            .append(&order, ExpectedVersion::NoStream, numbered(0, 10))
            .await
            .expect("append");

        // Without a snapshot: every event.
        let read = client.read_from_snapshot(&order).await.expect("read");
        assert_eq!(read.snapshot, None);
        assert_eq!(numbers(&read.events), (0..10).collect::<Vec<_>>());

        client
            .save_snapshot(&order, 4, "OrderState", "{\"total\": 10}")
            .await
            .expect("save at 4");
        client
            .save_snapshot(&order, 7, "OrderState", "{\"total\": 28}")
            .await
            .expect("save at 7");
        let read = client.read_from_snapshot(&order).await.expect("read");
        let snapshot = read.snapshot.expect("the latest snapshot");
        assert_eq!((snapshot.version, snapshot.snapshot_type.as_str()), (7, "OrderState"));
        assert_eq!(&snapshot.data[..], b"{\"total\": 28}");
        assert_eq!(snapshot.stream, order);
        assert_eq!(numbers(&read.events), vec![8, 9]);

        // Not an event: the stream's version and the log are as they were.
        let info = client.get_stream(&order).await.expect("info");
        assert_eq!((info.version, info.event_count), (9, 10));
        let mut all = client
            .read_all(ReadAllFrom::Start, Direction::Forward, None)
            .await
            .expect("read $all");
        let mut positions = Vec::new();
        while let Some(event) = all.next().await {
            positions.push(event.expect("event").position);
        }
        assert_eq!(positions, (0..10).collect::<Vec<_>>());

        // A snapshot at the last version: nothing follows it.
        client
            .save_snapshot(&order, 9, "OrderState", "{\"total\": 45}")
            .await
            .expect("save at 9");
        let read = client.read_from_snapshot(&order).await.expect("read");
        assert_eq!(read.snapshot.as_ref().map(|s| s.version), Some(9));
        assert!(read.events.is_empty());

        server.stop().await.expect("clean stop");
        let server = TestServer::start(settings).await;
        let client = server.client().await;
        let read = client.read_from_snapshot(&order).await.expect("read after restart");
        assert_eq!(read.snapshot.map(|s| s.version), Some(9));
        assert!(read.events.is_empty());
    }
}

backend_test! {
    #[tokio::test]
    async fn snapshots_are_refused_by_name_and_go_with_a_deleted_stream() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let order = new_stream("order");

        let never = client.save_snapshot(&order, 0, "S", "x").await;
        assert!(matches!(never, Err(Error::NotFound(_))), "{never:?}");
        let never = client.read_from_snapshot(&order).await;
        assert!(matches!(never, Err(Error::NotFound(_))), "{never:?}");

        client
            .append(&order, ExpectedVersion::NoStream, numbered(0, 3))
            .await
            .expect("append");
        let ahead = client.save_snapshot(&order, 3, "S", "x").await;
        match ahead {
            Err(Error::Status(status)) => {
                assert_eq!(status.code(), tonic::Code::OutOfRange);
                assert!(status.message().contains("readable versions are 0 to 2"), "{status:?}");
            }
            other => panic!("a version past the stream's: {other:?}"),
        }
        let nameless = client.save_snapshot(&order, 1, "", "x").await;
        assert!(
            matches!(&nameless, Err(Error::InvalidArgument(m)) if m.contains("type")),
            "{nameless:?}"
        );

        client
            .save_snapshot(&order, 2, "S", "state at 2")
            .await
            .expect("save");
        client
            .delete_stream(&order, ExpectedVersion::Any, false)
            .await
            .expect("delete");
        let gone = client.read_from_snapshot(&order).await;
        assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
        let deleted = client.save_snapshot(&order, 2, "S", "x").await;
        assert!(matches!(deleted, Err(Error::NotFound(_))), "{deleted:?}");

        // Written again after the delete: versions go on, the old snapshot is gone, and
        // a snapshot of a deleted version is out of range.
        client
            .append(&order, ExpectedVersion::NoStream, numbered(3, 2))
            .await
            .expect("append after the delete");
        let read = client.read_from_snapshot(&order).await.expect("read");
        assert_eq!(read.snapshot, None, "the snapshot went with the deleted events");
        assert_eq!(numbers(&read.events), vec![3, 4]);
        let deleted_version = client.save_snapshot(&order, 1, "S", "x").await;
        assert!(
            matches!(&deleted_version, Err(Error::Status(s)) if s.code() == tonic::Code::OutOfRange),
            "{deleted_version:?}"
        );

        client
            .delete_stream(&order, ExpectedVersion::Any, true)
            .await
            .expect("tombstone");
        let tombstoned = client.save_snapshot(&order, 4, "S", "x").await;
        assert!(matches!(tombstoned, Err(Error::NotFound(_) | Error::Tombstoned(_))), "{tombstoned:?}");
    }
}

backend_test! {
    #[tokio::test]
    async fn only_the_newest_snapshots_by_version_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = config(dir.path(), 0);
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;
        let order = new_stream("order");
        client
            .append(&order, ExpectedVersion::NoStream, numbered(0, 10))
            .await
            .expect("append");
        // Saved out of order: the one at the highest version is the latest.
        for version in [5, 8, 6] {
            client
                .save_snapshot(&order, version, "S", version.to_string())
                .await
                .expect("save");
        }
        let read = client.read_from_snapshot(&order).await.expect("read");
        assert_eq!(read.snapshot.map(|s| s.version), Some(8));
        assert_eq!(numbers(&read.events), vec![9]);
    }
}

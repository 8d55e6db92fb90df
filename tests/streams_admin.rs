//! Stream administration: listing with filters and page tokens, stream info, soft
//! delete and re-append, tombstones, expected versions on delete, and all of it after a
//! restart.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, numbers, read_all};
use evenire_client::{
    Client, Direction, Error, ExpectedVersion, ListStreams, ReadFrom, StreamId, StreamState,
};
use std::collections::BTreeSet;

/// Every page of a listing, with the number of pages it took.
async fn list_every_page(client: &Client, mut list: ListStreams) -> (Vec<StreamId>, usize) {
    let mut streams = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.list_streams(&list).await.expect("list");
        pages += 1;
        streams.extend(page.streams.into_iter().map(|info| info.stream));
        match page.next_page_token {
            Some(token) => list.page_token = Some(token),
            None => return (streams, pages),
        }
    }
}

backend_test! {
    #[tokio::test]
    async fn listings_are_ordered_filtered_and_resumable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let mut written = BTreeSet::new();
        for (stream_type, count) in [("order", 120), ("sensor", 90), ("audit", 40)] {
            for _ in 0..count {
                let stream = new_stream(stream_type);
                client
                    .append(&stream, ExpectedVersion::NoStream, numbered(0, 1))
                    .await
                    .expect("append");
                written.insert((stream.stream_type.clone(), stream.key));
            }
        }

        let (all, pages) = list_every_page(
            &client,
            ListStreams {
                page_size: 40,
                ..ListStreams::default()
            },
        )
        .await;
        let listed: Vec<_> = all.iter().map(|s| (s.stream_type.clone(), s.key)).collect();
        assert_eq!(
            listed,
            written.iter().cloned().collect::<Vec<_>>(),
            "(type, key) order, complete"
        );
        assert!(pages >= 7, "250 streams in pages of 40: {pages} pages");

        let (sensors, _) = list_every_page(
            &client,
            ListStreams {
                stream_type: Some("sensor".into()),
                page_size: 25,
                ..ListStreams::default()
            },
        )
        .await;
        assert_eq!(sensors.len(), 90);
        assert!(sensors.iter().all(|s| s.stream_type == "sensor"));

        let prefix = all[17].key.to_string()[..2].to_string();
        let (by_prefix, _) = list_every_page(
            &client,
            ListStreams {
                key_prefix: Some(prefix.clone()),
                ..ListStreams::default()
            },
        )
        .await;
        let expected = all
            .iter()
            .filter(|s| s.key.to_string().starts_with(&prefix))
            .count();
        assert!(expected >= 1);
        assert_eq!(by_prefix.len(), expected);

        let bad = client
            .list_streams(&ListStreams {
                page_token: Some("garbage".into()),
                ..ListStreams::default()
            })
            .await;
        assert!(matches!(bad, Err(Error::InvalidArgument(m)) if m.contains("page_token")));
    }
}

backend_test! {
    #[tokio::test]
    async fn info_soft_delete_re_append_and_tombstone_survive_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = config(dir.path(), 0);
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;
        let order = new_stream("order");
        let doomed = new_stream("order");

        let never = client.get_stream(&order).await;
        assert!(matches!(never, Err(Error::NotFound(_))), "{never:?}");

        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        client
            .append(&doomed, ExpectedVersion::NoStream, numbered(0, 2))
            .await
            .expect("append");
        client
            .append(&order, ExpectedVersion::NoStream, numbered(0, 3))
            .await
            .expect("append");
        let info = client.get_stream(&order).await.expect("info");
        assert_eq!(info.state, StreamState::Live);
        assert_eq!((info.version, info.event_count), (2, 3));
        assert_eq!(
            (info.first_position, info.last_position),
            (Some(2), Some(4))
        );
        assert!(info.created >= before && info.last_appended >= info.created);

        // Expected version on delete.
        let stale = client
            .delete_stream(&order, ExpectedVersion::Exact(1), false)
            .await;
        assert!(matches!(
            stale,
            Err(Error::WrongExpectedVersion {
                actual: Some(2),
                ..
            })
        ));
        assert_eq!(
            client
                .delete_stream(&order, ExpectedVersion::Exact(2), false)
                .await
                .expect("soft delete"),
            2
        );
        assert_eq!(
            client
                .delete_stream(&order, ExpectedVersion::Exact(2), false)
                .await
                .expect("deleting again is idempotent"),
            2
        );
        let read = client
            .read(&order, ReadFrom::Start, Direction::Forward, None)
            .await;
        assert!(matches!(read, Err(Error::NotFound(m)) if m.contains("deleted")));
        let info = client
            .get_stream(&order)
            .await
            .expect("info of a deleted stream");
        assert_eq!(
            (info.state, info.event_count, info.first_position),
            (StreamState::Deleted, 0, None)
        );
        let listed = client
            .list_streams(&ListStreams::default())
            .await
            .expect("list");
        assert!(
            listed.streams.iter().all(|i| i.stream != order),
            "hidden from listings"
        );
        let with_deleted = client
            .list_streams(&ListStreams {
                include_deleted: true,
                ..ListStreams::default()
            })
            .await
            .expect("list");
        assert!(with_deleted.streams.iter().any(|i| i.stream == order));

        // A deleted stream counts as no stream; its versions continue.
        let refused = client
            .append(&order, ExpectedVersion::StreamExists, numbered(3, 1))
            .await;
        assert!(matches!(
            refused,
            Err(Error::WrongExpectedVersion { actual: None, .. })
        ));
        let again = client
            .append(&order, ExpectedVersion::NoStream, numbered(3, 2))
            .await
            .expect("re-append");
        assert_eq!(again.version, 4, "versions continue after the deleted ones");

        // Tombstone.
        client
            .delete_stream(&doomed, ExpectedVersion::Any, true)
            .await
            .expect("tombstone");
        let refused = client
            .append(&doomed, ExpectedVersion::Any, numbered(9, 1))
            .await;
        assert!(
            matches!(&refused, Err(Error::Tombstoned(m)) if m.contains("tombstoned")),
            "{refused:?}"
        );
        client
            .delete_stream(&doomed, ExpectedVersion::Any, true)
            .await
            .expect("tombstoning again is idempotent");

        server.stop().await.expect("clean stop");
        let server = TestServer::start(settings).await;
        let client = server.client().await;
        let events = read_all(&client, &order, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&events), vec![3, 4]);
        assert_eq!(
            events.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![3, 4]
        );
        let backward = read_all(&client, &order, ReadFrom::End, Direction::Backward, None).await;
        assert_eq!(backward.len(), 2, "backward reads stop at the delete");
        let info = client.get_stream(&order).await.expect("info");
        assert_eq!(
            (info.state, info.version, info.event_count),
            (StreamState::Live, 4, 2)
        );
        let info = client.get_stream(&doomed).await.expect("info");
        assert_eq!(info.state, StreamState::Tombstoned);
        let refused = client
            .append(&doomed, ExpectedVersion::Any, numbered(9, 1))
            .await;
        assert!(
            matches!(refused, Err(Error::Tombstoned(_))),
            "the tombstone survived restart"
        );
        let missing = client
            .delete_stream(&new_stream("x"), ExpectedVersion::Any, false)
            .await;
        assert!(matches!(missing, Err(Error::NotFound(_))));
    }
}

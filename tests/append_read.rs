//! Appending and reading back: every direction and starting point, max counts, reads
//! past the end, batches across segment rotation, with the cache on and off.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, numbers, read_all};
use evenire_client::{Direction, Error, ExpectedVersion, ReadFrom};
use evenire_server::config::ByteSize;

/// The same checks with the cache on and with it off: the cache is an optimisation.
async fn reads_every_way(cache_bytes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(config(dir.path(), cache_bytes)).await;
    let client = server.client().await;
    let stream = new_stream("order");

    // Five appends of 1..5 events: 15 events, versions 0..=14.
    let mut next = 0;
    for n in 1..=5 {
        let result = client
            .append(&stream, ExpectedVersion::Any, numbered(next, n))
            .await
            .expect("append");
        next += n;
        assert_eq!(result.version, next - 1);
    }
    let all: Vec<u64> = (0..15).collect();
    let read = |from, direction, max| read_all(&client, &stream, from, direction, max);

    let forward = read(ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(numbers(&forward), all);
    assert_eq!(
        forward.iter().map(|e| e.version).collect::<Vec<_>>(),
        all,
        "versions are 0-based and contiguous"
    );
    assert!(forward.windows(2).all(|w| w[0].position < w[1].position));
    assert!(
        forward
            .iter()
            .all(|e| e.stream == stream && e.event_type == "Numbered")
    );

    let backward = read(ReadFrom::End, Direction::Backward, None).await;
    assert_eq!(
        numbers(&backward),
        all.iter().rev().copied().collect::<Vec<_>>()
    );

    let middle = read(ReadFrom::Version(4), Direction::Forward, Some(5)).await;
    assert_eq!(numbers(&middle), vec![4, 5, 6, 7, 8]);

    let down = read(ReadFrom::Version(4), Direction::Backward, None).await;
    assert_eq!(numbers(&down), vec![4, 3, 2, 1, 0]);

    let latest = read(ReadFrom::End, Direction::Backward, Some(1)).await;
    assert_eq!(
        numbers(&latest),
        vec![14],
        "the sensor case: last event only"
    );

    let first = read(ReadFrom::Start, Direction::Backward, None).await;
    assert_eq!(numbers(&first), vec![0]);

    assert!(
        read(ReadFrom::End, Direction::Forward, None)
            .await
            .is_empty()
    );
    assert!(
        read(ReadFrom::Version(15), Direction::Forward, None)
            .await
            .is_empty()
    );
    assert!(
        read(ReadFrom::Version(u64::MAX), Direction::Forward, None)
            .await
            .is_empty()
    );
    assert!(
        read(ReadFrom::Start, Direction::Forward, Some(0))
            .await
            .is_empty()
    );

    let clamped = read(ReadFrom::Version(1000), Direction::Backward, Some(2)).await;
    assert_eq!(
        numbers(&clamped),
        vec![14, 13],
        "backward past the end starts at the last"
    );

    let huge = read(ReadFrom::Start, Direction::Forward, Some(u64::MAX)).await;
    assert_eq!(huge.len(), 15);

    server.stop().await.expect("clean stop");
}

backend_test! {
    #[tokio::test]
    async fn reads_every_way_with_the_cache() {
        reads_every_way(64 << 20).await;
    }
}

backend_test! {
    #[tokio::test]
    async fn reads_every_way_without_the_cache() {
        reads_every_way(0).await;
    }
}

backend_test! {
    #[tokio::test]
    async fn never_written_stream_is_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let result = client
            .read(
                &new_stream("order"),
                ReadFrom::Start,
                Direction::Forward,
                None,
            )
            .await;
        assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    }
}

backend_test! {
    #[tokio::test]
    async fn events_keep_their_fields() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("audit");
        let id = uuid::Uuid::new_v4();
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        let event = evenire_client::EventData::new("UserLoggedIn", vec![0u8, 255, 7])
            .with_id(id)
            .with_metadata("{\"by\":\"test\"}");
        client
            .append(&stream, ExpectedVersion::NoStream, [event])
            .await
            .expect("append");
        let read = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].id, id);
        assert_eq!(read[0].event_type, "UserLoggedIn");
        assert_eq!(&read[0].data[..], &[0u8, 255, 7]);
        assert_eq!(&read[0].metadata[..], b"{\"by\":\"test\"}");
        assert!(read[0].created >= before && read[0].created <= std::time::SystemTime::now());
    }
}

/// Many streams interleaved over many small segments, read back from disk with no cache.
#[tokio::test]
async fn reads_across_segment_rotation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), 0);
    settings.segment_size = ByteSize(4096);
    let server = TestServer::start(settings).await;
    let client = server.client().await;
    let streams: Vec<_> = (0..3).map(|_| new_stream("sensor")).collect();
    for round in 0..40 {
        for stream in &streams {
            // Payloads of ~300 bytes: a segment holds about a dozen records.
            let events = numbered(round * 2, 2)
                .into_iter()
                .map(|mut e| {
                    let mut data = e.data.to_vec();
                    data.extend(std::iter::repeat_n(b' ', 150));
                    e.data = data.into();
                    e
                })
                .collect::<Vec<_>>();
            client
                .append(stream, ExpectedVersion::Any, events)
                .await
                .expect("append");
        }
    }
    let segments = std::fs::read_dir(dir.path())
        .expect("list data dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().starts_with("segment-"))
                .unwrap_or(false)
        })
        .count();
    assert!(segments > 10, "expected many segments, found {segments}");
    for stream in &streams {
        let forward = read_all(&client, stream, ReadFrom::Start, Direction::Forward, None).await;
        let trimmed: Vec<_> = forward
            .iter()
            .map(|e| {
                std::str::from_utf8(&e.data)
                    .expect("utf-8")
                    .trim()
                    .parse::<u64>()
            })
            .collect::<Result<_, _>>()
            .expect("numbers");
        assert_eq!(trimmed, (0..80).collect::<Vec<_>>());
        let backward = read_all(&client, stream, ReadFrom::End, Direction::Backward, Some(3)).await;
        assert_eq!(
            backward.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![79, 78, 77]
        );
    }
}

backend_test! {
    /// A read larger than one response message arrives whole and in order.
    #[tokio::test]
    async fn long_reads_span_many_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let stream = new_stream("ledger");
        for chunk in 0..5 {
            client
                .append(&stream, ExpectedVersion::Any, numbered(chunk * 1000, 1000))
                .await
                .expect("append");
        }
        let forward = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&forward), (0..5000).collect::<Vec<_>>());
        let backward = read_all(&client, &stream, ReadFrom::End, Direction::Backward, None).await;
        assert_eq!(numbers(&backward), (0..5000).rev().collect::<Vec<_>>());
    }
}

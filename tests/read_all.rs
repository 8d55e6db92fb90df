//! Reading the whole log (`$all`): every event in position order, forward and
//! backward, from the start, the end or a position, across segments and a restart.

#[macro_use]
mod common;

use common::{TestServer, config, new_stream, numbered, numbers};
use evenire_client::{Client, Direction, ExpectedVersion, ReadAllFrom, RecordedEvent};
use evenire_server::config::ByteSize;
use tokio_stream::StreamExt;

async fn read_log(
    client: &Client,
    from: ReadAllFrom,
    direction: Direction,
    max_count: Option<u64>,
) -> Vec<RecordedEvent> {
    let mut events = client
        .read_all(from, direction, max_count)
        .await
        .expect("read_all starts");
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        out.push(event.expect("event"));
    }
    out
}

backend_test! {
    #[tokio::test]
    async fn the_log_reads_in_position_order_both_ways_across_segments_and_restarts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = config(dir.path(), 0);
        settings.segment_size = ByteSize(2048);
        let server = TestServer::start(settings.clone()).await;
        let client = server.client().await;

        let empty = read_log(&client, ReadAllFrom::Start, Direction::Forward, None).await;
        assert!(empty.is_empty(), "an empty store reads as nothing");

        // Three streams interleaved: the log holds 0..90 in commit order.
        let streams: Vec<_> = (0..3).map(|_| new_stream("order")).collect();
        for i in 0..30 {
            let stream = &streams[(i % 3) as usize];
            client
                .append(stream, ExpectedVersion::Any, numbered(i * 3, 3))
                .await
                .expect("append");
        }
        server.stop().await.expect("clean stop");
        let server = TestServer::start(settings).await;
        let client = server.client().await;

        let forward = read_log(&client, ReadAllFrom::Start, Direction::Forward, None).await;
        assert_eq!(numbers(&forward), (0..90).collect::<Vec<_>>());
        assert!(
            forward
                .iter()
                .enumerate()
                .all(|(i, e)| e.position == i as u64)
        );
        assert_eq!(forward[3].stream, streams[1], "each event keeps its stream");
        assert_eq!(forward[3].version, 0);

        let backward = read_log(&client, ReadAllFrom::End, Direction::Backward, None).await;
        assert_eq!(numbers(&backward), (0..90).rev().collect::<Vec<_>>());

        let page = read_log(
            &client,
            ReadAllFrom::Position(40),
            Direction::Forward,
            Some(5),
        )
        .await;
        assert_eq!(numbers(&page), vec![40, 41, 42, 43, 44]);
        let down = read_log(&client, ReadAllFrom::Position(2), Direction::Backward, None).await;
        assert_eq!(numbers(&down), vec![2, 1, 0]);
        let latest = read_log(&client, ReadAllFrom::End, Direction::Backward, Some(1)).await;
        assert_eq!(latest[0].position, 89);
        assert!(
            read_log(&client, ReadAllFrom::End, Direction::Forward, None)
                .await
                .is_empty()
        );
        assert!(
            read_log(&client, ReadAllFrom::Position(90), Direction::Forward, None)
                .await
                .is_empty()
        );
    }
}

backend_test! {
    #[tokio::test]
    async fn read_all_refuses_a_request_without_a_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let mut raw = evenire_proto::v1::event_store_service_client::EventStoreServiceClient::new(
            server.channel().await,
        );
        let request = evenire_proto::v1::ReadAllRequest {
            from: None,
            direction: evenire_proto::v1::ReadDirection::Forward as i32,
            max_count: None,
        };
        let status = raw.read_all(request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("from"), "{}", status.message());
    }
}

//! One client that opens reads and subscriptions and reads none of them, against the
//! real binary: it gets its share of `--max-open-reads` per connection and per address,
//! and every other client still reads.

use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId};
use evenire_proto::v1 as pb;
use evenire_proto::v1::event_store_service_client::EventStoreServiceClient;
use evenire_testkit::net::channel_from;
use std::net::{IpAddr, Ipv4Addr};
use tonic::transport::Channel;

mod common;

/// Where the hog's connections come from: another loopback address.
const HOG: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Opens subscriptions on `client` until one is refused: how many opened (held in
/// `held`) and the refusal.
async fn subscribe_until_refused(
    client: &mut EventStoreServiceClient<Channel>,
    held: &mut Vec<tonic::Streaming<pb::SubscribeResponse>>,
) -> (usize, tonic::Status) {
    for opened in 0..1000 {
        match client.subscribe(common::subscribe_to_all()).await {
            Ok(response) => held.push(response.into_inner()),
            Err(refused) => return (opened, refused),
        }
    }
    panic!("a thousand subscriptions opened on one connection");
}

#[tokio::test]
async fn one_client_gets_its_share_of_reads_and_others_still_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = common::start(
        dir.path(),
        &[
            "--max-open-reads",
            "64",
            "--max-open-reads-per-connection",
            "16",
            "--max-open-reads-per-ip",
            "40",
        ],
    );
    let addr = server.addr.clone();
    let mut held = Vec::new();
    let mut hog = EventStoreServiceClient::new(channel_from(HOG, &addr).await.expect("hog"));
    let (opened, refused) = subscribe_until_refused(&mut hog, &mut held).await;
    assert_eq!(
        opened, 16,
        "one connection gets --max-open-reads-per-connection"
    );
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .contains("max_open_reads_per_connection of 16"),
        "{}",
        refused.message()
    );

    let mut opened_from_hog = opened;
    let refused = loop {
        let mut more = EventStoreServiceClient::new(channel_from(HOG, &addr).await.expect("hog"));
        let (opened, refused) = subscribe_until_refused(&mut more, &mut held).await;
        opened_from_hog += opened;
        if opened < 16 {
            break refused;
        }
    };
    assert_eq!(
        opened_from_hog, 40,
        "one address gets --max-open-reads-per-ip"
    );
    assert!(
        refused.message().contains("max_open_reads_per_ip of 40"),
        "{}",
        refused.message()
    );

    // Another client, from 127.0.0.1, appends and reads back.
    let client = Client::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");
    client
        .append(
            &stream,
            ExpectedVersion::Any,
            [EventData::new("Placed", "{}")],
        )
        .await
        .expect("append");
    let mut read = client
        .read(&stream, ReadFrom::Start, Direction::Forward, None)
        .await
        .expect("another client still reads");
    let first = tokio_stream::StreamExt::next(&mut read).await;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");

    // The hog's shares come back when it goes.
    drop(held);
    drop(hog);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut again = EventStoreServiceClient::new(channel_from(HOG, &addr).await.expect("hog"));
    let (opened, _) = subscribe_until_refused(&mut again, &mut Vec::new()).await;
    assert_eq!(opened, 16, "the hog's shares came back when it went");
    server.kill();
}

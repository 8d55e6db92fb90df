//! Careless and hostile clients against the real binary: reads opened and never read
//! hold bounded memory and are capped in number, connections past the limit are closed
//! while the server goes on serving, and nothing stays held after such clients go.

use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId};
use evenire_proto::v1 as pb;
use evenire_proto::v1::event_store_service_client::EventStoreServiceClient;
use std::io::Read;
use std::process::Child;
use std::time::Duration;
use tokio_stream::StreamExt;

mod common;
use common::start;

/// The server's resident memory, in KiB.
fn rss_kib(child: &Child) -> u64 {
    let kib = evenire_testkit::process::rss_kib(child.id());
    assert!(kib > 0, "the server's VmRSS is readable");
    kib
}

fn read_request(stream: &StreamId) -> pb::ReadRequest {
    pb::ReadRequest {
        stream: Some(pb::StreamId {
            key: stream.key.to_string(),
            r#type: stream.stream_type.clone(),
        }),
        from: Some(pb::read_request::From::Origin(pb::ReadOrigin::Start as i32)),
        direction: pb::ReadDirection::Forward as i32,
        max_count: None,
    }
}

/// A new stream of `thousands` x 1,000 events of 1 KiB.
async fn bulk_stream(uri: &str, thousands: usize) -> StreamId {
    let client = Client::connect(uri.to_string()).await.expect("connect");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "bulk");
    let payload = vec![b'x'; 1024];
    for _ in 0..thousands {
        let batch = (0..1000).map(|_| EventData::new("Bulk", payload.clone()));
        client
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .expect("append");
    }
    stream
}

#[test]
fn unread_streams_hold_bounded_memory_and_are_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(
        dir.path(),
        &["--cache-size", "8MiB", "--max-open-reads", "100"],
    );
    let addr = server.addr.clone();
    let uri = format!("http://{addr}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = runtime.block_on(bulk_stream(&uri, 20));
    // One whole read first, so the cache is at its bound before the measure starts:
    // the growth below is what the unread reads hold, not the cache changing from the
    // newest records (which the appends left) to the disk reads the reads bring in.
    let read_once = runtime.block_on(async {
        let client = Client::connect(uri.clone()).await.expect("connect");
        let mut read = client
            .read(&stream, ReadFrom::Start, Direction::Forward, None)
            .await
            .expect("read the stream once");
        let mut events = 0;
        while let Some(event) = read.next().await {
            event.expect("an event");
            events += 1;
        }
        events
    });
    assert_eq!(read_once, 20_000);
    let before = rss_kib(&server.child);

    let (growth, refused) = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(
                EventStoreServiceClient::connect(uri.clone())
                    .await
                    .expect("connect"),
            );
        }
        // 100 reads of a 20 MiB stream, never read.
        let mut held = Vec::new();
        for i in 0..100 {
            let response = clients[i % 4]
                .read(read_request(&stream))
                .await
                .expect("read starts");
            held.push(response.into_inner());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let growth = rss_kib(&server.child).saturating_sub(before);
        let refused = clients[0]
            .read(read_request(&stream))
            .await
            .expect_err("over the cap");
        drop(held);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Their permits came back: as many reads can be opened again, and read.
        for i in 0..100 {
            let mut read = clients[i % 4]
                .read(read_request(&stream))
                .await
                .expect("reads work again once the careless ones went")
                .into_inner();
            assert!(read.message().await.expect("a message").is_some());
        }
        (growth, refused)
    });
    println!(
        "100 unread reads of a 20 MiB stream: server memory grew {} KiB",
        growth
    );
    assert!(
        growth < 100 * 768,
        "grew {growth} KiB: more than the 0.75 MiB per unread read docs/operations.md gives"
    );
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("max_open_reads of 100"),
        "{}",
        refused.message()
    );
    server.kill();
}

#[test]
fn connections_past_the_limit_are_closed_and_service_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--max-connections", "32"]);
    let addr = server.addr.clone();
    let idle: Vec<_> = (0..32)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = std::net::TcpStream::connect(&addr).expect("the kernel accepts");
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let read = extra.read(&mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        "a connection past the limit is closed by the server"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(common::append_one(&format!("http://{addr}")))
        .expect("served once the idle connections went");
    server.kill();
}

/// Two thousand connections against the default limit of 1,024, then fifty clients that
/// start a large read, take one message and vanish: the server closes what is over the
/// limit, its memory stays bounded, and everything those clients held comes back.
#[test]
fn thousands_of_connections_and_clients_that_vanish_mid_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(
        dir.path(),
        &["--cache-size", "8MiB", "--max-open-reads", "64"],
    );
    let addr = server.addr.clone();
    let uri = format!("http://{addr}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = runtime.block_on(bulk_stream(&uri, 10));
    let before = rss_kib(&server.child);

    let connections: Vec<_> = (0..2000)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let with_connections = rss_kib(&server.child);
    drop(connections);
    std::thread::sleep(Duration::from_millis(500));

    runtime.block_on(async {
        for _ in 0..50 {
            let mut client = EventStoreServiceClient::connect(uri.clone())
                .await
                .expect("connect");
            let mut read = client
                .read(read_request(&stream))
                .await
                .expect("read")
                .into_inner();
            assert!(read.message().await.expect("one message").is_some());
            // The client vanishes: its connection and its half-read stream are dropped.
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Every permit came back: the cap of 64 open reads is fully available.
        let mut client = EventStoreServiceClient::connect(uri.clone())
            .await
            .expect("connect");
        let mut held = Vec::new();
        for _ in 0..64 {
            held.push(
                client
                    .read(read_request(&stream))
                    .await
                    .expect("read")
                    .into_inner(),
            );
        }
        let over = client.read(read_request(&stream)).await;
        assert_eq!(
            over.expect_err("the 65th").code(),
            tonic::Code::ResourceExhausted
        );
    });
    let after = rss_kib(&server.child);
    println!(
        "2,000 connections: server memory {} KiB -> {} KiB; after 50 vanished readers and 64 open reads: {} KiB",
        before, with_connections, after
    );
    assert!(
        with_connections.saturating_sub(before) < 64 * 1024,
        "idle connections cost more than 64 MiB"
    );
    server.kill();
}

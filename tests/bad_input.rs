//! Bad input: every malformed or oversized request gets INVALID_ARGUMENT (or the
//! transport's limit status) naming the field or limit, writes nothing, and leaves the
//! server serving.

#[macro_use]
mod common;

use common::{TestServer, config};
use evenire_proto::v1 as pb;
use evenire_proto::v1::event_store_service_client::EventStoreServiceClient;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

const KEY: &str = "7d0c3a4e-8a5f-4b44-9f0e-1f6d2a3b4c5d";

fn stream(key: &str, stream_type: &str) -> Option<pb::StreamId> {
    Some(pb::StreamId {
        key: key.into(),
        r#type: stream_type.into(),
    })
}

fn state(s: i32) -> Option<pb::ExpectedVersion> {
    Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::State(s)),
    })
}

fn event(id: &str, event_type: &str, data_len: usize) -> pb::EventData {
    pb::EventData {
        id: id.into(),
        r#type: event_type.into(),
        data: vec![b'x'; data_len].into(),
        metadata: Default::default(),
    }
}

fn valid_append() -> pb::AppendRequest {
    pb::AppendRequest {
        stream: stream(KEY, "order"),
        expected_version: state(pb::ExpectedState::Any as i32),
        events: vec![event("", "Placed", 10)],
    }
}

fn valid_read() -> pb::ReadRequest {
    pb::ReadRequest {
        stream: stream(KEY, "order"),
        from: Some(pb::read_request::From::Origin(pb::ReadOrigin::Start as i32)),
        direction: pb::ReadDirection::Forward as i32,
        max_count: None,
    }
}

async fn raw_client(server: &TestServer) -> EventStoreServiceClient<Channel> {
    EventStoreServiceClient::connect(server.uri())
        .await
        .expect("connect")
        .max_encoding_message_size(64 << 20)
}

/// A gRPC client with no messages of its own, for sending what the generated ones
/// cannot, with the path of `Append`.
async fn untyped_client(server: &TestServer) -> (tonic::client::Grpc<Channel>, PathAndQuery) {
    let channel = Channel::from_shared(server.uri())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let path = PathAndQuery::from_static("/evenire.v1.EventStoreService/Append");
    (tonic::client::Grpc::new(channel), path)
}

fn bad_appends() -> Vec<(&'static str, pb::AppendRequest, Code, &'static str)> {
    let uuid = "8b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
    let mut cases = Vec::new();
    let mut add = |name, change: &dyn Fn(&mut pb::AppendRequest), code, needle| {
        let mut request = valid_append();
        change(&mut request);
        cases.push((name, request, code, needle));
    };
    add(
        "no stream",
        &|r| r.stream = None,
        Code::InvalidArgument,
        "stream: required",
    );
    add(
        "malformed key",
        &|r| r.stream = stream("not-a-uuid", "order"),
        Code::InvalidArgument,
        "stream.key",
    );
    add(
        "key without hyphens",
        &|r| r.stream = stream("7d0c3a4e8a5f4b449f0e1f6d2a3b4c5d", "order"),
        Code::InvalidArgument,
        "stream.key",
    );
    add(
        "empty stream type",
        &|r| r.stream = stream(KEY, ""),
        Code::InvalidArgument,
        "stream.type",
    );
    add(
        "oversize stream type",
        &|r| r.stream = stream(KEY, &"t".repeat(256)),
        Code::InvalidArgument,
        "255",
    );
    add(
        "no expected version",
        &|r| r.expected_version = None,
        Code::InvalidArgument,
        "expected_version",
    );
    add(
        "empty expected version",
        &|r| r.expected_version = Some(pb::ExpectedVersion { kind: None }),
        Code::InvalidArgument,
        "expected_version",
    );
    add(
        "unspecified state",
        &|r| r.expected_version = state(0),
        Code::InvalidArgument,
        "expected_version.state",
    );
    add(
        "unknown state",
        &|r| r.expected_version = state(99),
        Code::InvalidArgument,
        "expected_version.state",
    );
    add(
        "zero events",
        &|r| r.events.clear(),
        Code::InvalidArgument,
        "at least one event",
    );
    add(
        "empty event type",
        &|r| r.events = vec![event("", "", 1)],
        Code::InvalidArgument,
        "events[0].type",
    );
    add(
        "oversize event type",
        &|r| r.events = vec![event("", &"e".repeat(300), 1)],
        Code::InvalidArgument,
        "events[0].type",
    );
    add(
        "malformed event id",
        &|r| r.events = vec![event("", "A", 1), event("xyz", "A", 1)],
        Code::InvalidArgument,
        "events[1].id",
    );
    add(
        "duplicate event ids",
        &|r| r.events = vec![event(uuid, "A", 1), event(uuid, "A", 1)],
        Code::InvalidArgument,
        "events[1].id",
    );
    add(
        "oversize event",
        &|r| r.events = vec![event("", "A", (4 << 20) + 1)],
        Code::InvalidArgument,
        "max_event_size",
    );
    add(
        "too many events",
        &|r| r.events = (0..10_001).map(|_| event("", "A", 0)).collect(),
        Code::InvalidArgument,
        "max_events_per_append",
    );
    add(
        "oversize request",
        &|r| r.events = (0..5).map(|_| event("", "A", 3_500_000)).collect(),
        Code::ResourceExhausted,
        "max_request_size",
    );
    cases
}

backend_test! {
    #[tokio::test]
    async fn bad_appends_are_refused_and_write_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let mut client = raw_client(&server).await;

        for (name, request, code, needle) in bad_appends() {
            let status = client.append(request).await.expect_err(name);
            assert_eq!(status.code(), code, "{name}: {status:?}");
            assert!(
                status.message().contains(needle),
                "{name}: `{}` does not mention `{needle}`",
                status.message()
            );
            // tonic's own wording is replaced, not repeated.
            assert!(!status.message().contains("Error, decoded"), "{status:?}");
        }
        let read = client
            .read(valid_read())
            .await
            .expect_err("nothing was written");
        assert_eq!(read.code(), Code::NotFound);

        let ok = client.append(valid_append()).await.expect("still serving");
        assert_eq!(ok.into_inner().version, 0);
    }
}

backend_test! {
    #[tokio::test]
    async fn bad_reads_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let mut client = raw_client(&server).await;
        client.append(valid_append()).await.expect("append");

        let mut cases: Vec<(&str, pb::ReadRequest, &str)> = Vec::new();
        let mut add = |name, change: &dyn Fn(&mut pb::ReadRequest), needle| {
            let mut request = valid_read();
            change(&mut request);
            cases.push((name, request, needle));
        };
        add("no stream", &|r| r.stream = None, "stream: required");
        add(
            "malformed key",
            &|r| r.stream = stream("{}", "order"),
            "stream.key",
        );
        add("no from", &|r| r.from = None, "from: required");
        add(
            "unspecified origin",
            &|r| r.from = Some(pb::read_request::From::Origin(0)),
            "origin",
        );
        add(
            "unknown origin",
            &|r| r.from = Some(pb::read_request::From::Origin(7)),
            "origin",
        );
        add("unspecified direction", &|r| r.direction = 0, "direction");
        add("unknown direction", &|r| r.direction = -3, "direction");
        for (name, request, needle) in cases {
            let status = client.read(request).await.expect_err(name);
            assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
            assert!(
                status.message().contains(needle),
                "{name}: {}",
                status.message()
            );
        }

        let mut huge = valid_read();
        huge.max_count = Some(u64::MAX);
        let mut events = client
            .read(huge)
            .await
            .expect("huge max_count is fine")
            .into_inner();
        let mut count = 0;
        while let Some(batch) = events.next().await {
            count += batch.expect("batch").events.len();
        }
        assert_eq!(count, 1);
    }
}

backend_test! {
    /// Garbage on the wire: bytes that are not a protobuf message at all.
    #[tokio::test]
    async fn undecodable_messages_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let (mut grpc, path) = untyped_client(&server).await;
        grpc.ready().await.expect("ready");
        let garbage = pb::ReadResponse {
            events: vec![pb::RecordedEvent {
                id: "x".into(),
                ..Default::default()
            }],
        };
        // A ReadResponse sent as an AppendRequest: field 1 is a message in both but with
        // different fields, so it decodes to something the checks must refuse.
        let codec = tonic_prost::ProstCodec::<pb::ReadResponse, pb::AppendResponse>::default();
        let result = grpc.unary(tonic::Request::new(garbage), path, codec).await;
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

        let mut client = raw_client(&server).await;
        client.append(valid_append()).await.expect("still serving");
    }
}

backend_test! {
    /// Bytes that are not protobuf at all, as an append and as a read: tonic's decode
    /// error was `INTERNAL`, the server's fault by the gRPC codes; it is the client's.
    #[tokio::test]
    async fn bytes_that_are_not_protobuf_are_invalid_arguments() {
        use evenire_proto::Encoded;

        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let (mut grpc, append) = untyped_client(&server).await;
        let read = PathAndQuery::from_static("/evenire.v1.EventStoreService/Read");
        // Field 1 as length-delimited with 255 bytes that never come; a wire type (7)
        // that does not exist.
        for garbage in [&[0x0a, 0xff][..], &[0x0f, 0x01]] {
            for path in [append.clone(), read.clone()] {
                grpc.ready().await.expect("ready");
                let codec = tonic_prost::ProstCodec::<Encoded, pb::AppendResponse>::default();
                let request = tonic::Request::new(Encoded(garbage.to_vec().into()));
                let status = match grpc.unary(request, path.clone(), codec).await {
                    Ok(_) => panic!("{path}: {garbage:?} was accepted"),
                    Err(status) => status,
                };
                assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
                let detail = status
                    .message()
                    .strip_prefix("request message is not valid protobuf: ")
                    .unwrap_or_else(|| panic!("{status:?}"));
                assert!(!detail.is_empty(), "prost's reason follows: {status:?}");
            }
        }
        let mut client = raw_client(&server).await;
        client.append(valid_append()).await.expect("still serving");
    }
}

backend_test! {
    /// Strings that are not UTF-8, which the generated types cannot even carry: refused
    /// naming the field, as the server reads appends itself.
    #[tokio::test]
    async fn strings_that_are_not_utf8_are_refused_naming_the_field() {
        use evenire_proto::Encoded;
        use prost::Message;

        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let (mut grpc, path) = untyped_client(&server).await;
        // The request with the marker's bytes broken into invalid UTF-8.
        let broken = |request: pb::AppendRequest, marker: &str| {
            let mut bytes = request.encode_to_vec();
            let at = bytes
                .windows(marker.len())
                .position(|w| w == marker.as_bytes())
                .expect("the marker is in the request");
            bytes[at + 1] = 0xff;
            Encoded(bytes.into())
        };
        let mut append = valid_append();
        append.stream = stream(KEY, "MARKER");
        let cases = [
            (broken(append, "MARKER"), "stream.type: not valid UTF-8"),
            (
                broken(
                    pb::AppendRequest {
                        events: vec![event("", "Placed", 1), event("", "MARKER", 1)],
                        ..valid_append()
                    },
                    "MARKER",
                ),
                "events[1].type: not valid UTF-8",
            ),
            (
                broken(
                    pb::AppendRequest {
                        events: vec![event("MARKER", "Placed", 1)],
                        ..valid_append()
                    },
                    "MARKER",
                ),
                "events[0].id: not valid UTF-8",
            ),
        ];
        for (request, needle) in cases {
            grpc.ready().await.expect("ready");
            let codec = tonic_prost::ProstCodec::<Encoded, pb::AppendResponse>::default();
            let sent = grpc.unary(tonic::Request::new(request), path.clone(), codec);
            let status = sent.await.expect_err(needle);
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(needle), "{status:?}");
        }
        let mut client = raw_client(&server).await;
        let read = client
            .read(valid_read())
            .await
            .expect_err("nothing written");
        assert_eq!(read.code(), Code::NotFound);
        client.append(valid_append()).await.expect("still serving");
    }
}

//! The standard services: gRPC health (NOT_SERVING while the log is recovered, SERVING
//! after, for "" and for the service) and server reflection for grpcurl; and
//! GetServerInfo, which reports the same state with the server's version and figures.

#[macro_use]
mod common;

use common::{TestServer, config};
use evenire_client::{Error, ExpectedVersion, ServerState};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn status_of(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<i32, tonic::Status> {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    Ok(health.check(request).await?.into_inner().status)
}

backend_test! {
    #[tokio::test]
    async fn health_reports_serving_for_the_server_and_the_service() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let mut health = server.health().await;
        assert_eq!(
            status_of(&mut health, "").await.expect("check \"\""),
            ServingStatus::Serving as i32
        );
        assert_eq!(
            status_of(&mut health, evenire_proto::SERVICE_NAME)
                .await
                .expect("check service"),
            ServingStatus::Serving as i32
        );
        let unknown = status_of(&mut health, "no.such.Service").await;
        assert_eq!(unknown.expect_err("unknown service").code(), Code::NotFound);
    }
}

backend_test! {
    #[tokio::test]
    async fn server_info_reports_the_version_state_and_what_the_store_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let before = std::time::SystemTime::now();
        let server = TestServer::start(config(dir.path(), 0)).await;
        let client = server.client().await;
        let empty = client.server_info().await.expect("server info");
        assert_eq!(empty.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(empty.state, ServerState::Serving);
        assert_eq!(empty.write_refusal, None);
        assert!(!empty.backend.is_empty());
        let since_start = empty.started.duration_since(before);
        assert!(since_start.is_ok(), "started {:?} before the test", empty.started);
        let store = empty.store.expect("figures for an unlimited caller");
        assert_eq!((store.streams, store.events), (0, 0));

        let (order, invoice) = (common::new_stream("order"), common::new_stream("invoice"));
        for (stream, count) in [(&order, 2), (&invoice, 3)] {
            client
                .append(stream, ExpectedVersion::Any, common::numbered(0, count))
                .await
                .expect("append");
        }
        client
            .delete_stream(&invoice, ExpectedVersion::Any, false)
            .await
            .expect("delete");
        let held = client.server_info().await.expect("server info");
        let store = held.store.expect("figures");
        // Deleted streams and their events still count: they are in the log.
        assert_eq!((store.streams, store.events), (2, 5), "{store:?}");
        if let Some(bytes) = store.log_bytes {
            assert!(bytes > 0, "{store:?}");
        }
        assert_eq!(held.started, empty.started);
    }
}

/// Recovery made to wait: the only segment is a named pipe, so reading it blocks until
/// the test writes to it. Meanwhile health says NOT_SERVING and appends are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_while_recovering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("segment-00000000000000000000.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let server = TestServer::spawn(config(dir.path(), 0)).await;

    let mut health = None;
    for _ in 0..200 {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(server.uri())
            .expect("uri")
            .connect()
            .await
        {
            health = Some(HealthClient::new(channel));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut health = health.expect("the server listens during recovery");
    assert_eq!(
        status_of(&mut health, "").await.expect("check"),
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status_of(&mut health, evenire_proto::SERVICE_NAME)
            .await
            .expect("check"),
        ServingStatus::NotServing as i32
    );
    let client = server.client().await;
    let refused = client
        .append(
            &common::new_stream("order"),
            ExpectedVersion::Any,
            common::numbered(0, 1),
        )
        .await;
    match refused {
        Err(Error::Unavailable(message)) => assert!(message.contains("recovering"), "{message}"),
        other => panic!("expected UNAVAILABLE while recovering, got {other:?}"),
    }
    let info = client
        .server_info()
        .await
        .expect("server info while recovering");
    assert_eq!(info.state, ServerState::Starting);
    assert_eq!(info.store, None, "no figures before the store opens");

    // Unblock recovery with bytes that are not a segment: the start fails cleanly.
    let writer = std::thread::spawn(move || std::fs::write(&fifo, [b'x'; 64]));
    let outcome = server.outcome().await;
    writer
        .join()
        .expect("writer thread")
        .expect("write to the pipe");
    assert!(outcome.is_err(), "a bad segment stops the start");
}

backend_test! {
    #[tokio::test]
    async fn reflection_lists_and_describes_the_service() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let mut reflection = ServerReflectionClient::new(server.channel().await);

        let requests = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol(evenire_proto::SERVICE_NAME.into()),
        ]
        .map(|message| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        });
        let mut responses = reflection
            .server_reflection_info(tokio_stream::iter(requests))
            .await
            .expect("reflection call")
            .into_inner();

        let listed = responses.next().await.expect("a response").expect("ok");
        let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
            panic!("expected a service list, got {listed:?}");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&evenire_proto::SERVICE_NAME), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

        let described = responses.next().await.expect("a response").expect("ok");
        let Some(MessageResponse::FileDescriptorResponse(files)) = described.message_response else {
            panic!("expected file descriptors, got {described:?}");
        };
        let bytes: Vec<u8> = files.file_descriptor_proto.concat();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("evenire/v1/evenire.proto") && text.contains("Append"));
    }
}

backend_test! {
    #[tokio::test]
    async fn reflection_v1alpha_is_served_for_older_tools() {
        // grpcurl 1.8, grpcui 1.4 and Postman speak only v1alpha.
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(config(dir.path(), 0)).await;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new(server.channel().await)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("a v1alpha reflection call")
            .into_inner();
        let listed = responses.next().await.expect("a response").expect("ok");
        let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
            panic!("expected a service list, got {listed:?}");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&evenire_proto::SERVICE_NAME), "{names:?}");
    }
}

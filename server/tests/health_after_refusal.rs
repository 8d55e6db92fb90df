//! After a failed fsync the store refuses every write until a restart; health said
//! SERVING all the same, so load balancers kept sending writes to a server that
//! refused them. It turns NOT_SERVING, for the service and for `""`, and GetServerInfo
//! says why.

use evenire_client::{Client, EventData, ExpectedVersion, ServerState, StreamId};
use evenire_server::store::Store;
use evenire_server::store::sim_fs::SimFs;
use evenire_server::{Config, Opening, serve};
use std::sync::{Arc, OnceLock};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The simulated disk the store of this test's server is opened on.
static DISK: OnceLock<SimFs> = OnceLock::new();

fn open_on_sim_disk(config: &Config) -> Opening {
    let mut store_config = config.store();
    store_config.fs = Arc::new(DISK.get_or_init(SimFs::new).clone());
    Box::pin(async move {
        let store = tokio::task::spawn_blocking(move || Store::open(store_config))
            .await
            .expect("open does not panic")?;
        Ok(Arc::new(store) as Arc<dyn evenire_server::backend::EventStore>)
    })
}

async fn status(health: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    match health.check(request).await {
        Ok(response) => response.into_inner().status,
        Err(_) => ServingStatus::Unknown as i32,
    }
}

/// The status of `service` once it is `wanted`, or after 5 s whatever it is.
async fn wait_for(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
    wanted: ServingStatus,
) -> i32 {
    for _ in 0..500 {
        if status(health, service).await == wanted as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    status(health, service).await
}

#[tokio::test]
async fn health_turns_not_serving_once_writes_are_refused() {
    let disk = DISK.get_or_init(SimFs::new).clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config::new(std::path::Path::new("/sim/evenire-data"));
    let server = tokio::spawn(serve(listener, config, open_on_sim_disk, async {
        let _ = stopped.await;
    }));

    let channel = loop {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(uri.clone())
            .expect("uri")
            .connect()
            .await
        {
            break channel;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let mut health = HealthClient::new(channel);
    let service = evenire_proto::SERVICE_NAME;
    let serving = wait_for(&mut health, service, ServingStatus::Serving).await;
    assert_eq!(serving, ServingStatus::Serving as i32);

    let client = Client::connect(uri).await.expect("connect");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");
    client
        .append(
            &stream,
            ExpectedVersion::Any,
            [EventData::new("Placed", "1")],
        )
        .await
        .expect("an append before the failure");
    disk.fail_next_sync();
    let refused = client
        .append(
            &stream,
            ExpectedVersion::Any,
            [EventData::new("Placed", "2")],
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");

    let not_serving = ServingStatus::NotServing as i32;
    let reported = wait_for(&mut health, service, ServingStatus::NotServing).await;
    assert_eq!(reported, not_serving);
    assert_eq!(status(&mut health, "").await, not_serving);
    let info = client.server_info().await.expect("server info");
    assert_eq!(info.state, ServerState::RefusingWrites);
    let reason = info.write_refusal.expect("the reason writes are refused");
    assert!(reason.contains("sync"), "{reason}");

    let _ = stop.send(());
    let _ = server.await;
}

//! A real server on 127.0.0.1:0 over a real data directory, for end-to-end tests, and
//! the backends those tests run against.
#![allow(dead_code, unused_macros)]

use evenire_client::{Client, EventData, StreamId};
use evenire_server::{Config, OpenStore, RunError, serve};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A store a test server can serve: a name for the test's output, and how to open it.
pub type Backend = (&'static str, OpenStore);

/// Every backend the end-to-end tests of the contract run against. A second backend
/// joins every [`backend_test!`] with one line here.
pub const BACKENDS: &[Backend] = &[
    ("file log", evenire_server::open_file_log),
    (
        "file log with its index on disk",
        open_file_log_index_on_disk,
    ),
];

/// The file log with `--index-on-disk` and segments of 1 KiB (the smallest), so that a test's few
/// events fill sealed segments whose records the index in memory lets go of once the
/// index on disk holds them, and no stream's entry kept in memory once the index on
/// disk holds it: reads then find them there, and writes bring the entries back.
fn open_file_log_index_on_disk(config: &Config) -> evenire_server::Opening {
    let mut config = config.clone();
    config.index_on_disk = true;
    config.segment_size = evenire_server::config::ByteSize(1 << 10);
    let mut store = config.store();
    store.index_entries_kept = Some(0);
    evenire_server::open_store(store)
}

tokio::task_local! {
    /// The backend the servers a test starts serve; the file log outside
    /// [`on_every_backend`] (tests of the file log's own behaviour).
    static BACKEND: Backend;
}

/// Runs `test` once against each of [`BACKENDS`]: every server it starts serves that
/// backend.
pub async fn on_every_backend<F, T>(test: F)
where
    F: Fn() -> T,
    T: Future<Output = ()>,
{
    for backend in BACKENDS {
        eprintln!("against the {} backend", backend.0);
        BACKEND.scope(*backend, test()).await;
    }
}

/// An end-to-end test of the contract, run once against each of [`BACKENDS`]:
///
/// ```ignore
/// backend_test! {
///     #[tokio::test]
///     async fn appends_read_back() { /* start servers, talk gRPC */ }
/// }
/// ```
macro_rules! backend_test {
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        $(#[$attr])*
        async fn $name() {
            common::on_every_backend(|| async $body).await
        }
    };
}

/// A running server. Stop it with [`TestServer::stop`] to check a clean shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RunError>>,
}

impl TestServer {
    /// Starts a server with `config` and waits until its health check says SERVING.
    pub async fn start(config: Config) -> TestServer {
        let server = Self::spawn(config).await;
        server.wait_until_serving().await;
        server
    }

    /// Starts a server on `addr` (the address of a server stopped earlier, so that its
    /// clients can come back) and waits until it is SERVING.
    pub async fn start_at(addr: SocketAddr, config: Config) -> TestServer {
        let server = Self::spawn_at(addr, config).await;
        server.wait_until_serving().await;
        server
    }

    /// Starts a server without waiting for it to be ready.
    pub async fn spawn(config: Config) -> TestServer {
        Self::spawn_at(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    async fn spawn_at(addr: SocketAddr, config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the test address");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let data_dir = config.data_dir.clone();
        let open = BACKEND
            .try_with(|backend| backend.1)
            .unwrap_or(evenire_server::open_file_log);
        let handle = tokio::spawn(serve(listener, config, open, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            data_dir,
            stop: Some(stop),
            handle,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.uri())
            .await
            .expect("connect to the test server")
    }

    /// A plain gRPC channel to the server, for the standard services' clients.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.uri())
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn health(&self) -> HealthClient<tonic::transport::Channel> {
        HealthClient::new(self.channel().await)
    }

    /// Waits until the server is SERVING (true) or has stopped by itself (false).
    pub async fn wait_for_serving(&self) -> bool {
        for _ in 0..500 {
            if self.handle.is_finished() {
                return false;
            }
            let endpoint = tonic::transport::Endpoint::from_shared(self.uri()).expect("uri");
            if let Ok(channel) = endpoint.connect().await {
                let mut health = HealthClient::new(channel);
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                if let Ok(response) = health.check(request).await
                    && response.into_inner().status == ServingStatus::Serving as i32
                {
                    return true;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the server neither served nor stopped within 5 s");
    }

    async fn wait_until_serving(&self) {
        assert!(
            self.wait_for_serving().await,
            "the server stopped while starting"
        );
    }

    /// Requests shutdown and returns how `run` ended.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await.expect("server task")
    }

    /// Waits (30 s at most) for `run` to end by itself, for a server that fails to start.
    pub async fn outcome(self) -> Result<(), RunError> {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.handle)
            .await
            .expect("the server should have stopped by itself")
            .expect("server task")
    }
}

/// The default settings over `dir`, with the cache at `cache_bytes`.
pub fn config(dir: &Path, cache_bytes: u64) -> Config {
    let mut config = Config::new(dir);
    config.cache_size = evenire_server::config::ByteSize(cache_bytes);
    config
}

/// A fresh stream of type `stream_type`.
pub fn new_stream(stream_type: &str) -> StreamId {
    StreamId::new(uuid::Uuid::new_v4(), stream_type)
}

/// `n` events numbered from `first`, their data the decimal number.
pub fn numbered(first: u64, n: u64) -> Vec<EventData> {
    (first..first + n)
        .map(|i| EventData::new("Numbered", i.to_string()))
        .collect()
}

/// The numbers carried by events made with [`numbered`].
pub fn numbers(events: &[evenire_client::RecordedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| {
            std::str::from_utf8(&e.data)
                .expect("utf-8")
                .parse()
                .expect("a number")
        })
        .collect()
}

/// Reads a whole read into a vector, failing the test on any error.
pub async fn read_all(
    client: &Client,
    stream: &StreamId,
    from: evenire_client::ReadFrom,
    direction: evenire_client::Direction,
    max_count: Option<u64>,
) -> Vec<evenire_client::RecordedEvent> {
    use tokio_stream::StreamExt;
    let mut events = client
        .read(stream, from, direction, max_count)
        .await
        .expect("read starts");
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        out.push(event.expect("read event"));
    }
    out
}

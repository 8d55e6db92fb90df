//! Evenire's server: an event store served over gRPC.
//!
//! - [`config`]: the settings, as flags and `EVENIRE_*` environment variables;
//! - `connections`: who may hold a connection (limits in all and per client address,
//!   the HTTP/2 preface within the handshake timeout) and the log of those refused;
//! - [`service`]: the gRPC service, the only code that knows both protobuf and store
//!   types: request checks, conversions, the error-to-status mapping;
//! - [`backend`]: the [`backend::EventStore`] trait, all the service knows of a store;
//! - [`store`]: the durable file log, its index and cache, the trait's first
//!   implementation; knows nothing of gRPC;
//! - [`metrics`]: what a Prometheus scrape of `--metrics-listen` shows.
//!
//! [`run`] serves a bound listener until a shutdown future completes, so tests bind
//! `127.0.0.1:0` and stop the server when they choose. [`serve`] does the same over a
//! store opened by any [`OpenStore`] function.

mod admin;
pub mod auth;
pub mod backend;
pub mod config;
mod connections;
mod health;
pub mod metrics;
mod reload;
mod schedule;
pub mod service;
pub mod store;

pub use config::Config;

use backend::EventStore;
use evenire_proto::server::event_store_service_server::EventStoreServiceServer;
use service::{EventStoreApi, Limits};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use store::{Store, StoreError};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

/// Why the server stopped other than by a requested shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A setting is out of its range; the message names it.
    #[error("invalid settings: {0}")]
    Config(String),
    /// The store could not be opened: the log is damaged, locked, or unreadable. The
    /// message names the file and offset; see "Recovery" in docs/operations.md.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built from the contract's descriptors.
    #[error("reflection setup failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Opens the store a server serves, from the server's settings: blocking work goes to
/// the blocking pool. [`open_file_log`] is the one [`run`] uses.
pub type OpenStore = fn(&Config) -> Opening;

/// A store being opened.
pub type Opening = Pin<Box<dyn Future<Output = Result<Arc<dyn EventStore>, StoreError>> + Send>>;

/// Opens the file log in `config.data_dir`, recovering it: may take a while on a large
/// log.
pub fn open_file_log(config: &Config) -> Opening {
    open_store(config.store())
}

/// Opens the file log as `store_config` says (tests set what the command line does not).
pub fn open_store(store_config: store::StoreConfig) -> Opening {
    Box::pin(async move {
        match tokio::task::spawn_blocking(move || Store::open(store_config)).await {
            Ok(opened) => opened.map(|store| Arc::new(store) as Arc<dyn EventStore>),
            // Store::open does not panic on anything the disk can cause.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    })
}

/// Serves Evenire over the file log on `listener` until `shutdown` completes.
///
/// The gRPC server starts at once: health reports `NOT_SERVING` and the event store
/// service answers `UNAVAILABLE` while the log is recovered, then both turn to serving.
/// On shutdown, health turns `NOT_SERVING`, the server stops accepting, requests in
/// flight get `config.shutdown_grace()` to finish, and the log is synced.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    serve(listener, config, open_file_log, shutdown).await
}

/// [`run`] over the store that `open` opens.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    open: OpenStore,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    config.validate().map_err(RunError::Config)?;
    if let Ok(listening) = listener.local_addr() {
        config.check_exposure(listening).map_err(RunError::Config)?;
    }
    let tls = match config.tls_files() {
        Some(files) => Some(connections::tls::load(files).map_err(RunError::Config)?),
        None => None,
    };
    let rules = match &config.auth_tokens {
        Some(path) => Some(auth::load(path.clone()).map_err(RunError::Config)?),
        None => None,
    };
    // Dropped with this future: the files are watched as long as the server runs.
    let _watching = [
        tls.clone()
            .map(|tls| reload::AbortOnDrop(tokio::spawn(tls.watch()))),
        rules
            .clone()
            .map(|rules| reload::AbortOnDrop(tokio::spawn(rules.watch()))),
    ];
    let access = rules.map_or_else(auth::Access::open, auth::Access::with_rules);
    let (health, health_service) = health::Health::new();
    // Both versions of reflection: grpcurl 1.8, grpcui 1.4 and Postman speak only
    // v1alpha; newer tools v1.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(evenire_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_access = match config.reflection() {
        config::Reflection::Off => None,
        config::Reflection::Open => Some(auth::Access::open()),
        config::Reflection::Authenticated => Some(access.clone()),
    };
    let reflection_v1 = auth::guarded(reflection().build_v1()?, reflection_access.clone());
    let reflection_v1alpha = auth::guarded(reflection().build_v1alpha()?, reflection_access);
    let slot = Arc::new(OnceLock::new());
    let limits = Limits {
        max_event_size: config.max_event_size.as_usize(),
        max_events_per_append: config.max_events_per_append,
        max_open_reads: config.max_open_reads,
        max_open_reads_per_connection: config.max_open_reads_per_connection,
        max_open_reads_per_ip: config.max_open_reads_per_ip,
        backup_bytes_per_second: config.backup_rate_limit.0,
        scavenge_bytes_per_second: config.scavenge_rate_limit.0,
    };
    let metrics = metrics::Metrics::new();
    let facts = service::ServerFacts::new(health.view());
    let api = EventStoreApi::new(slot.clone(), limits, access, metrics.clone(), facts);
    let read_shares = api.read_shares();
    let api = EventStoreServiceServer::new(api)
        .max_decoding_message_size(config.max_request_size.as_usize());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let counts = connections::Counts::new(&config.connection_limits());
    let health_only = match config.health_listen {
        None => None,
        Some(addr) => Some(serve_health_only(addr, &config, health_service.clone()).await?),
    };
    metrics.register(|registry| {
        registry.register_collector(Box::new(metrics::server::ServerCollector {
            grpc: counts.clone(),
            health: health_only.as_ref().map(|listener| listener.counts.clone()),
            reads: read_shares,
        }));
    });
    let metrics_listener = match config.metrics_listen {
        None => None,
        Some(addr) => {
            let (listener, bound) = bind("--metrics-listen", addr).await?;
            let task = tokio::spawn(metrics::http::serve(listener, metrics.clone()));
            Some((bound, reload::AbortOnDrop(task)))
        }
    };
    let admin = match config.admin_address() {
        None => None,
        Some(addr) => {
            config.check_exposure(addr).map_err(RunError::Config)?;
            let routes =
                tonic::service::Routes::new(health_service.clone()).add_service(api.clone());
            Some(serve_admin(addr, &config, tls.clone(), admin::with_page(routes)).await?)
        }
    };
    let incoming = connections::accept(
        listener,
        config.connection_limits(),
        tls,
        counts,
        connections::Protocols::Http2,
    );
    let mut server = tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(config.max_concurrent_streams)
            // Find and drop connections whose client vanished without closing them.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .layer(tower::util::MapResponseLayer::new(
                service::refusals::rewrite,
            ))
            .add_service(health_service)
            .add_optional_service(reflection_v1)
            .add_optional_service(reflection_v1alpha)
            .add_service(api)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let store = match open(&config).await {
        Ok(store) => store,
        Err(e) => {
            server.abort();
            return Err(e.into());
        }
    };
    metrics.register(|registry| store.register_metrics(registry));
    let _ = slot.set(store.clone());
    health.set(ServingStatus::Serving);
    tracing::info!("serving");
    if let Some(listener) = &health_only {
        tracing::info!(health_listen = %listener.addr, "health is also served in clear");
    }
    if let Some(listener) = &admin {
        tracing::info!(admin_listen = %listener.addr, "the web admin is served");
    }
    if let Some((addr, _)) = &metrics_listener {
        tracing::info!(metrics_listen = %addr, "metrics are served at /metrics");
    }
    let watching = tokio::spawn(report_write_refusal(store.write_refusal(), health.clone()));
    let _scavenges = config.scavenge_interval.map(|every| {
        tracing::info!(every_secs = every.as_secs(), "scavenges are scheduled");
        reload::AbortOnDrop(tokio::spawn(schedule::scavenge_every(
            store.clone(),
            every,
            config.scavenge_rate_limit.0,
        )))
    });

    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            health.set(ServingStatus::NotServing);
            // Subscriptions and health watches never end by themselves: end them so
            // the server can drain.
            store.close_subscriptions();
            health.end_watches();
            let _ = stop.send(());
            match tokio::time::timeout(config.shutdown_grace(), &mut server).await {
                Ok(joined) => joined_outcome(joined),
                Err(_) => {
                    tracing::warn!("requests still in flight after the grace period; closing them");
                    server.abort();
                    Ok(())
                }
            }
        }
        joined = &mut server => joined_outcome(joined),
    };
    watching.abort();
    store.shutdown().await;
    tracing::info!("log synced; stopped");
    outcome
}

/// A listener of its own beside the gRPC one, served until dropped.
struct SideListener {
    addr: std::net::SocketAddr,
    counts: connections::Counts,
    _serving: reload::AbortOnDrop,
}

/// Binds the address `flag` gives.
async fn bind(
    flag: &str,
    addr: std::net::SocketAddr,
) -> Result<(TcpListener, std::net::SocketAddr), RunError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Config(format!("{flag} {addr}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    Ok((listener, bound))
}

/// Binds `addr` (given by `flag`) and serves what `serve` makes of its connections,
/// admitted with the gRPC listener's bounds, until the returned listener is dropped.
/// Its refusals have a log of their own: `accept` reports the log it is given, and two
/// reporters of one log would each report every refusal.
async fn side_listener<F>(
    flag: &'static str,
    addr: std::net::SocketAddr,
    config: &Config,
    tls: Option<Arc<connections::tls::Tls>>,
    protocols: connections::Protocols,
    serve: impl FnOnce(connections::Incoming) -> F,
) -> Result<SideListener, RunError>
where
    F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let (listener, bound) = bind(flag, addr).await?;
    let counts = connections::Counts::new(&config.connection_limits());
    let incoming = connections::accept(
        listener,
        config.connection_limits(),
        tls,
        counts.clone(),
        protocols,
    );
    let serving = serve(incoming);
    let task = tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, listener = flag, "a listener failed");
        }
    });
    Ok(SideListener {
        addr: bound,
        counts,
        _serving: reload::AbortOnDrop(task),
    })
}

/// Health alone, in clear and on a port of its own, for probes that cannot speak TLS
/// (kubelet's gRPC probes): limits of the same size, no other service.
async fn serve_health_only(
    addr: std::net::SocketAddr,
    config: &Config,
    health: tonic_health::pb::health_server::HealthServer<health::Service>,
) -> Result<SideListener, RunError> {
    let http2 = connections::Protocols::Http2;
    side_listener("--health-listen", addr, config, None, http2, |incoming| {
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
    })
    .await
}

/// The web admin on a listener of its own (see `admin/`): HTTP/1.1 beside HTTP/2, the
/// page and gRPC-Web; the gRPC listener's bounds, TLS and services.
async fn serve_admin(
    addr: std::net::SocketAddr,
    config: &Config,
    tls: Option<Arc<connections::tls::Tls>>,
    routes: tonic::service::Routes,
) -> Result<SideListener, RunError> {
    let both = connections::Protocols::Http1AndHttp2;
    side_listener("--admin-listen", addr, config, tls, both, |incoming| {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .max_concurrent_streams(config.max_concurrent_streams)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .layer(tower::util::MapResponseLayer::new(
                service::refusals::rewrite,
            ))
            .add_routes(routes)
            .serve_with_incoming(incoming)
    })
    .await
}

/// Turns health `NOT_SERVING`, for the service and for `""`, once the store refuses
/// writes until a restart: readiness fails so traffic moves elsewhere, and liveness
/// fails because a restart is what fixes it (docs/operations.md, "Health checks").
async fn report_write_refusal(
    mut refusal: tokio::sync::watch::Receiver<Option<String>>,
    health: health::Health,
) {
    loop {
        if refusal.borrow_and_update().is_some() {
            tracing::error!("health: NOT_SERVING until a restart, writes are refused");
            health.set(ServingStatus::NotServing);
            return;
        }
        if refusal.changed().await.is_err() {
            return;
        }
    }
}

fn joined_outcome(
    joined: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), RunError> {
    match joined {
        Ok(served) => served.map_err(RunError::from),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Ok(()),
    }
}

//! `grpc.health.v1.Health`, for Kubernetes probes and load balancers: one status for
//! the server (`""`) and the event store service, which are the same thing here.
//!
//! Ours rather than tonic-health's server (its messages and descriptors are still
//! tonic-health's): an open `Watch`, which probes and load balancers hold, must end
//! when the server shuts down, as subscriptions are ended, or shutdown would wait out
//! its whole grace period for it. tonic-health's watches never end.

use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Sets the status every check and watch sees, and ends the watches.
#[derive(Debug, Clone)]
pub struct Health {
    status: watch::Sender<ServingStatus>,
    /// True once the server shuts down: every watch ends.
    stopping: watch::Sender<bool>,
}

impl Health {
    /// Starts `NOT_SERVING`; returns the handle and the service to serve.
    pub fn new() -> (Health, HealthServer<Service>) {
        let health = Health {
            status: watch::Sender::new(ServingStatus::NotServing),
            stopping: watch::Sender::new(false),
        };
        let service = Service {
            status: health.status.subscribe(),
            stopping: health.stopping.subscribe(),
        };
        (health, HealthServer::new(service))
    }

    pub fn set(&self, status: ServingStatus) {
        self.status.send_replace(status);
    }

    /// Ends every watch, now and to come.
    pub fn end_watches(&self) {
        self.stopping.send_replace(true);
    }

    /// What checks see, for other parts of the server to read.
    pub fn view(&self) -> Service {
        Service {
            status: self.status.subscribe(),
            stopping: self.stopping.subscribe(),
        }
    }
}

/// The service side of [`Health`].
#[derive(Debug, Clone)]
pub struct Service {
    status: watch::Receiver<ServingStatus>,
    stopping: watch::Receiver<bool>,
}

impl Service {
    /// Whether checks see SERVING now.
    pub fn serving(&self) -> bool {
        *self.status.borrow() == ServingStatus::Serving
    }

    /// Whether the server is shutting down.
    pub fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// The names this server answers for: the server itself and the event store service.
fn known(service: &str) -> bool {
    service.is_empty() || service == evenire_proto::SERVICE_NAME
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    let status = match status {
        ServingStatus::Serving => WireStatus::Serving,
        ServingStatus::NotServing => WireStatus::NotServing,
        ServingStatus::Unknown => WireStatus::Unknown,
    };
    HealthCheckResponse {
        status: status.into(),
    }
}

type Watching = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl HealthService for Service {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        if !known(&request.get_ref().service) {
            return Err(Status::not_found("service not registered"));
        }
        Ok(Response::new(response(*self.status.borrow())))
    }

    type WatchStream = Watching;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // The protocol's answer for a service it does not know is SERVICE_UNKNOWN,
        // then nothing more until it is known, which here is never.
        if !known(&request.get_ref().service) {
            let unknown = HealthCheckResponse {
                status: WireStatus::ServiceUnknown.into(),
            };
            let stream = tokio_stream::once(Ok(unknown)).chain(tokio_stream::pending());
            return Ok(Response::new(until_stopping(
                Box::pin(stream),
                self.stopping.clone(),
            )));
        }
        let statuses = tokio_stream::wrappers::WatchStream::new(self.status.clone())
            .map(|status| Ok(response(status)));
        Ok(Response::new(until_stopping(
            Box::pin(statuses),
            self.stopping.clone(),
        )))
    }
}

/// `stream`, ended once `stopping` turns true.
fn until_stopping(stream: Watching, stopping: watch::Receiver<bool>) -> Watching {
    let stopped = tokio_stream::wrappers::WatchStream::new(stopping)
        .filter(|stopping| *stopping)
        .map(|_| None);
    Box::pin(
        stream
            .map(Some)
            .merge(stopped)
            .take_while(Option::is_some)
            .filter_map(|item| item),
    )
}

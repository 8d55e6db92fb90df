//! Metrics in the Prometheus text format, on `--metrics-listen` (`http.rs`).
//!
//! Counted where the work happens, with the Prometheus project's client: the service's
//! appends by outcome and their latency and the streaming calls open (here); each
//! backend's own figures (the file log's size, syncs, cache, index, subscription lag,
//! recovery: `store/metrics.rs`) and the connections' (`server.rs`) are read at scrape
//! time by collectors. The names and what each means are in docs/operations.md.

pub mod collect;
pub mod http;
pub mod server;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tonic::Code;

type Labelled<M> = Family<[(&'static str, &'static str); 1], M>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Written to while the server starts (the store registers once it is open);
    /// read at each scrape.
    registry: RwLock<Registry>,
    appends: Labelled<Counter>,
    appended_events: Labelled<Counter>,
    append_seconds: Histogram,
    streaming_calls: Labelled<Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let metrics = Metrics {
            registry: RwLock::new(Registry::default()),
            appends: Family::default(),
            appended_events: Family::default(),
            // 50 µs to about 1.6 s.
            append_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            streaming_calls: Family::default(),
        };
        // Present from the first scrape, so that a rate over them starts at zero.
        for call in ["read", "read_all", "subscribe", "backup"] {
            let _ = metrics.streaming_calls.get_or_create(&[("call", call)]);
        }
        let _ = metrics.appends.get_or_create(&[("outcome", "ok")]);
        let _ = metrics.appended_events.get_or_create(&[("outcome", "ok")]);
        metrics.register(|registry| {
            registry.register(
                "evenire_appends",
                "Append calls answered, by outcome (ok, or the gRPC status code)",
                metrics.appends.clone(),
            );
            registry.register(
                "evenire_appended_events",
                "Events in the append calls answered, by outcome",
                metrics.appended_events.clone(),
            );
            registry.register(
                "evenire_append_duration_seconds",
                "Time from an append's arrival to its acknowledgement, of appends that succeeded",
                metrics.append_seconds.clone(),
            );
            registry.register(
                "evenire_streaming_calls_open",
                "Reads and subscriptions in progress, by call",
                metrics.streaming_calls.clone(),
            );
        });
        Arc::new(metrics)
    }

    /// Adds to what a scrape shows.
    pub fn register(&self, add: impl FnOnce(&mut Registry)) {
        add(&mut self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner));
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        // Writing to a String fails only if a collector does, which ours do not.
        if let Err(e) = prometheus_text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        text
    }

    /// Counts an append answered with `code`, of `events` events, that took `elapsed`.
    pub fn appended(&self, code: Code, events: usize, elapsed: Duration) {
        let outcome = [("outcome", outcome(code))];
        self.appends.get_or_create(&outcome).inc();
        self.appended_events
            .get_or_create(&outcome)
            .inc_by(events as u64);
        if code == Code::Ok {
            self.append_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a streaming call (`read`, `read_all`, `subscribe`, `backup`) open until the
    /// returned guard is dropped.
    pub fn open_call(&self, call: &'static str) -> OpenCall {
        let gauge = self
            .streaming_calls
            .get_or_create(&[("call", call)])
            .clone();
        gauge.inc();
        OpenCall(gauge)
    }
}

/// One streaming call in [`Metrics`]' count while it is held.
#[derive(Debug)]
pub struct OpenCall(Gauge);

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An outcome label: `ok`, or the status code in snake case.
fn outcome(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

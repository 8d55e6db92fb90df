//! GetServerInfo: what the server is (its version, backend, start) and how it stands,
//! for the web admin's server page, `evenire info` and anyone deciding where to send
//! traffic by hand. The state is the one health reports, read from the same watch.

use crate::backend::{EventStore, StoreFigures};
use crate::health;
use evenire_proto::v1 as pb;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What GetServerInfo reports besides the store: fixed at start, or health's.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    started: SystemTime,
    health: health::Service,
}

impl ServerFacts {
    /// Facts for a server starting now, whose health `health` reports.
    pub fn new(health: health::Service) -> Self {
        ServerFacts {
            started: SystemTime::now(),
            health,
        }
    }

    /// The answer, for `store` (None while it opens); `figures` as the caller may see
    /// them (None when it may not).
    pub fn answer(
        &self,
        store: Option<&Arc<dyn EventStore>>,
        figures: Option<StoreFigures>,
    ) -> pb::GetServerInfoResponse {
        let refusal = store.and_then(|store| store.write_refusal().borrow().clone());
        let state = match store {
            _ if self.health.stopping() => pb::ServerState::Stopping,
            None => pb::ServerState::Starting,
            Some(_) if self.health.serving() => pb::ServerState::Serving,
            Some(_) if refusal.is_some() => pb::ServerState::RefusingWrites,
            // The store has opened and health is about to say so.
            Some(_) => pb::ServerState::Starting,
        };
        let started_micros = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as i64);
        pb::GetServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: "file".to_owned(),
            started: Some(evenire_proto::timestamp(started_micros)),
            state: state.into(),
            write_refusal: refusal.unwrap_or_default(),
            store: figures.map(|figures| pb::StoreFigures {
                streams: figures.streams,
                events: figures.events,
                log_bytes: figures.log_bytes,
                log_segments: figures.log_segments,
            }),
        }
    }
}

//! Rust client for Evenire, an event store served over gRPC.
//!
//! ```no_run
//! # async fn example() -> Result<(), evenire_client::Error> {
//! use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId};
//! use tokio_stream::StreamExt;
//!
//! let client = Client::connect("http://127.0.0.1:5243").await?;
//! let order = StreamId::new(uuid::Uuid::new_v4(), "order");
//! client
//!     .append(&order, ExpectedVersion::NoStream, [EventData::new("Placed", "{}")])
//!     .await?;
//! let mut events = client.read(&order, ReadFrom::Start, Direction::Forward, None).await?;
//! while let Some(event) = events.next().await {
//!     println!("{:?}", event?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - [`Client`]: connect, append, read a stream or the whole log, subscribe, list,
//!   inspect and delete streams, ask the server how it stands;
//! - [`types`](crate::StreamId): streams, events, expected versions, read positions;
//! - [`backup`]: `Client::backup_to(dir)`, an online, incremental backup into a
//!   directory; `Client::scavenge`, giving back the disk of what deletes and stream
//!   rules removed;
//! - [`Error`]: what the server or the connection said, with a variant per case a
//!   caller acts on.

mod admin;
#[cfg(feature = "json")]
pub mod backup;
mod client;
mod connect;
mod error;
mod scavenge;
mod server_info;
mod snapshot;
mod subscription;
mod types;

pub use admin::{ListStreams, StreamInfo, StreamPage, StreamRules, StreamState};
pub use client::{Client, EventStream};
pub use connect::{ClientBuilder, default_address};
pub use error::Error;
pub use scavenge::ScavengeReport;
pub use server_info::{ServerInfo, ServerState, StoreFigures};
pub use snapshot::{FromSnapshot, Snapshot};
pub use subscription::{
    SubscribeFrom, SubscribeOptions, Subscription, SubscriptionFilter, SubscriptionMessage,
};
pub use types::{
    AppendResult, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, RecordedEvent,
    StreamId,
};

/// The service's fully qualified name, as health checks know it.
pub use evenire_proto::SERVICE_NAME;
/// The generated protobuf types, for what the idiomatic API does not cover.
pub use evenire_proto::v1 as proto;

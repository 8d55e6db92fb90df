//! The seam between the gRPC service and whatever keeps the events.
//!
//! The service layer calls only [`EventStore`]; the file log (`store`) is its first
//! implementation, and a replicated backend is meant to be a second one, with the
//! service, the clients and the end-to-end tests unchanged (they run every backend that
//! `tests/common` lists). The vocabulary both sides speak (streams, events, expected
//! versions, errors) is the store's, re-exported here so that the service names nothing
//! else of the store.
//!
//! What an implementation promises, whatever it stores events in:
//! - an acknowledged append is durable, and two appends with the same expected version
//!   never both succeed;
//! - positions are gapless and strictly increasing in commit order, so a reader of
//!   `$all` that checkpoints a position never skips a late commit;
//! - a read sees the stream or log as it was when the read started;
//! - a subscription delivers every matching event once, in order, across the switch
//!   from history to live, and ends (`None`) once the store is closing.

pub use crate::store::{
    AppendResult, BackupChunk, BackupFile, BackupPlan, DeleteMode, DeleteResult, Direction,
    EventData, ExpectedVersion, Filter, HeldFile, ListFilter, Listing, MAX_TYPE_LEN, ReadFrom,
    RecordedEvent, Snapshot, StoreError, StoreFigures, StreamId, StreamInfo, StreamRules,
    StreamState, SubscribeFrom, SubscribeTarget, SubscriptionItem,
};
use std::fmt;

/// What the service needs of a store: every RPC's operation, and what shutdown needs.
#[tonic::async_trait]
pub trait EventStore: fmt::Debug + Send + Sync + 'static {
    /// Appends `events` (at least one) to `stream` if it meets `expected`. Returns once
    /// they are durable and visible to readers. Re-sending an append whose event ids are
    /// committed at the place it asks for returns the original result, writing nothing.
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError>;

    /// Starts a read of `stream` as it is now. [`StoreError::StreamNotFound`] for a
    /// stream never written, [`StoreError::StreamDeleted`] for a deleted one.
    async fn read(
        &self,
        stream: StreamId,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<Box<dyn EventRead>, StoreError>;

    /// Starts a read of the whole log (`$all`) in position order, as it is now;
    /// `ReadFrom::Version` names a position.
    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<Box<dyn EventRead>, StoreError>;

    /// Starts a subscription: history first, then commits as they land. A filtered
    /// subscription to the log reports a checkpoint after every `checkpoint_interval`
    /// events scanned without a match.
    async fn subscribe(
        &self,
        target: SubscribeTarget,
        filter: Filter,
        checkpoint_interval: u64,
    ) -> Result<Box<dyn EventSubscription>, StoreError>;

    /// A page of streams in (type, key) order after `after`: at most `limit`, having
    /// looked at no more than `scan_limit` streams.
    async fn list_streams(
        &self,
        after: Option<StreamId>,
        filter: ListFilter,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Listing, StoreError>;

    /// What the store knows about `stream`; None for a stream never written.
    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>, StoreError>;

    /// What the store holds as a whole: its streams, events and log.
    async fn figures(&self) -> Result<StoreFigures, StoreError>;

    /// Deletes `stream` if it meets `expected`, softly or for good; durable like an
    /// append, and idempotent.
    async fn delete_stream(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        mode: DeleteMode,
    ) -> Result<DeleteResult, StoreError>;

    /// Why the store refuses every write until the server restarts, once it does: None
    /// until then. Health reports it, so that readiness fails and traffic moves.
    fn write_refusal(&self) -> tokio::sync::watch::Receiver<Option<String>>;

    /// Ends every subscription (their `next` returns None) so the server can drain;
    /// reads and appends go on.
    fn close_subscriptions(&self);

    /// Finishes the appends already accepted, makes everything durable and stops.
    /// Appends after it fail with [`StoreError::ShuttingDown`].
    async fn shutdown(&self);

    /// Starts a backup: a consistent copy of the store as committed now, sent as its
    /// files' bytes, for a caller that holds `held` from an earlier one.
    async fn backup(&self, held: Vec<HeldFile>) -> Result<Box<dyn BackupRead>, StoreError> {
        let _ = held;
        Err(StoreError::Unsupported("backup"))
    }

    /// Replaces `stream`'s rules if they are at `expected_revision` (None: any);
    /// durable like a delete. Returns their new revision.
    async fn set_stream_rules(
        &self,
        stream: StreamId,
        rules: StreamRules,
        expected_revision: Option<u64>,
    ) -> Result<u64, StoreError> {
        let _ = (stream, rules, expected_revision);
        Err(StoreError::Unsupported("stream rules"))
    }

    /// Keeps a snapshot of `stream` at `version`, apart from its events; durable like
    /// an append. The stream must hold that version, readable.
    async fn save_snapshot(
        &self,
        stream: StreamId,
        version: u64,
        snapshot_type: std::sync::Arc<str>,
        data: bytes::Bytes,
    ) -> Result<(), StoreError> {
        let _ = (stream, version, snapshot_type, data);
        Err(StoreError::Unsupported("snapshots"))
    }

    /// The latest snapshot of `stream`, if any, and a read of the events after it.
    async fn read_from_snapshot(
        &self,
        stream: StreamId,
    ) -> Result<(Option<Snapshot>, Box<dyn EventRead>), StoreError> {
        let _ = stream;
        Err(StoreError::Unsupported("snapshots"))
    }

    /// Starts a scavenge, which reports on the returned channel after each segment, the
    /// last report marked done, or fails.
    async fn scavenge(
        &self,
        options: crate::store::ScavengeOptions,
    ) -> Result<ScavengeReports, StoreError> {
        let _ = options;
        Err(StoreError::Unsupported("scavenging"))
    }

    /// Adds the store's own metrics (what it holds, how its writes and reads go) to
    /// what a scrape shows; the service counts the calls themselves. None by default.
    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let _ = registry;
    }
}

/// A scavenge's reports, as it goes.
pub type ScavengeReports =
    tokio::sync::mpsc::Receiver<Result<crate::store::ScavengeProgress, StoreError>>;

/// A read in progress.
#[tonic::async_trait]
pub trait EventRead: fmt::Debug + Send + 'static {
    /// The next events: at most `max_events` and, past the first, about `max_bytes` of
    /// data and metadata at most. Empty once the read is done.
    async fn next_batch(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// A subscription in progress.
#[tonic::async_trait]
pub trait EventSubscription: fmt::Debug + Send + 'static {
    /// The next step, waiting for commits when there is nothing new; batches as
    /// [`EventRead::next_batch`] sizes them. None once the store is closing.
    async fn next(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Option<Result<SubscriptionItem, StoreError>>;
}

/// A backup in progress: its plan, then the chunks it lists.
#[tonic::async_trait]
pub trait BackupRead: fmt::Debug + Send + 'static {
    /// What the backup copies.
    fn plan(&self) -> &BackupPlan;

    /// The next chunk, in the plan's order; None once every file is sent.
    async fn next_chunk(&mut self) -> Result<Option<BackupChunk>, StoreError>;
}

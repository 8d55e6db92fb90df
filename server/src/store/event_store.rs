//! The file log as the service's [`EventStore`]: each operation is the [`Store`]'s own.

use crate::backend::{
    AppendResult, BackupChunk, BackupPlan, BackupRead, DeleteMode, DeleteResult, Direction,
    EventData, EventRead, EventStore, EventSubscription, ExpectedVersion, Filter, HeldFile,
    ListFilter, Listing, ReadFrom, RecordedEvent, Snapshot, StoreFigures, StreamId, StreamInfo,
    StreamRules, SubscribeTarget, SubscriptionItem,
};
use crate::store::reads::read::LogRead;
use crate::store::reads::subscription::Subscription;
use crate::store::{Backup, Store, StoreError, blocking};

#[tonic::async_trait]
impl EventStore for Store {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        Store::append(self, stream, expected, events).await
    }

    async fn read(
        &self,
        stream: StreamId,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<Box<dyn EventRead>, StoreError> {
        let read = Store::read(self, stream, from, direction, max_count)?;
        Ok(Box::new(FileRead(Some(read))))
    }

    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<Box<dyn EventRead>, StoreError> {
        let read = Store::read_all(self, from, direction, max_count);
        Ok(Box::new(FileRead(Some(read))))
    }

    async fn subscribe(
        &self,
        target: SubscribeTarget,
        filter: Filter,
        checkpoint_interval: u64,
    ) -> Result<Box<dyn EventSubscription>, StoreError> {
        let subscription = Store::subscribe(self, target, filter, checkpoint_interval);
        Ok(Box::new(subscription))
    }

    async fn list_streams(
        &self,
        after: Option<StreamId>,
        filter: ListFilter,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Listing, StoreError> {
        Store::list_streams(self, after.as_ref(), &filter, limit, scan_limit)
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>, StoreError> {
        Store::stream_info(self, stream)
    }

    async fn figures(&self) -> Result<StoreFigures, StoreError> {
        Ok(Store::figures(self))
    }

    async fn delete_stream(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        mode: DeleteMode,
    ) -> Result<DeleteResult, StoreError> {
        Store::delete_stream(self, stream, expected, mode).await
    }

    fn write_refusal(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        Store::write_refusal(self)
    }

    fn close_subscriptions(&self) {
        Store::close_subscriptions(self);
    }

    async fn shutdown(&self) {
        Store::shutdown(self).await;
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(self.metrics()));
    }

    async fn set_stream_rules(
        &self,
        stream: StreamId,
        rules: StreamRules,
        expected_revision: Option<u64>,
    ) -> Result<u64, StoreError> {
        Store::set_stream_rules(self, stream, rules, expected_revision).await
    }

    async fn scavenge(
        &self,
        options: crate::store::ScavengeOptions,
    ) -> Result<crate::backend::ScavengeReports, StoreError> {
        Store::scavenge(self, options)
    }

    async fn save_snapshot(
        &self,
        stream: StreamId,
        version: u64,
        snapshot_type: std::sync::Arc<str>,
        data: bytes::Bytes,
    ) -> Result<(), StoreError> {
        Store::save_snapshot(self, stream, version, snapshot_type, data).await
    }

    async fn read_from_snapshot(
        &self,
        stream: StreamId,
    ) -> Result<(Option<Snapshot>, Box<dyn EventRead>), StoreError> {
        let (snapshot, read) = Store::read_from_snapshot(self, stream).await?;
        Ok((snapshot, Box::new(FileRead(Some(read)))))
    }

    async fn backup(&self, held: Vec<HeldFile>) -> Result<Box<dyn BackupRead>, StoreError> {
        let backup = Store::backup(self, held).await?;
        Ok(Box::new(FileBackup(Some(backup))))
    }
}

/// A [`Backup`], which moves into the blocking pool and back for each chunk read.
#[derive(Debug)]
struct FileBackup(Option<Backup>);

#[tonic::async_trait]
impl BackupRead for FileBackup {
    fn plan(&self) -> &BackupPlan {
        static EMPTY: BackupPlan = BackupPlan {
            position: 0,
            files: Vec::new(),
        };
        self.0.as_ref().map_or(&EMPTY, Backup::plan)
    }

    async fn next_chunk(&mut self) -> Result<Option<BackupChunk>, StoreError> {
        let Some(mut backup) = self.0.take() else {
            return Ok(None);
        };
        let (backup, chunk) = blocking(move || {
            let chunk = backup.next_chunk();
            (backup, chunk)
        })
        .await;
        self.0 = Some(backup);
        chunk
    }
}

/// A [`LogRead`], which moves into the blocking pool and back for each batch read from
/// disk: absent only while a batch is read, or after its read task was dropped midway
/// (the read then ends).
#[derive(Debug)]
struct FileRead(Option<LogRead>);

#[tonic::async_trait]
impl EventRead for FileRead {
    async fn next_batch(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Some(read) = self.0.take() else {
            return Ok(Vec::new());
        };
        let (read, batch) = read.next_batch(max_events, max_bytes).await;
        self.0 = Some(read);
        batch
    }
}

#[tonic::async_trait]
impl EventSubscription for Subscription {
    async fn next(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Option<Result<SubscriptionItem, StoreError>> {
        Subscription::next(self, max_events, max_bytes).await
    }
}

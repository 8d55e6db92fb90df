//! The service layer: the only code that knows both the protobuf types and the store's.
//! It checks requests (`convert`), calls the store, and maps errors (`status`).

mod backup;
mod convert;
pub mod encode;
mod read_shares;
pub mod refusals;
mod server_info;
mod snapshot;
pub mod status;

pub use convert::Limits;
pub use read_shares::ReadShares;

/// Checks an append request as the service does before the store sees it, for fuzzing
/// and for embedders: Ok, or the INVALID_ARGUMENT status a client would get.
pub fn check_append(request: IncomingAppend, limits: &Limits) -> Result<(), Status> {
    convert::append(request, limits).map(|_| ())
}

/// Checks a read, a read of the whole log, or a subscription request the same way.
pub fn check_read(request: pb::ReadRequest) -> Result<(), Status> {
    convert::read(request).map(|_| ())
}

/// See [`check_read`].
pub fn check_subscribe(request: pb::SubscribeRequest) -> Result<(), Status> {
    convert::subscribe(request).map(|_| ())
}

use crate::auth::{Access, Role, Scope};
use crate::backend::{EventRead, EventStore, RecordedEvent, StoreError, SubscriptionItem};
use crate::metrics::Metrics;
use crate::metrics::OpenCall;
use evenire_proto::server::event_store_service_server::EventStoreService;
use evenire_proto::v1 as pb;
use evenire_proto::{IncomingAppend, Outgoing};
use read_shares::ReadShare;
pub use server_info::ServerFacts;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::adapters::Map;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Events per `ReadResponse` message at most.
const READ_BATCH_EVENTS: usize = evenire_proto::EVENTS_PER_MESSAGE;
/// Data and metadata bytes per `ReadResponse` message, past its first event. With two
/// messages ready ahead, one being read, one in tonic's hands and one in HTTP/2's, this
/// bounds what an unread stream holds: about 0.75 MiB (docs/operations.md, "Memory").
const READ_BATCH_BYTES: usize = 128 << 10;
/// Messages a read may have ready ahead of a slow client.
const READ_AHEAD_MESSAGES: usize = 2;

/// The `EventStoreService` implementation.
#[derive(Debug, Clone)]
pub struct EventStoreApi {
    /// Empty until the store has opened (the file log: recovered).
    store: Arc<OnceLock<Arc<dyn EventStore>>>,
    limits: Limits,
    /// One share per streaming call in progress (reads and subscriptions): what bounds
    /// the memory that calls whose clients stopped reading can hold, and keeps one
    /// client from taking every call.
    open_reads: Arc<ReadShares>,
    /// Who may make which call.
    access: Access,
    /// Appends by outcome, streaming calls open.
    metrics: Arc<Metrics>,
    /// The pace every backup shares.
    backup_pacer: Arc<backup::Pacer>,
    /// What GetServerInfo reports besides the store.
    facts: ServerFacts,
}

impl EventStoreApi {
    /// A service that answers `UNAVAILABLE` until `store` is filled, to callers
    /// `access` lets in, counting its calls in `metrics`.
    pub fn new(
        store: Arc<OnceLock<Arc<dyn EventStore>>>,
        limits: Limits,
        access: Access,
        metrics: Arc<Metrics>,
        facts: ServerFacts,
    ) -> Self {
        EventStoreApi {
            store,
            limits,
            open_reads: ReadShares::new(limits),
            access,
            metrics,
            backup_pacer: Arc::new(backup::Pacer::new(limits.backup_bytes_per_second)),
            facts,
        }
    }

    /// The streaming calls open, for the metrics of their refusals.
    pub fn read_shares(&self) -> Arc<ReadShares> {
        self.open_reads.clone()
    }

    /// An append, with the number of its events once the request is read.
    async fn append_counted(
        &self,
        request: Request<IncomingAppend>,
        events: &mut usize,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let caller = self.access.caller(&request, "Append", Role::Write)?;
        let append = convert::append(request.into_inner(), &self.limits)?;
        *events = append.events.len();
        caller.may_touch(&append.stream.stream_type)?;
        let store = self.store()?;
        let result = store
            .append(append.stream, append.expected, append.events)
            .await
            .map_err(status::from_store)?;
        Ok(Response::new(pb::AppendResponse {
            version: result.version,
            position: result.position,
        }))
    }

    fn store(&self) -> Result<Arc<dyn EventStore>, Status> {
        self.store
            .get()
            .cloned()
            .ok_or_else(|| Status::unavailable("the store is recovering its log; retry shortly"))
    }
}

#[tonic::async_trait]
impl EventStoreService for EventStoreApi {
    async fn append(
        &self,
        request: Request<IncomingAppend>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let started = Instant::now();
        let mut events = 0;
        let answer = self.append_counted(request, &mut events).await;
        let code = answer
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        self.metrics.appended(code, events, started.elapsed());
        answer
    }

    type ReadStream = Encoding<Vec<RecordedEvent>>;

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let caller = self.access.caller(&request, "Read", Role::Read)?;
        let peer = remote_addr(&request);
        let read = convert::read(request.into_inner())?;
        caller.may_touch(&read.stream.stream_type)?;
        let share = (self.open_reads.take(peer)?, self.metrics.open_call("read"));
        let cursor = self
            .store()?
            .read(read.stream, read.from, read.direction, read.max_count)
            .await
            .map_err(status::from_store)?;
        Ok(Response::new(send_read(cursor, share, Visible::all())))
    }

    type ReadAllStream = Encoding<Vec<RecordedEvent>>;

    async fn read_all(
        &self,
        request: Request<pb::ReadAllRequest>,
    ) -> Result<Response<Self::ReadAllStream>, Status> {
        let caller = self.access.caller(&request, "ReadAll", Role::Read)?;
        let peer = remote_addr(&request);
        let read = convert::read_all(request.into_inner())?;
        let share = (
            self.open_reads.take(peer)?,
            self.metrics.open_call("read_all"),
        );
        // A scoped caller's count is of the events it sees: the store reads on until
        // the task has found that many.
        let visible = Visible {
            scope: caller.scope,
            max_count: read.max_count,
        };
        let store_count = visible.scope.is_all().then_some(read.max_count).flatten();
        let cursor = self
            .store()?
            .read_all(read.from, read.direction, store_count)
            .await
            .map_err(status::from_store)?;
        Ok(Response::new(send_read(cursor, share, visible)))
    }

    async fn list_streams(
        &self,
        request: Request<pb::ListStreamsRequest>,
    ) -> Result<Response<pb::ListStreamsResponse>, Status> {
        let caller = self.access.caller(&request, "ListStreams", Role::Read)?;
        let list = convert::list_streams(request.into_inner())?;
        let listing = self
            .store()?
            .list_streams(list.after, list.filter, list.page_size, LIST_SCAN_LIMIT)
            .await
            .map_err(status::from_store)?;
        Ok(Response::new(pb::ListStreamsResponse {
            // A scoped caller's pages omit the streams outside its scope, and may be
            // short, or empty with a token to go on.
            streams: listing
                .streams
                .into_iter()
                .filter(|info| caller.scope.allows(&info.stream.stream_type))
                .map(convert::stream_info)
                .collect(),
            next_page_token: listing
                .next
                .as_ref()
                .map(convert::next_page_token)
                .unwrap_or_default(),
        }))
    }

    async fn get_stream(
        &self,
        request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::GetStreamResponse>, Status> {
        let caller = self.access.caller(&request, "GetStream", Role::Read)?;
        let stream = convert::get_stream(request.into_inner())?;
        caller.may_touch(&stream.stream_type)?;
        let info = self
            .store()?
            .stream_info(&stream)
            .await
            .map_err(status::from_store)?
            .ok_or_else(|| status::from_store(StoreError::StreamNotFound(stream)))?;
        Ok(Response::new(pb::GetStreamResponse {
            info: Some(convert::stream_info(info)),
        }))
    }

    async fn delete_stream(
        &self,
        request: Request<pb::DeleteStreamRequest>,
    ) -> Result<Response<pb::DeleteStreamResponse>, Status> {
        let caller = self.access.caller(&request, "DeleteStream", Role::Admin)?;
        let delete = convert::delete_stream(request.into_inner())?;
        caller.may_touch(&delete.stream.stream_type)?;
        let stream = delete.stream.clone();
        let result = self
            .store()?
            .delete_stream(delete.stream, delete.expected, delete.mode)
            .await
            .map_err(status::from_store)?;
        tracing::info!(
            caller = %caller.name,
            stream_type = %stream.stream_type,
            key = %stream.key,
            mode = ?delete.mode,
            through_version = ?result.through_version,
            "stream deleted"
        );
        Ok(Response::new(pb::DeleteStreamResponse {
            deleted_through_version: result.through_version,
        }))
    }

    async fn set_stream_rules(
        &self,
        request: Request<pb::SetStreamRulesRequest>,
    ) -> Result<Response<pb::SetStreamRulesResponse>, Status> {
        let caller = self
            .access
            .caller(&request, "SetStreamRules", Role::Admin)?;
        let set = convert::set_stream_rules(request.into_inner())?;
        caller.may_touch(&set.stream.stream_type)?;
        let stream = set.stream.clone();
        let revision = self
            .store()?
            .set_stream_rules(set.stream, set.rules, set.expected_revision)
            .await
            .map_err(status::from_store)?;
        tracing::info!(
            caller = %caller.name,
            stream_type = %stream.stream_type,
            key = %stream.key,
            rules = ?set.rules,
            revision,
            "stream rules set"
        );
        Ok(Response::new(pb::SetStreamRulesResponse { revision }))
    }

    async fn save_snapshot(
        &self,
        request: Request<pb::SaveSnapshotRequest>,
    ) -> Result<Response<pb::SaveSnapshotResponse>, Status> {
        let caller = self.access.caller(&request, "SaveSnapshot", Role::Write)?;
        let save = snapshot::save(request.into_inner(), &self.limits)?;
        caller.may_touch(&save.stream.stream_type)?;
        self.store()?
            .save_snapshot(save.stream, save.version, save.snapshot_type, save.data)
            .await
            .map_err(status::from_store)?;
        Ok(Response::new(pb::SaveSnapshotResponse {}))
    }

    type ReadFromSnapshotStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Outgoing, Status>> + Send>>;

    async fn read_from_snapshot(
        &self,
        request: Request<pb::ReadFromSnapshotRequest>,
    ) -> Result<Response<Self::ReadFromSnapshotStream>, Status> {
        let caller = self
            .access
            .caller(&request, "ReadFromSnapshot", Role::Read)?;
        let peer = remote_addr(&request);
        let stream = convert::stream_id(request.into_inner().stream, "stream")?;
        caller.may_touch(&stream.stream_type)?;
        let share = (self.open_reads.take(peer)?, self.metrics.open_call("read"));
        let (snapshot, cursor) = self
            .store()?
            .read_from_snapshot(stream)
            .await
            .map_err(status::from_store)?;
        let first = snapshot.as_ref().map(|s| Ok(snapshot::message(s)));
        let events = send_read(cursor, share, Visible::all());
        Ok(Response::new(Box::pin(
            tokio_stream::iter(first).chain(events),
        )))
    }

    async fn get_server_info(
        &self,
        request: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::GetServerInfoResponse>, Status> {
        let caller = self.access.caller(&request, "GetServerInfo", Role::Read)?;
        let store = self.store.get();
        // The figures count every stream type: a credential limited to some is not
        // told how much the others hold.
        let figures = match store {
            Some(store) if caller.scope.is_all() => {
                Some(store.figures().await.map_err(status::from_store)?)
            }
            _ => None,
        };
        Ok(Response::new(self.facts.answer(store, figures)))
    }

    type ScavengeStream = ReceiverStream<Result<pb::ScavengeResponse, Status>>;

    async fn scavenge(
        &self,
        request: Request<pb::ScavengeRequest>,
    ) -> Result<Response<Self::ScavengeStream>, Status> {
        let caller = self.access.caller(&request, "Scavenge", Role::Admin)?;
        if !caller.scope.is_all() {
            return Err(Status::permission_denied(format!(
                "Scavenge rewrites every stream's segments; `{}` may only touch some stream types",
                caller.name
            )));
        }
        let request = request.into_inner();
        let rate = match request.rate_limit_bytes_per_second {
            0 => self.limits.scavenge_bytes_per_second,
            asked => asked,
        };
        let options = crate::store::ScavengeOptions {
            dry_run: request.dry_run,
            bytes_per_second: (rate > 0).then_some(rate),
        };
        let mut reports = self
            .store()?
            .scavenge(options)
            .await
            .map_err(status::from_store)?;
        tracing::info!(caller = %caller.name, dry_run = options.dry_run, rate, "scavenge started");
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                let message = report
                    .map(|progress| convert::scavenge_progress(&progress))
                    .map_err(status::from_store);
                if sender.send(message).await.is_err() {
                    // The caller went away; the scavenge goes on.
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    type BackupStream = ReceiverStream<Result<pb::BackupResponse, Status>>;

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let caller = self.access.caller(&request, "Backup", Role::Admin)?;
        if !caller.scope.is_all() {
            return Err(Status::permission_denied(format!(
                "Backup copies every stream; `{}` may only touch some stream types",
                caller.name
            )));
        }
        let peer = remote_addr(&request);
        let held = backup::held(request.into_inner());
        let share = (
            self.open_reads.take(peer)?,
            self.metrics.open_call("backup"),
        );
        let mut running = self
            .store()?
            .backup(held)
            .await
            .map_err(status::from_store)?;
        let plan = backup::plan(running.plan());
        tracing::info!(
            caller = %caller.name,
            position = running.plan().position,
            bytes = running.plan().files.iter().map(|f| f.length - f.fetch_from).sum::<u64>(),
            "backup started"
        );
        let pacer = self.backup_pacer.clone();
        let (sender, receiver) = mpsc::channel(BACKUP_AHEAD_MESSAGES);
        tokio::spawn(async move {
            let _share = share;
            let mut message = Ok(plan);
            loop {
                let failed = message.is_err();
                if sender.send(message).await.is_err() || failed {
                    return;
                }
                message = match running.next_chunk().await {
                    Ok(Some(chunk)) => {
                        pacer.pace(chunk.data.len()).await;
                        Ok(backup::chunk(chunk))
                    }
                    Ok(None) => return,
                    Err(e) => Err(status::from_store(e)),
                };
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    type SubscribeStream = Encoding<SubscriptionItem>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = self.access.caller(&request, "Subscribe", Role::Read)?;
        let peer = remote_addr(&request);
        let subscribe = convert::subscribe(request.into_inner())?;
        if let crate::backend::SubscribeTarget::Stream(stream, _) = &subscribe.target {
            caller.may_touch(&stream.stream_type)?;
        }
        let scope = caller.scope;
        let share = (
            self.open_reads.take(peer)?,
            self.metrics.open_call("subscribe"),
        );
        let mut subscription = self
            .store()?
            .subscribe(
                subscribe.target,
                subscribe.filter,
                subscribe.checkpoint_interval,
            )
            .await
            .map_err(status::from_store)?;
        let (sender, receiver) = mpsc::channel(READ_AHEAD_MESSAGES);
        tokio::spawn(async move {
            let _share = share;
            loop {
                let item = tokio::select! {
                    // The client went away while the subscription waited for commits.
                    () = sender.closed() => return,
                    item = subscription.next(READ_BATCH_EVENTS, READ_BATCH_BYTES) => item,
                };
                let message = match item {
                    Some(Ok(item)) => match in_scope(item, &scope) {
                        Some(item) => Ok(item),
                        None => continue,
                    },
                    Some(Err(e)) => Err(status::from_store(e)),
                    None => Err(Status::unavailable(
                        "the server is shutting down; subscribe again after the last \
                         position or version received",
                    )),
                };
                let last = message.is_err();
                if sender.send(message).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(encoding(receiver, |item| {
            item.map(convert::subscription_item)
        })))
    }
}

/// Messages a backup may have ready ahead of its client: 1 MiB chunks.
const BACKUP_AHEAD_MESSAGES: usize = 2;

/// The client's address, as the connection it came on knows it.
fn remote_addr<T>(request: &Request<T>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<crate::connections::Peer>()
        .and_then(|peer| peer.remote_addr)
}

/// A streaming call's messages: what its task sends, made into responses as tonic takes
/// each one. They hold events that share the cache's bytes, not copies of them, until
/// tonic writes them into its buffer.
type Encoding<T> =
    Map<ReceiverStream<Result<T, Status>>, fn(Result<T, Status>) -> Result<Outgoing, Status>>;

fn encoding<T>(
    receiver: mpsc::Receiver<Result<T, Status>>,
    encode: fn(Result<T, Status>) -> Result<Outgoing, Status>,
) -> Encoding<T> {
    ReceiverStream::new(receiver).map(encode)
}

/// What of a read its caller sees: the events in its scope, up to its count.
struct Visible {
    scope: Scope,
    /// Events still to send; None: all.
    max_count: Option<u64>,
}

impl Visible {
    /// Everything the store reads.
    fn all() -> Self {
        Visible {
            scope: Scope::default(),
            max_count: None,
        }
    }

    /// The events of `batch` to send, None when there are none.
    fn take(&mut self, mut batch: Vec<RecordedEvent>) -> Option<Vec<RecordedEvent>> {
        if !self.scope.is_all() {
            batch.retain(|event| self.scope.allows(&event.stream.stream_type));
        }
        if let Some(left) = &mut self.max_count {
            batch.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= batch.len() as u64;
        }
        (!batch.is_empty()).then_some(batch)
    }
}

/// A subscription's item as a scoped caller sees it: events outside the scope are
/// left out, and a batch of nothing but those becomes a checkpoint at its last
/// position, so that the caller's resume point still moves.
fn in_scope(item: SubscriptionItem, scope: &Scope) -> Option<SubscriptionItem> {
    match item {
        SubscriptionItem::Events(mut events) if !scope.is_all() => {
            let last = events.last().map(|event| event.position);
            events.retain(|event| scope.allows(&event.stream.stream_type));
            match (events.is_empty(), last) {
                (false, _) => Some(SubscriptionItem::Events(events)),
                (true, Some(position)) => Some(SubscriptionItem::Checkpoint { position }),
                (true, None) => None,
            }
        }
        other => Some(other),
    }
}

/// Streams a listing looks at per call at most, whatever the page size: a filter that
/// matches little returns a short page instead of walking the whole store.
const LIST_SCAN_LIMIT: usize = 10_000;

/// Serves a read from a task of its own: one message per batch, at most
/// `READ_AHEAD_MESSAGES` ahead of the client, stopping when the client goes.
fn send_read(
    mut cursor: Box<dyn EventRead>,
    share: (ReadShare, OpenCall),
    mut visible: Visible,
) -> Encoding<Vec<RecordedEvent>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD_MESSAGES);
    tokio::spawn(async move {
        let _share = share;
        loop {
            if visible.max_count == Some(0) {
                return;
            }
            let batch = cursor.next_batch(READ_BATCH_EVENTS, READ_BATCH_BYTES).await;
            let message = match batch {
                Ok(events) if events.is_empty() => return,
                Ok(events) => match visible.take(events) {
                    Some(events) => Ok(events),
                    None => continue,
                },
                Err(e) => Err(status::from_store(e)),
            };
            let failed = message.is_err();
            if sender.send(message).await.is_err() || failed {
                return;
            }
        }
    });
    encoding(receiver, |batch| batch.map(encode::events))
}

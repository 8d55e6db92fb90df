//! The writer's commands, and a group commit's commands as planned: each kind of
//! command carries the reply channel of its own result type, so an answer can only go
//! to a command of its kind.

use crate::store::error::StoreError;
use crate::store::index::RecordLoc;
use crate::store::log::record::{Deletion, Record, RulesRecord};
use crate::store::types::{
    AppendResult, DeleteMode, DeleteResult, EventData, ExpectedVersion, StreamId, StreamRules,
};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// Where the answer to a command of result `T` goes. A receiver that is gone (the
/// client cancelled) needs no answer.
pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A request to the writer.
#[derive(Debug)]
pub enum Command {
    /// An append or a delete, to commit in the next group.
    Write(WriteCommand),
    /// Finish what is queued, sync, and stop.
    Shutdown(oneshot::Sender<()>),
}

/// A command that goes into a group commit.
#[derive(Debug)]
pub enum WriteCommand {
    /// Append events to a stream.
    Append(AppendCommand),
    /// Delete or tombstone a stream.
    Delete(DeleteCommand),
    /// Keep a snapshot of a stream.
    Snapshot(SnapshotCommand),
    /// Set a stream's rules.
    Rules(RulesCommand),
}

/// One change of a stream's rules waiting for the writer.
#[derive(Debug)]
pub struct RulesCommand {
    pub stream: StreamId,
    pub rules: StreamRules,
    /// The revision the rules must be at; None: any.
    pub expected_revision: Option<u64>,
    /// Where the new revision goes.
    pub reply: Reply<u64>,
}

/// One snapshot waiting for the writer.
#[derive(Debug)]
pub struct SnapshotCommand {
    /// The stream, and the version of it the snapshot is at.
    pub stream: StreamId,
    pub version: u64,
    /// The client's name for what the data is.
    pub snapshot_type: Arc<str>,
    pub data: bytes::Bytes,
    /// Where the outcome goes.
    pub reply: Reply<()>,
    /// Its share of the queue's byte budget.
    pub permit: OwnedSemaphorePermit,
}

/// One append waiting for the writer.
#[derive(Debug)]
pub struct AppendCommand {
    /// The stream.
    pub stream: StreamId,
    /// The precondition.
    pub expected: ExpectedVersion,
    /// The events, at least one.
    pub events: Vec<EventData>,
    /// Where the outcome goes.
    pub reply: Reply<AppendResult>,
    /// The share of the queue's byte budget this append holds until it is answered.
    pub permit: OwnedSemaphorePermit,
}

/// One delete waiting for the writer.
#[derive(Debug)]
pub struct DeleteCommand {
    /// The stream.
    pub stream: StreamId,
    /// The precondition.
    pub expected: ExpectedVersion,
    /// Soft delete or tombstone.
    pub mode: DeleteMode,
    /// Where the outcome goes.
    pub reply: Reply<DeleteResult>,
}

impl WriteCommand {
    /// The stream it writes, whose state the writer decides it on (rules too: they
    /// are set on streams that exist).
    pub fn stream(&self) -> &StreamId {
        match self {
            WriteCommand::Append(append) => &append.stream,
            WriteCommand::Delete(delete) => &delete.stream,
            WriteCommand::Snapshot(snapshot) => &snapshot.stream,
            WriteCommand::Rules(rules) => &rules.stream,
        }
    }

    /// Answers it with `error`, unplanned.
    pub fn refuse(self, error: &StoreError) {
        match self {
            WriteCommand::Append(append) => {
                let _ = append.reply.send(Err(error.clone()));
            }
            WriteCommand::Delete(delete) => {
                let _ = delete.reply.send(Err(error.clone()));
            }
            WriteCommand::Snapshot(snapshot) => {
                let _ = snapshot.reply.send(Err(error.clone()));
            }
            WriteCommand::Rules(rules) => {
                let _ = rules.reply.send(Err(error.clone()));
            }
        }
    }
}

/// A command planned into the group's records, answered once they are durable.
#[derive(Debug)]
pub enum Written {
    Append {
        loc: RecordLoc,
        record: Arc<Record>,
        reply: Reply<AppendResult>,
        permit: OwnedSemaphorePermit,
    },
    Delete {
        deletion: Deletion,
        reply: Reply<DeleteResult>,
    },
    Snapshot {
        stream: StreamId,
        version: u64,
        loc: RecordLoc,
        reply: Reply<()>,
        permit: OwnedSemaphorePermit,
    },
    Rules {
        record: RulesRecord,
        reply: Reply<u64>,
    },
}

impl Written {
    /// Tells its caller where it landed.
    pub fn succeed(self) {
        match self {
            Written::Append {
                record,
                reply,
                permit,
                ..
            } => {
                drop(permit);
                let _ = reply.send(Ok(AppendResult {
                    version: record.last_version(),
                    position: record.last_position(),
                }));
            }
            Written::Delete { deletion, reply } => {
                let _ = reply.send(Ok(DeleteResult {
                    through_version: deletion.through_version,
                }));
            }
            Written::Snapshot { reply, permit, .. } => {
                drop(permit);
                let _ = reply.send(Ok(()));
            }
            Written::Rules { record, reply } => {
                let _ = reply.send(Ok(record.revision));
            }
        }
    }

    /// Tells its caller it did not become durable.
    pub fn fail(self, error: &StoreError) {
        match self {
            Written::Append { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Written::Delete { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Written::Snapshot { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Written::Rules { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// A command answered without a write: a retry, a deletion already done, a refusal.
/// It is sent with its group's answers, after the writes it was decided on are durable.
#[derive(Debug)]
pub enum Decided {
    Append(Reply<AppendResult>, Result<AppendResult, StoreError>),
    Delete(Reply<DeleteResult>, Result<DeleteResult, StoreError>),
    Snapshot(Reply<()>, Result<(), StoreError>),
    Rules(Reply<u64>, Result<u64, StoreError>),
}

impl Decided {
    /// Sends the answer decided.
    pub fn send(self) {
        match self {
            Decided::Append(reply, result) => {
                let _ = reply.send(result);
            }
            Decided::Delete(reply, result) => {
                let _ = reply.send(result);
            }
            Decided::Snapshot(reply, result) => {
                let _ = reply.send(result);
            }
            Decided::Rules(reply, result) => {
                let _ = reply.send(result);
            }
        }
    }

    /// Sends `error` instead: the writes it was decided on did not become durable.
    pub fn fail(self, error: &StoreError) {
        match self {
            Decided::Append(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
            Decided::Delete(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
            Decided::Snapshot(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
            Decided::Rules(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// A group commit's commands as planned: those written, in log order, and those
/// answered without a write.
#[derive(Debug, Default)]
pub struct Group {
    pub written: Vec<Written>,
    pub decided: Vec<Decided>,
}

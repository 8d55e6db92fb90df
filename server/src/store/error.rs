//! The store's errors. The service layer maps each variant to a gRPC status in one
//! exhaustive match (`service/status.rs`), so a new variant forces a decision there.

use crate::store::types::{ExpectedVersion, StreamId};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Why the store refused or failed an operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version. Nothing was written; the caller can
    /// re-read the stream and decide again.
    #[error("stream {stream} expected version {expected}, actual {}", describe_version(*.actual))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's version; None when it has no events.
        actual: Option<u64>,
    },
    /// An event id of the append is already committed somewhere other than where this
    /// append would put it. Nothing was written; use fresh ids for new events.
    #[error("event id {id} is already committed in stream {stream} at version {version}")]
    EventIdConflict {
        /// The id at fault.
        id: Uuid,
        /// Where it is committed.
        stream: StreamId,
        /// Its version there.
        version: u64,
    },
    /// The stream has never been written.
    #[error("stream {0} not found")]
    StreamNotFound(StreamId),
    /// The stream's events are deleted (soft-deleted and not written since, or
    /// tombstoned): there is nothing to read.
    #[error("stream {0} not found: it is deleted")]
    StreamDeleted(StreamId),
    /// The stream is tombstoned and can never be written again.
    #[error("stream {0} is tombstoned: it can never be written again")]
    StreamTombstoned(StreamId),
    /// A stored record failed its checksum or does not parse. Never served; the
    /// operator restores the file or truncates the log at `offset`.
    #[error("corrupt record in {} at offset {offset}: {reason}", .path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log does not hold together (a position or version gap between valid
    /// records): written by a bug, or segments were removed or mixed by hand.
    #[error("inconsistent log in {} at offset {offset}: {reason}", .path.display())]
    Inconsistent {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record at fault.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The index and the log disagree while serving: a bug. The read stops rather than
    /// serve a wrong event.
    #[error("internal error: {0}")]
    IndexMismatch(String),
    /// The disk failed a read or write. A failed write was rolled back; the caller can
    /// retry.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An fsync failed, or a failed write could not be cut off again, so the store can
    /// no longer tell what the log holds; it refuses all writes until restarted, when
    /// recovery re-reads the log. The reason says which of the two.
    #[error("the store refuses writes until the server restarts: {0}")]
    WritesRefused(String),
    /// Another process holds the data directory's lock.
    #[error("data directory {} is in use by another Evenire process", .0.display())]
    Locked(PathBuf),
    /// The store is shutting down; the caller retries against the next instance.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// The stream's rules were not at the revision the change expected.
    #[error(
        "stream {stream}'s rules are at revision {actual}, not the expected {expected}: read them again and decide"
    )]
    WrongRulesRevision {
        stream: StreamId,
        expected: u64,
        actual: u64,
    },
    /// A snapshot at a version the stream does not hold (readable).
    #[error(
        "stream {stream} has no version {version} to snapshot: its readable versions are {first} to {last}"
    )]
    SnapshotOutOfRange {
        stream: StreamId,
        version: u64,
        first: u64,
        last: u64,
    },
    /// A scavenge rewrote the record's segment after the reader found where the record
    /// was: looking it up again finds it (reads do so themselves).
    #[error("the record moved while it was read (a scavenge rewrote its segment): retry")]
    Moved,
    /// A scavenge is already running: one at a time.
    #[error("a scavenge is already running")]
    ScavengeRunning,
    /// This backend does not do what was asked (the message says what).
    #[error("{0} is not supported by this store")]
    Unsupported(&'static str),
}

fn describe_version(version: Option<u64>) -> String {
    version.map_or_else(|| "no_stream".to_string(), |v| v.to_string())
}

impl StoreError {
    /// An I/O error with what the store was doing.
    /// What a client is told: the error without the server's directories. A damaged
    /// record names its segment file and offset, which is what an operator asked about
    /// it needs; the full path goes to the server's log (`to_string`).
    pub fn client_message(&self) -> String {
        let file = |path: &std::path::Path| {
            path.file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
        };
        match self {
            StoreError::Corrupt {
                path,
                offset,
                reason,
            } => format!(
                "corrupt record in {} at offset {offset}: {reason}",
                file(path)
            ),
            StoreError::Inconsistent {
                path,
                offset,
                reason,
            } => format!(
                "inconsistent log in {} at offset {offset}: {reason}",
                file(path)
            ),
            other => other.to_string(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

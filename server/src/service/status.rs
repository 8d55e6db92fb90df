//! The one mapping from store errors to gRPC statuses. No catch-all arm: a new
//! `StoreError` variant does not compile until it is given a status here.

use crate::backend::StoreError;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Trailing metadata on `ABORTED` for a wrong expected version: the stream's actual
/// version, absent when the stream does not exist.
pub const ACTUAL_VERSION_KEY: &str = "evenire-actual-version";
/// Trailing metadata on `ABORTED` that says which kind it is: `wrong-expected-version`
/// or `event-id-conflict`.
pub const ERROR_KIND_KEY: &str = "evenire-error";

fn aborted(message: String, kind: &'static str) -> Status {
    let mut status = Status::new(Code::Aborted, message);
    status
        .metadata_mut()
        .insert(ERROR_KIND_KEY, MetadataValue::from_static(kind));
    status
}

/// The status a client gets for a store error.
pub fn from_store(error: StoreError) -> Status {
    let message = error.client_message();
    match error {
        StoreError::WrongExpectedVersion { actual, .. } => {
            let mut status = aborted(message, "wrong-expected-version");
            if let Some(version) = actual {
                status
                    .metadata_mut()
                    .insert(ACTUAL_VERSION_KEY, MetadataValue::from(version));
            }
            status
        }
        StoreError::EventIdConflict { .. } => aborted(message, "event-id-conflict"),
        StoreError::WrongRulesRevision { actual, .. } => {
            let mut status = aborted(message, "wrong-expected-version");
            status
                .metadata_mut()
                .insert(ACTUAL_VERSION_KEY, MetadataValue::from(actual));
            status
        }
        StoreError::StreamNotFound(_) | StoreError::StreamDeleted(_) => {
            Status::new(Code::NotFound, message)
        }
        StoreError::StreamTombstoned(_) => Status::new(Code::FailedPrecondition, message),
        StoreError::Corrupt { .. } | StoreError::Inconsistent { .. } => {
            tracing::error!(error = %error, "refused to serve damaged data");
            Status::new(Code::DataLoss, message)
        }
        StoreError::IndexMismatch(_) => {
            tracing::error!(%message, "index and log disagree");
            Status::new(Code::Internal, message)
        }
        StoreError::Io { .. } | StoreError::WritesRefused(_) => {
            tracing::error!(%message, "storage failure");
            Status::new(Code::Unavailable, message)
        }
        StoreError::Locked(_) | StoreError::ShuttingDown | StoreError::Moved => {
            Status::new(Code::Unavailable, message)
        }
        StoreError::ScavengeRunning => Status::new(Code::AlreadyExists, message),
        StoreError::Unsupported(_) => Status::new(Code::Unimplemented, message),
        StoreError::SnapshotOutOfRange { .. } => Status::new(Code::OutOfRange, message),
    }
}

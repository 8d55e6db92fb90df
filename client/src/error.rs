//! The client's error: one variant per case a caller handles differently.

use tonic::{Code, Status};

/// Trailing metadata the server sets on a wrong expected version.
const ACTUAL_VERSION_KEY: &str = "evenire-actual-version";
/// Trailing metadata that tells the two kinds of `ABORTED` apart.
const ERROR_KIND_KEY: &str = "evenire-error";

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream was not at the expected version; nothing was written. Re-read the
    /// stream, decide again, and append with the new version.
    #[error("wrong expected version (actual: {}): {message}", describe(*.actual))]
    WrongExpectedVersion {
        /// The stream's version; None when it has no events.
        actual: Option<u64>,
        /// The server's message.
        message: String,
    },
    /// An event id of the append is already committed elsewhere; nothing was written.
    #[error("event id conflict: {0}")]
    EventIdConflict(String),
    /// The stream has never been written, or is deleted.
    #[error("not found: {0}")]
    NotFound(String),
    /// The stream is tombstoned: it can never be written again.
    #[error("tombstoned: {0}")]
    Tombstoned(String),
    /// The request broke the contract or a limit; the message names the field or limit.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server met a record that failed its checksum and refused to serve it.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// The call carried no credentials the server knows (no token, a mistyped or
    /// revoked one); the message says which.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credentials' role or stream types do not allow the call; the message names
    /// what was needed.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The server is starting, stopping, or cannot write; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other status from the server.
    #[error("server error: {0}")]
    Status(Status),
    /// The server address is not a valid URI.
    #[error("invalid server URI: {0}")]
    InvalidUri(String),
    /// The connection could not be made; shown with its innermost cause ("Connection
    /// refused"), which tonic's own message ("transport error") leaves out.
    #[error("cannot connect: {}", innermost(.0))]
    Connect(#[from] tonic::transport::Error),
    /// The connection failed during the call in a way a retry will not mend (the
    /// status came from this side's transport, not from the server): the innermost
    /// cause, such as the server's "this server requires TLS: connect with https://".
    #[error("connection failed: {0}")]
    Connection(String),
    /// The server sent something this client cannot understand.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// A file on this side (a backup's) could not be read or written; the message
    /// names it and why.
    #[error("{0}")]
    Local(String),
}

/// The innermost cause of an error: what happened, not a chain of wrappers.
fn innermost<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
}

fn describe(actual: Option<u64>) -> String {
    actual.map_or_else(|| "no stream".to_string(), |v| v.to_string())
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        if let Some(cause) = std::error::Error::source(&status) {
            let cause = innermost(cause).to_string();
            return match status.code() {
                // A connection lost or refused: worth a retry, as before.
                Code::Unavailable => Error::Unavailable(cause),
                _ => Error::Connection(cause),
            };
        }
        let message = status.message().to_string();
        match status.code() {
            Code::Aborted
                if status
                    .metadata()
                    .get(ERROR_KIND_KEY)
                    .and_then(|v| v.to_str().ok())
                    == Some("event-id-conflict") =>
            {
                Error::EventIdConflict(message)
            }
            Code::Aborted => Error::WrongExpectedVersion {
                actual: status
                    .metadata()
                    .get(ACTUAL_VERSION_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
                message,
            },
            Code::NotFound => Error::NotFound(message),
            Code::FailedPrecondition => Error::Tombstoned(message),
            Code::InvalidArgument => Error::InvalidArgument(message),
            Code::DataLoss => Error::DataLoss(message),
            Code::Unavailable => Error::Unavailable(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            _ => Error::Status(status),
        }
    }
}

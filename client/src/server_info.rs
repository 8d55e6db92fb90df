//! What a server is and how it stands: `Client::server_info`.

use crate::admin::time;
use crate::client::Client;
use crate::error::Error;
use evenire_proto::v1 as pb;
use std::time::SystemTime;

/// Where a server stands; health reports SERVING in [`ServerState::Serving`] alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Opening its store (recovering the log); calls get [`Error::Unavailable`].
    Starting,
    /// Serving every call.
    Serving,
    /// Serving reads, refusing writes until a restart, after the disk failed a write.
    RefusingWrites,
    /// Shutting down.
    Stopping,
}

/// What a store holds as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFigures {
    /// Streams the store knows, deleted ones included.
    pub streams: u64,
    /// Events ever appended: the position the next one gets.
    pub events: u64,
    /// Bytes of the log on disk, where the backend can tell.
    pub log_bytes: Option<u64>,
    /// Segment files of the log, where the backend has them.
    pub log_segments: Option<u64>,
}

/// What a server is and how it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server's version, such as "0.1.0".
    pub version: String,
    /// What keeps the events: "file".
    pub backend: String,
    /// When the server process started.
    pub started: SystemTime,
    /// Where it stands.
    pub state: ServerState,
    /// Why writes are refused, in [`ServerState::RefusingWrites`].
    pub write_refusal: Option<String>,
    /// What the store holds: None while it opens, and for a credential limited to
    /// some stream types.
    pub store: Option<StoreFigures>,
}

impl Client {
    /// What the server is and how it stands. Answers while the server recovers too.
    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let request = pb::GetServerInfoRequest {};
        let info = self
            .inner
            .clone()
            .get_server_info(request)
            .await?
            .into_inner();
        let state = match info.state() {
            pb::ServerState::Starting => ServerState::Starting,
            pb::ServerState::Serving => ServerState::Serving,
            pb::ServerState::RefusingWrites => ServerState::RefusingWrites,
            pb::ServerState::Stopping => ServerState::Stopping,
            pb::ServerState::Unspecified => {
                return Err(Error::BadResponse(format!(
                    "GetServerInfo answered an unknown state {}",
                    info.state
                )));
            }
        };
        Ok(ServerInfo {
            version: info.version,
            backend: info.backend,
            started: time(info.started),
            state,
            write_refusal: Some(info.write_refusal).filter(|reason| !reason.is_empty()),
            store: info.store.map(|store| StoreFigures {
                streams: store.streams,
                events: store.events,
                log_bytes: store.log_bytes,
                log_segments: store.log_segments,
            }),
        })
    }
}

//! The snapshot calls' messages: a snapshot to save, checked, and one read back.

use super::convert::{self, Limits};
use crate::backend::{Snapshot, StreamId};
use evenire_proto::v1 as pb;
use evenire_proto::{Encoded, Outgoing, timestamp};
use prost::Message as _;
use std::sync::Arc;
use tonic::Status;

/// A snapshot to save, checked.
#[derive(Debug)]
pub struct Save {
    pub stream: StreamId,
    pub version: u64,
    pub snapshot_type: Arc<str>,
    pub data: bytes::Bytes,
}

/// Checks a save: the stream, a type as events' types are, data no larger than the
/// largest event.
pub fn save(request: pb::SaveSnapshotRequest, limits: &Limits) -> Result<Save, Status> {
    if request.data.len() > limits.max_event_size {
        return Err(convert::invalid(format!(
            "data: {} bytes exceed max_event_size of {} bytes",
            request.data.len(),
            limits.max_event_size
        )));
    }
    Ok(Save {
        stream: convert::stream_id(request.stream, "stream")?,
        version: request.version,
        snapshot_type: convert::type_name(request.r#type, "type")?,
        data: request.data,
    })
}

/// The first message of a read from a snapshot: the snapshot alone.
pub fn message(snapshot: &Snapshot) -> Outgoing {
    let response = pb::ReadFromSnapshotResponse {
        events: Vec::new(),
        snapshot: Some(pb::Snapshot {
            stream: Some(convert::stream_id_to_proto(&snapshot.stream)),
            version: snapshot.version,
            r#type: snapshot.snapshot_type.to_string(),
            data: snapshot.data.clone(),
            created: Some(timestamp(snapshot.created_micros)),
        }),
    };
    Outgoing::Encoded(Encoded(response.encode_to_vec().into()))
}

//! Snapshots: a stream's state saved at a version, so that an aggregate with a long
//! history is rebuilt from the snapshot and the events after it.

use crate::client::Client;
use crate::error::Error;
use crate::types::{RecordedEvent, StreamId, time};
use bytes::Bytes;
use evenire_proto::v1 as pb;
use std::time::SystemTime;
use tokio_stream::StreamExt;

/// A stream's state at a version, as it was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream.
    pub stream: StreamId,
    /// The stream's version the state is at.
    pub version: u64,
    /// What the data is, as the saver named it.
    pub snapshot_type: String,
    /// The state.
    pub data: Bytes,
    /// When the store committed it.
    pub created: SystemTime,
}

/// What an aggregate is rebuilt from.
#[derive(Debug, Clone, PartialEq)]
pub struct FromSnapshot {
    /// The stream's latest snapshot, if it has one.
    pub snapshot: Option<Snapshot>,
    /// The events after the snapshot's version (all of them, without one), in order.
    pub events: Vec<RecordedEvent>,
}

impl Client {
    /// Saves a snapshot of `stream` at `version` (a version the stream holds). Not an
    /// event: it takes no position and changes no version. The server keeps the newest
    /// few per stream; deleting the stream removes them.
    pub async fn save_snapshot(
        &self,
        stream: &StreamId,
        version: u64,
        snapshot_type: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let request = pb::SaveSnapshotRequest {
            stream: Some(stream.to_proto()),
            version,
            r#type: snapshot_type.into(),
            data: data.into(),
        };
        self.inner.clone().save_snapshot(request).await?;
        Ok(())
    }

    /// The latest snapshot of `stream` and every event after it, in one call: what an
    /// aggregate is rebuilt from. The events are collected: with no snapshot, that is
    /// the whole stream ([`Client::read`] streams one instead).
    pub async fn read_from_snapshot(&self, stream: &StreamId) -> Result<FromSnapshot, Error> {
        let request = pb::ReadFromSnapshotRequest {
            stream: Some(stream.to_proto()),
        };
        let mut responses = self
            .inner
            .clone()
            .read_from_snapshot(request)
            .await?
            .into_inner();
        let mut read = FromSnapshot {
            snapshot: None,
            events: Vec::new(),
        };
        while let Some(response) = responses.next().await {
            let response = response?;
            if let Some(snapshot) = response.snapshot {
                read.snapshot = Some(from_proto(snapshot).map_err(Error::BadResponse)?);
            }
            for event in response.events {
                read.events
                    .push(RecordedEvent::from_proto(event).map_err(Error::BadResponse)?);
            }
        }
        Ok(read)
    }
}

fn from_proto(snapshot: pb::Snapshot) -> Result<Snapshot, String> {
    let stream = snapshot.stream.ok_or("a snapshot without its stream")?;
    Ok(Snapshot {
        stream: StreamId::from_proto(stream)?,
        version: snapshot.version,
        snapshot_type: snapshot.r#type,
        data: snapshot.data,
        created: time(snapshot.created.map(|t| (t.seconds, t.nanos))),
    })
}

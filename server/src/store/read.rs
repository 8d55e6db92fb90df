//! A stream read, served batch by batch so that a long stream never sits in memory at
//! once and a slow client holds back only its own read.

use super::error::StoreError;
use super::record::Record;
use super::types::{Direction, ReadFrom, RecordedEvent, StreamId};
use super::{Shared, read_index};
use std::sync::Arc;

/// A read in progress. Bounds are fixed when it starts: events appended later are not
/// part of it.
#[derive(Debug)]
pub struct StreamRead {
    shared: Arc<Shared>,
    stream: StreamId,
    /// The next version to return; None once the read is done.
    next: Option<u64>,
    /// The stream's last version when the read started.
    last: u64,
    direction: Direction,
    remaining: u64,
    /// The record that held the previous event: the next one is usually in it too.
    current: Option<Arc<Record>>,
}

impl StreamRead {
    pub(super) fn new(
        shared: Arc<Shared>,
        stream: StreamId,
        last: u64,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Self {
        let next = match (direction, from) {
            (Direction::Forward, ReadFrom::Start) => Some(0),
            (Direction::Forward, ReadFrom::End) => None,
            (Direction::Forward, ReadFrom::Version(v)) => (v <= last).then_some(v),
            (Direction::Backward, ReadFrom::Start) => Some(0),
            (Direction::Backward, ReadFrom::End) => Some(last),
            (Direction::Backward, ReadFrom::Version(v)) => Some(v.min(last)),
        };
        StreamRead {
            shared,
            stream,
            next,
            last,
            direction,
            remaining: max_count.unwrap_or(u64::MAX),
            current: None,
        }
    }

    /// The next events, at most `max_events` and, past the first, at most about
    /// `max_bytes` of data and metadata. Empty once the read is done. Reads from disk
    /// run on the blocking pool.
    pub async fn next_batch(
        mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> (Self, Result<Vec<RecordedEvent>, StoreError>) {
        if self.next.is_none() || self.remaining == 0 {
            return (self, Ok(Vec::new()));
        }
        let joined = tokio::task::spawn_blocking(move || {
            let batch = self.fill(max_events, max_bytes);
            (self, batch)
        })
        .await;
        match joined {
            Ok(done) => done,
            // The blocking pool only fails a task when the runtime shuts down.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn fill(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(version) = self.next {
            if self.remaining == 0 || batch.len() >= max_events || bytes >= max_bytes {
                break;
            }
            let record = self.record_holding(version)?;
            let event = record
                .event((version - record.first_version) as usize)
                .ok_or_else(|| self.inconsistent(version))?;
            bytes += event.data.len() + event.metadata.len();
            batch.push(event);
            self.remaining -= 1;
            self.next = match self.direction {
                Direction::Forward => version.checked_add(1).filter(|v| *v <= self.last),
                Direction::Backward => version.checked_sub(1),
            };
        }
        Ok(batch)
    }

    fn record_holding(&mut self, version: u64) -> Result<Arc<Record>, StoreError> {
        if let Some(record) = &self.current
            && record.first_version <= version
            && version <= record.last_version()
        {
            return Ok(record.clone());
        }
        let loc = read_index(&self.shared)
            .record_holding_version(&self.stream, version)
            .ok_or_else(|| self.inconsistent(version))?;
        let record = self.shared.reader.read(loc)?;
        if record.stream != self.stream {
            return Err(self.inconsistent(version));
        }
        self.current = Some(record.clone());
        Ok(record)
    }

    fn inconsistent(&self, version: u64) -> StoreError {
        StoreError::Inconsistent {
            path: Default::default(),
            offset: 0,
            reason: format!(
                "the index points version {version} of stream {} at a record that does not hold it",
                self.stream
            ),
        }
    }
}

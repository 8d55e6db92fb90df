//! A read of one stream (by version) or of the whole log (by position), served batch
//! by batch so that a long read never sits in memory at once and a slow client holds
//! back only its own read.

use crate::store::error::StoreError;
use crate::store::index::RecordLoc;
use crate::store::index::disk::IndexDb;
use crate::store::index::disk_answers::answered_by;
use crate::store::index::lookup;
use crate::store::log::record::Record;
use crate::store::shared::{Shared, read_index};
use crate::store::types::{Direction, ReadFrom, RecordedEvent, StreamId};
use bytes::Bytes;
use std::sync::Arc;

/// What a read walks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One stream, by version.
    Stream(StreamId),
    /// The whole log (`$all`), by position.
    All,
}

/// A read in progress. Its bound is fixed when it starts (events committed later are
/// not part of it) unless a subscription moves it with [`LogRead::extend_to`].
#[derive(Debug)]
pub struct LogRead {
    shared: Arc<Shared>,
    scope: Scope,
    /// The next version or position to return; None once a backward read passed 0 or a
    /// forward read passed `u64::MAX`.
    next: Option<u64>,
    /// Forward reads stop after this version or position; None while there is nothing.
    end: Option<u64>,
    /// Backward reads stop at this version or position: what deletes left readable.
    start: u64,
    direction: Direction,
    remaining: u64,
    /// The record that held the previous event: the next one is usually in it too.
    /// Kept between batches unless it is large (see [`Self::release`]).
    current: Option<Arc<Record>>,
    /// Whether `current` is large enough that its events are copied out (see
    /// [`LARGE_RECORD_BYTES`]).
    current_is_large: bool,
}

/// Events of records with more data than this are copied into the batch rather than
/// shared with the record: a slice would keep the whole record (up to
/// `--max-request-size`) alive for as long as a slow client leaves the batch queued,
/// even after the cache let it go. Smaller records are shared: a batch then holds at
/// most its own bytes and two partial records.
const LARGE_RECORD_BYTES: usize = 256 << 10;

impl LogRead {
    /// A read of `scope` whose readable events run from `start` to `last` (None:
    /// nothing yet).
    pub(in crate::store) fn new(
        shared: Arc<Shared>,
        scope: Scope,
        start: u64,
        last: Option<u64>,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Self {
        let next = match (direction, from, last) {
            (_, _, None) => None,
            (Direction::Forward, ReadFrom::Start, _) => Some(start),
            (Direction::Forward, ReadFrom::End, Some(last)) => last.checked_add(1),
            (Direction::Forward, ReadFrom::Version(v), _) => Some(v.max(start)),
            (Direction::Backward, ReadFrom::Start, _) => Some(start),
            (Direction::Backward, ReadFrom::End, Some(last)) => Some(last),
            (Direction::Backward, ReadFrom::Version(v), Some(last)) => {
                Some(v.min(last)).filter(|v| *v >= start)
            }
        };
        LogRead {
            shared,
            scope,
            next,
            end: last,
            start,
            direction,
            remaining: max_count.unwrap_or(u64::MAX),
            current: None,
            current_is_large: false,
        }
    }

    /// A forward read that starts at `next` whatever there is now: what subscriptions
    /// use, moving the end as commits arrive.
    pub(in crate::store) fn following(
        shared: Arc<Shared>,
        scope: Scope,
        next: Option<u64>,
    ) -> Self {
        LogRead {
            shared,
            scope,
            next,
            end: None,
            start: 0,
            direction: Direction::Forward,
            remaining: u64::MAX,
            current: None,
            current_is_large: false,
        }
    }

    /// Lets a forward read go on up to `end`, included.
    pub(in crate::store) fn extend_to(&mut self, end: Option<u64>) {
        self.end = end;
    }

    /// The next version or position this read will return, if it is not done.
    pub fn next_index(&self) -> Option<u64> {
        self.next
    }

    fn done(&self) -> bool {
        let Some(next) = self.next else {
            return true;
        };
        self.remaining == 0
            || (self.direction == Direction::Forward && self.end.is_none_or(|end| next > end))
    }

    /// The next events, at most `max_events` and, past the first, at most about
    /// `max_bytes` of data and metadata. Empty once the read is done (or, for a
    /// subscription, has reached its end). Events in the cache are taken at once; disk
    /// reads run on the blocking pool.
    pub async fn next_batch(
        mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> (Self, Result<Vec<RecordedEvent>, StoreError>) {
        if self.done() {
            return (self, Ok(Vec::new()));
        }
        // Room for a whole batch up front: a long read fills it, and growing it as it
        // filled was about 5 % of the server's time in a cached read. A read limited to
        // fewer events gets room for those.
        let expected = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let mut batch = Vec::with_capacity(max_events.min(expected));
        if let Err(e) = self.fill(&mut batch, max_events, max_bytes, false) {
            return (self, Err(e));
        }
        if !batch.is_empty() {
            self.release();
            return (self, Ok(fitted(batch)));
        }
        crate::store::blocking(move || {
            let filled = self.fill(&mut batch, max_events, max_bytes, true);
            self.release();
            (self, filled.map(|()| fitted(batch)))
        })
        .await
    }

    /// Adds events to `batch`. Without `may_block`, stops at the first record that is
    /// not in the cache.
    fn fill(
        &mut self,
        batch: &mut Vec<RecordedEvent>,
        max_events: usize,
        max_bytes: usize,
        may_block: bool,
    ) -> Result<(), StoreError> {
        let mut bytes = 0;
        while !self.done() && batch.len() < max_events && bytes < max_bytes {
            let Some(wanted) = self.next else { break };
            let found = match self.record_holding(wanted, may_block) {
                // A scavenge rewrote the segment since the index was read: the index
                // now says where the record is.
                Err(StoreError::Moved) => self.record_holding(wanted, may_block),
                found => found,
            };
            let Some((at, record)) = found? else {
                break;
            };
            if at != wanted {
                // Positions a scavenge reclaimed are skipped.
                self.next = Some(at);
                if self.done() {
                    break;
                }
            }
            let mut event = record
                .event(self.offset_in(&record, at))
                .ok_or_else(|| self.mismatch(at))?;
            if self.current_is_large {
                event.data = Bytes::copy_from_slice(&event.data);
                event.metadata = Bytes::copy_from_slice(&event.metadata);
            }
            bytes += event.data.len() + event.metadata.len();
            batch.push(event);
            self.remaining -= 1;
            self.next = match self.direction {
                Direction::Forward => at.checked_add(1),
                Direction::Backward => at.checked_sub(1).filter(|v| *v >= self.start),
            };
        }
        Ok(())
    }

    /// Lets go of the current record between batches when it is large: a read whose
    /// client does not read on then holds only its batches and at most one small
    /// record, whatever the size of the records it reads (one append can be as large as
    /// `--max-request-size`). The price: a read of records larger than
    /// [`LARGE_RECORD_BYTES`] looks such a record up once per batch that needs it, from
    /// the cache or, when the cache cannot hold it, from the disk. Small records are
    /// kept: letting go of those whenever the cache did not hold them cost a fifth of
    /// the rate of a cold read of `$all` (records of 1,000 events end mid-batch, and
    /// were read twice).
    fn release(&mut self) {
        if self.current_is_large {
            self.current = None;
        }
    }

    fn first_in(&self, record: &Record) -> u64 {
        match self.scope {
            Scope::Stream(_) => record.first_version,
            Scope::All => record.first_position,
        }
    }

    fn offset_in(&self, record: &Record, at: u64) -> usize {
        (at - self.first_in(record)) as usize
    }

    /// The record holding `at`, with `at`; None when it is not cached and blocking is
    /// not allowed, or when nothing is left to read. In a read of the log, a position a
    /// scavenge reclaimed is held by no record: the read goes on at the nearest position
    /// in its direction that a record holds, which is returned with it.
    fn record_holding(
        &mut self,
        at: u64,
        may_block: bool,
    ) -> Result<Option<(u64, Arc<Record>)>, StoreError> {
        if let Some(record) = &self.current
            && self.holds(record, at)
        {
            return Ok(Some((at, record.clone())));
        }
        let db = self.shared.index_db();
        let disk = db.as_deref().map(IndexDb::streams);
        let found = match &self.scope {
            Scope::Stream(stream) => {
                lookup::record_holding_version(&*self.shared, disk, stream, at)?
            }
            Scope::All => lookup::record_holding(&*self.shared, disk, at)?,
        };
        let found = found.map(|r| r.loc);
        let record = match found {
            Some(loc) => match self.load(loc, may_block)? {
                Some(record) => Some(record),
                None => return Ok(None),
            },
            None => None,
        };
        match (&self.scope, record) {
            (_, Some(record)) if self.holds(&record, at) => {
                if let Scope::Stream(stream) = &self.scope
                    && record.stream != *stream
                {
                    return Err(self.mismatch(at));
                }
                Ok(Some((at, record)))
            }
            (Scope::Stream(stream), _) => {
                // A subscription from a version a scavenge has since reclaimed goes on
                // from the first one there is.
                let readable = answered_by(&self.shared, |i, a| i.readable(stream, a))?;
                let first = readable.map(|(f, _)| f);
                match first {
                    Some(first) if first > at && self.direction == Direction::Forward => {
                        self.next = Some(first);
                        Ok(None)
                    }
                    _ => Err(self.mismatch(at)),
                }
            }
            (Scope::All, before) => match self.direction {
                Direction::Backward => {
                    let found = before
                        .map(|record| (record.last_position(), record))
                        .filter(|(at, _)| *at >= self.start);
                    if found.is_none() {
                        self.next = None;
                    }
                    Ok(found)
                }
                Direction::Forward => {
                    // Before the look-up: past it, appends made since would be
                    // skipped.
                    let log_end = read_index(&self.shared).next_position();
                    let after = lookup::record_after(&*self.shared, disk, at)?;
                    let Some(after) = after else {
                        // Reclaimed to the end of the log: go on from there.
                        self.next = Some(log_end.max(at));
                        return Ok(None);
                    };
                    Ok(self
                        .load(after.loc, may_block)?
                        .map(|record| (record.first_position, record)))
                }
            },
        }
    }

    fn holds(&self, record: &Record, at: u64) -> bool {
        let first = self.first_in(record);
        first <= at && at < first + record.events.len() as u64
    }

    /// The record at `loc`, made the current one; None when it is not cached and
    /// blocking is not allowed.
    fn load(&mut self, loc: RecordLoc, may_block: bool) -> Result<Option<Arc<Record>>, StoreError> {
        let record = if may_block {
            self.shared.reader.read(loc)?
        } else {
            match self.shared.reader.cached(loc) {
                Some(record) => record,
                None => return Ok(None),
            }
        };
        self.current_is_large = record
            .events
            .iter()
            .map(|e| e.data.len() + e.metadata.len())
            .sum::<usize>()
            > LARGE_RECORD_BYTES;
        self.current = Some(record.clone());
        Ok(Some(record))
    }

    fn mismatch(&self, at: u64) -> StoreError {
        let what = match &self.scope {
            Scope::Stream(stream) => format!("version {at} of stream {stream}"),
            Scope::All => format!("position {at}"),
        };
        StoreError::IndexMismatch(format!(
            "the index has no record holding {what}, or points at one that does not hold it"
        ))
    }
}

/// `batch` without the room it did not use, when that is most of it: a batch cut short
/// by its byte limit (large events) would otherwise carry room for 1,024 events, about
/// 150 KiB, for as long as a slow client leaves it queued.
fn fitted(mut batch: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    if batch.len() < batch.capacity() / 2 {
        batch.shrink_to_fit();
    }
    batch
}

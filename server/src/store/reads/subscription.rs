//! Subscriptions: first the history from the log, then each commit as it lands, until
//! the client goes or the store closes.
//!
//! A subscription is a forward read whose end moves. After each batch it asks the
//! index where the log (or the stream) ends now; when it has read everything it waits
//! for the writer's commit signal. It holds no queue of its own: a subscriber that
//! falls behind simply reads further back in the log (through the cache, or from disk)
//! until it reaches the end again. So delivery is exactly once and in order across the
//! switch from catch-up to live, a slow subscriber costs writers nothing, and memory
//! does not grow with the lag.

use super::read::{LogRead, Scope};
use crate::store::error::StoreError;
use crate::store::index::disk_answers::answered_for_read;
use crate::store::shared::{Shared, read_index};
use crate::store::stats::Progress;
use crate::store::types::{RecordedEvent, StreamId};
use std::sync::Arc;
use tokio::sync::watch;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// With the first event (of the log or the stream).
    Start,
    /// With the first event committed after the subscription starts.
    End,
    /// After this position (for the log) or version (for a stream): a checkpoint.
    After(u64),
}

/// What a subscription follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeTarget {
    /// Every event of the store, by position.
    All(SubscribeFrom),
    /// One stream, by version. It need not exist yet.
    Stream(StreamId, SubscribeFrom),
}

/// A server-side filter: an event passes when its stream type matches (or no stream
/// type is given) and its event type matches (or no event type is given). A type
/// matches a list when it equals a name or starts with a prefix in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact stream types.
    pub stream_types: Vec<String>,
    /// Stream type prefixes.
    pub stream_type_prefixes: Vec<String>,
    /// Exact event types.
    pub event_types: Vec<String>,
    /// Event type prefixes.
    pub event_type_prefixes: Vec<String>,
}

impl Filter {
    /// Whether the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.stream_types.is_empty()
            && self.stream_type_prefixes.is_empty()
            && self.event_types.is_empty()
            && self.event_type_prefixes.is_empty()
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        matches_any(
            &event.stream.stream_type,
            &self.stream_types,
            &self.stream_type_prefixes,
        ) && matches_any(
            &event.event_type,
            &self.event_types,
            &self.event_type_prefixes,
        )
    }
}

fn matches_any(name: &str, exact: &[String], prefixes: &[String]) -> bool {
    (exact.is_empty() && prefixes.is_empty())
        || exact.iter().any(|e| e == name)
        || prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// Events, in order.
    Events(Vec<RecordedEvent>),
    /// Everything committed so far has been delivered; what follows is live. For a
    /// subscription to the log, the last position scanned (None while the log is empty).
    CaughtUp {
        /// Resume after this position to continue from here.
        position: Option<u64>,
    },
    /// A filtered subscription to the log scanned this far without a match.
    Checkpoint {
        /// Resume after this position to continue from here.
        position: u64,
    },
}

/// A subscription in progress.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    scope: Scope,
    /// Taken while a batch is read on the blocking pool.
    read: Option<LogRead>,
    committed: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    filter: Filter,
    checkpoint_interval: u64,
    scanned_since_checkpoint: u64,
    last_scanned: Option<u64>,
    caught_up: bool,
    /// Where it has read to, for the metrics' subscription lag.
    progress: Progress,
}

impl Subscription {
    pub(in crate::store) fn new(
        shared: Arc<Shared>,
        target: SubscribeTarget,
        filter: Filter,
        checkpoint_interval: u64,
    ) -> Self {
        let (scope, from) = match target {
            SubscribeTarget::All(from) => (Scope::All, from),
            SubscribeTarget::Stream(stream, from) => (Scope::Stream(stream), from),
        };
        let committed = shared.committed.subscribe();
        let closing = shared.closing.subscribe();
        let next = match from {
            SubscribeFrom::Start => Some(first_of(&shared, &scope)),
            SubscribeFrom::After(at) => at.checked_add(1),
            // When the index on disk fails here, the first call of `next` fails too.
            SubscribeFrom::End => {
                Some(last_of(&shared, &scope).map_or(0, |l| l.map_or(0, |l| l + 1)))
            }
        };
        let read = LogRead::following(shared.clone(), scope.clone(), next);
        let progress = Progress::enter(shared.clone(), scope.clone(), next.unwrap_or(u64::MAX));
        Subscription {
            shared,
            scope,
            read: Some(read),
            committed,
            closing,
            filter,
            checkpoint_interval: checkpoint_interval.max(1),
            scanned_since_checkpoint: 0,
            last_scanned: None,
            caught_up: false,
            progress,
        }
    }

    /// The next item, waiting for commits when there is nothing new. None once the
    /// store is closing.
    pub async fn next(
        &mut self,
        max_events: usize,
        max_bytes: usize,
    ) -> Option<Result<SubscriptionItem, StoreError>> {
        // A filtered subscription scans at most one checkpoint interval per batch, so
        // that its checkpoints come as often as asked.
        let max_events = if self.filter.is_empty() {
            max_events
        } else {
            max_events.min(usize::try_from(self.checkpoint_interval).unwrap_or(usize::MAX))
        };
        loop {
            if *self.closing.borrow() {
                return None;
            }
            // Mark the commit signal seen before looking at the index: a commit after
            // this point wakes the wait below even if this pass misses it.
            self.committed.borrow_and_update();
            let end = match last_of(&self.shared, &self.scope) {
                Ok(end) => end,
                Err(e) => return Some(Err(e)),
            };
            let mut read = self.read.take()?;
            read.extend_to(end);
            let (read, batch) = read.next_batch(max_events, max_bytes).await;
            self.progress.set(read.next_index().unwrap_or(u64::MAX));
            self.read = Some(read);
            let events = match batch {
                Ok(events) => events,
                Err(e) => return Some(Err(e)),
            };
            if let Some(item) = self.deliver(events) {
                return Some(Ok(item));
            }
            if !self.is_behind(end) {
                if !self.caught_up {
                    self.caught_up = true;
                    let position = match self.scope {
                        Scope::All => self.last_scanned.or(end),
                        Scope::Stream(_) => None,
                    };
                    return Some(Ok(SubscriptionItem::CaughtUp { position }));
                }
                tokio::select! {
                    changed = self.committed.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = self.closing.changed() => return None,
                }
            }
        }
    }

    /// What to hand the client after reading `events`, if anything.
    fn deliver(&mut self, events: Vec<RecordedEvent>) -> Option<SubscriptionItem> {
        if events.is_empty() {
            return None;
        }
        let scanned = events.len() as u64;
        self.last_scanned = events.last().map(|e| e.position);
        let kept: Vec<_> = if self.filter.is_empty() {
            events
        } else {
            events
                .into_iter()
                .filter(|e| self.filter.matches(e))
                .collect()
        };
        if !kept.is_empty() {
            self.scanned_since_checkpoint = 0;
            return Some(SubscriptionItem::Events(kept));
        }
        self.scanned_since_checkpoint += scanned;
        if self.scope == Scope::All && self.scanned_since_checkpoint >= self.checkpoint_interval {
            self.scanned_since_checkpoint = 0;
            return self
                .last_scanned
                .map(|position| SubscriptionItem::Checkpoint { position });
        }
        None
    }

    /// Whether events up to `end` remain to be read.
    fn is_behind(&self, end: Option<u64>) -> bool {
        let next = self.read.as_ref().and_then(LogRead::next_index);
        matches!((next, end), (Some(next), Some(end)) if next <= end)
    }
}

/// The first position of the log, or the first version of the stream a read returns.
fn first_of(shared: &Shared, scope: &Scope) -> u64 {
    let Scope::Stream(stream) = scope else {
        return 0;
    };
    let first = answered_for_read(shared, |index, answers| {
        Ok(match index.readable(stream, answers)? {
            Some((first, _)) => first,
            None => index.stream_version(stream, answers)?.map_or(0, |v| v + 1),
        })
    });
    // The index on disk failed: from the start of what is stored, where the read goes
    // on past what its rules hide (`read.rs`), if the disk answers by then.
    first.unwrap_or_else(|e| {
        tracing::warn!(error = %e, %stream, "finding where a subscription starts");
        0
    })
}

/// The last position of the log, or version of the stream; None when there is none.
/// A stream's version may need the index on disk, which may fail.
fn last_of(shared: &Shared, scope: &Scope) -> Result<Option<u64>, StoreError> {
    match scope {
        Scope::All => Ok(read_index(shared).next_position().checked_sub(1)),
        Scope::Stream(stream) => answered_for_read(shared, |index, answers| {
            index.stream_version(stream, answers)
        }),
    }
}

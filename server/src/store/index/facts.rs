//! A stream's answers (its state, what the writer decides on, what a read covers, its
//! info) derived from a few facts about it, wherever its entries are kept: the index in
//! memory (`mod.rs`) and the index on disk (`disk_reads.rs`) each gather the facts, and
//! the answers come from here, so that the two cannot derive them differently.

use super::WriteState;
use crate::store::types::{StreamId, StreamInfo, StreamRules, StreamState};

/// What the index knows of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFacts {
    /// The version of its last event ever written (or deleted through).
    pub version: u64,
    /// The first version its stored appends hold; None when a scavenge reclaimed them
    /// all.
    pub first_stored: Option<u64>,
    /// Set by a delete: this version and those before it are gone from reads.
    pub deleted_through: Option<u64>,
    pub tombstoned: bool,
    pub created_micros: i64,
    pub last_appended_micros: i64,
}

/// The rules in force for a stream, and where they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RulesInForce {
    pub rules: StreamRules,
    /// Its own rules' revision (0 when never set).
    pub revision: u64,
    /// Whether `rules` are its type's default, not its own.
    pub type_default: bool,
}

impl StreamFacts {
    /// The first version a read returns (past the end when everything is deleted):
    /// past the last delete and what a scavenge reclaimed.
    pub fn first_visible(&self) -> u64 {
        let stored = self.first_stored.unwrap_or(self.version + 1);
        self.deleted_through.map_or(0, |v| v + 1).max(stored)
    }

    pub fn state(&self) -> StreamState {
        if self.tombstoned {
            StreamState::Tombstoned
        } else if self.first_visible() > self.version {
            StreamState::Deleted
        } else {
            StreamState::Live
        }
    }

    pub fn write_state(&self) -> WriteState {
        WriteState {
            version: self.version,
            deleted: self.state() == StreamState::Deleted,
            tombstoned: self.tombstoned,
            deleted_through: self.deleted_through,
        }
    }

    /// The first version a read returns under `rules` at `now_micros`: past what
    /// deletes and the rules removed. `first_younger_than(cutoff)` is the first version
    /// committed at or after `cutoff` (µs since the epoch), asked only under an age
    /// rule; it may fail (the index on disk has the answer, or could not give it).
    pub fn first_readable<E>(
        &self,
        rules: &StreamRules,
        now_micros: i64,
        first_younger_than: impl FnOnce(i64) -> Result<u64, E>,
    ) -> Result<u64, E> {
        let by_age = match rules.max_age_seconds {
            Some(age) => first_younger_than(age_cutoff(now_micros, age))?,
            None => 0,
        };
        Ok(self
            .first_visible()
            .max(rules.first_kept(self.version))
            .max(by_age))
    }

    /// The versions a read covers, (first, last), given the first readable one; None
    /// for a stream that is not live.
    pub fn readable(&self, first_readable: u64) -> Option<(u64, u64)> {
        (self.state() == StreamState::Live).then_some((first_readable, self.version))
    }

    /// What the store says of `stream`, whose first readable version is `first`;
    /// `position_of` gives the position of a version.
    pub fn info(
        &self,
        stream: &StreamId,
        rules: RulesInForce,
        first: u64,
        position_of: impl Fn(u64) -> Option<u64>,
    ) -> StreamInfo {
        let live = self.state() == StreamState::Live && first <= self.version;
        StreamInfo {
            stream: stream.clone(),
            version: self.version,
            event_count: if live { self.version - first + 1 } else { 0 },
            first_position: if live { position_of(first) } else { None },
            last_position: if live {
                position_of(self.version)
            } else {
                None
            },
            created_micros: self.created_micros,
            last_appended_micros: self.last_appended_micros,
            state: self.state(),
            rules: rules.rules,
            rules_revision: rules.revision,
            rules_are_type_default: rules.type_default,
        }
    }
}

/// Now, in µs since the Unix epoch: what age rules are checked at.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The commit stamp before which events are older than `seconds` at `now`.
fn age_cutoff(now: i64, seconds: u64) -> i64 {
    let age = i64::try_from(seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    now.saturating_sub(age)
}

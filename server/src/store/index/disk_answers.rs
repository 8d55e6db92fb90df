//! Questions about a stream that the index in memory answers in part: the chunks of
//! its appends below the checkpoint (all but its last) leave memory once the index on
//! disk holds them, and so do the entries of streams not written for a while
//! (`Index::let_go_through`); what an age rule or the first readable version needs of
//! those chunks, and the facts of those streams, are asked of the disk.
//!
//! The index on disk is never read under the index's lock, so that appends never wait
//! on a disk read. A question runs against the index in memory; where that needs the
//! disk, it fails with the [`DiskQuery`]; the lock is let go, the disk answers, and the
//! question runs again with the answer at hand. What the disk holds below a stream's
//! chunks in memory does not change meanwhile in a way that matters: a scavenge only
//! takes a prefix of a stream's events away, which the facts in memory say too.

use super::Index;
use super::disk_streams::{DiskChunk, StreamKeyspaces, stream_key};
use super::facts::{StreamFacts, now_micros};
use super::lookup::IndexAccess;
use crate::store::error::StoreError;
use crate::store::shared::{Shared, write_index};
use crate::store::types::StreamId;
use std::ops::Range;

/// What a question needs to know of a stream's chunks on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// The first version in `versions` committed at or after `cutoff` (µs since the
    /// epoch); `versions.end` when none was.
    FirstCommittedSince { versions: Range<u64>, cutoff: i64 },
    /// The position of `version`.
    PositionOf { version: u64 },
    /// The stream's facts and last chunk, when its entry is on disk only.
    Facts,
}

/// A stream's facts and its last chunk, as the index on disk holds them.
pub type FactsOnDisk = (StreamFacts, Option<DiskChunk>);

/// What the disk answered.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Version(Option<u64>),
    Facts(Option<FactsOnDisk>),
}

/// One thing a question needs of the index on disk, below the position `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskQuery {
    pub stream: StreamId,
    pub ask: Ask,
    pub end: u64,
}

/// What the disk answered so far to one question, and the time its age rules are
/// checked at (fixed, so that the question asks the same again).
#[derive(Debug)]
pub struct DiskAnswers {
    now_micros: i64,
    known: Vec<(StreamId, Ask, Answer)>,
}

impl DiskAnswers {
    /// None known yet; age rules checked at this moment.
    pub fn new() -> Self {
        DiskAnswers {
            now_micros: now_micros(),
            known: Vec::new(),
        }
    }

    pub fn now_micros(&self) -> i64 {
        self.now_micros
    }

    /// The disk's answer to `query`, or the query when it has not been asked yet.
    pub fn get(&self, query: DiskQuery) -> Result<Option<u64>, DiskQuery> {
        match self.answer(query)? {
            Answer::Version(version) => Ok(version),
            Answer::Facts(_) => Ok(None),
        }
    }

    /// The disk's answer to `query`, an [`Ask::Facts`], or the query when it has not
    /// been asked yet.
    pub fn facts(&self, query: DiskQuery) -> Result<Option<FactsOnDisk>, DiskQuery> {
        match self.answer(query)? {
            Answer::Facts(facts) => Ok(facts),
            Answer::Version(_) => Ok(None),
        }
    }

    fn answer(&self, query: DiskQuery) -> Result<Answer, DiskQuery> {
        self.known
            .iter()
            .find(|(stream, ask, _)| *stream == query.stream && *ask == query.ask)
            .map(|(_, _, answer)| *answer)
            .ok_or(query)
    }

    /// Answers that know `facts` of the stream of `query`, for tests.
    #[cfg(test)]
    pub(super) fn knowing(query: DiskQuery, facts: FactsOnDisk) -> Self {
        let mut answers = DiskAnswers::new();
        answers.learn(query, Answer::Facts(Some(facts)));
        answers
    }

    fn learn(&mut self, query: DiskQuery, answer: Answer) {
        self.known.push((query.stream, query.ask, answer));
    }
}

impl Default for DiskAnswers {
    fn default() -> Self {
        DiskAnswers::new()
    }
}

/// Runs `question` against the store's index in memory, asking its index on disk what
/// it needs between runs, until it has an answer. The index on disk is taken only when
/// it is asked. Answers read while the writer brought entries back or floors went are
/// asked again (`Index::disk_epoch`).
pub fn answered_by<T>(
    shared: &Shared,
    question: impl Fn(&Index, &DiskAnswers) -> Result<T, DiskQuery>,
) -> Result<T, StoreError> {
    answered(shared, question, false)
}

/// [`answered_by`] for a read of a stream: the entry of a stream on disk only that
/// the answer took is put back in memory (`Index::keep_read`), so that the read's
/// look-ups and the next reads find it there. Not for questions about many streams
/// (listings, a scavenge's plan), whose entries would crowd memory until the next
/// sweeps.
pub fn answered_for_read<T>(
    shared: &Shared,
    question: impl Fn(&Index, &DiskAnswers) -> Result<T, DiskQuery>,
) -> Result<T, StoreError> {
    answered(shared, question, true)
}

fn answered<T>(
    shared: &Shared,
    question: impl Fn(&Index, &DiskAnswers) -> Result<T, DiskQuery>,
    keep: bool,
) -> Result<T, StoreError> {
    let mut answers = DiskAnswers::new();
    // The epoch when the answers known were asked.
    let mut asked_at = None;
    loop {
        let (epoch, run) = shared.with(|i| (i.disk_epoch(), question(i, &answers)));
        if asked_at.is_some_and(|asked| asked != epoch) {
            answers.known.clear();
            asked_at = None;
            continue;
        }
        asked_at = Some(epoch);
        match run {
            Ok(answer) => {
                if keep {
                    keep_read(shared, &answers, epoch);
                }
                return Ok(answer);
            }
            Err(query) => {
                // Chunks and entries leave memory only with an index on disk, which closes once the
                // store has stopped: a question still going then ends as others do.
                let db = shared.index_db().ok_or(StoreError::ShuttingDown)?;
                let answer = ask(db.streams(), &query)?;
                answers.learn(query, answer);
            }
        }
    }
}

/// Puts the entries of the streams on disk only that `answers` read back in memory.
fn keep_read(shared: &Shared, answers: &DiskAnswers, epoch: u64) {
    let facts = answers
        .known
        .iter()
        .filter_map(|(stream, _, answer)| match answer {
            Answer::Facts(Some(on_disk)) => Some((stream, *on_disk)),
            _ => None,
        });
    let mut facts = facts.peekable();
    if facts.peek().is_none() {
        return;
    }
    let mut index = write_index(shared);
    for (stream, on_disk) in facts {
        index.keep_read(stream, on_disk, epoch);
    }
}

fn ask(keyspaces: &StreamKeyspaces, query: &DiskQuery) -> Result<Answer, StoreError> {
    let key = stream_key(&query.stream);
    match &query.ask {
        Ask::FirstCommittedSince { versions, cutoff } => keyspaces
            .first_committed_in(&key, versions.clone(), *cutoff, query.end)
            .map(|first| Answer::Version(Some(first))),
        Ask::PositionOf { version } => keyspaces
            .version_position(&key, *version, query.end)
            .map(Answer::Version),
        Ask::Facts => keyspaces
            .stream_entry(&query.stream, query.end)
            .map(Answer::Facts),
    }
}

//! Planning a group commit: the writer's pure step. For each command of a group, in
//! queue order, it decides (`decide.rs`) whether the command is written, answered at
//! once (an idempotent retry, a deletion already done) or refused; gives what is
//! written its versions and positions; and encodes it into the group's buffer at its
//! place in the segment. No I/O and no channels: it reads the index, claims event ids
//! in the writer's id map, and reads the records a retry must look at through
//! [`Records`] (the writer's cache-then-disk reader; a map in the tests). The writer
//! (`writer.rs`) then writes the buffer, syncs it and answers.

use super::decide::{self, AppendDecision, DeleteDecision, EventIds, Pending};
use crate::store::error::StoreError;
use crate::store::index::{Index, RecordLoc};
use crate::store::log::record::{
    self, AppendHeader, Deletion, Record, RulesRecord, Snapshot, StoredEvent,
};
use crate::store::reads::reader::LogReader;
use crate::store::types::{
    AppendResult, DeleteMode, DeleteResult, EventData, ExpectedVersion, StreamId, StreamRules,
};
use std::sync::Arc;

/// Where the records a retry must look at come from.
pub trait Records: std::fmt::Debug {
    /// The record at `loc`.
    fn record(&self, loc: RecordLoc) -> Result<Arc<Record>, StoreError>;
}

impl Records for LogReader {
    fn record(&self, loc: RecordLoc) -> Result<Arc<Record>, StoreError> {
        self.read(loc)
    }
}

/// What becomes of an append.
#[derive(Debug)]
pub enum AppendPlan {
    /// Written as `record` at `loc`, answered once the group is durable.
    Write { loc: RecordLoc, record: Arc<Record> },
    /// Answered without a write: a retry's original result, or a refusal.
    Answer(Result<AppendResult, StoreError>),
}

/// What becomes of a delete.
#[derive(Debug)]
pub enum DeletePlan {
    /// Written, answered once the group is durable.
    Write(Deletion),
    /// Answered without a write: already deleted that way, or a refusal.
    Answer(Result<DeleteResult, StoreError>),
}

/// A group being planned.
#[derive(Debug)]
pub struct GroupPlan<'a> {
    index: &'a Index,
    ids: &'a mut EventIds,
    records: &'a dyn Records,
    pending: Pending,
    segment: u32,
    /// Where the group's first record goes in the segment.
    offset: u64,
    created_micros: i64,
    buf: Vec<u8>,
}

impl<'a> GroupPlan<'a> {
    /// A group whose records go to `segment` from `offset` on, stamped
    /// `created_micros`, decided after `pending` (the group still syncing, if any);
    /// `bytes` is room to make for its records.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: &'a Index,
        ids: &'a mut EventIds,
        records: &'a dyn Records,
        pending: Pending,
        segment: u32,
        offset: u64,
        created_micros: i64,
        bytes: usize,
    ) -> Self {
        GroupPlan {
            index,
            ids,
            records,
            pending,
            segment,
            offset,
            created_micros,
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Plans an append of `events` (at least one, payloads compacted) to `stream`.
    pub fn append(
        &mut self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> AppendPlan {
        let decision = decide::append(
            self.index,
            &self.pending,
            self.ids,
            self.records,
            &stream,
            expected,
            &events,
        );
        let (first_version, first_position) = match decision {
            Ok(AppendDecision::Write {
                first_version,
                first_position,
            }) => (first_version, first_position),
            Ok(AppendDecision::AlreadyCommitted(result)) => return AppendPlan::Answer(Ok(result)),
            Err(e) => return AppendPlan::Answer(Err(e)),
        };
        self.pending
            .add_append(self.index, &stream, &events, first_version, first_position);
        let frame_start = self.buf.len();
        let header = AppendHeader {
            first_position,
            first_version,
            created_micros: self.created_micros,
            stream: &stream,
        };
        record::encode_append(&mut self.buf, header, &events);
        let loc = RecordLoc {
            segment: self.segment,
            offset: self.offset + frame_start as u64,
            len: (self.buf.len() - frame_start) as u32,
        };
        // The payloads were compacted by `Store::append`: the record keeps them as
        // they are.
        let record = Arc::new(Record {
            first_position,
            first_version,
            created_micros: self.created_micros,
            stream,
            events: events.into_iter().map(StoredEvent::from).collect(),
        });
        AppendPlan::Write { loc, record }
    }

    /// Plans a delete of `stream`.
    pub fn delete(
        &mut self,
        stream: StreamId,
        expected: ExpectedVersion,
        mode: DeleteMode,
    ) -> DeletePlan {
        let decision = decide::delete(
            self.index,
            &self.pending,
            &stream,
            expected,
            mode,
            self.created_micros,
        );
        match decision {
            Ok(DeleteDecision::Write(deletion)) => {
                self.pending.add_delete(&deletion);
                record::encode_delete(&mut self.buf, &deletion);
                DeletePlan::Write(deletion)
            }
            Ok(DeleteDecision::AlreadyDone(result)) => DeletePlan::Answer(Ok(result)),
            Err(e) => DeletePlan::Answer(Err(e)),
        }
    }

    /// Plans a snapshot of `stream` at `version`: where its record goes, or why not.
    pub fn snapshot(
        &mut self,
        stream: &StreamId,
        version: u64,
        snapshot_type: Arc<str>,
        data: bytes::Bytes,
    ) -> Result<RecordLoc, StoreError> {
        decide::snapshot_in_group(self.index, &self.pending, stream, version)?;
        let frame_start = self.buf.len();
        let snapshot = Snapshot {
            created_micros: self.created_micros,
            stream: stream.clone(),
            version,
            snapshot_type,
            data,
        };
        record::encode_snapshot(&mut self.buf, &snapshot);
        Ok(RecordLoc {
            segment: self.segment,
            offset: self.offset + frame_start as u64,
            len: (self.buf.len() - frame_start) as u32,
        })
    }

    /// Plans a change of `stream`'s rules that expects them at `expected`.
    pub fn rules(
        &mut self,
        stream: StreamId,
        rules: StreamRules,
        expected: Option<u64>,
    ) -> Result<RulesRecord, StoreError> {
        let revision = decide::rules(self.index, &self.pending, &stream, expected)?;
        self.pending.add_rules(&stream, revision);
        let record = RulesRecord {
            created_micros: self.created_micros,
            stream,
            revision,
            rules,
        };
        record::encode_rules(&mut self.buf, &record);
        Ok(record)
    }

    /// The group's records, framed back to back as they go into the segment, and its
    /// decisions, which the next group is decided after while this one syncs.
    pub fn finish(self) -> (Vec<u8>, Pending) {
        (self.buf, self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use uuid::Uuid;

    /// Records held in memory by where they are: what a group wrote, once "synced".
    #[derive(Debug, Default)]
    struct Memory(HashMap<RecordLoc, Arc<Record>>);

    impl Records for Memory {
        fn record(&self, loc: RecordLoc) -> Result<Arc<Record>, StoreError> {
            self.0.get(&loc).cloned().ok_or_else(|| {
                StoreError::io("no such record", std::io::ErrorKind::NotFound.into())
            })
        }
    }

    /// An index, the writer's ids and the records of every group applied so far.
    #[derive(Default)]
    struct Log {
        index: Index,
        ids: EventIds,
        records: Memory,
        offset: u64,
    }

    enum Cmd {
        Append(StreamId, ExpectedVersion, Vec<EventData>),
        Delete(StreamId, ExpectedVersion, DeleteMode),
    }

    /// What a command's plan comes to, for comparing.
    #[derive(Debug, PartialEq)]
    enum Planned {
        /// Written with this first version and first position.
        Wrote(u64, u64),
        Deleted(u64),
        Answered(AppendResult),
        AlreadyDeleted(u64),
        Refused(String),
    }

    impl Log {
        /// Plans `commands` as one group and, like a group that synced, applies what it
        /// writes to the index: what each command came to.
        fn group(&mut self, commands: Vec<Cmd>) -> Vec<Planned> {
            let pending = Pending::new(self.index.next_position());
            let mut writes = Vec::new();
            let mut deletes = Vec::new();
            let mut out = Vec::new();
            let (buf, _) = {
                let mut plan = GroupPlan::new(
                    &self.index,
                    &mut self.ids,
                    &self.records,
                    pending,
                    0,
                    self.offset,
                    1_000,
                    0,
                );
                for command in commands {
                    out.push(match command {
                        Cmd::Append(stream, expected, events) => {
                            match plan.append(stream, expected, events) {
                                AppendPlan::Write { loc, record } => {
                                    let planned =
                                        Planned::Wrote(record.first_version, record.first_position);
                                    writes.push((loc, record));
                                    planned
                                }
                                AppendPlan::Answer(Ok(result)) => Planned::Answered(result),
                                AppendPlan::Answer(Err(e)) => Planned::Refused(e.to_string()),
                            }
                        }
                        Cmd::Delete(stream, expected, mode) => {
                            match plan.delete(stream, expected, mode) {
                                DeletePlan::Write(deletion) => {
                                    let planned = Planned::Deleted(deletion.through_version);
                                    deletes.push(deletion);
                                    planned
                                }
                                DeletePlan::Answer(Ok(done)) => {
                                    Planned::AlreadyDeleted(done.through_version)
                                }
                                DeletePlan::Answer(Err(e)) => Planned::Refused(e.to_string()),
                            }
                        }
                    });
                }
                plan.finish()
            };
            // The buffer holds exactly the planned records, where their locations say.
            for (loc, record) in &writes {
                let at = (loc.offset - self.offset) as usize;
                let frame = bytes::Bytes::copy_from_slice(&buf[at..at + loc.len as usize]);
                match record::decode_frame(frame).expect("a planned record decodes") {
                    record::Entry::Append(decoded) => assert_eq!(&decoded, record.as_ref()),
                    other => panic!("an append was encoded as {other:?}"),
                }
            }
            self.offset += buf.len() as u64;
            for (loc, record) in writes {
                self.index.apply(loc, &record);
                self.records.0.insert(loc, record);
            }
            for deletion in deletes {
                let (stream, mode) = (&deletion.stream, deletion.mode);
                self.index
                    .apply_delete(stream, mode, deletion.through_version, 0);
            }
            out
        }
    }

    fn stream(name: &str) -> StreamId {
        StreamId {
            key: Uuid::new_v4(),
            stream_type: Arc::from(name),
        }
    }

    fn events(n: usize) -> Vec<EventData> {
        (0..n)
            .map(|i| EventData {
                id: Uuid::new_v4(),
                event_type: Arc::from("Planned"),
                data: format!("event {i}").into_bytes().into(),
                metadata: Default::default(),
            })
            .collect()
    }

    use ExpectedVersion::{Any, Exact, NoStream, StreamExists};
    use Planned::*;

    fn append(stream: &StreamId, expected: ExpectedVersion, events: &[EventData]) -> Cmd {
        Cmd::Append(stream.clone(), expected, events.to_vec())
    }

    fn refused(planned: &Planned, words: &str) -> bool {
        matches!(planned, Refused(message) if message.contains(words))
    }

    #[test]
    fn appends_get_gapless_positions_and_versions_in_queue_order() {
        let mut log = Log::default();
        let (a, b) = (stream("a"), stream("b"));
        let planned = log.group(vec![
            append(&a, NoStream, &events(2)),
            append(&b, Any, &events(3)),
            append(&a, Exact(1), &events(1)),
        ]);
        assert_eq!(planned, [Wrote(0, 0), Wrote(0, 2), Wrote(2, 5)]);
        let next = log.group(vec![append(&b, StreamExists, &events(1))]);
        assert_eq!(next, [Wrote(3, 6)]);
        assert_eq!(log.index.next_position(), 7);
    }

    #[test]
    fn expected_versions_are_checked_against_the_index_and_the_group_so_far() {
        let mut log = Log::default();
        let a = stream("a");
        log.group(vec![append(&a, Any, &events(2))]);
        let planned = log.group(vec![
            append(&a, NoStream, &events(1)),
            append(&stream("new"), StreamExists, &events(1)),
            append(&a, Exact(0), &events(1)),
            append(&a, Exact(1), &events(1)),
            // Two appends that expect the same version: only the first goes ahead.
            append(&a, Exact(1), &events(1)),
            append(&a, Exact(2), &events(1)),
        ]);
        assert!(
            refused(&planned[0], "expected version no_stream"),
            "{planned:?}"
        );
        assert!(
            refused(&planned[1], "expected version stream_exists"),
            "{planned:?}"
        );
        assert!(refused(&planned[2], "expected version 0"), "{planned:?}");
        assert_eq!(planned[3], Wrote(2, 2));
        assert!(refused(&planned[4], "expected version 1"), "{planned:?}");
        assert_eq!(planned[5], Wrote(3, 3));
    }

    #[test]
    fn a_retry_gets_the_original_result_and_a_reused_id_is_a_conflict() {
        let mut log = Log::default();
        let (a, b) = (stream("a"), stream("b"));
        let first = events(3);
        log.group(vec![append(&a, NoStream, &first)]);
        let planned = log.group(vec![
            // The same append again, with the precondition it was sent with.
            append(&a, NoStream, &first),
            append(&a, Any, &first),
            // Its ids in another stream, or one of them beside a new event: a conflict.
            append(&b, Any, &first),
            append(&a, Any, &[first[0].clone(), events(1)[0].clone()]),
            // A retry whose precondition no longer holds at the place it landed.
            append(&a, Exact(5), &first),
        ]);
        let original = AppendResult {
            version: 2,
            position: 2,
        };
        assert_eq!(planned[0], Answered(original));
        assert_eq!(planned[1], Answered(original));
        for conflict in &planned[2..] {
            assert!(refused(conflict, "is already committed"), "{planned:?}");
        }
        assert_eq!(log.index.next_position(), 3, "nothing more was written");
    }

    #[test]
    fn a_retry_within_the_same_group_is_answered_with_its_first_sending() {
        let mut log = Log::default();
        let a = stream("a");
        let sent = events(2);
        let planned = log.group(vec![
            append(&a, NoStream, &sent),
            append(&a, NoStream, &sent),
        ]);
        assert_eq!(
            planned,
            [
                Wrote(0, 0),
                Answered(AppendResult {
                    version: 1,
                    position: 1
                })
            ]
        );
    }

    #[test]
    fn a_refused_append_leaves_its_ids_free_for_a_later_one() {
        let mut log = Log::default();
        let a = stream("a");
        let sent = events(2);
        let planned = log.group(vec![
            append(&a, Exact(7), &sent),
            append(&a, NoStream, &sent),
        ]);
        assert!(refused(&planned[0], "expected version 7"), "{planned:?}");
        assert_eq!(planned[1], Wrote(0, 0));
    }

    #[test]
    fn an_id_twice_in_one_append_is_written_as_sent() {
        let mut log = Log::default();
        let mut sent = events(2);
        sent[1].id = sent[0].id;
        let planned = log.group(vec![append(&stream("a"), Any, &sent)]);
        assert_eq!(planned, [Wrote(0, 0)]);
        assert_eq!(
            log.ids.get(&sent[0].id).ok().flatten(),
            Some(1),
            "the later event names it"
        );
    }

    #[test]
    fn deletes_are_checked_idempotent_and_end_or_restart_a_stream() {
        let mut log = Log::default();
        let (soft, gone) = (stream("soft"), stream("gone"));
        log.group(vec![
            append(&soft, Any, &events(3)),
            append(&gone, Any, &events(1)),
        ]);
        let planned = log.group(vec![
            Cmd::Delete(stream("never"), Any, DeleteMode::Soft),
            Cmd::Delete(soft.clone(), Exact(0), DeleteMode::Soft),
            Cmd::Delete(soft.clone(), Exact(2), DeleteMode::Soft),
            // Deleting again what is deleted that way succeeds, whatever it expects.
            Cmd::Delete(soft.clone(), Exact(9), DeleteMode::Soft),
            Cmd::Delete(gone.clone(), Any, DeleteMode::Tombstone),
            Cmd::Delete(gone.clone(), Any, DeleteMode::Soft),
        ]);
        assert!(refused(&planned[0], "not found"), "{planned:?}");
        assert!(refused(&planned[1], "expected version 0"), "{planned:?}");
        assert_eq!(
            planned[2..],
            [Deleted(2), AlreadyDeleted(2), Deleted(0), AlreadyDeleted(0)]
        );

        let after = log.group(vec![
            // A soft-deleted stream starts again after its deleted versions.
            append(&soft, NoStream, &events(1)),
            append(&gone, Any, &events(1)),
        ]);
        assert_eq!(after[0], Wrote(3, 4));
        assert!(refused(&after[1], "tombstoned"), "{after:?}");
    }

    #[test]
    fn records_go_back_to_back_from_the_group_offset() {
        let mut log = Log {
            offset: 24,
            ..Log::default()
        };
        let a = stream("a");
        let mut pending_locs = Vec::new();
        let mut plan = GroupPlan::new(
            &log.index,
            &mut log.ids,
            &log.records,
            Pending::new(0),
            3,
            24,
            1,
            0,
        );
        for n in [1, 2, 3] {
            match plan.append(a.clone(), Any, events(n)) {
                AppendPlan::Write { loc, .. } => pending_locs.push(loc),
                AppendPlan::Answer(answer) => panic!("not written: {answer:?}"),
            }
        }
        let (buf, _) = plan.finish();
        assert!(pending_locs.iter().all(|l| l.segment == 3));
        assert_eq!(pending_locs[0].offset, 24);
        for pair in pending_locs.windows(2) {
            assert_eq!(pair[1].offset, pair[0].offset + u64::from(pair[0].len));
        }
        let last = pending_locs[2];
        assert_eq!(last.offset + u64::from(last.len), 24 + buf.len() as u64);
    }

    #[test]
    fn a_group_decided_while_the_one_before_syncs_follows_it() {
        let mut log = Log::default();
        let a = stream("a");
        let sent = events(2);
        // The first group is planned but not yet in the index (still syncing).
        let mut first = GroupPlan::new(
            &log.index,
            &mut log.ids,
            &log.records,
            Pending::new(0),
            0,
            0,
            1,
            0,
        );
        assert!(matches!(
            first.append(a.clone(), NoStream, sent.clone()),
            AppendPlan::Write { .. }
        ));
        let (_, syncing) = first.finish();
        let mut second = GroupPlan::new(
            &log.index,
            &mut log.ids,
            &log.records,
            Pending::after(syncing),
            0,
            0,
            2,
            0,
        );
        let retried = second.append(a.clone(), NoStream, sent);
        assert!(
            matches!(retried, AppendPlan::Answer(Ok(r)) if r == AppendResult { version: 1, position: 1 }),
            "{retried:?}"
        );
        assert!(matches!(
            second.append(a.clone(), Exact(1), events(1)),
            AppendPlan::Write { record, .. } if record.first_version == 2 && record.first_position == 2
        ));
        assert!(matches!(
            second.append(a, NoStream, events(1)),
            AppendPlan::Answer(Err(StoreError::WrongExpectedVersion { .. }))
        ));
    }
}

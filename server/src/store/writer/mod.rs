//! The single writer: one thread owns the active segment and commits appends in groups.
//!
//! It takes everything queued and plans it as one group (`plan.rs`, a pure step: each
//! append and delete decided against the index by `decide.rs` — idempotent retries,
//! expected versions, tombstones — given positions and versions in queue order, and
//! encoded), then writes all the records with one `write`, has them synced with one
//! `fdatasync`, and only then publishes them to the index and answers each command
//! through its own typed reply (`group.rs`).
//! Because one thread decides every append, two appends with the same expected version
//! can never both succeed, and positions are gapless and in commit order.
//!
//! The sync runs on a thread of its own (`syncer.rs`): while one group syncs, the
//! writer decides and writes the next from whatever queued meanwhile, deciding it after
//! the syncing group's writes (`Pending::after`), then waits for that sync, answers
//! that group, and starts the next sync. At most one group syncs at a time, and groups
//! are answered in order, each after its own sync: nothing is acknowledged before it
//! is on disk.
//!
//! A failed write is rolled back by truncating the segment to the end of the group
//! before, so the next batch can try again (say, once a full disk has room). A failed
//! fsync is not retried: after one, the kernel may have dropped the dirty pages, so the
//! writer refuses every later append (and the group decided after the failed one)
//! until a restart re-reads the log.

pub mod decide;
pub mod group;
pub mod marks;
pub mod plan;
mod reserve;
pub mod syncer;

use crate::store::error::StoreError;
use crate::store::index::Index;
use crate::store::index::disk::Checkpoint;
use crate::store::index::facts::now_micros;
use crate::store::log::fs::{Fs, LogFile};
use crate::store::log::record;
use crate::store::log::recovery;
use crate::store::log::segment;
use crate::store::settings::FsyncPolicy;
use crate::store::shared::{CommittedEnd, Shared, read_index, write_index};
use crate::store::types::StreamId;
use decide::{EventIds, Pending};
use group::{Command, Decided, Group, WriteCommand, Written};
use marks::{IDLE_MARK_DELAY, Marks};
use plan::{AppendPlan, DeletePlan, GroupPlan};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use syncer::Syncer;
use tokio::sync::{mpsc, oneshot};

/// Group commits stop taking more commands once they hold this many bytes.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// Streams whose chunks the writer looks at, with each group it applies, to let go of
/// those the index on disk holds (`Index::let_go_through`): tens of µs under the lock.
const LET_GO_BUDGET: usize = 2048;
/// While idle with such upkeep to do, the writer does it this often, eight times the
/// budget at a time.
const UPKEEP_DELAY: std::time::Duration = std::time::Duration::from_millis(10);
/// With an index on disk, an idle writer looks this often for upkeep to do: what the
/// ingester put on disk since (a checkpoint, a rewritten segment) is let go of then.
const IDLE_UPKEEP_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// A group written to the log, to be answered once its sync succeeds.
struct Syncing {
    group: Group,
    /// Its decisions, which the next group is decided after; taken when it is.
    pending: Option<Pending>,
    segment: u32,
    /// Where its writes end in the segment: synced up to here once its sync is done.
    end: u64,
}

/// The writer thread's state.
#[derive(Debug)]
pub struct Writer {
    pub(in crate::store) fs: Arc<dyn Fs>,
    pub(in crate::store) dir: PathBuf,
    pub(in crate::store) fsync: FsyncPolicy,
    pub(in crate::store) segment_size: u64,
    pub(in crate::store) active: Arc<dyn LogFile>,
    pub(in crate::store) active_segment: u32,
    /// Where the next group is written: the end of the last one written, synced or not.
    pub(in crate::store) active_len: u64,
    /// Where the active segment's written space ends: past `active_len` lie zeros
    /// written ahead (`reserve.rs`), with `--fsync always` only.
    pub(in crate::store) reserved_end: u64,
    /// The commit stamp of the last group: each group's is later, so that a stamp
    /// names one group (`segment::scan_each` counts groups by them).
    pub(in crate::store) last_created: i64,
    pub(in crate::store) syncer: Syncer,
    pub(in crate::store) shared: Arc<Shared>,
    /// Every event id in the log and its position (`index/ids.rs`); only the writer
    /// needs them.
    pub(in crate::store) ids: EventIds,
    /// Set after a failed fsync, or a failed write that could not be cut off again:
    /// every later write is refused with this reason.
    pub(in crate::store) refusing: Option<String>,
    /// How far the active segment is synced, and how far its sync marks say so.
    pub(in crate::store) marks: Marks,
    /// Whether the index has memory to give back that the index on disk holds: a sweep
    /// of streams' chunks going on (`Writer::upkeep`).
    pub(in crate::store) upkeep_due: bool,
}

impl Writer {
    /// Serves commands until a shutdown command or until every sender is gone.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Only to wait for a command with a timeout, for the idle sync mark.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .inspect_err(|e| tracing::warn!(error = %e, "no idle sync marks: no timer"))
            .ok();
        let mut syncing: Option<Syncing> = None;
        loop {
            let first = match syncing {
                // While a group syncs, the next one is what is queued already; with
                // nothing queued, the writer waits for the sync and answers the group.
                Some(_) => match commands.try_recv() {
                    Ok(command) => command,
                    Err(_) => {
                        self.land(syncing.take());
                        continue;
                    }
                },
                None => match self.next_command(&mut commands, timer.as_ref()) {
                    Some(command) => command,
                    None => break,
                },
            };
            let (batch, bytes, shutdown) = gather(first, &mut commands);
            syncing = self
                .commit(batch, bytes, syncing)
                .and_then(|group| self.sync(group, commands.is_empty()));
            if let Some(done) = shutdown {
                self.land(syncing.take());
                self.finish();
                let _ = done.send(());
                return;
            }
        }
        self.land(syncing.take());
        self.finish();
    }

    /// Waits for the next command, writing a sync mark of its own if none comes within
    /// [`IDLE_MARK_DELAY`] while synced groups are not yet marked (`marks.rs`), and
    /// with an index on disk, giving the index's memory back every [`UPKEEP_DELAY`]
    /// while it has some to, looking for some every [`IDLE_UPKEEP_CHECK`].
    fn next_command(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        timer: Option<&tokio::runtime::Runtime>,
    ) -> Option<Command> {
        let Some(timer) = timer else {
            return commands.blocking_recv();
        };
        let mut mark_due = self.refusing.is_none() && self.marks.pending();
        loop {
            let with_disk = self.ids.disk().is_some();
            let upkeep_due = self.upkeep_due || self.ids.reingesting();
            let delay = match (mark_due, upkeep_due, with_disk) {
                (true, _, _) => IDLE_MARK_DELAY,
                (false, true, _) => UPKEEP_DELAY,
                (false, false, true) => IDLE_UPKEEP_CHECK,
                (false, false, false) => return commands.blocking_recv(),
            };
            // Inside the future: the timeout's timer must be made in the runtime.
            let waited =
                timer.block_on(async { tokio::time::timeout(delay, commands.recv()).await });
            if let Ok(command) = waited {
                return command;
            }
            if mark_due {
                // Once: a mark that fails is not tried again until the next group.
                self.write_idle_mark();
                mark_due = false;
            }
            if with_disk {
                let mut index = write_index(&self.shared);
                self.upkeep_due = upkeep(&self.ids, &mut index, 8 * LET_GO_BUDGET);
            }
        }
    }

    /// Writes a sync mark alone and syncs it.
    fn write_idle_mark(&mut self) {
        let created_micros = now_micros().max(self.last_created.saturating_add(1));
        let Some(mark) = self.marks.due(created_micros) else {
            return;
        };
        self.last_created = created_micros;
        let mut buf = Vec::new();
        record::encode_sync_mark(&mut buf, &mark);
        if self.write(&buf).is_err() {
            // Rolled back and logged; the next group carries the mark.
            return;
        }
        match self.shared.stats.timed_sync(|| self.active.sync_data()) {
            Ok(()) => {
                self.marks.written(&mark);
                self.marks.synced(self.active_segment, self.active_len);
            }
            Err(e) => {
                let segment = self.active_segment;
                self.refuse_writes(format!("fdatasync of segment {segment} failed: {e}"));
            }
        }
    }

    /// The last sync before the process goes, whatever the fsync policy; the zeros
    /// written ahead are cut off with it, so that a clean stop leaves the log ending
    /// with its last record, and says so with a marker the next start reads.
    fn finish(&mut self) {
        if self.refusing.is_some() {
            return;
        }
        self.ids.finish();
        let synced = if self.reserved_end > self.active_len {
            self.active.truncate(self.active_len)
        } else {
            self.active.sync_data()
        };
        match synced.and_then(|()| recovery::mark_clean_stop(self.fs.as_ref(), &self.dir)) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "final sync of the log or its clean-stop mark failed")
            }
        }
    }

    /// Decides and writes `batch`, whose appends encode to `bytes`, after the group
    /// still `syncing`; answers that group; and returns this one, to be synced (or
    /// nothing, when this one is answered already).
    fn commit(
        &mut self,
        batch: Vec<WriteCommand>,
        bytes: usize,
        mut syncing: Option<Syncing>,
    ) -> Option<Syncing> {
        if batch.is_empty() {
            return syncing;
        }
        if let Some(reason) = &self.refusing {
            let error = StoreError::WritesRefused(reason.clone());
            refuse_all(batch, &error);
            return syncing;
        }
        if self.active_len >= self.segment_size {
            // Every group of the segment answered before it is sealed: its event ids
            // then go to the index on disk as they are, none of them in doubt.
            self.land(syncing.take());
            if let Some(reason) = &self.refusing {
                refuse_all(batch, &StoreError::WritesRefused(reason.clone()));
                return None;
            }
        }
        if self.active_len >= self.segment_size
            && let Err(e) = self.rotate()
        {
            let next = self.active_segment + 1;
            refuse_all(
                batch,
                &StoreError::io(format!("creating segment {next}"), e),
            );
            return syncing;
        }

        let batch = self.bring_back(batch);
        let created_micros = now_micros().max(self.last_created.saturating_add(1));
        self.last_created = created_micros;
        let mut group = Group::default();
        let (mut buf, pending) = {
            let index = read_index(&self.shared);
            let pending = match syncing.as_mut().and_then(|s| s.pending.take()) {
                Some(earlier) => Pending::after(earlier),
                None => Pending::new(index.next_position()),
            };
            let mut plan = GroupPlan::new(
                &index,
                &mut self.ids,
                &self.shared.reader,
                pending,
                self.active_segment,
                self.active_len,
                created_micros,
                // Deletes are a few dozen bytes each: room for the appends is what
                // matters.
                bytes,
            );
            for command in batch {
                plan_command(&mut plan, command, &mut group);
            }
            plan.finish()
        };
        // The groups synced before this one, claimed by a mark this group's sync makes
        // durable.
        let mark = match buf.is_empty() {
            true => None,
            false => self.marks.due(created_micros),
        };
        if let Some(mark) = &mark {
            record::encode_sync_mark(&mut buf, mark);
        }
        if !buf.is_empty() {
            let writes = group.written.len() as f64;
            self.shared.stats.group_commit_writes.observe(writes);
        }

        let written = self.write(&buf);
        if let (Ok(()), Some(mark)) = (&written, &mark) {
            self.marks.written(mark);
        }
        // The group before was written first and its sync started first: it is
        // answered first.
        self.land(syncing);
        let failed = match written {
            Err(e) => Some(e),
            // The group before failed to sync, and this one was decided after it.
            Ok(()) => self.refusing.clone().map(StoreError::WritesRefused),
        };
        if let Some(error) = failed {
            self.fail(group, &error);
            return None;
        }
        if buf.is_empty() || self.fsync != FsyncPolicy::Always {
            self.publish(group, self.active_segment, self.active_len);
            return None;
        }
        Some(Syncing {
            group,
            pending: Some(pending),
            segment: self.active_segment,
            end: self.active_len,
        })
    }

    /// Brings back into the index in memory the entries of the streams `batch` writes
    /// that are on disk only, asking the index on disk for their facts (from its block
    /// cache while it holds them: `--index-cache-size`), so that the writer decides on
    /// what is; refuses the commands whose stream it could not bring back. The index's
    /// lock is held only to put them in.
    fn bring_back(&mut self, mut batch: Vec<WriteCommand>) -> Vec<WriteCommand> {
        let Some(db) = self.ids.disk() else {
            return batch;
        };
        let (wanted, end): (Vec<StreamId>, u64) = {
            let index = read_index(&self.shared);
            let wanted = batch.iter().map(WriteCommand::stream);
            let wanted = wanted.filter(|stream| index.on_disk_only(stream));
            (wanted.cloned().collect(), index.disk_end())
        };
        if wanted.is_empty() {
            return batch;
        }
        let mut found = Vec::with_capacity(wanted.len());
        let mut failed = Vec::new();
        for stream in wanted {
            match db.streams().stream_entry(&stream, end) {
                Ok(Some(on_disk)) => found.push((stream, on_disk)),
                Ok(None) => {
                    let lost = format!("the index on disk lost stream {stream}'s entry");
                    failed.push((stream, StoreError::IndexMismatch(lost)));
                }
                Err(e) => failed.push((stream, e)),
            }
        }
        {
            let mut index = write_index(&self.shared);
            for (stream, facts) in &found {
                index.bring_back(stream, *facts, self.active_segment);
            }
        }
        for (stream, error) in failed {
            tracing::error!(error = %error, %stream, "bringing a stream's entry back from disk");
            let (refused, kept) = batch.into_iter().partition(|c| c.stream() == &stream);
            refuse_all(refused, &error);
            batch = kept;
        }
        batch
    }

    /// Writes a group's records after the last group's.
    fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let written = match self.fsync {
            FsyncPolicy::Always => reserve::make_room(
                self.active.as_ref(),
                self.active_len,
                buf.len(),
                self.reserved_end,
            ),
            // Nothing waits for a sync: space written ahead would save nothing.
            FsyncPolicy::PowerLossUnsafe => Ok(self.active_len + buf.len() as u64),
        }
        .and_then(|reserved_end| {
            self.reserved_end = reserved_end;
            self.active.write_all_at(buf, self.active_len)
        });
        if let Err(e) = written {
            return Err(self.roll_back(e));
        }
        self.active_len += buf.len() as u64;
        self.shared
            .stats
            .active_len
            .store(self.active_len, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs the group just written: on the sync thread when commands are queued
    /// behind it, returning it to be answered once the next group is written; else on
    /// this thread, answering it now (a hand-off would only add a thread's wake-up to
    /// a lone append's wait).
    fn sync(&mut self, group: Syncing, queue_empty: bool) -> Option<Syncing> {
        if queue_empty {
            let synced = self.shared.stats.timed_sync(|| self.active.sync_data());
            self.settle(group, synced);
            return None;
        }
        self.syncer.start(self.active.clone());
        Some(group)
    }

    /// Waits for the sync of the group `syncing`, if any, and answers it.
    fn land(&mut self, syncing: Option<Syncing>) {
        if let Some(group) = syncing {
            let synced = self.syncer.wait();
            self.settle(group, synced);
        }
    }

    /// Answers a group by how its sync went: published when it succeeded, refused
    /// (and every write after it) when it failed.
    fn settle(&mut self, syncing: Syncing, synced: std::io::Result<()>) {
        match synced {
            Ok(()) => {
                self.marks.synced(syncing.segment, syncing.end);
                self.publish(syncing.group, syncing.segment, syncing.end);
            }
            Err(e) => {
                let reason = format!("fdatasync of segment {} failed: {e}", syncing.segment);
                let error = self.refuse_writes(reason);
                self.fail(syncing.group, &error);
            }
        }
    }

    /// Answers every command of a group that did not become durable with `error`.
    fn fail(&mut self, group: Group, error: &StoreError) {
        // Some answers were decided on writes of this group: none of it stands, and a
        // retry of it must not be taken for a duplicate.
        for written in &group.written {
            if let Written::Append { record, .. } = written {
                for event in &record.events {
                    self.ids.remove(&event.id);
                }
            }
        }
        for written in group.written {
            written.fail(error);
        }
        for decided in group.decided {
            decided.fail(error);
        }
    }

    /// Refuses every write from now on, for `reason`, and says so to whoever watches
    /// the store's health.
    fn refuse_writes(&mut self, reason: String) -> StoreError {
        tracing::error!(%reason, "refusing all writes until restart");
        self.refusing = Some(reason.clone());
        self.shared.refusing.send_replace(Some(reason.clone()));
        StoreError::WritesRefused(reason)
    }

    /// Cuts a partly written batch off the segment so that nothing half-written stays.
    fn roll_back(&mut self, error: std::io::Error) -> StoreError {
        let restored = self.active.truncate(self.active_len);
        self.reserved_end = self.active_len;
        if let Err(e) = restored {
            let reason = format!(
                "a write to the log failed ({error}), and so did cutting it off again ({e})"
            );
            return self.refuse_writes(reason);
        }
        tracing::warn!(%error, "append batch failed to write and was rolled back");
        StoreError::io("writing to the log", error)
    }

    /// Makes the durable group visible and answers it (its records end at `offset` of
    /// `segment`): the newest records first (so that readers woken by the commit find
    /// them there), then the index, then subscribers and the answers, the ones decided
    /// without a write last.
    fn publish(&mut self, group: Group, segment: u32, offset: u64) {
        let appended = group.written.iter().filter_map(|written| match written {
            Written::Append { loc, record, .. } => Some((*loc, record.clone())),
            _ => None,
        });
        self.shared.reader.committed(appended);
        let next_position = {
            let mut index = write_index(&self.shared);
            for written in &group.written {
                match written {
                    Written::Append { loc, record, .. } => index.apply(*loc, record),
                    Written::Delete { deletion, .. } => index.apply_delete(
                        &deletion.stream,
                        deletion.mode,
                        deletion.through_version,
                        segment,
                    ),
                    Written::Snapshot {
                        stream,
                        version,
                        loc,
                        ..
                    } => index.apply_snapshot(stream, *version, *loc),
                    Written::Rules { record, .. } => {
                        index.apply_rules(&record.stream, record.revision, record.rules)
                    }
                }
            }
            self.upkeep_due = upkeep(&self.ids, &mut index, LET_GO_BUDGET);
            index.next_position()
        };
        self.shared.set_committed_end(CommittedEnd {
            position: next_position,
            segment,
            offset,
        });
        self.shared.committed.send_replace(next_position);
        self.shared
            .stats
            .event_ids_in_memory
            .store(self.ids.in_memory_count(next_position), Ordering::Relaxed);
        for written in group.written {
            written.succeed();
        }
        for decided in group.decided {
            decided.send();
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = self.active_segment + 1;
        // Durably, before the next segment exists: only the last segment may ever end
        // in anything but its last record.
        self.active.truncate(self.active_len)?;
        self.reserved_end = self.active_len;
        let file = segment::create_segment(self.fs.as_ref(), &self.dir, u64::from(next))?;
        tracing::info!(segment = next, "rotated to a new segment");
        let stats = &self.shared.stats;
        stats
            .sealed_bytes
            .fetch_add(self.active_len, Ordering::Relaxed);
        stats
            .active_len
            .store(segment::SEGMENT_HEADER_LEN, Ordering::Relaxed);
        stats.segments.fetch_add(1, Ordering::Relaxed);
        self.active = file.into();
        let sealed = Checkpoint {
            segment: self.active_segment,
            end_position: read_index(&self.shared).next_position(),
        };
        self.active_segment = next;
        self.marks.rotated(next);
        self.active_len = segment::SEGMENT_HEADER_LEN;
        self.reserved_end = self.active_len;
        // Last: it may wait for the ingester.
        self.ids.sealed(sealed);
        Ok(())
    }
}

/// Plans `command` into `plan`, and puts it with its reply into `group`.
fn plan_command(plan: &mut GroupPlan<'_>, command: WriteCommand, group: &mut Group) {
    match command {
        WriteCommand::Append(append) => {
            match plan.append(append.stream, append.expected, append.events) {
                AppendPlan::Write { loc, record } => group.written.push(Written::Append {
                    loc,
                    record,
                    reply: append.reply,
                    permit: append.permit,
                }),
                AppendPlan::Answer(result) => {
                    group.decided.push(Decided::Append(append.reply, result))
                }
            }
        }
        WriteCommand::Delete(delete) => {
            match plan.delete(delete.stream, delete.expected, delete.mode) {
                DeletePlan::Write(deletion) => group.written.push(Written::Delete {
                    deletion,
                    reply: delete.reply,
                }),
                DeletePlan::Answer(result) => {
                    group.decided.push(Decided::Delete(delete.reply, result))
                }
            }
        }
        WriteCommand::Snapshot(snapshot) => {
            let planned = plan.snapshot(
                &snapshot.stream,
                snapshot.version,
                snapshot.snapshot_type,
                snapshot.data,
            );
            match planned {
                Ok(loc) => group.written.push(Written::Snapshot {
                    stream: snapshot.stream,
                    version: snapshot.version,
                    loc,
                    reply: snapshot.reply,
                    permit: snapshot.permit,
                }),
                Err(e) => group
                    .decided
                    .push(Decided::Snapshot(snapshot.reply, Err(e))),
            }
        }
        WriteCommand::Rules(set) => {
            match plan.rules(set.stream, set.rules, set.expected_revision) {
                Ok(record) => group.written.push(Written::Rules {
                    record,
                    reply: set.reply,
                }),
                Err(e) => group.decided.push(Decided::Rules(set.reply, Err(e))),
            }
        }
    }
}

/// Takes `first` and whatever else is queued, up to `MAX_BATCH_BYTES` of appends or a
/// shutdown command: the batch, its appends' encoded bytes, and the shutdown's reply.
fn gather(
    first: Command,
    commands: &mut mpsc::Receiver<Command>,
) -> (Vec<WriteCommand>, usize, Option<oneshot::Sender<()>>) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(command) = next.take() {
        match command {
            Command::Write(write) => {
                if let WriteCommand::Append(append) = &write {
                    bytes += record::encoded_append_len(&append.stream, &append.events);
                }
                batch.push(write);
            }
            Command::Shutdown(done) => return (batch, bytes, Some(done)),
        }
        if bytes < MAX_BATCH_BYTES {
            next = commands.try_recv().ok();
        }
    }
    (batch, bytes, None)
}

/// Answers every command of a batch with `error`.
fn refuse_all(batch: Vec<WriteCommand>, error: &StoreError) {
    for command in batch {
        command.refuse(error);
    }
}

/// Lets the index in memory give back what the index on disk holds now: the records of
/// the segments up to its checkpoint, and of those rewritten that it holds again;
/// streams' chunks, `budget` streams at a time. Says whether a sweep of those goes on.
fn upkeep(ids: &EventIds, index: &mut Index, budget: usize) -> bool {
    for (segment, file) in ids.take_reingested() {
        index.let_go_rewritten(segment, file);
    }
    if let Some(through) = ids.on_disk_through() {
        index.let_go_through(through, budget);
    }
    index.letting_go()
}

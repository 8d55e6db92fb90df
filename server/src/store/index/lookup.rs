//! Look-ups of records wherever the index keeps them. The index in memory says where
//! a record is (`Index::locate_*`); when that is the index on disk (a segment whose
//! records it let go of), the disk is asked after the index's lock is let go, so that
//! appends never wait on a disk read, and the answer is checked under the lock again:
//! a scavenge that rewrote the segment meanwhile puts its records back in memory (the
//! disk may not hold the new file yet), and the look-up is asked again; so when the
//! segment's records are on disk again, but of another file. The disk names a record's
//! segment by its number: the index in memory says which file that is now.

use super::disk_streams::StreamKeyspaces;
use super::{Index, Located, LogRecord, OnDisk, Pick, VersionLocated};
use crate::store::error::StoreError;
use crate::store::shared::{Shared, read_index};
use crate::store::types::StreamId;
use std::ops::Range;

/// The index in memory, however it is held: the shared one under its lock, or one
/// already locked or owned.
pub trait IndexAccess {
    fn with<T>(&self, f: impl FnOnce(&Index) -> T) -> T;
}

impl IndexAccess for Shared {
    fn with<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        f(&read_index(self))
    }
}

impl IndexAccess for Index {
    fn with<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        f(self)
    }
}

/// The index on disk, if there is one. It is asked even where a read takes records
/// from the cache only: a point read of 24 bytes, from fjall's block cache while that
/// holds them (`--index-cache-size`), costs less than the hop to the blocking pool
/// that not asking it made every such read take (storage.md, "Records on disk").
pub type Disk<'a> = Option<&'a StreamKeyspaces>;

/// The last record that starts at or before `position`: the one holding it unless a
/// scavenge reclaimed it (the caller checks the record's events).
pub fn record_holding(
    index: &impl IndexAccess,
    disk: Disk<'_>,
    position: u64,
) -> Result<Option<LogRecord>, StoreError> {
    // Reclaimed up to a segment's start: the segments before it say.
    let before = |asked: &Range<u64>| asked.start.checked_sub(1);
    walk(index, disk, position, Index::locate_holding, before)
}

/// The first record that starts after `position`, if there is one.
pub fn record_after(
    index: &impl IndexAccess,
    disk: Disk<'_>,
    position: u64,
) -> Result<Option<LogRecord>, StoreError> {
    // Reclaimed to a segment's end: the segments after it say.
    let last = |asked: &Range<u64>| asked.end.checked_sub(1);
    walk(index, disk, position, Index::locate_after, last)
}

/// The record that holds version `version` of `stream`; none when a scavenge
/// reclaimed it. Where its chunk is on disk only, the disk says first which positions
/// the chunk holds, and then which record starts there.
pub fn record_holding_version(
    index: &impl IndexAccess,
    disk: Disk<'_>,
    stream: &StreamId,
    version: u64,
) -> Result<Option<LogRecord>, StoreError> {
    let mut chunk_on_disk = None;
    loop {
        let located = index.with(|i| i.locate_version(stream, version, chunk_on_disk.clone()));
        let on_disk = match located {
            VersionLocated::Record(Located::Here(found)) => return Ok(found),
            VersionLocated::Record(Located::OnDisk(on_disk)) => on_disk,
            VersionLocated::ChunkOnDisk { end } => {
                let keyspaces = disk.ok_or(StoreError::ShuttingDown)?;
                match keyspaces.chunk_positions(stream, version, end)? {
                    Some(positions) => chunk_on_disk = Some(positions),
                    None => return Ok(None),
                }
                continue;
            }
        };
        match ask_settled(index, disk, on_disk)? {
            Step::Done(found) => return Ok(found),
            Step::Again => {}
        }
    }
}

/// Looks `at` up with `locate`, asking the disk where it says; when the disk has no
/// record in the positions asked, goes on from what `then` makes of them, if anything.
fn walk(
    index: &impl IndexAccess,
    disk: Disk<'_>,
    mut at: u64,
    locate: impl Fn(&Index, u64) -> Located,
    then: impl Fn(&Range<u64>) -> Option<u64>,
) -> Result<Option<LogRecord>, StoreError> {
    loop {
        let on_disk = match index.with(|i| locate(i, at)) {
            Located::Here(found) => return Ok(found),
            Located::OnDisk(on_disk) => on_disk,
        };
        let positions = on_disk.positions.clone();
        match ask_settled(index, disk, on_disk)? {
            Step::Done(Some(record)) => return Ok(Some(record)),
            Step::Done(None) => match then(&positions) {
                Some(next) => at = next,
                None => return Ok(None),
            },
            Step::Again => {}
        }
    }
}

enum Step {
    Done(Option<LogRecord>),
    /// The segment's records came back to memory meanwhile.
    Again,
}

/// The first or last record in the positions asked, of the disk, if the segment's
/// records are still on disk only, those of the same file, once it answered.
fn ask_settled(
    index: &impl IndexAccess,
    disk: Disk<'_>,
    asked: OnDisk,
) -> Result<Step, StoreError> {
    // Records are let go of only with an index on disk, which closes once the store
    // has stopped: a read still going then ends as the store's others do.
    let keyspaces = disk.ok_or(StoreError::ShuttingDown)?;
    let found = match asked.pick {
        Pick::First => keyspaces.first_record_in(asked.positions)?,
        Pick::Last => keyspaces.last_record_in(asked.positions)?,
    };
    match index.with(|i| i.records_on_disk(asked.segment, asked.file)) {
        true => Ok(Step::Done(
            found.map(|record| in_file(record, asked.segment, asked.file)),
        )),
        false => Ok(Step::Again),
    }
}

/// `record`, found on disk in segment `segment`, as read from its file `file`.
pub fn in_file(mut record: LogRecord, segment: u32, file: u32) -> LogRecord {
    if record.loc.segment == segment {
        record.loc.segment = file;
    }
    record
}

/// The look-ups of an index whose records are all in memory, for tests.
#[cfg(test)]
impl Index {
    pub fn record_holding(&self, position: u64) -> Option<LogRecord> {
        record_holding(self, None, position).expect("records in memory")
    }

    pub fn record_holding_version(
        &self,
        stream: &StreamId,
        version: u64,
    ) -> Option<super::RecordLoc> {
        record_holding_version(self, None, stream, version)
            .expect("records in memory")
            .map(|record| record.loc)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::error::StoreError;
    use crate::store::index::disk_streams::tests::{
        agreeing, copy_dir, fill, scavenge, store_config,
    };
    use crate::store::shared::read_index;
    use crate::store::types::{
        DeleteMode, Direction, ExpectedVersion, ReadFrom, StreamId, StreamRules,
    };
    use crate::store::{ListFilter, LogRead, Store, StoreConfig};
    use std::path::Path;

    /// Every event a read returns, in batches of 5: position, version, id.
    async fn drain(mut read: LogRead) -> Vec<(u64, u64, uuid::Uuid)> {
        let mut events = Vec::new();
        loop {
            let (next, batch) = read.next_batch(5, 1 << 20).await;
            read = next;
            let batch = batch.expect("read");
            if batch.is_empty() {
                return events;
            }
            events.extend(batch.iter().map(|e| (e.position, e.version, e.id)));
        }
    }

    /// What reads of `store` return: each stream's from either end and from the middle
    /// both ways, its info; the log's likewise; a listing. Without `infos`, the events
    /// only (two stores that deleted streams at other times list other times).
    async fn reads(store: &Store, streams: &[StreamId], infos: bool) -> Vec<String> {
        use {Direction::*, ReadFrom::*};
        let mut seen = Vec::new();
        let froms = [
            (Start, Forward, None),
            (End, Backward, None),
            (Version(5), Forward, Some(4)),
            (Version(9), Backward, Some(6)),
        ];
        for stream in streams {
            for (from, direction, max) in froms {
                let got = match store.read(stream.clone(), from, direction, max) {
                    Ok(read) => format!("{:?}", drain(read).await),
                    Err(e) => e.to_string(),
                };
                seen.push(format!("{stream} from {from:?} {direction:?}: {got}"));
            }
            if infos {
                seen.push(format!("{:?}", store.stream_info(stream)));
            }
        }
        let log_froms = [(Start, Forward), (End, Backward), (Version(37), Forward)];
        for (from, direction) in log_froms.into_iter().chain([(Version(71), Backward)]) {
            let got = drain(store.read_all(from, direction, None)).await;
            seen.push(format!("the log from {from:?} {direction:?}: {got:?}"));
        }
        let filter = ListFilter {
            include_deleted: true,
            ..ListFilter::default()
        };
        if infos {
            seen.push(format!("{:?}", store.list_streams(None, &filter, 100, 100)));
        }
        seen
    }

    /// `answers` without the streams' creation and last append times. Once a scavenge
    /// reclaimed a stream's first or last events, the index on disk dates them by the
    /// records the log still holds of it (its first kept append, its first delete), as
    /// a start that replays the log does, where an entry kept in memory since before
    /// still has the times of the events that went.
    fn untimed(answers: Vec<String>) -> Vec<String> {
        let mut answers = answers;
        for field in ["created_micros: ", "last_appended_micros: "] {
            answers = answers.iter().map(|a| without(a, field)).collect();
        }
        answers
    }

    /// `answer` with the number after each `field` left out.
    fn without(answer: &str, field: &str) -> String {
        let mut parts = answer.split(field);
        let mut out = parts.next().unwrap_or_default().to_string();
        for part in parts {
            let digits = part
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(part.len());
            out.push_str(field);
            out.push('_');
            out.push_str(&part[digits..]);
        }
        out
    }

    /// The first answer that differs, if one does.
    fn first_difference(got: &[String], want: &[String]) -> Option<(String, String)> {
        let differs = got.iter().zip(want).find(|(got, want)| got != want);
        let differs = differs.map(|(got, want)| (got.clone(), want.clone()));
        match got.len() == want.len() {
            true => differs,
            false => Some((format!("{} answers", got.len()), format!("{}", want.len()))),
        }
    }

    fn without_index(dir: &Path) -> StoreConfig {
        StoreConfig {
            index_cache_bytes: None,
            index_entries_kept: None,
            ..store_config(dir)
        }
    }

    /// Rules on a stream that hide all but its last 3 events, and a scavenge to the end.
    async fn hide_and_scavenge(store: &Store, stream: &StreamId) {
        let rules = StreamRules {
            max_count: Some(3),
            ..StreamRules::default()
        };
        set_rules(store, stream, rules).await;
        let done = scavenge(store).await;
        assert!(done.segments_rewritten > 3, "{done:?}");
    }

    /// After a start with an index on disk, the index in memory holds no record of the
    /// segments the disk holds, and every read (stream and log, both ways, from the
    /// middle, info, listings) answers as a store with every record in memory does; so
    /// after a scavenge rewrote such segments, whose records it takes from the disk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_find_on_disk_the_records_the_index_in_memory_let_go_of() {
        let dir = tempfile::tempdir().expect("dir");
        let streams = fill(dir.path()).await;
        let copy = tempfile::tempdir().expect("dir");
        copy_dir(dir.path(), copy.path());

        let in_memory = Store::open(without_index(copy.path())).expect("open");
        keep_a_day(&in_memory, &streams[1]).await;
        let expected = reads(&in_memory, &streams, true).await;
        hide_and_scavenge(&in_memory, &streams[0]).await;
        let expected_after = untimed(reads(&in_memory, &streams, true).await);
        loosen(&in_memory, &streams[0]).await;
        let expected_loosened = untimed(reads(&in_memory, &streams, true).await);
        delete_and_scavenge(&in_memory, &streams).await;
        in_memory.shutdown().await;
        drop(in_memory);
        let in_memory = Store::open(without_index(copy.path())).expect("open");
        let expected_emptied = reads(&in_memory, &streams, false).await;
        in_memory.shutdown().await;

        let store = Store::open(store_config(dir.path())).expect("open");
        assert!(
            on_disk(&store) >= 15,
            "{} segments on disk only",
            on_disk(&store)
        );
        let with_chunks_on_disk = read_index(&store.shared).streams_with_chunks_on_disk();
        assert!(with_chunks_on_disk >= 10, "{with_chunks_on_disk} of 12");
        store.shutdown().await;
        drop(store);

        // The same with no stream's entry kept in memory once the disk holds it.
        let store = Store::open(keeping_no_entries(dir.path())).expect("open");
        let entries_on_disk = read_index(&store.shared).entries_on_disk_only();
        assert!(
            entries_on_disk >= 6,
            "{entries_on_disk} entries on disk only"
        );
        keep_a_day(&store, &streams[1]).await;
        let got = reads(&store, &streams, true).await;
        assert_eq!(first_difference(&got, &expected), None);
        let held = on_disk(&store);
        hide_and_scavenge(&store, &streams[0]).await;
        let got = untimed(reads(&store, &streams, true).await);
        assert_eq!(first_difference(&got, &expected_after), None);
        // The rewritten segments' records go back to disk once it holds their files.
        wait_until_on_disk(&store, held).await;
        let got = untimed(reads(&store, &streams, true).await);
        assert_eq!(first_difference(&got, &expected_after), None);
        loosen(&store, &streams[0]).await;
        let got = untimed(reads(&store, &streams, true).await);
        assert_eq!(first_difference(&got, &expected_loosened), None);
        // Rewritten again, from records on disk: found in their files of the first.
        delete_and_scavenge(&store, &streams).await;
        wait_until_on_disk(&store, held).await;
        let got = reads(&store, &streams, false).await;
        assert_eq!(first_difference(&got, &expected_emptied), None);
        store.shutdown().await;
        drop(store);
        agreeing(dir.path());
        // Segments the scavenge emptied, on disk only: reads of the log go past them.
        let store = Store::open(keeping_no_entries(dir.path())).expect("open");
        assert!(
            on_disk(&store) >= 15,
            "{} segments on disk only",
            on_disk(&store)
        );
        let got = reads(&store, &streams, false).await;
        assert_eq!(first_difference(&got, &expected_emptied), None);
        store.shutdown().await;
    }

    /// The index on disk, and no stream's entry kept in memory once it holds it.
    fn keeping_no_entries(dir: &Path) -> StoreConfig {
        StoreConfig {
            index_entries_kept: Some(0),
            ..store_config(dir)
        }
    }

    /// Appends, deletes and snapshots of streams whose entries are on disk only are
    /// decided on what the disk holds of them, brought back to memory, and the index
    /// on disk agrees with the log after them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_of_streams_on_disk_only_bring_their_entries_back() {
        let dir = tempfile::tempdir().expect("dir");
        let streams = fill(dir.path()).await;
        // Their versions first: a read brings an entry back too, so the writes below
        // come after another start, where nothing read them.
        let store = Store::open(keeping_no_entries(dir.path())).expect("open");
        let on_disk_only: Vec<StreamId> = {
            let index = read_index(&store.shared);
            let found = streams.iter().filter(|s| index.on_disk_only(s));
            found.cloned().collect()
        };
        let live: Vec<StreamId> = on_disk_only
            .iter()
            .filter(|s| !is_deleted(s, &streams))
            .cloned()
            .collect();
        assert!(live.len() >= 4, "{on_disk_only:?}");
        let versions: Vec<u64> = live
            .iter()
            .map(|stream| {
                let info = store.stream_info(stream).expect("info").expect("known");
                info.version
            })
            .collect();
        // An info leaves the entry on disk; a read puts it back in memory.
        assert!(read_index(&store.shared).on_disk_only(&live[0]), "info");
        let read = store.read(live[0].clone(), ReadFrom::End, Direction::Backward, Some(1));
        let last = drain(read.expect("read")).await;
        assert_eq!(last.iter().map(|e| e.1).collect::<Vec<_>>(), [versions[0]]);
        assert!(!read_index(&store.shared).on_disk_only(&live[0]), "read");
        store.shutdown().await;
        drop(store);
        let store = Store::open(keeping_no_entries(dir.path())).expect("open");
        assert!(
            live.iter()
                .all(|s| read_index(&store.shared).on_disk_only(s))
        );
        let version =
            |stream: &StreamId| versions[live.iter().position(|s| s == stream).expect("live")];
        let live: Vec<&StreamId> = live.iter().collect();
        let events = crate::store::index::disk_streams::tests::events;
        // The version the disk holds is the one an exact append must name.
        let v = version(live[0]);
        let wrong = store
            .append(live[0].clone(), ExpectedVersion::Exact(v + 1), events(1))
            .await;
        assert!(
            matches!(wrong, Err(StoreError::WrongExpectedVersion { .. })),
            "{wrong:?}"
        );
        let appended = store
            .append(live[0].clone(), ExpectedVersion::Exact(v), events(2))
            .await
            .expect("append at the version on disk");
        assert_eq!(appended.version, v + 2);
        assert!(!read_index(&store.shared).on_disk_only(live[0]));
        // A stream that exists is not a new one.
        let none = store
            .append(live[1].clone(), ExpectedVersion::NoStream, events(1))
            .await;
        assert!(
            matches!(none, Err(StoreError::WrongExpectedVersion { .. })),
            "{none:?}"
        );
        // A delete through the version on disk.
        let v = version(live[2]);
        let deleted = store
            .delete_stream(live[2].clone(), ExpectedVersion::Exact(v), DeleteMode::Soft)
            .await
            .expect("delete");
        assert_eq!(deleted.through_version, v);
        let read = store.read(live[2].clone(), ReadFrom::Start, Direction::Forward, None);
        assert!(
            matches!(read, Err(StoreError::StreamDeleted(_))),
            "{read:?}"
        );
        // A snapshot at a version the disk holds.
        let v = version(live[3]);
        let state = bytes::Bytes::from_static(b"state");
        store
            .save_snapshot(live[3].clone(), v, std::sync::Arc::from("s"), state)
            .await
            .expect("snapshot at the version on disk");
        let reads_after = reads(&store, &streams, true).await;
        store.shutdown().await;
        drop(store);
        agreeing(dir.path());
        // After a start with every entry in memory, the same answers.
        let store = Store::open(StoreConfig {
            index_entries_kept: None,
            ..store_config(dir.path())
        })
        .expect("open");
        let got = reads(&store, &streams, true).await;
        assert_eq!(first_difference(&got, &reads_after), None);
        store.shutdown().await;
    }

    /// Whether `fill` deleted or tombstoned `stream` (its 4th and 8th).
    fn is_deleted(stream: &StreamId, streams: &[StreamId]) -> bool {
        [&streams[3], &streams[7]].contains(&stream)
    }

    /// No rules on `stream`: what a scavenge reclaimed stays gone from its reads.
    async fn loosen(store: &Store, stream: &StreamId) {
        set_rules(store, stream, StreamRules::default()).await;
    }

    async fn set_rules(store: &Store, stream: &StreamId, rules: StreamRules) {
        let set = store.set_stream_rules(stream.clone(), rules, None).await;
        set.expect("rules");
    }

    /// An age rule on `stream` that hides none of it: where its events start is asked
    /// of its chunks on disk.
    async fn keep_a_day(store: &Store, stream: &StreamId) {
        let rules = StreamRules {
            max_age_seconds: Some(86_400),
            ..StreamRules::default()
        };
        set_rules(store, stream, rules).await;
    }

    /// While the store runs, the writer lets go of the chunks the index on disk takes
    /// from the segments it seals, and reads of every version find them there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_leave_memory_as_the_index_on_disk_takes_them() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(store_config(dir.path())).expect("open");
        let streams: Vec<StreamId> = (0..5u128)
            .map(|n| StreamId {
                key: uuid::Uuid::from_u128(n),
                stream_type: std::sync::Arc::from("sensor"),
            })
            .collect();
        let mut rounds = 0;
        while read_index(&store.shared).streams_with_chunks_on_disk() < streams.len() {
            assert!(rounds < 2_000, "no chunks left memory in {rounds} rounds");
            for stream in &streams {
                let events = crate::store::index::disk_streams::tests::events(2);
                store
                    .append(stream.clone(), ExpectedVersion::Any, events)
                    .await
                    .expect("append");
            }
            rounds += 1;
        }
        for stream in &streams {
            let read = store.read(stream.clone(), ReadFrom::Start, Direction::Forward, None);
            let versions: Vec<u64> = drain(read.expect("read"))
                .await
                .iter()
                .map(|e| e.1)
                .collect();
            assert_eq!(versions, (0..2 * rounds).collect::<Vec<u64>>(), "{stream}");
            let info = store.stream_info(stream).expect("info").expect("known");
            assert_eq!(info.event_count, 2 * rounds, "{info:?}");
        }
        store.shutdown().await;
    }

    /// Waits until at least `count` of the first 20 segments have their records on
    /// disk only: those a scavenge rewrote once the ingester has put their new files
    /// in and the writer, idle, has let go of them.
    async fn wait_until_on_disk(store: &Store, count: usize) {
        for _ in 0..1_000 {
            if on_disk(store) >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{} segments on disk only, not {count}", on_disk(store));
    }

    /// How many of the first 20 segments have their records on disk only.
    fn on_disk(store: &Store) -> usize {
        let index = read_index(&store.shared);
        let on_disk = |s| {
            index
                .segment_file(s)
                .is_some_and(|f| index.records_on_disk(s, f))
        };
        (0..20).filter(|&s| on_disk(s)).count()
    }

    /// Deletes every stream but the first and the last (the filler), and scavenges to
    /// the end: most segments are left without an append.
    async fn delete_and_scavenge(store: &Store, streams: &[StreamId]) {
        for stream in &streams[1..streams.len() - 1] {
            match store
                .delete_stream(stream.clone(), ExpectedVersion::Any, DeleteMode::Soft)
                .await
            {
                Ok(_) | Err(StoreError::StreamDeleted(_)) => {}
                Err(e) => panic!("delete {stream}: {e}"),
            }
        }
        let done = scavenge(store).await;
        assert!(done.segments_rewritten > 10, "{done:?}");
    }
}

//! The index on disk: what the log says, kept in an LSM tree (fjall) beside it so that
//! it need not live in memory nor be rebuilt from the whole log at every start.
//!
//! It is derived data. The log stays the truth: the index says up to which segment it
//! covers (its checkpoint), a start replays only the log after that, and an index that
//! cannot be opened, or whose checkpoint does not match the log, is thrown away and
//! built again from the log (`recovery.rs` checks the match).
//!
//! Keyspaces:
//! - `event_ids`: an event id's 16 bytes to its position (8 bytes, big-endian). A
//!   sealed segment's ids go in at once, sorted, as a table of their own (fjall's
//!   ingestion: no journal, no memtable): a segment of small events holds over a
//!   million ids, which one write batch each would take longer to insert than batch
//!   appends take to write. A filter of our own in front (`filter.rs`) answers most
//!   look-ups of new ids without asking fjall.
//! - `records`, `chunks`, `deletes`, `rules`, `snapshots` and `segments`: the streams'
//!   part (`disk_streams.rs`, `disk_meta.rs`).
//! - `meta`: the checkpoint, written and synced after the segment's ids, records and
//!   chunks are durable, in one batch with the rest of what the segment says; and a
//!   note for each sealed segment a scavenge is rewriting, until the index holds its
//!   new file (an index with a note left at a start is rebuilt).

use super::disk_streams::StreamKeyspaces;
use super::filter::IdFilter;
use super::maps::ShardedMap;
use super::priority;
use super::{Index, lookup};
use crate::store::error::StoreError;
use crate::store::log::segment;
use crate::store::types::StreamId;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// Event ids and their positions, in memory.
pub type IdMap = ShardedMap<Uuid, u64>;

/// The directory of the index on disk, inside the data directory.
pub const INDEX_DIR: &str = "index";

/// The layout of what the index holds; an index of another layout is rebuilt. 2: the
/// streams' keyspaces; 3: rules, snapshots and segments; 4: a delete's first stamp.
const FORMAT: u32 = 4;
const CHECKPOINT_KEY: &[u8] = b"checkpoint";
/// Before a segment's number: the note that a scavenge rewrites it.
const REWRITE_NOTE: &[u8] = b"rewriting/";
/// Where a clean stop saves the filter, in the index's directory.
const FILTER_FILE: &str = "id-filter";

/// A sealed segment a scavenge rewrote (or meant to, and left as it was).
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub segment: u32,
    /// The id its new file is read by (`reader::FIRST_REWRITTEN_FILE`); None when the
    /// scavenge left it as it was.
    pub file: Option<u32>,
    /// The positions the segment covers: from the first, to the one after its last.
    pub positions: std::ops::Range<u64>,
    /// The streams whose events in the segment went, whose chunks change.
    pub streams: Vec<StreamId>,
    /// The streams whose snapshots in the segment went: the index on disk may still
    /// keep them (what left them unkept may lie past its checkpoint).
    pub snapshots_gone: Vec<StreamId>,
}

fn rewrite_note(seq: u32) -> Vec<u8> {
    let mut key = REWRITE_NOTE.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// How far the index on disk covers the log: every segment up to `segment`, whose
/// last position is `end_position - 1` (the next segment starts at `end_position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub segment: u32,
    pub end_position: u64,
}

impl Checkpoint {
    fn encode(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[0..4].copy_from_slice(&FORMAT.to_be_bytes());
        bytes[4..8].copy_from_slice(&self.segment.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.end_position.to_be_bytes());
        bytes
    }

    /// None for another format or a value of the wrong size.
    fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        let (format, rest) = bytes.split_at(4);
        let (segment, end_position) = rest.split_at(4);
        (u32::from_be_bytes(format.try_into().ok()?) == FORMAT).then_some(Checkpoint {
            segment: u32::from_be_bytes(segment.try_into().ok()?),
            end_position: u64::from_be_bytes(end_position.try_into().ok()?),
        })
    }
}

/// The open index on disk.
pub struct IndexDb {
    db: Database,
    event_ids: Keyspace,
    streams: StreamKeyspaces,
    meta: Keyspace,
    /// In front of `event_ids`: most new ids are ruled out without asking fjall.
    filter: IdFilter,
    dir: PathBuf,
    /// The log's directory, whose segments it indexes: the one it is in.
    log_dir: PathBuf,
    cache_bytes: u64,
}

impl std::fmt::Debug for IndexDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexDb").field("dir", &self.dir).finish()
    }
}

fn index_error(context: impl Into<String>, error: fjall::Error) -> StoreError {
    StoreError::io(context, io::Error::other(error.to_string()))
}

impl IndexDb {
    /// Opens the index in `dir` with a block cache of `cache_bytes`, and reads its
    /// checkpoint. One that cannot be opened, or whose checkpoint cannot be read, is
    /// removed and made anew, empty: the log rebuilds it.
    pub fn open_or_rebuild(
        dir: &Path,
        cache_bytes: u64,
    ) -> Result<(IndexDb, Option<Checkpoint>), StoreError> {
        match IndexDb::open(dir, cache_bytes).and_then(|db| {
            let checkpoint = db.checkpoint()?;
            Ok((db, checkpoint))
        }) {
            Ok(opened) => Ok(opened),
            Err(e) => {
                tracing::warn!(
                    index = %dir.display(),
                    error = %e,
                    "the index on disk cannot be used: rebuilding it from the log"
                );
                remove(dir)?;
                Ok((IndexDb::open(dir, cache_bytes)?, None))
            }
        }
    }

    /// Opens the index in `dir` as it is, to check it (`verify.rs`): one that cannot be
    /// opened is an error, not removed.
    pub fn open_to_check(dir: &Path) -> Result<IndexDb, StoreError> {
        IndexDb::open(dir, 16 << 20)
    }

    fn open(dir: &Path, cache_bytes: u64) -> Result<IndexDb, StoreError> {
        let opening = |e| index_error(format!("opening the index in {}", dir.display()), e);
        // Opened on a thread of its own at nice 19: fjall's compaction thread, which it
        // starts, inherits that (`priority.rs`).
        let opened = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    priority::lower_to_nice_19();
                    Database::builder(dir)
                        .cache_size(cache_bytes)
                        // Compaction beside the writer, the syncer and the server's own
                        // threads.
                        .worker_threads(1)
                        .open()
                })
                .join()
        });
        // A panic in fjall over files it cannot make sense of is damage like any other:
        // the index is rebuilt, the server starts.
        let db = match opened {
            Ok(opened) => opened.map_err(opening)?,
            Err(_) => {
                return Err(StoreError::IndexMismatch(format!(
                    "opening the index in {} panicked",
                    dir.display()
                )));
            }
        };
        // fjall's own bloom filters stay: the look-ups that reach it (ids the filter of
        // our own could not rule out, and retries) ask one table per level and each
        // table of the first.
        let event_ids = db
            .keyspace("event_ids", || {
                KeyspaceCreateOptions::default().compaction_strategy(Arc::new(compaction()))
            })
            .map_err(opening)?;
        let streams = StreamKeyspaces::open(&db, compaction).map_err(opening)?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(opening)?;
        Ok(IndexDb {
            db,
            event_ids,
            streams,
            meta,
            filter: IdFilter::default(),
            dir: dir.to_path_buf(),
            log_dir: dir.parent().unwrap_or(dir).to_path_buf(),
            cache_bytes,
        })
    }

    /// Throws this index away and makes it anew, empty.
    pub fn rebuild(self) -> Result<IndexDb, StoreError> {
        let (dir, cache_bytes) = (self.dir.clone(), self.cache_bytes);
        let kept = self.streams.meta.snapshots_kept;
        drop(self);
        remove(&dir)?;
        Ok(IndexDb::open(&dir, cache_bytes)?.keeping_snapshots(kept))
    }

    /// How far the index covers the log; None when it covers nothing yet. An
    /// unreadable checkpoint is an error: the index is then rebuilt.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let value = self
            .meta
            .get(CHECKPOINT_KEY)
            .map_err(|e| index_error("reading the index's checkpoint", e))?;
        match value {
            None => Ok(None),
            Some(bytes) => Checkpoint::decode(&bytes).map(Some).ok_or_else(|| {
                StoreError::IndexMismatch(
                    "the index's checkpoint is not one this build reads".into(),
                )
            }),
        }
    }

    /// Puts every id on disk into the filter, which rules nothing out until then:
    /// what the ingester does first at a start.
    pub fn fill_filter(&self) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(1 << 16);
        for item in self.event_ids.iter() {
            let key = item
                .key()
                .map_err(|e| index_error("reading the index's event ids", e))?;
            match <[u8; 16]>::try_from(&*key) {
                Ok(bytes) => ids.push(Uuid::from_bytes(bytes)),
                Err(_) => {
                    return Err(StoreError::IndexMismatch(format!(
                        "the index holds an event id of {} bytes",
                        key.len()
                    )));
                }
            }
            if ids.len() == ids.capacity() {
                self.filter.insert_all(&ids);
                ids.clear();
            }
        }
        self.filter.insert_all(&ids);
        self.filter.set_ready();
        Ok(())
    }

    /// Makes the filter hold every id on disk: the one a clean stop saved, if it covers
    /// the checkpoint, else filled from the ids on disk. Says which.
    pub fn ready_filter(&self) -> Result<&'static str, StoreError> {
        let covers = self
            .checkpoint()?
            .map(|c| [u64::from(c.segment), c.end_position]);
        let path = self.dir.join(FILTER_FILE);
        match covers.map(|covers| self.filter.load(&path, covers)) {
            Some(Ok(())) => return Ok("loaded as a clean stop saved it"),
            Some(Err(why)) if path.exists() => {
                tracing::info!(why = %why, "the saved filter in front of the event ids is not used");
            }
            _ => {}
        }
        self.fill_filter()?;
        Ok("filled from the ids on disk")
    }

    /// Saves the filter, if it holds every id on disk, for the next start
    /// ([`IndexDb::ready_filter`]): what a clean stop does once the ingester is done.
    pub fn save_filter(&self) -> Result<(), StoreError> {
        let Some(checkpoint) = self.checkpoint()? else {
            return Ok(());
        };
        if !self.filter.is_ready() {
            return Ok(());
        }
        let covers = [u64::from(checkpoint.segment), checkpoint.end_position];
        let path = self.dir.join(FILTER_FILE);
        self.filter
            .save(&path, covers)
            .map_err(|e| StoreError::io(format!("saving {}", path.display()), e))
    }

    /// Memory of the filter in front of the event ids.
    pub fn filter_bytes(&self) -> usize {
        self.filter.bytes()
    }

    /// The position of the event with `id`, if the index holds it.
    pub fn event_position(&self, id: Uuid) -> Result<Option<u64>, StoreError> {
        if !self.filter.may_contain(&id) {
            return Ok(None);
        }
        let value = self
            .event_ids
            .get(id.as_bytes())
            .map_err(|e| index_error("reading an event id from the index", e))?;
        match value {
            None => Ok(None),
            Some(bytes) => match <[u8; 8]>::try_from(&*bytes) {
                Ok(position) => Ok(Some(u64::from_be_bytes(position))),
                Err(_) => Err(StoreError::IndexMismatch(format!(
                    "the index holds a position of {} bytes for event id {id}",
                    bytes.len()
                ))),
            },
        }
    }

    /// Whether the index holds no note of a rewrite it did not put in
    /// ([`IndexDb::stale_rewrites`]), and the last record it holds before its
    /// checkpoint's end is the one the log holds there (`index`, rebuilt from the log at
    /// this start). A log whose segments end where the checkpoint says but whose records
    /// are others (another store's log put in its place) is not this index's log. An
    /// index that cannot be read does not agree.
    pub fn agrees_with(&self, index: &Index, checkpoint: Option<Checkpoint>) -> bool {
        match self.stale_rewrites(checkpoint) {
            Ok(stale) if stale.is_empty() => {}
            Ok(stale) => {
                tracing::warn!(
                    ?stale,
                    "segments a scavenge rewrote are not in the index on disk as they are now"
                );
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the index's notes of rewrites failed");
                return false;
            }
        }
        let Some(last) = checkpoint.and_then(|c| c.end_position.checked_sub(1)) else {
            return true;
        };
        match self.streams.record_holding(last) {
            Ok(on_disk) => {
                let in_memory = lookup::record_holding(index, None, last);
                matches!(in_memory, Ok(found) if found == on_disk)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the index's last record failed");
                false
            }
        }
    }

    /// Keeps the newest `kept` snapshots of each stream by version, as the index in
    /// memory does (one until this is called).
    pub fn keeping_snapshots(mut self, kept: usize) -> IndexDb {
        self.streams.meta.snapshots_kept = kept.max(1);
        self
    }

    /// The streams' part of the index.
    pub fn streams(&self) -> &StreamKeyspaces {
        &self.streams
    }

    /// Puts a sealed segment into the index, durably: its event ids (`ids`, from the
    /// writer's memory), records and streams' chunks (read from its file) as tables of
    /// their own, then its deletes, rules, snapshots and end with the checkpoint moved
    /// to it, in one batch, synced. One thread at a time (the ingester): the filter
    /// takes inserts from one only. A crash in between leaves the checkpoint before the
    /// segment: the next start gives it again, and putting it in again changes nothing
    /// (`disk_streams.rs`).
    pub fn ingest_segment(&self, ids: &IdMap, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let ingesting = |e| index_error(format!("indexing segment {}", checkpoint.segment), e);
        let path = segment::segment_path(&self.log_dir, u64::from(checkpoint.segment));
        let mut batch = self.db.batch();
        self.streams.ingest_segment(
            &mut batch,
            &path,
            checkpoint.segment,
            checkpoint.end_position,
        )?;
        self.ingest_ids(ids, checkpoint)?;
        batch.insert(&self.meta, CHECKPOINT_KEY, checkpoint.encode());
        batch.commit().map_err(ingesting)?;
        self.db.persist(PersistMode::SyncAll).map_err(ingesting)
    }

    /// Notes, durably, that a scavenge is about to rewrite sealed segment `seq`: until
    /// [`IndexDb::reingest_segment`] takes the note away, the index may name places in
    /// its old file, and a start that finds the note rebuilds the index.
    pub fn note_rewrite(&self, seq: u32) -> Result<(), StoreError> {
        let noting = |e| index_error(format!("noting segment {seq}'s rewrite in the index"), e);
        self.meta.insert(rewrite_note(seq), []).map_err(noting)?;
        self.db.persist(PersistMode::SyncAll).map_err(noting)
    }

    /// The segments noted as rewritten whose new files the index does not hold yet.
    pub fn noted_rewrites(&self) -> Result<Vec<u32>, StoreError> {
        let mut noted = Vec::new();
        for item in self.meta.prefix(REWRITE_NOTE) {
            let key = item
                .key()
                .map_err(|e| index_error("reading the index's notes of rewrites", e))?;
            let seq = key
                .strip_prefix(REWRITE_NOTE)
                .and_then(|rest| <[u8; 4]>::try_from(rest).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| {
                    StoreError::IndexMismatch(format!(
                        "the index holds a note of a rewrite of {} bytes",
                        key.len()
                    ))
                })?;
            noted.push(seq);
        }
        Ok(noted)
    }

    /// The segments noted as rewritten whose old files the index may hold: those it
    /// covers up to `checkpoint`, and, when an ingestion cut short by a crash left
    /// records past the checkpoint, those past it too. (Ingesting a segment again
    /// writes its entries over those, but leaves the entries of records its old file
    /// held and its new one does not; the kill -9 harness found one so.) Other notes
    /// past the checkpoint name segments not in the index at all.
    pub fn stale_rewrites(&self, checkpoint: Option<Checkpoint>) -> Result<Vec<u32>, StoreError> {
        let mut noted = self.noted_rewrites()?;
        let end = checkpoint.map_or(0, |c| c.end_position);
        if !self.streams.holds_records_from(end)? {
            noted.retain(|seq| checkpoint.is_some_and(|c| *seq <= c.segment));
        }
        Ok(noted)
    }

    /// Takes away the notes of segments past `checkpoint`, which a start hands the
    /// ingester to put in from their files as they are now, before a scavenge runs: for
    /// an index that agrees with the log, which [`IndexDb::stale_rewrites`] says they
    /// are not in.
    pub fn forget_rewrites_past(&self, checkpoint: Option<Checkpoint>) -> Result<(), StoreError> {
        let forgetting = |e| index_error("taking away the index's notes of rewrites", e);
        let mut past = self.noted_rewrites()?;
        past.retain(|seq| checkpoint.is_none_or(|c| *seq > c.segment));
        if past.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for seq in past {
            batch.remove(&self.meta, rewrite_note(seq));
        }
        batch.commit().map_err(forgetting)?;
        self.db.persist(PersistMode::SyncAll).map_err(forgetting)
    }

    /// Puts segment `rewritten.segment`'s file as it is now into the index in place of
    /// what was there (`disk_streams.rs`), and takes its note away, in one batch,
    /// synced. A segment past the checkpoint is not in the index yet: its ingestion
    /// reads the file as it is then. Says whether the index held it (and holds its new
    /// file's records now). The ingester's thread, as ingestion.
    pub fn reingest_segment(&self, rewritten: &Rewritten) -> Result<bool, StoreError> {
        let seq = rewritten.segment;
        let indexing = |e| index_error(format!("indexing segment {seq} again"), e);
        let mut batch = self.db.batch();
        let held = self.checkpoint()?.is_some_and(|c| c.segment >= seq);
        if held {
            let path = segment::segment_path(&self.log_dir, u64::from(seq));
            self.streams
                .reingest_segment(&mut batch, &path, rewritten)?;
        }
        batch.remove(&self.meta, rewrite_note(seq));
        batch.commit().map_err(indexing)?;
        self.db.persist(PersistMode::SyncAll).map_err(indexing)?;
        Ok(held)
    }

    /// What an ingestion of `checkpoint`'s segment cut short by a crash leaves: its
    /// records and chunks written, its checkpoint not.
    #[cfg(test)]
    pub fn ingest_tables_only(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let path = segment::segment_path(&self.log_dir, u64::from(checkpoint.segment));
        let mut batch = self.db.batch();
        let seq = checkpoint.segment;
        self.streams
            .ingest_segment(&mut batch, &path, seq, checkpoint.end_position)
            .map(|_| ())
    }

    /// Puts a segment's event ids into their keyspace as a table of their own, and
    /// into the filter.
    fn ingest_ids(&self, ids: &IdMap, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let ingesting = |e| index_error(format!("indexing segment {}", checkpoint.segment), e);
        let mut sorted: Vec<(u128, u64)> = ids
            .iter()
            .map(|(id, position)| (id.as_u128(), *position))
            .collect();
        // Big-endian bytes sort as the integers do; fjall refuses keys out of order.
        sorted.sort_unstable_by_key(|(id, _)| *id);
        if !sorted.is_empty() {
            let mut ingestion = self.event_ids.start_ingestion().map_err(ingesting)?;
            for (id, position) in sorted {
                ingestion
                    .write(id.to_be_bytes(), position.to_be_bytes())
                    .map_err(ingesting)?;
            }
            ingestion.finish().map_err(ingesting)?;
        }
        self.filter.insert_all(ids.iter().map(|(id, _)| id));
        Ok(())
    }
}

/// How the event ids' tables are merged. Every table of random ids overlaps every
/// other, so each merge into a level rewrites all of it: fjall's default (a merge of
/// the first level once it holds 4 tables, levels 10 times apart) took more of a pinned
/// core than the ingestion itself under batch appends. With 16 tables before a merge
/// and levels 8 times apart, ids are rewritten less often; look-ups ask more tables,
/// but only for the ids the filter could not rule out.
fn compaction() -> fjall::compaction::Leveled {
    fjall::compaction::Leveled::default()
        .with_l0_threshold(16)
        .with_level_ratio_policy(vec![8.0])
}

/// Removes the index in `dir`, if there is one.
pub fn remove(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(format!("removing {}", dir.display()), e)),
    }
}

/// Writes segment `seq` of `log_dir` with its header and no records: for tests of the
/// ingestion of event ids alone.
#[cfg(test)]
pub fn write_empty_segment(log_dir: &Path, seq: u32) {
    let path = segment::segment_path(log_dir, u64::from(seq));
    std::fs::write(&path, segment::header_bytes(u64::from(seq))).expect("write a segment");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ingests `ids` as those of a segment with no records, whose file it writes.
    fn ingest(db: &IndexDb, ids: &IdMap, checkpoint: Checkpoint) -> Result<(), StoreError> {
        write_empty_segment(&db.log_dir, checkpoint.segment);
        db.ingest_segment(ids, checkpoint)
    }

    fn ids(range: std::ops::Range<u64>) -> IdMap {
        let mut ids = IdMap::default();
        for position in range {
            ids.insert(Uuid::new_v4(), position);
        }
        ids
    }

    #[test]
    fn ids_ingested_are_found_and_the_checkpoint_kept_across_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(INDEX_DIR);
        let first = ids(0..5_000);
        let second = ids(5_000..9_000);
        {
            let (db, checkpoint) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("open");
            assert_eq!(checkpoint, None);
            // Unsorted in the map: the ingestion panics unless they are sorted first.
            ingest(
                &db,
                &first,
                Checkpoint {
                    segment: 0,
                    end_position: 5_000,
                },
            )
            .expect("ingest");
            ingest(
                &db,
                &second,
                Checkpoint {
                    segment: 1,
                    end_position: 9_000,
                },
            )
            .expect("ingest");
        }
        let (db, checkpoint) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("reopen");
        assert_eq!(
            checkpoint,
            Some(Checkpoint {
                segment: 1,
                end_position: 9_000
            })
        );
        for (id, position) in first.iter().chain(second.iter()) {
            assert_eq!(db.event_position(*id).expect("read"), Some(*position));
        }
        assert_eq!(db.event_position(Uuid::new_v4()).expect("read"), None);
    }

    #[test]
    fn a_start_loads_the_filter_a_clean_stop_saved_while_the_checkpoint_is_the_same() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(INDEX_DIR);
        let first = ids(0..5_000);
        let checkpoint = |segment, end_position| Checkpoint {
            segment,
            end_position,
        };
        {
            let (db, _) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("open");
            assert_eq!(
                db.ready_filter().expect("ready"),
                "filled from the ids on disk"
            );
            ingest(&db, &first, checkpoint(0, 5_000)).expect("ingest");
            db.save_filter().expect("save");
        }
        {
            let (db, _) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("reopen");
            assert_eq!(
                db.ready_filter().expect("ready"),
                "loaded as a clean stop saved it"
            );
            for (id, position) in first.iter() {
                assert_eq!(db.event_position(*id).expect("read"), Some(*position));
            }
            // A segment more, and no clean stop to save the filter again.
            ingest(&db, &ids(5_000..6_000), checkpoint(1, 6_000)).expect("ingest");
        }
        let (db, _) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("reopen");
        assert_eq!(
            db.ready_filter().expect("ready"),
            "filled from the ids on disk"
        );
        for (id, position) in first.iter() {
            assert_eq!(db.event_position(*id).expect("read"), Some(*position));
        }
    }

    #[test]
    fn a_later_segment_s_position_for_an_id_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, _) = IndexDb::open_or_rebuild(&dir.path().join(INDEX_DIR), 1 << 20).expect("open");
        let id = Uuid::new_v4();
        let mut earlier = ids(0..10);
        earlier.insert(id, 3);
        let mut later = ids(10..20);
        later.insert(id, 15);
        ingest(
            &db,
            &earlier,
            Checkpoint {
                segment: 0,
                end_position: 10,
            },
        )
        .expect("ingest");
        ingest(
            &db,
            &later,
            Checkpoint {
                segment: 1,
                end_position: 20,
            },
        )
        .expect("ingest");
        assert_eq!(db.event_position(id).expect("read"), Some(15));
    }

    #[test]
    fn an_index_that_cannot_be_opened_is_made_anew() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(INDEX_DIR);
        {
            let (db, _) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("open");
            ingest(
                &db,
                &ids(0..100),
                Checkpoint {
                    segment: 0,
                    end_position: 100,
                },
            )
            .expect("ingest");
        }
        // Every file of it overwritten with garbage.
        for entry in evenire_testkit::files::files_under(&path) {
            std::fs::write(&entry, b"not an index").expect("damage");
        }
        let (db, checkpoint) = IndexDb::open_or_rebuild(&path, 1 << 20).expect("rebuilt");
        assert_eq!(checkpoint, None);
        ingest(
            &db,
            &ids(0..10),
            Checkpoint {
                segment: 0,
                end_position: 10,
            },
        )
        .expect("the new index takes ids");
    }
}

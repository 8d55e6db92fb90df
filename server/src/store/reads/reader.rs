//! Reading records back: from the cache when they are there, else from their segment
//! with a positioned read, checking the checksum every time a record comes off the disk.

use crate::store::error::StoreError;
use crate::store::index::RecordLoc;
use crate::store::log::fs::{Fs, ReadAt};
use crate::store::log::record::{self, Entry, Record, Snapshot};
use crate::store::log::segment;
use bytes::Bytes;
use moka::sync::Cache;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Memory a decoded event takes beyond its share of the frame.
const EVENT_OVERHEAD_BYTES: u32 = 128;
/// Memory a cache entry takes beyond its events: moka's bookkeeping and the record.
const ENTRY_OVERHEAD_BYTES: u32 = 320;

/// Reads records by location. Shared by the writer (idempotency look-ups) and readers.
#[derive(Debug)]
pub struct LogReader {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    files: RwLock<Files>,
    /// Decoded records, weighted by their size on disk. None when the cache size is 0,
    /// so that setting really means "no cache".
    cache: Option<Cache<RecordLoc, Arc<Record>>>,
    /// Wakes the thread that does the cache's upkeep (`tidy_cache`).
    keeper: Option<std::sync::mpsc::SyncSender<()>>,
    /// Records found in the cache, and read from disk, since the start.
    hits: AtomicU64,
    misses: AtomicU64,
}

/// File ids from this one on name files a scavenge rewrote while the server runs;
/// below it, a file's id is its segment's number, and the file is opened by its name.
/// A record's location names its file by id ([`RecordLoc::segment`]), so that a
/// location found before a segment was rewritten never reads the new file.
pub const FIRST_REWRITTEN_FILE: u32 = 1 << 31;

/// The files records are read from, by id.
#[derive(Debug)]
struct Files {
    open: HashMap<u32, Arc<dyn ReadAt>>,
    /// For the files a scavenge wrote, their segment's number.
    segment_of: HashMap<u32, u32>,
    /// Ids of files a scavenge replaced and that were let go: a location that still
    /// names one must be looked up again.
    retired: std::collections::HashSet<u32>,
    next_rewritten: u32,
}

/// The cache's figures, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct CacheFigures {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    /// By the cache's own weighing: records' bytes on disk and the overhead per entry.
    pub bytes: u64,
}

impl LogReader {
    /// A reader over the segments in `dir` with a cache of `cache_bytes`.
    pub fn new(fs: Arc<dyn Fs>, dir: PathBuf, cache_bytes: u64) -> Self {
        let cache = (cache_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(cache_bytes)
                // The frame's bytes plus what the entry and decoding add (the cache's
                // own bookkeeping, the record, each event's struct and type string), so
                // that the bound holds for small events too.
                .weigher(|loc: &RecordLoc, record: &Arc<Record>| {
                    let per_event = u32::try_from(record.events.len()).unwrap_or(u32::MAX);
                    loc.len
                        .saturating_add(ENTRY_OVERHEAD_BYTES)
                        .saturating_add(per_event.saturating_mul(EVENT_OVERHEAD_BYTES))
                })
                .build()
        });
        let keeper = cache.as_ref().and_then(spawn_keeper);
        LogReader {
            fs,
            dir,
            keeper,
            files: RwLock::new(Files {
                open: HashMap::new(),
                segment_of: HashMap::new(),
                retired: std::collections::HashSet::new(),
                next_rewritten: FIRST_REWRITTEN_FILE,
            }),
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Offers a just-committed record to the cache: recent events are the likeliest to
    /// be read.
    pub fn remember(&self, loc: RecordLoc, record: Arc<Record>) {
        if let Some(cache) = &self.cache {
            cache.insert(loc, record);
        }
    }

    /// Has the cache's pending upkeep (admissions, evictions, its counts) done now, on
    /// a thread of its own. Left to itself, moka does it inline, in the call that finds
    /// 64 writes pending: on the writer, between answering one group and syncing the
    /// next, where it costs every append in flight. The writer calls this after each
    /// group, so its own inserts find little or nothing to do (single events on one
    /// connection: 5-13 % more events/s at 8 to 128 writers, BENCHMARKS.md).
    pub fn tidy_cache(&self) {
        if let Some(keeper) = &self.keeper {
            // Full: the keeper has a wake-up waiting already.
            let _ = keeper.try_send(());
        }
    }

    /// The record at `loc` if the cache has it. Never blocks.
    pub fn cached(&self, loc: RecordLoc) -> Option<Arc<Record>> {
        let found = self.cache.as_ref().and_then(|c| c.get(&loc));
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Hits, misses and what the cache holds now (moka's figures, a moment behind).
    pub fn figures(&self) -> CacheFigures {
        CacheFigures {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.as_ref().map_or(0, Cache::entry_count),
            bytes: self.cache.as_ref().map_or(0, Cache::weighted_size),
        }
    }

    /// The record at `loc`. Blocking: call from the writer thread or `spawn_blocking`.
    pub fn read(&self, loc: RecordLoc) -> Result<Arc<Record>, StoreError> {
        if let Some(record) = self.cached(loc) {
            return Ok(record);
        }
        let record = Arc::new(self.read_from_disk(loc)?);
        self.remember(loc, record.clone());
        Ok(record)
    }

    fn read_from_disk(&self, loc: RecordLoc) -> Result<Record, StoreError> {
        self.misses.fetch_add(1, Ordering::Relaxed);
        match self.read_entry(loc)? {
            Entry::Append(record) => Ok(record),
            _ => Err(self.not_a("record with events", loc)),
        }
    }

    /// The snapshot record at `loc`, from disk: snapshots are read once per load of an
    /// aggregate, and kept out of the cache that serves events. Blocking.
    pub fn read_snapshot(&self, loc: RecordLoc) -> Result<Snapshot, StoreError> {
        match self.read_entry(loc)? {
            Entry::Snapshot(snapshot) => Ok(snapshot),
            _ => Err(self.not_a("snapshot", loc)),
        }
    }

    /// The record at `loc`, checked against its checksums.
    fn read_entry(&self, loc: RecordLoc) -> Result<Entry, StoreError> {
        let path = self.path_of(loc.segment);
        let file = self.file(loc.segment, &path)?;
        let mut frame = vec![0; loc.len as usize];
        file.read_exact_at(&mut frame, loc.offset)
            .map_err(|e| StoreError::io(format!("reading {}", segment_name(&path)), e))?;
        record::decode_frame(Bytes::from(frame)).map_err(|e| StoreError::Corrupt {
            path,
            offset: loc.offset,
            reason: e.to_string(),
        })
    }

    fn not_a(&self, what: &str, loc: RecordLoc) -> StoreError {
        let path = self.path_of(loc.segment);
        StoreError::IndexMismatch(format!(
            "the index points at a record that is not a {what} in {} at offset {}",
            segment_name(&path),
            loc.offset
        ))
    }

    /// The path of the segment file `id` names (the rewritten one's, for a rewritten
    /// file: it is renamed there).
    fn path_of(&self, id: u32) -> PathBuf {
        let segment = self
            .files
            .read()
            .ok()
            .and_then(|files| files.segment_of.get(&id).copied())
            .unwrap_or(id);
        segment::segment_path(&self.dir, u64::from(segment))
    }

    fn file(&self, id: u32, path: &std::path::Path) -> Result<Arc<dyn ReadAt>, StoreError> {
        if let Ok(files) = self.files.read() {
            if let Some(file) = files.open.get(&id) {
                return Ok(file.clone());
            }
            if id >= FIRST_REWRITTEN_FILE || files.retired.contains(&id) {
                return Err(StoreError::Moved);
            }
        }
        let file = self
            .fs
            .open_read(path)
            .map_err(|e| StoreError::io(format!("opening {}", segment_name(path)), e))?;
        if let Ok(mut files) = self.files.write() {
            // A scavenge may have retired the id meanwhile, after renaming its new file
            // where this one was opened: then what was opened may be the new file.
            if files.retired.contains(&id) {
                return Err(StoreError::Moved);
            }
            files.open.insert(id, file.clone());
        }
        Ok(file)
    }

    /// Opens the file with id `old`, of segment `segment`, if it is not open yet: done
    /// before a scavenge renames a new file over it, so that locations naming it go on
    /// reading it, not the new one.
    pub fn hold(&self, old: u32, segment: u32) -> Result<(), StoreError> {
        let path = segment::segment_path(&self.dir, u64::from(segment));
        self.file(old, &path).map(|_| ())
    }

    /// Takes in `rewritten`, the file a scavenge renamed into place as segment
    /// `segment`, under an id of its own, which is returned.
    pub fn adopt(&self, segment: u32, rewritten: Arc<dyn ReadAt>) -> Result<u32, StoreError> {
        let mut files = self
            .files
            .write()
            .map_err(|_| StoreError::IndexMismatch("the file table's lock is poisoned".into()))?;
        let id = files.next_rewritten;
        files.next_rewritten = id.checked_add(1).ok_or_else(|| {
            StoreError::IndexMismatch("out of file ids for rewritten segments".into())
        })?;
        files.open.insert(id, rewritten);
        files.segment_of.insert(id, segment);
        Ok(id)
    }

    /// Lets go of the files with ids in `old`, which a scavenge replaced and no
    /// location in the index names any more: their disk space is freed once no read
    /// still has them open. A read that still names one is told to look again.
    pub fn retire(&self, old: &[u32]) {
        if let Ok(mut files) = self.files.write() {
            for id in old {
                files.open.remove(id);
                files.segment_of.remove(id);
                files.retired.insert(*id);
            }
        }
    }

    /// Forgets what the cache holds of the records at `locs`: a scavenge moved or
    /// reclaimed them.
    pub fn forget(&self, locs: impl Iterator<Item = RecordLoc>) {
        if let Some(cache) = &self.cache {
            for loc in locs {
                cache.invalidate(&loc);
            }
        }
    }
}

/// A segment's file name: what errors while serving say, so that clients do not learn
/// the server's directories.
fn segment_name(path: &std::path::Path) -> std::borrow::Cow<'_, str> {
    path.file_name().unwrap_or_default().to_string_lossy()
}

/// Starts the thread that does `cache`'s upkeep when woken; it ends with the reader.
fn spawn_keeper(cache: &Cache<RecordLoc, Arc<Record>>) -> Option<std::sync::mpsc::SyncSender<()>> {
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let cache = cache.clone();
    std::thread::Builder::new()
        .name("evenire-cache".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                cache.run_pending_tasks();
            }
        })
        .inspect_err(
            |e| tracing::warn!(error = %e, "no cache keeper thread: the cache keeps itself"),
        )
        .ok()
        .map(|_| wake)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::fs::RealFs;
    use crate::store::log::record::Record;
    use crate::store::types::StreamId;
    use std::time::{Duration, Instant};

    fn record(n: u64) -> Arc<Record> {
        Arc::new(Record {
            first_position: n,
            first_version: 0,
            created_micros: 0,
            stream: StreamId {
                key: uuid::Uuid::from_u128(u128::from(n)),
                stream_type: "test".into(),
            },
            events: Vec::new(),
        })
    }

    #[test]
    fn the_keeper_does_the_upkeep_the_inserts_left() {
        let reader = LogReader::new(Arc::new(RealFs), PathBuf::from("."), 1 << 20);
        // Fewer than the 64 pending writes at which an insert does the upkeep itself:
        // until someone does it, the cache counts none of them.
        for n in 0..10 {
            let loc = RecordLoc {
                segment: 0,
                len: 100,
                offset: n * 100,
            };
            reader.remember(loc, record(n));
        }
        reader.tidy_cache();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.figures().entries < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(reader.figures().entries, 10, "the keeper ran the upkeep");
    }
}

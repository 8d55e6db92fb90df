//! Reading records back: from the newest records or the cache when they are there, else
//! from their segment with a positioned read, checking the checksum every time a record
//! comes off the disk.

use crate::store::error::StoreError;
use crate::store::index::RecordLoc;
use crate::store::log::fs::{Fs, ReadAt};
use crate::store::log::record::{self, Entry, Record, Snapshot};
use crate::store::log::segment;
use crate::store::reads::recent::Recent;
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
/// The share of the cache size kept for the newest records however full the cache of
/// records read from disk is; that cache has the rest. At 256 MiB, about 100,000
/// single-event appends: what tails, subscribers and aggregates just written read.
const RECENT_SHARE_DIVISOR: u64 = 4;

/// What a record counts for against the cache size: the frame's bytes plus what the
/// entry and decoding add (the cache's own bookkeeping, the record, each event's struct
/// and type string), so that the bound holds for small events too.
fn weight(loc: &RecordLoc, record: &Record) -> u32 {
    let per_event = u32::try_from(record.events.len()).unwrap_or(u32::MAX);
    loc.len
        .saturating_add(ENTRY_OVERHEAD_BYTES)
        .saturating_add(per_event.saturating_mul(EVENT_OVERHEAD_BYTES))
}

/// Reads records by location. Shared by the writer (idempotency look-ups) and readers.
#[derive(Debug)]
pub struct LogReader {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    files: RwLock<Files>,
    /// The cache size: the newest records and the cache together.
    cache_bytes: u64,
    /// The newest committed records, which the writer adds ([`Recent`]), in what the
    /// cache leaves of the size, a quarter of it at least. None, like the cache, when
    /// the cache size is 0, so that setting really means "no cache".
    recent: Option<Recent>,
    /// Decoded records that reads fetched from disk, weighted by their size.
    cache: Option<Cache<RecordLoc, Arc<Record>>>,
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
    /// A reader over the segments in `dir` with `cache_bytes` for the newest records
    /// and the cache together.
    pub fn new(fs: Arc<dyn Fs>, dir: PathBuf, cache_bytes: u64) -> Self {
        let recent_bytes = cache_bytes / RECENT_SHARE_DIVISOR;
        let recent = (cache_bytes > 0).then(Recent::default);
        let cache = (cache_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(cache_bytes - recent_bytes)
                .weigher(|loc: &RecordLoc, record: &Arc<Record>| weight(loc, record))
                .build()
        });
        LogReader {
            fs,
            dir,
            cache_bytes,
            recent,
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

    /// Adds a committed group's records, in log order, to the newest records. The
    /// writer calls it once per group, before the group is visible.
    pub fn committed(&self, records: impl Iterator<Item = (RecordLoc, Arc<Record>)>) {
        if let Some(recent) = &self.recent {
            let records = records.map(|(loc, record)| {
                let weight = weight(&loc, &record);
                (loc, record, weight)
            });
            recent.push(records, self.recent_bound());
        }
    }

    /// Caches a record read from disk; the newest records give way to it.
    fn keep_read(&self, loc: RecordLoc, record: Arc<Record>) {
        if let (Some(cache), Some(recent)) = (&self.cache, &self.recent) {
            cache.insert(loc, record);
            recent.trim(self.recent_bound());
        }
    }

    /// What the newest records may weigh: what the cache does not hold of the size,
    /// and a quarter of it at least. Memory the cache has not filled yet keeps more of
    /// what was just written (a stream read right after it is written is read from
    /// memory); as reads fill the cache, the newest records give way.
    fn recent_bound(&self) -> u64 {
        let cached = self.cache.as_ref().map_or(0, Cache::weighted_size);
        (self.cache_bytes.saturating_sub(cached)).max(self.cache_bytes / RECENT_SHARE_DIVISOR)
    }

    /// The record at `loc` if the newest records or the cache have it. Never blocks.
    pub fn cached(&self, loc: RecordLoc) -> Option<Arc<Record>> {
        let found = (self.recent.as_ref().and_then(|r| r.get(loc)))
            .or_else(|| self.cache.as_ref().and_then(|c| c.get(&loc)));
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Hits, misses and what the cache holds now (moka's figures, a moment behind).
    pub fn figures(&self) -> CacheFigures {
        let (recent_entries, recent_bytes) = self.recent.as_ref().map_or((0, 0), Recent::figures);
        CacheFigures {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: recent_entries + self.cache.as_ref().map_or(0, Cache::entry_count),
            bytes: recent_bytes + self.cache.as_ref().map_or(0, Cache::weighted_size),
        }
    }

    /// The record at `loc`. Blocking: call from the writer thread or `spawn_blocking`.
    pub fn read(&self, loc: RecordLoc) -> Result<Arc<Record>, StoreError> {
        if let Some(record) = self.cached(loc) {
            return Ok(record);
        }
        let record = Arc::new(self.read_from_disk(loc)?);
        self.keep_read(loc, record.clone());
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
        let locs: Vec<RecordLoc> = locs.collect();
        if let Some(recent) = &self.recent {
            recent.forget(&locs);
        }
        if let Some(cache) = &self.cache {
            for loc in &locs {
                cache.invalidate(loc);
            }
        }
    }
}

/// A segment's file name: what errors while serving say, so that clients do not learn
/// the server's directories.
fn segment_name(path: &std::path::Path) -> std::borrow::Cow<'_, str> {
    path.file_name().unwrap_or_default().to_string_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::fs::RealFs;
    use crate::store::reads::recent::test_record as record;

    fn loc(n: u64) -> RecordLoc {
        RecordLoc {
            segment: 0,
            len: 100,
            offset: n * 100,
        }
    }

    #[test]
    fn committed_records_are_found_among_the_newest_and_counted_as_hits() {
        let reader = LogReader::new(Arc::new(RealFs), PathBuf::from("."), 1 << 20);
        reader.committed((0..10).map(|n| (loc(n), record(n))));
        let found = reader.cached(loc(3)).map(|r| r.first_position);
        assert_eq!(found, Some(3));
        let figures = reader.figures();
        assert_eq!((figures.hits, figures.entries), (1, 10));
        assert!(figures.bytes >= 10 * u64::from(100 + ENTRY_OVERHEAD_BYTES));

        // A cache size of 0 keeps nothing, the newest records included.
        let none = LogReader::new(Arc::new(RealFs), PathBuf::from("."), 0);
        none.committed((0..10).map(|n| (loc(n), record(n))));
        assert!(none.cached(loc(3)).is_none());
        assert_eq!(none.figures().entries, 0);
    }

    #[test]
    fn the_newest_records_use_what_reads_leave_and_give_way_to_them() {
        // 420 bytes a record (100 + the entry's overhead): 2,496 fit in 1 MiB, 624 in
        // the quarter the newest records keep however full the cache is.
        let reader = LogReader::new(Arc::new(RealFs), PathBuf::from("."), 1 << 20);
        reader.committed((0..2_000).map(|n| (loc(n), record(n))));
        assert_eq!(
            reader.figures().entries,
            2_000,
            "all of them, in memory reads left"
        );
        assert!(reader.cached(loc(0)).is_some());

        // Reads fill the cache with 1,500 other records: the newest give way.
        let cache = reader.cache.as_ref().expect("a cache");
        for n in 10_000..11_500 {
            reader.keep_read(loc(n), record(n));
        }
        cache.run_pending_tasks();
        reader.keep_read(loc(11_500), record(11_500));
        let figures = reader.figures();
        assert!(
            figures.bytes <= (1 << 20) + 420,
            "within the size: {figures:?}"
        );
        assert!(reader.cached(loc(0)).is_none(), "the oldest gave way");
        assert!(reader.cached(loc(1_999)).is_some(), "the newest stayed");
        assert!(
            reader.cached(loc(10_000)).is_some(),
            "what reads fetched stayed"
        );
    }
}

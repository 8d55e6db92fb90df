//! The filter in front of the event ids on disk: says "certainly not there" for almost
//! every new id in one cache line, so that a look-up on disk is only made for the few
//! it cannot rule out (about 1 %, and the retries).
//!
//! fjall keeps a bloom filter per table, but a look-up asks each table of the first
//! level and one per level below, each through its block cache: 1-6.6 µs per new id in
//! a measurement with 2-15M ids in 5-19 tables, against a budget of under 1 µs per
//! event for batch appends. One filter of our own is one probe.
//!
//! Blocked bloom filters (each id's bits in one 512-bit block), about 10 bits per id
//! at capacity, 7 bits per id set. A filter cannot grow, so they come in a chain: when
//! the newest is full, one of twice its capacity follows; a look-up probes each (five
//! at 100M ids, from a first of 4M). Bits are atomics: the ingester sets them while
//! the writer reads them. The hash is seeded at random when a filter is made: ids a
//! client picks cannot be aimed at one block.
//!
//! A clean stop saves the filter beside the index (`id-filter`, with its seed and the
//! checkpoint it covers, checksummed), and the next start loads it when the checkpoint
//! is the same: a read of about 1.2 bytes per id, where filling it again reads every id
//! on disk (at 10M ids, seconds during which every new id is a look-up in fjall).

use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

/// Ids the first filter of a chain holds at capacity.
const FIRST_CAPACITY: u64 = 4 << 20;
const BITS_PER_ID: u64 = 10;
const WORDS_PER_BLOCK: usize = 8;
const BITS_SET: u32 = 7;

/// One blocked bloom filter.
#[derive(Debug)]
struct Filter {
    blocks: Box<[[AtomicU64; WORDS_PER_BLOCK]]>,
    capacity: u64,
    count: AtomicU64,
}

impl Filter {
    fn with_capacity(capacity: u64) -> Filter {
        let blocks = (capacity * BITS_PER_ID).div_ceil(64 * WORDS_PER_BLOCK as u64);
        Filter {
            blocks: (0..blocks.max(1))
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            capacity,
            count: AtomicU64::new(0),
        }
    }

    /// The block and, per bit, its word and mask.
    fn bits(&self, hash: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        // The top half picks the block (multiply-shift: no division); the hash mixed
        // again (so that ids in one block do not share bits), nine bits a time, the
        // bits in it.
        let block = ((hash >> 32) * self.blocks.len() as u64) >> 32;
        let mixed = (hash ^ (hash >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let bits = (0..BITS_SET).map(move |i| {
            let bit = ((mixed >> (i * 9)) & 511) as usize;
            (bit / 64, 1u64 << (bit % 64))
        });
        (block as usize, bits)
    }

    fn insert(&self, hash: u64) {
        let (block, bits) = self.bits(hash);
        for (word, mask) in bits {
            self.blocks[block][word].fetch_or(mask, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn may_contain(&self, hash: u64) -> bool {
        let (block, mut bits) = self.bits(hash);
        bits.all(|(word, mask)| self.blocks[block][word].load(Ordering::Relaxed) & mask != 0)
    }

    fn is_full(&self) -> bool {
        self.count.load(Ordering::Relaxed) >= self.capacity
    }

    fn bytes(&self) -> usize {
        self.blocks.len() * WORDS_PER_BLOCK * 8
    }
}

/// The chain of filters over every id on disk. Until it is `ready` (filled from the
/// ids already on disk at a start), it rules nothing out.
#[derive(Debug)]
pub struct IdFilter {
    chain: RwLock<Vec<Arc<Filter>>>,
    ready: std::sync::atomic::AtomicBool,
    /// The hash's seed: random, or the saved filter's once it is loaded (before any
    /// id is added or looked up through it).
    seed: AtomicU64,
}

impl Default for IdFilter {
    fn default() -> Self {
        IdFilter {
            chain: RwLock::new(vec![Arc::new(Filter::with_capacity(FIRST_CAPACITY))]),
            ready: false.into(),
            seed: AtomicU64::new(Uuid::new_v4().as_u64_pair().0),
        }
    }
}

/// What a saved filter starts with.
const MAGIC: &[u8; 8] = b"EVIDFLT1";

impl IdFilter {
    fn hash(&self, id: &Uuid) -> u64 {
        let seed = self.seed.load(Ordering::Relaxed);
        foldhash::quality::FixedState::with_seed(seed).hash_one(id.as_u128())
    }

    /// Saves the filter to `path` (through a file beside it, synced and renamed), as
    /// covering the ids on disk up to `covers`.
    pub fn save(&self, path: &Path, covers: [u64; 2]) -> io::Result<()> {
        let temp = path.with_extension("new");
        let mut out = Checksummed::new(io::BufWriter::new(std::fs::File::create(&temp)?));
        out.write_all(MAGIC)?;
        for n in [self.seed.load(Ordering::Relaxed), covers[0], covers[1]] {
            out.write_all(&n.to_le_bytes())?;
        }
        let chain = self
            .chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.write_all(&(chain.len() as u64).to_le_bytes())?;
        for filter in &chain {
            let count = filter.count.load(Ordering::Relaxed);
            for n in [filter.capacity, count, filter.blocks.len() as u64] {
                out.write_all(&n.to_le_bytes())?;
            }
            for word in filter.blocks.iter().flatten() {
                out.write_all(&word.load(Ordering::Relaxed).to_le_bytes())?;
            }
        }
        let crc = out.crc;
        let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.write_all(&crc.to_le_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        match path.parent() {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }

    /// Loads the filter saved at `path` if it covers the ids on disk up to `covers`,
    /// and is then ready; says why not otherwise (none saved, another checkpoint's,
    /// damaged), changing nothing. Before any id is added or looked up.
    pub fn load(&self, path: &Path, covers: [u64; 2]) -> Result<(), String> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or("shorter than its checksum")?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err("its checksum does not match".into());
        }
        let mut words = body
            .strip_prefix(MAGIC)
            .ok_or("not a saved filter")?
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
        let mut next = || words.next().ok_or("cut short");
        let seed = next()?;
        if [next()?, next()?] != covers {
            return Err("it covers another checkpoint".into());
        }
        let mut chain = Vec::new();
        for _ in 0..next()? {
            let (capacity, count, blocks) = (next()?, next()?, next()?);
            if blocks
                != (capacity * BITS_PER_ID)
                    .div_ceil(64 * WORDS_PER_BLOCK as u64)
                    .max(1)
            {
                return Err("a filter's size does not match its capacity".into());
            }
            let filter = Filter::with_capacity(capacity);
            for word in filter.blocks.iter().flatten() {
                word.store(next()?, Ordering::Relaxed);
            }
            filter.count.store(count, Ordering::Relaxed);
            chain.push(Arc::new(filter));
        }
        if chain.is_empty() || next().is_ok() {
            return Err("it holds no filter, or more than its filters".into());
        }
        self.seed.store(seed, Ordering::Relaxed);
        *self.chain.write().unwrap_or_else(PoisonError::into_inner) = chain;
        self.set_ready();
        Ok(())
    }

    /// Whether it holds every id on disk (filled or loaded).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Adds ids on disk. One thread adds (the ingester); the lock is only taken to
    /// find the newest filter and to add one, so that the writer's look-ups never
    /// wait for a segment's worth of inserts.
    pub fn insert_all<'a>(&self, ids: impl IntoIterator<Item = &'a Uuid>) {
        let mut newest = {
            let chain = self.chain.read().unwrap_or_else(PoisonError::into_inner);
            chain.last().cloned()
        };
        for id in ids {
            let filter = match &newest {
                Some(filter) if !filter.is_full() => filter,
                last => {
                    let capacity = last.as_ref().map_or(FIRST_CAPACITY, |f| f.capacity * 2);
                    let added = Arc::new(Filter::with_capacity(capacity));
                    self.chain
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(added.clone());
                    newest.insert(added)
                }
            };
            filter.insert(self.hash(id));
        }
    }

    /// Every id on disk is in it from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// False when `id` is certainly not on disk.
    pub fn may_contain(&self, id: &Uuid) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return true;
        }
        let hash = self.hash(id);
        let chain = self.chain.read().unwrap_or_else(PoisonError::into_inner);
        chain.iter().any(|filter| filter.may_contain(hash))
    }

    /// Its memory.
    pub fn bytes(&self) -> usize {
        let chain = self.chain.read().unwrap_or_else(PoisonError::into_inner);
        chain.iter().map(|filter| filter.bytes()).sum()
    }
}

/// A writer that keeps the crc32c of what went through it.
struct Checksummed<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Checksummed<W> {
    fn new(inner: W) -> Self {
        Checksummed { inner, crc: 0 }
    }
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_filter_loads_for_its_checkpoint_only_and_not_when_damaged() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("id-filter");
        let filter = IdFilter::default();
        // Past the first filter's capacity: a chain of two.
        let added: Vec<Uuid> = (0..FIRST_CAPACITY + 1_000)
            .map(|_| Uuid::new_v4())
            .collect();
        filter.insert_all(&added);
        filter.set_ready();
        filter.save(&path, [7, 9_000]).expect("save");

        let other = IdFilter::default();
        assert_eq!(
            other.load(&path, [7, 9_001]),
            Err("it covers another checkpoint".into())
        );
        assert!(!other.is_ready());
        other.load(&path, [7, 9_000]).expect("load");
        assert!(other.is_ready());
        assert!(added.iter().all(|id| other.may_contain(id)));
        let false_hits = (0..100_000)
            .filter(|_| other.may_contain(&Uuid::new_v4()))
            .count();
        assert!(false_hits < 2_000, "{false_hits} of 100000");
        // Ids added after the load go on into the loaded chain, with its seed.
        let later = Uuid::new_v4();
        other.insert_all([&later]);
        assert!(other.may_contain(&later));

        let mut bytes = std::fs::read(&path).expect("read");
        bytes[100] ^= 1;
        std::fs::write(&path, &bytes).expect("damage");
        let fresh = IdFilter::default();
        assert_eq!(
            fresh.load(&path, [7, 9_000]),
            Err("its checksum does not match".into())
        );
        assert!(!fresh.is_ready());
    }

    #[test]
    fn rules_out_most_ids_never_added_and_never_one_that_was() {
        let filter = IdFilter::default();
        let added: Vec<Uuid> = (0..200_000).map(|_| Uuid::new_v4()).collect();
        // Not ready: nothing is ruled out.
        assert!(filter.may_contain(&Uuid::new_v4()));
        filter.insert_all(&added);
        filter.set_ready();
        assert!(added.iter().all(|id| filter.may_contain(id)));
        let false_hits = (0..100_000)
            .filter(|_| filter.may_contain(&Uuid::new_v4()))
            .count();
        // Far below capacity: well under 1 %.
        assert!(false_hits < 200, "{false_hits} of 100000");
    }

    #[test]
    fn a_full_filter_is_followed_by_a_larger_one_and_keeps_its_ids() {
        let filter = IdFilter::default();
        let first: Vec<Uuid> = (0..FIRST_CAPACITY + 10).map(|_| Uuid::new_v4()).collect();
        filter.insert_all(&first);
        filter.set_ready();
        let chain = filter.chain.read().expect("lock");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].capacity, FIRST_CAPACITY * 2);
        assert_eq!(chain[1].count.load(Ordering::Relaxed), 10);
        drop(chain);
        assert!(first.iter().all(|id| filter.may_contain(id)));
        let false_hits = (0..100_000)
            .filter(|_| filter.may_contain(&Uuid::new_v4()))
            .count();
        // At capacity, about 1 %.
        assert!(false_hits < 2_000, "{false_hits} of 100000");
    }
}

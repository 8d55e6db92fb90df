//! How a store is set up, and the durability contract its appends keep.

use crate::store::log::fs;
use std::path::PathBuf;
use std::sync::Arc;

/// When an append is acknowledged, relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before acknowledging: an acknowledged append survives a process
    /// crash and a power loss. The default.
    Always,
    /// Acknowledge once the write reached the OS page cache: survives a process crash,
    /// but a power loss or kernel crash loses the last acknowledged appends. For
    /// benchmarks and tests only.
    PowerLossUnsafe,
}

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where the segments live. Created if missing.
    pub data_dir: PathBuf,
    /// Bytes of decoded records the cache may hold; 0 turns it off.
    pub cache_bytes: u64,
    /// The index on disk, in `data_dir/index`, with a block cache of this many bytes;
    /// None keeps every event id in memory instead (stores on a simulated file
    /// system, which the index's own files would not go through).
    pub index_cache_bytes: Option<u64>,
    /// With the index on disk, how many streams' entries stay in memory at most once it
    /// holds them (the others are asked of it); None: all of them.
    pub index_entries_kept: Option<usize>,
    /// When appends are acknowledged.
    pub fsync: FsyncPolicy,
    /// A segment is closed and a new one started once it reaches this many bytes.
    pub segment_size: u64,
    /// Bytes of appends that may wait for the writer; callers past it wait their turn.
    pub max_pending_bytes: u64,
    /// The file system underneath: [`fs::RealFs`] but in durability tests.
    pub fs: Arc<dyn fs::Fs>,
    /// Snapshots of each stream the store keeps, newest by version (at least one).
    pub snapshots_per_stream: usize,
    /// Rules for the streams of these types that have none of their own.
    pub default_rules: std::collections::HashMap<std::sync::Arc<str>, crate::store::StreamRules>,
}

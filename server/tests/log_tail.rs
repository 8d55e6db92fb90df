//! How the log may end: zeros the writer wrote ahead of it, what a crash left in the
//! last two commit groups, and nothing at all after a clean stop. Segments are built
//! record by record with the real codec, or written by a real store on a real or
//! simulated disk.

use bytes::Bytes;
use evenire_server::store::fs::RealFs;
use evenire_server::store::record::{self, AppendHeader, Entry};
use evenire_server::store::segment::{self, SEGMENT_HEADER_LEN};
use evenire_server::store::sim_fs::SimFs;
use evenire_server::store::{
    Direction, EventData, ExpectedVersion, FsyncPolicy, ReadFrom, Store, StoreConfig, StoreError,
    StreamId,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

fn stream() -> StreamId {
    StreamId {
        key: Uuid::from_u128(42),
        stream_type: Arc::from("meter"),
    }
}

fn event(i: u64) -> EventData {
    EventData {
        id: Uuid::from_u128(1000 + u128::from(i)),
        event_type: Arc::from("Read"),
        data: Bytes::from(vec![b'x'; 600]),
        metadata: Bytes::new(),
    }
}

/// A segment holding one single-event record per stamp in `stamps` (equal stamps are
/// one commit group), and where each record starts.
fn segment_with(stamps: &[i64]) -> (Vec<u8>, Vec<usize>) {
    let fs = SimFs::new();
    let dir = Path::new("/sim/log");
    segment::create_segment(&fs, dir, 0).expect("segment");
    let mut bytes = fs.contents(&segment::segment_path(dir, 0)).expect("header");
    let mut starts = Vec::new();
    for (version, created_micros) in stamps.iter().enumerate() {
        starts.push(bytes.len());
        let header = AppendHeader {
            first_position: version as u64,
            first_version: version as u64,
            created_micros: *created_micros,
            stream: &stream(),
        };
        record::encode_append(&mut bytes, header, &[event(version as u64)]);
    }
    (bytes, starts)
}

/// Zeros one 512-byte sector inside the record starting at `start`, as a power loss
/// that kept a later page may.
fn lose_sector(bytes: &mut [u8], start: usize) {
    bytes[start + 100..start + 612].fill(0);
}

fn scan(bytes: &[u8], may_be_torn: bool) -> Result<segment::Scan, StoreError> {
    let bytes = Bytes::copy_from_slice(bytes);
    segment::scan(Path::new("segment-test.log"), 0, &bytes, may_be_torn)
}

#[test]
fn zeros_after_the_last_record_end_a_crashed_log_and_nothing_else() {
    let (mut bytes, _) = segment_with(&[1, 2, 3]);
    let end = bytes.len() as u64;
    bytes.resize(bytes.len() + 8192, 0);
    let scan = scan(&bytes, true).expect("zeros after a crash");
    assert_eq!(scan.records.len(), 3);
    assert_eq!(scan.valid_len, end);
    assert!(scan.torn.is_none());
    assert!(
        matches!(self::scan(&bytes, false), Err(StoreError::Corrupt { offset, .. }) if offset == end),
        "zeros after a clean stop (or in an earlier segment) are damage"
    );
}

#[test]
fn damage_followed_by_two_commit_groups_is_what_a_crash_left() {
    // Groups: [r0] [r1 r2] [r3]. The crash came while [r1 r2] synced and [r3] was
    // written after it: a lost sector in r1 with r2 and r3 on disk.
    let (mut bytes, starts) = segment_with(&[1, 2, 2, 3]);
    lose_sector(&mut bytes, starts[1]);
    let scan = scan(&bytes, true).expect("a torn tail");
    assert_eq!(scan.records.len(), 1, "only the record before the damage");
    assert_eq!(scan.valid_len, starts[1] as u64);
    let reason = scan.torn.expect("torn");
    assert!(reason.contains("2 unsynced commit groups"), "{reason}");
}

#[test]
fn damage_followed_by_three_commit_groups_stops_the_start() {
    // A third group is only written once the first of them is synced: damage before
    // three hit acknowledged data.
    let (mut bytes, starts) = segment_with(&[1, 2, 3, 4, 5]);
    lose_sector(&mut bytes, starts[1]);
    let scanned = scan(&bytes, true);
    assert!(
        matches!(&scanned, Err(StoreError::Corrupt { offset, reason, .. })
            if *offset == starts[1] as u64 && reason.contains("more than 2 commit groups")),
        "{scanned:?}"
    );
}

fn config(dir: PathBuf, fs: Arc<dyn evenire_server::store::fs::Fs>) -> StoreConfig {
    StoreConfig {
        data_dir: dir,
        cache_bytes: 0,
        index_cache_bytes: None,
        index_entries_kept: None,
        fsync: FsyncPolicy::Always,
        segment_size: 64 << 20,
        max_pending_bytes: 64 << 20,
        fs,
        snapshots_per_stream: 1,
        default_rules: Default::default(),
    }
}

async fn append_three(store: &Store) {
    for i in 0..3 {
        store
            .append(stream(), ExpectedVersion::Any, vec![event(i)])
            .await
            .expect("append");
    }
}

async fn versions(store: &Store) -> Vec<u64> {
    let (_, batch) = store
        .read(stream(), ReadFrom::Start, Direction::Forward, None)
        .expect("stream")
        .next_batch(100, 1 << 20)
        .await;
    batch
        .expect("read")
        .into_iter()
        .map(|e| e.version)
        .collect()
}

#[tokio::test]
async fn the_writer_writes_ahead_and_a_clean_stop_cuts_it_and_refuses_a_damaged_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = segment::segment_path(dir.path(), 0);
    let store = Store::open(config(dir.path().into(), Arc::new(RealFs))).expect("open");
    append_three(&store).await;
    let running = std::fs::metadata(&path).expect("segment").len();
    assert!(
        running >= 256 << 10,
        "256 KiB of zeros ahead, not {running}"
    );
    store.shutdown().await;
    drop(store);

    let mut bytes = std::fs::read(&path).expect("segment");
    let records = segment::scan(&path, 0, &Bytes::from(bytes.clone()), false)
        .expect("after a clean stop the segment ends with its last record");
    let appends: Vec<_> = records
        .records
        .iter()
        .filter(|r| matches!(r.entry, Entry::Append(_)))
        .collect();
    assert_eq!(appends.len(), 3);
    assert_eq!(records.valid_len, bytes.len() as u64);

    // The log as it was right after the last append's write: without the sync mark its
    // group carries, or the one the writer leaves once idle, nothing says it was synced.
    let last = appends[2];
    bytes.truncate((last.offset + last.len) as usize);
    // Damage in the last record is damage after a clean stop, not a torn write...
    bytes[(last.offset + last.len) as usize - 10] ^= 1;
    std::fs::write(&path, &bytes).expect("damage");
    let refused = Store::open(config(dir.path().into(), Arc::new(RealFs)));
    assert!(
        matches!(&refused, Err(StoreError::Corrupt { .. })),
        "{refused:?}"
    );
    // ...and a torn write once the log no longer says it stopped cleanly.
    std::fs::remove_file(dir.path().join("clean-stop")).expect("marker");
    let store = Store::open(config(dir.path().into(), Arc::new(RealFs))).expect("recovery");
    assert_eq!(versions(&store).await, vec![0, 1]);
    store.shutdown().await;
}

#[tokio::test]
async fn recovery_cuts_the_zeros_a_crash_left_and_writing_goes_on_after_the_last_record() {
    let fs = SimFs::new();
    let dir = PathBuf::from("/sim/evenire-data");
    let path = segment::segment_path(&dir, 0);
    let store = Store::open(config(dir.clone(), Arc::new(fs.clone()))).expect("open");
    append_three(&store).await;
    fs.freeze();
    store.shutdown().await;
    drop(store);
    fs.power_loss(|_| 0);
    let on_disk = fs.contents(&path).expect("segment").len();
    assert!(
        on_disk >= 256 << 10,
        "the zeros were synced with the appends"
    );

    let store = Store::open(config(dir.clone(), Arc::new(fs.clone()))).expect("recovery");
    let cut = fs.contents(&path).expect("segment").len();
    assert!(cut < 4096 && cut as u64 > SEGMENT_HEADER_LEN, "{cut} bytes");
    store
        .append(stream(), ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .expect("the next append continues the log");
    assert_eq!(versions(&store).await, vec![0, 1, 2, 3]);
    store.shutdown().await;
}

#[tokio::test]
async fn a_disk_with_room_for_an_append_but_not_the_zeros_takes_the_append() {
    let fs = SimFs::new();
    let dir = PathBuf::from("/sim/evenire-data");
    let store = Store::open(config(dir, Arc::new(fs.clone()))).expect("open");
    fs.set_space_left(Some(4096));
    append_three(&store).await;
    assert_eq!(versions(&store).await, vec![0, 1, 2]);
    store.shutdown().await;
}

//! A model-based property test: random sequences of append (every expected-version
//! mode, batches, retries), read (forward and backward, from anywhere), delete (soft and
//! tombstone), clean restart and power loss, run against the store on a simulated disk
//! and against a plain in-memory model of what must be true. After every step that
//! answers, the store must agree with the model.
//!
//! `EVENIRE_MODEL_SEEDS` sets the number of seeds (default 40).

use evenire_server::store::sim_fs::SimFs;
use evenire_server::store::{
    DeleteMode, Direction, EventData, ExpectedVersion, FsyncPolicy, ReadFrom, Store, StoreConfig,
    StoreError, StreamId,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

use evenire_testkit::Rng;

/// What must be true of one stream.
#[derive(Debug, Default, Clone)]
struct ModelStream {
    /// Every event ever appended, by version: (id, data, position).
    events: Vec<(Uuid, Vec<u8>, u64)>,
    /// Versions below this are deleted.
    first_visible: u64,
    tombstoned: bool,
}

impl ModelStream {
    fn visible(&self) -> &[(Uuid, Vec<u8>, u64)] {
        &self.events[self.first_visible as usize..]
    }

    /// The version expected-version checks compare with: a deleted stream is no stream.
    fn current(&self) -> Option<u64> {
        (!self.visible().is_empty() && !self.tombstoned).then(|| self.events.len() as u64 - 1)
    }
}

/// An acknowledged append, kept to retry it.
#[derive(Debug, Clone)]
struct Acked {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<EventData>,
    /// Version and position of its last event.
    result: (u64, u64),
}

/// An event as a read returns it: version, position, id, data.
type Row = (u64, u64, Uuid, Vec<u8>);

#[derive(Debug, Default)]
struct Model {
    streams: HashMap<StreamId, ModelStream>,
    next_position: u64,
    last_append: Option<Acked>,
}

fn config(fs: &SimFs, cache: bool) -> StoreConfig {
    StoreConfig {
        data_dir: PathBuf::from("/sim/model"),
        cache_bytes: if cache { 1 << 20 } else { 0 },
        index_cache_bytes: None,
        index_entries_kept: None,
        fsync: FsyncPolicy::Always,
        segment_size: 1024,
        max_pending_bytes: 64 << 20,
        fs: Arc::new(fs.clone()),
        snapshots_per_stream: 1,
        default_rules: Default::default(),
    }
}

async fn read(
    store: &Store,
    stream: &StreamId,
    from: ReadFrom,
    direction: Direction,
    max: Option<u64>,
) -> Result<Vec<Row>, StoreError> {
    let mut cursor = store.read(stream.clone(), from, direction, max)?;
    let mut out = Vec::new();
    loop {
        let (next, batch) = cursor.next_batch(7, 1 << 20).await;
        cursor = next;
        let batch = batch?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(
            batch
                .into_iter()
                .map(|e| (e.version, e.position, e.id, e.data.to_vec())),
        );
    }
}

/// What the model says a read returns.
fn expected_read(
    stream: &ModelStream,
    from: ReadFrom,
    direction: Direction,
    max: Option<u64>,
) -> Vec<Row> {
    let first = stream.first_visible;
    let last = stream.events.len() as u64 - 1;
    let versions: Vec<u64> = match (direction, from) {
        (Direction::Forward, ReadFrom::Start) => (first..=last).collect(),
        (Direction::Forward, ReadFrom::End) => Vec::new(),
        (Direction::Forward, ReadFrom::Version(v)) => (v.max(first)..=last).collect(),
        (Direction::Backward, ReadFrom::Start) => vec![first],
        (Direction::Backward, ReadFrom::End) => (first..=last).rev().collect(),
        (Direction::Backward, ReadFrom::Version(v)) if v.min(last) >= first => {
            (first..=v.min(last)).rev().collect()
        }
        (Direction::Backward, ReadFrom::Version(_)) => Vec::new(),
    };
    versions
        .into_iter()
        .take(max.map_or(usize::MAX, |m| m as usize))
        .map(|v| {
            let (id, data, position) = &stream.events[v as usize];
            (v, *position, *id, data.clone())
        })
        .collect()
}

async fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let fs = SimFs::new();
    let mut store = Store::open(config(&fs, true)).expect("open");
    let mut model = Model::default();
    let streams: Vec<StreamId> = (0..4)
        .map(|_| StreamId {
            key: Uuid::new_v4(),
            stream_type: Arc::from("model"),
        })
        .collect();

    for step in 0..150 {
        let at = format!("seed {seed} step {step}");
        let stream = &streams[rng.below(streams.len() as u64) as usize];
        let state = model.streams.get(stream).cloned();
        match rng.below(100) {
            0..=44 => {
                let current = state.as_ref().and_then(ModelStream::current);
                let expected = match rng.below(5) {
                    0 => ExpectedVersion::Any,
                    1 => ExpectedVersion::NoStream,
                    2 => ExpectedVersion::StreamExists,
                    3 => ExpectedVersion::Exact(current.unwrap_or(0)),
                    _ => ExpectedVersion::Exact(rng.below(6)),
                };
                let events: Vec<EventData> = (0..1 + rng.below(3))
                    .map(|_| EventData {
                        id: Uuid::new_v4(),
                        event_type: Arc::from("E"),
                        data: rng.below(1 << 40).to_string().into_bytes().into(),
                        metadata: Default::default(),
                    })
                    .collect();
                let outcome = store.append(stream.clone(), expected, events.clone()).await;
                let tombstoned = state.as_ref().is_some_and(|s| s.tombstoned);
                match outcome {
                    Ok(result) => {
                        assert!(!tombstoned, "{at}: appended to a tombstone");
                        assert!(
                            expected.accepts(current),
                            "{at}: {expected:?} accepted at {current:?}"
                        );
                        let entry = model.streams.entry(stream.clone()).or_default();
                        for event in &events {
                            entry
                                .events
                                .push((event.id, event.data.to_vec(), model.next_position));
                            model.next_position += 1;
                        }
                        let expected_result =
                            (entry.events.len() as u64 - 1, model.next_position - 1);
                        assert_eq!((result.version, result.position), expected_result, "{at}");
                        model.last_append = Some(Acked {
                            stream: stream.clone(),
                            expected,
                            events,
                            result: expected_result,
                        });
                    }
                    Err(StoreError::StreamTombstoned(_)) => assert!(tombstoned, "{at}"),
                    Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                        assert!(
                            !tombstoned && !expected.accepts(current),
                            "{at}: refused {expected:?} at {current:?}"
                        );
                        assert_eq!(actual, current, "{at}");
                    }
                    Err(e) => panic!("{at}: {e}"),
                }
            }
            45..=54 => {
                // Retry the last acknowledged append: the original result, nothing written.
                if let Some(acked) = model.last_append.clone() {
                    let retried = store
                        .append(acked.stream, acked.expected, acked.events)
                        .await
                        .expect("retry");
                    assert_eq!(
                        (retried.version, retried.position),
                        acked.result,
                        "{at}: retry"
                    );
                }
            }
            55..=74 => {
                let direction = if rng.below(2) == 0 {
                    Direction::Forward
                } else {
                    Direction::Backward
                };
                let from = match rng.below(3) {
                    0 => ReadFrom::Start,
                    1 => ReadFrom::End,
                    _ => ReadFrom::Version(rng.below(12)),
                };
                let max = (rng.below(3) == 0).then(|| rng.below(5));
                let got = read(&store, stream, from, direction, max).await;
                match &state {
                    Some(s) if !s.visible().is_empty() && !s.tombstoned => {
                        assert_eq!(
                            got.expect("read"),
                            expected_read(s, from, direction, max),
                            "{at}: {from:?} {direction:?} {max:?}"
                        )
                    }
                    Some(_) => assert!(
                        matches!(got, Err(StoreError::StreamDeleted(_))),
                        "{at}: {got:?}"
                    ),
                    None => assert!(
                        matches!(got, Err(StoreError::StreamNotFound(_))),
                        "{at}: {got:?}"
                    ),
                }
            }
            75..=84 => {
                let mode = if rng.below(4) == 0 {
                    DeleteMode::Tombstone
                } else {
                    DeleteMode::Soft
                };
                let outcome = store
                    .delete_stream(stream.clone(), ExpectedVersion::Any, mode)
                    .await;
                match (&state, outcome) {
                    (None, Err(StoreError::StreamNotFound(_))) => {}
                    (Some(s), Ok(result)) => {
                        assert_eq!(result.through_version, s.events.len() as u64 - 1, "{at}");
                        let entry = model.streams.get_mut(stream).expect("modelled");
                        if !entry.tombstoned {
                            entry.first_visible = entry.events.len() as u64;
                            entry.tombstoned = mode == DeleteMode::Tombstone;
                        }
                    }
                    (state, outcome) => panic!("{at}: delete of {state:?} gave {outcome:?}"),
                }
            }
            85..=92 => {
                store.shutdown().await;
                drop(store);
                store = Store::open(config(&fs, rng.below(2) == 0)).expect("restart");
            }
            _ => {
                // Power loss between operations: everything answered was synced.
                fs.freeze();
                store.shutdown().await;
                drop(store);
                fs.power_loss(|unsynced| unsynced);
                store = Store::open(config(&fs, rng.below(2) == 0)).expect("recovery");
            }
        }
    }
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_agrees_with_the_model() {
    let seeds: u64 = std::env::var("EVENIRE_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 0..seeds {
        run(seed).await;
    }
    println!("{seeds} seeds of 150 random steps agree with the model");
}

//! Groups decided while the group before them is still syncing: the writer decides the
//! next group after the writes of one not yet in the index. Many tasks append to one
//! stream at once, each append sent twice at the same moment (a retry racing its
//! original, in the same group, the next one, or after), on a simulated disk with small
//! segments so that rotations fall between groups. Versions must come out gapless, each
//! event once, each retry answered as its original, and all of it there after a power
//! loss.

use evenire_server::store::sim_fs::SimFs;
use evenire_server::store::{
    Direction, EventData, ExpectedVersion, FsyncPolicy, ReadFrom, Store, StoreConfig, StreamId,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

const TASKS: usize = 12;
const APPENDS: usize = 40;

fn config(fs: &SimFs) -> StoreConfig {
    StoreConfig {
        data_dir: PathBuf::from("/sim/evenire-data"),
        cache_bytes: 1 << 20,
        index_cache_bytes: None,
        index_entries_kept: None,
        fsync: FsyncPolicy::Always,
        segment_size: 4096,
        max_pending_bytes: 64 << 20,
        fs: Arc::new(fs.clone()),
        snapshots_per_stream: 1,
        default_rules: Default::default(),
    }
}

fn events(task: usize, append: usize) -> Vec<EventData> {
    (0..1 + (task + append) % 3)
        .map(|i| EventData {
            id: Uuid::new_v4(),
            event_type: Arc::from("Counted"),
            data: format!("{task} {append} {i}").into_bytes().into(),
            metadata: Default::default(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_racing_retries_across_syncing_groups_stay_exact() {
    let fs = SimFs::new();
    let store = Arc::new(Store::open(config(&fs)).expect("open"));
    let stream = StreamId {
        key: Uuid::new_v4(),
        stream_type: Arc::from("counter"),
    };
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, stream) = (store.clone(), stream.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for append in 0..APPENDS {
                    let events = events(task, append);
                    let (original, retry) = tokio::join!(
                        store.append(stream.clone(), ExpectedVersion::Any, events.clone()),
                        store.append(stream.clone(), ExpectedVersion::Any, events.clone()),
                    );
                    let result = original.expect("append");
                    assert_eq!(retry.expect("retry"), result, "a retry gets the original");
                    sent.push((events, result));
                }
                sent
            })
        })
        .collect();
    let mut sent = Vec::new();
    for task in tasks {
        sent.extend(task.await.expect("task"));
    }

    store.shutdown().await;
    drop(store);
    fs.power_loss(|_| 0);
    let store = Store::open(config(&fs)).expect("recovery");
    let mut read = store
        .read(stream.clone(), ReadFrom::Start, Direction::Forward, None)
        .expect("the stream exists");
    let mut log = Vec::new();
    loop {
        let (next, batch) = read.next_batch(1024, 1 << 20).await;
        read = next;
        let batch = batch.expect("reads back");
        if batch.is_empty() {
            break;
        }
        log.extend(batch);
    }
    let total: usize = sent.iter().map(|(events, _)| events.len()).sum();
    assert_eq!(log.len(), total, "each event once");
    assert!(
        log.iter().enumerate().all(|(i, e)| e.version == i as u64),
        "gapless versions"
    );
    let ids: HashSet<Uuid> = log.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), total, "no event twice");
    for (events, result) in &sent {
        let last = &log[result.version as usize];
        assert_eq!(
            last.id,
            events[events.len() - 1].id,
            "acknowledged where it said"
        );
        assert_eq!(last.position, result.position);
    }
    store.shutdown().await;
}

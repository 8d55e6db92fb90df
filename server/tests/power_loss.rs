//! Power loss, simulated below the store: what the page cache had not synced is gone
//! (a file whose directory entry was not synced vanishes; the last write may be torn,
//! or the unsynced sectors kept in any order, and syncs may take long enough for the
//! next group to be written during one).
//! Concurrent appenders run against the store on a simulated disk; the machine stops at
//! a random moment, the power goes, the store recovers, and the log is checked against
//! a model of what was sent and acknowledged (snapshots and stream rules included: the
//! latest acknowledged of each survives). Many seeds; small segments so that new
//! segment files (and their directory fsync) are part of every run. Then the other
//! side: records synced and acknowledged, damaged on the medium, the last one of the
//! log included, stop recovery rather than pass for a torn write. Also: a full disk
//! and a failed fsync.

mod common;

use evenire_server::store::record::Entry;
use evenire_server::store::segment;
use evenire_server::store::sim_fs::SimFs;
use evenire_server::store::{
    Direction, EventData, ExpectedVersion, FsyncPolicy, ReadFrom, RecordedEvent, Store,
    StoreConfig, StoreError, StreamId, StreamRules,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

use evenire_testkit::Rng;
use evenire_testkit::durability::{self, Logged};

/// A stream whose snapshots and rules one task saves and sets as it appends: the
/// highest snapshot version and rules revision acknowledged, which recovery must keep.
#[derive(Debug, Clone)]
struct Kept {
    stream: StreamId,
    snapshot: Option<u64>,
    rules: u64,
}

#[derive(Debug, Clone)]
struct Sent {
    stream: StreamId,
    events: Vec<EventData>,
    acked: Option<(u64, u64)>,
}

fn config(fs: &SimFs, rng: &mut Rng) -> StoreConfig {
    StoreConfig {
        data_dir: PathBuf::from("/sim/evenire-data"),
        cache_bytes: if rng.below(2) == 0 { 0 } else { 1 << 20 },
        index_cache_bytes: None,
        index_entries_kept: None,
        fsync: FsyncPolicy::Always,
        segment_size: 512 + rng.below(4096),
        max_pending_bytes: 64 << 20,
        fs: Arc::new(fs.clone()),
        snapshots_per_stream: 1,
        default_rules: Default::default(),
    }
}

fn events(rng: &mut Rng) -> Vec<EventData> {
    (0..1 + rng.below(4))
        .map(|i| EventData {
            id: Uuid::new_v4(),
            event_type: Arc::from("Simulated"),
            // Up to a few hundred bytes, so that a group spans several sectors.
            data: format!("data {i} {}", rng.below(1_000_000))
                .repeat(1 + rng.below(40) as usize)
                .into_bytes()
                .into(),
            metadata: Default::default(),
        })
        .collect()
}

async fn read_log(store: &Store) -> Vec<RecordedEvent> {
    common::drain(store.read_all(ReadFrom::Start, Direction::Forward, None)).await
}

/// Checks the recovered log against the model (`evenire_testkit::durability`).
fn verify(log: &[RecordedEvent], sent: &[Sent], context: &str) {
    let names: Vec<String> = log.iter().map(|e| e.stream.to_string()).collect();
    let logged: Vec<Logged<'_>> = log
        .iter()
        .zip(&names)
        .map(|(e, stream)| Logged {
            id: e.id,
            stream,
            version: e.version,
            position: e.position,
            data: &e.data,
        })
        .collect();
    let sent: Vec<durability::Sent> = sent
        .iter()
        .map(|s| durability::Sent {
            stream: s.stream.to_string(),
            ids: s.events.iter().map(|e| e.id).collect(),
            data: s.events.iter().map(|e| e.data.to_vec()).collect(),
            acked: s.acked,
        })
        .collect();
    if let Err(broken) = durability::verify(&logged, &sent) {
        panic!("{context}: {broken}");
    }
}

/// Appends one event at a time to a stream of its own, saving a snapshot at each new
/// version and setting its rules after every other one, until the store stops
/// answering; what was acknowledged goes into the models.
async fn keep(store: Arc<Store>, sent: Arc<Mutex<Vec<Sent>>>, kept: Arc<Mutex<Vec<Kept>>>) {
    let stream = StreamId {
        key: Uuid::new_v4(),
        stream_type: Arc::from("kept"),
    };
    let at = {
        let mut kept = kept.lock().expect("model");
        kept.push(Kept {
            stream: stream.clone(),
            snapshot: None,
            rules: 0,
        });
        kept.len() - 1
    };
    loop {
        let events = vec![EventData {
            id: Uuid::new_v4(),
            event_type: Arc::from("Kept"),
            data: bytes::Bytes::from_static(b"kept"),
            metadata: Default::default(),
        }];
        let index = {
            let mut model = sent.lock().expect("model");
            model.push(Sent {
                stream: stream.clone(),
                events: events.clone(),
                acked: None,
            });
            model.len() - 1
        };
        let Ok(appended) = store
            .append(stream.clone(), ExpectedVersion::Any, events)
            .await
        else {
            return;
        };
        sent.lock().expect("model")[index].acked = Some((appended.version, appended.position));
        let version = appended.version;
        let data = bytes::Bytes::from(version.to_string());
        if store
            .save_snapshot(stream.clone(), version, Arc::from("State"), data)
            .await
            .is_err()
        {
            return;
        }
        kept.lock().expect("model")[at].snapshot = Some(version);
        if version % 2 == 1 {
            let expected = kept.lock().expect("model")[at].rules;
            let rules = StreamRules {
                max_count: Some(version + 1),
                truncate_before: None,
                max_age_seconds: None,
            };
            match store
                .set_stream_rules(stream.clone(), rules, Some(expected))
                .await
            {
                Ok(revision) => kept.lock().expect("model")[at].rules = revision,
                Err(_) => return,
            }
        }
    }
}

/// Every acknowledged snapshot and rules revision survived: the latest snapshot is at
/// least the last one acknowledged (a later one that became durable without its answer
/// may be there too) and holds what was saved; so are the rules.
async fn verify_kept(store: &Store, kept: &[Kept], seed: u64) {
    for kept in kept {
        let rules = store
            .stream_info(&kept.stream)
            .expect("info")
            .map_or(0, |info| info.rules_revision);
        assert!(
            rules >= kept.rules,
            "seed {seed}: rules of {} at revision {rules}, {} was acknowledged",
            kept.stream,
            kept.rules
        );
        let Some(acked) = kept.snapshot else {
            continue;
        };
        let (snapshot, _) = store
            .read_from_snapshot(kept.stream.clone())
            .await
            .expect("a stream with an acknowledged snapshot");
        let snapshot = snapshot.expect("the acknowledged snapshot");
        assert!(
            snapshot.version >= acked,
            "seed {seed}: snapshot of {} at {}, {acked} was acknowledged",
            kept.stream,
            snapshot.version
        );
        assert_eq!(
            snapshot.data,
            bytes::Bytes::from(snapshot.version.to_string())
        );
    }
}

/// One seed: rounds of concurrent appends cut by a power loss, each followed by
/// recovery, a check, and idempotent retries of what went unanswered.
async fn run_seed(seed: u64) -> (usize, usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let fs = SimFs::new();
    // Syncs that take a while let the writer write the next group during one, so a
    // power loss can find two groups unsynced.
    fs.set_sync_time(std::time::Duration::from_micros(rng.below(4) * 150));
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let kept = Arc::new(Mutex::new(Vec::<Kept>::new()));
    for round in 0..5 {
        let store = Arc::new(Store::open(config(&fs, &mut rng)).expect("recovery"));
        let snapshot = sent.lock().expect("model").clone();
        verify(
            &read_log(&store).await,
            &snapshot,
            &format!("seed {seed} round {round}"),
        );
        let acknowledged = kept.lock().expect("model").clone();
        verify_kept(&store, &acknowledged, seed).await;
        for (i, append) in snapshot.iter().enumerate() {
            if append.acked.is_none() {
                let result = store
                    .append(
                        append.stream.clone(),
                        ExpectedVersion::Any,
                        append.events.clone(),
                    )
                    .await
                    .expect("retry of an unanswered append");
                sent.lock().expect("model")[i].acked = Some((result.version, result.position));
            }
        }

        let appenders: Vec<_> = (0..6)
            .map(|a| {
                let (store, sent) = (store.clone(), sent.clone());
                let mut rng = Rng(rng.below(u64::MAX) | 1);
                tokio::spawn(async move {
                    let stream = StreamId {
                        key: Uuid::new_v4(),
                        stream_type: Arc::from("sim"),
                    };
                    let mut version = None;
                    loop {
                        let events = events(&mut rng);
                        let expected = match (a % 2, version) {
                            (0, None) => ExpectedVersion::NoStream,
                            (0, Some(v)) => ExpectedVersion::Exact(v),
                            _ => ExpectedVersion::Any,
                        };
                        let index = {
                            let mut model = sent.lock().expect("model");
                            model.push(Sent {
                                stream: stream.clone(),
                                events: events.clone(),
                                acked: None,
                            });
                            model.len() - 1
                        };
                        match store.append(stream.clone(), expected, events).await {
                            Ok(r) => {
                                sent.lock().expect("model")[index].acked =
                                    Some((r.version, r.position));
                                version = Some(r.version);
                            }
                            Err(_) => return,
                        }
                        // Spread the appenders out, so that appends arrive while a
                        // group syncs and the next group is written during its sync.
                        for _ in 0..rng.below(30) {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let keeper = tokio::spawn(keep(store.clone(), sent.clone(), kept.clone()));
        for _ in 0..rng.below(200) {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_micros(rng.below(3000))).await;
        fs.freeze();
        for appender in appenders {
            appender.await.expect("appender");
        }
        keeper.await.expect("keeper");
        store.shutdown().await;
        drop(store);
        match rng.below(6) {
            0 => fs.power_loss(|_| 0),
            1 => fs.power_loss(|unsynced| unsynced),
            2 => fs.power_loss(|unsynced| unsynced / 2),
            _ => fs.power_loss_scattered(|| rng.below(2) == 0),
        }
    }
    let store = Store::open(config(&fs, &mut rng)).expect("final recovery");
    let model = sent.lock().expect("model").clone();
    verify(
        &read_log(&store).await,
        &model,
        &format!("seed {seed} final"),
    );
    let acknowledged = kept.lock().expect("model").clone();
    verify_kept(&store, &acknowledged, seed).await;
    store.shutdown().await;
    let acked = model.iter().filter(|s| s.acked.is_some()).count();
    (model.len(), acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_at_power_loss() {
    let seeds = seeds();
    let (mut appends, mut acked) = (0, 0);
    for seed in 0..seeds {
        let (sent, ok) = run_seed(seed).await;
        appends += sent;
        acked += ok;
    }
    println!(
        "{seeds} seeds x 5 power losses: {appends} appends sent, {acked} acknowledged, lost 0"
    );
    assert!(acked > 0);
}

/// Appenders run, stop, and the store idles long enough to mark what it synced; the
/// power goes; one byte of an acknowledged record of the last segment is damaged (the
/// last record in half the seeds, where a torn write would be). Recovery must refuse,
/// naming that record: dropping it would lose an acknowledged append without a word.
async fn damage_after_sync(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let fs = SimFs::new();
    fs.set_sync_time(std::time::Duration::from_micros(rng.below(4) * 150));
    let store = Arc::new(Store::open(config(&fs, &mut rng)).expect("open"));
    let appenders: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let mut rng = Rng(rng.below(u64::MAX) | 1);
            tokio::spawn(async move {
                let order = stream();
                for _ in 0..1 + rng.below(15) {
                    store
                        .append(order.clone(), ExpectedVersion::Any, events(&mut rng))
                        .await
                        .expect("append");
                    for _ in 0..rng.below(30) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await.expect("appender");
    }
    // Longer than the writer idles before it writes a mark of its own.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    fs.freeze();
    store.shutdown().await;
    drop(store);
    match rng.below(3) {
        0 => fs.power_loss(|unsynced| unsynced),
        1 => fs.power_loss(|_| 0),
        _ => fs.power_loss_scattered(|| rng.below(2) == 0),
    }

    let last = fs
        .paths()
        .into_iter()
        .rfind(|p| p.to_string_lossy().ends_with(".log"))
        .expect("a segment");
    let bytes = fs.contents(&last).expect("the last segment");
    let appends: Vec<_> = segment::records(&bytes)
        .into_iter()
        .filter(|r| matches!(r.entry, Entry::Append(_)))
        .collect();
    let Some(last_append) = appends.last() else {
        return;
    };
    let chosen = match rng.below(2) {
        0 => last_append,
        _ => &appends[rng.below(appends.len() as u64) as usize],
    };
    let at = chosen.offset + rng.below(chosen.len);
    fs.damage(&last, at as usize, 1 << rng.below(8));

    match Store::open(config(&fs, &mut rng)) {
        Err(StoreError::Corrupt { offset, .. }) => assert_eq!(
            offset, chosen.offset,
            "seed {seed}: the damaged record is named"
        ),
        Err(other) => panic!("seed {seed}: {other}"),
        Ok(_) => panic!(
            "seed {seed}: a synced, acknowledged record damaged at {at} (record at {}, {} \
             appends in the segment, the last at {}) was dropped as a torn write",
            chosen.offset,
            appends.len(),
            last_append.offset
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_records_damaged_on_the_medium_stop_recovery_even_at_the_end() {
    for seed in 0..seeds() {
        damage_after_sync(seed).await;
    }
}

/// Seeds 0 to N-1 for the randomised tests: `EVENIRE_POWER_LOSS_SEEDS`, else 30.
fn seeds() -> u64 {
    std::env::var("EVENIRE_POWER_LOSS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn stream() -> StreamId {
    StreamId {
        key: Uuid::new_v4(),
        stream_type: Arc::from("sim"),
    }
}

#[tokio::test]
async fn a_full_disk_fails_appends_cleanly_and_they_work_again_with_room() {
    let fs = SimFs::new();
    let mut rng = Rng(7);
    let store = Store::open(config(&fs, &mut rng)).expect("open");
    let order = stream();
    let first = events(&mut rng);
    store
        .append(order.clone(), ExpectedVersion::NoStream, first.clone())
        .await
        .expect("append");
    fs.set_space_left(Some(10));
    let refused = events(&mut rng);
    let full = store
        .append(order.clone(), ExpectedVersion::Any, refused.clone())
        .await;
    assert!(matches!(full, Err(StoreError::Io { .. })), "{full:?}");
    let log = read_log(&store).await;
    assert_eq!(log.len(), first.len(), "nothing half-written is visible");
    fs.set_space_left(None);
    // Other events take the positions and versions the refused append was given...
    let other: Vec<EventData> = refused
        .iter()
        .map(|e| EventData {
            id: Uuid::new_v4(),
            ..e.clone()
        })
        .collect();
    let count = other.len();
    store
        .append(
            order.clone(),
            ExpectedVersion::Exact(log.len() as u64 - 1),
            other,
        )
        .await
        .expect("appends work again once there is room");
    // ...then the client retries the refused one. Its ids were never committed: this
    // is a first write, not a retry of the events now where it would have gone.
    let later = store
        .append(order.clone(), ExpectedVersion::Any, refused.clone())
        .await
        .expect("the refused append, retried");
    assert_eq!(later.version as usize, log.len() + 2 * count - 1);
    let ids: Vec<_> = read_log(&store).await[log.len() + count..]
        .iter()
        .map(|e| e.id)
        .collect();
    let expected: Vec<_> = refused.iter().map(|e| e.id).collect();
    assert_eq!(ids, expected, "the retried events are in the log");
    store.shutdown().await;
    drop(store);
    fs.power_loss(|_| 0);
    let store = Store::open(config(&fs, &mut rng)).expect("recovery after a full disk");
    assert_eq!(read_log(&store).await.len() as u64, later.position + 1);
}

#[tokio::test]
async fn a_failed_fsync_refuses_writes_until_restart_and_loses_nothing_acknowledged() {
    let fs = SimFs::new();
    let mut rng = Rng(11);
    let store = Store::open(config(&fs, &mut rng)).expect("open");
    let order = stream();
    let acked = store
        .append(order.clone(), ExpectedVersion::NoStream, events(&mut rng))
        .await
        .expect("append");
    fs.fail_next_sync();
    let failed = store
        .append(order.clone(), ExpectedVersion::Any, events(&mut rng))
        .await;
    assert!(
        matches!(failed, Err(StoreError::WritesRefused(_))),
        "{failed:?}"
    );
    let after = store
        .append(order.clone(), ExpectedVersion::Any, events(&mut rng))
        .await;
    assert!(
        matches!(after, Err(StoreError::WritesRefused(_))),
        "refuses until restart"
    );
    store.shutdown().await;
    drop(store);
    fs.power_loss(|_| 0);
    let store = Store::open(config(&fs, &mut rng)).expect("recovery");
    let log = read_log(&store).await;
    assert_eq!(log.last().map(|e| e.position), Some(acked.position));
    store
        .append(
            order,
            ExpectedVersion::Exact(acked.version),
            events(&mut rng),
        )
        .await
        .expect("writes work after the restart");
}

/// A write that fails and whose rollback fails too: the refusal that follows said "a
/// failed fsync", which had not happened. It names the write and the rollback.
#[tokio::test]
async fn a_failed_write_whose_rollback_fails_refuses_writes_naming_both() {
    let fs = SimFs::new();
    let mut rng = Rng(11);
    let store = Store::open(config(&fs, &mut rng)).expect("open");
    let order = stream();
    store
        .append(order.clone(), ExpectedVersion::NoStream, events(&mut rng))
        .await
        .expect("append");
    fs.set_space_left(Some(0));
    fs.fail_next_truncate();
    let failed = store
        .append(order.clone(), ExpectedVersion::Any, events(&mut rng))
        .await;
    let Err(StoreError::WritesRefused(reason)) = failed else {
        panic!("{failed:?}");
    };
    assert!(reason.contains("a write to the log failed"), "{reason}");
    assert!(reason.contains("cutting it off again"), "{reason}");
    fs.set_space_left(None);
    let after = store
        .append(order, ExpectedVersion::Any, events(&mut rng))
        .await;
    let message = after.expect_err("refuses until restart").to_string();
    assert!(
        message.contains("refuses writes until the server restarts"),
        "{message}"
    );
    assert!(!message.contains("fsync"), "{message}");
    store.shutdown().await;
}

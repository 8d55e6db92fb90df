//! A scavenge cut by a power loss at each of its steps in turn: the simulated machine
//! freezes after the scavenge's n-th file operation (read, write, sync, rename,
//! directory sync), the power goes (unsynced bytes lost, kept, or kept in scattered
//! sectors), and the recovered store must read exactly as it did before the scavenge
//! began: every stream's events and info the same, and `$all` an ordered part of what
//! it was (reclaimed positions absent, nothing duplicated, nothing an earlier, finished
//! scavenge removed back). Then a scavenge run to its end on the recovered store frees
//! the rest and changes no read either.

mod common;

use evenire_server::store::record::Entry;
use evenire_server::store::segment;
use evenire_server::store::sim_fs::SimFs;
use evenire_server::store::{
    DeleteMode, Direction, EventData, ExpectedVersion, FsyncPolicy, ReadFrom, ScavengeOptions,
    ScavengeProgress, Store, StoreConfig, StoreError, StreamId, StreamRules,
};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

fn config(fs: &SimFs) -> StoreConfig {
    StoreConfig {
        data_dir: PathBuf::from("/sim/evenire-data"),
        cache_bytes: 0,
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

fn stream(stream_type: &str, n: u128) -> StreamId {
    StreamId {
        key: Uuid::from_u128(n + 1),
        stream_type: Arc::from(stream_type),
    }
}

fn events(label: &str, count: usize) -> Vec<EventData> {
    (0..count)
        .map(|i| EventData {
            id: Uuid::new_v4(),
            event_type: Arc::from("Simulated"),
            data: format!("{label} {i} ").repeat(8).into_bytes().into(),
            metadata: Default::default(),
        })
        .collect()
}

/// What reads show: `$all`, and each stream's events and info (its creation time
/// aside, which after a restart is that of its oldest kept event).
#[derive(Debug, PartialEq)]
struct Seen {
    all: Vec<(u64, Uuid)>,
    streams: Vec<String>,
}

async fn seen(store: &Store, streams: &[StreamId]) -> Seen {
    let all = common::drain(store.read_all(ReadFrom::Start, Direction::Forward, None))
        .await
        .iter()
        .map(|e| (e.position, e.id))
        .collect();
    let mut described = Vec::new();
    for id in streams {
        let events = match store.read(id.clone(), ReadFrom::Start, Direction::Forward, None) {
            Ok(read) => format!(
                "{:?}",
                common::drain(read)
                    .await
                    .iter()
                    .map(|e| (e.version, e.position, e.id))
                    .collect::<Vec<_>>()
            ),
            Err(refused) => refused.to_string(),
        };
        let info = store.stream_info(id).expect("info").map(|i| {
            (
                i.version,
                i.event_count,
                i.first_position,
                i.last_position,
                format!("{:?}", i.state),
                i.rules,
            )
        });
        described.push(format!("{id}: {events:?} {info:?}"));
    }
    Seen {
        all,
        streams: described,
    }
}

/// Fills a store with what a scavenge has work on: orders appended in turns so each
/// spans segments, half of them deleted (softly, for good, and softly then written
/// again), a sensor that keeps its newest few, an audit log cut before a version, and
/// a stream with two snapshots (one kept). Each round has orders of its own and
/// writes on to the same sensor and audit log.
async fn fill(store: &Store, round: usize) -> Vec<StreamId> {
    let orders: Vec<StreamId> = (0..6)
        .map(|n| stream("order", n + 10 * round as u128))
        .collect();
    for turn in 0..3 {
        for (i, order) in orders.iter().enumerate() {
            let label = format!("r{round} order {i} turn {turn}");
            store
                .append(order.clone(), ExpectedVersion::Any, events(&label, 2))
                .await
                .expect("append");
        }
    }
    for (i, order) in orders.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let mode = match i {
            2 => DeleteMode::Tombstone,
            _ => DeleteMode::Soft,
        };
        match store
            .delete_stream(order.clone(), ExpectedVersion::Any, mode)
            .await
        {
            Ok(_) | Err(StoreError::StreamTombstoned(_)) => {}
            Err(e) => panic!("delete: {e}"),
        }
    }
    store
        .append(
            orders[4].clone(),
            ExpectedVersion::Any,
            events(&format!("r{round} order 4 again"), 2),
        )
        .await
        .expect("append after a soft delete");
    let sensor = stream("sensor", 0);
    store
        .append(
            sensor.clone(),
            ExpectedVersion::Any,
            events(&format!("r{round} sensor"), 12),
        )
        .await
        .expect("append");
    let newest = StreamRules {
        max_count: Some(3),
        truncate_before: None,
        max_age_seconds: None,
    };
    store
        .set_stream_rules(sensor.clone(), newest, None)
        .await
        .expect("rules");
    let audit = stream("audit", 0);
    let before = store
        .stream_info(&audit)
        .expect("info")
        .map_or(0, |i| i.version + 1);
    for i in 0..6 {
        store
            .append(
                audit.clone(),
                ExpectedVersion::Any,
                events(&format!("r{round} audit {i}"), 1),
            )
            .await
            .expect("append");
    }
    let cut = StreamRules {
        max_count: None,
        truncate_before: Some(before + 4),
        max_age_seconds: None,
    };
    store
        .set_stream_rules(audit.clone(), cut, None)
        .await
        .expect("rules");
    let account = &orders[1];
    let version = store
        .stream_info(account)
        .expect("info")
        .expect("written")
        .version;
    for v in [version - 1, version] {
        store
            .save_snapshot(account.clone(), v, Arc::from("State"), v.to_string().into())
            .await
            .expect("snapshot");
    }
    let mut all = orders;
    all.extend([sensor, audit]);
    all
}

/// Runs a scavenge to its end: its last report, or the error that stopped it.
async fn scavenge(store: &Store) -> Result<ScavengeProgress, StoreError> {
    let options = ScavengeOptions {
        dry_run: false,
        bytes_per_second: None,
    };
    let mut reports = store.scavenge(options)?;
    let mut last = None;
    while let Some(report) = reports.recv().await {
        last = Some(report?);
    }
    last.filter(|r| r.done).ok_or(StoreError::ShuttingDown)
}

/// Every file of the simulated disk and the records in it, for a failure's message.
fn disk(fs: &SimFs) -> String {
    let mut out = String::new();
    for path in fs.paths() {
        let bytes = fs.contents(&path).unwrap_or_default();
        out += &format!("{} ({} bytes)\n", path.display(), bytes.len());
        for record in segment::records(&bytes) {
            let entry = match &record.entry {
                Entry::Append(a) => format!(
                    "append {} positions {}..={} from version {}",
                    a.stream,
                    a.first_position,
                    a.last_position(),
                    a.first_version
                ),
                other => format!("{other:?}").chars().take(120).collect(),
            };
            out += &format!("  @{} {entry}\n", record.offset);
        }
    }
    out
}

/// `after` holds what `before` holds, in its order, less what was reclaimed.
fn is_ordered_part(after: &[(u64, Uuid)], before: &[(u64, Uuid)]) -> bool {
    let mut from = before.iter();
    after.iter().all(|event| from.any(|b| b == event))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scavenge_cut_by_power_loss_at_any_step_leaves_reads_as_they_were() {
    let mut crash_points = 0;
    let mut finished = false;
    for step in 0..5_000u64 {
        let fs = SimFs::new();
        let store = Store::open(config(&fs)).expect("open");
        let mut streams = fill(&store, 0).await;
        // A first scavenge finishes: what it removed must never come back.
        scavenge(&store).await.expect("a first scavenge");
        streams.extend(fill(&store, 1).await);
        let before = seen(&store, &streams).await;

        fs.freeze_after(step);
        let outcome = scavenge(&store).await;
        let cut = fs.is_frozen();
        if !cut {
            let done = outcome.expect("a scavenge the power did not cut");
            assert!(done.events_reclaimed > 0, "the second scavenge had work");
            finished = true;
        }
        fs.freeze();
        store.shutdown().await;
        drop(store);
        match step % 3 {
            0 => fs.power_loss(|_| 0),
            1 => fs.power_loss(|unsynced| unsynced),
            _ => {
                let mut coin = step;
                fs.power_loss_scattered(|| {
                    coin = coin.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    coin >> 63 == 1
                })
            }
        }

        let store = Store::open(config(&fs)).unwrap_or_else(|e| {
            panic!(
                "step {step}: recovery after a cut scavenge: {e}\n{}",
                disk(&fs)
            )
        });
        let after = seen(&store, &streams).await;
        assert_eq!(after.streams, before.streams, "step {step}: stream reads");
        assert!(
            is_ordered_part(&after.all, &before.all),
            "step {step}: $all is not an ordered part of what it was:\n{:?}\n{:?}",
            after.all,
            before.all
        );
        // The store goes on: a scavenge to the end changes no stream read either.
        scavenge(&store).await.expect("a scavenge after recovery");
        let again = seen(&store, &streams).await;
        assert_eq!(again.streams, before.streams, "step {step}: after a rerun");
        assert!(
            is_ordered_part(&again.all, &after.all),
            "step {step}: rerun"
        );
        store.shutdown().await;
        crash_points += 1;
        if finished {
            break;
        }
    }
    assert!(finished, "the scavenge finished within the steps tried");
    eprintln!("a scavenge cut at each of {crash_points} steps read as before");
}

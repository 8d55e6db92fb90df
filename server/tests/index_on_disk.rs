//! The index on disk against the real binary, with small segments so that many are
//! sealed and their event ids go to disk: a retry of an append made segments ago gets
//! its original result, and reusing one of its ids elsewhere is refused, after a
//! clean stop, after a kill -9, with the index removed or damaged, and with an index
//! from a later state of the log than the log now holds (which must not be trusted:
//! ids only that later log held are new to this one), and with the index as a power
//! loss may leave it behind the log.

use evenire_client::{AppendResult, Client, Error, EventData, ExpectedVersion, StreamId};
use evenire_testkit::process::ServerProcess;
use std::path::{Path, PathBuf};
use uuid::Uuid;

mod common;

const ARGS: &[&str] = &[
    "--index-on-disk",
    "--segment-size",
    "64KiB",
    "--metrics-listen",
    "127.0.0.1:0",
];

/// One append made, and what it was answered.
struct Made {
    stream: StreamId,
    events: Vec<EventData>,
    result: AppendResult,
}

/// `count` appends of 3 events of 100 bytes, each the first of a new stream.
async fn append_many(uri: &str, count: usize) -> Vec<Made> {
    let client = Client::connect(uri.to_string()).await.expect("connect");
    let mut made = Vec::new();
    for _ in 0..count {
        let stream = StreamId::new(Uuid::new_v4(), "order");
        let events: Vec<EventData> = (0..3)
            .map(|_| EventData::new("Placed", vec![b'x'; 100]).with_id(Uuid::new_v4()))
            .collect();
        let result = client
            .append(&stream, ExpectedVersion::NoStream, events.clone())
            .await
            .expect("append");
        made.push(Made {
            stream,
            events,
            result,
        });
    }
    made
}

/// Every append of `made` sent again gets its original result, and an id of each
/// sent in a new stream is refused as a conflict.
async fn retries_hold(uri: &str, made: &[Made]) {
    let client = Client::connect(uri.to_string()).await.expect("connect");
    for m in made {
        let again = client
            .append(&m.stream, ExpectedVersion::NoStream, m.events.clone())
            .await
            .unwrap_or_else(|e| panic!("a retry of an append at {}: {e}", m.result.position));
        assert_eq!(
            (again.version, again.position),
            (m.result.version, m.result.position)
        );
    }
    for m in made.iter().step_by(25) {
        let elsewhere = StreamId::new(Uuid::new_v4(), "order");
        let reused = client
            .append(&elsewhere, ExpectedVersion::Any, [m.events[1].clone()])
            .await;
        assert!(
            matches!(reused, Err(Error::EventIdConflict(_))),
            "{reused:?}"
        );
    }
}

/// The event ids the server holds in memory, from its metrics.
async fn ids_in_memory(server: &ServerProcess) -> f64 {
    let metrics = common::logged_field(server, "metrics_listen").await;
    common::scrape(&metrics)
        .await
        .get("evenire_index_entries{kind=\"event_ids_in_memory\"}")
}

fn index_dir(data: &Path) -> PathBuf {
    data.join("index")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("make dir");
    for entry in std::fs::read_dir(from).expect("list").flatten() {
        let target = to.join(entry.file_name());
        match entry.path().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
}

#[tokio::test]
async fn retries_are_known_from_the_index_on_disk_across_restarts_and_rebuilds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = common::start(&data, ARGS);
    // About 0.7 MiB of log: some 10 segments of 64 KiB.
    let made = append_many(&server.uri(), 1_500).await;
    let events = (made.len() * 3) as f64;
    retries_hold(&server.uri(), &made).await;
    common::terminate(&server);
    assert!(common::wait(&mut server).success());
    assert!(
        index_dir(&data).join("id-filter").exists(),
        "a clean stop saves the filter"
    );

    // After a clean stop, the ids of every sealed segment are on disk only, behind the
    // filter as it was saved: retries of them are known.
    let server = common::start(&data, ARGS);
    let in_memory = ids_in_memory(&server).await;
    assert!(
        in_memory < events / 4.0,
        "{in_memory} of {events} ids in memory after a clean stop"
    );
    retries_hold(&server.uri(), &made).await;
    // Ids of appends made since: some go to disk as their segments seal.
    let later = append_many(&server.uri(), 300).await;
    server.kill();

    let server = common::start(&data, ARGS);
    retries_hold(&server.uri(), &made).await;
    retries_hold(&server.uri(), &later).await;
    server.kill();

    // Removed: rebuilt from the log.
    std::fs::remove_dir_all(index_dir(&data)).expect("remove the index");
    let server = common::start(&data, ARGS);
    retries_hold(&server.uri(), &made).await;
    server.kill();

    // Damaged beyond opening: rebuilt from the log.
    for file in evenire_testkit::files::files_under(&index_dir(&data)) {
        std::fs::write(&file, b"not an index").expect("damage");
    }
    let server = common::start(&data, ARGS);
    retries_hold(&server.uri(), &made).await;
    retries_hold(&server.uri(), &later).await;
    server.kill();
}

#[tokio::test]
async fn an_index_ahead_of_the_log_is_not_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let earlier = dir.path().join("earlier");
    let mut server = common::start(&data, ARGS);
    let made = append_many(&server.uri(), 1_000).await;
    common::terminate(&server);
    assert!(common::wait(&mut server).success());
    // The log as it was then, as a backup would give it back.
    copy_dir(&data, &earlier);

    let mut server = common::start(&data, ARGS);
    let later = append_many(&server.uri(), 2_000).await;
    common::terminate(&server);
    assert!(common::wait(&mut server).success());

    // The earlier log with the later index beside it.
    std::fs::remove_dir_all(index_dir(&earlier)).expect("remove");
    copy_dir(&index_dir(&data), &index_dir(&earlier));
    let server = common::start(&earlier, ARGS);
    retries_hold(&server.uri(), &made).await;
    // The later appends are new to this log: each goes in as it is. One event first,
    // so that the places the later log gave their ids hold other events here: an index
    // trusted over the log would take them for ids reused, and refuse them.
    let client = Client::connect(server.uri()).await.expect("connect");
    client
        .append(
            &StreamId::new(Uuid::new_v4(), "order"),
            ExpectedVersion::NoStream,
            [EventData::new("Placed", "{}")],
        )
        .await
        .expect("append");
    let first_new = made.len() as u64 * 3 + 1;
    for (i, m) in later.iter().take(200).enumerate() {
        let written = client
            .append(&m.stream, ExpectedVersion::NoStream, m.events.clone())
            .await
            .expect("an append whose ids only a later log held");
        assert_eq!(written.position, first_new + i as u64 * 3 + 2);
    }
    server.kill();
}

/// Copies the directory `from` to `to` while a server writes it: each file as far as it
/// was written when the copy reached it, and a file made or removed meanwhile maybe
/// missing. False when `from` is not there yet.
fn copy_while_written(from: &Path, to: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(from) else {
        return false;
    };
    std::fs::create_dir_all(to).expect("make dir");
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        match entry.path().is_dir() {
            true => {
                copy_while_written(&entry.path(), &target);
            }
            // Gone since it was listed: left out, as a power loss may leave out a file
            // whose directory entry was not synced.
            false => {
                let _ = std::fs::copy(entry.path(), &target);
            }
        }
    }
    true
}

/// The power-loss side of the index on disk. A power loss keeps every acknowledged
/// append of the log (synced before its answer) and of the index only what was synced,
/// which may be any moment of its writing behind the log: here, copies of the index
/// taken at moments while appends go on and the ingester writes it (files torn where
/// the copy caught them mid-write, some missing), each put beside the log as a kill -9
/// at the end left it. Each start must serve exactly what was acknowledged (every retry
/// gets its original answer, no reused id goes in), and after it `verify` must find an
/// index agreeing with the log: trusted because it matched, or rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_left_at_any_moment_of_its_writing_is_trusted_only_where_it_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = common::start(&data, ARGS);
    let copying = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let copier = {
        let (copying, index, root) = (copying.clone(), index_dir(&data), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let mut copies = Vec::new();
            while copying.load(std::sync::atomic::Ordering::Acquire) {
                let copy = root.join(format!("index-copy-{}", copies.len()));
                if copy_while_written(&index, &copy) {
                    copies.push(copy);
                }
                std::thread::sleep(std::time::Duration::from_millis(150));
            }
            copies
        })
    };
    let made = append_many(&server.uri(), 1_000).await;
    copying.store(false, std::sync::atomic::Ordering::Release);
    let copies = copier.join().expect("the copier");
    server.kill();
    assert!(copies.len() >= 3, "{} copies", copies.len());

    // At most four, spread over the run.
    let step = copies.len().div_ceil(4);
    for (n, copy) in copies.iter().step_by(step).enumerate() {
        let trial = dir.path().join(format!("trial-{n}"));
        std::fs::create_dir_all(&trial).expect("make dir");
        for file in std::fs::read_dir(&data).expect("list").flatten() {
            if file.path().is_file() {
                std::fs::copy(file.path(), trial.join(file.file_name())).expect("copy the log");
            }
        }
        copy_dir(copy, &index_dir(&trial));
        // Every other one with the second half of what its newest file holds lost (zeros,
        // as in a journal made at its full length): the last writes before the power
        // went, not synced.
        if n % 2 == 1 {
            let newest = evenire_testkit::files::files_under(&index_dir(&trial))
                .into_iter()
                .max_by_key(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok());
            if let Some(newest) = newest {
                let mut bytes = std::fs::read(&newest).expect("read");
                let held = bytes
                    .iter()
                    .rposition(|b| *b != 0)
                    .map_or(0, |last| last + 1);
                bytes[held / 2..held].fill(0);
                std::fs::write(&newest, &bytes).expect("tear");
                println!("tore {newest:?}: bytes {}..{held} lost", held / 2);
            }
        }
        let before = common::offline(&trial, &["verify"]);
        let before = String::from_utf8_lossy(&before.stdout);
        let server = common::start(&trial, ARGS);
        retries_hold(&server.uri(), &made).await;
        server.kill();
        let verified = common::offline(&trial, &["verify"]);
        let report = String::from_utf8_lossy(&verified.stdout);
        assert!(
            report.contains("index on disk: agrees with the log")
                || report.contains("index on disk: covers no segment yet"),
            "the index copied at {copy:?}, after a start: {report}"
        );
        let line = |report: &str| {
            let found = report.lines().find(|l| l.starts_with("index on disk"));
            found.unwrap_or("no index line").to_string()
        };
        println!(
            "{copy:?}\n  before: {}\n  after: {}",
            line(&before),
            line(&report)
        );
    }
}

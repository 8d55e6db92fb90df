//! Online backup and restore against the real binary: a backup taken while appends run
//! restores to exactly the source's log up to the backup's position; a second backup
//! fetches only what is new; a restore to a position holds exactly the source's prefix;
//! a backup cut short by its client or by a kill -9 of the server never looks complete,
//! and the next run finishes it; snapshots go with the backup.

use evenire_client::backup::{MANIFEST, Manifest};
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, RecordedEvent, StreamId,
};
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_stream::StreamExt;

mod common;

/// Small segments, so that a backup spans many and a run of appends rotates.
const SEGMENT_SIZE: &str = "256KiB";

/// An event as both logs must hold it.
type Logged = (u64, uuid::Uuid, StreamId, u64, String, bytes::Bytes);

fn logged(event: RecordedEvent) -> Logged {
    (
        event.position,
        event.id,
        event.stream,
        event.version,
        event.event_type,
        event.data,
    )
}

async fn read_all(client: &Client) -> Vec<Logged> {
    let mut events = client
        .read_all(ReadAllFrom::Start, Direction::Forward, None)
        .await
        .expect("read $all");
    let mut all = Vec::new();
    while let Some(event) = events.next().await {
        all.push(logged(event.expect("an event")));
    }
    all
}

fn start(data: &Path) -> ServerProcess {
    ServerProcess::start(&common::binary(), data, &["--segment-size", SEGMENT_SIZE])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `count` appends of `batch` events of about 1 KiB, over 16 streams.
async fn fill(client: &Client, count: usize, batch: usize) {
    let streams: Vec<_> = (0..16)
        .map(|_| StreamId::new(uuid::Uuid::new_v4(), "order"))
        .collect();
    for i in 0..count {
        let events =
            (0..batch).map(|j| EventData::new("Placed", format!("{i}-{j}-{}", "x".repeat(1000))));
        client
            .append(&streams[i % streams.len()], ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
}

/// Runs `evenire-server restore`, returning what it printed.
fn restore(from: &Path, to: &Path, to_position: Option<u64>) -> String {
    let mut args = vec![
        "--data-dir".to_string(),
        to.display().to_string(),
        "restore".to_string(),
        "--from".to_string(),
        from.display().to_string(),
    ];
    if let Some(position) = to_position {
        args.extend(["--to-position".to_string(), position.to_string()]);
    }
    let output = std::process::Command::new(common::binary())
        .args(&args)
        .output()
        .expect("run restore");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "restore failed: {printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// What a server started on `data` serves of `$all`.
async fn served(data: &Path) -> Vec<Logged> {
    let server = start(data);
    let client = Client::connect(server.uri()).await.expect("connect");
    read_all(&client).await
}

#[tokio::test]
async fn a_backup_under_appends_restores_to_the_source_up_to_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("source"));
    let client = Client::connect(server.uri()).await.expect("connect");
    fill(&client, 200, 5).await;
    let deleted = StreamId::new(uuid::Uuid::new_v4(), "order");
    client
        .append(
            &deleted,
            ExpectedVersion::Any,
            [EventData::new("Placed", "{}")],
        )
        .await
        .expect("append");
    client
        .delete_stream(&deleted, ExpectedVersion::Any, false)
        .await
        .expect("delete");
    // A snapshot travels with the backup.
    let snapshotted = StreamId::new(uuid::Uuid::new_v4(), "account");
    client
        .append(
            &snapshotted,
            ExpectedVersion::Any,
            (0..3).map(|i| EventData::new("Moved", i.to_string())),
        )
        .await
        .expect("append");
    client
        .save_snapshot(&snapshotted, 1, "Balance", "{\"balance\": 1}")
        .await
        .expect("save a snapshot");

    // Appends go on while the backup runs: single events and batches, over new streams.
    let stop = Arc::new(AtomicBool::new(false));
    let appender = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move {
            let stream = StreamId::new(uuid::Uuid::new_v4(), "sensor");
            let mut appended = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch = 1 + appended % 3;
                let events = (0..batch).map(|_| EventData::new("Read", "x".repeat(500)));
                client
                    .append(&stream, ExpectedVersion::Any, events)
                    .await
                    .expect("append during the backup");
                appended += 1;
            }
            appended
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let backup = dir.path().join("backup");
    let first = client.backup_to(&backup).await.expect("backup");
    stop.store(true, Ordering::Relaxed);
    let appended = appender.await.expect("appender");
    assert!(appended > 0, "appends ran beside the backup");
    assert_eq!(
        first.fetched, first.bytes,
        "a first backup fetches everything"
    );
    assert!(first.files > 3, "{first:?}");
    let manifest = Manifest::read(&backup).expect("read").expect("a manifest");
    assert_eq!(manifest.position, first.position);
    assert!(manifest.server_version.contains("(commit "), "{manifest:?}");

    // The backup is a data directory: a server started on a copy of it serves it.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in &manifest.files {
        std::fs::copy(backup.join(&file.name), copy.join(&file.name)).expect("copy");
    }
    let copied = served(&copy).await;
    assert_eq!(copied.last().map(|e| e.0 + 1), Some(first.position));

    let source = read_all(&client).await;
    assert!(
        source.len() as u64 > first.position,
        "appends after the backup"
    );
    let restored = dir.path().join("restored");
    restore(&backup, &restored, None);
    let expected: Vec<_> = source
        .iter()
        .filter(|event| event.0 < first.position)
        .cloned()
        .collect();
    assert_eq!(served(&restored).await, expected);
    {
        let server = start(&restored);
        let client = Client::connect(server.uri()).await.expect("connect");
        let read = client
            .read_from_snapshot(&snapshotted)
            .await
            .expect("read the restored snapshot");
        assert_eq!(
            read.snapshot.map(|s| (s.version, s.data)),
            Some((1, "{\"balance\": 1}".into()))
        );
        assert_eq!(read.events.len(), 1);
    }

    // The second backup fetches only what was appended since, and matches the source.
    let second = client.backup_to(&backup).await.expect("second backup");
    assert_eq!(second.position, source.len() as u64);
    assert!(
        second.fetched < second.bytes / 2,
        "an incremental backup fetched {} of {} bytes",
        second.fetched,
        second.bytes
    );
    let again = dir.path().join("restored-again");
    restore(&backup, &again, None);
    assert_eq!(served(&again).await, source);

    // A restore to a random position holds exactly the source's events below it, and
    // never half of an append (the fill's appends hold 5 events).
    for round in 0..3 {
        let position = uuid::Uuid::new_v4().as_u128() as u64 % (first.position + 1);
        let cut = dir.path().join(format!("cut-{round}"));
        let printed = restore(&backup, &cut, Some(position));
        let reached: u64 = printed
            .split("positions below ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no position in {printed}"));
        assert!(
            reached <= position && reached + 5 > position,
            "to position {position}: {printed}"
        );
        let below: Vec<_> = source.iter().filter(|e| e.0 < reached).cloned().collect();
        assert_eq!(served(&cut).await, below, "to position {position}");
        assert_eq!(
            reached < position,
            printed.contains("left out whole"),
            "{printed}"
        );
    }
}

#[tokio::test]
async fn an_interrupted_backup_never_looks_complete_and_the_next_run_finishes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("source");
    let server = start(&data);
    let client = Client::connect(server.uri()).await.expect("connect");
    fill(&client, 100, 100).await;
    let backup = dir.path().join("backup");
    client.backup_to(&backup).await.expect("a first backup");
    fill(&client, 40, 100).await;

    // The client goes away in the middle: its task is dropped once part is written.
    let bytes_in = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = bytes_in(&backup);
    let interrupted = tokio::spawn({
        let (client, backup) = (client.clone(), backup.clone());
        async move { client.backup_to(&backup).await }
    });
    while bytes_in(&backup) <= before && !interrupted.is_finished() {
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    interrupted.abort();
    let finished = interrupted.await.is_ok();
    assert_eq!(
        backup.join(MANIFEST).exists(),
        finished,
        "a manifest exactly when the backup finished"
    );

    // The server is killed in the middle of the next one.
    let mut resumed = Box::pin(client.backup_to(&backup));
    let outcome = tokio::select! {
        outcome = &mut resumed => Some(outcome),
        () = tokio::time::sleep(std::time::Duration::from_millis(5)) => None,
    };
    server.kill();
    match outcome {
        Some(done) => {
            done.expect("a backup that finished before the kill");
        }
        None => {
            assert!(resumed.await.is_err(), "a backup whose server died fails");
            assert!(
                !backup.join(MANIFEST).exists(),
                "and does not look complete"
            );
        }
    }

    let server = start(&data);
    let client = Client::connect(server.uri()).await.expect("connect");
    let report = client.backup_to(&backup).await.expect("the resumed backup");
    assert!(report.fetched < report.bytes, "{report:?}");
    let source = read_all(&client).await;
    assert_eq!(report.position, source.len() as u64);
    let restored = dir.path().join("restored");
    restore(&backup, &restored, None);
    assert_eq!(served(&restored).await, source);
}

#[test]
fn a_restore_refuses_an_unfinished_backup_a_damaged_file_and_a_used_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |from: &Path, to: &Path| {
        std::process::Command::new(common::binary())
            .arg("--data-dir")
            .arg(to)
            .args(["restore", "--from"])
            .arg(from)
            .output()
            .expect("run restore")
    };
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&backup).expect("mkdir");
    let output = run(&backup, &dir.path().join("a"));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("did not finish"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A real backup, then damage to one of its files.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = start(&dir.path().join("source"));
        let client = Client::connect(server.uri()).await.expect("connect");
        fill(&client, 20, 10).await;
        client.backup_to(&backup).await.expect("backup");
    });
    let used = dir.path().join("used");
    std::fs::create_dir_all(&used).expect("mkdir");
    std::fs::write(used.join("something"), b"x").expect("write");
    let output = run(&backup, &used);
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not empty"));

    let segment = backup.join("segment-00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).expect("write");
    let output = run(&backup, &dir.path().join("b"));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the backup is damaged"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn only_an_admin_of_every_stream_type_may_take_a_backup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens =
        evenire_testkit::tls::token_file(dir.path(), &[("root", "admin"), ("app", "write")]);
    // A third token: an admin of `order` streams only.
    let digest: String = ring::digest::digest(&ring::digest::SHA256, b"orders")
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut text = std::fs::read_to_string(&tokens).expect("read");
    text.push_str(&format!(
        "[[token]]\nname = \"orders\"\nsha256 = \"{digest}\"\nrole = \"admin\"\nstream_types = [\"order\"]\n"
    ));
    std::fs::write(&tokens, text).expect("write");
    let server = ServerProcess::start(
        &common::binary(),
        &dir.path().join("data"),
        &["--auth-tokens", tokens.to_str().expect("UTF-8")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let as_caller = |token: &str| {
        Client::builder(server.uri())
            .token(token.to_string())
            .connect()
    };
    let backup = dir.path().join("backup");
    let admin = as_caller("root").await.expect("connect");
    admin.backup_to(&backup).await.expect("an admin's backup");
    let writer = as_caller("app").await.expect("connect");
    let refused = writer.backup_to(&backup).await.expect_err("write role");
    assert!(refused.to_string().contains("`admin` role"), "{refused}");
    let scoped = as_caller("orders").await.expect("connect");
    let refused = scoped.backup_to(&backup).await.expect_err("a scoped admin");
    assert!(
        refused.to_string().contains("copies every stream"),
        "{refused}"
    );
    assert!(
        backup.join(MANIFEST).exists(),
        "a refused backup leaves the one before it complete"
    );
}

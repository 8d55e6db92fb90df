//! Restart on the same data directory: every acknowledged event comes back with its
//! version and position; a torn write after the last record is dropped; damage before
//! the tail, or to a last record a sync mark says was synced, stops the start with a
//! message naming the file and offset.

mod common;

use common::{TestServer, config, new_stream, numbered, numbers, read_all};
use evenire_client::{Direction, Error, ExpectedVersion, ReadFrom};
use evenire_server::RunError;
use evenire_server::config::ByteSize;
use evenire_server::store::StoreError;
use evenire_server::store::record::Entry;
use evenire_server::store::segment::records;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("list data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn everything_acknowledged_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), 0);
    settings.segment_size = ByteSize(2048);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let streams: Vec<_> = (0..4).map(|_| new_stream("order")).collect();
    let mut before = Vec::new();
    for round in 0..25 {
        for stream in &streams {
            client
                .append(stream, ExpectedVersion::Any, numbered(round * 3, 3))
                .await
                .expect("append");
        }
    }
    for stream in &streams {
        before.push(read_all(&client, stream, ReadFrom::Start, Direction::Forward, None).await);
    }
    server.stop().await.expect("clean stop");
    assert!(segments(dir.path()).len() > 3);

    let server = TestServer::start(settings).await;
    let client = server.client().await;
    for (stream, expected) in streams.iter().zip(&before) {
        let after = read_all(&client, stream, ReadFrom::Start, Direction::Forward, None).await;
        assert_eq!(
            &after, expected,
            "same events, versions, positions and times"
        );
    }
    let next = client
        .append(&streams[0], ExpectedVersion::Exact(74), numbered(75, 1))
        .await
        .expect("append after restart continues the stream");
    assert_eq!(next.version, 75);
    assert_eq!(next.position, 4 * 75, "positions continue without a gap");
}

/// The offset and length of the last append record in `segment`.
fn last_append(segment: &Path) -> (u64, u64) {
    let bytes = std::fs::read(segment).expect("read segment");
    records(&bytes)
        .into_iter()
        .filter(|r| matches!(r.entry, Entry::Append(_)))
        .map(|r| (r.offset, r.len))
        .next_back()
        .expect("an append record")
}

/// What a crash leaves after a clean stop's log: no marker saying it stopped cleanly.
fn as_after_a_crash(dir: &Path) {
    std::fs::remove_file(dir.join("clean-stop")).expect("a clean stop's marker");
}

#[tokio::test]
async fn a_torn_final_record_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = config(dir.path(), 0);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let stream = new_stream("sensor");
    client
        .append(&stream, ExpectedVersion::Any, numbered(0, 3))
        .await
        .expect("append");
    client
        .append(&stream, ExpectedVersion::Any, numbered(3, 3))
        .await
        .expect("append");
    server.stop().await.expect("clean stop");

    // A write that never finished after the last record, as a crash during it leaves:
    // a copy of the last append, cut short; and, as after a crash, no marker of a clean
    // stop (with it, this is damage).
    as_after_a_crash(dir.path());
    let last = segments(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&last).expect("read segment");
    let (offset, len) = last_append(&last);
    let torn = bytes[offset as usize..(offset + len - 7) as usize].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&last, &bytes).expect("write segment");

    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(
        numbers(&events),
        (0..6).collect::<Vec<_>>(),
        "the torn write is gone, the acknowledged appends stay"
    );
    let again = client
        .append(&stream, ExpectedVersion::Exact(5), numbered(6, 3))
        .await
        .expect("the stream continues where the log ends");
    assert_eq!(again.version, 8);
    server.stop().await.expect("clean stop");

    // The repair was durable: a second restart sees the same log.
    let server = TestServer::start(settings).await;
    let client = server.client().await;
    let events = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(numbers(&events), (0..9).collect::<Vec<_>>());
}

/// The last append of the log, synced and acknowledged, then damaged: once the writer
/// has been idle long enough to mark it synced, a crash does not make it pass for a
/// torn write. The start stops, naming the record, rather than dropping it.
#[tokio::test]
async fn a_damaged_last_record_that_was_synced_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = config(dir.path(), 0);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let stream = new_stream("ledger");
    for i in 0..3 {
        client
            .append(&stream, ExpectedVersion::Any, numbered(i, 1))
            .await
            .expect("append");
    }
    // Idle for longer than the writer waits before it marks what it synced.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await.expect("clean stop");

    as_after_a_crash(dir.path());
    let segment = segments(dir.path()).pop().expect("a segment");
    let (offset, len) = last_append(&segment);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    bytes[(offset + len - 3) as usize] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("write segment");

    let server = TestServer::spawn(settings).await;
    match server.outcome().await {
        Err(RunError::Store(StoreError::Corrupt {
            path,
            offset: at,
            reason,
        })) => {
            assert_eq!(path, segment);
            assert_eq!(at, offset, "names the damaged record's offset");
            assert!(reason.contains("sync mark"), "{reason}");
        }
        other => panic!("expected a refusal to start, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flipped_byte_before_the_tail_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = config(dir.path(), 0);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let stream = new_stream("audit");
    for i in 0..3 {
        client
            .append(&stream, ExpectedVersion::Any, numbered(i, 1))
            .await
            .expect("append");
    }
    server.stop().await.expect("clean stop");

    // Flip one byte inside the first record's payload (segment header 24 + frame
    // header 12 + a few bytes in).
    let segment = segments(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    bytes[24 + 12 + 20] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("write segment");

    let server = TestServer::spawn(settings).await;
    let outcome = server.outcome().await;
    match outcome {
        Err(RunError::Store(StoreError::Corrupt { path, offset, .. })) => {
            assert_eq!(path, segment);
            assert_eq!(offset, 24, "names the damaged record's offset");
        }
        other => panic!("expected a refusal to start, got {other:?}"),
    }
    let message = format!(
        "{}",
        RunError::Store(StoreError::Corrupt {
            path: segment.clone(),
            offset: 24,
            reason: "x".into()
        })
    );
    assert!(message.contains(&segment.display().to_string()) && message.contains("offset 24"));
}

#[tokio::test]
async fn a_record_damaged_while_serving_is_never_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(config(dir.path(), 0)).await;
    let client = server.client().await;
    let stream = new_stream("audit");
    client
        .append(&stream, ExpectedVersion::Any, numbered(0, 1))
        .await
        .expect("append");
    let segment = segments(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    // The record's last byte, its payload "0": zeros written ahead follow it.
    let last = bytes.iter().rposition(|b| *b != 0).expect("a record");
    bytes[last] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write segment");

    let mut read = client
        .read(&stream, ReadFrom::Start, Direction::Forward, None)
        .await
        .expect("read starts");
    let first = tokio_stream::StreamExt::next(&mut read).await;
    let Some(Err(Error::DataLoss(message))) = first else {
        panic!("{first:?}");
    };
    // The segment and offset, not the server's directories (the server logs those).
    let name = segment
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    assert!(message.contains(&format!("{name} at offset")), "{message}");
    let dir_text = dir.path().display().to_string();
    assert!(!message.contains(&dir_text), "{message}");
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = config(dir.path(), 0);
    let first = TestServer::start(settings.clone()).await;
    let second = TestServer::spawn(settings).await;
    let outcome = second.outcome().await;
    assert!(
        matches!(outcome, Err(RunError::Store(StoreError::Locked(_)))),
        "{outcome:?}"
    );
    first.stop().await.expect("clean stop");
}

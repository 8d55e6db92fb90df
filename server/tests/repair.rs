//! The offline `verify` and `repair` subcommands on a log with one damaged record in
//! the middle, against the real binary: the report says which events and streams a cut
//! would lose, and `repair --skip-damaged-record` loses only the damaged record's own
//! events, which read back as `$lost` at their positions and versions while the
//! stream goes on.

use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadAllFrom, StreamId};
use evenire_server::store::record::Entry;
use evenire_server::store::segment::records;
use std::path::{Path, PathBuf};
use tokio_stream::StreamExt;

mod common;
use common::{offline, start, terminate, wait};

/// Ten appends of two events, to three streams in turn (append `i` to stream `i % 3`),
/// then a clean stop. Positions 0 to 19.
fn ten_appends(dir: &Path) -> Vec<StreamId> {
    let streams: Vec<StreamId> = (0..3)
        .map(|_| StreamId::new(uuid::Uuid::new_v4(), "order"))
        .collect();
    let mut server = start(dir, &[]);
    let addr = server.addr.clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Client::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        for i in 0..10 {
            let events = (0..2).map(|j| EventData::new("Placed", format!("event {i}.{j} of ten")));
            client
                .append(&streams[i % 3], ExpectedVersion::Any, events)
                .await
                .expect("append");
        }
    });
    terminate(&server);
    assert!(wait(&mut server).success());
    streams
}

/// The segment, and the offset and length of append record `n`.
fn append_record(dir: &Path, n: usize) -> (PathBuf, u64, u64) {
    let segment = dir.join("segment-00000000000000000000.log");
    let bytes = std::fs::read(&segment).expect("read segment");
    let appends: Vec<_> = records(&bytes)
        .into_iter()
        .filter(|r| matches!(r.entry, Entry::Append(_)))
        .collect();
    (segment, appends[n].offset, appends[n].len)
}

fn flip(segment: &Path, at: u64) {
    let mut bytes = std::fs::read(segment).expect("read segment");
    bytes[at as usize] ^= 0x20;
    std::fs::write(segment, &bytes).expect("write segment");
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_cut_reports_what_it_loses_and_a_skip_loses_only_the_damaged_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let streams = ten_appends(dir.path());
    // Append 4 (stream 1, versions 2 and 3, positions 8 and 9): a byte of its last
    // event's data.
    let (segment, offset, len) = append_record(dir.path(), 4);
    flip(&segment, offset + len - 12);
    let damaged = std::fs::read(&segment).expect("read");

    let verify = offline(dir.path(), &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = stdout(&verify);
    assert!(report.contains(&format!("offset {offset}")), "{report}");
    assert!(
        report.contains("held 2 event(s), at positions 8..=9"),
        "{report}"
    );
    assert!(
        report.contains("5 intact record(s) after it, holding 10 event(s) of 3 stream(s)"),
        "{report}"
    );

    let dry_run = offline(
        dir.path(),
        &["repair", "--skip-damaged-record", "--dry-run"],
    );
    assert!(dry_run.status.success(), "{}", stdout(&dry_run));
    assert!(
        stdout(&dry_run).contains(&format!(
            "would replace the damaged record at offset {offset}"
        )) && stdout(&dry_run).contains("versions 2..=3, positions 8..=9"),
        "{}",
        stdout(&dry_run)
    );
    assert_eq!(
        std::fs::read(&segment).expect("read"),
        damaged,
        "a dry run changes nothing"
    );

    // An index on disk would say other ids of the replaced record: it goes.
    let index = dir.path().join("index");
    std::fs::create_dir(&index).expect("an index directory");
    let skip = offline(dir.path(), &["repair", "--skip-damaged-record"]);
    assert!(skip.status.success(), "{}", stdout(&skip));
    assert!(
        stdout(&skip).contains("the log is sound"),
        "{}",
        stdout(&skip)
    );
    assert!(!index.exists(), "the index on disk is removed");
    assert_eq!(
        std::fs::metadata(&segment).expect("stat").len(),
        damaged.len() as u64,
        "replaced in place, at its own length"
    );
    assert!(offline(dir.path(), &["verify"]).status.success());

    let server = start(dir.path(), &[]);
    let addr = server.addr.clone();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Client::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let mut all = client
            .read_all(ReadAllFrom::Start, Direction::Forward, None)
            .await
            .expect("read all");
        let mut position = 0;
        while let Some(event) = all.next().await {
            let event = event.expect("every event reads");
            assert_eq!(event.position, position);
            let append = (position / 2) as usize;
            assert_eq!(event.stream, streams[append % 3]);
            if append == 4 {
                assert_eq!(event.event_type, "$lost");
                assert!(event.data.is_empty());
            } else {
                assert_eq!(event.event_type, "Placed");
                let data = format!("event {append}.{} of ten", position % 2);
                assert_eq!(event.data.as_ref(), data.as_bytes());
            }
            position += 1;
        }
        assert_eq!(position, 20, "every position is there");
        // Stream 1 held versions 0 to 5; it goes on at 6.
        let next = client
            .append(
                &streams[1],
                ExpectedVersion::Exact(5),
                [EventData::new("Placed", "after the repair")],
            )
            .await
            .expect("the stream continues");
        assert_eq!((next.version, next.position), (6, 20));
    });
    server.kill();
}

#[test]
fn a_record_whose_length_is_damaged_is_not_skipped_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    ten_appends(dir.path());
    let (segment, offset, _) = append_record(dir.path(), 4);
    // The payload length: where the record ends can no longer be known.
    flip(&segment, offset + 1);
    let damaged = std::fs::read(&segment).expect("read");

    let skip = offline(dir.path(), &["repair", "--skip-damaged-record"]);
    assert_eq!(skip.status.code(), Some(1));
    assert!(
        stdout(&skip).contains("cannot skip the damaged record")
            && stdout(&skip).contains("length is damaged")
            && stdout(&skip).contains("nothing was changed"),
        "{}",
        stdout(&skip)
    );
    assert_eq!(std::fs::read(&segment).expect("read"), damaged);
    // Without the record's length, what a cut loses is still counted: the intact
    // records after it are found frame by frame.
    let report = stdout(&offline(dir.path(), &["verify"]));
    assert!(
        report.contains("5 intact record(s) after it, holding 10 event(s) of 3 stream(s)"),
        "{report}"
    );
}

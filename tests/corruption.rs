//! Damage anywhere in a segment (a flipped bit, a zeroed range, a truncation) is never
//! served as data: the server either refuses to start, naming the file and offset, or
//! starts and serves exactly the original events up to some point, that is, at most a
//! torn tail is dropped and nothing is ever changed.

mod common;

use common::{TestServer, config, new_stream, numbered};
use evenire_client::{ExpectedVersion, RecordedEvent};
use evenire_server::RunError;
use evenire_server::config::ByteSize;
use evenire_server::store::StoreError;
use std::path::{Path, PathBuf};

async fn read_log(server: &TestServer) -> Vec<RecordedEvent> {
    evenire_testkit::durability::read_log(&server.client().await).await
}

fn copy_dir(from: &Path, to: &Path) -> Vec<PathBuf> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(from).expect("list") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        std::fs::copy(&path, &target).expect("copy");
        if target.to_string_lossy().ends_with(".log") {
            segments.push(target);
        }
    }
    segments.sort();
    segments
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_is_detected_and_never_served() {
    // A pristine log over three segments.
    let pristine = tempfile::tempdir().expect("temp dir");
    let mut settings = config(pristine.path(), 0);
    settings.segment_size = ByteSize(1500);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    for i in 0..12 {
        client
            .append(
                &new_stream("audit"),
                ExpectedVersion::Any,
                numbered(i * 3, 3),
            )
            .await
            .expect("append");
    }
    let original = read_log(&server).await;
    server.stop().await.expect("clean stop");

    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut refused, mut served_prefix) = (0, 0);
    for case in 0..90 {
        let damaged = tempfile::tempdir().expect("temp dir");
        let segments = copy_dir(pristine.path(), damaged.path());
        let segment = &segments[next(segments.len() as u64) as usize];
        let mut bytes = std::fs::read(segment).expect("read");
        let at = next(bytes.len() as u64) as usize;
        match case % 3 {
            0 => bytes[at] ^= 1 << next(8),
            1 => {
                let end = (at + 1 + next(40) as usize).min(bytes.len());
                bytes[at..end].fill(0);
            }
            _ => bytes.truncate(at),
        }
        std::fs::write(segment, &bytes).expect("write");

        let mut settings = settings.clone();
        settings.data_dir = damaged.path().to_path_buf();
        let server = TestServer::spawn(settings).await;
        if server.wait_for_serving().await {
            let served = read_log(&server).await;
            assert!(served.len() <= original.len());
            assert_eq!(
                served[..],
                original[..served.len()],
                "case {case}: served a changed event"
            );
            served_prefix += 1;
            server.stop().await.expect("clean stop");
        } else {
            match server.outcome().await {
                Err(RunError::Store(StoreError::Corrupt { path, .. }))
                | Err(RunError::Store(StoreError::Inconsistent { path, .. })) => {
                    assert_eq!(&path, segment, "case {case}: names the damaged file");
                    refused += 1;
                }
                other => panic!("case {case}: expected a refusal naming the file, got {other:?}"),
            }
        }
    }
    println!(
        "90 damaged logs: {refused} refused to start, {served_prefix} served an intact prefix"
    );
    assert!(refused > 0 && served_prefix > 0);
}

/// A segment file that goes missing is refused by name, wherever it was: recovery does
/// not read what follows as if the lost events had been reclaimed. (After a scavenge,
/// positions may jump where events were reclaimed, so the positions alone would not
/// show the gap; the segments' numbers do.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_segment_is_refused_even_after_a_scavenge() {
    let pristine = tempfile::tempdir().expect("temp dir");
    let mut settings = config(pristine.path(), 0);
    settings.segment_size = ByteSize(1500);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let streams: Vec<_> = (0..40).map(|_| new_stream("audit")).collect();
    for (i, stream) in streams.iter().enumerate() {
        let events = numbered(i as u64 * 3, 3);
        client
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    // The first stream's events go, so that the first segment is rewritten.
    client
        .delete_stream(&streams[0], ExpectedVersion::Any, false)
        .await
        .expect("delete");
    let report = client.scavenge_to_end(false, None).await.expect("scavenge");
    assert!(report.segments_rewritten >= 1, "{report:?}");
    server.stop().await.expect("clean stop");

    for missing in [0, 2] {
        let damaged = tempfile::tempdir().expect("temp dir");
        let segments = copy_dir(pristine.path(), damaged.path());
        assert!(segments.len() >= 4, "{} segments", segments.len());
        std::fs::remove_file(&segments[missing]).expect("remove a segment");

        let mut settings = settings.clone();
        settings.data_dir = damaged.path().to_path_buf();
        let server = TestServer::spawn(settings).await;
        assert!(
            !server.wait_for_serving().await,
            "served a log without segment {missing}"
        );
        match server.outcome().await {
            Err(RunError::Store(StoreError::Inconsistent { path, reason, .. })) => {
                assert_eq!(
                    path,
                    segments[missing + 1],
                    "names the segment after the gap"
                );
                assert!(
                    reason.contains(&format!("segment {missing} is missing")),
                    "{reason}"
                );
            }
            other => panic!("expected a refusal naming the gap, got {other:?}"),
        }
    }
}

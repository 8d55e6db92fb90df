//! Scavenging: it frees exactly what deletes, tombstones and stream rules removed from
//! reads, what its dry run said it would; reads of streams return exactly what they did
//! before, now and after a restart; `$all` loses only reclaimed events and keeps every
//! position; streams go on from their versions; no byte of a deleted stream's events is
//! left in any file of the data directory.

mod common;

use common::{TestServer, config, new_stream, read_all};
use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, ReadFrom, RecordedEvent,
    ScavengeReport, StreamId, StreamInfo, StreamRules,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tokio_stream::StreamExt;

/// Events whose data carries `marker` and their number: what the erasure check looks for.
fn marked(marker: &str, first: u64, n: u64) -> Vec<EventData> {
    (first..first + n)
        .map(|i| EventData::new("Numbered", format!("{i:04}{marker}")))
        .collect()
}

fn number(event: &RecordedEvent) -> u64 {
    std::str::from_utf8(&event.data[..4])
        .expect("utf-8")
        .parse()
        .expect("a number")
}

async fn whole_log(client: &Client, direction: Direction) -> Vec<RecordedEvent> {
    let from = match direction {
        Direction::Forward => ReadAllFrom::Start,
        Direction::Backward => ReadAllFrom::End,
    };
    let mut all = client
        .read_all(from, direction, None)
        .await
        .expect("read $all");
    let mut events = Vec::new();
    while let Some(event) = all.next().await {
        events.push(event.expect("an event of $all"));
    }
    events
}

/// What reads of every stream return (or the error they end with), and what GetStream
/// says of it, but for when the stream was created (a restart after a scavenge dates it
/// by its oldest kept event).
async fn observed(client: &Client, streams: &[StreamId]) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    for stream in streams {
        let forward = read_positions(client, stream, ReadFrom::Start, Direction::Forward).await;
        let backward = read_positions(client, stream, ReadFrom::End, Direction::Backward).await;
        let info = client.get_stream(stream).await.expect("stream info");
        let StreamInfo {
            version,
            event_count,
            first_position,
            last_position,
            state,
            ..
        } = info;
        seen.push((
            forward,
            backward,
            format!("{version} {event_count} {first_position:?} {last_position:?} {state:?}"),
        ));
    }
    seen
}

/// The versions and positions a read returns, or how it fails.
async fn read_positions(
    client: &Client,
    stream: &StreamId,
    from: ReadFrom,
    direction: Direction,
) -> String {
    let mut events = match client.read(stream, from, direction, None).await {
        Ok(events) => events,
        Err(e) => return format!("{e}"),
    };
    let mut out = String::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(e) => out.push_str(&format!("{}@{} ", e.version, e.position)),
            Err(e) => return format!("{out} then {e}"),
        }
    }
    out
}

async fn scavenge(client: &Client, dry_run: bool) -> ScavengeReport {
    let report = client
        .scavenge_to_end(dry_run, None)
        .await
        .expect("scavenge");
    assert!(report.done && report.dry_run == dry_run, "{report:?}");
    report
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("data dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .map(|path| std::fs::metadata(path).expect("metadata").len())
        .sum()
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .map(|path| path.display().to_string())
        .collect()
}

#[tokio::test]
async fn a_scavenge_frees_what_reads_no_longer_return_and_nothing_else() {
    for cache_bytes in [0, 1 << 20] {
        scavenge_with_cache(cache_bytes).await;
    }
}

async fn scavenge_with_cache(cache_bytes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), cache_bytes);
    settings.segment_size = evenire_server::config::ByteSize(4 << 10);
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;

    // Orders, appended in turns so that each spans segments; half are deleted later.
    let orders: Vec<StreamId> = (0..12).map(|_| new_stream("order")).collect();
    for round in 0..4 {
        for (i, order) in orders.iter().enumerate() {
            let marker = if i % 2 == 0 { "ERASE-ME" } else { "order-kept" };
            client
                .append(order, ExpectedVersion::Any, marked(marker, round * 3, 3))
                .await
                .expect("append");
        }
    }
    // A sensor that keeps its newest 5; a log whose versions before 7 are cut.
    let sensor = new_stream("sensor");
    client
        .append(&sensor, ExpectedVersion::NoStream, marked("sensor", 0, 30))
        .await
        .expect("append");
    let newest_five = StreamRules {
        max_count: Some(5),
        truncate_before: None,
        max_age_seconds: None,
    };
    client
        .set_stream_rules(&sensor, newest_five, Some(0))
        .await
        .expect("rules");
    let audit = new_stream("audit");
    for i in 0..10 {
        client
            .append(&audit, ExpectedVersion::Any, marked("audit", i, 1))
            .await
            .expect("append");
    }
    let cut = StreamRules {
        max_count: None,
        truncate_before: Some(7),
        max_age_seconds: None,
    };
    client
        .set_stream_rules(&audit, cut, Some(0))
        .await
        .expect("rules");
    // Two snapshots of an order that stays: only the newer is kept.
    client
        .save_snapshot(&orders[1], 3, "State", "old")
        .await
        .expect("snapshot");
    client
        .save_snapshot(&orders[1], 6, "State", "new")
        .await
        .expect("snapshot");
    // Delete the even orders: soft, tombstone, soft and written again.
    for (i, order) in orders.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let tombstone = i % 4 == 2;
        client
            .delete_stream(order, ExpectedVersion::Any, tombstone)
            .await
            .expect("delete");
    }
    client
        .append(
            &orders[4],
            ExpectedVersion::NoStream,
            marked("reborn", 12, 2),
        )
        .await
        .expect("append after a soft delete");
    // Enough after it that the deleted events lie in sealed segments.
    let filler = new_stream("filler");
    for i in 0..40 {
        client
            .append(&filler, ExpectedVersion::Any, marked("filler", i, 1))
            .await
            .expect("append");
    }

    let mut streams = orders.clone();
    streams.extend([sensor.clone(), audit.clone(), filler.clone()]);
    let before = observed(&client, &streams).await;
    let log_before = whole_log(&client, Direction::Forward).await;
    let bytes_before = segment_bytes(dir.path());

    let dry = scavenge(&client, true).await;
    assert!(dry.bytes_freed > 0 && dry.events_reclaimed > 0, "{dry:?}");
    assert_eq!(
        segment_bytes(dir.path()),
        bytes_before,
        "a dry run changes nothing"
    );
    assert_eq!(whole_log(&client, Direction::Forward).await, log_before);

    let done = scavenge(&client, false).await;
    assert_eq!(done.segments_skipped, 0);
    assert_eq!(
        done.bytes_freed, dry.bytes_freed,
        "the dry run said what it frees"
    );
    assert_eq!(done.events_reclaimed, dry.events_reclaimed);
    assert_eq!(done.by_type, dry.by_type);
    let by_type: BTreeMap<_, _> = done
        .by_type
        .iter()
        .map(|t| (t.stream_type.as_str(), t.events))
        .collect();
    // Six deleted orders of 12 events; the sensor's 25 oldest; the audit log's 7.
    assert_eq!(by_type.get("order"), Some(&72), "{done:?}");
    assert_eq!(by_type.get("sensor"), Some(&25), "{done:?}");
    assert_eq!(by_type.get("audit"), Some(&7), "{done:?}");
    assert_eq!(by_type.get("filler"), None, "{done:?}");
    assert_eq!(done.events_reclaimed, 104);
    assert_eq!(segment_bytes(dir.path()), bytes_before - done.bytes_freed);

    // Reads of every stream return what they did.
    assert_eq!(observed(&client, &streams).await, before);
    let snapshot = client
        .read_from_snapshot(&orders[1])
        .await
        .expect("from snapshot");
    assert_eq!(snapshot.snapshot.map(|s| s.data), Some("new".into()));
    assert_eq!(numbers_of(&snapshot.events), (7..12).collect::<Vec<_>>());

    // `$all` lost exactly the reclaimed events, in order, every position as it was.
    let log_after = whole_log(&client, Direction::Forward).await;
    let reclaimed: BTreeSet<u64> = log_before
        .iter()
        .map(|e| e.position)
        .filter(|p| !log_after.iter().any(|e| e.position == *p))
        .collect();
    assert_eq!(reclaimed.len() as u64, done.events_reclaimed);
    let kept: Vec<_> = log_before
        .iter()
        .filter(|e| !reclaimed.contains(&e.position))
        .cloned()
        .collect();
    assert_eq!(log_after, kept);
    let mut backward = whole_log(&client, Direction::Backward).await;
    backward.reverse();
    assert_eq!(backward, kept);
    assert!(files_holding(dir.path(), b"ERASE-ME").is_empty());
    assert!(!files_holding(dir.path(), b"order-kept").is_empty());

    // Streams go on from their versions.
    let next = client
        .append(
            &orders[0],
            ExpectedVersion::NoStream,
            marked("again", 12, 1),
        )
        .await
        .expect("a soft-deleted stream is written again");
    assert_eq!(next.version, 12);
    let refused = client
        .append(&orders[2], ExpectedVersion::Any, marked("never", 0, 1))
        .await;
    assert!(
        matches!(refused, Err(evenire_client::Error::Tombstoned(_))),
        "{refused:?}"
    );
    client
        .append(&sensor, ExpectedVersion::Exact(29), marked("sensor", 30, 1))
        .await
        .expect("the sensor goes on");
    let after_appends = observed(&client, &streams).await;

    // A restart reads the rewritten log back to the same state; nothing is left to free.
    server.stop().await.expect("clean stop");
    let server = TestServer::start(settings).await;
    let client = server.client().await;
    assert_eq!(observed(&client, &streams).await, after_appends);
    let mut log_now = whole_log(&client, Direction::Forward).await;
    log_now.truncate(kept.len());
    assert_eq!(log_now, kept);
    // The sensor's newest five moved on by the one appended since: its version 25 goes
    // now, cut from the front of the record it shares with 26 to 29.
    let again = scavenge(&client, false).await;
    assert_eq!(
        (again.events_reclaimed, again.segments_rewritten),
        (1, 1),
        "{again:?}"
    );
    assert_eq!(again.by_type[0].stream_type, "sensor");
    let sensor_now = read_all(&client, &sensor, ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(numbers_of(&sensor_now), (26..31).collect::<Vec<_>>());
    let last = scavenge(&client, false).await;
    assert_eq!(
        (last.events_reclaimed, last.segments_rewritten),
        (0, 0),
        "{last:?}"
    );
    server.stop().await.expect("clean stop");
}

fn numbers_of(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(number).collect()
}

#[tokio::test]
async fn one_scavenge_runs_at_a_time_at_its_rate_while_reads_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), 0);
    settings.segment_size = evenire_server::config::ByteSize(1 << 10);
    let server = TestServer::start(settings).await;
    let client = server.client().await;

    // With one segment, there is nothing sealed to look at.
    let stream = new_stream("order");
    client
        .append(&stream, ExpectedVersion::NoStream, common::numbered(0, 3))
        .await
        .expect("append");
    let report = scavenge(&client, false).await;
    assert_eq!((report.segments_total, report.bytes_freed), (0, 0));

    for i in 0..60 {
        client
            .append(
                &stream,
                ExpectedVersion::Any,
                marked("a-kilobyte-of-events", i, 3),
            )
            .await
            .expect("append");
    }
    // At 4 KiB a second, reading the segments takes seconds.
    let slow = client
        .scavenge(false, Some(4 << 10))
        .await
        .expect("scavenge");
    tokio::pin!(slow);
    let first = slow.next().await.expect("a report").expect("progress");
    assert!(!first.done && first.segments_total > 4, "{first:?}");
    let second = client.scavenge(true, None).await;
    let refused = match second {
        Ok(mut reports) => reports.next().await.expect("an answer").err(),
        Err(e) => Some(e),
    };
    assert!(
        matches!(&refused, Some(evenire_client::Error::Status(s)) if s.code() == tonic::Code::AlreadyExists),
        "{refused:?}"
    );
    let read = read_all(&client, &stream, ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(read.len(), 183);
    let mut last = first;
    while let Some(report) = slow.next().await {
        last = report.expect("progress");
    }
    assert!(
        last.done && last.segments_done == last.segments_total,
        "{last:?}"
    );
    server.stop().await.expect("clean stop");
}

/// The age rule: events older than a stream's `max_age_seconds` (its own, or its type's
/// default) leave its reads at once and its info counts them out; the rule survives a
/// restart; a scavenge then reclaims them, their bytes gone from every file, while the
/// stream keeps its version and goes on from it.
#[tokio::test]
async fn events_past_their_max_age_leave_reads_at_once_and_the_disk_at_a_scavenge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), 0);
    settings.segment_size = evenire_server::config::ByteSize(4 << 10);
    settings.default_rules = vec!["beacon:max-age=3s".parse().expect("rules")];
    let server = TestServer::start(settings.clone()).await;
    let client = server.client().await;
    let (log, beacon) = (new_stream("log"), new_stream("beacon"));
    client
        .append(
            &log,
            ExpectedVersion::NoStream,
            marked("EXPIRED-LOG", 0, 20),
        )
        .await
        .expect("append");
    client
        .append(
            &beacon,
            ExpectedVersion::NoStream,
            marked("EXPIRED-BEACON", 0, 20),
        )
        .await
        .expect("append");
    // Past the age of the events above, then newer ones, and enough more that the
    // segment of the old ones is sealed (4 KiB segments).
    tokio::time::sleep(std::time::Duration::from_millis(3_200)).await;
    client
        .append(&log, ExpectedVersion::Exact(19), marked("fresh", 20, 40))
        .await
        .expect("append");
    let filler: Vec<EventData> = (0..4)
        .map(|_| EventData::new("Filler", vec![b'f'; 2048]))
        .collect();
    client
        .append(&new_stream("filler"), ExpectedVersion::NoStream, filler)
        .await
        .expect("append");
    let three_seconds = StreamRules {
        max_count: None,
        truncate_before: None,
        max_age_seconds: Some(3),
    };
    client
        .set_stream_rules(&log, three_seconds, Some(0))
        .await
        .expect("rules");

    let read = |stream| read_all(&client, stream, ReadFrom::Start, Direction::Forward, None);
    let kept: Vec<u64> = read(&log).await.iter().map(number).collect();
    assert_eq!(
        kept,
        (20..60).collect::<Vec<_>>(),
        "only the events younger than 3 s"
    );
    let info = client.get_stream(&log).await.expect("info");
    assert_eq!(
        (info.event_count, info.rules.max_age_seconds),
        (40, Some(3))
    );
    assert!(
        read(&beacon).await.is_empty(),
        "the type's default age rule"
    );
    let info = client.get_stream(&beacon).await.expect("info");
    assert!(
        info.rules_are_type_default && info.event_count == 0,
        "{info:?}"
    );
    assert_eq!(info.version, 19, "the stream keeps its version");

    let stopped = server.stop().await;
    assert!(stopped.is_ok(), "{stopped:?}");
    let server = TestServer::start(settings).await;
    let client = server.client().await;
    let info = client.get_stream(&log).await.expect("info after a restart");
    assert_eq!(
        (info.event_count, info.rules.max_age_seconds),
        (40, Some(3))
    );

    let dry = scavenge(&client, true).await;
    let real = scavenge(&client, false).await;
    assert_eq!(real.events_reclaimed, dry.events_reclaimed);
    // All of the log's old events; the beacon's but its last (what it continues from).
    assert_eq!(real.events_reclaimed, 20 + 19, "{real:?}");
    for marker in ["EXPIRED-LOG", "0000EXPIRED-BEACON"] {
        let holding = files_holding(dir.path(), marker.as_bytes());
        assert!(holding.is_empty(), "{marker} is still in {holding:?}");
    }
    let appended = client
        .append(&beacon, ExpectedVersion::Exact(19), marked("beacon", 20, 1))
        .await
        .expect("the beacon goes on from its version");
    assert_eq!(appended.version, 20);
}

/// `--scavenge-interval`: scavenges run by themselves, and give a deleted stream's disk
/// back with no call. (The flag takes a minute at least; the test sets the interval in
/// the settings, below what the flag allows, so as not to wait a minute.)
#[tokio::test]
async fn scheduled_scavenges_reclaim_without_a_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = config(dir.path(), 0);
    settings.segment_size = evenire_server::config::ByteSize(4 << 10);
    settings.scavenge_interval = Some(std::time::Duration::from_millis(200));
    let server = TestServer::start(settings).await;
    let client = server.client().await;
    let (gone, kept) = (new_stream("order"), new_stream("order"));
    for round in 0..6 {
        for (stream, marker) in [(&gone, "SCHEDULED-ERASE"), (&kept, "kept")] {
            client
                .append(stream, ExpectedVersion::Any, marked(marker, round * 10, 10))
                .await
                .expect("append");
        }
    }
    client
        .delete_stream(&gone, ExpectedVersion::Any, false)
        .await
        .expect("delete");
    let before = segment_bytes(dir.path());
    let mut waited = 0;
    while !files_holding(dir.path(), b"0000SCHEDULED-ERASE").is_empty() {
        assert!(
            waited < 300,
            "no scheduled scavenge reclaimed the deleted stream in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(segment_bytes(dir.path()) < before, "the disk given back");
    let read = read_all(&client, &kept, ReadFrom::Start, Direction::Forward, None).await;
    assert_eq!(
        read.iter().map(number).collect::<Vec<_>>(),
        (0..60).collect::<Vec<_>>()
    );
}

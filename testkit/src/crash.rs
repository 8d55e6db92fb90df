//! The kill -9 harness: concurrent appenders (exact expected versions and `any`,
//! batches of 1 to 5 events) run against the real server binary until it is killed
//! with SIGKILL at a random moment; after every restart the whole log is checked
//! ([`durability::verify`]) against what the clients sent and what was acknowledged,
//! and the appends that got no answer are retried with the same ids.
//!
//! With scavenging ([`run_scavenging`]) the server keeps small segments, other
//! clients write streams and delete them (softly or for good) and a scavenge runs over
//! and over while the appenders append, so the kill lands in scavenges too. Then the
//! check leaves the deleted streams' events out (positions may have gaps where they
//! were reclaimed), and also finds every acknowledged delete still in force and no
//! reclaimed event back: of a stream deleted before the last check, `$all` shows no
//! event it did not show then.
//!
//! The server keeps the index on disk, and after every cycle's last kill `evenire-server
//! verify` must find it agreeing with the log; amid scavenges, or noting a segment
//! rewritten that the kill kept from being indexed again (the next start rebuilds it).
//!
//! `server/tests/crash_recovery.rs` runs a few cycles of each in CI; `evenire-bench
//! --crash-cycles N` is the long mode.

use crate::durability::{self, Logged, Sent};
use crate::process::ServerProcess;
use crate::rng::Rng;
use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const APPENDERS: usize = 16;

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub cycles: usize,
    pub sent: usize,
    pub unanswered: usize,
    pub events: usize,
    /// Events the scavenges reclaimed (with scavenging).
    pub reclaimed: u64,
}

/// Every append sent, with the stream it went to.
type SentLog = Arc<Mutex<Vec<(StreamId, Sent)>>>;

/// A stream written to be deleted, and whether its delete was acknowledged.
type DoomedLog = Arc<Mutex<Vec<(StreamId, bool)>>>;

/// Appends to its own stream until the server goes away; every append is recorded
/// before it is sent, so none can be missed.
async fn appender(client: Client, exact: bool, seed: u64, log: SentLog) {
    let mut rng = Rng(seed | 1);
    let stream = StreamId::new(Uuid::new_v4(), "crash");
    let mut version: Option<u64> = None;
    loop {
        let count = 1 + rng.below(5) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        let data: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| format!("payload of {id}").into_bytes())
            .collect();
        let expected = match (exact, version) {
            (false, _) => ExpectedVersion::Any,
            (true, None) => ExpectedVersion::NoStream,
            (true, Some(v)) => ExpectedVersion::Exact(v),
        };
        let sent = Sent {
            stream: stream.to_string(),
            ids,
            data,
            acked: None,
        };
        let events = events_of(&sent);
        let index = {
            let mut log = log.lock().expect("log");
            log.push((stream.clone(), sent));
            log.len() - 1
        };
        match client.append(&stream, expected, events).await {
            Ok(result) => {
                log.lock().expect("log")[index].1.acked = Some((result.version, result.position));
                version = Some(result.version);
            }
            Err(_) => return,
        }
    }
}

/// Writes streams of a few batches and deletes each (softly or for good), until the
/// server goes away. Each stream is logged before its first append.
async fn deleter(client: Client, seed: u64, doomed: DoomedLog) {
    let mut rng = Rng(seed | 1);
    loop {
        let stream = StreamId::new(Uuid::new_v4(), "doomed");
        let index = {
            let mut doomed = doomed.lock().expect("doomed");
            doomed.push((stream.clone(), false));
            doomed.len() - 1
        };
        for _ in 0..1 + rng.below(4) {
            let events: Vec<EventData> = (0..1 + rng.below(5))
                .map(|i| EventData::new("Doomed", format!("doomed {i}").into_bytes()))
                .collect();
            if client
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .is_err()
            {
                return;
            }
        }
        let tombstone = rng.below(2) == 0;
        if client
            .delete_stream(&stream, ExpectedVersion::Any, tombstone)
            .await
            .is_err()
        {
            return;
        }
        doomed.lock().expect("doomed")[index].1 = true;
    }
}

/// Scavenges over and over until the server goes away; counts the scavenges finished
/// and the events they reclaimed.
async fn scavenger(client: Client, finished: Arc<Mutex<(usize, u64)>>) {
    while let Ok(report) = client.scavenge_to_end(false, None).await {
        let mut finished = finished.lock().expect("count");
        finished.0 += 1;
        finished.1 += report.events_reclaimed;
    }
}

fn events_of(sent: &Sent) -> Vec<EventData> {
    sent.ids
        .iter()
        .zip(&sent.data)
        .map(|(id, d)| EventData::new("Crashed", d.clone()).with_id(*id))
        .collect()
}

/// Checks the log the server holds against everything sent; panics naming the first
/// violation.
async fn check(client: &Client, sent: &[(StreamId, Sent)]) -> (durability::Checked, usize) {
    let log = durability::read_log(client).await;
    let names: Vec<String> = log.iter().map(|e| e.stream.to_string()).collect();
    let logged = logged(&log, &names, |_| true);
    let sent: Vec<Sent> = sent.iter().map(|(_, s)| s.clone()).collect();
    match durability::verify(&logged, &sent) {
        Ok(checked) => (checked, log.len()),
        Err(broken) => panic!("after a kill -9: {broken}"),
    }
}

fn logged<'a>(
    log: &'a [evenire_client::RecordedEvent],
    names: &'a [String],
    keep: impl Fn(&str) -> bool,
) -> Vec<Logged<'a>> {
    log.iter()
        .zip(names)
        .filter(|(_, stream)| keep(stream))
        .map(|(e, stream)| Logged {
            id: e.id,
            stream,
            version: e.version,
            position: e.position,
            data: &e.data,
        })
        .collect()
}

/// The events of deleted streams `$all` showed at a check, by stream.
type Shown = HashMap<String, HashSet<Uuid>>;

/// [`check`] with deletes and scavenges about: the appenders' streams verified (gaps
/// allowed), every acknowledged delete in force, and no event of a stream deleted
/// before the last check (`shown`) that `$all` did not show then. Returns what `$all`
/// shows now of the deleted streams.
async fn check_scavenged(
    client: &Client,
    sent: &[(StreamId, Sent)],
    doomed: &[(StreamId, bool)],
    shown: &Shown,
) -> (durability::Checked, usize, Shown) {
    let log = durability::read_log(client).await;
    let names: Vec<String> = log.iter().map(|e| e.stream.to_string()).collect();
    let doomed_names: HashSet<String> = doomed.iter().map(|(s, _)| s.to_string()).collect();
    let kept = logged(&log, &names, |stream| !doomed_names.contains(stream));
    let sent: Vec<Sent> = sent.iter().map(|(_, s)| s.clone()).collect();
    let checked = match durability::verify_with_gaps(&kept, &sent) {
        Ok(checked) => checked,
        Err(broken) => panic!("after a kill -9 amid scavenges: {broken}"),
    };
    let mut now = Shown::new();
    for (event, stream) in log.iter().zip(&names) {
        if doomed_names.contains(stream) {
            now.entry(stream.clone()).or_default().insert(event.id);
        }
    }
    for (stream, then) in shown {
        if let Some(back) = now.get(stream).and_then(|ids| ids.difference(then).next()) {
            panic!("after a kill -9 amid scavenges: event {back} of deleted {stream} is back");
        }
    }
    for (stream, _) in doomed.iter().filter(|(_, deleted)| *deleted) {
        let info = client
            .get_stream(stream)
            .await
            .expect("a deleted stream's info");
        assert_ne!(
            info.state,
            evenire_client::StreamState::Live,
            "an acknowledged delete of {stream} was lost"
        );
    }
    let deleted: HashSet<String> = doomed
        .iter()
        .filter(|(_, deleted)| *deleted)
        .map(|(s, _)| s.to_string())
        .collect();
    now.retain(|stream, _| deleted.contains(stream));
    for stream in &deleted {
        now.entry(stream.clone()).or_default();
    }
    (checked, kept.len(), now)
}

/// After a kill -9, wherever it landed in the ingester's work: `verify` finds the
/// index on disk exactly what the log up to its checkpoint says (or covering nothing
/// yet), not merely something the next start would rebuild; or, `scavenging`, a
/// rewrite noted that the kill came before the ingester put in.
fn index_agrees(binary: &Path, dir: &Path, scavenging: bool) {
    let verify = std::process::Command::new(binary)
        .arg("--data-dir")
        .arg(dir)
        .arg("verify")
        .output()
        .expect("run evenire-server verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "after a kill -9: {report}");
    let noted = scavenging
        && report.contains("were rewritten by a scavenge, and the server stopped before");
    assert!(
        report.contains("index on disk: agrees with the log")
            || report.contains("index on disk: covers no segment yet")
            || noted,
        "after a kill -9, the index on disk: {report}"
    );
    if let Some(line) = report.lines().find(|l| l.starts_with("index on disk")) {
        println!("  {line}");
    }
}

/// Runs `cycles` kill/restart cycles of the server `binary` over a fresh directory.
/// Panics, naming what broke, at the first violation. Needs a multi-threaded runtime
/// (starting the binary blocks until it serves).
pub async fn run(binary: &Path, cycles: usize, seed: u64) -> Report {
    run_cycles(binary, cycles, seed, false).await
}

/// [`run`] with streams deleted and scavenges running while the appenders append.
pub async fn run_scavenging(binary: &Path, cycles: usize, seed: u64) -> Report {
    run_cycles(binary, cycles, seed, true).await
}

async fn run_cycles(binary: &Path, cycles: usize, seed: u64, scavenging: bool) -> Report {
    let mode = if scavenging { ", scavenging" } else { "" };
    println!("crash test: {cycles} cycles{mode}, seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("temp dir");
    // Small segments, so that many are sealed: their event ids go to the index on
    // disk (the kill lands in ingestions and checkpoint writes, and retries of
    // unanswered appends are recognised from it), and scavenges have sealed ones to
    // rewrite.
    // An index cache of 4 KiB keeps some 50 streams' entries in memory: those of
    // the earlier cycles' streams leave it once the index on disk holds them, and the
    // checks read them from there.
    let segment_size = if scavenging { "16KiB" } else { "64KiB" };
    let args: &[&str] = &[
        "--segment-size",
        segment_size,
        "--index-on-disk",
        "--index-cache-size",
        "4KiB",
    ];
    let start = || {
        tokio::task::block_in_place(|| ServerProcess::start(binary, dir.path(), args))
            .expect("the server starts")
    };
    let sent: SentLog = Arc::default();
    let doomed: DoomedLog = Arc::default();
    let scavenges = Arc::new(Mutex::new((0usize, 0u64)));
    let mut shown = Shown::new();
    let (mut unknown_total, mut events) = (0, 0);

    for cycle in 0..cycles {
        let mut server = start();
        let client = Client::connect(server.uri()).await.expect("connect");
        let mut tasks: Vec<_> = (0..APPENDERS)
            .map(|i| {
                let seed = rng.next_u64();
                tokio::spawn(appender(client.clone(), i % 2 == 0, seed, sent.clone()))
            })
            .collect();
        if scavenging {
            for _ in 0..2 {
                let seed = rng.next_u64();
                tasks.push(tokio::spawn(deleter(client.clone(), seed, doomed.clone())));
            }
            tasks.push(tokio::spawn(scavenger(client.clone(), scavenges.clone())));
        }
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().expect("reap the server");
        for task in tasks {
            task.await.expect("a client task");
        }

        let server = start();
        let client = Client::connect(server.uri()).await.expect("connect");
        let snapshot = sent.lock().expect("log").clone();
        let deleted = doomed.lock().expect("doomed").clone();
        let checked = match scavenging {
            true => {
                check_scavenged(&client, &snapshot, &deleted, &shown)
                    .await
                    .0
            }
            false => check(&client, &snapshot).await.0,
        };
        // Appends that got no answer: retrying them is idempotent (or writes them now,
        // whole, if the crash lost them).
        let unknown: Vec<usize> = (0..snapshot.len())
            .filter(|i| snapshot[*i].1.acked.is_none())
            .collect();
        for &i in &unknown {
            let (stream, append) = &snapshot[i];
            let result = client
                .append(stream, ExpectedVersion::Any, events_of(append))
                .await
                .expect("retry of an unanswered append");
            sent.lock().expect("log")[i].1.acked = Some((result.version, result.position));
        }
        unknown_total += unknown.len();
        let after_retries = sent.lock().expect("log").clone();
        if scavenging {
            // A scavenge to its end on the quiet store: what it reclaims must never
            // come back, after any later kill.
            let report = client
                .scavenge_to_end(false, None)
                .await
                .expect("a scavenge after a restart");
            scavenges.lock().expect("count").1 += report.events_reclaimed;
            (_, events, shown) = check_scavenged(&client, &after_retries, &deleted, &shown).await;
        } else {
            (_, events) = check(&client, &after_retries).await;
        }
        println!(
            "cycle {cycle}: {events} events in the log, {} appends acknowledged, \
             {} verified, {} unanswered and retried, lost 0",
            checked.acknowledged,
            checked.verified,
            unknown.len()
        );
        server.kill();
        index_agrees(binary, dir.path(), scavenging);
    }
    let total = sent.lock().expect("log").len();
    let (scavenges, reclaimed) = *scavenges.lock().expect("count");
    let deletes = doomed
        .lock()
        .expect("doomed")
        .iter()
        .filter(|d| d.1)
        .count();
    println!(
        "crash test done: {cycles} cycles, {total} appends sent, {unknown_total} unanswered, \
         {deletes} streams deleted, {scavenges} scavenges finished under load, \
         {reclaimed} events reclaimed, lost 0"
    );
    assert!(total > cycles * APPENDERS, "the appenders made progress");
    Report {
        cycles,
        sent: total,
        unanswered: unknown_total,
        events,
        reclaimed,
    }
}

//! The kill -9 harness, shared by `server/tests/crash_recovery.rs` (a few cycles in CI)
//! and `evenire-bench --crash-cycles N` (the long mode): both compile this one file
//! (`#[path]`), so there is one copy of the checks.
//!
//! Concurrent appenders (exact expected versions and `any`, batches of 1 to 5 events)
//! run until the server is killed with SIGKILL at a random moment; after every restart
//! the whole log is checked against what the clients sent and what was acknowledged,
//! and the appends that got no answer are retried with the same ids.

use evenire_client::{
    Client, Direction, EventData, ExpectedVersion, ReadAllFrom, RecordedEvent, StreamId,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_stream::StreamExt;
use uuid::Uuid;

#[path = "rng.rs"]
mod rng;
use rng::Rng;

const APPENDERS: usize = 16;

/// One append as the client sent it, and what it heard back.
#[derive(Debug, Clone)]
struct Sent {
    stream: StreamId,
    ids: Vec<Uuid>,
    data: Vec<String>,
    /// Version and position of the last event, if the server acknowledged it.
    acked: Option<(u64, u64)>,
}

/// Appends to its own stream until the server goes away; every append is recorded
/// before it is sent, so none can be missed.
async fn appender(client: Client, exact: bool, seed: u64, log: Arc<Mutex<Vec<Sent>>>) {
    let mut rng = Rng(seed | 1);
    let stream = StreamId::new(Uuid::new_v4(), "crash");
    let mut version: Option<u64> = None;
    loop {
        let count = 1 + rng.below(5) as usize;
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        let data: Vec<String> = ids.iter().map(|id| format!("payload of {id}")).collect();
        let events: Vec<_> = ids
            .iter()
            .zip(&data)
            .map(|(id, d)| EventData::new("Crashed", d.clone()).with_id(*id))
            .collect();
        let expected = match (exact, version) {
            (false, _) => ExpectedVersion::Any,
            (true, None) => ExpectedVersion::NoStream,
            (true, Some(v)) => ExpectedVersion::Exact(v),
        };
        let index = {
            let mut log = log.lock().expect("log");
            log.push(Sent {
                stream: stream.clone(),
                ids,
                data,
                acked: None,
            });
            log.len() - 1
        };
        match client.append(&stream, expected, events).await {
            Ok(result) => {
                log.lock().expect("log")[index].acked = Some((result.version, result.position));
                version = Some(result.version);
            }
            Err(_) => return,
        }
    }
}

async fn read_log(client: &Client) -> Vec<RecordedEvent> {
    let mut events = client
        .read_all(ReadAllFrom::Start, Direction::Forward, None)
        .await
        .expect("read_all");
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        out.push(event.expect("every stored event reads back"));
    }
    out
}

/// Checks the log against everything sent; returns (acknowledged, verified) counts.
fn verify(log: &[RecordedEvent], sent: &[Sent]) -> (usize, usize) {
    assert!(
        log.iter().enumerate().all(|(i, e)| e.position == i as u64),
        "$all positions are gapless and ordered"
    );
    let mut next_version: HashMap<&StreamId, u64> = HashMap::new();
    let mut stored: HashMap<Uuid, &RecordedEvent> = HashMap::new();
    for event in log {
        let expected = next_version.entry(&event.stream).or_insert(0);
        assert_eq!(
            event.version, *expected,
            "versions of {} are contiguous",
            event.stream
        );
        *expected += 1;
        assert!(
            stored.insert(event.id, event).is_none(),
            "event {} stored twice",
            event.id
        );
    }
    let all_sent: HashSet<Uuid> = sent.iter().flat_map(|s| s.ids.iter().copied()).collect();
    assert!(
        stored.keys().all(|id| all_sent.contains(id)),
        "an event that was never sent is in the log"
    );
    let (mut acknowledged, mut verified) = (0, 0);
    for append in sent {
        let found: Vec<_> = append.ids.iter().filter_map(|id| stored.get(id)).collect();
        assert!(
            found.is_empty() || found.len() == append.ids.len(),
            "half of a batch is in the log: {append:?}"
        );
        if let Some((version, position)) = append.acked {
            acknowledged += 1;
            assert_eq!(
                found.len(),
                append.ids.len(),
                "an acknowledged append was lost: {append:?}"
            );
            let last = found[found.len() - 1];
            assert_eq!(
                (last.version, last.position),
                (version, position),
                "moved: {append:?}"
            );
        }
        if !found.is_empty() {
            for (i, (event, data)) in found.iter().zip(&append.data).enumerate() {
                assert_eq!(event.stream, append.stream);
                assert_eq!(
                    event.version,
                    found[0].version + i as u64,
                    "batch not contiguous"
                );
                assert_eq!(&event.data[..], data.as_bytes(), "event changed");
            }
            verified += 1;
        }
    }
    (acknowledged, verified)
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub cycles: usize,
    pub sent: usize,
    pub unanswered: usize,
    pub events: usize,
}

/// Runs `cycles` kill/restart cycles; `start` starts the server binary on a directory
/// and returns it with its URI. Panics, naming what broke, at the first violation.
pub async fn run(
    cycles: usize,
    seed: u64,
    start: impl Fn(&std::path::Path) -> (std::process::Child, String),
) -> Report {
    println!("crash test: {cycles} cycles, seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let (mut unknown_total, mut events) = (0, 0);

    for cycle in 0..cycles {
        let (mut child, uri) = start(dir.path());
        let client = Client::connect(&uri).await.expect("connect");
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|i| {
                let seed = rng.next();
                tokio::spawn(appender(client.clone(), i % 2 == 0, seed, sent.clone()))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the server");
        for task in tasks {
            task.await.expect("appender");
        }

        let (mut child, uri) = start(dir.path());
        let client = Client::connect(&uri).await.expect("connect");
        let snapshot = sent.lock().expect("log").clone();
        let log = read_log(&client).await;
        let (acknowledged, verified) = verify(&log, &snapshot);
        // Appends that got no answer: retrying them is idempotent (or writes them now,
        // whole, if the crash lost them).
        let unknown: Vec<usize> = (0..snapshot.len())
            .filter(|i| snapshot[*i].acked.is_none())
            .collect();
        for &i in &unknown {
            let append = &snapshot[i];
            let events: Vec<_> = append
                .ids
                .iter()
                .zip(&append.data)
                .map(|(id, d)| EventData::new("Crashed", d.clone()).with_id(*id))
                .collect();
            let result = client
                .append(&append.stream, ExpectedVersion::Any, events)
                .await
                .expect("retry of an unanswered append");
            sent.lock().expect("log")[i].acked = Some((result.version, result.position));
        }
        unknown_total += unknown.len();
        let after_retries = sent.lock().expect("log").clone();
        let log = read_log(&client).await;
        verify(&log, &after_retries);
        events = log.len();
        println!(
            "cycle {cycle}: {events} events in the log, {acknowledged} appends acknowledged, \
             {verified} verified, {} unanswered and retried, lost 0",
            unknown.len()
        );
        child.kill().expect("stop the checking server");
        child.wait().expect("reap");
    }
    let total = sent.lock().expect("log").len();
    println!(
        "crash test done: {cycles} cycles, {total} appends sent, {unknown_total} unanswered, lost 0"
    );
    assert!(total > cycles * APPENDERS, "the appenders made progress");
    Report {
        cycles,
        sent: total,
        unanswered: unknown_total,
        events,
    }
}

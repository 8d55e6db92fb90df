//! The kill -9 harness: concurrent appenders (exact expected versions and `any`,
//! batches of 1 to 5 events) run against the real server binary until it is killed
//! with SIGKILL at a random moment; after every restart the whole log is checked
//! ([`durability::verify`]) against what the clients sent and what was acknowledged,
//! and the appends that got no answer are retried with the same ids.
//!
//! `server/tests/crash_recovery.rs` runs a few cycles in CI; `evenire-bench
//! --crash-cycles N` is the long mode.

use crate::durability::{self, Logged, Sent};
use crate::process::ServerProcess;
use crate::rng::Rng;
use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
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
}

/// Every append sent, with the stream it went to.
type SentLog = Arc<Mutex<Vec<(StreamId, Sent)>>>;

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
    let sent: Vec<Sent> = sent.iter().map(|(_, s)| s.clone()).collect();
    match durability::verify(&logged, &sent) {
        Ok(checked) => (checked, log.len()),
        Err(broken) => panic!("after a kill -9: {broken}"),
    }
}

/// Runs `cycles` kill/restart cycles of the server `binary` over a fresh directory.
/// Panics, naming what broke, at the first violation. Needs a multi-threaded runtime
/// (starting the binary blocks until it serves).
pub async fn run(binary: &Path, cycles: usize, seed: u64) -> Report {
    println!("crash test: {cycles} cycles, seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let start = || {
        tokio::task::block_in_place(|| ServerProcess::start(binary, dir.path(), &[]))
            .expect("the server starts")
    };
    let sent: SentLog = Arc::default();
    let (mut unknown_total, mut events) = (0, 0);

    for cycle in 0..cycles {
        let mut server = start();
        let client = Client::connect(server.uri()).await.expect("connect");
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|i| {
                let seed = rng.next_u64();
                tokio::spawn(appender(client.clone(), i % 2 == 0, seed, sent.clone()))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().expect("reap the server");
        for task in tasks {
            task.await.expect("appender");
        }

        let server = start();
        let client = Client::connect(server.uri()).await.expect("connect");
        let snapshot = sent.lock().expect("log").clone();
        let (checked, _) = check(&client, &snapshot).await;
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
        (_, events) = check(&client, &after_retries).await;
        println!(
            "cycle {cycle}: {events} events in the log, {} appends acknowledged, \
             {} verified, {} unanswered and retried, lost 0",
            checked.acknowledged,
            checked.verified,
            unknown.len()
        );
        server.kill();
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

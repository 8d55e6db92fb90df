//! Starting the real `evenire-server` binary for tests, reading a store's log whole,
//! and scraping its metrics.
#![allow(dead_code)]

use evenire_testkit::process::ServerProcess;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BINARY: &str = env!("CARGO_BIN_EXE_evenire-server");

/// The binary the tests start: [`BINARY`], or the one `EVENIRE_TEST_SERVER_BIN` names
/// (to measure a release build with the same tests).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("EVENIRE_TEST_SERVER_BIN").map_or_else(
        || std::path::PathBuf::from(BINARY),
        std::path::PathBuf::from,
    )
}

/// Starts the binary on 127.0.0.1:0 over `data_dir` with `extra` flags and waits until
/// it logs that it is serving (its address is the one it logged).
pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
    ServerProcess::start(&binary(), data_dir, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// SIGTERM: a clean stop.
pub fn terminate(server: &ServerProcess) {
    server.signal("TERM").unwrap_or_else(|e| panic!("{e}"));
}

/// Its exit status, once it exits (killed after 15 s: longer than the server's default
/// shutdown grace of 10 s, which a client connection nobody reads can take whole).
pub fn wait(server: &mut ServerProcess) -> std::process::ExitStatus {
    match server.wait_for_exit(Duration::from_secs(15)) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = server.child.kill();
            panic!("the server did not exit within 15 s");
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs the binary's offline subcommand `args` on `data_dir`.
pub fn offline(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run evenire-server offline")
}

/// One append to a new stream, over a new connection to `uri`.
pub async fn append_one(uri: &str) -> Result<(), String> {
    let client = evenire_client::Client::connect(uri.to_string())
        .await
        .map_err(|e| e.to_string())?;
    client
        .append(
            &evenire_client::StreamId::new(uuid::Uuid::new_v4(), "order"),
            evenire_client::ExpectedVersion::Any,
            [evenire_client::EventData::new("Placed", "{}")],
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The last line `server` logged (after "serving") with `text`, waiting up to 15 s for
/// one.
pub async fn logged(server: &ServerProcess, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(line) = server.log_lines_with(text).pop() {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with `{text}` in:\n{}",
            server.log_lines_with("").join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `field=` in the last line `server` logged with it: an address a
/// listener on port 0 was bound to, say.
pub async fn logged_field(server: &ServerProcess, field: &str) -> String {
    let key = format!("{field}=");
    let line = logged(server, &key).await;
    line.split(&key)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        .to_string()
}

/// A subscription to `$all` from the start, as the raw protobuf client sends it.
pub fn subscribe_to_all() -> evenire_proto::v1::SubscribeRequest {
    use evenire_proto::v1 as pb;
    pb::SubscribeRequest {
        target: Some(pb::subscribe_request::Target::All(pb::SubscribeAll {
            from: Some(pb::subscribe_all::From::Origin(
                pb::SubscribeOrigin::Start as i32,
            )),
        })),
        ..Default::default()
    }
}

/// Every event `read` returns, in its order; panics if one fails to read (a stored
/// event always reads back).
pub async fn drain(
    mut read: evenire_server::store::LogRead,
) -> Vec<evenire_server::store::RecordedEvent> {
    let mut out = Vec::new();
    loop {
        let (next, batch) = read.next_batch(1024, 1 << 20).await;
        read = next;
        let batch = batch.expect("every stored event reads back");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// One scrape: each sample's value by its name and labels as written
/// (`evenire_appends_total{outcome="ok"}`).
#[derive(Debug)]
pub struct Scrape(pub HashMap<String, f64>);

impl Scrape {
    pub fn get(&self, sample: &str) -> f64 {
        *self
            .0
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample} in {:?}", self.0.keys()))
    }
}

/// `GET path` over HTTP/1.1: the status line and the body.
pub async fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to metrics");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a header and a body");
    let status = head.lines().next().unwrap_or_default().to_string();
    assert!(
        path != "/metrics" || head.contains("text/plain; version=0.0.4"),
        "the Prometheus text format's content type: {head}"
    );
    (status, body.to_string())
}

/// Scrapes `/metrics`, checking every line is a comment or `name[{labels}] value`.
pub async fn scrape(addr: &str) -> Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let mut samples = HashMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').expect("`name value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number in `{line}`"));
        let bare = name.split('{').next().unwrap_or_default();
        assert!(
            (bare.starts_with("evenire_") || bare.starts_with("process_"))
                && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "a metric name Prometheus accepts: `{line}`"
        );
        samples.insert(name.to_string(), value);
    }
    Scrape(samples)
}

//! The `evenire` command-line tool, run as a real process against a real server:
//! output, `--json`, exit codes, and a clear one-line error when the server is down.
#![cfg(feature = "cli")]

use evenire_server::{Config, run};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_evenire");
const KEY: &str = "7d0c3a4e-8a5f-4b44-9f0e-1f6d2a3b4c5d";

/// A server on 127.0.0.1:0 in this process, on its own runtime thread.
struct Server {
    uri: String,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    server_with("http", &[], |_| {})
}

/// A server whose settings `configure` changes, reached with `scheme` and the CLI's
/// `flags`.
fn server_with(scheme: &str, flags: &[&str], configure: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut config = Config::new(dir.path());
    configure(&mut config);
    let uri = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri = format!("{scheme}://{}", listener.local_addr().expect("address"));
        tokio::spawn(run(listener, config, std::future::pending()));
        uri
    });
    // Ready once the health check answers SERVING.
    let health: Vec<&str> = flags.iter().copied().chain(["health"]).collect();
    for _ in 0..500 {
        if evenire(&uri, &health).status.success() {
            return Server {
                uri,
                _runtime: runtime,
                _dir: dir,
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the server did not start");
}

fn evenire(uri: &str, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("--server")
        .arg(uri)
        .args(args)
        .output()
        .expect("run evenire")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn append_read_info_streams_delete_as_tables_and_json() {
    let server = server();
    let uri = server.uri.as_str();
    let stream = format!("order/{KEY}");

    let appended = evenire(
        uri,
        &[
            "append",
            &stream,
            "--type",
            "Placed",
            "--data",
            "{\"total\": 42}",
        ],
    );
    assert!(appended.status.success(), "{}", stderr(&appended));
    assert!(stdout(&appended).contains("version 0"));

    // Several events as JSON Lines on stdin, with an expected version.
    let mut child = Command::new(BINARY)
        .args([
            "--server", uri, "append", &stream, "--jsonl", "-", "--expect", "0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run evenire");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"{\"type\":\"Paid\",\"data\":{\"amount\":42}}\n{\"type\":\"Blob\",\"data\":null}\n",
        )
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    assert!(stdout(&output).contains("appended 2 event(s)"));

    let binary = std::env::temp_dir().join(format!("evenire-cli-{}.bin", std::process::id()));
    std::fs::write(&binary, [0xff, 0x00, 0x10]).expect("write data file");
    let from_file = format!("@{}", binary.display());
    let output = evenire(
        uri,
        &["append", &stream, "--type", "Raw", "--data", &from_file],
    );
    assert!(output.status.success(), "{}", stderr(&output));

    let table = stdout(&evenire(uri, &["read", &stream]));
    let lines: Vec<_> = table.lines().collect();
    assert!(lines[0].starts_with("STREAM") && lines[0].contains("DATA"));
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[1].contains("Placed") && lines[1].contains("{\"total\":42}"));
    assert!(
        lines[4].contains("base64:/wAQ"),
        "non-JSON data as base64: {}",
        lines[4]
    );

    let json = stdout(&evenire(
        uri,
        &["--json", "read", &stream, "--backward", "--max", "2"],
    ));
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["version"], 3);
    assert_eq!(events[0]["data_base64"], "/wAQ");
    assert_eq!(events[1]["type"], "Blob");

    let info: serde_json::Value =
        serde_json::from_str(&stdout(&evenire(uri, &["--json", "info", &stream]))).expect("json");
    assert_eq!(
        (info["version"].as_u64(), info["event_count"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(info["state"], "live");

    let server_info: serde_json::Value =
        serde_json::from_str(&stdout(&evenire(uri, &["--json", "server"]))).expect("json");
    assert_eq!(server_info["state"], "serving");
    assert_eq!(server_info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (
            server_info["store"]["streams"].as_u64(),
            server_info["store"]["events"].as_u64()
        ),
        (Some(1), Some(4))
    );
    let table = stdout(&evenire(uri, &["server"]));
    assert!(
        table.contains("state           serving") && table.contains("events          4"),
        "{table}"
    );

    let streams = stdout(&evenire(uri, &["streams", "--type", "order"]));
    assert!(streams.contains(&stream) && streams.contains("live"));
    let none = evenire(uri, &["streams", "--type", "sensor"]);
    assert!(none.status.success() && stdout(&none).is_empty());

    let stale = evenire(uri, &["delete", &stream, "--expect", "1"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("actual 3"), "{}", stderr(&stale));
    let deleted = evenire(uri, &["delete", &stream, "--tombstone", "--expect", "3"]);
    assert!(deleted.status.success());
    assert!(stdout(&deleted).contains("tombstoned"));
    let refused = evenire(uri, &["append", &stream, "--type", "Late"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("tombstoned") && message.lines().count() == 1,
        "{message}"
    );
    let _ = std::fs::remove_file(binary);
}

#[test]
fn tail_follows_new_events() {
    let server = server();
    let uri = server.uri.as_str();
    let mut tail = Command::new(BINARY)
        .args([
            "--server",
            uri,
            "--json",
            "tail",
            "--all",
            "--stream-type",
            "sensor",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run evenire tail");
    let mut lines = BufReader::new(tail.stdout.take().expect("stdout")).lines();
    // The subscription starts at the end: give it a moment to be in place, then append
    // until the tail prints (appends before it subscribed are not shown).
    let sensor = format!("sensor/{KEY}");
    let other = format!("order/{KEY}");
    let reader = std::thread::spawn(move || lines.next().map(|l| l.expect("line")));
    for _ in 0..100 {
        evenire(uri, &["append", &other, "--type", "Ignored"]);
        evenire(
            uri,
            &[
                "append",
                &sensor,
                "--type",
                "ReadingTaken",
                "--data",
                "{\"c\": 21.5}",
            ],
        );
        if reader.is_finished() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let first = reader
        .join()
        .expect("reader")
        .expect("tail printed an event");
    // Its reader has gone (the pipe's read end is closed): the next event it prints
    // ends it quietly, with status 0, as `evenire tail | head -1` would.
    let mut ended = None;
    for _ in 0..100 {
        evenire(uri, &["append", &sensor, "--type", "ReadingTaken"]);
        if let Some(status) = tail.try_wait().expect("wait") {
            ended = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = tail.kill();
    let status = ended.expect("tail ended once nobody read its output");
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut tail.stderr.take().expect("stderr"), &mut errors)
        .expect("read stderr");
    assert!(status.success(), "{status:?}: {errors}");
    assert!(!errors.contains("panicked"), "{errors}");
    let event: serde_json::Value = serde_json::from_str(&first).expect("json");
    assert_eq!(
        event["stream"],
        sensor.as_str(),
        "the filter kept only sensor streams"
    );
    assert_eq!(event["data"]["c"], 21.5);
    let _ = tail.wait();
}

#[test]
fn errors_are_one_line_with_the_documented_exit_codes() {
    // Nothing listens on port 1.
    let down = evenire("http://127.0.0.1:1", &["streams"]);
    assert_eq!(down.status.code(), Some(1));
    let message = stderr(&down);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("cannot reach the server at http://127.0.0.1:1"),
        "{message}"
    );

    let usage = evenire("http://127.0.0.1:1", &["read", "not-a-stream"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("TYPE/KEY"));
    let unknown = evenire("http://127.0.0.1:1", &["frobnicate"]);
    assert_eq!(unknown.status.code(), Some(2));
    let bad_expect = evenire(
        "http://127.0.0.1:1",
        &["delete", &format!("order/{KEY}"), "--expect", "soon"],
    );
    assert_eq!(bad_expect.status.code(), Some(2));

    let server = server();
    let missing = evenire(&server.uri, &["info", &format!("order/{KEY}")]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not found"));
    let health = evenire(&server.uri, &["--json", "health"]);
    assert!(stdout(&health).contains("\"SERVING\""));
}

#[test]
fn tls_and_token_flags_reach_a_server_with_mutual_tls_and_tokens() {
    let pki = evenire_testkit::tls::Pki::new("ca");
    let tokens = evenire_testkit::tls::token_file(pki.dir(), &[("cli-token", "admin")]);
    let server_pair = pki.server("server");
    let client_pair = pki.client("operator");
    let ca = pki.ca_file.to_str().expect("a path").to_string();
    let cert = client_pair.cert.to_str().expect("a path").to_string();
    let key = client_pair.key.to_str().expect("a path").to_string();
    let flags = [
        "--ca",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
        "--token",
        "cli-token",
    ];
    let server = server_with("https", &flags, |config| {
        config.tls_cert = Some(server_pair.cert.clone());
        config.tls_key = Some(server_pair.key.clone());
        config.tls_client_ca = Some(pki.ca_file.clone());
        config.auth_tokens = Some(tokens.clone());
    });
    let uri = server.uri.as_str();
    let with = |args: &[&str]| -> Output {
        let all: Vec<&str> = flags.iter().copied().chain(args.iter().copied()).collect();
        evenire(uri, &all)
    };

    let stream = format!("order/{KEY}");
    let appended = with(&["append", &stream, "--type", "Placed", "--data", "{}"]);
    assert!(appended.status.success(), "{}", stderr(&appended));
    let read = with(&["--json", "read", &stream]);
    assert!(stdout(&read).contains("\"Placed\""), "{}", stdout(&read));
    assert!(with(&["health"]).status.success());

    // The token from the environment works as the flag does.
    let from_env = Command::new(BINARY)
        .args(["--server", uri])
        .args(&flags[..6])
        .args(["info", &stream])
        .env("EVENIRE_TOKEN", "cli-token")
        .output()
        .expect("run evenire");
    assert!(from_env.status.success(), "{}", stderr(&from_env));

    // Without the token, or without a client certificate, the server refuses: exit 1,
    // one line that says why.
    let no_token = evenire(uri, &[&flags[..6], &["info", stream.as_str()]].concat());
    assert_eq!(no_token.status.code(), Some(1), "{}", stderr(&no_token));
    assert!(
        stderr(&no_token).contains("unauthenticated"),
        "{}",
        stderr(&no_token)
    );
    let refused = evenire(uri, &["--ca", &ca, "--token", "cli-token", "info", &stream]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert_eq!(stderr(&refused).lines().count(), 1, "{}", stderr(&refused));

    // Settings that cannot work are usage errors that name the flag.
    let missing = evenire(uri, &["--ca", "/nonexistent/ca.pem", "info", &stream]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--ca /nonexistent/ca.pem"),
        "{}",
        stderr(&missing)
    );
    let clear = evenire(
        &uri.replacen("https", "http", 1),
        &["--ca", &ca, "info", &stream],
    );
    assert_eq!(clear.status.code(), Some(2), "{}", stderr(&clear));
    assert!(stderr(&clear).contains("https://"), "{}", stderr(&clear));
}

#[test]
fn the_server_address_is_taken_with_or_without_a_scheme_and_from_evenire_server() {
    let server = server();
    let bare = server.uri.trim_start_matches("http://").to_string();
    for address in [server.uri.as_str(), bare.as_str()] {
        let health = evenire(address, &["health"]);
        assert!(health.status.success(), "{address}: {}", stderr(&health));
    }
    let from_env = Command::new(BINARY)
        .arg("health")
        .env("EVENIRE_SERVER", &bare)
        .output()
        .expect("run evenire");
    assert!(from_env.status.success(), "{}", stderr(&from_env));
    for malformed in ["127.0.0.1", "ftp://127.0.0.1:5243", "not an address"] {
        let refused = evenire(malformed, &["health"]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{malformed}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains("--server"),
            "{}",
            stderr(&refused)
        );
    }
}

#[test]
fn json_looking_data_that_does_not_parse_is_refused_unless_raw() {
    let server = server();
    let stream = format!("order/{KEY}");
    let broken = [
        "append",
        &stream,
        "--type",
        "Placed",
        "--data",
        "{\"total\": 42",
    ];
    let refused = evenire(&server.uri, &broken);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--data looks like JSON") && stderr(&refused).contains("--raw"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        evenire(&server.uri, &["info", &stream]).status.code(),
        Some(1),
        "nothing was written"
    );
    let raw: Vec<&str> = broken.iter().copied().chain(["--raw"]).collect();
    let stored = evenire(&server.uri, &raw);
    assert!(stored.status.success(), "{}", stderr(&stored));
    let text = evenire(
        &server.uri,
        &[
            "append",
            &stream,
            "--type",
            "Noted",
            "--data",
            "plain words",
        ],
    );
    assert!(
        text.status.success(),
        "text that is not JSON-looking is stored as it is"
    );
}

#[test]
fn read_all_ends_and_tail_prints_one_header_marks_catching_up_and_resumes_after() {
    /// A line of the tail's output, and which stream it came on ("out" or "err").
    type Line = (&'static str, String);
    let server = server();
    let uri = server.uri.as_str();
    let sensor = format!("sensor-eu/{KEY}");
    let order = format!("order/{KEY}");
    let mut positions = Vec::new();
    for (stream, event_type) in [
        (&sensor, "A"),
        (&order, "B"),
        (&sensor, "C"),
        (&sensor, "D"),
    ] {
        let appended = evenire(uri, &["--json", "append", stream, "--type", event_type]);
        assert!(appended.status.success(), "{}", stderr(&appended));
        let value: serde_json::Value = serde_json::from_str(&stdout(&appended)).expect("json");
        positions.push(value["position"].as_u64().expect("a position"));
    }

    // read --all reads the whole log and ends; with --from, --max and --backward too.
    let all = evenire(uri, &["read", "--all"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let lines: Vec<String> = stdout(&all).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 5, "a header and four events: {lines:?}");
    assert!(lines[0].starts_with("STREAM"));
    let from = positions[2].to_string();
    let tail_of_log = evenire(uri, &["--json", "read", "--all", "--from", &from]);
    let types: Vec<String> = stdout(&tail_of_log)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["type"].to_string())
        .collect();
    assert_eq!(types, ["\"C\"", "\"D\""]);
    let last = evenire(
        uri,
        &["--json", "read", "--all", "--backward", "--max", "1"],
    );
    assert!(stdout(&last).contains("\"D\""), "{}", stdout(&last));

    // tail after the first sensor event, by prefix: the rest of the history under one
    // header, a caught-up mark on stderr, then live events under the same header.
    let after = positions[0].to_string();
    let mut tail = Command::new(BINARY)
        .args([
            "--server",
            uri,
            "tail",
            "--all",
            "--stream-type-prefix",
            "sensor",
        ])
        .args(["--after", &after])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run evenire tail");
    let (sender, received) = std::sync::mpsc::channel();
    let out = BufReader::new(tail.stdout.take().expect("stdout"));
    let err = BufReader::new(tail.stderr.take().expect("stderr"));
    for (source, lines) in [
        ("out", Box::new(out) as Box<dyn BufRead + Send>),
        ("err", Box::new(err)),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let _ = sender.send((source, line));
            }
        });
    }
    let wait_for = |what: &str, done: &dyn Fn(&[Line]) -> bool, seen: &mut Vec<Line>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done(seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("{what}: saw only {seen:?}"),
            }
        }
    };
    let rows = |seen: &[Line]| {
        seen.iter()
            .filter(|(s, l)| *s == "out" && !l.starts_with("STREAM"))
            .count()
    };
    let mut seen = Vec::new();
    wait_for(
        "the history and the caught-up mark",
        &|seen| {
            rows(seen) == 2
                && seen
                    .iter()
                    .any(|(s, l)| *s == "err" && l.contains("caught up"))
        },
        &mut seen,
    );
    evenire(uri, &["append", &sensor, "--type", "E"]);
    wait_for("the live event", &|seen| rows(seen) == 3, &mut seen);
    let _ = tail.kill();
    let _ = tail.wait();
    let out: Vec<&String> = seen
        .iter()
        .filter(|(s, _)| *s == "out")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        out.iter().filter(|l| l.starts_with("STREAM")).count(),
        1,
        "one header: {out:?}"
    );
    assert!(out[0].starts_with("STREAM"), "{out:?}");
    let shown: Vec<&str> = out[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(3).expect("a type column"))
        .collect();
    assert_eq!(
        shown,
        ["C", "D", "E"],
        "after the first event, sensor streams only"
    );
}

#[test]
fn a_backup_killed_midway_leaves_no_manifest_and_the_next_run_finishes_it() {
    let server = server();
    let uri = server.uri.as_str();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = evenire_client::Client::connect(uri.to_string())
            .await
            .expect("connect");
        let stream = evenire_client::StreamId::new(uuid::Uuid::new_v4(), "order");
        for _ in 0..200 {
            let events =
                (0..100).map(|_| evenire_client::EventData::new("Placed", "x".repeat(1000)));
            client
                .append(&stream, evenire_client::ExpectedVersion::Any, events)
                .await
                .expect("append");
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("backup");
    let mut running = Command::new(BINARY)
        .args(["--server", uri, "backup"])
        .arg(&backup)
        .stdout(Stdio::null())
        .spawn()
        .expect("run evenire backup");
    let segment = backup.join("segment-00000000000000000000.log");
    while std::fs::metadata(&segment).map_or(0, |m| m.len()) == 0 {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let finished_first = running.try_wait().expect("wait").is_some();
    running.kill().expect("kill -9");
    let _ = running.wait();
    if !finished_first {
        assert!(
            !backup.join("evenire-backup.json").exists(),
            "a backup killed midway has no manifest"
        );
    }
    let resumed = evenire(uri, &["backup", backup.to_str().expect("UTF-8")]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let said = stdout(&resumed);
    let number_after = |word: &str| -> u64 {
        said.split(word)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no `{word}` figure in {said}"))
    };
    let (total, fetched) = (number_after("file(s), "), number_after("fetched "));
    assert!(
        fetched < total,
        "the second run fetched only the rest: {said}"
    );
    assert!(backup.join("evenire-backup.json").exists());
    let manifest = evenire_client::backup::Manifest::read(&backup)
        .expect("read")
        .expect("a manifest");
    assert_eq!(manifest.position, 20_000);
}

#[test]
fn a_snapshot_is_saved_and_a_stream_read_from_it() {
    let server = server();
    let uri = server.uri.as_str();
    let stream = format!("account/{KEY}");
    for amount in 1..=4 {
        let appended = evenire(
            uri,
            &[
                "append",
                &stream,
                "--type",
                "Deposited",
                "--data",
                &format!("{{\"amount\": {amount}}}"),
            ],
        );
        assert!(appended.status.success(), "{}", stderr(&appended));
    }
    let saved = evenire(
        uri,
        &[
            "snapshot",
            "save",
            &stream,
            "--version",
            "2",
            "--type",
            "Balance",
            "--data",
            "{\"balance\": 6}",
        ],
    );
    assert!(saved.status.success(), "{}", stderr(&saved));
    assert!(
        stdout(&saved).contains("at version 2"),
        "{}",
        stdout(&saved)
    );

    let read = evenire(uri, &["snapshot", "read", &stream]);
    assert!(read.status.success(), "{}", stderr(&read));
    let text = stdout(&read);
    assert!(text.starts_with("snapshot at version 2 (Balance"), "{text}");
    assert!(text.contains("{\"balance\":6}"), "{text}");
    assert_eq!(
        text.matches("Deposited").count(),
        1,
        "only the event after it: {text}"
    );

    let json = evenire(uri, &["--json", "snapshot", "read", &stream]);
    let lines: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(lines[0]["data"]["balance"], 6);
    assert_eq!(lines[1]["version"], 3);

    let ahead = evenire(
        uri,
        &[
            "snapshot",
            "save",
            &stream,
            "--version",
            "9",
            "--type",
            "Balance",
            "--data",
            "{}",
        ],
    );
    assert_eq!(ahead.status.code(), Some(1));
    assert!(
        stderr(&ahead).contains("readable versions are 0 to 3"),
        "{}",
        stderr(&ahead)
    );
}

#[test]
fn rules_are_set_and_shown_and_reads_obey_them() {
    let server = server();
    let uri = server.uri.as_str();
    let stream = format!("sensor/{KEY}");
    for n in 0..5 {
        let appended = evenire(
            uri,
            &[
                "append",
                &stream,
                "--type",
                "Read",
                "--data",
                &n.to_string(),
            ],
        );
        assert!(appended.status.success(), "{}", stderr(&appended));
    }
    let set = evenire(
        uri,
        &[
            "rules",
            &stream,
            "--max-count",
            "2",
            "--expect-revision",
            "0",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(
        stdout(&set).contains("max count 2 (revision 1)"),
        "{}",
        stdout(&set)
    );
    let info = stdout(&evenire(uri, &["info", &stream]));
    assert!(info.contains("max count 2 (revision 1)"), "{info}");
    assert!(info.contains("events          2"), "{info}");
    let read = stdout(&evenire(uri, &["read", &stream]));
    assert_eq!(read.lines().count(), 3, "a header and two events: {read}");
    let stale = evenire(uri, &["rules", &stream, "--expect-revision", "0"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("revision 1"), "{}", stderr(&stale));
    let aged = evenire(uri, &["rules", &stream, "--max-age", "30d"]);
    assert!(
        stdout(&aged).contains("max age 30d (revision 2)"),
        "{}",
        stdout(&aged)
    );
    let json = stdout(&evenire(uri, &["--json", "info", &stream]));
    assert!(json.contains("\"max_age_seconds\":2592000"), "{json}");
    let bad = evenire(uri, &["rules", &stream, "--max-age", "a month"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not a duration"), "{}", stderr(&bad));
}

#[test]
fn scavenge_shows_what_a_dry_run_would_free_then_frees_it() {
    let server = server_with("http", &[], |config| {
        config.segment_size = evenire_server::config::ByteSize(4 << 10);
    });
    let uri = server.uri.as_str();
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = dir.path().join("events.jsonl");
    let line = |n: usize| format!("{{\"type\": \"Read\", \"data\": {{\"n\": {n}}}}}\n");
    std::fs::write(&lines, (0..20).map(line).collect::<String>()).expect("write events");
    let lines = lines.to_string_lossy();
    for stream in ["gone", "kept"] {
        for _ in 0..10 {
            let appended = evenire(
                uri,
                &["append", &format!("{stream}/{KEY}"), "--jsonl", &lines],
            );
            assert!(appended.status.success(), "{}", stderr(&appended));
        }
    }
    let deleted = evenire(uri, &["delete", &format!("gone/{KEY}")]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));

    let dry = evenire(uri, &["--json", "scavenge", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let would: serde_json::Value = serde_json::from_str(&stdout(&dry)).expect("json");
    let freed_bytes = would["bytes_freed"].as_u64().expect("bytes_freed");
    assert!(
        would["dry_run"].as_bool().expect("dry_run") && freed_bytes > 0,
        "{would}"
    );
    assert_eq!(would["by_type"][0]["stream_type"], "gone", "{would}");
    assert!(
        stderr(&dry).contains("(dry run)"),
        "progress per segment on stderr"
    );

    let real = evenire(uri, &["scavenge", "--rate-limit", "10MiB"]);
    assert!(real.status.success(), "{}", stderr(&real));
    let said = stdout(&real);
    assert!(
        said.starts_with(&format!("freed {freed_bytes} bytes")),
        "{said}"
    );
    assert!(said.contains("  gone: "), "{said}");
    let kept = stdout(&evenire(uri, &["read", &format!("kept/{KEY}")]));
    assert_eq!(
        kept.lines().count(),
        201,
        "a header and every kept event: {kept}"
    );

    let bad = evenire(uri, &["scavenge", "--rate-limit", "fast"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("fast"), "{}", stderr(&bad));
}

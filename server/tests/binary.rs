//! The real `evenire-server` binary: its flags, its start-up log, a graceful SIGTERM
//! that keeps every acknowledged event, and a clear refusal to start on a damaged log.

use evenire_client::{Client, Direction, EventData, ExpectedVersion, ReadFrom, StreamId};
use evenire_server::store::record::Entry;
use evenire_server::store::segment::records;
use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::process::Command;
use tokio_stream::StreamExt;

mod common;
use common::{BINARY, offline, terminate, wait};

/// The binary on a free port, with its URI.
fn start(data_dir: &Path) -> (ServerProcess, String) {
    let server = common::start(data_dir, &[]);
    let uri = server.uri();
    (server, uri)
}

/// The versions a forward read of `stream` returns.
async fn versions_of(uri: &str, stream: &StreamId) -> Vec<u64> {
    let client = Client::connect(uri.to_string()).await.expect("connect");
    let mut events = client
        .read(stream, ReadFrom::Start, Direction::Forward, None)
        .await
        .expect("read");
    let mut versions = Vec::new();
    while let Some(event) = events.next().await {
        versions.push(event.expect("event").version);
    }
    versions
}

#[test]
fn help_documents_every_setting_with_its_variable_and_default() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env, default) in [
        ("--listen", "EVENIRE_LISTEN", "127.0.0.1:5243"),
        ("--data-dir", "EVENIRE_DATA_DIR", "./evenire-data"),
        ("--cache-size", "EVENIRE_CACHE_SIZE", "256MiB"),
        ("--fsync", "EVENIRE_FSYNC", "always"),
        ("--segment-size", "EVENIRE_SEGMENT_SIZE", "64MiB"),
        ("--max-event-size", "EVENIRE_MAX_EVENT_SIZE", "4MiB"),
        (
            "--max-events-per-append",
            "EVENIRE_MAX_EVENTS_PER_APPEND",
            "10000",
        ),
        ("--max-request-size", "EVENIRE_MAX_REQUEST_SIZE", "16MiB"),
        ("--max-pending-bytes", "EVENIRE_MAX_PENDING_BYTES", "64MiB"),
        ("--max-connections", "EVENIRE_MAX_CONNECTIONS", "1024"),
        (
            "--max-connections-per-ip",
            "EVENIRE_MAX_CONNECTIONS_PER_IP",
            "256",
        ),
        (
            "--handshake-timeout-secs",
            "EVENIRE_HANDSHAKE_TIMEOUT_SECS",
            "5",
        ),
        (
            "--max-concurrent-streams",
            "EVENIRE_MAX_CONCURRENT_STREAMS",
            "256",
        ),
        ("--max-open-reads", "EVENIRE_MAX_OPEN_READS", "512"),
        (
            "--max-open-reads-per-connection",
            "EVENIRE_MAX_OPEN_READS_PER_CONNECTION",
            "256",
        ),
        (
            "--max-open-reads-per-ip",
            "EVENIRE_MAX_OPEN_READS_PER_IP",
            "384",
        ),
        ("--shutdown-grace-secs", "EVENIRE_SHUTDOWN_GRACE_SECS", "10"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from --help"
        );
        assert!(
            help.contains(&format!("default: {default}")),
            "{flag} default missing"
        );
    }
}

#[test]
fn sigterm_stops_cleanly_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");

    let (mut server, uri) = start(dir.path());
    runtime.block_on(async {
        let client = Client::connect(&uri).await.expect("connect");
        for i in 0..20 {
            let event = EventData::new("Numbered", i.to_string());
            let expected = match i {
                0 => ExpectedVersion::NoStream,
                _ => ExpectedVersion::Exact(i - 1),
            };
            client
                .append(&stream, expected, [event])
                .await
                .expect("append");
        }
    });
    terminate(&server);
    let status = wait(&mut server);
    assert!(status.success(), "exit status {status:?}");

    let (mut server, uri) = start(dir.path());
    let versions = runtime.block_on(versions_of(&uri, &stream));
    assert_eq!(versions, (0..20).collect::<Vec<_>>());
    terminate(&server);
    assert!(wait(&mut server).success());
}

#[test]
fn a_damaged_log_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let segment = dir.path().join("segment-00000000000000000000.log");
    std::fs::write(&segment, [0xAB; 100]).expect("write a bad segment");
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run the server");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("segment-00000000000000000000.log") && stderr.contains("offset 0"),
        "{stderr}"
    );
    assert!(stderr.contains("bad magic"), "{stderr}");
}

#[test]
fn settings_out_of_range_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--max-request-size",
            "2GiB",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run the server");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-request-size 2GiB"), "{stderr}");

    let output = Command::new(BINARY)
        .args(["--cache-size", "lots"])
        .output()
        .expect("run the server");
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--cache-size"));
}

#[test]
fn verify_and_repair_cut_the_log_at_the_first_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = StreamId::new(uuid::Uuid::new_v4(), "order");
    let (mut server, uri) = start(dir.path());
    runtime.block_on(async {
        let client = Client::connect(&uri).await.expect("connect");
        for i in 0..3 {
            let event = EventData::new("Numbered", i.to_string());
            client
                .append(&stream, ExpectedVersion::Any, [event])
                .await
                .expect("append");
        }
    });
    terminate(&server);
    assert!(wait(&mut server).success());

    let sound = offline(dir.path(), &["verify"]);
    assert!(sound.status.success());
    assert!(
        String::from_utf8_lossy(&sound.stdout)
            .contains("sound: 1 segment(s), 3 record(s), 3 event(s)")
    );

    // Damage the second of three appends: not a torn tail, so the server would refuse.
    let segment = dir.path().join("segment-00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let appends: Vec<_> = records(&bytes)
        .into_iter()
        .filter(|r| matches!(r.entry, Entry::Append(_)))
        .collect();
    assert_eq!(appends.len(), 3);
    let second = appends[1].offset as usize;
    bytes[second + 30] ^= 0x04;
    std::fs::write(&segment, &bytes).expect("write segment");

    let verify = offline(dir.path(), &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(report.contains(&format!("offset {second}")), "{report}");

    let dry_run = offline(dir.path(), &["repair", "--dry-run"]);
    assert_eq!(dry_run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dry_run.stdout).contains("would cut"));
    assert_eq!(
        std::fs::read(&segment).expect("read"),
        bytes,
        "a dry run changes nothing"
    );

    // An index on disk may cover what is cut: it goes.
    let index = dir.path().join("index");
    std::fs::create_dir(&index).expect("an index directory");
    let repair = offline(dir.path(), &["repair"]);
    assert!(
        repair.status.success(),
        "{}",
        String::from_utf8_lossy(&repair.stdout)
    );
    assert_eq!(
        std::fs::metadata(&segment).expect("stat").len(),
        second as u64
    );
    assert!(!index.exists(), "the index on disk is removed");
    assert!(offline(dir.path(), &["verify"]).status.success());

    let (mut server, uri) = start(dir.path());
    let versions = runtime.block_on(versions_of(&uri, &stream));
    assert_eq!(versions, vec![0], "the record before the damage survives");
    terminate(&server);
    assert!(wait(&mut server).success());
}

#[tokio::test]
async fn offline_commands_take_the_data_dir_after_them_and_refuse_a_live_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, uri) = start(dir.path());
    common::append_one(&uri).await.expect("append");
    let after = |args: &[&str]| {
        Command::new(common::binary())
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run evenire-server")
    };
    for args in [
        &["verify"][..],
        &["repair"],
        &["repair", "--skip-damaged-record"],
    ] {
        let refused = after(args);
        assert!(!refused.status.success(), "{args:?} on a live directory");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("in use by another Evenire process"),
            "{args:?}: {stderr}"
        );
    }
    terminate(&server);
    // Waited for off the runtime, so that the client's connection sees the server go.
    let status = tokio::task::spawn_blocking(move || wait(&mut server))
        .await
        .expect("wait");
    assert!(status.success());
    let verified = after(&["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

// Two threads: the watches' connection must go on while the test waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_health_watch_ends_at_shutdown_instead_of_holding_it() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let dir = tempfile::tempdir().expect("temp dir");
    // A grace period far longer than the wait below: a watch that held the shutdown
    // would fail the test.
    let mut server = common::start(dir.path(), &["--shutdown-grace-secs", "60"]);
    let addr = server.addr.clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut watches = Vec::new();
    for (service, status) in [
        ("", ServingStatus::Serving),
        (evenire_proto::SERVICE_NAME, ServingStatus::Serving),
        ("no.such.Service", ServingStatus::ServiceUnknown),
    ] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let mut watch = HealthClient::new(channel.clone())
            .watch(request)
            .await
            .expect("watch")
            .into_inner();
        let first = watch.message().await.expect("a status").expect("one");
        assert_eq!(first.status, status as i32, "{service:?}");
        watches.push(watch);
    }

    // Each watch is read to its end, as a probe would, while the server stops.
    let ended: Vec<_> = watches
        .into_iter()
        .map(|mut watch| {
            tokio::spawn(async move { while let Ok(Some(_)) = watch.message().await {} })
        })
        .collect();
    terminate(&server);
    let status = tokio::task::spawn_blocking(move || wait(&mut server))
        .await
        .expect("wait");
    assert!(status.success(), "stopped within 15 s, not the 60 s grace");
    for watch in ended {
        watch.await.expect("the watch ended");
    }
}

#[test]
fn version_names_the_commit_and_json_logs_are_one_object_per_line() {
    let version = Command::new(common::binary())
        .arg("--version")
        .output()
        .expect("run --version");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(
        version.contains("(commit ") && version.contains(" build)"),
        "{version}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(common::binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let serving = value["message"] == "serving";
        seen.push(value);
        if serving {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let starting = seen
        .iter()
        .find(|v| v["message"] == "starting")
        .unwrap_or_else(|| panic!("a starting line: {seen:?}"));
    assert!(
        starting["listen"]
            .as_str()
            .is_some_and(|l| l.starts_with("127.0.0.1:"))
    );
    assert_eq!(
        starting["version"].as_str(),
        version.split_once(' ').map(|(_, v)| v.trim())
    );
    assert_eq!(starting["level"], "INFO");
}

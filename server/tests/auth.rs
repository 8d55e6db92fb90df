//! Tokens with roles and stream-type scopes, against the real binary: every call
//! against every role (allowed and denied), scopes in single-stream calls, `$all` reads,
//! subscriptions and listings, missing, wrong, malformed and revoked tokens, client
//! certificates given a role, health open to all, reflection as its flag says, and admin
//! actions logged with the caller's name.

use evenire_client::{
    Client, Direction, Error, EventData, ExpectedVersion, ListStreams, ReadAllFrom, ReadFrom,
    StreamId, StreamRules, SubscribeFrom, SubscribeOptions, SubscriptionMessage,
};
use evenire_testkit::process::ServerProcess;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

mod common;

/// Each token is its name, for the tests: the file holds its SHA-256.
const TOKENS: &str = r#"
[[token]]
name = "reader"
sha256 = "filled in by token_file"
role = "read"

[[token]]
name = "writer"
sha256 = "filled in by token_file"
role = "write"

[[token]]
name = "admin"
sha256 = "filled in by token_file"
role = "admin"

[[token]]
name = "orders"
sha256 = "filled in by token_file"
role = "admin"
stream_types = ["order"]
"#;

/// The SHA-256 of `text` in hex, with the command-line tool every machine has: what an
/// operator does to fill in the file.
fn sha256_hex(text: &str) -> String {
    let output = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// The token file with the tokens `names`, each digest computed here.
fn token_file(dir: &Path, names: &[&str]) -> PathBuf {
    let mut text = String::new();
    for block in TOKENS.split("[[token]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("a name");
        if !names.contains(&name) {
            continue;
        }
        let block: String = block
            .lines()
            .map(|l| match l.starts_with("sha256") {
                true => format!("sha256 = \"{}\"", sha256_hex(name)),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push_str("[[token]]");
        text.push_str(&block);
        text.push('\n');
    }
    write_token_file(dir, &text)
}

/// Puts `text` in place as the token file, renamed over the old one.
fn write_token_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("tokens.toml");
    let next = dir.join("tokens.next");
    std::fs::write(&next, text).expect("write the token file");
    std::fs::rename(&next, &path).expect("put it in place");
    path
}

const ALL: [&str; 4] = ["reader", "writer", "admin", "orders"];

fn start(extra: &[&str]) -> (tempfile::TempDir, tempfile::TempDir, ServerProcess) {
    let tokens_dir = tempfile::tempdir().expect("temp dir");
    let path = token_file(tokens_dir.path(), &ALL);
    let data = tempfile::tempdir().expect("temp dir");
    let mut args = vec!["--auth-tokens", path.to_str().expect("a path")];
    args.extend(extra);
    let server = ServerProcess::start(&common::binary(), data.path(), &args)
        .unwrap_or_else(|e| panic!("{e}"));
    (tokens_dir, data, server)
}

async fn client(server: &ServerProcess, token: &str) -> Client {
    Client::builder(server.uri())
        .token(token)
        .connect()
        .await
        .expect("connect")
}

/// Appends one event of `event_type` to `stream`, whatever its version.
async fn add(client: &Client, stream: &StreamId, event_type: &str) -> Result<(), Error> {
    client
        .append(
            stream,
            ExpectedVersion::Any,
            [EventData::new(event_type, "{}")],
        )
        .await
        .map(|_| ())
}

fn order() -> StreamId {
    StreamId::new(uuid::Uuid::new_v4(), "order")
}

/// Each call, made by `client` on `stream` (which the admin has filled): Ok or the error.
async fn calls(client: &Client, stream: &StreamId) -> Vec<(&'static str, Result<(), Error>)> {
    let event = || [EventData::new("Tested", "{}")];
    let mut outcomes = Vec::new();
    outcomes.push((
        "Read",
        match client
            .read(stream, ReadFrom::Start, Direction::Forward, None)
            .await
        {
            Ok(mut events) => events.next().await.expect("an event").map(|_| ()),
            Err(e) => Err(e),
        },
    ));
    outcomes.push((
        "ReadAll",
        match client
            .read_all(ReadAllFrom::Start, Direction::Forward, Some(1))
            .await
        {
            Ok(mut events) => events.next().await.expect("an event").map(|_| ()),
            Err(e) => Err(e),
        },
    ));
    outcomes.push((
        "Subscribe",
        client
            .subscribe(stream, SubscribeFrom::Start, SubscribeOptions::default())
            .await
            .map(|_| ()),
    ));
    outcomes.push((
        "ListStreams",
        client
            .list_streams(&ListStreams::default())
            .await
            .map(|_| ()),
    ));
    outcomes.push(("GetStream", client.get_stream(stream).await.map(|_| ())));
    outcomes.push(("GetServerInfo", client.server_info().await.map(|_| ())));
    outcomes.push((
        "Append",
        client
            .append(stream, ExpectedVersion::Any, event())
            .await
            .map(|_| ()),
    ));
    outcomes.push((
        "SaveSnapshot",
        client.save_snapshot(stream, 0, "Tested", "{}").await,
    ));
    outcomes.push((
        "ReadFromSnapshot",
        client.read_from_snapshot(stream).await.map(|_| ()),
    ));
    outcomes.push((
        "SetStreamRules",
        client
            .set_stream_rules(stream, StreamRules::default(), None)
            .await
            .map(|_| ()),
    ));
    let backup = tempfile::tempdir().expect("temp dir");
    outcomes.push(("Backup", client.backup_to(backup.path()).await.map(|_| ())));
    outcomes.push((
        "Scavenge",
        client.scavenge_to_end(true, None).await.map(|_| ()),
    ));
    outcomes.push((
        "DeleteStream",
        client
            .delete_stream(stream, ExpectedVersion::Any, false)
            .await
            .map(|_| ()),
    ));
    outcomes
}

/// The role each call needs.
fn needs(call: &str) -> &'static str {
    match call {
        "Append" | "SaveSnapshot" => "write",
        "DeleteStream" | "SetStreamRules" | "Backup" | "Scavenge" => "admin",
        _ => "read",
    }
}

fn rank(role: &str) -> u8 {
    match role {
        "read" => 0,
        "write" => 1,
        _ => 2,
    }
}

#[tokio::test]
async fn every_call_against_every_role() {
    let (_tokens, _data, server) = start(&[]);
    let admin = client(&server, "admin").await;
    for (token, role) in [("reader", "read"), ("writer", "write"), ("admin", "admin")] {
        let stream = order();
        add(&admin, &stream, "Placed")
            .await
            .expect("the admin appends");
        let caller = client(&server, token).await;
        for (call, outcome) in calls(&caller, &stream).await {
            match (rank(role) >= rank(needs(call)), outcome) {
                (true, Ok(())) => {}
                (false, Err(Error::PermissionDenied(message))) => assert!(
                    message.contains(call)
                        && message.contains(&format!("`{}` role", needs(call)))
                        && message.contains(&format!("`{token}` has `{role}`")),
                    "{call} by {token}: {message}"
                ),
                (allowed, outcome) => {
                    panic!("{call} by {token} (allowed: {allowed}): {outcome:?}")
                }
            }
        }
    }
}

#[tokio::test]
async fn missing_wrong_malformed_and_revoked_tokens_are_unauthenticated() {
    let (tokens, _data, server) = start(&[]);
    let stream = order();
    let nobody = Client::connect(server.uri()).await.expect("connect");
    for (call, outcome) in calls(&nobody, &stream).await {
        match outcome {
            Err(Error::Unauthenticated(message)) => {
                assert!(message.contains("no credentials"), "{call}: {message}")
            }
            other => panic!("{call} without a token: {other:?}"),
        }
    }
    let wrong = client(&server, "not-a-token").await;
    for (call, outcome) in calls(&wrong, &stream).await {
        match outcome {
            Err(Error::Unauthenticated(message)) => {
                assert!(message.contains("not known"), "{call}: {message}")
            }
            other => panic!("{call} with a wrong token: {other:?}"),
        }
    }

    // Malformed: a scheme other than Bearer.
    let mut raw = evenire_proto::v1::event_store_service_client::EventStoreServiceClient::connect(
        server.uri(),
    )
    .await
    .expect("connect");
    let mut request = tonic::Request::new(evenire_proto::v1::ListStreamsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Basic YWRtaW4=".parse().expect("a value"));
    let status = raw.list_streams(request).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("Bearer"), "{}", status.message());

    // Revoked: the file changes without the writer's token, and the server sees it.
    let writer = client(&server, "writer").await;
    add(&writer, &stream, "Placed")
        .await
        .expect("the writer appends");
    token_file(tokens.path(), &["reader", "admin", "orders"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match add(&writer, &stream, "Placed").await {
            Err(Error::Unauthenticated(message)) => {
                assert!(message.contains("revoked"), "{message}");
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "the revoked token still works"),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.log_lines_with("token file reloaded").is_empty());
    client(&server, "admin")
        .await
        .get_stream(&stream)
        .await
        .expect("other tokens still work");
    // No token ever reaches the log.
    for token in ALL {
        assert!(
            server.log_lines_with(&format!("\"{token}\"")).is_empty()
                && server.log_lines_with(&format!("Bearer {token}")).is_empty(),
            "the log shows a token"
        );
    }
}

#[tokio::test]
async fn a_scoped_token_sees_and_touches_only_its_stream_types() {
    let (_tokens, _data, server) = start(&[]);
    let admin = client(&server, "admin").await;
    let (order, sensor) = (order(), StreamId::new(uuid::Uuid::new_v4(), "sensor"));
    for stream in [&sensor, &order, &sensor, &order, &sensor] {
        add(&admin, stream, "Happened").await.expect("append");
    }
    let orders = client(&server, "orders").await;

    // Calls that name another type's stream are denied, naming the scope.
    for (call, outcome) in calls(&orders, &sensor).await {
        match (call, outcome) {
            ("ReadAll" | "ListStreams" | "GetServerInfo", Ok(())) => {}
            ("Backup" | "Scavenge", Err(Error::PermissionDenied(message))) => {
                assert!(message.contains("every stream"), "{call}: {message}")
            }
            (_, Err(Error::PermissionDenied(message))) => assert!(
                message.contains("`order`") && message.contains("`sensor`"),
                "{call}: {message}"
            ),
            (_, outcome) => panic!("{call} on a sensor stream: {outcome:?}"),
        }
    }
    // Each call on its own type's stream goes through, but a backup and a scavenge,
    // which touch every stream.
    for (call, outcome) in calls(&orders, &order).await {
        assert_eq!(
            matches!(call, "Backup" | "Scavenge"),
            outcome.is_err(),
            "{call} on an order stream: {outcome:?}"
        );
    }

    // The server's figures count every type: a scoped token is not told them.
    let info = orders.server_info().await.expect("server info");
    assert_eq!(info.store, None, "{info:?}");
    let info = admin.server_info().await.expect("server info");
    assert!(
        info.store.is_some_and(|store| store.streams == 2),
        "{info:?}"
    );

    // $all and listings leave the other types out; counts are of what it sees.
    let events: Vec<_> = orders
        .read_all(ReadAllFrom::Start, Direction::Forward, Some(2))
        .await
        .expect("read $all")
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| &*e.stream.stream_type == "order"));
    let all: Vec<_> = orders
        .read_all(ReadAllFrom::End, Direction::Backward, None)
        .await
        .expect("read $all")
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("events");
    assert!(all.iter().all(|e| &*e.stream.stream_type == "order"));
    // The order stream was soft-deleted by the calls above: listed with the deleted.
    let list = ListStreams {
        include_deleted: true,
        ..ListStreams::default()
    };
    let page = orders.list_streams(&list).await.expect("list");
    assert!(!page.streams.is_empty());
    assert!(
        page.streams
            .iter()
            .all(|s| &*s.stream.stream_type == "order")
    );

    // A subscription to $all delivers its types only, and live ones too.
    let mut live = orders
        .subscribe_all(SubscribeFrom::Start, SubscribeOptions::default())
        .await
        .expect("subscribe");
    add(&admin, &sensor, "Late").await.expect("append");
    add(&admin, &order, "Last").await.expect("append");
    let mut seen = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(10), live.next()).await {
        if let SubscriptionMessage::Event(event) = message.expect("a message") {
            assert_eq!(&*event.stream.stream_type, "order", "{event:?}");
            let last = event.event_type.as_str() == "Last";
            seen.push(event);
            if last {
                break;
            }
        }
    }
    assert!(
        seen.last().is_some_and(|e| e.event_type.as_str() == "Last"),
        "the live order event arrives: {seen:?}"
    );
}

#[tokio::test]
async fn health_is_open_reflection_follows_its_flag_and_deletes_are_logged() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let (_tokens, _data, server) = start(&[]);
    let channel = tonic::transport::Endpoint::from_shared(server.uri())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health needs no credentials");
    assert_eq!(
        reflection(channel, None).await.expect_err("refused").code(),
        tonic::Code::Unauthenticated,
        "reflection is for callers the token file knows, by default"
    );

    let admin = client(&server, "admin").await;
    let stream = order();
    add(&admin, &stream, "Placed").await.expect("append");
    admin
        .delete_stream(&stream, ExpectedVersion::Any, true)
        .await
        .expect("tombstone");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.log_lines_with("stream deleted").is_empty() {
        assert!(Instant::now() < deadline, "no log line for the delete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = server.log_lines_with("stream deleted").remove(0);
    assert!(
        line.contains("caller=admin") && line.contains(&stream.key.to_string()),
        "{line}"
    );

    for (flag, code) in [("open", None), ("off", Some(tonic::Code::Unimplemented))] {
        let (_tokens, _data, server) = start(&["--reflection", flag]);
        let channel = tonic::transport::Endpoint::from_shared(server.uri())
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let outcome = reflection(channel.clone(), None).await;
        assert_eq!(outcome.err().map(|s| s.code()), code, "--reflection {flag}");
    }
    let channel = tonic::transport::Endpoint::from_shared(server.uri())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    reflection(channel, Some("reader"))
        .await
        .expect("any known token may use reflection");
}

/// Lists the services through reflection v1, with `token` when given.
async fn reflection(
    channel: tonic::transport::Channel,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut request = tonic::Request::new(tokio_stream::once(request));
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a value"),
        );
    }
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(request)
        .await?
        .into_inner();
    responses
        .message()
        .await?
        .map(|_| ())
        .ok_or_else(|| tonic::Status::unknown("no answer"))
}

#[tokio::test]
async fn client_certificates_are_given_roles_by_their_common_name() {
    let pki = evenire_testkit::tls::Pki::new("ca");
    let pair = pki.server("server");
    let tokens = tempfile::tempdir().expect("temp dir");
    let file = write_token_file(
        tokens.path(),
        &format!(
            "[[client_certificate]]\ncommon_name = \"reporting\"\nrole = \"read\"\n\n\
             [[token]]\nname = \"admin\"\nsha256 = \"{}\"\nrole = \"admin\"\n",
            sha256_hex("admin")
        ),
    );
    let data = tempfile::tempdir().expect("temp dir");
    let args = [
        "--tls-cert",
        pair.cert.to_str().expect("a path"),
        "--tls-key",
        pair.key.to_str().expect("a path"),
        "--tls-client-ca",
        pki.ca_file.to_str().expect("a path"),
        "--auth-tokens",
        file.to_str().expect("a path"),
    ];
    let server = ServerProcess::start(&common::binary(), data.path(), &args)
        .unwrap_or_else(|e| panic!("{e}"));
    let uri = format!("https://{}", server.addr);
    let connect = |cn: &str, token: &str| {
        let identity = pki.client(cn);
        Client::builder(uri.clone())
            .ca_certificate(pki.ca_pem.clone())
            .client_certificate(identity.cert_pem, identity.key_pem)
            .token(token)
            .connect()
    };

    let stream = order();
    let admin = connect("someone", "admin").await.expect("connect");
    add(&admin, &stream, "Placed")
        .await
        .expect("a token works over mutual TLS");

    let reporting = connect("reporting", "").await.expect("connect");
    reporting.get_stream(&stream).await.expect("read role");
    match add(&reporting, &stream, "Placed").await {
        Err(Error::PermissionDenied(message)) => {
            assert!(message.contains("`reporting` has `read`"), "{message}")
        }
        other => panic!("append by a read certificate: {other:?}"),
    }

    let stranger = connect("stranger", "").await.expect("connect");
    match stranger.get_stream(&stream).await {
        Err(Error::Unauthenticated(_)) => {}
        other => panic!("a certificate the file does not name: {other:?}"),
    }
}

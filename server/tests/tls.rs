//! TLS and mutual TLS against the real binary, with certificates made at test time:
//! clients that trust the server's CA are served; plaintext to a TLS server, TLS to a
//! plaintext one, and client certificates that are missing, expired or signed by
//! another CA get an error at once, not a hang, and the server's log says why; the
//! certificate is replaced on SIGHUP and when its files change, a bad file keeps the
//! old one, and no call fails across a rotation.

use evenire_client::{Client, EventData, ExpectedVersion, StreamId};
use evenire_testkit::process::ServerProcess;
use evenire_testkit::tls::{Pair, Pki};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

mod common;

/// How long a refused client may take to see its error: far more than it needs, far
/// less than a hang.
const REFUSED_WITHIN: Duration = Duration::from_secs(10);

fn start(args: &[&str]) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        ServerProcess::start(&common::binary(), dir.path(), args).unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn https(server: &ServerProcess) -> String {
    format!("https://{}", server.addr)
}

/// Connects over TLS trusting `ca`, presenting `identity` when given, and appends one
/// event to a new stream.
async fn append_over_tls(uri: &str, ca: &str, identity: Option<&Pair>) -> Result<(), String> {
    let mut builder = Client::builder(uri).ca_certificate(ca);
    if let Some(pair) = identity {
        builder = builder.client_certificate(pair.cert_pem.clone(), pair.key_pem.clone());
    }
    let client = builder.connect().await.map_err(|e| e.to_string())?;
    append(&client).await
}

async fn append(client: &Client) -> Result<(), String> {
    let stream = StreamId::new(uuid::Uuid::new_v4(), "tls");
    client
        .append(
            &stream,
            ExpectedVersion::Any,
            [EventData::new("Tested", "{}")],
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// That `call` fails, and soon.
async fn refused(what: &str, call: impl Future<Output = Result<(), String>>) -> String {
    match tokio::time::timeout(REFUSED_WITHIN, call).await {
        Ok(Err(e)) => e,
        Ok(Ok(())) => panic!("{what}: served, but should have been refused"),
        Err(_) => panic!("{what}: still waiting after {REFUSED_WITHIN:?}"),
    }
}

fn tls_args(pair: &Pair) -> Vec<&str> {
    vec!["--tls-cert", path(&pair.cert), "--tls-key", path(&pair.key)]
}

#[tokio::test]
async fn tls_serves_clients_that_trust_its_ca_and_tells_plaintext_apart() {
    let pki = Pki::new("ca");
    let pair = pki.server("server");
    let (_dir, server) = start(&tls_args(&pair));

    append_over_tls(&https(&server), &pki.ca_pem, None)
        .await
        .expect("a client that trusts the CA is served over TLS");

    // Told what to do, in the client's error, every time.
    for _ in 0..5 {
        let uri = format!("http://{}", server.addr);
        let e = refused("plaintext to a TLS server", async {
            let client = Client::connect(uri).await.map_err(|e| e.to_string())?;
            append(&client).await
        })
        .await;
        assert!(
            e.contains("this server requires TLS: connect with https://"),
            "{e}"
        );
    }
    common::logged(&server, "plaintext_to_tls=").await;

    let other = Pki::new("other");
    let e = refused(
        "a client that does not trust the server's CA",
        append_over_tls(&https(&server), &other.ca_pem, None),
    )
    .await;
    assert!(e.contains("connect"), "a connection error: {e}");
}

#[tokio::test]
async fn a_tls_client_of_a_plaintext_server_gets_an_error_at_once() {
    let pki = Pki::new("ca");
    let (_dir, server) = start(&[]);
    refused(
        "TLS to a plaintext server",
        append_over_tls(&https(&server), &pki.ca_pem, None),
    )
    .await;
    common::logged(&server, "tls_to_plaintext=1").await;
    common::append_one(&server.uri())
        .await
        .expect("plaintext clients are still served");
}

#[tokio::test]
async fn mutual_tls_refuses_missing_expired_and_foreign_client_certificates() {
    let pki = Pki::new("ca");
    let pair = pki.server("server");
    let mut args = tls_args(&pair);
    args.extend(["--tls-client-ca", path(&pki.ca_file)]);
    let (_dir, server) = start(&args);
    let uri = https(&server);

    append_over_tls(&uri, &pki.ca_pem, Some(&pki.client("reporting")))
        .await
        .expect("a client with a certificate the CA signed is served");

    refused(
        "no client certificate",
        append_over_tls(&uri, &pki.ca_pem, None),
    )
    .await;
    common::logged(&server, "tls_handshake_failed=1").await;

    refused(
        "an expired client certificate",
        append_over_tls(&uri, &pki.ca_pem, Some(&pki.expired_client("late"))),
    )
    .await;
    let foreign = Pki::new("foreign").client("stranger");
    refused(
        "a client certificate signed by another CA",
        append_over_tls(&uri, &pki.ca_pem, Some(&foreign)),
    )
    .await;
    // The next report counts them and says why the last one failed.
    common::logged(
        &server,
        "last_tls_failure=\"invalid peer certificate: UnknownIssuer\"",
    )
    .await;
}

/// Replaces a file as cert-manager and careful operators do: a new file renamed over it.
fn replace(target: &Path, contents: &str) {
    let next = target.with_extension("next");
    std::fs::write(&next, contents).expect("write the new file");
    std::fs::rename(&next, target).expect("rename it over the old one");
}

fn hangup(server: &ServerProcess) {
    server.signal("HUP").expect("SIGHUP");
}

#[tokio::test]
async fn certificates_are_replaced_on_sighup_and_on_change_without_failing_a_call() {
    let pki = Pki::new("ca");
    let pair = pki.server("server");
    let (_dir, server) = start(&tls_args(&pair));
    let uri = https(&server);

    // Load across the rotations: clients on open connections, and one that opens a
    // new connection for every call.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for reconnecting in [false, false, false, true] {
        let (uri, ca) = (uri.clone(), pki.ca_pem.clone());
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            let mut client = None;
            while !stop.load(Ordering::Relaxed) {
                let outcome = match (&client, reconnecting) {
                    (Some(client), false) => append(client).await,
                    _ => match Client::builder(uri.as_str())
                        .ca_certificate(ca.as_str())
                        .connect()
                        .await
                    {
                        Ok(connected) => {
                            let outcome = append(&connected).await;
                            client = Some(connected);
                            outcome
                        }
                        Err(e) => Err(e.to_string()),
                    },
                };
                calls.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = outcome {
                    eprintln!("a call failed across a rotation: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // A renewal from the same CA, as cert-manager makes, taken on SIGHUP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let renewed = pki.server("renewed");
    replace(&pair.key, &renewed.key_pem);
    replace(&pair.cert, &renewed.cert_pem);
    hangup(&server);
    common::logged(&server, "TLS files reloaded (SIGHUP)").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task");
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "no call fails across a rotation"
    );
    assert!(calls.load(Ordering::Relaxed) > 10, "the load ran");

    // A bad file keeps the certificate in use.
    replace(&pair.cert, "not a certificate");
    hangup(&server);
    common::logged(&server, "TLS files not reloaded (SIGHUP)").await;
    append_over_tls(&uri, &pki.ca_pem, None)
        .await
        .expect("served with the certificate read before");

    // A certificate from another CA, seen as the files change, with no signal: clients
    // that trust only the old CA are refused from then on.
    let moved = Pki::new("moved");
    let next = moved.server("next");
    replace(&pair.key, &next.key_pem);
    replace(&pair.cert, &next.cert_pem);
    common::logged(&server, "TLS files reloaded (a file changed)").await;
    append_over_tls(&uri, &moved.ca_pem, None)
        .await
        .expect("served with the new certificate");
    refused(
        "a client that trusts only the old CA",
        append_over_tls(&uri, &pki.ca_pem, None),
    )
    .await;
}

#[tokio::test]
async fn serving_beyond_loopback_without_tls_and_client_authentication_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(common::binary())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run the server");
    assert!(!output.status.success(), "refused to start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("--insecure"),
        "says why and what to do: {stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none(),
        "nothing written"
    );

    let pki = Pki::new("ca");
    let pair = pki.server("server");
    let mut args = vec!["--listen", "0.0.0.0:0", "--data-dir", path(dir.path())];
    args.extend(tls_args(&pair));
    let output = std::process::Command::new(common::binary())
        .args(&args)
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("clients that give no credentials"),
        "TLS alone is not enough: {stderr}"
    );
}

#[tokio::test]
async fn health_alone_is_served_in_clear_on_its_own_port_for_probes() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let pki = Pki::new("ca");
    let pair = pki.server("server");
    let mut args = tls_args(&pair);
    args.extend(["--health-listen", "127.0.0.1:0"]);
    let (_dir, server) = start(&args);
    let addr = common::logged_field(&server, "health_listen").await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("a plaintext connection");
    let checked = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health in clear")
        .into_inner();
    assert_eq!(checked.status, ServingStatus::Serving as i32);
    // Nothing else is served there.
    let client = Client::from_channel(channel);
    match append(&client).await {
        Err(e) => assert!(e.contains("not implemented"), "{e}"),
        Ok(()) => panic!("the event store is not on the health port"),
    }
}

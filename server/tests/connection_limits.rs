//! Connections that never become clients, against the real binary: they are closed
//! once the handshake timeout passes, one address cannot hold every place, and a flood
//! of refusals is one log line, not one per connection.

use evenire_testkit::net::connect_from;
use evenire_testkit::process::ServerProcess;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

mod common;

/// Where the flooding connections come from: another loopback address.
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn start(args: &[&str]) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        ServerProcess::start(&common::binary(), dir.path(), args).unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

async fn idle_connections(server: &ServerProcess, count: usize) -> Vec<TcpStream> {
    let addr: SocketAddr = server.addr.parse().expect("an address");
    let mut connections = Vec::new();
    for _ in 0..count {
        connections.push(
            connect_from(FLOODER, addr)
                .await
                .expect("the kernel accepts"),
        );
    }
    connections
}

/// Whether the server has closed `connection` (it reads end of file or a reset)
/// within `wait`.
async fn closed_within(connection: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(wait, connection.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// An append from 127.0.0.1 over a new connection.
async fn append_works(server: &ServerProcess) -> Result<(), String> {
    common::append_one(&server.uri()).await
}

#[tokio::test]
async fn connections_that_never_send_the_preface_are_closed_and_others_get_in() {
    let (_dir, server) = start(&["--max-connections", "8", "--handshake-timeout-secs", "1"]);
    let started = Instant::now();
    let mut idle = idle_connections(&server, 8).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        append_works(&server).await.is_err(),
        "eight idle connections fill --max-connections 8"
    );
    for connection in &mut idle {
        assert!(
            closed_within(connection, Duration::from_secs(4)).await,
            "an idle connection is closed after the handshake timeout"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    append_works(&server)
        .await
        .expect("with the idle connections closed, a client gets in");
    server.kill();
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let (_dir, server) = start(&["--max-connections", "16", "--max-connections-per-ip", "4"]);
    let mut flood = idle_connections(&server, 30).await;
    let mut closed = 0;
    for connection in &mut flood {
        if closed_within(connection, Duration::from_millis(300)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 26,
        "all but --max-connections-per-ip 4 are closed at once"
    );
    append_works(&server)
        .await
        .expect("another address still gets in");
    server.kill();
}

#[tokio::test]
async fn a_flood_of_refused_connections_is_logged_once_not_per_connection() {
    let (_dir, server) = start(&["--max-connections", "2"]);
    let _held = idle_connections(&server, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = idle_connections(&server, 200).await;
    for connection in &mut refused {
        assert!(closed_within(connection, Duration::from_secs(2)).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = server.log_lines_with("connections without serving them");
    assert!(
        (1..=2).contains(&lines.len()),
        "200 refusals in a burst log one or two lines, not {}: {lines:?}",
        lines.len()
    );
    assert!(
        lines[0].contains("over_max_connections="),
        "the line says why: {}",
        lines[0]
    );
    server.kill();
}

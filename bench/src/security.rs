//! What TLS and a bearer token cost: single-event appends at 64 clients and the read of
//! one 1M-event stream, against the server binary in plain text and then over TLS with
//! a token (admin role, so every call is checked against the token file), on the same
//! data directory in the same run. The TLS lines are given as ratios to the plain ones
//! (issue 19's targets: at least 85 % for appends, 80 % for the read).

use crate::appends::{self, AppendLoad};
use crate::reads;
use crate::report::Figure;
use crate::server::BoxError;
use evenire_client::{Client, StreamId};
use evenire_testkit::process::ServerProcess;
use evenire_testkit::tls::{Pair, Pki};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How each server of the section is reached.
pub struct Transport {
    pki: Pki,
    server: Pair,
    tokens: PathBuf,
}

/// The token the secured server's clients send.
const TOKEN: &str = "bench-token";

impl Transport {
    /// Certificates and a token file, made now.
    pub fn new() -> Transport {
        let pki = Pki::new("bench-ca");
        let server = pki.server("bench-server");
        let tokens = evenire_testkit::tls::token_file(pki.dir(), &[(TOKEN, "admin")]);
        Transport {
            pki,
            server,
            tokens,
        }
    }

    /// The server flags for TLS with the token file.
    pub fn server_args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "--tls-cert".into(),
            path(&self.server.cert),
            "--tls-key".into(),
            path(&self.server.key),
            "--auth-tokens".into(),
            path(&self.tokens),
        ]
    }

    /// `connections` clients of `server` over TLS, each sending the token.
    pub async fn clients(
        &self,
        server: &ServerProcess,
        connections: usize,
    ) -> Result<Vec<Client>, BoxError> {
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            let client = Client::builder(format!("https://{}", server.addr))
                .ca_certificate(self.pki.ca_pem.clone())
                .token(TOKEN)
                .connect()
                .await?;
            clients.push(client);
        }
        Ok(clients)
    }
}

/// The two lines this section measures on one server, named with `how`.
pub async fn measure(
    clients: &[Client],
    stream: &StreamId,
    how: &str,
    duration: Duration,
) -> Result<[Figure; 2], BoxError> {
    // The first read after a start fills the cache: the measured one is served from it.
    reads::stream_forward(&clients[0], stream, &format!("warming the cache, {how}")).await?;
    let read = reads::stream_forward(
        &clients[0],
        stream,
        &format!("read 1 stream forward, cached, {how}"),
    )
    .await?;
    let load = AppendLoad::single_events_64_clients(duration);
    let mut append = appends::run(clients, load).await?;
    append.name = format!("{}, {how}", append.name);
    Ok([append, read])
}

//! Starting the real `evenire-server` binary for tests.
#![allow(dead_code)]

use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::process::Child;

pub const BINARY: &str = env!("CARGO_BIN_EXE_evenire-server");

/// Starts the binary on 127.0.0.1:0 over `data_dir` with `extra` flags, waits until it
/// logs that it is serving, and returns it with the address it logged (host:port).
pub fn start(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let server =
        ServerProcess::start(Path::new(BINARY), data_dir, extra).unwrap_or_else(|e| panic!("{e}"));
    (server.child, server.addr)
}

//! Starting the real `evenire-server` binary for tests.
#![allow(dead_code)]

use evenire_testkit::process::ServerProcess;
use std::path::Path;
use std::process::Child;

pub const BINARY: &str = env!("CARGO_BIN_EXE_evenire-server");

/// The binary the tests start: [`BINARY`], or the one `EVENIRE_TEST_SERVER_BIN` names
/// (to measure a release build with the same tests).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("EVENIRE_TEST_SERVER_BIN").map_or_else(
        || std::path::PathBuf::from(BINARY),
        std::path::PathBuf::from,
    )
}

/// Starts the binary on 127.0.0.1:0 over `data_dir` with `extra` flags, waits until it
/// logs that it is serving, and returns it with the address it logged (host:port).
pub fn start(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let server = ServerProcess::start(&binary(), data_dir, extra).unwrap_or_else(|e| panic!("{e}"));
    (server.child, server.addr)
}

//! Starting the real `evenire-server` binary for tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BINARY: &str = env!("CARGO_BIN_EXE_evenire-server");

/// Starts the binary on 127.0.0.1:0 over `data_dir` with `extra` flags, waits until it
/// logs that it is serving, and returns it with the address it logged (host:port).
pub fn start(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start evenire-server");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.expect("log line");
        if addr.is_none()
            && let Some(rest) = line.split("listen=").nth(1)
        {
            addr = rest.split_whitespace().next().map(str::to_string);
        }
        if line.contains("serving") {
            break;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr.expect("the server logs its address"))
}

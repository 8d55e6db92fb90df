//! The `evenire-server` binary as a child process on 127.0.0.1:0: for tests of the
//! binary itself, the kill -9 harness, and the benchmark's memory and start-up figures.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A server binary this process started.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    /// host:port, as the server logged it.
    pub addr: String,
    /// From spawning the process to its "serving" line: recovery included.
    pub start_time: Duration,
    /// The last [`LOG_LINES_KEPT`] lines it logged after "serving".
    log: Arc<Mutex<VecDeque<String>>>,
}

/// Lines of the server's log a [`ServerProcess`] keeps, so a long benchmark's memory
/// stays flat.
pub const LOG_LINES_KEPT: usize = 10_000;

impl ServerProcess {
    /// Starts `binary` with `--listen 127.0.0.1:0 --data-dir DATA_DIR` and `args`, and
    /// waits until it logs that it serves. Its log is read on a thread of its own from
    /// then on, so the server never blocks on a full pipe.
    pub fn start(binary: &Path, data_dir: &Path, args: &[&str]) -> Result<Self, String> {
        Self::start_pinned(binary, data_dir, args, None)
    }

    /// [`start`](Self::start), on the CPUs `cpus` names (`taskset -c` syntax) when
    /// given: for benchmarks whose load generator runs on the other cores.
    pub fn start_pinned(
        binary: &Path,
        data_dir: &Path,
        args: &[&str],
        cpus: Option<&str>,
    ) -> Result<Self, String> {
        let started = Instant::now();
        let mut command = match cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", cpus]).arg(binary);
                taskset
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or("the server's stderr is not piped")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut addr = None;
        let mut serving = false;
        for line in lines.by_ref() {
            let line = line.map_err(|e| format!("reading the server's log: {e}"))?;
            if addr.is_none()
                && let Some(rest) = line.split("listen=").nth(1)
            {
                addr = rest.split_whitespace().next().map(str::to_string);
            }
            if line.contains("serving") {
                serving = true;
                break;
            }
        }
        let start_time = started.elapsed();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        std::thread::spawn({
            let log = log.clone();
            move || {
                for line in lines.map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    if log.len() == LOG_LINES_KEPT {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }
        });
        let addr = match (addr, serving) {
            (Some(addr), true) => addr,
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!(
                    "{} stopped before it served ({status})",
                    binary.display()
                ));
            }
        };
        Ok(ServerProcess {
            child,
            addr,
            start_time,
            log,
        })
    }

    /// The lines it has logged since "serving" that contain `text`.
    pub fn log_lines_with(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().filter(|l| l.contains(text)).cloned().collect()
    }

    /// The address as a client URI.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resident memory of the process, in KiB (0 if it cannot be read).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// Resident memory of the process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib() as f64 / 1024.0
    }

    /// SIGKILL, and the child reaped.
    pub fn kill(mut self) {
        self.stop_now();
    }

    /// Sends it the signal `name` ("TERM", "HUP") with `kill`.
    pub fn signal(&self, name: &str) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{name}").as_str(), &pid])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        match sent.success() {
            true => Ok(()),
            false => Err(format!("kill -{name} {pid}: {sent}")),
        }
    }

    /// Its exit status once it exits, or None if it is still running after `patience`.
    pub fn wait_for_exit(
        &mut self,
        patience: Duration,
    ) -> Result<Option<std::process::ExitStatus>, String> {
        let deadline = Instant::now() + patience;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
        }
    }

    /// SIGTERM, a clean stop, and its exit status once it exits; killed if it has not
    /// within `patience`.
    pub fn stop(mut self, patience: Duration) -> Result<std::process::ExitStatus, String> {
        self.signal("TERM")?;
        match self.wait_for_exit(patience)? {
            Some(status) => Ok(status),
            None => {
                self.stop_now();
                Err(format!(
                    "the server did not stop within {patience:?} of SIGTERM"
                ))
            }
        }
    }

    fn stop_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server a test or benchmark started never outlives it: a test that ends, passes or
/// fails, takes its servers with it.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Resident memory of process `pid`, in KiB (0 if it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

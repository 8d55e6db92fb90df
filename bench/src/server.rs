//! Servers the benchmark measures: one in this process (`evenire_server::run` on
//! 127.0.0.1:0), or the server binary as a child process, for memory and start-up
//! figures that must not include the benchmark's own.

use evenire_testkit::process::{ServerProcess, rss_kib};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error>;

/// A server this program started in its own process.
#[derive(Debug)]
pub struct InProcess {
    pub uri: String,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), evenire_server::RunError>>,
}

impl InProcess {
    pub async fn start(config: evenire_server::Config) -> Result<InProcess, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let uri = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(evenire_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        Ok(InProcess { uri, stop, handle })
    }

    pub async fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.handle.await??;
        Ok(())
    }
}

/// The server binary, started as a child on a free port.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    pub uri: String,
    /// From spawning the process to its "serving" line: recovery included.
    pub start_time: Duration,
}

impl Process {
    /// Starts `binary` with `args` (after `--listen 127.0.0.1:0 --data-dir DIR`) and
    /// waits until it serves.
    pub fn start(binary: &Path, data_dir: &Path, args: &[&str]) -> Result<Process, BoxError> {
        let server = ServerProcess::start(binary, data_dir, args)?;
        Ok(Process {
            uri: server.uri(),
            child: server.child,
            start_time: server.start_time,
        })
    }

    /// Resident memory of the process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_kib(self.child.id()) as f64 / 1024.0
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary beside this program, unless one is named.
pub fn binary(named: Option<&Path>) -> Result<std::path::PathBuf, BoxError> {
    let path = match named {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("evenire-server"),
    };
    if !path.exists() {
        return Err(format!(
            "no server binary at {} (build it: cargo build --release -p evenire-server)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

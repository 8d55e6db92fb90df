//! Servers the benchmark measures: one in this process (`evenire_server::run` on
//! 127.0.0.1:0), or the server binary as a child process
//! (`evenire_testkit::process::ServerProcess`), for memory and start-up figures that
//! must not include the benchmark's own.

use std::path::Path;

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

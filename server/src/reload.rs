//! Settings read from files that are replaced while the server runs: the TLS
//! certificate and key, the token file.
//!
//! They are read at start, where a bad file stops the server, and again on SIGHUP and
//! whenever one of the files changes (its size or modification time, checked every
//! [`POLL_INTERVAL`] following symlinks, which is how Kubernetes updates a mounted
//! Secret and so how cert-manager's renewals arrive). A reload that fails keeps what
//! was read before and logs why.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often the files are checked for a change.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What reads the files into the setting; the error names the file and the fault.
pub type Loader<T> = Box<dyn Fn() -> Result<T, String> + Send + Sync>;

/// A setting read from files, and read again when they change.
pub struct Reloading<T> {
    /// What it is, for the log: "TLS files", "token file".
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    current: RwLock<Arc<T>>,
    /// The files' sizes and modification times when last read.
    seen: Mutex<Vec<Option<(u64, SystemTime)>>>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Reads the setting from `paths` with `load`.
    pub fn load(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: Loader<T>,
    ) -> Result<Arc<Self>, String> {
        let seen = fingerprint(&paths);
        let value = load()?;
        Ok(Arc::new(Reloading {
            what,
            paths,
            load,
            current: RwLock::new(Arc::new(value)),
            seen: Mutex::new(seen),
        }))
    }

    /// The setting in use now.
    pub fn current(&self) -> Arc<T> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again: the new setting is used from now on or, if a file is
    /// bad, the old one is kept. Returns whether the new one was taken.
    pub fn reload(&self, why: &str) -> bool {
        let seen = fingerprint(&self.paths);
        if let Ok(mut last) = self.seen.lock() {
            *last = seen;
        }
        match (self.load)() {
            Ok(value) => {
                match self.current.write() {
                    Ok(mut current) => *current = Arc::new(value),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
                }
                tracing::info!("{} reloaded ({why})", self.what);
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "{} not reloaded ({why}); serving with what was read before",
                    self.what
                );
                false
            }
        }
    }

    /// Whether a file changed since it was last read.
    fn changed(&self) -> bool {
        let now = fingerprint(&self.paths);
        self.seen.lock().map_or(true, |last| *last != now)
    }

    /// Reloads on SIGHUP and when the files change, until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(
                |e| tracing::warn!(error = %e, "{} reload on change only: no SIGHUP", self.what),
            )
            .ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(signals) => signals.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = hangup => {
                    self.reload("SIGHUP");
                }
                _ = poll.tick() => {
                    if self.changed() {
                        self.reload("a file changed");
                    }
                }
            }
        }
    }
}

/// Each file's size and modification time, following symlinks; None where it cannot
/// be read (a rotation in progress, say).
fn fingerprint(paths: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

/// Aborts a task when dropped: the watchers live as long as the server that started them.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

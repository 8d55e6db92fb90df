//! The sync thread: runs the writer's `fdatasync`s, one at a time, so that the writer
//! can decide and write the next group while the last one becomes durable. The writer
//! still answers a group only once its sync has succeeded.

use crate::store::log::fs::LogFile;
use crate::store::shared::Shared;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// The writer's handle on the sync thread. The thread ends when the handle is dropped.
#[derive(Debug)]
pub struct Syncer {
    requests: Sender<Arc<dyn LogFile>>,
    done: Receiver<io::Result<()>>,
}

impl Syncer {
    /// Starts the thread, which times each sync in `shared`'s stats.
    pub fn spawn(shared: Arc<Shared>) -> io::Result<Self> {
        let (requests, jobs) = channel::<Arc<dyn LogFile>>();
        let (results, done) = channel();
        std::thread::Builder::new()
            .name("evenire-sync".into())
            .spawn(move || {
                for file in jobs {
                    let synced = shared.stats.timed_sync(|| file.sync_data());
                    if results.send(synced).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Syncer { requests, done })
    }

    /// Starts syncing what was written to `file` so far. Each call is followed by one
    /// [`wait`](Syncer::wait) before the next.
    pub fn start(&self, file: Arc<dyn LogFile>) {
        // A thread that is gone shows as an error in `wait`.
        let _ = self.requests.send(file);
    }

    /// The outcome of the sync started last.
    pub fn wait(&self) -> io::Result<()> {
        self.done
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the sync thread stopped")))
    }
}

//! Scavenges on a schedule (`--scavenge-interval`): what keeps a store with stream
//! rules within its disk without an operator's cron job.

use crate::backend::EventStore;
use crate::store::{ScavengeOptions, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Runs a scavenge every `every`, the first one `every` after the start, for as long
/// as the task lives. One already running (started by hand) skips that turn.
pub async fn scavenge_every(store: Arc<dyn EventStore>, every: Duration, bytes_per_second: u64) {
    let options = ScavengeOptions {
        dry_run: false,
        bytes_per_second: (bytes_per_second > 0).then_some(bytes_per_second),
    };
    loop {
        tokio::time::sleep(every).await;
        tracing::info!("scheduled scavenge started");
        match store.scavenge(options).await {
            // The store logs how it went; the reports only need reading to the end.
            Ok(mut reports) => while reports.recv().await.is_some() {},
            Err(StoreError::ScavengeRunning) => {
                tracing::info!("scheduled scavenge skipped: one is already running");
            }
            Err(e) => tracing::error!(error = %e, "scheduled scavenge could not start"),
        }
    }
}

//! What a backup costs the writers (issue 21's target: append p99 during a backup at
//! full speed at most twice its p99 without one, in the same run): single-event appends
//! at 64 clients alone, then again while full backups of the store run back to back,
//! each into a fresh directory on the same disk (the worst case: a backup to another
//! disk only competes for the reads).

use crate::appends::{self, AppendLoad};
use crate::report::Figure;
use crate::server::BoxError;
use evenire_client::Client;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The two lines: appends without a backup, and during backups, the second with the
/// backups' rate and its p99 against the first's in its conditions.
pub async fn measure(
    clients: &[Client],
    root: &Path,
    duration: Duration,
) -> Result<[Figure; 2], BoxError> {
    let load = AppendLoad::single_events_64_clients(duration);
    let mut alone = appends::run(clients, load).await?;
    alone.name = format!("{}, no backup", alone.name);

    let stop = Arc::new(AtomicBool::new(false));
    let copied = Arc::new(AtomicU64::new(0));
    let backups = tokio::spawn({
        let (client, stop, copied) = (clients[0].clone(), stop.clone(), copied.clone());
        let root = root.to_path_buf();
        async move {
            let mut runs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let dir = tempfile::tempdir_in(&root).map_err(|e| e.to_string())?;
                let report = client
                    .backup_to(dir.path())
                    .await
                    .map_err(|e| e.to_string())?;
                copied.fetch_add(report.fetched, Ordering::Relaxed);
                runs += 1;
            }
            Ok::<_, String>(runs)
        }
    });
    let started = Instant::now();
    let mut during = appends::run(clients, load).await?;
    stop.store(true, Ordering::Relaxed);
    let runs = backups.await.map_err(|e| e.to_string())??;
    let rate = copied.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let p99 = |figure: &Figure| figure.latency.as_ref().map_or(0.0, |l| l.p99_ms);
    let ratio = p99(&during) / p99(&alone).max(1e-9);
    during.name = format!("{}, during backups", during.name);
    during.conditions = format!(
        "{}; {runs} full backups at {:.0} MiB/s; p99 {ratio:.2}x the line above (target 2)",
        during.conditions,
        rate / f64::from(1 << 20)
    );
    Ok([alone, during])
}

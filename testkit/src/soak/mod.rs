//! Soak: minutes of mixed load against the real server binary, its resident memory
//! sampled every second. Normal clients (appenders on one shared connection, readers,
//! live subscribers, a client that connects, appends once and goes every 50 ms) run
//! alone for the first third, then, with `hostile`, beside hostile ones from another
//! address ([`hostile`]): an idle connection flood, read and subscription hogs, slow
//! readers, clients that vanish in the middle of a read. The report compares the
//! normal clients' append latency and errors in the two phases, and checks that memory
//! levels off below the bound docs/operations.md gives.
//!
//! `evenire-bench --soak-seconds N [--soak-hostile]` is the long run;
//! `server/tests/soak.rs` a short one in CI, which asserts no errors and the memory
//! bound but never a latency.

mod hostile;
mod normal;

use crate::process::ServerProcess;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a soak runs.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub seconds: u64,
    /// Hostile clients join the normal ones after the first third.
    pub hostile: bool,
    /// Bytes of each appended event's data.
    pub payload: usize,
    /// The server's `--cache-size`, in MiB, for the memory bound.
    pub cache_mib: f64,
    /// The server's `--max-open-reads`, for the memory bound.
    pub max_open_reads: usize,
}

/// Memory an unread read may hold, for the bound: docs/operations.md, "Memory" (up to
/// five messages of at most about 128 KiB when its data is not shared with the cache).
const OPEN_READ_MIB: f64 = 0.75;
/// Appends that may wait for the disk (`--max-pending-bytes`, default), in MiB.
const PENDING_MIB: f64 = 64.0;
/// What the index may add per event in the soak's appends (one record per one or ten
/// events): docs/storage.md, "The index". The only memory that must grow with the log.
const INDEX_BYTES_PER_EVENT: f64 = 128.0;

/// The normal clients' appends in one phase.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub seconds: f64,
    pub appends: u64,
    /// Failed appends, reads and subscriptions, and refused connections, of normal
    /// clients: the soak asks for none.
    pub errors: u64,
    /// Append latencies, µs, sorted.
    latencies_us: Vec<u32>,
}

impl Phase {
    /// The latency at quantile `q` (0.99 for p99), in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let at = ((self.latencies_us.len() as f64 * q).ceil() as usize).saturating_sub(1);
        f64::from(self.latencies_us[at.min(self.latencies_us.len() - 1)]) / 1000.0
    }

    pub fn rate(&self) -> f64 {
        self.appends as f64 / self.seconds.max(1e-9)
    }
}

/// What a soak found.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Normal clients alone.
    pub alone: Phase,
    /// Normal clients beside the hostile ones (or still alone, without `hostile`).
    pub beside: Phase,
    /// Resident memory (MiB) and events appended, once a second.
    pub samples: Vec<(f64, u64)>,
    /// Resident memory before any load, MiB.
    pub rss_start_mib: f64,
    /// What the hostile clients did.
    pub hostile: hostile::HostileCounts,
}

impl SoakReport {
    /// The bound of docs/operations.md for the events appended: the memory at start,
    /// the cache, appends waiting for the disk, every open read, and the index.
    pub fn memory_bound_mib(&self, config: &SoakConfig) -> f64 {
        let appended = self.samples.last().map_or(0, |s| s.1);
        self.rss_start_mib
            + config.cache_mib
            + PENDING_MIB
            + config.max_open_reads as f64 * OPEN_READ_MIB
            + appended as f64 * INDEX_BYTES_PER_EVENT / (1024.0 * 1024.0)
    }

    /// The highest resident memory sampled, MiB.
    pub fn peak_mib(&self) -> f64 {
        self.samples.iter().map(|(rss, _)| *rss).fold(0.0, f64::max)
    }

    /// Whether memory levelled off: the last third's peak is within 5 % of the middle
    /// third's, plus the index of the events appended in between.
    pub fn levelled_off(&self) -> Option<bool> {
        let third = self.samples.len() / 3;
        if third == 0 {
            return None;
        }
        let peak = |s: &[(f64, u64)]| s.iter().map(|(rss, _)| *rss).fold(0.0, f64::max);
        let (middle, last) = (&self.samples[third..2 * third], &self.samples[2 * third..]);
        let appended_since = last.last().map_or(0, |s| s.1) - middle.last().map_or(0, |s| s.1);
        let index_mib = appended_since as f64 * INDEX_BYTES_PER_EVENT / (1024.0 * 1024.0);
        Some(peak(last) <= peak(middle) * 1.05 + index_mib)
    }
}

/// Shared by the soak's tasks: counters, and which phase it is.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub appended: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: [AtomicU64; 2],
    pub hostile_phase: AtomicBool,
}

impl Shared {
    pub fn phase(&self) -> usize {
        usize::from(self.hostile_phase.load(Ordering::Relaxed))
    }

    pub fn error(&self) {
        self.errors[self.phase()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs a soak against `server`, calling `progress` with a line per second.
pub async fn run(
    server: &ServerProcess,
    config: &SoakConfig,
    mut progress: impl FnMut(String),
) -> Result<SoakReport, String> {
    let rss_start_mib = server.rss_mib();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let switch_at = started + Duration::from_secs(config.seconds / 3);
    let shared = Arc::new(Shared::default());
    let normal = normal::start(&server.uri(), config.payload, deadline, shared.clone()).await?;
    let mut hostile = None;
    let mut samples = Vec::new();
    let mut switched_at = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if switched_at.is_none() && Instant::now() >= switch_at {
            shared.hostile_phase.store(true, Ordering::Relaxed);
            switched_at = Some(started.elapsed());
            if config.hostile {
                hostile = Some(hostile::start(&server.addr, deadline).await?);
            }
        }
        let rss = server.rss_mib();
        let appended = shared.appended.load(Ordering::Relaxed);
        samples.push((rss, appended));
        progress(format!(
            "{:>6} {:>10.1} {:>14} {:>16} {:>8}",
            started.elapsed().as_secs(),
            rss,
            appended,
            shared.delivered.load(Ordering::Relaxed),
            match (&hostile, switched_at) {
                (Some(_), Some(_)) => "hostile",
                _ => "alone",
            }
        ));
    }
    let latencies = normal.join().await;
    let hostile = match hostile {
        Some(hostile) => hostile.join().await,
        None => hostile::HostileCounts::default(),
    };
    let total = started.elapsed().as_secs_f64();
    let switched = switched_at.map_or(total, |d| d.as_secs_f64());
    let [alone_latencies, beside_latencies] = latencies.by_phase;
    let phase = |seconds, appends, errors: &AtomicU64, mut latencies_us: Vec<u32>| {
        latencies_us.sort_unstable();
        Phase {
            seconds,
            appends,
            errors: errors.load(Ordering::Relaxed),
            latencies_us,
        }
    };
    Ok(SoakReport {
        alone: phase(
            switched,
            latencies.appends[0],
            &shared.errors[0],
            alone_latencies,
        ),
        beside: phase(
            total - switched,
            latencies.appends[1],
            &shared.errors[1],
            beside_latencies,
        ),
        samples,
        rss_start_mib,
        hostile,
    })
}

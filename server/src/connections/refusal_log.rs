//! Connections the server closed at once or before their handshake, counted by reason
//! and logged at most once per interval: a flood of them is one line every few seconds,
//! not one per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a flood of refusals is logged at most.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Why the server closed a connection before serving a call on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` were open.
    OverMaxConnections = 0,
    /// `--max-connections-per-ip` were open from its address.
    OverMaxConnectionsPerIp = 1,
    /// The HTTP/2 preface did not arrive within `--handshake-timeout-secs`.
    HandshakeTimeout = 2,
    /// It did not open with the HTTP/2 preface.
    NotHttp2 = 3,
}

const REASONS: usize = 4;

/// Refusals since the server started, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts(pub [u64; REASONS]);

impl RefusalCounts {
    pub fn of(&self, reason: Refusal) -> u64 {
        self.0[reason as usize]
    }

    fn since(&self, earlier: &RefusalCounts) -> RefusalCounts {
        RefusalCounts(std::array::from_fn(|i| self.0[i] - earlier.0[i]))
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// The counters, and a wake-up for the task that logs them.
#[derive(Debug, Default)]
pub struct RefusalLog {
    counts: [AtomicU64; REASONS],
    refused: Notify,
}

impl RefusalLog {
    pub fn count(&self, reason: Refusal) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
        self.refused.notify_one();
    }

    pub fn counts(&self) -> RefusalCounts {
        RefusalCounts(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::Relaxed)
        }))
    }

    /// Hands the refusals since the last report to `emit` (new ones, all since start),
    /// at once after a quiet spell and then at most once per `interval`, until dropped.
    pub async fn report(
        &self,
        interval: Duration,
        mut emit: impl FnMut(RefusalCounts, RefusalCounts),
    ) {
        let mut reported = RefusalCounts::default();
        loop {
            self.refused.notified().await;
            let now = self.counts();
            emit(now.since(&reported), now);
            reported = now;
            tokio::time::sleep(interval).await;
        }
    }
}

/// One warning line for [`RefusalLog::report`].
pub fn log_refusals(new: RefusalCounts, since_start: RefusalCounts) {
    tracing::warn!(
        over_max_connections = new.of(Refusal::OverMaxConnections),
        over_max_connections_per_ip = new.of(Refusal::OverMaxConnectionsPerIp),
        handshake_timeouts = new.of(Refusal::HandshakeTimeout),
        not_http2 = new.of(Refusal::NotHttp2),
        since_start = since_start.total(),
        "closed {} connections without serving them (logged at most every {}s)",
        new.total(),
        REPORT_INTERVAL.as_secs(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_flood_is_counted_in_full_and_reported_once_per_interval() {
        let log = Arc::new(RefusalLog::default());
        let reports = Arc::new(Mutex::new(Vec::new()));
        let reporter = tokio::spawn({
            let (log, reports) = (log.clone(), reports.clone());
            async move {
                log.report(Duration::from_millis(300), |new, _| {
                    reports.lock().expect("lock").push(new);
                })
                .await;
            }
        });
        for _ in 0..1000 {
            log.count(Refusal::OverMaxConnections);
        }
        log.count(Refusal::HandshakeTimeout);
        tokio::time::sleep(Duration::from_millis(900)).await;
        {
            let reports = reports.lock().expect("lock");
            assert!(
                (1..=2).contains(&reports.len()),
                "one flood, {} reports",
                reports.len()
            );
            let reported: u64 = reports.iter().map(RefusalCounts::total).sum();
            assert_eq!(reported, 1001, "every refusal is in a report");
        }
        log.count(Refusal::NotHttp2);
        // Past the reporter's pause after its last report, with room for a slow machine.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let reports = reports.lock().expect("lock");
        let last = reports.last().expect("a report");
        assert_eq!((last.total(), last.of(Refusal::NotHttp2)), (1, 1));
        let counts = log.counts();
        assert_eq!(counts.of(Refusal::OverMaxConnections), 1000);
        assert_eq!(counts.total(), 1002);
        reporter.abort();
    }
}

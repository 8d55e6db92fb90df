//! Connections the server closed at once or before their handshake, counted by reason
//! and logged at most once per interval: a flood of them is one line every few seconds,
//! not one per connection.

use std::sync::Mutex;
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
    /// It spoke HTTP/2 in clear to a server that wants TLS.
    PlaintextToTls = 4,
    /// It opened a TLS handshake with a server that serves in clear.
    TlsToPlaintext = 5,
    /// Its TLS handshake failed: with mutual TLS, most often a client certificate that
    /// is missing, expired or not signed by `--tls-client-ca`.
    TlsHandshakeFailed = 6,
}

const REASONS: usize = 7;

impl Refusal {
    /// Every reason, in the order of their numbers.
    pub const ALL: [Refusal; REASONS] = [
        Refusal::OverMaxConnections,
        Refusal::OverMaxConnectionsPerIp,
        Refusal::HandshakeTimeout,
        Refusal::NotHttp2,
        Refusal::PlaintextToTls,
        Refusal::TlsToPlaintext,
        Refusal::TlsHandshakeFailed,
    ];

    /// Its name in metrics: the limit's setting, or what the client did.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::OverMaxConnections => "max_connections",
            Refusal::OverMaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::NotHttp2 => "not_http2",
            Refusal::PlaintextToTls => "plaintext_to_tls",
            Refusal::TlsToPlaintext => "tls_to_plaintext",
            Refusal::TlsHandshakeFailed => "tls_handshake_failed",
        }
    }
}

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
    /// Why the last TLS handshake failed, for the next report: the one thing an
    /// operator needs to tell a client's missing certificate from a wrong CA.
    last_tls_failure: Mutex<Option<String>>,
}

impl RefusalLog {
    pub fn count(&self, reason: Refusal) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
        self.refused.notify_one();
    }

    /// Counts a failed TLS handshake and keeps why it failed for the next report.
    pub fn count_tls_failure(&self, why: String) {
        if let Ok(mut last) = self.last_tls_failure.lock() {
            *last = Some(why);
        }
        self.count(Refusal::TlsHandshakeFailed);
    }

    /// Why the last TLS handshake failed, if one failed since the last call.
    pub fn take_tls_failure(&self) -> Option<String> {
        self.last_tls_failure
            .lock()
            .ok()
            .and_then(|mut last| last.take())
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

/// One warning line for [`RefusalLog::report`], with why the last TLS handshake
/// failed when one did.
pub fn log_refusals(new: RefusalCounts, since_start: RefusalCounts, tls_failure: Option<String>) {
    tracing::warn!(
        over_max_connections = new.of(Refusal::OverMaxConnections),
        over_max_connections_per_ip = new.of(Refusal::OverMaxConnectionsPerIp),
        handshake_timeouts = new.of(Refusal::HandshakeTimeout),
        not_http2 = new.of(Refusal::NotHttp2),
        plaintext_to_tls = new.of(Refusal::PlaintextToTls),
        tls_to_plaintext = new.of(Refusal::TlsToPlaintext),
        tls_handshake_failed = new.of(Refusal::TlsHandshakeFailed),
        last_tls_failure = tls_failure.as_deref().unwrap_or(""),
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

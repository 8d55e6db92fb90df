//! The server's own figures read at scrape time: connections open, and what its limits
//! refused (connections, and streaming calls).

use super::collect::{family, gauge};
use crate::connections::Counts;
use crate::connections::refusal_log::Refusal;
use crate::service::ReadShares;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Arc;

/// Reads the listeners' and the streaming calls' counts.
#[derive(Debug)]
pub struct ServerCollector {
    /// The gRPC listener's.
    pub grpc: Counts,
    /// The health-only listener's, when there is one.
    pub health: Option<Counts>,
    pub reads: Arc<ReadShares>,
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let listeners = std::iter::once(&self.grpc).chain(&self.health);
        let open = listeners
            .clone()
            .map(|counts| counts.open.open() as u64)
            .sum();
        gauge(
            &mut encoder,
            "evenire_connections_open",
            "Client connections open",
            open,
        )?;
        if let Some(bytes) = resident_memory_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory of the server process",
                bytes,
            )?;
        }
        let refused = listeners.map(|counts| counts.refusals.counts()).fold(
            [0; Refusal::ALL.len()],
            |mut sum, counts| {
                for reason in Refusal::ALL {
                    sum[reason as usize] += counts.of(reason);
                }
                sum
            },
        );
        family(
            &mut encoder,
            "evenire_connections_refused",
            "Connections closed before they were served, by the limit reached or what the \
             client did wrong",
            MetricType::Counter,
            "reason",
            Refusal::ALL.map(|reason| (reason.name(), refused[reason as usize])),
        )?;
        family(
            &mut encoder,
            "evenire_streaming_calls_refused",
            "Reads and subscriptions refused with RESOURCE_EXHAUSTED, by the limit reached",
            MetricType::Counter,
            "limit",
            self.reads.refusals(),
        )
    }
}

/// The process's resident memory, where the system tells it (`VmRSS` on Linux).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

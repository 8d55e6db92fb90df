//! The file log's metrics: its size, group commits and syncs, the cache, the index,
//! subscriptions' lag and the last recovery, read from the store at each scrape.

use super::index::disk_answers::answered_by;
use super::reads::read::Scope;
use super::shared::{Shared, read_index};
use crate::metrics::collect::{counter, family, gauge, gauge_f64};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How the store's last start went.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    pub seconds: f64,
    pub events: u64,
}

/// Reads the store's figures when metrics are scraped.
#[derive(Debug)]
pub struct StoreCollector {
    pub shared: Arc<Shared>,
    pub recovery: Recovery,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        let stats = &self.shared.stats;
        let index = read_index(&self.shared).figures(
            stats
                .event_ids_in_memory
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        // The slowest subscription: how many events (of the log, or of its stream) lie
        // between where it has read to and the end. A stream's version may need the
        // index on disk: asked apart, outside the index's lock.
        let lag = stats
            .subscriptions
            .snapshot()
            .into_iter()
            .map(|(scope, next)| {
                let end = match &scope {
                    Scope::All => read_index(&self.shared).next_position(),
                    Scope::Stream(stream) => answered_by(&self.shared, |index, answers| {
                        index.stream_version(stream, answers)
                    })
                    .ok()
                    .flatten()
                    .map_or(0, |v| v + 1),
                };
                end.saturating_sub(next)
            })
            .max()
            .unwrap_or(0);
        gauge(
            e,
            "evenire_log_bytes",
            "Bytes of records in the log's segments",
            stats.log_bytes(),
        )?;
        gauge(
            e,
            "evenire_log_segments",
            "Segment files of the log",
            stats.segments.load(Ordering::Relaxed),
        )?;
        gauge(
            e,
            "evenire_log_events",
            "Events in the log: the position the next one gets",
            index.events,
        )?;
        stats.group_commit_writes.encode(e.encode_descriptor(
            "evenire_group_commit_writes",
            "Appends and deletes written by one group commit, under one fdatasync",
            None,
            MetricType::Histogram,
        )?)?;
        stats.fdatasync_seconds.encode(e.encode_descriptor(
            "evenire_fdatasync_seconds",
            "Time of each fdatasync of the log",
            None,
            MetricType::Histogram,
        )?)?;
        let cache = self.shared.reader.figures();
        counter(
            e,
            "evenire_cache_hits",
            "Records read from the event cache",
            cache.hits,
        )?;
        counter(
            e,
            "evenire_cache_misses",
            "Records read from disk because the event cache did not hold them",
            cache.misses,
        )?;
        gauge(
            e,
            "evenire_cache_entries",
            "Records in the event cache",
            cache.entries,
        )?;
        gauge(
            e,
            "evenire_cache_bytes",
            "Bytes the event cache holds, as it weighs them (bounded by --cache-size)",
            cache.bytes,
        )?;
        family(
            e,
            "evenire_index_entries",
            "Entries in the index, by kind; event_ids_in_memory: the events whose ids are not on disk yet (all, without an index on disk)",
            MetricType::Gauge,
            "kind",
            [
                ("streams", index.streams),
                ("records", index.records),
                ("event_ids", index.events),
                (
                    "event_ids_in_memory",
                    stats
                        .event_ids_in_memory
                        .load(std::sync::atomic::Ordering::Relaxed),
                ),
            ],
        )?;
        gauge(
            e,
            "evenire_index_bytes",
            "Memory of the in-memory index, estimated from its entries",
            index.bytes,
        )?;
        gauge(
            e,
            "evenire_subscription_lag_max_events",
            "Events the slowest open subscription has still to read",
            lag,
        )?;
        gauge_f64(
            e,
            "evenire_recovery_seconds",
            "Time the last start took to recover the log",
            self.recovery.seconds,
        )?;
        gauge(
            e,
            "evenire_recovery_events",
            "Events the last start recovered",
            self.recovery.events,
        )?;
        gauge(
            e,
            "evenire_writes_refused",
            "1 once a failed write or fdatasync makes the store refuse writes until a restart",
            u64::from(self.shared.refusing.borrow().is_some()),
        )
    }
}

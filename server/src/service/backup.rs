//! The Backup call's messages (what the caller holds in, the plan and the chunks out),
//! and the pace backups keep.

use crate::backend::{BackupChunk, BackupPlan, HeldFile};
use evenire_proto::v1 as pb;
use std::sync::{Mutex, PoisonError};
use tokio::time::{Duration, Instant};

/// The server's version and commit, as a backup's manifest records it.
pub const SERVER_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EVENIRE_COMMIT"),
    ")"
);

/// The files the caller holds. Names the store does not know are simply not found.
pub fn held(request: pb::BackupRequest) -> Vec<HeldFile> {
    request
        .held
        .into_iter()
        .map(|file| HeldFile {
            name: file.name,
            length: file.length,
            tail_crc32c: file.tail_crc32c,
        })
        .collect()
}

pub fn plan(plan: &BackupPlan) -> pb::BackupResponse {
    pb::BackupResponse {
        item: Some(pb::backup_response::Item::Plan(pb::BackupPlan {
            position: plan.position,
            files: plan
                .files
                .iter()
                .map(|file| pb::BackupFile {
                    name: file.name.clone(),
                    length: file.length,
                    fetch_from: file.fetch_from,
                })
                .collect(),
            server_version: SERVER_VERSION.to_string(),
        })),
    }
}

pub fn chunk(chunk: BackupChunk) -> pb::BackupResponse {
    pb::BackupResponse {
        item: Some(pb::backup_response::Item::Chunk(pb::BackupChunk {
            name: chunk.name,
            offset: chunk.offset,
            data: chunk.data,
            crc32c: chunk.crc32c,
        })),
    }
}

/// Spaces the chunks of every backup so that together they send at most the rate
/// `--backup-rate-limit` sets. Unpaced, a backup over loopback read 500-650 MiB/s and
/// took the server's core from the writers: append p99 went up 25-36 times; at 80-145
/// MiB/s it rose 1.3-1.6 times (BENCHMARKS.md, "Backups beside appends").
#[derive(Debug)]
pub struct Pacer {
    bytes_per_second: u64,
    /// When the next chunk may go, with what went before it paid for.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// Zero bytes a second: no limit.
    pub fn new(bytes_per_second: u64) -> Self {
        Pacer {
            bytes_per_second,
            next: Mutex::new(None),
        }
    }

    /// Waits for the turn of a chunk of `bytes`.
    pub async fn pace(&self, bytes: usize) {
        if self.bytes_per_second == 0 {
            return;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let turn = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            // A pace left idle does not bank time for a burst later.
            let turn = next.map_or_else(Instant::now, |at| at.max(Instant::now()));
            *next = Some(turn + cost);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

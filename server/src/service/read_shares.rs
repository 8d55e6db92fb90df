//! Streaming calls (reads and subscriptions) in progress, bounded in all
//! (`--max-open-reads`), per connection and per client address, so that one client that
//! opens many and reads none cannot leave others without: each share costs memory while
//! its client does not read.

use super::Limits;
use crate::connections::admission::{client_address, give_back};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tonic::Status;

/// The calls open now.
#[derive(Debug)]
pub struct ReadShares {
    limits: Limits,
    open: Mutex<Open>,
    /// Calls refused, by the limit reached, in the order of [`LIMITS`].
    refused: [AtomicU64; 3],
}

/// The limits a call can be refused by, as metrics name them.
pub const LIMITS: [&str; 3] = [
    "max_open_reads",
    "max_open_reads_per_connection",
    "max_open_reads_per_ip",
];

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_connection: HashMap<SocketAddr, usize>,
    per_address: HashMap<IpAddr, usize>,
}

/// One call's share, given back when the call ends (its task drops it).
#[derive(Debug)]
pub struct ReadShare {
    shares: Arc<ReadShares>,
    peer: Option<SocketAddr>,
}

impl ReadShares {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(ReadShares {
            limits,
            open: Mutex::default(),
            refused: Default::default(),
        })
    }

    /// Calls refused since the start, by limit.
    pub fn refusals(&self) -> [(&'static str, u64); 3] {
        std::array::from_fn(|i| (LIMITS[i], self.refused[i].load(Ordering::Relaxed)))
    }

    /// A share for a call from `peer` (the connection's remote address, when it has
    /// one), or `RESOURCE_EXHAUSTED` naming the limit that is reached.
    pub fn take(self: &Arc<Self>, peer: Option<SocketAddr>) -> Result<ReadShare, Status> {
        let limits = &self.limits;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= limits.max_open_reads.max(1) {
            return Err(self.refused(0, limits.max_open_reads, ""));
        }
        if let Some(peer) = peer {
            let on_connection = open.per_connection.get(&peer).copied().unwrap_or(0);
            if on_connection >= limits.max_open_reads_per_connection.max(1) {
                return Err(self.refused(
                    1,
                    limits.max_open_reads_per_connection,
                    " on this connection",
                ));
            }
            let address = client_address(peer.ip());
            let from_address = open.per_address.get(&address).copied().unwrap_or(0);
            if from_address >= limits.max_open_reads_per_ip.max(1) {
                return Err(self.refused(
                    2,
                    limits.max_open_reads_per_ip,
                    " from this client address",
                ));
            }
            *open.per_connection.entry(peer).or_default() += 1;
            *open.per_address.entry(address).or_default() += 1;
        }
        open.total += 1;
        Ok(ReadShare {
            shares: self.clone(),
            peer,
        })
    }
}

impl ReadShares {
    /// Counts a refusal by limit `which` (of [`LIMITS`]), and the status to send.
    fn refused(&self, which: usize, value: usize, scope: &str) -> Status {
        self.refused[which].fetch_add(1, Ordering::Relaxed);
        let limit = LIMITS[which];
        Status::resource_exhausted(format!(
            "{limit} of {value} streaming calls is reached{scope}; retry when one ends"
        ))
    }
}

impl Drop for ReadShare {
    fn drop(&mut self) {
        let mut open = self
            .shares
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(peer) = self.peer {
            give_back(&mut open.per_connection, peer);
            give_back(&mut open.per_address, client_address(peer.ip()));
        }
    }
}

//! Streaming calls (reads and subscriptions) in progress, bounded in all
//! (`--max-open-reads`), per connection and per client address, so that one client that
//! opens many and reads none cannot leave others without: each share costs memory while
//! its client does not read.

use super::Limits;
use crate::connections::admission::{client_address, give_back};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use tonic::Status;

/// The calls open now.
#[derive(Debug)]
pub struct ReadShares {
    limits: Limits,
    open: Mutex<Open>,
}

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
        })
    }

    /// A share for a call from `peer` (the connection's remote address, when it has
    /// one), or `RESOURCE_EXHAUSTED` naming the limit that is reached.
    pub fn take(self: &Arc<Self>, peer: Option<SocketAddr>) -> Result<ReadShare, Status> {
        let limits = &self.limits;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= limits.max_open_reads.max(1) {
            return Err(refused("max_open_reads", limits.max_open_reads, ""));
        }
        if let Some(peer) = peer {
            let on_connection = open.per_connection.get(&peer).copied().unwrap_or(0);
            if on_connection >= limits.max_open_reads_per_connection.max(1) {
                return Err(refused(
                    "max_open_reads_per_connection",
                    limits.max_open_reads_per_connection,
                    " on this connection",
                ));
            }
            let address = client_address(peer.ip());
            let from_address = open.per_address.get(&address).copied().unwrap_or(0);
            if from_address >= limits.max_open_reads_per_ip.max(1) {
                return Err(refused(
                    "max_open_reads_per_ip",
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

fn refused(limit: &str, value: usize, scope: &str) -> Status {
    Status::resource_exhausted(format!(
        "{limit} of {value} streaming calls is reached{scope}; retry when one ends"
    ))
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

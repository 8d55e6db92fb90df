//! Who may hold a connection: at most `max_connections` in all and
//! `max_connections_per_ip` from one client address, counted while each is open.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The address a client's share is counted against: its IPv4 address, or the /64 its
/// IPv6 address is in (one host commonly holds a whole /64, so counting single IPv6
/// addresses would let one host take everything).
pub fn client_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// `--max-connections` are open.
    Total,
    /// `--max-connections-per-ip` are open from this client address.
    PerAddress,
}

/// Open connections, in all and per client address.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One admitted connection's place, given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            open: Mutex::default(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    /// A place for a connection from `ip`, if both limits leave one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, OverLimit> {
        let address = client_address(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(OverLimit::Total);
        }
        let from_address = open.per_address.entry(address).or_default();
        if *from_address >= self.max_per_address {
            return Err(OverLimit::PerAddress);
        }
        *from_address += 1;
        open.total += 1;
        Ok(Admitted {
            admission: self.clone(),
            address,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        give_back(&mut open.per_address, self.address);
    }
}

/// One fewer under `key`, forgetting keys that reach zero so that a map of counts
/// holds only the connections and addresses that have something open.
pub fn give_back<K: Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn limits_hold_in_all_and_per_address_and_places_come_back() {
        let admission = Admission::new(3, 2);
        let a1 = admission.admit(ip("10.0.0.1")).expect("first");
        let _a2 = admission.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(
            admission.admit(ip("10.0.0.1")).err(),
            Some(OverLimit::PerAddress)
        );
        let _b1 = admission.admit(ip("10.0.0.2")).expect("another address");
        assert_eq!(
            admission.admit(ip("10.0.0.3")).err(),
            Some(OverLimit::Total)
        );
        drop(a1);
        let _a3 = admission.admit(ip("10.0.0.1")).expect("a place came back");
        assert!(admission.open.lock().expect("lock").per_address.len() == 2);
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            client_address(ip("2001:db8:1:2:aaaa::1")),
            client_address(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            client_address(ip("2001:db8:1:2::1")),
            client_address(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_address(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}

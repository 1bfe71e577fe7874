//! How many connections each client address holds (docs/security.md "Connections"): a slot is
//! taken when a connection is accepted and given back when it ends. Past the limit a new
//! connection is closed at once, so one address cannot exhaust the server's sockets while
//! webhooks from everyone else still get in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// The per-address counts.
pub struct PerClient {
    limit: usize,
    exempt: Vec<IpNet>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One accepted connection's place in the count; dropping it gives the place back.
pub struct Slot {
    ip: Option<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    /// `limit` open connections per address (0: no limit); addresses in `exempt` (trusted
    /// proxies, which carry everyone's connections) are not counted.
    pub fn new(limit: usize, exempt: Vec<IpNet>) -> PerClient {
        PerClient {
            limit,
            exempt,
            open: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, or `None` when the address is at its limit.
    pub fn take(&self, ip: IpAddr) -> Option<Slot> {
        if self.limit == 0 || self.exempt.iter().any(|n| n.contains(&ip)) {
            return Some(Slot {
                ip: None,
                open: self.open.clone(),
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            ip: Some(ip),
            open: self.open.clone(),
        })
    }

    /// Open connections counted for `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(ip) = self.ip else {
            return;
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&ip);
            }
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
    fn an_address_gets_its_limit_and_a_slot_back_when_one_ends() {
        let limits = PerClient::new(2, Vec::new());
        let a = limits.take(ip("192.0.2.1")).expect("first");
        let _b = limits.take(ip("192.0.2.1")).expect("second");
        assert!(limits.take(ip("192.0.2.1")).is_none(), "third refused");
        assert!(limits.take(ip("192.0.2.2")).is_some(), "another address");
        drop(a);
        assert_eq!(limits.open(ip("192.0.2.1")), 1);
        assert!(limits.take(ip("192.0.2.1")).is_some(), "a place came back");
    }

    #[test]
    fn trusted_proxies_and_a_zero_limit_are_not_counted() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("cidr");
        let limits = PerClient::new(1, vec![proxy]);
        let slots: Vec<Slot> = (0..10)
            .filter_map(|_| limits.take(ip("10.1.2.3")))
            .collect();
        assert_eq!(slots.len(), 10);
        assert_eq!(limits.open(ip("10.1.2.3")), 0);
        let off = PerClient::new(0, Vec::new());
        assert_eq!(
            (0..10).filter_map(|_| off.take(ip("192.0.2.9"))).count(),
            10
        );
    }
}

//! How many connections each client address holds (docs/security.md "Connections"): a slot is
//! taken when a connection is accepted and given back when it ends. Past the limit a new
//! connection is closed at once, so one address cannot exhaust the server's sockets while
//! webhooks from everyone else still get in.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// The per-address counts.
pub struct PerClient {
    limit: usize,
    exempt: Vec<IpNet>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refused: AtomicU64,
}

/// Whose count a connection from `ip` takes: an IPv4 address (also when it arrives mapped into
/// IPv6, `::ffff:192.0.2.1`) is one client; an IPv6 client is its /64, since one host is
/// usually given a whole /64 and could otherwise open the limit from each of its addresses.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
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
            refused: AtomicU64::new(0),
        }
    }

    /// A slot for a connection from `ip`, or, when its client is at its limit, how many
    /// connections have been refused so far (this one included; the caller logs only some).
    pub fn take(&self, ip: IpAddr) -> Result<Slot, u64> {
        let canonical = ip.to_canonical();
        if self.limit == 0 || self.exempt.iter().any(|n| n.contains(&canonical)) {
            return Ok(Slot {
                ip: None,
                open: self.open.clone(),
            });
        }
        let client = client_of(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.limit {
            return Err(self.refused.fetch_add(1, Ordering::Relaxed) + 1);
        }
        *count += 1;
        Ok(Slot {
            ip: Some(client),
            open: self.open.clone(),
        })
    }

    /// Open connections counted for `ip`'s client.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&client_of(ip)).copied().unwrap_or(0)
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
        assert_eq!(limits.take(ip("192.0.2.1")).err(), Some(1), "third refused");
        assert_eq!(
            limits.take(ip("::ffff:192.0.2.1")).err(),
            Some(2),
            "the same address mapped into IPv6 is the same client"
        );
        assert!(limits.take(ip("192.0.2.2")).is_ok(), "another address");
        drop(a);
        assert_eq!(limits.open(ip("192.0.2.1")), 1);
        assert!(limits.take(ip("192.0.2.1")).is_ok(), "a place came back");
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let limits = PerClient::new(2, Vec::new());
        let _a = limits.take(ip("2001:db8:1:2::1")).expect("first");
        let _b = limits
            .take(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))
            .expect("second, same /64");
        assert!(
            limits.take(ip("2001:db8:1:2::99")).is_err(),
            "a third address of the same /64"
        );
        assert!(limits.take(ip("2001:db8:1:3::1")).is_ok(), "the next /64");
        assert_eq!(limits.open(ip("2001:db8:1:2::abcd")), 2);
        assert_eq!(client_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_proxies_and_a_zero_limit_are_not_counted() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("cidr");
        let limits = PerClient::new(1, vec![proxy]);
        let slots: Vec<Slot> = (0..10)
            .filter_map(|_| limits.take(ip("10.1.2.3")).ok())
            .collect();
        assert_eq!(slots.len(), 10);
        assert_eq!(limits.open(ip("10.1.2.3")), 0);
        assert!(
            (0..3).all(|_| limits.take(ip("::ffff:10.1.2.3")).is_ok()),
            "a proxy's address mapped into IPv6 is still the proxy"
        );
        let off = PerClient::new(0, Vec::new());
        assert_eq!(
            (0..10)
                .filter_map(|_| off.take(ip("192.0.2.9")).ok())
                .count(),
            10
        );
    }
}

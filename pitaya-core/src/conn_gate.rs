//! Connection limits: at most so many client connections at once, in all
//! and per remote IP address.
//!
//! Each admitted connection holds a [`ConnectionPermit`] for its lifetime;
//! dropping it frees the place. The per-IP table is touched only when a
//! connection opens or closes, never on the request path.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Name of the counter of refused connections (label `reason`).
pub(crate) const REFUSED_METRIC: &str = "pitaya_acceptor_refused_connections";

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("the server is at its connection limit ({0})")]
    ServerFull(usize),
    #[error("the client's address is at its connection limit ({0})")]
    AddressFull(usize),
}

impl Refused {
    /// The `reason` label of the refused-connections metric.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::ServerFull(_) => "max_connections",
            Self::AddressFull(_) => "max_connections_per_ip",
        }
    }

    /// Counts the refusal and logs it.
    pub(crate) fn record(self, peer: Option<IpAddr>) {
        metrics::counter!(REFUSED_METRIC, "reason" => self.reason()).increment(1);
        tracing::debug!(?peer, reason = %self, "connection refused");
    }
}

/// Counts open connections against the app's limits (0 = no limit).
#[derive(Debug)]
pub(crate) struct ConnectionGate {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionGate {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a place in the server-wide count.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<ConnectionPermit, Refused> {
        let admitted = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (self.max_total == 0 || open < self.max_total).then_some(open + 1)
            });
        match admitted {
            Ok(_) => Ok(ConnectionPermit {
                gate: self.clone(),
                ip: None,
            }),
            Err(_) => Err(Refused::ServerFull(self.max_total)),
        }
    }

    /// Whether connections are limited per address at all.
    pub(crate) fn limits_addresses(&self) -> bool {
        self.max_per_ip > 0
    }

    /// Open connections, all addresses together.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The table holds plain counts: a panic elsewhere leaves it usable.
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's place in the [`ConnectionGate`]; freed on drop.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    ip: Option<IpAddr>,
}

impl ConnectionPermit {
    /// Also takes a place among the connections from `ip`, if addresses
    /// are limited. Idempotent once it succeeded.
    pub(crate) fn admit_address(&mut self, ip: IpAddr) -> Result<(), Refused> {
        let max = self.gate.max_per_ip;
        if max == 0 || self.ip.is_some() {
            return Ok(());
        }
        let mut table = self.gate.table();
        let open = table.entry(ip).or_insert(0);
        if *open >= max {
            return Err(Refused::AddressFull(max));
        }
        *open += 1;
        drop(table);
        self.ip = Some(ip);
        Ok(())
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut table = self.gate.table();
            if let Entry::Occupied(mut entry) = table.entry(ip) {
                *entry.get_mut() -= 1;
                if *entry.get() == 0 {
                    entry.remove();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn server_limit_admits_up_to_max_and_frees_on_drop() {
        let gate = Arc::new(ConnectionGate::new(2, 0));
        let a = gate.admit().unwrap();
        let _b = gate.admit().unwrap();
        assert_eq!(gate.admit().unwrap_err(), Refused::ServerFull(2));
        assert_eq!(gate.open(), 2);
        drop(a);
        assert_eq!(gate.open(), 1);
        assert!(gate.admit().is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let gate = Arc::new(ConnectionGate::new(0, 0));
        let permits: Vec<_> = (0..1000).map(|_| gate.admit().unwrap()).collect();
        assert_eq!(gate.open(), 1000);
        assert!(!gate.limits_addresses());
        drop(permits);
        assert_eq!(gate.open(), 0);
    }

    #[test]
    fn address_limit_is_per_address_and_the_table_empties() {
        let gate = Arc::new(ConnectionGate::new(0, 2));
        let mut permits = Vec::new();
        for _ in 0..2 {
            let mut permit = gate.admit().unwrap();
            permit.admit_address(ip(1)).unwrap();
            permits.push(permit);
        }
        let mut third = gate.admit().unwrap();
        assert_eq!(third.admit_address(ip(1)), Err(Refused::AddressFull(2)));
        third.admit_address(ip(2)).unwrap();
        drop(third);
        permits.pop();
        let mut again = gate.admit().unwrap();
        again.admit_address(ip(1)).unwrap();
        drop(again);
        drop(permits);
        assert!(
            gate.table().is_empty(),
            "no entry left for closed addresses"
        );
        assert_eq!(gate.open(), 0);
    }

    #[test]
    fn refusal_reasons_name_the_setting() {
        assert_eq!(Refused::ServerFull(1).reason(), "max_connections");
        assert_eq!(Refused::AddressFull(1).reason(), "max_connections_per_ip");
    }
}

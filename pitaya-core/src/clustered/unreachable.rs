//! Servers the RPC layer found unreachable ("no responders"), kept out of
//! routing until discovery sees them register again.
//!
//! A server killed without deregistering stays in discovery until its
//! lease expires (up to the etcd TTL). Routing to it meanwhile fails at
//! once with "no responders", so such a server is set aside with the
//! registration discovery had for it then; a new registration under the
//! same id (a restarted process, a renewed lease) is a different
//! `Arc<ServerInfo>` and is routable again. The fast path (nothing set
//! aside) reads one atomic flag.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cluster::ServerInfo;

/// The servers set aside, by id, with the registration seen at the time.
#[derive(Debug, Default)]
pub(crate) struct Unreachable {
    any: AtomicBool,
    servers: Mutex<HashMap<String, Arc<ServerInfo>>>,
}

impl Unreachable {
    /// Sets `server` aside until discovery has another registration for
    /// its id.
    pub(crate) fn mark(&self, server: &Arc<ServerInfo>) {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.insert(server.id.clone(), server.clone());
        self.any.store(true, Ordering::Release);
        tracing::warn!(server = %server.id, "server unreachable (no responders): not routed to until it registers again");
    }

    /// `servers` without the ones set aside. Entries whose registration
    /// discovery no longer lists as it was are forgotten.
    pub(crate) fn routable(&self, mut servers: Vec<Arc<ServerInfo>>) -> Vec<Arc<ServerInfo>> {
        if !self.any.load(Ordering::Acquire) {
            return servers;
        }
        let mut aside = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.retain(|server| {
            aside
                .get(&server.id)
                .is_none_or(|seen| !Arc::ptr_eq(seen, server))
        });
        // A registration that changed means the server came back.
        let forget: Vec<String> = aside
            .iter()
            .filter(|(id, seen)| {
                servers
                    .iter()
                    .any(|server| &server.id == *id && !Arc::ptr_eq(seen, server))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in forget {
            tracing::info!(server = %id, "server registered again: routable");
            aside.remove(&id);
        }
        self.any.store(!aside.is_empty(), Ordering::Release);
        servers
    }

    /// Whether `server` (this very registration) is set aside.
    #[cfg(test)]
    pub(crate) fn contains(&self, server: &Arc<ServerInfo>) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .servers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&server.id)
                .is_some_and(|seen| Arc::ptr_eq(seen, server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str) -> Arc<ServerInfo> {
        Arc::new(ServerInfo::new(id, "room", false))
    }

    #[test]
    fn a_marked_server_is_skipped_until_it_registers_again() {
        let unreachable = Unreachable::default();
        let (a, b) = (server("a"), server("b"));
        assert_eq!(unreachable.routable(vec![a.clone(), b.clone()]).len(), 2);
        unreachable.mark(&a);
        assert!(unreachable.contains(&a));
        let routable = unreachable.routable(vec![a.clone(), b.clone()]);
        assert_eq!(routable.len(), 1);
        assert_eq!(routable[0].id, "b");
        // The same id registered again: a new registration, routable.
        let a_again = server("a");
        assert!(!unreachable.contains(&a_again));
        let routable = unreachable.routable(vec![a_again, b]);
        assert_eq!(routable.len(), 2);
        // And the old entry is forgotten.
        assert!(!unreachable.contains(&a));
        assert!(!unreachable.any.load(Ordering::Acquire));
    }
}

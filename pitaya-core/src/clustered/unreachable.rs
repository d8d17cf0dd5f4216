//! Servers the RPC layer found unreachable ("no responders"), kept out of
//! routing until discovery sees them register again.
//!
//! A server killed without deregistering stays in discovery until its
//! lease expires (up to the etcd TTL). Routing to it meanwhile fails at
//! once with "no responders", so such a server is set aside with the
//! registration discovery had for it then. It is routable again when a new
//! registration under the same id appears (a restarted process, a renewed
//! lease: a different `Arc<ServerInfo>`), or after [`SET_ASIDE_FOR`], since
//! "no responders" can also be passing (NATS reconnecting, a subscription
//! not yet renewed). When every server of a type is set aside, routing
//! tries them anyway rather than failing with "no servers". The fast path
//! (nothing set aside) reads one atomic flag.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::ServerInfo;

/// How long a server that did not answer stays out of routing, unless it
/// registers again first.
pub(crate) const SET_ASIDE_FOR: Duration = Duration::from_secs(5);

/// The servers set aside, by id, with the registration seen at the time
/// and when they are tried again.
#[derive(Debug, Default)]
pub(crate) struct Unreachable {
    any: AtomicBool,
    servers: Mutex<HashMap<String, (Arc<ServerInfo>, Instant)>>,
}

impl Unreachable {
    /// Sets `server` aside until discovery has another registration for
    /// its id.
    pub(crate) fn mark(&self, server: &Arc<ServerInfo>) {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.insert(
            server.id.clone(),
            (server.clone(), Instant::now() + SET_ASIDE_FOR),
        );
        self.any.store(true, Ordering::Release);
        tracing::warn!(server = %server.id, "server unreachable (no responders): not routed to until it registers again");
    }

    /// `servers` without the ones set aside, or all of them if every one
    /// is. Entries that expired, or whose server registered again, are
    /// forgotten.
    pub(crate) fn routable(&self, servers: Vec<Arc<ServerInfo>>) -> Vec<Arc<ServerInfo>> {
        if !self.any.load(Ordering::Acquire) {
            return servers;
        }
        let now = Instant::now();
        let mut aside = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        aside.retain(|id, (seen, until)| {
            let registered_again = servers
                .iter()
                .any(|server| &server.id == id && !Arc::ptr_eq(seen, server));
            if registered_again {
                tracing::info!(server = %id, "server registered again: routable");
            }
            !registered_again && *until > now
        });
        self.any.store(!aside.is_empty(), Ordering::Release);
        let routable: Vec<_> = servers
            .iter()
            .filter(|server| {
                aside
                    .get(&server.id)
                    .is_none_or(|(seen, _)| !Arc::ptr_eq(seen, server))
            })
            .cloned()
            .collect();
        if routable.is_empty() {
            servers
        } else {
            routable
        }
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
                .is_some_and(|(seen, _)| Arc::ptr_eq(seen, server))
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

    #[tokio::test(start_paused = true)]
    async fn a_marked_server_is_tried_again_after_a_while() {
        let unreachable = Unreachable::default();
        let (a, b) = (server("a"), server("b"));
        unreachable.mark(&a);
        assert_eq!(unreachable.routable(vec![a.clone(), b.clone()]).len(), 1);
        tokio::time::advance(SET_ASIDE_FOR + Duration::from_millis(1)).await;
        assert_eq!(unreachable.routable(vec![a.clone(), b]).len(), 2);
        assert!(!unreachable.contains(&a));
    }

    #[test]
    fn when_every_server_is_set_aside_all_are_tried() {
        let unreachable = Unreachable::default();
        let only = server("a");
        unreachable.mark(&only);
        let routable = unreachable.routable(vec![only.clone()]);
        assert_eq!(routable.len(), 1, "no 'no servers' while one is listed");
        assert!(unreachable.contains(&only), "still set aside");
    }
}

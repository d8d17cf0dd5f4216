//! A discovery's local view of the cluster: servers by ID and by type, the
//! type blacklist, and the event channel. `contains`, `upsert` and `retain`
//! are what etcd's watch and resync need (feature `etcd`).

#[cfg(any(feature = "etcd", test))]
use std::collections::HashSet;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use pitaya_core::cluster::{DiscoveryEvent, ServerInfo};
use tokio::sync::broadcast;

/// How many events a slow receiver may fall behind before it lags.
const EVENT_CAPACITY: usize = 1024;

pub(crate) struct Registry {
    blacklist: Vec<String>,
    me: RwLock<Option<String>>,
    servers: RwLock<Servers>,
    events: broadcast::Sender<DiscoveryEvent>,
}

#[derive(Default)]
struct Servers {
    by_id: HashMap<String, Arc<ServerInfo>>,
    by_type: BTreeMap<String, BTreeMap<String, Arc<ServerInfo>>>,
}

impl Registry {
    pub(crate) fn new(blacklist: Vec<String>) -> Self {
        Self {
            blacklist,
            me: RwLock::new(None),
            servers: RwLock::new(Servers::default()),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    pub(crate) fn set_me(&self, id: Option<String>) {
        *self.me.write().unwrap_or_else(PoisonError::into_inner) = id;
    }

    fn is_me(&self, id: &str) -> bool {
        self.me
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            == Some(id)
    }

    /// Whether servers of this type are tracked (blacklisted types are not,
    /// except this server's own entry).
    pub(crate) fn accepts(&self, server_type: &str, id: &str) -> bool {
        !self.blacklist.iter().any(|t| t == server_type) || self.is_me(id)
    }

    #[cfg(feature = "etcd")]
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.read().by_id.contains_key(id)
    }

    /// Adds a server whose ID is unknown (a known ID is left as it is, as in
    /// Go). Emits `Added` unless it is this server. Returns whether it was added.
    pub(crate) fn add(&self, server: Arc<ServerInfo>) -> bool {
        if !self.accepts(&server.server_type, &server.id) {
            return false;
        }
        {
            let mut servers = self.write();
            if servers.by_id.contains_key(&server.id) {
                return false;
            }
            servers.by_id.insert(server.id.clone(), server.clone());
            servers
                .by_type
                .entry(server.server_type.clone())
                .or_default()
                .insert(server.id.clone(), server.clone());
        }
        tracing::debug!(server = %server, "server added");
        if !self.is_me(&server.id) {
            // No receiver is not an error.
            let _ = self.events.send(DiscoveryEvent::Added(server));
        }
        true
    }

    /// Adds a server, or replaces the registration of a known ID with this
    /// newer one (a server that registered again: a restarted process, a
    /// renewed lease). A replacement emits no event: the server was known.
    /// Routing treats a new registration as a server worth trying again.
    #[cfg(any(feature = "etcd", test))]
    pub(crate) fn upsert(&self, server: Arc<ServerInfo>) {
        if self.add(server.clone()) || !self.accepts(&server.server_type, &server.id) {
            return;
        }
        let mut servers = self.write();
        let Some(known) = servers.by_id.get(&server.id) else {
            return;
        };
        if known.server_type != server.server_type {
            // Same id, another type: keep the first, as Go does.
            return;
        }
        servers.by_id.insert(server.id.clone(), server.clone());
        servers
            .by_type
            .entry(server.server_type.clone())
            .or_default()
            .insert(server.id.clone(), server);
    }

    /// Removes a server; emits `Removed` unless it is this server.
    pub(crate) fn remove(&self, id: &str) -> Option<Arc<ServerInfo>> {
        let removed = {
            let mut servers = self.write();
            let removed = servers.by_id.remove(id)?;
            if let Some(of_type) = servers.by_type.get_mut(&removed.server_type) {
                of_type.remove(id);
                if of_type.is_empty() {
                    servers.by_type.remove(&removed.server_type);
                }
            }
            removed
        };
        tracing::debug!(server = %removed, "server removed");
        if !self.is_me(id) {
            let _ = self.events.send(DiscoveryEvent::Removed(removed.clone()));
        }
        Some(removed)
    }

    /// Removes every server whose ID is not in `keep`.
    #[cfg(any(feature = "etcd", test))]
    pub(crate) fn retain(&self, keep: &HashSet<String>) {
        let stale: Vec<String> = self
            .read()
            .by_id
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        for id in stale {
            tracing::warn!(id, "deleting invalid local server");
            self.remove(&id);
        }
    }

    pub(crate) fn servers_of_type(&self, server_type: &str) -> Vec<Arc<ServerInfo>> {
        self.read()
            .by_type
            .get(server_type)
            .map(|of_type| of_type.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn server(&self, id: &str) -> Option<Arc<ServerInfo>> {
        self.read().by_id.get(id).cloned()
    }

    pub(crate) fn servers(&self) -> Vec<Arc<ServerInfo>> {
        self.read()
            .by_type
            .values()
            .flat_map(|of_type| of_type.values().cloned())
            .collect()
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.events.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Servers> {
        self.servers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Servers> {
        self.servers.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, server_type: &str) -> Arc<ServerInfo> {
        Arc::new(ServerInfo::new(id, server_type, false))
    }

    #[test]
    fn upsert_replaces_a_known_registration_without_an_event() {
        let registry = Registry::new(vec![]);
        registry.set_me(Some("me".into()));
        let mut events = registry.events();
        let first = server("b", "room");
        registry.upsert(first.clone());
        assert_eq!(events.try_recv().unwrap(), DiscoveryEvent::Added(first));
        let again = server("b", "room");
        registry.upsert(again.clone());
        assert!(events.try_recv().is_err(), "a known server emits nothing");
        let listed = registry.servers_of_type("room");
        assert_eq!(listed.len(), 1);
        assert!(
            Arc::ptr_eq(&listed[0], &again),
            "the newer registration is listed"
        );
        assert!(Arc::ptr_eq(&registry.server("b").unwrap(), &again));
    }

    #[test]
    fn add_remove_and_events_skip_self() {
        let registry = Registry::new(vec![]);
        registry.set_me(Some("me".into()));
        let mut events = registry.events();
        assert!(registry.add(server("me", "room")));
        assert!(registry.add(server("b", "room")));
        assert!(registry.add(server("a", "room")));
        assert!(
            !registry.add(server("a", "room")),
            "known ids are not replaced"
        );
        let ids: Vec<_> = registry
            .servers_of_type("room")
            .iter()
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(ids, ["a", "b", "me"]);
        assert_eq!(
            events.try_recv().unwrap(),
            DiscoveryEvent::Added(server("b", "room"))
        );
        assert_eq!(
            events.try_recv().unwrap(),
            DiscoveryEvent::Added(server("a", "room"))
        );
        assert!(events.try_recv().is_err());

        registry.retain(&["a".to_owned(), "me".to_owned()].into_iter().collect());
        assert_eq!(
            events.try_recv().unwrap(),
            DiscoveryEvent::Removed(server("b", "room"))
        );
        assert!(registry.remove("me").is_some());
        assert!(events.try_recv().is_err(), "no event about self");
        assert!(registry.remove("nope").is_none());
        assert_eq!(registry.servers().len(), 1);
    }

    #[test]
    fn blacklist_ignores_types_but_not_self() {
        let registry = Registry::new(vec!["metagame".into()]);
        registry.set_me(Some("me".into()));
        assert!(!registry.add(server("x", "metagame")));
        assert!(registry.add(server("me", "metagame")));
        assert!(registry.add(server("y", "room")));
        assert_eq!(registry.servers().len(), 2);
        assert!(registry.server("x").is_none());
    }
}

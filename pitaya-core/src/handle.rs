//! [`AppHandle`]: a cheap handle to a running app, for handlers, modules,
//! timers and anything else: sessions, pushes, groups, timers, remotes,
//! the cluster and shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::cluster::{ServerInfo, ServiceDiscovery};
use crate::clustered::{ClusterCaller, ClusterParts, ClusterSlot};
use crate::group::Groups;
use crate::remote::{RemoteCaller, RemoteClient, Target};
use crate::session::{Session, SessionHub};
use crate::timer::Timers;

/// A cheap handle to an app: sessions, pushes, groups, timers, shutdown.
/// Handlers get it with an `&AppHandle` argument.
#[derive(Clone)]
pub struct AppHandle {
    pub(crate) shared: Arc<Shared>,
}

/// The parts of an app that handles reach.
pub(crate) struct Shared {
    pub(crate) cluster: ClusterSlot,
    /// This server's identity, when it is clustered (known before it runs).
    pub(crate) me: Option<Arc<ServerInfo>>,
    /// Running, registered and not losing its cluster.
    pub(crate) ready: AtomicBool,
    /// Where remote calls go instead of the cluster (the test harness).
    pub(crate) remotes: Option<Arc<dyn RemoteCaller>>,
    pub(crate) server_type: String,
    pub(crate) sessions: Arc<SessionHub>,
    pub(crate) groups: Groups,
    pub(crate) shutdown: CancellationToken,
}

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandle")
            .field("server_type", &self.shared.server_type)
            .finish_non_exhaustive()
    }
}

impl AppHandle {
    /// This server's type.
    pub fn server_type(&self) -> &str {
        &self.shared.server_type
    }

    /// This server's identity in the cluster (`None` when standalone).
    pub fn server_info(&self) -> Option<&Arc<ServerInfo>> {
        self.shared.me.as_ref()
    }

    /// The cluster's service discovery, while the app runs (`None` before
    /// and after, and when standalone).
    pub fn discovery(&self) -> Option<Arc<dyn ServiceDiscovery>> {
        self.cluster().map(|cluster| cluster.discovery.clone())
    }

    pub(crate) fn cluster(&self) -> Option<Arc<ClusterParts>> {
        self.shared.cluster.get()
    }

    /// Whether the app serves: it runs, it has registered in its cluster
    /// (if any), its cluster is not lost and it is not shutting down.
    /// What a readiness probe reports.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire) && !self.is_shutting_down()
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::Release);
    }

    /// A client for the remotes of any server of `server_type`; wrap it in
    /// a generated stub (`RoomRemote::new(app.remote("room"))`). Calls fail
    /// with `PIT-500` when the app is not clustered.
    pub fn remote(&self, server_type: impl Into<String>) -> RemoteClient {
        self.remote_client(Target::ServerType(server_type.into()))
    }

    /// A client for the remotes of the server `id` (of `server_type`).
    pub fn remote_to(&self, server_type: impl Into<String>, id: impl Into<String>) -> RemoteClient {
        self.remote_client(Target::ServerId {
            server_type: server_type.into(),
            id: id.into(),
        })
    }

    fn remote_client(&self, target: Target) -> RemoteClient {
        if let Some(caller) = &self.shared.remotes {
            return RemoteClient::new(caller.clone(), target);
        }
        let caller = Arc::new(ClusterCaller {
            cluster: self.shared.cluster.clone(),
        });
        RemoteClient::new(caller, target)
    }

    /// The session registry.
    pub fn sessions(&self) -> &Arc<SessionHub> {
        &self.shared.sessions
    }

    /// The session bound to `uid` on this server.
    pub fn session_by_uid(&self, uid: &str) -> Option<Session> {
        self.shared.sessions.by_uid(uid)
    }

    /// Number of connected sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.count()
    }

    /// The app's groups: in this server's memory by default, or kept by the
    /// service given to
    /// [`AppBuilder::groups`](crate::app::AppBuilder::groups) (etcd, shared
    /// by the cluster).
    pub fn groups(&self) -> &Groups {
        &self.shared.groups
    }

    /// Timers stopped when the app shuts down.
    pub fn timers(&self) -> Timers {
        Timers::new(self.shared.shutdown.clone())
    }

    /// Asks the app to shut down gracefully.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }
}

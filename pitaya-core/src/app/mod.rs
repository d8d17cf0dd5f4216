//! The application: [`App::builder`] ([`AppBuilder`]) configures a server,
//! [`App::run`] serves it until a signal and shuts it down gracefully, and
//! [`AppHandle`] reaches its sessions, pushes, groups, timers and the
//! cluster from anywhere.
//!
//! The parts live in one module each: `builder` (settings and `build`),
//! `run` (start, run loop and graceful shutdown), `accept` (the accept
//! loop of every acceptor), beside the crate's `config` (the settings and
//! their defaults) and [`crate::handle`] (the handle).

mod accept;
mod builder;
mod run;

use std::sync::Arc;

pub use crate::clustered::RouterFn;
pub use crate::config::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_HANDSHAKE_USER_DATA,
    DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE, DispatchMode,
};
pub use crate::handle::AppHandle;
pub use builder::{AppBuilder, DEFAULT_CLUSTER_GRACE};

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::{ClusterPlane, ServerInfo};
use crate::dispatch::{DuplicateRoute, RouteTable};
use crate::module::Module;
use crate::server::ServerCore;
use accept::ErasedAcceptor;

/// Why the app could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two components register the same route.
    #[error(transparent)]
    DuplicateRoute(#[from] DuplicateRoute),
    /// A frontend has no acceptor.
    #[error("a frontend server needs at least one acceptor")]
    NoAcceptor,
    /// A module failed to start.
    #[error("module {name} failed to initialize: {source}")]
    ModuleInit {
        /// The module.
        name: String,
        /// Why.
        source: crate::module::ModuleError,
    },
    /// A component's handlers do not fit the app's serializer (e.g. serde
    /// types on a protobuf app).
    #[error(transparent)]
    SerializerMismatch(#[from] crate::dispatch::SerializerMismatch),
    /// An invalid setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The cluster plane failed to start.
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Waiting for a signal failed.
    #[error("signal handling: {0}")]
    Signal(#[from] std::io::Error),
}

/// `Result` with the app's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A built server, ready to [`run`](App::run).
pub struct App {
    core: Arc<ServerCore>,
    acceptors: Vec<Box<dyn ErasedAcceptor>>,
    modules: Vec<Box<dyn Module>>,
    frontend: bool,
    cluster: Option<ClusterPlan>,
    handle: AppHandle,
}

/// What a clustered app connects when it runs.
struct ClusterPlan {
    plane: Arc<dyn ClusterPlane>,
    me: Arc<ServerInfo>,
    routers: HashMap<String, RouterFn>,
    timeout: Duration,
    grace: Duration,
    unique: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("server_type", &self.core.config.server_type)
            .field("acceptors", &self.urls())
            .finish_non_exhaustive()
    }
}

impl App {
    /// A handle for pushes, sessions and shutdown, usable from anywhere.
    pub fn handle(&self) -> AppHandle {
        self.handle.clone()
    }

    /// Where the acceptors listen.
    pub fn urls(&self) -> Vec<String> {
        self.acceptors
            .iter()
            .map(|acceptor| acceptor.url())
            .collect()
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.core.routes
    }

    /// The shared server state (the test harness drives it directly).
    #[cfg(feature = "testing")]
    pub(crate) fn core(&self) -> &Arc<ServerCore> {
        &self.core
    }
}

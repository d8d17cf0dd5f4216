//! The application: builder, shared server state and the run loop with
//! graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acceptor::{Acceptor, PlayerConn};
use crate::cluster::{RpcClient, RpcServer, ServerInfo, ServiceDiscovery};
pub use crate::clustered::RouterFn;
use crate::clustered::{AppInbound, ClusterCaller, ClusterParts};
use crate::codec::{
    HandshakeRequest, HandshakeResponse, MessageCodec, Packet, PacketType, RouteDictionary,
};
use crate::conn_gate::ConnectionGate;
use crate::dispatch::{DuplicateRoute, RouteTable};
use crate::group::Groups;
use crate::handler::{Component, HandlerResult, Request};
use crate::module::Module;
use crate::pipeline::Pipelines;
use crate::remote::{RemoteClient, Target};
use crate::session::{Session, SessionHub, encode_push};
use crate::timer::Timers;
use crate::{PitayaError, Serializer, SerializerKind};

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

/// How the requests of one session are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DispatchMode {
    /// One at a time, in arrival order (the default; Pitaya gives no
    /// ordering guarantee, see its issue #179).
    #[default]
    Sequential,
    /// Concurrently, replies in completion order (Pitaya's behaviour).
    Concurrent,
}

type HandshakeValidator = Arc<dyn Fn(&HandshakeRequest) -> Result<(), PitayaError> + Send + Sync>;

/// Server settings, with Pitaya's defaults.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) server_type: String,
    pub(crate) heartbeat: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) dispatch: DispatchMode,
    pub(crate) handshake_validators: Vec<HandshakeValidator>,
    pub(crate) limits: Limits,
}

/// Bounds on what one connection may cost, before and after its handshake.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest packet body once the handshake is acknowledged.
    pub(crate) max_packet_size: usize,
    /// Largest packet body before that (the handshake itself included).
    pub(crate) max_packet_size_before_handshake: usize,
    /// Largest raw `user` block of a handshake.
    pub(crate) max_handshake_user_data: usize,
    /// Time from connect to handshake ack; zero disables it.
    pub(crate) handshake_timeout: Duration,
}

/// Default bound on packet bodies before the handshake is acknowledged.
pub const DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE: usize = 64 * 1024;
/// Default bound on the raw JSON `user` block of a client handshake.
pub const DEFAULT_MAX_HANDSHAKE_USER_DATA: usize = 16 * 1024;
/// Default time a connection has to complete handshake and ack.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the agents share (read-only on the request path).
pub(crate) struct ServerCore {
    pub(crate) config: Config,
    pub(crate) routes: RouteTable,
    pub(crate) pipelines: Pipelines,
    pub(crate) codec: MessageCodec,
    pub(crate) sessions: Arc<SessionHub>,
    pub(crate) handshake_ok: Bytes,
    pub(crate) handshake_refused: Bytes,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) gate: Arc<ConnectionGate>,
    handle: AppHandle,
}

impl ServerCore {
    pub(crate) fn handle(&self) -> AppHandle {
        self.handle.clone()
    }

    pub(crate) fn handle_ref(&self) -> &AppHandle {
        &self.handle
    }
}

/// Builds an [`App`].
///
/// ```
/// use std::time::Duration;
/// use pitaya_core::app::App;
///
/// let app = App::builder("chat")
///     .heartbeat(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert_eq!(app.handle().server_type(), "chat");
/// ```
pub struct AppBuilder {
    config: Config,
    routes: RouteTable,
    pipelines: Pipelines,
    serializer: SerializerKind,
    compression: bool,
    compression_threshold: usize,
    dictionary: RouteDictionary,
    max_queued_writes: usize,
    unique_sessions: bool,
    max_inflated_size: usize,
    max_inflate_ratio: u32,
    max_connections: usize,
    max_connections_per_ip: usize,
    acceptors: Vec<Box<dyn ErasedAcceptor>>,
    modules: Vec<Box<dyn Module>>,
    frontend: Option<bool>,
    cluster: Option<ClusterSetup>,
    error: Option<Error>,
}

/// What [`AppBuilder::cluster`] and friends configure.
struct ClusterSetup {
    discovery: Arc<dyn ServiceDiscovery>,
    client: Arc<dyn RpcClient>,
    server: Arc<dyn RpcServer>,
    server_id: Option<String>,
    metadata: std::collections::BTreeMap<String, String>,
    routers: std::collections::HashMap<String, RouterFn>,
    timeout: Duration,
}

impl App {
    /// Starts building a server of `server_type` (the first part of its
    /// routes, e.g. `"connector"`).
    pub fn builder(server_type: impl Into<String>) -> AppBuilder {
        AppBuilder {
            config: Config {
                server_type: server_type.into(),
                heartbeat: Duration::from_secs(30),
                write_timeout: Duration::from_secs(10),
                shutdown_timeout: Duration::from_secs(10),
                dispatch: DispatchMode::Sequential,
                handshake_validators: Vec::new(),
                limits: Limits {
                    max_packet_size: crate::codec::MAX_PACKET_BODY,
                    max_packet_size_before_handshake: DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE,
                    max_handshake_user_data: DEFAULT_MAX_HANDSHAKE_USER_DATA,
                    handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                },
            },
            routes: RouteTable::default(),
            pipelines: Pipelines::default(),
            serializer: SerializerKind::Json,
            compression: true,
            compression_threshold: crate::codec::DEFAULT_COMPRESSION_THRESHOLD,
            dictionary: RouteDictionary::default(),
            max_queued_writes: 100,
            unique_sessions: true,
            max_inflated_size: crate::codec::DEFAULT_MAX_INFLATED_LEN,
            max_inflate_ratio: crate::codec::DEFAULT_MAX_INFLATE_RATIO,
            max_connections: 0,
            max_connections_per_ip: 0,
            acceptors: Vec::new(),
            modules: Vec::new(),
            frontend: None,
            cluster: None,
            error: None,
        }
    }
}

impl AppBuilder {
    /// Registers a component's handlers and remotes.
    #[must_use]
    pub fn register<C: Component>(mut self, component: C) -> Self {
        if let Err(err) = self.routes.register(component) {
            self.error.get_or_insert(err.into());
        }
        self
    }

    /// Adds an acceptor (TCP, WebSocket, ...); a frontend needs one.
    #[must_use]
    pub fn acceptor<A: Acceptor>(mut self, acceptor: A) -> Self {
        self.acceptors.push(Box::new(acceptor));
        self
    }

    /// Adds a module; modules start in the order they are added.
    #[must_use]
    pub fn module(mut self, module: impl Module) -> Self {
        self.modules.push(Box::new(module));
        self
    }

    /// Adds a hook run before every handler; it can reject the request
    /// (its error is the reply) or replace it.
    #[must_use]
    pub fn before_handler(
        mut self,
        hook: impl Fn(Request) -> std::result::Result<Request, PitayaError> + Send + Sync + 'static,
    ) -> Self {
        self.pipelines.push_before(hook);
        self
    }

    /// Adds a hook run after every handler; it can change the reply or the error.
    #[must_use]
    pub fn after_handler(
        mut self,
        hook: impl Fn(HandlerResult) -> HandlerResult + Send + Sync + 'static,
    ) -> Self {
        self.pipelines.push_after(hook);
        self
    }

    /// Checks every client handshake; an error refuses the client (code 400).
    #[must_use]
    pub fn handshake_validator(
        mut self,
        validator: impl Fn(&HandshakeRequest) -> std::result::Result<(), PitayaError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.config.handshake_validators.push(Arc::new(validator));
        self
    }

    /// Payload serializer announced in the handshake (default JSON).
    #[must_use]
    pub fn serializer(mut self, serializer: SerializerKind) -> Self {
        self.serializer = serializer;
        self
    }

    /// Heartbeat interval (default 30 s); a client silent for twice this is
    /// closed. Zero disables heartbeats.
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// zlib-compress bodies when that makes them shorter (default on, as
    /// in Pitaya).
    #[must_use]
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// Bodies shorter than this are sent uncompressed even with compression
    /// on (default 128 bytes; 0 tries every body, as Pitaya does). See
    /// [`DEFAULT_COMPRESSION_THRESHOLD`](crate::codec::DEFAULT_COMPRESSION_THRESHOLD).
    #[must_use]
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// Route compression dictionary announced in the handshake.
    #[must_use]
    pub fn dictionary(mut self, dictionary: RouteDictionary) -> Self {
        self.dictionary = dictionary;
        self
    }

    /// Packets a session may have waiting to be written before it is
    /// disconnected as too slow (default 100, Pitaya's).
    #[must_use]
    pub fn max_queued_writes(mut self, max: usize) -> Self {
        self.max_queued_writes = max;
        self
    }

    /// How long one write may take before the client is disconnected
    /// (default 10 s).
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// How long shutdown waits for in-flight requests (default 10 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// The largest packet body a client may send once its handshake is
    /// acknowledged (default and maximum: 16 MiB - 1, Pitaya's). An
    /// acceptor's own `with_max_packet_size` caps it further.
    #[must_use]
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.config.limits.max_packet_size = bytes.min(crate::codec::MAX_PACKET_BODY);
        self
    }

    /// The largest packet body a client may send before its handshake is
    /// acknowledged, the handshake itself included (default 64 KiB; Go
    /// Pitaya has no separate limit). Until then a connection costs the
    /// server at most about this much memory.
    #[must_use]
    pub fn max_packet_size_before_handshake(mut self, bytes: usize) -> Self {
        self.config.limits.max_packet_size_before_handshake =
            bytes.min(crate::codec::MAX_PACKET_BODY);
        self
    }

    /// The largest raw JSON `user` block a client handshake may carry
    /// (default 16 KiB); a larger one refuses the handshake (code 400).
    /// The block is kept on the session as raw bytes.
    #[must_use]
    pub fn max_handshake_user_data(mut self, bytes: usize) -> Self {
        self.config.limits.max_handshake_user_data = bytes;
        self
    }

    /// How long a new connection has to send its handshake and the ack
    /// (default 10 s; zero turns the deadline off). Heartbeats do not
    /// extend it. Go Pitaya has no such deadline (its issue #247).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.limits.handshake_timeout = timeout;
        self
    }

    /// The largest size a client's zlib-compressed body may inflate to
    /// (default 1 MiB); beyond it the request gets a `PIT-400` error.
    #[must_use]
    pub fn max_inflated_size(mut self, bytes: usize) -> Self {
        self.max_inflated_size = bytes;
        self
    }

    /// How many times its compressed size a client's body may inflate to
    /// once it is over 64 KiB (default 100; 0 turns the ratio check off);
    /// beyond it the request gets a `PIT-400` error.
    #[must_use]
    pub fn max_inflate_ratio(mut self, ratio: u32) -> Self {
        self.max_inflate_ratio = ratio;
        self
    }

    /// At most this many client connections at once (default 0: no limit,
    /// as Go Pitaya); connections beyond it are closed as soon as they are
    /// accepted, and counted in the `pitaya_acceptor_refused_connections`
    /// metric.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// At most this many client connections at once from one IP address
    /// (default 0: no limit). Mind clients behind one NAT before setting it.
    #[must_use]
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_connections_per_ip = max;
        self
    }

    /// Sequential (default) or concurrent requests per session.
    #[must_use]
    pub fn dispatch(mut self, mode: DispatchMode) -> Self {
        self.config.dispatch = mode;
        self
    }

    /// Kick the older session when a uid binds twice (default on).
    #[must_use]
    pub fn unique_sessions(mut self, on: bool) -> Self {
        self.unique_sessions = on;
        self
    }

    /// Whether clients connect to this server (default true). A backend
    /// needs no acceptor.
    #[must_use]
    pub fn frontend(mut self, frontend: bool) -> Self {
        self.frontend = Some(frontend);
        self
    }

    /// Makes this server part of a cluster: it registers with `discovery`,
    /// forwards client messages for other server types over `client`, and
    /// serves forwarded messages and remotes received by `server`.
    ///
    /// `server` must have been built for this server's identity: give the
    /// app the same ID with [`server_id`](Self::server_id). A clustered
    /// server without acceptors is a backend unless
    /// [`frontend`](Self::frontend) says otherwise.
    #[must_use]
    pub fn cluster(
        mut self,
        discovery: Arc<dyn ServiceDiscovery>,
        client: Arc<dyn RpcClient>,
        server: Arc<dyn RpcServer>,
    ) -> Self {
        let previous = self.cluster.take();
        self.cluster = Some(ClusterSetup {
            discovery,
            client,
            server,
            server_id: previous.as_ref().and_then(|p| p.server_id.clone()),
            metadata: previous
                .as_ref()
                .map(|p| p.metadata.clone())
                .unwrap_or_default(),
            routers: previous.map(|p| p.routers).unwrap_or_default(),
            timeout: Duration::from_secs(5),
        });
        self
    }

    fn cluster_setup(&mut self) -> Option<&mut ClusterSetup> {
        if self.cluster.is_none() {
            self.error.get_or_insert(Error::Config(
                "call .cluster(...) before the cluster settings".into(),
            ));
        }
        self.cluster.as_mut()
    }

    /// This server's ID in the cluster (default: a random UUID v4).
    #[must_use]
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        if let Some(setup) = self.cluster_setup() {
            setup.server_id = Some(id.into());
        }
        self
    }

    /// Adds a metadata entry to this server's registration.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Some(setup) = self.cluster_setup() {
            setup.metadata.insert(key.into(), value.into());
        }
        self
    }

    /// Picks the server of `server_type` each forwarded client message
    /// goes to (default: uniformly random). `None` falls back to random.
    #[must_use]
    pub fn router(
        mut self,
        server_type: impl Into<String>,
        router: impl Fn(&crate::Context, &Session, &[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        if let Some(setup) = self.cluster_setup() {
            setup.routers.insert(server_type.into(), Arc::new(router));
        }
        self
    }

    /// How long a forwarded message or a remote call waits for its reply
    /// (default 5 s; `PIT-408` after it).
    #[must_use]
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        if let Some(setup) = self.cluster_setup() {
            setup.timeout = timeout;
        }
        self
    }

    /// Builds the app.
    pub fn build(self) -> Result<App> {
        if let Some(err) = self.error {
            return Err(err);
        }
        if self.config.server_type.is_empty() || self.config.server_type.contains(['.', '/']) {
            return Err(Error::Config(format!(
                "server type {:?} must be non-empty without '.' or '/'",
                self.config.server_type
            )));
        }
        let codec = MessageCodec::default()
            .with_dictionary(self.dictionary.clone())
            .with_compression(self.compression)
            .with_compression_threshold(self.compression_threshold)
            .with_max_inflated_len(self.max_inflated_size)
            .with_max_inflate_ratio(self.max_inflate_ratio);
        let response = HandshakeResponse::ok(
            self.config.heartbeat,
            self.dictionary.to_map(),
            self.serializer.name(),
        );
        let handshake_ok = packet_bytes(PacketType::Handshake, response.encode(self.compression));
        let handshake_refused = packet_bytes(
            PacketType::Handshake,
            response.refused().encode(self.compression),
        );
        let sessions = SessionHub::new(
            codec.clone(),
            self.serializer,
            self.max_queued_writes,
            self.unique_sessions,
        );
        let shutdown = CancellationToken::new();
        let frontend = self
            .frontend
            .unwrap_or(self.cluster.is_none() || !self.acceptors.is_empty());
        let cluster = match self.cluster {
            Some(setup) => {
                let mut me = ServerInfo::new(
                    setup.server_id.unwrap_or_else(crate::clustered::uuid_v4),
                    self.config.server_type.clone(),
                    frontend,
                );
                me.metadata = setup.metadata;
                me.validate().map_err(crate::cluster::ClusterError::from)?;
                let parts = Arc::new(ClusterParts {
                    discovery: setup.discovery,
                    client: setup.client,
                    server: setup.server,
                    me: Arc::new(me),
                    routers: setup.routers,
                    timeout: setup.timeout,
                    unique: self.unique_sessions,
                    unreachable: Default::default(),
                });
                if frontend {
                    let hook_parts = parts.clone();
                    sessions.set_bind_hook(Arc::new(move |session: &Session| {
                        let parts = hook_parts.clone();
                        let session = session.clone();
                        tokio::spawn(async move {
                            crate::clustered::on_frontend_bind(&parts, &session).await;
                        });
                    }));
                }
                Some(parts)
            }
            None => None,
        };
        let handle = AppHandle {
            shared: Arc::new(Shared {
                cluster: cluster.clone(),
                server_type: self.config.server_type.clone(),
                sessions: sessions.clone(),
                groups: Groups::new(sessions.clone()),
                shutdown: shutdown.clone(),
            }),
        };
        let core = Arc::new(ServerCore {
            config: self.config,
            routes: self.routes,
            pipelines: self.pipelines,
            codec,
            sessions,
            handshake_ok,
            handshake_refused,
            shutdown,
            tracker: TaskTracker::new(),
            gate: Arc::new(ConnectionGate::new(
                self.max_connections,
                self.max_connections_per_ip,
            )),
            handle: handle.clone(),
        });
        Ok(App {
            core,
            acceptors: self.acceptors,
            modules: self.modules,
            frontend,
            cluster,
            handle,
        })
    }
}

fn packet_bytes(kind: PacketType, body: Bytes) -> Bytes {
    Packet::new(kind, body).to_bytes().unwrap_or_default()
}

/// A built server, ready to [`run`](App::run).
pub struct App {
    core: Arc<ServerCore>,
    acceptors: Vec<Box<dyn ErasedAcceptor>>,
    modules: Vec<Box<dyn Module>>,
    frontend: bool,
    cluster: Option<Arc<ClusterParts>>,
    handle: AppHandle,
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

    /// Runs until SIGINT or SIGTERM (or [`AppHandle::shutdown`]), then shuts
    /// down gracefully.
    pub async fn run(self) -> Result<()> {
        let signal = wait_for_signal();
        self.run_until(signal).await
    }

    /// Runs until `stop` completes (or [`AppHandle::shutdown`]), then shuts
    /// down gracefully: stop accepting, `before_shutdown` hooks, finish
    /// in-flight requests (bounded by the shutdown timeout), flush pending
    /// writes, close sessions, `shutdown` hooks.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<()> {
        if self.frontend && self.acceptors.is_empty() {
            return Err(Error::NoAcceptor);
        }
        let handle = self.handle.clone();
        if let Some(cluster) = &self.cluster {
            let inbound = Arc::new(AppInbound {
                core: Arc::downgrade(&self.core),
                cluster: Arc::downgrade(cluster),
            });
            cluster.server.start(inbound).await?;
        }
        for module in &self.modules {
            let init = module
                .init(&handle)
                .await
                .map_err(|source| Error::ModuleInit {
                    name: module.name().to_owned(),
                    source,
                });
            if let Err(err) = init {
                if let Some(cluster) = &self.cluster {
                    let _ = cluster.server.stop().await;
                }
                return Err(err);
            }
        }
        for module in &self.modules {
            if let Err(err) = module.after_init(&handle).await {
                tracing::error!(module = module.name(), error = %err, "after_init failed");
            }
        }
        let accepting = CancellationToken::new();
        let mut listeners = Vec::new();
        for acceptor in self.acceptors {
            tracing::info!(url = %acceptor.url(), server_type = %self.core.config.server_type, "accepting clients");
            listeners.push(tokio::spawn(
                acceptor.serve(self.core.clone(), accepting.clone()),
            ));
        }
        if let Some(cluster) = &self.cluster {
            if let Err(err) = cluster
                .discovery
                .start(ServerInfo::clone(&cluster.me))
                .await
            {
                // Registration failed: stop what was started.
                accepting.cancel();
                for listener in listeners {
                    let _ = listener.await;
                }
                if let Err(err) = cluster.server.stop().await {
                    tracing::warn!(error = %err, "stopping the rpc server failed");
                }
                return Err(err.into());
            }
            tracing::info!(id = %cluster.me.id, server_type = %cluster.me.server_type, frontend = cluster.me.frontend, "registered in the cluster");
        }

        tokio::select! {
            () = stop => tracing::info!("shutdown requested"),
            () = self.core.shutdown.cancelled() => tracing::info!("shutdown requested by the app"),
        }

        if let Some(cluster) = &self.cluster
            && let Err(err) = cluster.discovery.stop().await
        {
            tracing::warn!(error = %err, "deregistering failed");
        }
        accepting.cancel();
        for listener in listeners {
            let _ = listener.await;
        }
        for module in self.modules.iter().rev() {
            if let Err(err) = module.before_shutdown(&handle).await {
                tracing::error!(module = module.name(), error = %err, "before_shutdown failed");
            }
        }
        if let Some(cluster) = &self.cluster
            && let Err(err) = cluster.server.stop().await
        {
            tracing::warn!(error = %err, "stopping the rpc server failed");
        }
        self.core.shutdown.cancel();
        for session in self.core.sessions.sessions() {
            session.wake();
        }
        self.core.tracker.close();
        let timeout = self.core.config.shutdown_timeout;
        if tokio::time::timeout(timeout, self.core.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?timeout,
                remaining = self.core.tracker.len(),
                "sessions still open after the shutdown timeout"
            );
        }
        for module in self.modules.iter().rev() {
            if let Err(err) = module.shutdown(&handle).await {
                tracing::error!(module = module.name(), error = %err, "shutdown failed");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt => {}
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = interrupt.await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// An acceptor with its connection type erased, so an app can hold
/// several kinds.
trait ErasedAcceptor: Send {
    fn url(&self) -> String;
    fn serve(
        self: Box<Self>,
        core: Arc<ServerCore>,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<A: Acceptor> ErasedAcceptor for A {
    fn url(&self) -> String {
        Acceptor::url(self)
    }

    fn serve(
        mut self: Box<Self>,
        core: Arc<ServerCore>,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            loop {
                let raw = tokio::select! {
                    () = stop.cancelled() => return,
                    raw = self.accept() => raw,
                };
                match raw {
                    Ok(raw) => {
                        let peer = A::peer_addr(&raw).map(|addr| addr.ip());
                        let admitted = core.gate.admit().and_then(|mut permit| match peer {
                            Some(ip) => permit.admit_address(ip).map(|()| permit),
                            None => Ok(permit),
                        });
                        let mut permit = match admitted {
                            Ok(permit) => permit,
                            Err(refused) => {
                                // Dropping the raw connection closes it.
                                refused.record(peer);
                                continue;
                            }
                        };
                        let core = core.clone();
                        core.tracker.clone().spawn(async move {
                            let mut conn = match A::upgrade(raw).await {
                                Ok(conn) => conn,
                                Err(err) => {
                                    tracing::debug!(error = %err, "connection upgrade failed");
                                    return;
                                }
                            };
                            if peer.is_none()
                                && core.gate.limits_addresses()
                                && let Some(addr) = conn.remote_addr()
                                && let Err(refused) = permit.admit_address(addr.ip())
                            {
                                refused.record(Some(addr.ip()));
                                conn.close().await;
                                return;
                            }
                            crate::agent::serve(conn, core).await;
                            drop(permit);
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        // Out of file descriptors and the like: back off a little.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    }
}

/// A cheap handle to an app: sessions, pushes, groups, timers, shutdown.
/// Handlers get it with an `&AppHandle` argument.
#[derive(Clone)]
pub struct AppHandle {
    shared: Arc<Shared>,
}

/// The parts of an app that handles reach.
struct Shared {
    cluster: Option<Arc<ClusterParts>>,
    server_type: String,
    sessions: Arc<SessionHub>,
    groups: Groups,
    shutdown: CancellationToken,
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
        self.shared.cluster.as_ref().map(|cluster| &cluster.me)
    }

    /// The cluster's service discovery (`None` when standalone).
    pub fn discovery(&self) -> Option<&Arc<dyn ServiceDiscovery>> {
        self.shared
            .cluster
            .as_ref()
            .map(|cluster| &cluster.discovery)
    }

    pub(crate) fn cluster(&self) -> Option<&Arc<ClusterParts>> {
        self.shared.cluster.as_ref()
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
        let caller = Arc::new(ClusterCaller {
            cluster: self.shared.cluster.clone(),
        });
        let client = RemoteClient::new(caller, target);
        match &self.shared.cluster {
            Some(cluster) => client.with_timeout(cluster.timeout),
            None => client,
        }
    }

    /// Pushes `value` on `route` to the users `uids` bound on frontends of
    /// `frontend_type`: local sessions directly (when this server is of
    /// that type), the others through the cluster (fire and forget, as in
    /// Go). Returns the uids that could not be reached (standalone: those
    /// not connected here).
    pub async fn push_to_users<T: Serialize + ?Sized>(
        &self,
        frontend_type: &str,
        uids: &[impl AsRef<str>],
        route: &str,
        value: &T,
    ) -> std::result::Result<Vec<String>, PitayaError> {
        let Some(cluster) = self.shared.cluster.clone() else {
            return self.push_to_uids(uids, route, value);
        };
        let sessions = &self.shared.sessions;
        let body = Bytes::from(
            sessions
                .serializer()
                .serialize(value)
                .map_err(|err| PitayaError::new(crate::error::codes::INTERNAL, err.to_string()))?,
        );
        let local = frontend_type == self.shared.server_type;
        let mut frame = None;
        let mut failed = Vec::new();
        for uid in uids {
            let uid = uid.as_ref();
            if local && let Some(session) = sessions.by_uid(uid) {
                let frame = match &frame {
                    Some(frame) => Bytes::clone(frame),
                    None => frame
                        .insert(encode_push(sessions.codec(), route, body.clone())?)
                        .clone(),
                };
                if session.send_encoded(frame).is_err() {
                    failed.push(uid.to_owned());
                }
                continue;
            }
            let push = crate::protos::Push {
                route: route.to_owned(),
                uid: uid.to_owned(),
                data: body.clone(),
            };
            if let Err(err) = cluster.client.push_to_user(frontend_type, push).await {
                tracing::warn!(uid, error = %err, "push to user failed");
                failed.push(uid.to_owned());
            }
        }
        Ok(failed)
    }

    /// Kicks the users `uids` bound on frontends of `frontend_type` (local
    /// sessions directly, others through the cluster). Returns the uids
    /// that could not be reached.
    pub async fn kick_users(&self, frontend_type: &str, uids: &[impl AsRef<str>]) -> Vec<String> {
        let local = frontend_type == self.shared.server_type;
        let mut failed = Vec::new();
        for uid in uids {
            let uid = uid.as_ref();
            if local && let Some(session) = self.shared.sessions.by_uid(uid) {
                session.kick();
                continue;
            }
            let sent = match &self.shared.cluster {
                Some(cluster) => cluster
                    .client
                    .kick_user(
                        frontend_type,
                        crate::protos::KickMsg {
                            user_id: uid.to_owned(),
                        },
                    )
                    .await
                    .is_ok(),
                None => false,
            };
            if !sent {
                failed.push(uid.to_owned());
            }
        }
        failed
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

    /// The in-memory groups of this server.
    pub fn groups(&self) -> &Groups {
        &self.shared.groups
    }

    /// Timers stopped when the app shuts down.
    pub fn timers(&self) -> Timers {
        Timers::new(self.shared.shutdown.clone())
    }

    /// Pushes `value` on `route` to every uid in `uids` connected here;
    /// returns the uids that could not be reached. The body is encoded once.
    pub fn push_to_uids<T: Serialize + ?Sized>(
        &self,
        uids: &[impl AsRef<str>],
        route: &str,
        value: &T,
    ) -> std::result::Result<Vec<String>, PitayaError> {
        let frame = self.encode_push(route, value)?;
        let mut failed = Vec::new();
        for uid in uids {
            let uid = uid.as_ref();
            let sent = self
                .shared
                .sessions
                .by_uid(uid)
                .is_some_and(|session| session.send_encoded(frame.clone()).is_ok());
            if !sent {
                failed.push(uid.to_owned());
            }
        }
        Ok(failed)
    }

    /// Pushes `value` on `route` to the session bound to `uid`.
    pub fn push_to_uid<T: Serialize + ?Sized>(
        &self,
        uid: &str,
        route: &str,
        value: &T,
    ) -> std::result::Result<(), PitayaError> {
        let failed = self.push_to_uids(&[uid], route, value)?;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PitayaError::new(
                crate::error::codes::NOT_FOUND,
                format!("uid {uid:?} is not connected"),
            ))
        }
    }

    /// Pushes `value` on `route` to every session of this server; returns
    /// how many sessions it was queued on.
    pub fn broadcast<T: Serialize + ?Sized>(
        &self,
        route: &str,
        value: &T,
    ) -> std::result::Result<usize, PitayaError> {
        let frame = self.encode_push(route, value)?;
        Ok(self
            .shared
            .sessions
            .sessions()
            .iter()
            .filter(|session| session.send_encoded(frame.clone()).is_ok())
            .count())
    }

    /// Asks the app to shut down gracefully.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Encodes a push once so it can be queued on many sessions.
    fn encode_push<T: Serialize + ?Sized>(
        &self,
        route: &str,
        value: &T,
    ) -> std::result::Result<Bytes, PitayaError> {
        let sessions = &self.shared.sessions;
        let body = sessions
            .serializer()
            .serialize(value)
            .map_err(|err| PitayaError::new(crate::error::codes::INTERNAL, err.to_string()))?;
        encode_push(sessions.codec(), route, Bytes::from(body)).map_err(PitayaError::from)
    }
}

//! [`AppBuilder`]: every setting of a server, then [`build`](AppBuilder::build).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accept::ErasedAcceptor;
use super::{App, Error, Result};
use crate::acceptor::Acceptor;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use super::ClusterPlan;
use crate::cluster::{
    ClusterPlane, FixedParts, RpcClient, RpcServer, ServerInfo, ServiceDiscovery, local_hostname,
};
use crate::clustered::{ClusterSlot, RouterFn};
use crate::codec::{
    HandshakeRequest, HandshakeResponse, MessageCodec, Packet, PacketType, RouteDictionary,
};
use crate::config::{
    Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_HANDSHAKE_USER_DATA,
    DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE, DispatchMode, Limits,
};
use crate::conn_gate::ConnectionGate;
use crate::context::Context;
use crate::dispatch::RouteTable;
use crate::group::{GroupService, Groups};
use crate::handle::{AppHandle, Shared};
use crate::handler::{Component, HandlerResult, Request};
use crate::module::Module;
use crate::pipeline::Pipelines;
use crate::remote::RemoteCaller;
use crate::server::ServerCore;
use crate::session::{PoolCallbacks, Session, SessionHub};
use crate::{PitayaError, Serializer, SerializerKind};

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
    remote_pipelines: Pipelines,
    forward_pipelines: Pipelines,
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
    cluster: Option<Arc<dyn ClusterPlane>>,
    server_id: Option<String>,
    metadata: BTreeMap<String, String>,
    routers: HashMap<String, RouterFn>,
    rpc_timeout: Duration,
    cluster_grace: Duration,
    remotes: Option<Arc<dyn RemoteCaller>>,
    session_callbacks: PoolCallbacks,
    groups: Option<Arc<dyn GroupService>>,
    error: Option<Error>,
}

/// Default time between losing the cluster for good and shutting down.
pub const DEFAULT_CLUSTER_GRACE: Duration = Duration::from_secs(5);

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
            remote_pipelines: Pipelines::default(),
            forward_pipelines: Pipelines::default(),
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
            server_id: None,
            metadata: BTreeMap::new(),
            routers: HashMap::new(),
            rpc_timeout: Duration::from_secs(5),
            cluster_grace: DEFAULT_CLUSTER_GRACE,
            remotes: None,
            session_callbacks: PoolCallbacks::default(),
            groups: None,
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

    /// Adds an async hook run before every client handler of this server
    /// (Go's `BeforeHandler.PushBack`, run after the hooks already added),
    /// where the handler runs: on a backend for forwarded messages (use
    /// [`before_forward`](Self::before_forward) for hooks on the frontend
    /// that forwards them). It takes the [`Request`] and returns a future:
    /// an error rejects the call (the error is the reply; the handler and
    /// the after hooks do not run), `Ok` goes on with the request it holds
    /// (a replaced body, or a context with values added by
    /// [`Context::with_value`] through [`Request::with_context`]).
    ///
    /// ```
    /// use pitaya_core::PitayaError;
    /// use pitaya_core::app::App;
    ///
    /// let app = App::builder("connector")
    ///     .before_handler(|request| async move {
    ///         // e.g. look the session's token up in a database
    ///         let token = request.session().and_then(|s| s.get::<String>("token").ok().flatten());
    ///         let login = request.context().route().ends_with("account.login");
    ///         if token.is_none() && !login {
    ///             return Err(PitayaError::new("GAME-401", "log in first"));
    ///         }
    ///         Ok(request)
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn before_handler<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Request, PitayaError>> + Send + 'static,
    {
        self.pipelines.push_before(hook);
        self
    }

    /// [`before_handler`](Self::before_handler), run before the before
    /// hooks already added (Go's `BeforeHandler.PushFront`).
    #[must_use]
    pub fn before_handler_first<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Request, PitayaError>> + Send + 'static,
    {
        self.pipelines.push_front_before(hook);
        self
    }

    /// Adds an async hook run after every client handler of this server
    /// (Go's `AfterHandler.PushBack`; see
    /// [`after_forward`](Self::after_forward) for forwarded messages on a
    /// frontend). It takes the call's [`Context`]
    /// (the route and the values the before hooks left) and the result
    /// (the encoded reply, or the error), and returns a future of the
    /// result to send.
    ///
    /// ```
    /// use pitaya_core::app::App;
    /// use pitaya_core::Context;
    /// use pitaya_core::handler::HandlerResult;
    ///
    /// let app = App::builder("game")
    ///     .after_handler(|ctx: Context, result: HandlerResult| async move {
    ///         if let Err(err) = &result {
    ///             tracing::debug!(route = ctx.route(), code = %err.code, "handler failed");
    ///         }
    ///         result
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn after_handler<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.pipelines.push_after(hook);
        self
    }

    /// [`after_handler`](Self::after_handler), run before the after hooks
    /// already added (Go's `AfterHandler.PushFront`).
    #[must_use]
    pub fn after_handler_first<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.pipelines.push_front_after(hook);
        self
    }

    /// Removes the before and after handler hooks added so far (Go's
    /// `Clear` on both `HandlerHooks` channels).
    #[must_use]
    pub fn clear_handler_hooks(mut self) -> Self {
        self.pipelines.clear();
        self
    }

    /// Adds an async hook run on this frontend before every client message
    /// it forwards to another server type (a pitaya-rs extension: Go runs
    /// hooks only where the handler runs), e.g. a token check before any
    /// backend is bothered. As [`before_handler`](Self::before_handler): a
    /// rejection answers the client and nothing is sent; the context and
    /// body it returns are what is forwarded (context values reach the
    /// backend's handler).
    ///
    /// ```
    /// use pitaya_core::PitayaError;
    /// use pitaya_core::app::App;
    ///
    /// let app = App::builder("connector")
    ///     .before_forward(|request| async move {
    ///         if request.session().and_then(|s| s.uid()).is_none() {
    ///             return Err(PitayaError::new("GAME-401", "log in first"));
    ///         }
    ///         Ok(request)
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn before_forward<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Request, PitayaError>> + Send + 'static,
    {
        self.forward_pipelines.push_before(hook);
        self
    }

    /// Adds an async hook run on this frontend on the backend's reply to
    /// every client message it forwards (its error, or its encoded reply),
    /// before the client gets it.
    #[must_use]
    pub fn after_forward<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.forward_pipelines.push_after(hook);
        self
    }

    /// Removes the forward hooks added so far.
    #[must_use]
    pub fn clear_forward_hooks(mut self) -> Self {
        self.forward_pipelines.clear();
        self
    }

    /// Adds an async hook run before every `#[remote]` method this server
    /// serves (Go's `RemoteHooks.BeforeHandler.PushBack`). Like
    /// [`before_handler`](Self::before_handler), but the request has no
    /// session and carries the protobuf argument; a rejection reaches the
    /// caller as a `PIT-500` with the hook's message (its code and
    /// metadata are dropped), as Go answers.
    ///
    /// ```
    /// use pitaya_core::PitayaError;
    /// use pitaya_core::app::App;
    ///
    /// let app = App::builder("room")
    ///     .before_remote(|request| async move {
    ///         if request.context().get("peer.service").and_then(|v| v.as_str()) == Some("connector") {
    ///             Ok(request)
    ///         } else {
    ///             Err(PitayaError::new("ROOM-403", "only connectors call rooms"))
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn before_remote<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Request, PitayaError>> + Send + 'static,
    {
        self.remote_pipelines.push_before(hook);
        self
    }

    /// [`before_remote`](Self::before_remote), run before the before-remote
    /// hooks already added (Go's `PushFront`).
    #[must_use]
    pub fn before_remote_first<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Request, PitayaError>> + Send + 'static,
    {
        self.remote_pipelines.push_front_before(hook);
        self
    }

    /// Adds an async hook run after every `#[remote]` method this server
    /// serves (Go's `RemoteHooks.AfterHandler.PushBack`); the result holds
    /// the protobuf-encoded reply. Its error reaches the caller with its
    /// code and metadata.
    #[must_use]
    pub fn after_remote<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.remote_pipelines.push_after(hook);
        self
    }

    /// [`after_remote`](Self::after_remote), run before the after-remote
    /// hooks already added (Go's `PushFront`).
    #[must_use]
    pub fn after_remote_first<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.remote_pipelines.push_front_after(hook);
        self
    }

    /// Removes the before and after remote hooks added so far (Go's
    /// `Clear` on both `RemoteHooks` channels).
    #[must_use]
    pub fn clear_remote_hooks(mut self) -> Self {
        self.remote_pipelines.clear();
        self
    }

    /// Runs `callback(session, uid)` before a session of this frontend binds
    /// `uid` (Go's `OnSessionBind`), in the order they were added; an error
    /// refuses the bind ([`Session::bind`] returns it, and a backend that
    /// asked for the bind gets it). Also for binds asked by a backend.
    ///
    /// ```
    /// use pitaya_core::app::App;
    /// use pitaya_core::{PitayaError, error::codes};
    ///
    /// let app = App::builder("connector")
    ///     .on_session_bind(|_session, uid| async move {
    ///         if uid.starts_with("banned-") {
    ///             return Err(PitayaError::new(codes::BAD_REQUEST, "banned"));
    ///         }
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn on_session_bind<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(Session, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), PitayaError>> + Send + 'static,
    {
        self.session_callbacks
            .on_bind
            .push(Arc::new(move |session, uid| {
                Box::pin(callback(session, uid))
            }));
        self
    }

    /// Runs `callback(session, uid)` after a session of this frontend bound
    /// `uid` and, in a cluster, subscribed its pushes (Go's
    /// `OnAfterSessionBind`); an error is returned by the bind, but the uid
    /// stays bound (Go unbinds it).
    #[must_use]
    pub fn on_after_session_bind<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(Session, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), PitayaError>> + Send + 'static,
    {
        self.session_callbacks
            .after_bind
            .push(Arc::new(move |session, uid| {
                Box::pin(callback(session, uid))
            }));
        self
    }

    /// Runs `callback` when any client session of this frontend closes (Go's
    /// `OnSessionClose`), after the session's own
    /// [`on_close`](Session::on_close) callbacks. It is synchronous: spawn
    /// what must await.
    #[must_use]
    pub fn on_session_close(mut self, callback: impl Fn(&Session) + Send + Sync + 'static) -> Self {
        self.session_callbacks.on_close.push(Arc::new(callback));
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

    /// Makes this server part of `cluster`, one value for its discovery
    /// and RPC (e.g. `Cluster::etcd_nats(etcd, nats)` or
    /// `Cluster::memory(&dev_cluster)` from `pitaya-cluster`): when the app
    /// runs it connects them for this server's identity, serves forwarded
    /// messages and remotes, registers, and forwards client messages for
    /// other server types.
    ///
    /// The identity is derived once: [`server_id`](Self::server_id)
    /// (default a random UUID v4), the server type, the frontend flag (a
    /// server with acceptors is a frontend, one without is a backend,
    /// unless [`frontend`](Self::frontend) says otherwise), the
    /// [`metadata`](Self::metadata) and this host's name. The cluster
    /// settings can be given in any order.
    #[must_use]
    pub fn cluster(mut self, cluster: impl ClusterPlane) -> Self {
        self.cluster = Some(Arc::new(cluster));
        self
    }

    /// The lower-level form of [`cluster`](Self::cluster), for tests and
    /// unusual setups: parts built by hand. `server` must have been built
    /// for this server's identity: give the app the same ID with
    /// [`server_id`](Self::server_id).
    #[must_use]
    pub fn cluster_parts(
        self,
        discovery: Arc<dyn ServiceDiscovery>,
        client: Arc<dyn RpcClient>,
        server: Arc<dyn RpcServer>,
    ) -> Self {
        self.cluster(FixedParts {
            discovery,
            client,
            server,
        })
    }

    /// How long the app keeps running, not ready, after its cluster is lost
    /// for good (the etcd lease cannot be renewed, NATS gave up
    /// reconnecting) before it shuts down gracefully (default 5 s; Go
    /// Pitaya stops at once).
    #[must_use]
    pub fn cluster_grace(mut self, grace: Duration) -> Self {
        self.cluster_grace = grace;
        self
    }

    /// This server's ID in the cluster (default: a random UUID v4).
    #[must_use]
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Adds a metadata entry to this server's registration.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
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
        self.routers.insert(server_type.into(), Arc::new(router));
        self
    }

    /// How long a forwarded message or a remote call waits for its reply
    /// (default 5 s; `PIT-408` after it).
    #[must_use]
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// The group service behind [`AppHandle::groups`](crate::handle::AppHandle::groups)
    /// (default: a new [`MemoryGroups`](crate::group::MemoryGroups), this
    /// process only). An etcd service (`pitaya_cluster::EtcdGroups`) shares
    /// the groups with every server of the cluster, Go ones included. The
    /// service's background work stops when the app shuts down.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pitaya_core::app::App;
    /// use pitaya_core::group::MemoryGroups;
    ///
    /// let app = App::builder("chat")
    ///     .groups(MemoryGroups::with_sweep_interval(Duration::from_secs(5)))
    ///     .build()
    ///     .unwrap();
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn groups(mut self, service: impl GroupService) -> Self {
        self.groups = Some(Arc::new(service));
        self
    }

    /// Sends this app's remote calls to `caller` instead of the cluster
    /// (the test harness's fake cluster).
    #[cfg(feature = "testing")]
    pub(crate) fn remote_caller(mut self, caller: Arc<dyn RemoteCaller>) -> Self {
        self.remotes = Some(caller);
        self
    }

    /// The server type being built.
    #[cfg(feature = "testing")]
    pub(crate) fn server_type(&self) -> &str {
        &self.config.server_type
    }

    /// Builds the app.
    pub fn build(self) -> Result<App> {
        if let Some(err) = self.error {
            return Err(err);
        }
        self.routes.check_serializer(self.serializer)?;
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
        sessions.set_callbacks(self.session_callbacks);
        let shutdown = CancellationToken::new();
        let frontend = self
            .frontend
            .unwrap_or(self.cluster.is_none() || !self.acceptors.is_empty());
        let slot = ClusterSlot::default();
        let cluster = match self.cluster {
            Some(plane) => {
                let mut me = ServerInfo::new(
                    self.server_id.unwrap_or_else(crate::clustered::uuid_v4),
                    self.config.server_type.clone(),
                    frontend,
                )
                .with_hostname(local_hostname());
                me.metadata = self.metadata;
                me.validate().map_err(crate::cluster::ClusterError::from)?;
                if frontend {
                    let slot = slot.clone();
                    sessions.set_bind_hook(Arc::new(move |session: Session| {
                        let parts = slot.get();
                        Box::pin(async move {
                            if let Some(parts) = parts {
                                crate::inbound::on_frontend_bind(&parts, &session).await;
                            }
                        })
                    }));
                }
                Some(ClusterPlan {
                    plane,
                    me: Arc::new(me),
                    routers: self.routers,
                    timeout: self.rpc_timeout,
                    grace: self.cluster_grace,
                    unique: self.unique_sessions,
                })
            }
            None => None,
        };
        let handle = AppHandle {
            shared: Arc::new(Shared {
                cluster: slot,
                me: cluster.as_ref().map(|plan| plan.me.clone()),
                ready: std::sync::atomic::AtomicBool::new(false),
                remotes: self.remotes,
                server_type: self.config.server_type.clone(),
                sessions: sessions.clone(),
                groups: Groups::for_app(self.groups, &shutdown),
                shutdown: shutdown.clone(),
            }),
        };
        let core = Arc::new(ServerCore {
            config: self.config,
            routes: self.routes,
            pipelines: self.pipelines,
            remote_pipelines: self.remote_pipelines,
            forward_pipelines: self.forward_pipelines,
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

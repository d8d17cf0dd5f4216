//! An in-memory harness to test components without a socket.
//!
//! [`TestApp`] builds an app from its [`AppBuilder`] and calls its
//! handlers the way a client message reaches them (the same route rules,
//! pipelines, serializer and error codes), from a [`TestSession`] that
//! stands for a connected client: it has a uid once bound, session data,
//! and captures what the server sends it (pushes, a kick). Remotes are
//! called through a [`FakeCluster`]: apps started in it reach each other's
//! `#[remote]` methods by server type, with protobuf arguments as on the
//! wire. Timers run on tokio's clock, so a test with
//! `#[tokio::test(start_paused = true)]` moves them with
//! `tokio::time::advance`.
//!
//! What it does not do: no handshake, heartbeats or acceptors, no modules
//! (their hooks are not run), and no forwarding of client messages to other
//! server types (use the in-process cluster of `pitaya-cluster` for that).
//!
//! Enable it in tests with the `testing` feature:
//! `pitaya = { version = "...", features = ["testing"] }` under
//! `[dev-dependencies]`.
//!
//! ```
//! use pitaya_core::app::App;
//! use pitaya_core::testing::TestApp;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An app without components: every route is unknown.
//! let app = TestApp::new(App::builder("chat")).unwrap();
//! let ana = app.session();
//! let err = app
//!     .request::<_, serde_json::Value>(&ana, "chat.room.join", &"ana")
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.code, "PIT-404");
//! assert!(ana.pushes().is_empty());
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::{self, App, AppBuilder};
use crate::cluster::ClusterError;
use crate::codec::{MessageType, Packet, PacketType};
use crate::context::Context;
use crate::dispatch::{RouteTable, parse_route};
use crate::dispatcher::{self, ClientMessage};
use crate::error::codes;
use crate::handle::AppHandle;
use crate::remote::{RemoteCall, RemoteCaller, RemoteFuture, Target};
use crate::server::ServerCore;
use crate::session::Session;
use crate::{PitayaError, Serializer, SerializerKind};

/// An app under test: its handlers and remotes, called without a socket.
pub struct TestApp {
    app: App,
    id: String,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("server_type", &self.app.handle().server_type())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TestApp {
    /// Builds the app of `builder` for testing, standalone: its remote
    /// calls fail as those of a server without a cluster do.
    ///
    /// # Errors
    /// What [`AppBuilder::build`] reports (a route registered twice, an
    /// invalid setting).
    pub fn new(builder: AppBuilder) -> app::Result<Self> {
        let id = format!("{}-test", builder.server_type());
        Ok(Self {
            app: builder.build()?,
            id,
        })
    }

    fn core(&self) -> &Arc<ServerCore> {
        self.app.core()
    }

    /// The app's handle, as handlers get it.
    pub fn handle(&self) -> AppHandle {
        self.app.handle()
    }

    /// The app's routes.
    pub fn routes(&self) -> &RouteTable {
        self.app.routes()
    }

    /// A new connected client session (no uid yet).
    pub fn session(&self) -> TestSession {
        TestSession {
            session: self.core().sessions.create(None),
            received: Mutex::new(Received::default()),
            codec: self.core().codec.clone(),
            serializer: self.core().sessions.serializer(),
        }
    }

    /// Sends a request from `session` on `route` (`server.component.method`
    /// or `component.method`) with `body` serialized in the app's
    /// serializer, and decodes the reply.
    ///
    /// # Errors
    /// The handler's error, or the one the server would answer (`PIT-404`
    /// for an unknown route, `PIT-400` for a request to a notify route or an
    /// undecodable payload), or `PIT-500` when the reply is not a `Resp`.
    pub async fn request<Req, Resp>(
        &self,
        session: &TestSession,
        route: &str,
        body: &Req,
    ) -> Result<Resp, PitayaError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = self.serialize(body)?;
        let reply = self.request_raw(session, route, body).await?;
        self.core()
            .sessions
            .serializer()
            .deserialize(&reply)
            .map_err(|err| PitayaError::new(codes::INTERNAL, format!("decoding the reply: {err}")))
    }

    /// Sends a request with an already serialized body; the raw reply.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub async fn request_raw(
        &self,
        session: &TestSession,
        route: &str,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, PitayaError> {
        let reply = self
            .send(session, route, MessageType::Request, body.into())
            .await?;
        reply.ok_or_else(|| PitayaError::new(codes::UNKNOWN, "reply must not be null"))
    }

    /// Sends a notify from `session`; resolves once its handler returned.
    ///
    /// # Errors
    /// What the server would log and not answer: an unknown route, an
    /// undecodable payload, the handler's error.
    pub async fn notify<T: Serialize + ?Sized>(
        &self,
        session: &TestSession,
        route: &str,
        body: &T,
    ) -> Result<(), PitayaError> {
        let body = self.serialize(body)?;
        self.notify_raw(session, route, body).await
    }

    /// Sends a notify with an already serialized body.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    pub async fn notify_raw(
        &self,
        session: &TestSession,
        route: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), PitayaError> {
        self.send(session, route, MessageType::Notify, body.into())
            .await
            .map(drop)
    }

    /// Calls this app's remote `route` (`server.component.method`) as
    /// another server would, with a protobuf argument and reply.
    ///
    /// # Errors
    /// The remote's error; `PIT-404` for an unknown remote; `PIT-500` for
    /// a reply that is not a `Resp`.
    pub async fn call_remote<Req, Resp>(&self, route: &str, arg: &Req) -> Result<Resp, PitayaError>
    where
        Req: crate::remote::RemoteMessage,
        Resp: crate::remote::RemoteMessage,
    {
        let parts = parse_route(route)?;
        let reply = crate::inbound::call_remote(
            self.core(),
            parts.local,
            Context::new(route),
            arg.encode_remote(),
        )
        .await?;
        Resp::decode_remote(&reply).map_err(|err| {
            PitayaError::new(codes::INTERNAL, format!("decoding the remote reply: {err}"))
        })
    }

    async fn send(
        &self,
        session: &TestSession,
        route: &str,
        kind: MessageType,
        body: Bytes,
    ) -> Result<Option<Bytes>, PitayaError> {
        if session.session.is_closed() {
            return Err(PitayaError::new(
                codes::CLIENT_CLOSED_REQUEST,
                "the session is closed",
            ));
        }
        let message = ClientMessage {
            route: route.to_owned(),
            id: u64::from(kind == MessageType::Request),
            kind,
            body,
        };
        dispatcher::start(self.core(), &session.session, message, false)?.await
    }

    fn serialize<T: Serialize + ?Sized>(&self, body: &T) -> Result<Bytes, PitayaError> {
        self.core()
            .sessions
            .serializer()
            .serialize(body)
            .map(Bytes::from)
            .map_err(|err| PitayaError::new(codes::BAD_REQUEST, err.to_string()))
    }
}

/// What the server sent a [`TestSession`] so far and the test has not
/// taken yet.
#[derive(Debug, Default)]
struct Received {
    pushes: VecDeque<TestPush>,
    kicked: bool,
    closed_by_server: bool,
}

/// A client session without a connection: what a handler sees as its
/// `&Session`, and what a client would receive.
pub struct TestSession {
    session: Session,
    received: Mutex<Received>,
    codec: crate::codec::MessageCodec,
    serializer: SerializerKind,
}

impl std::fmt::Debug for TestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl TestSession {
    /// The session, as handlers see it (bind, data, `on_close`...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The bound uid, if any.
    pub fn uid(&self) -> Option<String> {
        self.session.uid().map(str::to_owned)
    }

    /// Takes the pushes received since the last call, in order.
    pub fn pushes(&self) -> Vec<TestPush> {
        let mut received = self.collect();
        received.pushes.drain(..).collect()
    }

    /// Takes the pushes received on `route` since the last call and decodes
    /// their bodies; pushes on other routes stay.
    ///
    /// # Errors
    /// `PIT-500` when a body is not a `T`.
    pub fn pushes_on<T: DeserializeOwned>(&self, route: &str) -> Result<Vec<T>, PitayaError> {
        let mut received = self.collect();
        let mut kept = VecDeque::new();
        let mut taken = Vec::new();
        for push in received.pushes.drain(..) {
            if push.route == route {
                taken.push(push);
            } else {
                kept.push_back(push);
            }
        }
        received.pushes = kept;
        drop(received);
        taken.iter().map(TestPush::decode).collect()
    }

    /// Whether the server kicked this session.
    pub fn was_kicked(&self) -> bool {
        self.collect().kicked
    }

    /// Whether the server asked to close this session (a kick, a close, a
    /// full write queue).
    pub fn closed_by_server(&self) -> bool {
        self.collect().closed_by_server
    }

    /// The client goes away: the session closes, leaves the registry, and
    /// its close callbacks run (groups lose the member).
    pub fn disconnect(&self) {
        self.session.mark_closed();
    }

    fn collect(&self) -> std::sync::MutexGuard<'_, Received> {
        let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        let mut frames = VecDeque::new();
        if self.session.take_outgoing(&mut frames) {
            received.closed_by_server = true;
        }
        for frame in frames {
            match Packet::decode_exact(frame, crate::codec::MAX_PACKET_BODY) {
                Ok(packet) if packet.kind == PacketType::Kick => received.kicked = true,
                Ok(packet) if packet.kind == PacketType::Data => {
                    match self.codec.decode(packet.body) {
                        Ok(message) if message.kind == MessageType::Push => {
                            received.pushes.push_back(TestPush {
                                route: message.route,
                                body: message.body,
                                serializer: self.serializer,
                            });
                        }
                        Ok(message) => {
                            tracing::warn!(kind = ?message.kind, "unexpected message queued on a session");
                        }
                        Err(err) => tracing::warn!(error = %err, "undecodable packet queued"),
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "undecodable frame queued"),
            }
        }
        received
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        self.session.mark_closed();
    }
}

/// A push a [`TestSession`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestPush {
    /// The push route.
    pub route: String,
    /// The body, serialized (and inflated, if it was compressed).
    pub body: Bytes,
    serializer: SerializerKind,
}

impl TestPush {
    /// Decodes the body with the app's serializer.
    ///
    /// # Errors
    /// `PIT-500` when the body is not a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PitayaError> {
        self.serializer.deserialize(&self.body).map_err(|err| {
            PitayaError::new(
                codes::INTERNAL,
                format!("decoding the push {}: {err}", self.route),
            )
        })
    }
}

/// Apps that reach each other's remotes, in memory: a stand-in for the
/// cluster when testing components that call `app.remote(...)`.
///
/// ```
/// use pitaya_core::app::App;
/// use pitaya_core::testing::FakeCluster;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cluster = FakeCluster::new();
/// let _rooms = cluster.start(App::builder("room")).unwrap();
/// let lobby = cluster.start(App::builder("connector")).unwrap();
/// // No `room.count` remote is registered on the room server.
/// let err = lobby
///     .handle()
///     .remote("room")
///     .call::<(), u32>("room", "count", &())
///     .await
///     .unwrap_err();
/// assert_eq!(err.code, "PIT-404");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct FakeCluster {
    servers: Arc<Mutex<Vec<FakeServer>>>,
}

#[derive(Debug)]
struct FakeServer {
    server_type: String,
    id: String,
    core: Weak<ServerCore>,
}

impl FakeCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the app of `builder` as a server of this cluster, with the
    /// id `<type>-<n>`: its remote calls reach the apps started here.
    ///
    /// # Errors
    /// What [`AppBuilder::build`] reports.
    pub fn start(&self, builder: AppBuilder) -> app::Result<TestApp> {
        let server_type = builder.server_type().to_owned();
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let id = format!(
            "{server_type}-{}",
            servers
                .iter()
                .filter(|s| s.server_type == server_type)
                .count()
                + 1
        );
        let caller = Arc::new(FakeCaller {
            servers: Arc::downgrade(&self.servers),
            me: (server_type.clone(), id.clone()),
        });
        let app = builder.remote_caller(caller).build()?;
        servers.push(FakeServer {
            server_type,
            id: id.clone(),
            core: Arc::downgrade(app.core()),
        });
        Ok(TestApp { app, id })
    }
}

/// Routes the remote calls of one app of a [`FakeCluster`].
struct FakeCaller {
    servers: Weak<Mutex<Vec<FakeServer>>>,
    /// The calling server's type and id.
    me: (String, String),
}

impl FakeCaller {
    fn target(&self, target: &Target) -> Result<Arc<ServerCore>, PitayaError> {
        let servers = self
            .servers
            .upgrade()
            .ok_or_else(|| PitayaError::new(codes::INTERNAL, "the fake cluster is gone"))?;
        let servers = servers.lock().unwrap_or_else(PoisonError::into_inner);
        let found = match target {
            Target::ServerType(server_type) => {
                servers.iter().find(|s| s.server_type == *server_type)
            }
            Target::ServerId { id, .. } => servers.iter().find(|s| s.id == *id),
        };
        // The errors the real cluster gives.
        let missing = || -> PitayaError {
            match target {
                Target::ServerType(server_type) => ClusterError::NoServersOfType {
                    server_type: server_type.clone(),
                },
                Target::ServerId { id, .. } => ClusterError::NoServerWithId { id: id.clone() },
            }
            .into()
        };
        found
            .and_then(|server| server.core.upgrade())
            .ok_or_else(missing)
    }
}

impl RemoteCaller for FakeCaller {
    fn call(&self, call: RemoteCall) -> RemoteFuture {
        let own = match &call.target {
            Target::ServerType(server_type) => *server_type == self.me.0,
            Target::ServerId { id, .. } => *id == self.me.1,
        };
        let target = if own {
            Err(PitayaError::new(
                codes::UNKNOWN,
                crate::clustered::NONSENSE_RPC,
            ))
        } else {
            self.target(&call.target)
        };
        Box::pin(async move {
            let core = target?;
            let parts = parse_route(&call.route)?;
            let context = match &call.context {
                Some(context) => Context::with_metadata(&call.route, context.metadata().clone()),
                None => Context::new(&call.route),
            };
            let local = parts.local.to_owned();
            crate::inbound::call_remote(&core, &local, context, call.body).await
        })
    }
}

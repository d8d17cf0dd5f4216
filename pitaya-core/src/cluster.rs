//! The cluster plane's roles: service discovery and server-to-server RPC.
//!
//! This module holds only the shapes; `pitaya-cluster` implements them on
//! etcd and NATS (wire-compatible with Go Pitaya) and in memory:
//!
//! - [`ServerInfo`]: a server's identity, stored as JSON in service discovery,
//! - [`ServiceDiscovery`]: registers this server and keeps a view of the
//!   others, with [`DiscoveryEvent`]s when they come and go,
//! - [`RpcClient`]: sends [`protos::Request`]s to one server and publishes
//!   pushes, kicks and bind broadcasts,
//! - [`RpcServer`]: receives them and hands them to an [`Inbound`], the
//!   runtime's entry point,
//! - [`ClusterError`]: what can fail, mapped to Pitaya's error codes.
//!
//! Every trait is object safe (methods return boxed futures), so the runtime
//! can hold `Arc<dyn ServiceDiscovery>` and friends.
//!
//! ```
//! use pitaya_core::cluster::ServerInfo;
//!
//! let server = ServerInfo::new("7f1c", "connector", true)
//!     .with_hostname("host-1")
//!     .with_metadata("region", "eu");
//! assert_eq!(
//!     server.to_json(),
//!     r#"{"id":"7f1c","type":"connector","metadata":{"region":"eu"},"frontend":true,"hostname":"host-1"}"#
//! );
//! assert_eq!(ServerInfo::from_json(server.to_json().as_bytes()).unwrap(), server);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use pitaya_protocol::go_duration;
pub use pitaya_protocol::server_info::{InvalidServer, ServerInfo, local_hostname};
use tokio::sync::broadcast;

use crate::PitayaError;
use crate::error::codes;
use crate::protos;

/// The boxed future returned by the cluster traits.
pub type ClusterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed error from a transport or discovery backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A change in the set of known servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A server appeared.
    Added(Arc<ServerInfo>),
    /// A server went away.
    Removed(Arc<ServerInfo>),
}

impl DiscoveryEvent {
    /// The server the event is about.
    pub fn server(&self) -> &Arc<ServerInfo> {
        match self {
            Self::Added(server) | Self::Removed(server) => server,
        }
    }
}

/// What can go wrong in the cluster plane.
///
/// [`to_pitaya_error`](Self::to_pitaya_error) (or `PitayaError::from`) gives
/// the error Go Pitaya would report for the same failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No reply within the timeout: `PIT-408`, with metadata `timeout`
    /// (a Go duration), `route`, `server` (the caller) and `peer.id`.
    #[error("rpc client: request timeout")]
    Timeout {
        /// How long the caller waited.
        timeout: Duration,
        /// The route of the request (`msg.route`).
        route: String,
        /// The calling server's ID.
        server: String,
        /// The called server's ID.
        peer_id: String,
    },
    /// Nobody listens on the target's subject (the server is gone):
    /// `PIT-500` (Go reports the raw NATS error as `PIT-000`).
    #[error("no server answers on {subject}: it is gone or not serving (nats: no responders)")]
    NoResponders {
        /// The subject of the request.
        subject: String,
    },
    /// No known server of the type: `PIT-500`.
    #[error("no servers available of this type")]
    NoServersOfType {
        /// The server type looked for.
        server_type: String,
    },
    /// No known server with the ID: `PIT-500`.
    #[error("can't find any server with the provided ID")]
    NoServerWithId {
        /// The server ID looked for.
        id: String,
    },
    /// A server identity that cannot be registered: `PIT-500`.
    #[error("invalid server: {0}")]
    InvalidServer(String),
    /// An undecodable protobuf message: `PIT-500`.
    #[error("malformed protobuf message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The component is not started, or already stopped: `PIT-000`.
    #[error("{0} is not running")]
    NotRunning(&'static str),
    /// The RPC transport (NATS) failed: `PIT-000`.
    #[error("rpc transport: {0}")]
    Transport(#[source] BoxError),
    /// The service discovery backend (etcd) failed: `PIT-000`.
    #[error("service discovery: {0}")]
    Discovery(#[source] BoxError),
}

impl ClusterError {
    /// A transport error from anything printable.
    pub fn transport(err: impl Into<BoxError>) -> Self {
        Self::Transport(err.into())
    }

    /// A discovery error from anything printable.
    pub fn discovery(err: impl Into<BoxError>) -> Self {
        Self::Discovery(err.into())
    }

    /// The Pitaya error code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => codes::REQUEST_TIMEOUT,
            Self::NoServersOfType { .. }
            | Self::NoResponders { .. }
            | Self::NoServerWithId { .. }
            | Self::InvalidServer(_)
            | Self::Decode(_) => codes::INTERNAL,
            Self::NotRunning(_) | Self::Transport(_) | Self::Discovery(_) => codes::UNKNOWN,
        }
    }

    /// The error as Go Pitaya reports it to a client or an RPC caller.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pitaya_core::cluster::ClusterError;
    ///
    /// let err = ClusterError::Timeout {
    ///     timeout: Duration::from_secs(5),
    ///     route: "room.room.join".into(),
    ///     server: "front-1".into(),
    ///     peer_id: "room-1".into(),
    /// };
    /// let pitaya = err.to_pitaya_error();
    /// assert_eq!(pitaya.code, "PIT-408");
    /// assert_eq!(pitaya.msg, "rpc client: request timeout");
    /// assert_eq!(pitaya.metadata["timeout"], "5s");
    /// assert_eq!(pitaya.metadata["peer.id"], "room-1");
    /// ```
    pub fn to_pitaya_error(&self) -> PitayaError {
        let err = PitayaError::new(self.code(), self.to_string());
        match self {
            Self::Timeout {
                timeout,
                route,
                server,
                peer_id,
            } => err
                .with_metadata("timeout", go_duration::format(*timeout))
                .with_metadata("route", route)
                .with_metadata("server", server)
                .with_metadata("peer.id", peer_id),
            _ => err,
        }
    }
}

impl From<InvalidServer> for ClusterError {
    fn from(err: InvalidServer) -> Self {
        Self::InvalidServer(err.0)
    }
}

impl From<ClusterError> for PitayaError {
    fn from(err: ClusterError) -> Self {
        err.to_pitaya_error()
    }
}

/// A cluster a server joins, as one value: what builds its discovery and
/// RPC for the server's identity when the app starts.
///
/// `pitaya-cluster` provides the usual ones (`Cluster::etcd_nats` for etcd
/// and NATS, `Cluster::memory` for the in-process cluster); give one to
/// [`AppBuilder::cluster`](crate::app::AppBuilder::cluster). The app
/// derives its identity once ([`ServerInfo`]: id, type, frontend flag,
/// metadata, hostname) and hands it to [`connect`](Self::connect).
pub trait ClusterPlane: Send + Sync + 'static {
    /// What the plane is, for logs (e.g. `"etcd + nats"`).
    fn describe(&self) -> String;

    /// Connects the parts for the server `me`; nothing is registered yet
    /// (the app starts the RPC server, then registers with discovery).
    fn connect(
        &self,
        me: Arc<ServerInfo>,
    ) -> ClusterFuture<'_, Result<ClusterConnection, ClusterError>>;
}

/// The connected parts of a [`ClusterPlane`] for one server.
pub struct ClusterConnection {
    /// Service discovery.
    pub discovery: Arc<dyn ServiceDiscovery>,
    /// The client side of RPC.
    pub client: Arc<dyn RpcClient>,
    /// The server side of RPC, built for the same identity.
    pub server: Arc<dyn RpcServer>,
    /// Resolves, with the reason, once a part is lost for good (the etcd
    /// lease cannot be renewed, NATS gave up reconnecting): the app then
    /// reports not-ready and shuts down after its grace period, as Go
    /// Pitaya's die channel does. A plane that cannot be lost never
    /// resolves it.
    pub lost: ClusterFuture<'static, String>,
}

impl ClusterConnection {
    /// Connected parts that are never lost.
    pub fn new(
        discovery: Arc<dyn ServiceDiscovery>,
        client: Arc<dyn RpcClient>,
        server: Arc<dyn RpcServer>,
    ) -> Self {
        Self {
            discovery,
            client,
            server,
            lost: Box::pin(std::future::pending()),
        }
    }

    /// The same parts, lost when `lost` resolves.
    #[must_use]
    pub fn lost_when(mut self, lost: impl Future<Output = String> + Send + 'static) -> Self {
        self.lost = Box::pin(lost);
        self
    }
}

impl fmt::Debug for ClusterConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConnection").finish_non_exhaustive()
    }
}

/// Parts built by hand, given to a [`ClusterPlane`] as they are: what
/// [`AppBuilder::cluster_parts`](crate::app::AppBuilder::cluster_parts)
/// uses. The RPC server must have been built for the app's identity.
pub struct FixedParts {
    /// Service discovery.
    pub discovery: Arc<dyn ServiceDiscovery>,
    /// The client side of RPC.
    pub client: Arc<dyn RpcClient>,
    /// The server side of RPC.
    pub server: Arc<dyn RpcServer>,
}

impl ClusterPlane for FixedParts {
    fn describe(&self) -> String {
        "parts built by hand".into()
    }

    fn connect(
        &self,
        _me: Arc<ServerInfo>,
    ) -> ClusterFuture<'_, Result<ClusterConnection, ClusterError>> {
        let connection = ClusterConnection::new(
            self.discovery.clone(),
            self.client.clone(),
            self.server.clone(),
        );
        Box::pin(async move { Ok(connection) })
    }
}

/// Finds servers and announces this one.
///
/// A discovery keeps a local view of the cluster, so the lookups are
/// synchronous and cheap. The view includes this server once started.
pub trait ServiceDiscovery: Send + Sync + 'static {
    /// Registers `me` and starts following the cluster. Returns once `me` is
    /// registered and a first full listing has been loaded.
    fn start(&self, me: ServerInfo) -> ClusterFuture<'_, Result<(), ClusterError>>;

    /// Deregisters this server (other servers see it go at once) and stops
    /// following the cluster.
    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>>;

    /// The known servers of `server_type` (this one included), sorted by ID.
    fn servers_of_type(&self, server_type: &str) -> Vec<Arc<ServerInfo>>;

    /// The known server with this ID.
    fn server(&self, id: &str) -> Option<Arc<ServerInfo>>;

    /// Every known server, sorted by type then ID.
    fn servers(&self) -> Vec<Arc<ServerInfo>>;

    /// Changes from now on; never about this server itself. A receiver that
    /// lags loses events (`RecvError::Lagged`) and should re-read
    /// [`servers`](Self::servers).
    fn events(&self) -> broadcast::Receiver<DiscoveryEvent>;
}

/// Sends requests to other servers and publishes to frontends.
///
/// Subjects (NATS) are Go Pitaya's: `pitaya/servers/<type>/<id>` for
/// requests, `pitaya/<frontendType>/user/<uid>/push` and `.../kick`,
/// `pitaya/<frontendType>/bindings`.
pub trait RpcClient: Send + Sync + 'static {
    /// Sends `request` to `target` and waits up to `timeout` for its
    /// response. A response carrying an error is still `Ok`: see
    /// [`protos::Response::into_result`]. Fails with
    /// [`ClusterError::Timeout`] (`PIT-408`) when no reply comes in time.
    fn request(
        &self,
        target: &ServerInfo,
        request: protos::Request,
        timeout: Duration,
    ) -> ClusterFuture<'_, Result<protos::Response, ClusterError>>;

    /// Publishes a push for the user `push.uid` bound on a frontend of
    /// `frontend_type`. Fire and forget: nobody may be listening.
    fn push_to_user(
        &self,
        frontend_type: &str,
        push: protos::Push,
    ) -> ClusterFuture<'_, Result<(), ClusterError>>;

    /// Publishes a kick for the user `kick.user_id` bound on a frontend of
    /// `frontend_type`. Fire and forget.
    fn kick_user(
        &self,
        frontend_type: &str,
        kick: protos::KickMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>>;

    /// Tells every frontend of `frontend_type` that `bind.uid` is now bound
    /// on `bind.fid` (the unique-session module).
    fn broadcast_bind(
        &self,
        frontend_type: &str,
        bind: protos::BindMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>>;
}

/// Receives what other servers send to this one.
///
/// The server knows its own identity from construction (the same one its
/// [`RpcClient`] side uses). Once started it answers requests on
/// `pitaya/servers/<type>/<id>` and receives bind broadcasts for its own
/// type; user pushes and kicks arrive only for uids subscribed with
/// [`subscribe_user`](Self::subscribe_user).
pub trait RpcServer: Send + Sync + 'static {
    /// Subscribes and starts handing messages to `inbound`. Requests run
    /// concurrently, up to an implementation-defined bound.
    fn start(&self, inbound: Arc<dyn Inbound>) -> ClusterFuture<'_, Result<(), ClusterError>>;

    /// Starts receiving pushes and kicks for `uid` on this server's type
    /// (call it when a uid binds on this frontend). Pushes for one uid reach
    /// [`Inbound::on_push`] in order. Dropping or closing the returned
    /// handle unsubscribes.
    fn subscribe_user(
        &self,
        uid: &str,
    ) -> ClusterFuture<'_, Result<UserSubscription, ClusterError>>;

    /// Stops receiving, waits for the requests in flight to be answered
    /// (bounded by an implementation-defined drain timeout), then closes.
    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>>;
}

/// The runtime's side of an [`RpcServer`]: what to do with what arrives.
pub trait Inbound: Send + Sync + 'static {
    /// Handles a request and returns the response to send back; errors go
    /// in `Response.error`. Over NATS `msg.reply` holds the reply subject
    /// (as in Go); in memory it is empty.
    fn on_request(&self, request: protos::Request) -> ClusterFuture<'_, protos::Response>;

    /// Delivers a push to the session of `push.uid`.
    fn on_push(&self, push: protos::Push) -> ClusterFuture<'_, ()>;

    /// Kicks the session of `kick.user_id`.
    fn on_kick(&self, kick: protos::KickMsg) -> ClusterFuture<'_, protos::KickAnswer>;

    /// `bind.uid` got bound on frontend `bind.fid` (which may be this one).
    fn on_bind(&self, bind: protos::BindMsg) -> ClusterFuture<'_, ()>;
}

/// The transport's half of a [`UserSubscription`].
///
/// Dropping it must unsubscribe (in the background); [`close`](Self::close)
/// unsubscribes and resolves once the transport confirmed it.
pub trait SubscriptionGuard: Send + Sync + 'static {
    /// Unsubscribes and waits for the confirmation.
    fn close(self: Box<Self>) -> ClusterFuture<'static, ()>;
}

/// Pushes and kicks for one uid flow while this handle lives.
pub struct UserSubscription {
    uid: String,
    guard: Option<Box<dyn SubscriptionGuard>>,
}

impl UserSubscription {
    /// A subscription for `uid` that ends with `guard`.
    pub fn new(uid: impl Into<String>, guard: impl SubscriptionGuard) -> Self {
        Self {
            uid: uid.into(),
            guard: Some(Box::new(guard)),
        }
    }

    /// The subscribed uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Unsubscribes; once this resolves no push or kick for the uid is
    /// delivered any more.
    pub async fn close(mut self) {
        if let Some(guard) = self.guard.take() {
            guard.close().await;
        }
    }
}

impl fmt::Debug for UserSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSubscription")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        let timeout = ClusterError::Timeout {
            timeout: Duration::from_millis(1500),
            route: "r.s.m".into(),
            server: "me".into(),
            peer_id: "you".into(),
        };
        let err = PitayaError::from(timeout);
        assert_eq!(err.code, "PIT-408");
        assert_eq!(err.msg, "rpc client: request timeout");
        assert_eq!(
            err.metadata,
            [
                ("peer.id", "you"),
                ("route", "r.s.m"),
                ("server", "me"),
                ("timeout", "1.5s")
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
        );
        let none = ClusterError::NoServersOfType {
            server_type: "room".into(),
        };
        assert_eq!(none.code(), "PIT-500");
        assert_eq!(
            PitayaError::from(none).msg,
            "no servers available of this type"
        );
        assert_eq!(ClusterError::transport("down").code(), "PIT-000");
        assert_eq!(
            ClusterError::transport("down").to_string(),
            "rpc transport: down"
        );
    }
}

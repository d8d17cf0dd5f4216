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

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::broadcast;

use crate::PitayaError;
use crate::error::codes;
use crate::protos;

/// The boxed future returned by the cluster traits.
pub type ClusterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed error from a transport or discovery backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A server's identity, as Go Pitaya's `cluster.Server`.
///
/// Its JSON form ([`to_json`](Self::to_json)) is the value stored in etcd:
/// `{"id":..,"type":..,"metadata":{..},"frontend":..,"hostname":..}`, in
/// that order, metadata keys sorted, `metadata` `{}` when empty, and `<`,
/// `>`, `&`, U+2028 and U+2029 escaped as Go's `encoding/json` does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Unique server ID (Go Pitaya uses a random UUIDv4). Must not contain `/`.
    #[serde(default)]
    pub id: String,
    /// Server type, e.g. `connector` or `room`. Must not contain `/`.
    #[serde(rename = "type", default)]
    pub server_type: String,
    /// Free-form metadata (`grpcHost`, `region`, ...).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Whether clients connect to this server.
    #[serde(default)]
    pub frontend: bool,
    /// The host name of the machine running the server.
    #[serde(default)]
    pub hostname: String,
}

impl ServerInfo {
    /// A server with no metadata; the hostname is this machine's
    /// ([`local_hostname`]).
    pub fn new(id: impl Into<String>, server_type: impl Into<String>, frontend: bool) -> Self {
        Self {
            id: id.into(),
            server_type: server_type.into(),
            metadata: BTreeMap::new(),
            frontend,
            hostname: local_hostname(),
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Replaces the hostname.
    #[must_use]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }

    /// Checks the ID and type: both non-empty and without `/` (they are
    /// segments of etcd keys and NATS subjects).
    pub fn validate(&self) -> Result<(), ClusterError> {
        for (what, value) in [("id", &self.id), ("type", &self.server_type)] {
            if value.is_empty() {
                return Err(ClusterError::InvalidServer(format!(
                    "server {what} is empty"
                )));
            }
            if value.contains('/') {
                return Err(ClusterError::InvalidServer(format!(
                    "server {what} {value:?} contains '/'"
                )));
            }
        }
        Ok(())
    }

    /// The JSON Go Pitaya writes for this server (see the type's docs).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoJsonFormatter);
        // A struct of strings, a bool and a string map always serializes.
        if self.serialize(&mut serializer).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses the JSON of a server. Unknown fields are ignored, missing ones
    /// take their defaults and `"metadata":null` reads as empty, as in Go.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.server_type, self.id)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// This machine's host name (Go's `os.Hostname()`), or `""` if unknown.
///
/// Read from `/proc/sys/kernel/hostname`, then `/etc/hostname`, then the
/// `HOSTNAME` / `COMPUTERNAME` environment variables.
pub fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|var| std::env::var(var).ok()),
        )
        .find(|name| !name.is_empty())
        .unwrap_or_default()
}

/// serde_json's compact output plus the escapes Go's `encoding/json` adds
/// inside strings (HTML characters and the JavaScript line separators).
struct GoJsonFormatter;

impl serde_json::ser::Formatter for GoJsonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

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

impl From<ClusterError> for PitayaError {
    fn from(err: ClusterError) -> Self {
        err.to_pitaya_error()
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

/// Go's `time.Duration` text form, used in `Request.metadata`
/// (`"reqTimeout": "5s"`) and in error metadata.
///
/// ```
/// use std::time::Duration;
/// use pitaya_core::cluster::go_duration;
///
/// assert_eq!(go_duration::format(Duration::from_secs(90)), "1m30s");
/// assert_eq!(go_duration::format(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(go_duration::parse("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// ```
pub mod go_duration {
    use std::time::Duration;

    /// Formats like Go's `Duration.String()`: `"0s"`, `"1.5µs"`,
    /// `"250ms"`, `"5s"`, `"1m0s"`, `"2h3m4.5s"`.
    pub fn format(duration: Duration) -> String {
        let nanos = duration.as_nanos();
        if nanos == 0 {
            return "0s".to_owned();
        }
        if nanos < 1_000 {
            return format!("{nanos}ns");
        }
        if nanos < 1_000_000 {
            return format!("{}µs", fraction(nanos, 3));
        }
        if nanos < 1_000_000_000 {
            return format!("{}ms", fraction(nanos, 6));
        }
        let seconds = fraction(nanos % 60_000_000_000, 9);
        let minutes_total = nanos / 60_000_000_000;
        if minutes_total == 0 {
            return format!("{seconds}s");
        }
        let (hours, minutes) = (minutes_total / 60, minutes_total % 60);
        if hours == 0 {
            format!("{minutes}m{seconds}s")
        } else {
            format!("{hours}h{minutes}m{seconds}s")
        }
    }

    /// `value / 10^digits` with its fractional part, trailing zeros removed.
    fn fraction(value: u128, digits: u32) -> String {
        let scale = 10u128.pow(digits);
        let (whole, frac) = (value / scale, value % scale);
        if frac == 0 {
            return whole.to_string();
        }
        let frac = format!("{frac:0width$}", width = digits as usize);
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }

    /// Parses Go's duration syntax (`"300ms"`, `"1.5h"`, `"2h45m"`, `"0"`);
    /// units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`. Negative
    /// durations and garbage give `None`.
    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.strip_prefix('+').unwrap_or(text);
        if text == "0" {
            return Some(Duration::ZERO);
        }
        if text.is_empty() {
            return None;
        }
        let mut rest = text;
        let mut total = 0f64;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let number = &rest[..number_len];
            if number.is_empty() || number == "." {
                return None;
            }
            let value: f64 = number.parse().ok()?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per_unit = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return None,
            };
            rest = &rest[unit_len..];
            total += value * nanos_per_unit;
        }
        if !total.is_finite() || total >= 18_446_744_073_709_551_615.0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "finite, non-negative and below u64::MAX"
        )]
        let nanos = total.round() as u64;
        Some(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_json_golden() {
        let server = ServerInfo::new("a1b2", "connector", true).with_hostname("pod-1");
        assert_eq!(
            server.to_json(),
            r#"{"id":"a1b2","type":"connector","metadata":{},"frontend":true,"hostname":"pod-1"}"#
        );
        let server = ServerInfo::new("r1", "room", false)
            .with_hostname("h")
            .with_metadata("region", "eu")
            .with_metadata("grpcHost", "10.0.0.1");
        assert_eq!(
            server.to_json(),
            r#"{"id":"r1","type":"room","metadata":{"grpcHost":"10.0.0.1","region":"eu"},"frontend":false,"hostname":"h"}"#
        );
    }

    #[test]
    fn server_json_escapes_like_go() {
        let server = ServerInfo::new("x", "t", false)
            .with_hostname("a<b>&c\u{2028}\"é\n")
            .with_metadata("k&", "v>");
        assert_eq!(
            server.to_json(),
            r#"{"id":"x","type":"t","metadata":{"k\u0026":"v\u003e"},"frontend":false,"hostname":"a\u003cb\u003e\u0026c\u2028\"é\n"}"#
        );
        assert_eq!(
            ServerInfo::from_json(server.to_json().as_bytes()).unwrap(),
            server
        );
    }

    #[test]
    fn server_json_parses_go_variants() {
        let parsed = ServerInfo::from_json(
            br#"{"id":"i","type":"t","metadata":null,"frontend":true,"hostname":"h","extra":1}"#,
        )
        .unwrap();
        assert_eq!(parsed, ServerInfo::new("i", "t", true).with_hostname("h"));
        let sparse = ServerInfo::from_json(br#"{"id":"i","type":"t"}"#).unwrap();
        assert!(!sparse.frontend && sparse.metadata.is_empty() && sparse.hostname.is_empty());
        assert!(ServerInfo::from_json(b"not json").is_err());
    }

    #[test]
    fn validate_rejects_slashes_and_empty() {
        assert!(ServerInfo::new("a", "b", false).validate().is_ok());
        assert!(ServerInfo::new("a/b", "t", false).validate().is_err());
        assert!(ServerInfo::new("a", "t/x", false).validate().is_err());
        assert!(ServerInfo::new("", "t", false).validate().is_err());
        assert!(ServerInfo::new("a", "", false).validate().is_err());
    }

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

    #[test]
    fn go_duration_format_matches_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1µs"),
            (Duration::from_micros(2_200), "2.2ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(3_500), "3.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_nanos(4_000_000_001), "4.000000001s"),
            (Duration::from_secs(3600 * 5 + 61), "5h1m1s"),
        ];
        for (duration, text) in cases {
            assert_eq!(go_duration::format(duration), text, "{duration:?}");
            assert_eq!(go_duration::parse(text), Some(duration), "{text}");
        }
    }

    #[test]
    fn go_duration_parse_variants() {
        assert_eq!(go_duration::parse("0"), Some(Duration::ZERO));
        assert_eq!(go_duration::parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration::parse("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(go_duration::parse("10us"), Some(Duration::from_micros(10)));
        assert_eq!(go_duration::parse("+3s"), Some(Duration::from_secs(3)));
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s", ".s", "1s2"] {
            assert_eq!(go_duration::parse(bad), None, "{bad}");
        }
    }
}

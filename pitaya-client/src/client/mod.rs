//! The async client: requests, notifies, pushes, kicks and heartbeats over
//! one connection.

mod builder;
mod connection;
mod events;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pitaya_protocol::codec::{HandshakeResponse, Message, MessageCodec};
use pitaya_protocol::{PitayaError, Serializer, SerializerKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

pub use builder::{
    ClientBuilder, DEFAULT_EVENT_BUFFER, DEFAULT_REQUEST_TIMEOUT, IntoEndpoint, default_handshake,
};
use connection::{CLOSE_GRACE, Command, End, Shared};
pub use events::{Event, Events};

use crate::{Endpoint, Error, Result};

/// A connection to a Pitaya server (Go Pitaya or pitaya-rs).
///
/// Cheap to clone (all clones share the connection), `Send` and `Sync`:
/// requests from many tasks run concurrently over the one connection.
///
/// - Requests carry ids from 1 up and time out after the request timeout
///   (5 s by default) with [`Error::Timeout`] (`PIT-504`); an error
///   response becomes [`Error::Server`].
/// - Pushes, a kick and the end of the connection arrive on [`Events`].
/// - Heartbeats are sent every `sys.heartbeat` the server announced
///   (none when it is 0). **If nothing at all arrives from the server for
///   three heartbeat intervals** (Pitaya servers send a heartbeat every
///   interval), the client gives the server up for dead: the connection
///   ends with [`Error::HeartbeatTimeout`].
/// - Routes in the server's dictionary (`sys.dict`) are sent as their
///   2-byte code.
/// - When the connection ends, every pending request fails with
///   [`Error::Closed`] ([`Error::Kicked`] after a kick), and so does every
///   later call. Dropping the last clone closes the connection gracefully.
///
/// ```no_run
/// use pitaya_client::{Client, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize)]
/// struct Join<'a> {
///     name: &'a str,
/// }
///
/// #[derive(Deserialize)]
/// struct Joined {
///     players: u32,
/// }
///
/// #[derive(Deserialize)]
/// struct Chat {
///     from: String,
///     text: String,
/// }
///
/// # async fn run() -> pitaya_client::Result<()> {
/// let (client, mut events) = Client::connect("tcp://127.0.0.1:3250").await?;
///
/// let joined: Joined = client.request("room.room.join", &Join { name: "ana" }).await?;
/// println!("{} players in the room", joined.players);
/// client.notify("room.room.say", &serde_json::json!({"text": "hi"})).await?;
///
/// while let Some(event) = events.next().await {
///     match event {
///         Event::Push { route, body } if route == "onChat" => {
///             let chat: Chat = events.decode(&body)?;
///             println!("{}: {}", chat.from, chat.text);
///         }
///         Event::Disconnected { reason } => {
///             println!("disconnected: {reason:?}");
///             break;
///         }
///         _ => {}
///     }
/// }
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    codec: MessageCodec,
    serializer: SerializerKind,
    handshake: HandshakeResponse,
    request_timeout: Duration,
    next_id: AtomicU64,
    endpoint: Endpoint,
}

/// Forgets a pending request when its future ends or is dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

impl Client {
    /// A builder to set the serializer, handshake, timeouts, TLS, ...
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Connects to `endpoint` with the default settings (see
    /// [`ClientBuilder`]).
    pub async fn connect(endpoint: impl IntoEndpoint) -> Result<(Self, Events)> {
        ClientBuilder::new().connect(endpoint).await
    }

    /// Sends a request with `body` serialized by the session's serializer
    /// and deserializes the response, waiting at most the default request
    /// timeout.
    pub async fn request<Req, Resp>(&self, route: &str, body: &Req) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.request_timeout(route, body, self.inner.request_timeout)
            .await
    }

    /// [`Client::request`] waiting at most `timeout`.
    pub async fn request_timeout<Req, Resp>(
        &self,
        route: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let payload = self.inner.serializer.serialize(body)?;
        let response = self.request_raw_timeout(route, payload, timeout).await?;
        self.decode(&response)
    }

    /// Sends a request with an already serialized body and returns the raw
    /// response body, waiting at most the default request timeout.
    ///
    /// An error response becomes [`Error::Server`], decoded with the
    /// session's serializer (an undecodable one keeps its raw text in `msg`
    /// with an empty code).
    pub async fn request_raw(&self, route: &str, body: impl Into<Bytes>) -> Result<Bytes> {
        self.request_raw_timeout(route, body, self.inner.request_timeout)
            .await
    }

    /// [`Client::request_raw`] waiting at most `timeout`.
    pub async fn request_raw_timeout(
        &self,
        route: &str,
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes> {
        let inner = &*self.inner;
        let id = loop {
            let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                break id;
            }
        };
        let frame = self.encode(&Message::request(id, route, body))?;
        let reply = inner.shared.register(id)?;
        let _guard = PendingGuard {
            shared: &inner.shared,
            id,
        };
        let exchange = async {
            inner
                .commands
                .send(Command::Frame(frame))
                .await
                .map_err(|_| inner.shared.closed_error())?;
            reply.await.map_err(|_| inner.shared.closed_error())?
        };
        let message = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                route: route.to_owned(),
                timeout,
            })??;
        if message.error {
            return Err(Error::Server(self.decode_error(&message.body)));
        }
        Ok(message.body)
    }

    /// Sends a notify with `body` serialized by the session's serializer.
    /// Returns once the notify is queued for writing; the server never
    /// answers.
    pub async fn notify<T: Serialize + ?Sized>(&self, route: &str, body: &T) -> Result<()> {
        let payload = self.inner.serializer.serialize(body)?;
        self.notify_raw(route, payload).await
    }

    /// Sends a notify with an already serialized body.
    pub async fn notify_raw(&self, route: &str, body: impl Into<Bytes>) -> Result<()> {
        let inner = &*self.inner;
        if !inner.shared.is_connected() {
            return Err(inner.shared.closed_error());
        }
        let frame = self.encode(&Message::notify(route, body))?;
        inner
            .commands
            .send(Command::Frame(frame))
            .await
            .map_err(|_| inner.shared.closed_error())
    }

    /// Deserializes a body (a response, a push) with the session's
    /// serializer.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T> {
        Ok(self.inner.serializer.deserialize(body)?)
    }

    /// The server's handshake response (heartbeat, dictionary, serializer).
    pub fn handshake_response(&self) -> &HandshakeResponse {
        &self.inner.handshake
    }

    /// The payload serializer of this session.
    pub fn serializer(&self) -> SerializerKind {
        self.inner.serializer
    }

    /// Where this client is connected.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The default request timeout.
    pub fn default_request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Whether the connection is still up.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.is_connected()
    }

    /// Closes the connection gracefully: writes what is already queued,
    /// closes the write side (TCP FIN or a WebSocket close frame), fails
    /// pending requests with [`Error::Closed`], and returns once
    /// [`Event::Disconnected`] is queued. Idempotent.
    pub async fn close(&self) {
        let inner = &*self.inner;
        let graceful = async {
            if inner.commands.send(Command::Close).await.is_err() {
                inner.shared.shutdown(End::Client);
            }
            inner.shared.finished().await;
        };
        if tokio::time::timeout(CLOSE_GRACE, graceful).await.is_err() {
            inner.shared.shutdown(End::Client);
            inner.shared.finished().await;
        }
    }

    /// Waits until the connection has ended, whoever ended it.
    pub async fn closed(&self) {
        self.inner.shared.finished().await;
    }

    fn encode(&self, message: &Message) -> Result<Bytes> {
        let mut frame = BytesMut::new();
        self.inner.codec.encode_packet(message, &mut frame)?;
        Ok(frame.freeze())
    }

    fn decode_error(&self, body: &[u8]) -> PitayaError {
        self.inner
            .serializer
            .deserialize::<PitayaError>(body)
            .unwrap_or_else(|_| PitayaError::new("", String::from_utf8_lossy(body)))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("serializer", &self.inner.serializer)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn client_is_send_sync_clone() {
        assert_send_sync::<Client>();
        fn assert_send<T: Send + Unpin>() {}
        assert_send::<Events>();
    }

    #[test]
    fn default_handshake_json() {
        assert_eq!(
            &default_handshake().encode()[..],
            format!(
                r#"{{"sys":{{"platform":"rust","libVersion":"pitaya-rs-{}","clientBuildNumber":"1","clientVersion":"0.1"}}}}"#,
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes()
        );
    }
}

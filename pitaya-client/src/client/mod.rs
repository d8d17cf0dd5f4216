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
use pitaya_protocol::protos::prost;
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
/// - The payload serializer is the one the server announces
///   (`sys.serializer`: `json`, `msgpack` or `protobuf`) unless
///   [`ClientBuilder::serializer`] says otherwise. JSON and MessagePack
///   carry serde values ([`Client::request`], [`Client::notify`],
///   [`Client::decode`]); protobuf carries prost messages
///   ([`Client::request_message`], [`Client::notify_message`],
///   [`Client::decode_message`]). Error responses are decoded with the same
///   serializer (`protos.Error` in protobuf).
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

    /// Sends a request with the prost message `body`, protobuf encoded, and
    /// decodes the response as a `Resp`, waiting at most the default request
    /// timeout: what a server with Go Pitaya's protobuf serializer speaks.
    ///
    /// An error response becomes [`Error::Server`] with its code, message
    /// and metadata (decoded from `protos.Error`). On a JSON or MessagePack
    /// session this is an [`Error::Serializer`]: use [`Client::request`].
    ///
    /// ```no_run
    /// use pitaya_client::{Client, prost};
    ///
    /// #[derive(Clone, PartialEq, prost::Message)]
    /// #[prost(prost_path = "::pitaya_client::prost")]
    /// struct Join {
    ///     #[prost(string, tag = "1")]
    ///     name: String,
    /// }
    ///
    /// #[derive(Clone, PartialEq, prost::Message)]
    /// #[prost(prost_path = "::pitaya_client::prost")]
    /// struct Joined {
    ///     #[prost(uint32, tag = "1")]
    ///     players: u32,
    /// }
    ///
    /// # async fn run() -> pitaya_client::Result<()> {
    /// let (client, mut events) = Client::connect("tcp://127.0.0.1:3250").await?;
    /// // The server announced "protobuf" in its handshake.
    /// let joined: Joined = client
    ///     .request_message("room.room.join", &Join { name: "ana".into() })
    ///     .await?;
    /// println!("{} players", joined.players);
    /// if let Some(pitaya_client::Event::Push { body, .. }) = events.next().await {
    ///     let update: Joined = events.decode_message(&body)?;
    ///     println!("now {}", update.players);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn request_message<Req, Resp>(&self, route: &str, body: &Req) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.request_message_timeout(route, body, self.inner.request_timeout)
            .await
    }

    /// [`Client::request_message`] waiting at most `timeout`.
    pub async fn request_message_timeout<Req, Resp>(
        &self,
        route: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let payload = self.inner.serializer.encode_message(body)?;
        let response = self.request_raw_timeout(route, payload, timeout).await?;
        self.decode_message(&response)
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

    /// Sends a notify with the prost message `body`, protobuf encoded (on a
    /// JSON or MessagePack session, an [`Error::Serializer`]: use
    /// [`Client::notify`]).
    pub async fn notify_message<M: prost::Message>(&self, route: &str, body: &M) -> Result<()> {
        let payload = self.inner.serializer.encode_message(body)?;
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

    /// Decodes a body (a response, a push) as the prost message `M`, on a
    /// protobuf session (else an [`Error::Serializer`]).
    pub fn decode_message<M: prost::Message + Default>(&self, body: &[u8]) -> Result<M> {
        Ok(self.inner.serializer.decode_message(body)?)
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
        PitayaError::decode(self.inner.serializer, body)
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

//! [`ClientBuilder`]: connection settings, then [`ClientBuilder::connect`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use pitaya_protocol::SerializerKind;
use pitaya_protocol::codec::{ClientSys, HandshakeRequest, MessageCodec, RouteDictionary};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::connection::{self, COMMAND_BUFFER, Shared};
use super::events::Events;
use super::{Client, ClientInner};
use crate::transport::{self, ConnectOptions};
use crate::{Endpoint, Error, Result, TlsConfig};

/// Default request timeout, as Go's client.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of pushes [`Events`] buffers.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// Something [`ClientBuilder::connect`] can connect to: an endpoint string
/// (`tcp://`, `tls://`, `ws://`, `wss://` or `host:port`) or an
/// [`Endpoint`].
pub trait IntoEndpoint {
    /// Parses or clones the endpoint.
    fn into_endpoint(self) -> Result<Endpoint>;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> Result<Endpoint> {
        Ok(self)
    }
}

impl IntoEndpoint for &Endpoint {
    fn into_endpoint(self) -> Result<Endpoint> {
        Ok(self.clone())
    }
}

impl IntoEndpoint for &str {
    fn into_endpoint(self) -> Result<Endpoint> {
        self.parse()
    }
}

impl IntoEndpoint for String {
    fn into_endpoint(self) -> Result<Endpoint> {
        self.parse()
    }
}

impl IntoEndpoint for &String {
    fn into_endpoint(self) -> Result<Endpoint> {
        self.parse()
    }
}

/// The handshake this client sends unless told otherwise:
/// `{"sys":{"platform":"rust","libVersion":"pitaya-rs-<version>","clientBuildNumber":"1","clientVersion":"0.1"}}`.
pub fn default_handshake() -> HandshakeRequest {
    HandshakeRequest {
        sys: ClientSys {
            platform: "rust".into(),
            lib_version: concat!("pitaya-rs-", env!("CARGO_PKG_VERSION")).into(),
            client_build_number: "1".into(),
            client_version: "0.1".into(),
            ..ClientSys::default()
        },
        user: None,
    }
}

/// Settings for a [`Client`]; get one from [`Client::builder`].
///
/// ```no_run
/// # async fn run() -> pitaya_client::Result<()> {
/// use std::time::Duration;
/// use pitaya_client::{Client, TlsConfig};
///
/// let mut user = serde_json::Map::new();
/// user.insert("token".into(), "abc".into());
/// let (client, events) = Client::builder()
///     .request_timeout(Duration::from_secs(2))
///     .handshake_user(&user)
///     .tls(TlsConfig::insecure())
///     .connect("tls://game.example.com:3252")
///     .await?;
/// # let _ = (client, events); Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientBuilder {
    serializer: Option<SerializerKind>,
    handshake: HandshakeRequest,
    request_timeout: Duration,
    options: ConnectOptions,
    compression: bool,
    event_buffer: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            serializer: None,
            handshake: default_handshake(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            options: ConnectOptions::default(),
            compression: false,
            event_buffer: DEFAULT_EVENT_BUFFER,
        }
    }
}

impl ClientBuilder {
    /// Same as [`Client::builder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Payload serializer. By default the client uses the one the server
    /// announces in its handshake (`"json"`, `"msgpack"` or `"protobuf"`; JSON for any
    /// other name); an explicit setting wins.
    pub fn serializer(mut self, serializer: SerializerKind) -> Self {
        self.serializer = Some(serializer);
        self
    }

    /// The whole handshake request (default: [`default_handshake`]).
    pub fn handshake(mut self, handshake: HandshakeRequest) -> Self {
        self.handshake = handshake;
        self
    }

    /// The handshake's `user` object, which the server's handshake
    /// validators see.
    pub fn handshake_user(mut self, user: &Map<String, Value>) -> Self {
        self.handshake = std::mem::take(&mut self.handshake).with_user(user);
        self
    }

    /// Default timeout of a request (5 s, as Go's client); it ends with
    /// [`Error::Timeout`] (code `PIT-504`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// TLS settings for `tls://` and `wss://` (default:
    /// [`TlsConfig::insecure`], as Go's pitaya-cli).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.options.tls = Some(tls);
        self
    }

    /// Bound on connecting (TCP, TLS, WebSocket upgrade), and separately on
    /// the handshake (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// Compresses request and notify bodies with zlib when that makes them
    /// shorter (default off). Compressed bodies from the server are always
    /// inflated.
    pub fn compression(mut self, compress: bool) -> Self {
        self.compression = compress;
        self
    }

    /// Largest packet body, and largest inflated message body, accepted
    /// from the server (default 16 MiB - 1).
    pub fn max_body_len(mut self, max: usize) -> Self {
        self.options.max_body_len = max;
        self
    }

    /// How many pushes [`Events`] holds before new ones are dropped
    /// (default [`DEFAULT_EVENT_BUFFER`]; at least 1).
    pub fn event_buffer(mut self, pushes: usize) -> Self {
        self.event_buffer = pushes.max(1);
        self
    }

    /// Connects, runs the handshake, and starts the connection's tasks on
    /// the current tokio runtime.
    ///
    /// Fails with [`Error::HandshakeRefused`] when the server refuses the
    /// handshake and [`Error::ConnectTimeout`] when connecting or the
    /// handshake takes longer than the connect timeout.
    pub async fn connect(self, endpoint: impl IntoEndpoint) -> Result<(Client, Events)> {
        let endpoint = endpoint.into_endpoint()?;
        let (mut writer, mut reader) = transport::connect(&endpoint, &self.options).await?;
        let timeout = self.options.connect_timeout;
        let response = tokio::time::timeout(
            timeout,
            transport::handshake(&mut writer, &mut reader, &self.handshake),
        )
        .await
        .map_err(|_| Error::ConnectTimeout {
            endpoint: endpoint.to_string(),
            timeout,
        })??;

        let serializer = self.serializer.unwrap_or_else(|| {
            response.sys.serializer.parse().unwrap_or_else(|_| {
                warn!(
                    serializer = %response.sys.serializer,
                    "the server's serializer is not supported, using json (raw requests still work)"
                );
                SerializerKind::Json
            })
        });
        let dictionary = RouteDictionary::new(
            response
                .sys
                .dict
                .iter()
                .map(|(route, &code)| (route.as_str(), code)),
        )
        .map_err(|err| Error::Unexpected(format!("route dictionary in the handshake: {err}")))?;
        let codec = MessageCodec::default()
            .with_dictionary(dictionary)
            .with_compression(self.compression)
            .with_max_inflated_len(self.options.max_body_len)
            // The server is trusted with its own expansion ratio.
            .with_max_inflate_ratio(0);
        let heartbeat = response.sys.heartbeat;
        debug!(
            %endpoint,
            %serializer,
            ?heartbeat,
            routes = response.sys.dict.len(),
            "connected"
        );

        let shared = Arc::new(Shared::new());
        let (commands, command_rx) = mpsc::channel(COMMAND_BUFFER);
        let (push_tx, push_rx) = mpsc::channel(self.event_buffer);
        let (final_tx, final_rx) = oneshot::channel();
        tokio::spawn(connection::write_loop(
            writer,
            command_rx,
            shared.clone(),
            heartbeat,
        ));
        tokio::spawn(connection::read_loop(
            reader,
            codec.clone(),
            shared.clone(),
            push_tx,
            final_tx,
            heartbeat,
        ));

        let client = Client {
            inner: Arc::new(ClientInner {
                commands,
                shared,
                codec,
                serializer,
                handshake: response,
                request_timeout: self.request_timeout,
                next_id: AtomicU64::new(1),
                endpoint,
            }),
        };
        Ok((client, Events::new(push_rx, final_rx, serializer)))
    }
}

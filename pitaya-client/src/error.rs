use std::time::Duration;

use pitaya_protocol::codec::CodecError;
use pitaya_protocol::error::codes;
use pitaya_protocol::{PitayaError, SerializerError};
use thiserror::Error;

/// Everything that can go wrong talking to a Pitaya server.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string could not be understood.
    #[error(
        "invalid endpoint {0:?}: expected tcp://host:port, tls://host:port, ws://host:port/path, wss://host:port/path or host:port"
    )]
    InvalidEndpoint(String),
    /// Connecting (TCP, TLS or WebSocket upgrade) took too long.
    #[error("connecting to {endpoint} timed out after {timeout:?}")]
    ConnectTimeout {
        /// Where we tried to connect.
        endpoint: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS handshake failure (or a host that is no valid TLS server name).
    #[error("tls: {0}")]
    Tls(String),
    /// TLS settings could not be built: a CA bundle without certificate,
    /// a broken PEM section, a certificate rustls cannot trust, ...
    /// [`TlsError`](crate::tls::TlsError) tells which.
    #[error("tls: {0}")]
    TlsSettings(#[from] pitaya_tls::Error),
    /// WebSocket protocol failure.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent bytes that are not valid Pitaya packets or messages.
    #[error("protocol: {0}")]
    Codec(#[from] CodecError),
    /// The server broke the protocol flow (a text WebSocket frame, a data
    /// packet before the handshake response, ...).
    #[error("unexpected {0}")]
    Unexpected(String),
    /// The server refused the handshake (code 400) or sent something else.
    #[error("handshake refused with code {0}")]
    HandshakeRefused(u16),
    /// The server answered the request with an error payload.
    #[error("server error {0}")]
    Server(PitayaError),
    /// No response arrived in time.
    #[error("request {route} timed out after {timeout:?}")]
    Timeout {
        /// The request's route.
        route: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A payload could not be (de)serialized.
    #[error("payload: {0}")]
    Serializer(#[from] SerializerError),
    /// The server kicked this client.
    #[error("kicked by the server")]
    Kicked,
    /// Nothing arrived from the server for three heartbeat intervals, so
    /// the client gave it up for dead.
    #[error("no packet from the server for {silent_for:?} (3x its heartbeat interval)")]
    HeartbeatTimeout {
        /// How long the server was silent.
        silent_for: Duration,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

impl Error {
    /// The Pitaya error code for this error: the server's code for
    /// [`Error::Server`], `PIT-504` for a client-side timeout, `PIT-400`
    /// for a payload this client could not (de)serialize, `PIT-499` for a
    /// closed connection and `PIT-000` for the rest.
    pub fn code(&self) -> &str {
        match self {
            Self::Server(err) => err.code_or_unknown(),
            Self::Timeout { .. } => codes::CLIENT_TIMEOUT,
            Self::Serializer(_) => codes::BAD_REQUEST,
            Self::Closed | Self::Kicked => codes::CLIENT_CLOSED_REQUEST,
            _ => codes::UNKNOWN,
        }
    }

    /// The server's error payload, if the server answered with an error.
    pub fn server_error(&self) -> Option<&PitayaError> {
        match self {
            Self::Server(err) => Some(err),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

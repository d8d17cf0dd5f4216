//! The WebSocket acceptor (`ws://`, and `wss://` with a [`TlsConfig`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{CodecError, HEADER_LEN, MAX_PACKET_BODY, Packet};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::io::MaybeTls;
use crate::stream::CLOSE_TIMEOUT;
use crate::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, timed_out};

/// Size of a WebSocket connection's read buffer, and the batch size above
/// which queued messages are written out before the flush (as Pitaya's
/// 4096-byte gorilla buffers).
const WS_BUFFER: usize = 4 * 1024;

/// Listens for Pitaya clients over WebSocket, optionally with TLS, as
/// Pitaya's `WSAcceptor`.
///
/// Every binary message carries exactly one packet, both ways; text
/// messages are refused. Any URL path is accepted, as in Pitaya, unless
/// [`with_path`](Self::with_path) restricts it.
///
/// ```no_run
/// use pitaya_acceptors::WsAcceptor;
/// use pitaya_core::acceptor::{Acceptor, PlayerConn};
///
/// # async fn run() -> std::io::Result<()> {
/// let mut acceptor = WsAcceptor::bind("0.0.0.0:3251")
///     .await?
///     .with_path("/ws")
///     .with_max_packet_size(64 * 1024);
/// println!("listening on {}", acceptor.url()); // ws://0.0.0.0:3251/ws
/// loop {
///     let raw = acceptor.accept().await?;
///     tokio::spawn(async move {
///         // The HTTP upgrade (and TLS handshake) happens here, bounded
///         // by the handshake timeout.
///         let Ok(mut conn) = WsAcceptor::upgrade(raw).await else { return };
///         while let Ok(Some(packet)) = conn.read_packet().await {
///             let Ok(frame) = packet.to_bytes() else { break };
///             if conn.write_frames(&frame).await.is_err() {
///                 break;
///             }
///         }
///         conn.close().await;
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct WsAcceptor {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsConfig>,
    path: Option<Arc<str>>,
    max_body_len: usize,
    handshake_timeout: Duration,
}

impl WsAcceptor {
    /// Binds a listener on `addr` (port 0 picks a free port; see
    /// [`local_addr`](Self::local_addr)).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::from_listener(TcpListener::bind(addr).await?)
    }

    /// Uses a listener bound by the caller.
    pub fn from_listener(listener: TcpListener) -> io::Result<Self> {
        Ok(Self {
            local_addr: listener.local_addr()?,
            listener,
            tls: None,
            path: None,
            max_body_len: MAX_PACKET_BODY,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Serves WebSocket over TLS (`wss://`).
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Accepts upgrades only on `path` (e.g. `"/ws"`; the query string is
    /// ignored); other paths get HTTP 404. By default any path is
    /// accepted, as in Pitaya.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        self.path = Some(path.into());
        self
    }

    /// The largest packet body (header excluded) accepted from clients.
    /// Larger WebSocket messages are refused by the WebSocket layer before
    /// they are buffered. Default and upper bound: [`MAX_PACKET_BODY`]
    /// (16 MiB - 1).
    pub fn with_max_packet_size(mut self, max_body_len: usize) -> Self {
        self.max_body_len = max_body_len.min(MAX_PACKET_BODY);
        self
    }

    /// Bound on the TLS handshake and HTTP upgrade of a new connection
    /// (default 10 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A TCP connection accepted by [`WsAcceptor`], before its TLS handshake
/// and WebSocket upgrade.
#[derive(Debug)]
pub struct RawWsConn {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsConfig>,
    path: Option<Arc<str>>,
    max_body_len: usize,
    handshake_timeout: Duration,
}

impl RawWsConn {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Acceptor for WsAcceptor {
    type Raw = RawWsConn;
    type Conn = WsConn;

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let path = self.path.as_deref().unwrap_or("/");
        format!("{scheme}://{}{path}", self.local_addr)
    }

    async fn accept(&mut self) -> io::Result<RawWsConn> {
        let (stream, peer) = self.listener.accept().await?;
        Ok(RawWsConn {
            stream,
            peer,
            tls: self.tls.clone(),
            path: self.path.clone(),
            max_body_len: self.max_body_len,
            handshake_timeout: self.handshake_timeout,
        })
    }

    async fn upgrade(raw: RawWsConn) -> io::Result<WsConn> {
        raw.stream.set_nodelay(true)?;
        let timeout = raw.handshake_timeout;
        tokio::time::timeout(timeout, upgrade(raw))
            .await
            .map_err(|_| timed_out("websocket upgrade"))?
    }
}

async fn upgrade(raw: RawWsConn) -> io::Result<WsConn> {
    let io = match raw.tls {
        None => MaybeTls::Plain(raw.stream),
        Some(tls) => MaybeTls::Tls(Box::new(tls.acceptor().accept(raw.stream).await?)),
    };
    let max_message = raw.max_body_len + HEADER_LEN;
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(io, PathFilter(raw.path), Some(config))
            .await
            .map_err(ws_to_io)?;
    Ok(WsConn {
        ws,
        peer: raw.peer,
        max_body_len: raw.max_body_len,
    })
}

/// Refuses upgrades on paths other than the configured one with HTTP 404.
struct PathFilter(Option<Arc<str>>);

impl Callback for PathFilter {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        match self.0.as_deref() {
            Some(path) if request.uri().path() != path => {
                let mut refusal = ErrorResponse::new(Some("not found".to_owned()));
                *refusal.status_mut() = StatusCode::NOT_FOUND;
                Err(refusal)
            }
            _ => Ok(response),
        }
    }
}

/// A packet connection over WebSocket (or WebSocket over TLS), yielded by
/// [`WsAcceptor`].
///
/// Each binary message must hold exactly one packet
/// ([`Packet::decode_exact`]); anything else fails the read. Pings are
/// answered by the WebSocket layer.
pub struct WsConn {
    ws: WebSocketStream<MaybeTls>,
    peer: SocketAddr,
    max_body_len: usize,
}

impl std::fmt::Debug for WsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConn")
            .field("peer", &self.peer)
            .field("tls", &self.is_tls())
            .field("max_body_len", &self.max_body_len)
            .finish_non_exhaustive()
    }
}

impl WsConn {
    /// Whether the connection runs TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        matches!(self.ws.get_ref(), MaybeTls::Tls(_))
    }

    fn read_error(&self, err: WsError) -> Result<Option<Packet>, ConnError> {
        match err {
            WsError::ConnectionClosed | WsError::AlreadyClosed => Ok(None),
            WsError::Io(err) => Err(ConnError::Io(err)),
            WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => {
                Err(ConnError::Codec(CodecError::PacketTooLarge {
                    len: size.saturating_sub(HEADER_LEN),
                    max: self.max_body_len,
                }))
            }
            other => Err(ConnError::Transport(other.to_string())),
        }
    }
}

impl PlayerConn for WsConn {
    /// The next packet. Cancel-safe: a message is taken from the
    /// WebSocket only in the poll that returns it.
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        loop {
            let message = match self.ws.next().await {
                None => return Ok(None),
                Some(Ok(message)) => message,
                Some(Err(err)) => return self.read_error(err),
            };
            match message {
                WsMessage::Binary(frame) => {
                    return Ok(Some(Packet::decode_exact(frame, self.max_body_len)?));
                }
                WsMessage::Text(_) => {
                    return Err(ConnError::Transport(
                        "text websocket message (packets travel in binary messages)".into(),
                    ));
                }
                WsMessage::Close(_) => return Ok(None),
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
            }
        }
    }

    /// Always `false`: the WebSocket layer's buffer is not visible, so
    /// the agent flushes after each request (writes are not batched).
    fn has_buffered_packet(&self) -> bool {
        false
    }

    /// Sends each packet in `frames` as one binary message, then flushes.
    /// Fails with [`io::ErrorKind::InvalidInput`] if `frames` does not end
    /// on a packet boundary.
    async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
        // One copy and allocation for the whole batch; messages are slices.
        let frames = Bytes::copy_from_slice(frames);
        let mut start = 0;
        while start < frames.len() {
            let end = packet_end(&frames, start)?;
            self.ws
                .feed(WsMessage::Binary(frames.slice(start..end)))
                .await
                .map_err(ws_to_io)?;
            start = end;
        }
        self.ws.flush().await.map_err(ws_to_io)
    }

    async fn close(&mut self) {
        let close = async {
            // Sends a close frame; the socket closes without waiting for
            // the peer's reply.
            let _ = self.ws.close(None).await;
            let _ = self.ws.get_mut().shutdown().await;
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::trace!("websocket close timed out");
        }
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }
}

/// Where the packet starting at `start` ends, from its header.
fn packet_end(frames: &[u8], start: usize) -> io::Result<usize> {
    let header = frames.get(start..start + HEADER_LEN).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "frames end inside a packet header",
        )
    })?;
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let end = start + HEADER_LEN + len;
    if end > frames.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frames end inside a packet body",
        ));
    }
    Ok(end)
}

fn ws_to_io(err: WsError) -> io::Error {
    match err {
        WsError::Io(err) => err,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_end_follows_headers() {
        let frames = [0x03, 0, 0, 0, 0x04, 0, 0, 2, 9, 9];
        assert_eq!(packet_end(&frames, 0).unwrap(), 4);
        assert_eq!(packet_end(&frames, 4).unwrap(), 10);
        assert_eq!(
            packet_end(&frames[..9], 4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            packet_end(&frames[..6], 4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

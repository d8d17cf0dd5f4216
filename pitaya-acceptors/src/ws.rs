//! The WebSocket acceptor (`ws://`, and `wss://` with a [`TlsConfig`]).
//!
//! The HTTP upgrade is done here, bounded: a request head of at most
//! [`MAX_REQUEST_HEAD`] bytes, read within the handshake timeout, checked
//! by tungstenite's `create_response`; anything else gets an HTTP 400
//! (404 for another path). The connection then runs tungstenite's
//! [`WebSocketContext`] over [`SyncIo`], a per-poll synchronous view of
//! the socket, so the frame and message limits can follow
//! [`PlayerConn::set_max_packet_size`]: tungstenite reserves a frame's
//! announced length as soon as it accepts the header, so the limit must be
//! low until the client is known.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{CodecError, HEADER_LEN, MAX_PACKET_BODY, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::server::{Request, create_response, write_response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

use crate::io::MaybeTls;
use crate::stream::CLOSE_TIMEOUT;
use crate::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE, TlsConfig, timed_out,
};

/// Size of a WebSocket connection's read buffer, and the batch size above
/// which queued messages are written out before the flush (as Pitaya's
/// 4096-byte gorilla buffers).
const WS_BUFFER: usize = 4 * 1024;

/// The largest upgrade request head (request line and headers) read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Bytes read per read call while reading the request head.
const HEAD_CHUNK: usize = 2048;

/// The most headers an upgrade request may have.
const MAX_HEADERS: usize = 64;

/// After refusing an upgrade, at most this many bytes the client still
/// sends are read (and dropped) ...
const REFUSAL_DRAIN: usize = 64 * 1024;

/// ... for at most this long, before the socket closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

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
        Self::from_listener(crate::listen::bind(addr).await?)
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

    /// The largest packet body (header excluded) ever accepted from
    /// clients: the ceiling of [`PlayerConn::set_max_packet_size`].
    /// WebSocket frames and messages longer than the connection's current
    /// limit are refused from their header, before they are buffered.
    /// Default and upper bound: [`MAX_PACKET_BODY`] (16 MiB - 1).
    ///
    /// A new connection starts at
    /// [`DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE`] (or this maximum, if
    /// smaller) until `set_max_packet_size` is called.
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

    fn peer_addr(raw: &RawWsConn) -> Option<SocketAddr> {
        Some(raw.peer)
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

/// The TLS handshake (for `wss://`) and the HTTP upgrade.
async fn upgrade(raw: RawWsConn) -> io::Result<WsConn> {
    let mut io = match raw.tls {
        None => MaybeTls::Plain(raw.stream),
        Some(tls) => MaybeTls::Tls(Box::new(tls.acceptor().accept(raw.stream).await?)),
    };
    let (request, rest) = match read_request(&mut io).await? {
        Ok(read) => read,
        Err(reason) => return Err(refuse(&mut io, raw.peer, Refusal::BadRequest, &reason).await),
    };
    if let Some(path) = raw.path.as_deref()
        && request.uri().path() != path
    {
        return Err(refuse(&mut io, raw.peer, Refusal::NotFound, "not found").await);
    }
    let response = match create_response(&request) {
        Ok(response) => response,
        Err(err) => {
            let reason = format!("not a websocket upgrade: {err}");
            return Err(refuse(&mut io, raw.peer, Refusal::BadRequest, &reason).await);
        }
    };
    let mut head = Vec::with_capacity(256);
    write_response(&mut head, &response).map_err(ws_to_io)?;
    io.write_all(&head).await?;
    io.flush().await?;
    tracing::trace!(peer = %raw.peer, path = request.uri().path(), "websocket upgraded");

    let max_body_len = raw
        .max_body_len
        .min(DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE);
    // Bytes the client sent right after its request (its first frames)
    // start the frame reader's buffer.
    let ws =
        WebSocketContext::from_partially_read(rest, Role::Server, Some(ws_config(max_body_len)));
    Ok(WsConn {
        io,
        ws,
        peer: raw.peer,
        max_body_len,
        cap: raw.max_body_len,
        write_blocked: false,
        read_done: false,
    })
}

/// The WebSocket settings for a limit of `max_body_len` body bytes: frames
/// and messages of at most one packet, 4 KiB buffers.
fn ws_config(max_body_len: usize) -> WebSocketConfig {
    let max_message = max_body_len + HEADER_LEN;
    WebSocketConfig::default()
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Reads the upgrade request's head: at most [`MAX_REQUEST_HEAD`] bytes.
/// Returns the request and the bytes read past its head, or why the
/// request is refused.
async fn read_request(io: &mut MaybeTls) -> io::Result<Result<(Request, Vec<u8>), String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; HEAD_CHUNK];
    loop {
        match parse_request(&buf) {
            Ok(Some((len, request))) => return Ok(Ok((request, buf.split_off(len)))),
            Ok(None) => {}
            Err(reason) => return Ok(Err(reason)),
        }
        let room = MAX_REQUEST_HEAD - buf.len();
        if room == 0 {
            return Ok(Err(format!("request head over {MAX_REQUEST_HEAD} bytes")));
        }
        let read = io.read(&mut chunk[..room.min(HEAD_CHUNK)]).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the websocket upgrade",
            ));
        }
        buf.extend_from_slice(&chunk[..read]);
    }
}

/// Parses an HTTP request head: `None` while incomplete, else its length
/// and the request (headers and all; the WebSocket checks come later), or
/// why it is not a valid HTTP/1.x request.
fn parse_request(buf: &[u8]) -> Result<Option<(usize, Request)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(format!("malformed http request: {err}")),
    };
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err("malformed http request".to_owned());
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .version(if version == 0 {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        });
    for header in parsed.headers.iter() {
        request = request.header(header.name, header.value);
    }
    let request = request
        .body(())
        .map_err(|err| format!("malformed http request: {err}"))?;
    Ok(Some((len, request)))
}

/// An HTTP refusal of an upgrade.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// Not an HTTP/1.1 WebSocket upgrade request.
    BadRequest,
    /// A path other than the acceptor's.
    NotFound,
}

/// Answers the client with `refusal` (a short text body, then the
/// connection closes) and returns the error for the upgrade.
async fn refuse(io: &mut MaybeTls, peer: SocketAddr, refusal: Refusal, reason: &str) -> io::Error {
    let (status, kind) = match refusal {
        Refusal::BadRequest => ("400 Bad Request", io::ErrorKind::InvalidData),
        Refusal::NotFound => ("404 Not Found", io::ErrorKind::NotFound),
    };
    tracing::debug!(%peer, status, reason, "websocket upgrade refused");
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        io.write_all(response.as_bytes()).await?;
        io.flush().await?;
        io.shutdown().await
    };
    if let Err(err) = answer.await {
        tracing::trace!(%peer, error = %err, "writing the refusal failed");
    } else {
        // Read (and drop) what the client still sends, for a while, so
        // closing with unread bytes does not reset the connection before
        // the client reads the answer.
        let drain = async {
            let mut chunk = [0u8; 1024];
            let mut left = REFUSAL_DRAIN;
            while left > 0 {
                match io.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => left = left.saturating_sub(read),
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
    }
    io::Error::new(
        kind,
        format!("websocket upgrade refused ({status}): {reason}"),
    )
}

/// A packet connection over WebSocket (or WebSocket over TLS), yielded by
/// [`WsAcceptor`].
///
/// Each binary message must hold exactly one packet
/// ([`Packet::decode_exact`]); anything else fails the read. Pings are
/// answered while reading. Frames and messages longer than the current
/// packet limit (see [`PlayerConn::set_max_packet_size`]) are refused from
/// their header, before their payload is buffered.
pub struct WsConn {
    io: MaybeTls,
    ws: WebSocketContext,
    peer: SocketAddr,
    /// The largest body accepted now.
    max_body_len: usize,
    /// The acceptor's maximum: `max_body_len` never goes above it.
    cap: usize,
    /// A write found the socket full: its frame is queued, and is written
    /// out before the next one is queued.
    write_blocked: bool,
    /// The read side failed (or the WebSocket closed): later reads return
    /// `None`.
    read_done: bool,
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
        matches!(self.io, MaybeTls::Tls(_))
    }

    /// The largest packet body currently accepted (see
    /// [`PlayerConn::set_max_packet_size`]).
    pub fn max_packet_size(&self) -> usize {
        self.max_body_len
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

    /// Reads messages until a packet (or the end, or an error). All state
    /// lives in the WebSocket context, so a dropped poll loses nothing.
    fn poll_read_packet(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Packet>, ConnError>> {
        if self.read_done {
            return Poll::Ready(Ok(None));
        }
        loop {
            let message = match self.ws.read(&mut SyncIo::new(&mut self.io, cx)) {
                Ok(message) => message,
                Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Poll::Pending;
                }
                Err(err) => {
                    self.read_done = true;
                    return Poll::Ready(self.read_error(err));
                }
            };
            match message {
                WsMessage::Binary(frame) => {
                    return Poll::Ready(
                        Packet::decode_exact(frame, self.max_body_len)
                            .map(Some)
                            .map_err(ConnError::from),
                    );
                }
                WsMessage::Text(_) => {
                    return Poll::Ready(Err(ConnError::Transport(
                        "text websocket message (packets travel in binary messages)".into(),
                    )));
                }
                WsMessage::Close(_) => {
                    // The reply is queued; `close` (or another read) sends it.
                    self.read_done = true;
                    return Poll::Ready(Ok(None));
                }
                // The pong is queued and sent by the next read or write.
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
            }
        }
    }

    /// Queues the message in `slot` (taking it), after writing out a
    /// frame left queued by a full socket.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<WsMessage>,
    ) -> Poll<Result<(), WsError>> {
        if self.write_blocked {
            ready!(self.poll_flush(cx))?;
        }
        let Some(message) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        match self.ws.write(&mut SyncIo::new(&mut self.io, cx), message) {
            Ok(()) => Poll::Ready(Ok(())),
            // The frame is queued; it goes out with the next flush.
            Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Poll::Ready(Ok(()))
            }
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    /// Writes out everything queued (pongs included) and flushes.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.ws.flush(&mut SyncIo::new(&mut self.io, cx)) {
            Ok(()) | Err(WsError::ConnectionClosed) => {
                self.write_blocked = false;
                Poll::Ready(Ok(()))
            }
            Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    /// Queues a close frame (once) and writes everything out.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.ws.close(&mut SyncIo::new(&mut self.io, cx), None) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(WsError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

impl PlayerConn for WsConn {
    /// The next packet. Cancel-safe: a message is taken from the
    /// WebSocket only in the poll that returns it.
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        poll_fn(|cx| self.poll_read_packet(cx)).await
    }

    /// Always `false`: the WebSocket layer's buffer is not visible, so
    /// the agent flushes after each request (writes are not batched).
    fn has_buffered_packet(&self) -> bool {
        false
    }

    /// Sets the limit, capped at the acceptor's
    /// [`with_max_packet_size`](WsAcceptor::with_max_packet_size): frames
    /// and messages over `max_body_len + 4` bytes are refused from then on.
    fn set_max_packet_size(&mut self, max_body_len: usize) {
        self.max_body_len = max_body_len.min(self.cap);
        let max_message = self.max_body_len + HEADER_LEN;
        self.ws.set_config(|config| {
            config.max_message_size = Some(max_message);
            config.max_frame_size = Some(max_message);
        });
    }

    /// Sends each packet in `frames` as one binary message, then flushes.
    /// Fails with [`io::ErrorKind::InvalidInput`] if `frames` does not end
    /// on a packet boundary.
    async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
        // One copy and allocation for the whole batch; messages are slices.
        // Messages are written out once over 4 KiB are queued.
        let frames = Bytes::copy_from_slice(frames);
        let mut start = 0;
        while start < frames.len() {
            let end = packet_end(&frames, start)?;
            let mut message = Some(WsMessage::Binary(frames.slice(start..end)));
            poll_fn(|cx| self.poll_send(cx, &mut message))
                .await
                .map_err(ws_to_io)?;
            start = end;
        }
        poll_fn(|cx| self.poll_flush(cx)).await.map_err(ws_to_io)
    }

    async fn close(&mut self) {
        let close = async {
            // Sends a close frame (or the reply to the peer's); the socket
            // closes without waiting for the peer's reply.
            if let Err(err) = poll_fn(|cx| self.poll_close(cx)).await {
                tracing::trace!(error = %err, "websocket close failed");
            }
            let _ = self.io.shutdown().await;
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::trace!("websocket close timed out");
        }
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }
}

/// A synchronous view of an async stream for the duration of one poll, as
/// tungstenite expects: `Pending` becomes [`io::ErrorKind::WouldBlock`],
/// with the poll's waker registered to try again.
///
/// One waker is enough: the agent reads and writes a connection from one
/// task, never both at once.
struct SyncIo<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<'a, 'b, S> SyncIo<'a, 'b, S> {
    fn new(io: &'a mut S, cx: &'a mut Context<'b>) -> Self {
        Self { io, cx }
    }
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<S: AsyncRead + Unpin> Read for SyncIo<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        would_block(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl<S: AsyncWrite + Unpin> Write for SyncIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(Pin::new(&mut *self.io).poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.io).poll_flush(self.cx))
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

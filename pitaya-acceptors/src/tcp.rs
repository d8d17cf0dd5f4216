//! The TCP acceptor (`tcp://`, and `tls://` with a [`TlsConfig`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{MAX_PACKET_BODY, Packet};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::io::MaybeTls;
use crate::stream::PacketStream;
use crate::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, timed_out};

/// Listens for Pitaya clients over TCP, optionally with TLS, as Pitaya's
/// `TCPAcceptor`. Packets travel back to back on the byte stream.
///
/// ```no_run
/// use pitaya_acceptors::TcpAcceptor;
/// use pitaya_core::acceptor::{Acceptor, PlayerConn};
///
/// # async fn run() -> std::io::Result<()> {
/// let mut acceptor = TcpAcceptor::bind("0.0.0.0:3250")
///     .await?
///     .with_max_packet_size(64 * 1024);
/// println!("listening on {}", acceptor.url());
/// loop {
///     let raw = acceptor.accept().await?;
///     // The upgrade (a TLS handshake, with `with_tls`) runs in the
///     // connection's own task, so a slow client stalls nobody else.
///     tokio::spawn(async move {
///         let Ok(mut conn) = TcpAcceptor::upgrade(raw).await else { return };
///         while let Ok(Some(packet)) = conn.read_packet().await {
///             // Echo it back.
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
pub struct TcpAcceptor {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsConfig>,
    max_body_len: usize,
    handshake_timeout: Duration,
}

impl TcpAcceptor {
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
            max_body_len: MAX_PACKET_BODY,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Serves TLS (`tls://`): every connection starts with a TLS handshake.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The largest packet body (header excluded) ever accepted from
    /// clients: the ceiling of
    /// [`PlayerConn::set_max_packet_size`]. A header announcing more than
    /// the connection's current limit fails the read with
    /// [`CodecError::PacketTooLarge`](pitaya_core::codec::CodecError::PacketTooLarge)
    /// before anything is buffered. Default and upper bound:
    /// [`MAX_PACKET_BODY`] (16 MiB - 1), as Pitaya.
    ///
    /// A new connection starts at
    /// [`DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE`](crate::DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE)
    /// (or this maximum, if smaller) until `set_max_packet_size` is called.
    pub fn with_max_packet_size(mut self, max_body_len: usize) -> Self {
        self.max_body_len = max_body_len.min(MAX_PACKET_BODY);
        self
    }

    /// Bound on the TLS handshake of a new connection (default 10 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A TCP connection accepted by [`TcpAcceptor`], before its TLS handshake.
#[derive(Debug)]
pub struct RawTcpConn {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsConfig>,
    max_body_len: usize,
    handshake_timeout: Duration,
}

impl RawTcpConn {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Acceptor for TcpAcceptor {
    type Raw = RawTcpConn;
    type Conn = TcpConn;

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "tcp" };
        format!("{scheme}://{}", self.local_addr)
    }

    fn peer_addr(raw: &RawTcpConn) -> Option<SocketAddr> {
        Some(raw.peer)
    }

    async fn accept(&mut self) -> io::Result<RawTcpConn> {
        let (stream, peer) = self.listener.accept().await?;
        Ok(RawTcpConn {
            stream,
            peer,
            tls: self.tls.clone(),
            max_body_len: self.max_body_len,
            handshake_timeout: self.handshake_timeout,
        })
    }

    async fn upgrade(raw: RawTcpConn) -> io::Result<TcpConn> {
        raw.stream.set_nodelay(true)?;
        let io = match raw.tls {
            None => MaybeTls::Plain(raw.stream),
            Some(tls) => {
                let stream =
                    tokio::time::timeout(raw.handshake_timeout, tls.acceptor().accept(raw.stream))
                        .await
                        .map_err(|_| timed_out("tls handshake"))??;
                MaybeTls::Tls(Box::new(stream))
            }
        };
        Ok(TcpConn {
            stream: PacketStream::new(io, raw.max_body_len),
            peer: raw.peer,
        })
    }
}

/// A packet connection over TCP or TLS, yielded by [`TcpAcceptor`].
///
/// An idle connection holds no read or write buffer: reads go through a
/// buffer on the stack and only the bytes of an unfinished (or not yet
/// consumed) packet are kept, and writes go straight to the socket.
#[derive(Debug)]
pub struct TcpConn {
    stream: PacketStream<MaybeTls>,
    peer: SocketAddr,
}

impl TcpConn {
    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream.get_ref(), MaybeTls::Tls(_))
    }

    /// The largest packet body currently accepted (see
    /// [`PlayerConn::set_max_packet_size`]).
    pub fn max_packet_size(&self) -> usize {
        self.stream.max_body_len()
    }

    /// Capacity of the read buffer (0 on an idle, shrunk connection). For
    /// tests and memory diagnostics.
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.stream.buffer_capacity()
    }
}

impl PlayerConn for TcpConn {
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        self.stream.read_packet().await
    }

    fn has_buffered_packet(&self) -> bool {
        self.stream.has_buffered_packet()
    }

    /// Sets the limit, capped at the acceptor's
    /// [`with_max_packet_size`](TcpAcceptor::with_max_packet_size). The
    /// read buffer grows only with the bytes that arrive.
    fn set_max_packet_size(&mut self, max_body_len: usize) {
        self.stream.set_max_body_len(max_body_len);
    }

    async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
        self.stream.write_frames(frames).await
    }

    async fn close(&mut self) {
        self.stream.close().await;
    }

    fn shrink(&mut self) {
        self.stream.shrink();
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle connections are many: keep the per-connection state small
    /// (the TLS state is boxed, buffers are released when idle).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn connection_is_small() {
        assert!(std::mem::size_of::<MaybeTls>() <= 48);
        assert!(
            std::mem::size_of::<TcpConn>() <= 128,
            "{}",
            std::mem::size_of::<TcpConn>()
        );
    }
}

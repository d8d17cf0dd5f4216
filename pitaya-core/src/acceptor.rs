//! The traits acceptors implement: an [`Acceptor`] yields [`PlayerConn`]s,
//! connections that read and write whole packets.
//!
//! `pitaya-acceptors` implements them for TCP and WebSocket (TLS for both)
//! and wraps them (rate limiting); users can add their own transports.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use crate::codec::{CodecError, Packet};

/// Why reading from a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer sent bytes that are not Pitaya packets (bad type, oversize
    /// frame, a WebSocket message that is not exactly one packet, ...).
    #[error("invalid packet: {0}")]
    Codec(#[from] CodecError),
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The transport's own protocol failed (e.g. a WebSocket error).
    #[error("transport: {0}")]
    Transport(String),
}

/// One client connection, carrying whole Pitaya packets.
///
/// The agent owns it and uses it from one task: `read_packet` must be
/// cancel-safe (it is raced against timers and the write queue), and
/// writes are only started when no read is in progress.
pub trait PlayerConn: Send + 'static {
    /// The next packet from the peer, or `None` when the peer closed the
    /// connection cleanly. Cancel-safe: a dropped call loses no data.
    fn read_packet(&mut self) -> impl Future<Output = Result<Option<Packet>, ConnError>> + Send;

    /// Whether a whole packet is already buffered, so `read_packet` would
    /// return without waiting. The agent flushes its writes when this is
    /// false, batching the responses to pipelined requests.
    fn has_buffered_packet(&self) -> bool;

    /// Sets the largest packet body accepted from now on. The agent lowers
    /// it to the app's pre-handshake limit when the connection starts and
    /// raises it to the app's packet limit once the client has completed
    /// the handshake, so an unauthenticated peer can never make the server
    /// buffer a large packet. Transports cap it at their own configured
    /// maximum (e.g. `TcpAcceptor::with_max_packet_size`) and must grow
    /// their buffers with the bytes that arrived, never with the length a
    /// header announces.
    fn set_max_packet_size(&mut self, max_body_len: usize);

    /// Writes `frames`: one or more whole encoded packets, back to back.
    /// Stream transports write the bytes as they are; message transports
    /// (WebSocket) send one message per packet.
    fn write_frames(&mut self, frames: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the connection (flushing what the transport buffered).
    fn close(&mut self) -> impl Future<Output = ()> + Send;

    /// Releases buffers kept from a busy period; called when the connection
    /// turns idle so an idle connection costs little memory.
    fn shrink(&mut self) {}

    /// The peer's address, if known.
    fn remote_addr(&self) -> Option<SocketAddr>;
}

/// A listener producing [`PlayerConn`]s.
///
/// Accepting is split in two so a slow client cannot stall the listener:
/// [`Acceptor::accept`] returns a raw connection as soon as the transport
/// has one, and [`Acceptor::upgrade`] (TLS handshake, WebSocket upgrade)
/// runs in that connection's own task. `Raw` carries whatever the upgrade
/// needs (e.g. the TLS configuration).
pub trait Acceptor: Send + 'static {
    /// A connection accepted but not yet upgraded.
    type Raw: Send + 'static;

    /// The packet connections it yields.
    type Conn: PlayerConn;

    /// Where it listens, for logs and tests (`tcp://127.0.0.1:3250`).
    fn url(&self) -> String;

    /// The next raw connection. An error is logged by the caller, which
    /// keeps accepting.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Raw>> + Send;

    /// The peer address of a raw connection, if the transport knows it
    /// before the upgrade. The app uses it to apply its per-address
    /// connection limit before spending a TLS handshake on the connection;
    /// without it the limit is checked after the upgrade, with
    /// [`PlayerConn::remote_addr`].
    fn peer_addr(raw: &Self::Raw) -> Option<SocketAddr> {
        let _ = raw;
        None
    }

    /// Turns a raw connection into a packet connection.
    fn upgrade(raw: Self::Raw) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

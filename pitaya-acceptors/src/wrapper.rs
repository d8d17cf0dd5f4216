//! Acceptor wrappers: an acceptor that wraps another and wraps each of
//! its connections, to change what they do (Pitaya's `WithWrappers`).
//!
//! [`RateLimited`] is one. [`AcceptorExt`] adds builder-style methods to
//! every acceptor:
//!
//! ```no_run
//! use std::time::Duration;
//! use pitaya_acceptors::{AcceptorExt, TcpAcceptor};
//!
//! # async fn run() -> std::io::Result<()> {
//! let acceptor = TcpAcceptor::bind("0.0.0.0:3250").await?.rate_limited(20, Duration::from_secs(1));
//! # let _ = acceptor; Ok(()) }
//! ```
//!
//! # Writing a wrapper
//!
//! Follow the same pattern as [`RateLimited`]: a wrapper acceptor holding
//! the inner one, and a wrapper connection holding the inner connection.
//! [`Acceptor::upgrade`] has no `self`, so whatever the wrapped connection
//! needs (settings, shared counters) travels in the wrapper's `Raw` type,
//! filled in by [`Acceptor::accept`]. Forward every method you do not
//! change, `shrink`, `has_buffered_packet` and `set_max_packet_size`
//! included, and keep `read_packet` cancel-safe (keep state in `self`,
//! not across awaits).
//!
//! This one counts the packets its connections read:
//!
//! ```
//! use std::io;
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
//! use pitaya_core::codec::Packet;
//!
//! /// Counts the packets read by all connections of `A`.
//! pub struct Counted<A> {
//!     inner: A,
//!     packets: Arc<AtomicU64>,
//! }
//!
//! /// A raw connection and the counter its connection will use.
//! pub struct CountedRaw<R> {
//!     raw: R,
//!     packets: Arc<AtomicU64>,
//! }
//!
//! /// A connection that counts what it reads.
//! pub struct CountedConn<C> {
//!     inner: C,
//!     packets: Arc<AtomicU64>,
//! }
//!
//! impl<A: Acceptor> Acceptor for Counted<A> {
//!     type Raw = CountedRaw<A::Raw>;
//!     type Conn = CountedConn<A::Conn>;
//!
//!     fn url(&self) -> String {
//!         self.inner.url()
//!     }
//!
//!     // Lets the app apply its per-address connection limit before the
//!     // upgrade.
//!     fn peer_addr(raw: &Self::Raw) -> Option<std::net::SocketAddr> {
//!         A::peer_addr(&raw.raw)
//!     }
//!
//!     async fn accept(&mut self) -> io::Result<Self::Raw> {
//!         let raw = self.inner.accept().await?;
//!         Ok(CountedRaw { raw, packets: self.packets.clone() })
//!     }
//!
//!     async fn upgrade(raw: Self::Raw) -> io::Result<Self::Conn> {
//!         let inner = A::upgrade(raw.raw).await?;
//!         Ok(CountedConn { inner, packets: raw.packets })
//!     }
//! }
//!
//! impl<C: PlayerConn> PlayerConn for CountedConn<C> {
//!     async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
//!         let packet = self.inner.read_packet().await?;
//!         if packet.is_some() {
//!             self.packets.fetch_add(1, Ordering::Relaxed);
//!         }
//!         Ok(packet)
//!     }
//!
//!     fn has_buffered_packet(&self) -> bool {
//!         self.inner.has_buffered_packet()
//!     }
//!
//!     fn set_max_packet_size(&mut self, max_body_len: usize) {
//!         self.inner.set_max_packet_size(max_body_len);
//!     }
//!
//!     async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
//!         self.inner.write_frames(frames).await
//!     }
//!
//!     async fn close(&mut self) {
//!         self.inner.close().await;
//!     }
//!
//!     fn shrink(&mut self) {
//!         self.inner.shrink();
//!     }
//!
//!     fn remote_addr(&self) -> Option<SocketAddr> {
//!         self.inner.remote_addr()
//!     }
//! }
//!
//! # async fn run() -> io::Result<()> {
//! let acceptor = Counted {
//!     inner: pitaya_acceptors::TcpAcceptor::bind("127.0.0.1:0").await?,
//!     packets: Arc::new(AtomicU64::new(0)),
//! };
//! # let _ = acceptor; Ok(()) }
//! ```

use std::time::Duration;

use pitaya_core::acceptor::Acceptor;

pub use crate::rate_limit::{RateLimitPolicy, RateLimited, RateLimitedConn, RateLimitedRaw};

/// Builder-style wrapping for every [`Acceptor`].
pub trait AcceptorExt: Acceptor + Sized {
    /// Limits each connection to `limit` packets per `interval` with
    /// Pitaya's sliding window, dropping the rest (see [`RateLimited`]
    /// for the other [`RateLimitPolicy`] and for `forcedisable`). Pitaya's
    /// default is 20 per second.
    fn rate_limited(self, limit: u32, interval: Duration) -> RateLimited<Self> {
        RateLimited::new(self, limit, interval)
    }
}

impl<A: Acceptor> AcceptorExt for A {}

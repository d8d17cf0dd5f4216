//! Acceptors of pitaya-rs: where Pitaya clients connect.
//!
//! - [`TcpAcceptor`]: packets back to back on a TCP stream (`tcp://`), or
//!   on TLS over TCP with [`TcpAcceptor::with_tls`] (`tls://`).
//! - [`WsAcceptor`]: one packet per binary WebSocket message (`ws://`), or
//!   WebSocket over TLS with [`WsAcceptor::with_tls`] (`wss://`).
//! - [`TlsConfig`]: a certificate and key for either (rustls with ring).
//! - Wrappers that change what an acceptor's connections do, such as
//!   [`RateLimited`]; see [`wrapper`] to write your own.
//!
//! All implement [`Acceptor`](pitaya_core::acceptor::Acceptor), whose
//! connections carry whole [`Packet`](pitaya_core::codec::Packet)s. The
//! wire format matches Pitaya's acceptors byte for byte.
//!
//! ```no_run
//! use std::time::Duration;
//! use pitaya_acceptors::{AcceptorExt, TcpAcceptor, WsAcceptor};
//!
//! # async fn run() -> std::io::Result<()> {
//! let tcp = TcpAcceptor::bind("0.0.0.0:3250").await?.rate_limited(20, Duration::from_secs(1));
//! let ws = WsAcceptor::bind("0.0.0.0:3251").await?.with_path("/ws");
//! # let _ = (tcp, ws); Ok(()) }
//! ```

#![deny(missing_docs)]

mod io;
mod listen;
mod rate_limit;
mod stream;
mod tcp;
mod tls;
pub mod wrapper;
mod ws;

use std::time::Duration;

pub use pitaya_tls::Error as TlsError;
pub use rate_limit::{
    DEFAULT_RATE_INTERVAL, DEFAULT_RATE_LIMIT, RateLimitPolicy, RateLimited, RateLimitedConn,
    RateLimitedRaw,
};
pub use tcp::{RawTcpConn, TcpAcceptor, TcpConn};
pub use tls::TlsConfig;
pub use wrapper::AcceptorExt;
pub use ws::{RawWsConn, WsAcceptor, WsConn};

/// Default bound on a new connection's TLS handshake and WebSocket upgrade.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest packet body a new connection accepts until
/// [`PlayerConn::set_max_packet_size`](pitaya_core::acceptor::PlayerConn::set_max_packet_size)
/// is called: 64 KiB (or the acceptor's own `with_max_packet_size`, if
/// smaller).
///
/// The agent lowers the limit further to the app's pre-handshake limit as
/// soon as the connection starts and raises it once the client has
/// completed the handshake; this default only covers connections used
/// without an agent (or before it takes over), so a peer nobody has
/// authenticated can never announce, and make the server hold, a 16 MiB
/// packet.
pub const DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE: usize = 64 * 1024;

/// Why an acceptor could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TLS certificate or key could not be loaded: a file that cannot
    /// be read, a PEM input without (or with a broken) certificate or key,
    /// or a configuration rustls refuses (e.g. a key that does not match
    /// the certificate). [`TlsError`] tells which.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of a handshake or upgrade that took too long.
fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
}

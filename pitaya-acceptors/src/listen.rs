//! Binding listeners with a listen backlog sized for bursts of connects.

use std::io;

use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs};

/// The listen backlog of the acceptors' sockets (the kernel caps it at
/// `net.core.somaxconn`). Tokio's default of 128 overflows when a thousand
/// clients reconnect at once, and an overflowed connect waits a second for
/// a SYN retransmit; Go's `net.Listen` uses somaxconn too.
pub(crate) const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on the first address of `addr` that works, with
/// [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (as Go and `TcpListener::bind`).
pub(crate) async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_a_free_port_and_accepts() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let connect = tokio::net::TcpStream::connect(addr);
        let (accepted, connected) = tokio::join!(listener.accept(), connect);
        assert!(accepted.is_ok() && connected.is_ok());
    }

    #[tokio::test]
    async fn an_address_in_use_is_an_error() {
        let first = bind("127.0.0.1:0").await.unwrap();
        let taken = first.local_addr().unwrap();
        assert!(bind(taken).await.is_err());
    }
}

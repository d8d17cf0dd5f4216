//! The rate-limiting wrapper: over an in-memory transport with a paused
//! clock (exact timing), and over real TCP sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{connected, data, within};
use pitaya_acceptors::{AcceptorExt, RateLimited, TcpAcceptor};
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::Packet;
use tokio::sync::mpsc;

/// An acceptor whose connections read packets from a channel.
struct MemAcceptor {
    incoming: mpsc::UnboundedReceiver<mpsc::UnboundedReceiver<Packet>>,
}

struct MemConn {
    packets: mpsc::UnboundedReceiver<Packet>,
}

impl Acceptor for MemAcceptor {
    type Raw = mpsc::UnboundedReceiver<Packet>;
    type Conn = MemConn;

    fn url(&self) -> String {
        "mem://".into()
    }

    async fn accept(&mut self) -> io::Result<Self::Raw> {
        self.incoming
            .recv()
            .await
            .ok_or_else(|| io::Error::other("closed"))
    }

    async fn upgrade(packets: Self::Raw) -> io::Result<MemConn> {
        Ok(MemConn { packets })
    }
}

impl PlayerConn for MemConn {
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        Ok(self.packets.recv().await)
    }

    fn has_buffered_packet(&self) -> bool {
        !self.packets.is_empty()
    }

    async fn write_frames(&mut self, _frames: &[u8]) -> io::Result<()> {
        Ok(())
    }

    async fn close(&mut self) {}

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// A rate-limited in-memory acceptor and the way to open connections.
fn mem_acceptor(
    limit: u32,
    interval: Duration,
) -> (
    RateLimited<MemAcceptor>,
    mpsc::UnboundedSender<mpsc::UnboundedReceiver<Packet>>,
) {
    let (open, incoming) = mpsc::unbounded_channel();
    (MemAcceptor { incoming }.rate_limited(limit, interval), open)
}

async fn open_conn(
    acceptor: &mut RateLimited<MemAcceptor>,
    open: &mpsc::UnboundedSender<mpsc::UnboundedReceiver<Packet>>,
) -> (
    <RateLimited<MemAcceptor> as Acceptor>::Conn,
    mpsc::UnboundedSender<Packet>,
) {
    let (send, packets) = mpsc::unbounded_channel();
    open.send(packets).unwrap();
    let raw = acceptor.accept().await.unwrap();
    (
        RateLimited::<MemAcceptor>::upgrade(raw).await.unwrap(),
        send,
    )
}

/// Reads every packet that gets through until the input is drained.
async fn drain(conn: &mut impl PlayerConn) -> Vec<Packet> {
    let mut passed = Vec::new();
    // With the clock paused, the timeout fires as soon as the conn waits.
    while let Ok(read) = tokio::time::timeout(Duration::from_millis(1), conn.read_packet()).await {
        passed.push(read.unwrap().unwrap());
    }
    passed
}

#[tokio::test(start_paused = true)]
async fn packets_over_the_limit_are_dropped_and_counted() {
    let (mut acceptor, open) = mem_acceptor(3, Duration::from_secs(1));
    assert_eq!(acceptor.url(), "mem://");
    assert_eq!(acceptor.limit(), (3, Duration::from_secs(1)));
    let dropped = acceptor.dropped();
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;

    for i in 0..5u8 {
        send.send(data(&[i])).unwrap();
    }
    let passed = drain(&mut conn).await;
    assert_eq!(passed, vec![data(&[0]), data(&[1]), data(&[2])]);
    assert_eq!(dropped.load(Ordering::Relaxed), 2);

    // Within the interval, still limited (heartbeats too).
    tokio::time::advance(Duration::from_millis(100)).await;
    send.send(Packet::heartbeat()).unwrap();
    assert!(drain(&mut conn).await.is_empty());
    assert_eq!(dropped.load(Ordering::Relaxed), 3);

    // After the interval, a full burst passes again.
    tokio::time::advance(Duration::from_secs(1)).await;
    for i in 10..14u8 {
        send.send(data(&[i])).unwrap();
    }
    assert_eq!(
        drain(&mut conn).await,
        vec![data(&[10]), data(&[11]), data(&[12])]
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 4);

    // The end of the stream passes through.
    drop(send);
    assert_eq!(conn.read_packet().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn limits_are_per_connection_and_the_counter_is_shared() {
    let (mut acceptor, open) = mem_acceptor(2, Duration::from_secs(1));
    let dropped = acceptor.dropped();
    let (mut first, send_first) = open_conn(&mut acceptor, &open).await;
    let (mut second, send_second) = open_conn(&mut acceptor, &open).await;
    for i in 0..3u8 {
        send_first.send(data(&[i])).unwrap();
        send_second.send(data(&[i])).unwrap();
    }
    assert_eq!(drain(&mut first).await.len(), 2);
    assert_eq!(drain(&mut second).await.len(), 2);
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn steady_traffic_at_the_limit_passes() {
    let (mut acceptor, open) = mem_acceptor(20, Duration::from_secs(1));
    let dropped = acceptor.dropped();
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    for i in 0..100u8 {
        send.send(data(&[i])).unwrap();
        assert_eq!(within(conn.read_packet()).await.unwrap(), Some(data(&[i])));
        tokio::time::advance(Duration::from_millis(50)).await;
    }
    assert_eq!(dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn rate_limited_tcp_connection() {
    // An interval no test run reaches: exactly `limit` packets pass.
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .rate_limited(3, Duration::from_secs(3600));
    let url = acceptor.url();
    assert!(url.starts_with("tcp://"));
    let dropped = acceptor.dropped();
    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &url, None).await;
    assert!(conn.remote_addr().is_some());

    for i in 0..5u8 {
        writer.feed(&data(&[i])).await.unwrap();
    }
    writer.flush().await.unwrap();
    for i in 0..3u8 {
        assert_eq!(within(conn.read_packet()).await.unwrap(), Some(data(&[i])));
    }
    // Keep reading (and dropping) until both extra packets were seen.
    within(async {
        while dropped.load(Ordering::Relaxed) < 2 {
            let read = tokio::time::timeout(Duration::from_millis(20), conn.read_packet()).await;
            assert!(read.is_err(), "no packet gets through: {read:?}");
        }
    })
    .await;
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
    conn.shrink();
    assert_eq!(conn.get_ref().buffer_capacity(), 0);

    writer.close().await.unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), None);
}

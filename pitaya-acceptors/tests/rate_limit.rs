//! The rate-limiting wrapper: over an in-memory transport with a paused
//! clock (exact timing), and over real TCP sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{connected, data, within};
use futures::FutureExt;
use pitaya_acceptors::{AcceptorExt, RateLimitPolicy, RateLimited, RateLimitedConn, TcpAcceptor};
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::Packet;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// An acceptor whose connections read packets from a channel.
struct MemAcceptor {
    incoming: mpsc::UnboundedReceiver<mpsc::UnboundedReceiver<Packet>>,
}

struct MemConn {
    packets: mpsc::UnboundedReceiver<Packet>,
    /// The last limit set by `set_max_packet_size`.
    max_packet_size: Option<usize>,
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
        Ok(MemConn {
            packets,
            max_packet_size: None,
        })
    }
}

impl PlayerConn for MemConn {
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        Ok(self.packets.recv().await)
    }

    fn has_buffered_packet(&self) -> bool {
        !self.packets.is_empty()
    }

    fn set_max_packet_size(&mut self, max_body_len: usize) {
        self.max_packet_size = Some(max_body_len);
    }

    async fn write_frames(&mut self, _frames: &[u8]) -> io::Result<()> {
        Ok(())
    }

    async fn close(&mut self) {}

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
}

type Opener = mpsc::UnboundedSender<mpsc::UnboundedReceiver<Packet>>;

/// A rate-limited in-memory acceptor and the way to open connections.
fn mem_acceptor(limit: u32, interval: Duration) -> (RateLimited<MemAcceptor>, Opener) {
    let (open, incoming) = mpsc::unbounded_channel();
    (MemAcceptor { incoming }.rate_limited(limit, interval), open)
}

async fn open_conn(
    acceptor: &mut RateLimited<MemAcceptor>,
    open: &Opener,
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

/// Sends `packets`, then takes what passes without waiting.
fn offer(
    conn: &mut RateLimitedConn<MemConn>,
    send: &mpsc::UnboundedSender<Packet>,
    packets: &[Packet],
) -> Vec<Packet> {
    for packet in packets {
        send.send(packet.clone()).unwrap();
    }
    let mut passed = Vec::new();
    // A dropped packet is counted as soon as it is read; the read then
    // waits for the next one and is abandoned here.
    while let Some(read) = conn.read_packet().now_or_never() {
        passed.push(read.unwrap().unwrap());
    }
    passed
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_twice_the_limit_passes_exactly_the_limit() {
    let (mut acceptor, open) = mem_acceptor(20, Duration::from_secs(1));
    assert_eq!(acceptor.policy(), RateLimitPolicy::SlidingWindow);
    let dropped = acceptor.dropped();
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    let burst: Vec<_> = (0..40u8).map(|i| data(&[i])).collect();
    assert_eq!(offer(&mut conn, &send, &burst), burst[..20]);
    assert_eq!(dropped.load(Ordering::Relaxed), 20);
}

#[tokio::test(start_paused = true)]
async fn no_burst_right_after_a_full_window() {
    // A token bucket refills half its tokens in half an interval and lets
    // 30 through in that one second; Pitaya's window lets none.
    let (mut acceptor, open) = mem_acceptor(20, Duration::from_secs(1));
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    let burst: Vec<_> = (0..20u8).map(|i| data(&[i])).collect();
    assert_eq!(offer(&mut conn, &send, &burst).len(), 20);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(offer(&mut conn, &send, &burst).len(), 0);
    tokio::time::advance(Duration::from_millis(499)).await;
    assert_eq!(offer(&mut conn, &send, &burst).len(), 0);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(offer(&mut conn, &send, &burst).len(), 20);
}

#[tokio::test(start_paused = true)]
async fn no_window_of_one_interval_passes_more_than_the_limit_heartbeats_included() {
    let interval = Duration::from_secs(1);
    let (mut acceptor, open) = mem_acceptor(20, interval);
    let dropped = acceptor.dropped();
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    let start = Instant::now();
    let mut passed = Vec::new();
    let mut heartbeats_passed = 0;
    // A packet (every third one a heartbeat) every 10 ms for 3 s, and a
    // burst of 10 every 250 ms.
    for step in 0..300u32 {
        let packet = if step % 3 == 0 {
            Packet::heartbeat()
        } else {
            data(&step.to_be_bytes())
        };
        let copies = if step % 25 == 0 { 10 } else { 1 };
        for packet in offer(&mut conn, &send, &vec![packet; copies]) {
            heartbeats_passed += usize::from(packet == Packet::heartbeat());
            passed.push(Instant::now() - start);
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    for (i, &from) in passed.iter().enumerate() {
        let in_window = passed[i..]
            .iter()
            .take_while(|&&at| at < from + interval)
            .count();
        assert!(
            in_window <= 20,
            "{in_window} packets passed in the second from {from:?}"
        );
    }
    // Three full windows: 20 each.
    assert_eq!(passed.len(), 60, "{passed:?}");
    assert!(heartbeats_passed > 0);
    let offered = 300 + 12 * 9;
    assert_eq!(dropped.load(Ordering::Relaxed), offered - 60);
}

#[tokio::test(start_paused = true)]
async fn token_bucket_policy_refills_gradually() {
    let (acceptor, open) = mem_acceptor(20, Duration::from_secs(1));
    let mut acceptor = acceptor.with_policy(RateLimitPolicy::TokenBucket);
    assert_eq!(acceptor.policy(), RateLimitPolicy::TokenBucket);
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    let burst: Vec<_> = (0..40u8).map(|i| data(&[i])).collect();
    assert_eq!(offer(&mut conn, &send, &burst).len(), 20);
    // One token back every 50 ms.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(offer(&mut conn, &send, &burst).len(), 10);
}

#[tokio::test(start_paused = true)]
async fn force_disable_lets_everything_through() {
    let (acceptor, open) = mem_acceptor(2, Duration::from_secs(1));
    let mut acceptor = acceptor.with_force_disable(true);
    assert!(acceptor.is_force_disabled());
    let dropped = acceptor.dropped();
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    let burst: Vec<_> = (0..100u8).map(|i| data(&[i])).collect();
    assert_eq!(offer(&mut conn, &send, &burst), burst);
    assert_eq!(dropped.load(Ordering::Relaxed), 0);

    let (acceptor, open) = mem_acceptor(2, Duration::from_secs(1));
    let mut acceptor = acceptor.with_force_disable(false);
    assert!(!acceptor.is_force_disabled());
    let (mut conn, send) = open_conn(&mut acceptor, &open).await;
    assert_eq!(offer(&mut conn, &send, &burst).len(), 2);
}

#[tokio::test]
async fn the_packet_limit_is_forwarded() {
    let (mut acceptor, open) = mem_acceptor(2, Duration::from_secs(1));
    let (mut conn, _send) = open_conn(&mut acceptor, &open).await;
    assert_eq!(conn.get_ref().max_packet_size, None);
    conn.set_max_packet_size(4096);
    assert_eq!(conn.get_ref().max_packet_size, Some(4096));
}

#[tokio::test]
async fn the_packet_limit_reaches_a_tcp_connection() {
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_max_packet_size(100_000)
        .rate_limited(20, Duration::from_secs(1));
    let url = acceptor.url();
    let (mut conn, _writer, _reader) = connected(&mut acceptor, &url, None).await;
    conn.set_max_packet_size(1000);
    assert_eq!(conn.get_ref().max_packet_size(), 1000);
    conn.set_max_packet_size(usize::MAX);
    assert_eq!(conn.get_ref().max_packet_size(), 100_000);
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

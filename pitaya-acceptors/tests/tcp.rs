//! The TCP acceptor against real sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{client_next, connected, data, frames, within};
use pitaya_acceptors::DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE;
use pitaya_acceptors::TcpAcceptor;
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{CodecError, MAX_PACKET_BODY, Packet, PacketType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn bind() -> (TcpAcceptor, String) {
    let acceptor = TcpAcceptor::bind("127.0.0.1:0").await.unwrap();
    let url = acceptor.url();
    (acceptor, url)
}

/// A raw socket and the server's connection for it.
async fn raw_pair(acceptor: &mut TcpAcceptor) -> (<TcpAcceptor as Acceptor>::Conn, TcpStream) {
    let addr = acceptor.local_addr();
    let (server, client) = within(async {
        tokio::join!(
            async {
                TcpAcceptor::upgrade(acceptor.accept().await.unwrap())
                    .await
                    .unwrap()
            },
            TcpStream::connect(addr)
        )
    })
    .await;
    (server, client.unwrap())
}

#[tokio::test]
async fn packets_round_trip_both_ways() {
    let (mut acceptor, url) = bind().await;
    assert_eq!(url, format!("tcp://{}", acceptor.local_addr()));
    let (mut conn, mut writer, mut reader) = connected(&mut acceptor, &url, None).await;
    assert!(!conn.is_tls());
    assert!(
        conn.remote_addr()
            .is_some_and(|addr| addr.ip().is_loopback())
    );

    let sent = [
        Packet::new(PacketType::Handshake, &br#"{"sys":{}}"#[..]),
        Packet::handshake_ack(),
        data(b"request"),
    ];
    for packet in &sent {
        writer.feed(packet).await.unwrap();
    }
    writer.flush().await.unwrap();
    for packet in &sent {
        assert_eq!(
            within(conn.read_packet()).await.unwrap().as_ref(),
            Some(packet)
        );
    }

    let replies = [
        Packet::new(PacketType::Handshake, &b"{}"[..]),
        data(b"response"),
        Packet::heartbeat(),
    ];
    within(conn.write_frames(&frames(&replies))).await.unwrap();
    for packet in &replies {
        assert_eq!(&client_next(&mut reader).await, packet);
    }

    // Idle again: no buffer kept.
    conn.shrink();
    assert_eq!(conn.buffer_capacity(), 0);

    // Closing reaches the client; the client closing reaches the server.
    within(conn.close()).await;
    assert!(within(reader.next()).await.is_none());
    let _ = writer.close().await;
}

#[tokio::test]
async fn client_close_ends_the_stream() {
    let (mut acceptor, url) = bind().await;
    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &url, None).await;
    writer.send(&Packet::heartbeat()).await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::heartbeat())
    );
    assert_eq!(within(conn.read_packet()).await.unwrap(), None);
}

#[tokio::test]
async fn split_packets_are_reassembled() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let packet = data(&[42u8; 1000]);
    let bytes = frames(std::slice::from_ref(&packet));
    let writer = tokio::spawn(async move {
        for piece in [
            &bytes[..1],
            &bytes[1..3],
            &bytes[3..4],
            &bytes[4..500],
            &bytes[500..],
        ] {
            client.write_all(piece).await.unwrap();
            client.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        client
    });
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(packet));
    let _client = writer.await.unwrap();
}

#[tokio::test]
async fn merged_packets_are_split() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let packets = [
        Packet::heartbeat(),
        data(b"one"),
        data(b"two"),
        Packet::handshake_ack(),
    ];
    client.write_all(&frames(&packets)).await.unwrap();
    for packet in &packets {
        assert_eq!(
            within(conn.read_packet()).await.unwrap().as_ref(),
            Some(packet)
        );
    }
    assert!(!conn.has_buffered_packet());
}

#[tokio::test]
async fn oversize_header_is_an_error() {
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_max_packet_size(16);
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    // A body of exactly the maximum passes.
    client.write_all(&frames(&[data(&[1; 16])])).await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(&[1; 16]))
    );
    // One more byte is refused from the header alone.
    client.write_all(&[0x04, 0, 0, 17]).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len: 17, max: 16 })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_packet_type_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client.write_all(&[0x00, 0, 0, 0]).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(err, ConnError::Codec(CodecError::InvalidPacketType(0))),
        "{err}"
    );
}

#[tokio::test]
async fn truncated_packet_at_close_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client.write_all(&[0x04, 0, 0, 10, 1, 2, 3]).await.unwrap();
    client.shutdown().await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(matches!(err, ConnError::Io(_)), "{err}");
}

#[tokio::test]
async fn idle_connection_holds_no_buffer() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    assert_eq!(
        conn.buffer_capacity(),
        0,
        "a fresh connection has no buffer"
    );
    conn.set_max_packet_size(MAX_PACKET_BODY);
    let big = data(&vec![3u8; 256 * 1024]);
    let bytes = frames(std::slice::from_ref(&big));
    let writer = tokio::spawn(async move {
        client.write_all(&bytes).await.unwrap();
        client
    });
    let read = within(conn.read_packet()).await.unwrap();
    assert_eq!(read.as_ref(), Some(&big));
    drop(read);
    let mut client = writer.await.unwrap();
    conn.shrink();
    assert_eq!(conn.buffer_capacity(), 0);

    // Writes need no buffer either, and the connection still works.
    within(conn.write_frames(&frames(&[Packet::heartbeat()])))
        .await
        .unwrap();
    let mut heartbeat = [0u8; 4];
    within(client.read_exact(&mut heartbeat)).await.unwrap();
    assert_eq!(heartbeat, [0x03, 0, 0, 0]);
    assert_eq!(conn.buffer_capacity(), 0);
}

#[tokio::test]
async fn read_is_cancel_safe() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let packet = data(&[9u8; 64]);
    let bytes = frames(std::slice::from_ref(&packet));
    client.write_all(&bytes[..10]).await.unwrap();
    // Reads interrupted by a timer while the packet is incomplete.
    for _ in 0..3 {
        let interrupted =
            tokio::time::timeout(std::time::Duration::from_millis(20), conn.read_packet()).await;
        assert!(interrupted.is_err());
    }
    client.write_all(&bytes[10..]).await.unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(packet));
}

/// A packet header announcing a `len`-byte data body.
fn header(len: usize) -> [u8; 4] {
    let [_, a, b, c] = u32::try_from(len).unwrap().to_be_bytes();
    [0x04, a, b, c]
}

#[tokio::test]
async fn a_new_connection_starts_at_the_pre_handshake_limit() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    assert_eq!(
        conn.max_packet_size(),
        DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
    );
    let at_limit = data(&vec![1; DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE]);
    let bytes = frames(std::slice::from_ref(&at_limit));
    let writer = tokio::spawn(async move {
        client.write_all(&bytes).await.unwrap();
        client
    });
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(at_limit));
    let mut client = writer.await.unwrap();

    // A header announcing 16 MiB - 1 is refused before any body arrives.
    client.write_all(&header(MAX_PACKET_BODY)).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len: MAX_PACKET_BODY, max })
                if max == DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_raised_limit_lets_big_packets_through_up_to_the_acceptor_maximum() {
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_max_packet_size(300 * 1024);
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    conn.set_max_packet_size(usize::MAX);
    assert_eq!(conn.max_packet_size(), 300 * 1024, "capped by the acceptor");
    let big = data(&vec![7; 200 * 1024]);
    let bytes = frames(std::slice::from_ref(&big));
    let writer = tokio::spawn(async move {
        client.write_all(&bytes).await.unwrap();
        client
    });
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(big));
    let mut client = writer.await.unwrap();
    client.write_all(&header(300 * 1024 + 1)).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge {
                len: 307_201,
                max: 307_200
            })
        ),
        "{err}"
    );

    // Lowered again (e.g. by a wrapper): the new limit applies.
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    conn.set_max_packet_size(8);
    client.write_all(&header(9)).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len: 9, max: 8 })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_read_buffer_grows_with_the_bytes_that_arrive() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    conn.set_max_packet_size(MAX_PACKET_BODY);
    // 16 MiB announced, 100 bytes sent.
    client.write_all(&header(MAX_PACKET_BODY)).await.unwrap();
    client.write_all(&[5; 100]).await.unwrap();
    let waiting =
        tokio::time::timeout(std::time::Duration::from_millis(100), conn.read_packet()).await;
    assert!(waiting.is_err(), "the body is incomplete: {waiting:?}");
    assert!(
        conn.buffer_capacity() < 16 * 1024,
        "the buffer holds what arrived, not what was announced: {}",
        conn.buffer_capacity()
    );
}

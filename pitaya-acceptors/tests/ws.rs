//! The WebSocket acceptor against real sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client_next, connect, connected, data, frames, within};
use futures::{SinkExt, StreamExt};
use pitaya_acceptors::WsAcceptor;
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{CodecError, Packet, PacketType};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

async fn bind() -> (WsAcceptor, String) {
    let acceptor = WsAcceptor::bind("127.0.0.1:0").await.unwrap();
    let url = acceptor.url();
    (acceptor, url)
}

/// A raw WebSocket client and the server's connection for it.
async fn raw_pair(
    acceptor: &mut WsAcceptor,
) -> (<WsAcceptor as Acceptor>::Conn, WebSocketStream<TcpStream>) {
    let url = format!("ws://{}/", acceptor.local_addr());
    let addr = acceptor.local_addr();
    let (server, client) = within(async {
        tokio::join!(
            async {
                WsAcceptor::upgrade(acceptor.accept().await.unwrap())
                    .await
                    .unwrap()
            },
            async {
                let tcp = TcpStream::connect(addr).await.unwrap();
                tokio_tungstenite::client_async(url, tcp).await.unwrap().0
            }
        )
    })
    .await;
    (server, client)
}

#[tokio::test]
async fn packets_round_trip_both_ways() {
    let (mut acceptor, url) = bind().await;
    assert_eq!(url, format!("ws://{}/", acceptor.local_addr()));
    let (mut conn, mut writer, mut reader) = connected(&mut acceptor, &url, None).await;
    assert!(!conn.is_tls());
    assert!(conn.remote_addr().is_some());
    assert!(!conn.has_buffered_packet());

    let sent = [
        Packet::new(PacketType::Handshake, &br#"{"sys":{}}"#[..]),
        Packet::handshake_ack(),
        data(b"request"),
    ];
    for packet in &sent {
        writer.send(packet).await.unwrap();
    }
    for packet in &sent {
        assert_eq!(
            within(conn.read_packet()).await.unwrap().as_ref(),
            Some(packet)
        );
    }

    // Several packets in one write arrive as one message each.
    let replies = [
        Packet::new(PacketType::Handshake, &b"{}"[..]),
        data(b"response"),
        Packet::heartbeat(),
    ];
    within(conn.write_frames(&frames(&replies))).await.unwrap();
    for packet in &replies {
        assert_eq!(&client_next(&mut reader).await, packet);
    }

    within(conn.close()).await;
    assert!(within(reader.next()).await.is_none());
}

#[tokio::test]
async fn each_packet_is_its_own_binary_message() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let replies = [data(b"a"), data(b"bc")];
    within(conn.write_frames(&frames(&replies))).await.unwrap();
    for packet in &replies {
        let message = within(client.next()).await.unwrap().unwrap();
        assert_eq!(message, Message::Binary(packet.to_bytes().unwrap()));
    }
    // Frames not ending on a packet boundary are refused.
    let err = within(conn.write_frames(&[0x04, 0, 0, 5, 1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn client_close_ends_the_stream() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client.close(None).await.unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), None);
}

#[tokio::test]
async fn two_packets_in_one_message_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let both = frames(&[data(b"one"), data(b"two")]);
    client.send(Message::Binary(both.into())).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketLengthMismatch {
                announced: 3,
                actual: 10
            })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn truncated_packet_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client
        .send(Message::Binary(Bytes::from_static(&[0x04, 0, 0, 5, 1, 2])))
        .await
        .unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketLengthMismatch {
                announced: 5,
                actual: 2
            })
        ),
        "{err}"
    );

    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client
        .send(Message::Binary(Bytes::from_static(&[0x04, 0])))
        .await
        .unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(err, ConnError::Codec(CodecError::Truncated(_))),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_packet_type_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client
        .send(Message::Binary(Bytes::from_static(&[0x09, 0, 0, 0])))
        .await
        .unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(err, ConnError::Codec(CodecError::InvalidPacketType(9))),
        "{err}"
    );
}

#[tokio::test]
async fn text_message_is_an_error() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client.send(Message::text("hello")).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(matches!(err, ConnError::Transport(_)), "{err}");
}

#[tokio::test]
async fn oversize_message_is_an_error() {
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_max_packet_size(16);
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client
        .send(Message::Binary(frames(&[data(&[1; 16])]).into()))
        .await
        .unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(&[1; 16]))
    );
    client
        .send(Message::Binary(frames(&[data(&[1; 17])]).into()))
        .await
        .unwrap();
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
async fn pings_are_answered_while_reading() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    let server = tokio::spawn(async move { within(conn.read_packet()).await.unwrap() });
    client
        .send(Message::Ping(Bytes::from_static(b"ping")))
        .await
        .unwrap();
    let pong = within(client.next()).await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"ping")));
    client
        .send(Message::Binary(frames(&[Packet::heartbeat()]).into()))
        .await
        .unwrap();
    assert_eq!(server.await.unwrap(), Some(Packet::heartbeat()));
}

#[tokio::test]
async fn any_path_is_accepted_by_default() {
    let (mut acceptor, _) = bind().await;
    let url = format!("ws://{}/some/where?x=1", acceptor.local_addr());
    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &url, None).await;
    writer.send(&Packet::heartbeat()).await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::heartbeat())
    );
}

#[tokio::test]
async fn path_filter_refuses_other_paths_with_404() {
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_path("/ws");
    let url = acceptor.url();
    assert_eq!(url, format!("ws://{}/ws", acceptor.local_addr()));

    let wrong = format!("ws://{}/other", acceptor.local_addr());
    let server = async { WsAcceptor::upgrade(acceptor.accept().await.unwrap()).await };
    let (server, client) = within(async { tokio::join!(server, connect(&wrong, None)) }).await;
    assert!(server.is_err());
    let err = client.err().expect("the upgrade is refused");
    assert!(err.to_string().contains("404"), "{err}");

    let with_query = format!("{url}?token=abc");
    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &with_query, None).await;
    writer.send(&data(b"hi")).await.unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(data(b"hi")));
}

#[tokio::test]
async fn silent_client_times_out_in_upgrade_without_blocking_accept() {
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(300));
    let url = acceptor.url();
    let _silent = TcpStream::connect(acceptor.local_addr()).await.unwrap();
    let raw = within(acceptor.accept()).await.unwrap();
    let stalled = tokio::spawn(WsAcceptor::upgrade(raw));

    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &url, None).await;
    writer.send(&Packet::heartbeat()).await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::heartbeat())
    );

    let err = within(stalled).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

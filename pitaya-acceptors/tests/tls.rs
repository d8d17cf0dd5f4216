//! TLS (`tls://`) and WebSocket over TLS (`wss://`) against real sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use common::{client_next, connected, data, frames, tls_pair, within};
use pitaya_acceptors::{TcpAcceptor, TlsConfig, WsAcceptor};
use pitaya_core::acceptor::{Acceptor, PlayerConn};
use pitaya_core::codec::{Packet, PacketType};
use tokio::net::TcpStream;

#[tokio::test]
async fn tls_round_trip() {
    let (server_tls, client_tls) = tls_pair();
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_tls(server_tls);
    let url = acceptor.url();
    assert_eq!(url, format!("tls://{}", acceptor.local_addr()));
    let (mut conn, mut writer, mut reader) = connected(&mut acceptor, &url, Some(client_tls)).await;
    assert!(conn.is_tls());

    let sent = [
        Packet::new(PacketType::Handshake, &b"{}"[..]),
        data(b"one"),
        data(&[5u8; 40_000]),
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
    conn.shrink();
    assert_eq!(conn.buffer_capacity(), 0);

    let replies = [data(b"reply"), Packet::heartbeat()];
    within(conn.write_frames(&frames(&replies))).await.unwrap();
    for packet in &replies {
        assert_eq!(&client_next(&mut reader).await, packet);
    }

    // close_notify then EOF.
    within(conn.close()).await;
    assert!(within(reader.next()).await.is_none());
}

#[tokio::test]
async fn wss_round_trip() {
    let (server_tls, client_tls) = tls_pair();
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_tls(server_tls)
        .with_path("/ws");
    let url = acceptor.url();
    assert_eq!(url, format!("wss://{}/ws", acceptor.local_addr()));
    let (mut conn, mut writer, mut reader) = connected(&mut acceptor, &url, Some(client_tls)).await;
    assert!(conn.is_tls());

    writer.send(&data(b"over wss")).await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(b"over wss"))
    );
    let replies = [data(b"reply"), Packet::kick()];
    within(conn.write_frames(&frames(&replies))).await.unwrap();
    for packet in &replies {
        assert_eq!(&client_next(&mut reader).await, packet);
    }
    within(conn.close()).await;
    assert!(within(reader.next()).await.is_none());
}

#[tokio::test]
async fn client_with_another_ca_is_refused() {
    let (server_tls, _) = tls_pair();
    let (_, other_client_tls) = tls_pair();
    let mut acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_tls(server_tls);
    let url = acceptor.url();
    let server = async { TcpAcceptor::upgrade(acceptor.accept().await.unwrap()).await };
    let (server, client) =
        within(async { tokio::join!(server, common::connect(&url, Some(other_client_tls))) }).await;
    assert!(client.is_err());
    assert!(server.is_err());
}

/// A client that opens TCP and never starts the TLS handshake holds only
/// its own upgrade, which times out; accepting goes on meanwhile.
async fn silent_client_does_not_block<A: Acceptor>(
    mut acceptor: A,
    addr: std::net::SocketAddr,
    client_tls: pitaya_client::TlsConfig,
) {
    let url = acceptor.url();
    let _silent = TcpStream::connect(addr).await.unwrap();
    let raw = within(acceptor.accept()).await.unwrap();
    let stalled = tokio::spawn(A::upgrade(raw));

    let (mut conn, mut writer, _reader) = connected(&mut acceptor, &url, Some(client_tls)).await;
    writer.send(&Packet::heartbeat()).await.unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::heartbeat())
    );
    assert!(
        !stalled.is_finished(),
        "the silent client's upgrade is still waiting"
    );

    let err = within(stalled)
        .await
        .unwrap()
        .err()
        .expect("the silent upgrade fails");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test]
async fn silent_tls_client_does_not_block_accepting() {
    let (server_tls, client_tls) = tls_pair();
    let acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_tls(server_tls)
        .with_handshake_timeout(Duration::from_secs(3));
    let addr = acceptor.local_addr();
    silent_client_does_not_block(acceptor, addr, client_tls).await;
}

#[tokio::test]
async fn silent_wss_client_does_not_block_accepting() {
    let (server_tls, client_tls) = tls_pair();
    let acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_tls(server_tls)
        .with_handshake_timeout(Duration::from_secs(3));
    let addr = acceptor.local_addr();
    silent_client_does_not_block(acceptor, addr, client_tls).await;
}

#[tokio::test]
async fn pem_files_are_read() {
    let (cert, key) = common::self_signed();
    let dir = std::env::temp_dir().join(format!("pitaya-acceptors-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let loaded = TlsConfig::from_pem_files(&cert_path, &key_path);
    std::fs::remove_dir_all(&dir).unwrap();
    loaded.unwrap();
}

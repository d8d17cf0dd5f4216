//! The WebSocket acceptor against real sockets.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client_next, connect, connected, data, frames, within};
use futures::{SinkExt, StreamExt};
use pitaya_acceptors::{DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE, WsAcceptor};
use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::{CodecError, MAX_PACKET_BODY, Packet, PacketType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The key of RFC 6455's example handshake, and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A WebSocket upgrade request for `path`, with `extra` header lines.
fn upgrade_request(method: &str, path: &str, headers: &[&str]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// The headers of a valid upgrade.
const UPGRADE: [&str; 4] = [
    "Connection: keep-alive, Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

/// A masked client frame: `first` is the FIN bit and opcode byte.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    push_length(&mut frame, payload.len() as u64);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// The mask bit and payload length of a client frame header.
fn push_length(frame: &mut Vec<u8>, len: u64) {
    if len < 126 {
        frame.push(0x80 | u8::try_from(len).unwrap());
    } else if let Ok(len) = u16::try_from(len) {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&len.to_be_bytes());
    }
}

/// Sends `request` from a raw socket; returns the server's upgrade error
/// and everything the client received until the server closed.
async fn refused(acceptor: &mut WsAcceptor, request: &[u8]) -> (std::io::Error, String) {
    let addr = acceptor.local_addr();
    let (server, response) = within(async {
        tokio::join!(
            async { WsAcceptor::upgrade(acceptor.accept().await.unwrap()).await },
            async {
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                tcp.write_all(request).await.unwrap();
                let mut response = Vec::new();
                tcp.read_to_end(&mut response).await.unwrap();
                String::from_utf8(response).unwrap()
            }
        )
    })
    .await;
    (server.expect_err("the upgrade is refused"), response)
}

fn assert_bad_request(err: &std::io::Error, response: &str) {
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response:?}"
    );
    assert!(
        response.contains("\r\nConnection: close\r\n"),
        "{response:?}"
    );
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(!body.is_empty() && body.len() < 200, "{body:?}");
}

#[tokio::test]
async fn garbage_gets_400() {
    let (mut acceptor, _) = bind().await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n"[..],
        b"hello\r\n\r\n",
        b"GET\r\n\r\n",
    ] {
        let (err, response) = refused(&mut acceptor, garbage).await;
        assert_bad_request(&err, &response);
    }
}

#[tokio::test]
async fn a_post_gets_400() {
    let (mut acceptor, _) = bind().await;
    let request = upgrade_request("POST", "/", &UPGRADE);
    let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
    assert_bad_request(&err, &response);
}

#[tokio::test]
async fn a_get_without_a_key_gets_400() {
    let (mut acceptor, _) = bind().await;
    let request = upgrade_request("GET", "/", &UPGRADE[..3]);
    let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
    assert_bad_request(&err, &response);
    assert!(response.contains("Sec-WebSocket-Key"), "{response:?}");
}

#[tokio::test]
async fn other_invalid_upgrades_get_400() {
    let (mut acceptor, _) = bind().await;
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let cases: [&[&str]; 5] = [
        // No Upgrade header; no Connection: Upgrade.
        &["Connection: Upgrade", "Sec-WebSocket-Version: 13", &key],
        &["Upgrade: websocket", "Sec-WebSocket-Version: 13", &key],
        // Another version; a key that is not 16 base64 bytes.
        &[
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 8",
            &key,
        ],
        &[
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: c2hvcnQ=",
        ],
        // A plain HTTP request.
        &["Accept: */*"],
    ];
    for headers in cases {
        let request = upgrade_request("GET", "/", headers);
        let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
        assert_bad_request(&err, &response);
    }
    // HTTP/1.0.
    let request = upgrade_request("GET", "/", &UPGRADE).replace("HTTP/1.1", "HTTP/1.0");
    let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
    assert_bad_request(&err, &response);
}

#[tokio::test]
async fn a_request_head_over_8_kib_gets_400() {
    let (mut acceptor, _) = bind().await;
    let filler = format!("X-Filler: {}", "a".repeat(1000));
    let mut headers = vec![filler.as_str(); 9];
    headers.extend(UPGRADE);
    let request = upgrade_request("GET", "/", &headers);
    assert!(request.len() > 9000);
    let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
    assert_bad_request(&err, &response);

    // A head of just under 8 KiB is fine.
    let mut headers = vec![filler.as_str(); 7];
    headers.extend(UPGRADE);
    let request = upgrade_request("GET", "/", &headers);
    let (mut conn, mut client) = raw_upgrade(&mut acceptor, request.as_bytes()).await;
    client
        .write_all(&client_frame(0x82, &frames(&[data(b"big head")])))
        .await
        .unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(b"big head"))
    );
}

#[tokio::test]
async fn another_path_gets_404() {
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_path("/ws");
    let request = upgrade_request("GET", "/other", &UPGRADE);
    let (err, response) = refused(&mut acceptor, request.as_bytes()).await;
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(
        response.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{response:?}"
    );
    assert!(
        response.contains("\r\nConnection: close\r\n"),
        "{response:?}"
    );
}

/// Upgrades a raw socket with `request` (which may carry frames after the
/// head); returns the server's connection and the socket, past the 101
/// response.
async fn raw_upgrade(
    acceptor: &mut WsAcceptor,
    request: &[u8],
) -> (<WsAcceptor as Acceptor>::Conn, TcpStream) {
    let addr = acceptor.local_addr();
    let (server, client) = within(async {
        tokio::join!(
            async {
                WsAcceptor::upgrade(acceptor.accept().await.unwrap())
                    .await
                    .unwrap()
            },
            async {
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                tcp.write_all(request).await.unwrap();
                // Byte by byte, so nothing past the response is consumed.
                let mut response = Vec::new();
                while !response.ends_with(b"\r\n\r\n") {
                    response.push(tcp.read_u8().await.unwrap());
                }
                let response = String::from_utf8(response).unwrap();
                assert!(
                    response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                    "{response:?}"
                );
                assert!(
                    response.to_ascii_lowercase().contains(&format!(
                        "sec-websocket-accept: {}",
                        ACCEPT.to_ascii_lowercase()
                    )),
                    "{response:?}"
                );
                tcp
            }
        )
    })
    .await;
    (server, client)
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_kept() {
    let (mut acceptor, _) = bind().await;
    let mut request = upgrade_request("GET", "/", &UPGRADE).into_bytes();
    request.extend(client_frame(0x82, &frames(&[Packet::handshake_ack()])));
    request.extend(client_frame(0x82, &frames(&[data(b"early")])));
    let (mut conn, mut client) = raw_upgrade(&mut acceptor, &request).await;
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::handshake_ack())
    );
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(b"early"))
    );
    // And the connection goes on.
    client
        .write_all(&client_frame(0x82, &frames(&[data(b"later")])))
        .await
        .unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(b"later"))
    );
}

#[tokio::test]
async fn a_16_mib_frame_header_is_refused_before_the_handshake() {
    let (mut acceptor, _) = bind().await;
    let request = upgrade_request("GET", "/", &UPGRADE);
    let (mut conn, mut client) = raw_upgrade(&mut acceptor, request.as_bytes()).await;
    assert_eq!(
        conn.max_packet_size(),
        DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
    );
    // Only the header of a 16 MiB binary frame: refused from the header,
    // so nothing is reserved (and no body is awaited).
    let mut header = vec![0x82];
    push_length(&mut header, 16 << 20);
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.write_all(&header).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len, max })
                if len == (16 << 20) - 4 && max == DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_fragmented_message_is_refused_once_past_the_limit() {
    let (mut acceptor, _) = bind().await;
    let request = upgrade_request("GET", "/", &UPGRADE);
    let (mut conn, mut client) = raw_upgrade(&mut acceptor, request.as_bytes()).await;
    let chunk = vec![0u8; 4096];
    // 16 fragments of 4 KiB: 64 KiB, within the limit (64 KiB + the
    // 4-byte packet header).
    client.write_all(&client_frame(0x02, &chunk)).await.unwrap();
    for _ in 1..16 {
        client.write_all(&client_frame(0x00, &chunk)).await.unwrap();
    }
    let waiting = tokio::time::timeout(Duration::from_millis(200), conn.read_packet()).await;
    assert!(waiting.is_err(), "the message is not finished: {waiting:?}");
    // The 17th is one too many.
    client.write_all(&client_frame(0x00, &chunk)).await.unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len, max })
                if len == 17 * 4096 - 4 && max == DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_raised_limit_lets_a_200_kib_packet_through() {
    let (mut acceptor, _) = bind().await;
    let big = data(&vec![9; 200 * 1024]);

    // Before the limit is raised: refused.
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    client
        .send(Message::Binary(frames(std::slice::from_ref(&big)).into()))
        .await
        .unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge { len: 204_800, max })
                if max == DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
        ),
        "{err}"
    );

    // Raised (as the agent does after the handshake): it passes, and the
    // connection keeps working.
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    conn.set_max_packet_size(MAX_PACKET_BODY);
    assert_eq!(conn.max_packet_size(), MAX_PACKET_BODY);
    client
        .send(Message::Binary(frames(std::slice::from_ref(&big)).into()))
        .await
        .unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), Some(big));
    client
        .send(Message::Binary(frames(&[Packet::heartbeat()]).into()))
        .await
        .unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(Packet::heartbeat())
    );
}

#[tokio::test]
async fn the_limit_is_capped_by_with_max_packet_size() {
    let mut acceptor = WsAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_max_packet_size(100_000);
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    assert_eq!(
        conn.max_packet_size(),
        DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE
    );
    conn.set_max_packet_size(1 << 20);
    assert_eq!(conn.max_packet_size(), 100_000);
    client
        .send(Message::Binary(frames(&[data(&vec![1; 100_000])]).into()))
        .await
        .unwrap();
    assert_eq!(
        within(conn.read_packet()).await.unwrap(),
        Some(data(&vec![1; 100_000]))
    );
    client
        .send(Message::Binary(frames(&[data(&vec![1; 100_001])]).into()))
        .await
        .unwrap();
    let err = within(conn.read_packet()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Codec(CodecError::PacketTooLarge {
                len: 100_001,
                max: 100_000
            })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn big_batches_are_written_and_pongs_survive_a_full_socket() {
    let (mut acceptor, _) = bind().await;
    let (mut conn, mut client) = raw_pair(&mut acceptor).await;
    // More than the socket buffers hold, so writes meet a full socket.
    let batch: Vec<_> = (0..64u8).map(|i| data(&vec![i; 64 * 1024])).collect();
    let bytes = frames(&batch);
    let reader = tokio::spawn(async move {
        for packet in &batch {
            let message = within(client.next()).await.unwrap().unwrap();
            assert_eq!(message, Message::Binary(packet.to_bytes().unwrap()));
        }
        client
            .send(Message::Ping(Bytes::from_static(b"still there")))
            .await
            .unwrap();
        let pong = within(client.next()).await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(Bytes::from_static(b"still there")));
        client.close(None).await.unwrap();
    });
    within(conn.write_frames(&bytes)).await.unwrap();
    assert_eq!(within(conn.read_packet()).await.unwrap(), None);
    reader.await.unwrap();
}

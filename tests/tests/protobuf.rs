//! Go Pitaya's protobuf serializer end to end: an app serving
//! `SerializerKind::Protobuf` with a `#[component(serializer = "protobuf")]`,
//! real sockets, our client.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use pitaya::dispatch::RouteTable;
use pitaya::handler::{Component, PayloadFormat};
use pitaya::prelude::*;
use pitaya_client::Event;
use pitaya_tests::{TestServer, within};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, PartialEq, prost::Message)]
struct JoinReq {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    level: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct JoinAck {
    #[prost(string, tag = "1")]
    greeting: String,
    #[prost(uint32, tag = "2")]
    level: u32,
    #[prost(string, repeated, tag = "3")]
    tags: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Say {
    #[prost(string, tag = "1")]
    text: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Said {
    #[prost(string, tag = "1")]
    text: String,
    #[prost(uint64, tag = "2")]
    session: u64,
}

struct Proto;

#[component(name = "proto", serializer = "protobuf")]
impl Proto {
    #[handler]
    async fn join(&self, req: JoinReq) -> Result<JoinAck, PitayaError> {
        Ok(JoinAck {
            greeting: format!("hello {}", req.name),
            level: req.level + 1,
            tags: vec!["a".into(), "b".into()],
        })
    }

    /// A notify answered with a protobuf push.
    #[handler]
    async fn say(&self, session: &Session, say: Say) {
        let said = Said {
            text: say.text.to_uppercase(),
            session: session.id(),
        };
        if let Err(err) = session.push_message("onSaid", &said) {
            tracing::error!(%err, "push_message failed");
        }
    }

    #[handler]
    async fn fail(&self) -> Result<JoinAck, PitayaError> {
        Err(PitayaError::new("GAME-001", "no such room").with_metadata("room", "7"))
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }
}

/// A JSON component: not served here, only checked against the serializer.
struct Lobby;

#[component]
impl Lobby {
    #[handler]
    async fn list(&self) -> Result<Vec<String>, PitayaError> {
        Ok(Vec::new())
    }
}

async fn server() -> TestServer {
    TestServer::start(|app| app.serializer(SerializerKind::Protobuf).register(Proto)).await
}

#[tokio::test]
async fn handshake_requests_and_notifies_speak_protobuf() {
    let server = server().await;
    let (client, mut events) = server.client().await;
    assert_eq!(client.handshake_response().sys.serializer, "protobuf");
    assert_eq!(client.serializer(), SerializerKind::Protobuf);

    let ack: JoinAck = within(
        5,
        client.request_message(
            "game.proto.join",
            &JoinReq {
                name: "ana".into(),
                level: 4,
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        ack,
        JoinAck {
            greeting: "hello ana".into(),
            level: 5,
            tags: vec!["a".into(), "b".into()],
        }
    );

    // The reply is plain protobuf on the wire: JoinReq as raw bytes in,
    // JoinAck's encoding out.
    let reply = within(
        5,
        client.request_raw("game.proto.join", &b"\x0a\x03bob\x10\x01"[..]),
    )
    .await
    .unwrap();
    let mut expected = vec![0x0a, 9];
    expected.extend_from_slice(b"hello bob");
    expected.extend_from_slice(&[0x10, 0x02, 0x1a, 0x01, b'a', 0x1a, 0x01, b'b']);
    assert_eq!(&reply[..], &expected[..]);

    // Raw handlers still work.
    let raw = within(5, client.request_raw("game.proto.raw", &b"\xffraw"[..]))
        .await
        .unwrap();
    assert_eq!(&raw[..], b"\xffraw");

    within(
        5,
        client.notify_message("game.proto.say", &Say { text: "hi".into() }),
    )
    .await
    .unwrap();
    match within(5, events.next()).await {
        Some(Event::Push { route, body }) => {
            assert_eq!(route, "onSaid");
            let said: Said = events.decode_message(&body).unwrap();
            assert_eq!(said.text, "HI");
            assert_ne!(said.session, 0);
        }
        other => panic!("expected a push, got {other:?}"),
    }
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn errors_arrive_as_protobuf_with_code_msg_and_metadata() {
    let server = server().await;
    let (client, _events) = server.client().await;
    let join = JoinReq {
        name: "ana".into(),
        level: 1,
    };

    let err = within(
        5,
        client.request_message::<_, JoinAck>("game.proto.nope", &join),
    )
    .await
    .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, codes::NOT_FOUND);
    assert_eq!(payload.msg, "pitaya/handler: game.proto.nope not found");

    let err = within(
        5,
        client.request_message::<_, JoinAck>("game.proto.fail", &join),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.server_error(),
        Some(&PitayaError::new("GAME-001", "no such room").with_metadata("room", "7"))
    );

    // Field 1 announces 10 bytes, 3 follow: not a JoinReq.
    let err = within(
        5,
        client.request_raw("game.proto.join", &b"\x0a\x0aana"[..]),
    )
    .await
    .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, codes::BAD_REQUEST, "{err}");
    assert!(payload.msg.contains("proto.join"), "{err}");

    // The session is still fine.
    let ack: JoinAck = within(5, client.request_message("game.proto.join", &join))
        .await
        .unwrap();
    assert_eq!(ack.level, 2);
    client.close().await;
    server.stop().await;
}

/// Reads one packet: its type byte and body.
async fn read_packet(socket: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 4];
    within(5, socket.read_exact(&mut header)).await.unwrap();
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let mut body = vec![0u8; len];
    within(5, socket.read_exact(&mut body)).await.unwrap();
    (header[0], body)
}

#[tokio::test]
async fn error_bytes_on_the_wire_are_protos_error() {
    let server = server().await;
    let mut socket = TcpStream::connect(server.tcp_addr()).await.unwrap();
    // The handshake is always JSON, and announces the serializer.
    let hello = br#"{"sys":{"platform":"test"}}"#;
    let mut packet = vec![0x01, 0, 0, u8::try_from(hello.len()).unwrap()];
    packet.extend_from_slice(hello);
    socket.write_all(&packet).await.unwrap();
    let (kind, body) = read_packet(&mut socket).await;
    assert_eq!(kind, 0x01);
    let response: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(response["code"], 200);
    assert_eq!(response["sys"]["serializer"], "protobuf");
    socket.write_all(&[0x02, 0, 0, 0]).await.unwrap();

    // Request (flag 0x00), id 7, route "game.proto.fail", empty body.
    let route = b"game.proto.fail";
    let mut message = vec![0x00, 0x07, u8::try_from(route.len()).unwrap()];
    message.extend_from_slice(route);
    let mut packet = vec![0x04, 0, 0, u8::try_from(message.len()).unwrap()];
    packet.extend_from_slice(&message);
    socket.write_all(&packet).await.unwrap();

    let (kind, body) = read_packet(&mut socket).await;
    assert_eq!(kind, 0x04, "a data packet");
    // Response with the error flag (0x24), id 7, then protos.Error:
    // code (field 1) "GAME-001", msg (field 2) "no such room", one metadata
    // entry (field 3, 9 bytes: key "room", value "7").
    let mut expected = vec![0x24, 0x07, 0x0a, 0x08];
    expected.extend_from_slice(b"GAME-001");
    expected.extend_from_slice(&[0x12, 0x0c]);
    expected.extend_from_slice(b"no such room");
    expected.extend_from_slice(&[0x1a, 0x09, 0x0a, 0x04]);
    expected.extend_from_slice(b"room");
    expected.extend_from_slice(&[0x12, 0x01, b'7']);
    assert_eq!(body, expected);
    server.stop().await;
}

#[test]
fn the_route_table_pairs_components_with_the_serializer() {
    assert_eq!(Proto::PAYLOAD, PayloadFormat::Protobuf);
    assert_eq!(Lobby::PAYLOAD, PayloadFormat::Serde);
    let mut table = RouteTable::default();
    table.register(Proto).unwrap();
    assert_eq!(table.check_serializer(SerializerKind::Protobuf), Ok(()));
    let err = table.check_serializer(SerializerKind::Json).unwrap_err();
    assert_eq!(err.component, "proto");
    assert_eq!(err.payload, PayloadFormat::Protobuf);

    table.register(Lobby).unwrap();
    let err = table
        .check_serializer(SerializerKind::Protobuf)
        .unwrap_err();
    assert_eq!(err.route, "lobby.list");
    assert_eq!(err.serializer, SerializerKind::Protobuf);
}

//! The client against a scripted fake server.
// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ServerConn, TestServer, Transport, bounded, ok_json};
use futures::StreamExt;
use pitaya_client::{Client, Error, Event};
use pitaya_protocol::codec::{
    HandshakeRequest, HandshakeResponse, Message, MessageType, Packet, PacketType,
};
use pitaya_protocol::error::codes;
use pitaya_protocol::{PitayaError, Serializer, SerializerKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Join {
    name: String,
    level: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Joined {
    ok: bool,
    players: Vec<String>,
}

fn joined() -> Joined {
    Joined {
        ok: true,
        players: vec!["ana".into(), "bob".into()],
    }
}

/// Runs `script` as the server of one connection.
async fn serve<F, Fut>(server: TestServer, script: F) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(ServerConn) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let conn = server.accept().await;
        script(conn).await;
    })
}

/// Checks the request bytes and answers a JSON `Joined`.
async fn answer_join(conn: &mut ServerConn, expected_id: u64) {
    let message = conn.recv_message().await;
    assert_eq!(message.kind, MessageType::Request);
    assert_eq!(message.id, expected_id);
    assert_eq!(message.route, "room.room.join");
    let join: Join = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(join.name, "ana");
    conn.reply(message.id, serde_json::to_vec(&joined()).unwrap())
        .await;
}

fn ana() -> Join {
    Join {
        name: "ana".into(),
        level: 3,
    }
}

#[tokio::test]
async fn handshake_sends_default_sys_and_user() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = serve(server, |mut conn| async move {
            let body = conn
                .handshake(&HandshakeResponse::ok(Duration::from_secs(30), BTreeMap::new(), "json"))
                .await;
            tx.send(body).unwrap();
            conn.wait_closed().await;
        })
        .await;

        let mut user = serde_json::Map::new();
        user.insert("name".into(), json!("ana"));
        user.insert("age".into(), json!(30));
        let (client, _events) = Client::builder().handshake_user(&user).connect(&endpoint).await.unwrap();
        let body = rx.await.unwrap();
        let expected = format!(
            r#"{{"sys":{{"platform":"rust","libVersion":"pitaya-rs-{}","clientBuildNumber":"1","clientVersion":"0.1"}},"user":{{"age":30,"name":"ana"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
        assert_eq!(client.handshake_response().sys.heartbeat, Duration::from_secs(30));
        assert_eq!(client.serializer(), SerializerKind::Json);
        assert!(client.is_connected());
        assert_eq!(client.endpoint().to_string(), endpoint);
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn custom_handshake_is_sent_as_is() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            let body = conn.handshake_json().await;
            assert_eq!(
                HandshakeRequest::decode(&body).unwrap(),
                HandshakeRequest::go_client_default()
            );
            conn.wait_closed().await;
        })
        .await;
        let (client, _events) = Client::builder()
            .handshake(HandshakeRequest::go_client_default())
            .connect(endpoint)
            .await
            .unwrap();
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn typed_requests_over_json_use_ids_from_one() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            // The exact bytes of the first request.
            let body = conn.recv_data().await.unwrap();
            let mut expected = vec![0x00, 0x01, 14];
            expected.extend_from_slice(b"room.room.join");
            expected.extend_from_slice(br#"{"name":"ana","level":3}"#);
            assert_eq!(&body[..], &expected[..]);
            conn.reply(1, serde_json::to_vec(&joined()).unwrap()).await;
            answer_join(&mut conn, 2).await;
            conn.wait_closed().await;
        })
        .await;

        let (client, _events) = Client::connect(&endpoint).await.unwrap();
        let first: Joined = client.request("room.room.join", &ana()).await.unwrap();
        assert_eq!(first, joined());
        let second: serde_json::Value = client.request("room.room.join", &ana()).await.unwrap();
        assert_eq!(second, json!({"ok": true, "players": ["ana", "bob"]}));
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn concurrent_requests_answered_out_of_order() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let mut ids = Vec::new();
            for _ in 0..20 {
                ids.push(conn.recv_message().await.id);
            }
            for id in ids.into_iter().rev() {
                conn.reply(id, format!("{id}")).await;
            }
            conn.wait_closed().await;
        })
        .await;

        let (client, _events) = Client::connect(&endpoint).await.unwrap();
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(
                    async move { client.request_raw("a.b.c", Bytes::new()).await.unwrap() },
                )
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            let body = call.await.unwrap();
            answers.push(std::str::from_utf8(&body).unwrap().parse::<u64>().unwrap());
        }
        answers.sort_unstable();
        assert_eq!(answers, (1..=20).collect::<Vec<_>>());
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn follows_a_msgpack_server_and_explicit_setting_wins() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = tokio::spawn(async move {
            let mut conn = server.accept().await;
            conn.handshake(&HandshakeResponse::ok(
                Duration::ZERO,
                BTreeMap::new(),
                "msgpack",
            ))
            .await;
            let message = conn.recv_message().await;
            let join: Join = SerializerKind::MessagePack
                .deserialize(&message.body)
                .unwrap();
            assert_eq!(join, ana());
            let reply = SerializerKind::MessagePack.serialize(&joined()).unwrap();
            conn.reply(message.id, reply).await;
            // Errors are msgpack too.
            let message = conn.recv_message().await;
            let err = PitayaError::new("RH-001", "full").with_metadata("room", "7");
            let body = SerializerKind::MessagePack.serialize(&err).unwrap();
            conn.send_message(&Message::error_response(message.id, body))
                .await;
            conn.wait_closed().await;

            // The second client insists on JSON.
            let mut conn = server.accept().await;
            conn.handshake(&HandshakeResponse::ok(
                Duration::ZERO,
                BTreeMap::new(),
                "msgpack",
            ))
            .await;
            let message = conn.recv_message().await;
            assert_eq!(&message.body[..], br#"{"name":"ana","level":3}"#);
            conn.reply(message.id, &b"true"[..]).await;
            conn.wait_closed().await;
        });

        let (client, events) = Client::connect(&endpoint).await.unwrap();
        assert_eq!(client.serializer(), SerializerKind::MessagePack);
        assert_eq!(events.serializer(), SerializerKind::MessagePack);
        let answer: Joined = client.request("room.room.join", &ana()).await.unwrap();
        assert_eq!(answer, joined());
        let err = client
            .request::<_, Joined>("room.room.join", &ana())
            .await
            .unwrap_err();
        assert_eq!(
            err.server_error(),
            Some(&PitayaError::new("RH-001", "full").with_metadata("room", "7"))
        );
        client.close().await;

        let (client, _events) = Client::builder()
            .serializer(SerializerKind::Json)
            .connect(&endpoint)
            .await
            .unwrap();
        assert_eq!(client.serializer(), SerializerKind::Json);
        let ok: bool = client.request("room.room.join", &ana()).await.unwrap();
        assert!(ok);
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

/// Prost messages, with the prost the client re-exports (no prost
/// dependency of our own).
#[derive(Clone, PartialEq, pitaya_client::prost::Message)]
#[prost(prost_path = "::pitaya_client::prost")]
struct JoinMsg {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    level: u32,
}

#[derive(Clone, PartialEq, pitaya_client::prost::Message)]
#[prost(prost_path = "::pitaya_client::prost")]
struct JoinedMsg {
    #[prost(string, repeated, tag = "1")]
    players: Vec<String>,
}

#[tokio::test]
async fn follows_a_protobuf_server_with_prost_messages_and_protobuf_errors() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake(&HandshakeResponse::ok(
                Duration::ZERO,
                BTreeMap::new(),
                "protobuf",
            ))
            .await;
            // JoinMsg { name: "ana", level: 3 }.
            let message = conn.recv_message().await;
            assert_eq!(message.kind, MessageType::Request);
            assert_eq!(&message.body[..], b"\x0a\x03ana\x10\x03");
            // JoinedMsg { players: ["ana", "bob"] }.
            conn.reply(message.id, &b"\x0a\x03ana\x0a\x03bob"[..]).await;

            // protos.Error { code: "RH-001", msg: "full", metadata: {room: 7} }
            // as Go's proto.Marshal writes it.
            let message = conn.recv_message().await;
            let body = b"\x0a\x06RH-001\x12\x04full\x1a\x09\x0a\x04room\x12\x017";
            conn.send_message(&Message::error_response(message.id, &body[..]))
                .await;

            // A notify, then a push answering it.
            let message = conn.recv_message().await;
            assert_eq!(message.kind, MessageType::Notify);
            assert_eq!(message.route, "room.room.say");
            assert_eq!(&message.body[..], b"\x0a\x02hi");
            conn.send_message(&Message::push("onJoined", &b"\x0a\x02hi"[..]))
                .await;

            // An undecodable error payload keeps its text.
            let message = conn.recv_message().await;
            conn.send_message(&Message::error_response(
                message.id,
                &b"\xff not protobuf"[..],
            ))
            .await;
            conn.wait_closed().await;
        })
        .await;

        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        assert_eq!(client.serializer(), SerializerKind::Protobuf);
        assert_eq!(events.serializer(), SerializerKind::Protobuf);
        let join = JoinMsg {
            name: "ana".into(),
            level: 3,
        };
        let joined: JoinedMsg = client
            .request_message("room.room.join", &join)
            .await
            .unwrap();
        assert_eq!(joined.players, ["ana", "bob"]);

        let err = client
            .request_message::<_, JoinedMsg>("room.room.join", &join)
            .await
            .unwrap_err();
        assert_eq!(
            err.server_error(),
            Some(&PitayaError::new("RH-001", "full").with_metadata("room", "7"))
        );
        assert_eq!(err.code(), "RH-001");

        // serde values cannot go over protobuf: refused before sending.
        let err = client
            .request::<_, Joined>("room.room.join", &ana())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Serializer(_)), "{err:?}");
        assert!(err.to_string().contains("encode_message"), "{err}");
        assert!(client.notify("room.room.say", &json!({})).await.is_err());

        client
            .notify_message(
                "room.room.say",
                &JoinMsg {
                    name: "hi".into(),
                    level: 0,
                },
            )
            .await
            .unwrap();
        let event = events.next().await.unwrap();
        let pushed: JoinMsg = event
            .decode_message(SerializerKind::Protobuf)
            .unwrap()
            .unwrap();
        assert_eq!(pushed.name, "hi");
        let Event::Push { route, body } = event else {
            panic!("expected a push");
        };
        assert_eq!(route, "onJoined");
        assert_eq!(events.decode_message::<JoinMsg>(&body).unwrap(), pushed);
        assert_eq!(client.decode_message::<JoinMsg>(&body).unwrap(), pushed);
        assert!(events.decode::<serde_json::Value>(&body).is_err());

        let err = client
            .request_raw("room.room.join", &b""[..])
            .await
            .unwrap_err();
        let server = err.server_error().unwrap();
        assert_eq!(server.code, "");
        assert_eq!(server.msg, String::from_utf8_lossy(b"\xff not protobuf"));
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn prost_messages_are_refused_on_a_json_session() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            conn.wait_closed().await;
        })
        .await;
        let (client, events) = Client::connect(&endpoint).await.unwrap();
        let err = client
            .request_message::<_, JoinedMsg>("room.room.join", &JoinMsg::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Serializer(_)), "{err:?}");
        assert!(
            client
                .notify_message("room.room.say", &JoinMsg::default())
                .await
                .is_err()
        );
        assert!(client.decode_message::<JoinMsg>(b"").is_err());
        assert!(events.decode_message::<JoinMsg>(b"").is_err());
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn error_responses_become_server_errors() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let message = conn.recv_message().await;
            let body = br#"{"code":"PIT-404","msg":"pitaya/handler: room.room.foo not found","metadata":{"route":"room.room.foo"}}"#;
            // Flag 0x24: a response with the error bit.
            conn.send(Packet::new(PacketType::Data, [&[0x24, u8::try_from(message.id).unwrap()][..], &body[..]].concat()))
                .await;
            let message = conn.recv_message().await;
            conn.send_message(&Message::error_response(message.id, &b"not a payload"[..]))
                .await;
            conn.wait_closed().await;
        })
        .await;

        let (client, _events) = Client::connect(&endpoint).await.unwrap();
        let err = client.request_raw("room.room.foo", &b"{}"[..]).await.unwrap_err();
        let Error::Server(server) = &err else {
            panic!("expected a server error, got {err:?}");
        };
        assert_eq!(server.code, "PIT-404");
        assert_eq!(server.msg, "pitaya/handler: room.room.foo not found");
        assert_eq!(server.metadata.get("route").map(String::as_str), Some("room.room.foo"));
        assert_eq!(err.code(), "PIT-404");

        let err = client.request::<_, serde_json::Value>("room.room.bar", &json!({})).await.unwrap_err();
        let server = err.server_error().unwrap();
        assert_eq!(server.msg, "not a payload");
        assert_eq!(err.code(), codes::UNKNOWN);
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn compressed_bodies_are_inflated() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let big = json!({ "text": "z".repeat(2000) });
        let expected = big.clone();
        let task = serve(server, move |mut conn| async move {
            conn.handshake_json().await;
            conn.codec = conn.codec.clone().with_compression(true);
            let message = conn.recv_message().await;
            let body = serde_json::to_vec(&big).unwrap();
            let wire = conn
                .codec
                .encode_to_bytes(&Message::response(message.id, body.clone()))
                .unwrap();
            assert_eq!(wire[0], 0x14, "response with the compressed-body flag");
            assert!(wire.len() < body.len() / 4);
            conn.reply(message.id, body.clone()).await;
            conn.send_message(&Message::push("onBig", body)).await;
            conn.wait_closed().await;
        })
        .await;

        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        let answer: serde_json::Value = client.request("a.b.c", &json!({})).await.unwrap();
        assert_eq!(answer, expected);
        let Some(Event::Push { route, body }) = events.next().await else {
            panic!("expected a push");
        };
        assert_eq!(route, "onBig");
        assert_eq!(events.decode::<serde_json::Value>(&body).unwrap(), expected);
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn client_compression_is_off_by_default_and_can_be_enabled() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let body = "y".repeat(1000);
        let sent = body.clone();
        let task = tokio::spawn(async move {
            for compressed in [false, true] {
                let mut conn = server.accept().await;
                conn.handshake_json().await;
                let raw = conn.recv_data().await.unwrap();
                assert_eq!(raw[0] & 0x10 != 0, compressed);
                let message = conn.codec.decode(raw).unwrap();
                assert_eq!(message.body, sent.as_bytes());
                conn.wait_closed().await;
            }
        });
        for compressed in [false, true] {
            let (client, _events) = Client::builder()
                .compression(compressed)
                .connect(&endpoint)
                .await
                .unwrap();
            client.notify_raw("a.b.c", body.clone()).await.unwrap();
            client.close().await;
        }
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn dictionary_routes_are_sent_as_codes() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let dict = BTreeMap::from([
            ("room.room.join".to_owned(), 7),
            ("onMessage".to_owned(), 9),
        ]);
        let response = HandshakeResponse::ok(Duration::ZERO, dict, "json");
        let task = serve(server, move |mut conn| async move {
            conn.handshake(&response).await;
            let raw = conn.recv_data().await.unwrap();
            assert_eq!(&raw[..], &[0x01, 0x01, 0x00, 0x07, b'{', b'}']);
            conn.reply(1, &b"1"[..]).await;
            let raw = conn.recv_data().await.unwrap();
            assert_eq!(&raw[..], &[0x03, 0x00, 0x07, b'2']);
            // A route outside the dictionary stays a string.
            let raw = conn.recv_data().await.unwrap();
            assert_eq!(&raw[..], &[0x02, 0x03, b'a', b'.', b'b', b'3']);
            // A push with a route code.
            conn.send(Packet::new(PacketType::Data, &[0x07, 0x00, 0x09, b'4'][..]))
                .await;
            conn.wait_closed().await;
        })
        .await;

        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        assert_eq!(client.handshake_response().sys.dict.len(), 2);
        let one: u32 = client.request("room.room.join", &json!({})).await.unwrap();
        assert_eq!(one, 1);
        client.notify("room.room.join", &2).await.unwrap();
        client.notify("a.b", &3).await.unwrap();
        let event = events.next().await.unwrap();
        assert_eq!(
            event.decode::<u32>(SerializerKind::Json).unwrap().unwrap(),
            4
        );
        let Event::Push { route, .. } = event else {
            panic!("expected a push");
        };
        assert_eq!(route, "onMessage");
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn notify_bytes_on_the_wire() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let packet = conn.recv().await.unwrap();
            let mut expected = vec![0x04, 0x00, 0x00, 0x1d, 0x02, 14];
            expected.extend_from_slice(b"room.room.chat");
            expected.extend_from_slice(br#"{"text":"hi"}"#);
            assert_eq!(&packet.to_bytes().unwrap()[..], &expected[..]);
            let raw = conn.recv_data().await.unwrap();
            assert_eq!(&raw[..], b"\x02\x03a.braw bytes");
            conn.wait_closed().await;
        })
        .await;
        let (client, _events) = Client::connect(&endpoint).await.unwrap();
        client
            .notify("room.room.chat", &json!({"text": "hi"}))
            .await
            .unwrap();
        client.notify_raw("a.b", &b"raw bytes"[..]).await.unwrap();
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn pushes_arrive_in_order_before_later_responses() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let message = conn.recv_message().await;
            for i in 0..100 {
                conn.send_message(&Message::push(format!("on{}", i % 3), format!("{i}")))
                    .await;
            }
            conn.reply(message.id, &b"\"done\""[..]).await;
            conn.wait_closed().await;
        })
        .await;
        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        let done: String = client.request("a.b.c", &()).await.unwrap();
        assert_eq!(done, "done");
        for i in 0..100 {
            match events.next().await.unwrap() {
                Event::Push { route, body } => {
                    assert_eq!(route, format!("on{}", i % 3));
                    assert_eq!(events.decode::<u32>(&body).unwrap(), i);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        client.close().await;
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected { reason: None })
        ));
        assert!(events.next().await.is_none());
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn full_event_buffer_drops_pushes_but_not_responses() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let message = conn.recv_message().await;
            for i in 0..10 {
                conn.send_message(&Message::push("onTick", format!("{i}")))
                    .await;
            }
            conn.reply(message.id, &b"1"[..]).await;
            conn.wait_closed().await;
        })
        .await;
        let (client, events) = Client::builder()
            .event_buffer(2)
            .connect(&endpoint)
            .await
            .unwrap();
        let one: u32 = client.request("a.b.c", &()).await.unwrap();
        assert_eq!(one, 1);
        client.close().await;
        let all: Vec<Event> = events.collect().await;
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(matches!(&all[0], Event::Push { body, .. } if &body[..] == b"0"));
        assert!(matches!(&all[1], Event::Push { body, .. } if &body[..] == b"1"));
        assert!(matches!(&all[2], Event::Disconnected { reason: None }));
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn kick_fails_pending_requests_and_ends_events() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let _ = conn.recv_message().await;
            conn.send_message(&Message::push("onBye", &b"\"bye\""[..]))
                .await;
            conn.send(Packet::kick()).await;
            conn.wait_closed().await;
        })
        .await;
        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        let err = client.request_raw("a.b.c", &b"{}"[..]).await.unwrap_err();
        assert!(matches!(err, Error::Kicked), "{err:?}");
        assert_eq!(err.code(), codes::CLIENT_CLOSED_REQUEST);
        assert!(matches!(events.next().await, Some(Event::Push { route, .. }) if route == "onBye"));
        assert!(matches!(events.next().await, Some(Event::Kicked)));
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected {
                reason: Some(Error::Kicked)
            })
        ));
        assert!(events.next().await.is_none());
        assert!(!client.is_connected());
        assert!(matches!(
            client.request_raw("a.b.c", Bytes::new()).await,
            Err(Error::Kicked)
        ));
        assert!(matches!(
            client.notify_raw("a.b.c", Bytes::new()).await,
            Err(Error::Kicked)
        ));
        drop(client);
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn server_closing_mid_request_fails_it_quickly() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let _ = conn.recv_message().await;
            drop(conn);
        })
        .await;
        let (client, mut events) = Client::builder()
            .request_timeout(Duration::from_secs(60))
            .connect(&endpoint)
            .await
            .unwrap();
        let started = Instant::now();
        let err = client.request_raw("a.b.c", Bytes::new()).await.unwrap_err();
        assert!(matches!(err, Error::Closed), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected {
                reason: Some(Error::Closed)
            })
        ));
        client.closed().await;
        assert!(matches!(
            client.request_raw("a.b.c", Bytes::new()).await,
            Err(Error::Closed)
        ));
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn request_timeout_is_pit_504_and_forgets_the_request() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let (timed_out_tx, timed_out_rx) = tokio::sync::oneshot::channel::<()>();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            let late = conn.recv_message().await;
            assert_eq!(late.id, 1);
            // Answer only after the client gave up: the answer is ignored.
            timed_out_rx.await.unwrap();
            conn.reply(late.id, &b"\"late\""[..]).await;
            let next = conn.recv_message().await;
            assert_eq!(next.id, 2);
            conn.reply(next.id, &b"\"on time\""[..]).await;
            conn.wait_closed().await;
        })
        .await;
        let (client, _events) = Client::builder()
            .request_timeout(Duration::from_millis(100))
            .connect(&endpoint)
            .await
            .unwrap();
        let err = client.request::<_, String>("room.room.slow", &()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Timeout { route, timeout } if route == "room.room.slow" && *timeout == Duration::from_millis(100)),
            "{err:?}"
        );
        assert_eq!(err.code(), "PIT-504");
        timed_out_tx.send(()).unwrap();
        let answer: String = client
            .request_timeout("room.room.fast", &(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(answer, "on time");
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn heartbeats_follow_the_announced_interval() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let interval = Duration::from_millis(200);
        let (beaten_tx, beaten_rx) = tokio::sync::oneshot::channel();
        let task = serve(server, move |mut conn| async move {
            conn.handshake(&HandshakeResponse::ok(interval, BTreeMap::new(), "json"))
                .await;
            let mut last = Instant::now();
            for _ in 0..3 {
                let packet = conn.recv().await.unwrap();
                assert_eq!(packet.kind, PacketType::Heartbeat);
                let gap = last.elapsed();
                assert!(gap >= Duration::from_millis(150), "heartbeat after {gap:?}");
                assert!(gap < Duration::from_secs(2), "heartbeat after {gap:?}");
                last = Instant::now();
                conn.send(Packet::heartbeat()).await;
            }
            beaten_tx.send(()).unwrap();
            let message = conn.recv_message().await;
            conn.reply(message.id, &b"1"[..]).await;
            conn.wait_closed().await;
        })
        .await;
        let (client, _events) = Client::connect(&endpoint).await.unwrap();
        assert_eq!(client.handshake_response().sys.heartbeat, interval);
        // After the three heartbeats the connection is alive and well.
        beaten_rx.await.unwrap();
        let one: u32 = client.request("a.b.c", &()).await.unwrap();
        assert_eq!(one, 1);
        assert!(client.is_connected());
        client.close().await;
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn silent_server_is_declared_dead_after_three_intervals() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let interval = Duration::from_millis(100);
        let task = serve(server, move |mut conn| async move {
            conn.handshake(&HandshakeResponse::ok(interval, BTreeMap::new(), "json"))
                .await;
            // Read (heartbeats) but never send anything.
            conn.wait_closed().await;
        })
        .await;
        let started = Instant::now();
        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        let pending = client.request_raw_timeout("a.b.c", Bytes::new(), Duration::from_secs(30));
        assert!(matches!(pending.await, Err(Error::Closed)));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        match events.next().await {
            Some(Event::Disconnected {
                reason: Some(Error::HeartbeatTimeout { silent_for }),
            }) => assert_eq!(silent_for, interval * 3),
            other => panic!("unexpected {other:?}"),
        }
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn refused_handshake_is_an_error() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = serve(server, |mut conn| async move {
            conn.handshake(&ok_json().refused()).await;
        })
        .await;
        let err = Client::connect(&endpoint).await.unwrap_err();
        assert!(matches!(err, Error::HandshakeRefused(400)), "{err:?}");
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn graceful_close_and_dropping_every_handle() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = tokio::spawn(async move {
            for _ in 0..2 {
                let mut conn = server.accept().await;
                conn.handshake_json().await;
                // Queued notifies are written before the connection closes.
                let message = conn.recv_message().await;
                assert_eq!(message.route, "a.b.last");
                conn.wait_closed().await;
            }
        });

        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        let other = client.clone();
        client.notify_raw("a.b.last", Bytes::new()).await.unwrap();
        client.close().await;
        assert!(!other.is_connected());
        assert!(matches!(
            other.request_raw("a.b.c", Bytes::new()).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected { reason: None })
        ));
        other.close().await;

        let (client, mut events) = Client::connect(&endpoint).await.unwrap();
        client.notify_raw("a.b.last", Bytes::new()).await.unwrap();
        drop(client);
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected { reason: None })
        ));
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn connecting_nowhere_fails() {
    bounded(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = Client::connect(format!("tcp://{addr}")).await.unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err:?}");
        let err = Client::connect("nonsense://x").await.unwrap_err();
        assert!(matches!(err, Error::InvalidEndpoint(_)), "{err:?}");
    })
    .await;
}

async fn basic_request_over(transport: Transport) {
    bounded(async {
        let server = TestServer::bind(transport).await;
        let endpoint = server.endpoint();
        let tls = server.tls_config();
        let task = serve(server, |mut conn| async move {
            conn.handshake_json().await;
            answer_join(&mut conn, 1).await;
            conn.send_message(&Message::push("onJoined", &b"{}"[..]))
                .await;
            conn.wait_closed().await;
        })
        .await;
        let (client, mut events) = Client::builder().tls(tls).connect(&endpoint).await.unwrap();
        let answer: Joined = client.request("room.room.join", &ana()).await.unwrap();
        assert_eq!(answer, joined());
        assert!(
            matches!(events.next().await, Some(Event::Push { route, .. }) if route == "onJoined")
        );
        client.close().await;
        assert!(matches!(
            events.next().await,
            Some(Event::Disconnected { reason: None })
        ));
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn request_over_websocket() {
    basic_request_over(Transport::Ws).await;
}

#[tokio::test]
async fn request_over_tls() {
    basic_request_over(Transport::Tls).await;
}

#[tokio::test]
async fn request_over_websocket_tls() {
    basic_request_over(Transport::Wss).await;
}

#[tokio::test]
async fn tls_with_the_wrong_ca_is_refused() {
    bounded(async {
        let server = TestServer::bind(Transport::Tls).await;
        let endpoint = server.endpoint();
        let other = TestServer::bind(Transport::Tls).await;
        let task = tokio::spawn(async move {
            // The TLS handshake fails on the client side.
            assert!(server.try_accept().await.is_none());
        });
        let err = Client::builder()
            .tls(other.tls_config())
            .connect(&endpoint)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        task.await.unwrap();
    })
    .await;
}

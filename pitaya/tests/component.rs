//! Runtime behaviour of the code `#[component]` generates: requests are
//! built by hand and sent through the route table's glue functions, and the
//! typed remote client goes through a fake `RemoteCaller`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitaya::Bytes;
use pitaya::codec::MessageCodec;
use pitaya::error::codes;
use pitaya::handler::{Component, HandlerKind, HandlerMeta, HandlerResult, Request, RouteEntry};
use pitaya::prelude::*;
use pitaya::remote::{RemoteCall, RemoteCaller, RemoteClient, RemoteFuture, Target};
use pitaya::session::SessionHub;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct JoinReq {
    name: String,
}

#[derive(Serialize)]
struct JoinAck {
    ok: bool,
    uid: String,
}

#[derive(Deserialize)]
struct ChatMsg {
    text: String,
}

#[derive(Serialize)]
struct Info {
    rooms: u32,
}

/// Remote arguments and replies are protobuf messages, as in Go Pitaya.
#[derive(Clone, PartialEq, prost::Message)]
struct MembersReq {
    #[prost(uint32, tag = "1")]
    room: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Members {
    #[prost(string, repeated, tag = "1")]
    names: Vec<String>,
}

/// An application error with its own code.
struct RoomError(&'static str);

impl From<RoomError> for PitayaError {
    fn from(err: RoomError) -> Self {
        PitayaError::new("RH-001", err.0).with_metadata("component", "room")
    }
}

#[derive(Default)]
struct Room {
    rooms: u32,
    chat: Mutex<Vec<String>>,
}

#[component]
impl Room {
    #[handler]
    async fn join(&self, session: &Session, req: JoinReq) -> Result<JoinAck, PitayaError> {
        session.bind(req.name).await?;
        Ok(JoinAck {
            ok: true,
            uid: session.uid().unwrap_or_default().to_owned(),
        })
    }

    #[handler]
    async fn chat(&self, session: &Session, msg: ChatMsg) {
        let line = format!("{}: {}", session.id(), msg.text);
        self.chat.lock().expect("chat lock").push(line);
    }

    #[handler(name = "getInfo")]
    async fn info(&self) -> Result<Info, RoomError> {
        if self.rooms == 0 {
            return Err(RoomError("no rooms"));
        }
        Ok(Info { rooms: self.rooms })
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        let mut reply = body.to_vec();
        reply.reverse();
        Bytes::from(reply)
    }

    #[handler]
    async fn raw_result(&self, ctx: &Context) -> Result<Bytes, PitayaError> {
        Ok(Bytes::from(ctx.route().as_bytes().to_vec()))
    }

    #[handler]
    async fn send_message(&self, ctx: &Context, text: String) -> String {
        format!("{} <- {text}", ctx.route())
    }

    #[remote]
    async fn members(&self, ctx: &Context, req: MembersReq) -> Result<Members, PitayaError> {
        Ok(Members {
            names: vec![format!("{}#{}", ctx.route(), req.room)],
        })
    }

    #[remote]
    async fn count(&self) -> u32 {
        self.rooms
    }

    #[remote]
    async fn reset(&self) {
        self.chat.lock().expect("chat lock").clear();
    }
}

fn route(method: &str) -> &'static RouteEntry<Room> {
    Room::ROUTES
        .iter()
        .find(|entry| entry.method == method)
        .unwrap_or_else(|| panic!("no route {method}"))
}

/// A session and its hub (which must outlive it: sessions only hold a weak
/// reference to it).
fn session(serializer: SerializerKind) -> (Arc<SessionHub>, Session) {
    let hub = SessionHub::new(MessageCodec::default(), serializer, 64, true);
    let session = hub.create(None);
    (hub, session)
}

async fn call_client(
    room: Room,
    session: &Session,
    method: &str,
    body: &'static [u8],
) -> HandlerResult {
    let request = Request::from_client(
        session.clone(),
        Context::new(format!("room.room.{method}")),
        Bytes::from_static(body),
    );
    (route(method).call)(Arc::new(room), request).await
}

fn json(reply: HandlerResult) -> serde_json::Value {
    let body = reply.expect("reply").expect("a request replies");
    serde_json::from_slice(&body).expect("json reply")
}

#[test]
fn name_routes_kinds_and_meta() {
    assert_eq!(Room::NAME, "room");
    let routes: Vec<_> = Room::ROUTES
        .iter()
        .map(|entry| {
            (
                entry.method,
                entry.kind,
                entry.meta.input,
                entry.meta.output,
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            (
                "join",
                HandlerKind::Request,
                Some("JoinReq"),
                Some("JoinAck")
            ),
            ("chat", HandlerKind::Notify, Some("ChatMsg"), None),
            ("getInfo", HandlerKind::Request, None, Some("Info")),
            ("raw", HandlerKind::Request, Some("Bytes"), Some("Bytes")),
            ("rawResult", HandlerKind::Request, None, Some("Bytes")),
            (
                "sendMessage",
                HandlerKind::Request,
                Some("String"),
                Some("String")
            ),
            (
                "members",
                HandlerKind::Remote,
                Some("MembersReq"),
                Some("Members")
            ),
            ("count", HandlerKind::Remote, None, Some("u32")),
            ("reset", HandlerKind::Remote, None, None),
        ]
    );
    assert_eq!(
        route("getInfo").meta,
        HandlerMeta {
            input: None,
            output: Some("Info")
        }
    );
}

#[tokio::test]
async fn request_decodes_the_payload_and_encodes_the_reply() {
    let (_hub, session) = session(SerializerKind::Json);
    let reply = call_client(Room::default(), &session, "join", br#"{"name":"alice"}"#).await;
    assert_eq!(
        reply.unwrap().unwrap(),
        Bytes::from_static(br#"{"ok":true,"uid":"alice"}"#)
    );
    assert_eq!(session.uid(), Some("alice"));
}

#[tokio::test]
async fn a_bad_payload_is_pit_400() {
    let (_hub, session) = session(SerializerKind::Json);
    let err = call_client(Room::default(), &session, "join", br#"{"nom":1}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.msg.contains("room.room.join"), "{err}");
    assert_eq!(session.uid(), None, "the handler did not run");

    let err = call_client(Room::default(), &session, "sendMessage", b"not json")
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
}

#[tokio::test]
async fn handler_errors_pass_through_into_pitaya_error() {
    let (_hub, session) = session(SerializerKind::Json);
    let err = call_client(Room::default(), &session, "getInfo", b"")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PitayaError::new("RH-001", "no rooms").with_metadata("component", "room")
    );

    let ok = call_client(
        Room {
            rooms: 3,
            ..Room::default()
        },
        &session,
        "getInfo",
        b"",
    )
    .await;
    assert_eq!(json(ok), serde_json::json!({"rooms": 3}));

    // An error from an extractor or from `?` inside the handler.
    session.bind("bob").await.unwrap();
    let err = call_client(Room::default(), &session, "join", br#"{"name":"carol"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST, "already bound: {err}");
}

#[tokio::test]
async fn notify_runs_and_returns_none() {
    let (_hub, session) = session(SerializerKind::Json);
    let room = Arc::new(Room::default());
    let request = Request::from_client(
        session.clone(),
        Context::new("room.room.chat"),
        Bytes::from_static(br#"{"text":"hi"}"#),
    );
    let reply = (route("chat").call)(Arc::clone(&room), request).await;
    assert_eq!(reply, Ok(None));
    assert_eq!(
        *room.chat.lock().unwrap(),
        [format!("{}: hi", session.id())]
    );
}

#[tokio::test]
async fn raw_bytes_in_and_out() {
    let (_hub, session) = session(SerializerKind::Json);
    let reply = call_client(Room::default(), &session, "raw", b"\x01\x02not-json").await;
    assert_eq!(reply, Ok(Some(Bytes::from_static(b"nosj-ton\x02\x01"))));

    let reply = call_client(Room::default(), &session, "rawResult", b"ignored").await;
    assert_eq!(reply, Ok(Some(Bytes::from_static(b"room.room.rawResult"))));
}

#[tokio::test]
async fn plain_return_values_and_context_extraction() {
    let (_hub, session) = session(SerializerKind::Json);
    let reply = call_client(Room::default(), &session, "sendMessage", br#""hello""#).await;
    assert_eq!(
        json(reply),
        serde_json::json!("room.room.sendMessage <- hello")
    );
}

#[tokio::test]
async fn replies_use_the_session_serializer() {
    let (_hub, session) = session(SerializerKind::MessagePack);
    let body = pitaya::Serializer::serialize(
        &SerializerKind::MessagePack,
        &serde_json::json!({"name": "dave"}),
    )
    .unwrap();
    let request = Request::from_client(
        session.clone(),
        Context::new("room.room.join"),
        Bytes::from(body),
    );
    let reply = (route("join").call)(Arc::new(Room::default()), request)
        .await
        .unwrap()
        .unwrap();
    let ack: serde_json::Value =
        pitaya::Serializer::deserialize(&SerializerKind::MessagePack, &reply).unwrap();
    assert_eq!(ack, serde_json::json!({"ok": true, "uid": "dave"}));
}

#[tokio::test]
async fn a_client_extractor_without_a_session_fails_cleanly() {
    let request = Request::remote(
        Context::new("room.room.join"),
        Bytes::from_static(br#"{"name":"x"}"#),
        SerializerKind::Json,
    );
    let err = (route("join").call)(Arc::new(Room::default()), request)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::INTERNAL);
}

#[tokio::test]
async fn remote_glue_decodes_and_replies_in_protobuf() {
    // Field 1, varint 7: `MembersReq { room: 7 }`, whatever the app's
    // serializer.
    let request = Request::remote(
        Context::new("room.room.members"),
        Bytes::from_static(&[0x08, 0x07]),
        SerializerKind::Json,
    );
    let reply = (route("members").call)(Arc::new(Room::default()), request)
        .await
        .unwrap()
        .unwrap();
    let mut expected = vec![0x0a, 19];
    expected.extend_from_slice(b"room.room.members#7");
    assert_eq!(&reply[..], &expected[..]);

    // A remote returning `()` still replies (`google.protobuf.Empty`: no
    // bytes), so its client can decode it.
    let request = Request::remote(
        Context::new("room.room.reset"),
        Bytes::new(),
        SerializerKind::Json,
    );
    let reply = (route("reset").call)(Arc::new(Room::default()), request).await;
    assert_eq!(reply, Ok(Some(Bytes::new())));

    // An argument that is not a `MembersReq` is a PIT-400.
    let request = Request::remote(
        Context::new("room.room.members"),
        Bytes::from_static(br#"{"room":7}"#),
        SerializerKind::Json,
    );
    let err = (route("members").call)(Arc::new(Room::default()), request)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.msg.contains("room.room.members"), "{err:?}");
}

/// A `RemoteCaller` that records each call and serves it with the
/// component's own route table, as the in-process router would.
struct FakeCaller {
    room: Arc<Room>,
    calls: Mutex<Vec<RemoteCall>>,
}

impl RemoteCaller for FakeCaller {
    fn call(&self, call: RemoteCall) -> RemoteFuture {
        self.calls.lock().expect("calls lock").push(call.clone());
        let RemoteCall { route, body, .. } = call;
        let method = route.rsplit('.').next().unwrap_or_default().to_owned();
        let room = Arc::clone(&self.room);
        Box::pin(async move {
            let entry = Room::ROUTES
                .iter()
                .find(|entry| entry.method == method && entry.kind == HandlerKind::Remote)
                .ok_or_else(|| PitayaError::new(codes::NOT_FOUND, route.clone()))?;
            let request = Request::remote(Context::new(route), body, SerializerKind::Json);
            let reply = (entry.call)(room, request).await?;
            Ok(reply.unwrap_or_default())
        })
    }
}

#[tokio::test]
async fn remote_stub_calls_through_the_remote_client() {
    let caller = Arc::new(FakeCaller {
        room: Arc::new(Room {
            rooms: 5,
            ..Room::default()
        }),
        calls: Mutex::new(Vec::new()),
    });
    let client = RemoteClient::new(
        Arc::clone(&caller) as Arc<dyn RemoteCaller>,
        Target::ServerType("room".to_owned()),
    )
    .with_timeout(Duration::from_secs(1));
    let stub = RoomRemote::new(client.clone());

    let members = stub.members(&MembersReq { room: 7 }).await.unwrap();
    assert_eq!(
        members,
        Members {
            names: vec!["room.room.members#7".to_owned()]
        }
    );
    assert_eq!(stub.count().await, Ok(5));
    assert_eq!(stub.reset().await, Ok(()));

    {
        let calls = caller.calls.lock().unwrap();
        let routes: Vec<_> = calls.iter().map(|call| call.route.as_str()).collect();
        assert_eq!(
            routes,
            ["room.room.members", "room.room.count", "room.room.reset"]
        );
        assert_eq!(calls[0].target, Target::ServerType("room".to_owned()));
        assert_eq!(calls[0].body, Bytes::from_static(&[0x08, 0x07]), "protobuf");
        assert_eq!(
            calls[1].body,
            Bytes::new(),
            "no payload sends an empty message"
        );
        assert_eq!(calls[0].timeout, Some(Duration::from_secs(1)));
        assert!(calls[0].context.is_none());
    }

    // A client given the handler's context propagates its metadata.
    let ctx = Context::new("connector.lobby.join").with_value("match", "m-7");
    RoomRemote::new(client.with_context(&ctx))
        .reset()
        .await
        .unwrap();
    let calls = caller.calls.lock().unwrap();
    let context = calls[3].context.as_ref().unwrap();
    assert_eq!(context.get("match"), Some(&serde_json::json!("m-7")));
}

#[tokio::test]
async fn remote_stub_reports_remote_errors() {
    struct Failing;
    impl RemoteCaller for Failing {
        fn call(&self, call: RemoteCall) -> RemoteFuture {
            Box::pin(async move { Err(PitayaError::new("RH-404", call.route)) })
        }
    }
    let stub = RoomRemote::new(RemoteClient::new(
        Arc::new(Failing),
        Target::ServerId {
            server_type: "rooms".to_owned(),
            id: "r-1".to_owned(),
        },
    ));
    let err = stub.members(&MembersReq { room: 1 }).await.unwrap_err();
    assert_eq!(err, PitayaError::new("RH-404", "rooms.room.members"));
}

/// A component speaking Go Pitaya's protobuf serializer.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoJoin {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAck {
    #[prost(string, tag = "1")]
    uid: String,
    #[prost(uint32, tag = "2")]
    members: u32,
}

struct ProtoRoom;

#[component(name = "room", serializer = "protobuf")]
impl ProtoRoom {
    #[handler]
    async fn join(&self, session: &Session, req: ProtoJoin) -> Result<ProtoAck, PitayaError> {
        session.bind(req.name).await?;
        Ok(ProtoAck {
            uid: session.uid().unwrap_or_default().to_owned(),
            members: 1,
        })
    }

    #[handler]
    async fn route(&self, ctx: &Context) -> String {
        ctx.route().to_owned()
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }
}

async fn call_proto(session: &Session, method: &str, body: &'static [u8]) -> HandlerResult {
    let entry = ProtoRoom::ROUTES
        .iter()
        .find(|entry| entry.method == method)
        .unwrap_or_else(|| panic!("no route {method}"));
    let request = Request::from_client(
        session.clone(),
        Context::new(format!("room.room.{method}")),
        Bytes::from_static(body),
    );
    (entry.call)(Arc::new(ProtoRoom), request).await
}

#[test]
fn components_state_their_payload_format() {
    use pitaya::handler::PayloadFormat;
    assert_eq!(ProtoRoom::PAYLOAD, PayloadFormat::Protobuf);
    assert_eq!(Room::PAYLOAD, PayloadFormat::Serde);
}

#[tokio::test]
async fn protobuf_component_decodes_and_replies_prost_messages() {
    let (_hub, session) = session(SerializerKind::Protobuf);
    // ProtoJoin { name: "ana" }: field 1, length 3.
    let reply = call_proto(&session, "join", b"\x0a\x03ana").await;
    // ProtoAck { uid: "ana", members: 1 }.
    assert_eq!(reply, Ok(Some(Bytes::from_static(b"\x0a\x03ana\x10\x01"))));
    assert_eq!(session.uid(), Some("ana"));

    // A prost wrapper reply (`google.protobuf.StringValue`: field 1).
    let reply = call_proto(&session, "route", b"").await.unwrap().unwrap();
    let mut expected = vec![0x0a, 15];
    expected.extend_from_slice(b"room.room.route");
    assert_eq!(&reply[..], &expected[..]);

    // Raw bytes pass untouched.
    let reply = call_proto(&session, "raw", b"\xff\x00 anything").await;
    assert_eq!(reply, Ok(Some(Bytes::from_static(b"\xff\x00 anything"))));
}

#[tokio::test]
async fn protobuf_component_answers_a_malformed_payload_with_pit_400() {
    let (_hub, session) = session(SerializerKind::Protobuf);
    // Field 1, length 10, but only 3 bytes follow.
    let err = call_proto(&session, "join", b"\x0a\x0aana")
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.msg.contains("room.room.join"), "{err}");
    assert!(err.msg.contains("protobuf decode"), "{err}");
    assert_eq!(session.uid(), None, "the handler did not run");
}

#[tokio::test]
async fn serializer_mismatches_fail_the_call_with_a_clear_error() {
    // A protobuf component on a JSON session: the payload cannot be read.
    let (_json_hub, json) = session(SerializerKind::Json);
    let err = call_proto(&json, "join", br#"{"name":"ana"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.msg.contains("not prost messages"), "{err}");
    // ... nor the reply written.
    let err = call_proto(&json, "route", b"").await.unwrap_err();
    assert_eq!(err.code, codes::INTERNAL);
    assert!(
        err.msg.starts_with("encoding the reply: json encode"),
        "{err}"
    );

    // A serde component on a protobuf session.
    let (_proto_hub, proto) = session(SerializerKind::Protobuf);
    let err = call_client(Room::default(), &proto, "join", b"\x0a\x03ana")
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.msg.contains("encodes prost messages"), "{err}");
}

#[test]
fn pushes_match_the_session_serializer() {
    let (_proto_hub, proto) = session(SerializerKind::Protobuf);
    let err = proto
        .push("onChat", &serde_json::json!({"text": "hi"}))
        .unwrap_err();
    assert!(err.to_string().contains("push_message"), "{err}");
    proto
        .push_message(
            "onChat",
            &ProtoAck {
                uid: "a".into(),
                members: 2,
            },
        )
        .unwrap();
    proto
        .push_raw("onChat", Bytes::from_static(b"\x08\x01"))
        .unwrap();

    let (_json_hub, json) = session(SerializerKind::Json);
    let err = json
        .push_message("onChat", &ProtoAck::default())
        .unwrap_err();
    assert!(err.to_string().contains("Session::push"), "{err}");
    json.push("onChat", &serde_json::json!({"text": "hi"}))
        .unwrap();
}

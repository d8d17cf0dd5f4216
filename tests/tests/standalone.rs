//! The standalone server end to end: real sockets, real clients.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use pitaya::app::AppHandle;
use pitaya::prelude::*;
use pitaya_client::{Error as ClientError, Event};
use pitaya_tests::{TestServer, within};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sleep {
    ms: u64,
    tag: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Bind {
    uid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Push {
    uid: String,
    text: String,
}

#[derive(Default)]
struct Game {
    notified: Arc<AtomicU64>,
}

#[component(name = "game")]
impl Game {
    #[handler]
    async fn echo(&self, body: Value) -> Result<Value, PitayaError> {
        Ok(body)
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }

    #[handler]
    async fn fail(&self) -> Result<Value, PitayaError> {
        Err(PitayaError::new("GAME-001", "no such room").with_metadata("room", "7"))
    }

    #[handler]
    async fn boom(&self) -> Result<Value, PitayaError> {
        panic!("handler exploded")
    }

    #[handler]
    async fn sleep(&self, request: Sleep) -> Result<Sleep, PitayaError> {
        tokio::time::sleep(Duration::from_millis(request.ms)).await;
        Ok(request)
    }

    #[handler]
    async fn ping(&self, session: &Session) {
        self.notified.fetch_add(1, Ordering::SeqCst);
        let _ = session.push("onPong", &json!({"pong": true}));
    }

    #[handler]
    async fn bind(&self, session: &Session, request: Bind) -> Result<Value, PitayaError> {
        session.bind(request.uid).await?;
        Ok(json!({"bound": session.uid()}))
    }

    #[handler]
    async fn whoami(&self, session: &Session) -> Result<Value, PitayaError> {
        Ok(json!({"id": session.id(), "uid": session.uid()}))
    }

    #[handler]
    async fn remember(&self, session: &Session, value: Value) -> Result<Value, PitayaError> {
        session.set("memory", &value)?;
        Ok(json!({"ok": true}))
    }

    #[handler]
    async fn recall(&self, session: &Session) -> Result<Value, PitayaError> {
        Ok(session.get::<Value>("memory")?.unwrap_or(Value::Null))
    }

    #[handler]
    async fn push_to(&self, app: &AppHandle, request: Push) -> Result<Value, PitayaError> {
        let delivery = app
            .push(
                Audience::uid(&request.uid),
                "onText",
                &json!({"text": request.text}),
            )
            .await?;
        if !delivery.unreachable.is_empty() {
            return Err(PitayaError::new(
                codes::NOT_FOUND,
                format!("{} is not connected", request.uid),
            ));
        }
        Ok(json!({"sent": delivery.delivered}))
    }

    #[handler]
    async fn flood(&self, session: &Session, count: u64) -> Result<u64, PitayaError> {
        let mut sent = 0;
        for index in 0..count {
            if session
                .push(
                    "onFlood",
                    &json!({"index": index, "padding": "x".repeat(512)}),
                )
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    #[handler]
    async fn announce(&self, session: &Session) -> Result<Value, PitayaError> {
        session.push("onFirst", &json!(1))?;
        session.push("onSecond", &json!(2))?;
        Ok(json!("done"))
    }

    #[handler]
    async fn kick_me(&self, session: &Session) -> Result<Value, PitayaError> {
        session.kick();
        Ok(json!({"kicking": true}))
    }

    #[handler]
    async fn join(&self, session: &Session, app: &AppHandle) -> Result<Vec<String>, PitayaError> {
        let groups = app.groups();
        groups.get_or_create("lobby").await?;
        groups.add_session("lobby", session).await?;
        app.push(
            Audience::group("lobby"),
            "onJoin",
            &json!({"uid": session.uid()}),
        )
        .await?;
        Ok(groups.members("lobby").await?)
    }

    #[handler]
    async fn lobby(&self, app: &AppHandle) -> Result<Vec<String>, PitayaError> {
        Ok(app.groups().members("lobby").await.unwrap_or_default())
    }
}

async fn server() -> TestServer {
    TestServer::start(|app| app.register(Game::default())).await
}

async fn next_push(events: &mut pitaya_client::Events) -> (String, Value) {
    match within(5, events.next()).await {
        Some(Event::Push { route, body }) => (route, serde_json::from_slice(&body).unwrap()),
        other => panic!("expected a push, got {other:?}"),
    }
}

#[tokio::test]
async fn request_response_over_every_transport() {
    let server = server().await;
    for endpoint in [&server.tcp, &server.ws, &server.tls, &server.wss] {
        let (client, _events) = server.client_at(endpoint).await;
        let reply: Value = within(
            5,
            client.request("game.game.echo", &json!({"hello": endpoint})),
        )
        .await
        .unwrap();
        assert_eq!(reply, json!({"hello": endpoint}), "{endpoint}");
        // Two-part routes address this server too.
        let reply: Value = within(5, client.request("game.echo", &json!([1, 2])))
            .await
            .unwrap();
        assert_eq!(reply, json!([1, 2]));
        let raw = within(
            5,
            client.request_raw("game.game.raw", &b"\x00\x01 not json"[..]),
        )
        .await
        .unwrap();
        assert_eq!(&raw[..], b"\x00\x01 not json");
    }
    server.stop().await;
}

#[tokio::test]
async fn errors_carry_pitaya_codes() {
    let server = server().await;
    let (client, _events) = server.client().await;

    let err = client
        .request::<_, Value>("game.game.nope", &json!({}))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, codes::NOT_FOUND);
    assert_eq!(payload.msg, "pitaya/handler: game.game.nope not found");

    let err = client
        .request::<_, Value>("other.game.echo", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        codes::NOT_FOUND,
        "another server type is not served here"
    );

    let err = client
        .request::<_, Value>("game.game.sleep", &json!({"wrong": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");

    let err = client
        .request::<_, Value>("a..b", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST);

    let err = client
        .request::<_, Value>("game.game.ping", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST, "request on a notify route");

    let err = client
        .request::<_, Value>("game.game.fail", &json!({}))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, "GAME-001");
    assert_eq!(payload.msg, "no such room");
    assert_eq!(payload.metadata.get("room").map(String::as_str), Some("7"));

    // The connection is still fine after all of that.
    let reply: Value = client.request("game.game.echo", &json!(1)).await.unwrap();
    assert_eq!(reply, json!(1));
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_request() {
    let server = server().await;
    let (client, _events) = server.client().await;
    let (other, _other_events) = server.client().await;
    let err = client
        .request::<_, Value>("game.game.boom", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INTERNAL);
    let reply: Value = client
        .request("game.game.echo", &json!("same session"))
        .await
        .unwrap();
    assert_eq!(reply, json!("same session"));
    let reply: Value = other
        .request("game.game.echo", &json!("other session"))
        .await
        .unwrap();
    assert_eq!(reply, json!("other session"));
    server.stop().await;
}

#[tokio::test]
async fn notify_runs_the_handler_and_pushes_arrive() {
    let server = server().await;
    let (client, mut events) = server.client().await;
    client.notify("game.game.ping", &json!({})).await.unwrap();
    let (route, body) = next_push(&mut events).await;
    assert_eq!(route, "onPong");
    assert_eq!(body, json!({"pong": true}));
    server.stop().await;
}

#[tokio::test]
async fn requests_of_one_session_run_in_arrival_order() {
    let server = server().await;
    let (client, _events) = server.client().await;
    let (slow_body, fast_body) = (
        json!({"ms": 300, "tag": "slow"}),
        json!({"ms": 0, "tag": "fast"}),
    );
    let slow = client.request::<_, Sleep>("game.game.sleep", &slow_body);
    let fast = client.request::<_, Sleep>("game.game.sleep", &fast_body);
    let started = tokio::time::Instant::now();
    let (slow, fast) = tokio::join!(slow, fast);
    assert_eq!(slow.unwrap().tag, "slow");
    assert_eq!(fast.unwrap().tag, "fast");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the fast one waited for the slow one"
    );

    // Other sessions are not held up by a slow one.
    let (other, _other_events) = server.client().await;
    let busy_body = json!({"ms": 2000, "tag": "busy"});
    let busy = client.request::<_, Sleep>("game.game.sleep", &busy_body);
    let quick = async {
        let started = tokio::time::Instant::now();
        let reply: Value = other.request("game.game.echo", &json!(0)).await.unwrap();
        assert_eq!(reply, json!(0));
        started.elapsed()
    };
    let (busy, quick) = tokio::join!(busy, quick);
    assert!(busy.is_ok());
    assert!(
        quick < Duration::from_millis(1500),
        "another session answered in {quick:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn concurrent_dispatch_answers_in_completion_order() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .dispatch(pitaya::app::DispatchMode::Concurrent)
    })
    .await;
    let (client, _events) = server.client().await;
    let (slow_body, fast_body) = (
        json!({"ms": 500, "tag": "slow"}),
        json!({"ms": 0, "tag": "fast"}),
    );
    let slow = client.request::<_, Sleep>("game.game.sleep", &slow_body);
    let fast = async {
        // Sent after the slow one, answered long before it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = tokio::time::Instant::now();
        let reply = client
            .request::<_, Sleep>("game.game.sleep", &fast_body)
            .await;
        (reply, started.elapsed())
    };
    let (slow, (fast, fast_took)) = tokio::join!(slow, fast);
    assert_eq!(slow.unwrap().tag, "slow");
    assert_eq!(fast.unwrap().tag, "fast");
    assert!(
        fast_took < Duration::from_millis(400),
        "the fast request did not wait: {fast_took:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn session_bind_data_and_unique_sessions() {
    let server = server().await;
    let (first, mut first_events) = server.client().await;
    let reply: Value = first
        .request("game.game.bind", &json!({"uid": "ana"}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"bound": "ana"}));
    let err = first
        .request::<_, Value>("game.game.bind", &json!({"uid": "bob"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST, "binding twice is an error");

    first
        .request::<_, Value>("game.game.remember", &json!({"level": 3}))
        .await
        .unwrap();
    let recalled: Value = first.request("game.game.recall", &json!({})).await.unwrap();
    assert_eq!(recalled, json!({"level": 3}));
    assert!(server.app.session_by_uid("ana").is_some());

    // The same uid binding again kicks the older session.
    let (second, _second_events) = server.client().await;
    let reply: Value = second
        .request("game.game.bind", &json!({"uid": "ana"}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"bound": "ana"}));
    loop {
        match within(5, first_events.next()).await {
            Some(Event::Kicked) => break,
            Some(Event::Push { .. }) => {}
            other => panic!("expected a kick, got {other:?}"),
        }
    }
    let recalled: Value = second
        .request("game.game.recall", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        recalled,
        Value::Null,
        "data belongs to the session, not the uid"
    );
    server.stop().await;
}

#[tokio::test]
async fn push_to_uid_and_groups() {
    let server = server().await;
    let (ana, mut ana_events) = server.client().await;
    let (bob, mut bob_events) = server.client().await;
    ana.request::<_, Value>("game.game.bind", &json!({"uid": "ana"}))
        .await
        .unwrap();
    bob.request::<_, Value>("game.game.bind", &json!({"uid": "bob"}))
        .await
        .unwrap();

    bob.request::<_, Value>("game.game.pushTo", &json!({"uid": "ana", "text": "hi ana"}))
        .await
        .unwrap();
    assert_eq!(
        next_push(&mut ana_events).await,
        ("onText".into(), json!({"text": "hi ana"}))
    );
    let err = bob
        .request::<_, Value>("game.game.pushTo", &json!({"uid": "nobody", "text": "?"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND);

    let members: Vec<String> = ana.request("game.game.join", &json!({})).await.unwrap();
    assert_eq!(members, ["ana"]);
    assert_eq!(next_push(&mut ana_events).await.0, "onJoin");
    let members: Vec<String> = bob.request("game.game.join", &json!({})).await.unwrap();
    assert_eq!(members, ["ana", "bob"]);
    assert_eq!(
        next_push(&mut ana_events).await,
        ("onJoin".into(), json!({"uid": "bob"}))
    );
    assert_eq!(
        next_push(&mut bob_events).await,
        ("onJoin".into(), json!({"uid": "bob"}))
    );

    // Members leave their groups when their session closes.
    bob.close().await;
    let mut members: Vec<String> = Vec::new();
    for _ in 0..50 {
        members = ana.request("game.game.lobby", &json!({})).await.unwrap();
        if members == ["ana"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(members, ["ana"]);
    server.stop().await;
}

#[tokio::test]
async fn broadcast_and_kick_from_the_app() {
    let server = server().await;
    let (one, mut one_events) = server.client().await;
    let (_two, mut two_events) = server.client().await;
    one.request::<_, Value>("game.game.echo", &json!(0))
        .await
        .unwrap();
    let delivery = server
        .app
        .push(Audience::all(), "onNews", &json!({"news": 1}))
        .await
        .unwrap();
    assert_eq!(delivery.delivered, 2);
    assert!(delivery.unreachable.is_empty());
    assert_eq!(next_push(&mut one_events).await.0, "onNews");
    assert_eq!(next_push(&mut two_events).await.0, "onNews");

    let reply = one
        .request::<_, Value>("game.game.kickMe", &json!({}))
        .await;
    assert!(reply.is_ok() || matches!(reply, Err(ClientError::Kicked | ClientError::Closed)));
    loop {
        match within(5, one_events.next()).await {
            Some(Event::Kicked) => break,
            Some(Event::Push { .. }) => {}
            other => panic!("expected a kick, got {other:?}"),
        }
    }
    server.stop().await;
}

/// Connects a raw socket and completes the handshake by hand.
async fn raw_handshaken(server: &TestServer) -> TcpStream {
    let mut socket = TcpStream::connect(server.tcp_addr()).await.unwrap();
    let body = br#"{"sys":{"platform":"test"}}"#;
    let mut hello = vec![0x01, 0, 0, u8::try_from(body.len()).unwrap()];
    hello.extend_from_slice(body);
    socket.write_all(&hello).await.unwrap();
    let mut header = [0u8; 4];
    socket.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x01);
    let len = usize::from(header[2]) << 8 | usize::from(header[3]);
    let mut response = vec![0u8; len];
    socket.read_exact(&mut response).await.unwrap();
    let response: Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(response["code"], 200);
    assert_eq!(response["sys"]["serializer"], "json");
    socket.write_all(&[0x02, 0, 0, 0]).await.unwrap();
    socket
}

/// Reads one packet: its type byte and body.
async fn read_packet(socket: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 4];
    within(5, socket.read_exact(&mut header)).await.unwrap();
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let mut body = vec![0u8; len];
    socket.read_exact(&mut body).await.unwrap();
    (header[0], body)
}

#[tokio::test]
async fn pushes_made_by_a_handler_go_out_before_its_response() {
    let server = server().await;
    let mut socket = raw_handshaken(&server).await;
    let route = b"game.game.announce";
    let mut message = vec![0x00, 0x07, u8::try_from(route.len()).unwrap()];
    message.extend_from_slice(route);
    message.extend_from_slice(b"{}");
    let mut packet = vec![0x04, 0, 0, u8::try_from(message.len()).unwrap()];
    packet.extend_from_slice(&message);
    socket.write_all(&packet).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let (kind, body) = read_packet(&mut socket).await;
        if kind == 0x03 {
            continue; // heartbeat
        }
        assert_eq!(kind, 0x04, "data packet");
        seen.push(body);
    }
    assert_eq!(
        seen[0], b"\x06\x07onFirst1",
        "first push: flag, route length, route, body"
    );
    assert_eq!(seen[1], b"\x06\x08onSecond2", "second push");
    assert_eq!(seen[2][..2], [0x04, 0x07], "then the response to request 7");
    assert_eq!(&seen[2][2..], br#""done""#);
    server.stop().await;
}

/// Reads until the server closes the socket; fails if it doesn't within 5 s.
async fn assert_closed(mut socket: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match within(5, socket.read(&mut buf)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let server = server().await;
    let (healthy, _events) = server.client().await;

    // Garbage bytes.
    let mut garbage = TcpStream::connect(server.tcp_addr()).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert_closed(garbage).await;

    // A data packet before the handshake.
    let mut early = TcpStream::connect(server.tcp_addr()).await.unwrap();
    early
        .write_all(&[0x04, 0, 0, 3, 0x02, 0x00, b'x'])
        .await
        .unwrap();
    assert_closed(early).await;

    // A frame announcing more than the maximum packet size (64 KiB here).
    let mut oversize = raw_handshaken(&server).await;
    oversize.write_all(&[0x04, 0x01, 0x00, 0x01]).await.unwrap();
    assert_closed(oversize).await;

    // A message of an invalid type.
    let mut bad_message = raw_handshaken(&server).await;
    bad_message
        .write_all(&[0x04, 0, 0, 2, 0x0e, 0x00])
        .await
        .unwrap();
    assert_closed(bad_message).await;

    // An undecodable handshake gets code 400, then the connection closes.
    let mut bad_handshake = TcpStream::connect(server.tcp_addr()).await.unwrap();
    bad_handshake
        .write_all(&[0x01, 0, 0, 3, b'{', b'{', b'{'])
        .await
        .unwrap();
    let mut header = [0u8; 4];
    within(5, bad_handshake.read_exact(&mut header))
        .await
        .unwrap();
    let mut body = vec![0u8; usize::from(header[3])];
    bad_handshake.read_exact(&mut body).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], 400);
    assert_closed(bad_handshake).await;

    let reply: Value = healthy
        .request("game.game.echo", &json!("still here"))
        .await
        .unwrap();
    assert_eq!(reply, json!("still here"));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_request_hurts_nobody() {
    let server = server().await;
    let (healthy, _events) = server.client().await;
    {
        let (leaving, _leaving_events) = server.client().await;
        let body = json!({"ms": 300, "tag": "x"});
        let pending = leaving.request::<_, Sleep>("game.game.sleep", &body);
        let _ = tokio::time::timeout(Duration::from_millis(50), pending).await;
        leaving.close().await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply: Value = healthy.request("game.game.echo", &json!(2)).await.unwrap();
    assert_eq!(reply, json!(2));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let server = TestServer::start(|app| app.register(Game::default()).max_queued_writes(64)).await;
    let (healthy, _events) = server.client().await;
    let mut socket = raw_handshaken(&server).await;
    // Ask for far more pushes than fit in the write queue and socket
    // buffers, and never read them.
    let route = b"game.game.flood";
    let body = b"100000";
    let mut message = vec![0x00, 0x01, u8::try_from(route.len()).unwrap()];
    message.extend_from_slice(route);
    message.extend_from_slice(body);
    let mut packet = vec![0x04, 0, 0, u8::try_from(message.len()).unwrap()];
    packet.extend_from_slice(&message);
    socket.write_all(&packet).await.unwrap();
    // The server gives up on this client instead of buffering without bound.
    let mut closed = false;
    for _ in 0..100 {
        if server.app.session_count() <= 1 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the slow client was disconnected");
    let reply: Value = healthy.request("game.game.echo", &json!(3)).await.unwrap();
    assert_eq!(reply, json!(3));
    drop(socket);
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_are_sent_and_silent_clients_closed() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .heartbeat(Duration::from_millis(300))
    })
    .await;
    let mut socket = TcpStream::connect(server.tcp_addr()).await.unwrap();
    let body = br#"{"sys":{}}"#;
    let mut hello = vec![0x01, 0, 0, u8::try_from(body.len()).unwrap()];
    hello.extend_from_slice(body);
    socket.write_all(&hello).await.unwrap();
    let last_sent = tokio::time::Instant::now();
    let mut header = [0u8; 4];
    socket.read_exact(&mut header).await.unwrap();
    let mut response = vec![0u8; usize::from(header[3])];
    socket.read_exact(&mut response).await.unwrap();
    let response: Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(response["sys"]["heartbeat"], 0.3);
    // The server sends heartbeats on its own...
    let mut heartbeat = [0u8; 4];
    within(2, socket.read_exact(&mut heartbeat)).await.unwrap();
    assert_eq!(heartbeat, [0x03, 0, 0, 0]);
    // ...and closes a client that sends nothing for more than 2 intervals.
    assert_closed(socket).await;
    let silent = last_sent.elapsed();
    assert!(
        silent >= Duration::from_millis(600),
        "closed after only {silent:?} of silence"
    );

    // A client library sending heartbeats stays connected.
    let (client, _events) = server.client().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let reply: Value = client.request("game.game.echo", &json!(4)).await.unwrap();
    assert_eq!(reply, json!(4));
    server.stop().await;
}

#[tokio::test]
async fn handshake_validators_can_refuse_clients() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .handshake_validator(|handshake| {
                if handshake.sys.client_version == "0.0.1" {
                    Err(PitayaError::new(codes::BAD_REQUEST, "client too old"))
                } else {
                    Ok(())
                }
            })
    })
    .await;
    let mut old = pitaya::codec::HandshakeRequest::default();
    old.sys.client_version = "0.0.1".into();
    let refused = pitaya_client::Client::builder()
        .handshake(old)
        .connect(server.tcp.as_str())
        .await;
    assert!(
        matches!(refused, Err(ClientError::HandshakeRefused(400))),
        "{refused:?}"
    );
    let (client, _events) = server.client().await;
    let reply: Value = client.request("game.game.echo", &json!(5)).await.unwrap();
    assert_eq!(reply, json!(5));
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = server().await;
    let (client, mut events) = server.client().await;
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request::<_, Sleep>("game.game.sleep", &json!({"ms": 500, "tag": "last"}))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let reply = within(5, in_flight).await.unwrap().unwrap();
    assert_eq!(
        reply.tag, "last",
        "the in-flight request completed before the close"
    );
    loop {
        match within(5, events.next()).await {
            Some(Event::Disconnected { .. }) | None => break,
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn concurrent_dispatch_answers_in_flight_requests_at_shutdown() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .dispatch(pitaya::app::DispatchMode::Concurrent)
    })
    .await;
    let (client, _events) = server.client().await;
    let in_flight: Vec<_> = (0..3)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .request::<_, Sleep>(
                        "game.game.sleep",
                        &json!({"ms": 400, "tag": format!("t{i}")}),
                    )
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    for (i, request) in in_flight.into_iter().enumerate() {
        let reply = within(5, request).await.unwrap().unwrap();
        assert_eq!(reply.tag, format!("t{i}"), "answered before the close");
    }
}

#[tokio::test]
async fn a_long_request_does_not_cost_a_heartbeating_client_its_connection() {
    // Sequential dispatch: while the handler runs for longer than two
    // heartbeat intervals, the client's heartbeats must still be seen.
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .heartbeat(Duration::from_millis(300))
    })
    .await;
    let (client, _events) = server.client().await;
    let reply: Sleep = within(
        5,
        client.request("game.game.sleep", &json!({"ms": 1500, "tag": "long"})),
    )
    .await
    .unwrap();
    assert_eq!(reply.tag, "long");
    // Requests sent while another one runs still run in order afterwards.
    let slow = json!({"ms": 700, "tag": "a"});
    let (a, b) = tokio::join!(
        client.request::<_, Sleep>("game.game.sleep", &slow),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client
                .request::<_, Value>("game.game.echo", &json!("b"))
                .await
        }
    );
    assert_eq!(a.unwrap().tag, "a");
    assert_eq!(b.unwrap(), json!("b"));
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_pipeline_hook_fails_only_its_request() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .before_handler(|request| async move {
                tokio::task::yield_now().await;
                assert!(
                    !request.context().route().ends_with(".fail"),
                    "hook exploded"
                );
                Ok(request)
            })
    })
    .await;
    let (client, _events) = server.client().await;
    let err = client
        .request::<_, Value>("game.game.fail", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INTERNAL);
    let reply: Value = client.request("game.game.echo", &json!(7)).await.unwrap();
    assert_eq!(reply, json!(7));
    assert_eq!(server.app.session_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn pipelines_can_reject_and_rewrite() {
    let server = TestServer::start(|app| {
        app.register(Game::default())
            .before_handler(|request| async move {
                if request.context().route().ends_with(".raw") {
                    Err(PitayaError::new("AUTH-401", "raw is forbidden"))
                } else {
                    Ok(request)
                }
            })
            .after_handler(|_ctx, result| async move {
                match result {
                    Err(err) if err.code == "GAME-001" => {
                        Err(PitayaError::new("GAME-002", "rewritten"))
                    }
                    other => other,
                }
            })
    })
    .await;
    let (client, _events) = server.client().await;
    let err = client
        .request_raw("game.game.raw", &b"x"[..])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AUTH-401");
    let err = client
        .request::<_, Value>("game.game.fail", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "GAME-002");
    let reply: Value = client.request("game.game.echo", &json!(6)).await.unwrap();
    assert_eq!(reply, json!(6));
    server.stop().await;
}

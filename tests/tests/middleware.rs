//! Async middleware (handler and remote pipelines) and the request
//! metadata a frontend gives every client message, in the test harness and
//! through a frontend forwarding to a backend on the in-process cluster.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pitaya::handler::{HandlerResult, Request};
use pitaya::prelude::*;
use pitaya::testing::TestApp;
use pitaya_tests::cluster::{Plane, connect, connector, start, wait_for};
use pitaya_tests::room::{Room, RoomRemote};
use pitaya_tests::within;
use serde_json::{Value, json};

/// What a handler knows of its context, as JSON.
fn context_json(ctx: &Context) -> Value {
    json!({
        "route": ctx.route(),
        "req-route": ctx.get("req-route"),
        "request.id": ctx.get("request.id"),
        "req-start-time": ctx.get("req-start-time"),
        "player": ctx.get("player"),
    })
}

/// Handlers that tell what they got.
struct Probe;

#[component(name = "probe")]
impl Probe {
    /// The handler's context.
    #[handler]
    async fn ctx(&self, ctx: &Context) -> Result<Value> {
        Ok(context_json(ctx))
    }

    /// The raw body back.
    #[handler]
    async fn echo(&self, body: Bytes) -> Bytes {
        body
    }

    #[handler]
    async fn fail(&self) -> Result<Value> {
        Err(PitayaError::new("GAME-001", "failed"))
    }

    /// Binds the session ("logs in").
    #[handler]
    async fn login(&self, session: &Session, name: String) -> Result<String> {
        session.bind(name.clone()).await?;
        Ok(name)
    }
}

/// The same request with `ctx` (and `body`) in place of its own.
fn replaced(request: &Request, ctx: Context, body: Bytes) -> Request {
    request.clone().with_context(ctx).with_body(body)
}

fn now_nanos() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_awaiting_before_hook_rejects_and_replaces_requests() {
    // The hook waits for its "database" (a channel answered by a task)
    // before deciding.
    let (ask, mut questions) = tokio::sync::mpsc::unbounded_channel::<(
        String,
        tokio::sync::oneshot::Sender<Option<String>>,
    )>();
    tokio::spawn(async move {
        while let Some((route, reply)) = questions.recv().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let player = (!route.ends_with(".fail")).then(|| "ana".to_owned());
            let _ = reply.send(player);
        }
    });
    let builder = App::builder("game")
        .register(Probe)
        .before_handler(move |request| {
            let ask = ask.clone();
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                ask.send((request.context().route().to_owned(), tx))
                    .unwrap();
                let Some(player) = rx.await.unwrap() else {
                    return Err(PitayaError::new("AUTH-401", "unknown player"));
                };
                let ctx = request.context().with_value("player", player);
                let body = if request.context().route().ends_with(".echo") {
                    Bytes::from_static(b"\"replaced\"")
                } else {
                    request.body().clone()
                };
                Ok(replaced(&request, ctx, body))
            }
        });
    let app = TestApp::new(builder).unwrap();
    let ana = app.session();

    // Rejected: the hook's error, and the handler (which has its own
    // error) did not run.
    let err = app
        .request::<_, Value>(&ana, "game.probe.fail", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "AUTH-401");
    assert_eq!(err.msg, "unknown player");

    // Replaced: the handler gets the hook's context and body.
    let reply: Value = app
        .request(&ana, "game.probe.ctx", &json!({}))
        .await
        .unwrap();
    assert_eq!(reply["player"], "ana");
    let reply: String = app
        .request(&ana, "game.probe.echo", &"original")
        .await
        .unwrap();
    assert_eq!(reply, "replaced");
}

#[tokio::test]
async fn after_hooks_change_replies_and_know_the_route() {
    let routes = Arc::new(Mutex::new(Vec::new()));
    let seen = routes.clone();
    let builder = App::builder("game").register(Probe).after_handler(
        move |ctx: Context, result: HandlerResult| {
            seen.lock().unwrap().push(ctx.route().to_owned());
            async move {
                tokio::task::yield_now().await;
                match result {
                    Err(err) if err.code == "GAME-001" => Err(PitayaError::new(
                        "GAME-002",
                        format!("{} rewritten", ctx.route()),
                    )),
                    Ok(Some(body)) if ctx.route().ends_with(".echo") => {
                        let mut text = body.to_vec();
                        text.splice(1..1, b"after ".iter().copied());
                        Ok(Some(Bytes::from(text)))
                    }
                    other => other,
                }
            }
        },
    );
    let app = TestApp::new(builder).unwrap();
    let ana = app.session();
    let err = app
        .request::<_, Value>(&ana, "game.probe.fail", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "GAME-002");
    assert_eq!(err.msg, "game.probe.fail rewritten");
    let reply: String = app.request(&ana, "game.probe.echo", &"echo").await.unwrap();
    assert_eq!(reply, "after echo");
    assert_eq!(
        *routes.lock().unwrap(),
        ["game.probe.fail", "game.probe.echo"]
    );
}

type Log = Arc<Mutex<Vec<&'static str>>>;

fn logged_before(
    log: &Log,
    name: &'static str,
) -> impl Fn(Request) -> std::future::Ready<Result<Request, PitayaError>> + Send + Sync + 'static {
    let log = log.clone();
    move |request| {
        log.lock().unwrap().push(name);
        std::future::ready(Ok(request))
    }
}

fn logged_after(
    log: &Log,
    name: &'static str,
) -> impl Fn(Context, HandlerResult) -> std::future::Ready<HandlerResult> + Send + Sync + 'static {
    let log = log.clone();
    move |_, result| {
        log.lock().unwrap().push(name);
        std::future::ready(result)
    }
}

#[tokio::test]
async fn first_hooks_run_before_the_others_and_clear_removes_them() {
    let log = Log::default();
    let builder = App::builder("game")
        .register(Probe)
        // Cleared: never run.
        .before_handler(logged_before(&log, "cleared before"))
        .after_handler(logged_after(&log, "cleared after"))
        .clear_handler_hooks()
        .before_handler(logged_before(&log, "before 2"))
        .before_handler(logged_before(&log, "before 3"))
        .before_handler_first(logged_before(&log, "before 1"))
        .after_handler(logged_after(&log, "after 2"))
        .after_handler_first(logged_after(&log, "after 1"))
        // Remote hooks are another pipeline: not run for handlers.
        .before_remote(logged_before(&log, "remote"));
    let app = TestApp::new(builder).unwrap();
    let ana = app.session();
    let _: Value = app
        .request(&ana, "game.probe.ctx", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["before 1", "before 2", "before 3", "after 1", "after 2"]
    );
}

#[tokio::test]
async fn handlers_get_the_request_metadata() {
    let app = TestApp::new(App::builder("game").register(Probe)).unwrap();
    let ana = app.session();
    let before = now_nanos();
    let first: Value = app
        .request(&ana, "game.probe.ctx", &json!({}))
        .await
        .unwrap();
    let second: Value = app.request(&ana, "probe.ctx", &json!({})).await.unwrap();
    let after = now_nanos();
    assert_eq!(first["req-route"], "game.probe.ctx");
    assert_eq!(second["req-route"], "probe.ctx", "the route as sent");
    for reply in [&first, &second] {
        let id = reply["request.id"].as_str().unwrap();
        assert_eq!(id.len(), 22, "a nuid: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        // Unix nanoseconds, a JSON integer as Go sends it.
        let start = reply["req-start-time"].as_i64().unwrap();
        assert!((before..=after).contains(&start), "{start}");
    }
    assert_ne!(first["request.id"], second["request.id"]);
}

/// A `room` backend that tells what its handler and remote got.
struct Backend {
    calls: Arc<AtomicU64>,
}

#[component(name = "probe")]
impl Backend {
    #[handler]
    async fn ctx(&self, ctx: &Context) -> Result<Value> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(context_json(ctx))
    }

    #[handler]
    async fn fail(&self) -> Result<Value> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(PitayaError::new("ROOM-001", "room failed").with_metadata("room", "7"))
    }
}

#[tokio::test]
async fn memory_cluster_frontend_hooks_around_forwarded_messages() {
    frontend_hooks_around_forwarded_messages(Plane::memory()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_frontend_hooks_around_forwarded_messages() {
    frontend_hooks_around_forwarded_messages(Plane::real()).await;
}

/// The frontend's handler pipeline runs around the messages it forwards,
/// and the backend sees the client request's context.
async fn frontend_hooks_around_forwarded_messages(plane: Plane) {
    let calls = Arc::new(AtomicU64::new(0));
    let back = start(
        App::builder("room")
            .register(Backend {
                calls: calls.clone(),
            })
            .server_id("room-mw")
            .cluster(plane.cluster()),
        None,
    )
    .await;
    // What the frontend's hooks saw: (route, forwarded, request.id).
    let seen: Arc<Mutex<Vec<(String, bool, String)>>> = Arc::default();
    let front = connector(&plane, "conn-mw", {
        let (local, forwarded) = (seen.clone(), seen.clone());
        move |builder| {
            builder
                .register(Probe)
                .before_handler(front_hook(local, false))
                .before_forward(front_hook(forwarded, true))
                .after_forward(|ctx: Context, result: HandlerResult| async move {
                    assert_eq!(ctx.server_type(), Some("room"));
                    result.map_err(|err| {
                        PitayaError::new(format!("FRONT-{}", err.code), err.msg).with_metadata(
                            "room",
                            err.metadata.get("room").cloned().unwrap_or_default(),
                        )
                    })
                })
        }
    })
    .await;
    wait_for(&front.app, "room", 1).await;
    let (client, _events) = connect(&front).await;

    // Forwarded: the backend's handler sees the frontend's request.id and
    // the value the frontend's hook added.
    let reply: Value = within(5, client.request("room.probe.ctx", &json!({})))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (route, forwarded, id) = seen.lock().unwrap()[0].clone();
    assert_eq!((route.as_str(), forwarded), ("room.probe.ctx", true));
    assert_eq!(reply["request.id"], id.as_str(), "one id on both sides");
    assert_eq!(reply["player"], "ana", "a hook's value reaches the backend");
    assert_eq!(reply["req-route"], "room.probe.ctx");
    assert!(reply["req-start-time"].as_i64().unwrap() > 0);

    // A local handler on the frontend: not forwarded, same metadata.
    let reply: Value = client
        .request("connector.probe.ctx", &json!({}))
        .await
        .unwrap();
    let (route, forwarded, id) = seen.lock().unwrap()[1].clone();
    assert_eq!((route.as_str(), forwarded), ("connector.probe.ctx", false));
    assert_eq!(reply["request.id"], id.as_str());
    assert_eq!(reply["player"], "ana");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Rejected on the frontend: the client gets the hook's error and
    // nothing reaches the backend.
    let err = client
        .request::<_, Value>("room.probe.fail", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.server_error().unwrap().code, "AUTH-401");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not forwarded");

    // Bound ("logged in"): forwarded, and the after hook rewrites the
    // backend's error.
    let name: String = client
        .request("connector.probe.login", &"ana")
        .await
        .unwrap();
    assert_eq!(name, "ana");
    let err = client
        .request::<_, Value>("room.probe.fail", &json!({}))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, "FRONT-ROOM-001");
    assert_eq!(payload.msg, "room failed");
    assert_eq!(payload.metadata.get("room").map(String::as_str), Some("7"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    front.stop().await;
    back.stop().await;
}

#[tokio::test]
async fn memory_cluster_remote_hooks() {
    remote_hooks(Plane::memory()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_remote_hooks() {
    remote_hooks(Plane::real()).await;
}

/// Remote hooks run around remotes; a before-remote rejection is Go's
/// `PIT-500` with the hook's message.
async fn remote_hooks(plane: Plane) {
    let handler_hooks = Arc::new(AtomicU64::new(0));
    let counted = handler_hooks.clone();
    let back = start(
        App::builder("room")
            .register(Room::new("room-r"))
            .server_id("room-r")
            .cluster(plane.cluster())
            // Handler hooks do not run for remotes.
            .before_handler(move |request| {
                counted.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok(request))
            })
            .before_remote(|request| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                // The argument is a protobuf StringValue: field 1, "secret".
                if request.body().ends_with(b"secret") {
                    return Err(PitayaError::new("ROOM-403", "secrets are not asked")
                        .with_metadata("why", "secret"));
                }
                Ok(request)
            })
            .after_remote(|ctx: Context, result: HandlerResult| async move {
                assert_eq!(ctx.route(), "room.room.info");
                match result {
                    Err(err) if err.code == "ROOM-002" => {
                        Err(PitayaError::new("ROOM-004", "rewritten by the after hook")
                            .with_metadata("q", err.metadata["q"].clone()))
                    }
                    other => other,
                }
            }),
        None,
    )
    .await;
    let front = connector(&plane, "conn-r", |b| b).await;
    wait_for(&front.app, "room", 1).await;

    let remote = || RoomRemote::new(front.app.remote("room"));
    let info = within(5, remote().info(&"how many?".to_owned()))
        .await
        .unwrap();
    assert_eq!(info.asked, "how many?");
    // Go answers a before-remote failure with PIT-500 and the hook's
    // message.
    let err = remote().info(&"secret".to_owned()).await.unwrap_err();
    assert_eq!(err.code, "PIT-500");
    assert_eq!(err.msg, "secrets are not asked");
    assert!(err.metadata.is_empty(), "{err:?}");
    // After-remote errors keep their code and metadata.
    let err = remote().info(&"bad".to_owned()).await.unwrap_err();
    assert_eq!(err.code, "ROOM-004");
    assert_eq!(err.metadata.get("q").map(String::as_str), Some("bad"));

    // Through a client: the lobby's remote call fails with the same error.
    let (client, _events) = connect(&front).await;
    let err = client
        .request::<_, Value>("lobby.ask", &json!("secret"))
        .await
        .unwrap_err();
    assert_eq!(err.server_error().unwrap().code, "PIT-500");
    assert_eq!(handler_hooks.load(Ordering::SeqCst), 0);

    front.stop().await;
    back.stop().await;
}

#[tokio::test]
async fn remote_hooks_apply_in_the_test_harness() {
    let builder = App::builder("room")
        .register(Room::new("room-h"))
        .before_remote(|_request| async move {
            tokio::task::yield_now().await;
            Err(PitayaError::new("ROOM-403", "closed").with_metadata("k", "v"))
        });
    let app = TestApp::new(builder).unwrap();
    let err = app
        .call_remote::<String, pitaya_tests::room::Info>("room.room.info", &"q".to_owned())
        .await
        .unwrap_err();
    assert_eq!(err, PitayaError::new("PIT-500", "closed"));
}

/// As Go's `GetContextFromRequest`: a call received without `request.id`
/// gets one, and `req-route` is the route called.
#[tokio::test]
async fn a_received_call_gets_a_request_id_and_its_route() {
    use pitaya::cluster::protos::{Msg, Request as Envelope, RpcType};
    use pitaya::cluster::{MemoryRpc, RpcClient, ServerInfo};
    let cluster = pitaya::cluster::MemoryCluster::new();
    let plane = Plane::Memory(cluster.clone());
    let seen: Arc<Mutex<Vec<Context>>> = Arc::default();
    let record = seen.clone();
    let back = start(
        App::builder("room")
            .register(Room::new("room-g"))
            .server_id("room-g")
            .cluster(plane.cluster())
            .before_remote(move |request| {
                record.lock().unwrap().push(request.context().clone());
                std::future::ready(Ok(request))
            }),
        None,
    )
    .await;
    wait_for(&back.app, "room", 1).await;
    let target = back.app.server_info().unwrap().clone();
    let caller = MemoryRpc::new(&cluster, ServerInfo::new("go-1", "connector", true));
    let call = |metadata: &'static [u8]| Envelope {
        r#type: RpcType::User as i32,
        msg: Some(Msg {
            route: "room.room.info".into(),
            data: vec![0x0a, 0x01, b'q'].into(),
            ..Msg::default()
        }),
        metadata: metadata.into(),
        ..Envelope::default()
    };
    for metadata in [
        &br#"{"req-route":"connector.lobby.ask","k":"v"}"#[..],
        br#"{"request.id":"","k":"v"}"#,
        br#"{"request.id":"kept","k":"v"}"#,
    ] {
        let response = caller
            .request(&target, call(metadata), Duration::from_secs(2))
            .await
            .unwrap();
        assert!(response.error.is_none(), "{response:?}");
    }
    let seen = seen.lock().unwrap().clone();
    for ctx in &seen[..2] {
        let id = ctx.request_id().unwrap();
        assert_eq!(id.len(), 22, "made here: {id}");
        assert_eq!(ctx.get("req-route").unwrap(), "room.room.info");
        assert_eq!(ctx.get("k").unwrap(), "v");
    }
    assert_eq!(seen[2].request_id(), Some("kept"));
    back.stop().await;
}

/// A frontend hook that records `(route, forwarded, request.id)` after an
/// await (like a token check in a database), refuses `room.probe.fail`
/// from a session without uid and adds `player` to the context.
fn front_hook(
    record: Arc<Mutex<Vec<(String, bool, String)>>>,
    forwarded: bool,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Request>> + Send>>
+ Send
+ Sync
+ 'static {
    move |request: Request| {
        let record = record.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let ctx = request.context();
            record.lock().unwrap().push((
                ctx.route().to_owned(),
                forwarded,
                ctx.request_id().unwrap().to_owned(),
            ));
            if ctx.route() == "room.probe.fail"
                && request.session().and_then(Session::uid).is_none()
            {
                return Err(PitayaError::new("AUTH-401", "no token"));
            }
            let ctx = ctx.with_value("player", "ana");
            Ok(request.clone().with_context(ctx))
        })
    }
}

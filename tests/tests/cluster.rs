//! Clustered servers end to end: a `connector` frontend (TCP acceptor) and
//! a `room` backend (no acceptor), both real `App`s, on the in-process
//! cluster (always) and on a real etcd + NATS (feature
//! `real-cluster-tests`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pitaya::Audience;
use pitaya::cluster::{
    MemoryCluster, MemoryDiscovery, MemoryRpc, RpcServer, ServerInfo, ServiceDiscovery,
};
use pitaya_tests::cluster::{
    Plane, connect, connector, next_push, room, room_with, wait_for, wait_kicked,
};
use pitaya_tests::room::{Info, Room, RoomRemote};
use pitaya_tests::within;
use serde_json::{Value, json};

/// Requests, binds, pushes, errors, notifies, remotes and kicks through a
/// frontend to a backend.
async fn core_scenarios(plane: Plane) {
    let notes = Arc::new(AtomicU64::new(0));
    let front = connector(&plane, "conn-1", |b| b).await;
    let back = room_with(
        &plane,
        Room {
            id: "room-1".into(),
            notes: notes.clone(),
            closed: Arc::default(),
        },
    )
    .await;
    wait_for(&front.app, "room", 1).await;
    wait_for(&back.app, "connector", 1).await;
    assert!(front.app.server_info().unwrap().frontend);
    assert!(!back.app.server_info().unwrap().frontend);

    let (client, mut events) = connect(&front).await;

    // A request reaches the backend handler, which binds and pushes.
    let reply: Value = within(5, client.request("room.room.join", &json!({"uid": "ana"})))
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"server": "room-1", "uid": "ana", "backend": true, "frontend": "conn-1"})
    );
    let (route, body) = next_push(&mut events).await;
    assert_eq!(route, "onJoined");
    assert_eq!(body, json!({"uid": "ana"}));
    assert_eq!(next_push(&mut events).await.0, "onJoinedAll");
    // The bind and the session data reached the frontend.
    let session = front.app.session_by_uid("ana").unwrap();
    assert_eq!(
        session.get::<String>("room").unwrap().as_deref(),
        Some("room-1")
    );
    // ... and come back with the next forwarded request.
    let reply: Value = client
        .request("room.room.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"server": "room-1", "uid": "ana", "room": "room-1"})
    );
    // A backend learns of a session's close: a second client joins, asks
    // to be watched and goes away; the callback sees a closed view with
    // the uid and the data the frontend had.
    let (watched, _watched_events) = connect(&front).await;
    let _: Value = watched
        .request("room.room.join", &json!({"uid": "wes"}))
        .await
        .unwrap();
    let reply: Value = watched
        .request("room.room.watch", &json!({}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"backend": true, "watching": true}));
    watched.close().await;
    within(10, async {
        loop {
            let closes: Value = client
                .request("room.room.closes", &json!({}))
                .await
                .unwrap();
            if closes == json!([{"uid": "wes", "room": "room-1", "closed": true}]) {
                break;
            }
            assert!(closes.as_array().is_some_and(Vec::is_empty), "{closes}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Errors keep their code, message and metadata.
    let err = client
        .request::<_, Value>("room.room.fail", &json!({}))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, "ROOM-001");
    assert_eq!(payload.msg, "room is full");
    assert_eq!(payload.metadata.get("room").map(String::as_str), Some("7"));
    let err = client
        .request::<_, Value>("room.room.nothing", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.server_error().unwrap().code, "PIT-404");

    // Notify.
    client
        .notify("room.room.note", &json!({"n": 1}))
        .await
        .unwrap();
    within(5, async {
        while notes.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // A remote call from the connector to the room through the typed stub.
    let info: Info = client
        .request("lobby.ask", &json!("how many?"))
        .await
        .unwrap();
    assert_eq!(
        info,
        Info {
            server: "room-1".into(),
            asked: "how many?".into()
        }
    );
    let err = client
        .request::<_, Info>("lobby.ask", &json!("bad"))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, "ROOM-002");
    assert_eq!(payload.metadata.get("q").map(String::as_str), Some("bad"));
    // The same from the handle directly.
    let stub = RoomRemote::new(front.app.remote_to("room", "room-1"));
    assert_eq!(
        stub.info(&"direct".to_owned()).await.unwrap().asked,
        "direct"
    );

    // Push to a uid from the backend.
    let reply: Value = client
        .request("room.room.tell", &json!({"uid": "ana", "text": "hi"}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"failed": []}));
    let (route, body) = next_push(&mut events).await;
    assert_eq!(route, "onTell");
    assert_eq!(body, json!({"text": "hi"}));
    // ... and from the backend's handle.
    let delivery = back
        .app
        .push(Audience::uid("ana").via("connector"), "onHandle", &json!(1))
        .await
        .unwrap();
    assert!(delivery.unreachable.is_empty());
    assert_eq!(delivery.delivered, 1);
    assert_eq!(next_push(&mut events).await.0, "onHandle");

    // Kick from the backend.
    let _ = client
        .request::<_, Value>("room.room.kickme", &json!({}))
        .await;
    wait_kicked(&mut events).await;

    // Kick to a uid from the backend's handle.
    let (client2, mut events2) = connect(&front).await;
    let _: Value = client2
        .request("room.room.join", &json!({"uid": "bob"}))
        .await
        .unwrap();
    assert_eq!(next_push(&mut events2).await.0, "onJoined");
    assert_eq!(next_push(&mut events2).await.0, "onJoinedAll");
    let delivery = back.app.kick(Audience::uid("bob")).await.unwrap();
    assert!(delivery.unreachable.is_empty());
    wait_kicked(&mut events2).await;

    back.stop().await;
    front.stop().await;
}

/// The backend goes away: the client gets an error, nothing hangs.
async fn backend_gone(plane: Plane) {
    let front = connector(&plane, "conn-g", |b| b).await;
    let back = room(&plane, "room-g").await;
    wait_for(&front.app, "room", 1).await;
    let (client, _events) = connect(&front).await;

    // Dies mid-request.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request::<_, Value>("room.room.sleep", &json!({"ms": 3000}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    back.task.abort();
    let started = std::time::Instant::now();
    let result = within(6, slow).await.unwrap();
    assert!(result.is_err(), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Gone altogether: deregistered.
    back.app.discovery().unwrap().stop().await.unwrap();
    within(10, async {
        loop {
            let result = client
                .request::<_, Value>("room.room.whoami", &json!({}))
                .await;
            if let Err(err) = result {
                let code = err.server_error().map(|e| e.code.clone());
                assert!(
                    matches!(code.as_deref(), Some("PIT-500" | "PIT-408" | "PIT-000")),
                    "{err:?}"
                );
                if code.as_deref() == Some("PIT-500") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    front.stop().await;
}

/// Graceful shutdown of clustered servers: a backend deregisters before it
/// drains the requests it is running; a frontend answers the forwarded
/// requests in flight before it closes.
async fn shutdown_drains(plane: Plane) {
    let front = connector(&plane, "conn-s", |b| b).await;
    let back = room(&plane, "room-s1").await;
    wait_for(&front.app, "room", 1).await;
    let (client, _events) = connect(&front).await;
    let sleep = |client: &pitaya_client::Client| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request::<_, Value>("room.room.sleep", &json!({"ms": 1000}))
                .await
        })
    };

    let slow = sleep(&client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    back.app.shutdown();
    wait_for(&front.app, "room", 0).await;
    assert!(!slow.is_finished(), "deregistered only after the drain");
    let reply = within(5, slow).await.unwrap().unwrap();
    assert_eq!(reply, json!({"slept": 1000, "server": "room-s1"}));
    within(10, back.task).await.unwrap();

    let back = room(&plane, "room-s2").await;
    wait_for(&front.app, "room", 1).await;
    let slow = sleep(&client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    front.app.shutdown();
    let reply = within(5, slow).await.unwrap().unwrap();
    assert_eq!(reply, json!({"slept": 1000, "server": "room-s2"}));
    within(10, front.task).await.unwrap();
    back.stop().await;
}

#[tokio::test]
async fn memory_cluster_shutdown_drains() {
    shutdown_drains(Plane::memory()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_shutdown_drains() {
    shutdown_drains(Plane::real()).await;
}

#[tokio::test]
async fn memory_cluster_core_scenarios() {
    core_scenarios(Plane::memory()).await;
}

#[tokio::test]
async fn memory_cluster_backend_gone() {
    backend_gone(Plane::memory()).await;
}

#[tokio::test]
async fn custom_router_picks_by_session_data() {
    let plane = Plane::memory();
    let front = connector(&plane, "conn-r", |b| {
        b.router("room", |_ctx, session, servers| {
            let wanted: Option<String> = session.get("want").ok().flatten();
            let wanted = wanted.unwrap_or_else(|| "room-b".to_owned());
            servers.iter().find(|s| s.id == wanted).cloned()
        })
    })
    .await;
    let a = room(&plane, "room-a").await;
    let b = room(&plane, "room-b").await;
    wait_for(&front.app, "room", 2).await;
    let (client, _events) = connect(&front).await;
    for _ in 0..5 {
        let reply: Value = client
            .request("room.room.whoami", &json!({}))
            .await
            .unwrap();
        assert_eq!(reply["server"], "room-b");
    }
    let reply: Value = client
        .request("room.room.join", &json!({"uid": "carl"}))
        .await
        .unwrap();
    assert_eq!(reply["server"], "room-b");
    front
        .app
        .session_by_uid("carl")
        .unwrap()
        .set("want", "room-a")
        .unwrap();
    for _ in 0..5 {
        let reply: Value = client
            .request("room.room.whoami", &json!({}))
            .await
            .unwrap();
        assert_eq!(reply["server"], "room-a");
    }
    a.stop().await;
    b.stop().await;
    front.stop().await;
}

#[tokio::test]
async fn unique_sessions_across_frontends() {
    let plane = Plane::memory();
    let one = connector(&plane, "conn-u1", |b| b).await;
    let two = connector(&plane, "conn-u2", |b| b).await;
    let back = room(&plane, "room-u").await;
    wait_for(&one.app, "room", 1).await;
    wait_for(&two.app, "room", 1).await;
    let (first, mut first_events) = connect(&one).await;
    let _: Value = first
        .request("room.room.join", &json!({"uid": "dora"}))
        .await
        .unwrap();
    let (second, _second_events) = connect(&two).await;
    let _: Value = second
        .request("room.room.join", &json!({"uid": "dora"}))
        .await
        .unwrap();
    wait_kicked(&mut first_events).await;
    assert!(two.app.session_by_uid("dora").is_some());
    back.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn no_server_of_the_type_is_pit_500() {
    let plane = Plane::memory();
    let front = connector(&plane, "conn-n", |b| b).await;
    let (client, _events) = connect(&front).await;
    let err = client
        .request::<_, Value>("room.room.whoami", &json!({}))
        .await
        .unwrap_err();
    let payload = err.server_error().unwrap();
    assert_eq!(payload.code, "PIT-500");
    assert_eq!(payload.msg, "no servers available of this type");
    front.stop().await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_core_scenarios() {
    core_scenarios(Plane::real()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_backend_gone() {
    backend_gone(Plane::real()).await;
}

/// A fake `room` server that records what it receives and answers with the
/// message data.
struct Recorder {
    requests: tokio::sync::mpsc::UnboundedSender<pitaya::cluster::protos::Request>,
}

impl pitaya::cluster::Inbound for Recorder {
    fn on_request(
        &self,
        request: pitaya::cluster::protos::Request,
    ) -> pitaya::core::cluster::ClusterFuture<'_, pitaya::cluster::protos::Response> {
        let data = request.msg.clone().unwrap_or_default().data;
        let _ = self.requests.send(request);
        Box::pin(async move { pitaya::cluster::protos::Response::ok(data) })
    }

    fn on_push(
        &self,
        _push: pitaya::cluster::protos::Push,
    ) -> pitaya::core::cluster::ClusterFuture<'_, ()> {
        Box::pin(async {})
    }

    fn on_kick(
        &self,
        _kick: pitaya::cluster::protos::KickMsg,
    ) -> pitaya::core::cluster::ClusterFuture<'_, pitaya::cluster::protos::KickAnswer> {
        Box::pin(async { pitaya::cluster::protos::KickAnswer { kicked: false } })
    }

    fn on_bind(
        &self,
        _bind: pitaya::cluster::protos::BindMsg,
    ) -> pitaya::core::cluster::ClusterFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn forwarded_request_envelope_is_gos() {
    use pitaya::cluster::protos::{MsgType, RpcType};
    let cluster = MemoryCluster::new();
    let plane = Plane::Memory(cluster.clone());
    let front = connector(&plane, "conn-w", |b| b).await;
    let me = ServerInfo::new("room-w", "room", false);
    let rpc = Arc::new(MemoryRpc::new(&cluster, me.clone()));
    let (requests, mut received) = tokio::sync::mpsc::unbounded_channel();
    rpc.start(Arc::new(Recorder { requests })).await.unwrap();
    let discovery = MemoryDiscovery::new(&cluster);
    discovery.start(me).await.unwrap();
    wait_for(&front.app, "room", 1).await;

    let (client, _events) = connect(&front).await;
    let reply: Value = client
        .request("room.room.join", &json!({"uid": "eve"}))
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"uid": "eve"}),
        "reply bytes are passed verbatim"
    );
    let request = within(5, received.recv()).await.unwrap();
    assert_eq!(request.r#type, RpcType::Sys as i32);
    assert_eq!(request.frontend_id, "conn-w");
    let session = request.session.unwrap();
    assert!(session.id > 0);
    assert_eq!(session.uid, "");
    assert_eq!(&session.data[..], b"{}");
    let msg = request.msg.unwrap();
    assert_eq!(msg.route, "room.room.join");
    assert_eq!(msg.r#type, MsgType::MsgRequest as i32);
    assert!(msg.id > 0);
    assert_eq!(
        serde_json::from_slice::<Value>(&msg.data).unwrap(),
        json!({"uid": "eve"})
    );
    let metadata: Value = serde_json::from_slice(&request.metadata).unwrap();
    assert_eq!(metadata["req-route"], "room.room.join");
    assert_eq!(metadata["peer.id"], "conn-w");
    assert_eq!(metadata["peer.service"], "connector");
    assert_eq!(metadata["reqTimeout"], "2s");
    assert!(metadata["req-start-time"].as_i64().unwrap() > 0);
    // A NATS nuid, as Go generates: 22 base62 characters.
    let request_id = metadata["request.id"].as_str().unwrap();
    assert_eq!(request_id.len(), 22, "{request_id}");
    assert!(request_id.bytes().all(|b| b.is_ascii_alphanumeric()));

    client
        .notify("room.room.note", &json!({"n": 2}))
        .await
        .unwrap();
    let request = within(5, received.recv()).await.unwrap();
    let msg = request.msg.unwrap();
    assert_eq!(msg.r#type, MsgType::MsgNotify as i32);
    assert_eq!(msg.id, 0);

    // A user RPC through the typed stub: Go's envelope, protobuf argument
    // (a `string` is `google.protobuf.StringValue`: field 1), protobuf reply.
    // The handler's context (here made by hand) propagates its metadata.
    let ctx = pitaya::Context::new("connector.lobby.ask")
        .with_value("metric-tags", json!({"game": "g1"}))
        .with_value("request.id", "abc");
    let info = RoomRemote::new(front.app.remote("room").with_context(&ctx))
        .info(&"q".to_owned())
        .await
        .unwrap();
    let request = within(5, received.recv()).await.unwrap();
    let metadata: Value = serde_json::from_slice(&request.metadata).unwrap();
    assert_eq!(metadata["metric-tags"], json!({"game": "g1"}));
    assert_eq!(metadata["request.id"], "abc", "kept, not replaced");
    assert_eq!(metadata["peer.id"], "conn-w");
    assert_eq!(metadata["reqTimeout"], "2s");
    assert_eq!(request.r#type, RpcType::User as i32);
    assert_eq!(request.frontend_id, "conn-w", "the caller is a frontend");
    assert!(request.session.is_none());
    let msg = request.msg.unwrap();
    assert_eq!(msg.route, "room.room.info");
    assert_eq!(msg.r#type, MsgType::MsgRequest as i32);
    assert_eq!(msg.id, 0);
    assert_eq!(&msg.data[..], &[0x0a, 0x01, b'q']);
    // The recorder answered with those bytes: field 1 of `Info`.
    assert_eq!(
        info,
        Info {
            server: "q".into(),
            asked: String::new()
        }
    );

    discovery.stop().await.unwrap();
    rpc.stop().await.unwrap();
    front.stop().await;
}

/// As in Go, a request without metadata (the propagate context) is refused
/// with PIT-500 "no context found".
#[tokio::test]
async fn request_without_metadata_is_refused() {
    use pitaya::cluster::RpcClient;
    use pitaya::cluster::protos::{Msg, Request, RpcType};
    let cluster = MemoryCluster::new();
    let plane = Plane::Memory(cluster.clone());
    let back = room(&plane, "room-m").await;
    wait_for(&back.app, "room", 1).await;
    let target = back.app.server_info().unwrap().clone();
    let caller = MemoryRpc::new(&cluster, ServerInfo::new("caller-m", "caller", false));
    let request = |metadata: &'static [u8]| Request {
        r#type: RpcType::User as i32,
        msg: Some(Msg {
            route: "room.room.info".into(),
            data: vec![0x0a, 0x01, b'q'].into(),
            ..Msg::default()
        }),
        metadata: metadata.into(),
        ..Request::default()
    };
    let response = caller
        .request(&target, request(b""), Duration::from_secs(2))
        .await
        .unwrap();
    let error = response.error.unwrap();
    assert_eq!(error.code, "PIT-500");
    assert_eq!(error.msg, "no context found");
    let response = caller
        .request(&target, request(b"{}"), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(response.error.is_none(), "{response:?}");
    back.stop().await;
}

/// As in Go (`ErrNonsenseRPC`), a user RPC to the caller's own server type
/// (without a server id), or to the caller itself, is refused: call the
/// method directly instead.
#[tokio::test]
async fn user_rpc_to_own_type_or_self_is_refused() {
    let plane = Plane::memory();
    let one = room(&plane, "room-x1").await;
    let two = room(&plane, "room-x2").await;
    wait_for(&one.app, "room", 2).await;
    for client in [one.app.remote("room"), one.app.remote_to("room", "room-x1")] {
        let err = RoomRemote::new(client)
            .info(&"me?".to_owned())
            .await
            .unwrap_err();
        assert_eq!(err.code, "PIT-000");
        assert!(err.msg.contains("may be processed locally"), "{err:?}");
    }
    // Another server of the same type, by id, is fine.
    let info = RoomRemote::new(one.app.remote_to("room", "room-x2"))
        .info(&"you?".to_owned())
        .await
        .unwrap();
    assert_eq!(info.server, "room-x2");
    one.stop().await;
    two.stop().await;
}

/// The in-process cluster, lost when the test says so.
struct LosablePlane {
    inner: pitaya::cluster::Cluster,
    lost: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<String>>>,
}

impl pitaya::core::cluster::ClusterPlane for LosablePlane {
    fn describe(&self) -> String {
        "losable in-process cluster".into()
    }

    fn connect(
        &self,
        me: Arc<ServerInfo>,
    ) -> pitaya::core::cluster::ClusterFuture<
        '_,
        Result<pitaya::core::cluster::ClusterConnection, pitaya::cluster::ClusterError>,
    > {
        let lost = self.lost.lock().unwrap().take().unwrap();
        Box::pin(async move {
            let connection = self.inner.connect(me).await?;
            Ok(connection.lost_when(async move { lost.await.unwrap_or_default() }))
        })
    }
}

#[tokio::test]
async fn readiness_follows_the_cluster_and_a_lost_cluster_stops_the_app() {
    let dev = MemoryCluster::new();
    let (lose, lost) = tokio::sync::oneshot::channel();
    let app = pitaya::App::builder("room")
        .register(Room::new("room-lost"))
        .cluster_grace(Duration::from_millis(300))
        .server_id("room-lost")
        .cluster(LosablePlane {
            inner: pitaya::cluster::Cluster::memory(&dev),
            lost: std::sync::Mutex::new(Some(lost)),
        })
        .build()
        .unwrap();
    let handle = app.handle();
    // The identity is known at build; the parts once it runs.
    assert_eq!(handle.server_info().unwrap().id, "room-lost");
    assert!(!handle.server_info().unwrap().frontend);
    assert!(handle.discovery().is_none());
    assert!(!handle.is_ready());
    let task = tokio::spawn(app.run_until(std::future::pending()));
    within(10, async {
        while !handle.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let observer = MemoryDiscovery::new(&dev);
    observer
        .start(ServerInfo::new("observer-1", "observer", false))
        .await
        .unwrap();
    assert_eq!(observer.servers_of_type("room").len(), 1);
    assert!(handle.discovery().is_some());

    lose.send("etcd: lease lost for good".into()).unwrap();
    within(10, async {
        while handle.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Not ready, still serving during the grace period...
    assert!(!task.is_finished());
    assert!(!handle.is_shutting_down());
    // ... then a graceful shutdown: deregistered, run returns Ok.
    within(10, task).await.unwrap().unwrap();
    assert!(handle.is_shutting_down());
    // The handle outlives the app; its cluster parts do not.
    assert!(handle.discovery().is_none());
    assert!(observer.servers_of_type("room").is_empty());
}

#[tokio::test]
async fn cluster_settings_go_in_any_order() {
    let dev = MemoryCluster::new();
    let app = pitaya::App::builder("room")
        .server_id("room-7")
        .metadata("region", "eu")
        .rpc_timeout(Duration::from_secs(1))
        .router("room", |_, _, servers| servers.first().cloned())
        .cluster(pitaya::cluster::Cluster::memory(&dev))
        .build()
        .unwrap();
    let me = app.handle().server_info().cloned().unwrap();
    assert_eq!(me.id, "room-7");
    assert_eq!(me.metadata["region"], "eu");
    assert!(!me.frontend);
    assert!(!me.hostname.is_empty());
}

/// Session pool callbacks on the frontend, and a bind a backend asked for
/// that the frontend refused: the backend handler gets the error.
async fn pool_callbacks_and_refused_binds(plane: Plane) {
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (before, after, closed) = (events.clone(), events.clone(), events.clone());
    let front = connector(&plane, "conn-cb", move |builder| {
        builder
            .on_session_bind(move |_session, uid| {
                let before = before.clone();
                async move {
                    before.lock().unwrap().push(format!("bind {uid}"));
                    if uid.starts_with("banned-") {
                        return Err(pitaya::PitayaError::new("RH-403", "banned"));
                    }
                    Ok(())
                }
            })
            .on_after_session_bind(move |session, uid| {
                let after = after.clone();
                async move {
                    assert_eq!(session.uid(), Some(uid.as_str()));
                    after.lock().unwrap().push(format!("bound {uid}"));
                    Ok(())
                }
            })
            .on_session_close(move |session| {
                closed
                    .lock()
                    .unwrap()
                    .push(format!("closed {}", session.uid().unwrap_or("-")));
            })
    })
    .await;
    let back = room(&plane, "room-cb").await;
    wait_for(&front.app, "room", 1).await;
    wait_for(&back.app, "connector", 1).await;

    // Bound by the backend: the frontend's callbacks run.
    let (client, _events) = connect(&front).await;
    let _: Value = client
        .request("room.room.join", &json!({"uid": "ada"}))
        .await
        .unwrap();
    // Refused by a callback: the backend's bind fails with the frontend's
    // error, which reaches the client; the uid is bound nowhere.
    let (banned, _banned_events) = connect(&front).await;
    let err = banned
        .request::<_, Value>("room.room.join", &json!({"uid": "banned-1"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "RH-403", "{err}");
    assert!(front.app.session_by_uid("banned-1").is_none());
    let whoami: Value = banned
        .request("room.room.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(whoami["uid"], Value::Null);

    client.close().await;
    within(10, async {
        while !events.lock().unwrap().contains(&"closed ada".to_owned()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let seen = events.lock().unwrap().clone();
    assert_eq!(
        seen[..4],
        ["bind ada", "bound ada", "bind banned-1", "closed ada"].map(String::from),
        "{seen:?}"
    );
    back.stop().await;
    front.stop().await;
}

#[tokio::test]
async fn memory_cluster_pool_callbacks_and_refused_binds() {
    pool_callbacks_and_refused_binds(Plane::memory()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_pool_callbacks_and_refused_binds() {
    pool_callbacks_and_refused_binds(Plane::real()).await;
}

/// What a backend's session operations send its frontend carry the
/// context of the request being served (`request.id` and the rest).
#[tokio::test]
async fn backend_session_operations_carry_the_request_context() {
    use pitaya::cluster::protos;
    use pitaya::cluster::{RpcClient, protos::RpcType};
    let cluster = MemoryCluster::new();
    let plane = Plane::Memory(cluster.clone());
    let back = room(&plane, "room-ctx").await;
    // A fake frontend that records what reaches it.
    let me = ServerInfo::new("conn-fake", "connector", true);
    let rpc = Arc::new(MemoryRpc::new(&cluster, me.clone()));
    let (requests, mut received) = tokio::sync::mpsc::unbounded_channel();
    rpc.start(Arc::new(Recorder { requests })).await.unwrap();
    let discovery = MemoryDiscovery::new(&cluster);
    discovery.start(me).await.unwrap();
    wait_for(&back.app, "connector", 1).await;

    let target = discovery.server("room-ctx").unwrap();
    let metadata = json!({"request.id": "req-abc", "req-route": "room.room.join", "game": "g7"});
    let request = protos::Request {
        r#type: RpcType::Sys as i32,
        session: Some(protos::Session {
            id: 41,
            uid: String::new(),
            data: b"{}".to_vec().into(),
        }),
        msg: Some(protos::Msg {
            id: 9,
            route: "room.room.join".into(),
            data: serde_json::to_vec(&json!({"uid": "cid"})).unwrap().into(),
            reply: String::new(),
            r#type: protos::MsgType::MsgRequest as i32,
        }),
        frontend_id: "conn-fake".into(),
        metadata: serde_json::to_vec(&metadata).unwrap().into(),
    };
    let response = rpc
        .request(&target, request, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(response.error.is_none(), "{:?}", response.error);
    // The bind, the data and the push the join made, each with the
    // request's context.
    let mut routes = Vec::new();
    while let Ok(Some(request)) =
        tokio::time::timeout(Duration::from_millis(300), received.recv()).await
    {
        let metadata: Value = serde_json::from_slice(&request.metadata).unwrap();
        let route = request.msg.unwrap().route;
        assert_eq!(metadata["request.id"], "req-abc", "{route}: {metadata}");
        assert_eq!(metadata["game"], "g7", "{route}: {metadata}");
        assert_eq!(metadata["peer.id"], "room-ctx", "{route}: {metadata}");
        routes.push(route);
    }
    assert!(routes.contains(&"sys.bindsession".to_owned()), "{routes:?}");
    assert!(routes.contains(&"sys.pushsession".to_owned()), "{routes:?}");
    back.stop().await;
}

/// A frontend shutting down closes its sessions and tells the backends
/// watching them (with the session data) before it leaves discovery.
async fn frontend_shutdown_reports_closes(plane: Plane) {
    let room = Room::new("room-sd");
    let closed = room.closed.clone();
    let back = room_with(&plane, room).await;
    let front = connector(&plane, "conn-sd", |b| b).await;
    wait_for(&front.app, "room", 1).await;
    wait_for(&back.app, "connector", 1).await;
    let (client, _events) = connect(&front).await;
    let _: Value = client
        .request("room.room.join", &json!({"uid": "fin"}))
        .await
        .unwrap();
    let _: Value = client.request("room.room.watch", &json!({})).await.unwrap();
    front.stop().await;
    // Well before the grace a vanished frontend gets: the report itself.
    within(5, async {
        loop {
            let seen = closed.lock().unwrap().clone();
            if !seen.is_empty() {
                assert_eq!(
                    seen,
                    [json!({"uid": "fin", "room": "room-sd", "closed": true})]
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    back.stop().await;
}

#[tokio::test]
async fn memory_cluster_frontend_shutdown_reports_closes() {
    frontend_shutdown_reports_closes(Plane::memory()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_frontend_shutdown_reports_closes() {
    frontend_shutdown_reports_closes(Plane::real()).await;
}

/// Only servers of the cluster may watch a frontend's sessions, and only
/// a frontend may report a close.
#[tokio::test]
async fn close_watches_and_reports_need_a_known_peer() {
    use pitaya::cluster::protos;
    use pitaya::cluster::{RpcClient, protos::RpcType};
    let cluster = MemoryCluster::new();
    let plane = Plane::Memory(cluster.clone());
    let front = connector(&plane, "conn-pv", |b| b).await;
    let back = room(&plane, "room-pv").await;
    // A caller that is not registered in discovery.
    let rpc = Arc::new(MemoryRpc::new(
        &cluster,
        ServerInfo::new("stranger", "room", false),
    ));
    let user_rpc = |route: &str, peer: &str| protos::Request {
        r#type: RpcType::User as i32,
        session: None,
        msg: Some(protos::Msg {
            id: 0,
            route: route.into(),
            data: prost::Message::encode_to_vec(&protos::Session {
                id: 1,
                uid: "x".into(),
                data: Default::default(),
            })
            .into(),
            reply: String::new(),
            r#type: protos::MsgType::MsgRequest as i32,
        }),
        frontend_id: String::new(),
        metadata: serde_json::to_vec(&json!({"peer.id": peer}))
            .unwrap()
            .into(),
    };
    let front_info = ServerInfo::new("conn-pv", "connector", true);
    let back_info = ServerInfo::new("room-pv", "room", false);
    let response = rpc
        .request(
            &front_info,
            user_rpc("sys.watchsessionclose", "stranger"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(response.error.unwrap().code, "PIT-400");
    // A backend claiming to be a frontend's close report.
    let response = rpc
        .request(
            &back_info,
            user_rpc("sys.sessionclosed", "room-pv"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(response.error.unwrap().code, "PIT-400");
    back.stop().await;
    front.stop().await;
}

//! Clustered servers end to end: a `connector` frontend (TCP acceptor) and
//! a `room` backend (no acceptor), both real `App`s, on the in-process
//! cluster (always) and on a real etcd + NATS (feature
//! `real-cluster-tests`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pitaya::app::{App, AppBuilder, AppHandle};
use pitaya::cluster::{
    MemoryCluster, MemoryDiscovery, MemoryRpc, RpcClient, RpcServer, ServerInfo, ServiceDiscovery,
};
use pitaya::prelude::*;
use pitaya_acceptors::TcpAcceptor;
use pitaya_client::{Client, Event, Events};
use pitaya_tests::within;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[derive(Debug, Serialize, Deserialize)]
struct Join {
    uid: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Info {
    server: String,
    asked: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct PushReq {
    uid: String,
    text: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sleep {
    ms: u64,
}

struct Room {
    id: String,
    notes: Arc<AtomicU64>,
}

#[component(name = "room")]
impl Room {
    #[handler]
    async fn join(
        &self,
        session: &Session,
        app: &AppHandle,
        req: Join,
    ) -> Result<Value, PitayaError> {
        session.bind(req.uid.clone())?;
        session.set("room", &self.id)?;
        session.push_to_front();
        session.push("onJoined", &json!({"uid": req.uid}))?;
        session.flush().await;
        app.push_to_users("connector", &[&req.uid], "onJoinedAll", &json!(1))
            .await?;
        Ok(json!({
            "server": self.id,
            "uid": session.uid(),
            "backend": session.is_backend(),
            "frontend": session.frontend_id(),
        }))
    }

    #[handler]
    async fn whoami(&self, session: &Session) -> Result<Value, PitayaError> {
        Ok(json!({"server": self.id, "uid": session.uid(), "room": session.get::<String>("room")?}))
    }

    #[handler]
    async fn fail(&self) -> Result<Value, PitayaError> {
        Err(PitayaError::new("ROOM-001", "room is full").with_metadata("room", "7"))
    }

    #[handler]
    async fn note(&self, _body: Value) {
        self.notes.fetch_add(1, Ordering::SeqCst);
    }

    #[handler]
    async fn kickme(&self, session: &Session) -> Result<Value, PitayaError> {
        session.kick();
        Ok(json!({"kicking": true}))
    }

    #[handler]
    async fn tell(&self, app: &AppHandle, req: PushReq) -> Result<Value, PitayaError> {
        let failed = app
            .push_to_users(
                "connector",
                &[req.uid],
                "onTell",
                &json!({"text": req.text}),
            )
            .await?;
        Ok(json!({"failed": failed}))
    }

    #[handler]
    async fn sleep(&self, req: Sleep) -> Result<Value, PitayaError> {
        tokio::time::sleep(Duration::from_millis(req.ms)).await;
        Ok(json!({"slept": req.ms}))
    }

    #[remote]
    async fn info(&self, req: String) -> Result<Info, PitayaError> {
        if req == "bad" {
            return Err(PitayaError::new("ROOM-002", "bad question").with_metadata("q", "bad"));
        }
        Ok(Info {
            server: self.id.clone(),
            asked: req,
        })
    }
}

/// The connector's own handlers: calls the room's remote through the stub.
struct Lobby;

#[component(name = "lobby")]
impl Lobby {
    #[handler]
    async fn ask(&self, app: &AppHandle, question: String) -> Result<Info, PitayaError> {
        RoomRemote::new(app.remote("room")).info(&question).await
    }
}

type Parts = (
    Arc<dyn ServiceDiscovery>,
    Arc<dyn RpcClient>,
    Arc<dyn RpcServer>,
);

/// Where the cluster plane lives.
enum Plane {
    Memory(MemoryCluster),
    #[cfg(feature = "real-cluster-tests")]
    Real {
        prefix: String,
    },
}

impl Plane {
    async fn parts(&self, me: &ServerInfo) -> Parts {
        match self {
            Self::Memory(cluster) => {
                let rpc = Arc::new(MemoryRpc::new(cluster, me.clone()));
                (Arc::new(MemoryDiscovery::new(cluster)), rpc.clone(), rpc)
            }
            #[cfg(feature = "real-cluster-tests")]
            Self::Real { prefix } => {
                use pitaya::cluster::{EtcdConfig, EtcdDiscovery, NatsConfig, NatsRpc};
                let etcd = std::env::var("PITAYA_TEST_ETCD").expect("PITAYA_TEST_ETCD");
                let nats = std::env::var("PITAYA_TEST_NATS").expect("PITAYA_TEST_NATS");
                let mut config = EtcdConfig::new([etcd]);
                config.prefix.clone_from(prefix);
                let discovery = Arc::new(EtcdDiscovery::new(config));
                let rpc = Arc::new(
                    NatsRpc::connect(NatsConfig::new(nats), me.clone())
                        .await
                        .unwrap(),
                );
                (discovery, rpc.clone(), rpc)
            }
        }
    }
}

struct Node {
    app: AppHandle,
    url: Option<String>,
    task: JoinHandle<()>,
}

impl Node {
    async fn stop(self) {
        self.app.shutdown();
        within(20, self.task).await.unwrap();
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

async fn start(builder: AppBuilder, url: Option<String>) -> Node {
    let app = builder.build().unwrap();
    let handle = app.handle();
    let task = tokio::spawn(async move {
        app.run_until(std::future::pending()).await.unwrap();
    });
    Node {
        app: handle,
        url,
        task,
    }
}

async fn connector(
    plane: &Plane,
    id: &str,
    configure: impl FnOnce(AppBuilder) -> AppBuilder,
) -> Node {
    init_tracing();
    let me = ServerInfo::new(id, "connector", true);
    let (discovery, client, server) = plane.parts(&me).await;
    let tcp = TcpAcceptor::bind("127.0.0.1:0").await.unwrap();
    let url = pitaya::acceptor::Acceptor::url(&tcp);
    let builder = App::builder("connector")
        .acceptor(tcp)
        .register(Lobby)
        .cluster(discovery, client, server)
        .server_id(id)
        .rpc_timeout(Duration::from_secs(2));
    start(configure(builder), Some(url)).await
}

async fn room(plane: &Plane, id: &str, notes: Arc<AtomicU64>) -> Node {
    init_tracing();
    let me = ServerInfo::new(id, "room", false);
    let (discovery, client, server) = plane.parts(&me).await;
    let builder = App::builder("room")
        .register(Room {
            id: id.to_owned(),
            notes,
        })
        .cluster(discovery, client, server)
        .server_id(id);
    start(builder, None).await
}

async fn connect(node: &Node) -> (Client, Events) {
    Client::builder()
        .request_timeout(Duration::from_secs(5))
        .connect(node.url.as_deref().unwrap())
        .await
        .unwrap()
}

/// Waits until `node` sees `count` servers of `server_type`.
async fn wait_for(node: &Node, server_type: &str, count: usize) {
    let discovery = node.app.discovery().unwrap().clone();
    within(10, async {
        while discovery.servers_of_type(server_type).len() != count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn next_push(events: &mut Events) -> (String, Value) {
    loop {
        match within(5, events.next()).await {
            Some(Event::Push { route, body }) => {
                return (route, serde_json::from_slice(&body).unwrap());
            }
            Some(_) => {}
            None => panic!("connection closed while waiting for a push"),
        }
    }
}

async fn wait_kicked(events: &mut Events) {
    loop {
        match within(5, events.next()).await {
            Some(Event::Kicked) => return,
            Some(Event::Push { .. }) => {}
            other => panic!("expected a kick, got {other:?}"),
        }
    }
}

/// Requests, binds, pushes, errors, notifies, remotes and kicks through a
/// frontend to a backend.
async fn core_scenarios(plane: Plane) {
    let notes = Arc::new(AtomicU64::new(0));
    let front = connector(&plane, "conn-1", |b| b).await;
    let back = room(&plane, "room-1", notes.clone()).await;
    wait_for(&front, "room", 1).await;
    wait_for(&back, "connector", 1).await;
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
    let failed = back
        .app
        .push_to_users("connector", &["ana"], "onHandle", &json!(1))
        .await
        .unwrap();
    assert!(failed.is_empty());
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
    let failed = back.app.kick_users("connector", &["bob"]).await;
    assert!(failed.is_empty());
    wait_kicked(&mut events2).await;

    back.stop().await;
    front.stop().await;
}

/// The backend goes away: the client gets an error, nothing hangs.
async fn backend_gone(plane: Plane) {
    let front = connector(&plane, "conn-g", |b| b).await;
    let back = room(&plane, "room-g", Arc::default()).await;
    wait_for(&front, "room", 1).await;
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

#[tokio::test]
async fn memory_cluster_core_scenarios() {
    core_scenarios(Plane::Memory(MemoryCluster::new())).await;
}

#[tokio::test]
async fn memory_cluster_backend_gone() {
    backend_gone(Plane::Memory(MemoryCluster::new())).await;
}

#[tokio::test]
async fn custom_router_picks_by_session_data() {
    let plane = Plane::Memory(MemoryCluster::new());
    let front = connector(&plane, "conn-r", |b| {
        b.router("room", |_ctx, session, servers| {
            let wanted: Option<String> = session.get("want").ok().flatten();
            let wanted = wanted.unwrap_or_else(|| "room-b".to_owned());
            servers.iter().find(|s| s.id == wanted).cloned()
        })
    })
    .await;
    let a = room(&plane, "room-a", Arc::default()).await;
    let b = room(&plane, "room-b", Arc::default()).await;
    wait_for(&front, "room", 2).await;
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
    let plane = Plane::Memory(MemoryCluster::new());
    let one = connector(&plane, "conn-u1", |b| b).await;
    let two = connector(&plane, "conn-u2", |b| b).await;
    let back = room(&plane, "room-u", Arc::default()).await;
    wait_for(&one, "room", 1).await;
    wait_for(&two, "room", 1).await;
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
    let plane = Plane::Memory(MemoryCluster::new());
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
fn real_plane() -> Plane {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Plane::Real {
        prefix: format!("pitaya-rs-test-{unique}/"),
    }
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_core_scenarios() {
    core_scenarios(real_plane()).await;
}

#[cfg(feature = "real-cluster-tests")]
#[tokio::test]
async fn real_cluster_backend_gone() {
    backend_gone(real_plane()).await;
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
    wait_for(&front, "room", 1).await;

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
    assert!(
        metadata["request.id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    client
        .notify("room.room.note", &json!({"n": 2}))
        .await
        .unwrap();
    let request = within(5, received.recv()).await.unwrap();
    let msg = request.msg.unwrap();
    assert_eq!(msg.r#type, MsgType::MsgNotify as i32);
    assert_eq!(msg.id, 0);

    discovery.stop().await.unwrap();
    rpc.stop().await.unwrap();
    front.stop().await;
}

//! The harness of the cluster suites: where the cluster plane lives (in
//! process, or a real etcd + NATS), and `connector` / `room` servers as
//! real `App`s running in the test process.

use std::time::Duration;

use pitaya::app::{App, AppBuilder, AppHandle};
use pitaya::cluster::{Cluster, EtcdConfig, MemoryCluster, NatsConfig};
use pitaya_acceptors::TcpAcceptor;
use pitaya_client::{Client, Event, Events};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::processes::required_env;
use crate::room::{Lobby, Room};
use crate::{init_tracing, within};

/// Where the cluster plane lives.
#[derive(Clone)]
pub enum Plane {
    /// The in-process discovery and RPC.
    Memory(MemoryCluster),
    /// A real etcd and NATS, with servers under `prefix` in etcd.
    Real {
        etcd: String,
        nats: String,
        prefix: String,
    },
}

impl Plane {
    /// A fresh in-process cluster.
    pub fn memory() -> Self {
        Self::Memory(MemoryCluster::new())
    }

    /// The etcd and NATS of `scripts/cluster-deps.sh` (`PITAYA_TEST_ETCD`,
    /// `PITAYA_TEST_NATS`), under a prefix of its own.
    pub fn real() -> Self {
        Self::real_at(
            required_env("PITAYA_TEST_ETCD"),
            required_env("PITAYA_TEST_NATS"),
        )
    }

    /// A real plane on the given etcd and NATS, under a prefix of its own.
    pub fn real_at(etcd: String, nats: String) -> Self {
        Self::Real {
            etcd,
            nats,
            prefix: format!("{}/", crate::processes::unique("pitaya-rs-test")),
        }
    }

    /// The etcd configuration of a real plane: the test's prefix, and
    /// renewals and retries fast enough for restart tests (a lost lease is
    /// noticed at the next renewal, every third of the TTL: 20 s with the
    /// default TTL).
    pub fn etcd_config(etcd: &str, prefix: &str) -> EtcdConfig {
        let mut config = EtcdConfig::new([etcd.to_owned()]);
        config.prefix = prefix.to_owned();
        config.heartbeat_ttl = Duration::from_secs(5);
        config.keepalive_retry_delay = Duration::from_millis(500);
        config.grant_lease_retry_interval = Duration::from_millis(500);
        config.dial_timeout = Duration::from_secs(2);
        config.shutdown_delay = Duration::from_millis(50);
        config
    }

    /// The cluster a server joins on this plane: what the app builder
    /// takes, as in a game.
    pub fn cluster(&self) -> Cluster {
        match self {
            Self::Memory(cluster) => Cluster::memory(cluster),
            Self::Real { etcd, nats, prefix } => {
                Cluster::etcd_nats(Self::etcd_config(etcd, prefix), Self::nats_config(nats))
            }
        }
    }

    /// The NATS configuration of a real plane: reconnecting forever, fast.
    pub fn nats_config(nats: &str) -> NatsConfig {
        let mut config = NatsConfig::new(nats.to_owned());
        config.max_reconnection_retries = None;
        config.reconnect_wait = Duration::from_millis(200);
        config
    }
}

/// A server running in this process.
pub struct Node {
    pub app: AppHandle,
    /// The client endpoint of a frontend.
    pub url: Option<String>,
    pub task: JoinHandle<()>,
}

impl Node {
    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(self) {
        self.app.shutdown();
        within(20, self.task).await.unwrap();
    }
}

/// Builds and runs `builder` in the background; returns once it is ready.
pub async fn start(builder: AppBuilder, url: Option<String>) -> Node {
    let app = builder.build().unwrap();
    let handle = app.handle();
    let task = tokio::spawn(async move {
        app.run_until(std::future::pending()).await.unwrap();
    });
    // Registered in the cluster, accepting clients.
    within(20, async {
        while !handle.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    Node {
        app: handle,
        url,
        task,
    }
}

/// A `connector` frontend (TCP, the lobby component, RPC timeout 2 s),
/// customised by `configure`.
pub async fn connector(
    plane: &Plane,
    id: &str,
    configure: impl FnOnce(AppBuilder) -> AppBuilder,
) -> Node {
    init_tracing();
    let tcp = TcpAcceptor::bind("127.0.0.1:0").await.unwrap();
    let url = pitaya::acceptor::Acceptor::url(&tcp);
    let builder = App::builder("connector")
        .acceptor(tcp)
        .register(Lobby)
        .cluster(plane.cluster())
        .server_id(id)
        .rpc_timeout(Duration::from_secs(2));
    start(configure(builder), Some(url)).await
}

/// A `room` backend running `room`.
pub async fn room_with(plane: &Plane, room: Room) -> Node {
    init_tracing();
    let id = room.id.clone();
    let builder = App::builder("room")
        .register(room)
        .server_id(id)
        .cluster(plane.cluster());
    start(builder, None).await
}

/// A `room` backend with id `id`.
pub async fn room(plane: &Plane, id: &str) -> Node {
    room_with(plane, Room::new(id)).await
}

/// A client connected to the frontend `node` (request timeout 5 s).
pub async fn connect(node: &Node) -> (Client, Events) {
    Client::builder()
        .request_timeout(Duration::from_secs(5))
        .connect(node.url.as_deref().unwrap())
        .await
        .unwrap()
}

/// Waits until `app` sees `count` servers of `server_type`.
pub async fn wait_for(app: &AppHandle, server_type: &str, count: usize) {
    let discovery = app.discovery().unwrap().clone();
    within(15, async {
        while discovery.servers_of_type(server_type).len() != count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The next push on `events` (skipping other events).
pub async fn next_push(events: &mut Events) -> (String, Value) {
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

/// Waits for a kick on `events` (skipping pushes).
pub async fn wait_kicked(events: &mut Events) {
    loop {
        match within(5, events.next()).await {
            Some(Event::Kicked) => return,
            Some(Event::Push { .. }) => {}
            other => panic!("expected a kick, got {other:?}"),
        }
    }
}

/// Retries `request` every 100 ms until it succeeds, for at most `secs`.
pub async fn eventually_ok(client: &Client, route: &str, body: &Value, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match client.request::<_, Value>(route, body).await {
            Ok(reply) => return reply,
            Err(err) => assert!(
                tokio::time::Instant::now() < deadline,
                "{route} still failing after {secs} s: {err:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

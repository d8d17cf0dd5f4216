//! Clustered servers on a real etcd + NATS when things go wrong: a backend
//! process killed mid-request or stopped with SIGTERM, a restarted backend,
//! and etcd and NATS restarting under running servers. The backends that
//! die are real child processes (the `cluster-node` binary of this
//! package); the frontend is an `App` in the test process.
#![cfg(feature = "real-cluster-tests")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use pitaya::App;
use pitaya::Audience;
use pitaya::cluster::{Cluster, EtcdDiscovery, NatsConfig, ServerInfo, ServiceDiscovery};
use pitaya_client::Client;
use pitaya_tests::cluster::{
    Node, Plane, connect, connector, eventually_ok, next_push, room, wait_for,
};
use pitaya_tests::node::{NodeConfig, NodeProcess};
use pitaya_tests::processes::{EtcdProcess, NatsProcess, required_env, unique};
use pitaya_tests::room::{Room, RoomRemote};
use pitaya_tests::within;
use serde_json::{Value, json};

/// The etcd lease TTL of the node processes: how long a killed node stays
/// listed.
const NODE_LEASE_TTL: Duration = Duration::from_secs(6);

fn node_config(plane: &Plane) -> NodeConfig {
    let Plane::Real { etcd, nats, prefix } = plane else {
        unreachable!("node processes need a real plane")
    };
    NodeConfig {
        binary: env!("CARGO_BIN_EXE_cluster-node").to_owned(),
        etcd: etcd.clone(),
        nats: nats.clone(),
        prefix: prefix.clone(),
        lease_ttl: NODE_LEASE_TTL,
    }
}

async fn pid_of_server(client: &Client) -> u64 {
    let reply: Value = client.request("room.room.pid", &json!({})).await.unwrap();
    reply["pid"].as_u64().unwrap()
}

fn code(err: &pitaya_client::Error) -> String {
    err.server_error().map_or_else(
        || format!("not a server error: {err:?}"),
        |e| e.code.clone(),
    )
}

/// A frontend in this process, a room node process `id` it routes to, and
/// a client of the frontend.
async fn front_and_node(id: &str) -> (NodeConfig, Node, NodeProcess, Client) {
    let plane = Plane::real();
    let config = node_config(&plane);
    let front = connector(&plane, &unique("conn"), |b| b).await;
    let node = NodeProcess::start(&config, id);
    wait_for(&front.app, "room", 1).await;
    let (client, _events) = connect(&front).await;
    assert_eq!(pid_of_server(&client).await, u64::from(node.pid()));
    (config, front, node, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_fails_fast_and_restarted_backends_are_found() {
    let (config, front, mut node, client) = front_and_node("room-p1").await;

    // SIGKILL while a request is in the backend: the client gets an error
    // by the frontend's RPC timeout (2 s), not its own (5 s).
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = client
                .request::<_, Value>("room.room.sleep", &json!({"ms": 4000}))
                .await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.kill();
    let (result, elapsed) = within(5, slow).await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(code(&err), "PIT-408", "{err:?}");
    assert!(
        elapsed < Duration::from_millis(3500),
        "error after {elapsed:?}"
    );

    // Still listed until its lease expires, but nobody answers its
    // subject: requests fail at once instead of waiting for the timeout.
    if front.app.discovery().unwrap().server("room-p1").is_some() {
        let started = Instant::now();
        let err = client
            .request::<_, Value>("room.room.pid", &json!({}))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(code(&err), "PIT-500", "{err:?}");
        assert!(
            err.server_error().unwrap().msg.contains("no responders"),
            "{err:?}"
        );
    }

    // Restarted under the same id: served by the new process.
    let mut restarted = NodeProcess::start(&config, "room-p1");
    let new_pid = u64::from(restarted.pid());
    within(20, async {
        loop {
            if let Ok(reply) = client
                .request::<_, Value>("room.room.pid", &json!({}))
                .await
                && reply["pid"].as_u64() == Some(new_pid)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    // Killed for good: dropped once its lease expires, then no server of
    // the type is left.
    restarted.kill();
    within(NODE_LEASE_TTL.as_secs() + 10, async {
        while front.app.discovery().unwrap().server("room-p1").is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let err = client
        .request::<_, Value>("room.room.pid", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "PIT-500", "{err:?}");
    assert_eq!(
        err.server_error().unwrap().msg,
        "no servers available of this type"
    );

    // A backend started under a new id (Pitaya's usual deploy) is found.
    let other = NodeProcess::start(&config, "room-p2");
    wait_for(&front.app, "room", 1).await;
    assert_eq!(pid_of_server(&client).await, u64::from(other.pid()));
    front.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_leaves_routing_at_once_and_returns_when_it_registers_again() {
    let (config, front, mut dead, client) = front_and_node("room-p3").await;
    let survivor = NodeProcess::start(&config, "room-p4");
    wait_for(&front.app, "room", 2).await;
    dead.kill();
    // The killed server stays listed until its lease expires, yet no
    // request fails: the first one that finds nobody listening sets it
    // aside and goes to the survivor.
    let mut served = 0;
    while front.app.discovery().unwrap().server("room-p3").is_some() && served < 20 {
        let reply: Value = client
            .request("room.room.pid", &json!({}))
            .await
            .expect("served by the survivor while the dead server is listed");
        assert_eq!(reply["pid"].as_u64(), Some(u64::from(survivor.pid())));
        served += 1;
    }
    assert!(served >= 5, "the lease expired after {served} requests");

    // Restarted under the same id, it registers again and is routed to.
    let restarted = NodeProcess::start(&config, "room-p3");
    let restarted_pid = u64::from(restarted.pid());
    within(20, async {
        while pid_of_server(&client).await != restarted_pid {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    front.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_deregisters_first_then_finishes_the_request_in_flight() {
    let (_config, front, mut node, client) = front_and_node("room-t1").await;

    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request::<_, Value>("room.room.sleep", &json!({"ms": 1500}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.terminate();

    // Deregistered first: the frontend stops routing to it while its
    // request is still running...
    wait_for(&front.app, "room", 0).await;
    assert!(
        !slow.is_finished(),
        "deregistration must come before the drain"
    );
    let err = client
        .request::<_, Value>("room.room.pid", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "PIT-500", "{err:?}");

    // ... which completes normally, and the process exits cleanly.
    let reply = within(5, slow).await.unwrap().unwrap();
    assert_eq!(reply["slept"], 1500);
    let status = tokio::task::spawn_blocking(move || node.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    front.stop().await;
}

/// An observer of the plane's etcd prefix: what is registered there.
async fn observer(etcd: &str, prefix: &str) -> EtcdDiscovery {
    let discovery = EtcdDiscovery::new(Plane::etcd_config(etcd, prefix));
    discovery
        .start(ServerInfo::new(unique("observer"), "observer", false))
        .await
        .unwrap();
    discovery
}

async fn wait_listed(discovery: &EtcdDiscovery, server_type: &str, count: usize) {
    within(20, async {
        while discovery.servers_of_type(server_type).len() != count {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_reregister_after_an_etcd_restart_that_lost_its_data() {
    let mut etcd = EtcdProcess::start();
    let plane = Plane::real_at(etcd.url(), required_env("PITAYA_TEST_NATS"));
    let Plane::Real { prefix, .. } = &plane else {
        unreachable!()
    };
    let front = connector(&plane, "conn-e", |b| b).await;
    let back = room(&plane, "room-e1").await;
    wait_for(&front.app, "room", 1).await;
    wait_for(&back.app, "connector", 1).await;
    let (client, _events) = connect(&front).await;
    let _: Value = client
        .request("room.room.whoami", &json!({}))
        .await
        .unwrap();

    // A new, empty etcd on the same address: every key and lease is gone.
    etcd.restart(true);

    // Both servers register again.
    let watcher = observer(&etcd.url(), prefix).await;
    wait_listed(&watcher, "connector", 1).await;
    wait_listed(&watcher, "room", 1).await;
    assert!(watcher.server("conn-e").is_some() && watcher.server("room-e1").is_some());
    let _ = eventually_ok(&client, "room.room.whoami", &json!({}), 20).await;

    // The frontend's watch works again: a backend started now is found.
    let late = room(&plane, "room-e2").await;
    wait_for(&front.app, "room", 2).await;
    let info = RoomRemote::new(front.app.remote_to("room", "room-e2"))
        .info(&"after the restart".to_owned())
        .await
        .unwrap();
    assert_eq!(info.server, "room-e2");

    watcher.stop().await.unwrap();
    stop_all([late, back, front]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pushes_and_remotes_resume_after_a_nats_restart() {
    let mut nats = NatsProcess::start();
    let plane = Plane::real_at(required_env("PITAYA_TEST_ETCD"), nats.url());
    let front = connector(&plane, &unique("conn"), |b| b).await;
    let back = room(&plane, "room-n1").await;
    wait_for(&front.app, "room", 1).await;
    let (client, mut events) = connect(&front).await;
    let _: Value = client
        .request("room.room.join", &json!({"uid": "nia"}))
        .await
        .unwrap();
    assert_eq!(next_push(&mut events).await.0, "onJoined");
    assert_eq!(next_push(&mut events).await.0, "onJoinedAll");

    nats.restart();

    // Forwarded requests resume, with the session bound as before.
    let reply = eventually_ok(&client, "room.room.whoami", &json!({}), 20).await;
    assert_eq!(reply["uid"], "nia");
    // Remote calls resume.
    let stub = RoomRemote::new(front.app.remote("room"));
    within(20, async {
        while stub.info(&"again".to_owned()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Pushes to the uid reach the client again (its frontend subscribed
    // again to the user's subject).
    within(20, async {
        loop {
            back.app
                .push(Audience::uid("nia").via("connector"), "onAgain", &json!(1))
                .await
                .unwrap();
            let pushed = tokio::time::timeout(Duration::from_millis(300), next_push(&mut events));
            if let Ok((route, _)) = pushed.await {
                assert_eq!(route, "onAgain");
                break;
            }
        }
    })
    .await;
    stop_all([back, front]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_nats_is_gone_for_good_turns_not_ready_and_stops() {
    let mut nats = NatsProcess::start();
    let etcd = required_env("PITAYA_TEST_ETCD");
    let prefix = format!("{}/", unique("lost-nats"));
    let mut nats_config = NatsConfig::new(nats.url());
    nats_config.max_reconnection_retries = Some(2);
    nats_config.reconnect_wait = Duration::from_millis(100);
    let app = App::builder("room")
        .register(Room::new("room-lost"))
        .server_id("room-lost")
        .cluster(Cluster::etcd_nats(
            Plane::etcd_config(&etcd, &prefix),
            nats_config,
        ))
        .cluster_grace(Duration::from_millis(500))
        .build()
        .unwrap();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until(std::future::pending()));
    within(20, async {
        while !handle.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let watcher = observer(&etcd, &prefix).await;
    wait_listed(&watcher, "room", 1).await;

    nats.kill();
    within(30, async {
        while handle.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // The app stops by itself after its grace period, deregistered.
    within(30, task).await.unwrap().unwrap();
    wait_listed(&watcher, "room", 0).await;
    watcher.stop().await.unwrap();
}

async fn stop_all<const N: usize>(nodes: [Node; N]) {
    for node in nodes {
        node.stop().await;
    }
}

//! `EtcdDiscovery` against a real etcd: the one of `scripts/cluster-deps.sh`
//! (`PITAYA_TEST_ETCD`), and etcd processes started here for the restart
//! scenarios. Compiled with `--features real-cluster-tests` only
//! (which implies `etcd`).
#![cfg(all(feature = "real-cluster-tests", feature = "etcd"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use pitaya_cluster::{DiscoveryEvent, EtcdConfig, EtcdDiscovery, ServerInfo, ServiceDiscovery};
use support::{EtcdProcess, etcd_url, eventually, unique};
use tokio::sync::broadcast;

/// Settings for tests: a private prefix, and short delays so that lease
/// loss is noticed and repaired within seconds.
fn config(endpoint: &str, prefix: &str) -> EtcdConfig {
    let mut config = EtcdConfig::new([endpoint]);
    config.prefix = prefix.to_owned();
    config.heartbeat_ttl = Duration::from_secs(2);
    config.keepalive_retry_delay = Duration::from_millis(200);
    config.grant_lease_retry_interval = Duration::from_millis(300);
    config.grant_lease_max_retries = 100;
    config.dial_timeout = Duration::from_secs(2);
    config.revoke_timeout = Duration::from_secs(1);
    config.shutdown_delay = Duration::ZERO;
    config
}

fn server(id: &str, server_type: &str, frontend: bool) -> ServerInfo {
    ServerInfo::new(id, server_type, frontend)
        .with_hostname("test-host")
        .with_metadata("region", "test")
}

async fn raw_client(endpoint: &str) -> Client {
    Client::connect([endpoint], None)
        .await
        .expect("connect to etcd")
}

/// `(value, lease)` of `key`, if present.
async fn read_key(client: &Client, key: &str) -> Option<(String, i64)> {
    let mut client = client.clone();
    let response = client.get(key, None).await.expect("etcd get");
    response
        .kvs()
        .first()
        .map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
}

async fn next_event(
    events: &mut broadcast::Receiver<DiscoveryEvent>,
    within: Duration,
) -> DiscoveryEvent {
    tokio::time::timeout(within, events.recv())
        .await
        .expect("no discovery event in time")
        .expect("event channel")
}

fn ids(servers: &[Arc<ServerInfo>]) -> Vec<String> {
    servers.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_list_watch_and_revoke_between_two_servers() {
    let endpoint = etcd_url();
    let prefix = format!("{}/", unique("pitaya-test"));
    let etcd = raw_client(&endpoint).await;

    let front_info = server(&unique("front"), "connector", true);
    let room_info = server(&unique("room"), "room", false);

    let front = EtcdDiscovery::new(config(&endpoint, &prefix));
    let mut events = front.events();
    front.start(front_info.clone()).await.unwrap();
    assert_eq!(
        ids(&front.servers_of_type("connector")),
        [front_info.id.as_str()]
    );

    // The exact key and value, under a lease.
    let front_key = format!("{prefix}servers/connector/{}", front_info.id);
    let (value, lease) = read_key(&etcd, &front_key)
        .await
        .expect("front key in etcd");
    assert_eq!(
        value,
        format!(
            r#"{{"id":"{}","type":"connector","metadata":{{"region":"test"}},"frontend":true,"hostname":"test-host"}}"#,
            front_info.id
        )
    );
    assert_ne!(lease, 0, "the key is leased");

    // A long TTL: only the revocation can make the key go away quickly.
    let mut room_config = config(&endpoint, &prefix);
    room_config.heartbeat_ttl = Duration::from_secs(60);
    let room = EtcdDiscovery::new(room_config);
    room.start(room_info.clone()).await.unwrap();
    // The late starter lists the earlier one at start...
    assert_eq!(*room.server(&front_info.id).unwrap(), front_info);
    // ...and the earlier one learns about it through the watch.
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        DiscoveryEvent::Added(Arc::new(room_info.clone()))
    );
    assert_eq!(*front.server(&room_info.id).unwrap(), room_info);
    assert_eq!(front.servers().len(), 2);
    let room_key = format!("{prefix}servers/room/{}", room_info.id);
    assert_eq!(
        read_key(&etcd, &room_key).await.unwrap().0,
        room_info.to_json()
    );

    // Stop revokes the lease: the key is gone at once (the TTL is 60 s),
    // and watchers see the server go.
    let started = tokio::time::Instant::now();
    room.stop().await.unwrap();
    assert!(
        read_key(&etcd, &room_key).await.is_none(),
        "key removed by revoke"
    );
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        DiscoveryEvent::Removed(Arc::new(room_info.clone()))
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "removal took {:?}",
        started.elapsed()
    );
    assert!(front.servers_of_type("room").is_empty());

    front.stop().await.unwrap();
    assert!(read_key(&etcd, &front_key).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_blacklist_and_bad_values() {
    let endpoint = etcd_url();
    let prefix = format!("{}/", unique("pitaya-test"));
    let mut etcd = raw_client(&endpoint).await;

    let mut cfg = config(&endpoint, &prefix);
    cfg.server_types_blacklist = vec!["bot".into()];
    let sd = EtcdDiscovery::new(cfg);
    sd.start(server(&unique("me"), "connector", true))
        .await
        .unwrap();
    let mut events = sd.events();

    // A server written by someone else (e.g. a Go server) shows up.
    let go_server =
        r#"{"id":"go-1","type":"room","metadata":{},"frontend":false,"hostname":"go-host"}"#;
    etcd.put(format!("{prefix}servers/room/go-1"), go_server, None)
        .await
        .unwrap();
    etcd.put(
        format!("{prefix}servers/bot/b-1"),
        go_server.replace("go-1", "b-1"),
        None,
    )
    .await
    .unwrap();
    etcd.put(format!("{prefix}servers/room/bad"), "not json", None)
        .await
        .unwrap();
    let added = next_event(&mut events, Duration::from_secs(5)).await;
    assert_eq!(added.server().id, "go-1");
    assert_eq!(added.server().hostname, "go-host");
    // A later PUT for a known id is that server registering again: its
    // newer registration replaces the old one, without an event (Go keeps
    // the first one until the key is deleted).
    etcd.put(
        format!("{prefix}servers/room/go-1"),
        go_server.replace("go-host", "other"),
        None,
    )
    .await
    .unwrap();
    support::eventually(Duration::from_secs(5), "the newer registration", || {
        sd.server("go-1")
            .is_some_and(|server| server.hostname == "other")
    })
    .await;
    etcd.delete(format!("{prefix}servers/room/go-1"), None)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5))
            .await
            .server()
            .hostname,
        "other",
        "the delete is the next event: the re-put emitted none"
    );
    assert!(sd.server("b-1").is_none(), "blacklisted type");
    assert!(sd.server("bad").is_none());
    assert!(sd.is_connected().await);
    sd.stop().await.unwrap();
    etcd.delete(
        prefix.as_str(),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_loss_reregisters() {
    let endpoint = etcd_url();
    let prefix = format!("{}/", unique("pitaya-test"));
    let mut etcd = raw_client(&endpoint).await;

    let me = server(&unique("room"), "room", false);
    let sd = EtcdDiscovery::new(config(&endpoint, &prefix));
    sd.start(me.clone()).await.unwrap();
    let observer = EtcdDiscovery::new(config(&endpoint, &prefix));
    observer
        .start(server(&unique("front"), "connector", true))
        .await
        .unwrap();
    let mut events = observer.events();

    let key = format!("{prefix}servers/room/{}", me.id);
    let (_, lease) = read_key(&etcd, &key).await.unwrap();
    // Someone revokes our lease: the key goes away...
    etcd.lease_revoke(lease).await.unwrap();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        DiscoveryEvent::Removed(Arc::new(me.clone()))
    );
    // ...and comes back under a new lease once the keep-alive notices.
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10)).await,
        DiscoveryEvent::Added(Arc::new(me.clone()))
    );
    let (value, new_lease) = read_key(&etcd, &key).await.expect("re-registered");
    assert_eq!(value, me.to_json());
    assert_ne!(new_lease, lease);
    // Its own watch may deliver the re-put a moment after the observer's.
    support::eventually(Duration::from_secs(5), "sees itself again", || {
        sd.server(&me.id).is_some()
    })
    .await;

    sd.stop().await.unwrap();
    observer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_reregisters_and_resync_drops_stale_servers() {
    let mut etcd_process = EtcdProcess::start();
    let endpoint = etcd_process.url();
    let prefix = "pitaya/";

    let me = server(&unique("room"), "room", false);
    let sd = EtcdDiscovery::new(config(&endpoint, prefix));
    sd.start(me.clone()).await.unwrap();
    let other = server(&unique("front"), "connector", true);
    let other_sd = EtcdDiscovery::new(config(&endpoint, prefix));
    other_sd.start(other.clone()).await.unwrap();
    eventually(Duration::from_secs(5), "sd sees the other server", || {
        sd.server(&other.id).is_some()
    })
    .await;
    let key = format!("{prefix}servers/room/{}", me.id);

    // 1. Restart with the data kept: the registration survives or is redone.
    etcd_process.restart(false);
    let etcd = raw_client(&endpoint).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if read_key(&etcd, &key).await.is_some() && sd.server(&other.id).is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not registered after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2. The other server dies while etcd is down, then etcd comes back
    //    empty (a new cluster): `me` registers again, and the resync drops
    //    the other server, whose key no watch will ever delete.
    etcd_process.kill();
    let _ = other_sd.stop().await; // cannot revoke: etcd is down
    etcd_process.restart(true);
    let etcd = raw_client(&endpoint).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let registered = read_key(&etcd, &key).await.is_some();
        if registered && sd.server(&other.id).is_none() && sd.server(&me.id).is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after a wiped restart: registered={registered}, servers={:?}",
            ids(&sd.servers())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read_key(&etcd, &key).await.unwrap().0, me.to_json());

    // 3. A server registered after the restart is seen again: the watch works.
    let late = server(&unique("late"), "room", false);
    let late_sd = EtcdDiscovery::new(config(&endpoint, prefix));
    late_sd.start(late.clone()).await.unwrap();
    eventually(Duration::from_secs(5), "sd sees the late server", || {
        sd.server(&late.id).is_some()
    })
    .await;

    late_sd.stop().await.unwrap();
    sd.stop().await.unwrap();
    assert!(read_key(&etcd, &key).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_without_etcd() {
    let port = support::free_port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), "pitaya/");
    cfg.dial_timeout = Duration::from_millis(500);
    let sd = EtcdDiscovery::new(cfg);
    let started = tokio::time::Instant::now();
    assert!(sd.start(server("x", "room", false)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = sd.stop().await;
}

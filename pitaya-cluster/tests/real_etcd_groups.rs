//! `EtcdGroups` against a real etcd: the one of `scripts/cluster-deps.sh`
//! (`PITAYA_TEST_ETCD`), each test under its own prefix. Compiled with
//! `--features real-cluster-tests` only (which implies `etcd`).
#![cfg(all(feature = "real-cluster-tests", feature = "etcd"))]

mod support;

use std::time::Duration;

use etcd_client::{Client, GetOptions};
use pitaya_cluster::{EtcdConfig, EtcdGroups, EtcdGroupsConfig};
use pitaya_core::app::App;
use pitaya_core::group::{GroupError, GroupService, Groups};
use pitaya_core::push::Audience;
use pitaya_core::testing::TestApp;
use support::{etcd_url, unique};

fn config(endpoint: &str, prefix: &str) -> EtcdGroupsConfig {
    let mut config = EtcdGroupsConfig::new([endpoint]);
    config.prefix = prefix.to_owned();
    config.dial_timeout = Duration::from_secs(2);
    config.transaction_timeout = Duration::from_secs(2);
    config
}

async fn connect(endpoint: &str, prefix: &str) -> EtcdGroups {
    EtcdGroups::connect(config(endpoint, prefix))
        .await
        .expect("connect to etcd")
}

fn test_prefix() -> String {
    format!("{}/", unique("pitaya-groups"))
}

async fn raw_client(endpoint: &str) -> Client {
    Client::connect([endpoint], None)
        .await
        .expect("connect to etcd")
}

/// Every key under `prefix`, sorted: `(key, value, lease)`.
async fn keys(client: &Client, prefix: &str) -> Vec<(String, String, i64)> {
    let mut client = client.clone();
    let response = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .expect("etcd get");
    response
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
                kv.lease(),
            )
        })
        .collect()
}

fn not_found(name: &str) -> GroupError {
    GroupError::NotFound(name.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_error_on_gos_keys() {
    let endpoint = etcd_url();
    let prefix = test_prefix();
    let etcd = raw_client(&endpoint).await;
    let groups = connect(&endpoint, &prefix).await;
    assert_eq!(groups.config().prefix, prefix);

    groups.create("room").await.unwrap();
    assert_eq!(
        groups.create("room").await,
        Err(GroupError::Exists("room".into()))
    );
    groups.get_or_create("room").await.unwrap();
    for uid in ["bob", "ana"] {
        groups.add("room", uid).await.unwrap();
    }
    assert_eq!(
        groups.add("room", "ana").await,
        Err(GroupError::MemberExists {
            group: "room".into(),
            uid: "ana".into()
        })
    );
    assert_eq!(groups.add("room", "").await, Err(GroupError::EmptyUid));
    assert_eq!(groups.contains("room", "").await, Err(GroupError::EmptyUid));
    assert_eq!(groups.members("room").await.unwrap(), ["ana", "bob"]);
    assert_eq!(groups.count("room").await, Ok(2));
    assert_eq!(groups.contains("room", "ana").await, Ok(true));
    assert_eq!(groups.contains("room", "carl").await, Ok(false));

    // Go's layout: the group key and one key per member, empty values, no
    // lease without a TTL.
    assert_eq!(
        keys(&etcd, &prefix).await,
        [
            (format!("{prefix}groups/room"), String::new(), 0),
            (format!("{prefix}groups/room/uids/ana"), String::new(), 0),
            (format!("{prefix}groups/room/uids/bob"), String::new(), 0),
        ]
    );

    groups.remove("room", "ana").await.unwrap();
    assert_eq!(
        groups.remove("room", "ana").await,
        Err(GroupError::MemberNotFound {
            group: "room".into(),
            uid: "ana".into()
        })
    );
    assert_eq!(groups.members("room").await.unwrap(), ["bob"]);
    assert_eq!(
        groups.renew_ttl("room").await,
        Err(GroupError::NoTtl("room".into()))
    );

    // remove_all keeps the group key.
    groups.add("room", "carl").await.unwrap();
    groups.remove_all("room").await.unwrap();
    assert_eq!(groups.count("room").await, Ok(0));
    assert_eq!(
        keys(&etcd, &prefix).await,
        [(format!("{prefix}groups/room"), String::new(), 0)]
    );

    groups.add("room", "dan").await.unwrap();
    groups.delete("room").await.unwrap();
    assert!(keys(&etcd, &prefix).await.is_empty(), "delete removes all");
    assert_eq!(groups.delete("room").await, Err(not_found("room")));

    // Every operation on a missing group.
    let missing = Err(not_found("room"));
    assert_eq!(groups.members("room").await.map(drop), missing);
    assert_eq!(groups.contains("room", "ana").await.map(drop), missing);
    assert_eq!(groups.count("room").await.map(drop), missing);
    assert_eq!(groups.add("room", "ana").await, missing);
    assert_eq!(groups.remove("room", "ana").await, missing);
    assert_eq!(groups.remove_all("room").await, missing);
    assert_eq!(groups.renew_ttl("room").await, missing);
    assert!(keys(&etcd, &prefix).await.is_empty(), "no key was written");

    groups.get_or_create("room").await.unwrap();
    assert_eq!(groups.members("room").await, Ok(Vec::new()));
    groups.delete("room").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_group_and_its_members_share_a_lease_and_expire_with_it() {
    let endpoint = etcd_url();
    let prefix = test_prefix();
    let etcd = raw_client(&endpoint).await;
    let groups = connect(&endpoint, &prefix).await;

    assert_eq!(
        groups.create_with_ttl("match", Duration::ZERO).await,
        Err(GroupError::ZeroTtl)
    );
    groups
        .create_with_ttl("match", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        groups
            .create_with_ttl("match", Duration::from_secs(2))
            .await,
        Err(GroupError::Exists("match".into()))
    );
    groups.add("match", "ana").await.unwrap();
    groups.add("match", "bob").await.unwrap();
    let written = keys(&etcd, &prefix).await;
    let names: Vec<&str> = written.iter().map(|(key, _, _)| key.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{prefix}groups/match"),
            format!("{prefix}groups/match/uids/ana"),
            format!("{prefix}groups/match/uids/bob"),
        ]
    );
    let lease = written[0].2;
    assert_ne!(lease, 0, "the group key is leased");
    assert!(
        written
            .iter()
            .all(|(_, value, l)| *l == lease && value.is_empty()),
        "members share the group's lease: {written:?}"
    );
    let mut raw = etcd.clone();
    let ttl = raw.lease_time_to_live(lease, None).await.unwrap();
    assert_eq!(ttl.granted_ttl(), 2);

    // Renewed, the group outlives its TTL...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        groups.renew_ttl("match").await.unwrap();
    }
    assert_eq!(groups.members("match").await.unwrap(), ["ana", "bob"]);

    // ...and without renewal it expires, members included.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match groups.members("match").await {
            Err(GroupError::NotFound(_)) => break,
            Ok(_) => {}
            Err(err) => panic!("unexpected error: {err}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group did not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        keys(&etcd, &prefix).await.is_empty(),
        "the lease took every key"
    );
    assert_eq!(groups.renew_ttl("match").await, Err(not_found("match")));
    assert_eq!(groups.add("match", "ana").await, Err(not_found("match")));
    // The name is free again.
    groups.create("match").await.unwrap();
    assert_eq!(groups.count("match").await, Ok(0));
    groups.delete("match").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_groups_and_read_go_written_keys() {
    let endpoint = etcd_url();
    let prefix = test_prefix();
    let mut etcd = raw_client(&endpoint).await;
    let one = connect(&endpoint, &prefix).await;
    // The second one from a discovery's settings, as a server would.
    let mut discovery = EtcdConfig::new([endpoint.as_str()]);
    discovery.prefix = prefix.clone();
    let two = EtcdGroups::connect(EtcdGroupsConfig::from(&discovery))
        .await
        .unwrap();

    one.create("lobby").await.unwrap();
    assert_eq!(
        two.create("lobby").await,
        Err(GroupError::Exists("lobby".into()))
    );
    two.add("lobby", "ana").await.unwrap();
    one.add("lobby", "bob").await.unwrap();
    assert_eq!(one.members("lobby").await.unwrap(), ["ana", "bob"]);
    assert_eq!(two.members("lobby").await.unwrap(), ["ana", "bob"]);
    one.remove("lobby", "ana").await.unwrap();
    assert_eq!(two.contains("lobby", "ana").await, Ok(false));
    two.delete("lobby").await.unwrap();
    assert_eq!(one.count("lobby").await, Err(not_found("lobby")));

    // What a Go server writes for GroupCreate + GroupAddMember.
    etcd.put(format!("{prefix}groups/go"), "", None)
        .await
        .unwrap();
    etcd.put(format!("{prefix}groups/go/uids/gus"), "", None)
        .await
        .unwrap();
    assert_eq!(one.members("go").await.unwrap(), ["gus"]);
    two.add("go", "rustacean").await.unwrap();
    assert_eq!(one.count("go").await, Ok(2));
    one.delete("go").await.unwrap();
    assert!(keys(&etcd, &prefix).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_share_etcd_groups_and_sessions_leave_them_on_close() {
    let endpoint = etcd_url();
    let prefix = test_prefix();
    let etcd = raw_client(&endpoint).await;
    let here = TestApp::new(App::builder("chat").groups(connect(&endpoint, &prefix).await))
        .expect("app builds");
    let there = TestApp::new(App::builder("chat").groups(connect(&endpoint, &prefix).await))
        .expect("app builds");

    let ana = here.session();
    ana.session().bind("ana").await.unwrap();
    let handle = here.handle();
    let groups: &Groups = handle.groups();
    groups.get_or_create("room").await.unwrap();
    groups.add_session("room", ana.session()).await.unwrap();
    assert_eq!(
        there.handle().groups().members("room").await.unwrap(),
        ["ana"]
    );

    // A push to the group reaches ana here; the other server sees the
    // member too, but ana is not connected there (and it has no cluster).
    let delivery = here
        .handle()
        .push(Audience::group("room"), "onHi", &"hi")
        .await
        .unwrap();
    assert_eq!(delivery.delivered, 1);
    assert_eq!(ana.pushes_on::<String>("onHi").unwrap(), ["hi"]);
    let delivery = there
        .handle()
        .push(Audience::group("room"), "onHi", &"hi")
        .await
        .unwrap();
    assert_eq!(delivery.unreachable, ["ana"]);

    // The session closes: its member key goes away, for every server.
    ana.disconnect();
    let member = format!("{prefix}groups/room/uids/ana");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while keys(&etcd, &prefix)
        .await
        .iter()
        .any(|(key, _, _)| *key == member)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the member did not leave"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(there.handle().groups().count("room").await, Ok(0));
    there.handle().groups().delete("room").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_uids_cannot_reach_into_other_groups_keys() {
    let endpoint = etcd_url();
    let prefix = test_prefix();
    let groups = connect(&endpoint, &prefix).await;
    groups.create("room").await.unwrap();
    // "room/uids/eve" would be the key of member "eve" of "room".
    for name in ["room/uids/eve", "", "a/b"] {
        assert!(
            matches!(groups.create(name).await, Err(GroupError::InvalidName(_))),
            "{name:?}"
        );
    }
    assert!(matches!(
        groups.add("room", "eve/x").await,
        Err(GroupError::InvalidName(_))
    ));
    assert!(groups.members("room").await.unwrap().is_empty());
    let client = raw_client(&endpoint).await;
    let stored: Vec<String> = keys(&client, &prefix)
        .await
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();
    assert_eq!(stored, [format!("{prefix}groups/room")]);
}

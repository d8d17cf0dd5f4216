//! The `cluster` example end to end (`--dev`: the connector and two room
//! servers in one process on the in-process cluster): players log in, join
//! rooms routed by the room name, talk, are listed by the lobby through the
//! typed remote, and leave their room when they disconnect.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pitaya_client::{Client, Event, Events};
use pitaya_tests::example_process::Example;
use serde_json::{Value, json};

const CLUSTER: Example = Example {
    binary: env!("CARGO_BIN_EXE_cluster"),
    listening: "connector listening on ",
    args: &["--dev", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
    clear_env: &[
        "PITAYA_TLS_CERT",
        "PITAYA_TLS_KEY",
        "PITAYA_ETCD",
        "PITAYA_NATS",
    ],
};

async fn player(url: &str, name: &str, room: &str) -> (Client, Events, Value) {
    let (client, events) = Client::builder()
        .request_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect");
    let login: Value = client
        .request(
            "connector.lobby.login",
            &json!({"name": name, "room": room}),
        )
        .await
        .expect("login");
    assert_eq!(login["room"], room, "{login}");
    let joined: Value = client
        .request("room.room.join", &json!({}))
        .await
        .expect("join");
    assert_eq!(joined["room"], room, "{joined}");
    // The lobby's pick is the server the router sent the join to.
    assert_eq!(joined["server"], login["server"], "{login} {joined}");
    (client, events, joined)
}

/// The next push on `route`, skipping others.
async fn push_on(events: &mut Events, route: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Event::Push { route: got, body }) if got == route => {
                    return serde_json::from_slice(&body).expect("json push");
                }
                Some(_) => {}
                None => panic!("connection closed waiting for {route}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {route} push"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_meet_in_rooms_across_servers_and_leave_when_they_disconnect() {
    let server = CLUSTER.spawn(std::iter::empty::<&str>(), 2);
    play(server.url("tcp")).await;
}

/// The same game as separate processes on a real etcd and NATS (the pair
/// of `scripts/cluster-deps.sh`): two room servers and a connector.
#[cfg(feature = "real-cluster-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_game_as_processes_on_etcd_and_nats() {
    use pitaya_tests::processes::{required_env, unique};
    const ROOM: Example = Example {
        listening: "room ",
        args: &[],
        ..CLUSTER
    };
    const CONNECTOR: Example = Example {
        args: &["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
        ..CLUSTER
    };
    let (etcd, nats) = (
        required_env("PITAYA_TEST_ETCD"),
        required_env("PITAYA_TEST_NATS"),
    );
    let prefix = format!("{}/", unique("cluster-example"));
    let plane = ["--etcd", &etcd, "--nats", &nats, "--etcd-prefix", &prefix];
    let _rooms = [
        ROOM.spawn(plane.iter().copied().chain(["room"]), 1),
        ROOM.spawn(plane.iter().copied().chain(["room"]), 1),
    ];
    let connector = CONNECTOR.spawn(plane.iter().copied().chain(["connector"]), 2);
    play(connector.url("tcp")).await;
}

async fn play(url: &str) {
    let url = url.to_owned();

    let (ana, mut ana_events, joined) = player(&url, "ana", "blue").await;
    assert_eq!(joined["members"], json!(["ana"]));
    // The room (the newcomer included) hears of each join.
    assert_eq!(
        push_on(&mut ana_events, "onJoin").await,
        json!({"name": "ana"})
    );
    let (bob, mut bob_events, joined) = player(&url, "bob", "blue").await;
    assert_eq!(joined["members"], json!(["ana", "bob"]));
    assert_eq!(
        push_on(&mut ana_events, "onJoin").await,
        json!({"name": "bob"})
    );

    // Another room, wherever the router puts it.
    let (cid, mut cid_events, joined) = player(&url, "cid", "red").await;
    assert_eq!(joined["members"], json!(["cid"]));

    // A message reaches the room, pushed by the backend through the
    // connector, and not the other room.
    bob.notify("room.room.say", &json!({"content": "hi"}))
        .await
        .unwrap();
    let said = json!({"name": "bob", "content": "hi"});
    assert_eq!(push_on(&mut ana_events, "onMessage").await, said);
    assert_eq!(push_on(&mut bob_events, "onMessage").await, said);
    cid.notify("room.room.say", &json!({"content": "red only"}))
        .await
        .unwrap();
    assert_eq!(
        push_on(&mut cid_events, "onMessage").await,
        json!({"name": "cid", "content": "red only"})
    );
    // Blue's next message is Bob's: red's did not reach blue.
    bob.notify("room.room.say", &json!({"content": "again"}))
        .await
        .unwrap();
    assert_eq!(
        push_on(&mut ana_events, "onMessage").await,
        json!({"name": "bob", "content": "again"})
    );

    // The lobby lists every room of every room server (typed remotes).
    let rooms: Value = ana
        .request("connector.lobby.rooms", &json!({}))
        .await
        .unwrap();
    let mut listed: Vec<(String, u64)> = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|room| {
            (
                room["room"].as_str().unwrap().to_owned(),
                room["members"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, [("blue".into(), 2), ("red".into(), 1)], "{rooms}");

    // Bob disconnects: the room server hears it from the connector, Bob
    // leaves the group and the room is told.
    bob.close().await;
    assert_eq!(
        push_on(&mut ana_events, "onLeave").await,
        json!({"name": "bob"})
    );
    let rooms: Value = ana
        .request("connector.lobby.rooms", &json!({}))
        .await
        .unwrap();
    let blue = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|room| room["room"] == "blue")
        .cloned()
        .unwrap();
    assert_eq!(blue["members"], 1, "{rooms}");

    // Joining without logging in is refused by the room.
    let (anon, _anon_events) = Client::connect(url.as_str()).await.unwrap();
    let err = anon
        .request::<_, Value>("room.room.join", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PIT-400", "{err}");
}

//! `pitaya::testing`: components driven without a socket, on tokio's test
//! clock, with remotes through the fake cluster.

use std::sync::Arc;
use std::time::Duration;

use pitaya::prelude::*;
use pitaya::testing::{FakeCluster, TestApp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, PartialEq, pitaya::prost::Message)]
struct Seats {
    #[prost(uint32, tag = "1")]
    free: u32,
}

#[derive(Clone, PartialEq, pitaya::prost::Message)]
struct Table {
    #[prost(string, tag = "1")]
    name: String,
}

/// A room server: a remote the lobby calls.
#[derive(Default)]
struct Rooms;

#[component(name = "rooms")]
impl Rooms {
    #[remote]
    async fn seats(&self, ctx: &Context, table: Table) -> Result<Seats> {
        if table.name.is_empty() {
            return Err(PitayaError::new("RM-400", "a table needs a name"));
        }
        let bonus = ctx.get("vip").map_or(0, |_| 10);
        Ok(Seats {
            free: u32::try_from(table.name.len()).unwrap_or(0) + bonus,
        })
    }
}

#[derive(Debug, Deserialize, Serialize)]
struct Sit {
    table: String,
}

/// A lobby on a frontend: sessions, timers, kicks and a remote call.
struct Lobby;

#[component(name = "lobby")]
impl Lobby {
    #[handler]
    async fn login(&self, session: &Session, name: String) -> Result<String> {
        session.bind(name.clone()).await?;
        session.set("level", &1)?;
        Ok(format!("hello {name}"))
    }

    /// Pushes `onReady` after 5 s of game time.
    #[handler]
    async fn countdown(&self, session: &Session, app: &AppHandle) -> Result<Value> {
        let session = session.clone();
        app.timers()
            .after(Duration::from_secs(5), move || async move {
                let _ = session.push("onReady", &json!({"go": true}));
            });
        Ok(json!({"started": true}))
    }

    #[handler]
    async fn seats(&self, ctx: &Context, app: &AppHandle, sit: Sit) -> Result<Value> {
        let seats: Seats = app
            .remote("room")
            .with_context(&ctx.with_value("vip", true))
            .call("rooms", "seats", &Table { name: sit.table })
            .await?;
        Ok(json!({"free": seats.free}))
    }

    #[handler]
    async fn leave(&self, session: &Session) {
        session.kick();
    }
}

#[tokio::test(start_paused = true)]
async fn timers_follow_the_paused_clock() {
    let app = TestApp::new(App::builder("connector").register(Lobby)).unwrap();
    let ana = app.session();
    let started: Value = app
        .request(&ana, "connector.lobby.countdown", &json!({}))
        .await
        .unwrap();
    assert_eq!(started, json!({"started": true}));
    tokio::time::advance(Duration::from_secs(4)).await;
    tokio::task::yield_now().await;
    assert!(ana.pushes().is_empty(), "nothing before 5 s");
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    let pushes = ana.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].route, "onReady");
    assert_eq!(pushes[0].decode::<Value>().unwrap(), json!({"go": true}));
}

#[tokio::test]
async fn sessions_bind_keep_data_and_are_kicked() {
    let app = TestApp::new(App::builder("connector").register(Lobby)).unwrap();
    let ana = app.session();
    let hello: String = app
        .request(&ana, "lobby.login", &"ana") // the short route form
        .await
        .unwrap();
    assert_eq!(hello, "hello ana");
    assert_eq!(ana.uid().as_deref(), Some("ana"));
    assert_eq!(ana.session().get::<u32>("level").unwrap(), Some(1));
    assert_eq!(
        app.handle().session_by_uid("ana").map(|s| s.id()),
        Some(ana.session().id())
    );
    // A push from the app's handle reaches the test session.
    let delivery = app
        .handle()
        .push(Audience::uid("ana"), "onNews", &"extra")
        .await
        .unwrap();
    assert_eq!(delivery.delivered, 1);
    assert_eq!(ana.pushes_on::<String>("onNews").unwrap(), vec!["extra"]);

    assert!(!ana.was_kicked());
    app.notify(&ana, "connector.lobby.leave", &json!({}))
        .await
        .unwrap();
    assert!(ana.was_kicked());
    assert!(ana.closed_by_server());
    // Once the client is gone the uid is free.
    ana.disconnect();
    assert!(app.handle().session_by_uid("ana").is_none());
    let err = app
        .request::<_, String>(&ana, "connector.lobby.login", &"ana")
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::CLIENT_CLOSED_REQUEST);
}

#[tokio::test]
async fn pipelines_apply_as_on_a_connection() {
    let builder = App::builder("connector")
        .register(Lobby)
        .before_handler(|request| async move {
            if request.context().route().ends_with("login") {
                Ok(request)
            } else {
                Err(PitayaError::new("RH-401", "log in first"))
            }
        });
    let app = TestApp::new(builder).unwrap();
    let ana = app.session();
    let err = app
        .request::<_, Value>(&ana, "connector.lobby.countdown", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "RH-401");
    let _: String = app
        .request(&ana, "connector.lobby.login", &"ana")
        .await
        .unwrap();
}

#[tokio::test]
async fn remotes_go_through_the_fake_cluster() {
    let cluster = FakeCluster::new();
    let rooms = cluster.start(App::builder("room").register(Rooms)).unwrap();
    let lobby = cluster
        .start(App::builder("connector").register(Lobby))
        .unwrap();
    let ana = lobby.session();
    // The handler's remote call carries its context ("vip") to the room.
    let free: Value = lobby
        .request(&ana, "connector.lobby.seats", &json!({"table": "blue"}))
        .await
        .unwrap();
    assert_eq!(free, json!({"free": 14}));
    // The remote's own error, code and message intact.
    let err = lobby
        .request::<_, Value>(&ana, "connector.lobby.seats", &json!({"table": ""}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.msg.as_str()),
        ("RM-400", "a table needs a name")
    );
    // A remote called directly, as another server would.
    let seats: Seats = rooms
        .call_remote("room.rooms.seats", &Table { name: "red".into() })
        .await
        .unwrap();
    assert_eq!(seats.free, 3);
    // Standalone, the same call fails as without a cluster.
    let alone = TestApp::new(App::builder("connector").register(Lobby)).unwrap();
    let bob = alone.session();
    let err = alone
        .request::<_, Value>(&bob, "connector.lobby.seats", &json!({"table": "blue"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::INTERNAL);
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_during_its_bind_is_not_bound() {
    let after = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let after_bind = after.clone();
    let builder = App::builder("connector")
        .register(Lobby)
        .on_session_bind(|_session, _uid| async {
            // A slow check (a database): the client leaves meanwhile.
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .on_after_session_bind(move |_session, _uid| {
            let after_bind = after_bind.clone();
            async move {
                after_bind.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
        });
    let app = TestApp::new(builder).unwrap();
    let ana = app.session();
    let login = app.request::<_, String>(&ana, "connector.lobby.login", &"ana");
    let leave = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ana.disconnect();
    };
    let (login, ()) = tokio::join!(login, leave);
    let err = login.unwrap_err();
    assert_eq!(err.code, codes::CLIENT_CLOSED_REQUEST, "{err}");
    // No stale registration that would make the uid look online, or kick
    // its next session; no after-bind announcement.
    assert!(app.handle().session_by_uid("ana").is_none());
    assert!(!after.load(std::sync::atomic::Ordering::SeqCst));
    let bob = app.session();
    let hello: String = app
        .request(&bob, "connector.lobby.login", &"ana")
        .await
        .unwrap();
    assert_eq!(hello, "hello ana");
}

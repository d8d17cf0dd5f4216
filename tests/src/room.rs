//! The components of the cluster suites: a `room` backend and the
//! connector's `lobby`, shared by the in-process tests and the
//! `cluster-node` binary (a room in its own process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitaya::app::AppHandle;
use pitaya::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `room.room.join`: bind the session to `uid`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Join {
    pub uid: String,
}

/// What `room.info` answers a remote call with: a protobuf message, as
/// remotes carry protobuf. Also the reply of `lobby.ask` to clients (JSON).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, prost::Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub server: String,
    #[prost(string, tag = "2")]
    pub asked: String,
}

/// `room.room.tell`: push `text` to `uid`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PushReq {
    pub uid: String,
    pub text: String,
}

/// `room.room.sleep`: answer after `ms` milliseconds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sleep {
    pub ms: u64,
}

/// A room backend: binds, pushes, kicks, sleeps, fails on demand, and
/// answers the `info` remote.
pub struct Room {
    pub id: String,
    /// Counts the `room.room.note` notifies received.
    pub notes: Arc<AtomicU64>,
    /// The sessions `room.room.watch` watched that closed since:
    /// `{"uid", "room", "closed"}` as the close callback saw them.
    pub closed: Arc<Mutex<Vec<Value>>>,
}

impl Room {
    /// A room named `id` with a fresh notify counter.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            notes: Arc::default(),
            closed: Arc::default(),
        }
    }
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
        session.bind(req.uid.clone()).await?;
        session.set("room", &self.id)?;
        session.push_to_front();
        session.push("onJoined", &json!({"uid": req.uid}))?;
        session.flush().await;
        app.push(Audience::uid(&req.uid), "onJoinedAll", &json!(1))
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

    /// The server id and the OS process id, to tell a restarted server
    /// from the one before.
    /// Asks to be told when the client's session closes; the callback
    /// records what it saw (see `closes`).
    #[handler]
    async fn watch(&self, session: &Session) -> Result<Value, PitayaError> {
        let closed = self.closed.clone();
        session.on_close(move |view| {
            let seen = json!({
                "uid": view.uid(),
                "room": view.get::<String>("room").ok().flatten(),
                "closed": view.is_closed(),
            });
            closed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(seen);
        })?;
        Ok(json!({"backend": session.is_backend(), "watching": true}))
    }

    /// The closes `watch` recorded.
    #[handler]
    async fn closes(&self) -> Result<Value, PitayaError> {
        let closed = self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(Value::Array(closed))
    }

    #[handler]
    async fn pid(&self) -> Result<Value, PitayaError> {
        Ok(json!({"server": self.id, "pid": std::process::id()}))
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
        let delivery = app
            .push(
                Audience::uid(req.uid).via("connector"),
                "onTell",
                &json!({"text": req.text}),
            )
            .await?;
        Ok(json!({"failed": delivery.unreachable}))
    }

    #[handler]
    async fn sleep(&self, req: Sleep) -> Result<Value, PitayaError> {
        tokio::time::sleep(Duration::from_millis(req.ms)).await;
        Ok(json!({"slept": req.ms, "server": self.id}))
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
pub struct Lobby;

#[component(name = "lobby")]
impl Lobby {
    #[handler]
    async fn ask(&self, app: &AppHandle, question: String) -> Result<Info, PitayaError> {
        RoomRemote::new(app.remote("room")).info(&question).await
    }
}

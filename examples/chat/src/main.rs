//! A chat room on pitaya-rs, compatible with Pitaya's chat demo clients.
//!
//! Routes (server type `chat`):
//! - `chat.room.join` (request) `{"name":"ana"}`: binds the session to the
//!   name, replies `{"code":0,"members":[...]}` and pushes `onNewUser` to
//!   the room,
//! - `chat.room.message` (notify) `{"content":"hi"}`: pushes
//!   `onMessage` `{"name":"ana","content":"hi"}` to everyone in the room,
//! - `chat.room.members` (request): the names in the room.
//!
//! When a member disconnects, the room gets `onUserLeft`.
//!
//! ```sh
//! cargo run --release -p chat            # tcp://127.0.0.1:3250 and ws://127.0.0.1:3251
//! ```
//!
//! With `--tls-cert` and `--tls-key` (PEM files), the same ports serve
//! `tls://` and `wss://` instead:
//!
//! ```sh
//! openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=localhost
//! cargo run --release -p chat -- --tls-cert cert.pem --tls-key key.pem
//! ```

use std::path::PathBuf;

use clap::Parser;
use pitaya::acceptors::{TcpAcceptor, TlsConfig, WsAcceptor};
use pitaya::prelude::*;
use pitaya::{tokio, tracing, tracing_subscriber};
use serde::{Deserialize, Serialize};

/// The one room everybody joins.
const ROOM: &str = "room";

#[derive(Debug, Deserialize)]
struct JoinRequest {
    name: String,
}

#[derive(Debug, Serialize)]
struct JoinResponse {
    code: i32,
    members: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    content: String,
}

#[derive(Debug, Serialize)]
struct Broadcast<'a> {
    name: &'a str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct UserEvent<'a> {
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct Members {
    members: Vec<String>,
}

/// The chat room component.
struct Room;

#[component(name = "room")]
impl Room {
    /// Joins the room under `name` (which becomes the session's uid).
    #[handler]
    async fn join(
        &self,
        session: &Session,
        app: &AppHandle,
        request: JoinRequest,
    ) -> Result<JoinResponse, PitayaError> {
        let name = request.name.trim().to_owned();
        if name.is_empty() {
            return Err(PitayaError::new(
                codes::BAD_REQUEST,
                "name must not be empty",
            ));
        }
        session.bind(name.clone()).await?;
        let groups = app.groups();
        groups.get_or_create(ROOM).await?;
        app.push(
            Audience::group(ROOM),
            "onNewUser",
            &UserEvent { name: &name },
        )
        .await?;
        groups.add_session(ROOM, session).await?;
        let app = app.clone();
        session.on_close(move |closed| {
            // Close callbacks are synchronous: the push runs in a task.
            if let Some(name) = closed.uid().map(str::to_owned) {
                tokio::spawn(async move {
                    let left = UserEvent { name: &name };
                    if let Err(err) = app.push(Audience::group(ROOM), "onUserLeft", &left).await {
                        tracing::warn!(error = %err, "leave push failed");
                    }
                });
            }
        })?;
        Ok(JoinResponse {
            code: 0,
            members: groups.members(ROOM).await?,
        })
    }

    /// Sends a message to everyone in the room (a notify: no reply).
    #[handler]
    async fn message(&self, session: &Session, app: &AppHandle, message: ChatMessage) {
        let Some(name) = session.uid() else {
            tracing::debug!("message from a session that has not joined");
            return;
        };
        let push = Broadcast {
            name,
            content: &message.content,
        };
        if let Err(err) = app.push(Audience::group(ROOM), "onMessage", &push).await {
            tracing::warn!(error = %err, "broadcast failed");
        }
    }

    /// The names in the room.
    #[handler]
    async fn members(&self, app: &AppHandle) -> Result<Members, PitayaError> {
        let members = app.groups().members(ROOM).await.unwrap_or_default();
        Ok(Members { members })
    }
}

/// Command line of the chat server.
#[derive(Debug, Parser)]
#[command(about = "A chat room game server on pitaya-rs")]
struct Args {
    /// TCP listen address.
    #[arg(long, default_value = "127.0.0.1:3250", env = "CHAT_TCP")]
    tcp: String,
    /// WebSocket listen address.
    #[arg(long, default_value = "127.0.0.1:3251", env = "CHAT_WS")]
    ws: String,
    /// PEM certificate chain (leaf first): with --tls-key, serve `tls://`
    /// and `wss://` instead of `tcp://` and `ws://`.
    #[arg(
        long,
        value_name = "PATH",
        env = "PITAYA_TLS_CERT",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "PATH",
        env = "PITAYA_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
}

impl Args {
    /// The TLS settings, when both --tls-cert and --tls-key are given
    /// (clap refuses only one of them).
    fn tls(&self) -> Result<Option<TlsConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        TlsConfig::from_pem_files(cert, key)
            .map(Some)
            .map_err(|err| {
                format!(
                    "loading TLS certificate {} and key {}: {err}",
                    cert.display(),
                    key.display()
                )
            })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let tls = args.tls()?;
    let mut tcp = TcpAcceptor::bind(&args.tcp).await?;
    let mut ws = WsAcceptor::bind(&args.ws).await?;
    if let Some(tls) = tls {
        tcp = tcp.with_tls(tls.clone());
        ws = ws.with_tls(tls);
    }
    let app = App::builder("chat")
        .acceptor(tcp)
        .acceptor(ws)
        .register(Room)
        .build()?;
    for url in app.urls() {
        println!("chat listening on {url}");
    }
    app.run().await?;
    Ok(())
}

/// The chat component through `pitaya::testing`: no socket, no port.
#[cfg(test)]
mod tests {
    use pitaya::testing::{TestApp, TestSession};
    use serde_json::{Value, json};

    use super::*;

    fn chat() -> TestApp {
        TestApp::new(App::builder("chat").register(Room)).expect("the chat app builds")
    }

    async fn join(app: &TestApp, session: &TestSession, name: &str) -> Value {
        app.request(session, "chat.room.join", &json!({ "name": name }))
            .await
            .expect("join succeeds")
    }

    /// Waits for the pushes made by tasks the handlers spawned.
    async fn pushes_on(session: &TestSession, route: &str) -> Vec<Value> {
        for _ in 0..100 {
            let pushes: Vec<Value> = session.pushes_on(route).expect("pushes decode");
            if !pushes.is_empty() {
                return pushes;
            }
            tokio::task::yield_now().await;
        }
        Vec::new()
    }

    #[tokio::test]
    async fn join_binds_the_name_and_tells_the_room() {
        let app = chat();
        let (ana, bob) = (app.session(), app.session());
        assert_eq!(
            join(&app, &ana, "ana").await,
            json!({"code": 0, "members": ["ana"]})
        );
        assert_eq!(ana.uid().as_deref(), Some("ana"));
        assert_eq!(
            join(&app, &bob, " bob ").await,
            json!({"code": 0, "members": ["ana", "bob"]})
        );
        // Ana hears of Bob; Bob joined after the push and hears nothing.
        assert_eq!(
            ana.pushes_on::<Value>("onNewUser").unwrap(),
            vec![json!({"name": "bob"})]
        );
        assert!(bob.pushes().is_empty());
    }

    #[tokio::test]
    async fn a_name_is_required_and_joins_once() {
        let app = chat();
        let ana = app.session();
        let err = app
            .request::<_, Value>(&ana, "chat.room.join", &json!({"name": "  "}))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::BAD_REQUEST);
        join(&app, &ana, "ana").await;
        let again = app
            .request::<_, Value>(&ana, "chat.room.join", &json!({"name": "ana2"}))
            .await
            .unwrap_err();
        assert_eq!(again.code, codes::BAD_REQUEST);
        assert!(again.msg.contains("already bound"), "{}", again.msg);
    }

    #[tokio::test]
    async fn messages_reach_everyone_in_the_room() {
        let app = chat();
        let (ana, bob, carl) = (app.session(), app.session(), app.session());
        join(&app, &ana, "ana").await;
        join(&app, &bob, "bob").await;
        app.notify(&bob, "chat.room.message", &json!({"content": "hi"}))
            .await
            .unwrap();
        let expected = vec![json!({"name": "bob", "content": "hi"})];
        assert_eq!(ana.pushes_on::<Value>("onMessage").unwrap(), expected);
        assert_eq!(bob.pushes_on::<Value>("onMessage").unwrap(), expected);
        // A session that has not joined sends nothing and gets nothing.
        app.notify(&carl, "chat.room.message", &json!({"content": "psst"}))
            .await
            .unwrap();
        assert!(ana.pushes_on::<Value>("onMessage").unwrap().is_empty());
        assert!(carl.pushes().is_empty());
    }

    #[tokio::test]
    async fn leaving_tells_the_room_and_frees_the_name() {
        let app = chat();
        let (ana, bob) = (app.session(), app.session());
        join(&app, &ana, "ana").await;
        join(&app, &bob, "bob").await;
        bob.disconnect();
        assert_eq!(
            pushes_on(&ana, "onUserLeft").await,
            vec![json!({"name": "bob"})]
        );
        let members: Value = app
            .request(&ana, "chat.room.members", &json!({}))
            .await
            .unwrap();
        assert_eq!(members, json!({"members": ["ana"]}));
        // The name is free again for a new session.
        let bob_again = app.session();
        assert_eq!(
            join(&app, &bob_again, "bob").await,
            json!({"code": 0, "members": ["ana", "bob"]})
        );
    }

    #[tokio::test]
    async fn unknown_routes_and_kinds_are_refused_as_pitaya_does() {
        let app = chat();
        let ana = app.session();
        let err = app
            .request::<_, Value>(&ana, "chat.room.dance", &json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::NOT_FOUND);
        // `message` is a notify: requesting it is a bad request.
        let err = app
            .request::<_, Value>(&ana, "chat.room.message", &json!({"content": "x"}))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::BAD_REQUEST);
    }
}

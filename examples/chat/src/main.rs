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
        session.bind(name.clone())?;
        let groups = app.groups();
        if !groups.exists(ROOM) {
            // Two first joins can race here; losing the race is fine.
            let _ = groups.create(ROOM);
        }
        groups.broadcast(ROOM, "onNewUser", &UserEvent { name: &name })?;
        groups.add(ROOM, session)?;
        let app = app.clone();
        session.on_close(move |closed| {
            if let Some(name) = closed.uid() {
                let _ = app
                    .groups()
                    .broadcast(ROOM, "onUserLeft", &UserEvent { name });
            }
        })?;
        Ok(JoinResponse {
            code: 0,
            members: groups.members(ROOM)?,
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
        if let Err(err) = app.groups().broadcast(ROOM, "onMessage", &push) {
            tracing::warn!(error = %err, "broadcast failed");
        }
    }

    /// The names in the room.
    #[handler]
    async fn members(&self, app: &AppHandle) -> Result<Members, PitayaError> {
        let members = app.groups().members(ROOM).unwrap_or_default();
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

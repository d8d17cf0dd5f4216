//! A clustered game on pitaya-rs: a `connector` frontend that clients
//! connect to (TCP and WebSocket) and a `room` backend without acceptors.
//! Client messages for `room.*` routes are forwarded by the connector to a
//! room server; the room binds the uid on the connector, pushes to users
//! through it, and answers the connector's remote calls.
//!
//! Routes:
//! - `room.room.join` (request) `{"name":"ana"}`: binds the session to the
//!   name (on the connector), replies `{"code":0,"members":[...]}` and
//!   pushes `onNewUser` to every member,
//! - `room.room.message` (notify) `{"content":"hi"}`: pushes `onMessage`
//!   `{"name":"ana","content":"hi"}` to every member,
//! - `connector.lobby.rooms` (request): the connector asks a room server
//!   through the typed remote stub and replies `{"server":..,"members":N}`.
//!
//! Two processes on etcd and NATS (e.g. `scripts/cluster-deps.sh start`
//! prints the addresses of a local pair):
//!
//! ```sh
//! cargo run -p cluster -- --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 room
//! cargo run -p cluster -- --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 connector
//! ```
//!
//! One process, both servers on the in-process cluster:
//!
//! ```sh
//! cargo run -p cluster -- --dev      # tcp://127.0.0.1:3250, ws://127.0.0.1:3251
//! ```
//!
//! With `--tls-cert` and `--tls-key` (PEM files, both or neither), the
//! connector serves `tls://` and `wss://` instead:
//!
//! ```sh
//! cargo run -p cluster -- --dev --tls-cert cert.pem --tls-key key.pem
//! ```

use std::path::PathBuf;
use std::sync::Mutex;

use clap::{Parser, Subcommand};
use pitaya::acceptors::{TcpAcceptor, TlsConfig, WsAcceptor};
use pitaya::app::AppBuilder;
use pitaya::cluster::{Cluster, EtcdConfig, MemoryCluster, NatsConfig};
use pitaya::prelude::*;
use serde::{Deserialize, Serialize};

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

/// What the `room.count` remote answers, and `connector.lobby.rooms` to
/// clients. Remotes carry protobuf, as in Go Pitaya (so a Go server can
/// call this one): the struct is a prost message, and serde for the client.
#[derive(Serialize, Deserialize, Clone, PartialEq, prost::Message)]
struct RoomCount {
    #[prost(string, tag = "1")]
    server: String,
    #[prost(uint32, tag = "2")]
    members: u32,
}

/// The room backend: the members of its one room.
struct Room {
    server_id: String,
    members: Mutex<Vec<String>>,
}

impl Room {
    fn members(&self) -> Vec<String> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[component(name = "room")]
impl Room {
    /// Joins the room under `name`, which becomes the uid (bound on the
    /// connector holding the client).
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
        session.set("room", &self.server_id)?;
        session.push_to_front();
        // The pushes below go through the app handle: let the bind reach
        // the connector first.
        session.flush().await;
        let members = {
            let mut members = self
                .members
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !members.contains(&name) {
                members.push(name.clone());
            }
            members.clone()
        };
        app.push(
            Audience::uids(members.iter().cloned()).via("connector"),
            "onNewUser",
            &Broadcast {
                name: &name,
                content: "",
            },
        )
        .await?;
        Ok(JoinResponse { code: 0, members })
    }

    /// Sends a message to every member (a notify: no reply).
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
        if let Err(err) = app
            .push(
                Audience::uids(self.members()).via("connector"),
                "onMessage",
                &push,
            )
            .await
        {
            tracing::warn!(error = %err, "push failed");
        }
    }

    /// How many members this room server has (a server-to-server call).
    #[remote]
    async fn count(&self) -> Result<RoomCount, PitayaError> {
        Ok(RoomCount {
            server: self.server_id.clone(),
            members: u32::try_from(self.members().len()).unwrap_or(u32::MAX),
        })
    }
}

/// The connector's own handlers.
struct Lobby;

#[component(name = "lobby")]
impl Lobby {
    /// Asks a room server how many members it has.
    #[handler]
    async fn rooms(&self, app: &AppHandle) -> Result<RoomCount, PitayaError> {
        RoomRemote::new(app.remote("room")).count().await
    }
}

/// Command line of the cluster example.
#[derive(Debug, Parser)]
#[command(about = "A clustered pitaya-rs example: connector frontend + room backend")]
struct Args {
    /// Run both servers in this process on the in-process cluster.
    #[arg(long)]
    dev: bool,
    /// etcd endpoint.
    #[arg(long, default_value = "http://127.0.0.1:2379", env = "PITAYA_ETCD")]
    etcd: String,
    /// NATS URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222", env = "PITAYA_NATS")]
    nats: String,
    /// TCP listen address of the connector.
    #[arg(long, default_value = "127.0.0.1:3250")]
    tcp: String,
    /// WebSocket listen address of the connector.
    #[arg(long, default_value = "127.0.0.1:3251")]
    ws: String,
    /// PEM certificate chain (leaf first): with --tls-key, the connector
    /// serves `tls://` and `wss://` instead of `tcp://` and `ws://`.
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
    /// Which server to run (without `--dev`).
    #[command(subcommand)]
    server: Option<Server>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Server {
    /// The frontend clients connect to.
    Connector,
    /// The backend running the room.
    Room,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The TLS settings, when both --tls-cert and --tls-key are given (clap
/// refuses only one of them).
fn tls(args: &Args) -> Result<Option<TlsConfig>, Error> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let tls = TlsConfig::from_pem_files(cert, key).map_err(|err| {
        format!(
            "loading TLS certificate {} and key {}: {err}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Some(tls))
}

async fn connector(args: &Args) -> Result<AppBuilder, Error> {
    let tls = tls(args)?;
    let mut tcp = TcpAcceptor::bind(&args.tcp).await?;
    let mut ws = WsAcceptor::bind(&args.ws).await?;
    if let Some(tls) = tls {
        tcp = tcp.with_tls(tls.clone());
        ws = ws.with_tls(tls);
    }
    Ok(App::builder("connector")
        .acceptor(tcp)
        .acceptor(ws)
        .register(Lobby))
}

fn room(id: &str) -> AppBuilder {
    App::builder("room").register(Room {
        server_id: id.to_owned(),
        members: Mutex::default(),
    })
}

fn new_id(server_type: &str) -> String {
    format!("{server_type}-{}", std::process::id())
}

async fn run_networked(args: &Args, server: Server) -> Result<(), Error> {
    let server_type = match server {
        Server::Connector => "connector",
        Server::Room => "room",
    };
    let id = new_id(server_type);
    let cluster = Cluster::etcd_nats(
        EtcdConfig::new([args.etcd.clone()]),
        NatsConfig::new(args.nats.clone()),
    );
    let builder = match server {
        Server::Connector => connector(args).await?,
        Server::Room => room(&id),
    };
    let app = builder.cluster(cluster).server_id(id).build()?;
    for url in app.urls() {
        println!("{server_type} listening on {url}");
    }
    app.run().await?;
    Ok(())
}

async fn run_dev(args: &Args) -> Result<(), Error> {
    let dev = MemoryCluster::new();
    let room_app = room("room-dev")
        .cluster(Cluster::memory(&dev))
        .server_id("room-dev")
        .build()?;
    let front_app = connector(args)
        .await?
        .cluster(Cluster::memory(&dev))
        .server_id("connector-dev")
        .build()?;
    for url in front_app.urls() {
        println!("connector listening on {url}");
    }
    let room_handle = room_app.handle();
    let room_task = tokio::spawn(room_app.run_until(std::future::pending()));
    front_app.run().await?;
    room_handle.shutdown();
    room_task.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    match (args.dev, args.server) {
        (true, _) => run_dev(&args).await,
        (false, Some(server)) => run_networked(&args, server).await,
        (false, None) => Err("choose `connector` or `room`, or run with --dev".into()),
    }
}

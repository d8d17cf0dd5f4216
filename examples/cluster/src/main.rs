//! A clustered game on pitaya-rs, the canonical Pitaya shape: a
//! `connector` frontend that clients connect to (TCP and WebSocket) and
//! `room` backends without acceptors, each hosting any number of chat
//! rooms.
//!
//! - `connector.lobby.login` (request) `{"name":"ana","room":"blue"}`:
//!   binds the session to the name on the connector, records the room in
//!   the session data and answers `{"room":"blue","server":"room-..."}`,
//!   the room server that hosts it;
//! - `room.room.join` (request): forwarded by the connector to the room
//!   server its router picks from the session's room (every player of a
//!   room lands on the same server); the player joins the room's group,
//!   the room gets `onJoin` `{"name":"ana"}` and the reply is
//!   `{"room":"blue","server":"room-...","members":["ana",...]}`;
//! - `room.room.say` (notify) `{"content":"hi"}`: the room gets
//!   `onMessage` `{"name":"ana","content":"hi"}`, pushed by the backend to
//!   its group through the players' connector;
//! - when a player disconnects, the connector tells the room server, which
//!   removes the player from the group and pushes `onLeave` to the room;
//! - `connector.lobby.rooms` (request): the lobby asks every room server
//!   for its rooms through the typed remote stub (protobuf, as Go Pitaya's
//!   remotes) and answers `{"rooms":[{"server","room","members"}]}`.
//!
//! Separate processes on etcd and NATS (e.g. `scripts/cluster-deps.sh
//! start` prints the addresses of a local pair), two room servers:
//!
//! ```sh
//! cargo run -p cluster -- --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 room
//! cargo run -p cluster -- --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 room
//! cargo run -p cluster -- --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 connector
//! ```
//!
//! One process, the connector and two room servers on the in-process
//! cluster, nothing else needed:
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

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use pitaya::acceptors::{TcpAcceptor, TlsConfig, WsAcceptor};
use pitaya::app::AppBuilder;
use pitaya::cluster::{Cluster, EtcdConfig, MemoryCluster, NatsConfig, ServerInfo};
use pitaya::prelude::*;
use serde::{Deserialize, Serialize};

/// The frontend type players connect to: what backends push through.
const CONNECTOR: &str = "connector";

#[derive(Debug, Deserialize)]
struct Login {
    name: String,
    room: String,
}

#[derive(Debug, Serialize)]
struct LoggedIn {
    room: String,
    /// The room server hosting the room (none running: empty).
    server: String,
}

#[derive(Debug, Serialize)]
struct Joined {
    room: String,
    server: String,
    members: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Say {
    content: String,
}

#[derive(Debug, Serialize)]
struct Member<'a> {
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    name: &'a str,
    content: &'a str,
}

/// One room of a room server, as the `room.list` remote answers it.
/// Remotes carry protobuf, as in Go Pitaya (a Go server can call this
/// one): prost messages, serde for the lobby's JSON reply.
#[derive(Serialize, Clone, PartialEq, prost::Message)]
struct RoomInfo {
    #[prost(string, tag = "1")]
    server: String,
    #[prost(string, tag = "2")]
    room: String,
    #[prost(uint32, tag = "3")]
    members: u32,
}

/// The rooms of one room server.
#[derive(Clone, PartialEq, prost::Message)]
struct RoomList {
    #[prost(message, repeated, tag = "1")]
    rooms: Vec<RoomInfo>,
}

#[derive(Debug, Serialize)]
struct Rooms {
    rooms: Vec<RoomInfo>,
}

/// The group of a room (groups are per server: the router keeps every
/// player of a room on one server).
fn group_of(room: &str) -> String {
    format!("room:{room}")
}

/// The room server hosting `room`: a stable pick among the servers of
/// the type, sorted by id (FNV-1a of the name), so every connector agrees.
fn host_of(room: &str, servers: &[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>> {
    if servers.is_empty() {
        return None;
    }
    let hash = room.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let index = usize::try_from(hash % servers.len() as u64).unwrap_or(0);
    servers.get(index).cloned()
}

/// The connector's router for `room.*`: by the room in the session.
fn by_room(
    _ctx: &Context,
    session: &Session,
    servers: &[Arc<ServerInfo>],
) -> Option<Arc<ServerInfo>> {
    let room: String = session.get("room").ok().flatten()?;
    host_of(&room, servers)
}

/// A room server: any number of rooms, their members in groups.
struct RoomServer {
    server_id: String,
    /// The rooms opened here (a room stays listed once opened).
    rooms: Mutex<BTreeSet<String>>,
}

#[component(name = "room")]
impl RoomServer {
    /// Joins the room chosen at login.
    #[handler]
    async fn join(&self, session: &Session, app: &AppHandle) -> Result<Joined> {
        let (Some(name), Some(room)) = (session.uid(), session.get::<String>("room")?) else {
            return Err(PitayaError::new(
                codes::BAD_REQUEST,
                "log in first: connector.lobby.login",
            ));
        };
        let name = name.to_owned();
        let group = group_of(&room);
        let groups = app.groups();
        groups.get_or_create(&group).await?;
        // The player leaves the group when the client disconnects: the
        // connector tells this server.
        groups.add_session(&group, session).await?;
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(room.clone());
        let (left, left_group, app_left) = (name.clone(), group.clone(), app.clone());
        session.on_close(move |_| {
            tokio::spawn(async move {
                let to = Audience::group(&left_group).via(CONNECTOR);
                if let Err(err) = app_left.push(to, "onLeave", &Member { name: &left }).await {
                    tracing::warn!(error = %err, "leave push failed");
                }
            });
        })?;
        app.push(
            Audience::group(&group).via(CONNECTOR),
            "onJoin",
            &Member { name: &name },
        )
        .await?;
        Ok(Joined {
            members: groups.members(&group).await?,
            room,
            server: self.server_id.clone(),
        })
    }

    /// Says something to the room (a notify: no reply).
    #[handler]
    async fn say(&self, session: &Session, app: &AppHandle, say: Say) {
        let (Some(name), Ok(Some(room))) = (session.uid(), session.get::<String>("room")) else {
            tracing::debug!("say from a session that has not joined");
            return;
        };
        let message = Message {
            name,
            content: &say.content,
        };
        let to = Audience::group(group_of(&room)).via(CONNECTOR);
        if let Err(err) = app.push(to, "onMessage", &message).await {
            tracing::warn!(error = %err, "message push failed");
        }
    }

    /// The rooms of this server and their member counts (a
    /// server-to-server call).
    #[remote]
    async fn list(&self, app: &AppHandle) -> Result<RoomList> {
        let names: Vec<String> = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let mut rooms = Vec::with_capacity(names.len());
        for room in names {
            let members = app.groups().count(&group_of(&room)).await.unwrap_or(0);
            rooms.push(RoomInfo {
                server: self.server_id.clone(),
                room,
                members: u32::try_from(members).unwrap_or(u32::MAX),
            });
        }
        Ok(RoomList { rooms })
    }
}

/// The connector's own handlers.
struct Lobby;

#[component(name = "lobby")]
impl Lobby {
    /// Logs in under `name` and picks `room`.
    #[handler]
    async fn login(&self, session: &Session, app: &AppHandle, login: Login) -> Result<LoggedIn> {
        let (name, room) = (login.name.trim(), login.room.trim());
        if name.is_empty() || room.is_empty() {
            return Err(PitayaError::new(
                codes::BAD_REQUEST,
                "name and room must not be empty",
            ));
        }
        session.bind(name).await?;
        session.set("room", room)?;
        let servers = app
            .discovery()
            .map(|discovery| discovery.servers_of_type("room"))
            .unwrap_or_default();
        Ok(LoggedIn {
            room: room.to_owned(),
            server: host_of(room, &servers)
                .map(|s| s.id.clone())
                .unwrap_or_default(),
        })
    }

    /// Every room of every room server, asked through the typed remote.
    #[handler]
    async fn rooms(&self, ctx: &Context, app: &AppHandle) -> Result<Rooms> {
        let servers = app
            .discovery()
            .map(|discovery| discovery.servers_of_type("room"))
            .unwrap_or_default();
        let mut rooms = Vec::new();
        for server in servers {
            let stub = RoomServerRemote::new(app.remote_to("room", &server.id).with_context(ctx));
            rooms.extend(stub.list().await?.rooms);
        }
        Ok(Rooms { rooms })
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
    /// Key prefix of the servers in etcd (Go Pitaya's default).
    #[arg(long, default_value = "pitaya/", env = "PITAYA_ETCD_PREFIX")]
    etcd_prefix: String,
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
    Ok(App::builder(CONNECTOR)
        .acceptor(tcp)
        .acceptor(ws)
        .register(Lobby)
        .router("room", by_room))
}

fn room(id: &str) -> AppBuilder {
    App::builder("room")
        .register(RoomServer {
            server_id: id.to_owned(),
            rooms: Mutex::default(),
        })
        .server_id(id)
}

fn new_id(server_type: &str) -> String {
    format!("{server_type}-{}", std::process::id())
}

async fn run_networked(args: &Args, server: Server) -> Result<(), Error> {
    let mut etcd = EtcdConfig::new([args.etcd.clone()]);
    etcd.prefix.clone_from(&args.etcd_prefix);
    let cluster = Cluster::etcd_nats(etcd, NatsConfig::new(args.nats.clone()));
    let builder = match server {
        Server::Connector => connector(args).await?.server_id(new_id(CONNECTOR)),
        Server::Room => room(&new_id("room")),
    };
    let app = builder.cluster(cluster).build()?;
    let urls = app.urls();
    let handle = app.handle();
    let served = tokio::spawn(app.run());
    until_ready(&handle).await;
    for url in urls {
        println!("connector listening on {url}");
    }
    if let Some(me) = handle.server_info() {
        println!("{} {} ready", me.server_type, me.id);
    }
    Ok(served.await??)
}

async fn run_dev(args: &Args) -> Result<(), Error> {
    let dev = MemoryCluster::new();
    let mut rooms = Vec::new();
    for id in ["room-1", "room-2"] {
        let app = room(id).cluster(Cluster::memory(&dev)).build()?;
        let handle = app.handle();
        rooms.push((handle, tokio::spawn(app.run_until(std::future::pending()))));
    }
    for (handle, _) in &rooms {
        until_ready(handle).await;
    }
    let front_app = connector(args)
        .await?
        .server_id("connector-dev")
        .cluster(Cluster::memory(&dev))
        .build()?;
    let urls = front_app.urls();
    let front_handle = front_app.handle();
    let front = tokio::spawn(front_app.run());
    // Registered and seeing the rooms: clients can play.
    until_ready(&front_handle).await;
    for url in urls {
        println!("connector listening on {url}");
    }
    let served = front.await?;
    for (handle, _) in &rooms {
        handle.shutdown();
    }
    for (_, task) in rooms {
        task.await??;
    }
    Ok(served?)
}

/// Waits until `app` serves (or stops trying).
async fn until_ready(app: &AppHandle) {
    while !app.is_ready() && !app.is_shutting_down() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
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

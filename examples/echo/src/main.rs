//! An echo game server on pitaya-rs: `echo.echo.echo` decodes the JSON
//! payload and encodes it back, like a real handler would. Benchmarks
//! compare it with `raw-echo`, which answers from the codec alone.
//!
//! `--mode` picks how the echo component is reached:
//!
//! - `standalone` (default): one server of type `echo` with the component
//!   and the acceptors.
//!
//!   ```sh
//!   cargo run --release -p echo -- --tcp 127.0.0.1:3250 --ws 127.0.0.1:3251
//!   ```
//!
//! - `frontend` and `backend`: two processes on etcd and NATS (`--etcd`,
//!   `--nats`, or `PITAYA_ETCD` / `PITAYA_NATS`; `scripts/cluster-deps.sh
//!   start` prints the addresses of a local pair). The frontend, of type
//!   `connector`, holds the acceptors and no component: it forwards
//!   `echo.echo.echo` over NATS to a backend of type `echo`, which has the
//!   component and no acceptor. The backend prints `echo backend <id>
//!   registered` once it is registered in etcd and serving NATS; server IDs
//!   are `<type>-<pid>`.
//!
//!   ```sh
//!   cargo run --release -p echo -- --mode backend --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222
//!   cargo run --release -p echo -- --mode frontend --etcd http://127.0.0.1:2379 --nats nats://127.0.0.1:4222 --tcp 127.0.0.1:3250
//!   ```
//!
//! - `dev`: the same frontend and backend in one process, on the in-process
//!   cluster (no etcd, no NATS): measures forwarding without the network.
//!
//!   ```sh
//!   cargo run --release -p echo -- --mode dev --tcp 127.0.0.1:3250
//!   ```
//!
//! `--tls-cert` and `--tls-key` (PEM files, both or neither) make the
//! acceptors of the standalone, frontend and dev modes serve `tls://` and
//! `wss://` instead of `tcp://` and `ws://`:
//!
//! ```sh
//! cargo run --release -p echo -- --ws 127.0.0.1:3251 --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! `--threads`, `--heartbeat` and `--compression` apply in every mode;
//! `--nats-buffer` sets the backend's (and frontend's) NATS subscription
//! buffer, beyond which requests are dropped as a slow consumer.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use pitaya::acceptors::{TcpAcceptor, TlsConfig, WsAcceptor};
use pitaya::app::AppBuilder;
use pitaya::cluster::{Cluster, EtcdConfig, MemoryCluster, NatsConfig};

use pitaya::Bytes;
use pitaya::prelude::*;
use serde_json::Value;

/// The echo component.
struct Echo;

#[component(name = "echo")]
impl Echo {
    /// Replies with the request's payload.
    #[handler]
    async fn echo(&self, body: Value) -> Result<Value, PitayaError> {
        Ok(body)
    }

    /// Replies with the raw request bytes, without decoding them.
    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }
}

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One `echo` server with the component and the acceptors.
    Standalone,
    /// A `connector` frontend (acceptors, no component) forwarding to
    /// `echo` backends over etcd + NATS.
    Frontend,
    /// An `echo` backend (the component, no acceptor) on etcd + NATS.
    Backend,
    /// Frontend and backend in this process, on the in-process cluster.
    Dev,
}

/// Command line of the echo server.
#[derive(Debug, Parser)]
#[command(about = "An echo game server on pitaya-rs")]
struct Args {
    /// How to run: standalone, or as a cluster frontend / backend, or both
    /// in one process (dev).
    #[arg(long, value_enum, default_value = "standalone")]
    mode: Mode,
    /// TCP listen address (standalone, frontend, dev).
    #[arg(long, default_value = "127.0.0.1:3250")]
    tcp: String,
    /// Optional WebSocket listen address (standalone, frontend, dev).
    #[arg(long)]
    ws: Option<String>,
    /// PEM certificate chain (leaf first): with --tls-key, serve `tls://`
    /// and `wss://` instead of `tcp://` and `ws://` (standalone, frontend,
    /// dev).
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
    /// etcd endpoint (frontend, backend).
    #[arg(long, default_value = "http://127.0.0.1:2379", env = "PITAYA_ETCD")]
    etcd: String,
    /// NATS URL (frontend, backend).
    #[arg(long, default_value = "nats://127.0.0.1:4222", env = "PITAYA_NATS")]
    nats: String,
    /// Messages buffered per NATS subscription of the server connection
    /// before they are dropped as a slow consumer (frontend, backend;
    /// default: `NatsConfig`'s, Go Pitaya's 75).
    #[arg(long, value_name = "MESSAGES")]
    nats_buffer: Option<usize>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 30)]
    heartbeat: u64,
    /// zlib-compress bodies when shorter (Pitaya's default is on).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    compression: bool,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Server type of the frontend.
const FRONTEND_TYPE: &str = "connector";
/// Server type of the backend (and of the standalone server).
const BACKEND_TYPE: &str = "echo";

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    runtime.enable_all().build()?.block_on(async {
        match args.mode {
            Mode::Standalone => standalone(&args).await,
            Mode::Frontend | Mode::Backend => networked(&args).await,
            Mode::Dev => dev(&args).await,
        }
    })
}

/// The settings every mode shares.
fn configured(builder: AppBuilder, args: &Args) -> AppBuilder {
    builder
        .heartbeat(Duration::from_secs(args.heartbeat))
        .compression(args.compression)
}

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

/// Adds the TCP (and WebSocket, if asked) acceptors, over TLS if asked.
async fn with_acceptors(builder: AppBuilder, args: &Args) -> Result<AppBuilder, Error> {
    let tls = tls(args)?;
    let mut tcp = TcpAcceptor::bind(&args.tcp).await?;
    if let Some(tls) = &tls {
        tcp = tcp.with_tls(tls.clone());
    }
    let mut builder = builder.acceptor(tcp);
    if let Some(ws) = &args.ws {
        let mut ws = WsAcceptor::bind(ws).await?;
        if let Some(tls) = tls {
            ws = ws.with_tls(tls);
        }
        builder = builder.acceptor(ws);
    }
    Ok(builder)
}

fn print_urls(app: &App) {
    for url in app.urls() {
        println!("echo listening on {url}");
    }
}

/// Prints `echo <role> <id> registered` once the app is in its discovery's
/// view, i.e. its RPC server runs and it is registered (both happen in
/// `run`, before the app waits for shutdown).
fn announce_when_registered(handle: AppHandle, role: &'static str) {
    tokio::spawn(async move {
        // Ready: connected, serving and registered in the cluster.
        while !handle.is_ready() {
            if handle.is_shutting_down() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(me) = handle.server_info() {
            println!("echo {role} {} registered", me.id);
        }
    });
}

fn server_id(server_type: &str) -> String {
    format!("{server_type}-{}", std::process::id())
}

async fn standalone(args: &Args) -> Result<(), Error> {
    let builder = configured(App::builder(BACKEND_TYPE), args).register(Echo);
    let app = with_acceptors(builder, args).await?.build()?;
    print_urls(&app);
    app.run().await?;
    Ok(())
}

/// The frontend: acceptors, no component; `echo.*` routes are forwarded.
async fn frontend(args: &Args) -> Result<AppBuilder, Error> {
    with_acceptors(configured(App::builder(FRONTEND_TYPE), args), args).await
}

/// The backend: the component, no acceptor.
fn backend(args: &Args) -> AppBuilder {
    configured(App::builder(BACKEND_TYPE), args).register(Echo)
}

async fn networked(args: &Args) -> Result<(), Error> {
    let is_frontend = args.mode == Mode::Frontend;
    let server_type = if is_frontend {
        FRONTEND_TYPE
    } else {
        BACKEND_TYPE
    };
    let id = server_id(server_type);
    let mut nats = NatsConfig::new(args.nats.clone());
    if let Some(buffer) = args.nats_buffer {
        nats.subscription_capacity = buffer;
    }
    let cluster = Cluster::etcd_nats(EtcdConfig::new([args.etcd.clone()]), nats);
    let builder = if is_frontend {
        frontend(args).await?
    } else {
        backend(args)
    };
    let app = builder.cluster(cluster).server_id(id).build()?;
    print_urls(&app);
    announce_when_registered(
        app.handle(),
        if is_frontend { "frontend" } else { "backend" },
    );
    app.run().await?;
    Ok(())
}

async fn dev(args: &Args) -> Result<(), Error> {
    let dev = MemoryCluster::new();
    let back_app = backend(args)
        .cluster(Cluster::memory(&dev))
        .server_id(server_id(BACKEND_TYPE))
        .build()?;
    let front_app = frontend(args)
        .await?
        .cluster(Cluster::memory(&dev))
        .server_id(server_id(FRONTEND_TYPE))
        .build()?;
    print_urls(&front_app);
    let back_handle = back_app.handle();
    announce_when_registered(back_handle.clone(), "backend");
    announce_when_registered(front_app.handle(), "frontend");
    let back_task = tokio::spawn(back_app.run_until(std::future::pending()));
    let served = front_app.run().await;
    back_handle.shutdown();
    back_task.await??;
    served?;
    Ok(())
}

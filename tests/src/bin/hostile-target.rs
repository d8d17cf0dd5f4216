//! The server the hostile-client suite (`tests/tests/hostile.rs`) and
//! `hostile-bench` attack: a standalone `echo` app with the framework's
//! DEFAULT limits, TCP and WebSocket acceptors on `127.0.0.1:0`, on a
//! multi-threaded runtime with 2 worker threads.
//!
//! Routes: `echo.echo.echo` (a JSON value back), `echo.echo.raw` (the raw
//! bytes back), the notify `echo.echo.note` and `echo.echo.notes` (how
//! many notifies ran).
//!
//! Prints one line once it listens:
//! `hostile-target pid=<pid> tcp=<ip:port> ws=<ip:port>`. Each flag
//! overrides one limit; without flags every limit is the default. With
//! `--exit-on-stdin-eof` it exits when its standard input closes (the test
//! process that started it is gone). Logs by `RUST_LOG`, to stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use pitaya::Bytes;
use pitaya::acceptors::{TcpAcceptor, WsAcceptor};
use pitaya::app::App;
use pitaya::prelude::*;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// The echo component.
#[derive(Default)]
struct Echo {
    notes: Arc<AtomicU64>,
}

#[component(name = "echo")]
impl Echo {
    /// Decodes the JSON payload and returns it.
    #[handler]
    async fn echo(&self, body: Value) -> Result<Value, PitayaError> {
        Ok(body)
    }

    /// Returns the raw request bytes.
    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }

    /// A notify: counts itself.
    #[handler]
    async fn note(&self, _body: Value) {
        self.notes.fetch_add(1, Ordering::Relaxed);
    }

    /// How many notifies `note` has run.
    #[handler]
    async fn notes(&self) -> Result<u64, PitayaError> {
        Ok(self.notes.load(Ordering::Relaxed))
    }
}

/// Command line: each flag overrides one default limit.
#[derive(Debug, Parser)]
#[command(about = "The target of the hostile-client suite and bench")]
struct Args {
    /// TCP listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    tcp: String,
    /// WebSocket listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    ws: String,
    /// `AppBuilder::max_connections` (0 = unlimited).
    #[arg(long)]
    max_connections: Option<usize>,
    /// `AppBuilder::max_connections_per_ip` (0 = unlimited).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// `AppBuilder::handshake_timeout` in milliseconds (0 = off).
    #[arg(long)]
    handshake_timeout_ms: Option<u64>,
    /// `AppBuilder::heartbeat` in milliseconds.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// `AppBuilder::write_timeout` in milliseconds.
    #[arg(long)]
    write_timeout_ms: Option<u64>,
    /// `WsAcceptor::with_handshake_timeout` (the HTTP upgrade) in
    /// milliseconds.
    #[arg(long)]
    ws_upgrade_timeout_ms: Option<u64>,
    /// Exit when standard input reaches its end.
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Error> {
    let tcp = TcpAcceptor::bind(&args.tcp).await?;
    let mut ws = WsAcceptor::bind(&args.ws).await?;
    if let Some(ms) = args.ws_upgrade_timeout_ms {
        ws = ws.with_handshake_timeout(Duration::from_millis(ms));
    }
    let tcp_addr = tcp.local_addr();
    let ws_addr = ws.local_addr();
    let mut builder = App::builder("echo")
        .register(Echo::default())
        .acceptor(tcp)
        .acceptor(ws);
    if let Some(max) = args.max_connections {
        builder = builder.max_connections(max);
    }
    if let Some(max) = args.max_connections_per_ip {
        builder = builder.max_connections_per_ip(max);
    }
    if let Some(ms) = args.handshake_timeout_ms {
        builder = builder.handshake_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = args.heartbeat_ms {
        builder = builder.heartbeat(Duration::from_millis(ms));
    }
    if let Some(ms) = args.write_timeout_ms {
        builder = builder.write_timeout(Duration::from_millis(ms));
    }
    let app = builder.build()?;
    println!(
        "hostile-target pid={} tcp={tcp_addr} ws={ws_addr}",
        std::process::id()
    );
    if args.exit_on_stdin_eof {
        app.run_until(stdin_closed()).await?;
    } else {
        app.run().await?;
    }
    Ok(())
}

/// Resolves when standard input reaches its end (or fails).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(read) = stdin.read(&mut buf).await {
        if read == 0 {
            break;
        }
    }
}

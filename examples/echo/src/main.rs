//! An echo game server on pitaya-rs: `echo.echo.echo` decodes the JSON
//! payload and encodes it back, like a real handler would. Benchmarks
//! compare it with `raw-echo`, which answers from the codec alone.
//!
//! ```sh
//! cargo run --release -p echo -- --tcp 127.0.0.1:3250 --ws 127.0.0.1:3251
//! ```

use std::time::Duration;

use clap::Parser;
use pitaya::acceptors::{TcpAcceptor, WsAcceptor};

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

/// Command line of the echo server.
#[derive(Debug, Parser)]
#[command(about = "An echo game server on pitaya-rs")]
struct Args {
    /// TCP listen address.
    #[arg(long, default_value = "127.0.0.1:3250")]
    tcp: String,
    /// Optional WebSocket listen address.
    #[arg(long)]
    ws: Option<String>,
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    runtime.enable_all().build()?.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = App::builder("echo")
        .acceptor(TcpAcceptor::bind(&args.tcp).await?)
        .heartbeat(Duration::from_secs(args.heartbeat))
        .compression(args.compression)
        .register(Echo);
    if let Some(ws) = &args.ws {
        builder = builder.acceptor(WsAcceptor::bind(ws).await?);
    }
    let app = builder.build()?;
    for url in app.urls() {
        println!("echo listening on {url}");
    }
    app.run().await?;
    Ok(())
}

//! `raw-echo`: the "physical limit" reference for load tests.
//!
//! A minimal Pitaya-protocol echo server written straight on
//! [`pitaya_protocol::codec`], with no framework in between: every request is
//! answered with a response carrying the same id and the same body. The load
//! generator runs against it to measure the best req/s this machine can do.
//!
//! ```text
//! raw-echo --tcp 127.0.0.1:3250 --ws 127.0.0.1:3251 --threads 4
//! ```
//!
//! On start it prints one `raw-echo listening on tcp://ADDR` (and
//! `ws://ADDR`) line per listener to stdout, with the bound port, so port 0
//! works. Logs go to stderr (`RUST_LOG`, default `info`).

mod conn;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser};
use pitaya_protocol::codec::{HandshakeResponse, MessageCodec, Packet, PacketType};
use tokio::net::{TcpListener, TcpSocket};
use tracing::{info, warn};

use crate::conn::Shared;

/// Connections a listener queues before accepting them.
const BACKLOG: u32 = 4096;

/// Command line of `raw-echo`.
#[derive(Debug, Parser)]
#[command(name = "raw-echo", version, about)]
struct Args {
    /// TCP listen address.
    #[arg(long, default_value = "127.0.0.1:3250")]
    tcp: SocketAddr,

    /// WebSocket listen address (binary frames, any path); off if absent.
    #[arg(long)]
    ws: Option<SocketAddr>,

    /// Runtime worker threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,

    /// Heartbeat interval in seconds, announced in the handshake; peers
    /// silent for more than twice this are closed. 0 disables both.
    #[arg(long, default_value_t = 30)]
    heartbeat: u64,

    /// Zlib-compress response bodies (and the handshake) when shorter.
    #[arg(long, default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    compression: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("raw-echo: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };

    let result = runtime.block_on(run(&args));
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => {
            info!("raw-echo stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("raw-echo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds the listeners, announces them, serves until SIGINT or SIGTERM.
async fn run(args: &Args) -> io::Result<()> {
    // Install the signal handlers before announcing, so a supervisor that
    // signals right after reading the listening line stops us cleanly.
    let shutdown = ShutdownSignal::new()?;
    let shared = Arc::new(shared_state(args)?);

    let tcp = bind(args.tcp)?;
    let ws = args.ws.map(bind).transpose()?;
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "raw-echo listening on tcp://{}", tcp.local_addr()?)?;
        if let Some(ws) = &ws {
            writeln!(stdout, "raw-echo listening on ws://{}", ws.local_addr()?)?;
        }
        stdout.flush()?;
    }

    tokio::spawn(accept_loop(tcp, Arc::clone(&shared), Transport::Tcp));
    if let Some(ws) = ws {
        tokio::spawn(accept_loop(ws, shared, Transport::WebSocket));
    }
    shutdown.wait().await;
    info!("signal received, shutting down");
    Ok(())
}

/// The read-only state every connection shares: settings and the
/// handshake replies, encoded once.
fn shared_state(args: &Args) -> io::Result<Shared> {
    let heartbeat = Duration::from_secs(args.heartbeat);
    let handshake = HandshakeResponse::ok(heartbeat, BTreeMap::new(), "json");
    let packet = |response: &HandshakeResponse| {
        Packet::new(PacketType::Handshake, response.encode(args.compression))
            .to_bytes()
            .map_err(io::Error::other)
    };
    Ok(Shared {
        handshake_ok: packet(&handshake)?,
        handshake_refused: packet(&handshake.clone().refused())?,
        heartbeat: (!heartbeat.is_zero()).then_some(heartbeat),
        messages: MessageCodec::default().with_compression(args.compression),
    })
}

/// Binds `addr` with `SO_REUSEADDR` and a deep accept backlog.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// Packets on the raw byte stream.
    Tcp,
    /// One packet per binary WebSocket message.
    WebSocket,
}

/// Accepts connections forever, one task each.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, transport: Transport) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(err) = stream.set_nodelay(true) {
                    warn!(%peer, %err, "cannot set TCP_NODELAY");
                }
                let shared = Arc::clone(&shared);
                match transport {
                    Transport::Tcp => tokio::spawn(conn::serve_tcp(stream, peer, shared)),
                    Transport::WebSocket => tokio::spawn(conn::serve_ws(stream, peer, shared)),
                };
            }
            Err(err) => {
                // Typically EMFILE: back off instead of spinning.
                warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), registered eagerly.
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Registers the handlers now.
    fn new() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

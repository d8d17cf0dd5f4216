//! `pitaya-cli`: a REPL for Pitaya servers, like Go's pitaya-cli.
//!
//! ```text
//! pitaya-cli [ENDPOINT]                     interactive, optionally connected
//! pitaya-cli -f script.txt                  run commands from a file
//! printf 'connect ...\nrequest ...\n' | pitaya-cli
//! ```
//!
//! Commands: `connect <endpoint>`, `request <route> [json]`,
//! `notify <route> [json]`, `sethandshake <json>`, `disconnect`,
//! `wait-push <route> [timeout_ms]`, `sleep <ms>`, `history`, `help`,
//! `exit`. Responses and pushes are printed as JSON (MessagePack servers
//! are converted); errors go to stderr with their Pitaya code.

mod pitaya_cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pitaya_client::SerializerKind;
use tracing_subscriber::EnvFilter;

use pitaya_cli::command::Command;
use pitaya_cli::session::{Session, Settings, tls_settings};

/// A REPL for Pitaya servers (TCP, TLS, WebSocket, WebSocket over TLS).
///
/// Without a TTY on stdin, or with --filename, commands are read line by
/// line (blank lines and # comments are skipped) and the exit code is
/// non-zero if any command failed. History is kept in ~/.pitayacli_history
/// (or $PITAYACLI_HISTORY_PATH).
#[derive(Debug, Parser)]
#[command(name = "pitaya-cli", version)]
struct Args {
    /// Endpoint to connect to at start (tcp://, tls://, ws://, wss:// or host:port).
    #[arg(value_name = "ENDPOINT", conflicts_with = "connect")]
    endpoint: Option<String>,
    /// Same as the ENDPOINT argument.
    #[arg(short, long, value_name = "ENDPOINT")]
    connect: Option<String>,
    /// Run the commands of this file instead of the interactive prompt.
    #[arg(short, long, value_name = "FILE")]
    filename: Option<PathBuf>,
    /// Pretty-print JSON.
    #[arg(short, long)]
    pretty: bool,
    /// Request timeout in seconds (also the default wait-push timeout).
    #[arg(short, long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// Accept any TLS certificate (the default, as Go's pitaya-cli).
    #[arg(long)]
    insecure: bool,
    /// Verify the server's TLS certificate against this CA (PEM).
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Payload serializer (json or msgpack); default: what the server announces.
    #[arg(short, long, value_name = "NAME")]
    serializer: Option<SerializerKind>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let Some(timeout) = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
    else {
        eprintln!("--timeout must be a positive number of seconds");
        return ExitCode::from(2);
    };
    let ca = if args.insecure {
        None
    } else {
        args.ca.as_deref()
    };
    let tls = match tls_settings(ca) {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };

    let script: Option<Box<dyn std::io::BufRead>> = match &args.filename {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Some(Box::new(std::io::BufReader::new(file))),
            Err(err) => {
                eprintln!("opening {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        None if !std::io::stdin().is_terminal() => Some(Box::new(std::io::stdin().lock())),
        None => None,
    };
    let settings = Settings {
        pretty: args.pretty,
        timeout,
        tls,
        serializer: args.serializer,
    };
    let mut session = Session::new(settings, script.is_none());

    let mut failed = false;
    if let Some(endpoint) = args.endpoint.or(args.connect) {
        let connected = match endpoint.parse() {
            Ok(endpoint) => runtime.block_on(session.execute(Command::Connect(endpoint))),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = connected {
            eprintln!("{err}");
            failed = true;
        }
    }

    let code = match script {
        Some(input) => pitaya_cli::run_script(&runtime, &mut session, input),
        None => pitaya_cli::run_interactive(&runtime, &mut session),
    };
    if failed { ExitCode::FAILURE } else { code }
}

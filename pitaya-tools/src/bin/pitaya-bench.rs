//! `pitaya-bench`: a load generator for Pitaya servers.
//!
//! Opens N connections (TCP, TLS, WebSocket or WebSocket over TLS), runs
//! the handshake on each, then drives requests (closed loop with a given
//! depth, or open loop at a target rate with coordinated-omission
//! correction) or notifies, and reports throughput, errors by code and
//! latency percentiles, optionally as JSON. See `pitaya-bench --help`.

#[path = "pitaya_bench/mod.rs"]
mod bench;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::SystemTime;

use clap::Parser;
use pitaya_client::TlsConfig;
use pitaya_client::transport::ConnectOptions;
use pitaya_protocol::codec::{ClientSys, HandshakeRequest};
use tokio::sync::Semaphore;

use crate::bench::args::{Args, Config};
use crate::bench::conn::Shared;
use crate::bench::report::{Report, RunInfo};
use crate::bench::runner;
use crate::bench::wire::Payload;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pitaya-bench: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let cpus =
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
    let config = Config::from_args(args, cpus)?;
    let payload = match &args.payload_file {
        Some(path) => Payload::from_file_contents(
            std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?,
        ),
        None => Payload::from_json_text(&args.payload)?,
    };
    let payload_bytes = match &payload {
        Payload::Json { text, .. } => text.len(),
        Payload::Raw(bytes) => bytes.len(),
    };
    let tls = match &args.ca {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
            Some(TlsConfig::from_ca_pem(&pem).map_err(|err| err.to_string())?)
        }
        None => Some(TlsConfig::insecure()),
    };
    let options = ConnectOptions {
        tls,
        connect_timeout: config.connect_timeout_s,
        ..ConnectOptions::default()
    };
    let shared = Shared {
        endpoint: args.endpoint.clone(),
        options,
        handshake: HandshakeRequest {
            sys: ClientSys {
                platform: "pitaya-bench".into(),
                lib_version: concat!("pitaya-rs-", env!("CARGO_PKG_VERSION")).into(),
                client_build_number: "1".into(),
                client_version: env!("CARGO_PKG_VERSION").into(),
                ..ClientSys::default()
            },
            user: None,
        },
        connect_timeout: config.connect_timeout_s,
        connect_limit: Semaphore::new(config.connect_concurrency as usize),
        route: config.route.clone(),
        payload,
        kind: config.kind,
        depth: config.depth as usize,
        timeout: config.timeout_s,
        stop: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
    };

    let result = runner::run(&config, shared, args.quiet)?;
    let info = RunInfo {
        endpoint: args.endpoint.to_string(),
        label: args.label.clone(),
        payload_bytes,
        ended: SystemTime::now(),
    };
    let report = Report::new(&config, info, &result);
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json() + "\n")
            .map_err(|err| format!("writing {}: {err}", path.display()))?;
    }
    if result.connected == 0 {
        eprintln!("pitaya-bench: no connection could be opened");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

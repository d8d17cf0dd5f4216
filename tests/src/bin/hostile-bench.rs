//! Runs the four attacks of the hardening issue against a server given by
//! address and pid (any build of `examples/echo`, old or new, or
//! `hostile-target`), and prints what each cost the server: peak RSS
//! (VmHWM, reset before each attack, and sampled VmRSS), peak VmSize
//! (sampled), the canary's latencies and failures, and whether the
//! hostile sockets were closed.
//!
//! ```sh
//! hostile-bench --tcp 127.0.0.1:3250 --pid "$(pgrep -n echo)"
//! ```
//!
//! Every attack is bounded (at most `--sockets` sockets, at most about
//! 30 s) and only connects to the address given. See
//! `scripts/hostile-bench.sh`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use pitaya_tests::hostile::{
    self, Canary, CanaryReport, Closed, MAX_BODY, MemPeak, MemSampler, Peer, Stall, mib,
};

/// The attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Attack {
    /// Finding 1: three 16 MiB handshakes with a huge `user` block.
    Handshake,
    /// Finding 2: ~16 KiB zlib bombs inflating to 16 MiB of JSON.
    Zlib,
    /// Finding 3a: 1,000 headers announcing 16 MiB.
    Headers,
    /// Finding 3b: 50 partial 16 MiB bodies, before and after the
    /// handshake.
    Partial,
    /// Finding 4: connections that never complete the handshake.
    Deadline,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Hostile-load bench: attacks a Pitaya server and measures what they cost it")]
struct Args {
    /// The server's TCP acceptor (host:port; 127.0.0.1 only).
    #[arg(long)]
    tcp: SocketAddr,
    /// The server's process id (for /proc/PID/status).
    #[arg(long)]
    pid: u32,
    /// Which attacks (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    attacks: Vec<Attack>,
    /// Sockets of the header flood.
    #[arg(long, default_value_t = 1000)]
    sockets: usize,
    /// Seconds the zlib attackers keep going.
    #[arg(long, default_value_t = 10)]
    bomb_seconds: u64,
    /// The canary's period in milliseconds.
    #[arg(long, default_value_t = 20)]
    canary_ms: u64,
    /// Measure (memory, canary) for at least this many seconds from the
    /// start of each attack, so a quick attack still gets enough canary
    /// requests and what it left behind is seen.
    #[arg(long, default_value_t = 5)]
    min_seconds: u64,
    /// A label for the output (e.g. the commit).
    #[arg(long, default_value = "server")]
    label: String,
    /// Do not print the table header.
    #[arg(long)]
    no_header: bool,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !args.tcp.ip().is_loopback() {
        return Err("hostile-bench only attacks loopback addresses".into());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One measured attack.
struct Measured {
    mem: MemPeak,
    canary: CanaryReport,
}

async fn measured<T>(
    args: &Args,
    attack: impl std::future::Future<Output = T>,
) -> Result<(T, Measured), Error> {
    let sampler = MemSampler::start(args.pid)?;
    let canary = Canary::start(
        &format!("tcp://{}", args.tcp),
        Duration::from_millis(args.canary_ms),
    )?;
    let started = Instant::now();
    let outcome = attack.await;
    let min = Duration::from_secs(args.min_seconds);
    tokio::time::sleep(min.saturating_sub(started.elapsed())).await;
    let canary = canary.stop();
    let mem = sampler.stop();
    Ok((outcome, Measured { mem, canary }))
}

async fn run(args: Args) -> Result<(), Error> {
    let attacks = if args.attacks.is_empty() {
        vec![
            Attack::Handshake,
            Attack::Zlib,
            Attack::Headers,
            Attack::Partial,
            Attack::Deadline,
        ]
    } else {
        args.attacks.clone()
    };
    if !args.no_header {
        println!(
            "| server | attack | hostile sockets | server's answer / closed within | peak RSS (growth) | peak VmSize (growth) | canary p50 / p99 / max | canary failures |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    }
    for attack in attacks {
        match attack {
            Attack::Handshake => handshake(&args).await?,
            Attack::Zlib => zlib(&args).await?,
            Attack::Headers => headers(&args).await?,
            Attack::Partial => partial(&args).await?,
            Attack::Deadline => deadline(&args).await?,
        }
        // Let the server settle between attacks.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

fn row(args: &Args, attack: &str, sockets: &str, outcome: &str, measured: &Measured) {
    let mem = &measured.mem;
    let canary = &measured.canary;
    println!(
        "| {} | {attack} | {sockets} | {outcome} | {:.0} MiB (+{:.0}) | {:.0} MiB (+{:.0}) | {:.1} / {:.1} / {:.1} ms ({} requests) | {} |",
        args.label,
        mib(mem.peak_rss),
        mib(mem.rss_growth()),
        mib(mem.peak_vm_size),
        mib(mem.vm_growth()),
        ms(canary.p50()),
        ms(canary.p99()),
        ms(canary.max()),
        canary.latencies.len(),
        canary.failures.len(),
    );
    for failure in canary.failures.iter().take(3) {
        eprintln!("  canary: {failure}");
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn closed_text(closed: Closed) -> String {
    match closed.after() {
        Some(after) => format!("closed after {:.2} s", after.as_secs_f64()),
        None => "open".to_owned(),
    }
}

async fn handshake(args: &Args) -> Result<(), Error> {
    let hold = Duration::from_secs(10);
    let (bombs, measured) = measured(args, async {
        let bombs: Vec<_> = (0..3)
            .map(|_| tokio::spawn(hostile::handshake_bomb(args.tcp, MAX_BODY, false, hold)))
            .collect();
        let mut outcomes = Vec::new();
        for bomb in bombs {
            outcomes.push(bomb.await);
        }
        outcomes
    })
    .await?;
    let outcome = bombs
        .into_iter()
        .map(|bomb| match bomb {
            Ok(Ok(bomb)) => format!(
                "code {}, {} of 16 MiB read, {}",
                bomb.code
                    .map_or_else(|| "none".to_owned(), |code| code.to_string()),
                if bomb.sent >= MAX_BODY {
                    "all".to_owned()
                } else {
                    format!("{:.2} MiB", mib(bomb.sent as u64))
                },
                closed_text(bomb.closed)
            ),
            Ok(Err(err)) => format!("error: {err}"),
            Err(err) => format!("task failed: {err}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    row(
        args,
        "16 MiB handshake, huge `user` (held ≤ 10 s)",
        "3",
        &outcome,
        &measured,
    );
    Ok(())
}

async fn zlib(args: &Args) -> Result<(), Error> {
    let bomb = hostile::zlib_bomb_body(MAX_BODY);
    // One bomb, then a normal request on the same session.
    let single = bomb.clone();
    let (answer, measured_one) = measured(args, async {
        let mut peer = Peer::handshaken(args.tcp).await?;
        let started = Instant::now();
        peer.send_packet_bytes(&hostile::compressed_request(1, "echo.echo.echo", &single))
            .await?;
        let response = peer.next_response(Duration::from_secs(30)).await?;
        let took = started.elapsed();
        let after = peer
            .request(2, "echo.echo.echo", b"\"after\"", Duration::from_secs(10))
            .await;
        std::io::Result::Ok((response, took, after))
    })
    .await?;
    let outcome = match answer {
        Ok((response, took, after)) => format!(
            "{} in {:.0} ms; next request {}",
            match response.error_code() {
                Some(code) => code,
                None if !response.error => {
                    format!("ok ({:.1} MiB echoed)", mib(response.body.len() as u64))
                }
                None => "error".to_owned(),
            },
            ms(took),
            if after.is_ok_and(|reply| !reply.error) {
                "answered"
            } else {
                "failed"
            }
        ),
        Err(err) => format!("error: {err}"),
    };
    row(
        args,
        &format!("one zlib bomb ({} KiB → 16 MiB)", bomb.len() / 1024),
        "1",
        &outcome,
        &measured_one,
    );

    let seconds = args.bomb_seconds;
    let (stats, measured_loop) = measured(
        args,
        hostile::bomb_loop(
            args.tcp,
            bomb,
            8,
            Duration::ZERO,
            Duration::from_secs(seconds),
        ),
    )
    .await?;
    let outcome = format!(
        "{} bombs: {} PIT-400, {} inflated and answered, {} other; slowest answer {:.0} ms",
        stats.sent,
        stats.refused,
        stats.accepted,
        stats.other + stats.closed,
        ms(stats.slowest)
    );
    row(
        args,
        &format!("zlib bombs back to back for {seconds} s"),
        "8",
        &outcome,
        &measured_loop,
    );
    Ok(())
}

async fn headers(args: &Args) -> Result<(), Error> {
    let hold = Duration::from_secs(5);
    let count = args.sockets;
    let (flood, measured_flood) = measured(
        args,
        hostile::header_flood(args.tcp, count, Duration::ZERO, hold),
    )
    .await?;
    row(
        args,
        "`04 FF FF FF` before the handshake (held ≤ 5 s)",
        &format!("{count}"),
        &flood_text(&flood),
        &measured_flood,
    );
    Ok(())
}

async fn partial(args: &Args) -> Result<(), Error> {
    let hold = Duration::from_secs(5);
    for (handshake, what) in [(false, "before"), (true, "after")] {
        let (flood, measured_partial) = measured(
            args,
            hostile::partial_bodies(args.tcp, 50, MAX_BODY, 1 << 20, handshake, hold),
        )
        .await?;
        row(
            args,
            &format!("16 MiB announced, 1 MiB sent, {what} the handshake (held ≤ 5 s)"),
            "50",
            &flood_text(&flood),
            &measured_partial,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

fn flood_text(flood: &hostile::Flood) -> String {
    let mut text = format!("{}/{} closed", flood.closed, flood.opened);
    if flood.closed > 0 {
        text.push_str(&format!(
            ", slowest after {:.2} s",
            flood.slowest_close.as_secs_f64()
        ));
    }
    if flood.failed > 0 {
        text.push_str(&format!(", {} could not connect", flood.failed));
    }
    text
}

async fn deadline(args: &Args) -> Result<(), Error> {
    let limit = Duration::from_secs(15);
    let stalls = [
        (
            "heartbeats every 1 s, no handshake",
            Stall::Heartbeats(Duration::from_secs(1)),
        ),
        (
            "handshake, no ack, heartbeats every 1 s",
            Stall::NoAck(Duration::from_secs(1)),
        ),
        ("silent", Stall::Silent),
        (
            "handshake 1 byte / 100 ms",
            Stall::Slowloris(Duration::from_millis(100)),
        ),
    ];
    let (closes, measured) = measured(args, async {
        let tasks: Vec<_> = stalls
            .iter()
            .map(|&(_, how)| tokio::spawn(hostile::stall_handshake(args.tcp, how, limit)))
            .collect();
        let mut closes = Vec::new();
        for task in tasks {
            closes.push(match task.await {
                Ok(Ok(closed)) => closed_text(closed),
                Ok(Err(err)) => format!("error: {err}"),
                Err(err) => format!("task failed: {err}"),
            });
        }
        closes
    })
    .await?;
    let outcome = stalls
        .iter()
        .zip(closes)
        .map(|((what, _), closed)| format!("{what}: {closed}"))
        .collect::<Vec<_>>()
        .join("; ");
    row(
        args,
        "never completing the handshake (watched ≤ 15 s)",
        "4",
        &outcome,
        &measured,
    );
    Ok(())
}

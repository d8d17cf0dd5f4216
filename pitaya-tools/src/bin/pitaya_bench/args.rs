//! Command line: the clap definition, duration parsing, and the validated
//! [`Config`] the rest of the tool runs from.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use pitaya_client::Endpoint;
use serde::Serialize;

/// How long a run lasts when neither `--duration` nor `--requests` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Most requests one connection keeps in flight in open-loop mode. Beyond
/// this the connection waits for responses; the late sends still count
/// from their intended time, so the wait shows up in the latencies.
pub(crate) const OPEN_LOOP_MAX_IN_FLIGHT: usize = 4096;

const AFTER_HELP: &str = "\
Modes:
  closed loop (default)  every connection keeps --depth requests in flight and
                         sends the next one as soon as a response arrives;
                         latency is measured from the actual send.
  open loop (--rate R)   requests are scheduled at R req/s in total, spread
                         evenly over the connections, whatever the server does;
                         latency is measured from each request's *intended*
                         send time, so time a request spent waiting to be
                         sent (a stalled server, a full socket, a busy
                         client) counts (coordinated-omission correction, as
                         in wrk2). Timers fire 1-2 ms late, so requests are
                         written up to 2 ms ahead of their slot (and then
                         measured from the actual write). A connection keeps
                         at most 4096 requests in flight; later ones wait,
                         and the wait counts.
  --notify               sends notifies (no response expected), closed loop
                         as fast as the socket takes them or at --rate;
                         reports throughput only.

Errors are counted by code: an error response by the code in its payload,
a request without response after --timeout as PIT-504, and requests lost
when the server closes a connection as PIT-499 (the drop itself is counted
under connections.dropped). Connections are not re-opened.

Examples:
  pitaya-bench tcp://127.0.0.1:3250 -c 100 -d 10s
  pitaya-bench ws://127.0.0.1:3251/ -c 100 --depth 8 --route room.room.join
  pitaya-bench 127.0.0.1:3250 -c 50 --rate 20000 -d 30s --json run.json --label v2";

/// Load generator for Pitaya servers (Go Pitaya and pitaya-rs), over TCP,
/// TLS, WebSocket and WebSocket over TLS.
#[derive(Debug, Parser)]
#[command(name = "pitaya-bench", version, after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Server: tcp://host:port, tls://host:port, ws://host:port/path,
    /// wss://host:port/path or host:port (TCP).
    pub(crate) endpoint: Endpoint,

    /// Connections to open.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,

    /// Route of the requests (or notifies).
    #[arg(short = 'r', long, default_value = "echo.echo.echo")]
    pub(crate) route: String,

    /// Request body as JSON; sent as is to JSON servers and transcoded to
    /// MessagePack for msgpack servers.
    #[arg(short = 'p', long, default_value = r#"{"msg":"hello"}"#)]
    pub(crate) payload: String,

    /// Read the request body from a file instead (JSON, or sent verbatim if
    /// it is not JSON).
    #[arg(long, conflicts_with = "payload")]
    pub(crate) payload_file: Option<PathBuf>,

    /// How long to measure, after warm-up (e.g. 10s, 500ms, 2m, 1m30s).
    /// Default 10s.
    #[arg(short = 'd', long, value_parser = parse_duration, conflicts_with = "requests")]
    pub(crate) duration: Option<Duration>,

    /// Measure this many requests in total instead of a duration.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: Option<u64>,

    /// Open loop: target total rate in requests per second (latency measured
    /// from the intended send time). Without it: closed loop.
    #[arg(short = 'R', long, value_parser = parse_rate)]
    pub(crate) rate: Option<f64>,

    /// Closed loop: requests in flight per connection (sent in one write).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub(crate) depth: u32,

    /// Worker threads, each running its share of the connections on its own
    /// single-threaded runtime (default: number of CPUs).
    #[arg(short = 't', long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) threads: Option<u32>,

    /// Load before measuring starts; its requests are not counted.
    #[arg(short = 'w', long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,

    /// Ramp-up: connection i starts sending i/N of this after the others
    /// (before the warm-up; not measured).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) ramp: Option<Duration>,

    /// Per-request timeout; an unanswered request counts as PIT-504.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Send notifies instead of requests and count throughput only.
    #[arg(long, conflicts_with = "idle")]
    pub(crate) notify: bool,

    /// Hold the connections open and idle (heartbeats only) for the
    /// duration: the scenario for measuring a server's memory per idle
    /// connection.
    #[arg(long, conflicts_with_all = ["rate", "requests"])]
    pub(crate) idle: bool,

    /// Write the result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Free text stored in the result, to tell runs apart.
    #[arg(long)]
    pub(crate) label: Option<String>,

    /// No live progress on stderr.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,

    /// tls:// and wss://: accept any server certificate (the default, as
    /// Go's pitaya-cli does).
    #[arg(long, conflicts_with = "ca")]
    pub(crate) insecure: bool,

    /// tls:// and wss://: trust only the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub(crate) ca: Option<PathBuf>,

    /// Connections opened (and handshaken) at the same time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connect_concurrency: u32,

    /// Bound on one connect plus handshake.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) connect_timeout: Duration,
}

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Requests, matched with their responses.
    Request,
    /// Notifies, fire and forget.
    Notify,
    /// Nothing but heartbeats: idle connections.
    Idle,
}

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// After measuring for this long.
    Duration(Duration),
    /// After this many measured requests (in total).
    Requests(u64),
}

/// The validated run configuration; also stored in the JSON result.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Config {
    /// Connections to open.
    pub(crate) connections: u32,
    /// Requests or notifies.
    pub(crate) kind: Kind,
    /// Route.
    pub(crate) route: String,
    /// Total target rate (open loop), `None` for closed loop.
    pub(crate) rate: Option<f64>,
    /// In flight per connection (closed loop).
    pub(crate) depth: u32,
    /// Measured duration, if run by time.
    #[serde(serialize_with = "opt_secs")]
    pub(crate) duration_s: Option<Duration>,
    /// Measured requests, if run by count.
    pub(crate) requests: Option<u64>,
    /// Warm-up.
    #[serde(serialize_with = "secs")]
    pub(crate) warmup_s: Duration,
    /// Ramp-up.
    #[serde(serialize_with = "secs")]
    pub(crate) ramp_s: Duration,
    /// Per-request timeout.
    #[serde(serialize_with = "secs")]
    pub(crate) timeout_s: Duration,
    /// Worker threads.
    pub(crate) threads: u32,
    /// Connections opened at the same time.
    pub(crate) connect_concurrency: u32,
    /// Connect plus handshake timeout.
    #[serde(serialize_with = "secs")]
    pub(crate) connect_timeout_s: Duration,
}

impl Config {
    /// Validates `args` into a config. `cpus` is the default thread count.
    pub(crate) fn from_args(args: &Args, cpus: u32) -> Result<Self, String> {
        if args.route.is_empty() || args.route.len() > 255 {
            return Err(format!(
                "route must be 1 to 255 bytes long, got {}",
                args.route.len()
            ));
        }
        if args.timeout.is_zero() {
            return Err("--timeout must be above zero".into());
        }
        let stop = match (args.duration, args.requests) {
            (_, Some(n)) => Stop::Requests(n),
            (Some(d), None) if d.is_zero() => return Err("--duration must be above zero".into()),
            (Some(d), None) => Stop::Duration(d),
            (None, None) => Stop::Duration(DEFAULT_DURATION),
        };
        let (duration_s, requests) = match stop {
            Stop::Duration(d) => (Some(d), None),
            Stop::Requests(n) => (None, Some(n)),
        };
        let threads = args
            .threads
            .unwrap_or(cpus)
            .clamp(1, args.connections.max(1));
        Ok(Self {
            connections: args.connections,
            kind: if args.idle {
                Kind::Idle
            } else if args.notify {
                Kind::Notify
            } else {
                Kind::Request
            },
            route: args.route.clone(),
            rate: args.rate,
            depth: args.depth,
            duration_s,
            requests,
            warmup_s: args.warmup,
            ramp_s: args.ramp.unwrap_or_default(),
            timeout_s: args.timeout,
            threads,
            connect_concurrency: args.connect_concurrency,
            connect_timeout_s: args.connect_timeout,
        })
    }

    /// When the run stops.
    pub(crate) fn stop(&self) -> Stop {
        match (self.duration_s, self.requests) {
            (_, Some(n)) => Stop::Requests(n),
            (Some(d), None) => Stop::Duration(d),
            (None, None) => Stop::Duration(DEFAULT_DURATION),
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[allow(clippy::ref_option)] // serde's signature
fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Parses a duration: a sequence of `<number><unit>` with units `ns`, `us`,
/// `ms`, `s`, `m`, `h` (`1m30s`, `1.5s`, `250ms`); a bare number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {text:?}: missing unit")),
            unit => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)"
                ));
            }
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, text)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {text:?}"))
}

/// Parses a positive, finite rate.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("invalid rate {text:?}: expected a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration(" 3s "), Ok(ms(3_000)));
    }

    #[test]
    fn bad_durations() {
        for text in ["", "s", "10x", "1.2.3s", "-1s", "10 s", "ms10"] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for text in ["0", "-3", "nan", "inf", "x"] {
            assert!(parse_rate(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn config_defaults_and_stop() {
        let args = Args::try_parse_from(["pitaya-bench", "127.0.0.1:3250"]).unwrap();
        let config = Config::from_args(&args, 4).unwrap();
        assert_eq!(config.connections, 10);
        assert_eq!(config.route, "echo.echo.echo");
        assert_eq!(config.threads, 4);
        assert_eq!(config.depth, 1);
        assert_eq!(config.kind, Kind::Request);
        assert_eq!(config.stop(), Stop::Duration(ms(10_000)));
        assert_eq!(args.payload, r#"{"msg":"hello"}"#);

        let args = Args::try_parse_from([
            "pitaya-bench",
            "ws://h:1/x",
            "-n",
            "500",
            "-c",
            "2",
            "--notify",
        ])
        .unwrap();
        let config = Config::from_args(&args, 8).unwrap();
        assert_eq!(config.stop(), Stop::Requests(500));
        assert_eq!(config.threads, 2, "never more threads than connections");
        assert_eq!(config.kind, Kind::Notify);
        let config = Config::from_args(
            &Args::parse_from(["pitaya-bench", "tcp://h:1", "--idle", "-d", "30s"]),
            2,
        )
        .unwrap();
        assert_eq!(config.kind, Kind::Idle);
        assert!(Args::try_parse_from(["pitaya-bench", "tcp://h:1", "--idle", "-n", "5"]).is_err());
        assert!(Args::try_parse_from(["pitaya-bench", "tcp://h:1", "--idle", "--notify"]).is_err());
    }

    #[test]
    fn rejects_conflicts_and_nonsense() {
        for argv in [
            &["pitaya-bench", "h:1", "-d", "1s", "-n", "5"][..],
            &["pitaya-bench", "h:1", "-c", "0"],
            &["pitaya-bench", "h:1", "--depth", "0"],
            &["pitaya-bench", "h:1", "--rate", "0"],
            &[
                "pitaya-bench",
                "h:1",
                "--payload",
                "{}",
                "--payload-file",
                "x",
            ],
            &["pitaya-bench", "h:1", "--insecure", "--ca", "x.pem"],
            &["pitaya-bench", "http://h:1"],
        ] {
            assert!(Args::try_parse_from(argv).is_err(), "{argv:?}");
        }
        let args = Args::try_parse_from(["pitaya-bench", "h:1", "--route", ""]).unwrap();
        assert!(Config::from_args(&args, 1).is_err());
    }
}

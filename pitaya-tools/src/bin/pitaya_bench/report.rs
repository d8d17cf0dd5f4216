//! The result: a serializable [`Report`] (written with `--json`, so runs
//! can be compared) and the human summary printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::bench::args::{Config, Kind};
use crate::bench::runner::RunResult;
use crate::bench::stats::{LatencySummary, format_ms, format_rate, round3, thousands};

/// Everything about one run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    /// Always `"pitaya-bench"`.
    pub(crate) tool: &'static str,
    /// Version of the tool.
    pub(crate) version: &'static str,
    /// `--label`.
    pub(crate) label: Option<String>,
    /// When the run ended, RFC 3339 UTC.
    pub(crate) timestamp: String,
    /// The same, Unix milliseconds.
    pub(crate) timestamp_unix_ms: u64,
    /// Target endpoint.
    pub(crate) endpoint: String,
    /// Route.
    pub(crate) route: String,
    /// Serializer the server announced.
    pub(crate) serializer: Option<String>,
    /// Request body size in bytes, as given.
    pub(crate) payload_bytes: usize,
    /// The configuration.
    pub(crate) config: Config,
    /// Whether Ctrl-C cut the run short.
    pub(crate) interrupted: bool,
    /// Connection counts.
    pub(crate) connections: Connections,
    /// Measured window, seconds.
    pub(crate) duration_s: f64,
    /// Request counts (notifies: `sent` only).
    pub(crate) requests: Requests,
    /// Failed requests by code.
    pub(crate) errors_by_code: BTreeMap<String, u64>,
    /// Successful requests (notifies: sent) per second.
    pub(crate) throughput_rps: f64,
    /// Latency of successful requests in milliseconds; `null` for notifies
    /// or when nothing succeeded.
    pub(crate) latency_ms: Option<LatencySummary>,
}

/// Connection counts.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Connections {
    /// Asked for.
    pub(crate) requested: u32,
    /// Connected and handshaken.
    pub(crate) connected: u64,
    /// Failed to connect or handshake.
    pub(crate) failed: u64,
    /// Closed by the server (or failing) during the run.
    pub(crate) dropped: u64,
    /// Connect failures by message.
    pub(crate) connect_errors: BTreeMap<String, u64>,
    /// Drops by reason.
    pub(crate) drop_reasons: BTreeMap<String, u64>,
}

/// Request counts in the measured window.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Requests {
    /// Written (in a timed run, includes those still in flight at the end).
    pub(crate) sent: u64,
    /// Answered successfully.
    pub(crate) ok: u64,
    /// Failed (sum of `errors_by_code`).
    pub(crate) errors: u64,
    /// Responses matching no request in flight (after a timeout).
    pub(crate) unmatched: u64,
    /// Pushes received.
    pub(crate) pushes: u64,
}

/// What the report needs besides the config and the result.
#[derive(Clone, Debug)]
pub(crate) struct RunInfo {
    /// Target endpoint.
    pub(crate) endpoint: String,
    /// `--label`.
    pub(crate) label: Option<String>,
    /// Body size.
    pub(crate) payload_bytes: usize,
    /// When the run ended.
    pub(crate) ended: SystemTime,
}

impl Report {
    /// Builds the report of a run.
    pub(crate) fn new(config: &Config, info: RunInfo, result: &RunResult) -> Self {
        let stats = &result.stats;
        let done = match config.kind {
            Kind::Request => stats.ok,
            Kind::Notify => stats.sent,
            Kind::Idle => 0,
        };
        let secs = result.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let throughput = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let since_epoch = info
            .ended
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            tool: "pitaya-bench",
            version: env!("CARGO_PKG_VERSION"),
            label: info.label,
            timestamp: rfc3339(since_epoch),
            timestamp_unix_ms: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
            endpoint: info.endpoint,
            route: config.route.clone(),
            serializer: result.serializer.clone(),
            payload_bytes: info.payload_bytes,
            config: config.clone(),
            interrupted: result.interrupted,
            connections: Connections {
                requested: config.connections,
                connected: result.connected,
                failed: result.connect_errors.values().sum(),
                dropped: result.drops.values().sum(),
                connect_errors: result.connect_errors.clone(),
                drop_reasons: result.drops.clone(),
            },
            duration_s: round3(secs),
            requests: Requests {
                sent: stats.sent,
                ok: stats.ok,
                errors: stats.error_count(),
                unmatched: stats.unmatched,
                pushes: stats.pushes,
            },
            errors_by_code: stats.errors.clone(),
            throughput_rps: (throughput * 10.0).round() / 10.0,
            latency_ms: match config.kind {
                Kind::Request => LatencySummary::from_micros(&stats.latency_us),
                Kind::Notify | Kind::Idle => None,
            },
        }
    }

    /// Pretty JSON.
    pub(crate) fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The human summary.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let config = &self.config;
        let mode = match (config.kind, config.rate) {
            (Kind::Request, None) => format!("requests, closed loop, depth {}", config.depth),
            (Kind::Request, Some(rate)) => {
                format!("requests, open loop at {} req/s", format_rate(rate))
            }
            (Kind::Notify, None) => "notifies, closed loop".to_owned(),
            (Kind::Notify, Some(rate)) => {
                format!("notifies, open loop at {} /s", format_rate(rate))
            }
            (Kind::Idle, _) => "idle connections (heartbeats only)".to_owned(),
        };
        let _ = writeln!(out, "pitaya-bench {} route {}", self.endpoint, self.route);
        if let Some(label) = &self.label {
            let _ = writeln!(out, "label:        {label}");
        }
        let _ = writeln!(
            out,
            "mode:         {mode}, {} threads{}",
            config.threads,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let c = &self.connections;
        let _ = writeln!(
            out,
            "connections:  {} requested, {} connected, {} failed, {} dropped",
            c.requested, c.connected, c.failed, c.dropped
        );
        for (message, n) in c.connect_errors.iter().take(5) {
            let _ = writeln!(out, "  connect error x{n}: {message}");
        }
        for (reason, n) in c.drop_reasons.iter().take(5) {
            let _ = writeln!(out, "  dropped x{n}: {reason}");
        }
        let _ = writeln!(
            out,
            "duration:     {:.3}s measured (after {:.3}s warm-up)",
            self.duration_s,
            config.warmup_s.as_secs_f64() + config.ramp_s.as_secs_f64()
        );
        let r = &self.requests;
        match config.kind {
            Kind::Request => {
                let _ = writeln!(
                    out,
                    "requests:     {} sent, {} ok, {} errors",
                    thousands(r.sent),
                    thousands(r.ok),
                    thousands(r.errors)
                );
                if r.unmatched > 0 {
                    let _ = writeln!(
                        out,
                        "  {} late responses (after their timeout)",
                        thousands(r.unmatched)
                    );
                }
            }
            Kind::Notify => {
                let _ = writeln!(out, "notifies:     {} sent", thousands(r.sent));
            }
            Kind::Idle => {
                let _ = writeln!(
                    out,
                    "idle:         {} connections held open",
                    self.connections.connected
                );
            }
        }
        for (code, n) in &self.errors_by_code {
            let _ = writeln!(out, "  {code:<10} {}", thousands(*n));
        }
        let unit = match config.kind {
            Kind::Request => "req/s",
            Kind::Notify => "notifies/s",
            Kind::Idle => "req/s (idle)",
        };
        let _ = writeln!(
            out,
            "throughput:   {} {unit}",
            format_rate(self.throughput_rps)
        );
        if let Some(l) = &self.latency_ms {
            let _ = writeln!(
                out,
                "latency (ms): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {}, min {})",
                format_ms(l.p50),
                format_ms(l.p90),
                format_ms(l.p99),
                format_ms(l.p999),
                format_ms(l.max),
                format_ms(l.mean),
                format_ms(l.min),
            );
            if config.rate.is_some() {
                let _ = writeln!(
                    out,
                    "              (from intended send times: coordinated omission corrected)"
                );
            }
        }
        out
    }
}

/// `since_epoch` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::bench::args::Args;
    use crate::bench::stats::ConnStats;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000Z"
        );
    }

    fn result() -> RunResult {
        let mut stats = ConnStats::default();
        for us in [100, 200, 300, 400] {
            stats.record_ok(Duration::from_micros(us));
        }
        stats.sent = 7;
        stats.record_errors("PIT-404", 2);
        stats.record_errors("PIT-504", 1);
        RunResult {
            connected: 2,
            connect_errors: BTreeMap::from([("refused".to_owned(), 1)]),
            drops: BTreeMap::new(),
            serializer: Some("json".into()),
            stats,
            elapsed: Duration::from_secs(2),
            interrupted: false,
        }
    }

    fn report(argv: &[&str]) -> Report {
        let mut full = vec!["pitaya-bench", "tcp://127.0.0.1:3250"];
        full.extend_from_slice(argv);
        let config = Config::from_args(&Args::try_parse_from(full).unwrap(), 2).unwrap();
        let info = RunInfo {
            endpoint: "tcp://127.0.0.1:3250".into(),
            label: Some("baseline".into()),
            payload_bytes: 15,
            ended: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        Report::new(&config, info, &result())
    }

    #[test]
    fn json_report_has_everything() {
        let report = report(&["-c", "3", "-d", "2s"]);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["tool"], "pitaya-bench");
        assert_eq!(json["label"], "baseline");
        assert_eq!(json["endpoint"], "tcp://127.0.0.1:3250");
        assert_eq!(json["route"], "echo.echo.echo");
        assert_eq!(json["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(json["requests"]["ok"], 4);
        assert_eq!(json["requests"]["sent"], 7);
        assert_eq!(json["requests"]["errors"], 3);
        assert_eq!(json["errors_by_code"]["PIT-404"], 2);
        assert_eq!(json["errors_by_code"]["PIT-504"], 1);
        assert_eq!(json["connections"]["requested"], 3);
        assert_eq!(json["connections"]["connected"], 2);
        assert_eq!(json["connections"]["failed"], 1);
        assert_eq!(json["throughput_rps"], 2.0);
        assert_eq!(json["duration_s"], 2.0);
        assert_eq!(json["latency_ms"]["p50"], 0.2);
        assert_eq!(json["latency_ms"]["max"], 0.4);
        assert!(json["latency_ms"]["p99_9"].is_number());
        assert_eq!(json["config"]["connections"], 3);
        assert_eq!(json["config"]["duration_s"], 2.0);
        assert_eq!(json["config"]["kind"], "request");
        assert_eq!(json["config"]["rate"], serde_json::Value::Null);
    }

    #[test]
    fn notify_reports_have_no_latency() {
        let report = report(&["--notify"]);
        assert!(report.latency_ms.is_none());
        assert_eq!(report.throughput_rps, 3.5, "7 sent in 2 s");
        assert!(report.summary().contains("notifies:     7 sent"));
    }

    #[test]
    fn text_summary() {
        let text = report(&[]).summary();
        assert!(
            text.contains("requests:     7 sent, 4 ok, 3 errors"),
            "{text}"
        );
        assert!(text.contains("PIT-404    2"), "{text}");
        assert!(text.contains("throughput:   2.0 req/s"), "{text}");
        assert!(text.contains("latency (ms): p50 0.200"), "{text}");
        assert!(text.contains("connect error x1: refused"), "{text}");
    }
}

//! Orchestration: worker threads (one single-threaded runtime each, the
//! connections dealt round-robin), the connect phase, the common start, the
//! live progress line, Ctrl-C, and gathering the results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::bench::args::{Config, Kind, Stop};
use crate::bench::conn::{self, ConnPlan, Outcome, Plan, Ready, Shared};
use crate::bench::stats::{ConnStats, LiveCounters, format_rate, thousands};

/// Delay between "everyone is connected" and the first request, so every
/// worker is waiting when the start time comes.
const START_DELAY: Duration = Duration::from_millis(20);

/// What a run produced.
#[derive(Debug)]
pub(crate) struct RunResult {
    /// Connections that completed the handshake.
    pub(crate) connected: u64,
    /// Connect or handshake failures, by message.
    pub(crate) connect_errors: BTreeMap<String, u64>,
    /// Connections the server ended during the run, by reason.
    pub(crate) drops: BTreeMap<String, u64>,
    /// Serializer announced by the server (first connection).
    pub(crate) serializer: Option<String>,
    /// Everything measured, merged.
    pub(crate) stats: ConnStats,
    /// Length of the measured window.
    pub(crate) elapsed: Duration,
    /// Whether Ctrl-C ended the run.
    pub(crate) interrupted: bool,
}

/// Runs the benchmark described by `config` with `shared`.
pub(crate) fn run(config: &Config, shared: Shared, quiet: bool) -> Result<RunResult, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(coordinate(config, Arc::new(shared), quiet))
}

async fn coordinate(
    config: &Config,
    shared: Arc<Shared>,
    quiet: bool,
) -> Result<RunResult, String> {
    let total = config.connections as usize;
    let live: Vec<Arc<LiveCounters>> = (0..total).map(|_| Arc::default()).collect();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (plan_tx, plan_rx) = watch::channel(None);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();

    let threads = (config.threads as usize).clamp(1, total);
    for worker in 0..threads {
        let indices: Vec<usize> = (worker..total).step_by(threads).collect();
        let shared = shared.clone();
        let live = live.clone();
        let ready_tx = ready_tx.clone();
        let plan_rx = plan_rx.clone();
        let done_tx = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("bench-worker-{worker}"))
            .spawn(move || {
                let outcomes = worker_main(&indices, &shared, &live, &ready_tx, &plan_rx);
                let _ = done_tx.send(outcomes);
            })
            .map_err(|err| format!("cannot start a worker thread: {err}"))?;
    }
    drop((ready_tx, plan_rx, done_tx));

    // Connect phase.
    let connect_started = Instant::now();
    let mut serializer = None;
    let mut connected = vec![false; total];
    let mut connect_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut answered = 0;
    let mut progress = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut interrupted = false;
    while answered < total {
        tokio::select! {
            ready = ready_rx.recv() => {
                let Some(Ready { index, result }) = ready else { break };
                answered += 1;
                match result {
                    Ok(name) => {
                        serializer.get_or_insert(name);
                        if let Some(slot) = connected.get_mut(index) {
                            *slot = true;
                        }
                    }
                    Err(err) => *connect_errors.entry(err).or_default() += 1,
                }
            }
            _ = progress.tick(), if !quiet => {
                let failed: u64 = connect_errors.values().sum();
                eprintln!("connecting: {answered}/{total} answered, {failed} failed");
            }
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                break;
            }
        }
    }
    let connected_count = connected.iter().filter(|&&ok| ok).count();
    if !quiet {
        let failed: u64 = connect_errors.values().sum();
        eprintln!(
            "connected {connected_count}/{total} in {:.2}s ({failed} failed)",
            connect_started.elapsed().as_secs_f64()
        );
    }
    if interrupted || connected_count == 0 {
        shared.stop.store(true, Ordering::Relaxed);
        drop(plan_tx);
        let mut result = gather(
            &mut done_rx,
            threads,
            connected_count,
            connect_errors,
            serializer,
            None,
        )
        .await;
        result.interrupted = interrupted;
        return Ok(result);
    }

    let plan = make_plan(config, &connected, Instant::now() + START_DELAY);
    let measure_start = plan.measure_start;
    let measure_end = plan.measure_end;
    let _ = plan_tx.send(Some(plan));

    // Run phase: progress once a second until every worker is done.
    let mut reports = Vec::with_capacity(threads);
    let mut last = (0_u64, Instant::now());
    let mut progress = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let started = Instant::now();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    while reports.len() < threads {
        tokio::select! {
            outcomes = done_rx.recv() => match outcomes {
                Some(outcomes) => reports.push(outcomes),
                None => break,
            },
            _ = progress.tick(), if !quiet => {
                let now = Instant::now();
                let (done, errors) = live.iter().fold((0, 0), |(d, e), c| {
                    let (cd, ce) = c.read();
                    (d + cd, e + ce)
                });
                let rate = (done - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
                last = (done, now);
                let phase = if now < measure_start { "warmup" } else { "run" };
                let alive = connected_count as u64 - shared.dropped.load(Ordering::Relaxed).min(connected_count as u64);
                let unit = match config.kind {
                    Kind::Request => "req/s",
                    Kind::Notify => "notify/s",
                    Kind::Idle => "idle",
                };
                eprintln!(
                    "[{:>5.1}s {phase:>6}] {:>9} {unit}  total {:>11}  errors {}  conns {alive}/{connected_count}",
                    now.duration_since(started).as_secs_f64(),
                    format_rate(rate),
                    thousands(done),
                    thousands(errors),
                );
            }
            result = &mut ctrl_c, if !interrupted => {
                if result.is_ok() {
                    interrupted = true;
                    shared.stop.store(true, Ordering::Relaxed);
                    if !quiet {
                        eprintln!("interrupted, stopping");
                    }
                }
            }
        }
    }
    drop(plan_tx);
    let outcomes: Vec<Outcome> = reports.into_iter().flatten().collect();
    let mut result = summarize(
        &outcomes,
        connected_count,
        connect_errors,
        serializer,
        Some((measure_start, measure_end)),
    );
    result.interrupted = interrupted;
    Ok(result)
}

/// Waits for the workers and merges their outcomes.
async fn gather(
    done_rx: &mut mpsc::UnboundedReceiver<Vec<Outcome>>,
    threads: usize,
    connected: usize,
    connect_errors: BTreeMap<String, u64>,
    serializer: Option<String>,
    window: Option<(Instant, Option<Instant>)>,
) -> RunResult {
    let mut outcomes = Vec::new();
    for _ in 0..threads {
        match done_rx.recv().await {
            Some(part) => outcomes.extend(part),
            None => break,
        }
    }
    summarize(&outcomes, connected, connect_errors, serializer, window)
}

/// Merges connection outcomes into a result. `window` is the measured
/// `(start, end)`; the elapsed time runs from its start to the last
/// connection's finish, bounded by its end.
fn summarize(
    outcomes: &[Outcome],
    connected: usize,
    connect_errors: BTreeMap<String, u64>,
    serializer: Option<String>,
    window: Option<(Instant, Option<Instant>)>,
) -> RunResult {
    let mut stats = ConnStats::default();
    let mut drops: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_finish = None::<Instant>;
    for outcome in outcomes {
        stats.merge(&outcome.stats);
        if let Some(reason) = &outcome.dropped {
            *drops.entry(reason.clone()).or_default() += 1;
        }
        if let Some(at) = outcome.finished_at {
            last_finish = Some(last_finish.map_or(at, |last| last.max(at)));
        }
    }
    let elapsed = match (window, last_finish) {
        (Some((start, end)), Some(finish)) => {
            let finish = end.map_or(finish, |end| finish.min(end));
            finish.saturating_duration_since(start)
        }
        _ => Duration::ZERO,
    };
    RunResult {
        connected: connected as u64,
        connect_errors,
        drops,
        serializer,
        stats,
        elapsed,
        interrupted: false,
    }
}

/// One worker thread: a single-threaded runtime running its connections.
fn worker_main(
    indices: &[usize],
    shared: &Arc<Shared>,
    live: &[Arc<LiveCounters>],
    ready: &mpsc::UnboundedSender<Ready>,
    plan: &watch::Receiver<Option<Plan>>,
) -> Vec<Outcome> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let message = format!("cannot start a worker runtime: {err}");
            return indices
                .iter()
                .map(|&index| {
                    let _ = ready.send(Ready {
                        index,
                        result: Err(message.clone()),
                    });
                    Outcome::default()
                })
                .collect();
        }
    };
    runtime.block_on(async {
        let tasks: Vec<_> = indices
            .iter()
            .map(|&index| {
                tokio::spawn(conn::run(
                    index,
                    shared.clone(),
                    live[index].clone(),
                    ready.clone(),
                    plan.clone(),
                ))
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.unwrap_or_else(|err| Outcome {
                dropped: Some(format!("connection task failed: {err}")),
                ..Outcome::default()
            }));
        }
        outcomes
    })
}

/// The schedule: everyone starts at `start`, ramps up, warms up, measures.
/// Rates and quotas are spread over the connections that connected.
pub(crate) fn make_plan(config: &Config, connected: &[bool], start: Instant) -> Plan {
    let count = connected.iter().filter(|&&ok| ok).count().max(1);
    let measure_start = start + config.ramp_s + config.warmup_s;
    let (measure_end, total_requests) = match config.stop() {
        Stop::Duration(duration) => (Some(measure_start + duration), None),
        Stop::Requests(n) => (None, Some(n)),
    };
    #[allow(clippy::cast_precision_loss)]
    let interval = config
        .rate
        .map(|rate| Duration::from_secs_f64((count as f64 / rate).min(3600.0)));
    let mut rank = 0_u32;
    let count_u32 = u32::try_from(count).unwrap_or(u32::MAX);
    let conns = connected
        .iter()
        .map(|&ok| {
            if !ok {
                return None;
            }
            let begin = start
                + config
                    .ramp_s
                    .mul_f64(f64::from(rank) / f64::from(count_u32));
            let first_send = begin + interval.map_or(Duration::ZERO, |iv| iv * rank / count_u32);
            let quota = total_requests.map(|n| {
                let base = n / u64::from(count_u32);
                base + u64::from(u64::from(rank) < n % u64::from(count_u32))
            });
            rank += 1;
            Some(ConnPlan {
                begin,
                first_send,
                quota,
            })
        })
        .collect();
    Plan {
        measure_start,
        measure_end,
        interval,
        conns,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::bench::args::Args;

    fn config(argv: &[&str]) -> Config {
        let mut full = vec!["pitaya-bench", "127.0.0.1:1"];
        full.extend_from_slice(argv);
        Config::from_args(&Args::try_parse_from(full).unwrap(), 2).unwrap()
    }

    #[test]
    fn quotas_cover_the_total_over_connected_only() {
        let config = config(&["-n", "10", "-c", "4", "--warmup", "0s"]);
        let start = Instant::now();
        let plan = make_plan(&config, &[true, false, true, true], start);
        let quotas: Vec<_> = plan.conns.iter().map(|c| c.map(|c| c.quota)).collect();
        assert_eq!(
            quotas,
            vec![Some(Some(4)), None, Some(Some(3)), Some(Some(3))]
        );
        assert_eq!(plan.measure_start, start);
        assert!(plan.measure_end.is_none());
        assert!(plan.interval.is_none());
    }

    #[test]
    fn durations_ramps_and_rates() {
        let config = config(&[
            "-d", "10s", "-c", "2", "--warmup", "1s", "--ramp", "2s", "--rate", "100",
        ]);
        let start = Instant::now();
        let plan = make_plan(&config, &[true, true], start);
        assert_eq!(plan.measure_start, start + Duration::from_secs(3));
        assert_eq!(plan.measure_end, Some(start + Duration::from_secs(13)));
        // 100 req/s over 2 connections: one request every 20 ms each.
        assert_eq!(plan.interval, Some(Duration::from_millis(20)));
        let first = plan.conns[0].unwrap();
        let second = plan.conns[1].unwrap();
        assert_eq!(first.begin, start);
        assert_eq!(first.first_send, start);
        assert_eq!(second.begin, start + Duration::from_secs(1));
        // Staggered by half an interval.
        assert_eq!(second.first_send, second.begin + Duration::from_millis(10));
        assert_eq!(first.quota, None);
    }

    #[test]
    fn summary_elapsed_is_bounded_by_the_window() {
        let start = Instant::now();
        let end = start + Duration::from_secs(10);
        let mut a = Outcome {
            finished_at: Some(start + Duration::from_secs(11)),
            ..Outcome::default()
        };
        a.stats.record_ok(Duration::from_millis(1));
        let b = Outcome {
            finished_at: Some(start + Duration::from_secs(4)),
            dropped: Some("closed by the server".into()),
            ..Outcome::default()
        };
        let result = summarize(&[a, b], 2, BTreeMap::new(), None, Some((start, Some(end))));
        assert_eq!(result.elapsed, Duration::from_secs(10));
        assert_eq!(result.stats.ok, 1);
        assert_eq!(result.drops["closed by the server"], 1);

        let by_count = Outcome {
            finished_at: Some(start + Duration::from_millis(2500)),
            ..Outcome::default()
        };
        let result = summarize(&[by_count], 1, BTreeMap::new(), None, Some((start, None)));
        assert_eq!(result.elapsed, Duration::from_millis(2500));
    }
}

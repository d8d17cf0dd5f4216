//! Counting: per-connection statistics (owned by the connection's task, no
//! sharing), lock-free live counters for the progress line, and merging at
//! the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Significant figures kept by the latency histograms.
const SIGFIG: u8 = 3;

/// What one connection measured. Latencies are in microseconds.
#[derive(Clone, Debug)]
pub(crate) struct ConnStats {
    /// Requests (or notifies) written during the measured window.
    pub(crate) sent: u64,
    /// Successful responses to measured requests.
    pub(crate) ok: u64,
    /// Failed measured requests by code (server codes, `PIT-504`, `PIT-499`).
    pub(crate) errors: BTreeMap<String, u64>,
    /// Responses whose id matched no request in flight (e.g. after a timeout).
    pub(crate) unmatched: u64,
    /// Pushes received (ignored otherwise).
    pub(crate) pushes: u64,
    /// Latency of successful measured requests, microseconds.
    pub(crate) latency_us: Histogram<u64>,
}

impl Default for ConnStats {
    fn default() -> Self {
        Self {
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            unmatched: 0,
            pushes: 0,
            latency_us: new_histogram(),
        }
    }
}

/// An auto-resizing histogram: it only grows as far as the latencies seen,
/// which keeps thousands of connections cheap.
fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("3 significant figures are valid")
}

impl ConnStats {
    /// Records a successful request that took `latency`.
    #[inline]
    pub(crate) fn record_ok(&mut self, latency: Duration) {
        self.ok += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // `record` grows the histogram (`saturating_record` would clamp).
        if self.latency_us.record(micros).is_err() {
            self.latency_us.saturating_record(micros);
        }
    }

    /// Counts `n` failed requests with `code`.
    pub(crate) fn record_errors(&mut self, code: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.errors.get_mut(code) {
            Some(count) => *count += n,
            None => {
                self.errors.insert(code.to_owned(), n);
            }
        }
    }

    /// Failed requests in total.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (code, n) in &other.errors {
            self.record_errors(code, *n);
        }
        self.unmatched += other.unmatched;
        self.pushes += other.pushes;
        self.latency_us
            .add(&other.latency_us)
            .expect("auto-resizing histograms accept any value");
    }
}

/// Counters a connection publishes for the progress line. Only the owning
/// task writes (plain stores, no read-modify-write); the progress loop reads.
/// Aligned to a cache line so connections on different threads do not share
/// one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct LiveCounters {
    /// Completed requests (successful responses, or notifies written),
    /// warm-up included.
    done: AtomicU64,
    /// Failed requests, warm-up included.
    errors: AtomicU64,
}

impl LiveCounters {
    /// Publishes the owner's running totals.
    #[inline]
    pub(crate) fn publish(&self, done: u64, errors: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.errors.store(errors, Ordering::Relaxed);
    }

    /// `(done, errors)` so far.
    pub(crate) fn read(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct LatencySummary {
    /// Smallest.
    pub(crate) min: f64,
    /// Mean.
    pub(crate) mean: f64,
    /// Standard deviation.
    pub(crate) stdev: f64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99_9")]
    pub(crate) p999: f64,
    /// Largest.
    pub(crate) max: f64,
}

impl LatencySummary {
    /// Percentiles of a microsecond histogram; `None` when it is empty.
    pub(crate) fn from_micros(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // microseconds fit f64 exactly in practice
        let ms = |micros: u64| round3(micros as f64 / 1000.0);
        Some(Self {
            min: ms(histogram.min()),
            mean: round3(histogram.mean() / 1000.0),
            stdev: round3(histogram.stdev() / 1000.0),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        })
    }
}

/// Rounds to 3 decimals (microseconds, when the unit is milliseconds).
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, c) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: one decimal below 100, none above (`12.5`, `104,233`).
pub(crate) fn format_rate(rate: f64) -> String {
    if !rate.is_finite() || rate < 0.0 {
        return "0".into();
    }
    if rate < 100.0 {
        format!("{rate:.1}")
    } else {
        // Finite, non-negative and far below 2^64 for any real run.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        thousands(rate.round() as u64)
    }
}

/// Milliseconds with three decimals (`0.042`, `12.345`).
pub(crate) fn format_ms(ms: f64) -> String {
    format!("{ms:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_with(latencies_us: &[u64], errors: &[(&str, u64)]) -> ConnStats {
        let mut stats = ConnStats::default();
        for &us in latencies_us {
            stats.record_ok(Duration::from_micros(us));
            stats.sent += 1;
        }
        for (code, n) in errors {
            stats.record_errors(code, *n);
            stats.sent += n;
        }
        stats
    }

    #[test]
    fn merging_adds_everything() {
        let mut total = stats_with(&[100, 200], &[("PIT-404", 2), ("PIT-504", 1)]);
        let other = stats_with(&[300, 400, 50_000_000], &[("PIT-404", 3)]);
        total.merge(&other);
        total.merge(&ConnStats::default());
        assert_eq!(total.ok, 5);
        assert_eq!(total.sent, 11);
        assert_eq!(total.latency_us.len(), 5);
        assert_eq!(total.errors["PIT-404"], 5);
        assert_eq!(total.errors["PIT-504"], 1);
        assert_eq!(total.error_count(), 6);
        // The large value from the other histogram survived the merge.
        assert!(total.latency_us.max() >= 49_000_000);
    }

    #[test]
    fn zero_errors_are_not_listed() {
        let mut stats = ConnStats::default();
        stats.record_errors("PIT-499", 0);
        assert!(stats.errors.is_empty());
    }

    #[test]
    fn sub_microsecond_latencies_count_as_one() {
        let mut stats = ConnStats::default();
        stats.record_ok(Duration::from_nanos(10));
        assert_eq!(stats.latency_us.min(), 1);
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let latencies: Vec<u64> = (1..=1000).collect();
        let summary = LatencySummary::from_micros(&stats_with(&latencies, &[]).latency_us).unwrap();
        assert_eq!(summary.min, 0.001);
        assert_eq!(summary.p50, 0.5);
        assert_eq!(summary.p90, 0.9);
        assert_eq!(summary.p99, 0.99);
        assert_eq!(summary.p999, 0.999);
        assert_eq!(summary.max, 1.0);
        assert!((summary.mean - 0.5005).abs() < 0.001, "{}", summary.mean);
        assert!(LatencySummary::from_micros(&ConnStats::default().latency_us).is_none());
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(format_rate(12.34), "12.3");
        assert_eq!(format_rate(104_233.4), "104,233");
        assert_eq!(format_rate(f64::NAN), "0");
        assert_eq!(format_ms(0.0421), "0.042");
        assert_eq!(format_ms(12.3456), "12.346");
        assert_eq!(round3(1.23456), 1.235);
    }

    #[test]
    fn live_counters_round_trip() {
        let live = LiveCounters::default();
        live.publish(7, 2);
        assert_eq!(live.read(), (7, 2));
        assert_eq!(std::mem::align_of::<LiveCounters>(), 64);
    }
}

//! Go's `time.Duration` text form, used in `Request.metadata`
//! (`"reqTimeout": "5s"`) and in error metadata.
//!
//! ```
//! use std::time::Duration;
//! use pitaya_protocol::go_duration;
//!
//! assert_eq!(go_duration::format(Duration::from_secs(90)), "1m30s");
//! assert_eq!(go_duration::format(Duration::from_millis(1500)), "1.5s");
//! assert_eq!(go_duration::parse("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
//! ```

use std::time::Duration;

/// Formats like Go's `Duration.String()`: `"0s"`, `"1.5µs"`,
/// `"250ms"`, `"5s"`, `"1m0s"`, `"2h3m4.5s"`.
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 6));
    }
    let seconds = fraction(nanos % 60_000_000_000, 9);
    let minutes_total = nanos / 60_000_000_000;
    if minutes_total == 0 {
        return format!("{seconds}s");
    }
    let (hours, minutes) = (minutes_total / 60, minutes_total % 60);
    if hours == 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{hours}h{minutes}m{seconds}s")
    }
}

/// `value / 10^digits` with its fractional part, trailing zeros removed.
fn fraction(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses Go's duration syntax (`"300ms"`, `"1.5h"`, `"2h45m"`, `"0"`);
/// units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`. Negative
/// durations and garbage give `None`.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    if !total.is_finite() || total >= 18_446_744_073_709_551_615.0 {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "finite, non-negative and below u64::MAX"
    )]
    let nanos = total.round() as u64;
    Some(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_format_matches_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1µs"),
            (Duration::from_micros(2_200), "2.2ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(3_500), "3.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_nanos(4_000_000_001), "4.000000001s"),
            (Duration::from_secs(3600 * 5 + 61), "5h1m1s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format(duration), text, "{duration:?}");
            assert_eq!(parse(text), Some(duration), "{text}");
        }
    }

    #[test]
    fn go_duration_parse_variants() {
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse("+3s"), Some(Duration::from_secs(3)));
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s", ".s", "1s2"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

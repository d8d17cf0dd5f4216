//! Per-connection rate limiting, Pitaya's `RateLimitingWrapper`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pitaya_core::acceptor::{Acceptor, ConnError, PlayerConn};
use pitaya_core::codec::Packet;
use tokio::time::Instant;

/// Pitaya's default limit: 20 packets ...
pub const DEFAULT_RATE_LIMIT: u32 = 20;
/// ... per second.
pub const DEFAULT_RATE_INTERVAL: Duration = Duration::from_secs(1);

/// At most one "dropping packets" log line per connection per this period.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Wraps an acceptor so each of its connections lets through at most
/// `limit` packets per `interval`; packets over the limit (of any type,
/// heartbeats included, as in Pitaya) are dropped, counted in
/// [`dropped`](Self::dropped) and logged at debug level (at most one line
/// per connection every few seconds).
///
/// The limit is a token bucket (GCRA) holding `limit` tokens and
/// refilling one every `interval / limit`: a burst of `limit` packets
/// passes, then one packet per `interval / limit`. Pitaya keeps a sliding
/// window of the last `limit` timestamps instead, which is stricter for a
/// burst right after a full window but costs `limit` timestamps per
/// connection; the bucket costs two words.
///
/// ```no_run
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// use pitaya_acceptors::{AcceptorExt, TcpAcceptor};
///
/// # async fn run() -> std::io::Result<()> {
/// let acceptor = TcpAcceptor::bind("0.0.0.0:3250").await?.rate_limited(20, Duration::from_secs(1));
/// let dropped = acceptor.dropped(); // keep it for metrics
/// // ... hand `acceptor` to the app ...
/// println!("dropped so far: {}", dropped.load(Ordering::Relaxed));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RateLimited<A> {
    inner: A,
    limit: u32,
    interval: Duration,
    dropped: Arc<AtomicU64>,
}

impl<A> RateLimited<A> {
    /// Limits each connection of `inner` to `limit` packets per `interval`
    /// (a `limit` of 0 counts as 1; a zero `interval` disables the limit).
    pub fn new(inner: A, limit: u32, interval: Duration) -> Self {
        Self {
            inner,
            limit: limit.max(1),
            interval,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Limits each connection of `inner` with Pitaya's defaults
    /// ([`DEFAULT_RATE_LIMIT`] per [`DEFAULT_RATE_INTERVAL`]).
    pub fn with_defaults(inner: A) -> Self {
        Self::new(inner, DEFAULT_RATE_LIMIT, DEFAULT_RATE_INTERVAL)
    }

    /// The number of packets dropped so far over all connections (Pitaya's
    /// `exceeded_rate_limiting` metric). A shared handle: it keeps counting
    /// after the acceptor is handed to an app.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// The limit: packets per interval.
    pub fn limit(&self) -> (u32, Duration) {
        (self.limit, self.interval)
    }

    /// The wrapped acceptor.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// The wrapped acceptor, mutably.
    pub fn get_mut(&mut self) -> &mut A {
        &mut self.inner
    }

    /// Unwraps the acceptor.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

/// A connection accepted through [`RateLimited`], not yet upgraded.
#[derive(Debug)]
pub struct RateLimitedRaw<R> {
    raw: R,
    bucket: TokenBucket,
    dropped: Arc<AtomicU64>,
}

impl<R> RateLimitedRaw<R> {
    /// The wrapped raw connection.
    pub fn get_ref(&self) -> &R {
        &self.raw
    }
}

impl<A: Acceptor> Acceptor for RateLimited<A> {
    type Raw = RateLimitedRaw<A::Raw>;
    type Conn = RateLimitedConn<A::Conn>;

    fn url(&self) -> String {
        self.inner.url()
    }

    async fn accept(&mut self) -> io::Result<Self::Raw> {
        let raw = self.inner.accept().await?;
        Ok(RateLimitedRaw {
            raw,
            bucket: TokenBucket::new(self.limit, self.interval),
            dropped: self.dropped.clone(),
        })
    }

    async fn upgrade(raw: Self::Raw) -> io::Result<Self::Conn> {
        let inner = A::upgrade(raw.raw).await?;
        Ok(RateLimitedConn {
            inner,
            bucket: raw.bucket,
            dropped: raw.dropped,
            log: LogThrottle::default(),
        })
    }
}

/// A connection of a [`RateLimited`] acceptor: reads skip packets over the
/// limit.
#[derive(Debug)]
pub struct RateLimitedConn<C> {
    inner: C,
    bucket: TokenBucket,
    dropped: Arc<AtomicU64>,
    log: LogThrottle,
}

impl<C> RateLimitedConn<C> {
    /// The wrapped connection.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, mutably.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C: PlayerConn> RateLimitedConn<C> {
    fn on_dropped(&mut self, now: Instant) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.log.record(now) {
            tracing::debug!(
                peer = ?self.inner.remote_addr(),
                dropped = count,
                "rate limit exceeded, dropping packets"
            );
        }
    }
}

impl<C: PlayerConn> PlayerConn for RateLimitedConn<C> {
    /// The next packet within the limit. Cancel-safe if the inner
    /// connection's read is: the limiter is updated only when a packet is
    /// taken.
    async fn read_packet(&mut self) -> Result<Option<Packet>, ConnError> {
        loop {
            let Some(packet) = self.inner.read_packet().await? else {
                return Ok(None);
            };
            let now = Instant::now();
            if self.bucket.try_take(now) {
                return Ok(Some(packet));
            }
            self.on_dropped(now);
        }
    }

    fn has_buffered_packet(&self) -> bool {
        self.inner.has_buffered_packet()
    }

    async fn write_frames(&mut self, frames: &[u8]) -> io::Result<()> {
        self.inner.write_frames(frames).await
    }

    async fn close(&mut self) {
        self.inner.close().await;
    }

    fn shrink(&mut self) {
        self.inner.shrink();
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }
}

/// A GCRA token bucket: `limit` tokens, one back every `interval / limit`.
#[derive(Clone, Copy, Debug)]
struct TokenBucket {
    /// Time between two tokens.
    emission: Duration,
    /// How far ahead of now the bucket may be drawn: `limit - 1` tokens.
    tolerance: Duration,
    /// When the bucket is full again (the theoretical arrival time).
    full_at: Option<Instant>,
}

impl TokenBucket {
    fn new(limit: u32, interval: Duration) -> Self {
        let emission = interval / limit.max(1);
        Self {
            emission,
            tolerance: interval.saturating_sub(emission),
            full_at: None,
        }
    }

    /// Takes a token if there is one.
    fn try_take(&mut self, now: Instant) -> bool {
        let full_at = self.full_at.map_or(now, |at| at.max(now));
        let Some(latest) = now.checked_add(self.tolerance) else {
            return true;
        };
        if full_at > latest {
            return false;
        }
        self.full_at = full_at.checked_add(self.emission).or(Some(full_at));
        true
    }
}

/// Decides when to log drops: at most once per [`LOG_EVERY`], reporting
/// how many were dropped since the last line.
#[derive(Clone, Copy, Debug, Default)]
struct LogThrottle {
    last: Option<Instant>,
    unlogged: u64,
}

impl LogThrottle {
    /// Records a drop; returns the count to log if a line is due.
    fn record(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= LOG_EVERY);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn takes(bucket: &mut TokenBucket, now: Instant, n: usize) -> usize {
        (0..n).filter(|_| bucket.try_take(now)).count()
    }

    #[test]
    fn burst_of_limit_then_refill() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(20, Duration::from_secs(1));
        assert_eq!(takes(&mut bucket, start, 30), 20);
        // One token back every 50 ms.
        assert_eq!(takes(&mut bucket, start + Duration::from_millis(49), 5), 0);
        assert_eq!(takes(&mut bucket, start + Duration::from_millis(50), 5), 1);
        // A full interval later the whole burst is available again.
        assert_eq!(
            takes(&mut bucket, start + Duration::from_millis(1050), 30),
            20
        );
    }

    #[test]
    fn steady_rate_within_the_limit_passes() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, Duration::from_secs(1));
        for i in 0..100 {
            assert!(
                bucket.try_take(start + Duration::from_millis(334) * i),
                "packet {i}"
            );
        }
    }

    #[test]
    fn uneven_division_keeps_the_limit() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, Duration::from_secs(1));
        assert_eq!(takes(&mut bucket, start, 10), 3);
        assert_eq!(takes(&mut bucket, start + Duration::from_secs(1), 10), 3);
    }

    #[test]
    fn zero_interval_or_huge_values_do_not_limit_or_panic() {
        let start = Instant::now();
        let mut free = TokenBucket::new(1, Duration::ZERO);
        assert_eq!(takes(&mut free, start, 1000), 1000);
        let mut huge = TokenBucket::new(0, Duration::MAX);
        assert!(huge.try_take(start));
        assert!(huge.try_take(start));
    }

    #[test]
    fn log_throttle_reports_counts() {
        let start = Instant::now();
        let mut log = LogThrottle::default();
        assert_eq!(log.record(start), Some(1));
        assert_eq!(log.record(start + Duration::from_secs(1)), None);
        assert_eq!(log.record(start + Duration::from_secs(2)), None);
        assert_eq!(log.record(start + LOG_EVERY), Some(3));
    }
}

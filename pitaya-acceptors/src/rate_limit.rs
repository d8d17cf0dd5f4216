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

/// How a [`RateLimited`] acceptor decides which packets pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitPolicy {
    /// Pitaya's `RateLimitingWrapper` (the default): each connection
    /// remembers when its last `limit` accepted packets arrived. A packet
    /// passes if fewer than `limit` were accepted so far, or if the oldest
    /// of those is at least `interval` old (it then takes the oldest's
    /// place); otherwise it is dropped and not remembered. No span of
    /// `interval` ever holds more than `limit` accepted packets.
    ///
    /// Memory: a ring of at most `limit` 4-byte offsets per connection,
    /// grown as packets pass (nothing for a connection that sent nothing).
    #[default]
    SlidingWindow,
    /// A token bucket (GCRA) holding `limit` tokens and refilling one
    /// every `interval / limit`: a burst of `limit` passes, then one packet
    /// per `interval / limit`. Smoother, and two words per connection, but
    /// up to about twice `limit` packets may pass in a span of `interval`
    /// that straddles a refill (a full burst, then the refilled tokens).
    TokenBucket,
}

/// Wraps an acceptor so each of its connections lets through at most
/// `limit` packets per `interval`; packets over the limit (of any type,
/// heartbeats included, as in Pitaya) are dropped, counted in
/// [`dropped`](Self::dropped) and logged at debug level (at most one line
/// per connection every few seconds).
///
/// By default the limit is Pitaya's sliding window
/// ([`RateLimitPolicy::SlidingWindow`]); [`with_policy`](Self::with_policy)
/// selects a token bucket instead, and
/// [`with_force_disable`](Self::with_force_disable) turns the limit off
/// (Pitaya's `conn.ratelimiting.forcedisable`).
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
    policy: RateLimitPolicy,
    force_disable: bool,
    dropped: Arc<AtomicU64>,
}

impl<A> RateLimited<A> {
    /// Limits each connection of `inner` to `limit` packets per `interval`
    /// with Pitaya's sliding window (a `limit` of 0 counts as 1; a zero
    /// `interval` disables the limit).
    pub fn new(inner: A, limit: u32, interval: Duration) -> Self {
        Self {
            inner,
            limit: limit.max(1),
            interval,
            policy: RateLimitPolicy::default(),
            force_disable: false,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Limits each connection of `inner` with Pitaya's defaults
    /// ([`DEFAULT_RATE_LIMIT`] per [`DEFAULT_RATE_INTERVAL`], sliding
    /// window).
    pub fn with_defaults(inner: A) -> Self {
        Self::new(inner, DEFAULT_RATE_LIMIT, DEFAULT_RATE_INTERVAL)
    }

    /// Uses `policy` for the connections accepted from now on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pitaya_acceptors::{AcceptorExt, RateLimitPolicy, TcpAcceptor};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let acceptor = TcpAcceptor::bind("127.0.0.1:0")
    ///     .await?
    ///     .rate_limited(20, Duration::from_secs(1))
    ///     .with_policy(RateLimitPolicy::TokenBucket);
    /// assert_eq!(acceptor.policy(), RateLimitPolicy::TokenBucket);
    /// # Ok(()) }
    /// ```
    pub fn with_policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// With `true`, lets every packet through (the wrapper stays in place
    /// but limits nothing), as Pitaya's `conn.ratelimiting.forcedisable`.
    pub fn with_force_disable(mut self, disable: bool) -> Self {
        self.force_disable = disable;
        self
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

    /// How the limit is applied.
    pub fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Whether the limit is turned off by
    /// [`with_force_disable`](Self::with_force_disable).
    pub fn is_force_disabled(&self) -> bool {
        self.force_disable
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

    /// The state of a new connection.
    fn limiter(&self) -> Limiter {
        if self.force_disable || self.interval.is_zero() {
            return Limiter::Off;
        }
        match self.policy {
            RateLimitPolicy::SlidingWindow => {
                Limiter::Window(SlidingWindow::new(self.limit, self.interval))
            }
            RateLimitPolicy::TokenBucket => {
                Limiter::Bucket(TokenBucket::new(self.limit, self.interval))
            }
        }
    }
}

/// A connection accepted through [`RateLimited`], not yet upgraded.
#[derive(Debug)]
pub struct RateLimitedRaw<R> {
    raw: R,
    limiter: Limiter,
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

    fn peer_addr(raw: &Self::Raw) -> Option<SocketAddr> {
        A::peer_addr(&raw.raw)
    }

    async fn accept(&mut self) -> io::Result<Self::Raw> {
        let raw = self.inner.accept().await?;
        Ok(RateLimitedRaw {
            raw,
            limiter: self.limiter(),
            dropped: self.dropped.clone(),
        })
    }

    async fn upgrade(raw: Self::Raw) -> io::Result<Self::Conn> {
        let inner = A::upgrade(raw.raw).await?;
        Ok(RateLimitedConn {
            inner,
            limiter: raw.limiter,
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
    limiter: Limiter,
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
            if self.limiter.try_pass(now) {
                return Ok(Some(packet));
            }
            self.on_dropped(now);
        }
    }

    fn has_buffered_packet(&self) -> bool {
        self.inner.has_buffered_packet()
    }

    fn set_max_packet_size(&mut self, max_body_len: usize) {
        self.inner.set_max_packet_size(max_body_len);
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

/// A connection's limiter state.
#[derive(Debug)]
enum Limiter {
    /// Everything passes.
    Off,
    /// [`RateLimitPolicy::SlidingWindow`].
    Window(SlidingWindow),
    /// [`RateLimitPolicy::TokenBucket`].
    Bucket(TokenBucket),
}

impl Limiter {
    /// Whether a packet arriving at `now` passes (and is then counted).
    fn try_pass(&mut self, now: Instant) -> bool {
        match self {
            Self::Off => true,
            Self::Window(window) => window.try_pass(now),
            Self::Bucket(bucket) => bucket.try_take(now),
        }
    }
}

/// Largest interval, in ticks: a tick is 1 µs, or longer for intervals
/// over 2^30 µs (about 18 minutes), so offsets of several intervals fit
/// in a `u32`.
const MAX_INTERVAL_TICKS: u128 = 1 << 30;

/// Pitaya's sliding window: when the last `limit` accepted packets
/// arrived, as `u32` tick offsets from a per-connection epoch.
///
/// A packet's time is stored rounded up to a tick and `now` is rounded
/// down, so the window errs on the strict side by less than two ticks and
/// is exact when times fall on ticks. When offsets would overflow, the
/// epoch moves forward to `now - interval`; offsets older than that are
/// clamped to it, which keeps them expired.
#[derive(Debug)]
struct SlidingWindow {
    /// At most this many packets per interval.
    limit: usize,
    /// The length of a tick, in nanoseconds (at least 1000).
    tick_nanos: u64,
    /// The interval in ticks, rounded up (at most [`MAX_INTERVAL_TICKS`]).
    interval_ticks: u32,
    /// Tick 0: the first packet's arrival, moved forward on overflow.
    epoch: Option<Instant>,
    /// A ring of the accepted packets' times, oldest at `head` once full;
    /// grown as packets pass, up to `limit` entries.
    times: Vec<u32>,
    /// The oldest entry once `times` is full.
    head: usize,
}

impl SlidingWindow {
    fn new(limit: u32, interval: Duration) -> Self {
        let interval_nanos = interval.as_nanos();
        let tick_nanos = interval_nanos
            .div_ceil(MAX_INTERVAL_TICKS)
            .clamp(1_000, u128::from(u64::MAX));
        let interval_ticks = interval_nanos.div_ceil(tick_nanos);
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            tick_nanos: u64::try_from(tick_nanos).unwrap_or(u64::MAX),
            interval_ticks: u32::try_from(interval_ticks).unwrap_or(u32::MAX),
            epoch: None,
            times: Vec::new(),
            head: 0,
        }
    }

    /// `now` in ticks since the epoch: (rounded down, rounded up).
    fn ticks(&self, epoch: Instant, now: Instant) -> (u128, u128) {
        let nanos = now.saturating_duration_since(epoch).as_nanos();
        let tick = u128::from(self.tick_nanos);
        (nanos / tick, nanos.div_ceil(tick))
    }

    /// Whether a packet arriving at `now` passes; if it does, it is
    /// recorded (replacing the oldest once `limit` are recorded).
    fn try_pass(&mut self, now: Instant) -> bool {
        let epoch = *self.epoch.get_or_insert(now);
        let (mut floor, mut ceil) = self.ticks(epoch, now);
        if ceil > u128::from(u32::MAX) {
            let Some(epoch) = self.rebase(epoch, floor) else {
                // Unreachable in practice (it takes 2^32 ticks of uptime
                // with ticks of centuries); start over rather than panic.
                self.epoch = Some(now);
                self.times.clear();
                self.head = 0;
                return self.try_pass(now);
            };
            (floor, ceil) = self.ticks(epoch, now);
        }
        let (Ok(floor), Ok(ceil)) = (u32::try_from(floor), u32::try_from(ceil)) else {
            return false;
        };
        if self.times.len() < self.limit {
            if self.times.len() == self.times.capacity() {
                // Double, as `push` would, but never past `limit`.
                let room = self.limit - self.times.len();
                self.times.reserve_exact(self.times.len().max(4).min(room));
            }
            self.times.push(ceil);
            return true;
        }
        let Some(oldest) = self.times.get_mut(self.head) else {
            return false;
        };
        if floor.saturating_sub(*oldest) < self.interval_ticks {
            return false;
        }
        *oldest = ceil;
        self.head = (self.head + 1) % self.limit;
        true
    }

    /// Moves the epoch to `interval` before `now` (`floor` ticks after
    /// the current epoch); returns the new epoch.
    fn rebase(&mut self, epoch: Instant, floor: u128) -> Option<Instant> {
        let shift = floor.checked_sub(u128::from(self.interval_ticks))?;
        let nanos = u64::try_from(shift.checked_mul(u128::from(self.tick_nanos))?).ok()?;
        let epoch = epoch.checked_add(Duration::from_nanos(nanos))?;
        let shift = u32::try_from(shift).unwrap_or(u32::MAX);
        for time in &mut self.times {
            *time = time.saturating_sub(shift);
        }
        self.epoch = Some(epoch);
        Some(epoch)
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

    /// Pitaya's algorithm on exact timestamps, to compare against.
    struct Reference {
        limit: usize,
        interval: Duration,
        times: std::collections::VecDeque<Instant>,
    }

    impl Reference {
        fn try_pass(&mut self, now: Instant) -> bool {
            if self.times.len() < self.limit {
                self.times.push_back(now);
                return true;
            }
            if now.duration_since(self.times[0]) < self.interval {
                return false;
            }
            self.times.pop_front();
            self.times.push_back(now);
            true
        }
    }

    fn passes(window: &mut SlidingWindow, now: Instant, n: usize) -> usize {
        (0..n).filter(|_| window.try_pass(now)).count()
    }

    #[test]
    fn window_burst_then_nothing_until_the_oldest_expires() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut window = SlidingWindow::new(20, Duration::from_secs(1));
        assert_eq!(passes(&mut window, start, 40), 20);
        // A bucket would have refilled half its tokens by now.
        assert_eq!(passes(&mut window, start + ms(500), 40), 0);
        assert_eq!(passes(&mut window, start + ms(999), 40), 0);
        // The oldest is exactly an interval old: the whole burst again.
        assert_eq!(passes(&mut window, start + ms(1000), 40), 20);
        assert_eq!(passes(&mut window, start + ms(1999), 1), 0);
    }

    #[test]
    fn window_slides_one_packet_at_a_time() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut window = SlidingWindow::new(3, Duration::from_secs(1));
        for at in [0, 100, 200] {
            assert!(window.try_pass(start + ms(at)));
        }
        assert!(!window.try_pass(start + ms(999)));
        // Each accepted packet frees its slot one interval later.
        assert!(window.try_pass(start + ms(1000)));
        assert!(!window.try_pass(start + ms(1050)));
        assert!(window.try_pass(start + ms(1100)));
        assert!(window.try_pass(start + ms(1200)));
        assert!(!window.try_pass(start + ms(1999)));
        assert!(window.try_pass(start + ms(2000)));
    }

    #[test]
    fn window_never_passes_more_than_the_limit_per_interval() {
        let start = Instant::now();
        let interval = Duration::from_secs(1);
        let mut window = SlidingWindow::new(20, interval);
        let mut passed = Vec::new();
        // A packet every 7 ms for 5 s, plus bursts.
        for i in 0..700u64 {
            let now = start + Duration::from_millis(7 * i);
            for _ in 0..(if i % 50 == 0 { 10 } else { 1 }) {
                if window.try_pass(now) {
                    passed.push(now);
                }
            }
        }
        for (i, &from) in passed.iter().enumerate() {
            let within = passed[i..]
                .iter()
                .take_while(|&&t| t < from + interval)
                .count();
            assert!(within <= 20, "{within} passed in the interval from {i}");
        }
        assert!(passed.len() >= 5 * 20 - 20, "{}", passed.len());
    }

    #[test]
    fn window_matches_pitaya_over_hours_across_epoch_moves() {
        // Micro-second times, so the compact offsets are exact; gaps up to
        // hours move the epoch (2^32 µs is about 71 minutes) many times.
        for (limit, interval) in [
            (1, Duration::from_secs(1)),
            (3, Duration::from_millis(250)),
            (20, Duration::from_secs(1)),
            (5, Duration::from_secs(900)),
        ] {
            let start = Instant::now();
            let mut window = SlidingWindow::new(limit, interval);
            let mut reference = Reference {
                limit: usize::try_from(limit).unwrap(),
                interval,
                times: Default::default(),
            };
            let mut now = start;
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            for step in 0..20_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let gap_us = match seed % 100 {
                    0 => 3_000_000_000 + seed % 5_000_000_000,
                    1..=20 => 0,
                    21..=90 => seed % (2 * u64::try_from(interval.as_micros()).unwrap() / 10),
                    _ => seed % 3_000_000,
                };
                now += Duration::from_micros(gap_us);
                assert_eq!(
                    window.try_pass(now),
                    reference.try_pass(now),
                    "limit {limit}, interval {interval:?}, step {step}"
                );
            }
            assert!(window.times.capacity() <= reference.limit);
        }
    }

    #[test]
    fn window_errs_on_the_strict_side_between_ticks() {
        let start = Instant::now();
        let ns = Duration::from_nanos;
        let mut window = SlidingWindow::new(1, Duration::from_secs(1));
        // The first packet is the epoch (tick 0); the next one falls
        // between ticks.
        assert!(window.try_pass(start));
        assert!(window.try_pass(start + ns(1_000_000_500)));
        // Exactly one interval after it, still between ticks: dropped,
        // never passed early.
        assert!(!window.try_pass(start + ns(2_000_000_500)));
        assert!(window.try_pass(start + ns(2_000_001_500)));
    }

    #[test]
    fn window_memory_grows_with_use_up_to_the_limit() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(20, Duration::from_secs(1));
        assert_eq!(
            window.times.capacity(),
            0,
            "nothing before the first packet"
        );
        assert_eq!(passes(&mut window, start, 1), 1);
        assert!(window.times.capacity() <= 4);
        assert_eq!(passes(&mut window, start, 100), 19);
        assert_eq!(window.times.capacity(), 20);
        for i in 1..100 {
            passes(&mut window, start + Duration::from_secs(i), 30);
        }
        assert_eq!(window.times.capacity(), 20);

        let mut two = SlidingWindow::new(2, Duration::from_secs(1));
        assert_eq!(passes(&mut two, start, 5), 2);
        assert_eq!(two.times.capacity(), 2);
    }

    #[test]
    fn window_with_huge_or_odd_values_does_not_panic() {
        let start = Instant::now();
        let mut forever = SlidingWindow::new(1, Duration::MAX);
        assert!(forever.try_pass(start));
        assert!(!forever.try_pass(start + Duration::from_secs(1_000_000_000)));
        let mut zero = SlidingWindow::new(0, Duration::from_nanos(1));
        assert!(zero.try_pass(start));
        assert!(zero.try_pass(start + Duration::from_micros(1)));
        let mut long = SlidingWindow::new(2, Duration::from_secs(86_400 * 365));
        assert_eq!(passes(&mut long, start, 3), 2);
        assert!(!long.try_pass(start + Duration::from_secs(86_400 * 364)));
        assert!(long.try_pass(start + Duration::from_secs(86_400 * 365 + 1)));
        // Time going backwards (it cannot with a monotonic clock) is "now".
        assert!(!long.try_pass(start));
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

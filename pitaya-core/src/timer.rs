//! Timers: run a callback after a delay, every interval, N times, or until
//! a condition holds. Cancelable, and stopped when the app shuts down.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A running timer; dropping it does not stop it, [`Timer::cancel`] does.
#[derive(Clone, Debug)]
pub struct Timer {
    token: CancellationToken,
}

impl Timer {
    /// Stops the timer; a callback already running finishes.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether the timer was canceled (or the app stopped).
    pub fn is_canceled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Starts timers tied to a parent token (the app's shutdown).
#[derive(Clone, Debug)]
pub struct Timers {
    parent: CancellationToken,
}

impl Timers {
    /// Timers that stop when `parent` is canceled.
    pub fn new(parent: CancellationToken) -> Self {
        Self { parent }
    }

    /// Runs `callback` once after `delay`.
    pub fn after<F, Fut>(&self, delay: Duration, callback: F) -> Timer
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.parent.child_token();
        let stop = token.clone();
        // The clock starts now, not when the task is first polled.
        let deadline = tokio::time::Instant::now() + delay;
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep_until(deadline) => callback().await,
            }
        });
        Timer { token }
    }

    /// Runs `callback` every `interval`, forever (until canceled).
    pub fn every<F, Fut>(&self, interval: Duration, callback: F) -> Timer
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.repeat(interval, || true, callback)
    }

    /// Runs `callback` every `interval`, `times` times.
    pub fn times<F, Fut>(&self, interval: Duration, times: u64, callback: F) -> Timer
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut left = times;
        let more = move || {
            let go = left > 0;
            left = left.saturating_sub(1);
            go
        };
        self.repeat(interval, more, callback)
    }

    /// Checks `condition` every `interval` and runs `callback` once, the
    /// first time it holds.
    pub fn when<C, F, Fut>(&self, interval: Duration, mut condition: C, callback: F) -> Timer
    where
        C: FnMut() -> bool + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.parent.child_token();
        let stop = token.clone();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval_at(start, interval.max(Duration::from_millis(1)));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if condition() {
                    callback().await;
                    stop.cancel();
                    return;
                }
            }
        });
        Timer { token }
    }

    /// Runs `callback` every `interval` until `condition` holds (checked
    /// before each run); the timer then stops.
    pub fn until<C, F, Fut>(&self, interval: Duration, mut condition: C, callback: F) -> Timer
    where
        C: FnMut() -> bool + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.repeat(interval, move || !condition(), callback)
    }

    /// Every `interval`, asks `more` whether to go on, then runs `callback`;
    /// stops (and marks the timer canceled) once `more` says no.
    fn repeat<M, F, Fut>(&self, interval: Duration, mut more: M, mut callback: F) -> Timer
    where
        M: FnMut() -> bool + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.parent.child_token();
        let stop = token.clone();
        let interval = interval.max(Duration::from_millis(1));
        let first = tokio::time::Instant::now() + interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(first, interval);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if !more() {
                    stop.cancel();
                    return;
                }
                callback().await;
            }
        });
        Timer { token }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn counter() -> (
        Arc<AtomicU64>,
        impl FnMut() -> std::future::Ready<()> + Send + 'static,
    ) {
        let count = Arc::new(AtomicU64::new(0));
        let inner = count.clone();
        (count, move || {
            inner.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn times_runs_exactly_n_times() {
        let timers = Timers::new(CancellationToken::new());
        let (count, callback) = counter();
        let timer = timers.times(Duration::from_secs(1), 3, callback);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert!(
            timer.is_canceled(),
            "a finished timer reports itself stopped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_runs_until_canceled() {
        let timers = Timers::new(CancellationToken::new());
        let (count, callback) = counter();
        let timer = timers.every(Duration::from_secs(1), callback);
        tokio::time::sleep(Duration::from_millis(4500)).await;
        assert_eq!(count.load(Ordering::SeqCst), 4);
        timer.cancel();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn after_runs_once_and_parent_cancel_stops_timers() {
        let parent = CancellationToken::new();
        let timers = Timers::new(parent.clone());
        let (count, callback) = counter();
        timers.after(Duration::from_secs(2), callback);
        let (stopped, callback2) = counter();
        timers.every(Duration::from_secs(1), callback2);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        parent.cancel();
        let before = stopped.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            before,
            "app shutdown stops every timer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_repeats_while_the_condition_is_false() {
        let timers = Timers::new(CancellationToken::new());
        let (count, callback) = counter();
        let seen = count.clone();
        let timer = timers.until(
            Duration::from_secs(1),
            move || seen.load(Ordering::SeqCst) >= 3,
            callback,
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert!(timer.is_canceled());
    }

    #[tokio::test(start_paused = true)]
    async fn when_fires_once_the_condition_holds() {
        let timers = Timers::new(CancellationToken::new());
        let checks = Arc::new(AtomicU64::new(0));
        let seen = checks.clone();
        let (count, callback) = counter();
        timers.when(
            Duration::from_secs(1),
            move || seen.fetch_add(1, Ordering::SeqCst) >= 2,
            callback,
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(checks.load(Ordering::SeqCst), 3, "no checks after it fired");
    }
}

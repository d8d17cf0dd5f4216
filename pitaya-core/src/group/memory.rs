//! [`MemoryGroups`]: the groups of this process, Go's memory group service.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{GroupError, GroupFuture, GroupService, check_uid};

/// How often [`MemoryGroups`] removes expired groups by default (Go's
/// `pitaya.groups.memory.tickduration`, 30 s).
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Groups in this process' memory (Go's memory group service): each server
/// has its own, invisible to the other servers of a cluster. The default
/// service of an app.
///
/// A group created with a TTL is gone once the TTL has passed since its
/// creation or last [`renew_ttl`](GroupService::renew_ttl): operations
/// treat it as absent from that instant, and a sweep every
/// [`sweep_interval`](Self::with_sweep_interval) (30 s) frees the memory
/// of expired groups nobody touched. The sweep is a task on the tokio
/// runtime, started with the first TTL group; it ends when the last clone
/// of the service is dropped or when the app using it shuts down.
///
/// Clones share the same groups.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), pitaya_core::group::GroupError> {
/// use std::time::Duration;
/// use pitaya_core::group::{GroupError, GroupService, MemoryGroups};
///
/// let groups = MemoryGroups::with_sweep_interval(Duration::from_secs(5));
/// groups.create("lobby").await?;
/// groups.add("lobby", "ana").await?;
/// assert_eq!(groups.count("lobby").await?, 1);
/// assert_eq!(groups.renew_ttl("lobby").await, Err(GroupError::NoTtl("lobby".into())));
/// groups.delete("lobby").await?;
/// assert_eq!(groups.members("lobby").await, Err(GroupError::NotFound("lobby".into())));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryGroups {
    inner: Arc<Inner>,
}

struct Inner {
    groups: Mutex<HashMap<String, Group>>,
    sweep_interval: Duration,
    sweeper: Mutex<Sweeper>,
}

#[derive(Default)]
struct Sweeper {
    /// Stops the running sweep task, if any.
    running: Option<CancellationToken>,
    /// The shutdown signals of the apps using this service.
    shutdown: Vec<CancellationToken>,
}

#[derive(Default)]
struct Group {
    uids: BTreeSet<String>,
    ttl: Option<Ttl>,
}

struct Ttl {
    ttl: Duration,
    expires: Instant,
}

impl Group {
    fn expired(&self, now: Instant) -> bool {
        self.ttl.as_ref().is_some_and(|ttl| now >= ttl.expires)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MemoryGroups {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryGroups")
            .field("groups", &lock(&self.inner.groups).len())
            .field("sweep_interval", &self.inner.sweep_interval)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let sweeper = self
            .sweeper
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = sweeper.running.take() {
            running.cancel();
        }
    }
}

impl MemoryGroups {
    /// No groups; expired groups are swept every 30 s.
    pub fn new() -> Self {
        Self::build(DEFAULT_SWEEP_INTERVAL)
    }

    /// No groups; expired groups are swept every `interval` (at least 1 ms;
    /// Go's `tickduration`).
    pub fn with_sweep_interval(interval: Duration) -> Self {
        Self::build(interval.max(Duration::from_millis(1)))
    }

    fn build(sweep_interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                groups: Mutex::new(HashMap::new()),
                sweep_interval,
                sweeper: Mutex::new(Sweeper::default()),
            }),
        }
    }

    /// How often expired groups are swept.
    pub fn sweep_interval(&self) -> Duration {
        self.inner.sweep_interval
    }

    fn with_group<T>(
        &self,
        name: &str,
        op: impl FnOnce(&mut Group) -> Result<T, GroupError>,
    ) -> Result<T, GroupError> {
        let mut groups = lock(&self.inner.groups);
        match live(&mut groups, name, Instant::now()) {
            Some(group) => op(group),
            None => Err(GroupError::NotFound(name.to_owned())),
        }
    }

    fn insert(&self, name: &str, ttl: Option<Duration>) -> Result<(), GroupError> {
        let now = Instant::now();
        let mut groups = lock(&self.inner.groups);
        if live(&mut groups, name, now).is_some() {
            return Err(GroupError::Exists(name.to_owned()));
        }
        let ttl = ttl.map(|ttl| Ttl {
            ttl,
            expires: now + ttl,
        });
        groups.insert(
            name.to_owned(),
            Group {
                uids: BTreeSet::new(),
                ttl,
            },
        );
        Ok(())
    }

    /// Starts the sweep task unless it runs, or an app using the service
    /// has shut down, or there is no runtime (expired groups are still
    /// treated as absent, only their memory waits).
    fn ensure_sweeper(&self) {
        let mut sweeper = lock(&self.inner.sweeper);
        if sweeper
            .running
            .as_ref()
            .is_some_and(|running| !running.is_cancelled())
            || sweeper.shutdown.iter().any(CancellationToken::is_cancelled)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let stop = CancellationToken::new();
        sweeper.running = Some(stop.clone());
        let every = self.inner.sweep_interval;
        runtime.spawn(sweep(
            Arc::downgrade(&self.inner),
            Instant::now() + every,
            every,
            stop,
            sweeper.shutdown.clone(),
        ));
    }

    #[cfg(test)]
    fn stored(&self) -> usize {
        lock(&self.inner.groups).len()
    }
}

/// The group `name` unless it has expired (then it is removed).
fn live<'g>(
    groups: &'g mut HashMap<String, Group>,
    name: &str,
    now: Instant,
) -> Option<&'g mut Group> {
    if groups.get(name).is_some_and(|group| group.expired(now)) {
        groups.remove(name);
    }
    groups.get_mut(name)
}

/// Removes expired groups at `first`, then every `every`, until `stop`, an
/// app's shutdown, or the service is gone.
async fn sweep(
    inner: Weak<Inner>,
    first: Instant,
    every: Duration,
    stop: CancellationToken,
    shutdown: Vec<CancellationToken>,
) {
    let app_shutdown = async {
        if shutdown.is_empty() {
            std::future::pending::<()>().await;
        } else {
            futures::future::select_all(shutdown.iter().map(|token| Box::pin(token.cancelled())))
                .await;
        }
    };
    tokio::pin!(app_shutdown);
    let mut ticker = tokio::time::interval_at(first, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = &mut app_shutdown => return,
            _ = ticker.tick() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        lock(&inner.groups).retain(|_, group| !group.expired(now));
    }
}

/// A future doing `op` when first polled (and then done).
fn lazy<'a, T: Send + 'a>(
    op: impl FnOnce() -> Result<T, GroupError> + Send + 'a,
) -> GroupFuture<'a, T> {
    Box::pin(async move { op() })
}

impl GroupService for MemoryGroups {
    fn create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || self.insert(name, None))
    }

    fn create_with_ttl<'a>(&'a self, name: &'a str, ttl: Duration) -> GroupFuture<'a, ()> {
        lazy(move || {
            if ttl.is_zero() {
                return Err(GroupError::ZeroTtl);
            }
            self.insert(name, Some(ttl))?;
            self.ensure_sweeper();
            Ok(())
        })
    }

    fn get_or_create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || match self.insert(name, None) {
            Err(GroupError::Exists(_)) => Ok(()),
            other => other,
        })
    }

    fn members<'a>(&'a self, name: &'a str) -> GroupFuture<'a, Vec<String>> {
        lazy(move || self.with_group(name, |group| Ok(group.uids.iter().cloned().collect())))
    }

    fn contains<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, bool> {
        lazy(move || {
            check_uid(uid)?;
            self.with_group(name, |group| Ok(group.uids.contains(uid)))
        })
    }

    fn add<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || {
            check_uid(uid)?;
            self.with_group(name, |group| {
                if group.uids.insert(uid.to_owned()) {
                    Ok(())
                } else {
                    Err(GroupError::MemberExists {
                        group: name.to_owned(),
                        uid: uid.to_owned(),
                    })
                }
            })
        })
    }

    fn remove<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || {
            self.with_group(name, |group| {
                if group.uids.remove(uid) {
                    Ok(())
                } else {
                    Err(GroupError::MemberNotFound {
                        group: name.to_owned(),
                        uid: uid.to_owned(),
                    })
                }
            })
        })
    }

    fn remove_all<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || {
            self.with_group(name, |group| {
                group.uids.clear();
                Ok(())
            })
        })
    }

    fn count<'a>(&'a self, name: &'a str) -> GroupFuture<'a, usize> {
        lazy(move || self.with_group(name, |group| Ok(group.uids.len())))
    }

    fn renew_ttl<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || {
            self.with_group(name, |group| match &mut group.ttl {
                Some(ttl) => {
                    ttl.expires = Instant::now() + ttl.ttl;
                    Ok(())
                }
                None => Err(GroupError::NoTtl(name.to_owned())),
            })?;
            // In case the sweep could not start (no runtime) or was stopped
            // to watch a new shutdown signal.
            self.ensure_sweeper();
            Ok(())
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        lazy(move || {
            let mut groups = lock(&self.inner.groups);
            if live(&mut groups, name, Instant::now()).is_none() {
                return Err(GroupError::NotFound(name.to_owned()));
            }
            groups.remove(name);
            Ok(())
        })
    }

    fn stop_with(&self, shutdown: &CancellationToken) {
        let restart = {
            let mut sweeper = lock(&self.inner.sweeper);
            sweeper.shutdown.push(shutdown.clone());
            // A running sweep does not watch this signal yet: restart it.
            match sweeper.running.take() {
                Some(running) => {
                    running.cancel();
                    true
                }
                None => false,
            }
        };
        if restart {
            self.ensure_sweeper();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive_tasks() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Lets spawned tasks run (the test runtime has one thread).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_frees_expired_groups_nobody_touches() {
        let groups = MemoryGroups::with_sweep_interval(Duration::from_secs(10));
        assert_eq!(groups.sweep_interval(), Duration::from_secs(10));
        groups
            .create_with_ttl("short", Duration::from_secs(5))
            .await
            .unwrap();
        groups
            .create_with_ttl("long", Duration::from_secs(25))
            .await
            .unwrap();
        groups.create("forever").await.unwrap();
        assert_eq!(groups.stored(), 3);
        // Expired at 5 s, but the sweep runs at 10 s.
        tokio::time::advance(Duration::from_secs(6)).await;
        settle().await;
        assert_eq!(groups.stored(), 3);
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(groups.stored(), 2);
        tokio::time::advance(Duration::from_secs(20)).await;
        settle().await;
        assert_eq!(groups.stored(), 1);
        assert_eq!(groups.count("forever").await, Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_starts_with_the_first_ttl_group_and_ends_with_the_last_clone() {
        let before = alive_tasks();
        let groups = MemoryGroups::new();
        groups.create("plain").await.unwrap();
        assert_eq!(alive_tasks(), before, "no ttl group, no sweep");
        groups
            .create_with_ttl("a", Duration::from_secs(1))
            .await
            .unwrap();
        groups
            .create_with_ttl("b", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(alive_tasks(), before + 1, "one sweep task");
        let clone = groups.clone();
        drop(groups);
        settle().await;
        assert_eq!(alive_tasks(), before + 1, "a clone keeps it");
        drop(clone);
        settle().await;
        assert_eq!(alive_tasks(), before, "the sweep ends with the last clone");
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_ends_when_the_app_shuts_down() {
        let before = alive_tasks();
        let shutdown = CancellationToken::new();
        let groups = MemoryGroups::with_sweep_interval(Duration::from_secs(1));
        groups
            .create_with_ttl("a", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(alive_tasks(), before + 1);
        // Told of the app's shutdown while sweeping: the sweep restarts
        // watching it.
        groups.stop_with(&shutdown);
        settle().await;
        assert_eq!(alive_tasks(), before + 1);
        shutdown.cancel();
        settle().await;
        assert_eq!(alive_tasks(), before, "the sweep ends with the app");
        // No sweep after shutdown, but expiry holds.
        groups
            .create_with_ttl("b", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(alive_tasks(), before);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            groups.members("b").await,
            Err(GroupError::NotFound("b".into()))
        );
    }

    #[test]
    fn works_without_a_runtime_and_without_a_sweep() {
        use std::task::{Context, Poll, Waker};

        let groups = MemoryGroups::new();
        let mut created = groups.create_with_ttl("a", Duration::from_secs(60));
        let polled = created
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert_eq!(polled, Poll::Ready(Ok(())));
        drop(created);
        assert!(lock(&groups.inner.sweeper).running.is_none());
    }
}

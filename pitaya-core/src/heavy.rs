//! Keeping large payload work from stalling other sessions.
//!
//! A session's handler runs on a runtime worker thread shared with many
//! other sessions. Inflating or parsing a large body there would stall all
//! of them for as long as it takes, so work on bodies of at least
//! [`HEAVY_BODY_LEN`] bytes runs under [`tokio::task::block_in_place`]: the
//! worker hands its other tasks to another thread first.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Bodies at least this large are inflated and parsed off the worker's
/// critical path.
pub(crate) const HEAVY_BODY_LEN: usize = 64 * 1024;

/// Inflating costs about this many times what its input's size suggests:
/// a compressed body of `n` bytes counts as `n * INFLATE_WEIGHT`.
pub(crate) const INFLATE_WEIGHT: usize = 16;

/// Whether the current task may call `block_in_place`: it must run on a
/// worker of a multi-threaded runtime (agents always do there: they are
/// spawned tasks).
pub(crate) fn can_offload() -> bool {
    Handle::try_current().is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// At most this many large bodies are worked on under `block_in_place` at
/// once, process-wide: each one may take a thread of tokio's blocking pool
/// (and a malloc arena), so an attacker sending many large bodies at once
/// must not grow the process to hundreds of threads. Beyond it, work runs
/// in place on its worker.
fn max_offloaded() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2)))
}

static OFFLOADED: AtomicUsize = AtomicUsize::new(0);

/// Runs `work` about `len` bytes, under `block_in_place` when it is large,
/// `offload` says the task may block its worker and fewer than
/// [`max_offloaded`] such works run already.
pub(crate) fn run<R>(offload: bool, len: usize, work: impl FnOnce() -> R) -> R {
    if !offload || len < HEAVY_BODY_LEN {
        return work();
    }
    let admitted = OFFLOADED
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
            (running < max_offloaded()).then_some(running + 1)
        })
        .is_ok();
    if !admitted {
        return work();
    }
    let _slot = Slot;
    tokio::task::block_in_place(work)
}

/// Gives an offload slot back, even if the work panicked.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        OFFLOADED.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn current_thread_runtime_never_offloads() {
        assert!(!can_offload());
        // Large work still runs, in place.
        assert_eq!(run(can_offload(), HEAVY_BODY_LEN * 2, || 7), 7);
    }

    /// The slot count is process-wide: the tests that take slots run one
    /// at a time.
    static SLOTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offloaded_work_is_bounded_process_wide() {
        let _serial = SLOTS.lock().await;
        let max = max_offloaded();
        let (entered, release) = (
            std::sync::Arc::new(std::sync::Barrier::new(max + 1)),
            std::sync::Arc::new(std::sync::Barrier::new(max + 1)),
        );
        // `max` works hold every slot...
        let holders: Vec<_> = (0..max)
            .map(|_| {
                let (entered, release) = (entered.clone(), release.clone());
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .build()
                        .unwrap();
                    runtime.block_on(async move {
                        tokio::spawn(async move {
                            run(true, HEAVY_BODY_LEN, || {
                                entered.wait();
                                release.wait();
                            });
                        })
                        .await
                        .unwrap();
                    });
                })
            })
            .collect();
        entered.wait();
        assert_eq!(OFFLOADED.load(Ordering::Acquire), max);
        // ...so one more runs in place without taking a slot.
        let in_place =
            tokio::spawn(async { run(true, HEAVY_BODY_LEN, || OFFLOADED.load(Ordering::Acquire)) })
                .await
                .unwrap();
        assert_eq!(in_place, max);
        release.wait();
        for holder in holders {
            holder.join().unwrap();
        }
        assert_eq!(OFFLOADED.load(Ordering::Acquire), 0, "slots given back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_thread_runtime_offloads_large_work() {
        let _serial = SLOTS.lock().await;
        let offload = tokio::spawn(async { can_offload() }).await.unwrap();
        assert!(offload);
        let value = tokio::spawn(async move { run(offload, HEAVY_BODY_LEN, || 9) })
            .await
            .unwrap();
        assert_eq!(value, 9);
    }
}

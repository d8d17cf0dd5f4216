//! Keeping large payload work from stalling other sessions.
//!
//! A session's handler runs on a runtime worker thread shared with many
//! other sessions. Inflating or parsing a large body there would stall all
//! of them for as long as it takes, so work on bodies of at least
//! [`HEAVY_BODY_LEN`] bytes runs under [`tokio::task::block_in_place`]: the
//! worker hands its other tasks to another thread first.

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

/// Runs `work` about `len` bytes, under `block_in_place` when it is large
/// and `offload` says the task may block its worker.
pub(crate) fn run<R>(offload: bool, len: usize, work: impl FnOnce() -> R) -> R {
    if offload && len >= HEAVY_BODY_LEN {
        tokio::task::block_in_place(work)
    } else {
        work()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_thread_runtime_offloads_large_work() {
        let offload = tokio::spawn(async { can_offload() }).await.unwrap();
        assert!(offload);
        let value = tokio::spawn(async move { run(offload, HEAVY_BODY_LEN, || 9) })
            .await
            .unwrap();
        assert_eq!(value, 9);
    }
}

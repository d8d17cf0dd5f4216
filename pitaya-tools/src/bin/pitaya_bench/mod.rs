//! Modules of the `pitaya-bench` binary.
//!
//! - [`args`]: command line and validated configuration,
//! - [`wire`]: request templates and response peeking for the hot path,
//! - [`conn`]: one connection's task (connect, handshake, load loop),
//! - [`runner`]: worker threads, common start, progress, results,
//! - [`stats`]: per-connection statistics, merging, formatting,
//! - [`report`]: the JSON result and the printed summary.

pub(crate) mod args;
pub(crate) mod conn;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod stats;
pub(crate) mod wire;

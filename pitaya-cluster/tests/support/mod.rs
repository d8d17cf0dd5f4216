//! Helpers of the real-cluster tests: the servers to use, etcd and NATS
//! processes started by the tests themselves, and a recording `Inbound`.
#![allow(dead_code, unreachable_pub, unused_imports)]

// The process helpers live with the workspace suites (std only).
#[path = "../../../tests/src/processes.rs"]
mod processes;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use processes::{EtcdProcess, NatsProcess, TempDir, free_port, required_env, unique};

use bytes::Bytes;
use pitaya_cluster::protos;
use pitaya_core::cluster::{ClusterFuture, Inbound};
use tokio::sync::mpsc;

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=pitaya_cluster=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The etcd of `scripts/cluster-deps.sh` (`PITAYA_TEST_ETCD`).
pub fn etcd_url() -> String {
    init_logs();
    required_env("PITAYA_TEST_ETCD")
}

/// The NATS of `scripts/cluster-deps.sh` (`PITAYA_TEST_NATS`).
pub fn nats_url() -> String {
    init_logs();
    required_env("PITAYA_TEST_NATS")
}

/// Polls `check` every 50 ms until it holds, for at most `within`.
pub async fn eventually<F: FnMut() -> bool>(within: Duration, what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records what arrives. Requests are answered with `"<route>:<data>"`
/// after `delay`; the request itself is kept too.
pub struct Recorder {
    pub delay: Duration,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    requests: mpsc::UnboundedSender<protos::Request>,
    pushes: mpsc::UnboundedSender<protos::Push>,
    kicks: mpsc::UnboundedSender<protos::KickMsg>,
    binds: mpsc::UnboundedSender<protos::BindMsg>,
}

pub struct Received {
    pub requests: mpsc::UnboundedReceiver<protos::Request>,
    pub pushes: mpsc::UnboundedReceiver<protos::Push>,
    pub kicks: mpsc::UnboundedReceiver<protos::KickMsg>,
    pub binds: mpsc::UnboundedReceiver<protos::BindMsg>,
}

impl Recorder {
    pub fn new(delay: Duration) -> (Arc<Self>, Received) {
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (pushes, pushes_rx) = mpsc::unbounded_channel();
        let (kicks, kicks_rx) = mpsc::unbounded_channel();
        let (binds, binds_rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                delay,
                running: AtomicUsize::new(0),
                max_running: AtomicUsize::new(0),
                requests,
                pushes,
                kicks,
                binds,
            }),
            Received {
                requests: requests_rx,
                pushes: pushes_rx,
                kicks: kicks_rx,
                binds: binds_rx,
            },
        )
    }
}

impl Inbound for Recorder {
    fn on_request(&self, request: protos::Request) -> ClusterFuture<'_, protos::Response> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let _ = self.requests.send(request.clone());
            let msg = request.msg.unwrap_or_default();
            let mut data = format!("{}:", msg.route).into_bytes();
            data.extend_from_slice(&msg.data);
            protos::Response::ok(data)
        })
    }

    fn on_push(&self, push: protos::Push) -> ClusterFuture<'_, ()> {
        let _ = self.pushes.send(push);
        Box::pin(async {})
    }

    fn on_kick(&self, kick: protos::KickMsg) -> ClusterFuture<'_, protos::KickAnswer> {
        let _ = self.kicks.send(kick);
        Box::pin(async { protos::KickAnswer { kicked: true } })
    }

    fn on_bind(&self, bind: protos::BindMsg) -> ClusterFuture<'_, ()> {
        let _ = self.binds.send(bind);
        Box::pin(async {})
    }
}

/// A user RPC request for `route` carrying `data`.
pub fn user_request(route: &str, data: &'static [u8]) -> protos::Request {
    protos::Request {
        r#type: protos::RpcType::User as i32,
        msg: Some(protos::Msg {
            route: route.into(),
            data: Bytes::from_static(data),
            ..protos::Msg::default()
        }),
        ..protos::Request::default()
    }
}

/// Receives within `within` or fails.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, within: Duration, what: &str) -> T {
    match tokio::time::timeout(within, rx.recv()).await {
        Ok(Some(value)) => value,
        Ok(None) => panic!("{what}: channel closed"),
        Err(_) => panic!("{what}: nothing within {within:?}"),
    }
}

/// Asserts nothing arrives within `within`.
pub async fn nothing<T: std::fmt::Debug>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    within: Duration,
    what: &str,
) {
    if let Ok(Some(value)) = tokio::time::timeout(within, rx.recv()).await {
        panic!("{what}: unexpected {value:?}");
    }
}

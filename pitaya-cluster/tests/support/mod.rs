//! Helpers of the real-cluster tests: the servers to use, etcd and NATS
//! processes started by the tests themselves, and a recording `Inbound`.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pitaya_cluster::protos;
use pitaya_core::cluster::{ClusterFuture, Inbound};
use tokio::sync::mpsc;

const HOW_TO: &str = "the real-cluster tests need etcd and NATS. Start them with\n\
    \n    eval \"$(scripts/cluster-deps.sh start)\"\n\
    \nthen run\n\
    \n    cargo test -p pitaya-cluster --features real-cluster-tests\n\
    \nand stop them with `scripts/cluster-deps.sh stop`";

fn required_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{var} is not set: {HOW_TO}"),
    }
}

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

/// A name unique to this process and call, safe in etcd keys and subjects.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP port nobody listens on at the moment, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free port on 127.0.0.1")
}

fn find_binary(name: &str, env: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_dirs)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} not found (set {env}); {HOW_TO}"))
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15 s");
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An etcd started by a test, on free 127.0.0.1 ports; killed on drop.
pub struct EtcdProcess {
    child: Option<Child>,
    dir: TempDir,
    pub client_port: u16,
    peer_port: u16,
    generation: usize,
}

impl EtcdProcess {
    pub fn start() -> Self {
        let mut etcd = Self {
            child: None,
            dir: TempDir::new("pitaya-etcd"),
            client_port: free_port(),
            peer_port: free_port(),
            generation: 0,
        };
        etcd.spawn();
        etcd
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join(format!("data-{}", self.generation))
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("etcd log");
        let mut child = Command::new(find_binary("etcd", "PITAYA_TEST_ETCD_BIN"))
            .arg("--name")
            .arg("pitaya-test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(self.url())
            .arg("--advertise-client-urls")
            .arg(self.url())
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("pitaya-test={peer}"))
            .arg("--log-level")
            .arg("error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        wait_for_port(self.client_port, &mut child, "etcd");
        self.child = Some(child);
    }

    /// Kills etcd (by its PID, SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports, with its data (`wipe: false`)
    /// or with an empty data dir, i.e. a new cluster (`wipe: true`).
    pub fn restart(&mut self, wipe: bool) {
        self.kill();
        if wipe {
            self.generation += 1;
        }
        self.spawn();
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A nats-server started by a test, on a free 127.0.0.1 port; killed on drop.
pub struct NatsProcess {
    child: Option<Child>,
    pub port: u16,
}

impl NatsProcess {
    pub fn start() -> Self {
        let mut nats = Self {
            child: None,
            port: free_port(),
        };
        nats.spawn();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut child = Command::new(find_binary("nats-server", "PITAYA_TEST_NATS_BIN"))
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_for_port(self.port, &mut child, "nats-server");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
    }
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

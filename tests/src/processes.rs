//! etcd and nats-server processes started by tests themselves (for restart
//! and crash scenarios), on free 127.0.0.1 ports, killed on drop.
//!
//! Shared by the workspace suites and, through `#[path]`, by
//! `pitaya-cluster`'s real-server tests: it uses only `std`.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How to get etcd and NATS for these tests.
pub const HOW_TO: &str = "the real-cluster tests need etcd and NATS. Start them with\n\
    \n    eval \"$(scripts/cluster-deps.sh start)\"\n\
    \nthen run the tests with the `real-cluster-tests` features (see scripts/test.sh)\n\
    \nand stop them with `scripts/cluster-deps.sh stop`";

/// The value of the environment variable `var`, or a panic saying how to
/// set the test servers up.
pub fn required_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{var} is not set: {HOW_TO}"),
    }
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

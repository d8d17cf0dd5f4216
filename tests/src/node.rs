//! A `room` server in a child process (the `cluster-node` binary of this
//! package), for the tests that kill, SIGTERM or restart a server.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a `cluster-node` process joins the cluster.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Path of the `cluster-node` binary (`env!("CARGO_BIN_EXE_cluster-node")`).
    pub binary: String,
    pub etcd: String,
    pub nats: String,
    /// etcd key prefix of the test's cluster.
    pub prefix: String,
    /// etcd lease TTL of the node.
    pub lease_ttl: Duration,
}

/// A running `cluster-node`; SIGKILLed on drop.
pub struct NodeProcess {
    child: Option<Child>,
    /// Its server id.
    pub id: String,
}

impl NodeProcess {
    /// Starts a room server with id `id`. Its logs go to this test's
    /// stderr when `TEST_LOG` is set (an env filter for the child).
    pub fn start(config: &NodeConfig, id: &str) -> Self {
        let log = std::env::var("TEST_LOG").ok();
        let output = || {
            if log.is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(&config.binary)
            .env("NODE_ETCD", &config.etcd)
            .env("NODE_NATS", &config.nats)
            .env("NODE_PREFIX", &config.prefix)
            .env("NODE_ID", id)
            .env(
                "NODE_LEASE_TTL_MS",
                config.lease_ttl.as_millis().to_string(),
            )
            .env("RUST_LOG", log.as_deref().unwrap_or("off"))
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("start cluster-node");
        Self {
            child: Some(child),
            id: id.to_owned(),
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: the process dies at once, without deregistering.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: asks for a graceful shutdown.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits at most `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("the process was killed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for cluster-node") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cluster-node did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

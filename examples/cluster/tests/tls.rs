//! End-to-end test of the `cluster` binary (`--dev`: the connector and the
//! room backend in one process) with `--tls-cert`/`--tls-key`: a fresh
//! self-signed certificate, a real `room.room.join` (forwarded by the
//! connector to the room) over `tls://` and over `wss://` by a client that
//! trusts only that certificate.

// `allow-unwrap-in-tests` does not reach the helpers of a test crate.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pitaya_client::{Client, TlsConfig};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_cluster");
/// What the server prints before each URL it listens on.
const LISTENING: &str = "connector listening on ";
/// Bound on every step, so a broken test fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);
/// Environment variables the binary reads that must not leak into tests.
const ENV: &[&str] = &[
    "PITAYA_TLS_CERT",
    "PITAYA_TLS_KEY",
    "PITAYA_ETCD",
    "PITAYA_NATS",
];

/// A self-signed certificate for 127.0.0.1 and localhost, as `cert.pem` and
/// `key.pem` in a fresh directory, removed when dropped.
struct Cert {
    dir: PathBuf,
    pem: String,
}

impl Cert {
    fn new(name: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .unwrap();
        let pem = generated.cert.pem();
        std::fs::write(dir.join("cert.pem"), &pem).unwrap();
        std::fs::write(dir.join("key.pem"), generated.key_pair.serialize_pem()).unwrap();
        Self { dir, pem }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Client settings trusting only this certificate.
    fn client_tls(&self) -> TlsConfig {
        TlsConfig::from_ca_pem(self.pem.as_bytes()).unwrap()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(BINARY);
    for var in ENV {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "warn").args(args);
    command
}

/// The server process, killed and reaped when dropped (also when the test
/// panics).
struct Server {
    child: Child,
    urls: Vec<String>,
}

impl Server {
    /// Starts the binary and waits for the `count` URLs it listens on.
    fn start<S: AsRef<OsStr>>(args: &[S], count: usize) -> Self {
        let mut child = command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            urls: Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the URLs, so the server never writes to a
        // closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STEP;
        while server.urls.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|err| panic!("waiting for the listening URLs: {err}"));
            if let Some(url) = line.strip_prefix(LISTENING) {
                server.urls.push(url.to_owned());
            }
        }
        server
    }

    /// The URL with this scheme.
    fn url(&self, scheme: &str) -> &str {
        let prefix = format!("{scheme}://");
        self.urls
            .iter()
            .find(|url| url.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} URL in {:?}", self.urls))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to its exit (killing it after [`STEP`]): (success, stderr).
fn run_to_exit<S: AsRef<OsStr>>(args: &[S]) -> (bool, String) {
    let mut child = command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit with {:?}", command(args));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    (status.success(), stderr)
}

async fn join(url: &str, tls: TlsConfig, name: &str) -> Value {
    let step = async {
        let (client, _events) = Client::builder().tls(tls).connect(url).await?;
        let reply = client
            .request("room.room.join", &json!({ "name": name }))
            .await;
        client.close().await;
        reply
    };
    tokio::time::timeout(STEP, step)
        .await
        .expect("join timed out")
        .unwrap_or_else(|err| panic!("join over {url}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_and_wss_with_the_given_certificate() {
    let cert = Cert::new("cluster-tls");
    let (cert_path, key_path) = (cert.cert(), cert.key());
    let args = [
        OsStr::new("--dev"),
        OsStr::new("--tcp"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--ws"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--tls-cert"),
        cert_path.as_os_str(),
        OsStr::new("--tls-key"),
        key_path.as_os_str(),
    ];
    let server = Server::start(&args, 2);
    let tls = server.url("tls");
    let wss = server.url("wss");
    assert!(tls.starts_with("tls://127.0.0.1:"), "{tls}");
    assert!(wss.starts_with("wss://127.0.0.1:"), "{wss}");

    for (url, name) in [(tls, "ana"), (wss, "bob")] {
        let reply = join(url, cert.client_tls(), name).await;
        assert_eq!(reply["code"], 0, "{reply}");
        let members = reply["members"].as_array().expect("members");
        assert!(members.contains(&json!(name)), "{reply}");
    }

    // The server presents that certificate: a client trusting another one
    // is refused.
    let other = Cert::new("cluster-tls-other");
    for url in [tls, wss] {
        let refused =
            tokio::time::timeout(STEP, Client::builder().tls(other.client_tls()).connect(url))
                .await
                .expect("connect timed out");
        assert!(
            refused.is_err(),
            "{url} accepted a certificate it should not"
        );
    }
}

#[test]
fn one_tls_flag_without_the_other_is_refused() {
    for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
        let (ok, stderr) = run_to_exit(&[
            "--dev",
            "--tcp",
            "127.0.0.1:0",
            "--ws",
            "127.0.0.1:0",
            given,
            "some.pem",
        ]);
        assert!(!ok, "{given} alone was accepted");
        assert!(stderr.contains(missing), "{stderr}");
    }
}

#[test]
fn unreadable_certificate_is_an_error() {
    let (ok, stderr) = run_to_exit(&[
        "--dev",
        "--tcp",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(!ok, "a missing certificate was accepted");
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
}

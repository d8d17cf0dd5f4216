//! An example binary (`examples/*`) as a child process, for its end-to-end
//! TLS tests: a self-signed certificate written to disk for
//! `--tls-cert`/`--tls-key`, the binary started with flags and the URLs it
//! prints (killed on drop), or run to its exit for the flag errors, and a
//! client that trusts only that certificate.
//!
//! ```ignore
//! const CHAT: Example = Example {
//!     binary: env!("CARGO_BIN_EXE_chat"),
//!     listening: "chat listening on ",
//!     args: &["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
//!     clear_env: &["PITAYA_TLS_CERT", "PITAYA_TLS_KEY"],
//! };
//! let cert = SelfSignedCert::write_to_temp_dir();
//! let server = CHAT.spawn(cert.tls_args(), 2);
//! let [tls, wss] = server.tls_and_wss();
//! let reply = cert.request_once(tls, "chat.room.join", &json!({ "name": "ana" })).await;
//! server.assert_refuses_another_certificate().await;
//! CHAT.assert_tls_flags_go_together();
//! ```

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pitaya_client::{Client, TlsConfig};
use serde_json::Value;

use crate::processes::TempDir;

/// Bound on every step (start, request, exit), so a broken test fails
/// instead of hanging.
pub const STEP: Duration = Duration::from_secs(20);

/// A fresh self-signed certificate for `127.0.0.1` and `localhost`, as
/// `cert.pem` and `key.pem` in a new temporary directory, removed on drop.
pub struct SelfSignedCert {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

impl SelfSignedCert {
    /// Generates the certificate and its key and writes them.
    pub fn write_to_temp_dir() -> Self {
        let dir = TempDir::new("pitaya-cert");
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("generate a self-signed certificate");
        let pem = generated.cert.pem();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &pem).expect("write cert.pem");
        std::fs::write(&key, generated.key_pair.serialize_pem()).expect("write key.pem");
        Self {
            _dir: dir,
            cert,
            key,
            pem,
        }
    }

    /// Path of `cert.pem`.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Path of `key.pem`.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// The certificate, PEM-encoded.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// `--tls-cert <cert.pem> --tls-key <key.pem>`.
    pub fn tls_args(&self) -> [&OsStr; 4] {
        [
            OsStr::new("--tls-cert"),
            self.cert.as_os_str(),
            OsStr::new("--tls-key"),
            self.key.as_os_str(),
        ]
    }

    /// Client settings trusting only this certificate.
    pub fn client_tls(&self) -> TlsConfig {
        TlsConfig::from_ca_pem(self.pem.as_bytes()).expect("a client trusting the certificate")
    }

    /// Connects to `url` trusting only this certificate, sends one request
    /// to `route` and closes: the reply. Panics on any error and after
    /// [`STEP`].
    pub async fn request_once(&self, url: &str, route: &str, body: &Value) -> Value {
        self.requests_once(url, &[(route, body.clone())]).await
    }

    /// As [`request_once`](Self::request_once), with several requests in
    /// order on one connection: the last reply.
    pub async fn requests_once(&self, url: &str, requests: &[(&str, Value)]) -> Value {
        let step = async {
            let (client, _events) = Client::builder()
                .tls(self.client_tls())
                .connect(url)
                .await?;
            let mut reply = Ok(Value::Null);
            for (route, body) in requests {
                reply = client.request(route, body).await;
                if reply.is_err() {
                    break;
                }
            }
            client.close().await;
            reply
        };
        tokio::time::timeout(STEP, step)
            .await
            .unwrap_or_else(|_| panic!("{requests:?} over {url} timed out"))
            .unwrap_or_else(|err| panic!("{requests:?} over {url}: {err}"))
    }
}

/// How to run one example binary.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Path of the binary: `env!("CARGO_BIN_EXE_<name>")`.
    pub binary: &'static str,
    /// What it prints before each URL it listens on, e.g.
    /// `"chat listening on "`.
    pub listening: &'static str,
    /// The flags of every run, before the ones a test adds (e.g. the listen
    /// addresses).
    pub args: &'static [&'static str],
    /// Environment variables it reads, removed so that the tests' own
    /// environment does not leak into it.
    pub clear_env: &'static [&'static str],
}

impl Example {
    /// The binary with [`args`](Self::args) then `args`, without
    /// [`clear_env`](Self::clear_env), with `RUST_LOG=warn`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(self.binary);
        for var in self.clear_env {
            command.env_remove(var);
        }
        command
            .env("RUST_LOG", "warn")
            .args(self.args)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Starts the binary with `args` (after [`args`](Self::args)) and waits
    /// (at most [`STEP`]) for the first `urls` URLs it prints.
    pub fn spawn<I, S>(&self, args: I, urls: usize) -> ExampleProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        ExampleProcess::spawn(&mut self.command(args), self.listening, urls)
    }

    /// Runs the binary with `args` (after [`args`](Self::args)) to its exit,
    /// killing it and panicking after `timeout`.
    pub fn exit_status_within<I, S>(&self, args: I, timeout: Duration) -> Exited
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Exited::within(&mut self.command(args), timeout)
    }

    /// Asserts that it refuses `--tls-cert` without `--tls-key` and the
    /// reverse: it exits with an error naming the missing flag.
    pub fn assert_tls_flags_go_together(&self) {
        for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
            let exit = self.exit_status_within([given, "some.pem"], STEP);
            assert!(!exit.status.success(), "{given} alone was accepted");
            assert!(exit.stderr.contains(missing), "{}", exit.stderr);
        }
    }

    /// Asserts that, given a certificate and key that do not exist, it
    /// exits with an error naming the certificate.
    pub fn assert_unreadable_certificate_fails(&self) {
        let exit = self.exit_status_within(
            [
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            STEP,
        );
        assert!(!exit.status.success(), "a missing certificate was accepted");
        assert!(
            exit.stderr.contains("/nonexistent/cert.pem"),
            "{}",
            exit.stderr
        );
    }
}

/// A running example, killed and reaped when dropped (also when the test
/// panics).
pub struct ExampleProcess {
    child: Child,
    urls: Vec<String>,
}

impl ExampleProcess {
    /// Starts `command` (stdout piped, stderr inherited) and waits (at most
    /// [`STEP`]) for `count` lines `<listening><url>` on its stdout.
    pub fn spawn(command: &mut Command, listening: &str, count: usize) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {command:?}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = Self {
            child,
            urls: Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the URLs, so the child never writes to a
        // closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STEP;
        while process.urls.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|err| panic!("waiting for the listening URLs: {err}"));
            if let Some(url) = line.strip_prefix(listening) {
                process.urls.push(url.to_owned());
            }
        }
        process
    }

    /// The URLs it printed, in order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URL with this scheme (`"tls"`, `"wss"`, ...); panics if none.
    pub fn url(&self, scheme: &str) -> &str {
        let prefix = format!("{scheme}://");
        self.urls
            .iter()
            .find(|url| url.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} URL in {:?}", self.urls))
    }

    /// Its `tls://` and `wss://` URLs, asserted to be on `127.0.0.1`.
    pub fn tls_and_wss(&self) -> [&str; 2] {
        let (tls, wss) = (self.url("tls"), self.url("wss"));
        assert!(tls.starts_with("tls://127.0.0.1:"), "{tls}");
        assert!(wss.starts_with("wss://127.0.0.1:"), "{wss}");
        [tls, wss]
    }

    /// Asserts that a client trusting only another, fresh certificate
    /// cannot connect to its `tls://` and `wss://` URLs: it presents the
    /// certificate it was given.
    pub async fn assert_refuses_another_certificate(&self) {
        let other = SelfSignedCert::write_to_temp_dir();
        for url in self.tls_and_wss() {
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
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a process run to its exit ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// All it wrote to stderr.
    pub stderr: String,
}

impl Exited {
    /// Runs `command` (stdout discarded, stderr captured) to its exit,
    /// killing it and panicking after `timeout`.
    pub fn within(command: &mut Command, timeout: Duration) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {command:?}: {err}"));
        let mut stderr = child.stderr.take().expect("piped stderr");
        // Read on the side, so a chatty child never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).map(|_| text)
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{command:?} did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = reader
            .join()
            .expect("the stderr reader panicked")
            .expect("read the child's stderr");
        Self { status, stderr }
    }
}

//! Shared helpers of the workspace integration suites (in `tests/`): start
//! a real server on `127.0.0.1:0`, connect real clients.
#![allow(clippy::unwrap_used, missing_docs)]

pub mod cluster;
pub mod example_process;
pub mod hostile;
pub mod node;
pub mod processes;
pub mod room;

use std::future::Future;
use std::time::Duration;

use pitaya::app::{App, AppBuilder, AppHandle};
use pitaya_acceptors::{TcpAcceptor, TlsConfig as ServerTls, WsAcceptor};
use pitaya_client::{Client, Events, TlsConfig};
use tokio::task::JoinHandle;

/// The largest packet body the test servers accept (64 KiB).
pub const MAX_PACKET: usize = 64 * 1024;

/// A running test server and where to reach it.
pub struct TestServer {
    pub tcp: String,
    pub ws: String,
    pub tls: String,
    pub wss: String,
    pub ca_pem: String,
    pub app: AppHandle,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Builds an app from `configure` with TCP, WS, TLS and WSS acceptors
    /// on free ports, and runs it in the background.
    pub async fn start(configure: impl FnOnce(AppBuilder) -> AppBuilder) -> Self {
        init_tracing();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = cert.cert.pem();
        let key_pem = cert.key_pair.serialize_pem();
        let tls = ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let tcp = TcpAcceptor::bind("127.0.0.1:0")
            .await
            .unwrap()
            .with_max_packet_size(MAX_PACKET);
        let ws = WsAcceptor::bind("127.0.0.1:0")
            .await
            .unwrap()
            .with_max_packet_size(MAX_PACKET);
        let tls_tcp = TcpAcceptor::bind("127.0.0.1:0")
            .await
            .unwrap()
            .with_tls(tls.clone())
            .with_max_packet_size(MAX_PACKET);
        let wss = WsAcceptor::bind("127.0.0.1:0")
            .await
            .unwrap()
            .with_tls(tls)
            .with_max_packet_size(MAX_PACKET);
        let urls = [
            pitaya::acceptor::Acceptor::url(&tcp),
            pitaya::acceptor::Acceptor::url(&ws),
            pitaya::acceptor::Acceptor::url(&tls_tcp),
            pitaya::acceptor::Acceptor::url(&wss),
        ];
        let builder = App::builder("game")
            .acceptor(tcp)
            .acceptor(ws)
            .acceptor(tls_tcp)
            .acceptor(wss);
        let app = configure(builder).build().unwrap();
        let handle = app.handle();
        let task = tokio::spawn(async move {
            app.run_until(std::future::pending()).await.unwrap();
        });
        let [tcp, ws, tls, wss] = urls.map(|url| url.replace("127.0.0.1", "localhost"));
        Self {
            tcp,
            ws,
            tls,
            wss,
            ca_pem: cert_pem,
            app: handle,
            task: Some(task),
        }
    }

    /// A connected client over plain TCP.
    pub async fn client(&self) -> (Client, Events) {
        self.client_at(&self.tcp).await
    }

    /// A connected client at `endpoint` (TLS endpoints trust the test CA).
    pub async fn client_at(&self, endpoint: &str) -> (Client, Events) {
        Client::builder()
            .tls(TlsConfig::from_ca_pem(self.ca_pem.as_bytes()).unwrap())
            .request_timeout(Duration::from_secs(5))
            .connect(endpoint)
            .await
            .unwrap()
    }

    /// Host and port of the plain TCP acceptor, for raw sockets.
    pub fn tcp_addr(&self) -> String {
        self.tcp.trim_start_matches("tcp://").to_owned()
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(mut self) {
        self.app.shutdown();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.app.shutdown();
        }
    }
}

/// Test logs go to the test output when `TEST_LOG` is set (an env filter).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Waits for `future` at most `secs` seconds, failing the test otherwise.
pub async fn within<T>(secs: u64, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .expect("timed out")
}

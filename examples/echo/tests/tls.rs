//! End-to-end test of the `echo` binary with `--tls-cert`/`--tls-key`: a
//! fresh self-signed certificate, a real `echo.echo.echo` over `tls://` and
//! over `wss://` by a client that trusts only that certificate, standalone
//! and through the frontend of `--mode dev`.

use std::ffi::OsStr;

use pitaya_tests::example_process::{Example, SelfSignedCert};
use serde_json::json;

const ECHO: Example = Example {
    binary: env!("CARGO_BIN_EXE_echo"),
    listening: "echo listening on ",
    args: &["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
    clear_env: &[
        "PITAYA_TLS_CERT",
        "PITAYA_TLS_KEY",
        "PITAYA_ETCD",
        "PITAYA_NATS",
    ],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_and_wss_with_the_given_certificate() {
    let cert = SelfSignedCert::write_to_temp_dir();
    for mode in ["standalone", "dev"] {
        let mode_args = ["--mode", mode, "--threads", "1"].map(OsStr::new);
        let server = ECHO.spawn([mode_args, cert.tls_args()].concat(), 2);
        let [tls, wss] = server.tls_and_wss();

        for url in [tls, wss] {
            let body = json!({ "mode": mode, "url": url });
            let reply = cert.request_once(url, "echo.echo.echo", &body).await;
            assert_eq!(reply, body, "{mode} over {url}");
        }

        server.assert_refuses_another_certificate().await;
    }
}

#[test]
fn one_tls_flag_without_the_other_is_refused() {
    ECHO.assert_tls_flags_go_together();
}

#[test]
fn unreadable_certificate_is_an_error() {
    ECHO.assert_unreadable_certificate_fails();
}

//! End-to-end test of the `chat` binary with `--tls-cert`/`--tls-key`: a
//! fresh self-signed certificate, a real `chat.room.join` over `tls://` and
//! over `wss://` by a client that trusts only that certificate.

use pitaya_tests::example_process::{Example, SelfSignedCert};
use serde_json::json;

const CHAT: Example = Example {
    binary: env!("CARGO_BIN_EXE_chat"),
    listening: "chat listening on ",
    args: &["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
    clear_env: &["PITAYA_TLS_CERT", "PITAYA_TLS_KEY", "CHAT_TCP", "CHAT_WS"],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_and_wss_with_the_given_certificate() {
    let cert = SelfSignedCert::write_to_temp_dir();
    let server = CHAT.spawn(cert.tls_args(), 2);
    let [tls, wss] = server.tls_and_wss();

    for (url, name) in [(tls, "ana"), (wss, "bob")] {
        let reply = cert
            .request_once(url, "chat.room.join", &json!({ "name": name }))
            .await;
        assert_eq!(reply["code"], 0, "{reply}");
        let members = reply["members"].as_array().expect("members");
        assert!(members.contains(&json!(name)), "{reply}");
    }

    server.assert_refuses_another_certificate().await;
}

#[test]
fn one_tls_flag_without_the_other_is_refused() {
    CHAT.assert_tls_flags_go_together();
}

#[test]
fn unreadable_certificate_is_an_error() {
    CHAT.assert_unreadable_certificate_fails();
}

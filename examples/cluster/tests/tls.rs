//! End-to-end test of the `cluster` binary (`--dev`: the connector and the
//! room backend in one process) with `--tls-cert`/`--tls-key`: a fresh
//! self-signed certificate, a real `room.room.join` (forwarded by the
//! connector to the room) over `tls://` and over `wss://` by a client that
//! trusts only that certificate.

use pitaya_tests::example_process::{Example, SelfSignedCert};
use serde_json::json;

const CLUSTER: Example = Example {
    binary: env!("CARGO_BIN_EXE_cluster"),
    listening: "connector listening on ",
    args: &["--dev", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
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
    let server = CLUSTER.spawn(cert.tls_args(), 2);
    let [tls, wss] = server.tls_and_wss();

    // Through the connector, by the room backend.
    for (url, name) in [(tls, "ana"), (wss, "bob")] {
        let login = json!({ "name": name, "room": "blue" });
        let reply = cert
            .requests_once(
                url,
                &[
                    ("connector.lobby.login", login),
                    ("room.room.join", json!({})),
                ],
            )
            .await;
        assert_eq!(reply["room"], "blue", "{reply}");
        let members = reply["members"].as_array().expect("members");
        assert!(members.contains(&json!(name)), "{reply}");
    }

    server.assert_refuses_another_certificate().await;
}

#[test]
fn one_tls_flag_without_the_other_is_refused() {
    CLUSTER.assert_tls_flags_go_together();
}

#[test]
fn unreadable_certificate_is_an_error() {
    CLUSTER.assert_unreadable_certificate_fails();
}

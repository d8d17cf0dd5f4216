//! `pitaya-cli` in script mode against a scripted fake server.
// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TestServer, bounded};
use pitaya_protocol::codec::{HandshakeRequest, HandshakeResponse, Message, MessageType};
use pitaya_protocol::{PitayaError, Serializer, SerializerKind};
use serde_json::json;

/// Runs the CLI with `args`, feeding `stdin`.
async fn run_cli(args: Vec<String>, stdin: String) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pitaya-cli"))
            .args(&args)
            .env(
                "PITAYACLI_HISTORY_PATH",
                std::env::temp_dir().join("pitaya-cli-test-history"),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn script_file_with_requests_pushes_and_an_error() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = tokio::spawn(async move {
            let mut conn = server.accept().await;
            let handshake = conn.handshake(&common::ok_json()).await;
            let handshake = HandshakeRequest::decode(&handshake).unwrap();
            assert_eq!(handshake.user_map(), json!({"token": "abc"}).as_object().cloned());
            assert_eq!(handshake.sys.platform, "rust");

            let join = conn.recv_message().await;
            assert_eq!(join.route, "room.room.join");
            assert_eq!(&join.body[..], br#"{"name":"ana"}"#);
            conn.send_message(&Message::push("onJoin", &br#"{"who":"ana"}"#[..])).await;
            conn.reply(join.id, &br#"{"ok":true}"#[..]).await;

            let say = conn.recv_message().await;
            assert_eq!(say.kind, MessageType::Notify);
            assert_eq!(say.route, "room.room.say");
            assert_eq!(&say.body[..], br#"{"text":"hi there"}"#);

            let missing = conn.recv_message().await;
            assert_eq!(missing.route, "room.room.missing");
            assert!(missing.body.is_empty());
            conn.send_message(&Message::push("onExtra", &br#"{"n":1}"#[..])).await;
            let err = PitayaError::new("PIT-404", "pitaya/handler: room.room.missing not found")
                .with_metadata("route", "room.room.missing");
            let body = SerializerKind::Json.serialize(&err).unwrap();
            conn.send_message(&Message::error_response(missing.id, body)).await;
            conn.wait_closed().await;
        });

        let script = format!(
            "# a comment, then a blank line\n\
             \n\
             sethandshake {{\"token\": \"abc\"}}\n\
             connect {endpoint}\n\
             request room.room.join {{\"name\": \"ana\"}}\n\
             wait-push onJoin 5000\n\
             notify room.room.say {{\"text\": \"hi there\"}}\n\
             request room.room.missing\n\
             disconnect\n"
        );
        let path = std::env::temp_dir().join(format!("pitaya-cli-test-{}.txt", std::process::id()));
        std::fs::write(&path, script).unwrap();
        let output = run_cli(vec!["-f".into(), path.display().to_string()], String::new()).await;
        std::fs::remove_file(&path).unwrap();
        task.await.unwrap();

        let stdout = text(&output.stdout);
        let stderr = text(&output.stderr);
        assert_eq!(
            stdout,
            "{\"ok\":true}\npush onJoin {\"who\":\"ana\"}\npush onExtra {\"n\":1}\n",
            "stderr: {stderr}"
        );
        assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
        assert!(
            stderr.contains(
                r#"line 8: error PIT-404: pitaya/handler: room.room.missing not found {"route":"room.room.missing"}"#
            ),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("connected to {endpoint}")), "{stderr}");
    })
    .await;
}

#[tokio::test]
async fn stdin_script_against_a_msgpack_server_pretty() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = tokio::spawn(async move {
            let mut conn = server.accept().await;
            conn.handshake(&HandshakeResponse::ok(Duration::ZERO, BTreeMap::new(), "msgpack"))
                .await;
            let message = conn.recv_message().await;
            let body: serde_json::Value = SerializerKind::MessagePack.deserialize(&message.body).unwrap();
            assert_eq!(body, json!({"x": [1, 2]}));
            conn.send_message(&Message::push("onTick", SerializerKind::MessagePack.serialize(&7).unwrap()))
                .await;
            let reply = SerializerKind::MessagePack.serialize(&json!({"sum": 3})).unwrap();
            conn.reply(message.id, reply).await;
            conn.wait_closed().await;
        });

        let script = "request a.b.c {\"x\": [1, 2]}\nwait-push onTick\nhistory\n".to_owned();
        let output = run_cli(vec!["--pretty".into(), endpoint], script).await;
        task.await.unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(
            text(&output.stdout),
            "{\n  \"sum\": 3\n}\npush onTick 7\n   1  request a.b.c {\"x\": [1, 2]}\n   2  wait-push onTick\n",
            "stderr: {stderr}"
        );
        assert!(output.status.success(), "stderr: {stderr}");
    })
    .await;
}

#[tokio::test]
async fn failures_set_the_exit_code() {
    bounded(async {
        let server = TestServer::tcp().await;
        let endpoint = server.endpoint();
        let task = tokio::spawn(async move {
            let mut conn = server.accept().await;
            conn.handshake(&common::ok_json()).await;
            conn.wait_closed().await;
        });
        let script = "wait-push never 50\nfrobnicate\nrequest a.b {oops\n".to_owned();
        let output = run_cli(vec!["--connect".into(), endpoint], script).await;
        task.await.unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr.contains("line 1: error PIT-504: no push on never"),
            "{stderr}"
        );
        assert!(stderr.contains("line 2: unknown command"), "{stderr}");
        assert!(stderr.contains("line 3: request: invalid json"), "{stderr}");
        assert_eq!(text(&output.stdout), "");

        // Nothing listening: the connect fails, and so does the script.
        let output = run_cli(vec![], "connect 127.0.0.1:1\n".to_owned()).await;
        assert_eq!(output.status.code(), Some(1));
        assert!(
            text(&output.stderr).contains("line 1: error PIT-000"),
            "{}",
            text(&output.stderr)
        );
    })
    .await;
}

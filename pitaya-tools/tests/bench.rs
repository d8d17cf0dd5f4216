//! End-to-end tests of the `pitaya-bench` binary against a tiny Pitaya
//! server written here on the codec (echo, error, silent, notify sink).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use pitaya_protocol::codec::{
    HandshakeResponse, Message, MessageCodec, MessageType, Packet, PacketCodec, PacketType,
};
use pitaya_protocol::{PitayaError, Serializer as _, SerializerKind};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// How the fake server answers requests.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Response with the request's body.
    Echo,
    /// Error response with this code.
    Error(&'static str),
    /// No answer at all.
    Silent,
}

/// A running fake server: its address and the notifies it received.
struct Server {
    addr: String,
    notifies: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

fn start_server(mode: Mode) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let notifies = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let counter = notifies.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, mode, counter.clone()));
        }
    });
    Server {
        addr,
        notifies,
        _runtime: runtime,
    }
}

async fn serve(stream: TcpStream, mode: Mode, notifies: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, PacketCodec::new());
    let codec = MessageCodec::default();
    let handshake =
        HandshakeResponse::ok(Duration::from_secs(30), BTreeMap::new(), "json").encode(false);
    while let Some(Ok(packet)) = framed.next().await {
        let reply = match packet.kind {
            PacketType::Handshake => Some(Packet::new(PacketType::Handshake, handshake.clone())),
            PacketType::Data => {
                let Ok(message) = codec.decode(packet.body) else {
                    return;
                };
                match (message.kind, mode) {
                    (MessageType::Notify, _) => {
                        notifies.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    (MessageType::Request, Mode::Echo) => {
                        Some(Message::response(message.id, message.body))
                    }
                    (MessageType::Request, Mode::Error(code)) => {
                        let err = PitayaError::new(
                            code,
                            format!("pitaya/handler: {} not found", message.route),
                        );
                        let body = SerializerKind::Json
                            .serialize(&err)
                            .expect("serialize error");
                        Some(Message::error_response(message.id, body))
                    }
                    _ => None,
                }
                .map(|reply| {
                    Packet::new(
                        PacketType::Data,
                        codec.encode_to_bytes(&reply).expect("encode"),
                    )
                })
            }
            _ => None,
        };
        if let Some(reply) = reply
            && framed.send(reply).await.is_err()
        {
            return;
        }
    }
}

/// A path for the JSON result, unique to this test.
fn json_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pitaya-bench-{}-{name}.json", std::process::id()))
}

/// Runs `pitaya-bench` with `args` plus `--json <tmp> --quiet` and returns
/// the parsed JSON result.
fn bench(name: &str, args: &[&str]) -> Value {
    let path = json_path(name);
    let output = Command::new(env!("CARGO_BIN_EXE_pitaya-bench"))
        .args(args)
        .arg("--json")
        .arg(&path)
        .arg("--quiet")
        .output()
        .expect("run pitaya-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pitaya-bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("throughput:"),
        "summary on stdout:\n{stdout}"
    );
    assert!(
        stderr.is_empty(),
        "--quiet prints nothing on stderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&path).expect("read the JSON result");
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).expect("valid JSON")
}

fn ms(value: &Value, key: &str) -> f64 {
    value["latency_ms"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("latency_ms.{key} in {value}"))
}

fn assert_sane_latencies(result: &Value) {
    let (p50, p90, p99, p999, max) = (
        ms(result, "p50"),
        ms(result, "p90"),
        ms(result, "p99"),
        ms(result, "p99_9"),
        ms(result, "max"),
    );
    assert!(p50 > 0.0, "{result}");
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{result}"
    );
    assert!(max < 5000.0, "below the timeout: {result}");
}

#[test]
fn echo_2000_requests_all_ok() {
    let server = start_server(Mode::Echo);
    let result = bench(
        "echo",
        &[
            &server.addr,
            "--requests",
            "2000",
            "-c",
            "4",
            "--warmup",
            "200ms",
            "--label",
            "echo test",
        ],
    );
    assert_eq!(result["requests"]["ok"], 2000, "{result}");
    assert_eq!(result["requests"]["sent"], 2000, "{result}");
    assert_eq!(result["requests"]["errors"], 0, "{result}");
    assert_eq!(result["errors_by_code"], serde_json::json!({}), "{result}");
    assert_eq!(result["connections"]["connected"], 4, "{result}");
    assert_eq!(result["connections"]["dropped"], 0, "{result}");
    assert_eq!(result["label"], "echo test");
    assert_eq!(result["endpoint"], format!("tcp://{}", server.addr));
    assert_eq!(result["route"], "echo.echo.echo");
    assert_eq!(result["serializer"], "json");
    assert_eq!(result["config"]["requests"], 2000);
    assert!(
        result["throughput_rps"]
            .as_f64()
            .is_some_and(|rps| rps > 0.0),
        "{result}"
    );
    assert!(
        result["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{result}"
    );
    assert_sane_latencies(&result);
}

#[test]
fn pipelined_depth_and_threads() {
    let server = start_server(Mode::Echo);
    let result = bench(
        "depth",
        &[
            &format!("tcp://{}", server.addr),
            "-n",
            "3001",
            "-c",
            "3",
            "--depth",
            "8",
            "--threads",
            "2",
            "--warmup",
            "0s",
            "--payload",
            r#"{"msg":"a longer body, to be sure the echo carries it back"}"#,
        ],
    );
    assert_eq!(result["requests"]["ok"], 3001, "{result}");
    assert_eq!(result["requests"]["errors"], 0, "{result}");
    assert_eq!(result["config"]["depth"], 8, "{result}");
    assert_sane_latencies(&result);
}

#[test]
fn error_responses_are_counted_by_code() {
    let server = start_server(Mode::Error("PIT-404"));
    let result = bench(
        "errors",
        &[
            &server.addr,
            "--requests",
            "500",
            "-c",
            "2",
            "--warmup",
            "0s",
            "--route",
            "room.room.nope",
        ],
    );
    assert_eq!(result["requests"]["ok"], 0, "{result}");
    assert_eq!(result["requests"]["errors"], 500, "{result}");
    assert_eq!(
        result["errors_by_code"],
        serde_json::json!({"PIT-404": 500}),
        "{result}"
    );
    assert!(
        result["latency_ms"].is_null(),
        "no successful request: {result}"
    );
}

#[test]
fn unanswered_requests_time_out_as_pit_504() {
    let server = start_server(Mode::Silent);
    let result = bench(
        "timeouts",
        &[
            &server.addr,
            "-n",
            "6",
            "-c",
            "2",
            "--depth",
            "3",
            "--warmup",
            "0s",
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(result["requests"]["ok"], 0, "{result}");
    assert_eq!(
        result["errors_by_code"],
        serde_json::json!({"PIT-504": 6}),
        "{result}"
    );
}

#[test]
fn notifies_are_sent_and_counted() {
    let server = start_server(Mode::Echo);
    let result = bench(
        "notify",
        &[
            &server.addr,
            "--notify",
            "-n",
            "5000",
            "-c",
            "2",
            "--warmup",
            "0s",
        ],
    );
    assert_eq!(result["requests"]["sent"], 5000, "{result}");
    assert!(result["latency_ms"].is_null(), "{result}");
    assert!(
        result["throughput_rps"]
            .as_f64()
            .is_some_and(|rps| rps > 0.0),
        "{result}"
    );
    // The connections close after their last notify; give the server a moment.
    for _ in 0..100 {
        if server.notifies.load(Ordering::Relaxed) >= 5000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.notifies.load(Ordering::Relaxed), 5000);
}

#[test]
fn duration_mode_and_connect_failures() {
    let server = start_server(Mode::Echo);
    let result = bench(
        "duration",
        &[&server.addr, "-d", "300ms", "-c", "2", "--warmup", "100ms"],
    );
    let secs = result["duration_s"].as_f64().expect("duration_s");
    assert!((0.25..=0.5).contains(&secs), "{result}");
    assert!(
        result["requests"]["ok"].as_u64().is_some_and(|ok| ok > 0),
        "{result}"
    );

    // Nothing listens on a port we just released: every connect fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_pitaya-bench"))
        .args([&closed, "-n", "10", "-c", "3", "--quiet"])
        .output()
        .expect("run pitaya-bench");
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("3 failed"), "{stdout}");
}

//! End-to-end tests of the built `raw-echo` binary over raw TCP and
//! WebSocket, with hand-written golden bytes (not produced by the codec
//! under test).

// `allow-unwrap-in-tests` does not reach the helpers of a test crate.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use pitaya_protocol::codec::{MessageCodec, MessageType};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Handshake reply with the default 30 s heartbeat.
const HANDSHAKE_OK: &[u8] =
    b"\x01\x00\x00\x41{\"code\":200,\"sys\":{\"dict\":{},\"heartbeat\":30,\"serializer\":\"json\"}}";
/// Refused handshake reply with the default 30 s heartbeat.
const HANDSHAKE_REFUSED: &[u8] =
    b"\x01\x00\x00\x41{\"code\":400,\"sys\":{\"dict\":{},\"heartbeat\":30,\"serializer\":\"json\"}}";
const ACK: &[u8] = &[0x02, 0, 0, 0];
const HEARTBEAT: &[u8] = &[0x03, 0, 0, 0];
/// Request id 1, route `echo.echo.echo`, body `{"a":1}`.
const REQUEST_1: &[u8] = b"\x04\x00\x00\x18\x00\x01\x0eecho.echo.echo{\"a\":1}";
/// Response id 1, body `{"a":1}`.
const RESPONSE_1: &[u8] = b"\x04\x00\x00\x09\x04\x01{\"a\":1}";
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The server binary, killed when dropped.
struct Server {
    child: Child,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl Server {
    /// Starts `raw-echo` on ephemeral ports with `extra` arguments.
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raw-echo"))
            .args([
                "--tcp",
                "127.0.0.1:0",
                "--ws",
                "127.0.0.1:0",
                "--threads",
                "2",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn raw-echo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next_addr = |scheme: &str| -> SocketAddr {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("raw-echo printed its listening line");
            let prefix = format!("raw-echo listening on {scheme}://");
            let addr = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            let addr: SocketAddr = addr.parse().expect("listening address");
            assert_ne!(addr.port(), 0, "the real bound port is printed");
            addr
        };
        let tcp = next_addr("tcp");
        let ws = next_addr("ws");
        Self { child, tcp, ws }
    }

    /// A TCP connection with read/write timeouts.
    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.tcp).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    /// A TCP connection past the handshake and ack.
    fn connect_ready(&self) -> TcpStream {
        let mut stream = self.connect();
        stream.write_all(&handshake()).unwrap();
        assert_eq!(read_n(&mut stream, HANDSHAKE_OK.len()), HANDSHAKE_OK);
        stream.write_all(ACK).unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Go client's default handshake packet.
fn handshake() -> Vec<u8> {
    let body = br#"{"sys":{"platform":"mac","libVersion":"0.3.5-release","clientBuildNumber":"20","clientVersion":"2.1"},"user":{"age":30}}"#;
    packet(0x01, body)
}

/// A packet of type `kind` around `body`.
fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap();
    assert!(len < 1 << 24);
    let [_, hi, mid, lo] = len.to_be_bytes();
    let mut out = vec![kind, hi, mid, lo];
    out.extend_from_slice(body);
    out
}

/// A varint as Pitaya writes message ids.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = u8::try_from(value & 0x7f).unwrap();
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A request data packet with an uncompressed route.
fn request(id: u64, route: &str, body: &[u8]) -> Vec<u8> {
    let mut message = vec![0x00];
    message.extend(varint(id));
    message.push(u8::try_from(route.len()).unwrap());
    message.extend_from_slice(route.as_bytes());
    message.extend_from_slice(body);
    packet(0x04, &message)
}

/// A notify data packet.
fn notify(route: &str, body: &[u8]) -> Vec<u8> {
    let mut message = vec![0x02, u8::try_from(route.len()).unwrap()];
    message.extend_from_slice(route.as_bytes());
    message.extend_from_slice(body);
    packet(0x04, &message)
}

/// The response data packet the server must send (uncompressed).
fn response(id: u64, body: &[u8]) -> Vec<u8> {
    let mut message = vec![0x04];
    message.extend(varint(id));
    message.extend_from_slice(body);
    packet(0x04, &message)
}

fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read expected bytes");
    buf
}

/// The next packet that is not a heartbeat.
fn next_non_heartbeat(stream: &mut TcpStream) -> Vec<u8> {
    loop {
        let mut packet = read_n(stream, 4);
        if packet == HEARTBEAT {
            continue;
        }
        let len =
            usize::from(packet[1]) << 16 | usize::from(packet[2]) << 8 | usize::from(packet[3]);
        packet.extend(read_n(stream, len));
        return packet;
    }
}

/// Reads until the server closes; fails if it does not within the timeout.
/// Returns whatever arrived before the close.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::ConnectionReset) => return got,
            Err(err) => panic!("connection not closed by the server: {err} (got {got:02x?})"),
        }
    }
}

#[test]
fn tcp_handshake_and_echo_golden_bytes() {
    let server = Server::start(&[]);
    let mut stream = server.connect();
    stream.write_all(&handshake()).unwrap();
    assert_eq!(read_n(&mut stream, HANDSHAKE_OK.len()), HANDSHAKE_OK);
    stream.write_all(ACK).unwrap();
    assert_eq!(request(1, "echo.echo.echo", br#"{"a":1}"#), REQUEST_1);
    stream.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut stream, RESPONSE_1.len()), RESPONSE_1);

    // Multi-byte ids and an empty body.
    stream.write_all(&request(300, "a.b", b"")).unwrap();
    assert_eq!(read_n(&mut stream, 7), [0x04, 0, 0, 3, 0x04, 0xac, 0x02]);
}

#[test]
fn tcp_pipelined_requests_get_every_response_in_order() {
    let server = Server::start(&[]);
    let mut stream = server.connect();

    // Handshake, ack, requests, notifies and heartbeats all in one write.
    let mut batch = handshake();
    batch.extend_from_slice(ACK);
    let mut expected = HANDSHAKE_OK.to_vec();
    for id in 1..=200u64 {
        let body = format!(r#"{{"n":{id}}}"#);
        batch.extend(request(id, "echo.echo.echo", body.as_bytes()));
        expected.extend(response(id, body.as_bytes()));
        if id % 7 == 0 {
            batch.extend(notify("echo.echo.note", b"{}"));
            batch.extend_from_slice(HEARTBEAT);
        }
    }
    stream.write_all(&batch).unwrap();
    assert_eq!(read_n(&mut stream, expected.len()), expected);

    // Notifies and heartbeats got no reply: the next bytes answer this.
    stream.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut stream, RESPONSE_1.len()), RESPONSE_1);
}

#[test]
fn tcp_large_request_split_across_writes() {
    let server = Server::start(&[]);
    let mut stream = server.connect_ready();
    let body: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(200_000)
        .collect();
    let wire = request(42, "echo.echo.echo", &body);
    for chunk in [
        &wire[..3],
        &wire[3..10],
        &wire[10..100_000],
        &wire[100_000..],
    ] {
        stream.write_all(chunk).unwrap();
        stream.flush().unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let expected = response(42, &body);
    assert_eq!(read_n(&mut stream, expected.len()), expected);
}

#[test]
fn tcp_garbage_closes_only_that_connection() {
    let server = Server::start(&[]);
    let mut good = server.connect_ready();
    let mut bad = server.connect_ready();

    // 0xff is not a packet type.
    bad.write_all(&[0xff, 0x00, 0x00, 0x00, b'x']).unwrap();
    assert_eq!(read_until_closed(&mut bad), b"");

    good.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut good, RESPONSE_1.len()), RESPONSE_1);
    let mut fresh = server.connect_ready();
    fresh.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut fresh, RESPONSE_1.len()), RESPONSE_1);
}

#[test]
fn tcp_invalid_message_closes_the_connection() {
    let server = Server::start(&[]);
    let mut stream = server.connect_ready();
    // A data packet whose message type bits say 7.
    stream
        .write_all(&packet(0x04, &[0x0e, 0x01, 0x00]))
        .unwrap();
    assert_eq!(read_until_closed(&mut stream), b"");
}

#[test]
fn tcp_data_before_ack_closes_the_connection() {
    let server = Server::start(&[]);
    let mut stream = server.connect();
    stream.write_all(&handshake()).unwrap();
    assert_eq!(read_n(&mut stream, HANDSHAKE_OK.len()), HANDSHAKE_OK);
    stream.write_all(REQUEST_1).unwrap();
    assert_eq!(read_until_closed(&mut stream), b"", "nothing is answered");
}

#[test]
fn tcp_invalid_handshake_is_refused_then_closed() {
    let server = Server::start(&[]);
    let mut stream = server.connect();
    stream.write_all(&packet(0x01, b"not json")).unwrap();
    assert_eq!(read_until_closed(&mut stream), HANDSHAKE_REFUSED);
}

#[test]
fn heartbeats_are_sent_and_silent_peers_are_closed() {
    let server = Server::start(&["--heartbeat", "1"]);
    let golden: &[u8] =
        b"\x01\x00\x00\x40{\"code\":200,\"sys\":{\"dict\":{},\"heartbeat\":1,\"serializer\":\"json\"}}";

    let mut silent = server.connect();
    let mut chatty = server.connect();
    let start = Instant::now();
    for stream in [&mut silent, &mut chatty] {
        stream.write_all(&handshake()).unwrap();
        assert_eq!(read_n(stream, golden.len()), golden);
        stream.write_all(ACK).unwrap();
    }

    // The chatty peer keeps sending heartbeats from a thread.
    let mut chatty_writer = chatty.try_clone().unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let beater = thread::spawn(move || {
        while stop_rx.recv_timeout(Duration::from_millis(300)).is_err() {
            if chatty_writer.write_all(HEARTBEAT).is_err() {
                break;
            }
        }
    });

    // The server beats about every second, even to a silent peer...
    assert_eq!(read_n(&mut silent, 4), HEARTBEAT);
    let first_beat = start.elapsed();
    assert!(first_beat >= Duration::from_millis(800), "{first_beat:?}");
    // ...and closes it once it has been silent for more than 2 intervals.
    let rest = read_until_closed(&mut silent);
    let closed_after = start.elapsed();
    assert!(
        closed_after > Duration::from_secs(2) && closed_after < Duration::from_millis(4500),
        "closed after {closed_after:?}"
    );
    assert!(
        rest.chunks(4).all(|chunk| chunk == HEARTBEAT),
        "only heartbeats before the close: {rest:02x?}"
    );

    // The peer that kept talking is still served.
    stop_tx.send(()).unwrap();
    beater.join().unwrap();
    chatty.write_all(REQUEST_1).unwrap();
    assert_eq!(next_non_heartbeat(&mut chatty), RESPONSE_1);
}

#[test]
fn compression_deflates_large_bodies() {
    let server = Server::start(&["--compression", "true"]);
    // The 65-byte handshake reply does not shrink, so it stays plain.
    let mut stream = server.connect_ready();
    let body = vec![b'z'; 4000];
    stream
        .write_all(&request(7, "echo.echo.echo", &body))
        .unwrap();
    let header = read_n(&mut stream, 4);
    assert_eq!(header[0], 0x04);
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    assert!(len < 200, "compressed body expected, got {len} bytes");
    let message = read_n(&mut stream, len);
    assert_eq!(&message[..2], &[0x14, 0x07], "response flag with zlib bit");
    let decoded = MessageCodec::default()
        .decode(Bytes::from(message))
        .unwrap();
    assert_eq!(decoded.kind, MessageType::Response);
    assert_eq!(decoded.id, 7);
    assert_eq!(decoded.body, body);

    // Small bodies are not worth it and go out plain.
    stream.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut stream, RESPONSE_1.len()), RESPONSE_1);
}

/// Next binary message, skipping nothing: any other kind fails the test.
async fn next_binary<S>(ws: &mut S) -> Bytes
where
    S: futures::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    match tokio::time::timeout(IO_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
        other => panic!("expected a binary message, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_handshake_echo_and_errors() {
    let server = Server::start(&[]);
    let url = format!("ws://{}/any/path", server.ws);
    let tcp = tokio::net::TcpStream::connect(server.ws).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .expect("websocket upgrade");

    ws.send(WsMessage::Binary(handshake().into()))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, HANDSHAKE_OK);
    ws.send(WsMessage::Binary(Bytes::from_static(ACK)))
        .await
        .unwrap();
    ws.send(WsMessage::Binary(Bytes::from_static(REQUEST_1)))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, RESPONSE_1);

    // Pipelined: every response is its own message, in order.
    for id in 1..=50u64 {
        let body = format!(r#"{{"n":{id}}}"#);
        ws.feed(WsMessage::Binary(
            request(id, "echo.echo.echo", body.as_bytes()).into(),
        ))
        .await
        .unwrap();
        if id % 10 == 0 {
            ws.feed(WsMessage::Binary(notify("echo.echo.note", b"{}").into()))
                .await
                .unwrap();
        }
    }
    ws.flush().await.unwrap();
    for id in 1..=50u64 {
        let body = format!(r#"{{"n":{id}}}"#);
        assert_eq!(next_binary(&mut ws).await, response(id, body.as_bytes()));
    }

    // Two packets in one message break the one-packet-per-message rule.
    let mut two = REQUEST_1.to_vec();
    two.extend_from_slice(REQUEST_1);
    ws.send(WsMessage::Binary(two.into())).await.unwrap();
    loop {
        match tokio::time::timeout(IO_TIMEOUT, ws.next())
            .await
            .expect("server closes")
        {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
            Some(Ok(WsMessage::Binary(bytes))) => panic!("unexpected reply {bytes:02x?}"),
            Some(Ok(_)) => {}
        }
    }

    // Raw TCP is unaffected.
    let mut stream = server.connect_ready();
    stream.write_all(REQUEST_1).unwrap();
    assert_eq!(read_n(&mut stream, RESPONSE_1.len()), RESPONSE_1);
}

#[tokio::test]
async fn websocket_data_before_ack_closes() {
    let server = Server::start(&[]);
    let tcp = tokio::net::TcpStream::connect(server.ws).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/", server.ws), tcp)
        .await
        .expect("websocket upgrade");
    ws.send(WsMessage::Binary(handshake().into()))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, HANDSHAKE_OK);
    ws.send(WsMessage::Binary(Bytes::from_static(REQUEST_1)))
        .await
        .unwrap();
    match tokio::time::timeout(IO_TIMEOUT, ws.next())
        .await
        .expect("server closes")
    {
        None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start(&[]);
    let _open = server.connect_ready();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + IO_TIMEOUT;
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "raw-echo ignored SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit expected, got {exit:?}");
}

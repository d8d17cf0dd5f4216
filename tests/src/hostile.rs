//! Hostile clients, and the tools to judge what they cost a server: shared
//! by the attack suite (`tests/tests/hostile.rs`) and `hostile-bench`.
//!
//! - [`TargetProcess`]: the `hostile-target` server in a child process.
//! - [`Peer`]: a raw connection (TCP, or WebSocket framed by hand) that
//!   writes any bytes and reads packets; nothing in it trusts the server
//!   to be well-behaved beyond bounded reads.
//! - The attacks: [`handshake_bomb`], [`zlib_bomb_body`] with
//!   [`bomb_loop`], [`header_flood`], [`partial_bodies`] and
//!   [`stall_handshake`]. Each is bounded in sockets and time and only
//!   talks to the address it is given (the suite and the bench use
//!   127.0.0.1).
//! - [`mem_status`], [`MemSampler`]: a process's VmRSS / VmHWM / VmSize
//!   from `/proc/PID/status`.
//! - [`Canary`]: a real `pitaya_client::Client` calling `echo.echo.echo`
//!   periodically, on its own thread and runtime, recording latencies and
//!   failures.

use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use pitaya::codec::compression;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Packet types (PROTOCOL.md §1.2).
pub mod kind {
    pub const HANDSHAKE: u8 = 0x01;
    pub const ACK: u8 = 0x02;
    pub const HEARTBEAT: u8 = 0x03;
    pub const DATA: u8 = 0x04;
    pub const KICK: u8 = 0x05;
}

/// The largest body a 3-byte length can announce.
pub const MAX_BODY: usize = 0x00ff_ffff;

/// The largest packet body a [`Peer`] accepts from the server (a server
/// may legitimately send up to [`MAX_BODY`]).
const MAX_READ_BODY: usize = MAX_BODY;

/// The largest inflated body a [`Peer`] accepts from the server.
const MAX_READ_INFLATED: usize = 32 << 20;

/// A valid client handshake (no `user` block).
pub const HANDSHAKE: &[u8] = br#"{"sys":{"platform":"hostile","libVersion":"0.1","clientBuildNumber":"1","clientVersion":"0.1"}}"#;

// ---------------------------------------------------------------------------
// Wire bytes, by hand.

/// A 4-byte packet header; `len` is cut to 3 bytes (the point of some
/// attacks is a header that lies about its body).
pub fn header(kind: u8, len: usize) -> [u8; 4] {
    let len = len.min(MAX_BODY);
    let [_, a, b, c] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [kind, a, b, c]
}

/// A whole packet: header and `body` (at most [`MAX_BODY`] bytes are
/// announced).
pub fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&header(kind, body.len()));
    out.extend_from_slice(body);
    out
}

/// Appends `value` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = u8::try_from(value & 0x7f).unwrap_or(0);
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A request message (flag `0x00 | extra_flags`, id, string route, body).
pub fn request_message(id: u64, route: &str, extra_flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![extra_flags & !0x0e];
    put_varint(&mut out, id);
    out.push(u8::try_from(route.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(route.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A notify message (flag `0x02`, string route, body).
pub fn notify_message(route: &str, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02];
    out.push(u8::try_from(route.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(route.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A data packet holding a request.
pub fn request_packet(id: u64, route: &str, body: &[u8]) -> Vec<u8> {
    packet(kind::DATA, &request_message(id, route, 0, body))
}

/// A JSON document of exactly `len` bytes (at least 16):
/// `{"a":[0,0,...,0]}`, optionally wrapped as `{"sys":{},"user":...}`.
/// Parsed into a tree it costs tens of times its size.
pub fn json_array_doc(len: usize, as_handshake: bool) -> Vec<u8> {
    let (prefix, suffix): (&[u8], &[u8]) = if as_handshake {
        (br#"{"sys":{},"user":{"a":["#, b"0]}}")
    } else {
        (br#"{"a":["#, b"0]}")
    };
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(prefix);
    let fill = len.saturating_sub(prefix.len() + suffix.len());
    if fill % 2 == 1 {
        out.push(b' ');
    }
    for _ in 0..fill / 2 {
        out.extend_from_slice(b"0,");
    }
    out.extend_from_slice(suffix);
    out
}

// ---------------------------------------------------------------------------
// The target server process.

/// A `hostile-target` child process; killed (SIGKILL) on drop. It also
/// exits by itself when this process dies (its stdin closes).
pub struct TargetProcess {
    child: Child,
    _stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
    /// Its TCP acceptor.
    pub tcp: SocketAddr,
    /// Its WebSocket acceptor.
    pub ws: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

impl TargetProcess {
    /// Starts `binary` with `args` (plus `--exit-on-stdin-eof`) and waits
    /// for its address line. Its logs go to this process's stderr when
    /// `TEST_LOG` is set (the child's `RUST_LOG`).
    pub fn start(binary: &str, args: &[&str]) -> io::Result<Self> {
        let log = std::env::var("TEST_LOG").ok();
        let mut child = Command::new(binary)
            .args(args)
            .arg("--exit-on-stdin-eof")
            .env("RUST_LOG", log.as_deref().unwrap_or("off"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if log.is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(io::Error::other("no stdout pipe"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let parsed = read.and_then(|_| parse_target_line(&line));
        match parsed {
            Ok((pid, tcp, ws)) => Ok(Self {
                child,
                _stdin: stdin,
                _stdout: stdout,
                tcp,
                ws,
                pid,
            }),
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    /// `tcp://ip:port` of the TCP acceptor.
    pub fn tcp_url(&self) -> String {
        format!("tcp://{}", self.tcp)
    }

    /// `ws://ip:port/` of the WebSocket acceptor.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.ws)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its memory now.
    pub fn mem(&self) -> io::Result<MemStatus> {
        mem_status(self.pid)
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `hostile-target pid=<pid> tcp=<addr> ws=<addr>`.
fn parse_target_line(line: &str) -> io::Result<(u32, SocketAddr, SocketAddr)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad line {line:?}"));
    let mut fields = line.split_whitespace();
    if fields.next() != Some("hostile-target") {
        return Err(bad());
    }
    let (mut pid, mut tcp, mut ws) = (None, None, None);
    for field in fields {
        match field.split_once('=') {
            Some(("pid", value)) => pid = value.parse().ok(),
            Some(("tcp", value)) => tcp = value.parse().ok(),
            Some(("ws", value)) => ws = value.parse().ok(),
            _ => {}
        }
    }
    match (pid, tcp, ws) {
        (Some(pid), Some(tcp), Some(ws)) => Ok((pid, tcp, ws)),
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------------------
// Memory of a process.

/// Memory figures of a process, in bytes (from `/proc/PID/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStatus {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size (`VmHWM`), since start or the last
    /// [`reset_peak_rss`].
    pub hwm: u64,
    /// Virtual memory size now (`VmSize`).
    pub vm_size: u64,
}

/// Reads `/proc/<pid>/status`.
pub fn mem_status(pid: u32) -> io::Result<MemStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut status = MemStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
        match key {
            "VmRSS" => status.rss = kib * 1024,
            "VmHWM" => status.hwm = kib * 1024,
            "VmSize" => status.vm_size = kib * 1024,
            _ => {}
        }
    }
    Ok(status)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS by writing
/// `5` to `/proc/<pid>/clear_refs`; false if that is not permitted.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// What a process's memory did while a [`MemSampler`] watched it.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemPeak {
    /// At the start.
    pub base: MemStatus,
    /// The largest RSS seen: sampled, and `VmHWM` when it could be reset
    /// at the start.
    pub peak_rss: u64,
    /// The largest VmSize sampled.
    pub peak_vm_size: u64,
    /// At the end.
    pub end: MemStatus,
}

impl MemPeak {
    /// Peak RSS minus RSS at the start.
    pub fn rss_growth(&self) -> u64 {
        self.peak_rss.saturating_sub(self.base.rss)
    }

    /// Peak VmSize minus VmSize at the start.
    pub fn vm_growth(&self) -> u64 {
        self.peak_vm_size.saturating_sub(self.base.vm_size)
    }
}

/// Samples a process's VmRSS and VmSize every few milliseconds on its own
/// thread, from [`MemSampler::start`] to [`MemSampler::stop`].
pub struct MemSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<MemPeak>>,
}

impl MemSampler {
    /// Resets the peak RSS of `pid` (if permitted) and starts sampling.
    pub fn start(pid: u32) -> io::Result<Self> {
        let hwm_valid = reset_peak_rss(pid);
        let base = mem_status(pid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = MemPeak {
                    base,
                    peak_rss: base.rss,
                    peak_vm_size: base.vm_size,
                    end: base,
                };
                loop {
                    let done = stop.load(Ordering::Acquire);
                    if let Ok(now) = mem_status(pid) {
                        peak.peak_rss = peak.peak_rss.max(now.rss);
                        if hwm_valid {
                            peak.peak_rss = peak.peak_rss.max(now.hwm);
                        }
                        peak.peak_vm_size = peak.peak_vm_size.max(now.vm_size);
                        peak.end = now;
                    }
                    if done {
                        return peak;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sampling (after one last sample) and returns the peaks.
    pub fn stop(mut self) -> MemPeak {
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for MemSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Mebibytes, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

// ---------------------------------------------------------------------------
// The canary.

/// What the canary saw.
#[derive(Clone, Debug, Default)]
pub struct CanaryReport {
    /// Latency of every successful request, in order.
    pub latencies: Vec<Duration>,
    /// Every failure (a failed request, a wrong reply, a lost connection).
    pub failures: Vec<String>,
}

impl CanaryReport {
    /// The latency below which `per_mille` thousandths of the requests
    /// finished (nearest rank; zero if there were none).
    pub fn quantile(&self, per_mille: usize) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = (per_mille.min(1000) * sorted.len()).div_ceil(1000);
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// Median latency.
    pub fn p50(&self) -> Duration {
        self.quantile(500)
    }

    /// 99th percentile latency.
    pub fn p99(&self) -> Duration {
        self.quantile(990)
    }

    /// The slowest request.
    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// A real client calling `echo.echo.echo` every period, on its own thread
/// and runtime (so the attackers in this process cannot delay it).
pub struct Canary {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<CanaryReport>>,
}

/// How long one canary request may take before it counts as failed.
pub const CANARY_TIMEOUT: Duration = Duration::from_secs(2);

impl Canary {
    /// Connects to `endpoint` (e.g. `tcp://127.0.0.1:3250`) and starts
    /// calling every `period`. Fails if it cannot connect.
    pub fn start(endpoint: &str, period: Duration) -> Result<Self, pitaya_client::Error> {
        let (connected_tx, connected_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let endpoint = endpoint.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = connected_tx.send(Err(pitaya_client::Error::Io(err)));
                    return CanaryReport::default();
                }
            };
            runtime.block_on(canary_loop(endpoint, period, connected_tx, stop_rx))
        });
        match connected_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => Err(pitaya_client::Error::Closed),
        }
    }

    /// Makes one last request, stops the canary and returns what it saw.
    pub fn stop(mut self) -> CanaryReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_else(|| CanaryReport {
                latencies: Vec::new(),
                failures: vec!["the canary thread panicked".into()],
            })
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn canary_loop(
    endpoint: String,
    period: Duration,
    connected: std::sync::mpsc::Sender<Result<(), pitaya_client::Error>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> CanaryReport {
    let client = pitaya_client::Client::builder()
        .request_timeout(CANARY_TIMEOUT)
        .connect(endpoint.as_str())
        .await;
    let (client, _events) = match client {
        Ok(pair) => pair,
        Err(err) => {
            let _ = connected.send(Err(err));
            return CanaryReport::default();
        }
    };
    let _ = connected.send(Ok(()));
    let mut report = CanaryReport::default();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let mut stopping = false;
    while !stopping {
        // When told to stop, one last request: the server must still
        // serve after whatever happened meanwhile.
        tokio::select! {
            _ = &mut stop => stopping = true,
            _ = ticker.tick() => {}
        }
        n += 1;
        let body = json!({"canary": n});
        let started = Instant::now();
        match client.request::<_, Value>("echo.echo.echo", &body).await {
            Ok(reply) if reply == body => report.latencies.push(started.elapsed()),
            Ok(reply) => report
                .failures
                .push(format!("request {n}: wrong reply {reply}")),
            Err(err) => {
                tracing::warn!(n, error = %err, "canary request failed");
                report.failures.push(format!("request {n}: {err}"));
            }
        }
    }
    client.close().await;
    report
}

// ---------------------------------------------------------------------------
// A raw peer.

/// How a hostile connection ended, seen from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The server closed it (end of stream) after this long.
    Eof(Duration),
    /// The server reset it after this long.
    Reset(Duration),
    /// Still open at the deadline.
    Open,
}

impl Closed {
    /// When it was closed, if it was.
    pub fn after(self) -> Option<Duration> {
        match self {
            Self::Eof(after) | Self::Reset(after) => Some(after),
            Self::Open => None,
        }
    }

    /// Whether the server closed it.
    pub fn is_closed(self) -> bool {
        self.after().is_some()
    }
}

/// A response the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Its message id.
    pub id: u64,
    /// Whether the error flag is set.
    pub error: bool,
    /// Its body, inflated if it was compressed.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The Pitaya error code of an error response (`PIT-400`, ...).
    pub fn error_code(&self) -> Option<String> {
        if !self.error {
            return None;
        }
        self.json()
            .and_then(|body| body.get("code").and_then(Value::as_str).map(str::to_owned))
    }
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A packet: its type and body.
    Packet(u8, Bytes),
    /// A WebSocket pong (WebSocket peers only).
    Pong,
    /// The end of the connection (EOF, or a WebSocket close frame).
    End,
}

/// A raw client connection: TCP, or WebSocket framed by hand (client
/// frames masked, one packet per binary message).
pub struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    ws: bool,
    opened: Instant,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// The masking key of this module's WebSocket frames (any key is valid;
/// a fixed one keeps frames reproducible).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client WebSocket frame: `fin`, `opcode` (1 text, 2 binary, 0
/// continuation, 8 close, 9 ping, 10 pong), masked `payload`.
pub fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    out.extend_from_slice(&ws_len_header(payload.len()));
    out.extend_from_slice(&MASK);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ MASK[i % 4]),
    );
    out
}

/// The masked length field of a client frame announcing `len` bytes.
pub fn ws_len_header(len: usize) -> Vec<u8> {
    if len < 126 {
        vec![0x80 | u8::try_from(len).unwrap_or(0)]
    } else if let Ok(len) = u16::try_from(len) {
        let mut out = vec![0x80 | 126];
        out.extend_from_slice(&len.to_be_bytes());
        out
    } else {
        let mut out = vec![0x80 | 127];
        out.extend_from_slice(&(len as u64).to_be_bytes());
        out
    }
}

/// A WebSocket upgrade request for `host` with a fixed key.
pub fn ws_upgrade_request(host: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Sends `request` as an HTTP upgrade and returns the status line of the
/// answer (empty if the server closed without answering).
pub async fn http_status(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let read_head = async {
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
            let read = match stream.read(&mut chunk).await {
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => 0,
                Err(err) => return Err(err),
            };
            if read == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..read]);
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read_head)
        .await
        .map_err(|_| timed_out("reading the http answer"))??;
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

impl Peer {
    /// A TCP connection to `addr`.
    pub async fn tcp(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::wrap(TcpStream::connect(addr).await?, false))
    }

    /// A TCP connection to `addr` from the local address `local` (any of
    /// 127/8 works on Linux for a 127.0.0.1 server).
    pub async fn tcp_from(local: IpAddr, addr: SocketAddr) -> io::Result<Self> {
        let socket = match local {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(local, 0))?;
        Ok(Self::wrap(socket.connect(addr).await?, false))
    }

    /// A TCP connection with a small receive buffer (for clients that
    /// stop reading: the server's writes block sooner).
    pub async fn tcp_small_window(addr: SocketAddr, recv_buffer: u32) -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        Ok(Self::wrap(socket.connect(addr).await?, false))
    }

    /// A WebSocket connection to `addr` (path `/`), upgraded by hand.
    pub async fn ws(addr: SocketAddr) -> io::Result<Self> {
        Self::ws_over(TcpStream::connect(addr).await?, addr).await
    }

    /// A WebSocket connection to `addr` from the local address `local`.
    pub async fn ws_from(local: IpAddr, addr: SocketAddr) -> io::Result<Self> {
        let tcp = Self::tcp_from(local, addr).await?;
        Self::ws_over(tcp.stream, addr).await
    }

    async fn ws_over(stream: TcpStream, addr: SocketAddr) -> io::Result<Self> {
        let mut peer = Self::wrap(stream, true);
        peer.stream
            .write_all(ws_upgrade_request(addr).as_bytes())
            .await?;
        let head_end = loop {
            if let Some(end) = peer.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if peer.buf.len() > 16 * 1024 {
                return Err(invalid("websocket upgrade answer too long"));
            }
            if !peer.fill(Duration::from_secs(5)).await? {
                return Err(invalid("closed during the websocket upgrade"));
            }
        };
        let head = peer.buf.split_to(head_end);
        if !head.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(&head);
            return Err(invalid(format!(
                "upgrade refused: {}",
                line.lines().next().unwrap_or_default()
            )));
        }
        Ok(peer)
    }

    fn wrap(stream: TcpStream, ws: bool) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buf: BytesMut::new(),
            ws,
            opened: Instant::now(),
        }
    }

    /// Whether this peer frames packets in WebSocket messages.
    pub fn is_ws(&self) -> bool {
        self.ws
    }

    /// Its local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Writes `bytes` to the socket as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Sends whole packet bytes: as they are over TCP, as one binary
    /// message over WebSocket.
    pub async fn send_packet_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.ws {
            let frame = ws_frame(true, 2, bytes);
            self.stream.write_all(&frame).await
        } else {
            self.stream.write_all(bytes).await
        }
    }

    /// Sends a packet of `kind` with `body`.
    pub async fn send_packet(&mut self, kind: u8, body: &[u8]) -> io::Result<()> {
        self.send_packet_bytes(&packet(kind, body)).await
    }

    /// Sends a WebSocket frame (WebSocket peers).
    pub async fn send_ws_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&ws_frame(fin, opcode, payload)).await
    }

    /// Writes `bytes` while reading what the server sends meanwhile into
    /// this peer's buffer (parsed by later reads), so a flood that the
    /// server answers (pings) cannot fill both sides' buffers. Buffers at
    /// most 64 MiB.
    pub async fn send_while_reading(&mut self, bytes: &[u8]) -> io::Result<()> {
        let (mut reader, mut writer) = self.stream.split();
        let buf = &mut self.buf;
        let write = writer.write_all(bytes);
        tokio::pin!(write);
        loop {
            if buf.len() > 64 << 20 {
                return Err(invalid("over 64 MiB unread from the server"));
            }
            buf.reserve(16 * 1024);
            tokio::select! {
                result = &mut write => return result,
                read = reader.read_buf(buf) => match read {
                    Ok(0) => return (&mut write).await,
                    Ok(_) => {}
                    Err(err) => return Err(err),
                },
            }
        }
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    async fn fill(&mut self, timeout: Duration) -> io::Result<bool> {
        self.buf.reserve(16 * 1024);
        match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(timed_out("read")),
        }
    }

    /// Reads the next packet (or pong, or end), waiting at most `timeout`
    /// (`ErrorKind::TimedOut` then).
    pub async fn read(&mut self, timeout: Duration) -> io::Result<Incoming> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(incoming) = self.parse()? {
                return Ok(incoming);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(timed_out("read"));
            }
            if !self.fill(left).await? {
                if self.buf.is_empty() {
                    return Ok(Incoming::End);
                }
                return Err(invalid("closed in the middle of a packet"));
            }
        }
    }

    /// One whole item from the buffer, if there is one.
    fn parse(&mut self) -> io::Result<Option<Incoming>> {
        if self.ws {
            return self.parse_ws();
        }
        Ok(parse_packet(&mut self.buf)?.map(|(kind, body)| Incoming::Packet(kind, body)))
    }

    fn parse_ws(&mut self) -> io::Result<Option<Incoming>> {
        let Some(&[b0, b1]) = self.buf.get(..2) else {
            return Ok(None);
        };
        let opcode = b0 & 0x0f;
        let short = usize::from(b1 & 0x7f);
        let (len, at) = match short {
            126 => match self.buf.get(2..4) {
                Some(&[a, b]) => (usize::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match self.buf.get(2..10) {
                Some(bytes) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(be);
                    (usize::try_from(len).unwrap_or(usize::MAX), 10)
                }
                _ => return Ok(None),
            },
            len => (len, 2),
        };
        if b1 & 0x80 != 0 {
            return Err(invalid("masked frame from the server"));
        }
        if len > MAX_READ_BODY + 4 {
            return Err(invalid(format!("server frame of {len} bytes")));
        }
        if self.buf.len() < at + len {
            return Ok(None);
        }
        self.buf.advance(at);
        let mut payload = self.buf.split_to(len).freeze();
        match opcode {
            2 => {
                let mut frame = BytesMut::from(&payload[..]);
                match parse_packet(&mut frame)? {
                    Some((kind, body)) if frame.is_empty() => {
                        Ok(Some(Incoming::Packet(kind, body)))
                    }
                    _ => Err(invalid("a binary message that is not exactly one packet")),
                }
            }
            8 => Ok(Some(Incoming::End)),
            10 => Ok(Some(Incoming::Pong)),
            9 => {
                // A ping from the server: ignore (payload dropped).
                payload.clear();
                Ok(Some(Incoming::Pong))
            }
            other => Err(invalid(format!("server frame with opcode {other}"))),
        }
    }

    /// The next packet, skipping pongs; `None` at the end.
    pub async fn read_packet(&mut self, timeout: Duration) -> io::Result<Option<(u8, Bytes)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left).await? {
                Incoming::Packet(kind, body) => return Ok(Some((kind, body))),
                Incoming::Pong => {}
                Incoming::End => return Ok(None),
            }
        }
    }

    /// Sends handshake `body` and returns the server's answer (JSON), or
    /// `None` if it closed without one.
    pub async fn handshake_with(&mut self, body: &[u8]) -> io::Result<Option<Value>> {
        self.send_packet(kind::HANDSHAKE, body).await?;
        self.handshake_reply(Duration::from_secs(5)).await
    }

    /// Reads the handshake response: its JSON, or `None` if the server
    /// closed first (heartbeats are skipped).
    pub async fn handshake_reply(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let read = match self.read_packet(left).await {
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => None,
                Err(err) => return Err(err),
            };
            match read {
                None => return Ok(None),
                Some((kind::HEARTBEAT, _)) => {}
                Some((kind::HANDSHAKE, body)) => {
                    let body = if compression::looks_compressed(&body) {
                        compression::inflate_if_compressed(&body, 1 << 20)
                            .map_err(|err| invalid(err.to_string()))?
                    } else {
                        body.to_vec()
                    };
                    return serde_json::from_slice(&body)
                        .map(Some)
                        .map_err(|err| invalid(format!("handshake response: {err}")));
                }
                Some((other, _)) => {
                    return Err(invalid(format!("packet type {other} before the handshake")));
                }
            }
        }
    }

    /// Sends the default handshake and checks the answer is code 200.
    pub async fn handshake(&mut self) -> io::Result<()> {
        match self.handshake_with(HANDSHAKE).await? {
            Some(reply) if reply["code"] == 200 => Ok(()),
            Some(reply) => Err(invalid(format!("handshake refused: {reply}"))),
            None => Err(invalid("closed instead of answering the handshake")),
        }
    }

    /// Sends the handshake ack.
    pub async fn ack(&mut self) -> io::Result<()> {
        self.send_packet(kind::ACK, &[]).await
    }

    /// A TCP connection that completed handshake and ack.
    pub async fn handshaken(addr: SocketAddr) -> io::Result<Self> {
        let mut peer = Self::tcp(addr).await?;
        peer.handshake().await?;
        peer.ack().await?;
        Ok(peer)
    }

    /// A WebSocket connection that completed handshake and ack.
    pub async fn handshaken_ws(addr: SocketAddr) -> io::Result<Self> {
        let mut peer = Self::ws(addr).await?;
        peer.handshake().await?;
        peer.ack().await?;
        Ok(peer)
    }

    /// Sends a request.
    pub async fn send_request(&mut self, id: u64, route: &str, body: &[u8]) -> io::Result<()> {
        self.send_packet_bytes(&request_packet(id, route, body))
            .await
    }

    /// The next response, skipping heartbeats and pushes. Fails on the end
    /// of the connection or another packet type.
    pub async fn next_response(&mut self, timeout: Duration) -> io::Result<Response> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_packet(left).await? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed instead of answering",
                    ));
                }
                Some((kind::HEARTBEAT, _)) => {}
                Some((kind::DATA, body)) => {
                    if let Some(response) = parse_response(body)? {
                        return Ok(response);
                    }
                }
                Some((other, _)) => {
                    return Err(invalid(format!(
                        "packet type {other} instead of a response"
                    )));
                }
            }
        }
    }

    /// Sends a request and waits for its response.
    pub async fn request(
        &mut self,
        id: u64,
        route: &str,
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Response> {
        self.send_request(id, route, body).await?;
        self.next_response(timeout).await
    }

    /// Reads (and drops) whatever arrives until the server closes the
    /// connection or `deadline` passes. Bounded: a server that streams
    /// forever just reaches the deadline.
    pub async fn closed_within(&mut self, deadline: Duration) -> Closed {
        let started = Instant::now();
        self.buf.clear();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return Closed::Open,
                Ok(Ok(0)) => return Closed::Eof(started.elapsed()),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Closed::Reset(started.elapsed()),
            }
        }
    }

    /// Time since the connection was opened.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// The socket, for anything else.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// Takes one packet from `buf` if it holds a whole one.
fn parse_packet(buf: &mut BytesMut) -> io::Result<Option<(u8, Bytes)>> {
    let Some(&[kind, a, b, c]) = buf.get(..4) else {
        return Ok(None);
    };
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if len > MAX_READ_BODY {
        return Err(invalid("server packet too large"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some((kind, buf.split_to(len).freeze())))
}

/// Parses a server message: a response (`Some`), or a push (`None`).
fn parse_response(mut body: Bytes) -> io::Result<Option<Response>> {
    let Some(&flag) = body.first() else {
        return Err(invalid("empty message"));
    };
    body.advance(1);
    let message_type = (flag >> 1) & 0x07;
    match message_type {
        2 => {}
        3 => return Ok(None),
        other => return Err(invalid(format!("message type {other} from the server"))),
    }
    let mut id = 0u64;
    let mut shift = 0;
    loop {
        let Some(&byte) = body.first() else {
            return Err(invalid("truncated message id"));
        };
        body.advance(1);
        if shift >= 64 {
            return Err(invalid("message id overflows"));
        }
        id |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let body = if flag & 0x10 != 0 {
        Bytes::from(
            compression::inflate(&body, MAX_READ_INFLATED)
                .map_err(|err| invalid(err.to_string()))?,
        )
    } else {
        body
    };
    Ok(Some(Response {
        id,
        error: flag & 0x20 != 0,
        body,
    }))
}

// ---------------------------------------------------------------------------
// The attacks.

/// What one [`handshake_bomb`] connection got.
#[derive(Clone, Debug)]
pub struct HandshakeBomb {
    /// Bytes written before the server stopped taking them.
    pub sent: usize,
    /// The `code` of the handshake response, if one came.
    pub code: Option<i64>,
    /// How the connection ended, from the moment the attack started.
    pub closed: Closed,
}

/// Finding 1: a handshake of `body_len` bytes (at most 16 MiB - 1) whose
/// `user` block is one huge array. Writes it (as far as the server reads
/// it) while reading the answer; then waits until the server closes the
/// connection or `hold` has passed since the start (a server that
/// accepted it keeps the parsed tree while the connection lives).
pub async fn handshake_bomb(
    addr: SocketAddr,
    body_len: usize,
    ws: bool,
    hold: Duration,
) -> io::Result<HandshakeBomb> {
    let started = Instant::now();
    let peer = if ws {
        Peer::ws(addr).await?
    } else {
        Peer::tcp(addr).await?
    };
    let body_len = body_len.min(MAX_BODY);
    let doc = json_array_doc(body_len, true);
    let bytes = if ws {
        ws_frame(true, 2, &packet(kind::HANDSHAKE, &doc))
    } else {
        packet(kind::HANDSHAKE, &doc)
    };
    drop(doc);
    let (mut reader, mut writer) = peer.stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let write = tokio::spawn({
        let sent = sent.clone();
        async move {
            for chunk in bytes.chunks(64 * 1024) {
                if writer.write_all(chunk).await.is_err() {
                    break;
                }
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            writer
        }
    });
    // Read the answer with a peer around the read half.
    let mut buf = BytesMut::new();
    let mut code = None;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut closed = Closed::Open;
    loop {
        let left = hold.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, reader.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                closed = Closed::Eof(started.elapsed());
                break;
            }
            Ok(Err(_)) => {
                closed = Closed::Reset(started.elapsed());
                break;
            }
            Ok(Ok(read)) => {
                buf.extend_from_slice(&chunk[..read]);
                if code.is_none() {
                    code = handshake_code(&mut buf, ws);
                }
            }
        }
    }
    write.abort();
    let sent = sent.load(Ordering::Relaxed);
    Ok(HandshakeBomb { sent, code, closed })
}

/// The `code` of a handshake response at the start of `buf`, if a whole
/// one is there (for WebSocket, inside a binary frame).
fn handshake_code(buf: &mut BytesMut, ws: bool) -> Option<i64> {
    let mut packet_bytes = if ws {
        let &[_, b1] = buf.get(..2)? else {
            return None;
        };
        let (len, at) = match b1 & 0x7f {
            126 => (
                usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
                4,
            ),
            127 => return None,
            len => (usize::from(len), 2),
        };
        BytesMut::from(buf.get(at..at + len)?)
    } else {
        buf.clone()
    };
    let (kind, body) = parse_packet(&mut packet_bytes).ok()??;
    if kind != kind::HANDSHAKE {
        return None;
    }
    let body = compression::inflate_if_compressed(&body, 1 << 20).ok()?;
    let reply: Value = serde_json::from_slice(&body).ok()?;
    reply.get("code").and_then(Value::as_i64)
}

/// Finding 2: a zlib stream (about `inflated_len / 1000` bytes) of the
/// JSON document `{"a":[0,0,...]}` of `inflated_len` bytes.
pub fn zlib_bomb_body(inflated_len: usize) -> Bytes {
    Bytes::from(compression::deflate(&json_array_doc(inflated_len, false)))
}

/// A request packet with the compressed-body flag (`0x10`) and `body`.
pub fn compressed_request(id: u64, route: &str, body: &[u8]) -> Vec<u8> {
    packet(kind::DATA, &request_message(id, route, 0x10, body))
}

/// What the attackers of [`bomb_loop`] got.
#[derive(Clone, Debug, Default)]
pub struct BombStats {
    /// Bombs sent.
    pub sent: usize,
    /// Answered with a `PIT-400` error.
    pub refused: usize,
    /// Answered with a success (the bomb was inflated and handled).
    pub accepted: usize,
    /// Answered otherwise, or not at all, or the connection failed.
    pub other: usize,
    /// Connections the server closed.
    pub closed: usize,
    /// The slowest answer.
    pub slowest: Duration,
}

/// `attackers` handshaken TCP connections each sending `bomb` (a
/// compressed `echo.echo.echo` body) and waiting for the answer, then
/// `pause`, again and again until `duration` has passed.
pub async fn bomb_loop(
    addr: SocketAddr,
    bomb: Bytes,
    attackers: usize,
    pause: Duration,
    duration: Duration,
) -> BombStats {
    let until = Instant::now() + duration;
    let tasks: Vec<_> = (0..attackers)
        .map(|_| {
            let bomb = bomb.clone();
            tokio::spawn(async move {
                let mut stats = BombStats::default();
                let Ok(mut peer) = Peer::handshaken(addr).await else {
                    stats.other += 1;
                    return stats;
                };
                let mut id = 1;
                while Instant::now() < until {
                    let started = Instant::now();
                    stats.sent += 1;
                    let frame = compressed_request(id, "echo.echo.echo", &bomb);
                    id += 1;
                    let answer = match peer.send_packet_bytes(&frame).await {
                        Ok(()) => peer.next_response(Duration::from_secs(20)).await,
                        Err(err) => Err(err),
                    };
                    stats.slowest = stats.slowest.max(started.elapsed());
                    match answer {
                        Ok(response) if response.error_code().as_deref() == Some("PIT-400") => {
                            stats.refused += 1;
                        }
                        Ok(response) if !response.error => stats.accepted += 1,
                        Ok(_) => stats.other += 1,
                        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                            stats.closed += 1;
                            break;
                        }
                        Err(_) => {
                            stats.other += 1;
                            break;
                        }
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                stats
            })
        })
        .collect();
    let mut total = BombStats::default();
    for task in tasks {
        if let Ok(stats) = task.await {
            total.sent += stats.sent;
            total.refused += stats.refused;
            total.accepted += stats.accepted;
            total.other += stats.other;
            total.closed += stats.closed;
            total.slowest = total.slowest.max(stats.slowest);
        } else {
            total.other += 1;
        }
    }
    total
}

/// What a flood of hostile sockets got.
#[derive(Clone, Debug, Default)]
pub struct Flood {
    /// Sockets connected (and sent their bytes).
    pub opened: usize,
    /// Sockets that could not connect or send (the server may refuse
    /// them: that is counted here, not as closed).
    pub failed: usize,
    /// Sockets the server closed within the deadline.
    pub closed: usize,
    /// The slowest close, from the moment the socket sent its bytes.
    pub slowest_close: Duration,
}

impl Flood {
    /// Sockets still open at the deadline.
    pub fn still_open(&self) -> usize {
        self.opened - self.closed
    }
}

/// Connects `count` sockets to `addr`, 64 at a time with `pace` between
/// batches, and has each write `bytes`; then waits until the server has
/// closed each or `hold` has passed since the last was connected, and
/// drops them all.
///
/// A connect completes in the kernel before the server accepts it: with
/// no `pace` the batches can outrun the server's accept loop and overflow
/// its listen backlog, and an overflowed connection waits for a SYN-ACK
/// retransmit (1 s) before the server sees it.
pub async fn flood(
    addr: SocketAddr,
    count: usize,
    bytes: Bytes,
    pace: Duration,
    hold: Duration,
) -> Flood {
    let mut flood = Flood::default();
    let hold_until = Arc::new(std::sync::Mutex::new(Instant::now() + hold));
    let mut waits = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(64) {
        let mut connected = Vec::with_capacity(batch.len());
        for _ in batch {
            let bytes = bytes.clone();
            let hold_until = hold_until.clone();
            let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
            connected.push(sent_rx);
            // Each socket watches for its own close from the moment it
            // sent its bytes, until `hold` after the last one connected.
            waits.push(tokio::spawn(async move {
                let mut peer = match Peer::tcp(addr).await {
                    Ok(peer) => peer,
                    Err(err) => {
                        let _ = sent_tx.send(Err(err));
                        return None;
                    }
                };
                if let Err(err) = peer.send_raw(&bytes).await {
                    let _ = sent_tx.send(Err(err));
                    return None;
                }
                let sent = Instant::now();
                let _ = sent_tx.send(Ok(()));
                loop {
                    let until = *hold_until.lock().unwrap_or_else(PoisonError::into_inner);
                    let left = until.saturating_duration_since(Instant::now());
                    if peer.closed_within(left).await.is_closed() {
                        return Some(sent.elapsed());
                    }
                    // The deadline may have moved while this one waited.
                    let until = *hold_until.lock().unwrap_or_else(PoisonError::into_inner);
                    if Instant::now() >= until {
                        return None;
                    }
                }
            }));
        }
        for sent in connected {
            match sent.await {
                Ok(Ok(())) => flood.opened += 1,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "a flood socket failed");
                    flood.failed += 1;
                }
                Err(_) => flood.failed += 1,
            }
        }
        *hold_until.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now() + hold;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    for wait in waits {
        if let Ok(Some(after)) = wait.await {
            flood.closed += 1;
            flood.slowest_close = flood.slowest_close.max(after);
        }
    }
    flood
}

/// Finding 3a: `count` sockets each sending only a header that announces
/// `MAX_BODY` bytes (`04 FF FF FF`), before any handshake (see [`flood`]
/// for `pace`).
pub async fn header_flood(addr: SocketAddr, count: usize, pace: Duration, hold: Duration) -> Flood {
    flood(
        addr,
        count,
        Bytes::copy_from_slice(&header(kind::DATA, MAX_BODY)),
        pace,
        hold,
    )
    .await
}

/// Finding 3b: `count` sockets each announcing a data packet of
/// `announced` bytes and sending `sent` of them (after a handshake and
/// ack when `handshake`); then holding them until `hold` has passed (or
/// the server closes them).
pub async fn partial_bodies(
    addr: SocketAddr,
    count: usize,
    announced: usize,
    sent: usize,
    handshake: bool,
    hold: Duration,
) -> Flood {
    let mut flood = Flood::default();
    let mut head = header(kind::DATA, announced).to_vec();
    // A request message start, so the bytes are a plausible body.
    head.extend_from_slice(&request_message(1, "echo.echo.raw", 0, &[]));
    let mut bytes = head;
    bytes.resize(4 + sent.min(announced), b'x');
    let bytes = Bytes::from(bytes);
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut peer = if handshake {
                    Peer::handshaken(addr).await?
                } else {
                    Peer::tcp(addr).await?
                };
                let started = Instant::now();
                // The server may close before all is sent: that counts as
                // closed, below.
                let _ = peer.send_raw(&bytes).await;
                io::Result::Ok((peer, started))
            })
        })
        .collect();
    let mut peers = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(peer)) => peers.push(peer),
            _ => flood.failed += 1,
        }
    }
    flood.opened = peers.len();
    let hold_until = Instant::now() + hold;
    let waits: Vec<_> = peers
        .into_iter()
        .map(|(mut peer, started)| {
            tokio::spawn(async move {
                let left = hold_until.saturating_duration_since(Instant::now());
                peer.closed_within(left)
                    .await
                    .after()
                    .map(|_| started.elapsed())
            })
        })
        .collect();
    for wait in waits {
        if let Ok(Some(after)) = wait.await {
            flood.closed += 1;
            flood.slowest_close = flood.slowest_close.max(after);
        }
    }
    flood
}

/// How a [`stall_handshake`] connection behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Sends nothing at all.
    Silent,
    /// Never handshakes; sends a heartbeat every period.
    Heartbeats(Duration),
    /// Handshakes, never acks; sends a heartbeat every period.
    NoAck(Duration),
    /// Sends the handshake packet one byte per period.
    Slowloris(Duration),
    /// Over WebSocket: sends the HTTP upgrade request one byte per period.
    SlowUpgrade(Duration),
}

/// Finding 4: a connection that never completes the handshake, as `how`
/// says. Returns when the server closed it (time from connect), or
/// `Closed::Open` after `limit`.
pub async fn stall_handshake(addr: SocketAddr, how: Stall, limit: Duration) -> io::Result<Closed> {
    let mut peer = Peer::tcp(addr).await?;
    let started = Instant::now();
    let bytes: Vec<u8> = match how {
        Stall::Silent => Vec::new(),
        Stall::Heartbeats(_) => packet(kind::HEARTBEAT, &[]),
        Stall::NoAck(_) => {
            peer.handshake().await?;
            packet(kind::HEARTBEAT, &[])
        }
        Stall::Slowloris(_) => packet(kind::HANDSHAKE, HANDSHAKE),
        Stall::SlowUpgrade(_) => ws_upgrade_request(addr).into_bytes(),
    };
    let period = match how {
        Stall::Silent => limit,
        Stall::Heartbeats(period)
        | Stall::NoAck(period)
        | Stall::Slowloris(period)
        | Stall::SlowUpgrade(period) => period,
    };
    let one_byte = matches!(how, Stall::Slowloris(_) | Stall::SlowUpgrade(_));
    let mut next = 0;
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Ok(Closed::Open);
        }
        // Wait one period for the server to close it.
        match peer.closed_within(period.min(left)).await {
            Closed::Open => {}
            Closed::Eof(_) => return Ok(Closed::Eof(started.elapsed())),
            Closed::Reset(_) => return Ok(Closed::Reset(started.elapsed())),
        }
        let write = if one_byte {
            let byte = bytes.get(next..next + 1).unwrap_or_default();
            next += 1;
            peer.send_raw(byte).await
        } else {
            peer.send_raw(&bytes).await
        };
        if write.is_err() {
            return Ok(Closed::Reset(started.elapsed()));
        }
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

//! One connection: the Pitaya state machine and the TCP and WebSocket loops.
//!
//! Each connection is a single task owning its socket and buffers; nothing
//! on the hot path takes a lock or touches a channel. On TCP the only
//! per-request allocation is the route string the message decoder builds.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use pitaya_protocol::codec::{
    CodecError, HEADER_LEN, HandshakeRequest, MAX_PACKET_BODY, Message, MessageCodec, MessageType,
    Packet, PacketCodec, PacketType,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, Interval, MissedTickBehavior, timeout};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::debug;

/// A heartbeat packet.
const HEARTBEAT: &[u8] = &[PacketType::Heartbeat as u8, 0, 0, 0];
/// Initial size of a connection's read and write buffers.
const INITIAL_BUF: usize = 4 * 1024;
/// Largest read room: a read that fills the room doubles it up to this.
const MAX_READ_ROOM: usize = 64 * 1024;
/// Reading pauses while this many response bytes wait for the peer.
const MAX_PENDING_WRITE: usize = 256 * 1024;
/// Bound on the last flush before closing.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on the WebSocket upgrade request.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings and pre-encoded replies, shared read-only by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The accepting handshake response packet (header included).
    pub(crate) handshake_ok: Bytes,
    /// The refusing (code 400) handshake response packet.
    pub(crate) handshake_refused: Bytes,
    /// Heartbeat interval; `None` disables heartbeats and idle checks.
    pub(crate) heartbeat: Option<Duration>,
    /// Decodes requests, encodes responses.
    pub(crate) messages: MessageCodec,
}

/// Why a connection is being closed by the server.
#[derive(Debug)]
enum Close {
    /// The peer's bytes are not the Pitaya protocol.
    Codec(CodecError),
    /// The handshake was refused (the 400 reply is queued).
    Refused(CodecError),
    /// A data packet came before the handshake ack.
    DataBeforeAck,
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Codec(err) => write!(f, "protocol error: {err}"),
            Self::Refused(err) => write!(f, "handshake refused: {err}"),
            Self::DataBeforeAck => f.write_str("data packet before the handshake ack"),
        }
    }
}

impl From<CodecError> for Close {
    fn from(err: CodecError) -> Self {
        Self::Codec(err)
    }
}

/// The protocol state of one connection.
struct Session<'a> {
    /// Shared settings.
    shared: &'a Shared,
    /// Whether the handshake ack arrived (data is accepted only after it).
    acked: bool,
}

impl<'a> Session<'a> {
    /// A fresh connection, waiting for its handshake.
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            acked: false,
        }
    }

    /// Handles one packet from the peer, appending at most one reply packet
    /// to `out`. An error closes the connection (after flushing `out`).
    fn on_packet(&mut self, packet: Packet, out: &mut BytesMut) -> Result<(), Close> {
        match packet.kind {
            PacketType::Handshake => match HandshakeRequest::decode(&packet.body) {
                Ok(_) => out.extend_from_slice(&self.shared.handshake_ok),
                Err(err) => {
                    out.extend_from_slice(&self.shared.handshake_refused);
                    return Err(Close::Refused(err));
                }
            },
            // As in Pitaya, an ack is accepted whenever it comes.
            PacketType::HandshakeAck => self.acked = true,
            PacketType::Heartbeat | PacketType::Kick => {}
            PacketType::Data if !self.acked => return Err(Close::DataBeforeAck),
            PacketType::Data => {
                let message = self.shared.messages.decode(packet.body)?;
                // Pitaya never answers a request with id 0; notifies (and
                // stray responses/pushes) get no reply either.
                if message.kind == MessageType::Request && message.id != 0 {
                    let response = Message::response(message.id, message.body);
                    self.shared.messages.encode_packet(&response, out)?;
                }
            }
        }
        Ok(())
    }
}

/// A heartbeat ticker whose first tick is one interval from now.
fn heartbeat_ticker(period: Option<Duration>) -> Option<Interval> {
    period.map(|period| {
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    })
}

/// The next tick of `ticker`, or never if heartbeats are off.
async fn next_tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether a peer last heard from at `last_seen` has been silent too long.
fn idle_too_long(heartbeat: Option<Duration>, last_seen: Instant) -> bool {
    heartbeat.is_some_and(|period| last_seen.elapsed() > period * 2)
}

/// Serves one TCP connection until the peer leaves or misbehaves.
///
/// Reads whatever is available into one reusable buffer, handles every
/// complete packet in it, encodes all replies into one write buffer and
/// writes that with a single call. Reading and writing are interleaved in
/// one `select!`, so a peer that pipelines without reading cannot deadlock
/// the connection; reading pauses while too much output is pending.
pub(crate) async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut session = Session::new(&shared);
    let mut packets = PacketCodec::new();
    let mut rbuf = BytesMut::with_capacity(INITIAL_BUF);
    let mut wbuf = BytesMut::with_capacity(INITIAL_BUF);
    let mut ticker = heartbeat_ticker(shared.heartbeat);
    let mut last_seen = Instant::now();
    let (mut reader, mut writer) = stream.split();
    // Free space wanted for the next read; grows while reads fill it.
    let mut room = INITIAL_BUF;

    let close: Option<Close> = loop {
        if rbuf.capacity() - rbuf.len() < room / 2 {
            // Reuses the same allocation once earlier packets are dropped.
            rbuf.reserve(room);
        }
        let spare = rbuf.capacity() - rbuf.len();
        tokio::select! {
            biased;
            () = next_tick(&mut ticker) => {
                if idle_too_long(shared.heartbeat, last_seen) {
                    debug!(%peer, "closing idle connection");
                    break None;
                }
                wbuf.extend_from_slice(HEARTBEAT);
            }
            written = writer.write_buf(&mut wbuf), if !wbuf.is_empty() => match written {
                Ok(0) => break None,
                Ok(_) => {}
                Err(err) => {
                    debug!(%peer, %err, "write failed");
                    return;
                }
            },
            read = reader.read_buf(&mut rbuf), if wbuf.len() < MAX_PENDING_WRITE => match read {
                Ok(0) => break None,
                Ok(n) => {
                    if n == spare && room < MAX_READ_ROOM {
                        room *= 2;
                    }
                    last_seen = Instant::now();
                    if let Err(close) = drain_packets(&mut session, &mut packets, &mut rbuf, &mut wbuf) {
                        break Some(close);
                    }
                }
                Err(err) => {
                    debug!(%peer, %err, "read failed");
                    return;
                }
            },
        }
    };

    if let Some(close) = close {
        debug!(%peer, "closing: {close}");
        // Best effort: deliver replies already encoded (e.g. the refusal).
        if !wbuf.is_empty() {
            let _ = timeout(CLOSE_TIMEOUT, writer.write_all(&wbuf)).await;
        }
    }
}

/// Handles every complete packet in `rbuf`, appending replies to `wbuf`.
fn drain_packets(
    session: &mut Session<'_>,
    packets: &mut PacketCodec,
    rbuf: &mut BytesMut,
    wbuf: &mut BytesMut,
) -> Result<(), Close> {
    while let Some(packet) = packets.decode(rbuf)? {
        session.on_packet(packet, wbuf)?;
    }
    Ok(())
}

/// Serves one WebSocket connection: one packet per binary message each way.
///
/// Replies are queued with `feed` and flushed once after every message
/// already received has been handled. Unlike the TCP loop, reading waits
/// for that flush, so a peer must read while it pipelines (as clients do).
pub(crate) async fn serve_ws(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    // A small read buffer: tungstenite zero-fills it on every read.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(HEADER_LEN + MAX_PACKET_BODY))
        .max_frame_size(Some(HEADER_LEN + MAX_PACKET_BODY));
    let mut ws = match timeout(
        UPGRADE_TIMEOUT,
        tokio_tungstenite::accept_async_with_config(stream, Some(config)),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            debug!(%peer, %err, "websocket upgrade failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "websocket upgrade timed out");
            return;
        }
    };

    let mut session = Session::new(&shared);
    let mut wbuf = BytesMut::with_capacity(INITIAL_BUF);
    let mut ticker = heartbeat_ticker(shared.heartbeat);
    let mut last_seen = Instant::now();

    let close: Option<Close> = 'conn: loop {
        let first = tokio::select! {
            biased;
            () = next_tick(&mut ticker) => {
                if idle_too_long(shared.heartbeat, last_seen) {
                    debug!(%peer, "closing idle connection");
                    break None;
                }
                if let Err(err) = ws.send(WsMessage::Binary(Bytes::from_static(HEARTBEAT))).await {
                    debug!(%peer, %err, "write failed");
                    return;
                }
                continue;
            }
            message = ws.next() => message,
        };
        // Handle the message that woke us and every one already buffered.
        let mut item = Some(first);
        while let Some(message) = item {
            let frame = match message {
                None => break 'conn None,
                Some(Err(err)) => {
                    debug!(%peer, %err, "websocket read failed");
                    return;
                }
                Some(Ok(WsMessage::Binary(frame))) => Some(frame),
                // Pitaya reads any data message as a packet, text included.
                Some(Ok(WsMessage::Text(text))) => Some(Bytes::from(text)),
                Some(Ok(WsMessage::Close(_))) => {
                    // tungstenite queued the close reply; send it.
                    let _ = timeout(CLOSE_TIMEOUT, ws.flush()).await;
                    return;
                }
                // Pings are answered by tungstenite on the next flush.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => None,
            };
            last_seen = Instant::now();
            if let Some(frame) = frame {
                let handled = Packet::decode_exact(frame, MAX_PACKET_BODY)
                    .map_err(Close::from)
                    .and_then(|packet| session.on_packet(packet, &mut wbuf));
                if !wbuf.is_empty() {
                    let reply = WsMessage::Binary(wbuf.split().freeze());
                    if let Err(err) = ws.feed(reply).await {
                        debug!(%peer, %err, "write failed");
                        return;
                    }
                }
                if let Err(close) = handled {
                    break 'conn Some(close);
                }
            }
            // `None` when nothing more is buffered: flush below.
            item = ws.next().now_or_never();
        }
        if let Err(err) = ws.flush().await {
            debug!(%peer, %err, "write failed");
            return;
        }
    };

    if let Some(close) = &close {
        debug!(%peer, "closing: {close}");
    }
    // Flushes queued replies (e.g. the refusal), then sends a close frame.
    let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

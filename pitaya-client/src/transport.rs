//! Packet transports: a connection that sends and receives whole Pitaya
//! [`Packet`]s over TCP, TLS, WebSocket or WebSocket over TLS.
//!
//! This is the layer under [`Client`](crate::Client); load tools that want
//! to drive the protocol themselves use it directly.
//!
//! ```no_run
//! # async fn run() -> pitaya_client::Result<()> {
//! use pitaya_client::transport::{self, ConnectOptions};
//! use pitaya_protocol::codec::HandshakeRequest;
//!
//! let endpoint = "tcp://127.0.0.1:3250".parse()?;
//! let (mut writer, mut reader) = transport::connect(&endpoint, &ConnectOptions::default()).await?;
//! let response = transport::handshake(&mut writer, &mut reader, &HandshakeRequest::default()).await?;
//! println!("heartbeat every {:?}", response.sys.heartbeat);
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use pitaya_protocol::codec::{
    HEADER_LEN, HandshakeRequest, HandshakeResponse, MAX_PACKET_BODY, Packet, PacketCodec,
    PacketType,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::codec::FramedRead;

use crate::{Endpoint, Error, Result, TlsConfig};

/// Anything a transport can run over.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type BoxedIo = Box<dyn Io>;

/// WebSocket read buffer size.
const WS_READ_BUFFER: usize = 8 * 1024;
type WsStream = WebSocketStream<BoxedIo>;

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// TLS settings for `tls://` and `wss://` (default: [`TlsConfig::insecure`]).
    pub tls: Option<TlsConfig>,
    /// Bound on the whole connect (TCP, TLS and WebSocket upgrade).
    pub connect_timeout: Duration,
    /// Largest packet body accepted from the server.
    pub max_body_len: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            tls: None,
            connect_timeout: Duration::from_secs(5),
            max_body_len: MAX_PACKET_BODY,
        }
    }
}

/// Sends packets. Feed several, then flush once, to batch writes.
pub struct PacketWriter {
    inner: WriterInner,
}

enum WriterInner {
    Stream {
        io: Box<dyn AsyncWrite + Send + Unpin>,
        buffer: BytesMut,
    },
    WebSocket(SplitSink<WsStream, WsMessage>),
}

/// Receives packets.
pub struct PacketReader {
    inner: ReaderInner,
}

enum ReaderInner {
    Stream(FramedRead<Box<dyn AsyncRead + Send + Unpin>, PacketCodec>),
    WebSocket {
        stream: SplitStream<WsStream>,
        max_body_len: usize,
    },
}

/// Opens a transport to `endpoint`.
pub async fn connect(
    endpoint: &Endpoint,
    options: &ConnectOptions,
) -> Result<(PacketWriter, PacketReader)> {
    tokio::time::timeout(options.connect_timeout, connect_inner(endpoint, options))
        .await
        .map_err(|_| Error::ConnectTimeout {
            endpoint: endpoint.to_string(),
            timeout: options.connect_timeout,
        })?
}

async fn connect_inner(
    endpoint: &Endpoint,
    options: &ConnectOptions,
) -> Result<(PacketWriter, PacketReader)> {
    let tcp = TcpStream::connect(endpoint.host_port()).await?;
    tcp.set_nodelay(true)?;
    let tls = || options.tls.clone().unwrap_or_else(TlsConfig::insecure);
    match endpoint {
        Endpoint::Tcp { .. } => {
            let (read, write) = tcp.into_split();
            Ok(stream_pair(
                Box::new(read),
                Box::new(write),
                options.max_body_len,
            ))
        }
        Endpoint::Tls { .. } => {
            let stream = tls().connect(endpoint.host(), tcp).await?;
            let (read, write) = tokio::io::split(stream);
            Ok(stream_pair(
                Box::new(read),
                Box::new(write),
                options.max_body_len,
            ))
        }
        Endpoint::Ws { .. } => websocket_pair(endpoint, Box::new(tcp), options).await,
        Endpoint::Wss { .. } => {
            let stream = tls().connect(endpoint.host(), tcp).await?;
            websocket_pair(endpoint, Box::new(stream), options).await
        }
    }
}

fn stream_pair(
    read: Box<dyn AsyncRead + Send + Unpin>,
    write: Box<dyn AsyncWrite + Send + Unpin>,
    max_body_len: usize,
) -> (PacketWriter, PacketReader) {
    let writer = PacketWriter {
        inner: WriterInner::Stream {
            io: write,
            buffer: BytesMut::new(),
        },
    };
    let reader = PacketReader {
        inner: ReaderInner::Stream(FramedRead::new(
            read,
            PacketCodec::with_max_body_len(max_body_len),
        )),
    };
    (writer, reader)
}

async fn websocket_pair(
    endpoint: &Endpoint,
    io: BoxedIo,
    options: &ConnectOptions,
) -> Result<(PacketWriter, PacketReader)> {
    let url = endpoint
        .url()
        .ok_or_else(|| Error::InvalidEndpoint(endpoint.to_string()))?;
    // tungstenite zero-fills its read buffer on every read: a small buffer
    // halves the CPU cost per message compared with the 128 KiB default.
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(options.max_body_len + HEADER_LEN))
        .max_frame_size(Some(options.max_body_len + HEADER_LEN));
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(url, io, Some(config)).await?;
    let (sink, stream) = ws.split();
    Ok((
        PacketWriter {
            inner: WriterInner::WebSocket(sink),
        },
        PacketReader {
            inner: ReaderInner::WebSocket {
                stream,
                max_body_len: options.max_body_len,
            },
        },
    ))
}

impl PacketWriter {
    /// Queues `packet` without writing it yet.
    pub async fn feed(&mut self, packet: &Packet) -> Result<()> {
        match &mut self.inner {
            WriterInner::Stream { buffer, .. } => Ok(packet.encode(buffer)?),
            WriterInner::WebSocket(sink) => {
                sink.feed(WsMessage::Binary(packet.to_bytes()?)).await?;
                Ok(())
            }
        }
    }

    /// Queues an already encoded packet (header included) without writing
    /// it yet. `frame` must hold exactly one packet for WebSocket.
    pub async fn feed_encoded(&mut self, frame: Bytes) -> Result<()> {
        match &mut self.inner {
            WriterInner::Stream { buffer, .. } => {
                buffer.extend_from_slice(&frame);
                Ok(())
            }
            WriterInner::WebSocket(sink) => {
                sink.feed(WsMessage::Binary(frame)).await?;
                Ok(())
            }
        }
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        match &mut self.inner {
            WriterInner::Stream { io, buffer } => {
                if !buffer.is_empty() {
                    io.write_all(buffer).await?;
                    buffer.clear();
                }
                io.flush().await?;
                Ok(())
            }
            WriterInner::WebSocket(sink) => Ok(sink.flush().await?),
        }
    }

    /// Sends `packet` now.
    pub async fn send(&mut self, packet: &Packet) -> Result<()> {
        self.feed(packet).await?;
        self.flush().await
    }

    /// Closes the write side (TCP FIN, or a WebSocket close frame).
    pub async fn close(&mut self) -> Result<()> {
        match &mut self.inner {
            WriterInner::Stream { io, .. } => Ok(io.shutdown().await?),
            WriterInner::WebSocket(sink) => Ok(sink.close().await?),
        }
    }
}

impl PacketReader {
    /// The next packet; `None` once the server closed the connection.
    pub async fn next(&mut self) -> Option<Result<Packet>> {
        match &mut self.inner {
            ReaderInner::Stream(framed) => {
                framed.next().await.map(|item| item.map_err(Error::from))
            }
            ReaderInner::WebSocket {
                stream,
                max_body_len,
            } => loop {
                let message = match stream.next().await? {
                    Ok(message) => message,
                    Err(err) => return Some(Err(err.into())),
                };
                match message {
                    WsMessage::Binary(frame) => {
                        return Some(
                            Packet::decode_exact(frame, *max_body_len).map_err(Error::from),
                        );
                    }
                    WsMessage::Close(_) => return None,
                    WsMessage::Text(_) => {
                        return Some(Err(Error::Unexpected("text websocket frame".into())));
                    }
                    WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
                }
            },
        }
    }
}

/// Runs the client side of the handshake: sends `request`, waits for the
/// server's response (skipping heartbeats the server may send first),
/// refuses a non-200 code, then sends the handshake ack.
pub async fn handshake(
    writer: &mut PacketWriter,
    reader: &mut PacketReader,
    request: &HandshakeRequest,
) -> Result<HandshakeResponse> {
    writer
        .send(&Packet::new(PacketType::Handshake, request.encode()))
        .await?;
    loop {
        let packet = reader.next().await.ok_or(Error::Closed)??;
        match packet.kind {
            PacketType::Handshake => {
                let response = HandshakeResponse::decode(&packet.body)?;
                if !response.is_ok() {
                    return Err(Error::HandshakeRefused(response.code));
                }
                writer.send(&Packet::handshake_ack()).await?;
                return Ok(response);
            }
            PacketType::Heartbeat => {}
            PacketType::Kick => return Err(Error::Kicked),
            other => {
                return Err(Error::Unexpected(format!(
                    "{other:?} packet before the handshake response"
                )));
            }
        }
    }
}

//! A scripted fake Pitaya server for the client and CLI tests, written with
//! the pitaya-protocol codec: each test accepts a connection and plays its
//! part packet by packet.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use pitaya_client::TlsConfig;
use pitaya_protocol::codec::{
    HandshakeResponse, Message, MessageCodec, Packet, PacketCodec, PacketType, RouteDictionary,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::codec::Framed;

/// Upper bound on any test: nothing here should come close.
pub const BOUND: Duration = Duration::from_secs(10);

/// Runs `future`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("test took too long")
}

/// Which transport the fake server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A listening fake server.
pub struct TestServer {
    listener: TcpListener,
    transport: Transport,
    acceptor: Option<TlsAcceptor>,
    ca_pem: String,
}

impl TestServer {
    pub async fn bind(transport: Transport) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let ca_pem = certified.cert.pem();
        let acceptor = matches!(transport, Transport::Tls | Transport::Wss).then(|| {
            let cert = CertificateDer::from(certified.cert.der().to_vec());
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
            TlsAcceptor::from(Arc::new(config))
        });
        Self {
            listener,
            transport,
            acceptor,
            ca_pem,
        }
    }

    pub async fn tcp() -> Self {
        Self::bind(Transport::Tcp).await
    }

    /// The endpoint a client connects to.
    pub fn endpoint(&self) -> String {
        let addr = self.listener.local_addr().unwrap();
        match self.transport {
            Transport::Tcp => format!("tcp://{addr}"),
            Transport::Tls => format!("tls://{addr}"),
            Transport::Ws => format!("ws://{addr}/pitaya"),
            Transport::Wss => format!("wss://{addr}/pitaya"),
        }
    }

    /// A TLS configuration trusting this server's self-signed certificate.
    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig::from_ca_pem(self.ca_pem.as_bytes()).unwrap()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Accepts one client (and runs the TLS and WebSocket handshakes).
    pub async fn accept(&self) -> ServerConn {
        self.try_accept().await.expect("accepting a client")
    }

    /// Accepts one client; `None` when its TLS or WebSocket handshake fails.
    pub async fn try_accept(&self) -> Option<ServerConn> {
        let (tcp, _) = self.listener.accept().await.ok()?;
        tcp.set_nodelay(true).ok()?;
        let io: Box<dyn Io> = match &self.acceptor {
            Some(acceptor) => Box::new(acceptor.accept(tcp).await.ok()?),
            None => Box::new(tcp),
        };
        let io = match self.transport {
            Transport::Tcp | Transport::Tls => {
                ConnIo::Stream(Box::new(Framed::new(io, PacketCodec::new())))
            }
            Transport::Ws | Transport::Wss => {
                ConnIo::Ws(Box::new(tokio_tungstenite::accept_async(io).await.ok()?))
            }
        };
        Some(ServerConn {
            io,
            codec: MessageCodec::default().with_compression(false),
        })
    }
}

enum ConnIo {
    Stream(Box<Framed<Box<dyn Io>, PacketCodec>>),
    Ws(Box<WebSocketStream<Box<dyn Io>>>),
}

/// The accepted end of a connection.
pub struct ServerConn {
    io: ConnIo,
    /// Encodes what the server sends and decodes what it receives.
    pub codec: MessageCodec,
}

/// A JSON handshake response with no heartbeat and no dictionary.
pub fn ok_json() -> HandshakeResponse {
    HandshakeResponse::ok(Duration::ZERO, BTreeMap::new(), "json")
}

impl ServerConn {
    /// The next packet; `None` once the client closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        match &mut self.io {
            ConnIo::Stream(framed) => framed.next().await.and_then(Result::ok),
            ConnIo::Ws(ws) => loop {
                match ws.next().await? {
                    Ok(WsMessage::Binary(frame)) => {
                        return Some(Packet::decode_exact(frame, usize::MAX).unwrap());
                    }
                    Ok(WsMessage::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            },
        }
    }

    /// Sends `packet` now.
    pub async fn send(&mut self, packet: Packet) {
        // The client may already be gone; tests check what they need.
        let _ = match &mut self.io {
            ConnIo::Stream(framed) => framed.send(packet).await.map_err(|err| err.to_string()),
            ConnIo::Ws(ws) => ws
                .send(WsMessage::Binary(packet.to_bytes().unwrap()))
                .await
                .map_err(|err| err.to_string()),
        };
    }

    /// Receives the handshake, answers `response`, and (when it accepts)
    /// waits for the ack. Returns the raw handshake body.
    pub async fn handshake(&mut self, response: &HandshakeResponse) -> Bytes {
        let packet = self.recv().await.expect("handshake");
        assert_eq!(packet.kind, PacketType::Handshake);
        if !response.sys.dict.is_empty() {
            let dict =
                RouteDictionary::new(response.sys.dict.iter().map(|(r, &c)| (r.as_str(), c)))
                    .unwrap();
            self.codec = self.codec.clone().with_dictionary(dict);
        }
        self.send(Packet::new(PacketType::Handshake, response.encode(false)))
            .await;
        if response.is_ok() {
            let ack = self.recv().await.expect("handshake ack");
            assert_eq!(ack.kind, PacketType::HandshakeAck);
        }
        packet.body
    }

    /// Runs the default JSON handshake.
    pub async fn handshake_json(&mut self) -> Bytes {
        self.handshake(&ok_json()).await
    }

    /// The body of the next data packet, skipping heartbeats; `None` when
    /// the client closed the connection.
    pub async fn recv_data(&mut self) -> Option<Bytes> {
        loop {
            let packet = self.recv().await?;
            match packet.kind {
                PacketType::Data => return Some(packet.body),
                PacketType::Heartbeat => {}
                other => panic!("unexpected {other:?} packet"),
            }
        }
    }

    /// The next message, skipping heartbeats.
    pub async fn recv_message(&mut self) -> Message {
        let body = self.recv_data().await.expect("a message");
        self.codec.decode(body).unwrap()
    }

    /// Encodes and sends `message`.
    pub async fn send_message(&mut self, message: &Message) {
        let mut frame = BytesMut::new();
        self.codec.encode_packet(message, &mut frame).unwrap();
        let packet = Packet::decode_exact(frame.freeze(), usize::MAX).unwrap();
        self.send(packet).await;
    }

    /// Answers request `id` with `body`.
    pub async fn reply(&mut self, id: u64, body: impl Into<Bytes>) {
        self.send_message(&Message::response(id, body)).await;
    }

    /// Waits until the client closed the connection, skipping anything it
    /// still sends.
    pub async fn wait_closed(&mut self) {
        while self.recv().await.is_some() {}
    }
}

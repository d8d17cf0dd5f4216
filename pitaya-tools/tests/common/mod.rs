//! A scripted fake Pitaya server over TCP for the `pitaya-cli` tests,
//! written with the pitaya-protocol codec: each test accepts a connection
//! and plays its part packet by packet.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use pitaya_protocol::codec::{
    HandshakeResponse, Message, MessageCodec, Packet, PacketCodec, PacketType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Upper bound on any test: nothing here should come close.
pub const BOUND: Duration = Duration::from_secs(10);

/// Runs `future`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("test took too long")
}

/// A listening fake server.
pub struct TestServer {
    listener: TcpListener,
}

impl TestServer {
    /// Listens on a free loopback port.
    pub async fn tcp() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self { listener }
    }

    /// The endpoint a client connects to.
    pub fn endpoint(&self) -> String {
        format!("tcp://{}", self.listener.local_addr().unwrap())
    }

    /// Accepts one client.
    pub async fn accept(&self) -> ServerConn {
        let (tcp, _) = self.listener.accept().await.expect("accepting a client");
        tcp.set_nodelay(true).unwrap();
        ServerConn {
            io: Framed::new(tcp, PacketCodec::new()),
            codec: MessageCodec::default().with_compression(false),
        }
    }
}

/// The accepted end of a connection.
pub struct ServerConn {
    io: Framed<TcpStream, PacketCodec>,
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
        self.io.next().await.and_then(Result::ok)
    }

    /// Sends `packet` now.
    pub async fn send(&mut self, packet: Packet) {
        // The client may already be gone; tests check what they need.
        let _ = self.io.send(packet).await;
    }

    /// Receives the handshake, answers `response`, and (when it accepts)
    /// waits for the ack. Returns the raw handshake body.
    pub async fn handshake(&mut self, response: &HandshakeResponse) -> Bytes {
        let packet = self.recv().await.expect("handshake");
        assert_eq!(packet.kind, PacketType::Handshake);
        self.send(Packet::new(PacketType::Handshake, response.encode(false)))
            .await;
        if response.is_ok() {
            let ack = self.recv().await.expect("handshake ack");
            assert_eq!(ack.kind, PacketType::HandshakeAck);
        }
        packet.body
    }

    /// The next message, skipping heartbeats.
    pub async fn recv_message(&mut self) -> Message {
        loop {
            let packet = self.recv().await.expect("a message");
            match packet.kind {
                PacketType::Data => return self.codec.decode(packet.body).unwrap(),
                PacketType::Heartbeat => {}
                other => panic!("unexpected {other:?} packet"),
            }
        }
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

//! The Pitaya client wire protocol, byte for byte.
//!
//! Layering: a TCP/TLS stream or a WebSocket connection carries
//! [`Packet`]s; a [`PacketType::Data`] packet carries one [`Message`];
//! [`handshake`] defines the JSON bodies of the handshake packets.
//! Nothing here knows about sockets.

pub mod compression;
mod error;
pub mod handshake;
pub mod message;
pub mod packet;
mod route_dictionary;
pub mod varint;

pub use error::CodecError;
pub use handshake::{ClientSys, HandshakeRequest, HandshakeResponse, ServerSys};
pub use message::{
    DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_INFLATE_RATIO, DEFAULT_MAX_INFLATED_LEN, Message,
    MessageCodec, MessageType,
};
pub use packet::{HEADER_LEN, MAX_PACKET_BODY, Packet, PacketCodec, PacketType};
pub use route_dictionary::{RouteDictionary, RouteDictionaryError};

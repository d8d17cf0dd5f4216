//! Core of pitaya-rs: the Pitaya wire codec, serializers and error payloads.
//!
//! Everything here is byte-compatible with Go Pitaya v3 and its clients
//! (libpitaya, pitaya-cli, pomelo-family clients):
//!
//! - [`codec::packet`]: the 4-byte-header packets (handshake, ack, heartbeat,
//!   data, kick) and a [`tokio_util::codec`] decoder/encoder,
//! - [`codec::message`]: the messages carried by data packets (request,
//!   notify, response, push), with route dictionaries and zlib bodies,
//! - [`codec::handshake`]: the JSON handshake request and response,
//! - [`serializer`]: JSON (Pitaya's default) and MessagePack payloads,
//! - [`error`]: Pitaya's `{"code","msg","metadata"}` error payload and codes.
//!
//! ```
//! use bytes::BytesMut;
//! use pitaya_core::codec::{Message, MessageCodec, Packet, PacketType};
//!
//! let codec = MessageCodec::default();
//! let request = Message::request(1, "room.room.join", &br#"{"name":"a"}"#[..]);
//! let mut wire = BytesMut::new();
//! codec.encode_packet(&request, &mut wire).unwrap();
//! assert_eq!(&wire[..5], &[0x04, 0x00, 0x00, 0x1d, 0x00]);
//!
//! let packet = Packet::decode_exact(wire.freeze(), pitaya_core::codec::MAX_PACKET_BODY).unwrap();
//! assert_eq!(packet.kind, PacketType::Data);
//! assert_eq!(codec.decode(packet.body).unwrap(), request);
//! ```
#![deny(missing_docs)]

pub mod acceptor;
mod agent;
pub mod app;
pub mod cluster;
mod clustered;
pub mod codec;
mod conn_gate;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod group;
pub mod handler;
mod heavy;
pub mod module;
pub mod pipeline;
pub mod protos;
pub mod remote;
pub mod serializer;
pub mod session;
pub mod timer;

pub use context::Context;
pub use error::PitayaError;
/// The protobuf crate user RPC messages derive from (see
/// [`remote::RemoteMessage`]).
pub use prost;
pub use serializer::{Serializer, SerializerError, SerializerKind};
pub use session::Session;

//! The Pitaya wire protocol, byte-compatible with Go Pitaya v3 and its
//! clients (libpitaya, pitaya-cli, pomelo-family clients), with no runtime
//! attached: what a server, a client, a proxy or a test tool shares.
//!
//! - [`codec::packet`]: the 4-byte-header packets (handshake, ack,
//!   heartbeat, data, kick) and a streaming decoder (a `tokio_util` codec
//!   with the `tokio-codec` feature),
//! - [`codec::message`]: the messages carried by data packets (request,
//!   notify, response, push), with route dictionaries and zlib bodies,
//! - [`codec::handshake`]: the JSON handshake request and response,
//! - [`serializer`]: JSON (Pitaya's default) and MessagePack payloads,
//! - [`error`]: Pitaya's `{"code","msg","metadata"}` error payload and codes,
//! - [`protos`]: the protobuf envelopes servers exchange over NATS,
//! - [`server_info`]: a server's identity as Go writes it to etcd,
//! - [`go_duration`]: Go's `time.Duration` text form (`"1m30s"`).
//!
//! ```
//! use bytes::BytesMut;
//! use pitaya_protocol::codec::{Message, MessageCodec, Packet, PacketCodec, PacketType};
//!
//! let codec = MessageCodec::default();
//! let request = Message::request(1, "room.room.join", &br#"{"name":"a"}"#[..]);
//! let mut wire = BytesMut::new();
//! codec.encode_packet(&request, &mut wire).unwrap();
//! assert_eq!(&wire[..5], &[0x04, 0x00, 0x00, 0x1d, 0x00]);
//!
//! // A stream decoder, as a TCP connection would feed it.
//! let packet = PacketCodec::new().decode(&mut wire).unwrap().unwrap();
//! assert_eq!(packet.kind, PacketType::Data);
//! assert_eq!(codec.decode(packet.body).unwrap(), request);
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod error;
pub mod go_duration;
pub mod protos;
pub mod serializer;
pub mod server_info;

pub use error::PitayaError;
pub use serializer::{Serializer, SerializerError, SerializerKind};

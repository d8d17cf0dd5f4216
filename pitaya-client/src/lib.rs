//! Rust client for Pitaya servers (Go Pitaya and pitaya-rs alike).
//!
//! - [`transport`]: whole packets over TCP, TLS, WebSocket and WebSocket
//!   over TLS, plus the handshake,
//! - [`Client`]: requests with timeouts, notifies, pushes, kicks, automatic
//!   heartbeats, JSON, MessagePack or protobuf (prost messages, through the
//!   re-exported [`prost`]), route compression.
//!
//! The `pitaya-cli` REPL and the `pitaya-bench` load generator are built on
//! this crate; they live in the `pitaya-tools` crate, so a library user
//! compiles none of their dependencies.
#![deny(missing_docs)]

mod client;
mod endpoint;
mod error;
pub mod tls;
pub mod transport;

pub use client::{
    Client, ClientBuilder, DEFAULT_EVENT_BUFFER, DEFAULT_REQUEST_TIMEOUT, Event, Events,
    IntoEndpoint, default_handshake,
};
pub use endpoint::Endpoint;
pub use error::{Error, Result};
/// The prost version the protobuf API ([`Client::request_message`],
/// [`Client::decode_message`]) takes messages of; derive with
/// `#[derive(prost::Message)]` and `#[prost(prost_path = "::pitaya_client::prost")]`
/// to need no prost dependency of your own.
pub use pitaya_protocol::protos::prost;
pub use pitaya_protocol::{PitayaError, SerializerKind};
pub use tls::TlsConfig;

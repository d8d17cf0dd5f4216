//! pitaya-rs: a game-server framework wire-compatible with Pitaya.
//!
//! This facade re-exports the workspace crates; depend on it alone.
#![deny(missing_docs)]

pub use pitaya_core as core;
pub use pitaya_core::app::{App, AppHandle};
pub use pitaya_core::{Context, PitayaError, Serializer, SerializerKind, Session};
pub use pitaya_core::{
    acceptor, app, codec, dispatch, error, group, handler, module, pipeline, protos, remote,
    serializer, session, timer,
};

#[cfg(feature = "acceptors")]
pub use pitaya_acceptors as acceptors;
// Feature `cluster` (memory + etcd + NATS), or part of it: `cluster-memory`,
// `cluster-etcd`, `cluster-nats`.
#[cfg(feature = "cluster-memory")]
pub use pitaya_cluster as cluster;
#[cfg(feature = "macros")]
pub use pitaya_macros::{component, handler, remote};

/// Raw payload bytes, for handlers that take or return the body unparsed.
pub use bytes::Bytes;
/// The protobuf crate of `#[remote]` arguments and replies; derive
/// `prost::Message` with this same version (add `prost` to your
/// `Cargo.toml`).
pub use pitaya_core::prost;

/// The names most programs need.
pub mod prelude {
    pub use pitaya_core::app::{App, AppHandle};
    pub use pitaya_core::codec::{Message, MessageCodec, Packet, PacketType, RouteDictionary};
    pub use pitaya_core::error::codes;
    pub use pitaya_core::{Context, PitayaError, Serializer, SerializerKind, Session};
    #[cfg(feature = "macros")]
    pub use pitaya_macros::{component, handler, remote};
}

/// What macro-generated code names. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use pitaya_core::handler::{
        Component, FromRemoteRequest, FromRequest, HandlerFuture, HandlerKind, HandlerMeta,
        HandlerResult, Request, RouteEntry,
    };
    pub use pitaya_core::remote::{RemoteClient, Target};
    pub use pitaya_core::{Context, PitayaError, Session};
    pub use serde;
    pub use std::boxed::Box;
    pub use std::clone::Clone;
    pub use std::convert::Into;
    pub use std::fmt::Debug;
    pub use std::option::Option::{self, None, Some};
    pub use std::result::Result::{self, Err, Ok};
    pub use std::sync::Arc;
}

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

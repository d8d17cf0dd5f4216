//! The runtime of pitaya-rs: the [`App`](app::App) and its builder, the
//! per-connection agent, sessions, dispatch to the handlers the macros
//! generate, pipelines, groups, timers, modules and the cluster wiring
//! (forwarding to other server types, remotes, cross-server pushes, kicks
//! and binds).
//!
//! The wire protocol itself (packets, messages, handshake, serializers,
//! error payloads, protobuf envelopes) is the `pitaya-protocol` crate,
//! re-exported here as [`codec`], [`serializer`], [`error`] and [`protos`].
//! Game code usually depends on the `pitaya` facade instead of this crate.
//!
//! ```
//! use std::time::Duration;
//! use pitaya_core::app::App;
//!
//! let app = App::builder("chat")
//!     .heartbeat(Duration::from_secs(10))
//!     .build()
//!     .unwrap();
//! assert_eq!(app.handle().server_type(), "chat");
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod acceptor;
mod agent;
pub mod app;
pub mod cluster;
mod clustered;
mod config;
mod conn_gate;
pub mod context;
pub mod dispatch;
mod dispatcher;
pub mod group;
pub mod handle;
pub mod handler;
mod heavy;
mod inbound;
pub mod module;
mod nuid;
pub mod pipeline;
pub mod push;
pub mod remote;
mod server;
pub mod session;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod timer;

pub use pitaya_protocol::{codec, error, protos, serializer};

pub use context::Context;
pub use error::PitayaError;
/// The protobuf crate user RPC messages derive from (see
/// [`remote::RemoteMessage`]).
pub use prost;
pub use serializer::{Serializer, SerializerError, SerializerKind};
pub use session::Session;

//! pitaya-rs: a game-server framework wire-compatible with Pitaya.
//!
//! This facade re-exports the workspace crates; depend on it alone.
#![deny(missing_docs)]

pub use pitaya_core as core;
pub use pitaya_core::{PitayaError, Serializer, SerializerKind};
pub use pitaya_core::{codec, error, serializer};

#[cfg(feature = "acceptors")]
pub use pitaya_acceptors as acceptors;

#[cfg(feature = "cluster")]
pub use pitaya_cluster as cluster;

/// The names most programs need.
pub mod prelude {
    pub use pitaya_core::codec::{Message, MessageCodec, Packet, PacketType, RouteDictionary};
    pub use pitaya_core::error::codes;
    pub use pitaya_core::{PitayaError, Serializer, SerializerKind};
}

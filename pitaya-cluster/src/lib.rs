//! Cluster plane of pitaya-rs: service discovery on etcd and RPC over NATS,
//! wire-compatible with Go Pitaya v3, plus in-process implementations of the
//! same traits for tests and one-process clusters.
//!
//! | role (trait in [`pitaya_core::cluster`]) | networked | in process |
//! |---|---|---|
//! | [`ServiceDiscovery`] | [`EtcdDiscovery`] (feature `etcd`) | [`MemoryDiscovery`] |
//! | [`RpcClient`] + [`RpcServer`] | [`NatsRpc`] (feature `nats`) | [`MemoryRpc`] |
//! | [`GroupService`] | [`EtcdGroups`] (feature `etcd`) | [`MemoryGroups`] (the default) |
//!
//! Both features are on by default. The in-process implementations are
//! always there: `default-features = false` builds neither etcd-client (nor
//! its gRPC stack, whose build script needs `protoc`) nor async-nats, and
//! `features = ["nats"]` alone is RPC over NATS without etcd-client.
//!
//! What goes on the wire (all of it Go Pitaya's):
//!
//! - etcd: key `<prefix>servers/<type>/<id>` (prefix `pitaya/` by default),
//!   value [`ServerInfo::to_json`], under a lease kept alive by the server;
//!   groups: `<prefix>groups/<name>` and `<prefix>groups/<name>/uids/<uid>`,
//!   empty values, under the group's lease when it has a TTL,
//! - NATS: [`subjects`], with [`pitaya_core::protos`] messages as payloads.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pitaya_cluster::Error> {
//! use pitaya_cluster::{MemoryCluster, MemoryDiscovery, ServerInfo, ServiceDiscovery};
//!
//! let cluster = MemoryCluster::new();
//! let front = MemoryDiscovery::new(&cluster);
//! let room = MemoryDiscovery::new(&cluster);
//! front.start(ServerInfo::new("front-1", "connector", true)).await?;
//! room.start(ServerInfo::new("room-1", "room", false)).await?;
//! assert_eq!(front.servers_of_type("room")[0].id, "room-1");
//! room.stop().await?;
//! assert!(front.servers_of_type("room").is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! [`GroupService`]: pitaya_core::group::GroupService
//! [`MemoryGroups`]: pitaya_core::group::MemoryGroups
#![cfg_attr(feature = "etcd", doc = "[`EtcdDiscovery`]: crate::EtcdDiscovery")]
#![cfg_attr(
    not(feature = "etcd"),
    doc = "[`EtcdDiscovery`]: https://docs.rs/pitaya-cluster/latest/pitaya_cluster/struct.EtcdDiscovery.html"
)]
#![cfg_attr(feature = "etcd", doc = "[`EtcdGroups`]: crate::EtcdGroups")]
#![cfg_attr(
    not(feature = "etcd"),
    doc = "[`EtcdGroups`]: https://docs.rs/pitaya-cluster/latest/pitaya_cluster/struct.EtcdGroups.html"
)]
#![cfg_attr(feature = "nats", doc = "[`NatsRpc`]: crate::NatsRpc")]
#![cfg_attr(
    not(feature = "nats"),
    doc = "[`NatsRpc`]: https://docs.rs/pitaya-cluster/latest/pitaya_cluster/struct.NatsRpc.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "etcd")]
mod groups;
mod memory;
#[cfg(feature = "nats")]
mod nats;
mod plane;
mod registry;
mod serve;
pub mod subjects;

#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub use etcd::{EtcdConfig, EtcdDiscovery};
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub use groups::{EtcdGroups, EtcdGroupsConfig};
pub use memory::{MemoryCluster, MemoryDiscovery, MemoryRpc, MemoryRpcConfig};
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use nats::{NatsConfig, NatsRpc};
pub use pitaya_core::cluster::{
    ClusterError, DiscoveryEvent, Inbound, RpcClient, RpcServer, ServerInfo, ServiceDiscovery,
    UserSubscription,
};
pub use pitaya_core::protos;
pub use plane::Cluster;

/// This crate's error: the cluster plane's [`ClusterError`].
pub type Error = ClusterError;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

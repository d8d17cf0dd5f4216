//! Cluster plane of pitaya-rs: service discovery on etcd and RPC over NATS,
//! plus in-process implementations of the same traits.
//!
//! Empty until the cluster issue; the crate exists so the workspace has its
//! final shape.

//! Game servers in Rust that Pitaya clients and Pitaya clusters cannot tell
//! from Go ones.
//!
//! [Pitaya](https://github.com/topfreegames/pitaya) is a Go framework for
//! game servers: clients keep a connection open (TCP, WebSocket, TLS) and
//! send requests, notifies and receive pushes over a small binary protocol
//! inherited from pomelo; servers of several types (frontends that hold the
//! connections, backends that run the game) find each other in etcd and
//! talk over NATS.
//!
//! **pitaya-rs** reimplements it in Rust, wire-compatible with Pitaya v3:
//! libpitaya (Unity, C), pomelo-family clients and `pitaya-cli` connect to
//! it unchanged, and a pitaya-rs server joins a Go Pitaya cluster on the
//! same etcd keys, NATS subjects and protobuf envelopes, forwarding to Go
//! servers and calling their remotes, and the other way round.
//!
//! This crate is the one to depend on: it re-exports the runtime
//! (`pitaya-core`), the macros, the acceptors and the cluster behind
//! features, and the [`prelude`] has what a game server uses.
//!
//! # A game server
//!
//! ```toml
//! [dependencies]
//! pitaya = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! ```no_run
//! use pitaya::acceptors::{TcpAcceptor, WsAcceptor};
//! use pitaya::prelude::*;
//! use pitaya::tokio;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Join {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Joined {
//!     members: Vec<String>,
//! }
//!
//! struct Room;
//!
//! #[component(name = "room")]
//! impl Room {
//!     /// `chat.room.join`, a request: it returns a value.
//!     #[handler]
//!     async fn join(&self, session: &Session, app: &AppHandle, req: Join) -> Result<Joined> {
//!         session.bind(req.name).await?;
//!         app.groups().get_or_create("room").await?;
//!         app.groups().add_session("room", session).await?;
//!         Ok(Joined { members: app.groups().members("room").await? })
//!     }
//!
//!     /// `chat.room.say`, a notify: it returns nothing.
//!     #[handler]
//!     async fn say(&self, session: &Session, app: &AppHandle, text: String) {
//!         let _ = app.push(Audience::group("room"), "onMessage", &(session.uid(), text)).await;
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     App::builder("chat")
//!         .acceptor(TcpAcceptor::bind("0.0.0.0:3250").await?)
//!         .acceptor(WsAcceptor::bind("0.0.0.0:3251").await?)
//!         .register(Room)
//!         .build()?
//!         .run() // until SIGINT or SIGTERM, then a graceful shutdown
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! Any Pitaya client can then `request chat.room.join {"name":"ana"}`.
//!
//! # Where to go next
//!
//! The [`guide`] walks through everything a game server does:
//!
//! | | |
//! |---|---|
//! | [Components and handlers](guide#components-and-handlers) | `#[component]`, `#[handler]`, requests and notifies, extractors, payloads, errors |
//! | [Running an app](guide#running-an-app) | the builder, TCP / WebSocket / TLS acceptors, rate limiting, shutdown |
//! | [Sessions](guide#sessions) | bind, data, push, kick, `on_close`, pushes by uid |
//! | [Groups](guide#groups), [timers](guide#timers), [modules](guide#modules-and-lifecycle) | broadcasts, periodic work, things started and stopped with the app |
//! | [Pipelines](guide#pipelines-and-hooks) | hooks before and after every handler, handshake validators |
//! | [The cluster](guide#the-cluster) | frontends and backends, etcd + NATS, the in-process dev cluster, `#[remote]`, routers |
//! | [Configuration](guide#configuration) | every builder setting, and the limits against hostile clients |
//! | [Compatibility with Go Pitaya](guide#compatibility-with-go-pitaya) | what is identical, and the deliberate differences |
//!
//! The macros' options are documented on [`#[component]`][component-attr],
//! [`#[handler]`][handler-attr] and [`#[remote]`][remote-attr].
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | yes | [`#[component]`][component-attr], [`#[handler]`][handler-attr], [`#[remote]`][remote-attr] |
//! | `acceptors` | yes | [`acceptors`]: TCP, WebSocket, TLS, rate limiting |
//! | `cluster-memory` | | [`cluster`] with the in-process cluster only (`MemoryCluster`, `MemoryDiscovery`, `MemoryRpc`) |
//! | `cluster-etcd` | | `cluster-memory` + `EtcdDiscovery` and `EtcdGroups` (etcd-client, whose build needs `protoc`) |
//! | `cluster-nats` | | `cluster-memory` + `NatsRpc` (async-nats) |
//! | `cluster` | | `cluster-etcd` + `cluster-nats`: what a real cluster needs |
//! | `tracing-subscriber` | | [`tracing_subscriber`], to print the logs without depending on it yourself |
//!
//! # What is where
//!
//! - The names a game uses are at the root and in the [`prelude`]:
//!   [`App`], [`AppBuilder`], [`AppHandle`], [`Session`], [`Context`],
//!   [`PitayaError`] and its [`codes`], [`Result`], [`Groups`], [`Timers`],
//!   [`Module`], [`DispatchMode`], [`SerializerKind`], [`Bytes`].
//! - The runtime's modules, re-exported from `pitaya-core`: [`app`],
//!   [`session`], [`group`], [`timer`], [`module`], [`pipeline`],
//!   [`handler`](mod@handler), [`remote`](mod@remote), [`dispatch`], [`acceptor`] (the trait an
//!   acceptor implements), and [`core`] for all of it.
//! - The wire protocol: [`codec`] (packets, messages, handshake, route
//!   dictionary), [`serializer`], [`error`], [`protos`] (the cluster's
//!   protobuf messages).
//!
//! # Re-exported crates
//!
//! A game depends on `pitaya` and `serde` (for its derives): the crates
//! the framework's API is made of come with it, in the versions it uses.
//!
//! | crate | for |
//! |---|---|
//! | [`tokio`] | the runtime: after `use pitaya::tokio;`, `#[tokio::main]`, `tokio::spawn`, `tokio::time` (features `rt-multi-thread`, `macros`, `time`, `sync`, `net`, `signal`; for others, depend on tokio too and Cargo builds one tokio with all of them) |
//! | [`tracing`] | logging next to the framework's own logs: `pitaya::tracing::info!` |
//! | [`tracing_subscriber`] | printing the logs (feature `tracing-subscriber`, with its `fmt`, `env-filter` and `ansi` features) |
//! | [`serde_json`] | the JSON values of the API ([`Context::get`], [`Session::data`], [`Session::set_data`]), untyped payloads (`serde_json::Value`) |
//! | [`prost`] | `#[remote]` messages: `#[derive(prost::Message)]` after `use pitaya::prost;`, with `#[prost(prost_path = "::pitaya::prost")]` (or a `prost` dependency of the same version) |
//! | [`Bytes`] | raw payloads and replies |
//!
#![cfg_attr(feature = "macros", doc = "[component-attr]: macro@crate::component")]
#![cfg_attr(
    not(feature = "macros"),
    doc = "[component-attr]: https://docs.rs/pitaya-macros/latest/pitaya_macros/attr.component.html"
)]
#![cfg_attr(feature = "macros", doc = "[handler-attr]: macro@crate::handler")]
#![cfg_attr(
    not(feature = "macros"),
    doc = "[handler-attr]: https://docs.rs/pitaya-macros/latest/pitaya_macros/attr.handler.html"
)]
#![cfg_attr(feature = "macros", doc = "[remote-attr]: macro@crate::remote")]
#![cfg_attr(
    not(feature = "macros"),
    doc = "[remote-attr]: https://docs.rs/pitaya-macros/latest/pitaya_macros/attr.remote.html"
)]
#![cfg_attr(feature = "acceptors", doc = "[`acceptors`]: crate::acceptors")]
#![cfg_attr(
    not(feature = "acceptors"),
    doc = "[`acceptors`]: https://docs.rs/pitaya-acceptors/latest/pitaya_acceptors/"
)]
#![cfg_attr(feature = "cluster-memory", doc = "[`cluster`]: crate::cluster")]
#![cfg_attr(
    not(feature = "cluster-memory"),
    doc = "[`cluster`]: https://docs.rs/pitaya-cluster/latest/pitaya_cluster/"
)]
#![cfg_attr(
    feature = "tracing-subscriber",
    doc = "[`tracing_subscriber`]: crate::tracing_subscriber"
)]
#![cfg_attr(
    not(feature = "tracing-subscriber"),
    doc = "[`tracing_subscriber`]: https://docs.rs/tracing-subscriber/0.3/tracing_subscriber/"
)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use pitaya_core as core;
pub use pitaya_core::app::{App, AppBuilder, AppHandle, DispatchMode};
pub use pitaya_core::error::codes;
pub use pitaya_core::group::Groups;
pub use pitaya_core::module::Module;
pub use pitaya_core::push::{Audience, Delivery};
pub use pitaya_core::timer::Timers;
pub use pitaya_core::{Context, PitayaError, Serializer, SerializerKind, Session};
pub use pitaya_core::{
    acceptor, app, codec, context, dispatch, error, group, handle, handler, module, pipeline,
    protos, push, remote, serializer, session, timer,
};

/// TCP and WebSocket acceptors, with TLS, and the rate-limiting wrapper
/// (the `pitaya-acceptors` crate).
#[cfg(feature = "acceptors")]
#[cfg_attr(docsrs, doc(cfg(feature = "acceptors")))]
pub use pitaya_acceptors as acceptors;
/// The cluster plane (the `pitaya-cluster` crate): the in-process cluster,
/// plus etcd discovery with `cluster-etcd` and NATS RPC with
/// `cluster-nats` (both with `cluster`).
#[cfg(feature = "cluster-memory")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "cluster-memory",
        feature = "cluster-etcd",
        feature = "cluster-nats",
        feature = "cluster"
    )))
)]
pub use pitaya_cluster as cluster;
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use pitaya_macros::{component, handler, remote};

/// The in-memory test harness: [`TestApp`](testing::TestApp),
/// [`TestSession`](testing::TestSession) and
/// [`FakeCluster`](testing::FakeCluster).
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use pitaya_core::testing;

/// Raw payload bytes, for handlers that take or return the body unparsed.
pub use bytes::Bytes;
// The crates of the API, so that a game needs no version-matched
// dependency of its own: see "Re-exported crates" above.
pub use pitaya_core::prost;
pub use serde_json;
pub use tokio;
pub use tracing;
#[cfg(feature = "tracing-subscriber")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-subscriber")))]
pub use tracing_subscriber;

/// `Result` with [`PitayaError`] as the default error: what handlers and
/// remotes return (`Result<Joined>`), and what their `?` converts
/// session, group and remote errors into.
pub type Result<T, E = PitayaError> = std::result::Result<T, E>;

/// Defines `pub mod guide` with the guide's text, and the targets of its
/// links to items behind features: the item when its feature is on, its
/// docs.rs page otherwise, so the guide reads the same (and rustdoc finds
/// no broken link) whatever the features.
macro_rules! guide {
    ($($feature:tt $label:tt => $path:tt, $url:tt;)*) => {
        #[doc = include_str!("guide.md")]
        #[doc = ""]
        $(
            #[cfg_attr(feature = $feature, doc = concat!("[", $label, "]: ", $path))]
            #[cfg_attr(not(feature = $feature), doc = concat!("[", $label, "]: https://docs.rs/", $url))]
        )*
        pub mod guide {}
    };
}

guide! {
    "macros" "component-macro" => "macro@crate::component", "pitaya-macros/latest/pitaya_macros/attr.component.html";
    "macros" "remote-macro" => "macro@crate::remote", "pitaya-macros/latest/pitaya_macros/attr.remote.html";
    "acceptors" "`pitaya::acceptors`" => "crate::acceptors", "pitaya-acceptors/latest/pitaya_acceptors/";
    "acceptors" "`TcpAcceptor::bind`" => "crate::acceptors::TcpAcceptor::bind", "pitaya-acceptors/latest/pitaya_acceptors/struct.TcpAcceptor.html#method.bind";
    "acceptors" "TcpAcceptor::with_tls" => "crate::acceptors::TcpAcceptor::with_tls", "pitaya-acceptors/latest/pitaya_acceptors/struct.TcpAcceptor.html#method.with_tls";
    "acceptors" "`WsAcceptor::bind`" => "crate::acceptors::WsAcceptor::bind", "pitaya-acceptors/latest/pitaya_acceptors/struct.WsAcceptor.html#method.bind";
    "acceptors" "WsAcceptor::with_path" => "crate::acceptors::WsAcceptor::with_path", "pitaya-acceptors/latest/pitaya_acceptors/struct.WsAcceptor.html#method.with_path";
    "acceptors" "WsAcceptor::with_tls" => "crate::acceptors::WsAcceptor::with_tls", "pitaya-acceptors/latest/pitaya_acceptors/struct.WsAcceptor.html#method.with_tls";
    "acceptors" "`AcceptorExt::rate_limited`" => "crate::acceptors::AcceptorExt::rate_limited", "pitaya-acceptors/latest/pitaya_acceptors/trait.AcceptorExt.html#method.rate_limited";
    "cluster-memory" "`pitaya::cluster`" => "crate::cluster", "pitaya-cluster/latest/pitaya_cluster/";
    "cluster-etcd" "`EtcdConfig`" => "crate::cluster::EtcdConfig", "pitaya-cluster/latest/pitaya_cluster/struct.EtcdConfig.html";
    "cluster-nats" "`NatsConfig`" => "crate::cluster::NatsConfig", "pitaya-cluster/latest/pitaya_cluster/struct.NatsConfig.html";
    "cluster-nats" "`NatsConfig::subscription_capacity`" => "crate::cluster::NatsConfig::subscription_capacity", "pitaya-cluster/latest/pitaya_cluster/struct.NatsConfig.html#structfield.subscription_capacity";
}

/// The names a game server uses: `use pitaya::prelude::*;`.
///
/// The macros, [`App`], [`AppBuilder`], [`AppHandle`], [`Session`],
/// [`Context`], [`PitayaError`], [`codes`], [`Result`] (which shadows the
/// standard `Result` with a default error type: `Result<T, E>` keeps its
/// meaning), [`Audience`] and [`Delivery`] (pushes and kicks), [`Groups`], [`Timers`], [`Module`], [`DispatchMode`],
/// [`SerializerKind`] and [`Bytes`]. The wire protocol's types are in
/// [`codec`], not here.
pub mod prelude {
    pub use crate::{
        App, AppBuilder, AppHandle, Audience, Bytes, Context, Delivery, DispatchMode, Groups,
        Module, PitayaError, Result, SerializerKind, Session, Timers, codes,
    };
    #[cfg(feature = "macros")]
    pub use crate::{component, handler, remote};
}

/// What macro-generated code names. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use pitaya_core::handler::{
        Component, FromRemoteRequest, FromRequest, HandlerFuture, HandlerKind, HandlerMeta,
        HandlerResult, PayloadFormat, ProtobufMessage, Request, RouteEntry,
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

//! Procedural macros of pitaya-rs: `#[component]`, `#[handler]`, `#[remote]`.
//!
//! Use them through the facade (`use pitaya::prelude::*;`), not from this
//! crate: the generated code names `::pitaya::__private::...`.
//!
//! `#[component]` goes on the inherent `impl` block of a component type. It
//! reads the `#[handler]` and `#[remote]` methods in it and generates, at
//! compile time, the component's static route table (an implementation of
//! `pitaya::handler::Component`) and, when there are remotes, a typed client
//! for them. No reflection and no name matching at run time.
//!
//! ```
//! use pitaya::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct JoinReq { name: String }
//! #[derive(Serialize)]
//! struct JoinAck { members: usize }
//! #[derive(Deserialize)]
//! struct ChatMsg { text: String }
//!
//! struct Room;
//!
//! #[component]
//! impl Room {
//!     /// `room.join`: a request (it returns a value).
//!     #[handler]
//!     async fn join(&self, session: &Session, req: JoinReq) -> Result<JoinAck, PitayaError> {
//!         session.bind(req.name).await?;
//!         Ok(JoinAck { members: 1 })
//!     }
//!
//!     /// `room.chat`: a notify (it returns nothing).
//!     #[handler]
//!     async fn chat(&self, msg: ChatMsg) {
//!         let _ = msg.text;
//!     }
//! }
//!
//! use pitaya::handler::{Component, HandlerKind};
//! assert_eq!(Room::NAME, "room");
//! assert_eq!(Room::ROUTES[0].method, "join");
//! assert_eq!(Room::ROUTES[0].kind, HandlerKind::Request);
//! assert_eq!(Room::ROUTES[1].kind, HandlerKind::Notify);
//! ```
//!
//! Set `PITAYA_MACROS_DEBUG=1` while building to print every expansion to
//! stderr.
//!
//! The crate is laid out as parse (syntax) -> model (validation, every error
//! collected) -> expand (one function per generated item).

mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into a pitaya component.
///
/// Every method marked [`#[handler]`](macro@handler) becomes a client route
/// and every method marked [`#[remote]`](macro@remote) a server-to-server
/// route; other methods are left alone.
///
/// # Generated code
///
/// - The impl block itself, unchanged but for the `#[handler]`/`#[remote]`
///   attributes, which get an argument marking them as read (they then
///   expand to the method unchanged, and their imports stay used).
/// - `impl pitaya::handler::Component for Room`: `NAME` and `ROUTES`, one
///   `RouteEntry` per route with its method name, its kind
///   (`Request`, `Notify` or `Remote`), a glue function (decode the payload,
///   extract the other arguments, call the method, encode the result) and
///   `HandlerMeta` naming the payload and result types; and `PAYLOAD`, the
///   `PayloadFormat` of the handlers: `Serde`, `Protobuf` (see the
///   `serializer` option below), or `Any` when every handler takes no
///   payload or raw `Bytes` and replies raw `Bytes` or nothing (remotes do
///   not count), which the app checks against its serializer.
/// - If there is at least one remote: a typed client, `RoomRemote`, with
///   `fn new(client: RemoteClient) -> Self` and one `async fn` per remote
///   taking `&Payload` and returning `Result<T, PitayaError>`.
///
/// # Methods
///
/// Handlers and remotes are `async fn`s taking `&self`:
///
/// - arguments taken by reference (`&Session`, `&Context`) are extractors,
///   resolved by the `FromRequest` trait (`FromRemoteRequest` for remotes,
///   which have no session); a type that is not one is reported at the
///   argument;
/// - the (at most one) argument taken by value is the payload, decoded with
///   the request's serializer (a payload that does not decode is answered
///   with a `PIT-400` error): a `Deserialize` type, or a prost message in a
///   component declared `serializer = "protobuf"`; a `Bytes` payload
///   receives the raw body;
/// - the return type decides the reply: nothing or `()` makes a handler a
///   notify (nothing is sent back); `Result<T, E>` (or a `Result<T>` alias)
///   with `E: Into<PitayaError>` replies `T` or the error; any other
///   `T` is the reply (`T: Serialize`, or a prost message in a protobuf
///   component); a `Bytes` reply is sent raw. Only "no return value" makes
///   a notify: `Result<(), E>` is a request whose success reply is the
///   encoded `()` (`null` in JSON, no bytes in protobuf).
///
/// The runtime drives handlers on a multi-threaded executor: **the future of
/// every handler and remote must be `Send`** (do not hold an `Rc` or a
/// `std::sync::MutexGuard` across an `.await`). A future that is not is
/// reported at the method's name.
///
/// # Options
///
/// ## `name = "..."`
///
/// The component name, the middle part of a route. It defaults to the type
/// name with its first letter lowercased (`Room` -> `room`,
/// `ChatRoom` -> `chatRoom`). It may not be empty nor contain `.`.
///
/// ```
/// use pitaya::prelude::*;
/// use pitaya::handler::Component;
///
/// struct ChatRoom;
///
/// #[component(name = "chat")]
/// impl ChatRoom {
///     #[handler]
///     async fn ping(&self) -> Result<String, PitayaError> {
///         Ok("pong".to_owned())
///     }
/// }
///
/// assert_eq!(ChatRoom::NAME, "chat");
/// ```
///
/// ## `rename_all = "..."`
///
/// How method names become route names, unless a method says `name = ...`:
///
/// | value | `fn send_message` is routed as |
/// |---|---|
/// | `"camelCase"` (the default) | `sendMessage` |
/// | `"lowercase"` | `sendmessage` (what Go Pitaya's `WithNameFunc(strings.ToLower)` makes of `SendMessage`) |
/// | `"snake_case"` | `send_message` |
/// | `"PascalCase"` | `SendMessage` (Go Pitaya's default) |
///
/// ```
/// use pitaya::prelude::*;
/// use pitaya::handler::Component;
///
/// struct Room;
///
/// #[component(rename_all = "lowercase")]
/// impl Room {
///     #[handler]
///     async fn send_message(&self, text: String) {}
/// }
///
/// assert_eq!(Room::ROUTES[0].method, "sendmessage");
/// ```
///
/// ## `serializer = "..."`
///
/// What the handlers' payloads and replies are:
///
/// | value | payloads and replies | app serializer |
/// |---|---|---|
/// | `"serde"` (the default) | `Deserialize` / `Serialize` types | `SerializerKind::Json` or `SerializerKind::MessagePack` |
/// | `"protobuf"` | prost messages (`prost::Message + Default`: derived, generated from a `.proto` file, or prost's wrappers such as `String`) | `SerializerKind::Protobuf`, Go Pitaya's `protobuf` serializer |
///
/// Raw `Bytes` payloads and replies are allowed in both. A type that is not
/// a prost message in a protobuf component is reported at the type. It
/// does not change remotes, which are always protobuf. The app refuses a
/// component whose handlers do not fit its serializer.
///
/// ```
/// use pitaya::prelude::*;
/// use pitaya::handler::{Component, PayloadFormat};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct JoinReq {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct JoinAck {
///     #[prost(uint32, tag = "1")]
///     members: u32,
/// }
///
/// struct Room;
///
/// #[component(serializer = "protobuf")]
/// impl Room {
///     #[handler]
///     async fn join(&self, session: &Session, req: JoinReq) -> Result<JoinAck, PitayaError> {
///         session.bind(req.name).await?;
///         Ok(JoinAck { members: 1 })
///     }
///
///     /// Raw bodies stay allowed.
///     #[handler]
///     async fn echo(&self, body: Bytes) -> Bytes {
///         body
///     }
/// }
///
/// assert_eq!(Room::PAYLOAD, PayloadFormat::Protobuf);
/// ```
///
/// A serde type in a protobuf component does not compile:
///
/// ```compile_fail
/// use pitaya::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct JoinReq { name: String }
///
/// struct Room;
///
/// #[component(serializer = "protobuf")]
/// impl Room {
///     #[handler]
///     async fn join(&self, req: JoinReq) {} // error: `JoinReq` is not a protobuf message
/// }
/// ```
///
/// ## `remote_vis = "..."`
///
/// The visibility of the generated remote client (`RoomRemote`) and its
/// methods. The macro only sees the impl block, not the type definition, so
/// it cannot copy the type's visibility: the client is `pub` unless told
/// otherwise.
///
/// ```
/// use pitaya::prelude::*;
/// # #[derive(Clone, PartialEq, prost::Message)]
/// # struct Members { #[prost(string, repeated, tag = "1")] names: Vec<String> }
///
/// struct Room;
///
/// #[component(remote_vis = "pub(crate)")]
/// impl Room {
///     #[remote]
///     async fn members(&self) -> Result<Members, PitayaError> {
///         Ok(Members { names: Vec::new() })
///     }
/// }
///
/// // pub(crate) struct RoomRemote { .. } with pub(crate) async fn members(&self)
/// fn stub(client: pitaya::remote::RemoteClient) -> RoomRemote {
///     RoomRemote::new(client)
/// }
/// ```
///
/// ## `crate = "..."`
///
/// The path of the `pitaya` facade, for code that renames it (a dependency
/// renamed in `Cargo.toml`, `extern crate pitaya as my_pitaya;`, a macro
/// re-exporting it). Generated code names `<path>::__private::...`.
///
/// ```
/// extern crate pitaya as my_pitaya;
///
/// struct Room;
///
/// #[my_pitaya::component(crate = "::my_pitaya")]
/// impl Room {
///     #[my_pitaya::handler]
///     async fn ping(&self) {}
/// }
/// ```
///
/// # Errors
///
/// Everything the macro can check is checked at once and reported at the
/// offending tokens: a method that is not `async`, takes `self` by value,
/// `&mut self`, `self: Box<Self>` or no `self`, is generic, takes two
/// payloads; a remote taking `&Session`; two methods with the same route;
/// an unknown option or a bad value. The impl block is still emitted, so
/// the rest of the code keeps compiling.
///
/// ```compile_fail
/// use pitaya::prelude::*;
/// struct Room;
///
/// #[component]
/// impl Room {
///     #[handler]
///     fn join(&self) {} // error: handlers must be `async fn`
/// }
/// ```
#[proc_macro_attribute]
pub fn component(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::component(args.into(), item.into()).into()
}

/// Marks a method of a [`#[component]`](macro@component) impl block as a
/// client handler: a request if it returns a value, a notify if it returns
/// nothing.
///
/// It only has a meaning inside `#[component]`, which reads it; anywhere
/// else it is an error.
///
/// # Options
///
/// ## `name = "..."`
///
/// The route's method name, instead of the one `rename_all` derives from
/// the method name. It may not be empty nor contain `.`.
///
/// ```
/// use pitaya::prelude::*;
/// use pitaya::handler::Component;
/// use pitaya::Bytes;
///
/// struct Room;
///
/// #[component]
/// impl Room {
///     #[handler(name = "getInfo")]
///     async fn info(&self, ctx: &Context) -> Result<String, PitayaError> {
///         Ok(ctx.route().to_owned())
///     }
///
///     /// Raw payload in, raw reply out.
///     #[handler]
///     async fn echo(&self, body: Bytes) -> Bytes {
///         body
///     }
/// }
///
/// assert_eq!(Room::ROUTES[0].method, "getInfo");
/// ```
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::helper(parse::AttrKind::Handler, &args.into(), item.into()).into()
}

/// Marks a method of a [`#[component]`](macro@component) impl block as a
/// remote: a server-to-server call that clients cannot reach.
///
/// Remotes take `&Context` (never `&Session`: there is no client) and at
/// most one payload, and their reply is always sent (`()` included). The
/// component's typed client (`RoomRemote`) gets one method per remote.
///
/// The payload and the reply are **protobuf** messages whatever the app's
/// serializer, as in Go Pitaya, so Go and Rust servers can call each
/// other's remotes: types implementing `prost::Message` (generated from a
/// `.proto` file or derived), or prost's well-known wrappers such as
/// `String`, `u32` or `()` (see `pitaya::remote::RemoteMessage`).
///
/// It only has a meaning inside `#[component]`, which reads it; anywhere
/// else it is an error.
///
/// # Options
///
/// ## `name = "..."`
///
/// The route's method name, as for [`#[handler]`](macro@handler).
///
/// ```
/// use pitaya::prelude::*;
/// use pitaya::handler::{Component, HandlerKind};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct MembersReq {
///     #[prost(uint32, tag = "1")]
///     room: u32,
/// }
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Members {
///     #[prost(string, repeated, tag = "1")]
///     names: Vec<String>,
/// }
///
/// struct Room;
///
/// #[component]
/// impl Room {
///     #[remote(name = "list")]
///     async fn members(&self, ctx: &Context, req: MembersReq) -> Result<Members, PitayaError> {
///         Ok(Members {
///             names: vec![format!("{} in {}", ctx.route(), req.room)],
///         })
///     }
/// }
///
/// assert_eq!(Room::ROUTES[0].method, "list");
/// assert_eq!(Room::ROUTES[0].kind, HandlerKind::Remote);
///
/// // The typed client: `RoomRemote::members(&self, &MembersReq)`.
/// async fn call(stub: &RoomRemote) -> Result<Members, PitayaError> {
///     stub.members(&MembersReq { room: 7 }).await
/// }
/// ```
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::helper(parse::AttrKind::Remote, &args.into(), item.into()).into()
}

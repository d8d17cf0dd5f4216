//! The contract between `#[component]` (in `pitaya-macros`) and the runtime.
//!
//! A component is a user struct whose `impl` block is annotated with
//! `#[component]`. The macro implements [`Component`] for it: a name and a
//! static table of [`RouteEntry`]s, one per `#[handler]` or `#[remote]`
//! method, each holding a monomorphized glue function that decodes the
//! payload, extracts the other arguments, calls the method and encodes the
//! result. No reflection and no string matching beyond one table lookup.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::codes;
use crate::handle::AppHandle;
use crate::remote::RemoteMessage;
use crate::session::Session;
use crate::{PitayaError, Serializer, SerializerKind};

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    /// A client request: the method returns a value sent back as the response.
    Request,
    /// A client notify: the method returns `()`; nothing is sent back.
    Notify,
    /// A server-to-server call, never reachable by a client.
    Remote,
}

/// Type names of a handler's payload and result, for documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandlerMeta {
    /// The payload type as written, `None` when the method takes none.
    pub input: Option<&'static str>,
    /// The success type as written, `None` for notifies.
    pub output: Option<&'static str>,
}

/// What a glue function returns: the encoded response body (`None` for a
/// notify) or the error to send.
pub type HandlerResult = Result<Option<Bytes>, PitayaError>;

/// The boxed future of a glue function.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// One route of a component: `method` is the last part of
/// `serverType.component.method`.
pub struct RouteEntry<C> {
    /// Method name as clients address it (e.g. `"join"`).
    pub method: &'static str,
    /// Request, notify or remote.
    pub kind: HandlerKind,
    /// Generated glue: decode, call, encode.
    pub call: fn(Arc<C>, Request) -> HandlerFuture,
    /// Argument and return type names.
    pub meta: HandlerMeta,
}

impl<C> Clone for RouteEntry<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for RouteEntry<C> {}

impl<C> std::fmt::Debug for RouteEntry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteEntry")
            .field("method", &self.method)
            .field("kind", &self.kind)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A set of handlers and remotes under one name. Implemented by
/// `#[component]`; not meant to be implemented by hand.
pub trait Component: Send + Sync + Sized + 'static {
    /// The component's name, the middle part of a route (`room` in
    /// `connector.room.join`).
    const NAME: &'static str;

    /// Every handler and remote of the component.
    const ROUTES: &'static [RouteEntry<Self>];

    /// What its client handlers' payloads and replies are, so that the app
    /// can refuse a serializer they cannot speak (see
    /// [`RouteTable::check_serializer`](crate::dispatch::RouteTable::check_serializer)).
    /// `#[component]` computes it; the default, for hand implementations,
    /// is [`PayloadFormat::Serde`] (what [`Request::decode`] and
    /// [`Request::encode`] speak).
    const PAYLOAD: PayloadFormat = PayloadFormat::Serde;
}

/// What a component's client handlers take and return, which decides the
/// app serializers they work with. Remotes do not count: they always carry
/// protobuf, whatever the app's serializer.
///
/// ```
/// use pitaya_core::SerializerKind;
/// use pitaya_core::handler::PayloadFormat;
///
/// assert!(PayloadFormat::Serde.fits(SerializerKind::MessagePack));
/// assert!(!PayloadFormat::Serde.fits(SerializerKind::Protobuf));
/// assert!(PayloadFormat::Protobuf.fits(SerializerKind::Protobuf));
/// assert!(PayloadFormat::Any.fits(SerializerKind::Json));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// serde values: needs [`SerializerKind::Json`] or
    /// [`SerializerKind::MessagePack`] (`#[component]`, the default).
    Serde,
    /// prost messages: needs [`SerializerKind::Protobuf`]
    /// (`#[component(serializer = "protobuf")]`).
    Protobuf,
    /// Only raw `Bytes` and notifies without payload, or no client handler
    /// at all: works with every serializer.
    Any,
}

impl PayloadFormat {
    /// Whether handlers of this format work on an app serializing with
    /// `serializer`.
    pub fn fits(self, serializer: SerializerKind) -> bool {
        match self {
            Self::Any => true,
            Self::Protobuf => serializer.is_protobuf(),
            Self::Serde => !serializer.is_protobuf(),
        }
    }

    /// The serializers that fit, for messages.
    pub fn expects(self) -> &'static str {
        match self {
            Self::Serde => "json or msgpack",
            Self::Protobuf => "protobuf",
            Self::Any => "any serializer",
        }
    }
}

impl std::fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Serde => "serde",
            Self::Protobuf => "protobuf",
            Self::Any => "any",
        })
    }
}

/// The payload or reply of a handler of a protobuf component
/// (`#[component(serializer = "protobuf")]`): any [`prost::Message`] with a
/// `Default`, generated from a `.proto` file or derived with the prost
/// version [`pitaya::prost`](prost) re-exports.
///
/// ```
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Join {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// fn takes<T: pitaya_core::handler::ProtobufMessage>() {}
/// takes::<Join>();
/// takes::<String>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a protobuf message: the handlers of a `#[component(serializer = \"protobuf\")]` take and return prost messages",
    label = "not a protobuf message",
    note = "derive `prost::Message` for `{Self}` or generate it from a .proto file; take or return `Bytes` for a raw body, or drop `serializer = \"protobuf\"` to use serde types"
)]
pub trait ProtobufMessage: prost::Message + Default {}

impl<T: prost::Message + Default> ProtobufMessage for T {}

/// One incoming call, as a glue function sees it.
#[derive(Clone, Debug)]
pub struct Request {
    session: Option<Session>,
    app: Option<AppHandle>,
    context: Context,
    body: Bytes,
    serializer: SerializerKind,
    /// Whether decoding a large body may hand this worker's other tasks to
    /// another thread (set by the agent on a multi-threaded runtime).
    offload: bool,
}

impl Request {
    /// A client request or notify from `session`.
    pub fn from_client(session: Session, context: Context, body: Bytes) -> Self {
        let serializer = session.serializer();
        Self {
            session: Some(session),
            app: None,
            context,
            body,
            serializer,
            offload: false,
        }
    }

    /// Lets decoding a large body run under `block_in_place` (only for
    /// requests served on a worker of a multi-threaded runtime).
    pub(crate) fn with_offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    /// A server-to-server call (no session).
    pub fn remote(context: Context, body: Bytes, serializer: SerializerKind) -> Self {
        Self {
            session: None,
            app: None,
            context,
            body,
            serializer,
            offload: false,
        }
    }

    /// The same request, with a handle to the app serving it.
    #[must_use]
    pub fn with_app(mut self, app: AppHandle) -> Self {
        self.app = Some(app);
        self
    }

    /// The same request with another context: what a before hook returns
    /// to pass values on (`ctx.with_value(..)`), to the handler and, for a
    /// forwarded route, to the backend.
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// The same request with another (serialized) payload.
    #[must_use]
    pub fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// The app serving the request (set by the runtime).
    pub fn app(&self) -> Option<&AppHandle> {
        self.app.as_ref()
    }

    /// The caller's session (none for remote calls).
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The request context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The raw (serialized, inflated) payload.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The serializer the payload and the reply use.
    pub fn serializer(&self) -> SerializerKind {
        self.serializer
    }

    /// Decodes the payload as `T`; a payload that does not fit is a
    /// `PIT-400` error.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PitayaError> {
        let parsed = crate::heavy::run(self.offload, self.body.len(), || {
            self.serializer.deserialize(&self.body)
        });
        parsed.map_err(|err| {
            PitayaError::new(
                codes::BAD_REQUEST,
                format!("invalid payload for {}: {err}", self.context.route()),
            )
        })
    }

    /// Decodes the payload of a user RPC (a `#[remote]` argument) from
    /// protobuf; a payload that does not fit is a `PIT-400` error.
    pub fn decode_remote<T: RemoteMessage>(&self) -> Result<T, PitayaError> {
        T::decode_remote(&self.body).map_err(|err| {
            PitayaError::new(
                codes::BAD_REQUEST,
                format!("invalid argument for {}: {err}", self.context.route()),
            )
        })
    }

    /// Encodes the reply of a user RPC (a `#[remote]` method) as protobuf.
    pub fn encode_remote<T: RemoteMessage>(&self, value: &T) -> HandlerResult {
        Ok(Some(value.encode_remote()))
    }

    /// Encodes a reply value with the request's serializer.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> HandlerResult {
        self.serializer
            .serialize(value)
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|err| PitayaError::new(codes::INTERNAL, format!("encoding the reply: {err}")))
    }

    /// Decodes the payload as the prost message `M` (the payload of a
    /// handler of a protobuf component); a payload that does not decode, or
    /// a request whose serializer is not protobuf, is a `PIT-400` error.
    pub fn decode_message<M: ProtobufMessage>(&self) -> Result<M, PitayaError> {
        let parsed = crate::heavy::run(self.offload, self.body.len(), || {
            self.serializer.decode_message::<M>(&self.body)
        });
        parsed.map_err(|err| {
            PitayaError::new(
                codes::BAD_REQUEST,
                format!("invalid payload for {}: {err}", self.context.route()),
            )
        })
    }

    /// Encodes a prost message reply with the request's serializer, which
    /// must be protobuf (else a `PIT-500` error).
    pub fn encode_message<M: ProtobufMessage>(&self, value: &M) -> HandlerResult {
        self.serializer
            .encode_message(value)
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|err| PitayaError::new(codes::INTERNAL, format!("encoding the reply: {err}")))
    }
}

/// A handler argument taken by reference and extracted from the request,
/// like axum's extractors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from a client request",
    label = "not a handler argument",
    note = "handler arguments taken by reference are extracted from the request: `&Session`, `&Context`, `&AppHandle`; the payload is the one argument taken by value"
)]
pub trait FromRequest: Sized {
    /// Extracts the value from `request`.
    fn from_request(request: &Request) -> Result<Self, PitayaError>;
}

/// A remote argument taken by reference and extracted from the request.
/// Remotes have no client session, so `Session` is not one of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted in a `#[remote]` method",
    label = "not a remote argument",
    note = "remotes are server-to-server calls without a client session: take `&Context`, `&AppHandle` and the payload"
)]
pub trait FromRemoteRequest: Sized {
    /// Extracts the value from `request`.
    fn from_remote_request(request: &Request) -> Result<Self, PitayaError>;
}

impl FromRequest for Session {
    fn from_request(request: &Request) -> Result<Self, PitayaError> {
        request
            .session()
            .cloned()
            .ok_or_else(|| PitayaError::new(codes::INTERNAL, "no session for this request"))
    }
}

impl FromRequest for Context {
    fn from_request(request: &Request) -> Result<Self, PitayaError> {
        Ok(request.context().clone())
    }
}

impl FromRemoteRequest for Context {
    fn from_remote_request(request: &Request) -> Result<Self, PitayaError> {
        Ok(request.context().clone())
    }
}

impl FromRequest for AppHandle {
    fn from_request(request: &Request) -> Result<Self, PitayaError> {
        request
            .app()
            .cloned()
            .ok_or_else(|| PitayaError::new(codes::INTERNAL, "no app for this request"))
    }
}

impl FromRemoteRequest for AppHandle {
    fn from_remote_request(request: &Request) -> Result<Self, PitayaError> {
        <Self as FromRequest>::from_request(request)
    }
}

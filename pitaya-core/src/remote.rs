//! Server-to-server calls: what the typed stubs generated for `#[remote]`
//! methods (e.g. `RoomRemote`) call through.
//!
//! As in Go Pitaya, the arguments and replies of these calls ("user RPCs")
//! are protobuf messages, whatever the app's client serializer: a Rust
//! server and a Go server can call each other's remotes. See
//! [`RemoteMessage`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::codes;
use crate::{Context, PitayaError};

/// A value a user RPC carries: the argument or the reply of a `#[remote]`
/// method. User RPCs are protobuf on the wire, as in Go Pitaya, so this is
/// any [`prost::Message`]: a type generated from a `.proto` file, a struct
/// deriving `prost::Message` (with the `prost` version that
/// [`pitaya::prost`](prost) re-exports), or one of the well-known wrappers
/// prost implements (`String`, `bool`, integers, floats, `Vec<u8>`,
/// `Bytes`, and `()` for `google.protobuf.Empty`).
///
/// ```
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct RoomCount {
///     #[prost(string, tag = "1")]
///     server: String,
///     #[prost(uint32, tag = "2")]
///     members: u32,
/// }
///
/// fn takes<T: pitaya_core::remote::RemoteMessage>() {}
/// takes::<RoomCount>();
/// takes::<String>();
/// takes::<()>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the argument or reply of a `#[remote]` method",
    label = "not a protobuf message",
    note = "remote calls carry protobuf, as in Go Pitaya: derive `prost::Message` for `{Self}` (or generate it from a .proto file)"
)]
pub trait RemoteMessage: Sized + Send + Sync {
    /// The protobuf encoding of `self`.
    fn encode_remote(&self) -> Bytes;

    /// Decodes a protobuf encoding.
    ///
    /// # Errors
    /// When `bytes` is not a valid encoding of `Self`.
    fn decode_remote(bytes: &[u8]) -> Result<Self, prost::DecodeError>;
}

impl<T: prost::Message + Default> RemoteMessage for T {
    fn encode_remote(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    fn decode_remote(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }
}

/// Which server a remote call goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Any server of this type (the router picks one).
    ServerType(String),
    /// This exact server.
    ServerId {
        /// The server's type.
        server_type: String,
        /// The server's id.
        id: String,
    },
}

impl Target {
    /// The server type the call goes to.
    pub fn server_type(&self) -> &str {
        match self {
            Self::ServerType(server_type) | Self::ServerId { server_type, .. } => server_type,
        }
    }
}

/// The future of a raw remote call.
pub type RemoteFuture = Pin<Box<dyn Future<Output = Result<Bytes, PitayaError>> + Send + 'static>>;

/// One remote call, serialized: what a [`RemoteCaller`] sends.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteCall {
    /// Where it goes.
    pub target: Target,
    /// `serverType.component.method`.
    pub route: String,
    /// The protobuf-encoded argument.
    pub body: Bytes,
    /// The per-call timeout (the caller's default when `None`).
    pub timeout: Option<Duration>,
    /// The context whose metadata the call propagates (Pitaya's
    /// "propagate context": `request.id`, `metric-tags`, your own keys).
    pub context: Option<Context>,
}

/// Sends a serialized remote call and returns the serialized reply.
/// Implemented by the cluster runtime; tests implement it with fakes.
pub trait RemoteCaller: Send + Sync + 'static {
    /// Sends `call` to its target.
    fn call(&self, call: RemoteCall) -> RemoteFuture;
}

/// A handle for calling one server type (or server); generated stubs wrap it.
#[derive(Clone)]
pub struct RemoteClient {
    caller: Arc<dyn RemoteCaller>,
    target: Target,
    timeout: Option<Duration>,
    context: Option<Context>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl RemoteClient {
    /// A client calling `target` through `caller`.
    pub fn new(caller: Arc<dyn RemoteCaller>, target: Target) -> Self {
        Self {
            caller,
            target,
            timeout: None,
            context: None,
        }
    }

    /// The same client with a per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same client propagating `context`'s metadata with every call,
    /// as Go's `app.RPC(ctx, ...)` does: pass the handler's `&Context` so
    /// `request.id`, `metric-tags` and keys added with
    /// [`Context::with_value`] reach the remote.
    #[must_use]
    pub fn with_context(mut self, context: &Context) -> Self {
        self.context = Some(context.clone());
        self
    }

    /// The call target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Calls `component.method` on the target with `request`, protobuf
    /// encoded; the reply is decoded from protobuf.
    ///
    /// # Errors
    /// The remote's error, with its code and metadata; `PIT-408` on
    /// timeout; `PIT-500` for a reply that is not a `Resp`.
    pub async fn call<Req, Resp>(
        &self,
        component: &str,
        method: &str,
        request: &Req,
    ) -> Result<Resp, PitayaError>
    where
        Req: RemoteMessage,
        Resp: RemoteMessage,
    {
        let route = format!("{}.{component}.{method}", self.target.server_type());
        let reply = self
            .caller
            .call(RemoteCall {
                target: self.target.clone(),
                route,
                body: request.encode_remote(),
                timeout: self.timeout,
                context: self.context.clone(),
            })
            .await?;
        Resp::decode_remote(&reply).map_err(|err| {
            PitayaError::new(codes::INTERNAL, format!("decoding the remote reply: {err}"))
        })
    }
}

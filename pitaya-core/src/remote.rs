//! Server-to-server calls: what the typed stubs generated for `#[remote]`
//! methods (e.g. `RoomRemote`) call through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::codes;
use crate::{PitayaError, Serializer, SerializerKind};

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

/// Sends a serialized remote call and returns the serialized reply.
/// Implemented by the in-process router and by the cluster RPC clients.
pub trait RemoteCaller: Send + Sync + 'static {
    /// Calls `route` (`serverType.component.method`) on `target`.
    fn call(
        &self,
        target: &Target,
        route: String,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> RemoteFuture;
}

/// A handle for calling one server type (or server); generated stubs wrap it.
#[derive(Clone)]
pub struct RemoteClient {
    caller: Arc<dyn RemoteCaller>,
    target: Target,
    serializer: SerializerKind,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("target", &self.target)
            .field("serializer", &self.serializer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteClient {
    /// A client calling `target` through `caller`, encoding with `serializer`.
    pub fn new(caller: Arc<dyn RemoteCaller>, target: Target, serializer: SerializerKind) -> Self {
        Self {
            caller,
            target,
            serializer,
            timeout: None,
        }
    }

    /// The same client with a per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The call target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Calls `component.method` on the target with `request`.
    pub async fn call<Req, Resp>(
        &self,
        component: &str,
        method: &str,
        request: &Req,
    ) -> Result<Resp, PitayaError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = self.serializer.serialize(request).map_err(|err| {
            PitayaError::new(
                codes::BAD_REQUEST,
                format!("encoding the remote argument: {err}"),
            )
        })?;
        let route = format!("{}.{component}.{method}", self.target.server_type());
        let reply = self
            .caller
            .call(&self.target, route, Bytes::from(body), self.timeout)
            .await?;
        self.serializer.deserialize(&reply).map_err(|err| {
            PitayaError::new(codes::INTERNAL, format!("decoding the remote reply: {err}"))
        })
    }
}

//! The state every agent and the inbound cluster path share, read-only on
//! the request path.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::MessageCodec;
use crate::config::Config;
use crate::conn_gate::ConnectionGate;
use crate::dispatch::RouteTable;
use crate::handle::AppHandle;
use crate::pipeline::Pipelines;
use crate::session::SessionHub;

/// Everything the agents share (read-only on the request path).
pub(crate) struct ServerCore {
    pub(crate) config: Config,
    pub(crate) routes: RouteTable,
    /// The handler pipeline: around client handlers, and the messages a
    /// frontend forwards.
    pub(crate) pipelines: Pipelines,
    /// The remote pipeline: around the `#[remote]` methods served here.
    pub(crate) remote_pipelines: Pipelines,
    /// Hooks around the client messages this frontend forwards.
    pub(crate) forward_pipelines: Pipelines,
    pub(crate) codec: MessageCodec,
    pub(crate) sessions: Arc<SessionHub>,
    pub(crate) handshake_ok: Bytes,
    pub(crate) handshake_refused: Bytes,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) gate: Arc<ConnectionGate>,
    pub(crate) handle: AppHandle,
}

impl ServerCore {
    pub(crate) fn handle(&self) -> AppHandle {
        self.handle.clone()
    }
}
